//! `tvix eval` and `tvix instantiate` (and `nix-instantiate` under that name): evaluation,
//! `-A` selection, auto-calling with `--arg`s, printing, and finding derivations.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::rc::Rc;

use clap::Args;
use tvix_eval::diagnostic::{render_error, strip_ansi, RenderOptions};
use tvix_eval::eval::CoerceMode;
use tvix_eval::lower::{LintLevel, LowerOptions};
use tvix_eval::symbol::Symbol;
use tvix_eval::value::print::print_value;
use tvix_eval::{EvalConfig, EvalError, EvalResult, Evaluator, SearchPathEntry, Value};

/// What an evaluation reports besides its result.
pub(super) enum Report<'a> {
    /// A rendered error (`error: ...`, with its trace), ending in a newline.
    Error(&'a str),
    /// A diagnostic (`warning: ...`, `trace: ...`).
    Diagnostic(&'a str),
}

/// Receives an evaluation's reports in place of stderr.
pub(super) type Reporter = std::sync::Arc<dyn Fn(Report<'_>) + Send + Sync>;

/// Flags of `tvix eval`, which are those of `nix-instantiate --eval`.
#[derive(Args, Default)]
pub(super) struct EvalArgs {
    /// The file to evaluate (`-` for standard input); `./default.nix` if omitted.
    pub(super) file: Option<String>,
    /// Evaluate this expression instead of a file.
    #[arg(short = 'E', long = "expr", allow_hyphen_values = true)]
    pub(super) expr: Option<String>,
    /// Evaluate the result deeply, not just to weak head normal form.
    #[arg(long)]
    pub(super) strict: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub(super) json: bool,
    /// Print the result as XML.
    #[arg(long)]
    pub(super) xml: bool,
    /// Print the result, a string (or what interpolation accepts), as is: no quotes, no
    /// escapes and no newline, as current Nix's `nix-instantiate --eval --raw`.
    #[arg(long, conflicts_with_all = ["json", "xml"])]
    pub(super) raw: bool,
    /// Leave source positions out of the XML output.
    #[arg(long)]
    pub(super) no_location: bool,
    /// Select an attribute path from the result.
    #[arg(short = 'A', long = "attr")]
    pub(super) attr: Vec<String>,
    /// Pass NAME=EXPR to the top-level function.
    #[arg(long, num_args = 2, value_names = ["NAME", "EXPR"])]
    pub(super) arg: Vec<String>,
    /// Pass NAME="STRING" to the top-level function.
    #[arg(long, num_args = 2, value_names = ["NAME", "STRING"])]
    pub(super) argstr: Vec<String>,
    /// Add a search path entry (`PATH` or `NAME=PATH`).
    #[arg(short = 'I', long = "include")]
    pub(super) include: Vec<String>,
    /// Show the whole trace of an error.
    #[arg(long)]
    pub(super) show_trace: bool,
    /// Hide the trace (the default).
    #[arg(long, hide = true)]
    pub(super) no_show_trace: bool,
    /// Only parse the input and print it as Nix shows its syntax tree (fully
    /// parenthesised); exit 1 on a syntax error.
    #[arg(long)]
    pub(super) parse: bool,
    /// Maximum depth of nested calls.
    #[arg(long, default_value_t = 10_000)]
    pub(super) max_call_depth: usize,
    /// Enable experimental features (`pipe-operators`, ...).
    #[arg(long = "extra-experimental-features", alias = "experimental-features")]
    pub(super) features: Vec<String>,
    /// The store evaluation writes sources, `toFile` results and `.drv` files to:
    /// `local://` (the default), `local:///dir`, `memory://`, or `dummy://` to write nothing
    /// (paths are still computed). Defaults to `$TVIX_STORE`; `NIX_REMOTE=dummy://` also
    /// selects `dummy://`.
    #[arg(long, value_name = "URL")]
    pub(super) store: Option<String>,
    /// Write what evaluation adds to the store (sources, `toFile` results, `.drv` files);
    /// without it `tvix eval` only computes their paths, as `nix-instantiate --eval` does
    /// (fetched content is written either way). `tvix instantiate` always writes.
    #[arg(long)]
    pub(super) read_write_mode: bool,
    /// Compute store paths without writing anything to the store, not even what fetchers
    /// fetch, and without opening a store.
    #[arg(long)]
    pub(super) readonly_mode: bool,
    /// Accepted for compatibility.
    #[arg(long, hide = true)]
    pub(super) impure: bool,
    /// Lint levels for path and URL literals: `warn` or `fatal` (accepted; see issue 5/7).
    #[arg(long, hide = true)]
    pub(super) lint_absolute_path_literals: Option<String>,
    #[arg(long, hide = true)]
    pub(super) lint_short_path_literals: Option<String>,
    #[arg(long, hide = true)]
    pub(super) lint_url_literals: Option<String>,
    /// Set a Nix option: `abort-on-warn`, `allow-import-from-derivation` and the build
    /// settings of import-from-derivation builds (as for `tvix build`) are understood;
    /// others are accepted and ignored.
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"])]
    pub(super) option: Vec<String>,
    /// Accepted for compatibility (`nix-instantiate --timeout`); evaluation is not timed out.
    #[arg(long, hide = true)]
    pub(super) timeout: Option<u64>,
    /// Accepted for compatibility (`nix-instantiate --add-root`); the tvix store has no
    /// garbage collector yet, so there is nothing to root against.
    #[arg(long, hide = true)]
    pub(super) add_root: Option<String>,
    /// Accepted for compatibility (`nix-instantiate --indirect`).
    #[arg(long, hide = true)]
    pub(super) indirect: bool,
    /// Set by `tvix instantiate`: print the `.drv` paths of the resulting derivations.
    #[arg(skip)]
    pub(super) instantiate: bool,
    /// Where errors and diagnostics go instead of stderr (set by `tvix build
    /// --log-format internal-json`, which writes them as records).
    #[arg(skip)]
    pub(super) reporter: Option<Reporter>,
    /// Counters of files read and derivations instantiated, for a progress display
    /// (set by `tvix build` with its dashboard).
    #[arg(skip)]
    pub(super) progress: Option<std::sync::Arc<tvix_coordinator::eval_progress::EvalProgress>>,
    /// Where the events of import-from-derivation builds go (the build dashboard, which
    /// has the terminal), instead of Nix's lines on stderr.
    #[arg(skip)]
    pub(super) build_events:
        Option<std::sync::Arc<dyn tvix_coordinator::events::Subscriber + Send>>,
    /// A flag that stops the evaluation once set (the dashboard's cancel key).
    #[arg(skip)]
    pub(super) interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

fn search_path(args: &EvalArgs) -> Vec<SearchPathEntry> {
    let mut entries: Vec<SearchPathEntry> = args
        .include
        .iter()
        .map(|s| SearchPathEntry::parse(s))
        .collect();
    if let Ok(nix_path) = std::env::var("NIX_PATH") {
        entries.extend(
            nix_path
                .split(':')
                .filter(|s| !s.is_empty())
                .map(SearchPathEntry::parse),
        );
    }
    entries
}

pub(super) fn eval_command(args: EvalArgs) -> i32 {
    match with_evaluator(&args, Ending::Exit, eval_and_print) {
        Ok(_) => 0,
        Err(code) => code,
    }
}

/// What becomes of the evaluator and the value when a command is done with them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The process goes on (a build follows): the evaluation's memory is freed.
    Free,
    /// The process ends: it exits at once, from the evaluation's thread. Freeing the
    /// evaluation's objects one by one (hundreds of thousands of them after a module-system
    /// evaluation) and the allocator's per-thread clean-up would only delay the exit, by a
    /// few percent of a short evaluation, and the system takes the memory back whole anyway
    /// (Nix's collector does not free at exit either). Output is flushed first.
    Exit,
}

/// Evaluates as `tvix instantiate` does and returns the found derivations (`DRV` or
/// `DRV!OUTPUT`), with the `.drv` files committed to the store. Errors are printed.
pub(super) fn instantiate_derivations(args: &EvalArgs) -> Result<Vec<String>, i32> {
    with_evaluator(args, Ending::Free, |ev, args| {
        let v = evaluate_selected(ev, args)?;
        let mut found = Vec::new();
        let mut seen = std::collections::HashSet::new();
        collect_derivations(ev, v, true, &mut seen, &mut found)?;
        commit(ev)?;
        Ok(found)
    })
}

/// Runs `f` with an evaluator configured from `args`; an error is rendered to stderr and
/// becomes exit status 1. With [`Ending::Exit`] this does not return: the process exits
/// with the status, the evaluator and `f`'s result left to the system.
fn with_evaluator<T>(
    args: &EvalArgs,
    ending: Ending,
    f: impl FnOnce(&mut Evaluator, &EvalArgs) -> EvalResult<T>,
) -> Result<T, i32> {
    let options = option_map(&args.option);
    let config = EvalConfig {
        search_path: search_path(args),
        max_call_depth: args.max_call_depth,
        lower: LowerOptions {
            pipe_operators: has_feature(args, "pipe-operators"),
            home: None,
            lint_absolute_paths: lint_level(&args.lint_absolute_path_literals),
            lint_short_paths: lint_level(&args.lint_short_path_literals),
            lint_url_literals: lint_level(&args.lint_url_literals),
        },
        parse_toml_timestamps: has_feature(args, "parse-toml-timestamps"),
        fetch_closure: has_feature(args, "fetch-closure"),
        abort_on_warn: args
            .option
            .chunks(2)
            .any(|kv| kv[0] == "abort-on-warn" && kv.get(1).is_some_and(|v| v == "true")),
        allow_import_from_derivation: bool_option(&options, "allow-import-from-derivation", true),
        ..EvalConfig::default()
    };
    let io = match tvix_coordinator::eval_io::counted_eval_io(
        args.store.as_deref(),
        args.readonly_mode,
        &options,
        args.progress.clone(),
        args.build_events.clone(),
    ) {
        Ok(io) => io,
        Err(msg) => {
            match &args.reporter {
                Some(r) => r(Report::Error(&format!("error: {msg}\n"))),
                None => eprintln!("error: {msg}"),
            }
            return Err(1);
        }
    };
    // `nix-instantiate --eval` runs in Nix's read-only mode unless told otherwise.
    let io: Box<dyn tvix_eval::io::EvalIO> = if read_only_default(args) {
        Box::new(tvix_eval::io::ReadOnly::new(io))
    } else {
        io
    };
    let mut ev = Evaluator::new(io, config);
    ev.interrupt = args.interrupt.clone();
    // A reporter gets plain text: it is not writing to a terminal.
    let color = args.reporter.is_none()
        && std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    // Messages may carry colour codes of their own; they only reach a colour terminal.
    let for_stderr = move |text: &str| -> String {
        if color {
            text.to_string()
        } else {
            strip_ansi(text).into_owned()
        }
    };
    ev.diagnostics = match args.reporter.clone() {
        Some(r) => Box::new(move |msg| r(Report::Diagnostic(&strip_ansi(msg)))),
        None => Box::new(move |msg| eprintln!("{}", for_stderr(msg))),
    };
    let render = RenderOptions {
        show_trace: args.show_trace && !args.no_show_trace,
        color,
    };
    let result = f(&mut ev, args);
    if std::env::var_os("TVIX_SHOW_STATS").is_some() {
        eprintln!("{:#?}", ev.stats);
    }
    let result = result.map_err(|e| {
        let text = render_error(&e, &ev.sources, render);
        match &args.reporter {
            Some(r) => r(Report::Error(&strip_ansi(&text))),
            None => eprint!("{}", for_stderr(&text)),
        }
        e.kind.exit_status()
    });
    if ending == Ending::Exit {
        let code = result.as_ref().err().copied().unwrap_or(0);
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        std::process::exit(code);
    }
    result
}

/// Whether an evaluation computes paths without writing them (Nix's read-only mode):
/// `--eval` without `--read-write-mode`. Instantiating writes the `.drv` files it prints.
fn read_only_default(args: &EvalArgs) -> bool {
    !args.instantiate && !args.read_write_mode && !args.readonly_mode
}

/// `--option NAME VALUE` pairs as a map (a later pair wins, as in Nix).
pub(super) fn option_map(pairs: &[String]) -> std::collections::BTreeMap<String, String> {
    pairs
        .chunks(2)
        .filter_map(|kv| Some((kv[0].clone(), kv.get(1)?.clone())))
        .collect()
}

/// A Boolean option: `true` or `false`; anything else is warned about and the default
/// kept, as Nix does.
pub(super) fn bool_option(
    options: &std::collections::BTreeMap<String, String>,
    name: &str,
    default: bool,
) -> bool {
    match options.get(name).map(String::as_str) {
        None => default,
        Some("true") => true,
        Some("false") => false,
        Some(other) => {
            eprintln!("warning: Boolean setting '{name}' has invalid value '{other}'");
            default
        }
    }
}

fn lint_level(flag: &Option<String>) -> LintLevel {
    flag.as_deref()
        .and_then(LintLevel::parse)
        .unwrap_or_default()
}

/// Whether `--extra-experimental-features` (any of its space-separated lists) names `feature`.
fn has_feature(args: &EvalArgs, feature: &str) -> bool {
    args.features
        .iter()
        .any(|f| f.split_whitespace().any(|x| x == feature))
}

pub(super) fn cwd() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))
}

