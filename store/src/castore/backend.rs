//! Storage backends under [`super::Store`]: a chunk store plus key-value tables.
//!
//! - [`MemoryBackend`]: everything in memory (`memory://`).
//! - [`LocalBackend`]: the embedded default (`local:///dir`): chunks appended to pack
//!   files `dir/packs/<pid>-<time>-<n>.pack` (each process writes its own pack, never
//!   another's), their locations and all metadata in the `redb` database `dir/db.redb`,
//!   opened in multi-writer mode so several processes can use the store at once. Packs
//!   keep the number of files (and so of inode allocations, the dominant cost of one file
//!   per chunk) small.
//!
//! The local backend batches: chunk locations, blob manifests and directories are kept in
//! memory (visible to this process) until a path info is registered, the batch is
//! committed (path infos registered in a batch wait there too), the batch grows large, or
//! the store is dropped. A flush first syncs this process's pack (so every chunk
//! the batch names is durable; chunks of other processes are only ever found through
//! locations they committed after syncing their own pack), then commits the batch — with
//! the path info, if that caused the flush — in one durable transaction. A path is
//! therefore never valid before its contents are on disk, and a crash loses only
//! unregistered data (bytes at the end of a pack that no committed location names).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use redb::{ConcurrencyMode, Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::pack_writer::PackWriter;
use super::{db_err, B3Digest, StoreError};

/// The metadata tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Table {
    /// Blob digest -> chunk manifest.
    Blobs,
    /// Directory digest -> canonical encoding.
    Directories,
    /// Store path digest (20 bytes) -> path info.
    PathInfos,
    /// Chunk digest -> its location in a pack (local backend only).
    Chunks,
}

impl Table {
    pub(super) fn def(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        match self {
            Table::Blobs => TableDefinition::new("blobs"),
            Table::Directories => TableDefinition::new("directories"),
            Table::PathInfos => TableDefinition::new("pathinfos"),
            Table::Chunks => TableDefinition::new("chunks"),
        }
    }

    pub(super) const ALL: [Table; 4] = [
        Table::Blobs,
        Table::Directories,
        Table::PathInfos,
        Table::Chunks,
    ];
}

