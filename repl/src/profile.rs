//! `:i`: the tvix profile, laid out as Nix lays out profiles: in
//! `$XDG_STATE_HOME/tvix/profiles/` (default `~/.local/state/tvix/profiles/`), generations
//! `profile-N-link` pointing to store paths and `profile` pointing to the current one.
//! Each generation is a store path added to the tvix store: a symlink tree merging the
//! installed outputs (as Nix's `buildenv` makes one) and `manifest.json`, the list of
//! installed packages that the next installation starts from. The outputs live in the tvix
//! store, so the tree is merged from the store's directories, not from the host's disk.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use tvix_coordinator::request::SANDBOX_STORE_DIR;
use tvix_store::castore::{nar, Node};
use tvix_store::pathinfo::PathInfo;
use tvix_store::{StoreDir, StorePath, StoreService};

/// The name of every generation's store path (as Nix names them).
const GENERATION_NAME: &str = "user-environment";
/// The file listing the installed packages, at the top of a generation.
const MANIFEST: &str = "manifest.json";

/// The result of an installation.
pub struct Installed {
    /// The new generation's store path.
    pub generation: String,
    /// How many symlinks the tree has (`created N symlinks in user environment`).
    pub n_symlinks: usize,
}

/// The directory holding the tvix profile's links.
pub fn profiles_dir() -> Result<PathBuf, String> {
    let state = match std::env::var_os("XDG_STATE_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            PathBuf::from(std::env::var_os("HOME").ok_or("neither XDG_STATE_HOME nor HOME is set")?)
                .join(".local/state")
        }
    };
    Ok(state.join("tvix").join("profiles"))
}

/// One installed package: its name and its outputs' store paths by output name.
type Manifest = BTreeMap<String, BTreeMap<String, String>>;

/// Installs `outputs` as package `name` (replacing a package of that name) into the
/// profile under [`profiles_dir`]: a new generation in `store`, linked as the current one.
pub fn install(
    store: &dyn StoreService,
    name: &str,
    outputs: &BTreeMap<String, StorePath>,
) -> Result<Installed, String> {
    install_in(&profiles_dir()?, store, name, outputs)
}

