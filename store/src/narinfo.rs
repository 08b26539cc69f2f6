//! `.narinfo` files, the metadata of a store path in a binary cache: parsed into a typed
//! [`NarInfo`] with Nix's rules (a missing `Compression` is bzip2; `StorePath`, `URL`,
//! `NarHash` and a `NarSize` above 0 are required), written back in the order Nix writes
//! them, the [`fingerprint`] that signatures sign, and the check that a content-addressed
//! path really is the path its content address gives.

use std::fmt::Write as _;

use thiserror::Error;

use crate::hash::HashEncoding;
use crate::{FileIngestionMethod, HashAlgo, NixHash, StoreDir, StorePath};

/// Why a `.narinfo` file was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NarInfoError {
    /// A line that is not `Key: value`.
    #[error("malformed line '{0}' in the narinfo")]
    MalformedLine(String),
    /// A required field is missing.
    #[error("the narinfo has no '{0}' field")]
    Missing(&'static str),
    /// A field's value is not valid.
    #[error("invalid {field} '{value}' in the narinfo: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
    },
}

/// Why a content address does not fit its path.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid content address '{ca}' of '{path}': {reason}")]
pub struct ContentAddressError {
    /// The content address.
    pub ca: String,
    /// The store path.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// The fields of a `.narinfo` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NarInfo {
    /// The store path described.
    pub store_path: StorePath,
    /// Where the (compressed) NAR is, relative to the cache.
    pub url: String,
    /// How the NAR file is compressed (`none`, `xz`, `bzip2`, `zstd`; `bzip2` when the file
    /// does not say, as in Nix).
    pub compression: String,
    /// The hash of the compressed file, if given.
    pub file_hash: Option<NixHash>,
    /// The size of the compressed file, if given.
    pub file_size: Option<u64>,
    /// The hash of the NAR.
    pub nar_hash: NixHash,
    /// The NAR's size in bytes.
    pub nar_size: u64,
    /// The store paths it refers to.
    pub references: Vec<StorePath>,
    /// The derivation that built it, if known.
    pub deriver: Option<StorePath>,
    /// Signatures (`key-name:base64`).
    pub signatures: Vec<String>,
    /// The content address (`fixed:[r:]algo:hash` or `text:sha256:hash`), if it has one.
    pub ca: Option<String>,
    /// The system the path was built for, if given (`System:`; informational).
    pub system: Option<String>,
}

/// The text a signature of a store path signs:
/// `1;<store path>;<NAR hash as sha256:nix32>;<NAR size>;<references, full paths, sorted,
/// comma-separated>`.
pub fn fingerprint<'a>(
    dir: &StoreDir,
    path: &StorePath,
    nar_hash: &NixHash,
    nar_size: u64,
    references: impl IntoIterator<Item = &'a StorePath>,
) -> String {
    let mut refs: Vec<String> = references.into_iter().map(|r| dir.display(r)).collect();
    refs.sort();
    format!(
        "1;{};{};{nar_size};{}",
        dir.display(path),
        nar_hash.to_prefixed(HashEncoding::Nix32),
        refs.join(",")
    )
}

