//! The store protocol over gRPC (`proto/tvix_store.proto`): [`GrpcStore`], a client that
//! implements the store services by calling a daemon, and [`Server`], which serves any
//! [`crate::StoreService`] (what `tvix store daemon` runs).
//!
//! Client URLs: `grpc+unix:///path/to/socket` and `grpc+http://HOST:PORT`. Listen
//! addresses ([`ListenAddr`]): `unix:///path/to/socket` and `HOST:PORT`.
//!
//! The store's services are synchronous; the client owns a tokio runtime and blocks on it,
//! the server runs every store operation on tokio's blocking threads. Both sides validate
//! every message they receive (module `convert`), and digests are computed by whoever receives
//! the bytes: the server hashes uploaded blobs, the client re-hashes downloaded blobs and
//! directories.

mod client;
mod convert;
mod server;
pub mod transport;

use std::path::PathBuf;

pub use client::GrpcStore;
pub use convert::{node_from_proto, node_to_proto};
pub use server::Server;

use crate::castore::StoreError;

/// The generated protocol messages and service stubs (package `tvix.store.v1`).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("tvix.store.v1");
}

/// Largest blob piece a message may carry; larger pieces are rejected on receipt.
pub const MAX_BLOB_PIECE: usize = 1024 * 1024;

/// Size of the blob pieces this side sends.
const SEND_PIECE: usize = 256 * 1024;

/// Response metadata of BlobService.Read: the blob's size in decimal, so a download needs
/// no Stat call first.
const BLOB_SIZE_HEADER: &str = "tvix-blob-size";

/// Response metadata of a ranged blob read: `OFFSET+LENGTH`, the range sent.
const BLOB_RANGE_HEADER: &str = "tvix-blob-range";

/// HTTP/2 flow-control windows: the default 64 KiB per stream would stall every blob
/// transfer for a round trip each 64 KiB.
const STREAM_WINDOW: u32 = 8 << 20;
const CONNECTION_WINDOW: u32 = 32 << 20;

/// Largest encoded message accepted (a directory message grows with its entry count).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// A unix domain socket at this path.
    Unix(PathBuf),
    /// A TCP address, `HOST:PORT` (port 0 picks a free port).
    Tcp(String),
}

impl ListenAddr {
    /// Parses `unix:///absolute/path` or `HOST:PORT`.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        let bad = |reason| StoreError::BadUrl {
            url: s.to_string(),
            reason,
        };
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(bad("the socket path must be absolute (unix:///path)"));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(ListenAddr::Tcp(s.to_string()))
            }
            _ => Err(bad("expected unix:///path/to/socket or HOST:PORT")),
        }
    }
}

/// Fills `buf` from `r` as far as it goes; returns how much was read (less only at EOF).
fn read_full(r: &mut dyn std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The status a server answers with for a store error.
fn status_of(e: &StoreError) -> tonic::Status {
    use tonic::Code;
    let code = match e {
        StoreError::BlobNotFound(_)
        | StoreError::DirectoryNotFound(_)
        | StoreError::PathNotValid(_)
        | StoreError::NoSuchFile(_) => Code::NotFound,
        StoreError::InvalidName { .. }
        | StoreError::DuplicateName(_)
        | StoreError::UnsortedNames { .. }
        | StoreError::InvalidSymlinkTarget { .. }
        | StoreError::BadDigest(_)
        | StoreError::InvalidMessage { .. }
        | StoreError::StorePath(_)
        | StoreError::SizeMismatch { .. } => Code::InvalidArgument,
        StoreError::RangeOutOfBounds { .. } => Code::OutOfRange,
        StoreError::CorruptChunk { .. }
        | StoreError::MissingChunk(_)
        | StoreError::CorruptBlob { .. }
        | StoreError::CorruptDirectory { .. }
        | StoreError::NarHashMismatch { .. } => Code::DataLoss,
        _ => Code::Internal,
    };
    // The message travels in a header; keep it well under HTTP/2 header limits.
    let mut msg = e.to_string();
    if msg.len() > 1024 {
        let mut cut = 1024;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
        msg.push_str("...");
    }
    tonic::Status::new(code, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            ListenAddr::parse("unix:///run/tvix.sock").unwrap(),
            ListenAddr::Unix("/run/tvix.sock".into())
        );
        assert_eq!(
            ListenAddr::parse("127.0.0.1:0").unwrap(),
            ListenAddr::Tcp("127.0.0.1:0".into())
        );
        assert_eq!(
            ListenAddr::parse("[::1]:8000").unwrap(),
            ListenAddr::Tcp("[::1]:8000".into())
        );
        for bad in [
            "unix://rel.sock",
            "localhost",
            ":80",
            "host:port",
            "host:99999",
        ] {
            assert!(ListenAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_error_messages_are_cut() {
        let e = StoreError::NoSuchFile("x".repeat(10_000));
        let s = status_of(&e);
        assert_eq!(s.code(), tonic::Code::NotFound);
        assert!(s.message().len() < 1100);
        assert!(s.message().ends_with("..."));
    }
}
