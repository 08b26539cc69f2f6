//! `tvix log DRV-OR-OUTPUT`: prints the kept build log of a derivation (named by its
//! `.drv` path or by one of its outputs), like `nix log`.

use std::io::Write;

use clap::Args;
use tvix_coordinator::log::LogStore;
use tvix_store::StorePath;

#[derive(Args)]
pub(super) struct LogArgs {
    /// A `.drv` path, or an output path of a derivation built by tvix.
    path: String,
    /// The store (default: `$TVIX_STORE`, else `local://`).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

fn run(args: &LogArgs) -> Result<Vec<u8>, String> {
    let url = args
        .store
        .clone()
        .unwrap_or_else(tvix_store::castore::default_store_url);
    let base = args
        .path
        .strip_prefix("/nix/store/")
        .map(|r| r.split('/').next().unwrap_or(r))
        .ok_or_else(|| format!("'{}' is not a store path", args.path))?;
    let path = StorePath::from_base_name(base).map_err(|e| e.to_string())?;
    let drv = if path.name().ends_with(".drv") {
        path
    } else {
        let store =
            tvix_store::open(&url).map_err(|e| format!("opening the store '{url}': {e}"))?;
        let info = store
            .get_path_info(&path)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("path '/nix/store/{path}' is not valid"))?;
        info.deriver
            .ok_or_else(|| format!("path '/nix/store/{path}' has no known deriver"))?
    };
    let logs = LogStore::for_store_url(&url).map_err(|e| e.to_string())?;
    logs.read(&drv).map_err(|e| e.to_string())
}

pub(super) fn log_command(args: LogArgs) -> i32 {
    match run(&args) {
        Ok(log) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&log);
            let _ = out.flush();
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
