//! A Nix binary cache (`file://` directory or `http(s)://` server, as `nix copy --to`
//! writes them) as a [`Substituter`].
//!
//! Invariant: nothing is registered before it is verified. A narinfo is used only if it
//! describes the path asked for, parses within [`MAX_NARINFO`] bytes, has a content
//! address that gives its path (if any), and is signed by a trusted key (unless
//! `require-sigs` is off or the path is content-addressed). A NAR is streamed through its
//! decompressor into the castore, hashed on the way; its hash and size must be the
//! narinfo's before its path is registered, and a path is registered only after
//! everything it refers to.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;
use tvix_build::CancelToken;
use tvix_store::cache_info::{CacheInfo, CacheInfoError};
use tvix_store::castore::nar::ingest_nar;
use tvix_store::castore::StoreError;
use tvix_store::compression::{Compression, SizeLimit, UnknownCompression};
use tvix_store::hash::{CheckingReader, HashEncoding};
use tvix_store::narinfo::{ContentAddressError, NarInfo, NarInfoError};
use tvix_store::pathinfo::PathInfo;
use tvix_store::signing::{verified_by_any, PublicKey};
use tvix_store::{StoreDir, StorePath, StoreService};

use super::transport::{Timeouts, Transport, TransportError};
use super::{order_references_first, CopyProgress, SubstituteError, Substituter};

/// Largest narinfo (and `nix-cache-info`) read; a larger one is refused.
pub const MAX_NARINFO: u64 = 1 << 20;

/// Narinfo lookups running at once for one substitution or query.
const PARALLEL_LOOKUPS: usize = 16;

/// The settings of binary caches, as Nix names them.
#[derive(Clone, Debug)]
pub struct CacheSettings {
    /// `trusted-public-keys` (and `extra-trusted-public-keys`).
    pub trusted_keys: Vec<PublicKey>,
    /// `require-sigs`: refuse input-addressed paths no trusted key signed.
    pub require_sigs: bool,
    /// `narinfo-cache-positive-ttl`: how long a narinfo found is remembered.
    pub positive_ttl: Duration,
    /// `narinfo-cache-negative-ttl`: how long a missing narinfo is remembered.
    pub negative_ttl: Duration,
    /// `connect-timeout` and `stalled-download-timeout`.
    pub timeouts: Timeouts,
    /// The store directory of the store substituted into.
    pub store_dir: StoreDir,
}

/// Why a cache could not provide a path.
#[derive(Debug, Error)]
pub enum CacheError {
    /// A file could not be read.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// `nix-cache-info` is missing.
    #[error("'{0}' is not a binary cache: it has no nix-cache-info")]
    NotACache(String),
    /// `nix-cache-info` is invalid.
    #[error("invalid nix-cache-info of '{url}': {source}")]
    CacheInfo {
        /// The cache.
        url: String,
        /// Why.
        source: CacheInfoError,
    },
    /// The cache is for another store directory.
    #[error("binary cache '{url}' is for Nix stores with prefix '{theirs}', not '{ours}'")]
    StoreDir {
        /// The cache.
        url: String,
        /// Its store directory.
        theirs: String,
        /// Ours.
        ours: String,
    },
    /// A narinfo is not valid.
    #[error("invalid narinfo '{url}': {source}")]
    NarInfo {
        /// The narinfo's URL.
        url: String,
        /// Why.
        source: NarInfoError,
    },
    /// A narinfo describes another path than the one asked for.
    #[error("the narinfo '{url}' is for '{found}', not '{wanted}'")]
    WrongPath {
        /// The narinfo's URL.
        url: String,
        /// The path it describes.
        found: String,
        /// The path asked for.
        wanted: String,
    },
    /// Not signed by a trusted key.
    #[error(
        "the substitute for '{path}' from '{cache}' is not signed by any of the keys in \
         'trusted-public-keys'"
    )]
    Unsigned {
        /// The path.
        path: String,
        /// The cache.
        cache: String,
    },
    /// A content address that does not give its path.
    #[error(transparent)]
    ContentAddress(#[from] ContentAddressError),
    /// The NAR file's compression is unknown.
    #[error("the NAR of '{path}': {source}")]
    Compression {
        /// The path.
        path: String,
        /// Why.
        source: UnknownCompression,
    },
    /// The NAR file is missing from the cache.
    #[error("the NAR '{0}' is missing from the cache")]
    MissingNar(String),
    /// The NAR could not be read, decompressed or parsed.
    #[error("the NAR '{url}' of '{path}' is corrupt: {source}")]
    CorruptNar {
        /// The NAR file's URL.
        url: String,
        /// The path.
        path: String,
        /// Why.
        source: Box<StoreError>,
    },
    /// The NAR is not the one the narinfo describes.
    #[error(
        "the NAR of '{path}' from '{cache}' does not match its narinfo: expected {expected} \
         ({expected_size} bytes), got {actual} ({actual_size} bytes)"
    )]
    NarMismatch {
        /// The path.
        path: String,
        /// The cache.
        cache: String,
        /// The narinfo's NAR hash.
        expected: String,
        /// The narinfo's NAR size.
        expected_size: u64,
        /// The hash of what was read.
        actual: String,
        /// The size of what was read.
        actual_size: u64,
    },
    /// The compressed NAR file is not the one the narinfo describes (`FileHash`,
    /// `FileSize`).
    #[error(
        "the NAR file '{url}' does not match its narinfo's FileHash/FileSize: expected \
         {expected} ({expected_size}), got {actual} ({actual_size} bytes)"
    )]
    FileMismatch {
        /// The NAR file's URL.
        url: String,
        /// The narinfo's FileHash.
        expected: String,
        /// The narinfo's FileSize.
        expected_size: String,
        /// The hash of what was read.
        actual: String,
        /// The size of what was read.
        actual_size: u64,
    },
    /// The target store failed.
    #[error(transparent)]
    Store(Box<StoreError>),
}

