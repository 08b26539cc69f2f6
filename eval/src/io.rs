//! The evaluator's one window on the outside world. The CLI uses [`StdIO`]; the REPL, the
//! language server and the coordinator plug in their own (sandboxed reads, a real store,
//! import-from-derivation).

use std::io;
use std::path::{Path, PathBuf};

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
    /// Copies a source path into the store and returns its store path.
    fn import_path(&self, path: &Path) -> Result<String, String>;
    /// The store directory (`/nix/store` unless `NIX_STORE_DIR` says otherwise).
    fn store_dir(&self) -> String;
    /// Resolves symlinks in `path` (for `import` of a directory's `default.nix`, etc.).
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
}

/// The store path of a source tree added by its NAR hash (what `"${./src}"` gives), named
/// after its last component.
pub fn source_store_path(store_dir: &str, path: &Path) -> Result<String, String> {
    let dir = tvix_store::StoreDir::new(store_dir).map_err(|e| e.to_string())?;
    if std::fs::symlink_metadata(path).is_err() {
        return Err(format!("path '{}' does not exist", path.display()));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (hash, _) = tvix_store::nar::nar_hash_of_path(path).map_err(|e| e.to_string())?;
    let p = dir
        .make_source_path(&name, &hash, [], false)
        .map_err(|e| e.to_string())?;
    Ok(dir.display(&p))
}

/// Direct access to the local filesystem, with no store to write to.
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

fn file_type_of(ft: std::fs::FileType) -> FileType {
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

    /// Computes the store path the source would get, without writing anything (like the
    /// reference's `dummy://` store).
    fn import_path(&self, path: &Path) -> Result<String, String> {
        source_store_path(&self.store_dir, path)
    }

    fn store_dir(&self) -> String {
        self.store_dir.clone()
    }
}
