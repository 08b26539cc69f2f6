//! Adding what evaluation produces to the store under the paths Nix gives them: text files
//! (`builtins.toFile`, `.drv` files) and file-system trees (sources, `builtins.path`,
//! fetched files and trees). A path already registered is not added again.

use std::fs;
use std::io;
use std::path::Path;

use super::nar::{ingest_path_filtered, sha256_array};
use super::{BlobService, DirectoryService, Node, StoreError};
use crate::hash::{HashAlgo, HashEncoding, Hasher, NixHash};
use crate::nar::{NarEncoder, NarHasher};
use crate::pathinfo::{PathInfo, PathInfoService};
use crate::store_path::{FileIngestionMethod, StoreDir, StorePath};

/// Registers `contents` as the text file `name` referring to `references` (the path
/// `builtins.toFile` and `.drv` files get), and returns its path info.
pub fn add_text<S>(
    store: &S,
    store_dir: &StoreDir,
    name: &str,
    contents: &[u8],
    references: &[StorePath],
) -> Result<PathInfo, StoreError>
where
    S: BlobService + DirectoryService + PathInfoService + Sync + ?Sized,
{
    let content_hash = NixHash::sha256(contents);
    let store_path = store_dir.make_text_path_from_hash(name, &content_hash, references)?;
    if let Some(info) = store.get_path_info(&store_path)? {
        return Ok(info);
    }
    let (digest, size) = store.put_blob(&mut &contents[..])?;
    let mut enc = NarEncoder::new(NarHasher::new());
    enc.write_file(None, false, size, &mut &contents[..])?;
    let (nar_hash, nar_size) = enc.into_inner().finish();
    let mut references = references.to_vec();
    references.sort();
    references.dedup();
    let info = PathInfo {
        store_path,
        node: Node::File {
            digest,
            size,
            executable: false,
        },
        nar_sha256: sha256_array(&nar_hash),
        nar_size,
        references,
        deriver: None,
        signatures: Vec::new(),
        ca: Some(format!(
            "text:{}",
            content_hash.to_prefixed(HashEncoding::Nix32)
        )),
    };
    store.put_path_info_batched(&info)?;
    Ok(info)
}

/// What [`add_path`] stored: the path info and the content hash the path was computed from
/// (the NAR sha256 when recursive, the file's sha256 when flat).
pub struct AddedPath {
    /// The registered path.
    pub info: PathInfo,
    /// The hash the store path was made from.
    pub content_hash: NixHash,
}

/// Adds the file-system object at `source` as `name`, as a fixed-output path by `method`
/// with sha256 (`builtins.path`, path literals, fetchers). `filter` is consulted for every
/// object below the root (see [`ingest_path_filtered`]); a flat add takes a regular file.
pub fn add_path<S, F>(
    store: &S,
    store_dir: &StoreDir,
    source: &Path,
    name: &str,
    method: FileIngestionMethod,
    filter: F,
) -> Result<AddedPath, StoreError>
where
    S: BlobService + DirectoryService + PathInfoService + Sync + ?Sized,
    F: FnMut(&Path, &fs::Metadata) -> io::Result<bool>,
{
    crate::store_path::validate_name(name)?;
    let (node, nar_hash, nar_size) = ingest_path_filtered(store, source, filter)?;
    let content_hash = match (method, &node) {
        (FileIngestionMethod::Recursive, _) => nar_hash.clone(),
        (FileIngestionMethod::Flat, Node::File { digest, .. }) => {
            let mut reader = store
                .open_blob(digest)?
                .ok_or_else(|| StoreError::BlobNotFound(*digest))?;
            let mut hasher = Hasher::new(HashAlgo::Sha256);
            io::copy(&mut reader, &mut hasher)?;
            hasher.finish()
        }
        (FileIngestionMethod::Flat, _) => {
            return Err(StoreError::Path {
                path: source.to_path_buf(),
                source: io::Error::other("a flat (non-recursive) add needs a regular file"),
            })
        }
    };
    let store_path = store_dir.make_fixed_output_path(name, method, &content_hash, [], false)?;
    let info = match store.get_path_info(&store_path)? {
        Some(info) => info,
        None => {
            let info = PathInfo {
                store_path,
                node,
                nar_sha256: sha256_array(&nar_hash),
                nar_size,
                references: Vec::new(),
                deriver: None,
                signatures: Vec::new(),
                ca: Some(format!(
                    "fixed:{}{}",
                    if method == FileIngestionMethod::Recursive {
                        "r:"
                    } else {
                        ""
                    },
                    content_hash.to_prefixed(HashEncoding::Nix32)
                )),
            };
            store.put_path_info_batched(&info)?;
            info
        }
    };
    Ok(AddedPath { info, content_hash })
}
