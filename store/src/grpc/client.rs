//! [`GrpcStore`]: the store services implemented by calls to a store daemon.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::runtime::{Handle, Runtime};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, Streaming};

use super::convert::{
    digest_from, directory_from_proto, directory_to_proto, invalid, path_info_from_proto,
    path_info_to_proto,
};
use super::proto::blob_service_client::BlobServiceClient;
use super::proto::directory_service_client::DirectoryServiceClient;
use super::proto::path_info_service_client::PathInfoServiceClient;
use super::proto::{self, BlobChunk};
use super::transport::{connect, runtime, Target};
use super::{
    read_full, BLOB_RANGE_HEADER, BLOB_SIZE_HEADER, CONNECTION_WINDOW, MAX_BLOB_PIECE, MAX_MESSAGE,
    SEND_PIECE, STREAM_WINDOW,
};
use crate::castore::{
    B3Digest, BlobReader, BlobService, Directory, DirectoryService, Node, StoreError, StoreService,
};
use crate::pathinfo::{PathInfo, PathInfoService};
use crate::store_path::StorePath;

/// A client of a store daemon (`grpc+unix:///socket` or `grpc+http://HOST:PORT`). It owns
/// a small tokio runtime and blocks on it, so it can be used from synchronous code (but
/// not from inside an async task).
pub struct GrpcStore {
    url: String,
    rt: Runtime,
    blobs: BlobServiceClient<Channel>,
    directories: DirectoryServiceClient<Channel>,
    path_infos: PathInfoServiceClient<Channel>,
    /// Blob content bytes received from the daemon (whole blobs and ranges), shared with
    /// the readers of whole blobs; `TVIX_SHOW_STATS` reports it.
    blob_bytes: Arc<AtomicU64>,
}

impl GrpcStore {
    /// Connects to the daemon a `grpc+unix://` or `grpc+http://` URL names.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let target = Target::parse(url).map_err(|reason| StoreError::BadUrl {
            url: url.to_string(),
            reason,
        })?;
        let rt = runtime(2, "tvix-store-grpc")?;
        let channel = connect(&rt, target, tune).map_err(|message| StoreError::Remote {
            url: url.to_string(),
            message,
        })?;
        Ok(GrpcStore {
            url: url.to_string(),
            blobs: BlobServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            directories: DirectoryServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            path_infos: PathInfoServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            rt,
            blob_bytes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The error for a failed call.
    fn remote(&self, s: Status) -> StoreError {
        StoreError::Remote {
            url: self.url.clone(),
            message: status_text(&s),
        }
    }
}

/// Connection settings for bulk transfers.
fn tune(ep: Endpoint) -> Endpoint {
    ep.initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
}

fn status_text(s: &Status) -> String {
    if s.message().is_empty() {
        format!("{:?}", s.code())
    } else {
        s.message().to_string()
    }
}

/// Reads a downloaded blob, re-hashing it: a blob whose bytes do not add up to its digest
/// and size fails at its end.
struct RemoteBlobReader {
    handle: Handle,
    stream: Streaming<BlobChunk>,
    digest: B3Digest,
    size: u64,
    received: u64,
    hasher: blake3::Hasher,
    buf: prost::bytes::Bytes,
    done: bool,
    /// The store's counter of blob bytes received.
    counter: Arc<AtomicU64>,
}

impl RemoteBlobReader {
    fn next_piece(&mut self) -> Result<bool, StoreError> {
        let msg = self
            .handle
            .block_on(self.stream.message())
            .map_err(|s| StoreError::Io(io::Error::other(status_text(&s))))?;
        let Some(chunk) = msg else {
            self.done = true;
            let actual = B3Digest(*self.hasher.finalize().as_bytes());
            if self.received != self.size {
                return Err(StoreError::SizeMismatch {
                    what: "blob",
                    digest: self.digest,
                    expected: self.size,
                    actual: self.received,
                });
            }
            if actual != self.digest {
                return Err(StoreError::CorruptBlob {
                    expected: self.digest,
                    actual,
                });
            }
            return Ok(false);
        };
        if chunk.data.len() > MAX_BLOB_PIECE {
            return Err(invalid(
                "blob piece",
                format!("{} bytes is more than {MAX_BLOB_PIECE}", chunk.data.len()),
            ));
        }
        self.received += chunk.data.len() as u64;
        self.counter
            .fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
        if self.received > self.size {
            return Err(StoreError::SizeMismatch {
                what: "blob",
                digest: self.digest,
                expected: self.size,
                actual: self.received,
            });
        }
        self.hasher.update(&chunk.data);
        self.buf = chunk.data;
        Ok(true)
    }
}

impl Read for RemoteBlobReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.buf.is_empty() {
            if self.done || !self.next_piece().map_err(StoreError::into_io)? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        let _ = self.buf.split_to(n);
        Ok(n)
    }
}

