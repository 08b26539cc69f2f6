//! [`GrpcBuildService`]: a build service implemented by calls to a builder daemon.

use std::future::Future;

use tokio::runtime::Runtime;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tvix_store::grpc::transport::{connect, runtime, Target};

use super::convert::{
    capabilities_from_proto, failure_from_proto, request_to_proto, result_from_proto,
};
use super::proto::build_response::Kind;
use super::proto::build_service_client::BuildServiceClient;
use super::proto::CapabilitiesRequest;
use super::{CANCEL_POLL, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT, MAX_MESSAGE};
use crate::{
    BuildError, BuildEvent, BuildRequest, BuildResult, BuildService, CancelToken, Capabilities,
    InvalidRequest,
};

/// A client of a builder daemon (`grpc+unix:///socket` or `grpc+http://HOST:PORT`). It
/// owns a small tokio runtime and blocks on it, so it is used from synchronous code (not
/// from inside an async task); builds may run from several threads at once.
///
/// The daemon reads the inputs from its store and ingests the outputs into it: the
/// caller's store must be the daemon's (see the module documentation). A
/// [`BuildEvent::Started`] naming `localhost` (the daemon's backend speaking of its own
/// machine) is reported with this service's URL instead.
pub struct GrpcBuildService {
    url: String,
    rt: Runtime,
    client: BuildServiceClient<Channel>,
}

impl GrpcBuildService {
    /// Connects to the daemon a `grpc+unix://` or `grpc+http://` URL names.
    pub fn connect(url: &str) -> Result<Self, BuildError> {
        let target = Target::parse(url).map_err(|reason| BuildError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        })?;
        let rt = runtime(1, "tvix-build-grpc")?;
        // Keepalive pings (also while a build is silent) find a daemon that vanished
        // without closing the connection: the call then fails instead of waiting forever.
        let tune = |ep: Endpoint| {
            ep.http2_keep_alive_interval(KEEPALIVE_INTERVAL)
                .keep_alive_timeout(KEEPALIVE_TIMEOUT)
                .keep_alive_while_idle(true)
        };
        let channel = connect(&rt, target, tune).map_err(|message| BuildError::Remote {
            url: url.to_string(),
            message,
        })?;
        Ok(GrpcBuildService {
            url: url.to_string(),
            client: BuildServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            rt,
        })
    }

    /// The URL this client was connected with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The error for a failed call: a request the daemon refused is
    /// [`BuildError::InvalidRequest`], anything else [`BuildError::Remote`].
    fn status_error(&self, s: Status) -> BuildError {
        if s.code() == Code::InvalidArgument {
            return BuildError::InvalidRequest(InvalidRequest(s.message().to_string()));
        }
        let message = if s.message().is_empty() {
            format!("{:?}", s.code())
        } else {
            s.message().to_string()
        };
        BuildError::Remote {
            url: self.url.clone(),
            message,
        }
    }

    /// The error for a failed build call. The daemon answers a build with a status only
    /// to refuse a bad request (`INVALID_ARGUMENT`); every other status comes from the
    /// transport (connection refused or reset, the daemon gone or stopping), so the
    /// machine is lost, not the build failed.
    fn build_status_error(&self, s: Status) -> BuildError {
        if s.code() == Code::InvalidArgument {
            return BuildError::InvalidRequest(InvalidRequest(s.message().to_string()));
        }
        BuildError::Lost {
            url: self.url.clone(),
            message: if s.message().is_empty() {
                format!("{:?}", s.code())
            } else {
                s.message().to_string()
            },
        }
    }

    fn bad_response(&self, what: impl std::fmt::Display) -> BuildError {
        BuildError::Remote {
            url: self.url.clone(),
            message: format!("invalid response: {what}"),
        }
    }
}

/// Runs `f` until it finishes (`Some`) or `cancel` is set (`None`, `f` dropped), looking
/// at the token every [`CANCEL_POLL`].
async fn until_cancelled<F: Future>(f: F, cancel: &CancelToken) -> Option<F::Output> {
    tokio::pin!(f);
    let mut tick = tokio::time::interval(CANCEL_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if cancel.is_cancelled() {
            return None;
        }
        tokio::select! {
            biased;
            out = &mut f => return Some(out),
            _ = tick.tick() => {}
        }
    }
}

impl BuildService for GrpcBuildService {
    fn capabilities(&self) -> Result<Capabilities, BuildError> {
        let mut client = self.client.clone();
        let reply = self
            .rt
            .block_on(client.capabilities(CapabilitiesRequest {}))
            .map_err(|s| self.status_error(s))?;
        capabilities_from_proto(reply.into_inner()).map_err(|e| self.bad_response(e))
    }

    fn build(
        &self,
        request: &BuildRequest,
        events: &mut dyn FnMut(BuildEvent),
        cancel: &CancelToken,
    ) -> Result<BuildResult, BuildError> {
        // The daemon checks too, but a malformed request need not travel.
        request.validate()?;
        let mut client = self.client.clone();
        let call = client.build(request_to_proto(request));
        let mut stream = match self.rt.block_on(until_cancelled(call, cancel)) {
            None => return Err(BuildError::Cancelled),
            Some(Err(s)) => return Err(self.build_status_error(s)),
            Some(Ok(r)) => r.into_inner(),
        };
        // Dropping `stream` (any return below) cancels the call, and with it the build.
        let outcome = loop {
            let msg = match self.rt.block_on(until_cancelled(stream.message(), cancel)) {
                None => return Err(BuildError::Cancelled),
                Some(Err(s)) => return Err(self.build_status_error(s)),
                Some(Ok(None)) => {
                    return Err(BuildError::Lost {
                        url: self.url.clone(),
                        message: "the build's stream ended without its outcome".into(),
                    })
                }
                Some(Ok(Some(m))) => m,
            };
            match msg.kind {
                None => return Err(self.bad_response("a message without a kind")),
                Some(Kind::Started(s)) => {
                    let machine = if s.machine == "localhost" {
                        self.url.clone()
                    } else {
                        s.machine
                    };
                    events(BuildEvent::Started { machine })
                }
                Some(Kind::Log(line)) => events(BuildEvent::Log(line)),
                Some(Kind::Phase(p)) => events(BuildEvent::Phase(p)),
                Some(Kind::KeptBuildDir(d)) => events(BuildEvent::KeptBuildDir(d)),
                Some(Kind::Result(r)) => {
                    break result_from_proto(r, request).map_err(|e| self.bad_response(e))
                }
                Some(Kind::Failure(f)) => break Err(failure_from_proto(f, &self.url)),
            }
        };
        // The outcome is the last message: the stream ends with it (read its end so the
        // call finishes cleanly; the build is over, so a cancel now changes nothing).
        match self.rt.block_on(until_cancelled(stream.message(), cancel)) {
            Some(Ok(Some(_))) => Err(self.bad_response("a message after the build's outcome")),
            _ => outcome,
        }
    }
}
