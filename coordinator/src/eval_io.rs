//! The evaluator's IO over a tvix store: what evaluation adds (sources, `toFile`, `.drv`
//! files, fetched paths) is written to the store, and store paths registered there are read
//! back from it, so `import (fetchTarball ...)` works without a `/nix/store` on disk.
//!
//! The store is opened on first use: an evaluation that never touches the store never opens
//! (or creates) it. Paths under the store directory that the tvix store does not know are
//! read from the file system, where a real Nix store may have them.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::eval_progress::EvalProgress;
use crate::events::{Event, Subscriber};
use crate::fetch;
use crate::nix_output::NixStyleOutput;
use crate::realise::{self, RealiseConfig, Realiser};
use tvix_build::CancelToken;
use tvix_eval::io::{
    file_type_of, AddedPath, CacheEntry, DrvOutput, EvalIO, EvalIOError, FetchError,
    FileIngestionMethod, FileType, GitRequest, GitRevision, PathFilter, StdIO,
};
use tvix_store::castore::{add, nar as cnar, Node};
use tvix_store::StoreService;
use tvix_store::{StoreDir, StorePath};

/// Symlinks followed in a row before giving up (the kernel's limit).
const MAX_SYMLINKS: usize = 40;

/// [`EvalIO`] backed by the tvix store at a URL.
pub struct StoreIO {
    fs: StdIO,
    url: String,
    /// The `--option` pairs, for the builds of import-from-derivation.
    options: BTreeMap<String, String>,
    store_dir: StoreDir,
    store: OnceLock<Result<Arc<dyn StoreService>, String>>,
    /// The build service and settings for import-from-derivation, made on the first
    /// build evaluation asks for.
    realiser: OnceLock<Result<Realiser, String>>,
    /// Where the events of import-from-derivation builds go; Nix's lines on stderr when
    /// `None`. A build dashboard that has the terminal during evaluation takes them, so
    /// they are shown on it rather than written over it.
    build_events: Option<Arc<dyn Subscriber + Send>>,
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
    pub fn new(url: String, options: BTreeMap<String, String>) -> Result<StoreIO, String> {
        let fs = StdIO::new();
        let store_dir = StoreDir::new(fs.store_dir()).map_err(|e| e.to_string())?;
        Ok(StoreIO {
            fs,
            url,
            options,
            store_dir,
            store: OnceLock::new(),
            realiser: OnceLock::new(),
            build_events: None,
        })
    }

    /// The same IO, showing the events of import-from-derivation builds to `events`
    /// instead of writing Nix's lines to stderr.
    pub fn showing_builds_to(mut self, events: Arc<dyn Subscriber + Send>) -> StoreIO {
        self.build_events = Some(events);
        self
    }

    /// IO over a store that is already open (and shared with a builder: the REPL builds in
    /// the store its evaluations write to, which for `memory://` must be the same object).
    pub fn with_store(
        url: String,
        options: BTreeMap<String, String>,
        store: Arc<dyn StoreService>,
    ) -> Result<StoreIO, String> {
        store
            .protect_from_gc()
            .map_err(|e| format!("opening the store '{url}': {e}"))?;
        let io = StoreIO::new(url, options)?;
        let _ = io.store.set(Ok(store));
        Ok(io)
    }

    fn store(&self) -> Result<&Arc<dyn StoreService>, String> {
        self.store
            .get_or_init(|| {
                let store = tvix_store::open(&self.url)
                    .map_err(|e| format!("opening the store '{}': {e}", self.url))?;
                // What the evaluation finds valid it relies on (sources, inputs of the
                // derivations it writes): no collection may delete it meanwhile.
                store
                    .protect_from_gc()
                    .map_err(|e| format!("opening the store '{}': {e}", self.url))?;
                Ok(Arc::from(store))
            })
            .as_ref()
            .map_err(|e| e.clone())
    }