fn read_input(args: &EvalArgs) -> Result<(String, String, PathBuf), String> {
    if let Some(expr) = &args.expr {
        return Ok(("«string»".to_string(), expr.clone(), cwd()));
    }
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| "default.nix".to_string());
    if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading standard input: {e}"))?;
        return Ok(("«stdin»".to_string(), text, cwd()));
    }
    let mut path = cwd().join(&file);
    if path.is_dir() {
        path.push("default.nix");
    }
    let bytes =
        std::fs::read(&path).map_err(|e| format!("getting status of '{}': {e}", path.display()))?;
    let abs = tvix_eval::lower::canonicalize_path(path.as_os_str().as_encoded_bytes());
    let dir = abs
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    Ok((
        abs.display().to_string(),
        tvix_eval::source::decode_source(bytes),
        dir,
    ))
}

/// Evaluates and prints; gives back the value, which [`Ending::Exit`] leaves to the system.
fn eval_and_print(ev: &mut Evaluator, args: &EvalArgs) -> EvalResult<Value> {
    let (name, text, dir) =
        read_input(args).map_err(|m| EvalError::new(tvix_eval::ErrorKind::Other(m), None))?;
    if args.parse {
        let shown = ev.show_parsed(name, text, dir)?;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{shown}");
        let _ = stdout.flush();
        return Ok(Value::Null);
    }
    let v = evaluate_root(ev, args, name, text, dir)?;
    let kept = v.clone();
    if args.instantiate {
        let mut found = Vec::new();
        let mut seen = std::collections::HashSet::new();
        collect_derivations(ev, v, true, &mut seen, &mut found)?;
        commit(ev)?;
        let mut stdout = std::io::stdout().lock();
        for line in found {
            let _ = writeln!(stdout, "{line}");
        }
        let _ = stdout.flush();
        return Ok(kept);
    }
    let out = if args.raw {
        let s = ev.coerce_to_string(v, CoerceMode::Interpolation, None)?;
        commit(ev)?;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(s.as_bytes());
        let _ = stdout.flush();
        return Ok(kept);
    } else if args.json {
        // A newline after the JSON as current Nix prints it (Nix 2.8 printed none).
        let v = ev.force_deep(v)?;
        format!("{}\n", ev.to_json(v, None)?)
    } else if args.xml {
        // Without `--strict`, what is not evaluated yet shows as `<unevaluated />`, as in Nix.
        let v = if args.strict { ev.force_deep(v)? } else { v };
        ev.to_xml(v, args.strict, !args.no_location)?
    } else {
        let v = if args.strict { ev.force_deep(v)? } else { v };
        format!("{}\n", print_value(&v))
    };
    commit(ev)?;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    Ok(kept)
}

