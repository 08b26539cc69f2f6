//! Command-line parsing and dispatch. `tvix eval` mirrors `nix-instantiate --eval`; invoked as
//! `nix-instantiate` the binary accepts that command's flags so existing scripts run unchanged.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::rc::Rc;

use clap::{Args, Parser, Subcommand};
use tvix_eval::diagnostic::{render_error, strip_ansi, RenderOptions};
use tvix_eval::eval::CoerceMode;
use tvix_eval::io::StdIO;
use tvix_eval::lower::{LintLevel, LowerOptions};
use tvix_eval::value::print::print_value;
use tvix_eval::{EvalConfig, EvalError, EvalResult, Evaluator, SearchPathEntry, Value};

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
    /// print as `DRV!OUTPUT`. tvix has no store yet: the `.drv` files are NOT written; their
    /// paths are computed exactly as Nix computes them.
    Instantiate(EvalArgs),
    /// Print `.drv` files read from disk (e.g. written by Nix) as JSON, in the format of
    /// `nix derivation show`: an object keyed by `.drv` path.
    ShowDerivation(ShowDerivationArgs),
    /// Work with the tvix store (castore and path info).
    Store(StoreArgs),
}

/// Flags of `tvix show-derivation`.
#[derive(Args)]
struct ShowDerivationArgs {
    /// The `.drv` files.
    #[arg(required = true)]
    paths: Vec<String>,
    /// Also show the input derivations, recursively (their files must exist).
    #[arg(short = 'r', long)]
    recursive: bool,
}

