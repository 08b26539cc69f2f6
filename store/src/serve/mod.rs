//! `tvix store serve`: a Nix HTTP binary cache over any tvix store.
//!
//! Serves `/nix-cache-info`, `/<hash part>.narinfo` (rendered from the path info and
//! signed on the fly) and `/nar/...` (the NAR rendered from the castore and compressed as
//! it is sent, never whole in memory), `GET` and `HEAD`; everything else is a 404. HTTP/1.1
//! on hyper and a tokio runtime; store calls (which block, and which for a gRPC store run
//! a runtime of their own) go to plain threads, never the runtime's.

pub mod render;
pub mod route;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
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
use crate::store_path::{StoreDir, DIGEST_LEN};
use crate::StoreService;
use route::{Method, Route};

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
}

struct State {
    store: Arc<dyn StoreService>,
    opts: ServeOptions,
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
        Ok(CacheServer {
            rt,
            listener,
            state: Arc::new(State { store, opts }),
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

/// Runs `f` on a thread of its own (store calls block, and a gRPC store's client starts
/// its own runtime, which it cannot do on a runtime thread).
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
    let state = state.clone();
    blocking(move || state.store.get_path_info_by_digest(&digest))
        .await
        .unwrap_or_else(|| Err(StoreError::Io(io::Error::other("the store thread failed"))))
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let method = if req.method() == hyper::Method::GET {
        Method::Get
    } else if req.method() == hyper::Method::HEAD {
        Method::Head
    } else {
        Method::Other
    };
    if method == Method::Other {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            Method::Get,
            "text/plain",
            "only GET and HEAD are supported\n".to_string(),
        );
        r.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match route::route(req.uri().path()) {
        Route::NotFound => not_found(method),
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
                nar_response(state, info, method, compression)
            }
            Ok(_) => not_found(method),
            Err(e) => server_error(method, &e),
        },
    }
}

fn nar_response(
    state: Arc<State>,
    info: PathInfo,
    method: Method,
    compression: Compression,
) -> Response<Body> {
    let length = (compression == Compression::None).then_some(info.nar_size);
    let body = if method == Method::Head {
        empty()
    } else {
        // A few pieces in flight: the renderer stays just ahead of the client.
        let (tx, rx) = mpsc::channel(4);
        let spawned = std::thread::Builder::new()
            .name("tvix-serve-nar".into())
            .spawn(move || {
                match render::stream_nar(&*state.store, &info, compression, tx) {
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
    let mut r = response(StatusCode::OK, "application/x-nix-nar", body);
    if let Some(len) = length {
        r.headers_mut().insert(CONTENT_LENGTH, len.into());
    }
    r
}