    fn realiser(&self) -> Result<&Realiser, String> {
        self.realiser
            .get_or_init(|| {
                let store = self.store()?;
                let config = RealiseConfig::from_options(&self.url, &self.options)
                    .map_err(|e| e.to_string())?;
                Realiser::with_store(store.clone(), config).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| e.clone())
    }

    /// Resolves `path` inside the tvix store, following symlinks (all of them, or all but a
    /// final one).
    fn resolve(&self, path: &Path, follow_last: bool) -> io::Result<Resolved> {
        let mut current = path.to_path_buf();
        for _ in 0..MAX_SYMLINKS {
            // Paths are bytes: the part below a store path may be any bytes (only the store
            // path's own name is ASCII), so it is never decoded as UTF-8.
            let Some((store_path, rest)) = self.split_store_path(current.as_os_str().as_bytes())
            else {
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
            let comps: Vec<&[u8]> = rest
                .split(|&b| b == b'/')
                .filter(|c| !c.is_empty())
                .collect();
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
                if *comp == b"..".as_slice() {
                    redirected = Some(symlink_destination(&at, b"..", &comps[i + 1..]));
                    break;
                }
                if *comp == b".".as_slice() {
                    continue;
                }
                node = dir
                    .get(comp)
                    .cloned()
                    .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
                at.push(std::ffi::OsStr::from_bytes(comp));
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

    /// The store path `path` is in and the bytes after it (`/sub/dir` or empty), if it is
    /// under the store directory.
    fn split_store_path<'a>(&self, path: &'a [u8]) -> Option<(StorePath, &'a [u8])> {
        let dir = self.store_dir.as_str().as_bytes();
        let rest = path.strip_prefix(dir)?.strip_prefix(b"/")?;
        let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
        let (base, sub) = rest.split_at(end);
        let base = std::str::from_utf8(base).ok()?;
        let store_path = StorePath::from_base_name(base).ok()?;
        Some((store_path, sub))
    }
}

/// A copy of a node of the tvix store on disk, removed on drop.
struct Staged {
    _dir: tempfile::TempDir,
    /// The copy of the node.
    root: PathBuf,
}

impl StoreIO {
    /// Writes `node` (and everything below it) to a fresh temporary directory, so that
    /// adding it to the store can go the way every source goes (with a filter, flat or
    /// recursive).
    fn stage(&self, node: &Node) -> Result<Staged, String> {
        let store = &**self.store()?;
        let dir = tempfile::Builder::new()
            .prefix("tvix-stage-")
            .tempdir()
            .map_err(|e| format!("creating a temporary directory: {e}"))?;
        let root = dir.path().join("node");
        let mut todo = vec![(root.clone(), node.clone())];
        while let Some((path, node)) = todo.pop() {
            let fail = |e: String| format!("staging '{}': {e}", path.display());
            match node {
                Node::Directory { digest, .. } => {
                    std::fs::create_dir(&path).map_err(|e| fail(e.to_string()))?;
                    let d = store
                        .get_directory(&digest)
                        .map_err(|e| fail(e.to_string()))?
                        .ok_or_else(|| fail(format!("directory {digest} is missing")))?;
                    for (name, child) in d.entries() {
                        todo.push((path.join(std::ffi::OsStr::from_bytes(name)), child.clone()));
                    }
                }
                Node::File {
                    digest, executable, ..
                } => {
                    let mut r = store
                        .open_blob(&digest)
                        .map_err(|e| fail(e.to_string()))?
                        .ok_or_else(|| fail(format!("blob {digest} is missing")))?;
                    let mut f = std::fs::File::create(&path).map_err(|e| fail(e.to_string()))?;
                    io::copy(&mut r, &mut f).map_err(|e| fail(e.to_string()))?;
                    if executable {
                        use std::os::unix::fs::PermissionsExt;
                        f.set_permissions(std::fs::Permissions::from_mode(0o755))
                            .map_err(|e| fail(e.to_string()))?;
                    }
                }
                Node::Symlink { target } => {
                    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &path)
                        .map_err(|e| fail(e.to_string()))?;
                }
            }
        }
        Ok(Staged { _dir: dir, root })
    }
}

/// Where the symlink at `link` pointing to `target` leads, with `rest` appended.
fn symlink_destination(link: &Path, target: &[u8], rest: &[&[u8]]) -> PathBuf {
    let target = Path::new(std::ffi::OsStr::from_bytes(target));
    let mut dest = if target.is_absolute() {
        target.to_path_buf()
    } else {
        link.parent().unwrap_or(Path::new("/")).join(target)
    };
    for r in rest {
        dest.push(std::ffi::OsStr::from_bytes(r));
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
    ) -> Result<AddedPath, EvalIOError> {
        // A path inside a store path the tvix store has (an output built for
        // import-from-derivation, say) is read from there: it is staged on disk first.
        let staged = match self.resolve(source, false) {
            Ok(Resolved::Node(node, _)) => Some(self.stage(&node).map_err(EvalIOError::Store)?),
            _ => None,
        };
        let from = staged.as_ref().map_or(source, |s| s.root.as_path());
        if std::fs::symlink_metadata(from).is_err() {
            return Err(EvalIOError::Missing(source.to_path_buf()));
        }
        // The filter sees the paths as the evaluation named them, not the staged copy.
        let shown = |p: &Path| -> PathBuf {
            match staged.as_ref().and_then(|s| p.strip_prefix(&s.root).ok()) {
                Some(rest) if rest.as_os_str().is_empty() => source.to_path_buf(),
                Some(rest) => source.join(rest),
                None => p.to_path_buf(),
            }
        };
        let store = &**self.store().map_err(EvalIOError::Store)?;
        let added = match filter {
            None => add::add_path(store, &self.store_dir, from, name, method, |_, _| Ok(true)),
            Some(f) => add::add_path(store, &self.store_dir, from, name, method, |p, meta| {
                f(&shown(p), file_type_of(meta.file_type())).map_err(io::Error::other)
            }),
        }
        .map_err(|e| match e {
            tvix_store::castore::StoreError::Nar(n) => tvix_eval::io::nar_error(n),
            other => EvalIOError::store(other),
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
    ) -> Result<String, EvalIOError> {
        let refs = references
            .iter()
            .map(|r| self.store_dir.parse_path(r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(EvalIOError::store)?;
        let store = &**self.store().map_err(EvalIOError::Store)?;
        let info = add::add_text(store, &self.store_dir, name, contents, &refs)
            .map_err(EvalIOError::store)?;
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
    ) -> Result<(), EvalIOError> {
        let parse = |p: &str| {
            self.store_dir
                .parse_path(p)
                .map_err(|e| EvalIOError::Store(format!("invalid store path '{p}': {e}")))
        };
        let store_path = parse(path)?;
        let references = references
            .iter()
            .map(|r| parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        let expected = tvix_store::NixHash::parse(nar_hash, None).map_err(|e| {
            EvalIOError::Store(format!("invalid NAR hash '{nar_hash}' of '{path}': {e}"))
        })?;
        let store = &**self.store().map_err(EvalIOError::Store)?;
        let (node, hash, size) = cnar::ingest_nar(store, nar).map_err(EvalIOError::store)?;
        if hash.algo() != expected.algo() || hash.digest() != expected.digest() {
            return Err(EvalIOError::HashMismatch {
                path: path.to_string(),
                expected: nar_hash.to_string(),
                got: hash.to_prefixed(tvix_store::hash::HashEncoding::Nix32),
            });
        }
        let info = tvix_store::pathinfo::PathInfo {
            store_path,
            node,
            nar_sha256: hash.digest().try_into().map_err(|_| {
                EvalIOError::Store(format!("the NAR hash of '{path}' is not a sha256"))
            })?,
            nar_size: size,
            references,
            deriver: None,
            signatures: Vec::new(),
            ca: ca.map(str::to_string),
        };
        store
            .put_path_info_batched(&info)
            .map_err(EvalIOError::store)
    }

    fn realise(&self, outputs: &[DrvOutput]) -> Result<(), EvalIOError> {
        // The builds read the `.drv` files this evaluation wrote: make them durable first.
        self.commit()
            .map_err(|e| EvalIOError::Store(format!("committing to the store: {e}")))?;
        let realiser = self.realiser().map_err(EvalIOError::Store)?;
        let targets: Vec<realise::DrvOutput> = outputs
            .iter()
            .map(|o| realise::DrvOutput {
                drv: o.drv.clone(),
                output: o.output.clone(),
            })
            .collect();
        // Logs as Nix shows an evaluation's builds: `building '...'...` and the log lines,
        // without nix-build's list of what will be built.
        let nix_style = NixStyleOutput::default();
        let show = |e: &Event<'_>| {
            if !matches!(e, Event::Planned { .. }) {
                nix_style.event(e);
            }
        };
        let subscribers: [&dyn Subscriber; 1] = match &self.build_events {
            Some(s) => [s.as_ref()],
            None => [&show],
        };
        realiser
            // The log was shown as the build ran: the message leaves its tail out.
            .realise(&targets, &subscribers, &CancelToken::new(), false)
            .map(|_| ())
            .map_err(|e| EvalIOError::BuildFailed {
                message: e.to_string(),
                exit_status: e.exit_status(),
            })
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

/// Any evaluator IO with the fetch mechanics of [`crate::fetch`] (downloads, archives,
/// git exports, NAR decompression and the fetch cache, `$XDG_CACHE_HOME/tvix/fetchers`),
/// and gates: fetching, and building through the IO inside (import-from-derivation), can
/// each be refused with a message that says what would allow it (the language server's
/// settings). Everything else goes to the IO inside.
pub struct Gated<I> {
    inner: I,
    cache: fetch::cache::Cache,
    fetch_refusal: Option<String>,
    build_refusal: Option<String>,
    /// Counters of files read and derivations written, when someone watches.
    progress: Option<Arc<EvalProgress>>,
}

impl<I: EvalIO> Gated<I> {
    /// `inner`, fetching with the current user's fetch cache, building as `inner` does.
    pub fn new(inner: I) -> Gated<I> {
        Gated {
            inner,
            cache: fetch::cache::Cache::open(),
            fetch_refusal: None,
            build_refusal: None,
            progress: None,
        }
    }

    /// Counts files read and derivations written in `progress` (for a display of the
    /// evaluation's progress).
    pub fn counting(mut self, progress: Arc<EvalProgress>) -> Gated<I> {
        self.progress = Some(progress);
        self
    }

    /// Refuses every fetch (downloads, git, archives); `why` ends the message, after
    /// `cannot download '...': `.
    pub fn refuse_fetches(mut self, why: impl Into<String>) -> Gated<I> {
        self.fetch_refusal = Some(why.into());
        self
    }

    /// Refuses every build evaluation asks for; `why` ends the message, after
    /// `cannot build '...' during evaluation: `.
    pub fn refuse_builds(mut self, why: impl Into<String>) -> Gated<I> {
        self.build_refusal = Some(why.into());
        self
    }

    fn fetch_gate(&self, what: impl FnOnce() -> String) -> Result<(), FetchError> {
        match &self.fetch_refusal {
            Some(why) => Err(FetchError::Refused(format!("cannot {}: {why}", what()))),
            None => Ok(()),
        }
    }
}

impl<I: EvalIO> EvalIO for Gated<I> {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let bytes = self.inner.read_file(path)?;
        if let Some(p) = &self.progress {
            p.file_read();
        }
        Ok(bytes)
    }
    fn path_exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.path_exists(path)
    }
    fn file_type(&self, path: &Path) -> io::Result<FileType> {
        self.inner.file_type(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<(Vec<u8>, FileType)>> {
        self.inner.read_dir(path)
    }
    fn add_path(
        &self,
        source: &Path,
        name: &str,
        method: FileIngestionMethod,
        filter: Option<PathFilter<'_>>,
    ) -> Result<AddedPath, EvalIOError> {
        self.inner.add_path(source, name, method, filter)
    }
    fn add_text(
        &self,
        name: &str,
        contents: &[u8],
        references: &[String],
    ) -> Result<String, EvalIOError> {
        let path = self.inner.add_text(name, contents, references)?;
        if let Some(p) = self.progress.as_ref().filter(|_| name.ends_with(".drv")) {
            p.derivation();
        }
        Ok(path)
    }
    fn writes_to_store(&self) -> bool {
        self.inner.writes_to_store()
    }
    fn add_nar(
        &self,
        path: &str,
        nar: &mut dyn io::Read,
        nar_hash: &str,
        references: &[String],
        ca: Option<&str>,
    ) -> Result<(), EvalIOError> {
        self.inner.add_nar(path, nar, nar_hash, references, ca)
    }
    fn realise(&self, outputs: &[DrvOutput]) -> Result<(), EvalIOError> {
        if let Some(why) = &self.build_refusal {
            let first = outputs
                .first()
                .map(|o| o.display(&self.store_dir()))
                .unwrap_or_default();
            return Err(EvalIOError::Refused {
                what: format!("build '{first}' during evaluation"),
                reason: why.clone(),
            });
        }
        self.inner.realise(outputs)
    }
    fn commit(&self) -> io::Result<()> {
        self.inner.commit()
    }
    fn store_dir(&self) -> String {
        self.inner.store_dir()
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.inner.canonicalize(path)
    }
    fn download(&self, url: &str, dest: &Path) -> Result<(), FetchError> {
        self.fetch_gate(|| format!("download '{url}'"))?;
        fetch::download(url, dest)
    }
    fn unpack_archive(&self, file: &Path, dest: &Path, what: &str) -> Result<PathBuf, FetchError> {
        self.fetch_gate(|| format!("unpack '{what}'"))?;
        fetch::archive::unpack(file, dest, what)
    }
    fn git_export(
        &self,
        req: &GitRequest<'_>,
        dest: &Path,
        scratch: &Path,
    ) -> Result<GitRevision, FetchError> {
        self.fetch_gate(|| format!("fetch the Git repository '{}'", req.url))?;
        // Clones of remote repositories are kept in the user's cache when there is one.
        let clones = fetch::cache::tvix_cache_dir()
            .filter(|c| std::fs::create_dir_all(c).is_ok())
            .unwrap_or_else(|| scratch.to_path_buf());
        fetch::git::export(req, dest, &clones)
    }
    fn decompress<'a>(
        &self,
        data: Box<dyn io::Read + Send + 'a>,
        compression: &str,
        what: &str,
    ) -> Result<Box<dyn io::Read + Send + 'a>, FetchError> {
        fetch::nar::decompress(data, compression, what)
    }
    fn fetch_cache_get(&self, key: &str) -> Option<CacheEntry> {
        self.cache.get(key)
    }
    fn fetch_cache_put(&self, key: &str, fields: &BTreeMap<String, String>) {
        self.cache.put(key, fields)
    }
}

/// The IO evaluation uses: compute-only (nothing written, like Nix's `dummy://`) with
/// `--readonly-mode`, the store URL `dummy://`, or `NIX_REMOTE=dummy://` and no tvix store
/// named; otherwise the tvix store from `--store`, `$TVIX_STORE`, or the local default.
/// `options` are the `--option NAME VALUE` pairs, for the builds of
/// import-from-derivation.
pub fn eval_io(
    store_flag: Option<&str>,
    readonly: bool,
    options: &BTreeMap<String, String>,
) -> Result<Box<dyn EvalIO>, String> {
    counted_eval_io(store_flag, readonly, options, None, None)
}

/// [`eval_io`], counting files read and derivations written in `progress` when given.
pub fn counted_eval_io(
    store_flag: Option<&str>,
    readonly: bool,
    options: &BTreeMap<String, String>,
    progress: Option<Arc<EvalProgress>>,
    build_events: Option<Arc<dyn Subscriber + Send>>,
) -> Result<Box<dyn EvalIO>, String> {
    fn count<I: EvalIO>(io: Gated<I>, progress: Option<Arc<EvalProgress>>) -> Gated<I> {
        match progress {
            Some(p) => io.counting(p),
            None => io,
        }
    }
    match store_url(store_flag) {
        Some(url) if !readonly => {
            let io = StoreIO::new(url, options.clone())?;
            let io = match build_events {
                Some(events) => io.showing_builds_to(events),
                None => io,
            };
            Ok(Box::new(count(Gated::new(io), progress)))
        }
        _ => Ok(Box::new(count(Gated::new(StdIO::new()), progress))),
    }
}

/// The tvix store evaluation writes to: `store_flag`, `$TVIX_STORE`, or the local default;
/// `None` for `dummy://` (named, or `NIX_REMOTE=dummy://` and no tvix store named).
pub fn store_url(store_flag: Option<&str>) -> Option<String> {
    let named = store_flag
        .map(str::to_string)
        .or_else(|| std::env::var("TVIX_STORE").ok().filter(|u| !u.is_empty()));
    let nix_dummy = std::env::var("NIX_REMOTE").is_ok_and(|r| r.starts_with("dummy"));
    let url = match named {
        Some(u) => u,
        None if nix_dummy => return None,
        None => tvix_store::castore::default_store_url(),
    };
    (!url.starts_with("dummy")).then_some(url)
}

/// The setting of the language server that allows fetching during evaluation.
pub const EDITOR_ALLOW_FETCH: &str = "tvix.evaluation.allowFetch";
/// The setting of the language server that allows building during evaluation.
pub const EDITOR_ALLOW_BUILD: &str = "tvix.evaluation.allowBuild";

/// The IO of an editor's evaluations (the language server): hover and completion must
/// never download or build by surprise, so fetching and building are refused unless
/// allowed (by [`EDITOR_ALLOW_FETCH`] and [`EDITOR_ALLOW_BUILD`]), each refusal naming
/// the setting. Nothing is written to a store unless building is allowed; then the tvix
/// store of `$TVIX_STORE` (else the local default) is used, as by `tvix eval`.
pub fn editor_io(allow_fetch: bool, allow_build: bool) -> Result<Box<dyn EvalIO>, String> {
    fn gate<I: EvalIO>(io: Gated<I>, allow_fetch: bool) -> Gated<I> {
        if allow_fetch {
            io
        } else {
            io.refuse_fetches(format!(
                "the language server does not fetch unless the setting \
                 '{EDITOR_ALLOW_FETCH}' is true"
            ))
        }
    }
    if !allow_build {
        let io = Gated::new(StdIO::new()).refuse_builds(format!(
            "the language server does not build unless the setting '{EDITOR_ALLOW_BUILD}' \
             is true"
        ));
        return Ok(Box::new(gate(io, allow_fetch)));
    }
    match store_url(None) {
        // A dummy store cannot hold what a build needs: builds stay refused, by StdIO.
        None => Ok(Box::new(gate(Gated::new(StdIO::new()), allow_fetch))),
        Some(url) => Ok(Box::new(gate(
            Gated::new(StoreIO::new(url, BTreeMap::new())?),
            allow_fetch,
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_counts_files_read_and_derivations_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.nix");
        std::fs::write(&file, "1").unwrap();
        let progress = Arc::new(EvalProgress::new());
        let io = Gated::new(StdIO::new()).counting(progress.clone());
        io.read_file(&file).unwrap();
        // A file that cannot be read was not read.
        assert!(io.read_file(&dir.path().join("missing")).is_err());
        io.add_text("x.drv", b"Derive()", &[]).unwrap();
        io.add_text("notes.txt", b"text", &[]).unwrap();
        let counts = progress.counts();
        assert_eq!(counts.files_read, 1);
        assert_eq!(counts.derivations, 1);
    }

    #[test]
    fn names_that_are_not_utf8_are_found_in_the_store() {
        use std::ffi::OsStr;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join(OsStr::from_bytes(b"a\xff")), "ff").unwrap();
        std::fs::write(src.join(OsStr::from_bytes(b"a\xfe")), "fe").unwrap();
        let io = StoreIO::new("memory://".to_string(), BTreeMap::new()).unwrap();
        let added = io
            .add_path(&src, "bytes", FileIngestionMethod::Recursive, None)
            .unwrap();
        let root = PathBuf::from(&added.store_path);
        // Both names would read "a\u{FFFD}" if the path were decoded as UTF-8.
        let ff = root.join(OsStr::from_bytes(b"a\xff"));
        let fe = root.join(OsStr::from_bytes(b"a\xfe"));
        assert_eq!(io.read_file(&ff).unwrap(), b"ff");
        assert_eq!(io.read_file(&fe).unwrap(), b"fe");
        assert_eq!(io.file_type(&ff).unwrap(), FileType::Regular);
        let names: Vec<Vec<u8>> = io
            .read_dir(&root)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, vec![b"a\xfe".to_vec(), b"a\xff".to_vec()]);
        let missing = root.join(OsStr::from_bytes(b"a\xfd"));
        assert!(!io.path_exists(&missing).unwrap());
    }
}
