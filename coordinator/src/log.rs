//! Build logs, kept per derivation and bzip2-compressed as Nix keeps them
//! (`<log dir>/drvs/<first 2 characters>/<rest of the .drv base name>.bz2`), in the tvix
//! store's data directory: `DIR/log` for a `local:///DIR` store, else under the default
//! local store directory.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;
use tvix_store::StorePath;

/// Errors reading or writing logs.
#[derive(Debug, Error)]
pub enum LogError {
    /// No log directory can be found (no `HOME`).
    #[error("no directory for build logs (HOME is not set)")]
    NoDirectory,
    /// No log is kept for this derivation.
    #[error("build log of '{0}' is not available")]
    NotFound(String),
    /// An I/O error on a log file.
    #[error("build log '{path}': {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Where logs are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogStore {
    dir: PathBuf,
}

impl LogStore {
    /// Logs under `dir` (its `drvs/` subdirectory).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogStore { dir: dir.into() }
    }

    /// The log directory of the store at `url`: `DIR/log` for `local:///DIR` or `/DIR`,
    /// else `log` next to the default local store.
    pub fn for_store_url(url: &str) -> Result<Self, LogError> {
        // A URL that names no local store (or a malformed one) keeps its logs next to
        // the default local store.
        let local = tvix_store::castore::local_store_dir(url).ok().flatten();
        let dir = match local {
            Some(d) => d,
            None => tvix_store::castore::default_store_dir().ok_or(LogError::NoDirectory)?,
        };
        Ok(LogStore::new(dir.join("log")))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding the log of `drv`.
    pub fn path_of(&self, drv: &StorePath) -> PathBuf {
        let base = drv.to_base_name();
        let (first, rest) = base.split_at(2);
        self.dir
            .join("drvs")
            .join(first)
            .join(format!("{rest}.bz2"))
    }

    /// Keeps `log` as the log of `drv` (replacing an older one).
    pub fn write(&self, drv: &StorePath, log: &[u8]) -> Result<PathBuf, LogError> {
        let path = self.path_of(drv);
        let io = |source| LogError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let tmp = path.with_extension("bz2.tmp");
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let mut enc = bzip2::write::BzEncoder::new(file, bzip2::Compression::best());
        enc.write_all(log).map_err(io)?;
        enc.finish().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(path)
    }

    /// A reader of the log of `drv`, decompressed as it is read; `None` if none is kept.
    pub fn open(&self, drv: &StorePath) -> std::io::Result<Option<impl Read + Send>> {
        match std::fs::File::open(self.path_of(drv)) {
            Ok(f) => Ok(Some(bzip2::read::MultiBzDecoder::new(f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The log of `drv`.
    pub fn read(&self, drv: &StorePath) -> Result<Vec<u8>, LogError> {
        let path = self.path_of(drv);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LogError::NotFound(format!("/nix/store/{drv}")))
            }
            Err(source) => return Err(LogError::Io { path, source }),
        };
        let mut out = Vec::new();
        bzip2::read::BzDecoder::new(file)
            .read_to_end(&mut out)
            .map_err(|source| LogError::Io { path, source })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogStore::for_store_url(&format!("local://{}", dir.path().display())).unwrap();
        let drv = StorePath::from_base_name("0a1hmb1d2dm3g6lrqwscf0lqjfjbzbv2-t.drv").unwrap();
        assert!(matches!(logs.read(&drv), Err(LogError::NotFound(_))));
        let path = logs.write(&drv, b"line 1\nline 2\n").unwrap();
        assert_eq!(
            path,
            dir.path()
                .join("log/drvs/0a/1hmb1d2dm3g6lrqwscf0lqjfjbzbv2-t.drv.bz2")
        );
        let raw = std::fs::read(&path).unwrap();
        assert_eq!(&raw[..3], b"BZh");
        assert_eq!(logs.read(&drv).unwrap(), b"line 1\nline 2\n");
    }

    #[test]
    fn default_location_for_other_stores() {
        let l = LogStore::for_store_url("/srv/store").unwrap();
        assert_eq!(l.dir(), Path::new("/srv/store/log"));
    }
}
