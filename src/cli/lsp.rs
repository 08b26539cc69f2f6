//! `tvix lsp`: the language server over standard input and output. The server gets an
//! evaluator factory reading the local filesystem, with the workspace's search path first,
//! then `-I` entries and `NIX_PATH`, and the coordinator's editor IO: no fetching and no
//! building unless the workspace settings allow them. The `tvix/build` command gets its own
//! evaluators, writing to the tvix store its realiser builds in.

use std::collections::BTreeMap;
use std::sync::Arc;

use clap::Args;
use tvix_coordinator::eval_io::{Gated, StoreIO};
use tvix_coordinator::realise::{RealiseConfig, Realiser};
use tvix_eval::io::{EvalIO, StdIO};
use tvix_eval::{EvalConfig, Evaluator, SearchPathEntry};
use tvix_store::StoreService;

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

/// The evaluation settings: the workspace's search path, then `fallback`.
fn eval_config(workspace: &[String], fallback: &[SearchPathEntry]) -> EvalConfig {
    let mut search_path: Vec<SearchPathEntry> = workspace
        .iter()
        .map(|s| SearchPathEntry::parse(s))
        .collect();
    search_path.extend(fallback.iter().cloned());
    EvalConfig {
        search_path,
        ..EvalConfig::default()
    }
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
    let factory: tvix_lsp::EvaluatorFactory = Arc::new(move |settings: &tvix_lsp::Settings| {
        let config = eval_config(&settings.search_path, &fallback);
        let allow = &settings.evaluation;
        // A store that cannot be used leaves the compute-only IO, which fetches and builds
        // nothing either.
        let io: Box<dyn EvalIO> =
            tvix_coordinator::eval_io::editor_io(allow.allow_fetch, allow.allow_build)
                .unwrap_or_else(|_| Box::new(StdIO::new()));
        Evaluator::new(io, config)
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
/// same open store. The user asked for the build, so its evaluation may fetch and build.
fn build_factory(fallback: Vec<SearchPathEntry>) -> tvix_lsp::BuildFactory {
    Arc::new(move |workspace: &[String]| {
        let url = std::env::var("TVIX_STORE")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(tvix_store::castore::default_store_url);
        let store: Arc<dyn StoreService> = tvix_store::open(&url)
            .map(Arc::from)
            .map_err(|e| format!("opening the store '{url}': {e}"))?;
        let options = BTreeMap::new();
        let config = RealiseConfig::from_options(&url, &options).map_err(|e| e.to_string())?;
        let realiser = Realiser::with_store(store.clone(), config).map_err(|e| e.to_string())?;
        let io = Gated::new(StoreIO::with_store(url, options, store)?);
        Ok((
            Evaluator::new(Box::new(io), eval_config(workspace, &fallback)),
            realiser,
        ))
    })
}