impl BlobService for GrpcStore {
    fn put_blob(&self, r: &mut dyn Read) -> Result<(B3Digest, u64), StoreError> {
        let (tx, rx) = tokio::sync::mpsc::channel::<BlobChunk>(4);
        let mut client = self.blobs.clone();
        let call = self
            .rt
            .spawn(async move { client.put(ReceiverStream::new(rx)).await });
        let mut buf = vec![0u8; SEND_PIECE];
        let mut sent: u64 = 0;
        loop {
            let n = match read_full(r, &mut buf) {
                Ok(n) => n,
                Err(e) => {
                    // Abort the call so the server does not store a truncated blob.
                    call.abort();
                    return Err(StoreError::from_io(e));
                }
            };
            if n == 0 {
                break;
            }
            sent += n as u64;
            let piece = BlobChunk {
                data: prost::bytes::Bytes::copy_from_slice(&buf[..n]),
            };
            if tx.blocking_send(piece).is_err() {
                // The call ended early; its status says why.
                break;
            }
        }
        drop(tx);
        let resp = self
            .rt
            .block_on(call)
            .map_err(|e| StoreError::Io(io::Error::other(e)))?
            .map_err(|s| self.remote(s))?
            .into_inner();
        let digest = digest_from("blob upload response", &resp.digest)?;
        if resp.size != sent {
            return Err(invalid(
                "blob upload response",
                format!("the server stored {} bytes, {sent} were sent", resp.size),
            ));
        }
        Ok((digest, resp.size))
    }

    fn has_blob(&self, digest: &B3Digest) -> Result<bool, StoreError> {
        Ok(self.blob_size(digest)?.is_some())
    }

    fn blob_size(&self, digest: &B3Digest) -> Result<Option<u64>, StoreError> {
        let mut client = self.blobs.clone();
        let req = proto::StatBlobRequest {
            digest: digest.0.to_vec().into(),
        };
        let resp = self
            .rt
            .block_on(client.stat(req))
            .map_err(|s| self.remote(s))?
            .into_inner();
        Ok(resp.found.then_some(resp.size))
    }

