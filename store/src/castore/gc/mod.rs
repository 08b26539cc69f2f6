//! Garbage collection of a local store: roots ([`roots`]), the store-wide lock that keeps
//! a collection from overlapping with writers ([`lock`]), the mark phase ([`mark`]) and
//! the sweep with pack compaction (in the local backend, `backend.rs`'s `sweep`).
//!
//! A collection: take `gc.lock` exclusively (waiting for every writer to finish); read
//! the roots (indirect, direct and the temporary roots of living processes); mark the
//! closure of the rooted paths over references and derivers (Nix's default
//! `keep-derivations = true`), then the directories, blobs and chunks those paths' trees
//! use; delete everything else, path infos first, in one transaction; then rewrite every
//! pack that holds dead chunks (live chunks copied to a new pack made durable before the
//! locations move to it, the old pack removed only after that commit).

pub(crate) mod lock;
pub(crate) mod mark;
pub mod roots;
mod sweep;

pub use roots::{FoundRoots, GcRoots, TempRoots};

use crate::store_path::{StoreDir, StorePath};

/// What a collection is asked to do.
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Only find out what would be deleted.
    pub dry_run: bool,
    /// The store directory root links point into.
    pub store_dir: StoreDir,
}

/// What a collection did (or, in a dry run, would do).
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    /// The store paths deleted, sorted.
    pub deleted: Vec<StorePath>,
    /// Bytes of pack files freed (in a dry run: the bytes of dead chunks and unused packs).
    pub bytes_freed: u64,
    /// Paths the roots keep alive (the live set).
    pub live_paths: usize,
    /// Dead roots removed (or found, in a dry run).
    pub dead_roots: usize,
    /// Directories, blobs and chunks deleted.
    pub directories: u64,
    /// See `directories`.
    pub blobs: u64,
    /// See `directories`.
    pub chunks: u64,
    /// Packs removed whole, and packs rewritten without their dead chunks.
    pub packs_removed: u64,
    /// See `packs_removed`.
    pub packs_rewritten: u64,
    /// Problems that kept something from being compacted (a corrupt chunk stays where it
    /// is, for `tvix store verify` to report).
    pub problems: Vec<String>,
}
