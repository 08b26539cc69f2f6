//! Hashing builtins (`hashString`, `hashFile`, `convertHash`) and the hash encodings Nix uses:
//! base-16, Nix's own base-32 ("nix32"), base-64 and SRI.
//!
//! The nix32 codec is public: the store computes store path hashes with it.

use std::rc::Rc;

use data_encoding::{BASE64, HEXLOWER, HEXLOWER_PERMISSIVE};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::control::primop;
use super::fail;
use crate::error::{AddContext, EvalResult};
use crate::eval::Evaluator;
use crate::source::Span;
use crate::symbol::Symbol;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("hashString", 2, hash_string),
    primop!("hashFile", 2, hash_file),
    primop!("convertHash", 1, convert_hash),
];

/// The alphabet of Nix's base-32: digits and lowercase letters without `e`, `o`, `u`, `t`.
pub const NIX32_ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Length of the nix32 encoding of `n` bytes.
pub fn nix32_encoded_len(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n * 8 - 1) / 5 + 1
    }
}

/// Encodes bytes in Nix's base-32. Bits are taken least-significant first, and the character
/// for the lowest bits comes last.
pub fn nix32_encode(bytes: &[u8]) -> String {
    let len = nix32_encoded_len(bytes.len());
    let mut out = String::with_capacity(len);
    for pos in (0..len).rev() {
        let bit = pos * 5;
        let (byte, shift) = (bit / 8, bit % 8);
        let low = (bytes[byte] as u16) >> shift;
        let high = match bytes.get(byte + 1) {
            Some(&b) => (b as u16) << (8 - shift),
            None => 0,
        };
        out.push(NIX32_ALPHABET[((low | high) & 0x1f) as usize] as char);
    }
    out
}

/// Decodes Nix's base-32. `None` if a character is not in the alphabet, or if the text does
/// not encode a whole number of bytes (non-zero bits beyond the last byte).
pub fn nix32_decode(text: &[u8]) -> Option<Vec<u8>> {
    let n = text.len() * 5 / 8;
    let mut out = vec![0u8; n];
    for (i, &c) in text.iter().rev().enumerate() {
        let digit = NIX32_ALPHABET.iter().position(|&a| a == c)? as u16;
        let bit = i * 5;
        let (byte, shift) = (bit / 8, bit % 8);
        let shifted = digit << shift;
        match out.get_mut(byte) {
            Some(b) => *b |= (shifted & 0xff) as u8,
            None => {
                if digit != 0 {
                    return None;
                }
                continue;
            }
        }
        let carry = (shifted >> 8) as u8;
        match out.get_mut(byte + 1) {
            Some(b) => *b |= carry,
            None if carry != 0 => return None,
            None => {}
        }
    }
    Some(out)
}

/// A hash algorithm Nix knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// Parses a name as Nix spells it (`md5`, `sha1`, `sha256`, `sha512`).
    pub fn parse(name: &str) -> Option<HashAlgo> {
        match name {
            "md5" => Some(HashAlgo::Md5),
            "sha1" => Some(HashAlgo::Sha1),
            "sha256" => Some(HashAlgo::Sha256),
            "sha512" => Some(HashAlgo::Sha512),
            _ => None,
        }
    }

    /// Parses a name, failing with Nix's message for unknown names.
    pub fn parse_or_fail(name: &str, span: Option<Span>) -> EvalResult<HashAlgo> {
        match HashAlgo::parse(name) {
            Some(a) => Ok(a),
            None if name == "blake3" => fail(
                "experimental Nix feature 'blake3-hashes' is disabled; add '--extra-experimental-features blake3-hashes' to enable it",
                span,
            ),
            None => fail(
                format!(
                    "unknown hash algorithm '{name}', expect 'blake3', 'md5', 'sha1', 'sha256', or 'sha512'"
                ),
                span,
            ),
        }
    }

    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha512 => "sha512",
        }
    }

    /// Digest size in bytes.
    pub fn size(self) -> usize {
        match self {
            HashAlgo::Md5 => 16,
            HashAlgo::Sha1 => 20,
            HashAlgo::Sha256 => 32,
            HashAlgo::Sha512 => 64,
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlgo::Md5 => Md5::digest(data).to_vec(),
            HashAlgo::Sha1 => Sha1::digest(data).to_vec(),
            HashAlgo::Sha256 => Sha256::digest(data).to_vec(),
            HashAlgo::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// The text forms of a hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashFormat {
    /// Lowercase hexadecimal.
    Base16,
    /// Nix's base-32.
    Nix32,
    /// Standard base-64 with padding.
    Base64,
    /// `algo-base64`.
    Sri,
}

/// A digest with its algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hash {
    /// The algorithm.
    pub algo: HashAlgo,
    /// The raw digest (`algo.size()` bytes).
    pub digest: Vec<u8>,
}

