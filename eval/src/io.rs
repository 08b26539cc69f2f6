//! The evaluator's one window on the outside world. The CLI uses [`StdIO`]; the REPL, the
//! language server and the coordinator plug in their own (sandboxed reads, a real store,
//! import-from-derivation).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

pub use crate::fetch::{CacheEntry, FetchError, GitRequest, GitRevision};

pub use tvix_store::FileIngestionMethod;
use tvix_store::{NixHash, StorePath};

/// One output of a derivation that evaluation needs built before it can read a path
/// (import-from-derivation): the `.drv` store path and the output's name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DrvOutput {
    /// The derivation's `.drv` store path.
    pub drv: StorePath,
    /// The output's name (`out`, `dev`, ...).
    pub output: String,
}

impl DrvOutput {
    /// `/nix/store/...-name.drv^out`, as current Nix names a derivation output in messages.
    pub fn display(&self, store_dir: &str) -> String {
        format!(
            "{}/{}^{}",
            store_dir.trim_end_matches('/'),
            self.drv.to_base_name(),
            self.output
        )
    }
}

/// The type of a directory entry, as `builtins.readDir` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileType {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// Anything else (sockets, devices...).
    Unknown,
}

impl FileType {
    /// The name Nix uses.
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Regular => "regular",
            FileType::Directory => "directory",
            FileType::Symlink => "symlink",
            FileType::Unknown => "unknown",
        }
    }
}

/// Everything the evaluator needs from outside.
pub trait EvalIO {
    /// Reads a whole file.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Whether a path exists (following symlinks).
    fn path_exists(&self, path: &Path) -> io::Result<bool>;
    /// The type of the file at `path`, without following a final symlink.
    fn file_type(&self, path: &Path) -> io::Result<FileType>;
    /// The entries of a directory, sorted by name.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<(Vec<u8>, FileType)>>;
    /// Adds the file system object at `source` to the store as `name` (a fixed-output path
    /// by `method`, sha256) and returns its store path and content hash. `filter` decides,
    /// for each object below the root, whether it is kept. Without a store the path is only
    /// computed, as with the reference's `dummy://` store.
    fn add_path(
        &self,
        source: &Path,
        name: &str,
        method: FileIngestionMethod,
        filter: Option<PathFilter<'_>>,
    ) -> Result<AddedPath, EvalIOError>;
    /// Adds what a fetcher fetched (`fetchurl`, `fetchTarball`, `fetchGit`, `fetchTree`),
    /// as [`EvalIO::add_path`] does. A separate method because the reference writes
    /// fetched content even in read-only mode (it must be readable once fetched, as by
    /// `import (fetchTarball ...)`), where the other additions are only computed.
    fn add_fetched_path(
        &self,
        source: &Path,
        name: &str,
        method: FileIngestionMethod,
    ) -> Result<AddedPath, EvalIOError> {
        self.add_path(source, name, method, None)
    }
    /// Adds a text file (`builtins.toFile`, a `.drv` file) referring to `references` and
    /// returns its store path; without a store the path is only computed.
    fn add_text(
        &self,
        name: &str,
        contents: &[u8],
        references: &[String],
    ) -> Result<String, EvalIOError>;
    /// Whether added paths are really written (false for compute-only IO): evaluation skips
    /// serialising what would only be thrown away, such as `.drv` files.
    fn writes_to_store(&self) -> bool;
    /// Adds the store path `path` from its NAR (as fetched from a binary cache) with its
    /// `references` and content address `ca`; fails if the NAR's sha256 is not `nar_hash`
    /// (`sha256:` and nix32). Paths can only be added this way to a real store.
    fn add_nar(
        &self,
        path: &str,
        nar: &mut dyn io::Read,
        nar_hash: &str,
        references: &[String],
        ca: Option<&str>,
    ) -> Result<(), EvalIOError> {
        let _ = (nar, nar_hash, references, ca);
        Err(EvalIOError::Refused {
            what: format!("add '{path}' to the store"),
            reason: "evaluation does not write to a store here \
                     (--readonly-mode or a dummy:// store)"
                .to_string(),
        })
    }
    /// Builds (or finds already valid) the given derivation outputs, so that their paths
    /// can be read (import-from-derivation: `import`, `readFile`, `readDir`, `pathExists`,
    /// `builtins.path`, ... of a string whose context names them). The `.drv` files are in
    /// the store already (written by this evaluation or earlier). Nothing can be built
    /// without a store, so the default refuses.
    fn realise(&self, outputs: &[DrvOutput]) -> Result<(), EvalIOError> {
        let first = outputs
            .first()
            .map(|o| o.display(&self.store_dir()))
            .unwrap_or_default();
        Err(EvalIOError::Refused {
            what: format!("build '{first}' during evaluation"),
            reason: "evaluation has no store to build in here \
                     (--readonly-mode or a dummy:// store)"
                .to_string(),
        })
    }
    /// Downloads `url` (`file://`, `http://`, `https://`) into the file `dest`.
    fn download(&self, url: &str, dest: &Path) -> Result<(), FetchError> {
        let _ = dest;
        Err(refused(&format!("download '{url}'")))
    }
    /// Unpacks the archive `file` (tar, plain or compressed) into the empty directory
    /// `dest` and returns the result: its single top-level directory, else `dest`. `what`
    /// names the archive in errors.
    fn unpack_archive(&self, file: &Path, dest: &Path, what: &str) -> Result<PathBuf, FetchError> {
        let _ = (file, dest);
        Err(refused(&format!("unpack '{what}'")))
    }
    /// Exports the requested git revision into the empty directory `dest`; `scratch` is a
    /// temporary directory the fetch may use when it has no cache to keep clones in.
    fn git_export(
        &self,
        req: &GitRequest<'_>,
        dest: &Path,
        scratch: &Path,
    ) -> Result<GitRevision, FetchError> {
        let _ = (dest, scratch);
        Err(refused(&format!("fetch the Git repository '{}'", req.url)))
    }
    /// A reader of the decompressed contents of a binary cache's NAR file read from
    /// `data` (`compression` as its narinfo names it: `none`, `xz`, `bzip2`, `zstd`);
    /// `what` names it in errors. Streaming: the NAR is never held in memory whole.
    fn decompress<'a>(
        &self,
        data: Box<dyn io::Read + Send + 'a>,
        compression: &str,
        what: &str,
    ) -> Result<Box<dyn io::Read + Send + 'a>, FetchError> {
        let _ = (data, compression);
        Err(refused(&format!("decompress '{what}'")))
    }
    /// What an earlier fetch remembered under `key` (the fetch cache), if anything.
    fn fetch_cache_get(&self, key: &str) -> Option<CacheEntry> {
        let _ = key;
        None
    }
    /// Remembers `fields` under `key` for later fetches; failures are ignored (the cache is
    /// an optimisation).
    fn fetch_cache_put(&self, key: &str, fields: &BTreeMap<String, String>) {
        let _ = (key, fields);
    }
    /// Makes every path added so far durable. Stores may register added paths in a batch
    /// (one disk sync for a whole evaluation instead of one per `.drv` file); whoever
    /// shows a result that names store paths commits first.
    fn commit(&self) -> io::Result<()> {
        Ok(())
    }
    /// The store directory (`/nix/store` unless `NIX_STORE_DIR` says otherwise).
    fn store_dir(&self) -> String;
    /// Resolves symlinks in `path` (for `import` of a directory's `default.nix`, etc.).
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
}

