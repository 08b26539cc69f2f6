//! `tvix lsp`: the language server over standard input and output. The server gets an
//! evaluator factory reading the local filesystem, with the workspace's search path first,
//! then `-I` entries and `NIX_PATH`, and the coordinator's editor IO: no fetching and no
//! building unless the workspace settings allow them.

use std::sync::Arc;

use clap::Args;
use tvix_eval::io::{EvalIO, StdIO};
use tvix_eval::{EvalConfig, Evaluator, SearchPathEntry};

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
    let factory: tvix_lsp::EvaluatorFactory = Arc::new(move |settings: &tvix_lsp::Settings| {
        let mut search_path: Vec<SearchPathEntry> = settings
            .search_path
            .iter()
            .map(|s| SearchPathEntry::parse(s))
            .collect();
        search_path.extend(fallback.iter().cloned());
        let config = EvalConfig {
            search_path,
            ..EvalConfig::default()
        };
        let allow = &settings.evaluation;
        // A store that cannot be used leaves the compute-only IO, which fetches and builds
        // nothing either.
        let io: Box<dyn EvalIO> =
            tvix_coordinator::eval_io::editor_io(allow.allow_fetch, allow.allow_build)
                .unwrap_or_else(|_| Box::new(StdIO::new()));
        Evaluator::new(io, config)
    });
    match tvix_lsp::run_stdio(factory) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: tvix lsp: {e}");
            1
        }
    }
}
