//! `tvix store serve`: the store as a Nix HTTP binary cache (`tvix_store::serve`).

use std::path::Path;
use std::sync::Arc;

use tvix_store::compression::Compression;
use tvix_store::serve::{CacheServer, ServeOptions};
use tvix_store::signing::SecretKey;
use tvix_store::StoreDir;

/// What `tvix store serve` was asked.
pub(super) struct ServeRequest<'a> {
    pub store_url: &'a str,
    pub listen: &'a str,
    pub secret_key_file: Option<&'a Path>,
    pub compression: &'a str,
    pub priority: u64,
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
    let opts = ServeOptions {
        store_dir: sd.clone(),
        compression,
        key,
        priority: req.priority,
    };
    let server = CacheServer::bind(store, req.listen, opts).map_err(|e| e.to_string())?;
    let addr = server.local_addr().map_err(|e| e.to_string())?;
    eprintln!(
        "serving {} as a binary cache on http://{addr}",
        req.store_url
    );
    server.run().map_err(|e| e.to_string())?;
    Ok(0)
}
