//! NAR and file system paths to and from the castore.
//!
//! - [`write_nar`] renders the NAR of a node as a stream (file contents are streamed from
//!   verified blob readers, never held whole).
//! - [`ingest_nar`] reads a NAR stream into the castore with the validating parser of
//!   [`crate::nar`], computing its sha256 and size on the way; [`import_nar`] also registers
//!   a path info, only once the whole NAR was accepted.
//! - [`import_path`] adds a file system path as `nix-store --add` does (a `source` path by
//!   NAR hash), walking it once: contents go to the blob service and to the NAR hasher at
//!   the same time.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{B3Digest, BlobService, Directory, DirectoryService, Node, StoreError};
use crate::hash::{HashAlgo, HashEncoding, NixHash};
use crate::nar::{NarEncoder, NarError, NarHasher, NarVisitor};
use crate::pathinfo::{PathInfo, PathInfoService};
use crate::store_path::{StoreDir, StorePath};

/// The directories being rendered: each one's entries and the index of the next entry.
type RenderStack = Vec<(Vec<(Vec<u8>, Node)>, usize)>;

/// Files of at most this size are read in batches of about this many bytes, so that
/// their blobs are fetched and checked together (in parallel); larger ones are streamed.
const BATCH_BYTES: u64 = 32 << 20;

/// At most this many files are read in one batch (which bounds the number of slices of a
/// vectored write).
const BATCH_FILES: usize = 1024;

/// Writes the NAR serialisation of `node` to `w` and returns `w`. Directories are
/// traversed with an explicit stack, so depth is not limited by the call stack.
pub fn write_nar<S, W>(store: &S, node: &Node, w: W) -> Result<W, StoreError>
where
    S: BlobService + DirectoryService + ?Sized,
    W: Write,
{
    let mut r = NarRenderer {
        store,
        out: w,
        enc: NarEncoder::new(Vec::new()),
        splices: Vec::new(),
        stack: Vec::new(),
        pending: Vec::new(),
        pending_blobs: Vec::new(),
        pending_sizes: Vec::new(),
        pending_bytes: 0,
        batch: Vec::new(),
        copy_buf: Vec::new(),
    };
    r.node(None, node)?;
    while let Some((entries, idx)) = r.stack.last_mut() {
        if *idx < entries.len() {
            let (name, child) = entries[*idx].clone();
            *idx += 1;
            r.node(Some(name), &child)?;
        } else {
            r.stack.pop();
            let is_entry = !r.stack.is_empty();
            r.pending.push(PendingEvent::EndDirectory { is_entry });
        }
    }
    r.flush_pending()?;
    r.out.flush()?;
    Ok(r.out)
}

/// A NAR event waiting for the blobs of its batch.
enum PendingEvent {
    BeginDirectory {
        name: Option<Vec<u8>>,
    },
    EndDirectory {
        is_entry: bool,
    },
    Symlink {
        name: Option<Vec<u8>>,
        target: Vec<u8>,
    },
    /// The `blob`-th blob of the batch.
    File {
        name: Option<Vec<u8>>,
        executable: bool,
        size: u64,
        blob: usize,
    },
}

/// The state of [`write_nar`]: events are queued until their files' blobs have been read
/// as one batch, then written in order. The NAR framing of a batch is encoded into a
/// buffer and written together with the file contents in vectored writes, so contents
/// are not copied on their way out.
struct NarRenderer<'a, S: ?Sized, W: Write> {
    store: &'a S,
    out: W,
    /// Encodes the framing into its buffer.
    enc: NarEncoder<Vec<u8>>,
    /// Where file contents go between the framing bytes: (offset in the framing buffer,
    /// index in `batch`).
    splices: Vec<(usize, usize)>,
    stack: RenderStack,
    pending: Vec<PendingEvent>,
    pending_blobs: Vec<B3Digest>,
    pending_sizes: Vec<u64>,
    pending_bytes: u64,
    /// The contents of the current batch's blobs.
    batch: Vec<Vec<bytes::Bytes>>,
    /// The copy buffer for streamed files (reused).
    copy_buf: Vec<u8>,
}

