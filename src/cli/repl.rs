//! `tvix repl`: the interactive REPL (the `tvix-repl` crate) on an evaluator configured from
//! the command line like `nix repl`'s.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tvix_coordinator::realise::{RealiseConfig, Realiser};
use tvix_eval::io::{EvalIO, StdIO};
use tvix_eval::lower::LowerOptions;
use tvix_eval::{EvalConfig, Evaluator, SearchPathEntry};
use tvix_repl::{AutoArg, MakeRealiser, ReplOptions};
use tvix_store::StoreService;

use tvix_coordinator::eval_io::{eval_io, store_url, Gated, StoreIO};

/// Flags of `tvix repl`, which are those of `nix repl`.
#[derive(Args)]
pub(super) struct ReplArgs {
    /// Files (or `<lookup paths>`) to load into the scope, as with `:l`.
    files: Vec<String>,
    /// Also load this file (as later `nix repl` versions spell it).
    #[arg(short = 'f', long = "file")]
    file: Vec<String>,
    /// Add the attributes of this expression to the scope, as with `:a`.
    #[arg(long = "expr", allow_hyphen_values = true)]
    expr: Vec<String>,
    /// Pass NAME=EXPR to loaded files that are functions.
    #[arg(long, num_args = 2, value_names = ["NAME", "EXPR"])]
    arg: Vec<String>,
    /// Pass NAME="STRING" to loaded files that are functions.
    #[arg(long, num_args = 2, value_names = ["NAME", "STRING"])]
    argstr: Vec<String>,
    /// Add a search path entry (`PATH` or `NAME=PATH`).
    #[arg(short = 'I', long = "include")]
    include: Vec<String>,
    /// Show whole error traces (toggle with `:te`).
    #[arg(long)]
    show_trace: bool,
    /// Maximum depth of nested calls.
    #[arg(long, default_value_t = 10_000)]
    max_call_depth: usize,
    /// Enable experimental features (`pipe-operators`, ...).
    #[arg(long = "extra-experimental-features", alias = "experimental-features")]
    features: Vec<String>,
    /// The store evaluation writes sources, `toFile` results and `.drv` files to (as for
    /// `tvix eval`).
    #[arg(long)]
    store: Option<String>,
    /// Compute store paths without writing anything to the store.
    #[arg(long)]
    readonly_mode: bool,
    /// Set a Nix option: `allow-import-from-derivation`, and the build settings of `:b`,
    /// `:bl`, `:i`, `:u`, `:sh` and of import-from-derivation (`cores`, `max-jobs`,
    /// `sandbox-paths`, `timeout`, ...; see `tvix build`); others are accepted and ignored.
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"])]
    option: Vec<String>,
    /// Keep the history here instead of `$XDG_DATA_HOME/tvix/repl-history`.
    #[arg(long)]
    history_file: Option<PathBuf>,
}

pub(super) fn repl_command(args: ReplArgs) -> i32 {
    let mut search_path: Vec<SearchPathEntry> = args
        .include
        .iter()
        .map(|s| SearchPathEntry::parse(s))
        .collect();
    if let Ok(nix_path) = std::env::var("NIX_PATH") {
        search_path.extend(
            nix_path
                .split(':')
                .filter(|s| !s.is_empty())
                .map(SearchPathEntry::parse),
        );
    }
    let has_feature = |name: &str| {
        args.features
            .iter()
            .any(|f| f.split_whitespace().any(|x| x == name))
    };
    let options = super::eval::option_map(&args.option);
    let config = EvalConfig {
        search_path,
        max_call_depth: args.max_call_depth,
        lower: LowerOptions {
            pipe_operators: has_feature("pipe-operators"),
            ..LowerOptions::default()
        },
        fetch_closure: has_feature("fetch-closure"),
        allow_import_from_derivation: super::eval::bool_option(
            &options,
            "allow-import-from-derivation",
            true,
        ),
        ..EvalConfig::default()
    };
    let mut auto_args: Vec<AutoArg> = args
        .arg
        .chunks(2)
        .map(|p| AutoArg::Expr(p[0].clone(), p[1].clone()))
        .collect();
    auto_args.extend(
        args.argstr
            .chunks(2)
            .map(|p| AutoArg::Str(p[0].clone(), p[1].clone())),
    );
    // Bad build settings are reported now rather than at the first `:b`.
    let store_url = store_url(args.store.as_deref()).filter(|_| !args.readonly_mode);
    let realise_config = match &store_url {
        Some(url) => match RealiseConfig::from_options(url, &options) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        },
        None => None,
    };
    // Evaluations and builds share one open store: what `:b` builds is what evaluation
    // wrote (for `memory://`, the same object). The IO is made anew for every evaluator
    // (`:r` starts afresh) over that store.
    let (make_io, make_realiser): (MakeIo, Option<MakeRealiser>) = match (store_url, realise_config)
    {
        (Some(url), Some(realise_config)) => {
            let store: Arc<dyn StoreService> = match tvix_store::open(&url) {
                Ok(s) => Arc::from(s),
                Err(e) => {
                    eprintln!("error: opening the store '{url}': {e}");
                    return 1;
                }
            };
            let (io_options, io_store) = (options.clone(), store.clone());
            let io = move || StoreIO::with_store(url.clone(), io_options.clone(), io_store.clone());
            if let Err(msg) = io() {
                eprintln!("error: {msg}");
                return 1;
            }
            let make_io = Box::new(move || -> Box<dyn EvalIO> {
                match io() {
                    Ok(io) => Box::new(Gated::new(io)),
                    Err(_) => Box::new(Gated::new(StdIO::new())),
                }
            });
            let make_realiser: MakeRealiser = Box::new(move || {
                Realiser::with_store(store.clone(), realise_config.clone())
                    .map_err(|e| e.to_string())
            });
            (make_io, Some(make_realiser))
        }
        _ => {
            let (store, readonly) = (args.store.clone(), args.readonly_mode);
            if let Err(msg) = eval_io(store.as_deref(), readonly, &options) {
                eprintln!("error: {msg}");
                return 1;
            }
            let make_io = Box::new(move || -> Box<dyn EvalIO> {
                eval_io(store.as_deref(), readonly, &options)
                    .unwrap_or_else(|_| Box::new(StdIO::new()))
            });
            (make_io, None)
        }
    };
    tvix_repl::run(ReplOptions {
        make_evaluator: Box::new(move || Evaluator::new(make_io(), config.clone())),
        files: args.files.into_iter().chain(args.file).collect(),
        exprs: args.expr,
        auto_args,
        history_file: args.history_file,
        show_trace: args.show_trace,
        make_realiser,
        release_memory: Some(crate::alloc::release_free_memory),
    })
}

/// Makes the IO of each evaluator of the session.
type MakeIo = Box<dyn Fn() -> Box<dyn EvalIO>>;