impl From<StoreError> for CacheError {
    fn from(e: StoreError) -> CacheError {
        CacheError::Store(Box::new(e))
    }
}

/// A remembered narinfo lookup: when, and what was found.
type Remembered = (Instant, Option<Arc<NarInfo>>);

/// A Nix binary cache as a substituter.
pub struct BinaryCache {
    url: String,
    transport: Transport,
    /// The cache's `nix-cache-info`, or why it could not be used.
    info: Result<CacheInfo, String>,
    /// A `?priority=N` of the URL, which wins over the cache's own.
    priority_override: Option<u64>,
    settings: Arc<CacheSettings>,
    narinfos: Mutex<HashMap<StorePath, Remembered>>,
    warnings: Mutex<Vec<String>>,
    /// Whether a broken `nix-cache-info` was reported already.
    reported: Mutex<bool>,
}

impl BinaryCache {
    /// Whether `url` names a binary cache (`file://`, `http://`, `https://`).
    pub fn handles(url: &str) -> bool {
        ["file://", "http://", "https://"]
            .iter()
            .any(|s| url.starts_with(s))
    }

    /// Opens the cache at `url` and reads its `nix-cache-info`. A cache that cannot be
    /// read is still returned: it has nothing, and says why in a warning when first
    /// asked (Nix passes over an unreachable cache in the same way).
    pub fn open(url: &str, settings: Arc<CacheSettings>) -> Option<BinaryCache> {
        let transport = Transport::for_url(url, settings.timeouts)?;
        let priority_override = url
            .split_once('?')
            .into_iter()
            .flat_map(|(_, q)| q.split('&'))
            .find_map(|kv| kv.strip_prefix("priority=")?.parse().ok());
        let info = read_cache_info(&transport, url, &settings.store_dir)
            .map_err(|e| format!("disabling the binary cache '{url}': {e}"));
        Some(BinaryCache {
            url: url.to_string(),
            transport,
            info,
            priority_override,
            settings,
            narinfos: Mutex::new(HashMap::new()),
            warnings: Mutex::new(Vec::new()),
            reported: Mutex::new(false),
        })
    }

    /// Lower is asked first (the URL's `?priority=`, else the cache's `Priority`).
    pub fn priority(&self) -> u64 {
        self.priority_override.unwrap_or(match &self.info {
            Ok(i) => i.priority,
            Err(_) => u64::MAX,
        })
    }

    fn warn(&self, message: String) {
        if let Ok(mut w) = self.warnings.lock() {
            w.push(message);
        }
    }

    /// Whether the cache can be used; the first time it cannot, a warning says why.
    fn usable(&self) -> bool {
        match &self.info {
            Ok(_) => true,
            Err(why) => {
                if let Ok(mut reported) = self.reported.lock() {
                    if !*reported {
                        *reported = true;
                        self.warn(why.clone());
                    }
                }
                false
            }
        }
    }