    fn open_blob(&self, digest: &B3Digest) -> Result<Option<BlobReader<'_>>, StoreError> {
        let mut client = self.blobs.clone();
        let req = proto::ReadBlobRequest {
            digest: digest.0.to_vec().into(),
            offset: None,
            length: None,
        };
        let resp = match self.rt.block_on(client.read(req)) {
            Ok(r) => r,
            Err(s) if s.code() == Code::NotFound => return Ok(None),
            Err(s) => return Err(self.remote(s)),
        };
        let size = announced_size(resp.metadata())?;
        let stream = resp.into_inner();
        let reader = RemoteBlobReader {
            handle: self.rt.handle().clone(),
            stream,
            digest: *digest,
            size,
            received: 0,
            hasher: blake3::Hasher::new(),
            buf: Default::default(),
            done: false,
            counter: self.blob_bytes.clone(),
        };
        Ok(Some(BlobReader::new(size, Box::new(reader))))
    }

    /// Asks the server for the range only. Its chunks are checked by the server; the
    /// client checks that the range it receives is the one asked for, cut at the blob's
    /// end, and has that many bytes. A server predating ranged reads sends the whole
    /// blob, which is then re-hashed and cut here.
    fn read_blob_range(
        &self,
        digest: &B3Digest,
        offset: u64,
        len: u64,
    ) -> Result<Option<bytes::Bytes>, StoreError> {
        let mut client = self.blobs.clone();
        let req = proto::ReadBlobRequest {
            digest: digest.0.to_vec().into(),
            offset: Some(offset),
            length: Some(len),
        };
        let resp = match self.rt.block_on(client.read(req)) {
            Ok(r) => r,
            Err(s) if s.code() == Code::NotFound => return Ok(None),
            Err(s) if s.code() == Code::OutOfRange => {
                let size = self.blob_size(digest)?.unwrap_or(0);
                return Err(StoreError::RangeOutOfBounds {
                    digest: *digest,
                    offset,
                    size,
                });
            }
            Err(s) => return Err(self.remote(s)),
        };
        let size = announced_size(resp.metadata())?;
        let Some((got_offset, got_len)) = announced_range(resp.metadata())? else {
            return self.range_from_whole(resp, digest, offset, len).map(Some);
        };
        let want = crate::castore::clip_range(digest, size, offset, len)?;
        if got_offset != offset || got_len != want {
            return Err(invalid(
                "blob read response",
                format!("range {got_offset}+{got_len} sent, {offset}+{want} asked for"),
            ));
        }
        let mut stream = resp.into_inner();
        let mut out = Vec::with_capacity(want.min(1 << 24) as usize);
        while let Some(piece) = self
            .rt
            .block_on(stream.message())
            .map_err(|s| self.remote(s))?
        {
            if piece.data.len() > MAX_BLOB_PIECE
                || out.len() as u64 + piece.data.len() as u64 > want
            {
                return Err(invalid(
                    "blob read response",
                    format!("more than the {want} bytes of the range"),
                ));
            }
            self.blob_bytes
                .fetch_add(piece.data.len() as u64, Ordering::Relaxed);
            out.extend_from_slice(&piece.data);
        }
        if out.len() as u64 != want {
            return Err(invalid(
                "blob read response",
                format!("{} bytes of a range of {want}", out.len()),
            ));
        }
        Ok(Some(bytes::Bytes::from(out)))
    }
}

/// The blob size a read response announces.
fn announced_size(meta: &tonic::metadata::MetadataMap) -> Result<u64, StoreError> {
    meta.get(BLOB_SIZE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| invalid("blob read response", "no valid blob size"))
}

/// The range a ranged read response announces (`OFFSET+LENGTH`), or `None` when the
/// server sent none (it predates ranged reads and sends the whole blob).
fn announced_range(meta: &tonic::metadata::MetadataMap) -> Result<Option<(u64, u64)>, StoreError> {
    let Some(v) = meta.get(BLOB_RANGE_HEADER) else {
        return Ok(None);
    };
    let bad = || invalid("blob read response", "malformed range");
    let v = v.to_str().map_err(|_| bad())?;
    let (o, l) = v.split_once('+').ok_or_else(bad)?;
    Ok(Some((
        o.parse().map_err(|_| bad())?,
        l.parse().map_err(|_| bad())?,
    )))
}

impl GrpcStore {
    /// [`BlobService::read_blob_range`] against a server predating ranged reads: the
    /// whole blob comes (re-hashed as it is read) and the range is cut out of it.
    fn range_from_whole(
        &self,
        resp: tonic::Response<Streaming<BlobChunk>>,
        digest: &B3Digest,
        offset: u64,
        len: u64,
    ) -> Result<bytes::Bytes, StoreError> {
        let size = announced_size(resp.metadata())?;
        let want = crate::castore::clip_range(digest, size, offset, len)?;
        let mut reader = RemoteBlobReader {
            handle: self.rt.handle().clone(),
            stream: resp.into_inner(),
            digest: *digest,
            size,
            received: 0,
            hasher: blake3::Hasher::new(),
            buf: Default::default(),
            done: false,
            counter: self.blob_bytes.clone(),
        };
        io::copy(&mut (&mut reader).take(offset), &mut io::sink()).map_err(StoreError::from_io)?;
        let mut out = Vec::with_capacity(want.min(1 << 24) as usize);
        (&mut reader)
            .take(want)
            .read_to_end(&mut out)
            .map_err(StoreError::from_io)?;
        // Read to the end so that the whole blob's digest is checked.
        io::copy(&mut reader, &mut io::sink()).map_err(StoreError::from_io)?;
        Ok(bytes::Bytes::from(out))
    }

