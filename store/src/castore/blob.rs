//! Blobs: file contents stored as content-defined chunks, read back with verification.

use std::io::{self, Read};

use super::backend::{Backend, Table};
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

    /// Whether the blob is stored.
    fn has_blob(&self, digest: &B3Digest) -> Result<bool, StoreError>;

    /// The blob's size, or `None` if it is not stored.
    fn blob_size(&self, digest: &B3Digest) -> Result<Option<u64>, StoreError>;

    /// A streaming reader of the blob, or `None` if it is not stored. From a local or
    /// memory store, every chunk is checked against its digest before any of its bytes
    /// are returned; a corrupt or missing chunk makes `read` fail with an error that
    /// [`StoreError::from_io`] turns back into [`StoreError::CorruptChunk`] /
    /// [`StoreError::MissingChunk`]. From a gRPC store, the server checks the chunks and
    /// the client re-hashes the whole blob: bytes that do not add up to the digest or the
    /// size fail the read at the end ([`StoreError::CorruptBlob`],
    /// [`StoreError::SizeMismatch`]).
    fn open_blob(&self, digest: &B3Digest) -> Result<Option<BlobReader<'_>>, StoreError>;
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
fn put_small_blob(backend: &dyn Backend, data: &[u8]) -> Result<(B3Digest, u64), StoreError> {
    let mut chunks = Vec::new();
    let cdc = fastcdc::v2020::FastCDC::new(data, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX);
    for c in cdc {
        let piece = &data[c.offset..c.offset + c.length];
        let d = B3Digest::of(piece);
        store_chunk(backend, &d, piece)?;
        chunks.push((d, c.length as u64));
    }
    let digest = match chunks.as_slice() {
        [(only, _)] => *only,
        _ => B3Digest::of(data),
    };
    let size = data.len() as u64;
    record_manifest(backend, &digest, Manifest { size, chunks })?;
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

/// Checks a fetched chunk against its digest and expected length.
fn check_chunk(d: &B3Digest, len: Option<u64>, data: &[u8]) -> Result<(), StoreError> {
    let actual = B3Digest::of(data);
    if actual != *d || len.is_some_and(|l| l != data.len() as u64) {
        return Err(StoreError::CorruptChunk {
            expected: *d,
            actual,
        });
    }
    Ok(())
}

/// Fetches a chunk and checks it against its digest and expected length.
pub(crate) fn get_chunk_verified(
    backend: &dyn Backend,
    d: &B3Digest,
    len: Option<u64>,
) -> Result<Vec<u8>, StoreError> {
    let data = backend.chunk_get(d)?.ok_or(StoreError::MissingChunk(*d))?;
    check_chunk(d, len, &data)?;
    Ok(data)
}

/// How many chunks a blob reader fetches at once (at most 2 MiB with [`CHUNK_MAX`]).
const FETCH_AHEAD: usize = 8;

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

/// Streams a stored blob chunk by chunk, checking each chunk against its digest and
/// length before returning any of its bytes. (The manifest itself is checked against the
/// blob's digest by [`super::Store::verify`].)
pub(crate) struct ChunkReader<'a> {
    backend: &'a dyn Backend,
    manifest: Manifest,
    next_chunk: usize,
    /// The chunks fetched together, and where each is in `batch` (not yet checked).
    batch: Vec<u8>,
    fetched: std::collections::VecDeque<Option<std::ops::Range<usize>>>,
    /// The current (checked) chunk's bytes in `batch`, and how far it was read.
    pos: usize,
    end: usize,
}

impl<'a> ChunkReader<'a> {
    pub(crate) fn new(backend: &'a dyn Backend, manifest: Manifest) -> Self {
        ChunkReader {
            backend,
            manifest,
            next_chunk: 0,
            batch: Vec::new(),
            fetched: Default::default(),
            pos: 0,
            end: 0,
        }
    }

    fn refill(&mut self) -> Result<bool, StoreError> {
        let Some((d, len)) = self.manifest.chunks.get(self.next_chunk).copied() else {
            return Ok(false);
        };
        if self.fetched.is_empty() {
            let end = (self.next_chunk + FETCH_AHEAD).min(self.manifest.chunks.len());
            let want: Vec<B3Digest> = self.manifest.chunks[self.next_chunk..end]
                .iter()
                .map(|(d, _)| *d)
                .collect();
            self.fetched = self.backend.chunk_get_many(&want, &mut self.batch)?.into();
        }
        let range = self
            .fetched
            .pop_front()
            .flatten()
            .ok_or(StoreError::MissingChunk(d))?;
        check_chunk(&d, Some(len), &self.batch[range.clone()])?;
        self.pos = range.start;
        self.end = range.end;
        self.next_chunk += 1;
        Ok(true)
    }
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos >= self.end {
            if !self.refill().map_err(StoreError::into_io)? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.batch[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
