//! Input materialisation: castore nodes written out once to a cache directory on the host,
//! from where builds bind-mount them read-only.
//!
//! Each entry is named after the input's base name and its root digest, so one entry
//! serves every build that uses that input. Entries are written under a temporary name and
//! renamed into place, so a crash or a concurrent build never sees half an entry. Files are
//! 0444 (0555 when executable), directories 0555, times 1, as in Nix's store.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;
use tvix_store::castore::{BlobService, DirectoryService, Node, StoreError};

use super::fsutil;

/// Why an input could not be materialised.
#[derive(Debug, Error)]
pub enum MaterialiseError {
    /// The store failed or lacks part of the input.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the cache failed.
    #[error("materialising input '{input}' at {}: {source}", path.display())]
    Io {
        /// The input's path in the sandbox.
        input: String,
        /// The host path being written.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A blob or directory the input refers to is not in the store.
    #[error("input '{input}': {what} is not in the store")]
    Missing {
        /// The input's path in the sandbox.
        input: String,
        /// The missing object.
        what: String,
    },
}

/// The cache of materialised inputs.
pub struct InputCache {
    dir: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl InputCache {
    /// A cache in `dir` (created if missing).
    pub fn new(dir: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        Ok(InputCache { dir })
    }

    /// The host path holding `node` (a file or directory; symlinks are not cached: the
    /// caller creates them) for the input at sandbox path `input`, writing it first if the
    /// cache lacks it.
    pub fn materialise<S>(
        &self,
        store: &S,
        input: &str,
        node: &Node,
    ) -> Result<PathBuf, MaterialiseError>
    where
        S: BlobService + DirectoryService + ?Sized,
    {
        let base = input.rsplit('/').next().unwrap_or(input);
        let key = match node {
            Node::Directory { digest, .. } => format!("{base}.d{}", digest.to_hex()),
            Node::File {
                digest, executable, ..
            } => format!(
                "{base}.{}{}",
                if *executable { 'x' } else { 'f' },
                digest.to_hex()
            ),
            Node::Symlink { .. } => {
                return Err(MaterialiseError::Io {
                    input: input.to_string(),
                    path: self.dir.clone(),
                    source: io::Error::new(io::ErrorKind::InvalidInput, "symlinks are not cached"),
                })
            }
        };
        let dest = self.dir.join(key);
        if fs::symlink_metadata(&dest).is_ok() {
            return Ok(dest);
        }
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let io_err = |path: &Path, source: io::Error| MaterialiseError::Io {
            input: input.to_string(),
            path: path.to_path_buf(),
            source,
        };
        let written = write_node(store, input, node, &tmp);
        if let Err(e) = written {
            let _ = fsutil::remove_tree(&tmp);
            return Err(e);
        }
        match fs::rename(&tmp, &dest) {
            Ok(()) => Ok(dest),
            // Another build wrote the same entry first: use theirs.
            Err(_) if fs::symlink_metadata(&dest).is_ok() => {
                fsutil::remove_tree(&tmp).map_err(|e| io_err(&tmp, e))?;
                Ok(dest)
            }
            Err(e) => {
                let _ = fsutil::remove_tree(&tmp);
                Err(io_err(&dest, e))
            }
        }
    }
}

/// Writes `node` at `path` (which must not exist).
fn write_node<S>(store: &S, input: &str, node: &Node, path: &Path) -> Result<(), MaterialiseError>
where
    S: BlobService + DirectoryService + ?Sized,
{
    let io_err = |path: &Path, source: io::Error| MaterialiseError::Io {
        input: input.to_string(),
        path: path.to_path_buf(),
        source,
    };
    // Directories are finished (made read-only, dated) after their contents, so in the
    // reverse of the order they were created.
    let mut created: Vec<PathBuf> = Vec::new();
    let mut todo: Vec<(PathBuf, Node)> = vec![(path.to_path_buf(), node.clone())];
    while let Some((p, n)) = todo.pop() {
        match n {
            Node::Directory { digest, .. } => {
                let dir =
                    store
                        .get_directory(&digest)?
                        .ok_or_else(|| MaterialiseError::Missing {
                            input: input.to_string(),
                            what: format!("directory {}", digest.to_hex()),
                        })?;
                fs::create_dir(&p).map_err(|e| io_err(&p, e))?;
                for (name, child) in dir.entries() {
                    todo.push((p.join(std::ffi::OsStr::from_bytes(name)), child.clone()));
                }
                created.push(p);
            }
            Node::File {
                digest, executable, ..
            } => {
                let mut blob =
                    store
                        .open_blob(&digest)?
                        .ok_or_else(|| MaterialiseError::Missing {
                            input: input.to_string(),
                            what: format!("blob {}", digest.to_hex()),
                        })?;
                let mut f = fs::File::create(&p).map_err(|e| io_err(&p, e))?;
                io::copy(&mut blob, &mut f).map_err(|e| io_err(&p, e))?;
                drop(f);
                let mode = if executable { 0o555 } else { 0o444 };
                fs::set_permissions(&p, fs::Permissions::from_mode(mode))
                    .map_err(|e| io_err(&p, e))?;
                fsutil::set_mtime(&p, 1).map_err(|e| io_err(&p, e))?;
            }
            Node::Symlink { target } => {
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &p)
                    .map_err(|e| io_err(&p, e))?;
                fsutil::set_mtime(&p, 1).map_err(|e| io_err(&p, e))?;
            }
        }
    }
    for d in created.iter().rev() {
        fs::set_permissions(d, fs::Permissions::from_mode(0o555)).map_err(|e| io_err(d, e))?;
        fsutil::set_mtime(d, 1).map_err(|e| io_err(d, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use tvix_store::castore::nar::ingest_path;

    #[test]
    fn writes_an_input_once_with_store_modes() {
        let store = tvix_store::open("memory://").unwrap();
        let src = tempfile::tempdir().unwrap();
        let root = src.path().join("in");
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::write(root.join("bin/prog"), b"#!x").unwrap();
        fs::set_permissions(root.join("bin/prog"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("data"), b"d").unwrap();
        std::os::unix::fs::symlink("bin/prog", root.join("link")).unwrap();
        let (node, hash, _) = ingest_path(&*store, &root).unwrap();

        let cache_dir = tempfile::tempdir().unwrap();
        let cache = InputCache::new(cache_dir.path().join("c")).unwrap();
        let p = cache
            .materialise(&*store, "/nix/store/x-in", &node)
            .unwrap();
        let m = |rel: &str| fs::symlink_metadata(p.join(rel)).unwrap();
        assert_eq!(m("").mode() & 0o7777, 0o555);
        assert_eq!(m("bin").mode() & 0o7777, 0o555);
        assert_eq!(m("bin/prog").mode() & 0o7777, 0o555);
        assert_eq!(m("data").mode() & 0o7777, 0o444);
        assert_eq!(m("data").mtime(), 1);
        assert_eq!(m("").mtime(), 1);
        assert_eq!(
            fs::read_link(p.join("link")).unwrap(),
            Path::new("bin/prog")
        );
        let (_, again, _) = tvix_store::nar::nar_hash_of_path(&p)
            .map(|(h, s)| ((), h, s))
            .unwrap();
        assert_eq!(again, hash);
        // A second request is served from the cache.
        let q = cache
            .materialise(&*store, "/nix/store/x-in", &node)
            .unwrap();
        assert_eq!(p, q);
        assert_eq!(fs::read_dir(cache_dir.path().join("c")).unwrap().count(), 1);
    }
}