impl Hash {
    /// Hashes `data` with `algo`.
    pub fn of(algo: HashAlgo, data: &[u8]) -> Hash {
        Hash {
            algo,
            digest: algo.digest(data),
        }
    }

    /// The hash in `format` (without an `algo:` prefix, except SRI which always has one).
    pub fn encode(&self, format: HashFormat) -> String {
        match format {
            HashFormat::Base16 => HEXLOWER.encode(&self.digest),
            HashFormat::Nix32 => nix32_encode(&self.digest),
            HashFormat::Base64 => BASE64.encode(&self.digest),
            HashFormat::Sri => format!("{}-{}", self.algo.name(), BASE64.encode(&self.digest)),
        }
    }

    /// Parses a hash in any of Nix's forms: `algo:body`, SRI `algo-base64`, or a bare body
    /// (base-16, nix32 or base-64, told apart by length) when `algo` is known from context.
    pub fn parse_any(text: &str, algo: Option<HashAlgo>) -> Result<Hash, String> {
        let (prefix, body, sri) = if let Some((p, b)) = text.split_once(':') {
            (Some(p), b, false)
        } else if let Some((p, b)) = text.split_once('-') {
            (Some(p), b, true)
        } else {
            (None, text, false)
        };
        let algo = match (prefix, algo) {
            (Some(p), expected) => {
                let a = HashAlgo::parse(p).ok_or_else(|| {
                    format!(
                        "unknown hash algorithm '{p}', expect 'blake3', 'md5', 'sha1', 'sha256', or 'sha512'"
                    )
                })?;
                if let Some(e) = expected {
                    if e != a {
                        return Err(format!("hash '{text}' should have type '{}'", e.name()));
                    }
                }
                a
            }
            (None, Some(a)) => a,
            (None, None) => {
                return Err(format!(
                    "hash '{text}' does not include a type, nor is the type otherwise known from context"
                ))
            }
        };
        let size = algo.size();
        let bytes = body.as_bytes();
        let digest = if sri {
            let d = BASE64
                .decode(bytes)
                .map_err(|_| format!("invalid SRI hash '{text}'"))?;
            if d.len() != size {
                return Err(format!(
                    "invalid SRI hash '{text}': wrong length for hash algorithm '{}'",
                    algo.name()
                ));
            }
            d
        } else if bytes.len() == size * 2 {
            HEXLOWER_PERMISSIVE
                .decode(bytes)
                .map_err(|_| format!("invalid base-16 hash '{text}'"))?
        } else if bytes.len() == nix32_encoded_len(size) {
            nix32_decode(bytes).ok_or_else(|| format!("invalid nix32 hash '{text}'"))?
        } else if bytes.len() == BASE64.encode_len(size) {
            let d = BASE64
                .decode(bytes)
                .map_err(|_| format!("invalid base-64 hash '{text}'"))?;
            if d.len() != size {
                return Err(format!("invalid base-64 hash '{text}'"));
            }
            d
        } else {
            return Err(format!(
                "hash '{text}' has wrong length for hash algorithm '{}'",
                algo.name()
            ));
        };
        Ok(Hash { algo, digest })
    }
}

fn hash_algo_arg(
    ev: &mut Evaluator,
    v: Value,
    builtin: &str,
    span: Option<Span>,
) -> EvalResult<HashAlgo> {
    let name = ev.force_string(v, span).context(span, || {
        format!("while evaluating the first argument passed to builtins.{builtin}")
    })?;
    HashAlgo::parse_or_fail(&name.to_str_lossy(), span)
}