impl<S, W> NarRenderer<'_, S, W>
where
    S: BlobService + DirectoryService + ?Sized,
    W: Write,
{
    fn node(&mut self, name: Option<Vec<u8>>, node: &Node) -> Result<(), StoreError> {
        match node {
            Node::File {
                digest,
                size,
                executable,
            } if *size <= BATCH_BYTES => {
                self.pending.push(PendingEvent::File {
                    name,
                    executable: *executable,
                    size: *size,
                    blob: self.pending_blobs.len(),
                });
                self.pending_blobs.push(*digest);
                self.pending_sizes.push(*size);
                self.pending_bytes += size;
                if self.pending_bytes >= BATCH_BYTES || self.pending_blobs.len() >= BATCH_FILES {
                    self.flush_pending()?;
                }
            }
            Node::File {
                digest,
                size,
                executable,
            } => {
                self.flush_pending()?;
                self.stream_file(name.as_deref(), digest, *size, *executable)?;
            }
            Node::Symlink { target } => self.pending.push(PendingEvent::Symlink {
                name,
                target: target.clone(),
            }),
            Node::Directory { digest, .. } => {
                let dir = self
                    .store
                    .get_directory(digest)?
                    .ok_or(StoreError::DirectoryNotFound(*digest))?;
                self.pending.push(PendingEvent::BeginDirectory { name });
                let entries = dir
                    .entries()
                    .map(|(n, node)| (n.to_vec(), node.clone()))
                    .collect();
                self.stack.push((entries, 0));
            }
        }
        Ok(())
    }

    /// Reads the queued files' blobs and writes the queued events.
    fn flush_pending(&mut self) -> Result<(), StoreError> {
        self.batch = if self.pending_blobs.is_empty() {
            Vec::new()
        } else {
            self.store
                .read_blobs(&self.pending_blobs, &self.pending_sizes)?
        };
        for p in self.pending.drain(..) {
            match p {
                PendingEvent::BeginDirectory { name } => {
                    self.enc.begin_directory(name.as_deref())?
                }
                PendingEvent::EndDirectory { is_entry } => self.enc.end_directory(is_entry)?,
                PendingEvent::Symlink { name, target } => {
                    self.enc.write_symlink(name.as_deref(), &target)?
                }
                PendingEvent::File {
                    name,
                    executable,
                    size,
                    blob,
                } => {
                    let actual: u64 = self.batch[blob].iter().map(|p| p.len() as u64).sum();
                    if actual != size {
                        return Err(StoreError::SizeMismatch {
                            what: "blob",
                            digest: self.pending_blobs[blob],
                            expected: size,
                            actual,
                        });
                    }
                    self.enc.begin_file(name.as_deref(), executable, size)?;
                    self.splices.push((self.enc.get_mut().len(), blob));
                    self.enc.end_file(name.is_some(), size)?;
                }
            }
        }
        self.write_out()?;
        self.pending_blobs.clear();
        self.pending_sizes.clear();
        self.pending_bytes = 0;
        Ok(())
    }

    /// Writes the encoded framing, with the file contents spliced in.
    fn write_out(&mut self) -> Result<(), StoreError> {
        let frames = self.enc.get_mut();
        let mut parts: Vec<&[u8]> = Vec::with_capacity(2 * self.splices.len() + 1);
        let mut prev = 0;
        for (at, blob) in self.splices.drain(..) {
            parts.push(&frames[prev..at]);
            parts.extend(self.batch[blob].iter().map(|p| &p[..]));
            prev = at;
        }
        parts.push(&frames[prev..]);
        let mut slices: Vec<io::IoSlice<'_>> = parts
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(io::IoSlice::new)
            .collect();
        write_all_vectored(&mut self.out, &mut slices)?;
        frames.clear();
        Ok(())
    }

    /// Writes a large file from a streaming blob reader.
    fn stream_file(
        &mut self,
        name: Option<&[u8]>,
        digest: &B3Digest,
        size: u64,
        executable: bool,
    ) -> Result<(), StoreError> {
        let mut r = self
            .store
            .open_blob(digest)?
            .ok_or(StoreError::BlobNotFound(*digest))?;
        if r.size() != size {
            return Err(StoreError::SizeMismatch {
                what: "blob",
                digest: *digest,
                expected: size,
                actual: r.size(),
            });
        }
        self.enc.begin_file(name, executable, size)?;
        self.write_out()?;
        self.copy_buf.resize(1 << 20, 0);
        let mut copied: u64 = 0;
        loop {
            let n = r.read(&mut self.copy_buf).map_err(StoreError::from_io)?;
            if n == 0 {
                break;
            }
            copied += n as u64;
            self.out.write_all(&self.copy_buf[..n])?;
        }
        if copied != size {
            return Err(StoreError::SizeMismatch {
                what: "blob",
                digest: *digest,
                expected: size,
                actual: copied,
            });
        }
        self.enc.end_file(name.is_some(), size)?;
        Ok(())
    }
}

