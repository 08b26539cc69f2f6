//! [`Server`]: serves a [`StoreService`] over the store protocol.

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{
    digest_from, directory_from_proto, directory_to_proto, invalid, path_info_from_proto,
    path_info_to_proto, store_path_from,
};
use super::proto::blob_service_server::BlobServiceServer;
use super::proto::directory_service_server::DirectoryServiceServer;
use super::proto::path_info_service_server::PathInfoServiceServer;
use super::proto::{self, BlobChunk};
use super::transport::{runtime, Serving};
use super::{
    read_full, status_of, ListenAddr, BLOB_RANGE_HEADER, BLOB_SIZE_HEADER, CONNECTION_WINDOW,
    MAX_BLOB_PIECE, MAX_MESSAGE, SEND_PIECE, STREAM_WINDOW,
};
use crate::castore::{StoreError, StoreService};
use crate::store_path::DIGEST_LEN;

/// A running server. Dropping it stops the server (open calls are cut) and removes its
/// unix socket.
pub struct Server {
    serving: Serving,
}

impl Server {
    /// Binds `listen` and starts serving `store` on a background thread. Once this
    /// returns, clients can connect to [`Server::url`].
    pub fn start(store: Arc<dyn StoreService>, listen: &ListenAddr) -> Result<Server, StoreError> {
        let rt = runtime(2, "tvix-store-daemon")?;
        let services = Services { store };
        let router = tonic::transport::Server::builder()
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .add_service(
                BlobServiceServer::new(services.clone())
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
            )
            .add_service(
                DirectoryServiceServer::new(services.clone())
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
            )
            .add_service(
                PathInfoServiceServer::new(services)
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
            );
        Ok(Server {
            serving: Serving::start(rt, router, listen)?,
        })
    }

    /// The store URL clients use to reach this server (with the actual port when
    /// listening on port 0).
    pub fn url(&self) -> &str {
        self.serving.url()
    }

    /// Serves until the server fails (it never stops on its own otherwise).
    pub fn wait(self) -> Result<(), StoreError> {
        Ok(self.serving.wait()?)
    }
}

/// The three services over one store.
#[derive(Clone)]
struct Services {
    store: Arc<dyn StoreService>,
}

/// Runs a store operation on a blocking thread.
async fn blocking<T, F>(f: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("store task failed: {e}")))?
        .map_err(|e| status_of(&e))
}

/// Reads an uploaded blob from the call's stream, checking every piece's size.
struct UploadReader {
    handle: Handle,
    stream: Streaming<BlobChunk>,
    buf: prost::bytes::Bytes,
}

impl Read for UploadReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.handle.block_on(self.stream.message()) {
                Ok(Some(piece)) => {
                    if piece.data.len() > MAX_BLOB_PIECE {
                        return Err(invalid(
                            "blob piece",
                            format!("{} bytes is more than {MAX_BLOB_PIECE}", piece.data.len()),
                        )
                        .into_io());
                    }
                    self.buf = piece.data;
                }
                Ok(None) => return Ok(0),
                Err(s) => {
                    return Err(io::Error::other(format!(
                        "blob upload failed: {}",
                        s.message()
                    )))
                }
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        let _ = self.buf.split_to(n);
        Ok(n)
    }
}

impl Services {
    /// A ranged read: the range is checked against the blob's size before the answer
    /// starts, then read in steps of [`RANGE_STEP`] bytes (each reading only the chunks
    /// covering it) and sent in pieces of at most [`SEND_PIECE`] bytes.
    async fn read_range(
        &self,
        digest: crate::castore::B3Digest,
        offset: u64,
        length: u64,
    ) -> Result<Response<BoxStream<BlobChunk>>, Status> {
        let (opened_tx, opened) = oneshot::channel::<Result<(u64, u64), Status>>();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let sized = store.blob_size(&digest).and_then(|size| {
                let size = size.ok_or(StoreError::BlobNotFound(digest))?;
                let want = crate::castore::clip_range(&digest, size, offset, length)?;
                Ok((size, want))
            });
            let (size, want) = match sized {
                Ok(v) => v,
                Err(e) => {
                    let _ = opened_tx.send(Err(bad(e)));
                    return;
                }
            };
            if opened_tx.send(Ok((size, want))).is_err() {
                return;
            }
            let mut at = offset;
            let end = offset + want;
            while at < end {
                let step = (end - at).min(RANGE_STEP);
                let data = match store.read_blob_range(&digest, at, step) {
                    Ok(Some(d)) if d.len() as u64 == step => d,
                    Ok(Some(d)) => {
                        let _ = tx.blocking_send(Err(bad(StoreError::SizeMismatch {
                            what: "blob",
                            digest,
                            expected: size,
                            actual: at + d.len() as u64,
                        })));
                        return;
                    }
                    Ok(None) => {
                        let _ = tx.blocking_send(Err(bad(StoreError::BlobNotFound(digest))));
                        return;
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(bad(e)));
                        return;
                    }
                };
                at += step;
                let mut rest = data;
                while !rest.is_empty() {
                    let piece = rest.split_to(rest.len().min(SEND_PIECE));
                    if tx.blocking_send(Ok(BlobChunk { data: piece })).is_err() {
                        return;
                    }
                }
            }
        });
        let (size, want) = opened
            .await
            .map_err(|_| Status::internal("the blob reading task failed"))??;
        let mut resp: Response<BoxStream<BlobChunk>> =
            Response::new(Box::pin(ReceiverStream::new(rx)));
        let meta = resp.metadata_mut();
        meta.insert(BLOB_SIZE_HEADER, tonic::metadata::MetadataValue::from(size));
        let range = format!("{offset}+{want}");
        if let Ok(v) = tonic::metadata::MetadataValue::try_from(range.as_str()) {
            meta.insert(BLOB_RANGE_HEADER, v);
        }
        Ok(resp)
    }
}