    /// The verified narinfo of `path`, or `None` if the cache does not have it (or has
    /// one that is refused: the warning says why). Lookups are remembered for the TTLs.
    pub fn narinfo(&self, path: &StorePath) -> Result<Option<Arc<NarInfo>>, CacheError> {
        if let Some((at, found)) = self.narinfos.lock().ok().and_then(|m| m.get(path).cloned()) {
            let ttl = match found {
                Some(_) => self.settings.positive_ttl,
                None => self.settings.negative_ttl,
            };
            if at.elapsed() < ttl {
                return Ok(found);
            }
        }
        let found = match self.lookup(path) {
            Ok(found) => found.map(Arc::new),
            Err(e @ CacheError::Transport(_)) => return Err(e),
            Err(refused) => {
                self.warn(refused.to_string());
                None
            }
        };
        if let Ok(mut m) = self.narinfos.lock() {
            m.insert(path.clone(), (Instant::now(), found.clone()));
        }
        Ok(found)
    }

    /// Reads and checks the narinfo of `path`.
    fn lookup(&self, path: &StorePath) -> Result<Option<NarInfo>, CacheError> {
        let rel = format!("{}.narinfo", path.hash_part());
        let Some(bytes) = self.transport.read_small(&rel, MAX_NARINFO)? else {
            return Ok(None);
        };
        let url = self.transport.url_of(&rel);
        let dir = &self.settings.store_dir;
        let text = String::from_utf8(bytes).map_err(|_| CacheError::NarInfo {
            url: url.clone(),
            source: NarInfoError::MalformedLine("(not UTF-8)".into()),
        })?;
        let info = NarInfo::parse(&text, dir).map_err(|source| CacheError::NarInfo {
            url: url.clone(),
            source,
        })?;
        if info.store_path != *path {
            return Err(CacheError::WrongPath {
                url,
                found: dir.display(&info.store_path),
                wanted: dir.display(path),
            });
        }
        info.check_content_address(dir)?;
        let trusted = !self.settings.require_sigs
            || info.ca.is_some()
            || verified_by_any(
                &info.fingerprint(dir),
                &info.signatures,
                &self.settings.trusted_keys,
            );
        if !trusted {
            return Err(CacheError::Unsigned {
                path: dir.display(path),
                cache: self.url.clone(),
            });
        }
        Ok(Some(info))
    }

