//! Writing a Nix binary cache directory (what `nix copy --to file:///DIR` writes, and
//! what `nix copy --from file:///DIR` and substituters read): `nix-cache-info`, one
//! `<hash part>.narinfo` per path and its NAR under `nar/`, compressed as asked, named by
//! the hash of the compressed file.
//!
//! A NAR is rendered from the castore and compressed as a stream into a temporary file of
//! the cache, hashed twice on the way (the NAR, which must be the path's registered NAR
//! hash, and the compressed file); only then is the file renamed into place and, last, the
//! narinfo written (also through a rename), so a reader never sees a narinfo whose NAR is
//! incomplete.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::nar::write_nar;
use super::{BlobService, DirectoryService, StoreError};
use crate::cache_info::CacheInfo;
use crate::compression::Compression;
use crate::hash::{HashAlgo, HashEncoding, Hasher};
use crate::narinfo::NarInfo;
use crate::pathinfo::PathInfo;
use crate::signing::SecretKey;
use crate::store_path::{StoreDir, StorePath};

/// A writer that hashes and counts what passes through it.
pub(crate) struct Counting<W> {
    /// Where the bytes go.
    pub(crate) inner: W,
    /// The hash of what was written.
    pub(crate) hasher: Hasher,
    /// How many bytes were written.
    pub(crate) written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A binary cache directory being written.
pub struct CacheDirWriter {
    dir: PathBuf,
    store_dir: StoreDir,
    compression: Compression,
    key: Option<SecretKey>,
}

impl CacheDirWriter {
    /// Opens (creating it and its `nix-cache-info` if needed) the cache at `dir` for
    /// paths of `store_dir`; NARs are compressed with `compression` and narinfos signed
    /// with `key` if given. A cache for another store directory is refused.
    pub fn create(
        dir: &Path,
        store_dir: StoreDir,
        compression: Compression,
        key: Option<SecretKey>,
    ) -> Result<CacheDirWriter, StoreError> {
        fs::create_dir_all(dir.join("nar"))?;
        let info_file = dir.join("nix-cache-info");
        match fs::read_to_string(&info_file) {
            Ok(text) => {
                let info = CacheInfo::parse(&text).map_err(|e| StoreError::InvalidMessage {
                    what: "nix-cache-info",
                    reason: e.to_string(),
                })?;
                if info.store_dir != store_dir.as_str() {
                    return Err(StoreError::InvalidMessage {
                        what: "nix-cache-info",
                        reason: format!(
                            "the cache '{}' is for store directory '{}', not '{}'",
                            dir.display(),
                            info.store_dir,
                            store_dir.as_str()
                        ),
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                write_atomically(
                    dir,
                    &info_file,
                    CacheInfo::new(store_dir.as_str()).to_text().as_bytes(),
                )?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(CacheDirWriter {
            dir: dir.to_path_buf(),
            store_dir,
            compression,
            key,
        })
    }

    /// The narinfo file of `path`.
    fn narinfo_file(&self, path: &StorePath) -> PathBuf {
        self.dir.join(format!("{}.narinfo", path.hash_part()))
    }

    /// Whether the cache has `path` already.
    pub fn has(&self, path: &StorePath) -> bool {
        self.narinfo_file(path).exists()
    }

    /// Writes the NAR and narinfo of `info`, whose contents are in `store`, and returns
    /// the narinfo. The rendered NAR must have the registered hash and size.
    pub fn write_path<S>(&self, store: &S, info: &PathInfo) -> Result<NarInfo, StoreError>
    where
        S: BlobService + DirectoryService + ?Sized,
    {
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-nar-")
            .tempfile_in(self.dir.join("nar"))?;
        let file = Counting {
            inner: BufWriter::with_capacity(1 << 16, tmp.as_file().try_clone()?),
            hasher: Hasher::new(HashAlgo::Sha256),
            written: 0,
        };
        let encoder = self.compression.encoder(file)?;
        let nar = Counting {
            inner: encoder,
            hasher: Hasher::new(HashAlgo::Sha256),
            written: 0,
        };
        let nar = write_nar(store, &info.node, nar)?;
        let (nar_hash, nar_size) = (nar.hasher.finish(), nar.written);
        let Counting {
            inner: mut buffered,
            hasher,
            written: file_size,
        } = nar.inner.finish()?;
        buffered.flush()?;
        drop(buffered);
        let file_hash = hasher.finish();
        if nar_hash.digest() != info.nar_sha256 || nar_size != info.nar_size {
            return Err(StoreError::NarHashMismatch {
                path: info.store_path.to_base_name(),
                expected: info.nar_hash_string(),
                expected_size: info.nar_size,
                actual: nar_hash.to_prefixed(HashEncoding::Nix32),
                actual_size: nar_size,
            });
        }
        tmp.as_file().sync_all()?;
        let url = format!(
            "nar/{}.nar{}",
            file_hash.to_nix32(),
            self.compression.extension()
        );
        tmp.persist(self.dir.join(&url)).map_err(|e| e.error)?;
        let mut narinfo = NarInfo {
            store_path: info.store_path.clone(),
            url,
            compression: self.compression.name().to_string(),
            file_hash: Some(file_hash),
            file_size: Some(file_size),
            nar_hash,
            nar_size,
            references: info.references.clone(),
            deriver: info.deriver.clone(),
            signatures: info.signatures.clone(),
            ca: info.ca.clone(),
            system: None,
        };
        narinfo.references.sort_by_key(StorePath::to_base_name);
        if let Some(key) = &self.key {
            let sig = key.sign(&narinfo.fingerprint(&self.store_dir));
            // A signature by the same key (an earlier copy) is replaced.
            let prefix = format!("{}:", key.name());
            narinfo.signatures.retain(|s| !s.starts_with(&prefix));
            narinfo.signatures.push(sig);
        }
        write_atomically(
            &self.dir,
            &self.narinfo_file(&info.store_path),
            narinfo.to_text(&self.store_dir).as_bytes(),
        )?;
        Ok(narinfo)
    }
}

/// Writes `file` (in `dir`) through a temporary file and a rename.
fn write_atomically(dir: &Path, file: &Path, data: &[u8]) -> Result<(), StoreError> {
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::castore::nar::import_path;
    use crate::castore::Store;
    use crate::signing::verified_by_any;

    #[test]
    fn writes_a_cache_nix_can_read() {
        let src = tempfile::tempdir().unwrap();
        let file = src.path().join("hello");
        fs::write(&file, b"hello world\n".repeat(1000)).unwrap();
        let store = Store::memory();
        let sd = StoreDir::default();
        let info = import_path(&store, &sd, &file).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let key = SecretKey::from_seed("test-1", &[3; 32]);
        let w =
            CacheDirWriter::create(cache.path(), sd.clone(), Compression::Xz, Some(key)).unwrap();
        assert!(!w.has(&info.store_path));
        let narinfo = w.write_path(&store, &info).unwrap();
        assert!(w.has(&info.store_path));
        let text = fs::read_to_string(
            cache
                .path()
                .join(format!("{}.narinfo", info.store_path.hash_part())),
        )
        .unwrap();
        let parsed = NarInfo::parse(&text, &sd).unwrap();
        assert_eq!(parsed, narinfo);
        assert_eq!(parsed.compression, "xz");
        assert!(parsed.url.ends_with(".nar.xz"));
        let nar_file = fs::read(cache.path().join(&parsed.url)).unwrap();
        assert_eq!(parsed.file_size, Some(nar_file.len() as u64));
        let public = SecretKey::from_seed("test-1", &[3; 32]).public();
        assert!(verified_by_any(
            &parsed.fingerprint(&sd),
            &parsed.signatures,
            &[public]
        ));
        let info_text = fs::read_to_string(cache.path().join("nix-cache-info")).unwrap();
        assert!(info_text.starts_with("StoreDir: /nix/store\n"));
        // Another store directory is refused.
        let other = StoreDir::new("/other/store").unwrap();
        assert!(CacheDirWriter::create(cache.path(), other, Compression::Xz, None).is_err());
    }
}