/// How many path infos a listing reads from the store at once.
const PAGE: usize = 256;

/// How many path infos a listing holds ready before the client takes them.
const LIST_QUEUE: usize = 64;

/// How many bytes of a ranged read the server reads from its store at once.
const RANGE_STEP: u64 = 4 << 20;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn bad(e: StoreError) -> Status {
    status_of(&e)
}

#[tonic::async_trait]
impl proto::blob_service_server::BlobService for Services {
    async fn put(
        &self,
        req: Request<Streaming<BlobChunk>>,
    ) -> Result<Response<proto::PutBlobResponse>, Status> {
        let stream = req.into_inner();
        let store = self.store.clone();
        let handle = Handle::current();
        let (digest, size) = blocking(move || {
            let mut r = UploadReader {
                handle,
                stream,
                buf: Default::default(),
            };
            store.put_blob(&mut r)
        })
        .await?;
        Ok(Response::new(proto::PutBlobResponse {
            digest: digest.0.to_vec().into(),
            size,
        }))
    }

    type ReadStream = BoxStream<BlobChunk>;

    async fn read(
        &self,
        req: Request<proto::ReadBlobRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let req = req.into_inner();
        let digest = digest_from("blob read request", &req.digest).map_err(bad)?;
        if req.offset.is_some() || req.length.is_some() {
            return self
                .read_range(
                    digest,
                    req.offset.unwrap_or(0),
                    req.length.unwrap_or(u64::MAX),
                )
                .await;
        }
        // One blocking task opens the blob, reports its size (or why it cannot be read)
        // and then streams it.
        let (opened_tx, opened) = oneshot::channel::<Result<u64, Status>>();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut r = match store.open_blob(&digest) {
                Ok(Some(r)) => r,
                Ok(None) => {
                    let _ = opened_tx.send(Err(bad(StoreError::BlobNotFound(digest))));
                    return;
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(bad(e)));
                    return;
                }
            };
            if opened_tx.send(Ok(r.size())).is_err() {
                return;
            }
            let mut buf = vec![0u8; SEND_PIECE];
            loop {
                let piece = match read_full(&mut r, &mut buf) {
                    Ok(0) => return,
                    Ok(n) => Ok(BlobChunk {
                        data: prost::bytes::Bytes::copy_from_slice(&buf[..n]),
                    }),
                    Err(e) => Err(bad(StoreError::from_io(e))),
                };
                let failed = piece.is_err();
                if tx.blocking_send(piece).is_err() || failed {
                    return;
                }
            }
        });
        let size = opened
            .await
            .map_err(|_| Status::internal("the blob reading task failed"))??;
        let mut resp: Response<Self::ReadStream> = Response::new(Box::pin(ReceiverStream::new(rx)));
        resp.metadata_mut()
            .insert(BLOB_SIZE_HEADER, tonic::metadata::MetadataValue::from(size));
        Ok(resp)
    }

    async fn stat(
        &self,
        req: Request<proto::StatBlobRequest>,
    ) -> Result<Response<proto::StatBlobResponse>, Status> {
        let digest = digest_from("blob stat request", &req.get_ref().digest).map_err(bad)?;
        let store = self.store.clone();
        let size = blocking(move || store.blob_size(&digest)).await?;
        Ok(Response::new(proto::StatBlobResponse {
            found: size.is_some(),
            size: size.unwrap_or(0),
        }))
    }
}

