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

use std::path::PathBuf;
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

/// Where a client connects, parsed from a build service URL.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Unix(PathBuf),
    /// An `http://HOST:PORT` URI.
    Http(String),
}

impl Target {
    fn parse(url: &str) -> Result<Self, BuildError> {
        let bad = |reason: &str| BuildError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if let Some(path) = url.strip_prefix("grpc+unix://") {
            if !path.starts_with('/') {
                return Err(bad("the socket path must be absolute (grpc+unix:///path)"));
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = url.strip_prefix("grpc+http://") {
            let hostport = rest.strip_suffix('/').unwrap_or(rest);
            let has_port = hostport
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !has_port || hostport.contains('/') {
                return Err(bad("expected grpc+http://HOST:PORT"));
            }
            return Ok(Target::Http(format!("http://{hostport}")));
        }
        Err(bad(
            "gRPC build service URLs are grpc+unix:///path or grpc+http://HOST:PORT",
        ))
    }
}

/// Parses a listen address (`unix:///path` or `HOST:PORT`).
pub fn parse_listen_addr(s: &str) -> Result<ListenAddr, BuildError> {
    ListenAddr::parse(s).map_err(|e| BuildError::BadUrl {
        url: s.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_urls() {
        assert_eq!(
            Target::parse("grpc+unix:///run/tvix-builder.sock").unwrap(),
            Target::Unix("/run/tvix-builder.sock".into())
        );
        assert_eq!(
            Target::parse("grpc+http://builder1:9000/").unwrap(),
            Target::Http("http://builder1:9000".into())
        );
        assert_eq!(
            Target::parse("grpc+http://[::1]:9000").unwrap(),
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
            assert!(
                matches!(Target::parse(bad), Err(BuildError::BadUrl { .. })),
                "{bad}"
            );
        }
    }
}