/// What a [`super::Store`] needs from its storage.
pub(crate) trait Backend: Send + Sync {
    /// Several chunks at once, unverified, in order (`None` for a missing one). The bytes
    /// are shared with the backend (no copy), so reading is cheap however large the batch.
    fn chunk_get_many(&self, ds: &[B3Digest]) -> Result<Vec<Option<Bytes>>, StoreError>;
    /// [`Backend::chunk_get_many`] with the checksum ([`super::chunk_sum`]) each chunk was
    /// stored with, where the backend keeps one (the local backend, for the chunks it
    /// wrote itself). The default has none: every chunk is checked against its digest.
    fn chunk_get_many_summed(
        &self,
        ds: &[B3Digest],
    ) -> Result<Vec<Option<StoredChunk>>, StoreError> {
        Ok(self
            .chunk_get_many(ds)?
            .into_iter()
            .map(|c| c.map(|data| StoredChunk { data, sum: None }))
            .collect())
    }
    /// Whether the chunk exists.
    fn chunk_has(&self, d: &B3Digest) -> Result<bool, StoreError>;
    /// Stores a chunk durably (the caller computed `d` from `data`).
    fn chunk_put(&self, d: &B3Digest, data: &[u8]) -> Result<(), StoreError>;
    /// Up to `limit` digests of stored chunks that sort after `after`, in order: listings
    /// are read page by page ([`chunk_digests`]), never whole.
    fn chunk_list_page(
        &self,
        after: Option<&B3Digest>,
        limit: usize,
    ) -> Result<Vec<B3Digest>, StoreError>;
    /// A metadata value.
    fn kv_get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Several metadata values of one table, in order (backends with transactions read
    /// them all in one).
    fn kv_get_many(&self, t: Table, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|k| self.kv_get(t, k)).collect()
    }
    /// For storing a blob: `None` if the blob's manifest is recorded already (then its
    /// chunks are stored too, since a manifest is recorded only after them and removed
    /// with them), else whether each of `chunks` is stored. Backends with transactions
    /// look everything up in one.
    fn blob_missing_chunks(
        &self,
        blob: &B3Digest,
        chunks: &[B3Digest],
    ) -> Result<Option<Vec<bool>>, StoreError> {
        if self.kv_get(Table::Blobs, &blob.0)?.is_some() {
            return Ok(None);
        }
        chunks
            .iter()
            .map(|d| self.chunk_has(d))
            .collect::<Result<_, _>>()
            .map(Some)
    }
    /// Stores a metadata value durably.
    fn kv_put(&self, t: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    /// Stores a metadata value, durably once [`Backend::commit`] returns (backends that
    /// batch writes hold it until then; it is visible to this process at once).
    fn kv_put_batched(&self, t: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.kv_put(t, key, value)
    }
    /// Makes everything stored so far durable.
    fn commit(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Up to `limit` keys of a table that sort after `after`, in order (see
    /// [`table_keys`]).
    fn kv_keys_page(
        &self,
        t: Table,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError>;
    /// The file, offset and length of a stored chunk, for backends that have files.
    fn chunk_location(&self, _d: &B3Digest) -> Result<Option<(PathBuf, u64, u64)>, StoreError> {
        Ok(None)
    }
    /// Called before anything is written (and before the existence checks that decide
    /// what to write): a backend that can be garbage-collected by other processes makes
    /// sure no collection runs from now on while this process has the store open.
    fn begin_write(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// The local backend, for what only it can do (garbage collection).
    fn as_local(&self) -> Option<&LocalBackend> {
        None
    }
    /// Requests made to the chunk storage so far, for backends that count them.
    fn chunk_stats(&self) -> Option<ChunkStoreStats> {
        None
    }
}

/// A chunk's bytes as read from storage (not yet checked), and the checksum recorded
/// when this store wrote them, if it did.
pub(crate) struct StoredChunk {
    pub(crate) data: Bytes,
    pub(crate) sum: Option<u64>,
}

/// What a chunk store has asked of its storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkStoreStats {
    /// Write requests (one per pack object).
    pub puts: u64,
    /// Bytes written.
    pub put_bytes: u64,
    /// Read requests (one per run of adjacent chunks).
    pub gets: u64,
    /// Bytes read.
    pub get_bytes: u64,
}

/// How many keys a listing reads per page.
pub(crate) const PAGE: usize = 1024;

/// Every key of a table, read page by page as the iterator is consumed.
pub(crate) fn table_keys(
    backend: &dyn Backend,
    t: Table,
) -> impl Iterator<Item = Result<Vec<u8>, StoreError>> + '_ {
    pages(
        move |after: Option<&Vec<u8>>| backend.kv_keys_page(t, after.map(|k| k.as_slice()), PAGE),
        Vec::clone,
    )
}

/// Every stored chunk's digest, read page by page as the iterator is consumed.
pub(crate) fn chunk_digests(
    backend: &dyn Backend,
) -> impl Iterator<Item = Result<B3Digest, StoreError>> + '_ {
    pages(
        move |after: Option<&B3Digest>| backend.chunk_list_page(after, PAGE),
        B3Digest::clone,
    )
}

/// Turns a page reader (up to [`PAGE`] items whose keys sort after a given key, in
/// order, none at the end) into an iterator over every item; `key` gives an item's key, the cursor of the
/// next page. An error ends the iteration after it is yielded.
pub(crate) fn pages<T, K, F>(
    mut read: F,
    key: impl Fn(&T) -> K,
) -> impl Iterator<Item = Result<T, StoreError>>
where
    F: FnMut(Option<&K>) -> Result<Vec<T>, StoreError>,
{
    let mut page: std::vec::IntoIter<T> = Vec::new().into_iter();
    let mut last: Option<K> = None;
    let mut done = false;
    std::iter::from_fn(move || loop {
        if let Some(item) = page.next() {
            last = Some(key(&item));
            return Some(Ok(item));
        }
        if done {
            return None;
        }
        match read(last.as_ref()) {
            Ok(items) => {
                // Only an empty page ends the listing: a short one may have lost items
                // removed between reading keys and values.
                if items.is_empty() {
                    done = true;
                    return None;
                }
                page = items.into_iter();
            }
            Err(e) => {
                done = true;
                return Some(Err(e));
            }
        }
    })
}

/// Metadata of the memory backend: (table, key) -> value, ordered for listings.
type MemoryTables = std::collections::BTreeMap<(Table, Vec<u8>), Vec<u8>>;

/// Everything in memory, lost when the store is dropped.
#[derive(Default)]
pub(crate) struct MemoryBackend {
    chunks: Mutex<std::collections::BTreeMap<B3Digest, Bytes>>,
    tables: Mutex<MemoryTables>,
}

fn poisoned() -> StoreError {
    StoreError::Io(io::Error::other("store lock poisoned"))
}

impl Backend for MemoryBackend {
    fn chunk_get_many(&self, ds: &[B3Digest]) -> Result<Vec<Option<Bytes>>, StoreError> {
        let chunks = self.chunks.lock().map_err(|_| poisoned())?;
        Ok(ds.iter().map(|d| chunks.get(d).cloned()).collect())
    }

    fn chunk_has(&self, d: &B3Digest) -> Result<bool, StoreError> {
        Ok(self.chunks.lock().map_err(|_| poisoned())?.contains_key(d))
    }

    fn chunk_put(&self, d: &B3Digest, data: &[u8]) -> Result<(), StoreError> {
        self.chunks
            .lock()
            .map_err(|_| poisoned())?
            .entry(*d)
            .or_insert_with(|| Bytes::copy_from_slice(data));
        Ok(())
    }

    fn chunk_list_page(
        &self,
        after: Option<&B3Digest>,
        limit: usize,
    ) -> Result<Vec<B3Digest>, StoreError> {
        use std::ops::Bound;
        let chunks = self.chunks.lock().map_err(|_| poisoned())?;
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(chunks
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(d, _)| *d)
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

    fn kv_keys_page(
        &self,
        t: Table,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        use std::ops::Bound;
        let tables = self.tables.lock().map_err(|_| poisoned())?;
        let from = match after {
            Some(k) => Bound::Excluded((t, k.to_vec())),
            None => Bound::Included((t, Vec::new())),
        };
        Ok(tables
            .range((from, Bound::Unbounded))
            .take_while(|((tt, _), _)| *tt == t)
            .take(limit)
            .map(|((_, k), _)| k.clone())
            .collect())
    }
}

/// Metadata not yet committed to the database.
type Batch = HashMap<(Table, Vec<u8>), Vec<u8>>;

/// Flush the batch once it holds this many entries.
const MAX_BATCH: usize = 65536;

/// Start a new pack once the current one is this large.
const PACK_MAX: u64 = 1 << 30;

/// The pack this process appends to.
struct OpenPack {
    name: String,
    w: PackWriter,
}

/// Where a chunk is: a pack file (by name), an offset and a length, and the checksum
/// ([`super::chunk_sum`]) taken when this store wrote it, if it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Location {
    pub(super) pack: String,
    pub(super) offset: u64,
    pub(super) len: u64,
    /// `None` for chunks written by an older tvix and for chunks of other backends:
    /// those are checked against their BLAKE3 digest.
    pub(super) sum: Option<u64>,
}

/// Set in the encoded length when a checksum follows it. A chunk is at most
/// [`super::CHUNK_MAX`] bytes long, so the bit is never part of a length, and a decoder
/// that does not know the flag rejects the location rather than misreading it.
const HAS_SUM: u64 = 1 << 63;

impl Location {
    /// Offset and length (8 bytes each, little-endian; the length's top bit says whether
    /// a checksum follows), the checksum if any (8 bytes), then the pack's name. Without
    /// a checksum this is the encoding of the locations older stores hold.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.pack.len());
        out.extend_from_slice(&self.offset.to_le_bytes());
        let flag = if self.sum.is_some() { HAS_SUM } else { 0 };
        out.extend_from_slice(&(self.len | flag).to_le_bytes());
        if let Some(sum) = self.sum {
            out.extend_from_slice(&sum.to_le_bytes());
        }
        out.extend_from_slice(self.pack.as_bytes());
        out
    }

    pub(super) fn decode(b: &[u8]) -> Result<Location, StoreError> {
        let bad = |reason| StoreError::Decode {
            what: "chunk location",
            reason,
        };
        let u64_at = |at: usize| -> Result<u64, StoreError> {
            let bytes = b.get(at..at + 8).ok_or_else(|| bad("truncated"))?;
            let mut u = [0u8; 8];
            u.copy_from_slice(bytes);
            Ok(u64::from_le_bytes(u))
        };
        let offset = u64_at(0)?;
        let raw_len = u64_at(8)?;
        let (sum, name_at) = if raw_len & HAS_SUM != 0 {
            (Some(u64_at(16)?), 24)
        } else {
            (None, 16)
        };
        let len = raw_len & !HAS_SUM;
        let name = b.get(name_at..).filter(|n| !n.is_empty());
        let name = name.ok_or_else(|| bad("truncated"))?;
        let pack = std::str::from_utf8(name).map_err(|_| bad("pack name is not UTF-8"))?;
        // Never let a damaged database name a file outside the pack directory.
        if pack.contains('/') || pack.starts_with('.') {
            return Err(bad("bad pack name"));
        }
        if len > super::CHUNK_MAX as u64 {
            return Err(bad("chunk longer than the largest chunk"));
        }
        Ok(Location {
            pack: pack.to_string(),
            offset,
            len,
            sum,
        })
    }
}

/// The embedded on-disk store.
pub(crate) struct LocalBackend {
    /// The store's directory.
    pub(super) dir: PathBuf,
    pub(super) packs_dir: PathBuf,
    pub(super) db: Database,
    pack_counter: AtomicU64,
    pending: Mutex<Batch>,
    /// Lock order: `writer` before `pending`.
    writer: Mutex<Option<OpenPack>>,
    /// The pack files read so far, each opened and mapped once (and mapped again when a
    /// chunk beyond the mapped length is wanted).
    pub(super) packs: Mutex<HashMap<String, MappedPack>>,
    /// The shared `gc.lock`, taken before the first write and held until the store is
    /// dropped (after its last flush): no collection runs while this process may hold
    /// data that no root reaches yet. Declared last, so it is released last.
    gc_guard: Mutex<Option<super::gc::lock::GcLock>>,
}

/// A pack file open for reading and mapped into memory.
///
/// Mapping relies on an invariant of the local store: packs are append-only. Bytes once
/// written are never changed or cut off by tvix, so a mapped range stays valid. Because
/// something else could still shorten a pack (the kernel would then kill a process that
/// touches a page past the end with SIGBUS), the file's length is checked before each
/// batch of reads, and a pack found shorter is mapped again at its new length (the chunks
/// past the end are reported missing). Bytes changed behind tvix's back by accident are
/// caught by the check of every chunk read (its checksum, or its BLAKE3 digest), bytes
/// changed on purpose by `verify` ([`super::chunk_sum`]).
pub(super) struct MappedPack {
    file: fs::File,
    map: Bytes,
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
        let packs_dir = dir.join("packs");
        fs::create_dir_all(&packs_dir).map_err(path_err(&packs_dir))?;
        let db_path = dir.join("db.redb");
        let db = open_db(&db_path)?;
        // Create the tables once so readers never meet a missing one (a write
        // transaction costs a durable commit, so only when one is missing).
        let missing = {
            let txn = db.begin_read().map_err(db_err)?;
            Table::ALL.iter().any(|t| {
                matches!(
                    txn.open_table(t.def()),
                    Err(redb::TableError::TableDoesNotExist(_))
                )
            })
        };
        if missing {
            let txn = db.begin_write().map_err(db_err)?;
            for t in Table::ALL {
                txn.open_table(t.def()).map_err(db_err)?;
            }
            txn.commit().map_err(db_err)?;
        }
        Ok(LocalBackend {
            dir: dir.to_path_buf(),
            packs_dir,
            db,
            pack_counter: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
            writer: Mutex::new(None),
            packs: Mutex::new(HashMap::new()),
            gc_guard: Mutex::new(None),
        })
    }

