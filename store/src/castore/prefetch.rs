//! Reading small blobs ahead on helper threads while a NAR is rendered, so fetching and
//! verifying (BLAKE3) file contents overlaps with writing the NAR and spreads over cores.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Mutex;

use super::{B3Digest, BlobService, StoreError};

/// Blobs up to this size are read ahead whole.
pub(crate) const PREFETCH_MAX: u64 = 1 << 20;

/// At most this many blobs are being read or waiting to be written (so at most
/// `WINDOW * PREFETCH_MAX` bytes are held).
const WINDOW: usize = 32;

/// Helper threads reading blobs.
pub(crate) const WORKERS: usize = 2;

/// A blob to read.
pub(crate) struct Job {
    id: u64,
    digest: B3Digest,
    size: u64,
}

type Fetched = Result<Vec<u8>, StoreError>;

/// Reads `job`'s blob whole, checking its size (the store checks its contents).
fn fetch<S: BlobService + ?Sized>(store: &S, job: &Job) -> Fetched {
    let mut r = store
        .open_blob(&job.digest)?
        .ok_or(StoreError::BlobNotFound(job.digest))?;
    if r.size() != job.size {
        return Err(StoreError::SizeMismatch {
            what: "blob",
            digest: job.digest,
            expected: job.size,
            actual: r.size(),
        });
    }
    let mut data = Vec::with_capacity(job.size as usize);
    (&mut r)
        .take(job.size + 1)
        .read_to_end(&mut data)
        .map_err(StoreError::from_io)?;
    if data.len() as u64 != job.size {
        return Err(StoreError::SizeMismatch {
            what: "blob",
            digest: job.digest,
            expected: job.size,
            actual: data.len() as u64,
        });
    }
    Ok(data)
}

/// The loop of a helper thread: read blobs until the job channel closes.
pub(crate) fn work<S: BlobService + ?Sized>(
    store: &S,
    jobs: &Mutex<Receiver<Job>>,
    results: Sender<(u64, Fetched)>,
) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let r = fetch(store, &job);
        if results.send((job.id, r)).is_err() {
            return;
        }
    }
}

/// The rendering side: plans blobs in the order the NAR needs them, keeps up to
/// [`WINDOW`] of them in flight, and hands them out by job id.
pub(crate) struct Prefetcher {
    jobs: Option<Sender<Job>>,
    results: Receiver<(u64, Fetched)>,
    /// Planned, not yet sent, in the order they will be needed.
    planned: VecDeque<Job>,
    ready: HashMap<u64, Fetched>,
    in_flight: usize,
    next_id: u64,
}

impl Prefetcher {
    pub(crate) fn new(jobs: Sender<Job>, results: Receiver<(u64, Fetched)>) -> Self {
        Prefetcher {
            jobs: Some(jobs),
            results,
            planned: VecDeque::new(),
            ready: HashMap::new(),
            in_flight: 0,
            next_id: 0,
        }
    }

    /// Closes the job channel, so the helper threads end.
    pub(crate) fn close(&mut self) {
        self.jobs = None;
    }

    /// Plans the blobs of a directory just opened: in a depth-first render they are
    /// needed before everything planned so far, in the given order. Returns their ids.
    pub(crate) fn plan_first(&mut self, blobs: &[(B3Digest, u64)]) -> Vec<u64> {
        let ids: Vec<u64> = (0..blobs.len() as u64).map(|i| self.next_id + i).collect();
        self.next_id += blobs.len() as u64;
        for (id, (digest, size)) in ids.iter().zip(blobs).rev() {
            self.planned.push_front(Job {
                id: *id,
                digest: *digest,
                size: *size,
            });
        }
        self.pump();
        ids
    }

    fn send(&mut self, job: Job) {
        self.in_flight += 1;
        let id = job.id;
        let sent = self.jobs.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        if !sent {
            self.ready.insert(id, Err(helpers_gone()));
        }
    }

    fn pump(&mut self) {
        while self.in_flight < WINDOW {
            let Some(job) = self.planned.pop_front() else {
                break;
            };
            self.send(job);
        }
    }

    /// The contents of blob `id`, waiting for them if needed.
    pub(crate) fn take(&mut self, id: u64) -> Fetched {
        if let Some(pos) = self.planned.iter().position(|j| j.id == id) {
            if let Some(job) = self.planned.remove(pos) {
                self.send(job);
            }
        }
        loop {
            if let Some(r) = self.ready.remove(&id) {
                self.in_flight -= 1;
                self.pump();
                return r;
            }
            match self.results.recv() {
                Ok((got, r)) => {
                    self.ready.insert(got, r);
                }
                Err(_) => return Err(helpers_gone()),
            }
        }
    }
}

fn helpers_gone() -> StoreError {
    StoreError::Io(std::io::Error::other("the blob reading threads stopped"))
}
