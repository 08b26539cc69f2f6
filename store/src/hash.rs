//! Hashes as Nix uses them: [`NixHash`] (md5, sha1, sha256, sha512), parsed from and
//! printed in every form Nix accepts (base16, nix32, base64, SRI, `algo:digest`), plus
//! [`compress_hash`], Nix's XOR-folding used for store path digests.

use std::fmt;
use std::io;

use data_encoding::{BASE64, HEXLOWER_PERMISSIVE};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use thiserror::Error;

use crate::nixbase32;

/// A hash algorithm supported by Nix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgo {
    /// MD5 (16 bytes).
    Md5,
    /// SHA-1 (20 bytes).
    Sha1,
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl HashAlgo {
    /// The name Nix uses for the algorithm (`md5`, `sha1`, `sha256`, `sha512`).
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha512 => "sha512",
        }
    }

    /// Parses an algorithm name as Nix spells it.
    pub fn from_name(name: &str) -> Result<Self, HashError> {
        match name {
            "md5" => Ok(HashAlgo::Md5),
            "sha1" => Ok(HashAlgo::Sha1),
            "sha256" => Ok(HashAlgo::Sha256),
            "sha512" => Ok(HashAlgo::Sha512),
            other => Err(HashError::UnknownAlgo(other.to_string())),
        }
    }

    /// Length of a digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlgo::Md5 => 16,
            HashAlgo::Sha1 => 20,
            HashAlgo::Sha256 => 32,
            HashAlgo::Sha512 => 64,
        }
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The textual encodings of a digest (Nix's hash formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashEncoding {
    /// Lowercase hexadecimal.
    Base16,
    /// Nix's base-32 ([`crate::nixbase32`]).
    Nix32,
    /// Standard base64 with padding.
    Base64,
    /// Subresource Integrity: `algo-<base64>`. Unlike the other encodings this one always
    /// carries the algorithm, so [`NixHash::encode`] and [`NixHash::to_prefixed`] both give
    /// the SRI string.
    Sri,
}

impl HashEncoding {
    /// The format name Nix uses (`base16`, `nix32`, `base64`, `sri`), as in
    /// `builtins.convertHash`'s `toHashFormat` and `nix hash convert --to`.
    pub fn name(self) -> &'static str {
        match self {
            HashEncoding::Base16 => "base16",
            HashEncoding::Nix32 => "nix32",
            HashEncoding::Base64 => "base64",
            HashEncoding::Sri => "sri",
        }
    }

    /// Parses a format name as returned by [`HashEncoding::name`]. The deprecated alias
    /// `base32` (for `nix32`) is not accepted here: callers that support it decide how to
    /// warn about it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "base16" => Some(HashEncoding::Base16),
            "nix32" => Some(HashEncoding::Nix32),
            "base64" => Some(HashEncoding::Base64),
            "sri" => Some(HashEncoding::Sri),
            _ => None,
        }
    }

    /// How Nix names the encoding in parse errors ("invalid base-16 hash ...").
    fn error_name(self) -> &'static str {
        match self {
            HashEncoding::Base16 => "base-16",
            HashEncoding::Nix32 => "base-32",
            HashEncoding::Base64 => "base-64",
            HashEncoding::Sri => "SRI",
        }
    }
}

impl fmt::Display for HashEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors from parsing hashes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HashError {
    /// The algorithm name is not one Nix knows.
    #[error("unknown hash algorithm '{0}'")]
    UnknownAlgo(String),
    /// The string has no algorithm prefix and none was supplied.
    #[error("hash '{0}' does not include a type")]
    MissingAlgo(String),
    /// The prefix names a different algorithm than the one expected.
    #[error("hash '{hash}' should have type '{expected}'")]
    AlgoMismatch {
        /// The hash string.
        hash: String,
        /// The expected algorithm.
        expected: HashAlgo,
    },
    /// The digest length matches no encoding for this algorithm. The message names only
    /// the digest part, as Nix's does.
    #[error("hash '{digest}' has wrong length for hash algorithm '{algo}'")]
    WrongLength {
        /// The whole hash string.
        hash: String,
        /// The digest part (after any `algo:` or `algo-` prefix).
        digest: String,
        /// The algorithm.
        algo: HashAlgo,
    },
    /// The digest is not valid in the encoding its length (or the SRI form) implies, or a
    /// base64 digest decodes to the wrong number of bytes. The message names only the
    /// digest part, as Nix's does: `invalid base-16 hash '...'`, `invalid SRI hash '...'`.
    #[error("invalid {} hash '{digest}'", encoding.error_name())]
    InvalidEncoding {
        /// The whole hash string.
        hash: String,
        /// The digest part (after any `algo:` or `algo-` prefix).
        digest: String,
        /// The encoding that failed.
        encoding: HashEncoding,
    },
    /// A raw digest of the wrong size for its algorithm.
    #[error("digest of {got} bytes is not a valid {algo} digest ({expected} bytes)")]
    WrongDigestSize {
        /// The algorithm.
        algo: HashAlgo,
        /// Bytes expected.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
}

/// A digest together with its algorithm.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NixHash {
    algo: HashAlgo,
    digest: Vec<u8>,
}

