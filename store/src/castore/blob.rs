//! Blobs: file contents stored as content-defined chunks, read back with verification.

use std::io::{self, Read};

use bytes::Bytes;

use super::backend::{Backend, StoredChunk, Table};
use super::wire::{put_u64, Decoder};
use super::{B3Digest, StoreError};

/// Smallest chunk FastCDC cuts (except the last chunk of a blob).
pub const CHUNK_MIN: usize = 16 * 1024;
/// Average chunk size FastCDC aims for.
pub const CHUNK_AVG: usize = 64 * 1024;
/// Largest chunk FastCDC cuts.
pub const CHUNK_MAX: usize = 256 * 1024;

/// Stores file contents by BLAKE3 digest.
pub trait BlobService {
    /// Stores everything read from `r` (streaming, in chunks) and returns the blob's digest
    /// and size. The blob is readable once this returns.
    fn put_blob(&self, r: &mut dyn Read) -> Result<(B3Digest, u64), StoreError>;

    /// [`BlobService::put_blob`] for contents already in memory (which a store may then
    /// chunk in place, without copying them first).
    fn put_blob_bytes(&self, data: &[u8]) -> Result<(B3Digest, u64), StoreError> {
        self.put_blob(&mut &data[..])
    }

    /// Whether the blob is stored.
    fn has_blob(&self, digest: &B3Digest) -> Result<bool, StoreError>;

    /// The blob's size, or `None` if it is not stored.
    fn blob_size(&self, digest: &B3Digest) -> Result<Option<u64>, StoreError>;

    /// A streaming reader of the blob, or `None` if it is not stored. From a local or
    /// memory store, every chunk is checked before any of its bytes are returned: against
    /// the checksum the local store took when it wrote the chunk (see
    /// [`super::chunk_sum`] for what that does and does not catch), else against its
    /// digest; a corrupt or missing chunk makes `read` fail with an error that
    /// [`StoreError::from_io`] turns back into [`StoreError::CorruptChunk`] /
    /// [`StoreError::MissingChunk`]. From a gRPC store, the server checks the chunks and
    /// the client re-hashes the whole blob: bytes that do not add up to the digest or the
    /// size fail the read at the end ([`StoreError::CorruptBlob`],
    /// [`StoreError::SizeMismatch`]).
    fn open_blob(&self, digest: &B3Digest) -> Result<Option<BlobReader<'_>>, StoreError>;

    /// Reads `len` bytes of the blob starting at `offset`, or fewer where the blob ends
    /// first; `None` if the blob is not stored. An `offset` equal to the size gives no
    /// bytes, one beyond it is [`StoreError::RangeOutOfBounds`]. The bytes are checked as
    /// well as the store can check a part of a blob: a local or memory store reads only
    /// the chunks covering the range and checks each as [`BlobService::open_blob`] does; a gRPC store
    /// relies on the server's check of those chunks and checks the length it receives.
    ///
    /// The default reads the blob from its start with [`BlobService::open_blob`] and
    /// drops the bytes before `offset`.
    fn read_blob_range(
        &self,
        digest: &B3Digest,
        offset: u64,
        len: u64,
    ) -> Result<Option<Bytes>, StoreError> {
        let Some(mut r) = self.open_blob(digest)? else {
            return Ok(None);
        };
        let want = clip_range(digest, r.size(), offset, len)?;
        let skipped =
            io::copy(&mut (&mut r).take(offset), &mut io::sink()).map_err(StoreError::from_io)?;
        let mut out = Vec::with_capacity(want.min(1 << 24) as usize);
        (&mut r)
            .take(want)
            .read_to_end(&mut out)
            .map_err(StoreError::from_io)?;
        if skipped != offset || out.len() as u64 != want {
            return Err(StoreError::SizeMismatch {
                what: "blob",
                digest: *digest,
                expected: r.size(),
                actual: skipped + out.len() as u64,
            });
        }
        Ok(Some(Bytes::from(out)))
    }

