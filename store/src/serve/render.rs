//! What the cache answers, rendered from a store's path infos and contents: narinfos
//! signed on the fly, and NARs streamed through the compressor in pieces.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::route::nar_url;
use crate::castore::cache_dir::Counting;
use crate::castore::nar::write_nar;
use crate::castore::StoreError;
use crate::compression::Compression;
use crate::hash::{HashAlgo, HashEncoding, Hasher};
use crate::narinfo::NarInfo;
use crate::pathinfo::PathInfo;
use crate::signing::SecretKey;
use crate::store_path::{StoreDir, StorePath};
use crate::StoreService;

/// The narinfo of `info` as the cache serves it: the NAR at a URL naming the path and its
/// NAR hash, compressed with `compression`; no `FileHash`/`FileSize`, since the file is
/// compressed as it is sent (Nix treats both as optional, as for nix-serve); the path's
/// own signatures plus one by `key`.
pub fn narinfo_for(
    info: &PathInfo,
    dir: &StoreDir,
    compression: Compression,
    key: Option<&SecretKey>,
) -> NarInfo {
    let mut narinfo = NarInfo {
        store_path: info.store_path.clone(),
        url: nar_url(info.store_path.digest(), &info.nar_sha256, compression),
        compression: compression.name().to_string(),
        file_hash: None,
        file_size: None,
        nar_hash: info.nar_hash(),
        nar_size: info.nar_size,
        references: info.references.clone(),
        deriver: info.deriver.clone(),
        signatures: info.signatures.clone(),
        ca: info.ca.clone(),
        system: None,
    };
    narinfo.references.sort_by_key(StorePath::to_base_name);
    if let Some(key) = key {
        // A signature by the same key stored with the path (an earlier copy) is
        // replaced by a fresh one.
        let prefix = format!("{}:", key.name());
        narinfo.signatures.retain(|s| !s.starts_with(&prefix));
        narinfo.signatures.push(key.sign(&narinfo.fingerprint(dir)));
    }
    narinfo
}

/// How many bytes a piece of a streamed NAR holds.
const PIECE: usize = 1 << 16;

/// A writer that sends what it gets to a channel in pieces of [`PIECE`] bytes, waiting
/// while the channel is full (so a slow client holds back the renderer instead of
/// memory growing). It must run on a thread outside the async runtime.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    /// A writer into `tx`.
    pub fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(PIECE),
        }
    }

    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        self.tx
            .blocking_send(Ok(piece))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(PIECE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PIECE {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

/// Passes on bytes `start..=end` of what is written and drops the rest. Once the range
/// is complete it flushes and fails, which stops the renderer early; `done` tells that
/// failure from a real one.
struct RangeWriter<W: Write> {
    inner: W,
    skip: u64,
    left: u64,
    /// Shared with the caller, which no longer holds the writer when the renderer fails.
    done: Arc<AtomicBool>,
}

impl<W: Write> Write for RangeWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let skipped = (self.skip.min(data.len() as u64)) as usize;
        self.skip -= skipped as u64;
        let rest = &data[skipped..];
        if !rest.is_empty() {
            let n = (self.left.min(rest.len() as u64)) as usize;
            self.inner.write_all(&rest[..n])?;
            self.left -= n as u64;
            if self.left == 0 {
                self.inner.flush()?;
                self.done.store(true, Ordering::Release);
                return Err(io::Error::other("the range is sent"));
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Renders the NAR of `info` from `store`, compressed with `compression`, into `tx`; only
/// bytes `start..=end` of the (uncompressed) NAR if `range` is given. The rendered NAR is
/// hashed on the way; if it is not the registered one (a damaged store), the stream ends
/// with an error instead of its last piece, so the client sees a broken transfer rather
/// than a complete wrong NAR. A range that ends before the NAR does is sent without that
/// check (the client checks the NAR it puts together). Blocks: run it on its own thread.
pub fn stream_nar(
    store: &dyn StoreService,
    info: &PathInfo,
    compression: Compression,
    range: Option<(u64, u64)>,
    tx: mpsc::Sender<io::Result<Bytes>>,
) -> Result<(), StoreError> {
    let (skip, left) = match range {
        Some((start, end)) => (start, end.saturating_sub(start).saturating_add(1)),
        None => (0, u64::MAX),
    };
    let done = Arc::new(AtomicBool::new(false));
    let out = RangeWriter {
        inner: ChannelWriter::new(tx.clone()),
        skip,
        left,
        done: done.clone(),
    };
    let nar = Counting {
        inner: compression.encoder(out)?,
        hasher: Hasher::new(HashAlgo::Sha256),
        written: 0,
    };
    let nar = match write_nar(store, &info.node, nar) {
        Ok(nar) => nar,
        Err(_) if done.load(Ordering::Acquire) => return Ok(()),
        Err(e) => return Err(e),
    };
    let (hash, size) = (nar.hasher.finish(), nar.written);
    if hash.digest() != info.nar_sha256 || size != info.nar_size {
        let err = StoreError::NarHashMismatch {
            path: info.store_path.to_base_name(),
            expected: info.nar_hash_string(),
            expected_size: info.nar_size,
            actual: hash.to_prefixed(HashEncoding::Nix32),
            actual_size: size,
        };
        let _ = tx.blocking_send(Err(io::Error::other(err.to_string())));
        return Err(err);
    }
    // Finishing the compressor writes its last bytes and flushes the channel writer.
    nar.inner.finish()?;
    Ok(())
}
