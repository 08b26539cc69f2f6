//! [`Store`]: the blob, directory and path info services over one backend chosen by URL.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::backend::{chunk_digests, table_keys, Backend, LocalBackend, MemoryBackend, Table};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::blob::{self, BlobReader, BlobService, ChunkIndex};
use super::directory::{Directory, DirectoryService, Node};
use super::gc::lock::GcLock;
use super::gc::{mark, GcOptions, GcReport, GcRoots};
use super::{B3Digest, StoreError};
use crate::nar::NarHasher;
use crate::pathinfo::{PathInfo, PathInfoService};
use crate::store_path::StorePath;

/// A castore plus path info service over one backend.
pub struct Store {
    backend: Box<dyn Backend>,
    url: String,
    /// Chunks fetched by ranged reads ([`BlobService::read_blob_range`]) so far.
    range_chunk_reads: AtomicU64,
    /// Chunk indexes of blobs read by range lately (a blob's chunks never change, so an
    /// index never goes stale); cleared when it holds [`INDEX_CACHE`] blobs.
    indexes: Mutex<HashMap<B3Digest, Arc<ChunkIndex>>>,
}

/// How many chunks `verify` fetches and checks at once.
const VERIFY_BATCH: usize = 256;

/// How many blobs' chunk indexes [`Store`] keeps for ranged reads.
const INDEX_CACHE: usize = 256;

/// The directory of the default local store: `$XDG_DATA_HOME/tvix/store`, else
/// `$HOME/.local/share/tvix/store`.
pub fn default_store_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("tvix/store"));
    }
    let home = std::env::var_os("HOME").filter(|x| !x.is_empty())?;
    Some(PathBuf::from(home).join(".local/share/tvix/store"))
}

/// The directory of the local store a URL names: `local://` (the default directory, see
/// [`default_store_dir`]), `local:///DIR` or `/DIR`; `None` for other URLs. The one place
/// that maps store URLs to directories: the store's data, its build logs and its GC roots
/// all live there.
pub fn local_store_dir(url: &str) -> Result<Option<PathBuf>, StoreError> {
    let bad = |reason| StoreError::BadUrl {
        url: url.to_string(),
        reason,
    };
    if let Some(rest) = url.strip_prefix("local://") {
        if rest.is_empty() {
            return default_store_dir()
                .map(Some)
                .ok_or_else(|| bad("no default location: HOME is not set"));
        }
        if rest.starts_with('/') {
            return Ok(Some(PathBuf::from(rest)));
        }
        return Err(bad("the directory must be absolute (local:///path)"));
    }
    Ok(url.starts_with('/').then(|| PathBuf::from(url)))
}

/// The store URL to use: `$TVIX_STORE` if set, else `local://` (the default directory).
pub fn default_store_url() -> String {
    match std::env::var("TVIX_STORE") {
        Ok(u) if !u.is_empty() => u,
        _ => "local://".to_string(),
    }
}

impl Store {
    /// A fresh in-memory store.
    pub fn memory() -> Self {
        Store::with_backend(Box::new(MemoryBackend::default()), "memory://".into())
    }

    /// The embedded local store in `dir` (created if needed).
    pub fn local(dir: &Path) -> Result<Self, StoreError> {
        Ok(Store::with_backend(
            Box::new(LocalBackend::open(dir)?),
            format!("local://{}", dir.display()),
        ))
    }

