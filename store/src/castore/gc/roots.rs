//! GC roots of a local store, kept in `DIR/gcroots/` as Nix keeps them in
//! `/nix/var/nix/gcroots/`:
//!
//! - **indirect roots** (`auto/<hash of the link's path>`): a symlink to a link elsewhere
//!   (a `result` link of `tvix build`) that in turn points into the store. The root lives as
//!   long as the link does and points into the store; once the link is gone or points
//!   elsewhere the root is dead, ignored, and removed by the next collection;
//! - **direct roots**: any other symlink under `gcroots/` (outside `auto/` and `temp/`)
//!   that leads into the store;
//! - **temporary roots** (`temp/<pid>-<time>`): a file per process listing store paths the
//!   process holds, locked by it while it lives ([`TempRoots`]). A file whose lock can be
//!   taken belongs to a dead process: it is ignored and removed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::lock::{flock, open_lock_file, GcLock};
use crate::castore::StoreError;
use crate::store_path::{StoreDir, StorePath};

/// Symlinks followed from a root before giving up (the kernel's limit).
const MAX_SYMLINKS: usize = 40;

fn path_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Path {
        path: path.to_path_buf(),
        source,
    }
}

/// The GC roots of the local store in a directory.
#[derive(Clone, Debug)]
pub struct GcRoots {
    /// The store's directory (holding `gc.lock`).
    store: PathBuf,
    /// `<store>/gcroots`.
    dir: PathBuf,
}

/// The roots found by [`GcRoots::find`].
#[derive(Debug, Default)]
pub struct FoundRoots {
    /// Each rooted store path, with what roots it (root files, or `{temp:PID}`).
    pub roots: BTreeMap<StorePath, Vec<String>>,
    /// Dead indirect roots and temporary root files of dead processes (removed unless the
    /// search was a dry run).
    pub dead: Vec<PathBuf>,
}

impl GcRoots {
    /// The roots of the local store in `store_dir` (its data directory).
    pub fn in_store_dir(store_dir: &Path) -> Self {
        GcRoots {
            store: store_dir.to_path_buf(),
            dir: store_dir.join("gcroots"),
        }
    }

    /// The roots of the store at `url`; only local stores have them (see
    /// [`crate::castore::local_store_dir`]).
    pub fn for_store_url(url: &str) -> Result<Self, StoreError> {
        match crate::castore::local_store_dir(url)? {
            Some(dir) => Ok(GcRoots::in_store_dir(&dir)),
            None => Err(StoreError::Unsupported {
                url: url.to_string(),
                what: "GC roots (only local stores keep them)",
            }),
        }
    }

    /// The `gcroots` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Registers `link` (made absolute against the current directory) as an indirect
    /// root: `auto/<name>` pointing to it. Returns the root's file.
    pub fn add_indirect(&self, link: &Path) -> Result<PathBuf, StoreError> {
        let link = if link.is_absolute() {
            link.to_path_buf()
        } else {
            std::env::current_dir().map_err(StoreError::Io)?.join(link)
        };
        let digest = crate::hash::NixHash::sha256(link.as_os_str().as_encoded_bytes());
        let name = crate::nixbase32::encode(&digest.compress::<20>());
        let auto = self.dir.join("auto");
        // While a collection runs it reads the roots: wait for it, so the root is either
        // seen by it or made after it.
        let _lock = GcLock::shared(&self.store)?;
        fs::create_dir_all(&auto).map_err(path_err(&auto))?;
        let root = auto.join(name);
        replace_symlink(&link, &root)?;
        Ok(root)
    }