impl fmt::Debug for NixHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NixHash({})", self.to_sri())
    }
}

/// `algo:nix32`, the form Nix prints by default.
impl fmt::Display for NixHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_prefixed(HashEncoding::Nix32))
    }
}

impl NixHash {
    /// Wraps a raw digest, checking its length against the algorithm.
    pub fn from_digest(algo: HashAlgo, digest: Vec<u8>) -> Result<Self, HashError> {
        if digest.len() != algo.digest_len() {
            return Err(HashError::WrongDigestSize {
                algo,
                expected: algo.digest_len(),
                got: digest.len(),
            });
        }
        Ok(NixHash { algo, digest })
    }

    /// Hashes `data` with `algo`.
    pub fn hash_bytes(algo: HashAlgo, data: &[u8]) -> Self {
        let mut h = Hasher::new(algo);
        h.update(data);
        h.finish()
    }

    /// The sha256 of `data`.
    pub fn sha256(data: &[u8]) -> Self {
        Self::hash_bytes(HashAlgo::Sha256, data)
    }

    /// The algorithm.
    pub fn algo(&self) -> HashAlgo {
        self.algo
    }

    /// The raw digest bytes.
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// Parses a hash in any form Nix accepts:
    /// `algo:<base16|nix32|base64>`, SRI `algo-<base64>`, or a bare digest in base16,
    /// nix32 or base64 when `algo` is supplied. If both a prefix and `algo` are present
    /// they must agree.
    pub fn parse(s: &str, algo: Option<HashAlgo>) -> Result<Self, HashError> {
        // As in Nix, a prefix before `:` or `-` must name a known algorithm: no bare digest
        // contains either character, so there is nothing to fall back to.
        let (prefix_algo, rest, sri) = if let Some((a, rest)) = s.split_once(':') {
            (Some(HashAlgo::from_name(a)?), rest, false)
        } else if let Some((a, rest)) = s.split_once('-') {
            (Some(HashAlgo::from_name(a)?), rest, true)
        } else {
            (None, s, false)
        };
        let algo = match (prefix_algo, algo) {
            (Some(p), Some(e)) if p != e => {
                return Err(HashError::AlgoMismatch {
                    hash: s.to_string(),
                    expected: e,
                })
            }
            (Some(p), _) => p,
            (None, Some(e)) => e,
            (None, None) => return Err(HashError::MissingAlgo(s.to_string())),
        };
        if sri {
            return Self::decode_as(s, rest, algo, HashEncoding::Sri);
        }
        let n = algo.digest_len();
        let enc = if rest.len() == n * 2 {
            HashEncoding::Base16
        } else if rest.len() == nixbase32::encode_len(n) {
            HashEncoding::Nix32
        } else if rest.len() == n.div_ceil(3) * 4 {
            HashEncoding::Base64
        } else {
            return Err(HashError::WrongLength {
                hash: s.to_string(),
                digest: rest.to_string(),
                algo,
            });
        };
        Self::decode_as(s, rest, algo, enc)
    }

    /// Parses an SRI hash (`sha256-<base64>`).
    pub fn parse_sri(s: &str) -> Result<Self, HashError> {
        let (a, rest) = s
            .split_once('-')
            .ok_or_else(|| HashError::MissingAlgo(s.to_string()))?;
        let algo = HashAlgo::from_name(a)?;
        Self::decode_as(s, rest, algo, HashEncoding::Sri)
    }

