//! Copying store paths between stores: path info, directories and blobs, transferring only
//! what the target lacks.

use super::{B3Digest, BlobService, Directory, DirectoryService, Node, StoreError};
use crate::pathinfo::{PathInfo, PathInfoService};

/// What [`copy_path`] transferred.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Path infos registered in the target.
    pub paths: u64,
    /// Blobs uploaded.
    pub blobs: u64,
    /// Bytes of the uploaded blobs.
    pub blob_bytes: u64,
    /// Directories uploaded.
    pub directories: u64,
}

impl CopyStats {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: CopyStats) {
        self.paths += other.paths;
        self.blobs += other.blobs;
        self.blob_bytes += other.blob_bytes;
        self.directories += other.directories;
    }
}

/// Copies the blob `digest` of `size` bytes unless the target has it; the target hashes
/// what it receives, and a digest or size that differs is an error.
fn copy_blob<F, T>(
    from: &F,
    to: &T,
    digest: &B3Digest,
    size: u64,
    stats: &mut CopyStats,
) -> Result<(), StoreError>
where
    F: BlobService + ?Sized,
    T: BlobService + ?Sized,
{
    if to.has_blob(digest)? {
        return Ok(());
    }
    let mut r = from
        .open_blob(digest)?
        .ok_or(StoreError::BlobNotFound(*digest))?;
    let (got, got_size) = to.put_blob(&mut r)?;
    if got != *digest || got_size != size {
        return Err(StoreError::CorruptBlob {
            expected: *digest,
            actual: got,
        });
    }
    stats.blobs += 1;
    stats.blob_bytes += size;
    Ok(())
}

/// Makes the directory `root` and everything below it present in the target. A directory
/// the target has already is complete there (stores only accept directories whose
/// children they hold), so its subtree is skipped. Children are stored before their
/// parents, with an explicit stack so depth is not limited by the call stack.
fn copy_directory<F, T>(
    from: &F,
    to: &T,
    root: &B3Digest,
    stats: &mut CopyStats,
) -> Result<(), StoreError>
where
    F: BlobService + DirectoryService + ?Sized,
    T: BlobService + DirectoryService + ?Sized,
{
    // (digest, its directory once fetched and its children handled)
    let mut stack: Vec<(B3Digest, Option<Directory>)> = vec![(*root, None)];
    let mut done = std::collections::HashSet::new();
    while let Some((digest, fetched)) = stack.pop() {
        if let Some(dir) = fetched {
            let stored = to.put_directory(&dir)?;
            if stored != digest {
                return Err(StoreError::CorruptDirectory {
                    expected: digest,
                    actual: stored,
                });
            }
            stats.directories += 1;
            done.insert(digest);
            continue;
        }
        if done.contains(&digest) || to.get_directory(&digest)?.is_some() {
            done.insert(digest);
            continue;
        }
        let dir = from
            .get_directory(&digest)?
            .ok_or(StoreError::DirectoryNotFound(digest))?;
        for (_, node) in dir.entries() {
            if let Node::File { digest, size, .. } = node {
                copy_blob(from, to, digest, *size, stats)?;
            }
        }
        let subdirs: Vec<B3Digest> = dir
            .entries()
            .filter_map(|(_, n)| match n {
                Node::Directory { digest, .. } if !done.contains(digest) => Some(*digest),
                _ => None,
            })
            .collect();
        stack.push((digest, Some(dir)));
        stack.extend(subdirs.into_iter().map(|d| (d, None)));
    }
    Ok(())
}

/// Copies one path (its contents, then its path info) unless the target has it already.
pub fn copy_path<F, T>(from: &F, to: &T, info: &PathInfo) -> Result<CopyStats, StoreError>
where
    F: BlobService + DirectoryService + ?Sized,
    T: BlobService + DirectoryService + PathInfoService + ?Sized,
{
    let mut stats = CopyStats::default();
    if to.get_path_info(&info.store_path)?.is_some() {
        return Ok(stats);
    }
    match &info.node {
        Node::File { digest, size, .. } => copy_blob(from, to, digest, *size, &mut stats)?,
        Node::Directory { digest, .. } => copy_directory(from, to, digest, &mut stats)?,
        Node::Symlink { .. } => {}
    }
    to.put_path_info(info)?;
    stats.paths = 1;
    Ok(stats)
}

/// Copies every path of `from` (or the given ones) that `to` lacks; a path not valid in
/// `from` is [`StoreError::PathNotValid`].
pub fn copy_paths<F, T>(
    from: &F,
    to: &T,
    paths: Option<&[crate::store_path::StorePath]>,
) -> Result<CopyStats, StoreError>
where
    F: BlobService + DirectoryService + PathInfoService + ?Sized,
    T: BlobService + DirectoryService + PathInfoService + ?Sized,
{
    let infos = match paths {
        None => from.path_infos().collect::<Result<Vec<_>, _>>()?,
        Some(paths) => paths
            .iter()
            .map(|p| {
                from.get_path_info(p)?
                    .ok_or_else(|| StoreError::PathNotValid(p.to_base_name()))
            })
            .collect::<Result<_, _>>()?,
    };
    let mut stats = CopyStats::default();
    for info in &infos {
        stats.add(copy_path(from, to, info)?);
    }
    Ok(stats)
}