    /// Registers a direct root `gcroots/<name>` pointing to the store path `target`
    /// (absolute, in the store directory the collector is given).
    pub fn add_direct(&self, name: &str, target: &str) -> Result<PathBuf, StoreError> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(StoreError::InvalidName {
                name: name.to_string(),
                reason: "a root name is one path component",
            });
        }
        if name == "auto" || name == "temp" {
            return Err(StoreError::InvalidName {
                name: name.to_string(),
                reason: "reserved for indirect and temporary roots",
            });
        }
        let _lock = GcLock::shared(&self.store)?;
        fs::create_dir_all(&self.dir).map_err(path_err(&self.dir))?;
        let root = self.dir.join(name);
        replace_symlink(Path::new(target), &root)?;
        Ok(root)
    }

    /// Starts this process's temporary roots.
    pub fn temp_roots(&self) -> Result<TempRoots, StoreError> {
        TempRoots::create(&self.store, &self.dir.join("temp"))
    }

    /// Every live root, and the dead ones (removed unless `dry_run`). Call it under the
    /// collector's exclusive lock: then no temporary root is being added meanwhile.
    pub fn find(&self, sd: &StoreDir, dry_run: bool) -> Result<FoundRoots, StoreError> {
        let mut found = FoundRoots::default();
        self.find_indirect(sd, &mut found)?;
        self.find_direct(sd, &self.dir, &mut found)?;
        self.find_temp(sd, &mut found)?;
        if !dry_run {
            for dead in &found.dead {
                match fs::remove_file(dead) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(path_err(dead)(e)),
                }
            }
        }
        Ok(found)
    }

    fn find_indirect(&self, sd: &StoreDir, found: &mut FoundRoots) -> Result<(), StoreError> {
        let auto = self.dir.join("auto");
        for entry in read_dir_if_exists(&auto)? {
            let Ok(link) = fs::read_link(&entry) else {
                continue;
            };
            let target = if link.is_absolute() {
                resolve_into_store(sd, &link)
            } else {
                None
            };
            match target {
                Some(p) => found
                    .roots
                    .entry(p)
                    .or_default()
                    .push(link.display().to_string()),
                None => found.dead.push(entry),
            }
        }
        Ok(())
    }

    fn find_direct(
        &self,
        sd: &StoreDir,
        dir: &Path,
        found: &mut FoundRoots,
    ) -> Result<(), StoreError> {
        for entry in read_dir_if_exists(dir)? {
            if dir == self.dir
                && (entry.file_name() == Some("auto".as_ref())
                    || entry.file_name() == Some("temp".as_ref()))
            {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(&entry) else {
                continue;
            };
            if meta.is_dir() {
                self.find_direct(sd, &entry, found)?;
            } else if meta.file_type().is_symlink() {
                if let Some(p) = resolve_into_store(sd, &entry) {
                    found
                        .roots
                        .entry(p)
                        .or_default()
                        .push(entry.display().to_string());
                }
            }
        }
        Ok(())
    }

    fn find_temp(&self, sd: &StoreDir, found: &mut FoundRoots) -> Result<(), StoreError> {
        let temp = self.dir.join("temp");
        for entry in read_dir_if_exists(&temp)? {
            let file = match File::open(&entry) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(path_err(&entry)(e)),
            };
            // The owner holds an exclusive lock while it lives.
            if flock(&file, libc::LOCK_SH | libc::LOCK_NB).map_err(path_err(&entry))? {
                found.dead.push(entry);
                continue;
            }
            let mut text = String::new();
            (&file)
                .read_to_string(&mut text)
                .map_err(path_err(&entry))?;
            let owner = entry
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for line in text.lines() {
                if let Ok(p) = sd.parse_path(line) {
                    found
                        .roots
                        .entry(p)
                        .or_default()
                        .push(format!("{{temp:{owner}}}"));
                }
            }
        }
        Ok(())
    }
}

/// The entries of `dir`, sorted; none if it does not exist.
fn read_dir_if_exists(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(path_err(dir)(e)),
    };
    let mut out = Vec::new();
    for e in rd {
        out.push(e.map_err(path_err(dir))?.path());
    }
    out.sort();
    Ok(out)
}

/// Follows symlinks from `start` until a path inside the store directory: the store path
/// it names. `None` if the chain breaks or ends outside the store.
fn resolve_into_store(sd: &StoreDir, start: &Path) -> Option<StorePath> {
    let mut current = start.to_path_buf();
    for _ in 0..MAX_SYMLINKS {
        if let Some(s) = current.to_str() {
            if let Ok((p, _)) = sd.split_path(s) {
                return Some(p);
            }
        }
        let target = fs::read_link(&current).ok()?;
        current = match current.parent() {
            Some(parent) if target.is_relative() => parent.join(target),
            _ => target,
        };
    }
    None
}

/// Makes `root` a symlink to `target`, atomically replacing what was there.
fn replace_symlink(target: &Path, root: &Path) -> Result<(), StoreError> {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = root.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(path_err(&tmp))?;
    fs::rename(&tmp, root).map_err(path_err(root))
}

/// This process's temporary roots: store paths it holds (inputs it is about to use, paths
/// it is exporting) that a collection must keep although no root reaches them. The file
/// is locked for as long as this value lives and removed when it is dropped.
#[derive(Debug)]
pub struct TempRoots {
    file: File,
    path: PathBuf,
    store: PathBuf,
}

impl TempRoots {
    fn create(store: &Path, temp_dir: &Path) -> Result<TempRoots, StoreError> {
        // Under the shared lock, so a collection never sees the file before it is locked
        // (it would take it for a dead process's).
        let _lock = GcLock::shared(store)?;
        fs::create_dir_all(temp_dir).map_err(path_err(temp_dir))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = temp_dir.join(format!("{}-{nanos}", std::process::id()));
        let file = fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(path_err(&path))?;
        flock(&file, libc::LOCK_EX).map_err(path_err(&path))?;
        Ok(TempRoots {
            file,
            path,
            store: store.to_path_buf(),
        })
    }

    /// Adds `path` (absolute, in the store directory) to the roots. Waits while a
    /// collection runs; once this returns, no collection deletes the path (if it is still
    /// valid now) until this value is dropped.
    pub fn add(&mut self, path: &str) -> Result<(), StoreError> {
        let lock = open_lock_file(&super::lock::lock_path(&self.store))?;
        flock(&lock, libc::LOCK_SH).map_err(path_err(&self.store))?;
        self.file
            .write_all(format!("{path}\n").as_bytes())
            .map_err(path_err(&self.path))
    }
}

impl Drop for TempRoots {
    fn drop(&mut self) {
        // Removed before the lock goes (with the descriptor), so a collector never takes
        // a live file for a dead one.
        let _ = fs::remove_file(&self.path);
    }
}
