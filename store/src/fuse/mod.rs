//! `tvix store mount`: any store served as a read-only FUSE file system (feature `fuse`).
//!
//! The root lists the registered store paths (unless [`MountOptions::list_root`] is off,
//! for stores too big to list; lookups by name still work) and each store path is its
//! castore node. Everything is fetched lazily: a store path's info on its first lookup,
//! a directory when it is first looked into (then cached by digest: a directory's digest
//! never changes, so the cache never goes stale), and file contents by range
//! ([`crate::castore::BlobService::read_blob_range`]), so a read fetches only the chunks
//! covering it.
//!
//! Invariants:
//! - Nothing is ever written: opening for writing is `EROFS`, and the kernel is told the
//!   mount is read-only.
//! - An inode number stands for one node (file: digest, size, executable bit; symlink:
//!   target; directory: digest) for the whole life of the mount; numbers are never reused.
//! - Attributes are those of Nix's store: mtime 1, files 0444 or 0555, directories 0555,
//!   owned by the mounting user, sizes and 512-byte block counts of the contents.
//! - A blob that is missing, corrupt or of the wrong length makes the read fail with `EIO`
//!   and a line on standard error; wrong bytes are never returned.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, MountOption, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyEntry, ReplyOpen, Request, SessionACL,
};
use thiserror::Error;

mod namespace;
pub use namespace::{with_store_mounted, StoreView};

use crate::castore::{B3Digest, Directory, Node, StoreError, StoreService};
use crate::store_path::StorePath;

/// How long the kernel may cache names and attributes: everything under a store path is
/// immutable, so long; the root's listing changes as paths are added, so its own
/// attributes are given a short time.
const TTL: Duration = Duration::from_secs(3600);
/// Cache time for the root directory and negative lookups in it.
const ROOT_TTL: Duration = Duration::from_secs(1);
/// The block size reported by `stat`.
const BLKSIZE: u32 = 4096;

/// Makes store paths valid on first access: a path looked up at the mount's root that
/// the store does not have is asked for here (a substituter: a binary cache, another
/// store) before the lookup answers "no such file".
pub trait FetchMissing: Send + Sync {
    /// Tries to make `path` valid in the store the mount serves, with its closure;
    /// `Ok(true)` when it now is, `Ok(false)` when nobody has it.
    fn fetch(&self, path: &StorePath) -> Result<bool, String>;
}

/// How a store is mounted.
#[derive(Clone)]
pub struct MountOptions {
    /// Whether the root lists the store paths (off: only lookups by name work).
    pub list_root: bool,
    /// Threads serving requests.
    pub threads: usize,
    /// Let other users than the mounting one use the mount (needs `user_allow_other` in
    /// `/etc/fuse.conf` for non-root users).
    pub allow_other: bool,
    /// Where paths the store does not have are fetched from on first access.
    pub fetch_missing: Option<Arc<dyn FetchMissing>>,
}

impl std::fmt::Debug for MountOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MountOptions")
            .field("list_root", &self.list_root)
            .field("threads", &self.threads)
            .field("allow_other", &self.allow_other)
            .field("fetch_missing", &self.fetch_missing.is_some())
            .finish()
    }
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            list_root: true,
            threads: 4,
            allow_other: false,
            fetch_missing: None,
        }
    }
}