    fn decode_as(
        whole: &str,
        digest: &str,
        algo: HashAlgo,
        enc: HashEncoding,
    ) -> Result<Self, HashError> {
        let invalid = || HashError::InvalidEncoding {
            hash: whole.to_string(),
            digest: digest.to_string(),
            encoding: enc,
        };
        let bytes = match enc {
            HashEncoding::Base16 => HEXLOWER_PERMISSIVE
                .decode(digest.as_bytes())
                .map_err(|_| invalid())?,
            HashEncoding::Nix32 => nixbase32::decode(digest).map_err(|_| invalid())?,
            HashEncoding::Base64 | HashEncoding::Sri => {
                BASE64.decode(digest.as_bytes()).map_err(|_| invalid())?
            }
        };
        // Only base64 can decode to another size: the base16 and nix32 lengths were checked.
        if bytes.len() != algo.digest_len() {
            return Err(invalid());
        }
        Ok(NixHash {
            algo,
            digest: bytes,
        })
    }

    /// The digest in lowercase hexadecimal.
    pub fn to_base16(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.digest)
    }

    /// The digest in nixbase32.
    pub fn to_nix32(&self) -> String {
        nixbase32::encode(&self.digest)
    }

    /// The digest in padded base64.
    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.digest)
    }

    /// The digest in the given encoding, without a prefix; except SRI, which always has
    /// its `algo-` prefix.
    pub fn encode(&self, enc: HashEncoding) -> String {
        match enc {
            HashEncoding::Base16 => self.to_base16(),
            HashEncoding::Nix32 => self.to_nix32(),
            HashEncoding::Base64 => self.to_base64(),
            HashEncoding::Sri => self.to_sri(),
        }
    }

    /// `algo:<digest>` in the given encoding; the SRI form for [`HashEncoding::Sri`].
    pub fn to_prefixed(&self, enc: HashEncoding) -> String {
        match enc {
            HashEncoding::Sri => self.to_sri(),
            _ => format!("{}:{}", self.algo, self.encode(enc)),
        }
    }

    /// The SRI form, `algo-<base64>`.
    pub fn to_sri(&self) -> String {
        format!("{}-{}", self.algo, self.to_base64())
    }

    /// Nix's `compressHash`: XOR-folds the digest into `N` bytes.
    pub fn compress<const N: usize>(&self) -> [u8; N] {
        compress_hash(&self.digest)
    }
}

/// Nix's `compressHash`: byte `i` of the input is XORed into byte `i % N` of the output.
pub fn compress_hash<const N: usize>(input: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    if N == 0 {
        return out;
    }
    for (i, b) in input.iter().enumerate() {
        out[i % N] ^= b;
    }
    out
}

enum HasherInner {
    Md5(Md5),
    Sha1(Sha1),
    Sha256(Sha256),
    Sha512(Sha512),
}

/// An incremental hasher for any [`HashAlgo`]; also an [`io::Write`] sink.
pub struct Hasher {
    inner: HasherInner,
}

impl Hasher {
    /// A fresh hasher for `algo`.
    pub fn new(algo: HashAlgo) -> Self {
        let inner = match algo {
            HashAlgo::Md5 => HasherInner::Md5(Md5::new()),
            HashAlgo::Sha1 => HasherInner::Sha1(Sha1::new()),
            HashAlgo::Sha256 => HasherInner::Sha256(Sha256::new()),
            HashAlgo::Sha512 => HasherInner::Sha512(Sha512::new()),
        };
        Hasher { inner }
    }

    /// Feeds `data` into the hash.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.inner {
            HasherInner::Md5(h) => h.update(data),
            HasherInner::Sha1(h) => h.update(data),
            HasherInner::Sha256(h) => h.update(data),
            HasherInner::Sha512(h) => h.update(data),
        }
    }

    /// Finishes and returns the hash.
    pub fn finish(self) -> NixHash {
        let (algo, digest) = match self.inner {
            HasherInner::Md5(h) => (HashAlgo::Md5, h.finalize().to_vec()),
            HasherInner::Sha1(h) => (HashAlgo::Sha1, h.finalize().to_vec()),
            HasherInner::Sha256(h) => (HashAlgo::Sha256, h.finalize().to_vec()),
            HasherInner::Sha512(h) => (HashAlgo::Sha512, h.finalize().to_vec()),
        };
        NixHash { algo, digest }
    }
}

/// A reader that counts the bytes read through it and, if given a hasher, hashes them:
/// the raw (compressed) file of a binary cache, checked against a narinfo's `FileSize`
/// and `FileHash` once read.
pub struct CheckingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    count: u64,
}