    /// Reads several whole blobs, checked as [`BlobService::open_blob`] checks them, and
    /// returns each one's contents as a list of pieces. A missing blob is an error. This is
    /// how many small files are read at once: a store may fetch and check them together,
    /// in parallel, and hand out its bytes without copying them.
    /// `sizes` are the blobs' expected sizes, a hint for sharing the work.
    fn read_blobs(
        &self,
        digests: &[B3Digest],
        sizes: &[u64],
    ) -> Result<Vec<Vec<Bytes>>, StoreError> {
        let _ = sizes;
        digests
            .iter()
            .map(|d| {
                let mut r = self.open_blob(d)?.ok_or(StoreError::BlobNotFound(*d))?;
                let mut buf = Vec::with_capacity(r.size().min(1 << 20) as usize);
                r.read_to_end(&mut buf).map_err(StoreError::from_io)?;
                Ok(vec![Bytes::from(buf)])
            })
            .collect()
    }
}

/// The chunks a blob is made of, in order: (chunk digest, length).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) size: u64,
    pub(crate) chunks: Vec<(B3Digest, u64)>,
}

impl Manifest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.chunks.len() * 40);
        put_u64(&mut out, self.size);
        put_u64(&mut out, self.chunks.len() as u64);
        for (d, len) in &self.chunks {
            out.extend_from_slice(&d.0);
            put_u64(&mut out, *len);
        }
        out
    }

    pub(crate) fn decode(buf: &[u8]) -> Result<Manifest, StoreError> {
        let mut d = Decoder::new(buf, "blob manifest");
        let size = d.u64()?;
        let n = d.count(40)?;
        let mut chunks = Vec::with_capacity(n);
        let mut total: u64 = 0;
        for _ in 0..n {
            let digest = d.digest()?;
            let len = d.u64()?;
            total = total
                .checked_add(len)
                .ok_or_else(|| d.err("size overflow"))?;
            chunks.push((digest, len));
        }
        d.finish()?;
        if total != size {
            return Err(StoreError::Decode {
                what: "blob manifest",
                reason: "chunk lengths do not add up to the blob size",
            });
        }
        Ok(Manifest { size, chunks })
    }
}

/// How many bytes of a blob of `size` bytes a read of `len` bytes at `offset` returns:
/// the range is cut at the blob's end; an offset past the end is
/// [`StoreError::RangeOutOfBounds`].
pub fn clip_range(digest: &B3Digest, size: u64, offset: u64, len: u64) -> Result<u64, StoreError> {
    if offset > size {
        return Err(StoreError::RangeOutOfBounds {
            digest: *digest,
            offset,
            size,
        });
    }
    Ok(len.min(size - offset))
}

/// A blob's chunks with where each one ends in the blob (prefix sums of the lengths), so
/// the chunks covering a range are found by binary search.
#[derive(Debug)]
pub(crate) struct ChunkIndex {
    size: u64,
    chunks: Vec<(B3Digest, u64)>,
    /// `ends[i]`: the offset just past chunk `i`.
    ends: Vec<u64>,
}

impl ChunkIndex {
    pub(crate) fn new(m: Manifest) -> Self {
        let mut acc = 0u64;
        let ends = m
            .chunks
            .iter()
            .map(|(_, len)| {
                acc += len;
                acc
            })
            .collect();
        ChunkIndex {
            size: m.size,
            chunks: m.chunks,
            ends,
        }
    }

    /// The indices `first..last` of the chunks holding bytes `offset..end`
    /// (`offset < end <= size`), and the offset in the blob where chunk `first` starts.
    fn covering(&self, offset: u64, end: u64) -> (usize, usize, u64) {
        let first = self.ends.partition_point(|&e| e <= offset);
        let last = self.ends.partition_point(|&e| e < end) + 1;
        let start = if first == 0 { 0 } else { self.ends[first - 1] };
        (first, last.min(self.chunks.len()), start)
    }
}

