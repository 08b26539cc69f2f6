//! Where a file's `lib` argument comes from when the settings give none: nixpkgs pinned by
//! the flake the file belongs to (its `flake.lock`), else a nixpkgs checkout the file is
//! in (a `lib` directory found walking up), else `<nixpkgs/lib>` on the search path (the
//! server checks that one itself).
//!
//! This module only reads `flake.lock` and looks for directories; whether a candidate is
//! really there is asked through `exists`, so the evaluator's view of the store decides
//! (a flake's nixpkgs is a store path, which may be in the tvix store or on disk).

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

/// Why a `flake.lock` gives no nixpkgs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LockError {
    /// The file is not JSON.
    #[error("flake.lock is not valid JSON: {0}")]
    Json(String),
    /// The root node has no `nixpkgs` input (or a `follows` path leads nowhere).
    #[error("flake.lock has no 'nixpkgs' input")]
    NoNixpkgs,
    /// The input's `locked` entry has neither a `path` nor a usable `narHash`.
    #[error("the 'nixpkgs' input of flake.lock has no narHash: {0}")]
    NoHash(String),
}

/// A `lib` found for a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// `lib` of the nixpkgs input locked in the flake at `flake` (a directory).
    Flake { flake: PathBuf, lib: PathBuf },
    /// A `lib` directory (a nixpkgs checkout) above the file.
    Directory(PathBuf),
}

impl Found {
    /// The `lib` directory.
    pub fn lib(&self) -> &Path {
        match self {
            Found::Flake { lib, .. } | Found::Directory(lib) => lib,
        }
    }

    /// What the server tells the user it uses.
    pub fn describe(&self) -> String {
        match self {
            Found::Flake { flake, lib } => format!(
                "`lib` is {} (the nixpkgs input of {})",
                lib.display(),
                flake.join("flake.lock").display()
            ),
            Found::Directory(lib) => {
                format!(
                    "`lib` is {} (the nixpkgs lib above the file)",
                    lib.display()
                )
            }
        }
    }
}

/// What the search found for a file: the `lib` to use, and why a flake's nixpkgs was not
/// used (said to the user once).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Search {
    /// The `lib` found, if any.
    pub found: Option<Found>,
    /// Why the flake the file is in gave no `lib`.
    pub flake_problem: Option<String>,
}

/// Looks for the `lib` of a file in `dir`: the nearest `flake.nix` above it with a
/// `flake.lock` pinning `nixpkgs` whose `lib/default.nix` `exists`; else the nearest
/// `lib` directory above it holding nixpkgs' lib (`default.nix` and `attrsets.nix`).
pub fn search(dir: &Path, store_dir: &str, exists: &mut dyn FnMut(&Path) -> bool) -> Search {
    let mut out = Search::default();
    if let Some(flake) = dir.ancestors().find(|d| d.join("flake.nix").is_file()) {
        let lock = flake.join("flake.lock");
        match std::fs::read_to_string(&lock) {
            Err(e) => out.flake_problem = Some(format!("{}: {e}", lock.display())),
            Ok(text) => match locked_nixpkgs(&text, flake, store_dir) {
                Err(e) => out.flake_problem = Some(format!("{}: {e}", lock.display())),
                Ok(root) => {
                    let lib = root.join("lib");
                    if exists(&lib.join("default.nix")) {
                        out.found = Some(Found::Flake {
                            flake: flake.to_path_buf(),
                            lib,
                        });
                        return out;
                    }
                    out.flake_problem = Some(format!(
                        "the nixpkgs input of {} ({}) is not in the store",
                        lock.display(),
                        root.display()
                    ));
                }
            },
        }
    }
    out.found = dir
        .ancestors()
        .map(|d| d.join("lib"))
        .find(|lib| lib.join("default.nix").is_file() && lib.join("attrsets.nix").is_file())
        .map(Found::Directory);
    out
}

/// The directory of the `nixpkgs` input a `flake.lock` pins: a `path` input's path
/// (relative to the flake), else the store path its `narHash` names (inputs are stored as
/// `source`, by NAR hash).
pub fn locked_nixpkgs(lock: &str, flake: &Path, store_dir: &str) -> Result<PathBuf, LockError> {
    let json: Json = serde_json::from_str(lock).map_err(|e| LockError::Json(e.to_string()))?;
    let nodes = &json["nodes"];
    let root = json["root"].as_str().unwrap_or("root");
    let node = input_node(nodes, root, "nixpkgs").ok_or(LockError::NoNixpkgs)?;
    let locked = &nodes[node]["locked"];
    if locked["type"] == "path" {
        if let Some(path) = locked["path"].as_str() {
            return Ok(flake.join(path));
        }
    }
    let nar_hash = locked["narHash"]
        .as_str()
        .ok_or_else(|| LockError::NoHash(node.to_string()))?;
    let hash = tvix_store::NixHash::parse_sri(nar_hash)
        .or_else(|_| tvix_store::NixHash::parse(nar_hash, None))
        .map_err(|e| LockError::NoHash(e.to_string()))?;
    let dir = tvix_store::StoreDir::new(store_dir).map_err(|e| LockError::NoHash(e.to_string()))?;
    let path = dir
        .make_source_path("source", &hash, [], false)
        .map_err(|e| LockError::NoHash(e.to_string()))?;
    Ok(PathBuf::from(dir.display(&path)))
}