    /// The narinfos of `paths`, looked up in parallel.
    fn narinfos(&self, paths: &[StorePath]) -> Result<Vec<Option<Arc<NarInfo>>>, CacheError> {
        let mut out = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(PARALLEL_LOOKUPS) {
            let results: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|p| s.spawn(move || self.narinfo(p)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Ok(None)))
                    .collect()
            });
            for r in results {
                out.push(r?);
            }
        }
        Ok(out)
    }

    /// Streams the NAR of `info` into `store`'s castore and returns the path's info,
    /// not registered, after checking the NAR's hash and size against the narinfo.
    pub fn fetch_nar(
        &self,
        info: &NarInfo,
        store: &dyn StoreService,
    ) -> Result<PathInfo, CacheError> {
        self.fetch_nar_reporting(info, store, &mut |_| {})
    }

    /// [`BinaryCache::fetch_nar`], telling `transferred` the bytes read from the cache
    /// so far (at most every [`PROGRESS_STEP`] bytes, and at the end).
    pub fn fetch_nar_reporting(
        &self,
        info: &NarInfo,
        store: &dyn StoreService,
        transferred: &mut (dyn FnMut(u64) + Send),
    ) -> Result<PathInfo, CacheError> {
        let dir = &self.settings.store_dir;
        let shown = dir.display(&info.store_path);
        let compression =
            Compression::parse(&info.compression).map_err(|source| CacheError::Compression {
                path: shown.clone(),
                source,
            })?;
        let url = self.transport.url_of(&info.url);
        let corrupt = |source: StoreError| CacheError::CorruptNar {
            url: url.clone(),
            path: shown.clone(),
            source: Box::new(source),
        };
        let file = self
            .transport
            .open(&info.url)?
            .ok_or_else(|| CacheError::MissingNar(url.clone()))?;
        // The compressed file is counted (and hashed, if the narinfo has a FileHash) on
        // its way to the decompressor, and checked once the NAR is read; the bytes read
        // are reported as they pass.
        let mut raw = CheckingReader::new(file, info.file_hash.as_ref().map(|h| h.algo()));
        let counted = Counted {
            inner: &mut raw,
            done: 0,
            reported: 0,
            report: transferred,
        };
        let decoder = compression
            .decoder(io::BufReader::with_capacity(1 << 16, counted))
            .map_err(|e| corrupt(StoreError::Io(e)))?;
        // A NAR larger than the narinfo says is cut off where it passes that size,
        // so a lying cache cannot fill the castore.
        let limited = SizeLimit::new(decoder, info.nar_size);
        let (node, hash, size) = ingest_nar(store, limited).map_err(corrupt)?;
        if info.file_hash.is_some() || info.file_size.is_some() {
            self.check_file(info, raw, &url)?;
        }
        info.ingested(node, &hash, size)
            .map_err(|m| CacheError::NarMismatch {
                path: shown,
                cache: self.url.clone(),
                expected: m.expected,
                expected_size: m.expected_size,
                actual: m.actual,
                actual_size: m.actual_size,
            })
    }

    /// Checks the compressed file read through `raw` against the narinfo's `FileSize`
    /// and `FileHash`. What follows the end of the compressed stream (nothing, in a
    /// well-formed file) is read too, as far as `FileSize` allows and one byte beyond.
    fn check_file<R: Read>(
        &self,
        info: &NarInfo,
        mut raw: CheckingReader<R>,
        url: &str,
    ) -> Result<(), CacheError> {
        let rest = match info.file_size {
            Some(size) => size.saturating_sub(raw.count()) + 1,
            // No FileSize to bound it: only a little trailing garbage is looked at.
            None => 1 << 16,
        };
        io::copy(&mut (&mut raw).take(rest), &mut io::sink()).map_err(|e| {
            CacheError::CorruptNar {
                url: url.to_string(),
                path: self.settings.store_dir.display(&info.store_path),
                source: Box::new(StoreError::Io(e)),
            }
        })?;
        let (file_hash, file_size) = raw.finish();
        let hash_ok = match (&info.file_hash, &file_hash) {
            (Some(expected), Some(actual)) => expected == actual,
            _ => true,
        };
        let size_ok = info.file_size.is_none_or(|s| s == file_size);
        if hash_ok && size_ok {
            return Ok(());
        }
        Err(CacheError::FileMismatch {
            url: url.to_string(),
            expected: info
                .file_hash
                .as_ref()
                .map_or("(no FileHash)".to_string(), |h| {
                    h.to_prefixed(HashEncoding::Nix32)
                }),
            expected_size: info
                .file_size
                .map_or("no FileSize".to_string(), |s| format!("{s} bytes")),
            actual: file_hash.map_or("(not hashed)".to_string(), |h| {
                h.to_prefixed(HashEncoding::Nix32)
            }),
            actual_size: file_size,
        })
    }

    /// The narinfos of the closure of `roots`, leaving out what `store` has already.
    fn closure(
        &self,
        roots: &[StorePath],
        store: &dyn StoreService,
    ) -> Result<Vec<Arc<NarInfo>>, SubstituteError> {
        let mut found: BTreeMap<StorePath, Arc<NarInfo>> = BTreeMap::new();
        let mut seen: BTreeSet<StorePath> = roots.iter().cloned().collect();
        let mut level: Vec<StorePath> = roots.to_vec();
        while !level.is_empty() {
            let mut wanted = Vec::new();
            for p in level.drain(..) {
                if store
                    .get_path_info(&p)
                    .map_err(|e| self.err(e.into()))?
                    .is_none()
                {
                    wanted.push(p);
                }
            }
            let infos = self.narinfos(&wanted).map_err(|e| self.err(e))?;
            for (p, info) in wanted.into_iter().zip(infos) {
                let info = info.ok_or_else(|| {
                    self.err(CacheError::MissingNar(format!(
                        "{} (no valid narinfo for '{}')",
                        self.url,
                        self.settings.store_dir.display(&p)
                    )))
                })?;
                for r in &info.references {
                    if seen.insert(r.clone()) {
                        level.push(r.clone());
                    }
                }
                found.insert(p, info);
            }
        }
        Ok(found.into_values().collect())
    }

    fn err(&self, source: CacheError) -> SubstituteError {
        SubstituteError::Cache {
            from: self.url.clone(),
            source: Box::new(source),
        }
    }
}

/// Bytes between two reports of a transfer's progress.
pub const PROGRESS_STEP: u64 = 256 * 1024;

/// A reader that reports how many bytes went through it (every [`PROGRESS_STEP`], and
/// at the end).
struct Counted<'a, R> {
    inner: R,
    done: u64,
    reported: u64,
    report: &'a mut (dyn FnMut(u64) + Send),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if (n == 0 && self.done != self.reported) || self.done - self.reported >= PROGRESS_STEP {
            self.reported = self.done;
            (self.report)(self.done);
        }
        Ok(n)
    }
}

