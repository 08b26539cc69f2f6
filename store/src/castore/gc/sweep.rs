//! The sweep of a local store: deleting dead metadata, then compacting packs.
//!
//! Crash safety, step by step (a crash anywhere never loses a live chunk):
//! 1. Dead path infos, directories, blobs and chunk locations go in one durable
//!    transaction, so no valid path ever names something deleted.
//! 2. A pack with no live chunk is removed (nothing names it any more).
//! 3. A pack with dead and live chunks: its live chunks are copied (each checked against
//!    its digest) to a new pack, which is synced, and the directory with it, before one
//!    transaction moves the chunks' locations to it; only after that commit is the old
//!    pack removed. A crash before the commit leaves an unnamed new pack, after it an
//!    unnamed old one: either is removed by the next collection as a pack with no live
//!    chunk. Packs are never changed in place, so other processes' maps of them stay
//!    valid; a reader that meets a removed pack reads the locations again.
//!
//! All of this runs under the exclusive `gc.lock`: no other process is writing, so every
//! pack not named by a committed location is garbage.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::Path;

use redb::ReadableTable;

use super::mark::Live;
use super::GcReport;
use crate::castore::backend::{LocalBackend, Location, Table};
use crate::castore::{chunk_sum, db_err, B3Digest, StoreError};

fn path_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Path {
        path: path.to_path_buf(),
        source,
    }
}

/// Keys of `t` (32-byte digests) not in `live`.
fn dead_keys<T: ReadableTable<&'static [u8], &'static [u8]>>(
    table: &T,
    live: &std::collections::HashSet<B3Digest>,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut dead = Vec::new();
    for item in table.iter().map_err(db_err)? {
        let (k, _) = item.map_err(db_err)?;
        let k = k.value();
        let keep = <[u8; 32]>::try_from(k).is_ok_and(|a| live.contains(&B3Digest(a)));
        if !keep {
            dead.push(k.to_vec());
        }
    }
    Ok(dead)
}

