//! tvix-repl: an interactive Nix shell (`tvix repl`) on the tvix evaluator.
//!
//! The crate knows nothing of the `tvix` binary: its caller hands it a factory that makes a
//! configured [`tvix_eval::Evaluator`] (with the IO the caller chose), the files to load and
//! the `--arg`s. On a terminal it runs a rustyline editor with completion, a parser-driven
//! multi-line validator, highlighting and persistent history; otherwise it reads inputs from
//! standard input and prints one result per line ([`run`] picks).

mod batch;
mod build;
mod command;
mod complete;
mod doc;
mod edit;
mod flake;
mod highlight;
mod interactive;
mod load;
mod print;
mod profile;
mod scope;
mod session;
mod shell;
mod style;
mod validate;

use std::io::IsTerminal;
use std::path::PathBuf;

use tvix_eval::Evaluator;

pub use build::MakeRealiser;
pub use session::Session;

/// A function argument given on the command line (`--arg NAME EXPR`, `--argstr NAME STRING`);
/// loaded files that are functions are called with these, as in `nix repl`.
#[derive(Clone, Debug)]
pub enum AutoArg {
    /// `--arg NAME EXPR`: the expression, evaluated lazily.
    Expr(String, String),
    /// `--argstr NAME STRING`.
    Str(String, String),
}

/// Everything the REPL needs from its caller.
pub struct ReplOptions {
    /// Makes a fresh evaluator (at start and on `:r`, so files are read again).
    pub make_evaluator: Box<dyn Fn() -> Evaluator>,
    /// Files (or `<lookup paths>`) loaded at start, as with `:l`.
    pub files: Vec<String>,
    /// Expressions whose attributes are added at start, as with `:a` (`--expr`).
    pub exprs: Vec<String>,
    /// `--arg`/`--argstr` values for loaded functions.
    pub auto_args: Vec<AutoArg>,
    /// Where the history is kept; `None` means `$XDG_DATA_HOME/tvix/repl-history`.
    pub history_file: Option<PathBuf>,
    /// Show whole error traces from the start (`--show-trace`).
    pub show_trace: bool,
    /// Opens the coordinator's realiser for `:b`, `:bl`, `:i`, `:u`, `:sh` and `:log`
    /// (called on the first of them); `None` when there is no store to build in.
    pub make_realiser: Option<MakeRealiser>,
    /// Returns memory freed by an evaluation to the system; the interactive REPL calls it
    /// after each line, while it waits for the next (the allocator is the binary's choice).
    pub release_memory: Option<fn()>,
}

/// Runs the REPL until `:q` or end of input and returns the exit status: interactively when
/// standard input is a terminal, otherwise non-interactively (see [`batch`]).
pub fn run(options: ReplOptions) -> i32 {
    if std::io::stdin().is_terminal() {
        interactive::run(options)
    } else {
        batch::run(options)
    }
}

/// `$XDG_DATA_HOME/tvix/repl-history`, with `$XDG_DATA_HOME` defaulting to
/// `$HOME/.local/share` as the XDG base directory specification says.
pub fn default_history_file() -> Option<PathBuf> {
    let data = match std::env::var_os("XDG_DATA_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".local/share"),
    };
    Some(data.join("tvix").join("repl-history"))
}