/// Reads the input, evaluates it, auto-calls it and selects the `-A` paths.
fn evaluate_selected(ev: &mut Evaluator, args: &EvalArgs) -> EvalResult<Value> {
    let (name, text, dir) =
        read_input(args).map_err(|m| EvalError::new(tvix_eval::ErrorKind::Other(m), None))?;
    evaluate_root(ev, args, name, text, dir)
}

fn evaluate_root(
    ev: &mut Evaluator,
    args: &EvalArgs,
    name: String,
    text: String,
    dir: PathBuf,
) -> EvalResult<Value> {
    let root = ev.eval_source(name, text, dir)?;
    let auto_args = auto_args(ev, args)?;
    let mut v = ev.force(root)?;
    for path in &args.attr {
        v = select_attr_path(ev, v, path, &auto_args)?;
    }
    // `nix-instantiate --eval` calls the value only when given `--arg`s (a function is
    // printed as it is otherwise, in Nix 2.8 and current Nix alike); instantiating always
    // calls it, as Nix's search for derivations does.
    if auto_args.is_empty() && !args.instantiate {
        return Ok(v);
    }
    ev.auto_call(v, &auto_args)
}

/// The `--arg`/`--argstr` values as an attribute set (each `--arg` evaluated lazily).
fn auto_args(ev: &mut Evaluator, args: &EvalArgs) -> EvalResult<Vec<(Symbol, Value)>> {
    let mut out = Vec::new();
    for pair in args.arg.chunks(2) {
        let v = ev.eval_source("«string»".to_string(), pair[1].clone(), cwd())?;
        out.push((Symbol::intern(&pair[0]), v));
    }
    for pair in args.argstr.chunks(2) {
        out.push((Symbol::intern(&pair[0]), Value::string(pair[1].as_str())));
    }
    Ok(out)
}