/// Reads `len` bytes at `offset` of the blob `index` describes, fetching and checking only
/// the chunks that cover them; adds the number of chunks fetched to `counter`.
pub(crate) fn read_range(
    backend: &dyn Backend,
    digest: &B3Digest,
    index: &ChunkIndex,
    offset: u64,
    len: u64,
    counter: &std::sync::atomic::AtomicU64,
) -> Result<Bytes, StoreError> {
    let want = clip_range(digest, index.size, offset, len)?;
    if want == 0 {
        return Ok(Bytes::new());
    }
    let end = offset + want;
    let (first, last, start) = index.covering(offset, end);
    let chunks = &index.chunks[first..last];
    let ids: Vec<B3Digest> = chunks.iter().map(|(d, _)| *d).collect();
    counter.fetch_add(ids.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let fetched = backend.chunk_get_many_summed(&ids)?;
    check_chunks(chunks, &fetched)?;
    let mut pieces = fetched.into_iter().flatten().map(|c| c.data);
    let skip = (offset - start) as usize;
    if chunks.len() == 1 {
        // One chunk: hand out a slice of it, no copy.
        let c = pieces.next().ok_or(StoreError::MissingChunk(ids[0]))?;
        return Ok(c.slice(skip..skip + want as usize));
    }
    let mut out = Vec::with_capacity(want as usize);
    let mut skip = skip;
    for c in pieces {
        let from = skip.min(c.len());
        skip -= from;
        let take = (want as usize - out.len()).min(c.len() - from);
        out.extend_from_slice(&c[from..from + take]);
    }
    if out.len() as u64 != want {
        return Err(StoreError::SizeMismatch {
            what: "blob",
            digest: *digest,
            expected: index.size,
            actual: start + out.len() as u64,
        });
    }
    Ok(Bytes::from(out))
}

/// Stores a chunk unless it is stored already.
fn store_chunk(backend: &dyn Backend, d: &B3Digest, data: &[u8]) -> Result<(), StoreError> {
    if !backend.chunk_has(d)? {
        backend.chunk_put(d, data)?;
    }
    Ok(())
}

/// Records the manifest of a blob unless it is recorded already.
fn record_manifest(
    backend: &dyn Backend,
    digest: &B3Digest,
    manifest: Manifest,
) -> Result<(), StoreError> {
    if backend.kv_get(Table::Blobs, &digest.0)?.is_none() {
        backend.kv_put(Table::Blobs, &digest.0, &manifest.encode())?;
    }
    Ok(())
}

/// Cuts `r` into chunks, stores the new ones and records the manifest. Blobs of at most
/// [`CHUNK_MAX`] bytes (most files) are cut in memory, without a streaming buffer per
/// blob, and a blob of one chunk is hashed once (its digest is its chunk's).
pub(crate) fn put_blob(
    backend: &dyn Backend,
    r: &mut dyn Read,
) -> Result<(B3Digest, u64), StoreError> {
    let mut head = Vec::with_capacity(CHUNK_MAX + 1);
    (&mut *r)
        .take(CHUNK_MAX as u64 + 1)
        .read_to_end(&mut head)
        .map_err(StoreError::from_io)?;
    if head.len() <= CHUNK_MAX {
        return put_small_blob(backend, &head);
    }
    let mut rest = io::Cursor::new(head).chain(r);
    let mut hasher = blake3::Hasher::new();
    let mut chunks = Vec::new();
    let mut size: u64 = 0;
    let cdc = fastcdc::v2020::StreamCDC::new(&mut rest, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX);
    for chunk in cdc {
        let chunk = match chunk {
            Ok(c) => c,
            Err(fastcdc::v2020::Error::IoError(e)) => return Err(StoreError::from_io(e)),
            Err(fastcdc::v2020::Error::Empty) => break,
            Err(fastcdc::v2020::Error::Other(msg)) => {
                return Err(StoreError::Io(io::Error::other(msg)))
            }
        };
        hasher.update(&chunk.data);
        let d = B3Digest::of(&chunk.data);
        store_chunk(backend, &d, &chunk.data)?;
        size += chunk.data.len() as u64;
        chunks.push((d, chunk.data.len() as u64));
    }
    let digest = B3Digest(*hasher.finalize().as_bytes());
    record_manifest(backend, &digest, Manifest { size, chunks })?;
    Ok((digest, size))
}

/// [`put_blob`] for a blob held in memory.
pub(crate) fn put_blob_bytes(
    backend: &dyn Backend,
    data: &[u8],
) -> Result<(B3Digest, u64), StoreError> {
    if data.len() <= CHUNK_MAX {
        put_small_blob(backend, data)
    } else {
        put_blob(backend, &mut &data[..])
    }
}

/// [`put_blob`] for a blob of at most [`CHUNK_MAX`] bytes held in memory: cut and hashed
/// first, then the blob and its chunks looked up at once, and only what is missing
/// stored.
fn put_small_blob(backend: &dyn Backend, data: &[u8]) -> Result<(B3Digest, u64), StoreError> {
    let pieces: Vec<&[u8]> = fastcdc::v2020::FastCDC::new(data, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX)
        .map(|c| &data[c.offset..c.offset + c.length])
        .collect();
    let digests: Vec<B3Digest> = pieces.iter().map(|p| B3Digest::of(p)).collect();
    let digest = match digests.as_slice() {
        [only] => *only,
        _ => B3Digest::of(data),
    };
    let size = data.len() as u64;
    let Some(stored) = backend.blob_missing_chunks(&digest, &digests)? else {
        return Ok((digest, size));
    };
    for ((d, piece), stored) in digests.iter().zip(&pieces).zip(stored) {
        if !stored {
            backend.chunk_put(d, piece)?;
        }
    }
    let chunks = digests
        .into_iter()
        .zip(&pieces)
        .map(|(d, p)| (d, p.len() as u64))
        .collect();
    backend.kv_put(Table::Blobs, &digest.0, &Manifest { size, chunks }.encode())?;
    Ok((digest, size))
}

/// The manifest of a blob, or `None`.
pub(crate) fn manifest(
    backend: &dyn Backend,
    d: &B3Digest,
) -> Result<Option<Manifest>, StoreError> {
    match backend.kv_get(Table::Blobs, &d.0)? {
        Some(b) => Ok(Some(Manifest::decode(&b)?)),
        None => Ok(None),
    }
}

/// Checks a fetched chunk against its expected length and its checksum
/// ([`super::chunk_sum`]) if it has one, else (or if that does not match) against its
/// digest.
fn check_chunk(
    d: &B3Digest,
    len: Option<u64>,
    data: &[u8],
    sum: Option<u64>,
) -> Result<(), StoreError> {
    let len_ok = len.is_none_or(|l| l == data.len() as u64);
    if len_ok && sum.is_some_and(|s| s == super::chunk_sum::of(data)) {
        return Ok(());
    }
    // No checksum, or one that does not match: the digest decides (a damaged checksum
    // must not make good bytes unreadable).
    let actual = B3Digest::of(data);
    if actual != *d || !len_ok {
        return Err(StoreError::CorruptChunk {
            expected: *d,
            actual,
        });
    }
    Ok(())
}

/// Below this many bytes, chunks are checked on the calling thread only.
const PARALLEL_CHECK_MIN: usize = 512 * 1024;

/// How many threads share the checking of a large read: those of rayon's pool, whose
/// threads live as long as the process (threads started per batch would often run on the
/// same core as their parent for all of their short life).
fn check_threads() -> usize {
    rayon::current_num_threads().min(8)
}

/// Runs `work` on the `parts` of a batch in parallel and returns the results in order.
fn in_parallel<P, T, F>(parts: Vec<P>, work: F) -> Vec<Result<T, StoreError>>
where
    P: Send,
    T: Send,
    F: Fn(P) -> Result<T, StoreError> + Sync + Send,
{
    use rayon::prelude::*;
    parts.into_par_iter().map(work).collect()
}

/// Cuts `sizes` into at most `n` runs of consecutive items of about equal total size;
/// returns the index where each run starts, and the length as the last element.
fn cut_by_size(sizes: impl Iterator<Item = u64> + Clone, n: usize) -> Vec<usize> {
    let total: u64 = sizes.clone().sum();
    let share = total.div_ceil(n.max(1) as u64).max(1);
    let mut cuts = vec![0];
    let mut acc = 0;
    let mut len = 0;
    for (i, size) in sizes.enumerate() {
        acc += size;
        len = i + 1;
        if acc >= share * cuts.len() as u64 && cuts.len() < n {
            cuts.push(i + 1);
        }
    }
    if cuts.last() != Some(&len) {
        cuts.push(len);
    }
    cuts
}

/// Checks fetched chunks as [`check_chunk`] does (`fetched[i]` is chunk `chunks[i]`,
/// `None` if it is missing). Checking is the bulk of the cost of a read (even with
/// checksums), so a large batch is split by bytes between the available cores. The error reported is that of the
/// first bad chunk.
fn check_chunks(
    chunks: &[(B3Digest, u64)],
    fetched: &[Option<StoredChunk>],
) -> Result<(), StoreError> {
    let check =
        |(from, to): (usize, usize)| check_chunks_here(&chunks[from..to], &fetched[from..to]);
    let total: u64 = chunks.iter().map(|(_, len)| *len).sum();
    let threads = check_threads();
    if threads < 2 || chunks.len() < 2 || (total as usize) < PARALLEL_CHECK_MIN {
        return check((0, chunks.len()));
    }
    let cuts = cut_by_size(chunks.iter().map(|(_, len)| *len), threads);
    let runs = cuts.windows(2).map(|w| (w[0], w[1])).collect();
    in_parallel(runs, check).into_iter().collect()
}

/// [`check_chunks`] on the calling thread.
fn check_chunks_here(
    chunks: &[(B3Digest, u64)],
    fetched: &[Option<StoredChunk>],
) -> Result<(), StoreError> {
    for ((d, len), c) in chunks.iter().zip(fetched) {
        let c = c.as_ref().ok_or(StoreError::MissingChunk(*d))?;
        check_chunk(d, Some(*len), &c.data, c.sum)?;
    }
    Ok(())
}

/// [`BlobService::read_blobs`] for a store on a [`Backend`]. The blobs are split between
/// the available cores by size; each thread looks its blobs' manifests and chunks up (in
/// one transaction each) and checks the chunks.
pub(crate) fn read_blobs(
    backend: &dyn Backend,
    digests: &[B3Digest],
    sizes: &[u64],
) -> Result<Vec<Vec<Bytes>>, StoreError> {
    let total: u64 = sizes.iter().sum();
    let threads = check_threads();
    if threads < 2 || digests.len() < 2 || (total as usize) < PARALLEL_CHECK_MIN {
        return read_blobs_here(backend, digests);
    }
    // More parts than threads, so that a thread that finishes early takes another.
    let cuts = cut_by_size(sizes.iter().copied(), threads * 4);
    let runs = cuts.windows(2).map(|w| &digests[w[0]..w[1]]).collect();
    let mut out = Vec::with_capacity(digests.len());
    for part in in_parallel(runs, |ds| read_blobs_here(backend, ds)) {
        out.extend(part?);
    }
    Ok(out)
}

/// [`read_blobs`] on the calling thread.
fn read_blobs_here(
    backend: &dyn Backend,
    digests: &[B3Digest],
) -> Result<Vec<Vec<Bytes>>, StoreError> {
    let keys: Vec<&[u8]> = digests.iter().map(|d| &d.0[..]).collect();
    let mut chunks = Vec::new();
    let mut counts = Vec::with_capacity(digests.len());
    for (d, raw) in digests
        .iter()
        .zip(backend.kv_get_many(Table::Blobs, &keys)?)
    {
        let m = Manifest::decode(&raw.ok_or(StoreError::BlobNotFound(*d))?)?;
        counts.push(m.chunks.len());
        chunks.extend(m.chunks);
    }
    let want: Vec<B3Digest> = chunks.iter().map(|(d, _)| *d).collect();
    let fetched = backend.chunk_get_many_summed(&want)?;
    check_chunks_here(&chunks, &fetched)?;
    let mut fetched = fetched.into_iter().flatten().map(|c| c.data);
    Ok(counts
        .into_iter()
        .map(|n| fetched.by_ref().take(n).collect())
        .collect())
}

/// Checks chunks against their digests (never only their checksums: this is
/// `verify`), fetched in one batch: each one's outcome, in order (a missing chunk is
/// [`StoreError::MissingChunk`]).
pub(crate) fn check_stored_chunks(
    backend: &dyn Backend,
    ds: &[B3Digest],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let fetched = backend.chunk_get_many(ds)?;
    Ok(ds
        .iter()
        .zip(fetched)
        .map(|(d, data)| match data {
            Some(data) => check_chunk(d, None, &data, None),
            None => Err(StoreError::MissingChunk(*d)),
        })
        .collect())
}

/// How many chunks a blob reader fetches (and checks in parallel) at once: 2 MiB on
/// average, at most 8 MiB with [`CHUNK_MAX`].
const FETCH_AHEAD: usize = 32;

/// A blob being read: its size and a stream of its verified contents. What "verified"
/// means depends on where the blob comes from; see [`BlobService::open_blob`].
pub struct BlobReader<'a> {
    size: u64,
    inner: Box<dyn Read + Send + 'a>,
}