    /// Calls DirectoryService.Get and returns the stream, or `None` if the directory is
    /// absent.
    fn directory_stream(
        &self,
        digest: &B3Digest,
        recursive: bool,
    ) -> Result<Option<Streaming<proto::Directory>>, StoreError> {
        let mut client = self.directories.clone();
        let req = proto::GetDirectoryRequest {
            digest: digest.0.to_vec().into(),
            recursive,
        };
        match self.rt.block_on(client.get(req)) {
            Ok(r) => Ok(Some(r.into_inner())),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(self.remote(s)),
        }
    }

    fn next_directory(
        &self,
        stream: &mut Streaming<proto::Directory>,
    ) -> Result<Option<(B3Digest, Directory)>, StoreError> {
        match self.rt.block_on(stream.message()) {
            Ok(Some(m)) => {
                let dir = directory_from_proto(m)?;
                Ok(Some((dir.digest(), dir)))
            }
            Ok(None) => Ok(None),
            Err(s) if s.code() == Code::NotFound => {
                Err(invalid("directory stream", status_text(&s)))
            }
            Err(s) => Err(self.remote(s)),
        }
    }
}

impl DirectoryService for GrpcStore {
    fn put_directory(&self, dir: &Directory) -> Result<B3Digest, StoreError> {
        let mut client = self.directories.clone();
        let msg = directory_to_proto(dir);
        let resp = self
            .rt
            .block_on(client.put(tokio_stream::once(msg)))
            .map_err(|s| self.remote(s))?
            .into_inner();
        let got = digest_from("directory upload response", &resp.root_digest)?;
        let digest = dir.digest();
        if got != digest {
            return Err(StoreError::CorruptDirectory {
                expected: digest,
                actual: got,
            });
        }
        Ok(digest)
    }

    fn get_directory(&self, digest: &B3Digest) -> Result<Option<Directory>, StoreError> {
        let Some(mut stream) = self.directory_stream(digest, false)? else {
            return Ok(None);
        };
        let (got, dir) = self
            .next_directory(&mut stream)?
            .ok_or_else(|| invalid("directory stream", "the server sent no directory"))?;
        if got != *digest {
            return Err(StoreError::CorruptDirectory {
                expected: *digest,
                actual: got,
            });
        }
        if self.next_directory(&mut stream)?.is_some() {
            return Err(invalid("directory stream", "more than one directory"));
        }
        Ok(Some(dir))
    }

    /// One call streams the whole tree. Each directory must be one that an earlier one
    /// (or the request) points to, with the size the pointing node records, and must come
    /// once; every directory pointed to must arrive.
    fn get_directory_recursive(
        &self,
        digest: &B3Digest,
    ) -> Result<Vec<(B3Digest, Directory)>, StoreError> {
        let mut stream = self
            .directory_stream(digest, true)?
            .ok_or(StoreError::DirectoryNotFound(*digest))?;
        // Directories pointed to but not received yet: digest -> size recorded (none for
        // the root).
        let mut wanted: HashMap<B3Digest, Option<u64>> = HashMap::from([(*digest, None)]);
        let mut received = std::collections::HashSet::new();
        let mut out = Vec::new();
        while let Some((d, dir)) = self.next_directory(&mut stream)? {
            let Some(size) = wanted.remove(&d) else {
                return Err(invalid(
                    "directory stream",
                    format!("directory {d} was not asked for or came twice"),
                ));
            };
            if let Some(size) = size.filter(|s| *s != dir.size()) {
                return Err(StoreError::SizeMismatch {
                    what: "directory",
                    digest: d,
                    expected: size,
                    actual: dir.size(),
                });
            }
            received.insert(d);
            for (_, node) in dir.entries() {
                if let Node::Directory { digest, size } = node {
                    if !received.contains(digest) {
                        wanted.insert(*digest, Some(*size));
                    }
                }
            }
            out.push((d, dir));
        }
        if let Some(missing) = wanted.keys().next() {
            return Err(StoreError::DirectoryNotFound(*missing));
        }
        Ok(out)
    }
}

