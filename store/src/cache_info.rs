//! `nix-cache-info`, the file at the root of a binary cache: the store directory its
//! paths are in, whether clients may ask it for many paths at once, and its priority
//! (lower is asked first; Nix's default is 50).

use std::fmt::Write as _;

use thiserror::Error;

/// Priority of a cache whose `nix-cache-info` gives none, as in Nix.
pub const DEFAULT_PRIORITY: u64 = 50;

/// Why a `nix-cache-info` file was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CacheInfoError {
    /// A line that is not `Key: value`.
    #[error("malformed line '{0}' in nix-cache-info")]
    MalformedLine(String),
    /// A field's value is not valid.
    #[error("invalid {field} '{value}' in nix-cache-info")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// The file has no `StoreDir`.
    #[error("nix-cache-info has no 'StoreDir' field")]
    NoStoreDir,
}

/// The fields of `nix-cache-info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheInfo {
    /// The store directory of the cache's paths (`/nix/store`).
    pub store_dir: String,
    /// Whether clients may query many paths at once.
    pub want_mass_query: bool,
    /// Lower is asked first.
    pub priority: u64,
}

impl CacheInfo {
    /// A cache of `store_dir` with Nix's defaults.
    pub fn new(store_dir: impl Into<String>) -> CacheInfo {
        CacheInfo {
            store_dir: store_dir.into(),
            want_mass_query: true,
            priority: DEFAULT_PRIORITY,
        }
    }

    /// Parses the file; unknown keys are ignored, as Nix ignores them.
    pub fn parse(text: &str) -> Result<CacheInfo, CacheInfoError> {
        let mut store_dir = None;
        let mut want_mass_query = false;
        let mut priority = DEFAULT_PRIORITY;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (key, value) = line
                .split_once(':')
                .ok_or_else(|| CacheInfoError::MalformedLine(line.to_string()))?;
            let value = value.trim();
            let invalid = |field| CacheInfoError::Invalid {
                field,
                value: value.to_string(),
            };
            match key {
                "StoreDir" => store_dir = Some(value.to_string()),
                "WantMassQuery" => {
                    want_mass_query = match value {
                        "1" | "true" => true,
                        "0" | "false" => false,
                        _ => return Err(invalid("WantMassQuery")),
                    }
                }
                "Priority" => priority = value.parse().map_err(|_| invalid("Priority"))?,
                _ => {}
            }
        }
        Ok(CacheInfo {
            store_dir: store_dir.ok_or(CacheInfoError::NoStoreDir)?,
            want_mass_query,
            priority,
        })
    }

    /// The file's text, as Nix writes it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "StoreDir: {}", self.store_dir);
        let _ = writeln!(out, "WantMassQuery: {}", u8::from(self.want_mass_query));
        let _ = writeln!(out, "Priority: {}", self.priority);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_written_back() {
        let info =
            CacheInfo::parse("StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n").unwrap();
        assert_eq!(info.store_dir, "/nix/store");
        assert!(info.want_mass_query);
        assert_eq!(info.priority, 40);
        assert_eq!(CacheInfo::parse(&info.to_text()).unwrap(), info);
        let defaults = CacheInfo::parse("StoreDir: /s\nOther: x\n").unwrap();
        assert_eq!(defaults.priority, DEFAULT_PRIORITY);
        assert!(!defaults.want_mass_query);
    }

    #[test]
    fn bad_files_are_refused() {
        assert_eq!(
            CacheInfo::parse("Priority: 1\n").unwrap_err(),
            CacheInfoError::NoStoreDir
        );
        assert!(matches!(
            CacheInfo::parse("StoreDir: /s\nPriority: high\n"),
            Err(CacheInfoError::Invalid {
                field: "Priority",
                ..
            })
        ));
        assert!(matches!(
            CacheInfo::parse("garbage"),
            Err(CacheInfoError::MalformedLine(_))
        ));
    }
}