    /// Commits what is pending and gives up this process's shared `gc.lock` (the
    /// collector, about to take it exclusively, must not wait for itself).
    pub(super) fn end_writes(&self) -> Result<(), StoreError> {
        self.flush(None)?;
        if let Some(w) = self.writer.lock().map_err(|_| poisoned())?.take() {
            drop(w);
        }
        self.gc_guard.lock().map_err(|_| poisoned())?.take();
        Ok(())
    }

    /// A fresh pack name for this process (`<pid>-<time>-<n><suffix>.pack`).
    pub(super) fn fresh_pack_name(&self, suffix: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = self.pack_counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{nanos}-{n}{suffix}.pack", std::process::id())
    }

    /// Starts a new pack file, made durable in its directory at once.
    fn new_pack(&self) -> Result<OpenPack, StoreError> {
        let name = self.fresh_pack_name("");
        let path = self.packs_dir.join(&name);
        let w = PackWriter::create(&path).map_err(path_err(&path))?;
        fs::File::open(&self.packs_dir)
            .and_then(|d| d.sync_all())
            .map_err(path_err(&self.packs_dir))?;
        Ok(OpenPack { name, w })
    }

    /// Writes the pack's pending bytes and makes them durable.
    fn sync_pack(&self, p: &mut OpenPack) -> Result<(), StoreError> {
        let path = self.packs_dir.join(&p.name);
        p.w.sync().map_err(path_err(&path))
    }