    /// A store composed of a chunk store and a metadata store (see
    /// [`super::composed`]): chunks at `chunks` (`s3://BUCKET/PREFIX?endpoint=...`,
    /// `gs://...`, `az://...`, `file:///DIR` or `local:///DIR`: pack objects in a
    /// directory), metadata at `metadata` (`postgresql://USER@HOST:PORT/DB` or
    /// `redb:///FILE`).
    #[cfg(feature = "cluster")]
    pub fn composed(chunks: &str, metadata: &str) -> Result<Self, StoreError> {
        use super::composed::{
            objects::ObjectChunks, postgres::PgMeta, redb_meta::RedbMeta, ComposedBackend,
            MetaStore,
        };
        let chunks_store = match chunks.strip_prefix("local://") {
            Some(dir) if dir.starts_with('/') => ObjectChunks::open(&format!("file://{dir}"))?,
            Some(_) => {
                return Err(StoreError::BadUrl {
                    url: chunks.to_string(),
                    reason: "the directory must be absolute (local:///path)",
                })
            }
            None => ObjectChunks::open(chunks)?,
        };
        let meta: Box<dyn MetaStore> =
            if metadata.starts_with("postgresql://") || metadata.starts_with("postgres://") {
                Box::new(PgMeta::open(metadata)?)
            } else if let Some(file) = metadata.strip_prefix("redb://") {
                if !file.starts_with('/') {
                    return Err(StoreError::BadUrl {
                        url: metadata.to_string(),
                        reason: "the file must be absolute (redb:///path/to/file)",
                    });
                }
                Box::new(RedbMeta::open(Path::new(file))?)
            } else {
                return Err(StoreError::BadUrl {
                    url: metadata.to_string(),
                    reason: "metadata stores are postgresql://USER@HOST:PORT/DB and redb:///FILE",
                });
            };
        Ok(Store::with_backend(
            Box::new(ComposedBackend::new(Box::new(chunks_store), meta)),
            format!("chunks={chunks} metadata={metadata}"),
        ))
    }

    /// Requests made to the chunk storage so far, for stores whose chunks live in an
    /// object store (see [`Store::composed`]).
    pub fn chunk_store_stats(&self) -> Option<super::ChunkStoreStats> {
        self.backend.chunk_stats()
    }

    fn with_backend(backend: Box<dyn Backend>, url: String) -> Self {
        Store {
            backend,
            url,
            range_chunk_reads: AtomicU64::new(0),
            indexes: Mutex::new(HashMap::new()),
        }
    }

    /// How many chunks ranged reads ([`BlobService::read_blob_range`]) have fetched from
    /// this store so far: a read fetches only the chunks covering its range.
    pub fn range_chunk_reads(&self) -> u64 {
        self.range_chunk_reads.load(Ordering::Relaxed)
    }

    /// The chunk index of a blob, from the cache or built from its manifest; `None` if the
    /// blob is not stored.
    fn chunk_index(&self, d: &B3Digest) -> Result<Option<Arc<ChunkIndex>>, StoreError> {
        if let Ok(cache) = self.indexes.lock() {
            if let Some(ix) = cache.get(d) {
                return Ok(Some(ix.clone()));
            }
        }
        let Some(m) = blob::manifest(&*self.backend, d)? else {
            return Ok(None);
        };
        let ix = Arc::new(ChunkIndex::new(m));
        if let Ok(mut cache) = self.indexes.lock() {
            if cache.len() >= INDEX_CACHE {
                cache.clear();
            }
            cache.insert(*d, ix.clone());
        }
        Ok(Some(ix))
    }

