//! Substitution on first access: what a FUSE mount of the store asks when a path it is
//! looked up by is not in the store ([`tvix_store::fuse::FetchMissing`]). The path and its
//! closure come from the configured substituters (binary caches, other tvix stores) into
//! the mounted store, checked and registered references first as any substitution is; the
//! lookup then finds it.

use std::sync::Arc;

use tvix_build::CancelToken;
use tvix_store::fuse::FetchMissing;
use tvix_store::{StorePath, StoreService};

use super::Substituters;

/// Fetches missing paths from `substituters` into `store`.
pub struct OnAccess {
    substituters: Substituters,
    store: Arc<dyn StoreService>,
}

impl OnAccess {
    /// Substitutes into `store` (the store the mount serves) from `substituters`.
    pub fn new(substituters: Substituters, store: Arc<dyn StoreService>) -> OnAccess {
        OnAccess {
            substituters,
            store,
        }
    }
}

impl FetchMissing for OnAccess {
    fn fetch(&self, path: &StorePath) -> Result<bool, String> {
        let paths = std::slice::from_ref(path);
        let mut warnings = Vec::new();
        let found = self.substituters.find(paths, &mut warnings);
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        let Some(from) = found else {
            return Ok(false);
        };
        let mut copying = |p: &StorePath| {
            eprintln!(
                "copying path '{}' from '{}'...",
                p.to_absolute_path(),
                from.name()
            );
        };
        let done = from.substitute(paths, &*self.store, &mut copying, &CancelToken::new());
        for w in from.take_warnings() {
            eprintln!("warning: {w}");
        }
        done.map_err(|e| e.to_string())?;
        self.store
            .commit()
            .map_err(|e| format!("committing {}: {e}", path.to_base_name()))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::substitute::tests::{add, path};
    use crate::substitute::StoreSubstituter;
    use tvix_store::castore::Store;

    #[test]
    fn a_missing_path_comes_with_its_closure() {
        let source = Store::memory();
        let (dep, top) = (path("dep"), path("top"));
        add(&source, &dep, &[]);
        add(&source, &top, &[&dep]);
        let target: Arc<dyn StoreService> = Arc::new(Store::memory());
        let on_access = OnAccess::new(
            Substituters::new(vec![Box::new(StoreSubstituter::new(Box::new(source)))]),
            target.clone(),
        );
        assert!(on_access.fetch(&top).unwrap());
        assert!(target.get_path_info(&top).unwrap().is_some());
        assert!(target.get_path_info(&dep).unwrap().is_some());
        let nobody = path("nobody");
        assert!(!on_access.fetch(&nobody).unwrap());
        assert!(target.get_path_info(&nobody).unwrap().is_none());
    }
}
