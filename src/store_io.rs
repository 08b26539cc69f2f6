//! The evaluator's IO over a tvix store: what evaluation adds (sources, `toFile`, `.drv`
//! files, fetched paths) is written to the store, and store paths registered there are read
//! back from it, so `import (fetchTarball ...)` works without a `/nix/store` on disk.
//!
//! The store is opened on first use: an evaluation that never touches the store never opens
//! (or creates) it. Paths under the store directory that the tvix store does not know are
//! read from the file system, where a real Nix store may have them.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tvix_eval::io::{
    file_type_of, AddedPath, EvalIO, FileIngestionMethod, FileType, PathFilter, StdIO,
};
use tvix_store::castore::{add, nar as cnar, Node};
use tvix_store::StoreDir;
use tvix_store::StoreService;

/// Symlinks followed in a row before giving up (the kernel's limit).
const MAX_SYMLINKS: usize = 40;

/// [`EvalIO`] backed by the tvix store at a URL.
pub struct StoreIO {
    fs: StdIO,
    url: String,
    store_dir: StoreDir,
    store: OnceLock<Result<Arc<dyn StoreService>, String>>,
}

/// Where a path under the store directory leads inside the tvix store.
enum Resolved {
    /// A node of a registered path, and the path it was reached as (symlinks followed).
    Node(Node, PathBuf),
    /// Not a path the tvix store has: ask the file system.
    NotInStore,
}

impl StoreIO {
    /// IO writing to the store at `url` (opened when first needed), with store paths under
    /// `$NIX_STORE_DIR` or `/nix/store`.
    pub fn new(url: String) -> Result<StoreIO, String> {
        let fs = StdIO::new();
        let store_dir = StoreDir::new(fs.store_dir()).map_err(|e| e.to_string())?;
        Ok(StoreIO {
            fs,
            url,
            store_dir,
            store: OnceLock::new(),
        })
    }

    /// IO over a store that is already open (and shared with a builder: the REPL builds in
    /// the store its evaluations write to, which for `memory://` must be the same object).
    pub fn with_store(url: String, store: Arc<dyn StoreService>) -> Result<StoreIO, String> {
        let io = StoreIO::new(url)?;
        let _ = io.store.set(Ok(store));
        Ok(io)
    }

    fn store(&self) -> Result<&dyn StoreService, String> {
        self.store
            .get_or_init(|| {
                tvix_store::open(&self.url)
                    .map(Arc::from)
                    .map_err(|e| format!("opening the store '{}': {e}", self.url))
            })
            .as_ref()
            .map(|s| &**s)
            .map_err(|e| e.clone())
    }

    /// Resolves `path` inside the tvix store, following symlinks (all of them, or all but a
    /// final one).
    fn resolve(&self, path: &Path, follow_last: bool) -> io::Result<Resolved> {
        let mut current = path.to_path_buf();
        for _ in 0..MAX_SYMLINKS {
            let text = String::from_utf8_lossy(current.as_os_str().as_bytes()).into_owned();
            let Ok((store_path, rest)) = self.store_dir.split_path(&text) else {
                return Ok(Resolved::NotInStore);
            };
            let Ok(store) = self.store() else {
                return Ok(Resolved::NotInStore);
            };
            let Some(info) = store.get_path_info(&store_path).map_err(to_io)? else {
                return Ok(Resolved::NotInStore);
            };
            let root = PathBuf::from(self.store_dir.display(&store_path));
            // Walk component by component so that a symlink in the middle is followed.
            let mut node = info.node;
            let mut at = root.clone();
            let comps: Vec<&str> = rest.split('/').filter(|c| !c.is_empty()).collect();
            let mut redirected = None;
            for (i, comp) in comps.iter().enumerate() {
                if let Node::Symlink { target } = &node {
                    redirected = Some(symlink_destination(&at, target, &comps[i..]));
                    break;
                }
                let Node::Directory { digest, .. } = &node else {
                    return Err(io::Error::from(io::ErrorKind::NotADirectory));
                };
                let dir = store
                    .get_directory(digest)
                    .map_err(to_io)?
                    .ok_or_else(|| io::Error::other(format!("directory {digest} is missing")))?;
                if *comp == ".." {
                    redirected = Some(symlink_destination(&at, b"..", &comps[i + 1..]));
                    break;
                }
                if *comp == "." {
                    continue;
                }
                node = dir
                    .get(comp.as_bytes())
                    .cloned()
                    .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
                at.push(comp);
            }
            if let Some(next) = redirected {
                current = next;
                continue;
            }
            match &node {
                Node::Symlink { target } if follow_last => {
                    current = symlink_destination(&at, target, &[]);
                }
                _ => return Ok(Resolved::Node(node, at)),
            }
        }
        Err(io::Error::other(format!(
            "too many levels of symbolic links at '{}'",
            path.display()
        )))
    }
}

