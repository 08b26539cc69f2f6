//! How long builds of each name took before, for the dashboard's estimates: the median of
//! the most recent builds of the same name. [`History`] is the pure table; [`HistoryFile`]
//! is the IO edge that keeps it in `$XDG_STATE_HOME/tvix/build-times` (one
//! `NAME<TAB>MILLISECONDS` line per build, oldest first).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

/// Builds of one name remembered (the oldest are forgotten).
pub const KEPT_PER_NAME: usize = 10;

/// Past build durations by derivation name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    builds: BTreeMap<String, Vec<Duration>>,
}

impl History {
    /// Remembers a build of `name` that took `took`.
    pub fn record(&mut self, name: &str, took: Duration) {
        let list = self.builds.entry(name.to_string()).or_default();
        list.push(took);
        if list.len() > KEPT_PER_NAME {
            list.remove(0);
        }
    }

    /// The median duration of the remembered builds of `name`.
    pub fn median(&self, name: &str) -> Option<Duration> {
        let mut list = self.builds.get(name)?.clone();
        if list.is_empty() {
            return None;
        }
        list.sort();
        let mid = list.len() / 2;
        Some(if list.len() % 2 == 1 {
            list[mid]
        } else {
            (list[mid - 1] + list[mid]) / 2
        })
    }

    /// Reads the file format; lines that do not parse are skipped (a file cut short by a
    /// crash loses one entry, not the history).
    pub fn parse(text: &str) -> History {
        let mut h = History::default();
        for line in text.lines() {
            let Some((name, ms)) = line.rsplit_once('\t') else {
                continue;
            };
            if let Ok(ms) = ms.trim().parse::<u64>() {
                if !name.is_empty() {
                    h.record(name, Duration::from_millis(ms));
                }
            }
        }
        h
    }

    /// The file format.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (name, list) in &self.builds {
            for d in list {
                out.push_str(&format!("{name}\t{}\n", d.as_millis()));
            }
        }
        out
    }
}

/// Errors of the history file.
#[derive(Debug, Error)]
pub enum HistoryError {
    /// Neither `XDG_STATE_HOME` nor `HOME` is set.
    #[error("no directory for the build history (neither XDG_STATE_HOME nor HOME is set)")]
    NoDirectory,
    /// Reading or writing failed.
    #[error("build history '{path}': {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The history's file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryFile {
    path: PathBuf,
}

impl HistoryFile {
    /// The file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> HistoryFile {
        HistoryFile { path: path.into() }
    }

    /// `$XDG_STATE_HOME/tvix/build-times`, else `$HOME/.local/state/tvix/build-times`.
    pub fn default_location() -> Result<HistoryFile, HistoryError> {
        let state = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| Path::new(&h).join(".local/state"))
                .ok_or(HistoryError::NoDirectory)?,
        };
        Ok(HistoryFile::new(state.join("tvix/build-times")))
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The history (empty when the file does not exist yet).
    pub fn load(&self) -> Result<History, HistoryError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(History::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(History::default()),
            Err(source) => Err(HistoryError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Adds `builds` to the history in the file (read again first, so runs in parallel
    /// lose little) and writes it back atomically.
    pub fn add(&self, builds: &[(String, Duration)]) -> Result<(), HistoryError> {
        if builds.is_empty() {
            return Ok(());
        }
        let mut h = self.load()?;
        for (name, took) in builds {
            h.record(name, *took);
        }
        let io = |source| HistoryError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self
            .path
            .with_extension(format!("tmp-{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(h.to_text().as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn median_of_recent_builds() {
        let mut h = History::default();
        assert_eq!(h.median("a"), None);
        h.record("a", ms(30));
        h.record("a", ms(10));
        h.record("a", ms(20));
        assert_eq!(h.median("a"), Some(ms(20)));
        h.record("a", ms(40));
        assert_eq!(h.median("a"), Some(ms(25)));
        for _ in 0..KEPT_PER_NAME {
            h.record("a", ms(1000));
        }
        assert_eq!(h.median("a"), Some(ms(1000)));
    }

    #[test]
    fn text_round_trip_skips_garbage() {
        let h = History::parse("a\t100\nbroken line\nb c\t250\nx\tnot-a-number\n\t5\n");
        assert_eq!(h.median("a"), Some(ms(100)));
        assert_eq!(h.median("b c"), Some(ms(250)));
        assert_eq!(h.median("x"), None);
        assert_eq!(History::parse(&h.to_text()), h);
    }

    #[test]
    fn file_adds_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let f = HistoryFile::new(dir.path().join("tvix/build-times"));
        assert_eq!(f.load().unwrap(), History::default());
        f.add(&[("hello".into(), ms(1500))]).unwrap();
        f.add(&[("hello".into(), ms(2500))]).unwrap();
        assert_eq!(f.load().unwrap().median("hello"), Some(ms(2000)));
    }
}
