//! A store composed of a chunk store and a metadata store, for stores that outgrow one
//! machine: `tvix store daemon --chunks URL --metadata URL`.
//!
//! - [`ChunkStore`]: where chunk bytes live, packed into pack objects of several MiB
//!   ([`objects::ObjectChunks`]: any `object_store` store: S3 and compatible, GCS, Azure,
//!   a local directory).
//! - [`MetaStore`]: the tables (blob manifests, directories, path infos, chunk locations),
//!   written in transactions ([`redb_meta::RedbMeta`], [`postgres::PgMeta`]).
//!
//! [`ComposedBackend`] joins them. Invariant (the same as the local store's): **a path is
//! registered only once everything it needs is durable.** Chunks are gathered into a pack
//! in memory; a full pack is uploaded in the background (at most [`MAX_UPLOADS`] at once,
//! so memory stays bounded); metadata waits in a batch, visible to this process only. A
//! flush (registering a path, a full batch, the store dropped) waits for every upload
//! (committing the locations of its chunks), then for every chunk another process claimed
//! (see below), then commits the remaining locations, the batch and the path info in one
//! transaction. A process killed at any point leaves at worst pack objects no committed
//! location names, and locations of durable chunks nothing refers to.
//!
//! Each chunk once across processes: before a pack is uploaded, its chunks are claimed in
//! the metadata store ([`MetaStore::claim_chunks`]); a chunk already stored or claimed by
//! a live process is left out of the pack and waited for at the flush. A crashed
//! claimant's claims lapse with its lease, and the chunk is then claimed and uploaded by a
//! process that needs it.

pub(crate) mod object_url;
pub(crate) mod objects;
pub(crate) mod postgres;
pub(crate) mod redb_meta;
pub(crate) mod runtime;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;

use super::backend::{Backend, ChunkStoreStats, Location, Table};
use super::{B3Digest, StoreError};

/// Where chunk bytes live: whole packs of chunks are written, single chunks read.
pub(crate) trait ChunkStore: Send + Sync {
    /// Starts writing one pack holding `chunks` (concatenated in this order), without
    /// waiting for it; may wait for earlier packs when too many are in flight.
    fn upload(&self, chunks: Vec<(B3Digest, Bytes)>) -> Result<(), StoreError>;
    /// Waits until every pack started so far is durable and returns the locations of
    /// their chunks (each location once: the next call returns only newer ones).
    fn finish(&self) -> Result<Vec<(B3Digest, Location)>, StoreError>;
    /// Reads chunks at their locations, in order (`None` where the pack or range is
    /// missing); adjacent chunks of one pack are read in one request.
    fn read(&self, locs: &[Option<Location>]) -> Result<Vec<Option<Bytes>>, StoreError>;
    /// Requests made to the storage so far, for stores that count them.
    fn stats(&self) -> Option<ChunkStoreStats> {
        None
    }
}

/// What a claim found for each chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// This process is to store the chunk.
    Ours,
    /// The chunk is stored already.
    Stored,
    /// A live process is storing it.
    Theirs,
}