impl<R> CheckingReader<R> {
    /// Counts what is read from `inner`, and hashes it with `algo` if given.
    pub fn new(inner: R, algo: Option<HashAlgo>) -> Self {
        CheckingReader {
            inner,
            hasher: algo.map(Hasher::new),
            count: 0,
        }
    }

    /// The bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The hash (if asked for) and the number of the bytes read.
    pub fn finish(self) -> (Option<NixHash>, u64) {
        (self.hasher.map(Hasher::finish), self.count)
    }
}

impl<R: io::Read> io::Read for CheckingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hashes of the 3 bytes "hi\n", from `nix-hash --flat`.
    const HI_SHA256_HEX: &str = "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4";
    const HI_SHA1_NIX32: &str = "fd540npwk7x370s4s2jzpx74wf365jjm";
    const HI_MD5_NIX32: &str = "4yplxll7378zdi27ns7n4glkkn";
    const HI_SHA512_NIX32: &str = "2n0zm9j591idxv29lvrybrcrgncih9hfdrk2sj3i36cby9pkqwhc3j1j4xr7mhjq8x0979n5wxc1nihq84iclh48zwnas3k882vp2np";

    #[test]
    fn hashes_match_nix() {
        let h = NixHash::sha256(b"hi\n");
        assert_eq!(h.to_base16(), HI_SHA256_HEX);
        assert_eq!(
            h.to_nix32(),
            "1r3v22qkypccqifzbww5lrn6hf1chi23m6zzkyvb8bvg457nxslq"
        );
        assert_eq!(
            NixHash::hash_bytes(HashAlgo::Sha1, b"hi\n").to_nix32(),
            HI_SHA1_NIX32
        );
        assert_eq!(
            NixHash::hash_bytes(HashAlgo::Md5, b"hi\n").to_nix32(),
            HI_MD5_NIX32
        );
        assert_eq!(
            NixHash::hash_bytes(HashAlgo::Sha512, b"hi\n").to_nix32(),
            HI_SHA512_NIX32
        );
    }

    #[test]
    fn parse_all_forms() {
        let h = NixHash::sha256(b"hi\n");
        for s in [
            format!("sha256:{}", h.to_base16()),
            format!("sha256:{}", h.to_nix32()),
            format!("sha256:{}", h.to_base64()),
            h.to_sri(),
        ] {
            assert_eq!(NixHash::parse(&s, None).unwrap(), h, "{s}");
            assert_eq!(
                NixHash::parse(&s, Some(HashAlgo::Sha256)).unwrap(),
                h,
                "{s}"
            );
        }
        for s in [h.to_base16(), h.to_nix32(), h.to_base64()] {
            assert_eq!(NixHash::parse(&s, Some(HashAlgo::Sha256)).unwrap(), h);
            assert!(matches!(
                NixHash::parse(&s, None),
                Err(HashError::MissingAlgo(_))
            ));
        }
        assert_eq!(NixHash::parse_sri(&h.to_sri()).unwrap(), h);
        for algo in [HashAlgo::Md5, HashAlgo::Sha1, HashAlgo::Sha512] {
            let h = NixHash::hash_bytes(algo, b"x");
            for enc in [
                HashEncoding::Base16,
                HashEncoding::Nix32,
                HashEncoding::Base64,
            ] {
                assert_eq!(NixHash::parse(&h.to_prefixed(enc), None).unwrap(), h);
            }
        }
    }

    #[test]
    fn parse_errors() {
        let h = NixHash::sha256(b"hi\n");
        assert!(matches!(
            NixHash::parse(&format!("sha1:{}", h.to_base16()), None),
            Err(HashError::WrongLength { .. })
        ));
        assert!(matches!(
            NixHash::parse(&format!("sha256:{}", h.to_base16()), Some(HashAlgo::Sha1)),
            Err(HashError::AlgoMismatch { .. })
        ));
        assert!(matches!(
            NixHash::parse("foo:abc", None),
            Err(HashError::UnknownAlgo(_))
        ));
        let bad = format!("sha256:{}", "g".repeat(64));
        assert!(matches!(
            NixHash::parse(&bad, None),
            Err(HashError::InvalidEncoding { .. })
        ));
        let bad = format!("sha256:{}", "e".repeat(52));
        assert!(matches!(
            NixHash::parse(&bad, None),
            Err(HashError::InvalidEncoding { .. })
        ));
        assert!(NixHash::parse_sri("sha256-!!!").is_err());
        assert!(NixHash::from_digest(HashAlgo::Sha1, vec![0; 3]).is_err());
    }

    #[test]
    fn parse_error_messages_name_the_digest_like_nix() {
        let msg = |s: &str, a: Option<HashAlgo>| NixHash::parse(s, a).unwrap_err().to_string();
        // Compared with `nix-instantiate` (which says "hash type" where newer Nix says
        // "hash algorithm").
        assert_eq!(
            msg("md5:z41d8cd98f00b204e9800998ecf8427e", Some(HashAlgo::Md5)),
            "invalid base-16 hash 'z41d8cd98f00b204e9800998ecf8427e'"
        );
        assert_eq!(
            msg("md5:e41d8cd98f00b204e9800998ec", None),
            "invalid base-32 hash 'e41d8cd98f00b204e9800998ec'"
        );
        assert_eq!(
            msg("md5:abc", None),
            "hash 'abc' has wrong length for hash algorithm 'md5'"
        );
        assert_eq!(msg("md5-abc", None), "invalid SRI hash 'abc'");
        assert_eq!(
            msg("sha1:d41d8cd98f00b204e9800998ecf8427e", Some(HashAlgo::Md5)),
            "hash 'sha1:d41d8cd98f00b204e9800998ecf8427e' should have type 'md5'"
        );
        assert_eq!(msg("foo-abc", None), "unknown hash algorithm 'foo'");
        // The algorithm before `-` must be known even when the caller supplies one.
        assert_eq!(
            NixHash::parse("foo-abc", Some(HashAlgo::Md5)),
            Err(HashError::UnknownAlgo("foo".into()))
        );
    }

    #[test]
    fn parse_error_fields() {
        let h = NixHash::hash_bytes(HashAlgo::Md5, b"");
        // SRI with a valid base64 body of the wrong size.
        let sha1_b64 = NixHash::hash_bytes(HashAlgo::Sha1, b"").to_base64();
        assert_eq!(
            NixHash::parse(&format!("md5-{sha1_b64}"), None),
            Err(HashError::InvalidEncoding {
                hash: format!("md5-{sha1_b64}"),
                digest: sha1_b64.clone(),
                encoding: HashEncoding::Sri,
            })
        );
        // 24 base64 characters without padding decode to 18 bytes, not md5's 16.
        let unpadded = "A".repeat(24);
        assert_eq!(
            NixHash::parse(&unpadded, Some(HashAlgo::Md5)),
            Err(HashError::InvalidEncoding {
                hash: unpadded.clone(),
                digest: unpadded.clone(),
                encoding: HashEncoding::Base64,
            })
        );
        assert_eq!(
            NixHash::parse("sha1:abc", None),
            Err(HashError::WrongLength {
                hash: "sha1:abc".into(),
                digest: "abc".into(),
                algo: HashAlgo::Sha1,
            })
        );
        assert_eq!(
            NixHash::parse(&h.to_base16(), Some(HashAlgo::Md5)).unwrap(),
            h
        );
    }

    #[test]
    fn encodings_and_names() {
        let h = NixHash::sha256(b"");
        assert_eq!(
            h.encode(HashEncoding::Sri),
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(h.to_prefixed(HashEncoding::Sri), h.to_sri());
        assert_eq!(
            h.to_prefixed(HashEncoding::Nix32),
            "sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
        for enc in [
            HashEncoding::Base16,
            HashEncoding::Nix32,
            HashEncoding::Base64,
            HashEncoding::Sri,
        ] {
            assert_eq!(HashEncoding::from_name(enc.name()), Some(enc));
            assert_eq!(enc.to_string(), enc.name());
            assert_eq!(NixHash::parse(&h.to_prefixed(enc), None).unwrap(), h);
        }
        assert_eq!(HashEncoding::from_name("base32"), None);
        assert_eq!(HashEncoding::from_name("hex"), None);
    }

    #[test]
    fn compress() {
        let input: Vec<u8> = (0..32u8).collect();
        let c: [u8; 20] = compress_hash(&input);
        assert_eq!(c[0], 20);
        assert_eq!(c[11], 11 ^ 31);
        assert_eq!(c[12], 12);
        assert_eq!(c[19], 19);
    }
}
