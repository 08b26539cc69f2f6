//! Store paths: parsing and validation of `/nix/store/<digest>-<name>`, and the path
//! computations of Nix (text, source, fixed-output and derivation output paths).
//!
//! Every store path is `<store dir>/<nix32 of 20 bytes>-<name>`. The 20 bytes are the
//! sha256 of a *fingerprint* string, XOR-folded to 20 bytes:
//!
//! ```text
//! <type>:sha256:<base16 of inner hash>:<store dir>:<name>
//! ```
//!
//! where `<type>` is `text` or `source` followed by `:<reference>` for each reference
//! (full paths, sorted) and, for `source`, `:self` when the path refers to itself;
//! `output:<output name>` for derivation outputs; and `output:out` for non-recursive or
//! non-sha256 fixed-output paths.

use std::collections::BTreeSet;
use std::fmt;

use thiserror::Error;

use crate::hash::{compress_hash, HashAlgo, HashEncoding, NixHash};
use crate::nixbase32;

/// Length of the digest part of a store path, in bytes.
pub const DIGEST_LEN: usize = 20;
/// Length of the digest part of a store path, in nixbase32 characters.
pub const ENCODED_DIGEST_LEN: usize = 32;
/// The longest name a store path may have.
pub const MAX_NAME_LEN: usize = 211;
/// The default store directory.
pub const DEFAULT_STORE_DIR: &str = "/nix/store";

/// Errors from parsing or constructing store paths.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StorePathError {
    /// The path is not directly inside the store directory.
    #[error("path '{path}' is not in the Nix store '{store_dir}'")]
    NotInStore {
        /// The offending path.
        path: String,
        /// The store directory.
        store_dir: String,
    },
    /// The base name is not `<32 nix32 chars>-<name>`.
    #[error("store path '{0}' is not of the form '<hash>-<name>'")]
    Malformed(String),
    /// The digest part is not valid nixbase32.
    #[error("store path '{0}' has an invalid hash part")]
    InvalidDigest(String),
    /// The name is empty.
    #[error("store path name is empty")]
    EmptyName,
    /// The name is longer than 211 characters.
    #[error("name '{0}' is longer than 211 characters")]
    NameTooLong(String),
    /// The name starts with a dot.
    #[error("name '{0}' is not allowed to start with '.'")]
    LeadingDot(String),
    /// The name contains a character outside `[A-Za-z0-9+\-._?=]`.
    #[error("name '{name}' contains illegal character '{ch}'")]
    IllegalCharacter {
        /// The name.
        name: String,
        /// The first illegal character.
        ch: char,
    },
    /// The store directory is not an absolute path without trailing slash.
    #[error("invalid store directory '{0}': must be absolute, without a trailing '/'")]
    InvalidStoreDir(String),
    /// A text path was asked for with a hash that is not sha256.
    #[error("text paths require a sha256 hash, got {0}")]
    TextHashNotSha256(HashAlgo),
    /// A fixed-output path that is not a recursive sha256 cannot have references.
    #[error("fixed-output path '{0}' cannot have references unless it is a recursive sha256")]
    FixedOutputWithReferences(String),
}

/// Checks a store path name against Nix's rules: non-empty, at most 211 bytes, only
/// `[A-Za-z0-9+\-._?=]`, and not starting with `.`.
///
/// The leading-dot rule is that of Nix 2.19 and later (and of Nix before 2.4); Nix 2.4 to
/// 2.18, including the 2.8 used as the reference in the tests, accept such names
/// (`builtins.toFile ".foo" ""` succeeds there).
pub fn validate_name(name: &str) -> Result<(), StorePathError> {
    if name.is_empty() {
        return Err(StorePathError::EmptyName);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(StorePathError::NameTooLong(name.to_string()));
    }
    if name.starts_with('.') {
        return Err(StorePathError::LeadingDot(name.to_string()));
    }
    if let Some(ch) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "+-._?=".contains(c)))
    {
        return Err(StorePathError::IllegalCharacter {
            name: name.to_string(),
            ch,
        });
    }
    Ok(())
}

/// A store path without its store directory: a 20-byte digest and a validated name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorePath {
    digest: [u8; DIGEST_LEN],
    name: String,
}