/// Why a mount failed.
#[derive(Debug, Error)]
pub enum MountError {
    /// The mount point is a FUSE mount whose process is gone.
    #[error("'{0}' is a stale FUSE mount (the process serving it is gone): unmount it with `fusermount3 -u {0}` (as root also `umount {0}`), then mount again")]
    Stale(PathBuf),
    /// The mount point is not a usable directory.
    #[error("cannot mount on '{path}': {source}")]
    MountPoint {
        /// The mount point.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// FUSE refused the mount (no `/dev/fuse`, no `fusermount3`, no permission).
    #[error("cannot mount '{path}' with FUSE: {source} (is /dev/fuse present and fusermount3 installed, from Debian's fuse3 package?)")]
    Fuse {
        /// The mount point.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// No private mount namespace could be made for a command that sees the store.
    #[error("cannot make a private mount namespace to mount the store in: {source} (this needs root; otherwise mount the store with `tvix store mount DIR` on a directory of your own)")]
    Namespace {
        /// Why.
        source: io::Error,
    },
    /// Unmounting failed.
    #[error("cannot unmount '{path}': {source} (try `fusermount3 -u {path}`)")]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Checks that `dir` can be mounted on: an existing directory, and not a stale FUSE
/// mount (`stat` failing with `ENOTCONN`).
pub fn check_mount_point(dir: &Path) -> Result<(), MountError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(MountError::MountPoint {
            path: dir.to_path_buf(),
            source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        }),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            Err(MountError::Stale(dir.to_path_buf()))
        }
        Err(source) => Err(MountError::MountPoint {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// What an inode stands for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Inode {
    /// The root: the store paths.
    Root,
    /// A castore node.
    Node(Node),
}

/// The inode table: numbers are handed out on first sight and kept for the whole mount.
#[derive(Default)]
struct Inodes {
    /// `nodes[i]` is inode `i + 2` (inode 1 is the root).
    nodes: Vec<Node>,
    by_node: HashMap<Node, u64>,
    /// Store path base names looked up so far, and their inodes.
    roots: HashMap<Vec<u8>, u64>,
}

/// The file system: a store, its inodes and a cache of directories by digest.
pub struct StoreFs {
    store: Arc<dyn StoreService>,
    list_root: bool,
    fetch_missing: Option<Arc<dyn FetchMissing>>,
    uid: u32,
    gid: u32,
    inodes: RwLock<Inodes>,
    directories: RwLock<HashMap<B3Digest, Arc<Directory>>>,
}

/// The mode bits and file type of a node.
fn kind_of(node: &Node) -> (FileType, u16) {
    match node {
        Node::Directory { .. } => (FileType::Directory, 0o555),
        Node::File { executable, .. } => (
            FileType::RegularFile,
            if *executable { 0o555 } else { 0o444 },
        ),
        Node::Symlink { .. } => (FileType::Symlink, 0o777),
    }
}

/// Logs a store error that the kernel only sees as `EIO`.
fn eio(what: &str, e: &dyn std::fmt::Display) -> Errno {
    eprintln!("tvix store mount: {what}: {e}");
    Errno::EIO
}

impl StoreFs {
    /// A file system over `store`, owned by the calling process's user.
    pub fn new(store: Arc<dyn StoreService>, list_root: bool) -> Self {
        // SAFETY: getuid and getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        StoreFs {
            store,
            list_root,
            fetch_missing: None,
            uid,
            gid,
            inodes: RwLock::new(Inodes::default()),
            directories: RwLock::new(HashMap::new()),
        }
    }

    fn attr(&self, ino: u64, inode: &Inode) -> FileAttr {
        let one = UNIX_EPOCH + Duration::from_secs(1);
        let (kind, perm, size, nlink) = match inode {
            Inode::Root => (FileType::Directory, 0o555, 0, 2),
            Inode::Node(n) => {
                let (kind, perm) = kind_of(n);
                let size = match n {
                    Node::File { size, .. } => *size,
                    Node::Symlink { target } => target.len() as u64,
                    Node::Directory { .. } => 0,
                };
                (
                    kind,
                    perm,
                    size,
                    if kind == FileType::Directory { 2 } else { 1 },
                )
            }
        };
        let blocks = match inode {
            Inode::Node(Node::File { size, .. }) => size.div_ceil(512),
            _ => 0,
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks,
            atime: one,
            mtime: one,
            ctime: one,
            crtime: one,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: BLKSIZE,
            flags: 0,
        }
    }

    /// The inode of `node`, allocated on first sight.
    fn inode_of(&self, node: &Node) -> u64 {
        if let Ok(t) = self.inodes.read() {
            if let Some(i) = t.by_node.get(node) {
                return *i;
            }
        }
        let mut t = self.inodes.write().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = t.by_node.get(node) {
            return *i;
        }
        t.nodes.push(node.clone());
        let ino = t.nodes.len() as u64 + 1;
        t.by_node.insert(node.clone(), ino);
        ino
    }

    /// What inode `ino` stands for, or `None` if it was never handed out.
    fn inode(&self, ino: u64) -> Option<Inode> {
        if ino == 1 {
            return Some(Inode::Root);
        }
        let t = self.inodes.read().unwrap_or_else(|p| p.into_inner());
        let i = usize::try_from(ino.checked_sub(2)?).ok()?;
        t.nodes.get(i).cloned().map(Inode::Node)
    }

    /// A directory, from the cache or fetched (and then cached).
    fn directory(&self, digest: &B3Digest) -> Result<Arc<Directory>, Errno> {
        if let Ok(c) = self.directories.read() {
            if let Some(d) = c.get(digest) {
                return Ok(d.clone());
            }
        }
        let dir = match self.store.get_directory(digest) {
            Ok(Some(d)) => Arc::new(d),
            Ok(None) => return Err(eio("directory", &StoreError::DirectoryNotFound(*digest))),
            Err(e) => return Err(eio("directory", &e)),
        };
        let mut c = self.directories.write().unwrap_or_else(|p| p.into_inner());
        c.insert(*digest, dir.clone());
        Ok(dir)
    }

    /// Looks a store path up by base name, or a node by its [`node_name`]; `None` if it
    /// is neither.
    fn lookup_root(&self, name: &[u8]) -> Result<Option<u64>, Errno> {
        if let Some(node) = parse_node_name(name) {
            // Not remembered in `roots`: the inode table already maps the node.
            return Ok(Some(self.inode_of(&node)));
        }
        if let Ok(t) = self.inodes.read() {
            if let Some(i) = t.roots.get(name) {
                return Ok(Some(*i));
            }
        }
        let Ok(base) = std::str::from_utf8(name) else {
            return Ok(None);
        };
        let Ok(sp) = StorePath::from_base_name(base) else {
            return Ok(None);
        };
        let info = match self.store.get_path_info(&sp) {
            Ok(Some(info)) => info,
            Ok(None) if self.fetched(&sp) => match self.store.get_path_info(&sp) {
                Ok(Some(info)) => info,
                Ok(None) => return Ok(None),
                Err(e) => return Err(eio(&format!("path info of {base}"), &e)),
            },
            Ok(None) => return Ok(None),
            Err(e) => return Err(eio(&format!("path info of {base}"), &e)),
        };
        let ino = self.inode_of(&info.node);
        let mut t = self.inodes.write().unwrap_or_else(|p| p.into_inner());
        t.roots.insert(name.to_vec(), ino);
        Ok(Some(ino))
    }

    /// Whether `path`, missing from the store, was fetched into it now. A failed fetch is
    /// logged and answered as a missing path.
    fn fetched(&self, path: &StorePath) -> bool {
        let Some(f) = &self.fetch_missing else {
            return false;
        };
        match f.fetch(path) {
            Ok(got) => got,
            Err(e) => {
                eprintln!("tvix store mount: fetching {}: {e}", path.to_base_name());
                false
            }
        }
    }

    /// The entries of a directory inode: (inode, kind, name).
    fn entries(&self, inode: &Inode) -> Result<Vec<(u64, FileType, Vec<u8>)>, Errno> {
        match inode {
            Inode::Root => {
                if !self.list_root {
                    return Ok(Vec::new());
                }
                let mut out = Vec::new();
                for info in self.store.path_infos() {
                    let info = info.map_err(|e| eio("listing store paths", &e))?;
                    let name = info.store_path.to_base_name().into_bytes();
                    let ino = self.inode_of(&info.node);
                    if let Ok(mut t) = self.inodes.write() {
                        t.roots.insert(name.clone(), ino);
                    }
                    out.push((ino, kind_of(&info.node).0, name));
                }
                Ok(out)
            }
            Inode::Node(Node::Directory { digest, .. }) => {
                let dir = self.directory(digest)?;
                Ok(dir
                    .entries()
                    .map(|(name, node)| (self.inode_of(node), kind_of(node).0, name.to_vec()))
                    .collect())
            }
            Inode::Node(_) => Err(Errno::ENOTDIR),
        }
    }
}

impl Filesystem for StoreFs {
    fn init(&mut self, _req: &Request, config: &mut fuser::KernelConfig) -> io::Result<()> {
        // Large reads mean fewer round trips; the kernel clamps to what it supports.
        let _ = config.set_max_readahead(1 << 20);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = name.as_bytes();
        let res = match self.inode(parent.0) {
            None => Err(Errno::ENOENT),
            Some(Inode::Root) => self.lookup_root(name).map(|i| i.map(|i| (i, TTL))),
            Some(Inode::Node(Node::Directory { digest, .. })) => self
                .directory(&digest)
                .map(|dir| dir.get(name).map(|n| (self.inode_of(n), TTL))),
            Some(Inode::Node(_)) => Err(Errno::ENOTDIR),
        };
        match res {
            Ok(Some((ino, ttl))) => match self.inode(ino) {
                Some(inode) => reply.entry(&ttl, &self.attr(ino, &inode), Generation(0)),
                None => reply.error(Errno::EIO),
            },
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.inode(ino.0) {
            Some(Inode::Root) => reply.attr(&ROOT_TTL, &self.attr(1, &Inode::Root)),
            Some(inode) => reply.attr(&TTL, &self.attr(ino.0, &inode)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.inode(ino.0) {
            Some(Inode::Node(Node::Symlink { target })) => reply.data(&target),
            Some(_) => reply.error(Errno::EINVAL),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        match self.inode(ino.0) {
            Some(Inode::Node(Node::File { .. })) => {
                // Contents never change: the kernel may keep its cache across opens.
                reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE)
            }
            Some(_) => reply.error(Errno::EISDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(Inode::Node(Node::File {
            digest,
            size: file_size,
            ..
        })) = self.inode(ino.0)
        else {
            return reply.error(Errno::EINVAL);
        };
        if offset >= file_size {
            return reply.data(&[]);
        }
        let want = u64::from(size).min(file_size - offset);
        match self.store.read_blob_range(&digest, offset, want) {
            Ok(Some(data)) if data.len() as u64 == want => reply.data(&data),
            Ok(Some(data)) => reply.error(eio(
                &format!("blob {digest}"),
                &format!(
                    "{} bytes at offset {offset} where the file has {want}",
                    data.len()
                ),
            )),
            Ok(None) => reply.error(eio("read", &StoreError::BlobNotFound(digest))),
            Err(e) => reply.error(eio(&format!("reading blob {digest} at {offset}"), &e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(inode) = self.inode(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let entries = match self.entries(&inode) {
            Ok(e) => e,
            Err(e) => return reply.error(e),
        };
        // Offsets: 1 = ".", 2 = "..", 3.. = the entries; each is the offset of the next.
        let dots = [
            (ino.0, FileType::Directory, &b"."[..]),
            (1, FileType::Directory, &b".."[..]),
        ];
        let all = dots
            .into_iter()
            .chain(entries.iter().map(|(i, k, n)| (*i, *k, n.as_slice())));
        for (i, (child, kind, name)) in all.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), i as u64 + 1, kind, OsStr::from_bytes(name)) {
                break;
            }
        }
        reply.ok()
    }
}

/// The name under which the mount's root serves `node` (a file or directory) directly,
/// whether or not a path info refers to it: `.node-d<hex digest>`,
/// `.node-f<hex digest>-<size>`, `.node-x<hex digest>-<size>` (executable). Such names
/// are never listed. The builder bind-mounts its inputs from them: a build request names
/// nodes, not registered paths. `None` for symlinks, which are not served alone.
pub fn node_name(node: &Node) -> Option<String> {
    match node {
        Node::Directory { digest, .. } => Some(format!(".node-d{}", digest.to_hex())),
        Node::File {
            digest,
            size,
            executable,
        } => Some(format!(
            ".node-{}{}-{size}",
            if *executable { 'x' } else { 'f' },
            digest.to_hex()
        )),
        Node::Symlink { .. } => None,
    }
}

/// The node a [`node_name`] stands for; `None` for any other name.
fn parse_node_name(name: &[u8]) -> Option<Node> {
    let rest = std::str::from_utf8(name).ok()?.strip_prefix(".node-")?;
    let kind = rest.chars().next()?;
    let rest = &rest[1..];
    let (hex, size) = match kind {
        'd' => (rest, None),
        'f' | 'x' => {
            let (hex, size) = rest.split_once('-')?;
            (hex, Some(size.parse::<u64>().ok()?))
        }
        _ => return None,
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, d) in digest.iter_mut().enumerate() {
        *d = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    let digest = B3Digest(digest);
    Some(match size {
        None => Node::Directory { digest, size: 0 },
        Some(size) => Node::File {
            digest,
            size,
            executable: kind == 'x',
        },
    })
}

/// A mounted store; [`Mount::unmount`] (or dropping it) unmounts it.
pub struct Mount {
    path: PathBuf,
    session: Option<fuser::BackgroundSession>,
}

/// Mounts `store` on `dir` with requests served on background threads.
pub fn mount(
    store: Arc<dyn StoreService>,
    dir: &Path,
    opts: &MountOptions,
) -> Result<Mount, MountError> {
    check_mount_point(dir)?;
    let mut fs = StoreFs::new(store, opts.list_root);
    fs.fetch_missing = opts.fetch_missing.clone();
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::FSName("tvix-store".into()),
        MountOption::Subtype("tvix".into()),
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::Exec,
        MountOption::NoAtime,
        MountOption::DefaultPermissions,
    ];
    config.acl = if opts.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(opts.threads.max(1));
    config.clone_fd = opts.threads > 1;
    let session = fuser::spawn_mount(fs, dir, &config).map_err(|source| MountError::Fuse {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(Mount {
        path: dir.to_path_buf(),
        session: Some(session),
    })
}

impl Mount {
    /// Whether the mount is still served (an external `fusermount3 -u` ends it).
    pub fn is_running(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| !s.guard.is_finished())
    }

    /// Unmounts and waits for the serving threads to end.
    pub fn unmount(mut self) -> Result<(), MountError> {
        match self.session.take() {
            Some(s) => s.umount_and_join().map_err(|source| MountError::Unmount {
                path: self.path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.umount_and_join();
        }
    }
}

/// Serves `mount` until SIGINT or SIGTERM arrives or it is unmounted from outside, then
/// unmounts it.
pub fn serve_until_signal(mount: Mount) -> Result<(), MountError> {
    crate::shutdown::wait_until(|| !mount.is_running());
    mount.unmount()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::castore::{BlobService, Store};
    use crate::pathinfo::{PathInfo, PathInfoService};

    /// Adds `base` to the store on request when it is `have`; fails for `broken`.
    struct Fetcher {
        store: Arc<Store>,
        have: &'static str,
        broken: &'static str,
        asked: std::sync::Mutex<Vec<String>>,
    }

    impl FetchMissing for Fetcher {
        fn fetch(&self, path: &StorePath) -> Result<bool, String> {
            let base = path.to_base_name();
            self.asked.lock().unwrap().push(base.clone());
            if base == self.broken {
                return Err("the cache is down".into());
            }
            if base != self.have {
                return Ok(false);
            }
            let (digest, size) = self.store.put_blob(&mut &b"fetched"[..]).unwrap();
            self.store
                .put_path_info(&PathInfo {
                    store_path: path.clone(),
                    node: Node::File {
                        digest,
                        size,
                        executable: false,
                    },
                    nar_sha256: [0; 32],
                    nar_size: 0,
                    references: Default::default(),
                    deriver: None,
                    signatures: vec![],
                    ca: None,
                })
                .unwrap();
            Ok(true)
        }
    }

    #[test]
    fn missing_paths_are_fetched_on_first_lookup() {
        const HAVE: &str = "00000000000000000000000000000000-have";
        const BROKEN: &str = "11111111111111111111111111111111-broken";
        const NOBODY: &str = "22222222222222222222222222222222-nobody";
        let store = Arc::new(Store::memory());
        let fetcher = Arc::new(Fetcher {
            store: store.clone(),
            have: HAVE,
            broken: BROKEN,
            asked: Default::default(),
        });
        let mut fs = StoreFs::new(store, true);
        assert_eq!(fs.lookup_root(HAVE.as_bytes()), Ok(None), "no fetcher yet");
        fs.fetch_missing = Some(fetcher.clone());
        let ino = fs.lookup_root(HAVE.as_bytes()).unwrap().expect("fetched");
        assert!(matches!(
            fs.inode(ino),
            Some(Inode::Node(Node::File { size: 7, .. }))
        ));
        // Now in the store: not asked for again.
        assert_eq!(fs.lookup_root(HAVE.as_bytes()).unwrap(), Some(ino));
        assert_eq!(fs.lookup_root(NOBODY.as_bytes()), Ok(None));
        assert_eq!(fs.lookup_root(BROKEN.as_bytes()), Ok(None));
        // Names that are no store path are never asked for.
        assert_eq!(fs.lookup_root(b"not-a-store-path"), Ok(None));
        assert_eq!(*fetcher.asked.lock().unwrap(), [HAVE, NOBODY, BROKEN]);
    }
}