/// The error of a fetch method of an IO that does not fetch.
fn refused(what: &str) -> FetchError {
    FetchError::Refused(format!(
        "cannot {what}: this evaluation does not fetch from the network or run git \
         (compute-only IO)"
    ))
}

/// Why a store operation of an [`EvalIO`] (adding a path, a text file or a NAR, building
/// outputs) failed. Its `Display` is the message shown after `error: `, word for word what
/// Nix shows where Nix has a message of its own.
#[derive(Debug, thiserror::Error)]
pub enum EvalIOError {
    /// The path to add does not exist.
    #[error("path '{}' does not exist", .0.display())]
    Missing(PathBuf),
    /// Reading the path to add failed.
    #[error("reading '{}': {source}", path.display())]
    Io {
        /// The path being read.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A NAR's hash is not the one its narinfo promised.
    #[error("NAR hash mismatch in '{path}': expected {expected}, got {got}")]
    HashMismatch {
        /// The store path being added.
        path: String,
        /// The hash it should have had (`sha256:` and nix32).
        expected: String,
        /// The hash it has.
        got: String,
    },
    /// The store refused or failed the operation; the store crate's message (or what could
    /// not be parsed into a store path or hash).
    #[error("{0}")]
    Store(String),
    /// A path filter (`builtins.filterSource`, `builtins.path`'s `filter`) failed; its
    /// message unchanged.
    #[error("{0}")]
    Filter(String),
    /// This IO does not do that here: a read-only or `dummy://` store, or a setting
    /// forbids it (`cannot {what}: {reason}`).
    #[error("cannot {what}: {reason}")]
    Refused {
        /// What was refused (`build '/nix/store/...drv^out' during evaluation`).
        what: String,
        /// Why.
        reason: String,
    },
    /// A build failed: Nix's words and, for callers that did not show the log, its last
    /// lines.
    #[error("{message}")]
    BuildFailed {
        /// What to show after `error: `.
        message: String,
        /// 100 for a failed build, 101 for a timeout, ...
        exit_status: i32,
    },
}

impl EvalIOError {
    /// The exit status Nix ends with for this error: a failed build's own, else 1.
    pub fn exit_status(&self) -> i32 {
        match self {
            EvalIOError::BuildFailed { exit_status, .. } => *exit_status,
            _ => 1,
        }
    }