/// Flags of `tvix eval`, which are those of `nix-instantiate --eval`.
#[derive(Args, Default)]
struct EvalArgs {
    /// The file to evaluate (`-` for standard input); `./default.nix` if omitted.
    file: Option<String>,
    /// Evaluate this expression instead of a file.
    #[arg(short = 'E', long = "expr", allow_hyphen_values = true)]
    expr: Option<String>,
    /// Evaluate the result deeply, not just to weak head normal form.
    #[arg(long)]
    strict: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Print the result as XML.
    #[arg(long)]
    xml: bool,
    /// Leave source positions out of the XML output.
    #[arg(long)]
    no_location: bool,
    /// Select an attribute path from the result.
    #[arg(short = 'A', long = "attr")]
    attr: Vec<String>,
    /// Pass NAME=EXPR to the top-level function.
    #[arg(long, num_args = 2, value_names = ["NAME", "EXPR"])]
    arg: Vec<String>,
    /// Pass NAME="STRING" to the top-level function.
    #[arg(long, num_args = 2, value_names = ["NAME", "STRING"])]
    argstr: Vec<String>,
    /// Add a search path entry (`PATH` or `NAME=PATH`).
    #[arg(short = 'I', long = "include")]
    include: Vec<String>,
    /// Show the whole trace of an error.
    #[arg(long)]
    show_trace: bool,
    /// Hide the trace (the default).
    #[arg(long, hide = true)]
    no_show_trace: bool,
    /// Only parse the input; exit 1 on a syntax error.
    #[arg(long)]
    parse: bool,
    /// Maximum depth of nested calls.
    #[arg(long, default_value_t = 10_000)]
    max_call_depth: usize,
    /// Enable experimental features (`pipe-operators`, ...).
    #[arg(long = "extra-experimental-features", alias = "experimental-features")]
    features: Vec<String>,
    /// Accepted for compatibility; evaluation never writes without a store.
    #[arg(long, hide = true)]
    read_write_mode: bool,
    /// Accepted for compatibility.
    #[arg(long, hide = true)]
    readonly_mode: bool,
    /// Accepted for compatibility.
    #[arg(long, hide = true)]
    impure: bool,
    /// Lint levels for path and URL literals: `warn` or `fatal` (accepted; see issue 5/7).
    #[arg(long, hide = true)]
    lint_absolute_path_literals: Option<String>,
    #[arg(long, hide = true)]
    lint_short_path_literals: Option<String>,
    #[arg(long, hide = true)]
    lint_url_literals: Option<String>,
    /// Set a Nix option: `abort-on-warn true` is understood; others are accepted and ignored.
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"])]
    option: Vec<String>,
    /// Accepted for compatibility (`nix-instantiate --timeout`); evaluation is not timed out.
    #[arg(long, hide = true)]
    timeout: Option<u64>,
    /// Accepted for compatibility (`nix-instantiate --add-root`); no `.drv` is written, so
    /// there is nothing to root.
    #[arg(long, hide = true)]
    add_root: Option<String>,
    /// Accepted for compatibility (`nix-instantiate --indirect`).
    #[arg(long, hide = true)]
    indirect: bool,
    /// Set by `tvix instantiate`: print the `.drv` paths of the resulting derivations.
    #[arg(skip)]
    instantiate: bool,
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
    let cli = if invoked_as == "nix-instantiate" {
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
        Command::ShowDerivation(args) => show_derivation(&args),
        Command::Store(args) => store_command(args),
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

fn eval_command(args: EvalArgs) -> i32 {
    let config = EvalConfig {
        search_path: search_path(&args),
        max_call_depth: args.max_call_depth,
        lower: LowerOptions {
            pipe_operators: has_feature(&args, "pipe-operators"),
            home: None,
            lint_absolute_paths: lint_level(&args.lint_absolute_path_literals),
            lint_short_paths: lint_level(&args.lint_short_path_literals),
            lint_url_literals: lint_level(&args.lint_url_literals),
        },
        parse_toml_timestamps: has_feature(&args, "parse-toml-timestamps"),
        abort_on_warn: args
            .option
            .chunks(2)
            .any(|kv| kv[0] == "abort-on-warn" && kv.get(1).is_some_and(|v| v == "true")),
        ..EvalConfig::default()
    };
    let mut ev = Evaluator::new(Box::new(StdIO::new()), config);
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    // Messages may carry colour codes of their own; they only reach a colour terminal.
    let for_stderr = move |text: &str| -> String {
        if color {
            text.to_string()
        } else {
            strip_ansi(text).into_owned()
        }
    };
    ev.diagnostics = Box::new(move |msg| eprintln!("{}", for_stderr(msg)));
    let render = RenderOptions {
        show_trace: args.show_trace && !args.no_show_trace,
        color,
    };
    let result = eval_and_print(&mut ev, &args);
    if std::env::var_os("TVIX_SHOW_STATS").is_some() {
        eprintln!("{:#?}", ev.stats);
    }
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprint!("{}", for_stderr(&render_error(&e, &ev.sources, render)));
            1
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

fn cwd() -> PathBuf {
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

fn eval_and_print(ev: &mut Evaluator, args: &EvalArgs) -> EvalResult<()> {
    let (name, text, dir) =
        read_input(args).map_err(|m| EvalError::new(tvix_eval::ErrorKind::Other(m), None))?;
    if args.parse {
        ev.lower(name, text, dir)?;
        return Ok(());
    }
    let root = ev.eval_source(name, text, dir)?;
    let auto_args = auto_args(ev, args)?;
    let mut v = auto_call(ev, root, &auto_args)?;
    for path in &args.attr {
        v = select_attr_path(ev, v, path, &auto_args)?;
    }
    let v = auto_call(ev, v, &auto_args)?;
    if args.instantiate {
        let mut found = Vec::new();
        let mut seen = std::collections::HashSet::new();
        collect_derivations(ev, v, true, &mut seen, &mut found)?;
        let mut stdout = std::io::stdout().lock();
        for line in found {
            let _ = writeln!(stdout, "{line}");
        }
        let _ = stdout.flush();
        return Ok(());
    }
    let out = if args.json {
        let v = ev.force_deep(v)?;
        format!("{}\n", ev.to_json(v, None)?)
    } else if args.xml {
        let v = ev.force_deep(v)?;
        ev.to_xml(v, !args.no_location)?
    } else {
        let v = if args.strict { ev.force_deep(v)? } else { v };
        format!("{}\n", print_value(&v))
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    Ok(())
}

/// The `--arg`/`--argstr` values as an attribute set (each `--arg` evaluated lazily).
fn auto_args(ev: &mut Evaluator, args: &EvalArgs) -> EvalResult<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for pair in args.arg.chunks(2) {
        let v = ev.eval_source("«string»".to_string(), pair[1].clone(), cwd())?;
        out.push((pair[0].clone(), v));
    }
    for pair in args.argstr.chunks(2) {
        out.push((pair[0].clone(), Value::string(pair[1].as_str())));
    }
    Ok(out)
}

/// Nix's `autoCallFunction`: a function with formals is called with the matching `--arg`s.
fn auto_call(ev: &mut Evaluator, v: Value, auto_args: &[(String, Value)]) -> EvalResult<Value> {
    let v = ev.force(v)?;
    let Value::Lambda(c) = &v else {
        if let Value::Attrs(a) = &v {
            if let Some(f) = a.get(tvix_eval::eval::sym::functor()).cloned() {
                let f = ev.force(f)?;
                let g = ev.call(f, v.clone(), None)?;
                return auto_call(ev, g, auto_args);
            }
        }
        return Ok(v);
    };
    let tvix_eval::ir::Param::Pattern(p) = &c.lambda.param else {
        return Ok(v);
    };
    let mut entries = Vec::new();
    for formal in &p.formals {
        match auto_args.iter().find(|(n, _)| n == formal.name.as_str()) {
            Some((_, val)) => entries.push((formal.name, val.clone())),
            None if formal.default.is_some() => {}
            None => {
                return Err(EvalError::new(
                    tvix_eval::ErrorKind::Other(format!(
                        "cannot evaluate a function that has an argument without a value ('{}')",
                        formal.name
                    )),
                    Some(formal.span),
                ))
            }
        }
    }
    let arg = tvix_eval::builtins::make_attrs(entries);
    let r = ev.call(v.clone(), arg, None)?;
    ev.force(r)
}

/// `-A a.b.0.c`: attribute names and list indices, auto-calling functions on the way.
fn select_attr_path(
    ev: &mut Evaluator,
    mut v: Value,
    path: &str,
    auto_args: &[(String, Value)],
) -> EvalResult<Value> {
    let fail = |m: String| EvalError::new(tvix_eval::ErrorKind::Other(m), None);
    for part in split_attr_path(path) {
        if part.is_empty() {
            continue;
        }
        v = auto_call(ev, v, auto_args)?;
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
                let name = tvix_eval::symbol::Symbol::intern(&part);
                match a.get(name) {
                    Some(x) => ev.force(x.clone())?,
                    None => {
                        return Err(fail(format!(
                            "attribute '{part}' in selection path '{path}' not found"
                        )))
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
    let _ = CoerceMode::ToString;
    let _ = Rc::new(());
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
                        Some(r) => matches!(ev.force(r.clone())?, Value::Bool(true)),
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

/// `tvix show-derivation`: `.drv` files as the JSON of `nix derivation show`.
fn show_derivation(args: &ShowDerivationArgs) -> i32 {
    let mut drvs: std::collections::BTreeMap<String, tvix_store::Derivation> =
        std::collections::BTreeMap::new();
    let mut todo: Vec<String> = args
        .paths
        .iter()
        .map(|p| {
            let abs = cwd().join(p);
            tvix_eval::lower::canonicalize_path(abs.as_os_str().as_encoded_bytes())
                .display()
                .to_string()
        })
        .collect();
    while let Some(path) = todo.pop() {
        if drvs.contains_key(&path) {
            continue;
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: reading '{path}': {e}");
                return 1;
            }
        };
        let drv = match tvix_store::Derivation::from_aterm_bytes(&bytes) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: '{path}' is not a valid derivation: {e}");
                return 1;
            }
        };
        if args.recursive {
            todo.extend(drv.input_derivations.keys().cloned());
        }
        drvs.insert(path, drv);
    }
    let mut out = String::new();
    derivations_json(&drvs, &mut out);
    out.push('\n');
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    0
}

/// The derivation's name, from its `.drv` path: `HASH-NAME.drv`.
fn drv_name(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.strip_suffix(".drv").unwrap_or(base);
    base.split_once('-').map(|(_, n)| n).unwrap_or(base)
}

/// A JSON string as `nix derivation show` writes it (nlohmann::json's escaping).
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A tiny JSON tree, printed with two-space indentation and keys in the given order
/// (callers sort them, as Nix's JSON objects are).
enum Json {
    Str(String),
    List(Vec<Json>),
    Object(Vec<(String, Json)>),
}

fn write_json(out: &mut String, v: &Json, indent: usize) {
    let pad = |out: &mut String, n: usize| out.extend(std::iter::repeat_n(' ', n));
    match v {
        Json::Str(s) => json_string(out, s),
        Json::List(items) if items.is_empty() => out.push_str("[]"),
        Json::Object(items) if items.is_empty() => out.push_str("{}"),
        Json::List(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                pad(out, indent + 2);
                write_json(out, item, indent + 2);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push(']');
        }
        Json::Object(items) => {
            out.push_str("{\n");
            for (i, (k, item)) in items.iter().enumerate() {
                pad(out, indent + 2);
                json_string(out, k);
                out.push_str(": ");
                write_json(out, item, indent + 2);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push('}');
        }
    }
}

fn derivation_json(path: &str, d: &tvix_store::Derivation) -> Json {
    let strs = |it: &mut dyn Iterator<Item = &String>| {
        Json::List(it.map(|s| Json::Str(s.clone())).collect())
    };
    let outputs = d
        .outputs
        .iter()
        .map(|(name, o)| {
            let mut fields = Vec::new();
            if !o.hash.is_empty() {
                fields.push(("hash".to_string(), Json::Str(o.hash.clone())));
            }
            if !o.hash_algo.is_empty() {
                fields.push(("hashAlgo".to_string(), Json::Str(o.hash_algo.clone())));
            }
            if !o.path.is_empty() {
                fields.push(("path".to_string(), Json::Str(o.path.clone())));
            }
            (name.clone(), Json::Object(fields))
        })
        .collect();
    let input_drvs = d
        .input_derivations
        .iter()
        .map(|(p, outs)| {
            (
                p.clone(),
                Json::Object(vec![
                    ("dynamicOutputs".to_string(), Json::Object(Vec::new())),
                    ("outputs".to_string(), strs(&mut outs.iter())),
                ]),
            )
        })
        .collect();
    let env = d
        .env
        .iter()
        .map(|(k, v)| (k.clone(), Json::Str(v.clone())))
        .collect();
    Json::Object(vec![
        ("args".to_string(), strs(&mut d.args.iter())),
        ("builder".to_string(), Json::Str(d.builder.clone())),
        ("env".to_string(), Json::Object(env)),
        ("inputDrvs".to_string(), Json::Object(input_drvs)),
        ("inputSrcs".to_string(), strs(&mut d.input_sources.iter())),
        ("name".to_string(), Json::Str(drv_name(path).to_string())),
        ("outputs".to_string(), Json::Object(outputs)),
        ("system".to_string(), Json::Str(d.system.clone())),
    ])
}

fn derivations_json(
    drvs: &std::collections::BTreeMap<String, tvix_store::Derivation>,
    out: &mut String,
) {
    let root = Json::Object(
        drvs.iter()
            .map(|(p, d)| (p.clone(), derivation_json(p, d)))
            .collect(),
    );
    write_json(out, &root, 0);
}
/// `tvix store ...`: the store subcommands.
#[derive(Args)]
struct StoreArgs {
    /// The store to use: `memory://`, `local://` (the default directory) or
    /// `local:///path/to/dir`. Defaults to `$TVIX_STORE`, else `local://`.
    #[arg(long, global = true, value_name = "URL")]
    store: Option<String>,
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Add paths to the store as `nix-store --add` does; print their store paths.
    Import {
        /// Files, directories or symlinks to add.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Write the NAR of a store path (or a path inside one) to standard output, as
    /// `nix-store --dump` does.
    Export {
        /// The store path.
        path: String,
    },
    /// Show the path info of store paths (all registered paths if none are given).
    Info {
        /// Store paths.
        paths: Vec<String>,
    },
    /// List a directory inside a store path.
    Ls {
        /// A store path, or a path inside one.
        path: String,
    },
    /// Print a file inside a store path.
    Cat {
        /// A store path, or a path inside one.
        path: String,
    },
    /// Re-hash everything in the store and report problems; exit 1 if there are any.
    Verify,
}

/// The store directory paths are computed for: `$NIX_STORE_DIR`, else `/nix/store`.
fn store_dir() -> Result<tvix_store::StoreDir, String> {
    match std::env::var("NIX_STORE_DIR") {
        Ok(d) if !d.is_empty() => tvix_store::StoreDir::new(d).map_err(|e| e.to_string()),
        _ => Ok(tvix_store::StoreDir::default()),
    }
}

fn store_command(args: StoreArgs) -> i32 {
    let url = args
        .store
        .clone()
        .unwrap_or_else(tvix_store::castore::default_store_url);
    match store_command_inner(&url, args.command) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("error: {msg}");
            1
        }
    }
}

/// Resolves `STOREPATH[/sub/path]` to its path info and the node it names.
fn store_lookup(
    store: &tvix_store::castore::Store,
    sd: &tvix_store::StoreDir,
    path: &str,
) -> Result<(tvix_store::pathinfo::PathInfo, tvix_store::castore::Node), String> {
    use tvix_store::pathinfo::PathInfoService;
    let (sp, rest) = sd.split_path(path).map_err(|e| e.to_string())?;
    let info = store
        .get_path_info(&sp)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("path '{}' is not valid", sd.display(&sp)))?;
    let node = tvix_store::castore::nar::resolve(store, &info.node, rest, path)
        .map_err(|e| e.to_string())?;
    Ok((info, node))
}

fn store_command_inner(url: &str, cmd: StoreCommand) -> Result<i32, String> {
    use tvix_store::castore::{nar as cnar, BlobService, DirectoryService, Node};
    use tvix_store::pathinfo::PathInfoService;
    let store = tvix_store::castore::Store::open(url).map_err(|e| e.to_string())?;
    let sd = store_dir()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let werr = |e: std::io::Error| e.to_string();
    match cmd {
        StoreCommand::Import { paths } => {
            for p in paths {
                let info = cnar::import_path(&store, &sd, &p)
                    .map_err(|e| format!("importing '{}': {e}", p.display()))?;
                writeln!(out, "{}", sd.display(&info.store_path)).map_err(werr)?;
            }
        }
        StoreCommand::Export { path } => {
            let (_, node) = store_lookup(&store, &sd, &path)?;
            cnar::write_nar(&store, &node, &mut out).map_err(|e| e.to_string())?;
        }
        StoreCommand::Info { paths } => {
            let infos = if paths.is_empty() {
                let mut all = store.list_path_infos().map_err(|e| e.to_string())?;
                all.sort_by_key(|i| sd.display(&i.store_path));
                all
            } else {
                let mut v = Vec::new();
                for p in &paths {
                    v.push(store_lookup(&store, &sd, p)?.0);
                }
                v
            };
            for info in infos {
                writeln!(out, "StorePath: {}", sd.display(&info.store_path)).map_err(werr)?;
                writeln!(out, "NarHash: {}", info.nar_hash_string()).map_err(werr)?;
                writeln!(out, "NarSize: {}", info.nar_size).map_err(werr)?;
                let refs: Vec<String> = info.references.iter().map(|r| r.to_base_name()).collect();
                writeln!(out, "References: {}", refs.join(" ")).map_err(werr)?;
                if let Some(d) = &info.deriver {
                    writeln!(out, "Deriver: {}", d.to_base_name()).map_err(werr)?;
                }
                for s in &info.signatures {
                    writeln!(out, "Sig: {s}").map_err(werr)?;
                }
                if let Some(ca) = &info.ca {
                    writeln!(out, "CA: {ca}").map_err(werr)?;
                }
                writeln!(out, "Root: {}", describe_node(&info.node)).map_err(werr)?;
                writeln!(out).map_err(werr)?;
            }
        }
        StoreCommand::Ls { path } => {
            let (_, node) = store_lookup(&store, &sd, &path)?;
            match &node {
                Node::Directory { digest, .. } => {
                    let dir = store
                        .get_directory(digest)
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("directory {digest} not found"))?;
                    for (name, n) in dir.entries() {
                        let name = String::from_utf8_lossy(name);
                        writeln!(out, "{}", ls_line(&name, n)).map_err(werr)?;
                    }
                }
                other => {
                    let name = path.rsplit('/').next().unwrap_or(&path);
                    writeln!(out, "{}", ls_line(name, other)).map_err(werr)?;
                }
            }
        }
        StoreCommand::Cat { path } => {
            let (_, node) = store_lookup(&store, &sd, &path)?;
            let Node::File { digest, .. } = node else {
                return Err(format!("'{path}' is not a regular file"));
            };
            let mut r = store
                .open_blob(&digest)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("blob {digest} not found"))?;
            std::io::copy(&mut r, &mut out)
                .map_err(|e| tvix_store::castore::StoreError::from_io(e).to_string())?;
        }
        StoreCommand::Verify => {
            let report = store.verify().map_err(|e| e.to_string())?;
            for p in &report.problems {
                eprintln!("error: {p}");
            }
            eprintln!(
                "checked {} chunks, {} blobs, {} directories, {} paths: {} problem(s)",
                report.chunks,
                report.blobs,
                report.directories,
                report.paths,
                report.problems.len()
            );
            if !report.problems.is_empty() {
                return Ok(1);
            }
        }
    }
    out.flush().map_err(werr)?;
    Ok(0)
}

fn describe_node(node: &tvix_store::castore::Node) -> String {
    use tvix_store::castore::Node;
    match node {
        Node::Directory { digest, size } => format!("directory {digest} ({size} entries)"),
        Node::File {
            digest,
            size,
            executable,
        } => format!(
            "{} {digest} ({size} bytes)",
            if *executable { "executable" } else { "file" }
        ),
        Node::Symlink { target } => format!("symlink -> {}", String::from_utf8_lossy(target)),
    }
}

/// One line of `tvix store ls`, in the style of `nix store ls -l`.
fn ls_line(name: &str, node: &tvix_store::castore::Node) -> String {
    use tvix_store::castore::Node;
    match node {
        Node::Directory { .. } => format!("dr-xr-xr-x {:>20} {name}", 0),
        Node::File {
            size, executable, ..
        } => {
            let mode = if *executable {
                "-r-xr-xr-x"
            } else {
                "-r--r--r--"
            };
            format!("{mode} {size:>20} {name}")
        }
        Node::Symlink { target } => format!(
            "lrwxrwxrwx {:>20} {name} -> {}",
            0,
            String::from_utf8_lossy(target)
        ),
    }
}