/// Where the symlink at `link` pointing to `target` leads, with `rest` appended.
fn symlink_destination(link: &Path, target: &[u8], rest: &[&str]) -> PathBuf {
    let target = Path::new(std::ffi::OsStr::from_bytes(target));
    let mut dest = if target.is_absolute() {
        target.to_path_buf()
    } else {
        link.parent().unwrap_or(Path::new("/")).join(target)
    };
    for r in rest {
        dest.push(r);
    }
    cnar::absolute_path(&dest).unwrap_or(dest)
}

fn to_io(e: tvix_store::castore::StoreError) -> io::Error {
    io::Error::other(e.to_string())
}

fn node_type(node: &Node) -> FileType {
    match node {
        Node::Directory { .. } => FileType::Directory,
        Node::File { .. } => FileType::Regular,
        Node::Symlink { .. } => FileType::Symlink,
    }
}

impl EvalIO for StoreIO {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self.resolve(path, true)? {
            Resolved::NotInStore => self.fs.read_file(path),
            Resolved::Node(Node::File { digest, .. }, _) => {
                let store = self.store().map_err(io::Error::other)?;
                let mut r = store
                    .open_blob(&digest)
                    .map_err(to_io)?
                    .ok_or_else(|| io::Error::other(format!("blob {digest} is missing")))?;
                let mut out = Vec::new();
                io::Read::read_to_end(&mut r, &mut out)?;
                Ok(out)
            }
            Resolved::Node(..) => Err(io::Error::from(io::ErrorKind::IsADirectory)),
        }
    }

    fn path_exists(&self, path: &Path) -> io::Result<bool> {
        match self.resolve(path, true) {
            Ok(Resolved::NotInStore) => self.fs.path_exists(path),
            Ok(Resolved::Node(..)) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn file_type(&self, path: &Path) -> io::Result<FileType> {
        match self.resolve(path, false)? {
            Resolved::NotInStore => self.fs.file_type(path),
            Resolved::Node(node, _) => Ok(node_type(&node)),
        }
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(Vec<u8>, FileType)>> {
        match self.resolve(path, true)? {
            Resolved::NotInStore => self.fs.read_dir(path),
            Resolved::Node(Node::Directory { digest, .. }, _) => {
                let store = self.store().map_err(io::Error::other)?;
                let dir = store
                    .get_directory(&digest)
                    .map_err(to_io)?
                    .ok_or_else(|| io::Error::other(format!("directory {digest} is missing")))?;
                Ok(dir
                    .entries()
                    .map(|(name, node)| (name.to_vec(), node_type(node)))
                    .collect())
            }
            Resolved::Node(..) => Err(io::Error::from(io::ErrorKind::NotADirectory)),
        }
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        match self.resolve(path, true)? {
            Resolved::NotInStore => self.fs.canonicalize(path),
            Resolved::Node(_, at) => Ok(at),
        }
    }

    fn add_path(
        &self,
        source: &Path,
        name: &str,
        method: FileIngestionMethod,
        filter: Option<PathFilter<'_>>,
    ) -> Result<AddedPath, String> {
        if std::fs::symlink_metadata(source).is_err() {
            return Err(format!("path '{}' does not exist", source.display()));
        }
        let store = self.store()?;
        let added = match filter {
            None => add::add_path(store, &self.store_dir, source, name, method, |_, _| {
                Ok(true)
            }),
            Some(f) => add::add_path(store, &self.store_dir, source, name, method, |p, meta| {
                f(p, file_type_of(meta.file_type())).map_err(io::Error::other)
            }),
        }
        .map_err(|e| match e {
            tvix_store::castore::StoreError::Nar(n) => tvix_eval::io::filter_error_message(n),
            other => other.to_string(),
        })?;
        Ok(AddedPath {
            store_path: self.store_dir.display(&added.info.store_path),
            content_hash: added.content_hash,
        })
    }

    fn add_text(
        &self,
        name: &str,
        contents: &[u8],
        references: &[String],
    ) -> Result<String, String> {
        let refs = references
            .iter()
            .map(|r| self.store_dir.parse_path(r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let store = self.store()?;
        let info = add::add_text(store, &self.store_dir, name, contents, &refs)
            .map_err(|e| e.to_string())?;
        Ok(self.store_dir.display(&info.store_path))
    }

    fn writes_to_store(&self) -> bool {
        true
    }

    fn add_nar(
        &self,
        path: &str,
        nar: &mut dyn io::Read,
        nar_hash: &str,
        references: &[String],
        ca: Option<&str>,
    ) -> Result<(), String> {
        let parse = |p: &str| {
            self.store_dir
                .parse_path(p)
                .map_err(|e| format!("invalid store path '{p}': {e}"))
        };
        let store_path = parse(path)?;
        let references = references
            .iter()
            .map(|r| parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        let expected = tvix_store::NixHash::parse(nar_hash, None)
            .map_err(|e| format!("invalid NAR hash '{nar_hash}' of '{path}': {e}"))?;
        let store = self.store()?;
        let (node, hash, size) = cnar::ingest_nar(store, nar).map_err(|e| e.to_string())?;
        if hash.algo() != expected.algo() || hash.digest() != expected.digest() {
            return Err(format!(
                "NAR hash mismatch in '{path}': expected {nar_hash}, got {}",
                hash.to_prefixed(tvix_store::hash::HashEncoding::Nix32)
            ));
        }
        let info = tvix_store::pathinfo::PathInfo {
            store_path,
            node,
            nar_sha256: hash
                .digest()
                .try_into()
                .map_err(|_| format!("the NAR hash of '{path}' is not a sha256"))?,
            nar_size: size,
            references,
            deriver: None,
            signatures: Vec::new(),
            ca: ca.map(str::to_string),
        };
        store
            .put_path_info_batched(&info)
            .map_err(|e| e.to_string())
    }

    fn commit(&self) -> io::Result<()> {
        // Nothing was added if the store was never opened.
        match self.store.get() {
            Some(Ok(store)) => store.commit().map_err(to_io),
            _ => Ok(()),
        }
    }

    fn store_dir(&self) -> String {
        self.fs.store_dir()
    }
}

/// The IO evaluation uses: compute-only (nothing written, like Nix's `dummy://`) with
/// `--readonly-mode`, the store URL `dummy://`, or `NIX_REMOTE=dummy://` and no tvix store
/// named; otherwise the tvix store from `--store`, `$TVIX_STORE`, or the local default.
pub fn eval_io(store_flag: Option<&str>, readonly: bool) -> Result<Box<dyn EvalIO>, String> {
    let named = store_flag
        .map(str::to_string)
        .or_else(|| std::env::var("TVIX_STORE").ok().filter(|u| !u.is_empty()));
    let nix_dummy = std::env::var("NIX_REMOTE").is_ok_and(|r| r.starts_with("dummy"));
    let url = match named {
        Some(u) => u,
        None if nix_dummy => "dummy://".to_string(),
        None => tvix_store::castore::default_store_url(),
    };
    if readonly || url.starts_with("dummy") {
        return Ok(Box::new(StdIO::new()));
    }
    Ok(Box::new(StoreIO::new(url)?))
}
