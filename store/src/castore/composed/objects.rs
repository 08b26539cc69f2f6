//! [`ObjectChunks`]: chunks packed into objects of an object store (the `object_store`
//! crate: S3 and S3-compatible servers, GCS, Azure, a local directory).
//!
//! A pack is one object, `PREFIX/packs/<pid>-<time>-<n>-<random>.pack`, written with one
//! PUT; its name is unique, so no process ever overwrites another's object. Chunks are
//! read back with ranged GETs of aligned [`BLOCK`]s of a pack, kept in a small cache: a
//! client reading files one by one (as a NAR export through the gRPC protocol does, one
//! request per file) then costs one request per block, not one per file.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::task::JoinHandle;

use super::runtime::Runtime;
use super::{ChunkStore, MAX_UPLOADS};
use crate::castore::backend::ChunkStoreStats;
use crate::castore::backend::Location;
use crate::castore::{backend_err, B3Digest, StoreError};

/// Packs are read in aligned blocks of this many bytes (the last one shorter).
const BLOCK: u64 = 4 << 20;

/// The cache keeps this many blocks (64 MiB).
const CACHE_BLOCKS: usize = 16;

/// At most this many ranged reads of one batch are in flight at once.
const MAX_READS: usize = 16;

/// A block of a pack: the pack's name and the block's index.
type BlockId = (String, u64);

/// Blocks read lately, the oldest dropped first.
#[derive(Default)]
struct BlockCache {
    blocks: HashMap<BlockId, Bytes>,
    order: VecDeque<BlockId>,
}

impl BlockCache {
    fn insert(&mut self, id: BlockId, data: Bytes) {
        if self.blocks.insert(id.clone(), data).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > CACHE_BLOCKS {
            if let Some(old) = self.order.pop_front() {
                self.blocks.remove(&old);
            }
        }
    }
}

/// The blocks a chunk at `offset` of `len` bytes spans.
pub(crate) fn blocks_of(offset: u64, len: u64) -> std::ops::RangeInclusive<u64> {
    let last = offset.saturating_add(len.max(1) - 1);
    offset / BLOCK..=last / BLOCK
}

/// Request counters, shared with the upload tasks.
#[derive(Default)]
struct Counters {
    puts: AtomicU64,
    put_bytes: AtomicU64,
    gets: AtomicU64,
    get_bytes: AtomicU64,
}

/// An upload in flight: the locations of its chunks once it is durable.
type Upload = JoinHandle<Result<Vec<(B3Digest, Location)>, StoreError>>;

/// Chunks in pack objects of an object store.
pub(crate) struct ObjectChunks {
    store: Arc<dyn ObjectStore>,
    /// `PREFIX/packs`.
    packs: Path,
    rt: Runtime,
    uploads: Mutex<Vec<Upload>>,
    /// Bounds the uploads in flight (and so the bytes held for them).
    permits: Arc<tokio::sync::Semaphore>,
    pack_counter: AtomicU64,
    /// Distinguishes this process's pack names from those of a process with the same
    /// pid on another machine.
    nonce: u64,
    counters: Arc<Counters>,
    cache: Mutex<BlockCache>,
}

fn os_err(e: object_store::Error) -> StoreError {
    backend_err("object store", e)
}

fn poisoned() -> StoreError {
    StoreError::Io(std::io::Error::other("store lock poisoned"))
}

impl ObjectChunks {
    /// Chunks under `prefix` of `store`.
    pub(crate) fn new(store: Arc<dyn ObjectStore>, prefix: Path) -> Result<Self, StoreError> {
        let nonce = {
            let mut buf = [0u8; 8];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
                .map_err(StoreError::Io)?;
            u64::from_le_bytes(buf)
        };
        Ok(ObjectChunks {
            store,
            packs: prefix.clone().join("packs"),
            rt: Runtime::new("tvix-objects", 4)?,
            uploads: Mutex::new(Vec::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(MAX_UPLOADS)),
            pack_counter: AtomicU64::new(0),
            nonce,
            counters: Arc::new(Counters::default()),
            cache: Mutex::new(BlockCache::default()),
        })
    }

