//! Substitution: getting a derivation's outputs from somewhere that has them instead of
//! building them.
//!
//! [`Substituter`] is what the executor asks ("do you have all of these?") and tells
//! ("copy them, with what they refer to, into this store"). [`StoreSubstituter`] is
//! another tvix store (local or gRPC: a shared build farm store, a colleague's daemon);
//! [`binary_cache::BinaryCache`] is a Nix binary cache (`file://`, `http(s)://`).
//! [`Substituters`] asks several in priority order, as Nix's `substituters` setting does.
//!
//! A substitution registers references before the paths that refer to them, and a path
//! only after its whole contents are in the target store, so a store interrupted during a
//! substitution holds nothing incomplete.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;
use tvix_build::CancelToken;
use tvix_store::castore::{copy, StoreError};
use tvix_store::{StorePath, StoreService};

use crate::closure::{closure_of, ClosureError};

pub mod binary_cache;
pub mod on_access;
pub mod transport;

/// Why a substitution failed.
#[derive(Debug, Error)]
pub enum SubstituteError {
    /// A store failed.
    #[error("substituting from '{from}': {source}")]
    Store {
        /// The substituter.
        from: String,
        /// What failed.
        source: StoreError,
    },
    /// The closure could not be read from the substituter.
    #[error("substituting from '{from}': {source}")]
    Closure {
        /// The substituter.
        from: String,
        /// What failed.
        source: ClosureError,
    },
    /// A binary cache could not provide a path (the path was not registered).
    #[error("substituting from '{from}': {source}")]
    Cache {
        /// The cache.
        from: String,
        /// What failed.
        source: Box<binary_cache::CacheError>,
    },
    /// No substituter has the outputs any more.
    #[error("no substituter has the outputs of '{drv}'")]
    Unavailable {
        /// The derivation.
        drv: String,
    },
    /// The run was cancelled.
    #[error("substitution cancelled")]
    Cancelled,
}

/// How far a substitution's copying got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyProgress<'a> {
    /// The copy of `path` starts; `expected` bytes will be transferred (as the cache
    /// stores them, compressed; 0 when unknown).
    Started {
        /// The store path.
        path: &'a StorePath,
        /// Bytes to transfer.
        expected: u64,
    },
    /// `done` bytes of the path being copied have arrived so far.
    Transferred {
        /// Bytes so far.
        done: u64,
    },
}

/// Something that can provide store paths with their closures.
pub trait Substituter: Sync {
    /// The URL or name shown to users (`copying path ... from 'URL'`).
    fn name(&self) -> &str;

    /// Whether it can provide every one of `paths`.
    fn has_all(&self, paths: &[StorePath]) -> Result<bool, SubstituteError>;

    /// Copies `paths` and everything they refer to into `store`; what `store` has already
    /// is not copied again. `copying` is told each path as its copy starts.
    fn substitute(
        &self,
        paths: &[StorePath],
        store: &dyn StoreService,
        copying: &mut (dyn FnMut(&StorePath) + Send),
        cancel: &CancelToken,
    ) -> Result<(), SubstituteError>;