/// Writes all of `slices` (`Write::write_all_vectored` is not stable yet).
/// The slices must not be empty.
fn write_all_vectored<W: Write>(w: &mut W, mut slices: &mut [io::IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match w.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A reader that feeds everything it reads to a [`NarHasher`].
/// A reader whose bytes are hashed as a NAR on another thread ([`BackgroundNarHasher`]),
/// beside the chunking and storing of what is read.
struct HashingReader<R: Read> {
    r: R,
    hasher: BackgroundNarHasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        self.hasher.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Builds castore nodes from parser events.
struct Ingester<'a, S: ?Sized> {
    store: &'a S,
    /// The directories being filled, innermost last.
    stack: Vec<Directory>,
    root: Option<Node>,
}

impl<S: BlobService + DirectoryService + ?Sized> Ingester<'_, S> {
    fn place(&mut self, path: &[Vec<u8>], node: Node) -> Result<(), StoreError> {
        match (path.last(), self.stack.last_mut()) {
            (Some(name), Some(parent)) => parent.add(name.clone(), node),
            (None, _) => {
                self.root = Some(node);
                Ok(())
            }
            (Some(_), None) => Err(StoreError::Decode {
                what: "NAR",
                reason: "entry outside a directory",
            }),
        }
    }
}

impl<S: BlobService + DirectoryService + ?Sized> NarVisitor for Ingester<'_, S> {
    fn directory_start(&mut self, _path: &[Vec<u8>]) -> io::Result<()> {
        self.stack.push(Directory::new());
        Ok(())
    }

    fn directory_end(&mut self, path: &[Vec<u8>]) -> io::Result<()> {
        let res = (|| {
            let dir = self.stack.pop().ok_or(StoreError::Decode {
                what: "NAR",
                reason: "unbalanced directory",
            })?;
            let size = dir.size();
            let digest = self.store.put_directory(&dir)?;
            self.place(path, Node::Directory { digest, size })
        })();
        res.map_err(StoreError::into_io)
    }

    fn symlink(&mut self, path: &[Vec<u8>], target: &[u8]) -> io::Result<()> {
        self.place(
            path,
            Node::Symlink {
                target: target.to_vec(),
            },
        )
        .map_err(StoreError::into_io)
    }

    fn file(
        &mut self,
        path: &[Vec<u8>],
        executable: bool,
        size: u64,
        contents: &mut dyn Read,
    ) -> io::Result<()> {
        let res = (|| {
            let (digest, got) = self.store.put_blob(contents)?;
            if got != size {
                return Err(StoreError::Nar(NarError::Truncated));
            }
            self.place(
                path,
                Node::File {
                    digest,
                    size,
                    executable,
                },
            )
        })();
        res.map_err(StoreError::into_io)
    }
}

/// Reads a NAR from `r` into the castore and returns its root node, NAR sha256 and NAR
/// size. Reading stops right after the NAR. A malformed NAR is an error; blobs and
/// directories stored before the error was found stay (unreferenced), but nothing refers
/// to them.
pub fn ingest_nar<S, R>(store: &S, r: R) -> Result<(Node, NixHash, u64), StoreError>
where
    S: BlobService + DirectoryService + ?Sized,
    R: Read,
{
    let mut hr = HashingReader {
        r,
        hasher: BackgroundNarHasher::new(),
    };
    let mut ing = Ingester {
        store,
        stack: Vec::new(),
        root: None,
    };
    crate::nar::parse(&mut hr, &mut ing).map_err(StoreError::from_nar)?;
    let root = ing.root.ok_or(StoreError::Decode {
        what: "NAR",
        reason: "no root node",
    })?;
    let (hash, size) = hr.hasher.finish()?;
    Ok((root, hash, size))
}