impl StorePath {
    /// Builds a store path from its parts, validating the name.
    pub fn new(digest: [u8; DIGEST_LEN], name: impl Into<String>) -> Result<Self, StorePathError> {
        let name = name.into();
        validate_name(&name)?;
        Ok(StorePath { digest, name })
    }

    /// Parses a base name `<nix32 digest>-<name>`.
    pub fn from_base_name(base: &str) -> Result<Self, StorePathError> {
        let bytes = base.as_bytes();
        if bytes.len() < ENCODED_DIGEST_LEN + 1 || bytes[ENCODED_DIGEST_LEN] != b'-' {
            return Err(StorePathError::Malformed(base.to_string()));
        }
        let (digest_part, rest) = base.split_at(ENCODED_DIGEST_LEN);
        let digest = nixbase32::decode_fixed::<DIGEST_LEN>(digest_part)
            .map_err(|_| StorePathError::InvalidDigest(base.to_string()))?;
        StorePath::new(digest, &rest[1..])
    }

    /// Parses an absolute path in the default store directory `/nix/store`.
    pub fn from_absolute_path(path: &str) -> Result<Self, StorePathError> {
        StoreDir::default().parse_path(path)
    }

    /// The 20-byte digest.
    pub fn digest(&self) -> &[u8; DIGEST_LEN] {
        &self.digest
    }

    /// The name part.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The nixbase32 digest part (32 characters).
    pub fn hash_part(&self) -> String {
        nixbase32::encode(&self.digest)
    }

    /// `<digest>-<name>`, the base name in the store directory.
    pub fn to_base_name(&self) -> String {
        let mut out = String::with_capacity(ENCODED_DIGEST_LEN + 1 + self.name.len());
        self.push_base_name(&mut out);
        out
    }

    /// Appends `<digest>-<name>` to `out`.
    fn push_base_name(&self, out: &mut String) {
        nixbase32::encode_to(&self.digest, out);
        out.push('-');
        out.push_str(&self.name);
    }

    /// The absolute path in the default store directory.
    pub fn to_absolute_path(&self) -> String {
        StoreDir::default().display(self)
    }
}

/// Displays the base name `<digest>-<name>`.
impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.hash_part(), self.name)
    }
}

/// How a fixed-output path's content was hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileIngestionMethod {
    /// The hash is of the file's bytes (`outputHashMode = "flat"`).
    Flat,
    /// The hash is of the NAR serialisation (`outputHashMode = "recursive"`).
    Recursive,
}

/// A store directory (default `/nix/store`) and the path computations that depend on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreDir(String);

impl Default for StoreDir {
    fn default() -> Self {
        StoreDir(DEFAULT_STORE_DIR.to_string())
    }
}

impl fmt::Display for StoreDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StoreDir {
    /// A store directory; it must be absolute and must not end in `/`.
    pub fn new(dir: impl Into<String>) -> Result<Self, StorePathError> {
        let dir = dir.into();
        if !dir.starts_with('/') || dir.len() < 2 || dir.ends_with('/') {
            return Err(StorePathError::InvalidStoreDir(dir));
        }
        Ok(StoreDir(dir))
    }

    /// The directory as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The absolute path of `path` in this store directory.
    pub fn display(&self, path: &StorePath) -> String {
        let mut out =
            String::with_capacity(self.0.len() + 1 + ENCODED_DIGEST_LEN + 1 + path.name.len());
        out.push_str(&self.0);
        out.push('/');
        path.push_base_name(&mut out);
        out
    }

    /// Checks that `path` is a store path directly in this directory, as [`Self::parse_path`]
    /// does, without building a [`StorePath`]: an absolute path that parses is the display of
    /// what it parses to, since only canonical digests are accepted.
    pub fn check_path(&self, path: &str) -> Result<(), StorePathError> {
        let base = self.base_name_of(path)?;
        let bytes = base.as_bytes();
        if bytes.len() < ENCODED_DIGEST_LEN + 1 || bytes[ENCODED_DIGEST_LEN] != b'-' {
            return Err(StorePathError::Malformed(base.to_string()));
        }
        let (digest_part, rest) = base.split_at(ENCODED_DIGEST_LEN);
        nixbase32::check(digest_part.as_bytes(), DIGEST_LEN)
            .map_err(|_| StorePathError::InvalidDigest(base.to_string()))?;
        validate_name(&rest[1..])
    }

