//! What every tvix gRPC service shares on the wire, whatever it serves: the client URLs
//! ([`Target`]), connecting a channel ([`connect`]), and serving a tonic router on a
//! [`ListenAddr`] from a runtime thread of its own ([`Serving`]). The store daemon and the
//! builder daemon both use it; each adds its own services, limits and errors.

use std::io;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::server::{Router, TcpIncoming};
use tonic::transport::{Channel, Endpoint};

use super::ListenAddr;

/// Where a client connects, parsed from a `grpc+unix:///path` or `grpc+http://HOST:PORT`
/// URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A unix domain socket.
    Unix(PathBuf),
    /// An `http://HOST:PORT` URI.
    Http(String),
}

impl Target {
    /// Parses a client URL; the error is the reason, for the caller's own error type.
    pub fn parse(url: &str) -> Result<Self, &'static str> {
        if let Some(path) = url.strip_prefix("grpc+unix://") {
            if !path.starts_with('/') {
                return Err("the socket path must be absolute (grpc+unix:///path)");
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = url.strip_prefix("grpc+http://") {
            let hostport = rest.strip_suffix('/').unwrap_or(rest);
            let has_port = hostport
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !has_port || hostport.contains('/') {
                return Err("expected grpc+http://HOST:PORT");
            }
            return Ok(Target::Http(format!("http://{hostport}")));
        }
        Err("gRPC URLs are grpc+unix:///path or grpc+http://HOST:PORT")
    }
}

/// A multi-threaded runtime with `threads` workers named `name`.
pub fn runtime(threads: usize, name: &str) -> io::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
}

/// Connects a channel to `target` on `rt`, with `tune` applied to the endpoint (window
/// sizes, keepalive); TCP connections never delay small writes. The error is a message,
/// `cannot connect: ...` with the transport error's causes.
pub fn connect(
    rt: &Runtime,
    target: Target,
    tune: impl Fn(Endpoint) -> Endpoint,
) -> Result<Channel, String> {
    let failed = |e: tonic::transport::Error| format!("cannot connect: {}", source_chain(&e));
    match target {
        Target::Http(uri) => {
            let ep = tune(Endpoint::from_shared(uri).map_err(|e| e.to_string())?).tcp_nodelay(true);
            rt.block_on(ep.connect()).map_err(failed)
        }
        Target::Unix(path) => {
            // The URI is required by the API but unused: the connector picks the socket.
            let ep = tune(Endpoint::from_static("http://localhost"));
            let connector = tower::service_fn(move |_: tonic::transport::Uri| {
                let path = path.clone();
                async move {
                    let s = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(s))
                }
            });
            rt.block_on(ep.connect_with_connector(connector))
                .map_err(failed)
        }
    }
}

/// An error and its causes, `: `-separated (transport errors hide the useful part).
pub fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// A router being served. Dropping it stops serving (open calls are cut) and removes its
/// unix socket.
pub struct Serving {
    url: String,
    socket: Option<PathBuf>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Serving {
    /// Binds `listen` and serves `router` on `rt` from a thread of its own. Once this
    /// returns, clients can connect to [`Serving::url`]. A unix socket left by a server
    /// that is gone is replaced; a live one, or a file that is not a socket, is an error.
    pub fn start(rt: Runtime, router: Router, listen: &ListenAddr) -> io::Result<Serving> {
        let (stop, stopped) = oneshot::channel::<()>();
        let cannot_listen = |what: &dyn std::fmt::Display, e: io::Error| {
            io::Error::new(e.kind(), format!("cannot listen on '{what}': {e}"))
        };
        let serve = |rt: Runtime, run: std::pin::Pin<Box<ServeFuture>>| {
            std::thread::spawn(move || {
                let res = rt.block_on(async move {
                    tokio::select! {
                        r = run => r,
                        _ = stopped => Ok(()),
                    }
                });
                rt.shutdown_timeout(std::time::Duration::from_secs(1));
                res
            })
        };
        let (url, socket, thread) = match listen {
            ListenAddr::Unix(path) => {
                remove_stale_socket(path)?;
                let listener = {
                    let _guard = rt.enter();
                    tokio::net::UnixListener::bind(path)
                        .map_err(|e| cannot_listen(&path.display(), e))?
                };
                let incoming = UnixListenerStream::new(listener);
                let run = Box::pin(async move {
                    router
                        .serve_with_incoming(incoming)
                        .await
                        .map_err(io::Error::other)
                });
                (
                    format!("grpc+unix://{}", path.display()),
                    Some(path.clone()),
                    serve(rt, run),
                )
            }
            ListenAddr::Tcp(addr) => {
                let listener = rt
                    .block_on(tokio::net::TcpListener::bind(addr.as_str()))
                    .map_err(|e| cannot_listen(addr, e))?;
                let local = listener.local_addr()?;
                let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                let run = Box::pin(async move {
                    router
                        .serve_with_incoming(incoming)
                        .await
                        .map_err(io::Error::other)
                });
                (format!("grpc+http://{local}"), None, serve(rt, run))
            }
        };
        Ok(Serving {
            url,
            socket,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The URL clients use to reach this server (with the actual port when listening on
    /// port 0).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Serves until SIGINT or SIGTERM arrives (see [`crate::shutdown`]) or serving fails.
    /// On a signal it stops as a drop does: open calls are cut, the unix socket is
    /// removed, and what the router held (a build service's store mount) is released.
    pub fn wait(mut self) -> io::Result<()> {
        let finished = |s: &Serving| s.thread.as_ref().is_none_or(|t| t.is_finished());
        if crate::shutdown::wait_until(|| finished(&self)) {
            drop(self);
            return Ok(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("server panicked"))),
            None => Ok(()),
        }
    }
}

/// What a serving thread runs: the router until it fails.
type ServeFuture = dyn std::future::Future<Output = io::Result<()>> + Send;

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Removes a socket file left by a server that is gone; a live one is an error, and so is
/// a file that is not a socket.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let in_use = |reason: &str| {
        io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("cannot listen on '{}': {reason}", path.display()),
        )
    };
    if !meta.file_type().is_socket() {
        return Err(in_use("it exists and is not a socket"));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(in_use("another server is listening on it"));
    }
    std::fs::remove_file(path).map_err(|e| in_use(&format!("cannot remove the stale socket: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_urls() {
        assert_eq!(
            Target::parse("grpc+unix:///run/tvix.sock").unwrap(),
            Target::Unix("/run/tvix.sock".into())
        );
        assert_eq!(
            Target::parse("grpc+http://localhost:8000").unwrap(),
            Target::Http("http://localhost:8000".into())
        );
        assert_eq!(
            Target::parse("grpc+http://[::1]:9000/").unwrap(),
            Target::Http("http://[::1]:9000".into())
        );
        for bad in [
            "grpc+unix://rel",
            "grpc+http://",
            "grpc+http://host",
            "grpc+http://h:1/path",
            "grpc+https://h:1",
            "oci://",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sockets_in_use_or_not_sockets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let e = remove_stale_socket(&file).unwrap_err();
        assert!(e.to_string().contains("is not a socket"), "{e}");
        let live = dir.path().join("live.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&live).unwrap();
        let e = remove_stale_socket(&live).unwrap_err();
        assert!(e.to_string().contains("another server"), "{e}");
        let stale = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        remove_stale_socket(&stale).unwrap();
        assert!(!stale.exists());
        remove_stale_socket(&dir.path().join("missing")).unwrap();
    }
}
