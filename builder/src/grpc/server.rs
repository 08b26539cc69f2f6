//! [`Server`]: serves a [`BuildService`] over the builder protocol.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tvix_store::grpc::transport::{runtime, Serving};

use super::convert::{
    capabilities_to_proto, event_to_proto, failure_to_proto, request_from_proto, result_to_proto,
};
use super::proto::build_response::Kind;
use super::proto::build_service_server::BuildServiceServer;
use super::proto::{self, BuildResponse};
use super::{ListenAddr, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT, MAX_MESSAGE};
use crate::{BuildError, BuildEvent, BuildService, CancelToken};

/// Longest log line sent as one message; longer ones are cut into pieces this long.
pub const MAX_LOG_PIECE: usize = 1 << 20;

/// How many messages of one build may wait for a slow client before the build's event
/// callback blocks (at most 64 MiB of log pieces).
const EVENT_QUEUE: usize = 64;

/// A running server. Dropping it stops the server (open calls are cut, which cancels
/// their builds) and removes its unix socket.
pub struct Server {
    serving: Serving,
}

impl Server {
    /// Binds `listen` and starts serving `service` on a background thread; every build
    /// runs on a blocking thread of its own. Once this returns, clients can connect to
    /// [`Server::url`].
    pub fn start(
        service: Arc<dyn BuildService>,
        listen: &ListenAddr,
    ) -> Result<Server, BuildError> {
        let rt = runtime(2, "tvix-builder-daemon")?;
        // Keepalive pings find clients that vanished without closing their connection
        // (their calls are then dropped, which cancels their builds).
        let router = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .add_service(
                BuildServiceServer::new(Handler { service })
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
            );
        Ok(Server {
            serving: Serving::start(rt, router, listen)?,
        })
    }

    /// The build service URL clients use to reach this server (with the actual port
    /// when listening on port 0).
    pub fn url(&self) -> &str {
        self.serving.url()
    }

    /// Serves until SIGINT or SIGTERM, then stops cleanly (the service and its store
    /// mount are released), or until the server fails.
    pub fn wait(self) -> Result<(), BuildError> {
        Ok(self.serving.wait()?)
    }
}

/// The service over one build service.
struct Handler {
    service: Arc<dyn BuildService>,
}

/// A build's message stream as handed to the transport. When the transport drops it
/// (the call ended, the client cancelled it or went away), the build is cancelled; after
/// the build's outcome was sent, that changes nothing.
pub(super) struct BuildStream {
    messages: ReceiverStream<Result<BuildResponse, Status>>,
    cancel: CancelToken,
}

impl Stream for BuildStream {
    type Item = Result<BuildResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.messages).poll_next(cx)
    }
}

impl Drop for BuildStream {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A panic's message, if it has one.
fn panic_message(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

#[tonic::async_trait]
impl proto::build_service_server::BuildService for Handler {
    async fn capabilities(
        &self,
        _req: Request<proto::CapabilitiesRequest>,
    ) -> Result<Response<proto::Capabilities>, Status> {
        let service = self.service.clone();
        let caps = tokio::task::spawn_blocking(move || service.capabilities())
            .await
            .map_err(|e| Status::internal(format!("the capabilities task failed: {e}")))?
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(capabilities_to_proto(&caps)))
    }

    type BuildStream = BuildStream;

    async fn build(
        &self,
        req: Request<proto::BuildRequest>,
    ) -> Result<Response<Self::BuildStream>, Status> {
        let request =
            request_from_proto(req.into_inner()).map_err(|e| Status::invalid_argument(e.0))?;
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let cancel = CancelToken::new();
        let token = cancel.clone();
        let service = self.service.clone();
        tokio::task::spawn_blocking(move || {
            // Sends fail only when the client is gone; the stream's drop has then
            // cancelled the build, which ends soon.
            let send = |kind: Kind| {
                let _ = tx.blocking_send(Ok(BuildResponse { kind: Some(kind) }));
            };
            let mut event = |e: BuildEvent| match e {
                // A message must stay far below the size limit: a huge line (a build
                // printing megabytes without a newline) travels as several.
                BuildEvent::Log(line) if line.len() > MAX_LOG_PIECE => {
                    for piece in line.chunks(MAX_LOG_PIECE) {
                        send(Kind::Log(piece.to_vec()));
                    }
                }
                e => send(event_to_proto(e)),
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                service.build(&request, &mut event, &token)
            }));
            let last = match outcome {
                Ok(Ok(result)) => Kind::Result(result_to_proto(&result)),
                Ok(Err(e)) => Kind::Failure(failure_to_proto(&e)),
                Err(p) => Kind::Failure(proto::BuildFailure {
                    kind: Some(proto::build_failure::Kind::Remote(format!(
                        "the build service panicked: {}",
                        panic_message(&*p)
                    ))),
                }),
            };
            send(last);
        });
        Ok(Response::new(BuildStream {
            messages: ReceiverStream::new(rx),
            cancel,
        }))
    }
}