    /// The error of a failed store operation, by its message.
    pub fn store(e: impl std::fmt::Display) -> EvalIOError {
        EvalIOError::Store(e.to_string())
    }
}

/// Decides, for each object below the root of a path being added (its path and type),
/// whether it is kept; an `Err` stops the add with that message.
pub type PathFilter<'a> = &'a mut dyn FnMut(&Path, FileType) -> Result<bool, EvalIOError>;

/// What [`EvalIO::add_path`] produced.
#[derive(Clone, Debug)]
pub struct AddedPath {
    /// The store path, e.g. `/nix/store/...-source`.
    pub store_path: String,
    /// The hash the path was computed from: the NAR sha256 when recursive, the file's
    /// sha256 when flat.
    pub content_hash: NixHash,
}

/// Computes the store path [`EvalIO::add_path`] gives, without writing anything.
pub fn compute_added_path(
    store_dir: &str,
    source: &Path,
    name: &str,
    method: FileIngestionMethod,
    filter: Option<PathFilter<'_>>,
) -> Result<AddedPath, EvalIOError> {
    let dir = tvix_store::StoreDir::new(store_dir).map_err(EvalIOError::store)?;
    if std::fs::symlink_metadata(source).is_err() {
        return Err(EvalIOError::Missing(source.to_path_buf()));
    }
    let content_hash = match method {
        FileIngestionMethod::Recursive => {
            let result = match filter {
                None => tvix_store::nar::nar_hash_of_path(source),
                Some(f) => tvix_store::nar::nar_hash_of_path_filtered(source, |p, meta| {
                    f(p, file_type_of(meta.file_type())).map_err(std::io::Error::other)
                }),
            };
            result.map_err(nar_error)?.0
        }
        FileIngestionMethod::Flat => {
            let bytes = std::fs::read(source).map_err(|e| EvalIOError::Io {
                path: source.to_path_buf(),
                source: e,
            })?;
            NixHash::sha256(&bytes)
        }
    };
    let p = dir
        .make_fixed_output_path(name, method, &content_hash, [], false)
        .map_err(EvalIOError::store)?;
    Ok(AddedPath {
        store_path: dir.display(&p),
        content_hash,
    })
}

/// The error of a failed NAR dump; a filter's own error is passed through unchanged.
pub fn nar_error(e: tvix_store::nar::NarError) -> EvalIOError {
    match e {
        tvix_store::nar::NarError::Filter { source, .. } => EvalIOError::Filter(source.to_string()),
        other => EvalIOError::store(other),
    }
}

/// Computes the store path [`EvalIO::add_text`] gives, without writing anything.
pub fn compute_text_path(
    store_dir: &str,
    name: &str,
    contents: &[u8],
    references: &[String],
) -> Result<String, EvalIOError> {
    let dir = tvix_store::StoreDir::new(store_dir).map_err(EvalIOError::store)?;
    let refs = references
        .iter()
        .map(|r| dir.parse_path(r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(EvalIOError::store)?;
    let p = dir
        .make_text_path(name, contents, &refs)
        .map_err(EvalIOError::store)?;
    Ok(dir.display(&p))
}

/// Nix's read-only mode, the default of `nix-instantiate --eval` (without
/// `--read-write-mode`): store paths of sources, `toFile` results and derivations are
/// computed and nothing of them is written, as the reference does; reading such a path
/// afterwards finds nothing, as there. Fetched content is still added through `inner`
/// (the reference writes it too, and `import (fetchTarball ...)` must read it), and
/// reads, fetch mechanics, NAR additions and builds go to `inner` unchanged.
pub struct ReadOnly {
    inner: Box<dyn EvalIO>,
}

impl ReadOnly {
    /// `inner` in read-only mode.
    pub fn new(inner: Box<dyn EvalIO>) -> ReadOnly {
        ReadOnly { inner }
    }
}

impl EvalIO for ReadOnly {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read_file(path)
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
        compute_added_path(&self.inner.store_dir(), source, name, method, filter)
    }
    fn add_fetched_path(
        &self,
        source: &Path,
        name: &str,
        method: FileIngestionMethod,
    ) -> Result<AddedPath, EvalIOError> {
        self.inner.add_fetched_path(source, name, method)
    }
    fn add_text(
        &self,
        name: &str,
        contents: &[u8],
        references: &[String],
    ) -> Result<String, EvalIOError> {
        compute_text_path(&self.inner.store_dir(), name, contents, references)
    }
    fn writes_to_store(&self) -> bool {
        false
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
        self.inner.realise(outputs)
    }
    fn download(&self, url: &str, dest: &Path) -> Result<(), FetchError> {
        self.inner.download(url, dest)
    }
    fn unpack_archive(&self, file: &Path, dest: &Path, what: &str) -> Result<PathBuf, FetchError> {
        self.inner.unpack_archive(file, dest, what)
    }
    fn git_export(
        &self,
        req: &GitRequest<'_>,
        dest: &Path,
        scratch: &Path,
    ) -> Result<GitRevision, FetchError> {
        self.inner.git_export(req, dest, scratch)
    }
    fn decompress<'a>(
        &self,
        data: Box<dyn io::Read + Send + 'a>,
        compression: &str,
        what: &str,
    ) -> Result<Box<dyn io::Read + Send + 'a>, FetchError> {
        self.inner.decompress(data, compression, what)
    }
    fn fetch_cache_get(&self, key: &str) -> Option<CacheEntry> {
        self.inner.fetch_cache_get(key)
    }
    fn fetch_cache_put(&self, key: &str, fields: &BTreeMap<String, String>) {
        self.inner.fetch_cache_put(key, fields)
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
}

/// Direct access to the local filesystem, with no store to write to: store paths are
/// computed, nothing is written (the reference's `dummy://` store).
pub struct StdIO {
    store_dir: String,
}

impl StdIO {
    /// Uses `NIX_STORE_DIR` or `/nix/store`.
    pub fn new() -> StdIO {
        let store_dir = std::env::var("NIX_STORE_DIR").unwrap_or_else(|_| "/nix/store".to_string());
        StdIO { store_dir }
    }
}

impl Default for StdIO {
    fn default() -> Self {
        Self::new()
    }
}

/// The [`FileType`] of a standard library file type.
pub fn file_type_of(ft: std::fs::FileType) -> FileType {
    if ft.is_symlink() {
        FileType::Symlink
    } else if ft.is_dir() {
        FileType::Directory
    } else if ft.is_file() {
        FileType::Regular
    } else {
        FileType::Unknown
    }
}

impl EvalIO for StdIO {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn path_exists(&self, path: &Path) -> io::Result<bool> {
        match std::fs::metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) if e.raw_os_error() == Some(20) => Ok(false), // ENOTDIR
            Err(e) => Err(e),
        }
    }

    fn file_type(&self, path: &Path) -> io::Result<FileType> {
        Ok(file_type_of(std::fs::symlink_metadata(path)?.file_type()))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(Vec<u8>, FileType)>> {
        use std::os::unix::ffi::OsStrExt;
        let mut out = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            out.push((
                entry.file_name().as_bytes().to_vec(),
                file_type_of(entry.file_type()?),
            ));
        }
        out.sort();
        Ok(out)
    }

    fn add_path(
        &self,
        source: &Path,
        name: &str,
        method: FileIngestionMethod,
        filter: Option<PathFilter<'_>>,
    ) -> Result<AddedPath, EvalIOError> {
        compute_added_path(&self.store_dir, source, name, method, filter)
    }

    fn add_text(
        &self,
        name: &str,
        contents: &[u8],
        references: &[String],
    ) -> Result<String, EvalIOError> {
        compute_text_path(&self.store_dir, name, contents, references)
    }

    fn writes_to_store(&self) -> bool {
        false
    }

    fn store_dir(&self) -> String {
        self.store_dir.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_show_the_messages_users_see() {
        let io = StdIO::new();
        let e = io
            .add_nar("/nix/store/x-y", &mut io::empty(), "sha256:0", &[], None)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot add '/nix/store/x-y' to the store: evaluation does not write to a store \
             here (--readonly-mode or a dummy:// store)"
        );
        assert_eq!(e.exit_status(), 1);

        let missing = Path::new("/nonexistent/tvix-eval-io-test");
        let e = compute_added_path(
            "/nix/store",
            missing,
            "x",
            FileIngestionMethod::Recursive,
            None,
        )
        .unwrap_err();
        assert!(matches!(e, EvalIOError::Missing(_)));
        assert_eq!(
            e.to_string(),
            "path '/nonexistent/tvix-eval-io-test' does not exist"
        );

        let e = EvalIOError::BuildFailed {
            message: "builder failed".to_string(),
            exit_status: 100,
        };
        assert_eq!(
            (e.to_string().as_str(), e.exit_status()),
            ("builder failed", 100)
        );
    }

    #[test]
    fn a_filter_error_stops_the_add_with_its_message() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "x").unwrap();
        let mut filter = |_: &Path, _: FileType| -> Result<bool, EvalIOError> {
            Err(EvalIOError::Filter("no".into()))
        };
        let e = compute_added_path(
            "/nix/store",
            dir.path(),
            "x",
            FileIngestionMethod::Recursive,
            Some(&mut filter),
        )
        .unwrap_err();
        assert!(matches!(&e, EvalIOError::Filter(m) if m == "no"), "{e:?}");
    }
}
