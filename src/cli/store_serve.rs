//! `tvix store serve`: the store as a Nix HTTP binary cache (`tvix_store::serve`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tvix_coordinator::log::LogStore;
use tvix_store::compression::Compression;
use tvix_store::serve::{BuildLogs, CacheServer, ServeOptions};
use tvix_store::signing::SecretKey;
use tvix_store::StoreDir;

/// What `tvix store serve` was asked.
pub(super) struct ServeRequest<'a> {
    pub store_url: &'a str,
    pub listen: &'a str,
    pub secret_key_file: Option<&'a Path>,
    pub compression: &'a str,
    pub priority: u64,
    /// Accept uploads, staged under this directory.
    pub uploads: Option<PathBuf>,
}

/// The build logs tvix keeps for the store (`tvix log`), served under `/log/`.
struct KeptLogs(LogStore);

impl BuildLogs for KeptLogs {
    fn open(&self, drv: &tvix_store::StorePath) -> std::io::Result<Option<Box<dyn Read + Send>>> {
        Ok(self
            .0
            .open(drv)?
            .map(|r| Box::new(r) as Box<dyn Read + Send>))
    }
}

/// Binds, prints the bound address on standard error (`serving URL on http://ADDR`, so
/// scripts that asked for port 0 learn the port) and serves until killed.
pub(super) fn serve(sd: &StoreDir, req: &ServeRequest<'_>) -> Result<i32, String> {
    // An empty name means bzip2 in a narinfo, but on the command line it is a mistake.
    if req.compression.is_empty() {
        return Err("--compression must not be empty (zstd, xz, bzip2 or none)".to_string());
    }
    let compression = Compression::parse(req.compression).map_err(|e| e.to_string())?;
    let key = match req.secret_key_file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("reading the secret key '{}': {e}", f.display()))?;
            Some(SecretKey::parse(&text).map_err(|e| format!("'{}': {e}", f.display()))?)
        }
        None => None,
    };
    let store: Arc<dyn tvix_store::StoreService> = tvix_store::open(req.store_url)
        .map_err(|e| e.to_string())?
        .into();
    // A store with no log directory (no HOME) serves no logs: every /log/ is a 404.
    let logs = LogStore::for_store_url(req.store_url)
        .ok()
        .map(|l| Arc::new(KeptLogs(l)) as Arc<dyn BuildLogs>);
    let opts = ServeOptions {
        store_dir: sd.clone(),
        compression,
        key,
        priority: req.priority,
        uploads: req.uploads.clone(),
        logs,
    };
    let server = CacheServer::bind(store, req.listen, opts).map_err(|e| e.to_string())?;
    let addr = server.local_addr().map_err(|e| e.to_string())?;
    let mode = if req.uploads.is_some() {
        "read-write (uploads allowed)"
    } else {
        "read-only"
    };
    eprintln!(
        "serving {} as a {mode} binary cache on http://{addr}",
        req.store_url
    );
    server.run().map_err(|e| e.to_string())?;
    Ok(0)
}