fn hash_string(ev: &mut Evaluator, a: Vec<Value>, span: Option<Span>) -> EvalResult<Value> {
    let algo = hash_algo_arg(ev, a[0].clone(), "hashString", span)?;
    let s = ev.force_string(a[1].clone(), span).context(span, || {
        "while evaluating the second argument passed to builtins.hashString".to_string()
    })?;
    Ok(Value::string(
        Hash::of(algo, s.as_bytes()).encode(HashFormat::Base16),
    ))
}

fn hash_file(ev: &mut Evaluator, a: Vec<Value>, span: Option<Span>) -> EvalResult<Value> {
    let algo = hash_algo_arg(ev, a[0].clone(), "hashFile", span)?;
    let path = super::paths::real_path(ev, a[1].clone(), span).context(span, || {
        "while evaluating the second argument passed to builtins.hashFile".to_string()
    })?;
    let data = match ev.io.read_file(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail(format!("path '{}' does not exist", path.display()), span)
        }
        Err(e) => return fail(format!("reading file '{}': {e}", path.display()), span),
    };
    Ok(Value::string(
        Hash::of(algo, &data).encode(HashFormat::Base16),
    ))
}

fn convert_hash(ev: &mut Evaluator, a: Vec<Value>, span: Option<Span>) -> EvalResult<Value> {
    let args = ev.force_attrs(a[0].clone(), span).context(span, || {
        "while evaluating the first argument passed to builtins.convertHash".to_string()
    })?;
    let get =
        |ev: &mut Evaluator, name: &str| -> EvalResult<Option<Rc<NixString>>> {
            match args.get(Symbol::intern(name)) {
            Some(v) => Ok(Some(ev.force_string(v.clone(), span).context(span, || {
                format!("while evaluating the attribute '{name}' passed to builtins.convertHash")
            })?)),
            None => Ok(None),
        }
        };
    let Some(hash) = get(ev, "hash")? else {
        return Err(ev.missing_attr(Symbol::intern("hash"), &args, span));
    };
    let algo = match get(ev, "hashAlgo")? {
        Some(name) => Some(HashAlgo::parse_or_fail(&name.to_str_lossy(), span)?),
        None => None,
    };
    let Some(format) = get(ev, "toHashFormat")? else {
        return Err(ev.missing_attr(Symbol::intern("toHashFormat"), &args, span));
    };
    let format = match &*format.to_str_lossy() {
        "base16" => HashFormat::Base16,
        "nix32" => HashFormat::Nix32,
        "base32" => {
            (ev.diagnostics)(
                "warning: \"base32\" is a deprecated alias for hash format \"nix32\".",
            );
            HashFormat::Nix32
        }
        "base64" => HashFormat::Base64,
        "sri" => HashFormat::Sri,
        other => {
            return fail(
                format!(
                    "unknown hash format '{other}', expect 'base16', 'base32', 'base64', or 'sri'"
                ),
                span,
            )
        }
    };
    let parsed = match Hash::parse_any(&hash.to_str_lossy(), algo) {
        Ok(h) => h,
        Err(m) => return fail(m, span),
    };
    Ok(Value::string(parsed.encode(format)))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::eval;

    #[test]
    fn nix32_known_values() {
        let empty_sha256 = Sha256::digest(b"").to_vec();
        assert_eq!(
            nix32_encode(&empty_sha256),
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
        assert_eq!(nix32_encode(&[]), "");
        assert_eq!(nix32_encode(&[0x1f]), "0z");
        assert_eq!(nix32_encode(&[0xff]), "7z");
        assert_eq!(nix32_encoded_len(20), 32);
        assert_eq!(nix32_encoded_len(32), 52);
    }

    #[test]
    fn nix32_round_trips() {
        for len in 0..70 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = nix32_encode(&data);
            assert_eq!(text.len(), nix32_encoded_len(len));
            assert_eq!(nix32_decode(text.as_bytes()), Some(data));
        }
    }

    #[test]
    fn nix32_rejects_bad_input() {
        assert_eq!(nix32_decode(b"e0"), None);
        assert_eq!(nix32_decode(b"8z"), None); // 0x1ff does not fit in a byte
        assert_eq!(nix32_decode(b"7z"), Some(vec![0xff]));
    }

    #[test]
    fn hash_string_algorithms() {
        assert_eq!(
            eval(r#"builtins.hashString "md5" "text 1""#),
            Ok(r#""6c69ee7f211c640419d5366cc076ae46""#.into())
        );
        assert_eq!(
            eval(r#"builtins.hashString "sha1" """#),
            Ok(r#""da39a3ee5e6b4b0d3255bfef95601890afd80709""#.into())
        );
        assert_eq!(
            eval(r#"builtins.hashString "sha256" "text 2""#),
            Ok(r#""ad0387b3bd8652f730ca46d25f9c170af0fd589f42e7f23f5a9e6412d97d7e56""#.into())
        );
        assert!(eval(r#"builtins.hashString "sha512" """#)
            .unwrap()
            .starts_with("\"cf83e1357eefb8bd"));
    }

    #[test]
    fn hash_string_errors() {
        assert_eq!(
            eval(r#"builtins.hashString "foo" "content""#),
            Err("unknown hash algorithm 'foo', expect 'blake3', 'md5', 'sha1', 'sha256', or 'sha512'".into())
        );
        assert_eq!(
            eval(r#"builtins.hashString 1 { }"#),
            Err("expected a string but found an integer: 1".into())
        );
        assert_eq!(
            eval(r#"builtins.hashString "sha256" { }"#),
            Err("expected a string but found a set: { }".into())
        );
    }

    #[test]
    fn hash_file_hashes_contents_and_reports_missing_files() {
        let dir = std::env::temp_dir().join(format!("tvix-hash-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("data");
        std::fs::write(&file, "foo\n").unwrap();
        assert_eq!(
            eval(&format!(r#"builtins.hashFile "md5" {}"#, file.display())),
            Ok(r#""d3b07384d113edec49eaa6238ad5ff00""#.into())
        );
        let missing = dir.join("missing");
        assert_eq!(
            eval(&format!(
                r#"builtins.hashFile "md5" "{}""#,
                missing.display()
            )),
            Err(format!("path '{}' does not exist", missing.display()))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn convert_hash_formats() {
        let b16 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let cases = [
            ("base16", b16),
            (
                "nix32",
                "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73",
            ),
            ("base64", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
            ("sri", "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
        ];
        for (fmt, want) in cases {
            assert_eq!(
                eval(&format!(
                    r#"builtins.convertHash {{ hash = "{b16}"; hashAlgo = "sha256"; toHashFormat = "{fmt}"; }}"#
                )),
                Ok(format!("\"{want}\""))
            );
            // And back: every form parses, with the algorithm from a prefix.
            let input = if fmt == "sri" {
                want.to_string()
            } else {
                format!("sha256:{want}")
            };
            assert_eq!(
                eval(&format!(
                    r#"builtins.convertHash {{ hash = "{input}"; toHashFormat = "base16"; }}"#
                )),
                Ok(format!("\"{b16}\""))
            );
        }
    }

    #[test]
    fn convert_hash_errors() {
        assert_eq!(
            eval(r#"builtins.convertHash { hash = "abc"; toHashFormat = "base16"; }"#),
            Err(
                "hash 'abc' does not include a type, nor is the type otherwise known from context"
                    .into()
            )
        );
        assert_eq!(
            eval(
                r#"builtins.convertHash { hash = "abc"; hashAlgo = "sha256"; toHashFormat = "base16"; }"#
            ),
            Err("hash 'abc' has wrong length for hash algorithm 'sha256'".into())
        );
        assert_eq!(
            eval(
                r#"builtins.convertHash { hash = "d41d8cd98f00b204e9800998ecf8427e"; hashAlgo = "md5"; toHashFormat = "hex"; }"#
            ),
            Err("unknown hash format 'hex', expect 'base16', 'base32', 'base64', or 'sri'".into())
        );
        assert_eq!(
            eval(
                r#"builtins.convertHash { hash = "md5:d41d8cd98f00b204e9800998ecf8427e"; hashAlgo = "sha1"; toHashFormat = "sri"; }"#
            ),
            Err("hash 'md5:d41d8cd98f00b204e9800998ecf8427e' should have type 'sha1'".into())
        );
        assert_eq!(
            eval(
                r#"builtins.convertHash { hash = "md5:z41d8cd98f00b204e9800998ecf8427e"; toHashFormat = "sri"; }"#
            ),
            Err("invalid base-16 hash 'md5:z41d8cd98f00b204e9800998ecf8427e'".into())
        );
    }
}