#[tonic::async_trait]
impl proto::directory_service_server::DirectoryService for Services {
    async fn put(
        &self,
        req: Request<Streaming<proto::Directory>>,
    ) -> Result<Response<proto::PutDirectoryResponse>, Status> {
        let mut stream = req.into_inner();
        let store = self.store.clone();
        let handle = Handle::current();
        let last = blocking(move || {
            let mut last = None;
            loop {
                let msg = handle.block_on(stream.message()).map_err(|s| {
                    StoreError::Io(io::Error::other(format!(
                        "directory upload failed: {}",
                        s.message()
                    )))
                })?;
                let Some(msg) = msg else { break };
                let dir = directory_from_proto(msg)?;
                last = Some(store.put_directory(&dir)?);
            }
            last.ok_or_else(|| invalid("directory upload", "no directories were sent"))
        })
        .await?;
        Ok(Response::new(proto::PutDirectoryResponse {
            root_digest: last.0.to_vec().into(),
        }))
    }

    type GetStream = BoxStream<proto::Directory>;

    async fn get(
        &self,
        req: Request<proto::GetDirectoryRequest>,
    ) -> Result<Response<Self::GetStream>, Status> {
        let req = req.into_inner();
        let digest = digest_from("directory request", &req.digest).map_err(bad)?;
        let store = self.store.clone();
        let dirs = blocking(move || {
            if req.recursive {
                store.get_directory_recursive(&digest)
            } else {
                let dir = store
                    .get_directory(&digest)?
                    .ok_or(StoreError::DirectoryNotFound(digest))?;
                Ok(vec![(digest, dir)])
            }
        })
        .await?;
        let msgs: Vec<Result<proto::Directory, Status>> = dirs
            .iter()
            .map(|(_, d)| Ok(directory_to_proto(d)))
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(msgs))))
    }
}

#[tonic::async_trait]
impl proto::path_info_service_server::PathInfoService for Services {
    async fn get(
        &self,
        req: Request<proto::GetPathInfoRequest>,
    ) -> Result<Response<proto::PathInfo>, Status> {
        let path = store_path_from("path info request", &req.get_ref().store_path).map_err(bad)?;
        let store = self.store.clone();
        let info = blocking(move || {
            store
                .get_path_info(&path)?
                .ok_or_else(|| StoreError::PathNotValid(path.to_base_name()))
        })
        .await?;
        Ok(Response::new(path_info_to_proto(&info)))
    }

    async fn put(
        &self,
        req: Request<proto::PathInfo>,
    ) -> Result<Response<proto::PutPathInfoResponse>, Status> {
        let info = path_info_from_proto(req.into_inner()).map_err(bad)?;
        let store = self.store.clone();
        blocking(move || store.put_path_info(&info)).await?;
        Ok(Response::new(proto::PutPathInfoResponse {}))
    }

    type ListStream = BoxStream<proto::PathInfo>;

    /// Reads the listing from the store a page at a time on a blocking thread and sends
    /// it through a small channel, so the server holds at most a page and the channel's
    /// few messages whatever the store's size (and stops reading when the client goes).
    async fn list(
        &self,
        req: Request<proto::ListPathInfoRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let req = req.into_inner();
        let after: Option<[u8; DIGEST_LEN]> = match req.after_digest.len() {
            0 => None,
            _ => Some(req.after_digest[..].try_into().map_err(|_| {
                Status::invalid_argument(format!(
                    "list request: after_digest has {} bytes, not {DIGEST_LEN}",
                    req.after_digest.len()
                ))
            })?),
        };
        let limit = match req.limit {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(LIST_QUEUE);
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut after = after;
            let mut left = limit;
            while left > 0 {
                let page = match store.list_path_infos_page(after.as_ref(), left.min(PAGE)) {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(bad(e)));
                        return;
                    }
                };
                let Some(last) = page.last() else {
                    return;
                };
                after = Some(*last.store_path.digest());
                left = left.saturating_sub(page.len());
                for info in &page {
                    if tx.blocking_send(Ok(path_info_to_proto(info))).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn verify(
        &self,
        _req: Request<proto::VerifyRequest>,
    ) -> Result<Response<proto::VerifyReport>, Status> {
        let store = self.store.clone();
        let r = blocking(move || store.verify()).await?;
        Ok(Response::new(proto::VerifyReport {
            chunks: r.chunks,
            blobs: r.blobs,
            directories: r.directories,
            paths: r.paths,
            problems: r.problems,
        }))
    }
}