impl<'a> BlobReader<'a> {
    /// A reader of a blob of `size` bytes whose contents `inner` yields (and checks).
    pub fn new(size: u64, inner: Box<dyn Read + Send + 'a>) -> Self {
        BlobReader { size, inner }
    }

    /// The blob's size.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.inner.read(out)
    }
}

/// Streams a stored blob chunk by chunk, checking each chunk's length and its checksum or
/// digest ([`check_chunk`]) before returning any of its bytes. (The manifest itself is checked against the
/// blob's digest by [`super::Store::verify`].)
pub(crate) struct ChunkReader<'a> {
    backend: &'a dyn Backend,
    manifest: Manifest,
    next_chunk: usize,
    /// Chunks fetched (and checked) together, not yet read.
    fetched: std::collections::VecDeque<Bytes>,
    /// What is left of the chunk being read.
    current: Bytes,
}

impl<'a> ChunkReader<'a> {
    pub(crate) fn new(backend: &'a dyn Backend, manifest: Manifest) -> Self {
        ChunkReader {
            backend,
            manifest,
            next_chunk: 0,
            fetched: Default::default(),
            current: Bytes::new(),
        }
    }

    /// Makes the next chunk current; `false` at the end of the blob.
    fn refill(&mut self) -> Result<bool, StoreError> {
        if self.fetched.is_empty() {
            if self.next_chunk >= self.manifest.chunks.len() {
                return Ok(false);
            }
            let end = (self.next_chunk + FETCH_AHEAD).min(self.manifest.chunks.len());
            let chunks = &self.manifest.chunks[self.next_chunk..end];
            let want: Vec<B3Digest> = chunks.iter().map(|(d, _)| *d).collect();
            let fetched = self.backend.chunk_get_many_summed(&want)?;
            check_chunks(chunks, &fetched)?;
            self.fetched = fetched.into_iter().flatten().map(|c| c.data).collect();
            self.next_chunk = end;
        }
        match self.fetched.pop_front() {
            Some(c) => {
                self.current = c;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            if !self.refill().map_err(StoreError::into_io)? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