    /// Parses an absolute store path `<store dir>/<digest>-<name>` (no sub-path).
    pub fn parse_path(&self, path: &str) -> Result<StorePath, StorePathError> {
        StorePath::from_base_name(self.base_name_of(path)?)
    }

    /// The last component of `path` when `path` is directly in this store directory.
    fn base_name_of<'a>(&self, path: &'a str) -> Result<&'a str, StorePathError> {
        path.strip_prefix(self.0.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .filter(|b| !b.contains('/'))
            .ok_or_else(|| StorePathError::NotInStore {
                path: path.to_string(),
                store_dir: self.0.clone(),
            })
    }

    /// Splits a path inside the store (`<store dir>/<digest>-<name>[/sub/path]`) into the
    /// store path and the remaining sub-path (empty or starting with `/`).
    pub fn split_path<'a>(&self, path: &'a str) -> Result<(StorePath, &'a str), StorePathError> {
        let not_in_store = || StorePathError::NotInStore {
            path: path.to_string(),
            store_dir: self.0.clone(),
        };
        let rest = path
            .strip_prefix(self.0.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(not_in_store)?;
        let (base, sub) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        Ok((StorePath::from_base_name(base)?, sub))
    }

    /// Nix's `makeStorePath`: the store path whose digest is the compressed sha256 of
    /// `<ty>:sha256:<base16 inner_hash>:<store dir>:<name>`.
    ///
    /// Nix always prints the inner hash with its own algorithm name; callers pass sha256
    /// hashes in every scheme Nix uses.
    pub fn make_store_path(
        &self,
        ty: &str,
        inner_hash: &NixHash,
        name: &str,
    ) -> Result<StorePath, StorePathError> {
        validate_name(name)?;
        let fingerprint = format!(
            "{}:{}:{}:{}",
            ty,
            inner_hash.to_prefixed(HashEncoding::Base16),
            self.0,
            name
        );
        Ok(self.store_path_of_fingerprint(&fingerprint, name))
    }

    /// The store path named `name` (already validated) for a fingerprint.
    fn store_path_of_fingerprint(&self, fingerprint: &str, name: &str) -> StorePath {
        let digest = compress_hash::<DIGEST_LEN>(NixHash::sha256(fingerprint.as_bytes()).digest());
        StorePath {
            digest,
            name: name.to_string(),
        }
    }

    /// `<kind>:<ref1>:<ref2>...[:self]` with references as sorted absolute paths.
    fn make_type<'a>(
        &self,
        kind: &str,
        references: impl IntoIterator<Item = &'a StorePath>,
        has_self: bool,
    ) -> String {
        let refs: BTreeSet<String> = references.into_iter().map(|r| self.display(r)).collect();
        let mut ty = kind.to_string();
        for r in refs {
            ty.push(':');
            ty.push_str(&r);
        }
        if has_self {
            ty.push_str(":self");
        }
        ty
    }

    /// The path of a text file with the given sha256 `content_hash` and references
    /// (`text:<refs...>`), as used for `.drv` files.
    pub fn make_text_path_from_hash<'a>(
        &self,
        name: &str,
        content_hash: &NixHash,
        references: impl IntoIterator<Item = &'a StorePath>,
    ) -> Result<StorePath, StorePathError> {
        if content_hash.algo() != HashAlgo::Sha256 {
            return Err(StorePathError::TextHashNotSha256(content_hash.algo()));
        }
        let ty = self.make_type("text", references, false);
        self.make_store_path(&ty, content_hash, name)
    }

    /// [`Self::make_text_path`] for references given as absolute paths (checked as
    /// [`Self::parse_path`] checks them), in any order and possibly repeated, as a `.drv`
    /// file's input sources and input derivations are: they need not be parsed and printed
    /// again.
    pub fn make_text_path_of_paths(
        &self,
        name: &str,
        contents: &[u8],
        references: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<StorePath, StorePathError> {
        validate_name(name)?;
        let mut refs: Vec<_> = references.into_iter().collect();
        for r in &refs {
            self.check_path(r.as_ref())?;
        }
        refs.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
        refs.dedup_by(|a, b| a.as_ref() == b.as_ref());
        let content_hash = NixHash::sha256(contents);
        let mut fingerprint = String::with_capacity(
            200 + name.len() + refs.iter().map(|r| r.as_ref().len() + 1).sum::<usize>(),
        );
        fingerprint.push_str("text");
        for r in &refs {
            fingerprint.push(':');
            fingerprint.push_str(r.as_ref());
        }
        fingerprint.push(':');
        fingerprint.push_str(&content_hash.to_prefixed(HashEncoding::Base16));
        fingerprint.push(':');
        fingerprint.push_str(&self.0);
        fingerprint.push(':');
        fingerprint.push_str(name);
        Ok(self.store_path_of_fingerprint(&fingerprint, name))
    }

    /// The path `builtins.toFile name contents` produces (a text path with references).
    pub fn make_text_path<'a>(
        &self,
        name: &str,
        contents: &[u8],
        references: impl IntoIterator<Item = &'a StorePath>,
    ) -> Result<StorePath, StorePathError> {
        self.make_text_path_from_hash(name, &NixHash::sha256(contents), references)
    }

    /// The path of a source added to the store by NAR hash (`nix-store --add`, path
    /// literals, `builtins.path` with the default recursive sha256), type `source`.
    pub fn make_source_path<'a>(
        &self,
        name: &str,
        nar_sha256: &NixHash,
        references: impl IntoIterator<Item = &'a StorePath>,
        has_self_reference: bool,
    ) -> Result<StorePath, StorePathError> {
        let ty = self.make_type("source", references, has_self_reference);
        self.make_store_path(&ty, nar_sha256, name)
    }

    /// The path of fixed-output content. A recursive sha256 is a `source` path (with
    /// references allowed); anything else is `output:out` with the inner hash
    /// `sha256("fixed:out:<r:>algo:<base16>:")` and must have no references.
    pub fn make_fixed_output_path<'a>(
        &self,
        name: &str,
        method: FileIngestionMethod,
        hash: &NixHash,
        references: impl IntoIterator<Item = &'a StorePath>,
        has_self_reference: bool,
    ) -> Result<StorePath, StorePathError> {
        if method == FileIngestionMethod::Recursive && hash.algo() == HashAlgo::Sha256 {
            return self.make_source_path(name, hash, references, has_self_reference);
        }
        if references.into_iter().next().is_some() || has_self_reference {
            return Err(StorePathError::FixedOutputWithReferences(name.to_string()));
        }
        let inner = format!(
            "fixed:out:{}{}:",
            if method == FileIngestionMethod::Recursive {
                "r:"
            } else {
                ""
            },
            hash.to_prefixed(HashEncoding::Base16)
        );
        self.make_store_path("output:out", &NixHash::sha256(inner.as_bytes()), name)
    }

    /// The path of output `output_name` of an input-addressed derivation named `drv_name`
    /// whose (outputs-masked) modulo hash is `drv_hash`: type `output:<output_name>`, name
    /// `drv_name` for `out` and `drv_name-<output_name>` otherwise.
    pub fn make_output_path(
        &self,
        output_name: &str,
        drv_hash: &NixHash,
        drv_name: &str,
    ) -> Result<StorePath, StorePathError> {
        let name = output_path_name(drv_name, output_name);
        self.make_store_path(&format!("output:{output_name}"), drv_hash, &name)
    }
}