/// The tables of a store, in a database with transactions.
pub(crate) trait MetaStore: Send + Sync {
    /// Values of one table, in order (`None` where missing), read in one snapshot.
    fn get_many(&self, t: Table, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// Writes every entry in one durable transaction: all or none.
    fn commit(&self, entries: &[(Table, Vec<u8>, Vec<u8>)]) -> Result<(), StoreError>;
    /// Up to `limit` keys of a table after `after`, in order.
    fn keys_page(
        &self,
        t: Table,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Claims chunks for this process to store. The default (a database one machine
    /// uses) claims whatever is not stored; a shared database records claims, so that
    /// processes importing the same data at once store each chunk once.
    fn claim_chunks(&self, ds: &[B3Digest]) -> Result<Vec<Claim>, StoreError> {
        let keys: Vec<&[u8]> = ds.iter().map(|d| &d.0[..]).collect();
        Ok(self
            .get_many(Table::Chunks, &keys)?
            .into_iter()
            .map(|v| {
                if v.is_some() {
                    Claim::Stored
                } else {
                    Claim::Ours
                }
            })
            .collect())
    }
}

/// Pack objects are cut once they hold this many bytes.
pub(crate) const PACK_TARGET: usize = 8 << 20;

/// At most this many packs are uploaded at once.
pub(crate) const MAX_UPLOADS: usize = 8;

/// Flush once the metadata batch holds this many entries...
const MAX_BATCH: usize = 65536;

/// ... or chunks held in memory until the flush (their bytes, for reads before it) add
/// up to this many bytes.
const MAX_UNFLUSHED: usize = 256 << 20;

/// What waits for the next flush.
#[derive(Default)]
struct Pending {
    /// Metadata not yet committed (visible to this process).
    batch: BTreeMap<(Table, Vec<u8>), Vec<u8>>,
    /// The pack being gathered.
    pack: Vec<(B3Digest, Bytes)>,
    pack_len: usize,
    /// Every chunk put since the last flush (in the pack, uploading, uploaded, or
    /// claimed by another process), for reads and existence checks before the flush.
    unflushed: HashMap<B3Digest, Bytes>,
    unflushed_len: usize,
    /// Chunks another live process claimed: stored by it before our flush, or by us if
    /// its claim lapses.
    theirs: Vec<B3Digest>,
}

/// A [`Backend`] over a chunk store and a metadata store; see the module documentation.
pub(crate) struct ComposedBackend {
    chunks: Box<dyn ChunkStore>,
    meta: Box<dyn MetaStore>,
    pending: Mutex<Pending>,
    /// Held for a whole flush, so flushes do not interleave.
    flushing: Mutex<()>,
    /// Held (shared) by a put from the moment it may take a full pack out of
    /// [`Pending`] until it has handed it to the chunk store; a flush takes it exclusively
    /// once, so that it waits for every pack taken before its snapshot.
    handoff: std::sync::RwLock<()>,
}

fn poisoned() -> StoreError {
    StoreError::Io(std::io::Error::other("store lock poisoned"))
}

/// How often a flush asks again about chunks another process is storing.
const CLAIM_POLL: Duration = Duration::from_millis(100);

impl ComposedBackend {
    /// Joins a chunk store and a metadata store.
    pub(crate) fn new(chunks: Box<dyn ChunkStore>, meta: Box<dyn MetaStore>) -> Self {
        ComposedBackend {
            chunks,
            meta,
            pending: Mutex::new(Pending::default()),
            flushing: Mutex::new(()),
            handoff: std::sync::RwLock::new(()),
        }
    }

    /// Claims the chunks of a gathered pack and uploads those that are ours.
    fn upload_pack(&self, pack: Vec<(B3Digest, Bytes)>) -> Result<(), StoreError> {
        if pack.is_empty() {
            return Ok(());
        }
        let ds: Vec<B3Digest> = pack.iter().map(|(d, _)| *d).collect();
        let claims = self.meta.claim_chunks(&ds)?;
        let mut ours = Vec::with_capacity(pack.len());
        let mut theirs = Vec::new();
        for ((d, data), claim) in pack.into_iter().zip(claims) {
            match claim {
                Claim::Ours => ours.push((d, data)),
                Claim::Theirs => theirs.push(d),
                Claim::Stored => {}
            }
        }
        if !theirs.is_empty() {
            self.pending
                .lock()
                .map_err(|_| poisoned())?
                .theirs
                .extend(theirs);
        }
        if ours.is_empty() {
            return Ok(());
        }
        self.chunks.upload(ours)
    }

    /// Waits until every chunk another process claimed is stored, claiming (and
    /// uploading) those whose claimant died.
    fn settle_theirs(&self, mut theirs: Vec<B3Digest>) -> Result<(), StoreError> {
        while !theirs.is_empty() {
            let claims = self.meta.claim_chunks(&theirs)?;
            let mut still = Vec::new();
            let mut ours = Vec::new();
            {
                let pending = self.pending.lock().map_err(|_| poisoned())?;
                for (d, claim) in theirs.iter().zip(claims) {
                    match claim {
                        Claim::Stored => {}
                        Claim::Theirs => still.push(*d),
                        Claim::Ours => {
                            let data = pending.unflushed.get(d).cloned().ok_or_else(|| {
                                StoreError::Io(std::io::Error::other(
                                    "a claimed chunk's bytes are no longer held",
                                ))
                            })?;
                            ours.push((*d, data));
                        }
                    }
                }
            }
            if !ours.is_empty() {
                self.chunks.upload(ours)?;
            }
            if !still.is_empty() {
                std::thread::sleep(CLAIM_POLL);
            }
            theirs = still;
        }
        Ok(())
    }

    /// Makes every chunk put so far durable, then commits their locations, the batch
    /// and `extra` in one transaction.
    ///
    /// If anything fails, everything not committed is forgotten: an upload that failed
    /// (or whose location could not be committed) leaves chunks that no later flush
    /// would name, so nothing gathered with them may be committed later. Their blobs and
    /// directories are then simply not in the store, and a registration that needs them
    /// fails instead of registering something incomplete.
    fn flush(&self, extra: Option<(Table, &[u8], &[u8])>) -> Result<(), StoreError> {
        let _flushing = self.flushing.lock().map_err(|_| poisoned())?;
        let res = self.flush_locked(extra);
        if res.is_err() {
            if let Ok(mut p) = self.pending.lock() {
                *p = Pending::default();
            }
            // Uploads still in flight are waited for and their locations dropped.
            let _ = self.chunks.finish();
        }
        res
    }

    /// [`ComposedBackend::flush`], with the flush lock held.
    fn flush_locked(&self, extra: Option<(Table, &[u8], &[u8])>) -> Result<(), StoreError> {
        let (pack, theirs, batch, unflushed_keys) = {
            let mut p = self.pending.lock().map_err(|_| poisoned())?;
            if p.batch.is_empty() && p.unflushed.is_empty() && extra.is_none() {
                return Ok(());
            }
            p.pack_len = 0;
            (
                std::mem::take(&mut p.pack),
                std::mem::take(&mut p.theirs),
                p.batch.clone(),
                p.unflushed.keys().copied().collect::<Vec<_>>(),
            )
        };
        // Packs other threads took before the snapshot are handed over once this returns.
        drop(self.handoff.write().map_err(|_| poisoned())?);
        self.upload_pack(pack)?;
        // Our own chunks' locations first, on their own: another process may be waiting
        // for them while we wait for its chunks (committing ours before waiting means no
        // two processes ever wait for each other).
        let ours = self.chunks.finish()?;
        if !ours.is_empty() {
            let entries: Vec<(Table, Vec<u8>, Vec<u8>)> = ours
                .iter()
                .map(|(d, loc)| (Table::Chunks, d.0.to_vec(), loc.encode()))
                .collect();
            self.meta.commit(&entries)?;
        }
        // Claims made while uploading the last pack.
        let theirs = {
            let mut p = self.pending.lock().map_err(|_| poisoned())?;
            let mut all = theirs;
            all.append(&mut p.theirs);
            all
        };
        self.settle_theirs(theirs)?;
        // The chunks taken over from dead claimants, and packs other threads started.
        let locations = self.chunks.finish()?;
        let mut entries: Vec<(Table, Vec<u8>, Vec<u8>)> =
            Vec::with_capacity(locations.len() + batch.len() + 1);
        for (d, loc) in &locations {
            entries.push((Table::Chunks, d.0.to_vec(), loc.encode()));
        }
        for ((t, k), v) in &batch {
            entries.push((*t, k.clone(), v.clone()));
        }
        if let Some((t, k, v)) = extra {
            entries.push((t, k.to_vec(), v.to_vec()));
        }
        self.meta.commit(&entries)?;
        let mut p = self.pending.lock().map_err(|_| poisoned())?;
        // Only what this flush committed: other threads may have added more meanwhile.
        for ((t, k), v) in batch {
            if p.batch.get(&(t, k.clone())) == Some(&v) {
                p.batch.remove(&(t, k));
            }
        }
        for d in unflushed_keys {
            if let Some(data) = p.unflushed.remove(&d) {
                p.unflushed_len -= data.len();
            }
        }
        Ok(())
    }

    /// Whether the batch or the chunks held in memory call for a flush.
    fn needs_flush(p: &Pending) -> bool {
        p.batch.len() >= MAX_BATCH || p.unflushed_len >= MAX_UNFLUSHED
    }
}

impl Backend for ComposedBackend {
    fn chunk_stats(&self) -> Option<ChunkStoreStats> {
        self.chunks.stats()
    }

    fn chunk_get_many(&self, ds: &[B3Digest]) -> Result<Vec<Option<Bytes>>, StoreError> {
        let mut out: Vec<Option<Bytes>> = {
            let p = self.pending.lock().map_err(|_| poisoned())?;
            ds.iter().map(|d| p.unflushed.get(d).cloned()).collect()
        };
        let want: Vec<usize> = (0..ds.len()).filter(|&i| out[i].is_none()).collect();
        if want.is_empty() {
            return Ok(out);
        }
        let keys: Vec<&[u8]> = want.iter().map(|&i| &ds[i].0[..]).collect();
        let locs = self
            .meta
            .get_many(Table::Chunks, &keys)?
            .into_iter()
            .map(|raw| raw.map(|b| Location::decode(&b)).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        for (i, data) in want.into_iter().zip(self.chunks.read(&locs)?) {
            out[i] = data;
        }
        Ok(out)
    }

    fn chunk_has(&self, d: &B3Digest) -> Result<bool, StoreError> {
        if self
            .pending
            .lock()
            .map_err(|_| poisoned())?
            .unflushed
            .contains_key(d)
        {
            return Ok(true);
        }
        Ok(self.meta.get_many(Table::Chunks, &[&d.0])?[0].is_some())
    }

    fn chunk_put(&self, d: &B3Digest, data: &[u8]) -> Result<(), StoreError> {
        let handoff = self.handoff.read().map_err(|_| poisoned())?;
        let (full_pack, flush) = {
            let mut p = self.pending.lock().map_err(|_| poisoned())?;
            if p.unflushed.contains_key(d) {
                return Ok(());
            }
            let data = Bytes::copy_from_slice(data);
            p.unflushed_len += data.len();
            p.unflushed.insert(*d, data.clone());
            p.pack_len += data.len();
            p.pack.push((*d, data));
            let full = if p.pack_len >= PACK_TARGET {
                p.pack_len = 0;
                std::mem::take(&mut p.pack)
            } else {
                Vec::new()
            };
            (full, Self::needs_flush(&p))
        };
        self.upload_pack(full_pack)?;
        drop(handoff);
        if flush {
            self.flush(None)?;
        }
        Ok(())
    }

    fn chunk_list_page(
        &self,
        after: Option<&B3Digest>,
        limit: usize,
    ) -> Result<Vec<B3Digest>, StoreError> {
        self.flush(None)?;
        let keys = self
            .meta
            .keys_page(Table::Chunks, after.map(|d| &d.0[..]), limit)?;
        Ok(keys
            .iter()
            .filter_map(|k| <[u8; 32]>::try_from(k.as_slice()).ok().map(B3Digest))
            .collect())
    }

    fn kv_get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.kv_get_many(t, &[key])?.pop().flatten())
    }

    fn kv_get_many(&self, t: Table, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut out: Vec<Option<Vec<u8>>> = {
            let p = self.pending.lock().map_err(|_| poisoned())?;
            keys.iter()
                .map(|k| p.batch.get(&(t, k.to_vec())).cloned())
                .collect()
        };
        let want: Vec<usize> = (0..keys.len()).filter(|&i| out[i].is_none()).collect();
        if want.is_empty() {
            return Ok(out);
        }
        let ks: Vec<&[u8]> = want.iter().map(|&i| keys[i]).collect();
        for (i, v) in want.into_iter().zip(self.meta.get_many(t, &ks)?) {
            out[i] = v;
        }
        Ok(out)
    }

    /// A path info is committed at once, with everything before it; other values wait
    /// in the batch.
    fn kv_put(&self, t: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if t == Table::PathInfos {
            return self.flush(Some((t, key, value)));
        }
        self.kv_put_batched(t, key, value)
    }

    fn kv_put_batched(&self, t: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let flush = {
            let mut p = self.pending.lock().map_err(|_| poisoned())?;
            p.batch.insert((t, key.to_vec()), value.to_vec());
            Self::needs_flush(&p)
        };
        if flush {
            self.flush(None)?;
        }
        Ok(())
    }

    fn commit(&self) -> Result<(), StoreError> {
        self.flush(None)
    }

    fn kv_keys_page(
        &self,
        t: Table,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.flush(None)?;
        self.meta.keys_page(t, after, limit)
    }
}

impl Drop for ComposedBackend {
    fn drop(&mut self) {
        // Registered paths were committed when they were registered; what is left
        // (blobs and directories no path names yet) is only a cache.
        let _ = self.flush(None);
    }
}