    /// [`Substituter::substitute`], telling `progress` each path as its copy starts
    /// (with the bytes it will transfer) and the bytes transferred as they arrive.
    /// Substituters that cannot count bytes report only the starts, expecting 0 bytes.
    fn substitute_reporting(
        &self,
        paths: &[StorePath],
        store: &dyn StoreService,
        progress: &mut (dyn FnMut(CopyProgress<'_>) + Send),
        cancel: &CancelToken,
    ) -> Result<(), SubstituteError> {
        self.substitute(
            paths,
            store,
            &mut |path| progress(CopyProgress::Started { path, expected: 0 }),
            cancel,
        )
    }

    /// What it refused or passed over since last asked (an unsigned narinfo, a cache
    /// that cannot be read), for the run to show as warnings.
    fn take_warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A tvix store as a substituter: trusted as the store itself is, so no signatures.
pub struct StoreSubstituter {
    source: Box<dyn StoreService>,
}

impl StoreSubstituter {
    /// Substitutes from `source`.
    pub fn new(source: Box<dyn StoreService>) -> StoreSubstituter {
        StoreSubstituter { source }
    }

    fn store_error(&self, source: StoreError) -> SubstituteError {
        SubstituteError::Store {
            from: self.name().to_string(),
            source,
        }
    }
}

/// `items` ordered so that every item comes after the items it refers to (self-references
/// aside): `path` names an item, `refs` what it refers to; references to paths not among
/// `items` are ignored. Items are visited in path order, so the result is deterministic.
pub fn order_references_first<T>(
    items: Vec<T>,
    path: impl Fn(&T) -> &StorePath,
    refs: impl Fn(&T) -> &[StorePath],
) -> Vec<T> {
    let mut by_path: BTreeMap<StorePath, T> =
        items.into_iter().map(|i| (path(&i).clone(), i)).collect();
    let mut order = Vec::with_capacity(by_path.len());
    let mut done: BTreeSet<StorePath> = BTreeSet::new();
    let roots: Vec<StorePath> = by_path.keys().cloned().collect();
    for root in roots {
        // Depth-first, post-order, with an explicit stack: (path, children pushed?).
        let mut stack = vec![(root, false)];
        while let Some((p, expanded)) = stack.pop() {
            if done.contains(&p) {
                continue;
            }
            let Some(item) = by_path.get(&p) else {
                continue;
            };
            if expanded {
                done.insert(p.clone());
                order.push(by_path.remove(&p).expect("present above"));
                continue;
            }
            let children: Vec<StorePath> = refs(item)
                .iter()
                .filter(|r| **r != p && !done.contains(*r))
                .cloned()
                .collect();
            stack.push((p, true));
            // A cycle (only in a corrupt store) is cut where it is found again.
            stack.extend(children.into_iter().map(|r| (r, false)));
        }
    }
    order
}

impl Substituter for StoreSubstituter {
    fn name(&self) -> &str {
        self.source.url()
    }

    fn has_all(&self, paths: &[StorePath]) -> Result<bool, SubstituteError> {
        for p in paths {
            if self
                .source
                .get_path_info(p)
                .map_err(|e| self.store_error(e))?
                .is_none()
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn substitute(
        &self,
        paths: &[StorePath],
        store: &dyn StoreService,
        copying: &mut (dyn FnMut(&StorePath) + Send),
        cancel: &CancelToken,
    ) -> Result<(), SubstituteError> {
        let roots: BTreeSet<StorePath> = paths.iter().cloned().collect();
        let closure = closure_of(&*self.source, &roots).map_err(|e| match e {
            ClosureError::Store(s) => self.store_error(s),
            other => SubstituteError::Closure {
                from: self.name().to_string(),
                source: other,
            },
        })?;
        let ordered =
            order_references_first(closure, |i| &i.store_path, |i| i.references.as_slice());
        for info in ordered {
            if cancel.is_cancelled() {
                return Err(SubstituteError::Cancelled);
            }
            if store
                .get_path_info(&info.store_path)
                .map_err(|e| self.store_error(e))?
                .is_some()
            {
                continue;
            }
            copying(&info.store_path);
            copy::copy_path(&*self.source, store, &info).map_err(|e| self.store_error(e))?;
        }
        Ok(())
    }
}

/// Several substituters, asked in order: a derivation's outputs come from the first that
/// has all of them.
#[derive(Default)]
pub struct Substituters {
    list: Vec<Box<dyn Substituter + Send>>,
}

impl Substituters {
    /// Asks `list` in this order.
    pub fn new(list: Vec<Box<dyn Substituter + Send>>) -> Substituters {
        Substituters { list }
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The first substituter that has every one of `paths`. One that cannot be asked
    /// (an unreachable cache, a timeout) is passed over with a warning in `warnings`, as
    /// Nix passes over it.
    pub fn find(
        &self,
        paths: &[StorePath],
        warnings: &mut Vec<String>,
    ) -> Option<&dyn Substituter> {
        self.find_after(paths, 0, warnings).map(|(_, s)| s)
    }

    /// The first substituter from position `start` on that has every one of `paths`,
    /// with its position (see [`Substituters::find`]).
    pub fn find_after(
        &self,
        paths: &[StorePath],
        start: usize,
        warnings: &mut Vec<String>,
    ) -> Option<(usize, &dyn Substituter)> {
        for (idx, s) in self.list.iter().enumerate().skip(start) {
            let has = s.has_all(paths);
            warnings.extend(s.take_warnings());
            match has {
                Ok(true) => return Some((idx, &**s)),
                Ok(false) => {}
                Err(e) => warnings.push(e.to_string()),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvix_store::castore::{BlobService, Node, Store};
    use tvix_store::pathinfo::PathInfo;
    use tvix_store::pathinfo::PathInfoService;

    pub(super) fn path(name: &str) -> StorePath {
        // Distinct, valid hash parts: nixbase32 letters only.
        let hash: String = name.chars().cycle().take(32).map(|_| 'a').collect();
        let mut hash = hash.into_bytes();
        for (i, c) in name.bytes().enumerate().take(32) {
            hash[i] = b"0123456789abcdfghijklmnpqrsvwxyz"[(c as usize) % 32];
        }
        StorePath::from_base_name(&format!("{}-{name}", String::from_utf8(hash).unwrap())).unwrap()
    }

    pub(super) fn add(store: &Store, p: &StorePath, refs: &[&StorePath]) {
        let (digest, size) = store.put_blob(&mut &p.name().as_bytes()[..]).unwrap();
        store
            .put_path_info(&PathInfo {
                store_path: p.clone(),
                node: Node::File {
                    digest,
                    size,
                    executable: false,
                },
                nar_sha256: [0; 32],
                nar_size: 0,
                references: refs.iter().map(|r| (*r).clone()).collect(),
                deriver: None,
                signatures: vec![],
                ca: None,
            })
            .unwrap();
    }

    #[test]
    fn copies_the_closure_references_first_and_skips_what_is_there() {
        let source = Store::memory();
        let (lib, dep, app) = (path("lib"), path("dep"), path("app"));
        add(&source, &lib, &[]);
        add(&source, &dep, &[&lib]);
        add(&source, &app, &[&dep, &lib, &app]);
        let target = Store::memory();
        add(&target, &lib, &[]);
        let s = StoreSubstituter::new(Box::new(source));
        assert!(s.has_all(std::slice::from_ref(&app)).unwrap());
        assert!(!s.has_all(&[path("other")]).unwrap());
        let mut copied = Vec::new();
        s.substitute(
            std::slice::from_ref(&app),
            &target,
            &mut |p| copied.push(p.name().to_string()),
            &CancelToken::new(),
        )
        .unwrap();
        assert_eq!(copied, ["dep", "app"]);
        let info = target.get_path_info(&app).unwrap().unwrap();
        assert_eq!(info.references.len(), 3);
        // The contents came along (the path infos here carry no real NAR hash, so this
        // looks at the blob rather than verifying the store).
        let Node::File { digest, .. } = info.node else {
            panic!("a file was added")
        };
        assert!(target.has_blob(&digest).unwrap());
    }

    #[test]
    fn a_cancelled_substitution_registers_nothing_more() {
        let source = Store::memory();
        let a = path("a");
        add(&source, &a, &[]);
        let target = Store::memory();
        let cancel = CancelToken::new();
        cancel.cancel();
        let s = StoreSubstituter::new(Box::new(source));
        let e = s
            .substitute(std::slice::from_ref(&a), &target, &mut |_| {}, &cancel)
            .unwrap_err();
        assert!(matches!(e, SubstituteError::Cancelled));
        assert!(target.get_path_info(&a).unwrap().is_none());
    }

    #[test]
    fn the_first_substituter_with_everything_wins() {
        let (one, two) = (Store::memory(), Store::memory());
        let (a, b) = (path("a"), path("b"));
        add(&one, &a, &[]);
        add(&two, &a, &[]);
        add(&two, &b, &[]);
        let list = Substituters::new(vec![
            Box::new(StoreSubstituter::new(Box::new(one))),
            Box::new(StoreSubstituter::new(Box::new(two))),
        ]);
        let both = [a.clone(), b.clone()];
        let mut warnings = Vec::new();
        let found = list.find(&both, &mut warnings).unwrap();
        assert!(found.has_all(&both).unwrap());
        assert!(list.find(&[path("zzz")], &mut warnings).is_none());
        assert!(warnings.is_empty());
        assert!(!list.is_empty());
    }
}