    /// Commits the pending batch, plus `extra` if given, in one durable transaction after
    /// syncing this process's pack.
    fn flush(&self, extra: Option<(Table, &[u8], &[u8])>) -> Result<(), StoreError> {
        let mut writer = self.writer.lock().map_err(|_| poisoned())?;
        let mut pending = self.pending.lock().map_err(|_| poisoned())?;
        if pending.is_empty() && extra.is_none() {
            return Ok(());
        }
        if let Some(w) = writer.as_mut() {
            self.sync_pack(w)?;
        }
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

    /// Where a chunk is stored (pending or committed).
    fn location(&self, d: &B3Digest) -> Result<Option<Location>, StoreError> {
        self.kv_get(Table::Chunks, &d.0)?
            .map(|b| Location::decode(&b))
            .transpose()
    }

    /// The mapped bytes of pack `name`, at least `need` long if the file is; `None` if
    /// the pack does not exist.
    pub(super) fn pack_bytes(
        &self,
        packs: &mut HashMap<String, MappedPack>,
        name: &str,
        need: u64,
    ) -> Result<Option<Bytes>, StoreError> {
        let path = self.packs_dir.join(name);
        if !packs.contains_key(name) {
            match fs::File::open(&path) {
                Ok(file) => {
                    packs.insert(
                        name.to_string(),
                        MappedPack {
                            file,
                            map: Bytes::new(),
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(path_err(&path)(e)),
            }
        }
        let Some(pack) = packs.get_mut(name) else {
            return Err(poisoned());
        };
        let len = pack.file.metadata().map_err(path_err(&path))?.len();
        let mapped = pack.map.len() as u64;
        if len < mapped || (mapped < need && len > mapped) {
            pack.map = if len == 0 {
                Bytes::new()
            } else {
                // SAFETY: see `MappedPack`: the pack is append-only and its length was
                // just checked; every byte read from the map is checked (`check_chunk`).
                let map = unsafe { memmap2::Mmap::map(&pack.file) }.map_err(path_err(&path))?;
                Bytes::from_owner(map)
            };
        }
        Ok(Some(pack.map.clone()))
    }
}

/// Up to `limit` keys of a redb table after `after`, in order.
pub(super) fn redb_keys_page(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<Vec<u8>>, StoreError> {
    use std::ops::Bound;
    let from = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut out = Vec::new();
    for item in table
        .range::<&[u8]>((from, Bound::Unbounded))
        .map_err(db_err)?
        .take(limit)
    {
        let (k, _) = item.map_err(db_err)?;
        out.push(k.value().to_vec());
    }
    Ok(out)
}

pub(super) fn open_db(path: &Path) -> Result<Database, StoreError> {
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

/// The chunks found, or (`Err`) what was found when a pack named by a location is gone.
type ChunkLookup = Result<Vec<Option<StoredChunk>>, Vec<Option<StoredChunk>>>;

impl LocalBackend {
    /// One attempt of [`Backend::chunk_get_many`].
    fn chunk_get_many_once(&self, ds: &[B3Digest]) -> Result<ChunkLookup, StoreError> {
        let keys: Vec<&[u8]> = ds.iter().map(|d| &d.0[..]).collect();
        let locs = self
            .kv_get_many(Table::Chunks, &keys)?
            .into_iter()
            .map(|raw| raw.map(|b| Location::decode(&b)).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        {
            // Chunks may still sit in this process's write buffer.
            let mut writer = self.writer.lock().map_err(|_| poisoned())?;
            if let Some(w) = writer.as_mut() {
                if locs.iter().flatten().any(|l| l.pack == w.name) {
                    let path = self.packs_dir.join(&w.name);
                    w.w.flush().map_err(path_err(&path))?;
                }
            }
        }
        // The furthest byte wanted from each pack.
        let mut need: HashMap<&str, u64> = HashMap::new();
        for l in locs.iter().flatten() {
            let end = need.entry(l.pack.as_str()).or_default();
            *end = (*end).max(l.offset + l.len);
        }
        let mut packs = self.packs.lock().map_err(|_| poisoned())?;
        let mut maps: HashMap<&str, Option<Bytes>> = HashMap::new();
        for (name, end) in need {
            maps.insert(name, self.pack_bytes(&mut packs, name, end)?);
        }
        let pack_gone = maps.values().any(Option::is_none);
        let found = locs
            .iter()
            .map(|l| {
                let l = l.as_ref()?;
                let map = maps.get(l.pack.as_str())?.as_ref()?;
                let end = l.offset.checked_add(l.len)?;
                // A pack cut short makes the chunk missing.
                (end <= map.len() as u64).then(|| StoredChunk {
                    data: map.slice(l.offset as usize..end as usize),
                    sum: l.sum,
                })
            })
            .collect();
        Ok(if pack_gone { Err(found) } else { Ok(found) })
    }

    /// Appends a chunk to this process's pack and records its location in the batch.
    fn chunk_put_inner(&self, d: &B3Digest, data: &[u8]) -> Result<(), StoreError> {
        // Taken of the bytes the caller hashed, before they are copied anywhere, and
        // outside the writer's lock (threads storing blobs at once each take their own).
        let sum = super::chunk_sum::of(data);
        let full = {
            let mut writer = self.writer.lock().map_err(|_| poisoned())?;
            if writer.as_ref().is_some_and(|w| w.w.len() >= PACK_MAX) {
                // Finish the full pack: its bytes must be durable before the batch naming
                // them is committed, and it will not be synced again.
                if let Some(mut w) = writer.take() {
                    self.sync_pack(&mut w)?;
                }
            }
            if writer.is_none() {
                *writer = Some(self.new_pack()?);
            }
            let Some(w) = writer.as_mut() else {
                return Err(poisoned());
            };
            // Threads storing blobs at once may both have found a chunk missing; the
            // one that comes second stores nothing.
            let key = (Table::Chunks, d.0.to_vec());
            if self
                .pending
                .lock()
                .map_err(|_| poisoned())?
                .contains_key(&key)
            {
                return Ok(());
            }
            let path = self.packs_dir.join(&w.name);
            let offset = w.w.len();
            if let Err(e) = w.w.append(data) {
                // Part of the chunk may be in the pack: no later chunk goes after it.
                *writer = None;
                return Err(path_err(&path)(e));
            }
            let loc = Location {
                pack: w.name.clone(),
                offset,
                len: data.len() as u64,
                sum: Some(sum),
            };
            let mut pending = self.pending.lock().map_err(|_| poisoned())?;
            pending.insert(key, loc.encode());
            pending.len() >= MAX_BATCH
        };
        if full {
            self.flush(None)?;
        }
        Ok(())
    }
}

impl Backend for LocalBackend {
    /// Looks all locations up in one read transaction, then slices the mapped packs. A
    /// pack that is gone was compacted by a collection after the locations were read:
    /// they are read once more (the chunks' new places were committed before the old
    /// pack was removed).
    fn chunk_get_many_summed(
        &self,
        ds: &[B3Digest],
    ) -> Result<Vec<Option<StoredChunk>>, StoreError> {
        match self.chunk_get_many_once(ds)? {
            Ok(found) => Ok(found),
            Err(_) => Ok(self
                .chunk_get_many_once(ds)?
                .unwrap_or_else(|partial| partial)),
        }
    }

    fn chunk_get_many(&self, ds: &[B3Digest]) -> Result<Vec<Option<Bytes>>, StoreError> {
        Ok(self
            .chunk_get_many_summed(ds)?
            .into_iter()
            .map(|c| c.map(|c| c.data))
            .collect())
    }

    fn chunk_has(&self, d: &B3Digest) -> Result<bool, StoreError> {
        Ok(self.kv_get(Table::Chunks, &d.0)?.is_some())
    }

    fn begin_write(&self) -> Result<(), StoreError> {
        let mut guard = self.gc_guard.lock().map_err(|_| poisoned())?;
        if guard.is_none() {
            *guard = Some(super::gc::lock::GcLock::shared(&self.dir)?);
        }
        Ok(())
    }

    fn as_local(&self) -> Option<&LocalBackend> {
        Some(self)
    }

    fn chunk_put(&self, d: &B3Digest, data: &[u8]) -> Result<(), StoreError> {
        self.begin_write()?;
        self.chunk_put_inner(d, data)
    }
    fn chunk_location(&self, d: &B3Digest) -> Result<Option<(PathBuf, u64, u64)>, StoreError> {
        Ok(self
            .location(d)?
            .map(|l| (self.packs_dir.join(&l.pack), l.offset, l.len)))
    }
    fn chunk_list_page(
        &self,
        after: Option<&B3Digest>,
        limit: usize,
    ) -> Result<Vec<B3Digest>, StoreError> {
        let keys = self.kv_keys_page(Table::Chunks, after.map(|d| &d.0[..]), limit)?;
        Ok(keys
            .iter()
            .filter_map(|k| <[u8; 32]>::try_from(k.as_slice()).ok().map(B3Digest))
            .collect())
    }

    fn kv_get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.kv_get_many(t, &[key])?.pop().flatten())
    }

    /// Values still in this process's batch are taken from it; the others are read in
    /// one read transaction, without holding the batch's lock (so that threads reading at
    /// once do not wait for each other).
    fn kv_get_many(&self, t: Table, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut out: Vec<Option<Vec<u8>>> = {
            let pending = self.pending.lock().map_err(|_| poisoned())?;
            if pending.is_empty() {
                vec![None; keys.len()]
            } else {
                keys.iter()
                    .map(|k| pending.get(&(t, k.to_vec())).cloned())
                    .collect()
            }
        };
        if out.iter().all(Option::is_some) {
            return Ok(out);
        }
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(t.def()).map_err(db_err)?;
        for (slot, key) in out.iter_mut().zip(keys) {
            if slot.is_none() {
                *slot = table.get(*key).map_err(db_err)?.map(|g| g.value().to_vec());
            }
        }
        Ok(out)
    }

    /// The batch first, then one read transaction for what it does not hold.
    fn blob_missing_chunks(
        &self,
        blob: &B3Digest,
        chunks: &[B3Digest],
    ) -> Result<Option<Vec<bool>>, StoreError> {
        let mut has: Vec<bool> = {
            let pending = self.pending.lock().map_err(|_| poisoned())?;
            if pending.contains_key(&(Table::Blobs, blob.0.to_vec())) {
                return Ok(None);
            }
            chunks
                .iter()
                .map(|d| pending.contains_key(&(Table::Chunks, d.0.to_vec())))
                .collect()
        };
        let txn = self.db.begin_read().map_err(db_err)?;
        let blobs = txn.open_table(Table::Blobs.def()).map_err(db_err)?;
        if blobs.get(&blob.0[..]).map_err(db_err)?.is_some() {
            return Ok(None);
        }
        if has.iter().all(|h| *h) {
            return Ok(Some(has));
        }
        let table = txn.open_table(Table::Chunks.def()).map_err(db_err)?;
        for (h, d) in has.iter_mut().zip(chunks) {
            if !*h {
                *h = table.get(&d.0[..]).map_err(db_err)?.is_some();
            }
        }
        Ok(Some(has))
    }

    fn kv_put(&self, t: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.begin_write()?;
        if t == Table::PathInfos {
            return self.flush(Some((t, key, value)));
        }
        self.kv_put_batched(t, key, value)
    }

    /// Path infos too wait in the batch (see the module's documentation for why that is
    /// safe: a flush syncs the pack before it commits the batch).
    fn kv_put_batched(&self, t: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.begin_write()?;
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

    fn commit(&self) -> Result<(), StoreError> {
        self.flush(None)
    }

    /// Commits the pending batch first, so the listing includes it.
    fn kv_keys_page(
        &self,
        t: Table,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.flush(None)?;
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(t.def()).map_err(db_err)?;
        redb_keys_page(&table, after, limit)
    }
}

impl Drop for LocalBackend {
    fn drop(&mut self) {
        // Callers that registered paths in a batch commit before they say so; what is left
        // (blobs and directories not yet named by a path) is only a cache, so an error
        // here loses nothing that was promised.
        let _ = self.flush(None);
    }
}
