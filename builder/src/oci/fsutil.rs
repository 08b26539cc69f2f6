//! Small file system helpers shared by the bundle, the input cache and the cleanup.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Removes `path` and everything below it, first making directories writable and
/// searchable (builds and the input cache leave read-only directories behind). A missing
/// `path` is not an error.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return fs::remove_file(path);
    }
    // Open every directory up (explicit stack: trees may be deep), then remove.
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    fs::remove_dir_all(path)
}

/// Sets the modification and access times of `path` (not following a symlink) to `secs`
/// after the epoch, as Nix's store does (1).
pub fn set_mtime(path: &Path, secs: i64) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let t = libc::timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: `c` is a valid C string and `times` points to two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates directory `path` with exactly `mode` (not masked by the umask).
pub fn mkdir_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::create_dir(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Creates `path` and its missing parents, each with exactly `mode`.
pub fn mkdirs_mode(path: &Path, mode: u32) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        mkdirs_mode(parent, mode)?;
    }
    match mkdir_mode(path, mode) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_tree_handles_read_only_directories() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        mkdirs_mode(&a.join("b/c"), 0o755).unwrap();
        fs::write(a.join("b/c/f"), b"x").unwrap();
        for d in ["a/b/c", "a/b", "a"] {
            fs::set_permissions(t.path().join(d), fs::Permissions::from_mode(0o555)).unwrap();
        }
        remove_tree(&a).unwrap();
        assert!(!a.exists());
        remove_tree(&a).unwrap();
    }

    #[test]
    fn mtime_is_set_on_symlinks_themselves() {
        let t = tempfile::tempdir().unwrap();
        let l = t.path().join("l");
        std::os::unix::fs::symlink("/nonexistent", &l).unwrap();
        set_mtime(&l, 1).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::symlink_metadata(&l).unwrap().mtime(), 1);
    }
}
