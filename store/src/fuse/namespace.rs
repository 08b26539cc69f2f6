//! Running something that sees a store at its store directory (`/nix/store`) while the
//! host's directory stays as it is for every other process: a thread of its own moves
//! into a private mount namespace, mounts the store there, and runs the work; processes
//! the work starts inherit the namespace. Used by `tvix store run` and the REPL's `:u` and
//! `:sh`, so programs that were built can run from the tvix store next to a reference
//! Nix's own `/nix/store`.
//!
//! The store either replaces the host's store directory ([`StoreView::Only`]) or is laid
//! over it with a read-only overlayfs whose upper layer is the FUSE mount
//! ([`StoreView::OverHost`]), so programs of the host's store (a NixOS user's shell) keep
//! working. Both layers are content-addressed: a path in both has the same contents.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use super::{mount, MountError, MountOptions};
use crate::castore::StoreService;

/// What the work sees at the store directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreView {
    /// The store alone: the host's store directory is hidden.
    Only,
    /// The store's paths over the host's (a read-only overlay).
    OverHost,
}

/// Runs `work` on a new thread inside a private mount namespace in which `store` is
/// mounted read-only on `store_dir` as `view` says, unmounts, and returns what `work`
/// returned.
///
/// `store_dir` must exist on the host (it stays untouched there). Needs the right to
/// create mount namespaces (root); the error says so otherwise.
pub fn with_store_mounted<T: Send>(
    store: Arc<dyn StoreService>,
    store_dir: &Path,
    opts: &MountOptions,
    view: StoreView,
    work: impl FnOnce() -> T + Send,
) -> Result<T, MountError> {
    if !store_dir.is_dir() {
        return Err(MountError::MountPoint {
            path: store_dir.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::NotFound,
                "the store directory does not exist: create it (it stays empty; the \
                 store is mounted on it only for the command)",
            ),
        });
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            private_mount_namespace().map_err(|source| MountError::Namespace { source })?;
            if view == StoreView::Only {
                let mounted = mount(store, store_dir, opts)?;
                let result = work();
                mounted.unmount()?;
                return Ok(result);
            }
            // The FUSE mount's own directory exists only while the work runs; on the host
            // it stays an empty directory, removed afterwards.
            let upper = tempfile::Builder::new()
                .prefix("tvix-store-view-")
                .tempdir()
                .map_err(|source| MountError::MountPoint {
                    path: std::env::temp_dir(),
                    source,
                })?;
            let mounted = mount(store, upper.path(), opts)?;
            overlay(upper.path(), store_dir).map_err(|source| MountError::Fuse {
                path: store_dir.to_path_buf(),
                source,
            })?;
            let result = work();
            unmount_overlay(store_dir).map_err(|source| MountError::Unmount {
                path: store_dir.to_path_buf(),
                source,
            })?;
            mounted.unmount()?;
            Ok(result)
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Moves the calling thread into a new mount namespace in which no mount propagates to
/// the parent's (systemd makes `/` a shared mount, which a new namespace inherits).
fn private_mount_namespace() -> io::Result<()> {
    // SAFETY: plain system calls with valid arguments; they affect this thread only.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Mounts a read-only overlay on `dir` with `upper` over `dir`'s own contents.
fn overlay(upper: &Path, dir: &Path) -> io::Result<()> {
    let options = format!("lowerdir={}:{}", overlay_escape(upper), overlay_escape(dir));
    let c = |s: &[u8]| {
        std::ffi::CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let (target, options) = (c(dir.as_os_str().as_bytes())?, c(options.as_bytes())?);
    // SAFETY: valid NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::mount(
            c"overlay".as_ptr(),
            target.as_ptr(),
            c"overlay".as_ptr(),
            libc::MS_RDONLY | libc::MS_NODEV | libc::MS_NOSUID,
            options.as_ptr().cast(),
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("overlaying the store on the host's: {e}"),
        ));
    }
    Ok(())
}

/// A path in overlayfs' `lowerdir` option: `:`, `,` and `\` escaped with a backslash.
fn overlay_escape(p: &Path) -> String {
    let mut out = String::new();
    for ch in p.to_string_lossy().chars() {
        if matches!(ch, ':' | ',' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Unmounts the overlay on `dir` (it must go before the FUSE mount under it).
fn unmount_overlay(dir: &Path) -> io::Result<()> {
    let target = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid NUL-terminated string.
    if unsafe { libc::umount2(target.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_paths_are_escaped() {
        assert_eq!(overlay_escape(Path::new("/nix/store")), "/nix/store");
        assert_eq!(overlay_escape(Path::new("/a:b,c\\d")), "/a\\:b\\,c\\\\d");
    }
}
