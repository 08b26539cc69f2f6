//! `tvix lsp`: the language server over standard input and output. The server gets an
//! evaluator factory reading the local filesystem, with the workspace's search path first,
//! then `-I` entries and `NIX_PATH`.

use std::collections::BTreeMap;
use std::sync::Arc;

use clap::Args;
use tvix_coordinator::realise::{RealiseConfig, Realiser};
use tvix_eval::io::StdIO;
use tvix_eval::{EvalConfig, Evaluator, SearchPathEntry};
use tvix_store::StoreService;

use crate::store_io::StoreIO;

/// Arguments of `tvix lsp`.
#[derive(Args)]
pub(super) struct LspArgs {
    /// Accepted for editors that pass it; standard input and output is the only transport.
    #[arg(long)]
    stdio: bool,
    /// Search path entries (`prefix=path` or `path`) after the workspace's own.
    #[arg(short = 'I', long = "include")]
    include: Vec<String>,
}

pub(super) fn lsp_command(args: LspArgs) -> i32 {
    let _ = args.stdio;
    let mut fallback: Vec<SearchPathEntry> = args
        .include
        .iter()
        .map(|s| SearchPathEntry::parse(s))
        .collect();
    if let Ok(nix_path) = std::env::var("NIX_PATH") {
        fallback.extend(
            nix_path
                .split(':')
                .filter(|s| !s.is_empty())
                .map(SearchPathEntry::parse),
        );
    }
    let fallback_for_builds = fallback.clone();
    let factory: tvix_lsp::EvaluatorFactory = Arc::new(move |workspace: &[String]| {
        let mut search_path: Vec<SearchPathEntry> = workspace
            .iter()
            .map(|s| SearchPathEntry::parse(s))
            .collect();
        search_path.extend(fallback.iter().cloned());
        let config = EvalConfig {
            search_path,
            ..EvalConfig::default()
        };
        Evaluator::new(Box::new(StdIO::new()), config)
    });
    let builds = build_factory(fallback_for_builds);
    match tvix_lsp::run_stdio(factory, Some(builds)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: tvix lsp: {e}");
            1
        }
    }
}

/// What the `tvix/build` command uses: for each build, an evaluator writing derivations to
/// the tvix store (`$TVIX_STORE`, else the local default) and a realiser building in that
/// same open store. Evaluation for hover and completion stays compute-only (`StdIO`).
fn build_factory(fallback: Vec<SearchPathEntry>) -> tvix_lsp::BuildFactory {
    Arc::new(move |workspace: &[String]| {
        let url = std::env::var("TVIX_STORE")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(tvix_store::castore::default_store_url);
        let store: Arc<dyn StoreService> = tvix_store::open(&url)
            .map(Arc::from)
            .map_err(|e| format!("opening the store '{url}': {e}"))?;
        let config =
            RealiseConfig::from_options(&url, &BTreeMap::new()).map_err(|e| e.to_string())?;
        let realiser = Realiser::with_store(store.clone(), config).map_err(|e| e.to_string())?;
        let io = StoreIO::with_store(url, store)?;
        let mut search_path: Vec<SearchPathEntry> = workspace
            .iter()
            .map(|s| SearchPathEntry::parse(s))
            .collect();
        search_path.extend(fallback.iter().cloned());
        let config = EvalConfig {
            search_path,
            ..EvalConfig::default()
        };
        Ok((Evaluator::new(Box::new(io), config), realiser))
    })
}
