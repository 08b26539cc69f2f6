//! [`StoreService`]: everything a store offers, whatever it is backed by, and [`open`],
//! which turns a store URL into one.

use super::gc::{GcOptions, GcReport};
use super::store::{check_nar_hash, Store, VerifyReport};
use super::{BlobService, DirectoryService, StoreError};
use crate::pathinfo::PathInfoService;

/// A store: blobs, directories and path info behind one handle, usable from several
/// threads. [`open`] returns one for any store URL.
pub trait StoreService: BlobService + DirectoryService + PathInfoService + Send + Sync {
    /// The URL the store was opened with.
    fn url(&self) -> &str;

    /// How many chunks ranged reads have fetched from this store's own storage, for
    /// stores that read chunks themselves (`None` for clients of another process).
    fn range_chunk_reads(&self) -> Option<u64> {
        None
    }

    /// How many bytes of blob contents this client has received from another process
    /// (`None` for stores that read their own storage).
    fn blob_bytes_received(&self) -> Option<u64> {
        None
    }

    /// Requests made to the chunk storage so far, for stores whose chunks live in an
    /// object store (`None` otherwise).
    fn chunk_store_stats(&self) -> Option<super::ChunkStoreStats> {
        None
    }

    /// Re-hashes what the store holds and collects every problem found. The default
    /// re-renders the NAR of every registered path (reading, and so verifying, every blob
    /// and directory it needs) and compares it with the path info; stores that can see
    /// their own storage check more.
    fn verify(&self) -> Result<VerifyReport, StoreError> {
        verify_paths(self)
    }

    /// Keeps garbage collection away from what this process reads and writes until the
    /// store is dropped: evaluations and builds call it when they open the store, before
    /// they look at what is valid (and so rely on it staying valid). Writing does it
    /// anyway. Stores that are not collected by other processes do nothing.
    fn protect_from_gc(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Deletes every path no GC root reaches, and the data only they used; see
    /// [`super::gc`]. `on_wait` is called if the collection has to wait for other
    /// processes using the store. Only the local store can be collected (by a process on
    /// its machine); other stores say so.
    fn collect_garbage(
        &self,
        opts: &GcOptions,
        on_wait: &dyn Fn(),
    ) -> Result<GcReport, StoreError> {
        let _ = (opts, on_wait);
        Err(StoreError::Unsupported {
            url: self.url().to_string(),
            what: "garbage collection (only a local store can be collected, by `tvix store gc --store local:///DIR` on its machine)",
        })
    }
}

impl StoreService for Store {
    fn url(&self) -> &str {
        Store::url(self)
    }

    fn range_chunk_reads(&self) -> Option<u64> {
        Some(Store::range_chunk_reads(self))
    }

    fn chunk_store_stats(&self) -> Option<super::ChunkStoreStats> {
        Store::chunk_store_stats(self)
    }

    fn protect_from_gc(&self) -> Result<(), StoreError> {
        Store::protect_from_gc(self)
    }

    fn collect_garbage(
        &self,
        opts: &GcOptions,
        on_wait: &dyn Fn(),
    ) -> Result<GcReport, StoreError> {
        Store::collect_garbage(self, opts, on_wait)
    }

    fn verify(&self) -> Result<VerifyReport, StoreError> {
        Store::verify(self)
    }
}

/// Opens the store a URL names:
///
/// - `memory://`: a fresh in-memory store;
/// - `local://` (the default directory, see [`super::default_store_dir`]),
///   `local:///absolute/dir` or an absolute directory path: the embedded local store;
/// - `grpc+unix:///path/to/socket` and `grpc+http://HOST:PORT`: a client of
///   `tvix store daemon` (feature `grpc`).
pub fn open(url: &str) -> Result<Box<dyn StoreService>, StoreError> {
    if url.starts_with("grpc+") {
        #[cfg(feature = "grpc")]
        return Ok(Box::new(crate::grpc::GrpcStore::connect(url)?));
        #[cfg(not(feature = "grpc"))]
        return Err(StoreError::BadUrl {
            url: url.to_string(),
            reason: "this build has no gRPC support (feature `grpc`)",
        });
    }
    Ok(Box::new(Store::open(url)?))
}

/// Re-renders the NAR of every registered path (reading, and so verifying, every blob
/// and directory it needs) and compares it with the path info: what any store can check
/// through its services alone. The blobs and directories counted are those the paths
/// reach, each once; chunks are not seen (0).
pub fn verify_paths<S: StoreService + ?Sized>(store: &S) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport::default();
    let mut dirs = std::collections::HashSet::new();
    let mut blobs = std::collections::HashSet::new();
    for info in store.path_infos() {
        let info = info?;
        report.paths += 1;
        if let Err(e) = check_nar_hash(store, &info) {
            report
                .problems
                .push(format!("path {}: {e}", info.store_path.hash_part()));
        }
        // Count what the rendering read (it succeeded, or the problem is reported).
        let mut stack = vec![info.node.clone()];
        while let Some(node) = stack.pop() {
            match node {
                super::Node::File { digest, .. } => {
                    blobs.insert(digest);
                }
                super::Node::Symlink { .. } => {}
                super::Node::Directory { digest, .. } => {
                    if dirs.insert(digest) {
                        if let Ok(Some(dir)) = store.get_directory(&digest) {
                            stack.extend(dir.entries().map(|(_, n)| n.clone()));
                        }
                    }
                }
            }
        }
    }
    report.blobs = blobs.len() as u64;
    report.directories = dirs.len() as u64;
    Ok(report)
}
