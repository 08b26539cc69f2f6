//! [`ObjectChunks`]: chunks packed into objects of an object store (the `object_store`
//! crate: S3 and S3-compatible servers, GCS, Azure, a local directory).
//!
//! A pack is one object, `PREFIX/packs/<pid>-<time>-<n>-<random>.pack`, written with one
//! PUT; its name is unique, so no process ever overwrites another's object. Chunks are
//! read back with ranged GETs, one per run of adjacent chunks of a pack.

use std::collections::BTreeMap;
use std::ops::Range;
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

/// Chunks of one pack closer than this are read in one request (the bytes between them
/// are fetched and dropped: cheaper than another request).
const READ_GAP: u64 = 256 << 10;

/// One ranged read is at most this long.
const READ_MAX: u64 = 16 << 20;

/// At most this many ranged reads of one batch are in flight at once.
const MAX_READS: usize = 16;

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
        let runs = read_runs(locs);
        let mut requests: Vec<(Path, Range<u64>)> = Vec::with_capacity(runs.len());
        for run in &runs {
            requests.push((
                self.packs.clone().join(run.pack.as_str()),
                run.range.start..run.range.end,
            ));
        }
        let store = self.store.clone();
        let counters = self.counters.clone();
        let fetched = self.rt.run(async move {
            let slots = Arc::new(tokio::sync::Semaphore::new(MAX_READS));
            let mut tasks = Vec::with_capacity(requests.len());
            for (path, range) in requests {
                let store = store.clone();
                let counters = counters.clone();
                let slots = slots.clone();
                tasks.push(tokio::spawn(async move {
                    let _slot = slots.acquire_owned().await;
                    counters.gets.fetch_add(1, Ordering::Relaxed);
                    let res = store.get_range(&path, range).await;
                    if let Ok(b) = &res {
                        counters
                            .get_bytes
                            .fetch_add(b.len() as u64, Ordering::Relaxed);
                    }
                    res
                }));
            }
            let mut out = Vec::with_capacity(tasks.len());
            for t in tasks {
                out.push(t.await);
            }
            out
        })?;
        let mut out: Vec<Option<Bytes>> = vec![None; locs.len()];
        for (run, res) in runs.iter().zip(fetched) {
            let bytes = match res {
                Ok(Ok(b)) => b,
                // A pack that is gone: its chunks are missing.
                Ok(Err(object_store::Error::NotFound { .. })) => continue,
                Ok(Err(e)) => return Err(os_err(e)),
                Err(join) => {
                    return Err(StoreError::Io(std::io::Error::other(format!(
                        "read task failed: {join}"
                    ))))
                }
            };
            for &(idx, offset, len) in &run.chunks {
                let from = (offset - run.range.start) as usize;
                let to = from + len as usize;
                // A short answer (an object cut short) makes the chunk missing.
                if to <= bytes.len() {
                    out[idx] = Some(bytes.slice(from..to));
                }
            }
        }
        Ok(out)
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

/// One ranged read: a byte range of a pack and the chunks in it (index in the request,
/// offset in the pack, length).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ReadRun {
    pub(crate) pack: String,
    pub(crate) range: Range<u64>,
    pub(crate) chunks: Vec<(usize, u64, u64)>,
}

/// Groups the chunks to read into ranged reads: per pack, by offset, joining chunks at
/// most [`READ_GAP`] apart into reads of at most [`READ_MAX`] bytes (a chunk longer
/// than that is read alone).
pub(crate) fn read_runs(locs: &[Option<Location>]) -> Vec<ReadRun> {
    let mut by_pack: BTreeMap<&str, Vec<(usize, u64, u64)>> = BTreeMap::new();
    for (idx, loc) in locs.iter().enumerate() {
        if let Some(l) = loc {
            by_pack
                .entry(l.pack.as_str())
                .or_default()
                .push((idx, l.offset, l.len));
        }
    }
    let mut runs = Vec::new();
    for (pack, mut chunks) in by_pack {
        chunks.sort_by_key(|&(idx, offset, _)| (offset, idx));
        let mut cur: Option<ReadRun> = None;
        for (idx, offset, len) in chunks {
            let end = offset.saturating_add(len);
            if let Some(run) = cur.as_mut() {
                let joinable = offset <= run.range.end.saturating_add(READ_GAP)
                    && end.max(run.range.end) - run.range.start <= READ_MAX;
                if joinable {
                    run.range.end = run.range.end.max(end);
                    run.chunks.push((idx, offset, len));
                    continue;
                }
                runs.extend(cur.take());
            }
            cur = Some(ReadRun {
                pack: pack.to_string(),
                range: offset..end,
                chunks: vec![(idx, offset, len)],
            });
        }
        runs.extend(cur);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(pack: &str, offset: u64, len: u64) -> Option<Location> {
        Some(Location {
            pack: pack.into(),
            offset,
            len,
        })
    }

    #[test]
    fn adjacent_chunks_of_a_pack_are_one_read() {
        let locs = [
            loc("a", 100, 50),
            None,
            loc("a", 0, 100),
            loc("b", 0, 10),
            loc("a", 150, 10),
        ];
        let runs = read_runs(&locs);
        assert_eq!(
            runs,
            vec![
                ReadRun {
                    pack: "a".into(),
                    range: 0..160,
                    chunks: vec![(2, 0, 100), (0, 100, 50), (4, 150, 10)],
                },
                ReadRun {
                    pack: "b".into(),
                    range: 0..10,
                    chunks: vec![(3, 0, 10)],
                },
            ]
        );
    }

    #[test]
    fn distant_chunks_and_long_runs_are_split() {
        let far = 10 + READ_GAP + 1;
        let runs = read_runs(&[loc("a", 0, 10), loc("a", far, 10)]);
        assert_eq!(runs.len(), 2);
        // Reads stop growing at READ_MAX.
        let step = 4 << 20;
        let locs: Vec<_> = (0..5).map(|i| loc("a", i * step, step)).collect();
        let runs = read_runs(&locs);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].range, 0..READ_MAX);
        assert_eq!(runs[1].range, READ_MAX..5 * step);
    }
}