fn invalid(field: &'static str, value: &str, reason: impl ToString) -> NarInfoError {
    NarInfoError::Invalid {
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// A NAR that did not hash to, or was not as long as, what its narinfo says; hashes in
/// Nix's `sha256:<nix32>` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NarMismatch {
    /// The narinfo's `NarHash`.
    pub expected: String,
    /// The narinfo's `NarSize`.
    pub expected_size: u64,
    /// The hash of the NAR read.
    pub actual: String,
    /// The size of the NAR read.
    pub actual_size: u64,
}

impl NarInfo {
    /// The path info to register for this narinfo's path, once its NAR was ingested as
    /// `node` with sha256 `hash` and `size` bytes; refused unless those are the narinfo's
    /// `NarHash` and `NarSize`. Substitution and uploads both register this way.
    #[cfg(feature = "castore")]
    pub fn ingested(
        &self,
        node: crate::castore::Node,
        hash: &NixHash,
        size: u64,
    ) -> Result<crate::pathinfo::PathInfo, NarMismatch> {
        let matches = self.nar_hash.algo() == HashAlgo::Sha256
            && hash.algo() == HashAlgo::Sha256
            && self.nar_hash.digest() == hash.digest()
            && size == self.nar_size;
        if !matches {
            return Err(NarMismatch {
                expected: self.nar_hash.to_prefixed(HashEncoding::Nix32),
                expected_size: self.nar_size,
                actual: hash.to_prefixed(HashEncoding::Nix32),
                actual_size: size,
            });
        }
        let mut nar_sha256 = [0u8; 32];
        nar_sha256.copy_from_slice(hash.digest());
        Ok(crate::pathinfo::PathInfo {
            store_path: self.store_path.clone(),
            node,
            nar_sha256,
            nar_size: size,
            references: self.references.clone(),
            deriver: self.deriver.clone(),
            signatures: self.signatures.clone(),
            ca: self.ca.clone(),
        })
    }

    /// Parses a `.narinfo` file (lines of `Key: value`); store paths must be in `dir`.
    /// Unknown keys are ignored, as Nix ignores them.
    pub fn parse(text: &str, dir: &StoreDir) -> Result<NarInfo, NarInfoError> {
        let mut store_path = None;
        let mut url = None;
        let mut compression = None;
        let mut file_hash = None;
        let mut file_size = None;
        let mut nar_hash = None;
        let mut nar_size = None;
        let mut references = Vec::new();
        let mut deriver = None;
        let mut signatures = Vec::new();
        let mut ca = None;
        let mut system = None;
        let hash = |field, v: &str| NixHash::parse(v, None).map_err(|e| invalid(field, v, e));
        let size = |field, v: &str| v.parse::<u64>().map_err(|e| invalid(field, v, e));
        let base = |field, v: &str| StorePath::from_base_name(v).map_err(|e| invalid(field, v, e));
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (key, value) = line
                .split_once(": ")
                .or_else(|| line.strip_suffix(':').map(|k| (k, "")))
                .ok_or_else(|| NarInfoError::MalformedLine(line.to_string()))?;
            match key {
                "StorePath" => {
                    store_path = Some(
                        dir.parse_path(value)
                            .map_err(|e| invalid("StorePath", value, e))?,
                    )
                }
                "URL" => url = Some(value.to_string()),
                "Compression" => compression = Some(value.to_string()),
                "FileHash" => file_hash = Some(hash("FileHash", value)?),
                "FileSize" => file_size = Some(size("FileSize", value)?),
                "NarHash" => nar_hash = Some(hash("NarHash", value)?),
                "NarSize" => nar_size = Some(size("NarSize", value)?),
                "References" => {
                    references = value
                        .split_whitespace()
                        .map(|r| base("References", r))
                        .collect::<Result<_, _>>()?
                }
                "Deriver" if !value.is_empty() && value != "unknown-deriver" => {
                    deriver = Some(base("Deriver", value)?)
                }
                "Sig" => signatures.push(value.to_string()),
                "CA" if !value.is_empty() => ca = Some(value.to_string()),
                "System" if !value.is_empty() => system = Some(value.to_string()),
                _ => {}
            }
        }
        Ok(NarInfo {
            store_path: store_path.ok_or(NarInfoError::Missing("StorePath"))?,
            url: url
                .filter(|u| !u.is_empty())
                .ok_or(NarInfoError::Missing("URL"))?,
            file_hash,
            file_size,
            nar_hash: nar_hash.ok_or(NarInfoError::Missing("NarHash"))?,
            nar_size: match nar_size {
                None => return Err(NarInfoError::Missing("NarSize")),
                Some(0) => return Err(invalid("NarSize", "0", "a NAR is never empty")),
                Some(n) => n,
            },
            compression: match compression {
                Some(c) if !c.is_empty() => c,
                _ => "bzip2".to_string(),
            },
            references,
            deriver,
            signatures,
            ca,
            system,
        })
    }

    /// The file's text, fields in the order Nix writes them.
    pub fn to_text(&self, dir: &StoreDir) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "StorePath: {}", dir.display(&self.store_path));
        let _ = writeln!(out, "URL: {}", self.url);
        let _ = writeln!(out, "Compression: {}", self.compression);
        if let Some(h) = &self.file_hash {
            let _ = writeln!(out, "FileHash: {}", h.to_prefixed(HashEncoding::Nix32));
        }
        if let Some(s) = self.file_size {
            let _ = writeln!(out, "FileSize: {s}");
        }
        let _ = writeln!(
            out,
            "NarHash: {}",
            self.nar_hash.to_prefixed(HashEncoding::Nix32)
        );
        let _ = writeln!(out, "NarSize: {}", self.nar_size);
        let refs: Vec<String> = self.references.iter().map(|r| r.to_base_name()).collect();
        let _ = writeln!(out, "References: {}", refs.join(" "));
        if let Some(d) = &self.deriver {
            let _ = writeln!(out, "Deriver: {}", d.to_base_name());
        }
        if let Some(system) = &self.system {
            let _ = writeln!(out, "System: {system}");
        }
        for s in &self.signatures {
            let _ = writeln!(out, "Sig: {s}");
        }
        if let Some(ca) = &self.ca {
            let _ = writeln!(out, "CA: {ca}");
        }
        out
    }

    /// The fingerprint its signatures sign ([`fingerprint`]).
    pub fn fingerprint(&self, dir: &StoreDir) -> String {
        fingerprint(
            dir,
            &self.store_path,
            &self.nar_hash,
            self.nar_size,
            &self.references,
        )
    }

    /// Checks that a content-addressed path is the path its content address gives (with
    /// its references; a recursive sha256 address must also be the NAR hash), so that a
    /// cache cannot pass off other contents under the path. Paths without one pass.
    pub fn check_content_address(&self, dir: &StoreDir) -> Result<(), ContentAddressError> {
        let Some(ca) = &self.ca else {
            return Ok(());
        };
        let path = &self.store_path;
        let bad = |reason: String| ContentAddressError {
            ca: ca.clone(),
            path: dir.display(path),
            reason,
        };
        let self_ref = self.references.contains(path);
        let others: Vec<&StorePath> = self.references.iter().filter(|r| *r != path).collect();
        let computed = if let Some(h) = ca.strip_prefix("text:") {
            let h = NixHash::parse(h, None).map_err(|e| bad(e.to_string()))?;
            dir.make_text_path_from_hash(path.name(), &h, others)
        } else if let Some(rest) = ca.strip_prefix("fixed:") {
            let (method, h) = match rest.strip_prefix("r:") {
                Some(h) => (FileIngestionMethod::Recursive, h),
                None => (FileIngestionMethod::Flat, rest),
            };
            let h = NixHash::parse(h, None).map_err(|e| bad(e.to_string()))?;
            if method == FileIngestionMethod::Recursive
                && h.algo() == HashAlgo::Sha256
                && self.nar_hash.digest() != h.digest()
            {
                return Err(bad("it does not match the NAR hash".into()));
            }
            dir.make_fixed_output_path(path.name(), method, &h, others, self_ref)
        } else {
            return Err(bad("unknown kind".into()));
        }
        .map_err(|e| bad(e.to_string()))?;
        if computed != *path {
            return Err(bad(format!("it gives '{}'", dir.display(&computed))));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "StorePath: /nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt\n\
                        URL: nar/17gd.nar.xz\nCompression: xz\nFileSize: 128\n\
                        NarHash: sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw\n\
                        NarSize: 120\nReferences: \n\
                        CA: fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw\n";

    #[test]
    fn fields_are_read_and_written_back() {
        let dir = StoreDir::default();
        let i = NarInfo::parse(TEXT, &dir).unwrap();
        assert_eq!(i.url, "nar/17gd.nar.xz");
        assert_eq!(i.compression, "xz");
        assert_eq!(i.file_size, Some(128));
        assert_eq!(i.nar_size, 120);
        assert!(i.references.is_empty());
        assert!(i.ca.as_deref().unwrap().starts_with("fixed:r:sha256:"));
        assert_eq!(NarInfo::parse(&i.to_text(&dir), &dir).unwrap(), i);
    }

    #[test]
    fn bad_files_are_refused() {
        let dir = StoreDir::default();
        let e = NarInfo::parse("StorePath: /nix/store/x\n", &dir).unwrap_err();
        assert!(
            matches!(
                e,
                NarInfoError::Invalid {
                    field: "StorePath",
                    ..
                }
            ),
            "{e}"
        );
        let only_path = "StorePath: /nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt\n";
        assert_eq!(
            NarInfo::parse(only_path, &dir).unwrap_err(),
            NarInfoError::Missing("URL")
        );
        assert!(matches!(
            NarInfo::parse("garbage", &dir),
            Err(NarInfoError::MalformedLine(_))
        ));
        let bad_size = TEXT.replace("NarSize: 120", "NarSize: many");
        assert!(NarInfo::parse(&bad_size, &dir).is_err());
        let empty = TEXT.replace("NarSize: 120", "NarSize: 0");
        assert!(matches!(
            NarInfo::parse(&empty, &dir),
            Err(NarInfoError::Invalid {
                field: "NarSize",
                ..
            })
        ));
    }

    #[test]
    fn missing_compression_is_bzip2_and_system_is_kept() {
        let dir = StoreDir::default();
        let text = TEXT.replace("Compression: xz\n", "") + "System: x86_64-linux\n";
        let i = NarInfo::parse(&text, &dir).unwrap();
        assert_eq!(i.compression, "bzip2");
        assert_eq!(i.system.as_deref(), Some("x86_64-linux"));
        assert_eq!(NarInfo::parse(&i.to_text(&dir), &dir).unwrap(), i);
    }

    #[test]
    fn fingerprints_name_full_paths_sorted() {
        let dir = StoreDir::default();
        let mut i = NarInfo::parse(TEXT, &dir).unwrap();
        let b = StorePath::from_base_name("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b").unwrap();
        let a = StorePath::from_base_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a").unwrap();
        i.references = vec![b, a];
        assert_eq!(
            i.fingerprint(&dir),
            "1;/nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt;\
             sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw;120;\
             /nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a,/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b"
        );
    }

    #[test]
    fn content_addresses_must_give_the_path() {
        let dir = StoreDir::default();
        let mut i = NarInfo::parse(TEXT, &dir).unwrap();
        let h = i.nar_hash.clone();
        i.store_path = dir
            .make_fixed_output_path("a.txt", FileIngestionMethod::Recursive, &h, [], false)
            .unwrap();
        i.ca = Some(format!("fixed:r:{}", h.to_prefixed(HashEncoding::Nix32)));
        assert_eq!(i.check_content_address(&dir), Ok(()));
        // The file's own path is the one this address gives; another path is not.
        assert_eq!(
            i.store_path.to_base_name(),
            "z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt"
        );
        let good = i.store_path.clone();
        i.store_path = StorePath::from_base_name("00000000000000000000000000000000-a.txt").unwrap();
        let e = i.check_content_address(&dir).unwrap_err();
        assert!(e.reason.starts_with("it gives '"), "{e}");
        // The address and the NAR hash disagree.
        i.store_path = good;
        i.nar_hash = NixHash::sha256(b"other");
        let e = i.check_content_address(&dir).unwrap_err();
        assert_eq!(e.reason, "it does not match the NAR hash");
        i.ca = Some("weird:x".to_string());
        assert_eq!(
            i.check_content_address(&dir).unwrap_err().reason,
            "unknown kind"
        );
        i.ca = None;
        assert!(i.check_content_address(&dir).is_ok());
    }
}