/// Ingests a NAR and registers it as `store_path` with the given metadata. Nothing is
/// registered if the NAR is rejected, or if `expected_sha256` is given and differs.
pub fn import_nar<S, R>(
    store: &S,
    r: R,
    store_path: StorePath,
    references: Vec<StorePath>,
    expected_sha256: Option<&NixHash>,
) -> Result<PathInfo, StoreError>
where
    S: BlobService + DirectoryService + PathInfoService + ?Sized,
    R: Read,
{
    let (node, hash, size) = ingest_nar(store, r)?;
    if let Some(exp) = expected_sha256 {
        if exp.algo() != HashAlgo::Sha256 || exp.digest() != hash.digest() {
            return Err(StoreError::NarHashMismatch {
                path: store_path.to_base_name(),
                expected: exp.to_prefixed(HashEncoding::Nix32),
                expected_size: size,
                actual: hash.to_prefixed(HashEncoding::Nix32),
                actual_size: size,
            });
        }
    }
    let info = PathInfo {
        store_path,
        node,
        nar_sha256: sha256_array(&hash),
        nar_size: size,
        references,
        deriver: None,
        signatures: Vec::new(),
        ca: None,
    };
    store.put_path_info(&info)?;
    Ok(info)
}

pub(crate) fn sha256_array(h: &NixHash) -> [u8; 32] {
    let mut a = [0u8; 32];
    if h.digest().len() == 32 {
        a.copy_from_slice(h.digest());
    }
    a
}

/// Reads a file into the blob service while copying its bytes into the NAR encoder.
struct TeeReader<'a, R: Read, W: Write> {
    r: R,
    enc: &'a mut NarEncoder<W>,
    limit: u64,
    read: u64,
}

impl<R: Read, W: Write> Read for TeeReader<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Never read past the size announced in the NAR header.
        let left = self.limit - self.read;
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = buf.len().min(left.min(usize::MAX as u64) as usize);
        let n = self.r.read(&mut buf[..max])?;
        self.enc.write_contents(&buf[..n])?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Lexically normalises `p` into an absolute path (`.` and `..` resolved without following
/// symlinks), as Nix's `absPath` does.
pub fn absolute_path(p: &Path) -> io::Result<PathBuf> {
    let abs = std::path::absolute(p)?;
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    Ok(out)
}

/// Files up to this size are read whole and stored by the blob worker of
/// [`ingest_path`]; larger ones are streamed on the walking thread.
const WORKER_BLOB_MAX: u64 = super::CHUNK_MAX as u64;

/// Stores small files on threads of their own (as many as there are cores), so chunking,
/// BLAKE3 and writing overlap with walking the tree and hashing the NAR, and spread over
/// the cores whenever the NAR hasher waits. Files are taken in the order they are handed
/// over, but finish in any order: each result carries its job number.
struct BlobWorkers {
    jobs: Option<std::sync::mpsc::SyncSender<(usize, Bytes)>>,
    results: std::sync::mpsc::Receiver<(usize, Result<B3Digest, StoreError>)>,
    sent: usize,
    /// The digest of each job, once known.
    received: Vec<Option<B3Digest>>,
}

impl BlobWorkers {
    /// How many threads store blobs: one per core (the NAR hasher and the walking thread
    /// wait for them most of the time), at most 4.
    fn count() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4)
    }

    /// Starts the workers in `scope`.
    fn start<'scope, 'env, S>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        store: &'env S,
    ) -> Self
    where
        S: BlobService + Sync + ?Sized,
    {
        let (jobs, job_rx) = std::sync::mpsc::sync_channel::<(usize, Bytes)>(64);
        let (result_tx, results) = std::sync::mpsc::channel();
        let job_rx = std::sync::Arc::new(std::sync::Mutex::new(job_rx));
        for _ in 0..Self::count() {
            let job_rx = job_rx.clone();
            let result_tx = result_tx.clone();
            scope.spawn(move || loop {
                // The lock is held only while waiting for the next job.
                let next = match job_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => break,
                };
                let Ok((n, data)) = next else { break };
                let r = store.put_blob_bytes(&data).map(|(d, _)| d);
                let failed = r.is_err();
                if result_tx.send((n, r)).is_err() || failed {
                    break;
                }
            });
        }
        BlobWorkers {
            jobs: Some(jobs),
            results,
            sent: 0,
            received: Vec::new(),
        }
    }

    /// Hands a file's contents over; returns its job number.
    fn submit(&mut self, data: Bytes) -> Result<usize, StoreError> {
        let jobs = self.jobs.as_ref().ok_or_else(Self::gone)?;
        let n = self.sent;
        if jobs.send((n, data)).is_err() {
            // Every worker stopped after an error; the results say which.
            return Err(self.first_error());
        }
        self.sent += 1;
        Ok(n)
    }

    /// The digest of job `n`, waiting for it if needed. An error of any job is returned
    /// as soon as it is seen (the ingestion fails as a whole).
    fn digest(&mut self, n: usize) -> Result<B3Digest, StoreError> {
        loop {
            if let Some(Some(d)) = self.received.get(n) {
                return Ok(*d);
            }
            let (i, r) = self.results.recv().map_err(|_| Self::gone())?;
            if self.received.len() <= i {
                self.received.resize(i + 1, None);
            }
            self.received[i] = Some(r?);
        }
    }

    /// The first error the workers reported (they stop at their first one).
    fn first_error(&mut self) -> StoreError {
        while let Ok((_, r)) = self.results.recv() {
            if let Err(e) = r {
                return e;
            }
        }
        Self::gone()
    }

    /// Lets the workers finish what they have and stop.
    fn finish(&mut self) {
        self.jobs = None;
    }

    fn gone() -> StoreError {
        StoreError::Io(io::Error::other("the blob storing threads stopped"))
    }
}

