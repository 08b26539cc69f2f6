//! `tvix store serve`: a Nix HTTP binary cache over any tvix store.
//!
//! Serves `/nix-cache-info`, `/<hash part>.narinfo` (rendered from the path info and
//! signed on the fly), `/nar/...` (the NAR rendered from the castore and compressed as it
//! is sent, never whole in memory; uncompressed ones also in ranges), `/<hash part>.ls`
//! (the NAR listing) and `/log/<drv>` (build logs, if given a [`BuildLogs`]), `GET` and
//! `HEAD`; everything else is a 404. With uploads allowed, `PUT` of NAR files and
//! narinfos stores what `nix copy --to http://...` sends ([`upload`]). HTTP/1.1 on hyper
//! and a tokio runtime; store calls (which block, and which for a gRPC store run a
//! runtime of their own) go to plain threads, never the runtime's.

pub mod listing;
pub mod range;
pub mod render;
pub mod route;
pub mod upload;

use std::convert::Infallible;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{
    HeaderValue, ACCEPT_RANGES, ALLOW, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE,
};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use crate::cache_info::CacheInfo;
use crate::castore::StoreError;
use crate::compression::Compression;
use crate::pathinfo::PathInfo;
use crate::signing::SecretKey;
use crate::store_path::{StoreDir, StorePath, DIGEST_LEN};
use crate::StoreService;
use range::RangeAnswer;
use route::{Method, Route};
use upload::{Registered, UploadError, Uploads};

/// Largest narinfo accepted in an upload.
const MAX_NARINFO_UPLOAD: usize = 1 << 20;

/// Where the server finds build logs (`/log/<drv>`).
pub trait BuildLogs: Send + Sync {
    /// The log of `drv` (uncompressed), or `None` if none is kept.
    fn open(&self, drv: &StorePath) -> io::Result<Option<Box<dyn Read + Send>>>;
}

/// Why the cache server could not start or stopped.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The listen address is not `HOST:PORT`.
    #[error("invalid listen address '{addr}': {reason}")]
    BadAddress {
        /// The address given.
        addr: String,
        /// Why it is invalid.
        reason: String,
    },
    /// Binding or accepting failed.
    #[error("cannot listen on '{addr}': {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The runtime could not be built.
    #[error("cannot start the server runtime: {0}")]
    Runtime(io::Error),
    /// The staging directory for uploads could not be made.
    #[error("cannot make a staging directory for uploads in '{dir}': {source}")]
    Staging {
        /// Where.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// How the cache presents the store.
pub struct ServeOptions {
    /// The store directory of the served paths (`nix-cache-info`'s `StoreDir`).
    pub store_dir: StoreDir,
    /// The compression of NARs named in narinfos (any of them can be asked for by URL).
    pub compression: Compression,
    /// Signs narinfos if given.
    pub key: Option<SecretKey>,
    /// The `Priority` in `nix-cache-info` (lower is asked first).
    pub priority: u64,
    /// Accept uploads (`PUT`), staging NAR files in a directory made under this one;
    /// `None`: the cache is read-only.
    pub uploads: Option<PathBuf>,
    /// Build logs served under `/log/`.
    pub logs: Option<Arc<dyn BuildLogs>>,
}

struct State {
    store: Arc<dyn StoreService>,
    opts: ServeOptions,
    uploads: Option<Uploads>,
    pool: StorePool,
}

/// Threads for the short store calls of requests (narinfo lookups, listings, opening
/// logs).
const STORE_THREADS: usize = 16;

/// Requests waiting for a store thread before new ones are held back.
const STORE_QUEUE: usize = 1024;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of plain threads (not the runtime's: a gRPC store's client starts a
/// runtime of its own, which it cannot do on a runtime thread) running store calls from a
/// bounded queue, so many concurrent clients cost neither a thread each nor unbounded
/// memory. Long transfers (NARs, uploads, logs) have threads of their own instead, so they
/// never hold up lookups.
struct StorePool {
    tx: mpsc::Sender<Job>,
}

impl StorePool {
    fn new(threads: usize) -> io::Result<StorePool> {
        let (tx, rx) = mpsc::channel::<Job>(STORE_QUEUE);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for _ in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name("tvix-serve-store".into())
                .spawn(move || loop {
                    // One idle thread waits on the queue, the others on the lock.
                    let job = match rx.lock() {
                        Ok(mut rx) => rx.blocking_recv(),
                        Err(_) => None,
                    };
                    match job {
                        Some(job) => job(),
                        // The server is gone.
                        None => break,
                    }
                })?;
        }
        Ok(StorePool { tx })
    }

    /// Runs `f` on a store thread; `None` if it could not run or panicked.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            // A panic is the request's failure (a 500), not the thread's end.
            if let Ok(v) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                let _ = tx.send(v);
            }
        });
        self.tx.send(job).await.ok()?;
        rx.await.ok()
    }
}

