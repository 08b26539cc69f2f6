//! The input closure of a derivation: the outputs it uses of its input derivations and
//! its input sources, and everything those refer to, transitively, read from the store's
//! path infos.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;
use tvix_store::castore::{Node, StoreError};
use tvix_store::pathinfo::{PathInfo, PathInfoService};
use tvix_store::{Derivation, StoreDir, StorePath};

/// Why a closure cannot be computed.
#[derive(Debug, Error)]
pub enum ClosureError {
    /// A path the closure needs is not valid in the store.
    #[error("path '{0}' is required, but it is not valid in the store")]
    Missing(String),
    /// An input derivation is not known, or does not have the output used.
    #[error("derivation '{drv}' uses output '{output}' of '{input}', which it does not have")]
    NoSuchOutput {
        /// The derivation being built.
        drv: String,
        /// The input derivation.
        input: String,
        /// The output.
        output: String,
    },
    /// A path in the derivation is not a store path.
    #[error("'{0}' is not a store path")]
    NotAStorePath(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The direct inputs of `drv`: the used outputs of its input derivations (their
/// derivations looked up with `input_drv`) and its input sources.
pub fn input_roots<'a>(
    drv: &Derivation,
    drv_path: &str,
    input_drv: impl Fn(&str) -> Option<&'a Derivation>,
) -> Result<BTreeSet<StorePath>, ClosureError> {
    let store_dir = StoreDir::default();
    let parse = |p: &str| {
        store_dir
            .parse_path(p)
            .map_err(|_| ClosureError::NotAStorePath(p.to_string()))
    };
    let mut roots = BTreeSet::new();
    for (input, outputs) in &drv.input_derivations {
        let input_drv = input_drv(input);
        for output in outputs {
            let path = input_drv
                .and_then(|d| d.outputs.get(output))
                .ok_or_else(|| ClosureError::NoSuchOutput {
                    drv: drv_path.to_string(),
                    input: input.clone(),
                    output: output.clone(),
                })?;
            roots.insert(parse(&path.path)?);
        }
    }
    for src in &drv.input_sources {
        roots.insert(parse(src)?);
    }
    Ok(roots)
}

/// The closure of `roots` under the references recorded in `store`: every path info,
/// sorted by store path.
pub fn closure_of<S>(store: &S, roots: &BTreeSet<StorePath>) -> Result<Vec<PathInfo>, ClosureError>
where
    S: PathInfoService + ?Sized,
{
    let mut seen: BTreeMap<StorePath, PathInfo> = BTreeMap::new();
    let mut todo: Vec<StorePath> = roots.iter().cloned().collect();
    while let Some(p) = todo.pop() {
        if seen.contains_key(&p) {
            continue;
        }
        let info = store
            .get_path_info(&p)?
            .ok_or_else(|| ClosureError::Missing(format!("/nix/store/{p}")))?;
        for r in &info.references {
            if !seen.contains_key(r) {
                todo.push(r.clone());
            }
        }
        seen.insert(p, info);
    }
    Ok(seen.into_values().collect())
}

/// The closure as the build request wants it: (store path, root node) pairs.
pub fn as_inputs(closure: &[PathInfo]) -> Vec<(StorePath, Node)> {
    closure
        .iter()
        .map(|i| (i.store_path.clone(), i.node.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvix_store::castore::Store;
    use tvix_store::derivation::Output;

    fn sp(c: char, name: &str) -> StorePath {
        StorePath::from_base_name(&format!("{}-{name}", c.to_string().repeat(32))).unwrap()
    }

    fn register(store: &Store, p: &StorePath, refs: &[&StorePath]) {
        let target = b"/t".to_vec();
        store
            .put_path_info(&PathInfo {
                store_path: p.clone(),
                node: Node::Symlink { target },
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
    fn closure_follows_references() {
        let store = Store::memory();
        let (a, b, c, d) = (sp('a', "a"), sp('b', "b"), sp('c', "c"), sp('d', "d"));
        register(&store, &c, &[&c]);
        register(&store, &b, &[&c]);
        register(&store, &a, &[&b, &a]);
        register(&store, &d, &[]);
        let got = closure_of(&store, &[a.clone()].into()).unwrap();
        let names: Vec<_> = got.iter().map(|i| i.store_path.clone()).collect();
        assert_eq!(names, vec![a, b, c]);
    }

    #[test]
    fn missing_path_is_an_error() {
        let store = Store::memory();
        let a = sp('a', "a");
        register(&store, &a, &[&sp('b', "b")]);
        assert!(matches!(
            closure_of(&store, &[a].into()),
            Err(ClosureError::Missing(p)) if p.ends_with("-b")
        ));
    }

    #[test]
    fn roots_are_used_outputs_and_sources() {
        let mut input = Derivation::default();
        for (n, c) in [("out", 'f'), ("dev", 'g')] {
            input.outputs.insert(
                n.into(),
                Output {
                    path: format!("/nix/store/{}", sp(c, n)),
                    ..Default::default()
                },
            );
        }
        let mut drv = Derivation::default();
        drv.input_derivations
            .insert("/nix/store/x.drv".into(), ["dev".to_string()].into());
        drv.input_sources
            .insert(format!("/nix/store/{}", sp('h', "src")));
        let roots = input_roots(&drv, "d", |_| Some(&input)).unwrap();
        assert_eq!(roots, [sp('g', "dev"), sp('h', "src")].into());
        drv.input_derivations
            .insert("/nix/store/x.drv".into(), ["lib".to_string()].into());
        assert!(matches!(
            input_roots(&drv, "d", |_| Some(&input)),
            Err(ClosureError::NoSuchOutput { .. })
        ));
    }
}