/// A directory entry whose node is known once the blob worker is done with it.
enum Pending {
    Node(Node),
    File {
        job: usize,
        size: u64,
        executable: bool,
    },
}

impl Pending {
    fn resolve(self, worker: &mut BlobWorkers) -> Result<Node, StoreError> {
        match self {
            Pending::Node(n) => Ok(n),
            Pending::File {
                job,
                size,
                executable,
            } => Ok(Node::File {
                digest: worker.digest(job)?,
                size,
                executable,
            }),
        }
    }
}

/// Stores the file system object at `path` in the castore (not following a symlink at
/// `path` or below) and returns its root node and NAR sha256 and size.
///
/// The tree is read once, on this thread; the NAR is hashed on a second thread and small
/// files are stored by a thread per core (large ones are streamed here), so the work
/// spreads over the cores.
pub fn ingest_path<S>(store: &S, path: &Path) -> Result<(Node, NixHash, u64), StoreError>
where
    S: BlobService + DirectoryService + Sync + ?Sized,
{
    ingest_path_filtered(store, path, |_, _| Ok(true))
}

/// Like [`ingest_path`], but leaves out every object below `path` for which `filter` (given
/// its path and `lstat` metadata) returns `false`, exactly as
/// [`crate::nar::dump_path_filtered`] does, so the NAR hash is that of the filtered dump.
pub fn ingest_path_filtered<S, F>(
    store: &S,
    path: &Path,
    filter: F,
) -> Result<(Node, NixHash, u64), StoreError>
where
    S: BlobService + DirectoryService + Sync + ?Sized,
    F: FnMut(&Path, &fs::Metadata) -> io::Result<bool>,
{
    std::thread::scope(|scope| {
        let mut workers = BlobWorkers::start(scope, store);
        let res = walk_and_ingest(store, path, &mut workers, filter);
        // Let the workers finish (or stop) before the scope joins them.
        workers.finish();
        res
    })
}

