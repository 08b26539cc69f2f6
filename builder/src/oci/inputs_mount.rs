//! The builder's inputs through the store's FUSE mount: one read-only mount per service
//! (per process), at `<state dir>/store-mount-<pid>`, serving the service's store; each
//! file or directory input is bind-mounted into its build from the mount's node name
//! ([`tvix_store::fuse::node_name`]), so nothing is copied and a build reads only what
//! it opens.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tvix_store::castore::Node;
use tvix_store::fuse::{Mount, MountOptions};
use tvix_store::StoreService;

/// The prefix of mount point names; the pid follows.
pub const PREFIX: &str = "store-mount-";

/// A mount of the store for this service's builds; dropping it unmounts it.
pub struct InputsMount {
    dir: PathBuf,
    mount: Option<Mount>,
}

impl InputsMount {
    /// Mounts `store` under `state_dir`.
    pub fn start(store: Arc<dyn StoreService>, state_dir: &Path) -> Result<Self, String> {
        let dir = state_dir.join(format!("{PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let opts = MountOptions {
            // Builds look nodes up by name; listing every registered path is never needed.
            list_root: false,
            threads: 4,
            // runc sets the bind mounts up as the container's root, which is mapped to an
            // unused host id: it must be let in (the mount's modes are Nix's, 0444/0555).
            allow_other: true,
            // Inputs are in the store before a build starts.
            fetch_missing: None,
        };
        let mount = tvix_store::fuse::mount(store, &dir, &opts).map_err(|e| e.to_string())?;
        Ok(InputsMount {
            dir,
            mount: Some(mount),
        })
    }

    /// The host path of `node` in the mount; `None` for symlinks (made in the sandbox).
    pub fn source(&self, node: &Node) -> Option<PathBuf> {
        tvix_store::fuse::node_name(node).map(|n| self.dir.join(n))
    }
}

impl Drop for InputsMount {
    fn drop(&mut self) {
        if let Some(m) = self.mount.take() {
            if let Err(e) = m.unmount() {
                eprintln!("tvix builder: {e}");
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Unmounts and removes the mount point left by a process that died without unmounting
/// (a stale FUSE mount: its server is gone).
pub fn remove_stale(dir: &Path) {
    let _ = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status();
    let _ = std::fs::remove_dir(dir);
}