impl<R> Drop for Counted<'_, R> {
    fn drop(&mut self) {
        // The reader may stop before the end of the stream (the NAR is complete): the
        // last bytes are reported all the same.
        if self.done != self.reported {
            (self.report)(self.done);
        }
    }
}

/// Reads and checks `nix-cache-info`.
fn read_cache_info(
    transport: &Transport,
    url: &str,
    store_dir: &StoreDir,
) -> Result<CacheInfo, CacheError> {
    let bytes = transport
        .read_small("nix-cache-info", MAX_NARINFO)?
        .ok_or_else(|| CacheError::NotACache(url.to_string()))?;
    let info = CacheInfo::parse(&String::from_utf8_lossy(&bytes)).map_err(|source| {
        CacheError::CacheInfo {
            url: url.to_string(),
            source,
        }
    })?;
    if info.store_dir != store_dir.as_str() {
        return Err(CacheError::StoreDir {
            url: url.to_string(),
            theirs: info.store_dir,
            ours: store_dir.as_str().to_string(),
        });
    }
    Ok(info)
}

impl Substituter for BinaryCache {
    fn name(&self) -> &str {
        &self.url
    }

    fn has_all(&self, paths: &[StorePath]) -> Result<bool, SubstituteError> {
        if !self.usable() {
            return Ok(false);
        }
        let infos = self.narinfos(paths).map_err(|e| self.err(e))?;
        Ok(infos.iter().all(Option::is_some))
    }

    fn substitute(
        &self,
        paths: &[StorePath],
        store: &dyn StoreService,
        copying: &mut (dyn FnMut(&StorePath) + Send),
        cancel: &CancelToken,
    ) -> Result<(), SubstituteError> {
        self.substitute_reporting(
            paths,
            store,
            &mut |p| {
                if let CopyProgress::Started { path, .. } = p {
                    copying(path)
                }
            },
            cancel,
        )
    }

    fn substitute_reporting(
        &self,
        paths: &[StorePath],
        store: &dyn StoreService,
        progress: &mut (dyn FnMut(CopyProgress<'_>) + Send),
        cancel: &CancelToken,
    ) -> Result<(), SubstituteError> {
        if !self.usable() {
            return Err(SubstituteError::Cache {
                from: self.url.clone(),
                source: Box::new(CacheError::NotACache(self.url.clone())),
            });
        }
        let closure = self.closure(paths, store)?;
        let ordered = order_references_first(
            closure,
            |i: &Arc<NarInfo>| &i.store_path,
            |i: &Arc<NarInfo>| &i.references,
        );
        for info in ordered {
            if cancel.is_cancelled() {
                return Err(SubstituteError::Cancelled);
            }
            if store
                .get_path_info(&info.store_path)
                .map_err(|e| self.err(e.into()))?
                .is_some()
            {
                continue;
            }
            progress(CopyProgress::Started {
                path: &info.store_path,
                expected: info.file_size.unwrap_or(0),
            });
            let path_info = self
                .fetch_nar_reporting(&info, store, &mut |done| {
                    progress(CopyProgress::Transferred { done })
                })
                .map_err(|e| self.err(e))?;
            store
                .put_path_info(&path_info)
                .map_err(|e| self.err(e.into()))?;
        }
        Ok(())
    }

    fn take_warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use tvix_store::castore::cache_dir::CacheDirWriter;
    use tvix_store::castore::nar::import_path;
    use tvix_store::castore::Store;
    use tvix_store::pathinfo::PathInfoService;
    use tvix_store::signing::SecretKey;

    fn settings(keys: Vec<PublicKey>) -> Arc<CacheSettings> {
        Arc::new(CacheSettings {
            trusted_keys: keys,
            require_sigs: true,
            positive_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(60),
            timeouts: Timeouts {
                connect: Duration::from_secs(2),
                stalled: Duration::from_secs(2),
            },
            store_dir: StoreDir::default(),
        })
    }

    /// A cache at `dir` with one path (a file of `size` bytes), signed by `key`.
    fn cache_with_a_path(dir: &Path, key: SecretKey, compression: Compression) -> NarInfo {
        let src = tempfile::tempdir().unwrap();
        let file = src.path().join("data");
        std::fs::write(&file, b"0123456789".repeat(5000)).unwrap();
        let store = Store::memory();
        let info = import_path(&store, &StoreDir::default(), &file).unwrap();
        // Not content-addressed here, so that the signature is what counts.
        let info = PathInfo { ca: None, ..info };
        CacheDirWriter::create(dir, StoreDir::default(), compression, Some(key))
            .unwrap()
            .write_path(&store, &info)
            .unwrap()
    }

    fn url(dir: &Path) -> String {
        format!("file://{}", dir.display())
    }

    #[test]
    fn substitutes_a_signed_path_in_every_compression() {
        for compression in [
            Compression::None,
            Compression::Xz,
            Compression::Bzip2,
            Compression::Zstd,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let key = SecretKey::from_seed("k-1", &[9; 32]);
            let public = key.public();
            let narinfo = cache_with_a_path(dir.path(), key, compression);
            let cache = BinaryCache::open(&url(dir.path()), settings(vec![public])).unwrap();
            assert_eq!(cache.priority(), 50);
            let path = narinfo.store_path.clone();
            assert!(cache.has_all(std::slice::from_ref(&path)).unwrap());
            let target = Store::memory();
            let mut copied = Vec::new();
            cache
                .substitute(
                    std::slice::from_ref(&path),
                    &target,
                    &mut |p| copied.push(p.clone()),
                    &CancelToken::new(),
                )
                .unwrap();
            assert_eq!(copied, std::slice::from_ref(&path));
            let info = target.get_path_info(&path).unwrap().unwrap();
            assert_eq!(info.nar_size, narinfo.nar_size);
            tvix_store::castore::check_nar_hash(&target, &info).unwrap();
            assert!(cache.take_warnings().is_empty());
        }
    }

    #[test]
    fn an_untrusted_signature_is_passed_over_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let narinfo = cache_with_a_path(
            dir.path(),
            SecretKey::from_seed("k-1", &[9; 32]),
            Compression::Xz,
        );
        let other = SecretKey::from_seed("k-1", &[1; 32]).public();
        let cache = BinaryCache::open(&url(dir.path()), settings(vec![other])).unwrap();
        assert!(!cache
            .has_all(std::slice::from_ref(&narinfo.store_path))
            .unwrap());
        let w = cache.take_warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("is not signed by any of the keys"), "{w:?}");
        // Remembered: no second warning within the TTL.
        assert!(!cache.has_all(&[narinfo.store_path]).unwrap());
        assert!(cache.take_warnings().is_empty());
    }

