//! Uploads into the served store, as `nix copy --to http://...` sends them: first the
//! NAR file (`PUT /nar/<file sha256>.nar.xz`), then the narinfo (`PUT /<hash>.narinfo`).
//!
//! Invariant: a path is registered only once everything about it is checked, and nothing
//! is registered otherwise. A NAR file is streamed to a staging directory, hashed on the
//! way, and kept only if its hash is the one its name gives (a truncated or altered
//! upload leaves nothing behind). A narinfo is accepted only if it describes the path its
//! URL names, its NAR file was staged (and matches its `FileHash`/`FileSize`), every path
//! it refers to is in the store, its content address (if any) gives its path, and its NAR,
//! decompressed and ingested into the castore, has its `NarHash` and `NarSize`. Only then
//! is the path registered, and the staged file removed.

use std::fs;
use std::io::{self, BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use thiserror::Error;

use super::route::{route, Route};
use crate::castore::nar::ingest_nar;
use crate::castore::StoreError;
use crate::compression::{Compression, SizeLimit};
use crate::hash::{HashAlgo, HashEncoding, Hasher};
use crate::narinfo::{ContentAddressError, NarInfo, NarInfoError};
use crate::nixbase32;
use crate::store_path::{StoreDir, DIGEST_LEN};
use crate::StoreService;

/// Why an upload was refused. Each is the client's fault (a 4xx answer) except
/// [`UploadError::Store`] and [`UploadError::Staging`] (a 500).
#[derive(Debug, Error)]
pub enum UploadError {
    /// The NAR file's bytes do not hash to the name it was uploaded as.
    #[error("the uploaded NAR file '{name}' has sha256 {actual} ({size} bytes), not the one its name gives")]
    FileHash {
        /// The file name.
        name: String,
        /// What it hashed to.
        actual: String,
        /// How many bytes came.
        size: u64,
    },
    /// The upload ended before all of it came.
    #[error("the upload of '{name}' broke off after {size} bytes: {source}")]
    Interrupted {
        /// The file name.
        name: String,
        /// Bytes received.
        size: u64,
        /// Why.
        source: io::Error,
    },
    /// The narinfo does not parse.
    #[error("invalid narinfo: {0}")]
    NarInfo(#[from] NarInfoError),
    /// The narinfo is not UTF-8.
    #[error("invalid narinfo: not UTF-8")]
    NotUtf8,
    /// The narinfo describes another path than its URL names.
    #[error("the narinfo uploaded as '{url}' is for '{found}'")]
    WrongPath {
        /// The URL's hash part.
        url: String,
        /// The path it describes.
        found: String,
    },
    /// The narinfo's content address does not give its path.
    #[error(transparent)]
    ContentAddress(#[from] ContentAddressError),
    /// The narinfo's `URL` names no NAR file this server accepts uploads of.
    #[error("the narinfo's URL '{0}' is not of the form nar/<file sha256>.nar[.xz|.zst|.bz2]")]
    BadNarUrl(String),
    /// The narinfo's `Compression` is not its URL's.
    #[error("the narinfo says Compression '{said}', but its URL '{url}' is a {ext} file")]
    CompressionMismatch {
        /// The narinfo's Compression.
        said: String,
        /// The URL.
        url: String,
        /// What the URL's extension says.
        ext: Compression,
    },
    /// The NAR file was not uploaded (or broke off).
    #[error("the NAR file '{0}' was not uploaded before its narinfo")]
    MissingNar(String),
    /// The staged NAR file does not match the narinfo's `FileHash`/`FileSize`.
    #[error(
        "the NAR file '{url}' ({actual_size} bytes) does not match the narinfo's FileHash/FileSize"
    )]
    FileMismatch {
        /// The URL.
        url: String,
        /// Its size.
        actual_size: u64,
    },
    /// A path the narinfo refers to is not in the store.
    #[error("'{path}' refers to '{reference}', which is not in the store (upload it first)")]
    MissingReference {
        /// The uploaded path.
        path: String,
        /// The missing reference.
        reference: String,
    },
    /// The NAR could not be decompressed or parsed.
    #[error("the NAR of '{path}' is corrupt: {source}")]
    CorruptNar {
        /// The path.
        path: String,
        /// Why.
        source: Box<StoreError>,
    },
    /// The NAR is not the one the narinfo describes.
    #[error("the NAR of '{path}' does not match its narinfo: expected {expected} ({expected_size} bytes), got {actual} ({actual_size} bytes)")]
    NarMismatch {
        /// The path.
        path: String,
        /// The narinfo's NarHash.
        expected: String,
        /// The narinfo's NarSize.
        expected_size: u64,
        /// The hash of the NAR.
        actual: String,
        /// Its size.
        actual_size: u64,
    },
    /// The staging directory failed.
    #[error("staging the upload: {0}")]
    Staging(io::Error),
    /// The store failed.
    #[error(transparent)]
    Store(Box<StoreError>),
}

impl From<StoreError> for UploadError {
    fn from(e: StoreError) -> Self {
        UploadError::Store(Box::new(e))
    }
}

impl UploadError {
    /// Whether the server, not the client, is at fault.
    pub fn is_server_error(&self) -> bool {
        matches!(self, UploadError::Store(_) | UploadError::Staging(_))
    }
}

/// What an upload of a narinfo did.
#[derive(Debug, PartialEq, Eq)]
pub enum Registered {
    /// The path was registered.
    New,
    /// The store had the path already; nothing changed.
    AlreadyValid,
}

/// Where uploads are staged, and the store they go into.
pub struct Uploads {
    staging: tempfile::TempDir,
    store: Arc<dyn StoreService>,
    store_dir: StoreDir,
}

impl Uploads {
    /// Uploads into `store`, NAR files staged in a fresh directory under `parent`
    /// (removed when this is dropped).
    pub fn new(
        store: Arc<dyn StoreService>,
        store_dir: StoreDir,
        parent: &std::path::Path,
    ) -> io::Result<Uploads> {
        let staging = tempfile::Builder::new()
            .prefix("tvix-serve-uploads")
            .tempdir_in(parent)?;
        Ok(Uploads {
            staging,
            store,
            store_dir,
        })
    }

    fn staged(&self, file_sha256: &[u8; 32], compression: Compression) -> PathBuf {
        self.staging.path().join(format!(
            "{}.nar{}",
            nixbase32::encode(file_sha256),
            compression.extension()
        ))
    }

    /// Whether a NAR file of this name is staged.
    #[cfg(test)]
    fn has_file(&self, file_sha256: &[u8; 32], compression: Compression) -> bool {
        self.staged(file_sha256, compression).is_file()
    }

    /// Stages the NAR file named by `file_sha256`, whose bytes come as `pieces` (an
    /// error piece means the upload broke off). Blocks: run it off the async runtime.
    pub fn stage_nar(
        &self,
        file_sha256: &[u8; 32],
        compression: Compression,
        pieces: impl Iterator<Item = io::Result<Bytes>>,
    ) -> Result<(), UploadError> {
        let target = self.staged(file_sha256, compression);
        let name = format!(
            "nar/{}",
            target.file_name().unwrap_or_default().to_string_lossy()
        );
        let mut tmp =
            tempfile::NamedTempFile::new_in(self.staging.path()).map_err(UploadError::Staging)?;
        let mut hasher = Hasher::new(HashAlgo::Sha256);
        let mut size = 0u64;
        {
            let mut out = io::BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
            for piece in pieces {
                let piece = piece.map_err(|source| UploadError::Interrupted {
                    name: name.clone(),
                    size,
                    source,
                })?;
                hasher.update(&piece);
                out.write_all(&piece).map_err(UploadError::Staging)?;
                size += piece.len() as u64;
            }
            out.flush().map_err(UploadError::Staging)?;
        }
        let hash = hasher.finish();
        if hash.digest() != file_sha256 {
            // The temporary file goes with `tmp`.
            return Err(UploadError::FileHash {
                name,
                actual: hash.to_prefixed(HashEncoding::Nix32),
                size,
            });
        }
        tmp.persist(&target)
            .map_err(|e| UploadError::Staging(e.error))?;
        Ok(())
    }

    /// Registers the path of the narinfo `text`, uploaded as `/<hash part>.narinfo` for
    /// `digest`, from its staged NAR file. Blocks: run it off the async runtime.
    pub fn register(
        &self,
        digest: &[u8; DIGEST_LEN],
        text: &[u8],
    ) -> Result<Registered, UploadError> {
        let dir = &self.store_dir;
        let text = std::str::from_utf8(text).map_err(|_| UploadError::NotUtf8)?;
        let info = NarInfo::parse(text, dir)?;
        if info.store_path.digest() != digest {
            return Err(UploadError::WrongPath {
                url: nixbase32::encode(digest),
                found: dir.display(&info.store_path),
            });
        }
        info.check_content_address(dir)?;
        let shown = dir.display(&info.store_path);
        if self.store.get_path_info(&info.store_path)?.is_some() {
            return Ok(Registered::AlreadyValid);
        }
        for r in &info.references {
            if *r != info.store_path && self.store.get_path_info(r)?.is_none() {
                return Err(UploadError::MissingReference {
                    path: shown,
                    reference: dir.display(r),
                });
            }
        }
        let Route::NarFile {
            file_sha256,
            compression,
        } = route(&info.url)
        else {
            return Err(UploadError::BadNarUrl(info.url.clone()));
        };
        let said = Compression::parse(&info.compression).ok();
        if said != Some(compression) {
            return Err(UploadError::CompressionMismatch {
                said: info.compression.clone(),
                url: info.url.clone(),
                ext: compression,
            });
        }
        let staged = self.staged(&file_sha256, compression);
        let file = match fs::File::open(&staged) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(UploadError::MissingNar(info.url.clone()))
            }
            Err(e) => return Err(UploadError::Staging(e)),
        };
        let file_size = file.metadata().map_err(UploadError::Staging)?.len();
        // The staged file's sha256 is its name (checked when it was staged).
        let hash_ok = info
            .file_hash
            .as_ref()
            .is_none_or(|h| h.algo() == HashAlgo::Sha256 && h.digest() == file_sha256);
        if !hash_ok || info.file_size.is_some_and(|s| s != file_size) {
            return Err(UploadError::FileMismatch {
                url: info.url.clone(),
                actual_size: file_size,
            });
        }
        let corrupt = |source: StoreError| UploadError::CorruptNar {
            path: shown.clone(),
            source: Box::new(source),
        };
        let decoder = compression
            .decoder(BufReader::with_capacity(1 << 16, file))
            .map_err(|e| corrupt(StoreError::Io(e)))?;
        let (node, hash, size) =
            ingest_nar(&*self.store, SizeLimit::new(decoder, info.nar_size)).map_err(corrupt)?;
        let path_info = info
            .ingested(node, &hash, size)
            .map_err(|m| UploadError::NarMismatch {
                path: shown,
                expected: m.expected,
                expected_size: m.expected_size,
                actual: m.actual,
                actual_size: m.actual_size,
            })?;
        self.store.put_path_info(&path_info)?;
        // Registered: the staged file is not needed any more (another narinfo naming
        // the same file would have to upload it again, as after a restart).
        let _ = fs::remove_file(&staged);
        Ok(Registered::New)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::castore::nar::write_nar;
    use crate::castore::Store;
    use crate::pathinfo::PathInfoService;

    /// A store with one imported file, the narinfo `nix copy` would upload for it (as
    /// `compression`) and the compressed NAR file.
    fn fixture(compression: Compression) -> (tempfile::TempDir, NarInfo, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("data");
        fs::write(&f, b"uploaded ".repeat(1000)).unwrap();
        let source = Store::memory();
        let info = crate::castore::nar::import_path(&source, &StoreDir::default(), &f).unwrap();
        let nar = write_nar(&source, &info.node, Vec::new()).unwrap();
        let mut enc = compression.encoder(Vec::new()).unwrap();
        enc.write_all(&nar).unwrap();
        let file = enc.finish().unwrap();
        let file_hash = crate::NixHash::sha256(&file);
        let narinfo = NarInfo {
            store_path: info.store_path.clone(),
            url: format!(
                "nar/{}.nar{}",
                file_hash.to_nix32(),
                compression.extension()
            ),
            compression: compression.name().to_string(),
            file_hash: Some(file_hash),
            file_size: Some(file.len() as u64),
            nar_hash: info.nar_hash(),
            nar_size: info.nar_size,
            references: vec![],
            deriver: None,
            signatures: vec![],
            // Not content-addressed, so that every field can be changed alone.
            ca: None,
            system: None,
        };
        (dir, narinfo, file)
    }

    fn file_sha256(n: &NarInfo) -> [u8; 32] {
        n.file_hash.as_ref().unwrap().digest().try_into().unwrap()
    }

    fn pieces(data: &[u8]) -> impl Iterator<Item = io::Result<Bytes>> + '_ {
        data.chunks(100).map(|c| Ok(Bytes::copy_from_slice(c)))
    }

    fn uploads(dir: &std::path::Path) -> (Arc<Store>, Uploads) {
        let store = Arc::new(Store::memory());
        let u = Uploads::new(store.clone(), StoreDir::default(), dir).unwrap();
        (store, u)
    }

    #[test]
    fn a_nar_then_its_narinfo_registers_the_path() {
        let (dir, narinfo, file) = fixture(Compression::Xz);
        let (store, u) = uploads(dir.path());
        let fh = file_sha256(&narinfo);
        u.stage_nar(&fh, Compression::Xz, pieces(&file)).unwrap();
        assert!(u.has_file(&fh, Compression::Xz));
        let text = narinfo.to_text(&StoreDir::default());
        let digest = narinfo.store_path.digest();
        assert_eq!(
            u.register(digest, text.as_bytes()).unwrap(),
            Registered::New
        );
        let info = store.get_path_info(&narinfo.store_path).unwrap().unwrap();
        crate::castore::check_nar_hash(&*store, &info).unwrap();
        assert!(
            !u.has_file(&fh, Compression::Xz),
            "the staged file is removed"
        );
        assert_eq!(
            u.register(digest, text.as_bytes()).unwrap(),
            Registered::AlreadyValid
        );
    }

    #[test]
    fn a_file_that_is_not_its_name_or_broke_off_is_not_staged() {
        let (dir, narinfo, file) = fixture(Compression::Zstd);
        let (store, u) = uploads(dir.path());
        let fh = file_sha256(&narinfo);
        let mut altered = file.clone();
        altered[file.len() / 2] ^= 1;
        let e = u
            .stage_nar(&fh, Compression::Zstd, pieces(&altered))
            .unwrap_err();
        assert!(matches!(e, UploadError::FileHash { .. }), "{e}");
        let broken = pieces(&file[..file.len() / 2])
            .chain([Err(io::Error::from(io::ErrorKind::UnexpectedEof))]);
        let e = u.stage_nar(&fh, Compression::Zstd, broken).unwrap_err();
        assert!(matches!(e, UploadError::Interrupted { .. }), "{e}");
        assert!(!u.has_file(&fh, Compression::Zstd));
        // Nothing but the (empty) staging directory's own files are left.
        assert_eq!(fs::read_dir(u.staging.path()).unwrap().count(), 0);
        let text = narinfo.to_text(&StoreDir::default());
        let e = u
            .register(narinfo.store_path.digest(), text.as_bytes())
            .unwrap_err();
        assert!(matches!(e, UploadError::MissingNar(_)), "{e}");
        assert!(store.get_path_info(&narinfo.store_path).unwrap().is_none());
    }

    #[test]
    fn narinfos_that_do_not_match_register_nothing() {
        let (dir, narinfo, file) = fixture(Compression::None);
        let (store, u) = uploads(dir.path());
        let fh = file_sha256(&narinfo);
        u.stage_nar(&fh, Compression::None, pieces(&file)).unwrap();
        let sd = StoreDir::default();
        let digest = *narinfo.store_path.digest();
        let other_ref = sd
            .parse_path(&format!("/nix/store/{}-absent", "1".repeat(32)))
            .unwrap();
        type Edit = Box<dyn Fn(&mut NarInfo)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|n| n.nar_hash = crate::NixHash::sha256(b"another NAR")),
                "does not match its narinfo",
            ),
            (Box::new(|n| n.nar_size += 8), "does not match its narinfo"),
            (
                Box::new(|n| n.nar_size -= 8),
                "larger than the narinfo's NarSize",
            ),
            (Box::new(|n| n.file_size = Some(1)), "FileHash/FileSize"),
            (
                Box::new(move |n| n.references = vec![other_ref.clone()]),
                "which is not in the store",
            ),
            (Box::new(|n| n.compression = "xz".into()), "Compression"),
            (
                Box::new(|n| n.url = "nar/../../x.nar".into()),
                "is not of the form",
            ),
        ];
        for (edit, message) in cases {
            let mut bad = narinfo.clone();
            edit(&mut bad);
            let e = u
                .register(&digest, bad.to_text(&sd).as_bytes())
                .unwrap_err();
            assert!(e.to_string().contains(message), "{e} (wanted {message})");
            assert!(!e.is_server_error());
            assert!(store.get_path_info(&narinfo.store_path).unwrap().is_none());
        }
        let e = u.register(&[0; DIGEST_LEN], narinfo.to_text(&sd).as_bytes());
        assert!(matches!(e, Err(UploadError::WrongPath { .. })));
        let e = u.register(&digest, b"garbage");
        assert!(matches!(e, Err(UploadError::NarInfo(_))));
        // The good one still goes in afterwards: the staged file was kept.
        u.register(&digest, narinfo.to_text(&sd).as_bytes())
            .unwrap();
        assert!(store.get_path_info(&narinfo.store_path).unwrap().is_some());
    }
}