/// [`install`] with the profiles directory given.
pub fn install_in(
    dir: &Path,
    store: &dyn StoreService,
    name: &str,
    outputs: &BTreeMap<String, StorePath>,
) -> Result<Installed, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating '{}': {e}", dir.display()))?;
    let generations = generations(dir);
    let mut manifest = match generations.last() {
        Some((_, link)) => read_manifest(store, link)?,
        None => Manifest::new(),
    };
    manifest.insert(
        name.to_string(),
        outputs
            .iter()
            .map(|(o, p)| (o.clone(), format!("{SANDBOX_STORE_DIR}/{p}")))
            .collect(),
    );

    let tree = tempfile::tempdir().map_err(|e| format!("creating a directory: {e}"))?;
    let mut references = Vec::new();
    for package in manifest.values() {
        for path in package.values() {
            let store_path = StorePath::from_absolute_path(path)
                .map_err(|e| format!("'{path}' in the profile's manifest: {e}"))?;
            let info = store
                .get_path_info(&store_path)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("path '{path}' is not valid"))?;
            merge(store, tree.path(), path, &info.node)?;
            references.push(store_path);
        }
    }
    let n_symlinks = count_symlinks(tree.path());
    // A package's own top-level manifest link gives way to the profile's (written as a
    // new file, never through the link).
    let manifest_file = tree.path().join(MANIFEST);
    let _ = std::fs::remove_file(&manifest_file);
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    std::fs::write(&manifest_file, json).map_err(|e| e.to_string())?;

    let generation = add_tree(store, tree.path(), references)?;
    let n = generations.last().map_or(1, |(n, _)| n + 1);
    let link = dir.join(format!("profile-{n}-link"));
    std::os::unix::fs::symlink(&generation, &link)
        .map_err(|e| format!("creating '{}': {e}", link.display()))?;
    let current = dir.join("profile");
    let tmp = dir.join(format!("profile.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("profile-{n}-link"), &tmp)
        .and_then(|_| std::fs::rename(&tmp, &current))
        .map_err(|e| format!("switching '{}': {e}", current.display()))?;
    Ok(Installed {
        generation,
        n_symlinks,
    })
}

/// The generations in `dir` (`profile-N-link`), by number.
fn generations(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("profile-")?.strip_suffix("-link")?;
            Some((n.parse().ok()?, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// The manifest of the generation `link` points to, read from the store.
fn read_manifest(store: &dyn StoreService, link: &Path) -> Result<Manifest, String> {
    let target = std::fs::read_link(link).map_err(|e| format!("'{}': {e}", link.display()))?;
    let target = target.to_string_lossy();
    let path = StorePath::from_absolute_path(&target)
        .map_err(|e| format!("'{}' points to '{target}': {e}", link.display()))?;
    let info = store
        .get_path_info(&path)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the current generation '{target}' is not in the store"))?;
    let Node::Directory { digest, .. } = info.node else {
        return Err(format!("generation '{target}' is not a directory"));
    };
    let dir = store
        .get_directory(&digest)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("directory {digest} is missing"))?;
    let Some(Node::File { digest, .. }) = dir.get(MANIFEST.as_bytes()) else {
        return Err(format!("generation '{target}' has no {MANIFEST}"));
    };
    let mut text = Vec::new();
    store
        .open_blob(digest)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("blob {digest} is missing"))?
        .read_to_end(&mut text)
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&text).map_err(|e| format!("{target}/{MANIFEST}: {e}"))
}

/// Links the entries of the store object `source` (whose node is `node`) into `dest`, as
/// buildenv does: an entry no other package has becomes a symlink; directories two
/// packages share become real directories merging both. A file two packages both have
/// keeps the first (with a warning).
fn merge(store: &dyn StoreService, dest: &Path, source: &str, node: &Node) -> Result<(), String> {
    let Node::Directory { digest, .. } = node else {
        eprintln!("warning: '{source}' is not a directory; nothing of it is linked");
        return Ok(());
    };
    let dir = store
        .get_directory(digest)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("directory {digest} is missing"))?;
    for (name, child) in dir.entries() {
        let name = String::from_utf8_lossy(name).into_owned();
        let target = dest.join(&name);
        let child_source = format!("{source}/{name}");
        let existing = std::fs::symlink_metadata(&target).ok();
        match existing {
            None => {
                std::os::unix::fs::symlink(&child_source, &target).map_err(|e| e.to_string())?;
            }
            Some(meta) if matches!(child, Node::Directory { .. }) => {
                if meta.file_type().is_symlink() {
                    // Unfold the other package's directory link into a real directory.
                    let other = std::fs::read_link(&target).map_err(|e| e.to_string())?;
                    let other = other.to_string_lossy().into_owned();
                    let Some(other_node) = node_at(store, &other)? else {
                        eprintln!(
                            "warning: collision at '{}', keeping '{other}'",
                            target.display()
                        );
                        continue;
                    };
                    if !matches!(other_node, Node::Directory { .. }) {
                        eprintln!("warning: collision between '{other}' and '{child_source}'");
                        continue;
                    }
                    std::fs::remove_file(&target).map_err(|e| e.to_string())?;
                    std::fs::create_dir(&target).map_err(|e| e.to_string())?;
                    merge(store, &target, &other, &other_node)?;
                }
                merge(store, &target, &child_source, child)?;
            }
            Some(_) => {
                let other = std::fs::read_link(&target)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                eprintln!(
                    "warning: collision between '{other}' and '{child_source}'; keeping the first"
                );
            }
        }
    }
    Ok(())
}

/// The number of symlinks below `dir`.
fn count_symlinks(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_symlink() => 1,
            Ok(t) if t.is_dir() => count_symlinks(&e.path()),
            _ => 0,
        })
        .sum()
}

/// The node at an absolute path inside a registered store path (`None` if it is not
/// there).
fn node_at(store: &dyn StoreService, path: &str) -> Result<Option<Node>, String> {
    let store_dir = StoreDir::default();
    let Ok((store_path, rest)) = store_dir.split_path(path) else {
        return Ok(None);
    };
    let Some(info) = store
        .get_path_info(&store_path)
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let mut node = info.node;
    for comp in rest.split('/').filter(|c| !c.is_empty()) {
        let Node::Directory { digest, .. } = &node else {
            return Ok(None);
        };
        let Some(dir) = store.get_directory(digest).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        match dir.get(comp.as_bytes()) {
            Some(n) => node = n.clone(),
            None => return Ok(None),
        }
    }
    Ok(Some(node))
}