    /// Opens the object store a URL names (see [`super::object_url`]).
    pub(crate) fn open(url: &str) -> Result<Self, StoreError> {
        let (store, prefix) = super::object_url::open(url)?;
        ObjectChunks::new(store, prefix)
    }

    fn fresh_pack_name(&self) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = self.pack_counter.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}-{nanos}-{n}-{:016x}.pack",
            std::process::id(),
            self.nonce
        )
    }
}

impl ChunkStore for ObjectChunks {
    fn upload(&self, chunks: Vec<(B3Digest, Bytes)>) -> Result<(), StoreError> {
        let name = self.fresh_pack_name();
        let mut offset = 0u64;
        let mut locs = Vec::with_capacity(chunks.len());
        for (d, data) in &chunks {
            locs.push((
                *d,
                Location {
                    pack: name.clone(),
                    offset,
                    len: data.len() as u64,
                    // Objects are another store's: their chunks are checked by digest.
                    sum: None,
                },
            ));
            offset += data.len() as u64;
        }
        let payload: PutPayload = chunks.into_iter().map(|(_, data)| data).collect();
        // Waits here while MAX_UPLOADS packs are in flight.
        let permit = self
            .rt
            .run(self.permits.clone().acquire_owned())?
            .map_err(|_| StoreError::Io(std::io::Error::other("upload slots closed")))?;
        let store = self.store.clone();
        let path = self.packs.clone().join(name.as_str());
        let counters = self.counters.clone();
        let task = self.rt.spawn(async move {
            let _permit = permit;
            store.put(&path, payload).await.map_err(os_err)?;
            counters.puts.fetch_add(1, Ordering::Relaxed);
            counters.put_bytes.fetch_add(offset, Ordering::Relaxed);
            Ok(locs)
        });
        let mut uploads = self.uploads.lock().map_err(|_| poisoned())?;
        uploads.push(task);
        Ok(())
    }

    fn finish(&self) -> Result<Vec<(B3Digest, Location)>, StoreError> {
        let tasks = std::mem::take(&mut *self.uploads.lock().map_err(|_| poisoned())?);
        let results = self.rt.run(async move {
            let mut out = Vec::with_capacity(tasks.len());
            for t in tasks {
                out.push(t.await);
            }
            out
        })?;
        let mut locs = Vec::new();
        let mut first_err = None;
        for r in results {
            match r {
                Ok(Ok(l)) => locs.extend(l),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(join) => {
                    first_err.get_or_insert(StoreError::Io(std::io::Error::other(format!(
                        "upload task failed: {join}"
                    ))));
                }
            }
        }
        match first_err {
            // The chunks of the uploads that succeeded are left unnamed: the whole flush
            // fails, and nothing that needs the failed ones is committed.
            Some(e) => Err(e),
            None => Ok(locs),
        }
    }