/// Makes the paths the evaluation wrote durable before its result (which may name them)
/// is printed.
fn commit(ev: &Evaluator) -> EvalResult<()> {
    ev.io.commit().map_err(|e| {
        EvalError::new(
            tvix_eval::ErrorKind::Other(format!("committing to the store: {e}")),
            None,
        )
    })
}

/// `-A a.b.0.c`: attribute names and list indices, auto-calling functions on the way.
fn select_attr_path(
    ev: &mut Evaluator,
    mut v: Value,
    path: &str,
    auto_args: &[(Symbol, Value)],
) -> EvalResult<Value> {
    let fail = |m: String| EvalError::new(tvix_eval::ErrorKind::Other(m), None);
    for part in split_attr_path(path) {
        if part.is_empty() {
            continue;
        }
        v = ev.auto_call(v, auto_args)?;
        v = match (&v, part.parse::<usize>()) {
            (Value::List(l), Ok(i)) => {
                let item = l.get(i).cloned().ok_or_else(|| {
                    fail(format!(
                        "list index {i} in selection path '{path}' is out of range"
                    ))
                })?;
                ev.force(item)?
            }
            (Value::Attrs(a), _) => {
                let name = Symbol::intern(&part);
                match a.get(name) {
                    Some(x) => ev.force(x.clone())?,
                    None => {
                        let names = a.iter().map(|e| e.name.as_str());
                        let similar = tvix_eval::suggest::similar(&part, names);
                        return Err(fail(format!(
                            "attribute '{part}' in selection path '{path}' not found"
                        ))
                        .with_suggestions(similar));
                    }
                }
            }
            _ => {
                return Err(fail(format!(
                "the expression selected by the selection path '{path}' should be a set but is {}",
                v.type_of()
            )))
            }
        };
    }
    Ok(v)
}

