//! The content-addressed store ("castore"), in the style of git trees.
//!
//! - **Blobs** are file contents, addressed by their BLAKE3 digest and stored in
//!   content-defined chunks (FastCDC), so files that share runs of bytes share chunks. Every
//!   chunk is addressed by its own BLAKE3 digest and checked when read back (against the
//!   checksum the local store took when writing it, if it has one: [`chunk_sum`]; else
//!   against its digest): a corrupted chunk is reported as [`StoreError::CorruptChunk`],
//!   never returned. [`Store::verify`] checks every chunk against its digest.
//! - **Directories** are Merkle nodes: a sorted list of named entries, each a file (blob
//!   digest, size, executable bit), a symlink (target) or a subdirectory (its directory
//!   digest and size). A directory's digest is the BLAKE3 of its canonical encoding
//!   ([`Directory::encode`]).
//! - **Path info** ([`crate::pathinfo::PathInfo`]) maps a Nix store path to its root node
//!   and the Nix metadata (NAR hash and size, references, deriver, signatures, CA).
//!
//! Each service is a trait ([`BlobService`], [`DirectoryService`],
//! [`crate::pathinfo::PathInfoService`]), and [`StoreService`] is all three together.
//! [`open`] turns a store URL into a [`StoreService`]: [`Store`] implements it over a
//! backend chosen by URL ([`Store::open`]): `memory://` or the embedded local store
//! `local:///path/to/dir` (a `redb` database for metadata plus chunk files); with the
//! `grpc` feature, `grpc+unix://` and `grpc+http://` URLs give a client of
//! `tvix store daemon` ([`crate::grpc`]).
//!
//! [`copy`] copies paths between stores.
//!
//! [`nar`] renders NARs from the castore and ingests NARs and file system paths into it.

pub mod add;
pub(crate) mod backend;
pub(crate) mod blob;
#[cfg(feature = "cache")]
pub mod cache_dir;
pub(crate) mod chunk_sum;
#[cfg(feature = "cluster")]
pub(crate) mod composed;
pub mod copy;
pub(crate) mod directory;
pub mod export;
pub mod gc;
pub mod nar;
mod pack_writer;
mod service;
mod store;
pub(crate) mod wire;

use std::fmt;
use std::io;

use thiserror::Error;

pub use backend::ChunkStoreStats;
pub use blob::{clip_range, BlobReader, BlobService, CHUNK_AVG, CHUNK_MAX, CHUNK_MIN};
pub use directory::{validate_name, validate_symlink_target, Directory, DirectoryService, Node};
pub use service::{open, verify_paths, StoreService};
pub use store::{
    check_nar_hash, default_store_dir, default_store_url, local_store_dir, Store, VerifyReport,
};

/// Length of a BLAKE3 digest in bytes.
pub const B3_LEN: usize = 32;

/// A BLAKE3 digest, the address of blobs, chunks and directories. Displayed as
/// `b3:` followed by lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct B3Digest(pub [u8; B3_LEN]);

impl B3Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        B3Digest(*blake3::hash(data).as_bytes())
    }

    /// The digest as lowercase hex (no prefix).
    pub fn to_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }

    /// Parses a digest from `b3:<hex>` or bare hex.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        let hex = s.strip_prefix("b3:").unwrap_or(s);
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(hex.as_bytes())
            .map_err(|_| StoreError::BadDigest(s.to_string()))?;
        let arr: [u8; B3_LEN] = bytes
            .try_into()
            .map_err(|_| StoreError::BadDigest(s.to_string()))?;
        Ok(B3Digest(arr))
    }
}

impl fmt::Display for B3Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b3:{}", self.to_hex())
    }
}