    /// Opens a store by URL: `memory://`, `local://` (the default directory, see
    /// [`default_store_dir`]), `local:///absolute/dir`, or an absolute directory path.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        if url == "memory://" || url == "memory:" {
            return Ok(Store::memory());
        }
        match local_store_dir(url)? {
            Some(dir) => Store::local(&dir),
            None => Err(StoreError::BadUrl {
                url: url.to_string(),
                reason: "known stores are memory://, local://[/DIR], grpc+unix:///SOCKET and grpc+http://HOST:PORT; `tvix store copy` also reads and writes Nix binary caches (file:///DIR) and the Nix store (nix:///nix/store)",
            }),
        }
    }

    /// The URL this store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// See [`super::StoreService::protect_from_gc`].
    pub fn protect_from_gc(&self) -> Result<(), StoreError> {
        self.backend.begin_write()
    }

    /// Collects garbage (see [`super::gc`]); only local stores can be collected.
    pub fn collect_garbage(
        &self,
        opts: &GcOptions,
        on_wait: &dyn Fn(),
    ) -> Result<GcReport, StoreError> {
        use std::collections::BTreeMap;
        let Some(local) = self.backend.as_local() else {
            return Err(StoreError::Unsupported {
                url: self.url.clone(),
                what: if self.url.starts_with("memory:") {
                    "garbage collection (it holds nothing once the process ends)"
                } else {
                    "garbage collection (only a local store can be collected)"
                },
            });
        };
        // This process must not wait for its own shared lock.
        local.end_writes()?;
        let _lock = GcLock::exclusive(&local.dir, on_wait)?;
        let found = GcRoots::in_store_dir(&local.dir).find(&opts.store_dir, opts.dry_run)?;
        let infos: BTreeMap<StorePath, PathInfo> = self
            .path_infos()
            .map(|i| i.map(|i| (i.store_path.clone(), i)))
            .collect::<Result<_, _>>()?;
        let live_paths = mark::live_paths(&infos, found.roots.keys().cloned());
        let live = mark::mark(&*self.backend, &infos, live_paths)?;
        let mut report = GcReport {
            deleted: infos
                .keys()
                .filter(|p| !live.paths.contains(*p))
                .cloned()
                .collect(),
            live_paths: live.paths.len(),
            dead_roots: found.dead.len(),
            ..GcReport::default()
        };
        let dead_keys: Vec<Vec<u8>> = report.deleted.iter().map(|p| p.digest().to_vec()).collect();
        local.sweep(&live, &dead_keys, opts.dry_run, &mut report)?;
        Ok(report)
    }

    /// For a local store, where chunk `d` is stored: its pack file, offset and length.
    pub fn chunk_location(&self, d: &B3Digest) -> Result<Option<(PathBuf, u64, u64)>, StoreError> {
        self.backend.chunk_location(d)
    }

    /// The chunks of a blob, in order: (digest, length).
    pub fn blob_chunks(&self, d: &B3Digest) -> Result<Option<Vec<(B3Digest, u64)>>, StoreError> {
        Ok(blob::manifest(&*self.backend, d)?.map(|m| m.chunks))
    }

    /// Checks that `node` is stored (with the right size).
    fn check_node(&self, node: &Node) -> Result<(), StoreError> {
        match node {
            Node::Symlink { .. } => Ok(()),
            Node::File { digest, size, .. } => {
                let actual = self
                    .blob_size(digest)?
                    .ok_or(StoreError::BlobNotFound(*digest))?;
                if actual != *size {
                    return Err(StoreError::SizeMismatch {
                        what: "blob",
                        digest: *digest,
                        expected: *size,
                        actual,
                    });
                }
                Ok(())
            }
            Node::Directory { digest, size } => {
                let dir = self
                    .get_directory(digest)?
                    .ok_or(StoreError::DirectoryNotFound(*digest))?;
                if dir.size() != *size {
                    return Err(StoreError::SizeMismatch {
                        what: "directory",
                        digest: *digest,
                        expected: *size,
                        actual: dir.size(),
                    });
                }
                Ok(())
            }
        }
    }

    /// Re-hashes everything in the store: chunks, blobs, directories, and the NAR of every
    /// registered path. Problems are collected, not fatal.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        // In batches: a store whose chunks are remote reads a batch's neighbours at once.
        let mut batch = Vec::with_capacity(VERIFY_BATCH);
        let mut digests = chunk_digests(&*self.backend).peekable();
        while let Some(d) = digests.next() {
            batch.push(d?);
            if batch.len() == VERIFY_BATCH || digests.peek().is_none() {
                report.chunks += batch.len() as u64;
                for res in blob::check_stored_chunks(&*self.backend, &batch)? {
                    if let Err(e) = res {
                        report.problems.push(e.to_string());
                    }
                }
                batch.clear();
            }
        }
        for key in table_keys(&*self.backend, Table::Blobs) {
            let key = key?;
            report.blobs += 1;
            let Ok(arr) = <[u8; 32]>::try_from(key.as_slice()) else {
                report
                    .problems
                    .push("blob table has a malformed key".into());
                continue;
            };
            let d = B3Digest(arr);
            let res = (|| -> Result<(), StoreError> {
                let mut r = self.open_blob(&d)?.ok_or(StoreError::BlobNotFound(d))?;
                // Chunks are checked as they are read; the manifest by the whole digest.
                let mut hasher = blake3::Hasher::new();
                io::copy(&mut r, &mut hasher).map_err(StoreError::from_io)?;
                let actual = B3Digest(*hasher.finalize().as_bytes());
                if actual != d {
                    return Err(StoreError::CorruptBlob {
                        expected: d,
                        actual,
                    });
                }
                Ok(())
            })();
            if let Err(e) = res {
                report.problems.push(format!("blob {d}: {e}"));
            }
        }
        for key in table_keys(&*self.backend, Table::Directories) {
            let key = key?;
            report.directories += 1;
            let Ok(arr) = <[u8; 32]>::try_from(key.as_slice()) else {
                report
                    .problems
                    .push("directory table has a malformed key".into());
                continue;
            };
            let d = B3Digest(arr);
            let res = (|| -> Result<(), StoreError> {
                let dir = self
                    .get_directory(&d)?
                    .ok_or(StoreError::DirectoryNotFound(d))?;
                for (_, node) in dir.entries() {
                    self.check_node(node)?;
                }
                Ok(())
            })();
            if let Err(e) = res {
                report.problems.push(format!("directory {d}: {e}"));
            }
        }
        for key in table_keys(&*self.backend, Table::PathInfos) {
            let key = key?;
            report.paths += 1;
            let res = (|| -> Result<(), StoreError> {
                let raw =
                    self.backend
                        .kv_get(Table::PathInfos, &key)?
                        .ok_or(StoreError::Decode {
                            what: "path info",
                            reason: "vanished",
                        })?;
                let info = PathInfo::decode(&raw)?;
                if info.store_path.digest().as_slice() != key.as_slice() {
                    return Err(StoreError::Decode {
                        what: "path info",
                        reason: "stored under the wrong key",
                    });
                }
                check_nar_hash(self, &info)
            })();
            if let Err(e) = res {
                let name =
                    StorePath::new(<[u8; 20]>::try_from(key.as_slice()).unwrap_or([0; 20]), "x")
                        .map(|p| p.hash_part())
                        .unwrap_or_default();
                report.problems.push(format!("path {name}: {e}"));
            }
        }
        Ok(report)
    }
}