/// Splits `a."b.c".d` into its parts.
fn split_attr_path(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in path.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

/// `nix-instantiate`'s search for derivations in the result: a derivation, or a list (every
/// element searched) or attribute set (derivation attributes taken, sets with
/// `recurseForDerivations = true` searched) of those. Each found derivation is recorded as
/// its `.drv` path, with `!OUTPUT` unless its selected output is `out`. As in Nix, a
/// derivation reached twice as the same set (`{ a = d; b = d; }`) is listed once.
fn collect_derivations(
    ev: &mut Evaluator,
    v: Value,
    searchable: bool,
    seen: &mut std::collections::HashSet<*const tvix_eval::value::Attrs>,
    found: &mut Vec<String>,
) -> EvalResult<()> {
    use tvix_eval::symbol::Symbol;
    let v = ev.force(v)?;
    let not_drv = || {
        EvalError::new(
            tvix_eval::ErrorKind::Other(
                "expression does not evaluate to a derivation (or a set or list of those)"
                    .to_string(),
            ),
            None,
        )
    };
    match &v {
        Value::Attrs(a) => {
            if let Some(t) = a.get(Symbol::intern("type")).cloned() {
                let t = ev.force(t)?;
                if let Value::String(t) = &t {
                    if t.as_bytes() == b"derivation" {
                        if !seen.insert(Rc::as_ptr(a)) {
                            return Ok(());
                        }
                        let drv = a.get(Symbol::intern("drvPath")).cloned().ok_or_else(|| {
                            EvalError::new(
                                tvix_eval::ErrorKind::Other(
                                    "derivation has no 'drvPath' attribute".to_string(),
                                ),
                                None,
                            )
                        })?;
                        let drv = ev.force_string(drv, None)?.to_str_lossy().into_owned();
                        let out = match a.get(Symbol::intern("outputName")).cloned() {
                            Some(o) => ev.force_string(o, None)?.to_str_lossy().into_owned(),
                            None => "out".to_string(),
                        };
                        found.push(if out == "out" {
                            drv
                        } else {
                            format!("{drv}!{out}")
                        });
                        return Ok(());
                    }
                }
            }
            if !searchable {
                return Ok(());
            }
            let entries: Vec<Value> = a.iter().map(|e| e.value.clone()).collect();
            for item in entries {
                let item = ev.force(item)?;
                let recurse = match &item {
                    Value::Attrs(inner) => match inner.get(Symbol::intern("recurseForDerivations"))
                    {
                        Some(r) => matches!(ev.force(r.clone())?, Value::Bool(b) if b.get()),
                        None => false,
                    },
                    _ => false,
                };
                if matches!(item, Value::Attrs(_)) {
                    collect_derivations(ev, item, recurse, seen, found)?;
                }
            }
            Ok(())
        }
        Value::List(l) if searchable => {
            let items: Vec<Value> = l.iter().cloned().collect();
            for item in items {
                let item = ev.force(item)?;
                if !matches!(item, Value::Attrs(_) | Value::List(_)) {
                    return Err(not_drv());
                }
                collect_derivations(ev, item, true, seen, found)?;
            }
            Ok(())
        }
        _ => Err(not_drv()),
    }
}