    fn read(&self, locs: &[Option<Location>]) -> Result<Vec<Option<Bytes>>, StoreError> {
        // The blocks needed, those in the cache taken from it.
        let mut have: HashMap<BlockId, Option<Bytes>> = HashMap::new();
        let mut missing: BTreeSet<BlockId> = BTreeSet::new();
        {
            let cache = self.cache.lock().map_err(|_| poisoned())?;
            for l in locs.iter().flatten() {
                for b in blocks_of(l.offset, l.len) {
                    let id = (l.pack.clone(), b);
                    match cache.blocks.get(&id) {
                        Some(data) => {
                            have.insert(id, Some(data.clone()));
                        }
                        None => {
                            missing.insert(id);
                        }
                    }
                }
            }
        }
        let requests: Vec<(BlockId, Path)> = missing
            .into_iter()
            .map(|id| {
                let path = self.packs.clone().join(id.0.as_str());
                (id, path)
            })
            .collect();
        let store = self.store.clone();
        let counters = self.counters.clone();
        let fetched = self.rt.run(async move {
            let slots = Arc::new(tokio::sync::Semaphore::new(MAX_READS));
            let mut tasks = Vec::with_capacity(requests.len());
            for (id, path) in requests {
                let store = store.clone();
                let counters = counters.clone();
                let slots = slots.clone();
                tasks.push(tokio::spawn(async move {
                    let _slot = slots.acquire_owned().await;
                    counters.gets.fetch_add(1, Ordering::Relaxed);
                    // A range past the end of the pack is cut to it.
                    let range = id.1 * BLOCK..(id.1 + 1) * BLOCK;
                    let res = store.get_range(&path, range).await;
                    if let Ok(b) = &res {
                        counters
                            .get_bytes
                            .fetch_add(b.len() as u64, Ordering::Relaxed);
                    }
                    (id, res)
                }));
            }
            let mut out = Vec::with_capacity(tasks.len());
            for t in tasks {
                out.push(t.await);
            }
            out
        })?;
        {
            let mut cache = self.cache.lock().map_err(|_| poisoned())?;
            for res in fetched {
                match res {
                    Ok((id, Ok(data))) => {
                        cache.insert(id.clone(), data.clone());
                        have.insert(id, Some(data));
                    }
                    // A pack (or a block) that is not there: its chunks are missing.
                    Ok((id, Err(object_store::Error::NotFound { .. }))) => {
                        have.insert(id, None);
                    }
                    Ok((_, Err(e))) => return Err(os_err(e)),
                    Err(join) => {
                        return Err(StoreError::Io(std::io::Error::other(format!(
                            "read task failed: {join}"
                        ))))
                    }
                }
            }
        }
        Ok(locs
            .iter()
            .map(|l| {
                let l = l.as_ref()?;
                let end = l.offset.checked_add(l.len)?;
                let mut parts = Vec::new();
                for b in blocks_of(l.offset, l.len) {
                    let block = have.get(&(l.pack.clone(), b))?.as_ref()?;
                    let from = l.offset.max(b * BLOCK) - b * BLOCK;
                    let to = end.min((b + 1) * BLOCK) - b * BLOCK;
                    // A block cut short (a pack shorter than the location says): missing.
                    if to > block.len() as u64 {
                        return None;
                    }
                    parts.push(block.slice(from as usize..to as usize));
                }
                match parts.len() {
                    1 => parts.pop(),
                    _ => Some(Bytes::from(parts.concat())),
                }
            })
            .collect())
    }

    fn stats(&self) -> Option<ChunkStoreStats> {
        let c = &self.counters;
        Some(ChunkStoreStats {
            puts: c.puts.load(Ordering::Relaxed),
            put_bytes: c.put_bytes.load(Ordering::Relaxed),
            gets: c.gets.load(Ordering::Relaxed),
            get_bytes: c.get_bytes.load(Ordering::Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_span_the_blocks_they_touch() {
        assert_eq!(blocks_of(0, 100), 0..=0);
        assert_eq!(blocks_of(BLOCK - 100, 100), 0..=0);
        assert_eq!(blocks_of(BLOCK - 100, 101), 0..=1);
        assert_eq!(blocks_of(BLOCK, 1), 1..=1);
        assert_eq!(blocks_of(3 * BLOCK + 5, 0), 3..=3);
    }

    #[test]
    fn the_cache_drops_the_oldest_blocks() {
        let mut c = BlockCache::default();
        for i in 0..CACHE_BLOCKS as u64 + 2 {
            c.insert(("p".into(), i), Bytes::from_static(b"x"));
        }
        assert_eq!(c.blocks.len(), CACHE_BLOCKS);
        assert!(!c.blocks.contains_key(&("p".to_string(), 0)));
        assert!(!c.blocks.contains_key(&("p".to_string(), 1)));
        assert!(c.blocks.contains_key(&("p".to_string(), 2)));
    }
}
