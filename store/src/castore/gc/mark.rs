//! The mark phase: from the roots to every live path, directory, blob and chunk.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::castore::backend::{Backend, Table};
use crate::castore::directory::{Directory, Node};
use crate::castore::{blob, B3Digest, StoreError};
use crate::pathinfo::PathInfo;
use crate::store_path::StorePath;

/// Everything the roots keep.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) paths: BTreeSet<StorePath>,
    pub(crate) directories: HashSet<B3Digest>,
    pub(crate) blobs: HashSet<B3Digest>,
    pub(crate) chunks: HashSet<B3Digest>,
}

/// The closure of `roots` among `infos` over references and derivers (roots that are not
/// valid are skipped).
pub(crate) fn live_paths(
    infos: &BTreeMap<StorePath, PathInfo>,
    roots: impl IntoIterator<Item = StorePath>,
) -> BTreeSet<StorePath> {
    let mut live = BTreeSet::new();
    let mut todo: Vec<StorePath> = roots.into_iter().collect();
    while let Some(p) = todo.pop() {
        let Some(info) = infos.get(&p) else {
            continue;
        };
        if !live.insert(p) {
            continue;
        }
        todo.extend(info.references.iter().cloned());
        todo.extend(info.deriver.iter().cloned());
    }
    live
}

/// Marks the trees of the live paths: their directories, blobs and the blobs' chunks.
/// Objects that are missing are skipped (`verify` reports them); a directory that does
/// not decode is an error, since what it refers to cannot be known.
pub(crate) fn mark(
    backend: &dyn Backend,
    infos: &BTreeMap<StorePath, PathInfo>,
    paths: BTreeSet<StorePath>,
) -> Result<Live, StoreError> {
    let mut live = Live::default();
    let mut todo: Vec<Node> = paths
        .iter()
        .filter_map(|p| infos.get(p).map(|i| i.node.clone()))
        .collect();
    live.paths = paths;
    while let Some(node) = todo.pop() {
        match node {
            Node::Symlink { .. } => {}
            Node::File { digest, .. } => {
                if live.blobs.insert(digest) {
                    if let Some(m) = blob::manifest(backend, &digest)? {
                        live.chunks.extend(m.chunks.iter().map(|(d, _)| *d));
                    }
                }
            }
            Node::Directory { digest, .. } => {
                if !live.directories.insert(digest) {
                    continue;
                }
                if let Some(enc) = backend.kv_get(Table::Directories, &digest.0)? {
                    let dir = Directory::decode(&enc)?;
                    todo.extend(dir.entries().map(|(_, n)| n.clone()));
                }
            }
        }
    }
    Ok(live)
}