/// The body of every response: small ones whole, NARs as a stream of pieces.
type Body = BoxBody<Bytes, io::Error>;

/// A bound cache server, not yet serving.
pub struct CacheServer {
    rt: tokio::runtime::Runtime,
    listener: TcpListener,
    state: Arc<State>,
}

impl CacheServer {
    /// Binds `addr` (`HOST:PORT`; port 0 picks a free one) for serving `store`.
    pub fn bind(
        store: Arc<dyn StoreService>,
        addr: &str,
        opts: ServeOptions,
    ) -> Result<CacheServer, ServeError> {
        let sock: SocketAddr =
            addr.parse()
                .map_err(|e: std::net::AddrParseError| ServeError::BadAddress {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tvix-store-serve")
            .enable_all()
            .build()
            .map_err(ServeError::Runtime)?;
        let listener =
            rt.block_on(TcpListener::bind(sock))
                .map_err(|source| ServeError::Listen {
                    addr: addr.to_string(),
                    source,
                })?;
        let uploads = match &opts.uploads {
            Some(dir) => Some(
                Uploads::new(store.clone(), opts.store_dir.clone(), dir).map_err(|source| {
                    ServeError::Staging {
                        dir: dir.clone(),
                        source,
                    }
                })?,
            ),
            None => None,
        };
        let pool = StorePool::new(STORE_THREADS).map_err(ServeError::Runtime)?;
        Ok(CacheServer {
            rt,
            listener,
            state: Arc::new(State {
                store,
                opts,
                uploads,
                pool,
            }),
        })
    }

    /// The address it listens on (with the port picked for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the process ends; returns only if accepting connections fails.
    pub fn run(self) -> Result<(), ServeError> {
        let CacheServer {
            rt,
            listener,
            state,
        } = self;
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        rt.block_on(async move {
            loop {
                let (conn, _) = match listener.accept().await {
                    Ok(c) => c,
                    // Out of file descriptors and the like: wait, as the client side
                    // will retry, instead of ending the server.
                    Err(e) if is_transient(&e) => {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                    Err(source) => return Err(ServeError::Listen { addr, source }),
                };
                let _ = conn.set_nodelay(true);
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(state, req).await) }
                    });
                    // A client that breaks the connection only ends its own task.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(conn), service)
                        .await;
                });
            }
        })
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || e.raw_os_error() == Some(24) // EMFILE
        || e.raw_os_error() == Some(23) // ENFILE
}

/// Runs `f` on a thread of its own (for long store calls: uploads; a gRPC store's client
/// starts its own runtime, which it cannot do on a runtime thread).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("tvix-serve-store".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .ok()?;
    rx.await.ok()
}

fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).map_err(|e| match e {}).boxed()
}

fn empty() -> Body {
    Empty::new().map_err(|e| match e {}).boxed()
}

fn response(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn text(
    status: StatusCode,
    method: Method,
    content_type: &'static str,
    s: String,
) -> Response<Body> {
    let len = s.len();
    let body = if method == Method::Head {
        empty()
    } else {
        full(s)
    };
    let mut r = response(status, content_type, body);
    r.headers_mut().insert(CONTENT_LENGTH, len.into());
    r
}

fn not_found(method: Method) -> Response<Body> {
    text(
        StatusCode::NOT_FOUND,
        method,
        "text/plain",
        "not found\n".to_string(),
    )
}

fn server_error(method: Method, e: &StoreError) -> Response<Body> {
    eprintln!("tvix store serve: {e}");
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        method,
        "text/plain",
        format!("{e}\n"),
    )
}

async fn lookup(
    state: &Arc<State>,
    digest: [u8; DIGEST_LEN],
) -> Result<Option<PathInfo>, StoreError> {
    let st = state.clone();
    state
        .pool
        .run(move || st.store.get_path_info_by_digest(&digest))
        .await
        .unwrap_or_else(|| Err(StoreError::Io(io::Error::other("the store thread failed"))))
}