impl fmt::Debug for B3Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Errors of the castore, its backends and the path info service.
#[derive(Debug, Error)]
pub enum StoreError {
    /// An I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// An I/O error on a particular file.
    #[error("cannot access '{path}': {source}")]
    Path {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A storage backend (a database, an object store) failed. Which one is named; its
    /// own error type stays behind this variant, so callers never depend on it.
    #[error("{backend} error: {source}")]
    Backend {
        /// The backend: `redb`, `PostgreSQL`, `object store`.
        backend: &'static str,
        /// What it reported.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A directory entry name is not allowed.
    #[error("invalid name '{name}': {reason}")]
    InvalidName {
        /// The name (lossily decoded).
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A directory has two entries with the same name.
    #[error("duplicate directory entry '{0}'")]
    DuplicateName(String),
    /// Directory entries are not sorted by name.
    #[error("directory entry '{name}' is not sorted after '{prev}'")]
    UnsortedNames {
        /// The previous name.
        prev: String,
        /// The offending name.
        name: String,
    },
    /// A symlink target is not allowed.
    #[error("invalid symlink target '{target}': {reason}")]
    InvalidSymlinkTarget {
        /// The target (lossily decoded).
        target: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Stored or received bytes are not a valid encoding.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A string is not a BLAKE3 digest.
    #[error("'{0}' is not a BLAKE3 digest")]
    BadDigest(String),
    /// A chunk's contents do not match its digest (or its recorded length).
    #[error("chunk {expected} is corrupt (its contents hash to {actual})")]
    CorruptChunk {
        /// The chunk's address.
        expected: B3Digest,
        /// The digest of what was read.
        actual: B3Digest,
    },
    /// A chunk a blob needs is missing.
    #[error("chunk {0} is missing")]
    MissingChunk(B3Digest),
    /// A blob's chunks do not add up to its digest or size.
    #[error("blob {expected} is corrupt (its chunks hash to {actual})")]
    CorruptBlob {
        /// The blob's address.
        expected: B3Digest,
        /// The digest of its chunks' concatenation.
        actual: B3Digest,
    },
    /// A ranged read starts beyond the end of the blob.
    #[error("cannot read blob {digest} at offset {offset}: it has {size} bytes")]
    RangeOutOfBounds {
        /// The blob.
        digest: B3Digest,
        /// The offset asked for.
        offset: u64,
        /// The blob's size.
        size: u64,
    },
    /// A blob is not in the store.
    #[error("blob {0} not found")]
    BlobNotFound(B3Digest),
    /// A directory's encoding does not hash to its address.
    #[error("directory {expected} is corrupt (its encoding hashes to {actual})")]
    CorruptDirectory {
        /// The directory's address.
        expected: B3Digest,
        /// The digest of the stored encoding.
        actual: B3Digest,
    },
    /// A directory is not in the store.
    #[error("directory {0} not found")]
    DirectoryNotFound(B3Digest),
    /// A node's recorded size disagrees with the object it points to.
    #[error("{what} {digest} has size {actual}, but the node says {expected}")]
    SizeMismatch {
        /// `blob` or `directory`.
        what: &'static str,
        /// The object.
        digest: B3Digest,
        /// The size in the node.
        expected: u64,
        /// The object's size.
        actual: u64,
    },
    /// A store path is not registered.
    #[error("path '{0}' is not valid")]
    PathNotValid(String),
    /// A path inside a store path does not exist.
    #[error("'{0}' does not exist")]
    NoSuchFile(String),
    /// A path inside a store path goes through something that is not a directory.
    #[error("'{0}' is not a directory")]
    NotADirectory(String),
    /// A NAR could not be read, parsed or written.
    #[error(transparent)]
    Nar(#[from] crate::nar::NarError),
    /// A store path is invalid.
    #[error(transparent)]
    StorePath(#[from] crate::store_path::StorePathError),
    /// A store URL is not understood.
    #[error("unsupported store URL '{url}': {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A message received from another store process is invalid.
    #[error("invalid {what} received: {reason}")]
    InvalidMessage {
        /// What was received.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A store server could not be reached or failed.
    #[error("store server {url}: {message}")]
    Remote {
        /// The server's URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The store cannot do this.
    #[error("the store '{url}' does not support {what}")]
    Unsupported {
        /// The store's URL.
        url: String,
        /// What it cannot do.
        what: &'static str,
    },
    /// The NAR hash of a path does not match its path info.
    #[error("path '{path}' has NAR hash {actual} (size {actual_size}), but its path info says {expected} (size {expected_size})")]
    NarHashMismatch {
        /// The store path.
        path: String,
        /// The registered hash.
        expected: String,
        /// The registered size.
        expected_size: u64,
        /// The hash of the rendered NAR.
        actual: String,
        /// The size of the rendered NAR.
        actual_size: u64,
    },
}

impl StoreError {
    /// Wraps this error into an [`io::Error`] (to pass it through [`io::Read`] or a NAR
    /// visitor); [`StoreError::from_io`] unwraps it again.
    pub fn into_io(self) -> io::Error {
        match self {
            StoreError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }

    /// Recovers a [`StoreError`] wrapped by [`StoreError::into_io`]; other I/O errors become
    /// [`StoreError::Io`].
    pub fn from_io(e: io::Error) -> Self {
        if !e.get_ref().is_some_and(|i| i.is::<StoreError>()) {
            return StoreError::Io(e);
        }
        let kind = e.kind();
        match e.into_inner().map(|i| i.downcast::<StoreError>()) {
            Some(Ok(se)) => *se,
            Some(Err(other)) => StoreError::Io(io::Error::new(kind, other)),
            None => StoreError::Io(kind.into()),
        }
    }

    /// Recovers a [`StoreError`] from a NAR error whose visitor failed with a wrapped one.
    pub fn from_nar(e: crate::nar::NarError) -> Self {
        match e {
            crate::nar::NarError::Visitor(io) | crate::nar::NarError::Io(io)
                if io.get_ref().is_some_and(|i| i.is::<StoreError>()) =>
            {
                StoreError::from_io(io)
            }
            other => StoreError::Nar(other),
        }
    }
}

/// Converts any `redb` error into a [`StoreError`].
pub(crate) fn db_err<E: Into<redb::Error>>(e: E) -> StoreError {
    backend_err("redb", e.into())
}

/// Wraps a backend's own error into [`StoreError::Backend`].
pub(crate) fn backend_err<E>(backend: &'static str, e: E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StoreError::Backend {
        backend,
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests;