/// Renders the NAR of a registered path (reading every blob and directory it needs, which
/// the services verify) and checks it against the NAR hash and size of its path info.
pub fn check_nar_hash<S>(store: &S, info: &PathInfo) -> Result<(), StoreError>
where
    S: BlobService + DirectoryService + ?Sized,
{
    let hasher = super::nar::write_nar(store, &info.node, NarHasher::new())?;
    let (hash, size) = hasher.finish();
    if hash.digest() != info.nar_sha256 || size != info.nar_size {
        return Err(StoreError::NarHashMismatch {
            path: info.store_path.to_base_name(),
            expected: info.nar_hash_string(),
            expected_size: info.nar_size,
            actual: hash.to_prefixed(crate::hash::HashEncoding::Nix32),
            actual_size: size,
        });
    }
    Ok(())
}

/// What a store's `verify` checked and found.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// Chunks re-hashed.
    pub chunks: u64,
    /// Blobs re-read.
    pub blobs: u64,
    /// Directories checked.
    pub directories: u64,
    /// Store paths whose NAR was re-rendered and re-hashed.
    pub paths: u64,
    /// Every problem found, one message each.
    pub problems: Vec<String>,
}

impl BlobService for Store {
    fn put_blob(&self, r: &mut dyn Read) -> Result<(B3Digest, u64), StoreError> {
        self.backend.begin_write()?;
        blob::put_blob(&*self.backend, r)
    }

    fn put_blob_bytes(&self, data: &[u8]) -> Result<(B3Digest, u64), StoreError> {
        self.backend.begin_write()?;
        blob::put_blob_bytes(&*self.backend, data)
    }

    fn has_blob(&self, digest: &B3Digest) -> Result<bool, StoreError> {
        Ok(self.backend.kv_get(Table::Blobs, &digest.0)?.is_some())
    }

    fn blob_size(&self, digest: &B3Digest) -> Result<Option<u64>, StoreError> {
        Ok(blob::manifest(&*self.backend, digest)?.map(|m| m.size))
    }

