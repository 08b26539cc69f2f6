//! The bundle of one build on the host: the root file system with only what the request
//! names, the `/dev` skeleton, the scratch directories and the store directory.
//!
//! ```text
//! <dir>/config.json   the runtime configuration (written by the caller)
//! <dir>/rootfs/       read-only root: parents of mount points, request and host files
//! <dir>/dev/          /dev: symlinks and mount points for device nodes, pts, shm
//! <dir>/scratch/N/    the Nth scratch directory (/build, /tmp, ...)
//! <dir>/store/        the store directory: mount points of the inputs, then the outputs
//! ```

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::fsutil::{mkdir_mode, mkdirs_mode};
use super::spec::Layout;
use crate::BuildRequest;

/// Why the bundle could not be laid out.
#[derive(Debug, Error)]
pub enum BundleError {
    /// A file system operation failed.
    #[error("preparing {}: {source}", path.display())]
    Io {
        /// The host path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A required `sandbox-paths` source does not exist.
    #[error("sandbox path '{0}' does not exist")]
    MissingSandboxPath(String),
}

/// How an input appears in the sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSource {
    /// Bind-mounted read-only from this host path.
    Bind(PathBuf),
    /// A symbolic link with this target.
    Symlink(Vec<u8>),
}

/// A `sandbox-paths` entry: the path in the sandbox, the host source, and whether a missing
/// source is skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxPath {
    /// The path inside the sandbox.
    pub target: String,
    /// The host path.
    pub source: PathBuf,
    /// Whether a missing source is left out (a trailing `?`).
    pub optional: bool,
}

impl SandboxPath {
    /// Parses Nix's syntax: `PATH`, or `TARGET=SOURCE`, each with an optional trailing `?`.
    pub fn parse(s: &str) -> Option<SandboxPath> {
        let (s, optional) = match s.strip_suffix('?') {
            Some(rest) => (rest, true),
            None => (s, false),
        };
        let (target, source) = s.split_once('=').unwrap_or((s, s));
        let target = target.trim_end_matches('/');
        if !target.starts_with('/') || target.split('/').any(|c| c == "..") || source.is_empty() {
            return None;
        }
        Some(SandboxPath {
            target: target.to_string(),
            source: PathBuf::from(source),
            optional,
        })
    }
}

/// What a bundle needs besides the request.
pub struct BundleParts<'a> {
    /// Each input's sandbox path and source, in the request's order.
    pub inputs: &'a [(String, InputSource)],
    /// The `sandbox-paths`.
    pub sandbox_paths: &'a [SandboxPath],
    /// Host device nodes to bind (each at its own path).
    pub devices: &'a [PathBuf],
    /// The host uid and gid the build user stands for.
    pub host_uid: u32,
    /// See `host_uid`.
    pub host_gid: u32,
    /// The host id container root is mapped to.
    pub unused_host_id: u32,
    /// See [`Layout::exec_shim`].
    pub exec_shim: Option<String>,
}

