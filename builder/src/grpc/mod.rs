//! The builder protocol over gRPC (`proto/tvix_build.proto`): [`GrpcBuildService`], a
//! [`crate::BuildService`] that runs builds on a `tvix builder daemon`, and [`Server`],
//! which serves any [`crate::BuildService`] (what the daemon runs).
//!
//! Client URLs: `grpc+unix:///path/to/socket` and `grpc+http://HOST:PORT`. Listen
//! addresses ([`ListenAddr`], the store daemon's): `unix:///path/to/socket` and
//! `HOST:PORT`.
//!
//! Only castore digests cross the protocol: the build's inputs must be in the daemon's
//! store, and its outputs are ingested there. Client and daemon therefore share a store,
//! e.g. both talk to the same `tvix store daemon`.
//!
//! A build is one server-streaming call: its events, then exactly one result or typed
//! failure. The client checks its [`crate::CancelToken`] at least every
//! [`CANCEL_POLL`] and drops the call when it is set; a dropped call (client gone,
//! connection lost) cancels the build's token on the server. Both sides validate every
//! message they receive (module `convert`).

mod client;
mod convert;
mod server;

use std::time::Duration;

pub use client::GrpcBuildService;
pub use server::{Server, MAX_LOG_PIECE};
pub use tvix_store::grpc::ListenAddr;

use crate::BuildError;

/// The generated protocol messages and service stubs (package `tvix.build.v1`).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("tvix.build.v1");
}

/// How often a waiting client looks at its cancel token.
pub const CANCEL_POLL: Duration = Duration::from_millis(50);

/// How often each side pings the other over HTTP/2, and how long it waits for the answer
/// before it considers the connection dead.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Largest encoded message accepted (a request grows with its closure, a log line with
/// the build's output).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Parses a listen address (`unix:///path` or `HOST:PORT`).
pub fn parse_listen_addr(s: &str) -> Result<ListenAddr, BuildError> {
    ListenAddr::parse(s).map_err(|e| BuildError::BadUrl {
        url: s.to_string(),
        reason: e.to_string(),
    })
}
