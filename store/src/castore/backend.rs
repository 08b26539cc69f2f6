//! Storage backends under [`super::Store`]: a chunk store plus three key-value tables.
//!
//! - [`MemoryBackend`]: everything in memory (`memory://`).
//! - [`LocalBackend`]: the embedded default (`local:///dir`): chunk files under
//!   `dir/chunks/<first two hex digits>/<hex digest>`, written to a temporary name and
//!   renamed into place (readers see a whole chunk or none); metadata in the `redb`
//!   database `dir/db.redb`, opened in multi-writer mode so several processes can use the
//!   store at once.
//!
//! The local backend batches: blob manifests and directories are kept in memory (visible
//! to this process) until a path info is registered, the batch grows large, or the store
//! is dropped. A flush first syncs the file system holding the chunks (so every chunk a
//! manifest names is durable, including chunks another process wrote), then commits the
//! batch — with the path info, if that caused the flush — in one durable transaction. A
//! path is therefore never valid before its contents are on disk, and a crash loses only
//! unregistered data.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use redb::{ConcurrencyMode, Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{db_err, B3Digest, StoreError};

/// The metadata tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Table {
    /// Blob digest -> chunk manifest.
    Blobs,
    /// Directory digest -> canonical encoding.
    Directories,
    /// Store path digest (20 bytes) -> path info.
    PathInfos,
}

impl Table {
    fn def(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        match self {
            Table::Blobs => TableDefinition::new("blobs"),
            Table::Directories => TableDefinition::new("directories"),
            Table::PathInfos => TableDefinition::new("pathinfos"),
        }
    }

    const ALL: [Table; 3] = [Table::Blobs, Table::Directories, Table::PathInfos];
}

/// What a [`super::Store`] needs from its storage.
pub(crate) trait Backend: Send + Sync {
    /// The chunk with this digest, unverified, or `None`.
    fn chunk_get(&self, d: &B3Digest) -> Result<Option<Vec<u8>>, StoreError>;
    /// Whether the chunk exists.
    fn chunk_has(&self, d: &B3Digest) -> Result<bool, StoreError>;
    /// Stores a chunk durably (the caller computed `d` from `data`).
    fn chunk_put(&self, d: &B3Digest, data: &[u8]) -> Result<(), StoreError>;
    /// Every stored chunk's digest.
    fn chunk_list(&self) -> Result<Vec<B3Digest>, StoreError>;
    /// A metadata value.
    fn kv_get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores a metadata value durably.
    fn kv_put(&self, t: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    /// Every key of a table.
    fn kv_keys(&self, t: Table) -> Result<Vec<Vec<u8>>, StoreError>;
}

/// Metadata of the memory backend: (table, key) -> value.
type MemoryTables = HashMap<(Table, Vec<u8>), Vec<u8>>;

/// Everything in memory, lost when the store is dropped.
#[derive(Default)]
pub(crate) struct MemoryBackend {
    chunks: Mutex<HashMap<B3Digest, Vec<u8>>>,
    tables: Mutex<MemoryTables>,
}

fn poisoned() -> StoreError {
    StoreError::Io(io::Error::other("store lock poisoned"))
}

impl Backend for MemoryBackend {
    fn chunk_get(&self, d: &B3Digest) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.chunks.lock().map_err(|_| poisoned())?.get(d).cloned())
    }

    fn chunk_has(&self, d: &B3Digest) -> Result<bool, StoreError> {
        Ok(self.chunks.lock().map_err(|_| poisoned())?.contains_key(d))
    }

    fn chunk_put(&self, d: &B3Digest, data: &[u8]) -> Result<(), StoreError> {
        self.chunks
            .lock()
            .map_err(|_| poisoned())?
            .entry(*d)
            .or_insert_with(|| data.to_vec());
        Ok(())
    }

    fn chunk_list(&self) -> Result<Vec<B3Digest>, StoreError> {
        Ok(self
            .chunks
            .lock()
            .map_err(|_| poisoned())?
            .keys()
            .copied()
            .collect())
    }

    fn kv_get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tables
            .lock()
            .map_err(|_| poisoned())?
            .get(&(t, key.to_vec()))
            .cloned())
    }

    fn kv_put(&self, t: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.tables
            .lock()
            .map_err(|_| poisoned())?
            .insert((t, key.to_vec()), value.to_vec());
        Ok(())
    }

    fn kv_keys(&self, t: Table) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut keys: Vec<Vec<u8>> = self
            .tables
            .lock()
            .map_err(|_| poisoned())?
            .keys()
            .filter(|(tt, _)| *tt == t)
            .map(|(_, k)| k.clone())
            .collect();
        keys.sort();
        Ok(keys)
    }
}

/// Metadata not yet committed to the database.
type Batch = HashMap<(Table, Vec<u8>), Vec<u8>>;

/// Flush the batch once it holds this many entries.
const MAX_BATCH: usize = 8192;

/// The embedded on-disk store.
pub(crate) struct LocalBackend {
    chunks_dir: PathBuf,
    db: Database,
    tmp_counter: AtomicU64,
    pending: Mutex<Batch>,
}

fn path_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Path {
        path: path.to_path_buf(),
        source,
    }
}