/// The node an input of `node` names: a node name, or a `follows` path of input names
/// from the root.
fn input_node<'a>(nodes: &'a Json, node: &'a str, input: &str) -> Option<&'a str> {
    match &nodes[node]["inputs"][input] {
        Json::String(name) => Some(name.as_str()),
        Json::Array(path) => {
            let mut at = "root";
            for step in path {
                at = input_node(nodes, at, step.as_str()?)?;
            }
            Some(at)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITHUB_LOCK: &str = r#"{
      "nodes": {
        "nixpkgs": {
          "locked": {
            "lastModified": 1700000000,
            "narHash": "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "owner": "NixOS", "repo": "nixpkgs", "rev": "0000000000000000000000000000000000000000",
            "type": "github"
          },
          "original": { "owner": "NixOS", "repo": "nixpkgs", "type": "github" }
        },
        "root": { "inputs": { "nixpkgs": "nixpkgs" } }
      },
      "root": "root",
      "version": 7
    }"#;

    #[test]
    fn a_locked_input_is_the_source_path_of_its_nar_hash() {
        let got = locked_nixpkgs(GITHUB_LOCK, Path::new("/w"), "/nix/store").unwrap();
        let dir = tvix_store::StoreDir::new("/nix/store").unwrap();
        let hash =
            tvix_store::NixHash::parse_sri("sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                .unwrap();
        let want = dir.make_source_path("source", &hash, [], false).unwrap();
        assert_eq!(got, PathBuf::from(dir.display(&want)));
        assert!(got.to_str().unwrap().ends_with("-source"), "{got:?}");
    }

    #[test]
    fn path_inputs_and_follows() {
        let lock = r#"{ "nodes": {
            "np": { "locked": { "type": "path", "path": "./vendor/nixpkgs", "narHash": "sha256-x" } },
            "other": { "inputs": { "nixpkgs": "np" } },
            "root": { "inputs": { "other": "other", "nixpkgs": [ "other", "nixpkgs" ] } } },
          "root": "root", "version": 7 }"#;
        assert_eq!(
            locked_nixpkgs(lock, Path::new("/w"), "/nix/store"),
            Ok(PathBuf::from("/w/./vendor/nixpkgs"))
        );
    }

    #[test]
    fn locks_without_nixpkgs_say_why() {
        let lock = r#"{ "nodes": { "root": { "inputs": { } } }, "root": "root", "version": 7 }"#;
        assert_eq!(
            locked_nixpkgs(lock, Path::new("/w"), "/nix/store"),
            Err(LockError::NoNixpkgs)
        );
        assert!(matches!(
            locked_nixpkgs("{", Path::new("/w"), "/nix/store"),
            Err(LockError::Json(_))
        ));
        let lock = r#"{ "nodes": { "n": { "locked": { "type": "github" } },
            "root": { "inputs": { "nixpkgs": "n" } } }, "root": "root", "version": 7 }"#;
        assert!(matches!(
            locked_nixpkgs(lock, Path::new("/w"), "/nix/store"),
            Err(LockError::NoHash(_))
        ));
    }

    #[test]
    fn search_prefers_the_flake_input_then_a_lib_directory_above() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        // A nixpkgs-like checkout with a project inside it.
        std::fs::create_dir_all(root.join("lib")).unwrap();
        std::fs::write(root.join("lib/default.nix"), "{ }").unwrap();
        std::fs::write(root.join("lib/attrsets.nix"), "{ }").unwrap();
        let project = root.join("pkgs/app");
        std::fs::create_dir_all(&project).unwrap();
        let mut nothing = |_: &Path| false;
        let got = search(&project, "/nix/store", &mut nothing);
        assert_eq!(got.found, Some(Found::Directory(root.join("lib"))));
        assert_eq!(got.flake_problem, None);

        // A flake whose nixpkgs is a path input that exists: that one wins.
        std::fs::write(project.join("flake.nix"), "{ }").unwrap();
        std::fs::write(
            project.join("flake.lock"),
            r#"{ "nodes": { "n": { "locked": { "type": "path", "path": "/np" } },
                "root": { "inputs": { "nixpkgs": "n" } } }, "root": "root", "version": 7 }"#,
        )
        .unwrap();
        let mut asked = Vec::new();
        let mut np_exists = |p: &Path| {
            asked.push(p.to_path_buf());
            true
        };
        let got = search(&project, "/nix/store", &mut np_exists);
        assert_eq!(
            got.found,
            Some(Found::Flake {
                flake: project.clone(),
                lib: PathBuf::from("/np/lib")
            })
        );
        assert_eq!(asked, vec![PathBuf::from("/np/lib/default.nix")]);

        // Its nixpkgs is not there: the lib directory above, and the reason.
        let got = search(&project, "/nix/store", &mut nothing);
        assert_eq!(got.found, Some(Found::Directory(root.join("lib"))));
        assert!(got.flake_problem.unwrap().contains("not in the store"));
    }
}
