//! Collecting the outputs of a successful build: checked, ingested into the castore,
//! scanned for references.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tvix_store::castore::nar::ingest_path;
use tvix_store::StoreService;

use crate::refscan::RefScanner;
use crate::{BuildError, BuildOutput};

/// Collects output `path` (a sandbox path) from `host` (where it is on the host), which
/// must be owned by `owner`.
pub fn collect(
    store: &dyn StoreService,
    path: &str,
    host: &Path,
    owner: u32,
    needles: &[String],
) -> Result<BuildOutput, BuildError> {
    let bad = |reason: String| BuildError::BadOutput {
        path: path.to_string(),
        reason,
    };
    let meta = match fs::symlink_metadata(host) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(BuildError::MissingOutput(path.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    // Nix refuses a top-level output others could have changed behind the build's back.
    if meta.uid() != owner || (!meta.file_type().is_symlink() && meta.mode() & 0o022 != 0) {
        return Err(bad("suspicious ownership or permission".into()));
    }
    check_types(host).map_err(|(p, what)| {
        bad(format!(
            "'{}' is a {what}, not a file, directory or symlink",
            p.display()
        ))
    })?;
    let (node, hash, nar_size) = ingest_path(store, host)?;
    let nar_sha256: [u8; 32] = hash
        .digest()
        .try_into()
        .map_err(|_| BuildError::Sandbox("NAR hash is not sha256".into()))?;
    let mut scanner = RefScanner::new(needles);
    tvix_store::nar::dump_path(host, &mut scanner).map_err(|e| bad(format!("serialising: {e}")))?;
    Ok(BuildOutput {
        path: path.to_string(),
        node,
        nar_sha256,
        nar_size,
        references: scanner.found(),
    })
}

/// Finds an object under `root` that is not a regular file, directory or symlink.
fn check_types(root: &Path) -> Result<(), (PathBuf, &'static str)> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let ft = match fs::symlink_metadata(&p) {
            Ok(m) => m.file_type(),
            Err(_) => return Err((p, "unreadable object")),
        };
        use std::os::unix::fs::FileTypeExt;
        let what = if ft.is_dir() {
            let entries = fs::read_dir(&p).map_err(|_| (p.clone(), "unreadable directory"))?;
            for e in entries {
                let e = e.map_err(|_| (p.clone(), "unreadable directory"))?;
                stack.push(e.path());
            }
            continue;
        } else if ft.is_file() || ft.is_symlink() {
            continue;
        } else if ft.is_fifo() {
            "FIFO"
        } else if ft.is_socket() {
            "socket"
        } else if ft.is_block_device() || ft.is_char_device() {
            "device"
        } else {
            "special file"
        };
        return Err((p, what));
    }
    Ok(())
}