/// A laid-out bundle.
#[derive(Debug)]
pub struct Bundle {
    /// The bundle directory.
    pub dir: PathBuf,
    /// What the runtime configuration needs.
    pub layout: Layout,
    /// The host directory behind the request's working directory.
    pub work_dir: PathBuf,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Lays out the bundle of `req` in `dir` (which must not exist).
pub fn prepare(
    dir: &Path,
    req: &BuildRequest,
    parts: &BundleParts<'_>,
) -> Result<Bundle, BundleError> {
    mkdirs_mode(dir, 0o700).map_err(io_at(dir))?;
    let rootfs = dir.join("rootfs");
    let dev = dir.join("dev");
    let store = dir.join("store");
    mkdir_mode(&rootfs, 0o755).map_err(io_at(&rootfs))?;
    mkdir_mode(&dev, 0o755).map_err(io_at(&dev))?;
    mkdir_mode(&store, 0o1775).map_err(io_at(&store))?;
    for d in ["proc", "dev"] {
        let p = rootfs.join(d);
        mkdir_mode(&p, 0o555).map_err(io_at(&p))?;
    }

    let mut scratch = Vec::new();
    let mut work_dir = None;
    for (i, s) in req.scratch_dirs.iter().enumerate() {
        let host = dir.join("scratch").join(i.to_string());
        mkdirs_mode(host.parent().unwrap_or(dir), 0o700).map_err(io_at(dir))?;
        mkdir_mode(&host, s.mode).map_err(io_at(&host))?;
        let point = in_rootfs(&rootfs, &s.path);
        mkdir_point(&point, true)?;
        if s.path == req.working_dir {
            work_dir = Some(host.clone());
        }
        scratch.push((s.path.clone(), host));
    }
    let point = in_rootfs(&rootfs, &req.store_dir);
    mkdir_point(&point, true)?;

    // Where a sandbox path lives on the host before the sandbox starts: in the scratch
    // directory or the store directory holding it, or else in the root file system.
    let host_of = |p: &str| -> PathBuf {
        for (s, host) in &scratch {
            if let Some(rest) = p.strip_prefix(s.as_str()).and_then(|r| r.strip_prefix('/')) {
                return host.join(rest);
            }
        }
        if let Some(rest) = p
            .strip_prefix(req.store_dir.as_str())
            .and_then(|r| r.strip_prefix('/'))
        {
            return store.join(rest);
        }
        in_rootfs(&rootfs, p)
    };

    let mut inputs = Vec::new();
    for (path, source) in parts.inputs {
        let host = host_of(path);
        match source {
            InputSource::Bind(src) => {
                let is_dir = fs::metadata(src).map_err(io_at(src))?.is_dir();
                mkdir_point(&host, is_dir)?;
                inputs.push((path.clone(), src.clone()));
            }
            InputSource::Symlink(target) => {
                use std::os::unix::ffi::OsStrExt;
                symlink(std::ffi::OsStr::from_bytes(target), &host).map_err(io_at(&host))?;
            }
        }
    }

    let mut extra = Vec::new();
    for sp in parts.sandbox_paths {
        let meta = match fs::metadata(&sp.source) {
            Ok(m) => m,
            Err(_) if sp.optional => continue,
            Err(_) => {
                return Err(BundleError::MissingSandboxPath(
                    sp.source.display().to_string(),
                ))
            }
        };
        mkdir_point(&host_of(&sp.target), meta.is_dir())?;
        extra.push((sp.target.clone(), sp.source.clone()));
    }

    for f in &req.files {
        write_file(&host_of(&f.path), &f.contents, f.mode)?;
    }
    for h in &req.host_files {
        // A missing host file is left out (documented on the request).
        if let Ok(contents) = fs::read(h) {
            write_file(&host_of(h), &contents, 0o444)?;
        }
    }

    // /dev, as Nix makes it: links to /proc/self/fd, ptmx into the private devpts.
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "/dev/pts/ptmx"),
    ] {
        let p = dev.join(name);
        symlink(target, &p).map_err(io_at(&p))?;
    }
    // runc gives a tmpfs the mode of its mount point: /dev/shm is 1777, as in Nix.
    for (d, mode) in [("pts", 0o755), ("shm", 0o1777)] {
        let p = dev.join(d);
        mkdir_mode(&p, mode).map_err(io_at(&p))?;
    }
    for d in parts.devices {
        if let Some(name) = d.file_name() {
            let p = dev.join(name);
            fs::File::create(&p).map_err(io_at(&p))?;
        }
    }

    let work_dir = work_dir.ok_or_else(|| BundleError::Io {
        path: PathBuf::from(&req.working_dir),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not a scratch directory"),
    })?;
    Ok(Bundle {
        dir: dir.to_path_buf(),
        work_dir,
        layout: Layout {
            rootfs,
            dev,
            devices: parts.devices.to_vec(),
            store,
            scratch,
            inputs,
            extra,
            host_uid: parts.host_uid,
            host_gid: parts.host_gid,
            exec_shim: parts.exec_shim.clone(),
            unused_host_id: parts.unused_host_id,
        },
    })
}

/// `p` (an absolute sandbox path) below `rootfs`.
fn in_rootfs(rootfs: &Path, p: &str) -> PathBuf {
    rootfs.join(p.trim_start_matches('/'))
}

/// Creates a mount point (a directory, or an empty file for a non-directory source) and
/// its missing parents (0755).
fn mkdir_point(p: &Path, is_dir: bool) -> Result<(), BundleError> {
    if let Some(parent) = p.parent() {
        mkdirs_mode(parent, 0o755).map_err(io_at(parent))?;
    }
    if fs::symlink_metadata(p).is_ok() {
        return Ok(());
    }
    if is_dir {
        mkdir_mode(p, 0o755).map_err(io_at(p))
    } else {
        fs::File::create(p).map(drop).map_err(io_at(p))
    }
}

fn write_file(p: &Path, contents: &[u8], mode: u32) -> Result<(), BundleError> {
    if let Some(parent) = p.parent() {
        mkdirs_mode(parent, 0o755).map_err(io_at(parent))?;
    }
    fs::write(p, contents).map_err(io_at(p))?;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(io_at(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_paths_parse_like_nix() {
        let p = SandboxPath::parse("/bin/sh=/bin/busybox").unwrap();
        assert_eq!(p.target, "/bin/sh");
        assert_eq!(p.source, PathBuf::from("/bin/busybox"));
        assert!(!p.optional);
        let p = SandboxPath::parse("/usr/lib?").unwrap();
        assert_eq!(p.target, "/usr/lib");
        assert_eq!(p.source, PathBuf::from("/usr/lib"));
        assert!(p.optional);
        assert_eq!(SandboxPath::parse("relative"), None);
        assert_eq!(SandboxPath::parse("/a/../etc=/x"), None);
    }
}