fn bad_request(e: &UploadError) -> Response<Body> {
    let status = if e.is_server_error() {
        eprintln!("tvix store serve: {e}");
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    text(status, Method::Get, "text/plain", format!("{e}\n"))
}

fn method_not_allowed(allow: &'static str, why: &str) -> Response<Body> {
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        Method::Get,
        "text/plain",
        format!("{why}\n"),
    );
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let method = match *req.method() {
        hyper::Method::GET => Method::Get,
        hyper::Method::HEAD => Method::Head,
        hyper::Method::PUT => Method::Put,
        _ => Method::Other,
    };
    let allow = if state.uploads.is_some() {
        "GET, HEAD, PUT"
    } else {
        "GET, HEAD"
    };
    match method {
        Method::Other => {
            return method_not_allowed(allow, &format!("only {allow} are supported"));
        }
        Method::Put if state.uploads.is_none() => {
            return method_not_allowed(
                allow,
                "this binary cache is read-only (start tvix store serve with --allow-uploads \
                 to accept uploads)",
            );
        }
        Method::Put => return handle_put(state, req).await,
        Method::Get | Method::Head => {}
    }
    let range_header = req
        .headers()
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match route::route(req.uri().path()) {
        Route::NotFound | Route::NarFile { .. } => not_found(method),
        Route::CacheInfo => {
            let mut info = CacheInfo::new(state.opts.store_dir.as_str());
            info.priority = state.opts.priority;
            text(
                StatusCode::OK,
                method,
                "text/x-nix-cache-info",
                info.to_text(),
            )
        }
        Route::NarInfo { digest } => match lookup(&state, digest).await {
            Ok(Some(info)) => {
                let o = &state.opts;
                let narinfo =
                    render::narinfo_for(&info, &o.store_dir, o.compression, o.key.as_ref());
                text(
                    StatusCode::OK,
                    method,
                    "text/x-nix-narinfo",
                    narinfo.to_text(&o.store_dir),
                )
            }
            Ok(None) => not_found(method),
            Err(e) => server_error(method, &e),
        },
        Route::Nar {
            digest,
            nar_sha256,
            compression,
        } => match lookup(&state, digest).await {
            Ok(Some(info)) if info.nar_sha256 == nar_sha256 => {
                nar_response(state, info, method, compression, range_header.as_deref())
            }
            Ok(_) => not_found(method),
            Err(e) => server_error(method, &e),
        },
        Route::Listing { digest } => {
            let st = state.clone();
            let listed = state
                .pool
                .run(move || match st.store.get_path_info_by_digest(&digest)? {
                    Some(info) => listing::listing(&*st.store, &info.node).map(Some),
                    None => Ok(None),
                })
                .await
                .unwrap_or_else(|| {
                    Err(StoreError::Io(io::Error::other("the store thread failed")))
                });
            match listed {
                Ok(Some(json)) => text(StatusCode::OK, method, "application/json", json),
                Ok(None) => not_found(method),
                Err(e) => server_error(method, &e),
            }
        }
        Route::Log { drv } => log_response(&state, drv, method).await,
    }
}

/// `/log/<drv>`: the log, decompressed as it is sent.
async fn log_response(state: &Arc<State>, drv: StorePath, method: Method) -> Response<Body> {
    let Some(logs) = state.opts.logs.clone() else {
        return not_found(method);
    };
    let opened = state
        .pool
        .run(move || logs.open(&drv))
        .await
        .unwrap_or_else(|| Err(io::Error::other("the log thread failed")));
    let log = match opened {
        Ok(Some(log)) => log,
        Ok(None) => return not_found(method),
        Err(e) => return server_error(method, &StoreError::Io(e)),
    };
    let body = if method == Method::Head {
        empty()
    } else {
        let (tx, rx) = mpsc::channel(4);
        let spawned = std::thread::Builder::new()
            .name("tvix-serve-log".into())
            .spawn(move || {
                let mut log = log;
                let mut out = render::ChannelWriter::new(tx.clone());
                let sent = io::copy(&mut log, &mut out).and_then(|_| io::Write::flush(&mut out));
                if let Err(e) = sent {
                    if e.kind() != io::ErrorKind::BrokenPipe {
                        // The client sees a broken transfer, not a short log.
                        let _ = tx.blocking_send(Err(e));
                    }
                }
            });
        if let Err(e) = spawned {
            return server_error(method, &StoreError::Io(e));
        }
        StreamBody::new(ReceiverStream::new(rx).map(|piece| piece.map(Frame::data))).boxed()
    };
    response(StatusCode::OK, "text/plain; charset=utf-8", body)
}