    #[test]
    fn a_wrong_nar_hash_registers_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_seed("k-1", &[9; 32]);
        let public = key.public();
        let mut narinfo = cache_with_a_path(
            dir.path(),
            SecretKey::from_seed("k-1", &[9; 32]),
            Compression::Zstd,
        );
        // A narinfo that lies about the NAR hash, properly signed.
        narinfo.nar_hash = tvix_store::NixHash::sha256(b"something else");
        narinfo.signatures = vec![key.sign(&narinfo.fingerprint(&StoreDir::default()))];
        std::fs::write(
            dir.path()
                .join(format!("{}.narinfo", narinfo.store_path.hash_part())),
            narinfo.to_text(&StoreDir::default()),
        )
        .unwrap();
        let cache = BinaryCache::open(&url(dir.path()), settings(vec![public])).unwrap();
        let target = Store::memory();
        let path = narinfo.store_path.clone();
        let e = cache
            .substitute(
                std::slice::from_ref(&path),
                &target,
                &mut |_| {},
                &CancelToken::new(),
            )
            .unwrap_err();
        assert!(e.to_string().contains("does not match its narinfo"), "{e}");
        assert!(target.get_path_info(&path).unwrap().is_none());
    }

    #[test]
    fn a_missing_or_foreign_cache_is_disabled_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BinaryCache::open(&url(dir.path()), settings(vec![])).unwrap();
        assert_eq!(cache.priority(), u64::MAX);
        let p = StorePath::from_base_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x").unwrap();
        assert!(!cache.has_all(std::slice::from_ref(&p)).unwrap());
        let w = cache.take_warnings();
        assert!(w[0].contains("it has no nix-cache-info"), "{w:?}");
        std::fs::write(dir.path().join("nix-cache-info"), "StoreDir: /gnu/store\n").unwrap();
        let cache = BinaryCache::open(&url(dir.path()), settings(vec![])).unwrap();
        assert!(!cache.has_all(&[p]).unwrap());
        assert!(cache.take_warnings()[0].contains("'/gnu/store', not '/nix/store'"));
    }
}