/// Adds the tree at `tree` to the store as a generation referring to `references`.
fn add_tree(
    store: &dyn StoreService,
    tree: &Path,
    mut references: Vec<StorePath>,
) -> Result<String, String> {
    let (node, nar_hash, nar_size) = nar::ingest_path(store, tree).map_err(|e| e.to_string())?;
    references.sort();
    references.dedup();
    let store_dir = StoreDir::default();
    let store_path = store_dir
        .make_source_path(GENERATION_NAME, &nar_hash, &references, false)
        .map_err(|e| e.to_string())?;
    let nar_sha256: [u8; 32] = nar_hash
        .digest()
        .try_into()
        .map_err(|_| "the NAR hash is not a sha256".to_string())?;
    let info = PathInfo {
        store_path: store_path.clone(),
        node,
        nar_sha256,
        nar_size,
        references,
        deriver: None,
        signatures: Vec::new(),
        ca: Some(format!(
            "fixed:r:{}",
            nar_hash.to_prefixed(tvix_store::hash::HashEncoding::Nix32)
        )),
    };
    store.put_path_info(&info).map_err(|e| e.to_string())?;
    Ok(store_dir.display(&store_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvix_store::castore::add;

    /// Adds a directory with `files` (relative path, contents) to the store.
    fn package(store: &dyn StoreService, name: &str, files: &[(&str, &str)]) -> StorePath {
        let dir = tempfile::tempdir().unwrap();
        for (path, contents) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, contents).unwrap();
        }
        add::add_path(
            store,
            &StoreDir::default(),
            dir.path(),
            name,
            tvix_store::FileIngestionMethod::Recursive,
            |_, _| Ok(true),
        )
        .unwrap()
        .info
        .store_path
    }

    fn outs(p: &StorePath) -> BTreeMap<String, StorePath> {
        [("out".to_string(), p.clone())].into()
    }

    #[test]
    fn generations_merge_and_replace() {
        let store = tvix_store::open("memory://").unwrap();
        let store = &*store;
        let profiles = tempfile::tempdir().unwrap();
        let a = package(store, "a", &[("bin/a", "a"), ("share/a/x", "x")]);
        let b = package(store, "b", &[("bin/b", "b")]);

        let first = install_in(profiles.path(), store, "a", &outs(&a)).unwrap();
        assert_eq!(first.n_symlinks, 2);
        assert_eq!(
            std::fs::read_link(profiles.path().join("profile-1-link")).unwrap(),
            Path::new(&first.generation)
        );
        let second = install_in(profiles.path(), store, "b", &outs(&b)).unwrap();
        // bin is shared, so it became a directory of two links; share stays one link.
        assert_eq!(second.n_symlinks, 3);
        assert_eq!(
            std::fs::read_link(profiles.path().join("profile")).unwrap(),
            Path::new("profile-2-link")
        );
        let gen = StorePath::from_absolute_path(&second.generation).unwrap();
        assert!(second.generation.ends_with("-user-environment"));
        let info = store.get_path_info(&gen).unwrap().unwrap();
        assert_eq!(info.references.len(), 2);
        let bin = node_at(store, &format!("{}/bin/b", second.generation))
            .unwrap()
            .unwrap();
        assert!(
            matches!(bin, Node::Symlink { ref target } if target == format!("{SANDBOX_STORE_DIR}/{b}/bin/b").as_bytes())
        );

        // Installing a package of the same name replaces it.
        let a2 = package(store, "a", &[("bin/a2", "a2")]);
        let third = install_in(profiles.path(), store, "a", &outs(&a2)).unwrap();
        let manifest = read_manifest(store, &profiles.path().join("profile-3-link")).unwrap();
        assert_eq!(manifest.len(), 2);
        assert_eq!(manifest["a"]["out"], format!("{SANDBOX_STORE_DIR}/{a2}"));
        assert!(node_at(store, &format!("{}/share", third.generation))
            .unwrap()
            .is_none());
    }
}