fn walk_and_ingest<S, F>(
    store: &S,
    path: &Path,
    worker: &mut BlobWorkers,
    mut filter: F,
) -> Result<(Node, NixHash, u64), StoreError>
where
    S: BlobService + DirectoryService + ?Sized,
    F: FnMut(&Path, &fs::Metadata) -> io::Result<bool>,
{
    let perr = |p: &Path| {
        let p = p.to_path_buf();
        move |source| StoreError::Path { path: p, source }
    };
    let mut enc = NarEncoder::new(BackgroundNarHasher::new());

    struct Frame {
        path: PathBuf,
        name: Option<Vec<u8>>,
        names: Vec<Vec<u8>>,
        idx: usize,
        entries: Vec<(Vec<u8>, Pending)>,
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Pending> = None;
    // The next object to visit: (path, name in its parent, its metadata if already read).
    let mut next: Option<(PathBuf, Option<Vec<u8>>, Option<fs::Metadata>)> =
        Some((path.to_path_buf(), None, None));
    loop {
        if let Some((p, name, meta)) = next.take() {
            let meta = match meta {
                Some(m) => m,
                None => fs::symlink_metadata(&p).map_err(perr(&p))?,
            };
            let ft = meta.file_type();
            let node = if ft.is_symlink() {
                let target = fs::read_link(&p)
                    .map_err(perr(&p))?
                    .into_os_string()
                    .into_vec();
                enc.write_symlink(name.as_deref(), &target)?;
                Some(Pending::Node(Node::Symlink { target }))
            } else if ft.is_file() {
                let f = fs::File::open(&p).map_err(perr(&p))?;
                let size = meta.len();
                let executable = meta.permissions().mode() & 0o100 != 0;
                enc.begin_file(name.as_deref(), executable, size)?;
                let pending = if size <= WORKER_BLOB_MAX {
                    let mut data = Vec::with_capacity(size as usize);
                    f.take(size).read_to_end(&mut data).map_err(perr(&p))?;
                    if data.len() as u64 != size {
                        return Err(StoreError::Nar(NarError::FileChanged(p)));
                    }
                    // Shared by the NAR hasher and the blob worker, not copied.
                    let data = Bytes::from(data);
                    enc.get_mut().write_shared(data.clone())?;
                    Pending::File {
                        job: worker.submit(data)?,
                        size,
                        executable,
                    }
                } else {
                    let mut tee = TeeReader {
                        r: f,
                        enc: &mut enc,
                        limit: size,
                        read: 0,
                    };
                    let (digest, got) = store.put_blob(&mut tee)?;
                    if got != size {
                        return Err(StoreError::Nar(NarError::FileChanged(p)));
                    }
                    Pending::Node(Node::File {
                        digest,
                        size,
                        executable,
                    })
                };
                enc.end_file(name.is_some(), size)?;
                Some(pending)
            } else if ft.is_dir() {
                let mut names: Vec<Vec<u8>> = fs::read_dir(&p)
                    .map_err(perr(&p))?
                    .map(|e| e.map(|e| e.file_name().into_vec()))
                    .collect::<Result<_, _>>()
                    .map_err(perr(&p))?;
                names.sort();
                enc.begin_directory(name.as_deref())?;
                stack.push(Frame {
                    path: p,
                    name: name.clone(),
                    names,
                    idx: 0,
                    entries: Vec::new(),
                });
                None
            } else {
                return Err(StoreError::Nar(NarError::UnsupportedFileType(p)));
            };
            if let Some(node) = node {
                match (stack.last_mut(), name) {
                    (Some(parent), Some(n)) => parent.entries.push((n, node)),
                    _ => root = Some(node),
                }
            }
        }
        let Some(top) = stack.last_mut() else {
            break;
        };
        if top.idx < top.names.len() {
            let n = top.names[top.idx].clone();
            top.idx += 1;
            let child = top.path.join(OsStr::from_bytes(&n));
            let meta = fs::symlink_metadata(&child).map_err(perr(&child))?;
            let keep = filter(&child, &meta).map_err(|source| {
                StoreError::Nar(NarError::Filter {
                    path: child.clone(),
                    source,
                })
            })?;
            if keep {
                next = Some((child, Some(n), Some(meta)));
            }
            continue;
        }
        let Some(frame) = stack.pop() else { break };
        enc.end_directory(frame.name.is_some())?;
        let mut dir = Directory::new();
        for (n, pending) in frame.entries {
            dir.add(n, pending.resolve(worker)?)?;
        }
        let size = dir.size();
        let digest = store.put_directory(&dir)?;
        let node = Pending::Node(Node::Directory { digest, size });
        match (stack.last_mut(), frame.name) {
            (Some(parent), Some(n)) => parent.entries.push((n, node)),
            _ => root = Some(node),
        }
    }
    let root = root
        .ok_or(StoreError::Decode {
            what: "file system path",
            reason: "nothing was read",
        })?
        .resolve(worker)?;
    enc.flush()?;
    let (hash, size) = enc.into_inner().finish()?;
    Ok((root, hash, size))
}

/// A NAR hasher on its own thread: `ingest_path` reads every byte once and both chunks
/// and stores it (BLAKE3, FastCDC, writes) and hashes the NAR (sha256); running the sha256
/// on another core takes it off the critical path.
struct BackgroundNarHasher {
    /// Framing written since the last send.
    buf: Vec<u8>,
    tx: Option<std::sync::mpsc::SyncSender<Bytes>>,
    thread: Option<std::thread::JoinHandle<NarHasher>>,
}

/// Framing bytes handed to the hashing thread at once.
const HASH_BATCH: usize = 64 << 10;

impl BackgroundNarHasher {
    fn new() -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(64);
        let thread = std::thread::spawn(move || {
            let mut h = NarHasher::new();
            for b in rx {
                // Hashing into memory cannot fail.
                let _ = h.write_all(&b);
            }
            h
        });
        BackgroundNarHasher {
            buf: Vec::new(),
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    fn send_bytes(&mut self, b: Bytes) -> io::Result<()> {
        match &self.tx {
            Some(tx) if tx.send(b).is_ok() => Ok(()),
            _ => Err(io::Error::other("the NAR hashing thread stopped")),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let framing = Bytes::from(std::mem::take(&mut self.buf));
        self.send_bytes(framing)
    }

    /// Hashes `data` (after what was written before) without copying it.
    fn write_shared(&mut self, data: Bytes) -> io::Result<()> {
        self.send()?;
        self.send_bytes(data)
    }

    /// The NAR's sha256 and size.
    fn finish(mut self) -> Result<(NixHash, u64), StoreError> {
        self.send()?;
        self.tx = None;
        let h = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .ok_or_else(|| StoreError::Io(io::Error::other("the NAR hashing thread failed")))?;
        Ok(h.finish())
    }
}

impl Write for BackgroundNarHasher {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= HASH_BATCH {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Adds the file system object at `path` as `nix-store --add` does: the store path is the
/// `source` path of its NAR sha256, named after the last component of `path`; the path
/// info (CA `fixed:r:sha256:<nix32>`) is registered once its contents are stored.
pub fn import_path<S>(store: &S, store_dir: &StoreDir, path: &Path) -> Result<PathInfo, StoreError>
where
    S: BlobService + DirectoryService + PathInfoService + Sync + ?Sized,
{
    let abs = absolute_path(path).map_err(|source| StoreError::Path {
        path: path.to_path_buf(),
        source,
    })?;
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let added = super::add::add_path(
        store,
        store_dir,
        &abs,
        &name,
        crate::store_path::FileIngestionMethod::Recursive,
        |_, _| Ok(true),
    )?;
    // Valid once this returns (the caller prints it).
    store.commit()?;
    Ok(added.info)
}

/// Follows `sub` (a `/`-separated relative path; empty for the root) from `node` through
/// directories, not following symlinks. `shown` names the path in errors.
pub fn resolve<S>(store: &S, node: &Node, sub: &str, shown: &str) -> Result<Node, StoreError>
where
    S: DirectoryService + ?Sized,
{
    let mut cur = node.clone();
    for comp in sub.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let Node::Directory { digest, .. } = &cur else {
            return Err(StoreError::NotADirectory(shown.to_string()));
        };
        let dir = store
            .get_directory(digest)?
            .ok_or(StoreError::DirectoryNotFound(*digest))?;
        cur = dir
            .get(comp.as_bytes())
            .cloned()
            .ok_or_else(|| StoreError::NoSuchFile(shown.to_string()))?;
    }
    Ok(cur)
}
