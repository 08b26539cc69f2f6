//! Command-line parsing and dispatch. `tvix eval` mirrors `nix-instantiate --eval`; invoked as
//! `nix-instantiate` the binary accepts that command's flags so existing scripts run unchanged.

mod build;
mod builder;
mod eval;
mod log;
mod log_format;
mod lsp;
mod monitor;
mod nix_store;
mod repl;
mod show_derivation;
mod store;
mod store_copy;
mod store_run;
mod store_serve;

use clap::{Parser, Subcommand};

use build::{build_command, BuildArgs};
use builder::{builder_command, BuilderArgs};
use eval::{eval_command, EvalArgs};
use log::{log_command, LogArgs};
use lsp::{lsp_command, LspArgs};
use repl::{repl_command, ReplArgs};
use show_derivation::{show_derivation, ShowDerivationArgs};
use store::{store_command, StoreArgs};

#[derive(Parser)]
#[command(name = "tvix", version, about = "A Nix implementation in Rust")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Evaluate a Nix file or expression and print the result (like `nix-instantiate --eval`).
    Eval(EvalArgs),
    /// Evaluate a Nix file or expression to derivations and print their `.drv` paths (like
    /// `nix-instantiate`).
    ///
    /// The expression may be a derivation, or a list or attribute set of derivations (sets
    /// with `recurseForDerivations = true` are searched further). Outputs other than `out`
    /// print as `DRV!OUTPUT`. The `.drv` files are written to the tvix store (see `--store`;
    /// `--readonly-mode` only computes their paths).
    Instantiate(EvalArgs),
    /// Build the derivations a Nix file or expression evaluates to (like `nix-build`):
    /// print their output paths and create `result` links.
    Build(BuildArgs),
    /// Print the kept build log of a derivation or of an output it built (like `nix log`).
    Log(LogArgs),
    /// Show Nix's `internal-json` log read on stdin as the build dashboard
    /// (`nix-build --log-format internal-json -v ... 2>&1 | tvix monitor`); exits 1 when
    /// a build it watched failed.
    Monitor(monitor::MonitorArgs),
    /// Print `.drv` files as JSON, in the format of `nix derivation show`: an object keyed
    /// by `.drv` path. Files are read from disk (e.g. written by Nix), store paths not on
    /// disk from the tvix store (e.g. written by `tvix instantiate`).
    ShowDerivation(ShowDerivationArgs),
    /// Work with the tvix store (castore and path info).
    Store(StoreArgs),
    /// Serve builds to other machines (`tvix builder daemon`).
    Builder(BuilderArgs),
    /// Run the Nix language server (LSP over standard input and output).
    Lsp(LspArgs),
    /// Start an interactive Nix shell (like `nix repl`); reads inputs from standard input
    /// when it is not a terminal.
    Repl(ReplArgs),
}

/// Runs the command line and returns the exit status.
pub fn run() -> i32 {
    let argv: Vec<String> = std::env::args().collect();
    let invoked_as = argv
        .first()
        .and_then(|a| {
            std::path::Path::new(a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let cli = if invoked_as == "nix-build" {
        let mut out = vec!["tvix".to_string(), "build".to_string()];
        out.extend(argv[1..].iter().cloned());
        match Cli::try_parse_from(&out) {
            Ok(c) => c,
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() { 1 } else { 0 };
            }
        }
    } else if invoked_as == "nix-store" {
        return nix_store::nix_store(&argv[1..]);
    } else if invoked_as == "nix-instantiate" {
        match nix_instantiate_args(&argv[1..]) {
            Ok(c) => c,
            Err(code) => return code,
        }
    } else {
        match Cli::try_parse_from(&argv) {
            Ok(c) => c,
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() { 1 } else { 0 };
            }
        }
    };
    match cli.command {
        Command::Eval(args) => run_on_big_stack(move || eval_command(args)),
        Command::Instantiate(mut args) => {
            args.instantiate = true;
            run_on_big_stack(move || eval_command(args))
        }
        Command::Build(mut args) => {
            args.as_nix_build = invoked_as == "nix-build";
            run_on_big_stack(move || build_command(args))
        }
        Command::Log(args) => log_command(args),
        Command::Monitor(args) => monitor::monitor_command(args),
        Command::ShowDerivation(args) => show_derivation(&args),
        Command::Store(args) => store_command(args),
        Command::Builder(args) => builder_command(args),
        Command::Lsp(args) => lsp_command(args),
        Command::Repl(args) => run_on_big_stack(move || repl_command(args)),
    }
}

/// Turns a `nix-instantiate` command line into `tvix eval` arguments (with `--eval` or
/// `--parse`) or `tvix instantiate` arguments (otherwise).
fn nix_instantiate_args(args: &[String]) -> Result<Cli, i32> {
    let saw_eval = args.iter().any(|a| a == "--eval" || a == "--eval-only");
    let parse_only = args.iter().any(|a| a == "--parse");
    let sub = if saw_eval || parse_only {
        "eval"
    } else {
        "instantiate"
    };
    let mut out = vec!["tvix".to_string(), sub.to_string()];
    out.extend(
        args.iter()
            .filter(|a| *a != "--eval" && *a != "--eval-only")
            .cloned(),
    );
    Cli::try_parse_from(&out).map_err(|e| {
        let _ = e.print();
        1
    })
}

/// Evaluation recurses natively; give it room beyond the main thread's default stack.
fn run_on_big_stack(f: impl FnOnce() -> i32 + Send + 'static) -> i32 {
    std::thread::Builder::new()
        .stack_size(256 * 1024 * 1024)
        .spawn(f)
        .map(|h| h.join().unwrap_or(101))
        .unwrap_or(101)
}