impl PathInfoService for GrpcStore {
    fn put_path_info(&self, info: &PathInfo) -> Result<(), StoreError> {
        let mut client = self.path_infos.clone();
        self.rt
            .block_on(client.put(path_info_to_proto(info)))
            .map_err(|s| self.remote(s))?;
        Ok(())
    }

    fn get_path_info(&self, path: &StorePath) -> Result<Option<PathInfo>, StoreError> {
        let mut client = self.path_infos.clone();
        let req = proto::GetPathInfoRequest {
            store_path: path.to_base_name(),
        };
        let msg = match self.rt.block_on(client.get(req)) {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == Code::NotFound => return Ok(None),
            Err(s) => return Err(self.remote(s)),
        };
        let info = path_info_from_proto(msg)?;
        if info.store_path != *path {
            return Err(invalid(
                "path info",
                format!(
                    "asked for {}, got {}",
                    path.to_base_name(),
                    info.store_path.to_base_name()
                ),
            ));
        }
        Ok(Some(info))
    }

    fn list_path_infos_page(
        &self,
        after: Option<&[u8; crate::store_path::DIGEST_LEN]>,
        limit: usize,
    ) -> Result<Vec<PathInfo>, StoreError> {
        if limit == 0 {
            // 0 means "no limit" on the wire.
            return Ok(Vec::new());
        }
        let req = proto::ListPathInfoRequest {
            after_digest: after.map(|d| d.to_vec()).unwrap_or_default().into(),
            limit: limit as u64,
        };
        self.list_stream(req)?.collect()
    }

    /// One request; each path info is yielded as it arrives (the server streams the
    /// listing page by page).
    fn path_infos(&self) -> Box<dyn Iterator<Item = Result<PathInfo, StoreError>> + '_> {
        match self.list_stream(proto::ListPathInfoRequest::default()) {
            Ok(infos) => Box::new(infos),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }
}

impl GrpcStore {
    /// Starts a `List` call; the path infos are received as the iterator is consumed,
    /// and an error ends it after it is yielded.
    fn list_stream(
        &self,
        req: proto::ListPathInfoRequest,
    ) -> Result<impl Iterator<Item = Result<PathInfo, StoreError>> + '_, StoreError> {
        let mut client = self.path_infos.clone();
        let mut stream = self
            .rt
            .block_on(client.list(req))
            .map_err(|s| self.remote(s))?
            .into_inner();
        let mut done = false;
        Ok(std::iter::from_fn(move || {
            if done {
                return None;
            }
            let next = match self.rt.block_on(stream.message()) {
                Ok(Some(m)) => Some(path_info_from_proto(m)),
                Ok(None) => None,
                Err(s) => Some(Err(self.remote(s))),
            };
            done = !matches!(next, Some(Ok(_)));
            next
        }))
    }
}

impl StoreService for GrpcStore {
    fn url(&self) -> &str {
        &self.url
    }

    fn blob_bytes_received(&self) -> Option<u64> {
        Some(self.blob_bytes.load(Ordering::Relaxed))
    }

    /// The server verifies its own storage (chunks included); a server too old to
    /// know the request gets the default: every path's NAR re-rendered through it.
    fn verify(&self) -> Result<crate::castore::VerifyReport, StoreError> {
        let mut client = self.path_infos.clone();
        match self.rt.block_on(client.verify(proto::VerifyRequest {})) {
            Ok(r) => {
                let r = r.into_inner();
                Ok(crate::castore::VerifyReport {
                    chunks: r.chunks,
                    blobs: r.blobs,
                    directories: r.directories,
                    paths: r.paths,
                    problems: r.problems,
                })
            }
            Err(s) if s.code() == tonic::Code::Unimplemented => crate::castore::verify_paths(self),
            Err(s) => Err(self.remote(s)),
        }
    }
}
