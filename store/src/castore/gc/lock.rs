//! The store-wide garbage collector lock, `DIR/gc.lock`, and the `flock` calls under it.
//!
//! Whoever writes to a local store (or holds on to paths it read, see
//! [`super::roots::TempRoots`]) takes a shared lock; the garbage collector takes an
//! exclusive one for its whole run. So a collection never overlaps with a process that is
//! adding data not yet reachable from any root, and a process that wants to write while a
//! collection runs waits for it to end.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::castore::StoreError;

/// The lock file of the store in `dir`.
pub(crate) fn lock_path(dir: &Path) -> PathBuf {
    dir.join("gc.lock")
}

/// Opens (creating) a lock file.
pub(crate) fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| StoreError::Path {
            path: path.to_path_buf(),
            source,
        })
}

/// `flock(2)`, retried when a signal interrupts it. With `LOCK_NB`, returns `Ok(false)`
/// when the lock is held elsewhere.
pub(crate) fn flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: `file` is an open descriptor for the duration of the call.
        let r = unsafe { libc::flock(file.as_raw_fd(), op) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if op & libc::LOCK_NB != 0 => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// A held lock on `gc.lock`; released when dropped (closing the descriptor).
#[derive(Debug)]
pub(crate) struct GcLock {
    _file: File,
}

impl GcLock {
    /// Takes the shared lock of writers, waiting while a collection runs.
    pub(crate) fn shared(dir: &Path) -> Result<GcLock, StoreError> {
        let path = lock_path(dir);
        let file = open_lock_file(&path)?;
        flock(&file, libc::LOCK_SH).map_err(|source| StoreError::Path { path, source })?;
        Ok(GcLock { _file: file })
    }

    /// Takes the exclusive lock of the collector. `on_wait` is called once if the lock is
    /// held by others (so the caller can say what it is waiting for) before waiting.
    pub(crate) fn exclusive(dir: &Path, on_wait: &dyn Fn()) -> Result<GcLock, StoreError> {
        let path = lock_path(dir);
        let file = open_lock_file(&path)?;
        let err = |source| StoreError::Path {
            path: path.clone(),
            source,
        };
        if !flock(&file, libc::LOCK_EX | libc::LOCK_NB).map_err(err)? {
            on_wait();
            flock(&file, libc::LOCK_EX).map_err(err)?;
        }
        Ok(GcLock { _file: file })
    }
}