impl LocalBackend {
    /// Opens (creating if needed) the store in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Self, StoreError> {
        let chunks_dir = dir.join("chunks");
        fs::create_dir_all(&chunks_dir).map_err(path_err(&chunks_dir))?;
        let db_path = dir.join("db.redb");
        let db = open_db(&db_path)?;
        // Create the tables once so readers never meet a missing one.
        let txn = db.begin_write().map_err(db_err)?;
        for t in Table::ALL {
            txn.open_table(t.def()).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(LocalBackend {
            chunks_dir,
            db,
            tmp_counter: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// Makes every chunk file on the store's file system durable.
    fn sync_chunks(&self) -> Result<(), StoreError> {
        let dir = fs::File::open(&self.chunks_dir).map_err(path_err(&self.chunks_dir))?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: `dir` is an open file descriptor for the duration of the call.
            let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
            if rc != 0 {
                return Err(path_err(&self.chunks_dir)(io::Error::last_os_error()));
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            drop(dir);
            // SAFETY: `sync` has no preconditions.
            unsafe { libc::sync() };
        }
        Ok(())
    }

    /// Commits the pending batch, plus `extra` if given, in one durable transaction after
    /// syncing the chunk files.
    fn flush(&self, extra: Option<(Table, &[u8], &[u8])>) -> Result<(), StoreError> {
        let mut pending = self.pending.lock().map_err(|_| poisoned())?;
        if pending.is_empty() && extra.is_none() {
            return Ok(());
        }
        self.sync_chunks()?;
        let txn = self.db.begin_write().map_err(db_err)?;
        for t in Table::ALL {
            let mut table = txn.open_table(t.def()).map_err(db_err)?;
            for ((tt, k), v) in pending.iter() {
                if *tt == t {
                    table.insert(k.as_slice(), v.as_slice()).map_err(db_err)?;
                }
            }
            if let Some((et, k, v)) = extra {
                if et == t {
                    table.insert(k, v).map_err(db_err)?;
                }
            }
        }
        txn.commit().map_err(db_err)?;
        pending.clear();
        Ok(())
    }

    fn chunk_path(&self, d: &B3Digest) -> PathBuf {
        let hex = d.to_hex();
        self.chunks_dir.join(&hex[..2]).join(hex)
    }
}

fn open_db(path: &Path) -> Result<Database, StoreError> {
    // Another process may be creating the file at the same moment; retry briefly.
    let mut delay = std::time::Duration::from_millis(5);
    let mut attempts = 0;
    loop {
        let res = Database::builder()
            .set_concurrency_mode(ConcurrencyMode::MultiWriter)
            .create(path);
        match res {
            Ok(db) => return Ok(db),
            Err(redb::DatabaseError::DatabaseAlreadyOpen) if attempts < 200 => {
                attempts += 1;
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_millis(100));
            }
            Err(e) => return Err(db_err(e)),
        }
    }
}

impl Backend for LocalBackend {
    fn chunk_get(&self, d: &B3Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let p = self.chunk_path(d);
        match fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(path_err(&p)(e)),
        }
    }

    fn chunk_has(&self, d: &B3Digest) -> Result<bool, StoreError> {
        let p = self.chunk_path(d);
        match fs::symlink_metadata(&p) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(path_err(&p)(e)),
        }
    }

    fn chunk_put(&self, d: &B3Digest, data: &[u8]) -> Result<(), StoreError> {
        let p = self.chunk_path(d);
        let dir = p.parent().unwrap_or(&self.chunks_dir).to_path_buf();
        fs::create_dir_all(&dir).map_err(path_err(&dir))?;
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".tmp-{}-{}-{}", std::process::id(), n, d.to_hex()));
        let res = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(data)?;
            drop(f);
            // The rename is atomic: readers see no chunk or the whole chunk. Another process
            // may have renamed the same content into place already; that is fine. The data
            // is synced before any metadata naming it is committed (see `flush`).
            fs::rename(&tmp, &p)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res.map_err(path_err(&p))
    }

    fn chunk_list(&self) -> Result<Vec<B3Digest>, StoreError> {
        let mut out = Vec::new();
        let rd = fs::read_dir(&self.chunks_dir).map_err(path_err(&self.chunks_dir))?;
        for sub in rd {
            let sub = sub.map_err(path_err(&self.chunks_dir))?;
            let sub_path = sub.path();
            if !sub_path.is_dir() {
                continue;
            }
            for e in fs::read_dir(&sub_path).map_err(path_err(&sub_path))? {
                let e = e.map_err(path_err(&sub_path))?;
                let name = e.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with('.') {
                    continue;
                }
                if let Ok(d) = B3Digest::parse(name) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn kv_get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self
            .pending
            .lock()
            .map_err(|_| poisoned())?
            .get(&(t, key.to_vec()))
        {
            return Ok(Some(v.clone()));
        }
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(t.def()).map_err(db_err)?;
        let v = table.get(key).map_err(db_err)?;
        Ok(v.map(|g| g.value().to_vec()))
    }

    fn kv_put(&self, t: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if t == Table::PathInfos {
            return self.flush(Some((t, key, value)));
        }
        let full = {
            let mut pending = self.pending.lock().map_err(|_| poisoned())?;
            pending.insert((t, key.to_vec()), value.to_vec());
            pending.len() >= MAX_BATCH
        };
        if full {
            self.flush(None)?;
        }
        Ok(())
    }

    fn kv_keys(&self, t: Table) -> Result<Vec<Vec<u8>>, StoreError> {
        self.flush(None)?;
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(t.def()).map_err(db_err)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(db_err)? {
            let (k, _) = item.map_err(db_err)?;
            out.push(k.value().to_vec());
        }
        Ok(out)
    }
}

impl Drop for LocalBackend {
    fn drop(&mut self) {
        // Unregistered blobs and directories are only a cache; losing them is harmless.
        let _ = self.flush(None);
    }
}
