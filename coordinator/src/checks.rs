//! What Nix checks of a build's outputs before it registers them: the hash of a
//! fixed output, the reference constraints (`allowedReferences`, `disallowedReferences`,
//! `allowedRequisites`, `disallowedRequisites`, and with structured attributes
//! `outputChecks.<output>` with `maxSize` and `maxClosureSize` too), and the order the
//! outputs refer to each other in (a cycle is an error).

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;
use tvix_store::castore::{nar::write_nar, Node, StoreError};
use tvix_store::hash::Hasher;
use tvix_store::{Derivation, FileIngestionMethod, NixHash, StorePath, StoreService};

use crate::request::{json_strings, ParsedAttrs};

/// One output of a finished build, with its references resolved to store paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltOutput {
    /// The output name.
    pub name: String,
    /// Its store path.
    pub path: StorePath,
    /// Its contents.
    pub node: Node,
    /// sha256 of its NAR.
    pub nar_sha256: [u8; 32],
    /// Size of its NAR.
    pub nar_size: u64,
    /// The store paths it refers to (itself and other outputs included).
    pub references: BTreeSet<StorePath>,
}

/// An output that fails a check. Messages are Nix's.
#[derive(Debug, Error)]
pub enum CheckError {
    /// A fixed output's hash is not the one specified.
    #[error("hash mismatch in fixed-output derivation '{drv}':\n  specified: {specified}\n     got:    {got}")]
    HashMismatch {
        /// The derivation.
        drv: String,
        /// The hash the derivation specifies (SRI).
        specified: String,
        /// The hash of the output (SRI).
        got: String,
    },
    /// A flat fixed output is not a regular, non-executable file.
    #[error("output path '{0}' should be a non-executable regular file since recursive hashing is not enabled (outputHashMode=flat)")]
    NotFlatFile(String),
    /// A fixed output's hash in the derivation is not valid.
    #[error("derivation '{drv}' has an invalid output hash: {reason}")]
    BadOutputHash {
        /// The derivation.
        drv: String,
        /// What is wrong.
        reason: String,
    },
    /// An output refers to paths it may not.
    #[error("output '{output}' is not allowed to refer to the following paths:{}", .paths.iter().map(|p| format!("\n  {p}")).collect::<String>())]
    Forbidden {
        /// The output's path.
        output: String,
        /// The paths it may not refer to.
        paths: Vec<String>,
    },
    /// A reference specifier is neither a store path nor an output name.
    #[error("derivation contains an illegal reference specifier '{0}'")]
    IllegalSpecifier(String),
    /// An `outputChecks` attribute has the wrong type.
    #[error("attribute '{name}' of derivation '{drv}' must be {what}")]
    BadAttribute {
        /// The attribute.
        name: String,
        /// The derivation.
        drv: String,
        /// What it must be.
        what: &'static str,
    },
    /// An output's NAR is larger than `maxSize`.
    #[error("path '{path}' is too large at {size} bytes; limit is {limit} bytes")]
    TooLarge {
        /// The output.
        path: String,
        /// Its NAR size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An output's closure is larger than `maxClosureSize`.
    #[error("closure of path '{path}' is too large at {size} bytes; limit is {limit} bytes")]
    ClosureTooLarge {
        /// The output.
        path: String,
        /// The closure's NAR size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The outputs refer to each other in a cycle.
    #[error("cycle detected in build of '{drv}' in the references of output '{output}' from output '{parent}'")]
    Cycle {
        /// The derivation.
        drv: String,
        /// The output reached again.
        output: String,
        /// The output referring to it.
        parent: String,
    },
    /// The derivation's attributes are malformed.
    #[error(transparent)]
    Attrs(#[from] crate::request::RequestError),
    /// A referenced path is not in the store.
    #[error("path '{0}' is not valid")]
    Missing(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn abs(p: &StorePath) -> String {
    format!("/nix/store/{p}")
}

/// Checks a fixed output's contents against the hash its derivation specifies: a flat
/// output must be a regular, non-executable file whose bytes hash to it; a recursive one's
/// NAR must (rendered from the castore unless the algorithm is sha256, whose NAR hash the
/// build already computed). Does nothing for other derivations.
pub fn check_fixed_output<S>(
    store: &S,
    drv: &Derivation,
    drv_path: &str,
    outputs: &[BuiltOutput],
) -> Result<(), CheckError>
where
    S: StoreService + ?Sized,
{
    if !drv.is_fixed_output() {
        return Ok(());
    }
    let Some(Some(spec)) = drv.outputs.get("out").map(|o| o.fixed_hash()) else {
        return Ok(());
    };
    let (method, wanted) = spec.map_err(|e| CheckError::BadOutputHash {
        drv: drv_path.to_string(),
        reason: e.to_string(),
    })?;
    let Some(out) = outputs.iter().find(|o| o.name == "out") else {
        return Ok(());
    };
    // Nix hashes a fixed output modulo its own path: see [`hash_modulo`].
    let self_ref = out.references.contains(&out.path);
    let got = match method {
        FileIngestionMethod::Flat => match &out.node {
            Node::File {
                digest,
                executable: false,
                ..
            } => {
                let mut r = store
                    .open_blob(digest)?
                    .ok_or(StoreError::BlobNotFound(*digest))?;
                if self_ref {
                    let mut bytes = Vec::new();
                    std::io::copy(&mut r, &mut bytes).map_err(StoreError::from_io)?;
                    hash_modulo(wanted.algo(), &bytes, &out.path.hash_part())
                } else {
                    let mut h = Hasher::new(wanted.algo());
                    std::io::copy(&mut r, &mut h).map_err(StoreError::from_io)?;
                    h.finish()
                }
            }
            _ => return Err(CheckError::NotFlatFile(abs(&out.path))),
        },
        FileIngestionMethod::Recursive => {
            if self_ref {
                let nar = write_nar(store, &out.node, Vec::new())?;
                hash_modulo(wanted.algo(), &nar, &out.path.hash_part())
            } else if wanted.algo() == tvix_store::HashAlgo::Sha256 {
                NixHash::from_digest(tvix_store::HashAlgo::Sha256, out.nar_sha256.to_vec())
                    .map_err(|e| CheckError::BadOutputHash {
                        drv: drv_path.to_string(),
                        reason: e.to_string(),
                    })?
            } else {
                write_nar(store, &out.node, Hasher::new(wanted.algo()))?.finish()
            }
        }
    };
    if got != wanted {
        return Err(CheckError::HashMismatch {
            drv: drv_path.to_string(),
            specified: wanted.to_sri(),
            got: got.to_sri(),
        });
    }
    Ok(())
}

/// Nix's `HashModuloSink`: the hash of `data` with every occurrence of `hash_part` (the
/// output's own hash part) replaced by NUL bytes, followed by `|POS` for the offset of
/// each occurrence. This is how a fixed output that refers to itself is hashed.
pub fn hash_modulo(algo: tvix_store::HashAlgo, data: &[u8], hash_part: &str) -> NixHash {
    let needle = hash_part.as_bytes();
    let mut h = Hasher::new(algo);
    let mut positions = Vec::new();
    let mut i = 0;
    let mut start = 0;
    while !needle.is_empty() && i + needle.len() <= data.len() {
        if &data[i..i + needle.len()] == needle {
            h.update(&data[start..i]);
            h.update(&vec![0u8; needle.len()]);
            positions.push(i);
            i += needle.len();
            start = i;
        } else {
            i += 1;
        }
    }
    h.update(&data[start..]);
    for p in positions {
        h.update(format!("|{p}").as_bytes());
    }
    h.finish()
}

/// One set of reference constraints (one output's `outputChecks`, or the derivation's
/// top-level attributes, which apply to every output).
#[derive(Debug, Default)]
struct Constraints {
    ignore_self_refs: bool,
    max_size: Option<u64>,
    max_closure_size: Option<u64>,
    allowed_references: Option<Vec<String>>,
    disallowed_references: Option<Vec<String>>,
    allowed_requisites: Option<Vec<String>>,
    disallowed_requisites: Option<Vec<String>>,
}

/// The closure sizes and references of the new outputs, with the store's path infos for
/// everything else.
struct Graph<'a, S: ?Sized> {
    store: &'a S,
    outputs: BTreeMap<StorePath, &'a BuiltOutput>,
}

impl<S: StoreService + ?Sized> Graph<'_, S> {
    /// The closure of `p` and the sum of its NAR sizes.
    fn closure(&self, p: &StorePath) -> Result<(BTreeSet<StorePath>, u64), CheckError> {
        let mut seen = BTreeSet::new();
        let mut size = 0;
        let mut todo = vec![p.clone()];
        while let Some(p) = todo.pop() {
            if !seen.insert(p.clone()) {
                continue;
            }
            let refs: Vec<StorePath> = if let Some(o) = self.outputs.get(&p) {
                size += o.nar_size;
                o.references.iter().cloned().collect()
            } else {
                let info = self
                    .store
                    .get_path_info(&p)?
                    .ok_or_else(|| CheckError::Missing(abs(&p)))?;
                size += info.nar_size;
                info.references
            };
            todo.extend(refs.into_iter().filter(|r| !seen.contains(r)));
        }
        Ok((seen, size))
    }
}

/// Applies the reference constraints Nix 2.8 applies to each output.
pub fn check_references<S>(
    store: &S,
    drv: &Derivation,
    drv_path: &str,
    outputs: &[BuiltOutput],
) -> Result<(), CheckError>
where
    S: StoreService + ?Sized,
{
    let attrs = ParsedAttrs::new(drv, drv_path)?;
    let graph = Graph {
        store,
        outputs: outputs.iter().map(|o| (o.path.clone(), o)).collect(),
    };
    let by_name: BTreeMap<&str, &StorePath> =
        outputs.iter().map(|o| (o.name.as_str(), &o.path)).collect();
    let not_strings = |name: &str| CheckError::BadAttribute {
        name: name.to_string(),
        drv: drv_path.to_string(),
        what: "a list of strings",
    };
    for out in outputs {
        let constraints = match attrs.structured() {
            Some(json) => {
                let Some(c) = json
                    .get("outputChecks")
                    .and_then(|c| c.as_object())
                    .and_then(|c| c.get(&out.name))
                    .and_then(|c| c.as_object())
                else {
                    continue;
                };
                let list = |name: &str| -> Result<Option<Vec<String>>, CheckError> {
                    c.get(name)
                        .map(|v| json_strings(v).ok_or_else(|| not_strings(name)))
                        .transpose()
                };
                let size = |name: &str| -> Result<Option<u64>, CheckError> {
                    c.get(name)
                        .map(|v| {
                            v.as_u64().ok_or_else(|| CheckError::BadAttribute {
                                name: name.to_string(),
                                drv: drv_path.to_string(),
                                what: "an unsigned integer",
                            })
                        })
                        .transpose()
                };
                Constraints {
                    ignore_self_refs: false,
                    max_size: size("maxSize")?,
                    max_closure_size: size("maxClosureSize")?,
                    allowed_references: list("allowedReferences")?,
                    disallowed_references: list("disallowedReferences")?,
                    allowed_requisites: list("allowedRequisites")?,
                    disallowed_requisites: list("disallowedRequisites")?,
                }
            }
            None => {
                let list = |name: &str| attrs.strings_attr(name, drv_path).ok().flatten();
                Constraints {
                    ignore_self_refs: true,
                    allowed_references: list("allowedReferences"),
                    disallowed_references: list("disallowedReferences"),
                    allowed_requisites: list("allowedRequisites"),
                    disallowed_requisites: list("disallowedRequisites"),
                    ..Default::default()
                }
            }
        };
        if let Some(limit) = constraints.max_size {
            if out.nar_size > limit {
                return Err(CheckError::TooLarge {
                    path: abs(&out.path),
                    size: out.nar_size,
                    limit,
                });
            }
        }
        if let Some(limit) = constraints.max_closure_size {
            let (_, size) = graph.closure(&out.path)?;
            if size > limit {
                return Err(CheckError::ClosureTooLarge {
                    path: abs(&out.path),
                    size,
                    limit,
                });
            }
        }
        let checks = [
            (&constraints.allowed_references, true, false),
            (&constraints.disallowed_references, false, false),
            (&constraints.allowed_requisites, true, true),
            (&constraints.disallowed_requisites, false, true),
        ];
        for (spec, allowed, recursive) in checks {
            let Some(spec) = spec else { continue };
            let mut wanted = BTreeSet::new();
            for s in spec {
                if let Some(p) = s
                    .strip_prefix("/nix/store/")
                    .and_then(|b| StorePath::from_base_name(b).ok())
                {
                    wanted.insert(p);
                } else if let Some(p) = by_name.get(s.as_str()) {
                    wanted.insert((*p).clone());
                } else {
                    return Err(CheckError::IllegalSpecifier(s.clone()));
                }
            }
            let mut used = if recursive {
                graph.closure(&out.path)?.0
            } else {
                out.references.clone()
            };
            if recursive && constraints.ignore_self_refs {
                used.remove(&out.path);
            }
            let bad: Vec<String> = used
                .iter()
                .filter(|p| wanted.contains(*p) != allowed)
                .map(abs)
                .collect();
            if !bad.is_empty() {
                return Err(CheckError::Forbidden {
                    output: abs(&out.path),
                    paths: bad,
                });
            }
        }
    }
    Ok(())
}

/// The outputs in an order where each comes after the outputs it refers to (so they can
/// be registered one by one); a cycle between outputs is an error.
pub fn registration_order(
    drv_path: &str,
    outputs: &[BuiltOutput],
) -> Result<Vec<usize>, CheckError> {
    let index: BTreeMap<&StorePath, usize> = outputs
        .iter()
        .enumerate()
        .map(|(i, o)| (&o.path, i))
        .collect();
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut state = vec![0u8; outputs.len()];
    let mut order = Vec::with_capacity(outputs.len());
    for start in 0..outputs.len() {
        if state[start] != 0 {
            continue;
        }
        // An explicit stack of (output, its remaining dependencies).
        let deps = |i: usize| -> Vec<usize> {
            outputs[i]
                .references
                .iter()
                .filter(|r| **r != outputs[i].path)
                .filter_map(|r| index.get(r).copied())
                .collect()
        };
        let mut stack = vec![(start, deps(start))];
        state[start] = 1;
        while let Some((i, rest)) = stack.last_mut() {
            let i = *i;
            match rest.pop() {
                Some(d) => match state[d] {
                    0 => {
                        state[d] = 1;
                        let dd = deps(d);
                        stack.push((d, dd));
                    }
                    1 => {
                        return Err(CheckError::Cycle {
                            drv: drv_path.to_string(),
                            output: outputs[d].name.clone(),
                            parent: outputs[i].name.clone(),
                        })
                    }
                    _ => {}
                },
                None => {
                    state[i] = 2;
                    order.push(i);
                    stack.pop();
                }
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvix_store::castore::{BlobService, Store};
    use tvix_store::derivation::Output;
    use tvix_store::pathinfo::{PathInfo, PathInfoService};

    fn sp(c: char, name: &str) -> StorePath {
        StorePath::from_base_name(&format!("{}-{name}", c.to_string().repeat(32))).unwrap()
    }

    fn built(name: &str, path: &StorePath, refs: &[&StorePath]) -> BuiltOutput {
        BuiltOutput {
            name: name.into(),
            path: path.clone(),
            node: Node::Symlink {
                target: b"/x".to_vec(),
            },
            nar_sha256: [0; 32],
            nar_size: 100,
            references: refs.iter().map(|r| (*r).clone()).collect(),
        }
    }

    fn drv_with(env: &[(&str, &str)], outs: &[(&str, &StorePath)]) -> Derivation {
        let mut d = Derivation::default();
        for (n, p) in outs {
            d.outputs.insert(
                n.to_string(),
                Output {
                    path: abs(p),
                    ..Default::default()
                },
            );
        }
        for (k, v) in env {
            d.env.insert(k.to_string(), v.to_string());
        }
        d
    }

    fn store_with(p: &StorePath, refs: &[&StorePath]) -> Store {
        let s = Store::memory();
        s.put_path_info(&PathInfo {
            store_path: p.clone(),
            node: Node::Symlink {
                target: b"/x".to_vec(),
            },
            nar_sha256: [0; 32],
            nar_size: 1000,
            references: refs.iter().map(|r| (*r).clone()).collect(),
            deriver: None,
            signatures: vec![],
            ca: None,
        })
        .unwrap();
        s
    }

    #[test]
    fn allowed_and_disallowed_references() {
        let (out, dep) = (sp('a', "out"), sp('b', "dep"));
        let store = store_with(&dep, &[]);
        let o = [built("out", &out, &[&out, &dep])];
        let ok = drv_with(
            &[("allowedReferences", &format!("out {}", abs(&dep)))],
            &[("out", &out)],
        );
        check_references(&store, &ok, "d", &o).unwrap();
        let bad = drv_with(&[("allowedReferences", "out")], &[("out", &out)]);
        let e = check_references(&store, &bad, "d", &o).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "output '{}' is not allowed to refer to the following paths:\n  {}",
                abs(&out),
                abs(&dep)
            )
        );
        let dis = drv_with(&[("disallowedReferences", &abs(&dep))], &[("out", &out)]);
        assert!(matches!(
            check_references(&store, &dis, "d", &o),
            Err(CheckError::Forbidden { .. })
        ));
        let illegal = drv_with(&[("allowedReferences", "nonsense")], &[("out", &out)]);
        assert!(matches!(
            check_references(&store, &illegal, "d", &o),
            Err(CheckError::IllegalSpecifier(_))
        ));
    }

    #[test]
    fn requisites_follow_the_closure() {
        let (out, dep, deep) = (sp('a', "out"), sp('b', "dep"), sp('c', "deep"));
        let store = store_with(&dep, &[&deep]);
        store
            .put_path_info(&PathInfo {
                store_path: deep.clone(),
                node: Node::Symlink {
                    target: b"/x".to_vec(),
                },
                nar_sha256: [0; 32],
                nar_size: 10,
                references: vec![],
                deriver: None,
                signatures: vec![],
                ca: None,
            })
            .unwrap();
        let o = [built("out", &out, &[&out, &dep])];
        let d = drv_with(&[("disallowedRequisites", &abs(&deep))], &[("out", &out)]);
        assert!(matches!(
            check_references(&store, &d, "d", &o),
            Err(CheckError::Forbidden { paths, .. }) if paths == vec![abs(&deep)]
        ));
        // Self-references are ignored for requisites without structured attributes.
        let d = drv_with(
            &[(
                "allowedRequisites",
                &format!("{} {}", abs(&dep), abs(&deep)),
            )],
            &[("out", &out)],
        );
        check_references(&store, &d, "d", &o).unwrap();
    }

    #[test]
    fn structured_output_checks() {
        let (out, dep) = (sp('a', "out"), sp('b', "dep"));
        let store = store_with(&dep, &[]);
        let o = [built("out", &out, &[&dep])];
        let json = r#"{"outputChecks":{"out":{"maxSize":99}}}"#;
        let d = drv_with(&[("__json", json)], &[("out", &out)]);
        assert!(matches!(
            check_references(&store, &d, "d", &o),
            Err(CheckError::TooLarge {
                size: 100,
                limit: 99,
                ..
            })
        ));
        let json = r#"{"outputChecks":{"out":{"maxClosureSize":1099}}}"#;
        let d = drv_with(&[("__json", json)], &[("out", &out)]);
        assert!(matches!(
            check_references(&store, &d, "d", &o),
            Err(CheckError::ClosureTooLarge { size: 1100, .. })
        ));
        let json = r#"{"outputChecks":{"out":{"allowedReferences":[]}}}"#;
        let d = drv_with(&[("__json", json)], &[("out", &out)]);
        assert!(check_references(&store, &d, "d", &o).is_err());
        let json = r#"{"outputChecks":{"dev":{"allowedReferences":[]}}}"#;
        let d = drv_with(&[("__json", json)], &[("out", &out)]);
        check_references(&store, &d, "d", &o).unwrap();
    }

    #[test]
    fn fixed_output_hashes() {
        let store = Store::memory();
        let (digest, size) = store.put_blob(&mut &b"hello"[..]).unwrap();
        let out = sp('a', "f");
        let mut d = Derivation::default();
        let mut o = Output::fixed(FileIngestionMethod::Flat, &NixHash::sha256(b"hello"));
        o.path = abs(&out);
        d.outputs.insert("out".into(), o);
        let mut b = built("out", &out, &[]);
        b.node = Node::File {
            digest,
            size,
            executable: false,
        };
        check_fixed_output(&store, &d, "d.drv", std::slice::from_ref(&b)).unwrap();
        let mut o = Output::fixed(FileIngestionMethod::Flat, &NixHash::sha256(b"other"));
        o.path = abs(&out);
        d.outputs.insert("out".into(), o);
        let e = check_fixed_output(&store, &d, "d.drv", std::slice::from_ref(&b)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "hash mismatch in fixed-output derivation 'd.drv':\n  specified: {}\n     got:    {}",
                NixHash::sha256(b"other").to_sri(),
                NixHash::sha256(b"hello").to_sri()
            )
        );
        b.node = Node::File {
            digest,
            size,
            executable: true,
        };
        assert!(matches!(
            check_fixed_output(&store, &d, "d.drv", &[b]),
            Err(CheckError::NotFlatFile(_))
        ));
    }

    #[test]
    fn recursive_fixed_output_with_another_algorithm() {
        let store = Store::memory();
        let (digest, size) = store.put_blob(&mut &b"hello"[..]).unwrap();
        let node = Node::File {
            digest,
            size,
            executable: false,
        };
        let nar = write_nar(&store, &node, Vec::new()).unwrap();
        let out = sp('a', "f");
        let mut d = Derivation::default();
        let wanted = NixHash::hash_bytes(tvix_store::HashAlgo::Sha1, &nar);
        let mut o = Output::fixed(FileIngestionMethod::Recursive, &wanted);
        o.path = abs(&out);
        d.outputs.insert("out".into(), o);
        let mut b = built("out", &out, &[]);
        b.node = node;
        check_fixed_output(&store, &d, "d.drv", &[b]).unwrap();
    }

    #[test]
    fn hash_modulo_zeroes_self_references_and_appends_positions() {
        let algo = tvix_store::HashAlgo::Sha256;
        let data = b"abcXYZdefXYZ";
        let mut expected = b"abc\0\0\0def\0\0\0".to_vec();
        expected.extend_from_slice(b"|3|9");
        assert_eq!(hash_modulo(algo, data, "XYZ"), NixHash::sha256(&expected));
        assert_eq!(
            hash_modulo(algo, b"plain", "XYZ"),
            NixHash::sha256(b"plain")
        );
    }

    #[test]
    fn outputs_in_dependency_order_and_cycles() {
        let (a, b, c) = (sp('a', "x"), sp('b', "x-dev"), sp('c', "x-lib"));
        let outs = [
            built("out", &a, &[&a, &b]),
            built("dev", &b, &[&c]),
            built("lib", &c, &[]),
        ];
        assert_eq!(registration_order("d", &outs).unwrap(), vec![2, 1, 0]);
        let outs = [built("out", &a, &[&b]), built("dev", &b, &[&a])];
        let e = registration_order("d", &outs).unwrap_err();
        assert!(
            e.to_string().starts_with("cycle detected in build of 'd'"),
            "{e}"
        );
    }
}