/// The store path name of output `output_name` of a derivation named `drv_name`.
pub fn output_path_name(drv_name: &str, output_name: &str) -> String {
    if output_name == "out" {
        drv_name.to_string()
    } else {
        format!("{drv_name}-{output_name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let p = "/nix/store/miacmq2d49l5qm1xgkpr982m3rd9ax08-a";
        let sp = StorePath::from_absolute_path(p).unwrap();
        assert_eq!(sp.name(), "a");
        assert_eq!(sp.hash_part(), "miacmq2d49l5qm1xgkpr982m3rd9ax08");
        assert_eq!(sp.to_absolute_path(), p);
        let sub_path = format!("{p}/bin/x");
        let (sp2, sub) = StoreDir::default().split_path(&sub_path).unwrap();
        assert_eq!(sp2, sp);
        assert_eq!(sub, "/bin/x");
        let other = StoreDir::new("/gnu/store").unwrap();
        assert!(other.parse_path(p).is_err());
        assert!(StoreDir::new("relative").is_err());
        assert!(StoreDir::new("/x/").is_err());
    }

    #[test]
    fn parse_errors() {
        let d = StoreDir::default();
        let hash = "miacmq2d49l5qm1xgkpr982m3rd9ax08";
        let e = d
            .parse_path(&format!("/nix/store/{hash}-~jiggle~"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "name '~jiggle~' contains illegal character '~'"
        );
        assert!(matches!(
            d.parse_path(&format!("/nix/store/{hash}-")),
            Err(StorePathError::EmptyName)
        ));
        assert!(matches!(
            d.parse_path(&format!("/nix/store/{hash}-.x")),
            Err(StorePathError::LeadingDot(_))
        ));
        assert!(matches!(
            d.parse_path(&format!("/nix/store/{hash}-{}", "a".repeat(212))),
            Err(StorePathError::NameTooLong(_))
        ));
        assert!(d
            .parse_path(&format!("/nix/store/{hash}-{}", "a".repeat(211)))
            .is_ok());
        assert!(matches!(
            d.parse_path("/nix/store/eiacmq2d49l5qm1xgkpr982m3rd9ax08-a"),
            Err(StorePathError::InvalidDigest(_))
        ));
        assert!(matches!(
            d.parse_path("/nix/store/short-a"),
            Err(StorePathError::Malformed(_))
        ));
        assert!(matches!(
            d.parse_path(&format!("/nix/store/{hash}-a/b")),
            Err(StorePathError::NotInStore { .. })
        ));
        assert!(matches!(
            d.parse_path(&format!("/tmp/{hash}-a")),
            Err(StorePathError::NotInStore { .. })
        ));
        assert!(validate_name("a-b+c.d_e?f=g1").is_ok());
        assert!(validate_name("ä").is_err());
    }

    #[test]
    fn source_path_of_file() {
        // `nix-store --add` of a file `a` containing "hi\n"; NAR sha256 from `nix-hash`.
        let nar = NixHash::parse(
            "sha256:10551daed7fa467d0b58826e7eb9a0f2af7d693de319f2ef775fffcda244b9f6",
            None,
        )
        .unwrap();
        let p = StoreDir::default()
            .make_source_path("a", &nar, [], false)
            .unwrap();
        assert_eq!(p.to_base_name(), "miacmq2d49l5qm1xgkpr982m3rd9ax08-a");
    }

    #[test]
    fn text_path_of_paths_is_text_path_of_parsed_refs() {
        let sd = StoreDir::default();
        let a = "/nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y-x.drv";
        let b = "/nix/store/s668cfx1vrqfjryf96jj8wfhg7f67dhj-x";
        let parsed = [sd.parse_path(a).unwrap(), sd.parse_path(b).unwrap()];
        let expected = sd.make_text_path("y.drv", b"text", &parsed).unwrap();
        // Any order, repeats merged.
        let got = sd
            .make_text_path_of_paths("y.drv", b"text", [b, a, b])
            .unwrap();
        assert_eq!(got, expected);
        assert_eq!(sd.display(&got), expected.to_absolute_path());
        // What parse_path rejects, this rejects.
        for bad in [
            "/nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2e-x",
            "/nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y",
            "/tmp/97qlv6h78lxlm9zc8849ahsbcklhsi2y-x",
            "/nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y-x/sub",
            "/nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y-x!",
        ] {
            assert!(sd.parse_path(bad).is_err(), "{bad}");
            assert_eq!(sd.check_path(bad), sd.parse_path(bad).map(|_| ()), "{bad}");
            assert!(
                sd.make_text_path_of_paths("y.drv", b"", [bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn fixed_output_rejects_refs() {
        let d = StoreDir::default();
        let r = StorePath::from_base_name("miacmq2d49l5qm1xgkpr982m3rd9ax08-a").unwrap();
        let h = NixHash::sha256(b"x");
        assert!(d
            .make_fixed_output_path("x", FileIngestionMethod::Flat, &h, [&r], false)
            .is_err());
        assert!(d
            .make_fixed_output_path("x", FileIngestionMethod::Recursive, &h, [&r], false)
            .is_ok());
        assert!(d
            .make_text_path_from_hash("x", &NixHash::hash_bytes(HashAlgo::Sha1, b""), [])
            .is_err());
    }
}
