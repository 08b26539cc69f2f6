//! What the fetchers fetched, remembered across evaluations in
//! `$XDG_CACHE_HOME/tvix/fetchers/` (else `~/.cache/tvix/fetchers/`), so that the same URL
//! is not downloaded again while its result is still in the store. Each entry is a small
//! file of `name=value` lines named after the hash of its key. The cache is an optimisation:
//! when it cannot be read or written, fetching simply happens again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use tvix_eval::fetch::CacheEntry;

/// tvix's directory in the user's cache: `$XDG_CACHE_HOME/tvix`, else `~/.cache/tvix`.
pub fn tvix_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|x| !x.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|x| !x.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })
        .map(|c| c.join("tvix"))
}

/// The fetch cache directory, if one can be determined.
pub struct Cache {
    dir: Option<PathBuf>,
}

impl Cache {
    /// The cache of the current user.
    pub fn open() -> Cache {
        Cache {
            dir: tvix_cache_dir().map(|b| b.join("fetchers")),
        }
    }

    fn file(&self, key: &str) -> Option<PathBuf> {
        let name = tvix_store::NixHash::sha256(key.as_bytes()).to_nix32();
        self.dir.as_ref().map(|d| d.join(name))
    }

    /// The entry stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<CacheEntry> {
        let file = self.file(key)?;
        let text = std::fs::read_to_string(&file).ok()?;
        let modified = std::fs::metadata(&file).ok()?.modified().ok()?;
        let mut lines = text.lines();
        // The first line repeats the key, so a hash collision cannot return a wrong entry.
        if lines.next() != Some(key) {
            return None;
        }
        let fields = lines
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(CacheEntry {
            fields,
            age: SystemTime::now()
                .duration_since(modified)
                .unwrap_or_default(),
        })
    }

    /// Stores `fields` under `key` (best effort; values must not contain newlines).
    pub fn put(&self, key: &str, fields: &BTreeMap<String, String>) {
        let Some(file) = self.file(key) else { return };
        if key.contains('\n')
            || fields
                .iter()
                .any(|(k, v)| k.contains(['=', '\n']) || v.contains('\n'))
        {
            return;
        }
        let mut text = format!("{key}\n");
        for (k, v) in fields {
            text.push_str(&format!("{k}={v}\n"));
        }
        let Some(dir) = file.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        // Written whole and renamed into place, so a reader never sees half an entry.
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) {
            if std::io::Write::write_all(&mut tmp, text.as_bytes()).is_ok() {
                let _ = tmp.persist(&file);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_round_trip_and_other_keys_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache {
            dir: Some(dir.path().join("c")),
        };
        assert!(cache.get("k").is_none());
        let fields = BTreeMap::from([("path".to_string(), "/nix/store/x".to_string())]);
        cache.put("k", &fields);
        let e = cache.get("k").unwrap();
        assert_eq!(e.fields, fields);
        assert!(e.age < Duration::from_secs(60));
        assert!(cache.get("other").is_none());
    }
}