    fn read_blobs(
        &self,
        digests: &[B3Digest],
        sizes: &[u64],
    ) -> Result<Vec<Vec<bytes::Bytes>>, StoreError> {
        blob::read_blobs(&*self.backend, digests, sizes)
    }

    fn read_blob_range(
        &self,
        digest: &B3Digest,
        offset: u64,
        len: u64,
    ) -> Result<Option<bytes::Bytes>, StoreError> {
        let Some(ix) = self.chunk_index(digest)? else {
            return Ok(None);
        };
        blob::read_range(
            &*self.backend,
            digest,
            &ix,
            offset,
            len,
            &self.range_chunk_reads,
        )
        .map(Some)
    }

    fn open_blob(&self, digest: &B3Digest) -> Result<Option<BlobReader<'_>>, StoreError> {
        Ok(blob::manifest(&*self.backend, digest)?.map(|m| {
            let size = m.size;
            let chunks = blob::ChunkReader::new(&*self.backend, m);
            BlobReader::new(size, Box::new(chunks))
        }))
    }
}

impl DirectoryService for Store {
    fn put_directory(&self, dir: &Directory) -> Result<B3Digest, StoreError> {
        // Before the checks: what they find must stay until the directory is stored.
        self.backend.begin_write()?;
        for (_, node) in dir.entries() {
            self.check_node(node)?;
        }
        let enc = dir.encode();
        let digest = B3Digest::of(&enc);
        if self
            .backend
            .kv_get(Table::Directories, &digest.0)?
            .is_none()
        {
            self.backend.kv_put(Table::Directories, &digest.0, &enc)?;
        }
        Ok(digest)
    }

    fn get_directory(&self, digest: &B3Digest) -> Result<Option<Directory>, StoreError> {
        let Some(enc) = self.backend.kv_get(Table::Directories, &digest.0)? else {
            return Ok(None);
        };
        let actual = B3Digest::of(&enc);
        if actual != *digest {
            return Err(StoreError::CorruptDirectory {
                expected: *digest,
                actual,
            });
        }
        Ok(Some(Directory::decode(&enc)?))
    }
}

impl PathInfoService for Store {
    fn put_path_info(&self, info: &PathInfo) -> Result<(), StoreError> {
        self.backend.begin_write()?;
        self.check_node(&info.node)?;
        self.backend
            .kv_put(Table::PathInfos, info.store_path.digest(), &info.encode())
    }

    fn put_path_info_batched(&self, info: &PathInfo) -> Result<(), StoreError> {
        self.backend.begin_write()?;
        self.check_node(&info.node)?;
        self.backend
            .kv_put_batched(Table::PathInfos, info.store_path.digest(), &info.encode())
    }

    fn commit(&self) -> Result<(), StoreError> {
        self.backend.commit()
    }

    fn get_path_info(&self, path: &StorePath) -> Result<Option<PathInfo>, StoreError> {
        let Some(raw) = self.backend.kv_get(Table::PathInfos, path.digest())? else {
            return Ok(None);
        };
        let info = PathInfo::decode(&raw)?;
        if info.store_path != *path {
            return Ok(None);
        }
        Ok(Some(info))
    }

    fn get_path_info_by_digest(
        &self,
        digest: &[u8; crate::store_path::DIGEST_LEN],
    ) -> Result<Option<PathInfo>, StoreError> {
        match self.backend.kv_get(Table::PathInfos, digest)? {
            Some(raw) => Ok(Some(PathInfo::decode(&raw)?)),
            None => Ok(None),
        }
    }

    fn list_path_infos_page(
        &self,
        after: Option<&[u8; crate::store_path::DIGEST_LEN]>,
        limit: usize,
    ) -> Result<Vec<PathInfo>, StoreError> {
        let keys = self
            .backend
            .kv_keys_page(Table::PathInfos, after.map(|d| &d[..]), limit)?;
        let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
        // A key removed between the two reads (by garbage collection) is left out.
        self.backend
            .kv_get_many(Table::PathInfos, &keys)?
            .into_iter()
            .flatten()
            .map(|raw| PathInfo::decode(&raw))
            .collect()
    }
}