/// Collects at most `limit` bytes of a request body; `None` if it is larger or breaks off.
async fn small_body(body: &mut Incoming, limit: usize) -> Result<Vec<u8>, StatusCode> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| StatusCode::BAD_REQUEST)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(StatusCode::PAYLOAD_TOO_LARGE);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// `PUT`: a NAR file (staged) or a narinfo (registered from its staged NAR file); a NAR
/// listing is accepted and not kept (listings are computed from the castore).
async fn handle_put(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let route = route::route(req.uri().path());
    let mut body = req.into_body();
    match route {
        Route::NarFile {
            file_sha256,
            compression,
        } => {
            // The body goes to the staging thread piece by piece; a full channel holds
            // back reading from the client.
            let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(8);
            let st = state.clone();
            let staging = blocking(move || {
                let pieces = std::iter::from_fn(move || rx.blocking_recv());
                match &st.uploads {
                    Some(u) => u.stage_nar(&file_sha256, compression, pieces),
                    None => Err(UploadError::Staging(io::Error::other("uploads are off"))),
                }
            });
            let feed = async move {
                while let Some(frame) = body.frame().await {
                    let piece = match frame {
                        Ok(f) => match f.into_data() {
                            Ok(data) => Ok(data),
                            Err(_) => continue,
                        },
                        Err(e) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, e)),
                    };
                    let failed = piece.is_err();
                    if tx.send(piece).await.is_err() || failed {
                        break;
                    }
                }
            };
            let (staged, ()) = tokio::join!(staging, feed);
            match staged {
                Some(Ok(())) => text(StatusCode::OK, Method::Get, "text/plain", String::new()),
                Some(Err(e)) => bad_request(&e),
                None => bad_request(&UploadError::Staging(io::Error::other(
                    "the staging thread failed",
                ))),
            }
        }
        Route::NarInfo { digest } => {
            let data = match small_body(&mut body, MAX_NARINFO_UPLOAD).await {
                Ok(d) => d,
                Err(status) => {
                    return text(
                        status,
                        Method::Get,
                        "text/plain",
                        format!(
                            "the narinfo is larger than {MAX_NARINFO_UPLOAD} bytes or broke off\n"
                        ),
                    )
                }
            };
            let st = state.clone();
            let registered = blocking(move || match &st.uploads {
                Some(u) => u.register(&digest, &data),
                None => Err(UploadError::Staging(io::Error::other("uploads are off"))),
            })
            .await;
            match registered {
                Some(Ok(Registered::New | Registered::AlreadyValid)) => {
                    text(StatusCode::OK, Method::Get, "text/plain", String::new())
                }
                Some(Err(e)) => bad_request(&e),
                None => bad_request(&UploadError::Staging(io::Error::other(
                    "the registering thread failed",
                ))),
            }
        }
        Route::Listing { .. } => match small_body(&mut body, 64 << 20).await {
            Ok(_) => text(StatusCode::OK, Method::Get, "text/plain", String::new()),
            Err(status) => text(status, Method::Get, "text/plain", String::new()),
        },
        _ => method_not_allowed(
            "GET, HEAD",
            "only NAR files (nar/<file hash>.nar...), narinfos and listings can be uploaded",
        ),
    }
}

fn nar_response(
    state: Arc<State>,
    info: PathInfo,
    method: Method,
    compression: Compression,
    range_header: Option<&str>,
) -> Response<Body> {
    // Ranges only where the length is known before sending: uncompressed NARs.
    let answer = if compression == Compression::None {
        range::answer(range_header, info.nar_size)
    } else {
        RangeAnswer::Full
    };
    let (status, range, length) = match answer {
        RangeAnswer::Full => (
            StatusCode::OK,
            None,
            (compression == Compression::None).then_some(info.nar_size),
        ),
        RangeAnswer::Partial { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            Some((start, end)),
            Some(end - start + 1),
        ),
        RangeAnswer::Unsatisfiable => {
            let mut r = text(
                StatusCode::RANGE_NOT_SATISFIABLE,
                method,
                "text/plain",
                format!("the NAR has {} bytes\n", info.nar_size),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", info.nar_size)) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let nar_size = info.nar_size;
    let body = if method == Method::Head {
        empty()
    } else {
        // A few pieces in flight: the renderer stays just ahead of the client.
        let (tx, rx) = mpsc::channel(4);
        let spawned = std::thread::Builder::new()
            .name("tvix-serve-nar".into())
            .spawn(move || {
                match render::stream_nar(&*state.store, &info, compression, range, tx) {
                    // A client hanging up is its own business, not the server's error.
                    Err(StoreError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {}
                    Err(e) => eprintln!(
                        "tvix store serve: sending the NAR of '{}': {e}",
                        info.store_path.to_base_name()
                    ),
                    Ok(()) => {}
                }
            });
        if let Err(e) = spawned {
            return server_error(method, &StoreError::Io(e));
        }
        StreamBody::new(ReceiverStream::new(rx).map(|piece| piece.map(Frame::data))).boxed()
    };
    let mut r = response(status, "application/x-nix-nar", body);
    let headers = r.headers_mut();
    if let Some(len) = length {
        headers.insert(CONTENT_LENGTH, len.into());
    }
    headers.insert(
        ACCEPT_RANGES,
        HeaderValue::from_static(if compression == Compression::None {
            "bytes"
        } else {
            "none"
        }),
    );
    if let Some((start, end)) = range {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{nar_size}")) {
            headers.insert(CONTENT_RANGE, v);
        }
    }
    r
}