impl LocalBackend {
    /// Deletes what `live` does not hold (path infos: `dead_paths`, by key) and compacts
    /// the packs; in a dry run, only counts. Fills in `report`'s counts and bytes.
    pub(crate) fn sweep(
        &self,
        live: &Live,
        dead_paths: &[Vec<u8>],
        dry_run: bool,
        report: &mut GcReport,
    ) -> Result<(), StoreError> {
        // 1. Metadata.
        let txn = self.db.begin_write().map_err(db_err)?;
        let mut locations: BTreeMap<String, Vec<(B3Digest, Location)>> = BTreeMap::new();
        {
            let mut paths = txn.open_table(Table::PathInfos.def()).map_err(db_err)?;
            let mut dirs = txn.open_table(Table::Directories.def()).map_err(db_err)?;
            let mut blobs = txn.open_table(Table::Blobs.def()).map_err(db_err)?;
            let mut chunks = txn.open_table(Table::Chunks.def()).map_err(db_err)?;
            let dead_dirs = dead_keys(&dirs, &live.directories)?;
            let dead_blobs = dead_keys(&blobs, &live.blobs)?;
            let dead_chunks = dead_keys(&chunks, &live.chunks)?;
            report.directories = dead_dirs.len() as u64;
            report.blobs = dead_blobs.len() as u64;
            report.chunks = dead_chunks.len() as u64;
            if !dry_run {
                for k in dead_paths {
                    paths.remove(k.as_slice()).map_err(db_err)?;
                }
                for k in &dead_dirs {
                    dirs.remove(k.as_slice()).map_err(db_err)?;
                }
                for k in &dead_blobs {
                    blobs.remove(k.as_slice()).map_err(db_err)?;
                }
                for k in &dead_chunks {
                    chunks.remove(k.as_slice()).map_err(db_err)?;
                }
            }
            for item in chunks.iter().map_err(db_err)? {
                let (k, v) = item.map_err(db_err)?;
                let Ok(arr) = <[u8; 32]>::try_from(k.value()) else {
                    continue;
                };
                let d = B3Digest(arr);
                if dry_run && !live.chunks.contains(&d) {
                    continue;
                }
                let loc = Location::decode(v.value())?;
                locations
                    .entry(loc.pack.clone())
                    .or_default()
                    .push((d, loc));
            }
        }
        if dry_run {
            txn.abort().map_err(db_err)?;
        } else {
            txn.commit().map_err(db_err)?;
        }

        // 2. and 3. Packs.
        let mut packs = Vec::new();
        for entry in fs::read_dir(&self.packs_dir).map_err(path_err(&self.packs_dir))? {
            let entry = entry.map_err(path_err(&self.packs_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let size = entry.metadata().map_err(path_err(&entry.path()))?.len();
            packs.push((name, size));
        }
        packs.sort();
        for (name, size) in packs {
            let live_here = locations.remove(&name).unwrap_or_default();
            let live_bytes: u64 = live_here.iter().map(|(_, l)| l.len).sum();
            if live_here.is_empty() {
                report.bytes_freed += size;
                if !dry_run {
                    self.remove_pack(&name)?;
                }
                report.packs_removed += 1;
            } else if live_bytes < size {
                if dry_run {
                    report.bytes_freed += size - live_bytes;
                    report.packs_rewritten += 1;
                    continue;
                }
                match self.rewrite_pack(&name, live_here)? {
                    Ok(new_size) => {
                        report.bytes_freed += size.saturating_sub(new_size);
                        report.packs_rewritten += 1;
                    }
                    Err(problem) => report.problems.push(problem),
                }
            }
        }
        if !dry_run {
            fs::File::open(&self.packs_dir)
                .and_then(|d| d.sync_all())
                .map_err(path_err(&self.packs_dir))?;
        }
        Ok(())
    }

    /// Removes a pack file (and this process's map of it).
    fn remove_pack(&self, name: &str) -> Result<(), StoreError> {
        if let Ok(mut packs) = self.packs.lock() {
            packs.remove(name);
        }
        let path = self.packs_dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(path_err(&path)(e)),
        }
    }

    /// Copies the live chunks of pack `name` to a new pack, moves their locations there
    /// and removes the old pack (see the module's documentation for the order). Returns
    /// the new pack's size, or (inner `Err`) why the pack was left as it is.
    fn rewrite_pack(
        &self,
        name: &str,
        mut chunks: Vec<(B3Digest, Location)>,
    ) -> Result<Result<u64, String>, StoreError> {
        chunks.sort_by_key(|(_, l)| l.offset);
        let need = chunks
            .iter()
            .map(|(_, l)| l.offset + l.len)
            .max()
            .unwrap_or(0);
        let map = {
            let mut packs = self
                .packs
                .lock()
                .map_err(|_| StoreError::Io(std::io::Error::other("store lock poisoned")))?;
            self.pack_bytes(&mut packs, name, need)?
        };
        let Some(map) = map else {
            return Ok(Err(format!("pack {name} vanished during the collection")));
        };
        let new_name = self.fresh_pack_name("-gc");
        let new_path = self.packs_dir.join(&new_name);
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&new_path)
            .map_err(path_err(&new_path))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut moved: HashMap<B3Digest, Location> = HashMap::new();
        let mut offset = 0u64;
        for (d, loc) in &chunks {
            let end = loc.offset + loc.len;
            let bytes =
                (end <= map.len() as u64).then(|| map.slice(loc.offset as usize..end as usize));
            let ok = bytes.as_ref().is_some_and(|b| B3Digest::of(b) == *d);
            let Some(bytes) = bytes.filter(|_| ok) else {
                // Keep the pack: a live chunk that is damaged or cut off is for `verify`
                // to report, not for the collector to drop.
                drop(out);
                let _ = fs::remove_file(&new_path);
                return Ok(Err(format!(
                    "pack {name}: chunk {d} is damaged; the pack was not compacted"
                )));
            };
            out.write_all(&bytes).map_err(path_err(&new_path))?;
            moved.insert(
                *d,
                Location {
                    pack: new_name.clone(),
                    offset,
                    len: loc.len,
                    // The bytes were just checked against their digest.
                    sum: Some(chunk_sum::of(&bytes)),
                },
            );
            offset += loc.len;
        }
        let file = out
            .into_inner()
            .map_err(|e| path_err(&new_path)(e.into_error()))?;
        file.sync_all().map_err(path_err(&new_path))?;
        fs::File::open(&self.packs_dir)
            .and_then(|d| d.sync_all())
            .map_err(path_err(&self.packs_dir))?;
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = txn.open_table(Table::Chunks.def()).map_err(db_err)?;
            for (d, loc) in &moved {
                table
                    .insert(&d.0[..], loc.encode().as_slice())
                    .map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        self.remove_pack(name)?;
        Ok(Ok(offset))
    }
}
