//! `tvix build` (and `nix-build` under that name): evaluate, instantiate, build in
//! dependency order through a build service, print the output paths and create `result`
//! links, with `nix-build`'s exit statuses.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use tvix_build::CancelToken;
use tvix_coordinator::events::Subscriber;
use tvix_coordinator::realise::{
    failure_messages, parse_max_jobs, DrvOutput, RealiseConfig, RealiseError, Realiser, LOG_COMMAND,
};
use tvix_store::StorePath;
use tvix_tui::driver::{color_allowed, Dashboard, Mode, Options};
use tvix_tui::history::HistoryFile;
use tvix_tui::model::Update;

use super::eval::{instantiate_derivations, EvalArgs, Report};
use super::log_format::{shown, verbosity, BuildOutput, LogFormat, SequentialOutput, Shown};

/// Flags of `tvix build`, which are those of `nix-build`.
#[derive(Args, Default)]
pub(super) struct BuildArgs {
    /// The file to evaluate; `./default.nix` if omitted.
    pub(super) file: Option<String>,
    /// Build the derivations of this expression instead of a file.
    #[arg(short = 'E', long = "expr", allow_hyphen_values = true)]
    pub(super) expr: Option<String>,
    /// Select an attribute path from the result (may be repeated).
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
    /// The name of the result link (`result` by default); more derivations get `-2`, `-3`,
    /// outputs other than `out` get `-OUTPUT`.
    #[arg(short = 'o', long = "out-link")]
    pub(super) out_link: Option<String>,
    /// Create no result link.
    #[arg(long)]
    pub(super) no_out_link: bool,
    /// Use no substituter (binary caches are not asked; everything missing is built).
    #[arg(long)]
    pub(super) offline: bool,
    /// Build what fails to substitute (as `--option fallback true`).
    #[arg(long)]
    pub(super) fallback: bool,
    /// Set a Nix option: `sandbox-paths`, `system-features`, `extra-platforms`, `system`,
    /// `cores`, `timeout`, `max-silent-time`, `builders` (remote tvix builder daemons, as
    /// Nix's machines list), `builders-use-substitutes`, and the substitution settings
    /// (`substituters`, `trusted-public-keys`, `require-sigs`, `substitute`, `fallback`,
    /// `narinfo-cache-positive-ttl`, `narinfo-cache-negative-ttl`, `connect-timeout`,
    /// `stalled-download-timeout`) are understood; others are accepted and ignored.
    /// Options are read from nix.conf and `NIX_CONFIG` too, as Nix reads them.
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"])]
    pub(super) option: Vec<String>,
    /// `NIX_BUILD_CORES` of the builds (default: the number of cores).
    #[arg(long)]
    pub(super) cores: Option<u32>,
    /// Keep the build directory of a failed build.
    #[arg(short = 'K', long)]
    pub(super) keep_failed: bool,
    /// Rebuild the requested derivations (their outputs must be valid) and compare.
    #[arg(long)]
    pub(super) check: bool,
    /// Fail a build that runs longer than this many seconds.
    #[arg(long)]
    pub(super) timeout: Option<u64>,
    /// Fail a build that prints nothing for this many seconds.
    #[arg(long)]
    pub(super) max_silent_time: Option<u64>,
    /// The store: derivations are written to it, inputs read from it and outputs added
    /// to it (default: `$TVIX_STORE`, else `local://`).
    #[arg(long, value_name = "URL")]
    pub(super) store: Option<String>,
    /// Where builds run (default: `$TVIX_BUILD_SERVICE`, else `oci://`).
    #[arg(long, value_name = "URL")]
    pub(super) build_service: Option<String>,
    /// Show the whole trace of an evaluation error.
    #[arg(long)]
    pub(super) show_trace: bool,
    /// How many builds run at once on this machine (a number or `auto` for the number of
    /// cores; default 1; 0 builds everything on the remote `builders`).
    #[arg(short = 'j', long = "max-jobs", value_name = "N")]
    pub(super) max_jobs: Option<String>,
    /// Go on building what does not depend on a failed build.
    #[arg(short = 'k', long)]
    pub(super) keep_going: bool,
    /// Only show what would be built.
    #[arg(long)]
    pub(super) dry_run: bool,
    /// Do not print build logs; a failure shows the last lines of its log instead.
    #[arg(long, short = 'Q')]
    pub(super) no_build_output: bool,
    /// Show fewer messages (takes one level off the verbosity).
    #[arg(long, hide = true)]
    pub(super) quiet: bool,
    /// Show more messages (may be repeated: each adds a level, as in Nix).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub(super) verbose: u8,
    /// Enable experimental features.
    #[arg(long = "extra-experimental-features", alias = "experimental-features")]
    pub(super) features: Vec<String>,
    /// How progress, logs and errors are written on stderr: `bar` (a dashboard on a
    /// terminal, one timestamped line per event elsewhere; the default), `bar-with-logs`
    /// (with the build logs as `name> line`), `raw` (Nix's lines; the default as
    /// `nix-build`) or `internal-json` (Nix's `@nix {...}` records, for tools made for
    /// Nix).
    #[arg(long, value_enum, value_name = "FORMAT", overrides_with = "log_format")]
    pub(super) log_format: Option<LogFormat>,
    /// Print build logs as `name> line` (`--log-format bar-with-logs`).
    #[arg(short = 'L', long)]
    pub(super) print_build_logs: bool,
    /// Set when the binary runs as `nix-build` or `nix-store` (whose default format is
    /// Nix's).
    #[arg(skip)]
    pub(super) as_nix_build: bool,
}

/// The `--option NAME VALUE` pairs (the last one of a name wins).
fn options(args: &BuildArgs) -> BTreeMap<String, String> {
    args.option
        .chunks(2)
        .filter(|kv| kv.len() == 2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect()
}

/// How `args` ask the run to be shown. A dry run only lists what would be done, as Nix's
/// lines do (or its records).
fn shown_as(args: &BuildArgs) -> Shown {
    match shown(args.log_format, args.print_build_logs, args.as_nix_build) {
        Shown::Bar { .. } if args.dry_run => Shown::Raw,
        s => s,
    }
}

/// The output `args` ask for.
fn build_output(args: &BuildArgs) -> BuildOutput {
    BuildOutput::new(
        shown_as(args),
        args.no_build_output,
        verbosity(args.verbose, args.quiet),
        args.check,
    )
}

/// The configuration the options give, with the flags over them.
fn config(args: &BuildArgs, store_url: &str) -> Result<RealiseConfig, RealiseError> {
    // Settings as Nix reads them: nix.conf files and NIX_CONFIG under `--option`.
    let settings = tvix_coordinator::nix_conf::settings(&options(args))?;
    let mut c = RealiseConfig::from_options(store_url, &settings)?;
    if args.offline {
        c.substitute = false;
    }
    c.exec.fallback |= args.fallback;
    let request = &mut c.settings.request;
    if let Some(n) = args.cores {
        request.cores = n;
    }
    let secs = |n: u64| (n > 0).then(|| Duration::from_secs(n));
    if let Some(t) = args.timeout {
        request.timeout = secs(t);
    }
    if let Some(t) = args.max_silent_time {
        request.max_silent_time = secs(t);
    }
    request.keep_failed |= args.keep_failed;
    if let Some(j) = &args.max_jobs {
        c.exec.max_jobs = parse_max_jobs(j)?;
    }
    c.exec.keep_going |= args.keep_going;
    c.exec.dry_run = args.dry_run;
    if let Some(url) = &args.build_service {
        c.build_service_url = url.clone();
    }
    Ok(c)
}

/// Asks `cancel` to stop the run when SIGINT arrives (Ctrl-C); a second Ctrl-C is
/// handled the same way (the run is already stopping).
fn cancel_on_sigint(cancel: &CancelToken, output: &BuildOutput) {
    let cancel = cancel.clone();
    // SAFETY: the handler only stores to an atomic flag, which is async-signal-safe.
    let registered = unsafe {
        signal_hook::low_level::register(signal_hook::consts::SIGINT, move || cancel.cancel())
    };
    if let Err(e) = registered {
        output.diagnostic(&format!("warning: cannot handle Ctrl-C: {e}"));
    }
}

/// Starts the dashboard (or its plain lines) of a run; cancelling it cancels `cancel`
/// and sets `interrupt` (which stops an evaluation still running).
fn start_dashboard(
    print_logs: bool,
    cancel: &CancelToken,
    interrupt: Option<Arc<AtomicBool>>,
) -> Dashboard {
    let on_cancel = cancel.clone();
    Dashboard::start(Options {
        mode: Mode::detect(),
        print_logs,
        color: color_allowed(),
        title: "tvix build".to_string(),
        history: HistoryFile::default_location().ok(),
        on_cancel: Box::new(move || {
            on_cancel.cancel();
            if let Some(flag) = &interrupt {
                flag.store(true, Ordering::SeqCst);
            }
        }),
    })
}

/// Builds on the executor; `Ok(None)` for a dry run, `Err(status)` after reporting why.
/// Every activity `output` started is stopped before it returns. `dashboard` is the
/// run's dashboard when it was started before (to show the evaluation), with the token
/// its cancel key cancels.
fn run_executor(
    args: &BuildArgs,
    output: &BuildOutput,
    realiser: &Realiser,
    drvs: &[StorePath],
    dashboard: Option<(Dashboard, CancelToken)>,
) -> Result<Option<Vec<BTreeMap<String, StorePath>>>, i32> {
    let (dashboard, cancel) = match dashboard {
        Some((d, c)) => (Some(d), c),
        None => (None, CancelToken::new()),
    };
    cancel_on_sigint(&cancel, output);
    let (outcome, log_shown) = match shown_as(args) {
        Shown::Raw | Shown::InternalJson => {
            let subscribers: [&dyn Subscriber; 1] = [output.subscriber()];
            let outcome = realiser.run(drvs, &subscribers, &cancel);
            output.finish();
            // Records carry the logs whatever `-Q` says.
            let shown = !args.no_build_output || shown_as(args) == Shown::InternalJson;
            (outcome, shown)
        }
        Shown::Bar { print_logs } => {
            let dashboard = dashboard.unwrap_or_else(|| start_dashboard(print_logs, &cancel, None));
            let mode = dashboard.mode();
            let feed = dashboard.feed();
            let subscribers: [&dyn Subscriber; 1] = [&feed];
            let outcome = realiser.run(drvs, &subscribers, &cancel);
            let cancelled =
                cancel.is_cancelled() || outcome.as_ref().is_ok_and(|o| o.summary.cancelled);
            if let Err(e) = dashboard.finish(cancelled) {
                output.diagnostic(&format!("warning: the build dashboard failed: {e}"));
            }
            // The plain lines showed failures' log tails; the dashboard's screen is gone.
            (outcome, mode == Mode::Plain)
        }
    };
    let outcome = outcome.map_err(|e| {
        let e = RealiseError::from(e);
        output.error(&e.to_string());
        e.exit_status()
    })?;
    if std::env::var("TVIX_SHOW_STATS").is_ok_and(|v| v == "1") {
        let s = outcome.stats;
        eprintln!(
            "coordinator: derivations={} load_ms={:.3} plan_ms={:.3} register_ms={:.3} registered={}",
            s.derivations,
            s.load.as_secs_f64() * 1e3,
            s.plan.as_secs_f64() * 1e3,
            s.register.as_secs_f64() * 1e3,
            s.registered
        );
    }
    if args.dry_run {
        return Ok(None);
    }
    if outcome.success() {
        return Ok(Some(outcome.target_outputs));
    }
    for msg in failure_messages(&outcome, drvs, !log_shown) {
        output.error(&msg);
    }
    Err(outcome.exit_status())
}

/// An evaluation's diagnostic (`warning: ...`, `trace: ...`) as a message of the
/// dashboard, whose level gives the word.
fn diagnostic_message(text: &str) -> Update {
    let text = text.trim_end();
    match text
        .strip_prefix("warning: ")
        .or_else(|| text.strip_prefix("evaluation warning: "))
    {
        Some(rest) => Update::Message {
            level: 1,
            text: rest.to_string(),
        },
        // Traces and notices are shown as they are.
        None => Update::Message {
            level: 2,
            text: text.to_string(),
        },
    }
}

/// Replaces (or creates) the symlink `link` pointing to `target`.
fn make_link(link: &str, target: &str) -> std::io::Result<()> {
    let tmp = format!("{link}.tmp-{}", std::process::id());
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

/// Builds derivations already in `store` on the executor, as `tvix build` does (flags
/// from `args`, progress on stderr): the outputs of each, `Ok(None)` for a dry run, or
/// the exit status after printing why.
pub(super) fn realise(
    args: &BuildArgs,
    url: &str,
    store: &Arc<dyn tvix_store::StoreService>,
    drvs: &[StorePath],
) -> Result<Option<Vec<BTreeMap<String, StorePath>>>, i32> {
    let output = build_output(args);
    let realiser = config(args, url)
        .and_then(|c| Realiser::with_store(store.clone(), c))
        .map_err(|e| {
            output.error(&e.to_string());
            e.exit_status()
        })?;
    run_executor(args, &output, &realiser, drvs, None)
}

/// Opens the store and keeps garbage collection away from it while this process runs.
pub(super) fn open_protected_store(url: &str) -> Result<Arc<dyn tvix_store::StoreService>, String> {
    let store = tvix_store::open(url).map_err(|e| format!("opening the store '{url}': {e}"))?;
    store
        .protect_from_gc()
        .map_err(|e| format!("opening the store '{url}': {e}"))?;
    Ok(Arc::from(store))
}

/// Registers the result link `link` as an indirect GC root of a local store (other
/// stores keep no roots: they are collected where they live).
pub(super) fn register_root(url: &str, link: &str) -> Result<(), String> {
    if tvix_store::castore::local_store_dir(url)
        .ok()
        .flatten()
        .is_none()
    {
        return Ok(());
    }
    let roots = tvix_store::castore::gc::GcRoots::for_store_url(url).map_err(|e| e.to_string())?;
    roots
        .add_indirect(std::path::Path::new(link))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub(super) fn build_command(args: BuildArgs) -> i32 {
    let output = Arc::new(build_output(&args));
    let print_error = |msg: &str| output.error(msg);
    let url = args
        .store
        .clone()
        .unwrap_or_else(tvix_store::castore::default_store_url);
    // Bad settings are reported before anything is evaluated.
    let config = match config(&args, &url) {
        Ok(c) => c,
        Err(e) => {
            print_error(&e.to_string());
            return 1;
        }
    };
    // With the dashboard, it is up before the evaluation, which it shows while it runs
    // (`--check` has a driver of its own, with Nix's lines).
    let early = match shown_as(&args) {
        Shown::Bar { print_logs } if !args.check => {
            let cancel = CancelToken::new();
            let interrupt = Arc::new(AtomicBool::new(false));
            let dashboard = start_dashboard(print_logs, &cancel, Some(interrupt.clone()));
            Some((dashboard, cancel, interrupt))
        }
        _ => None,
    };
    let progress = early
        .as_ref()
        .map(|_| Arc::new(tvix_coordinator::eval_progress::EvalProgress::new()));
    // On the full-screen dashboard the evaluation's diagnostics are messages on it, and
    // they and its error are printed once the terminal is back (its alternate screen
    // keeps nothing); plain lines and Nix's lines take them directly.
    let held_reports: Arc<Mutex<Vec<String>>> = Arc::default();
    let print_held = || {
        if let Ok(mut held) = held_reports.lock() {
            for text in held.drain(..) {
                eprint!("{text}");
            }
        }
    };
    let reporter: Option<super::eval::Reporter> = match (&shown_as(&args), &early) {
        (Shown::InternalJson, _) => {
            let output = output.clone();
            Some(Arc::new(move |report: Report<'_>| match report {
                Report::Error(text) => output.error_text(text),
                Report::Diagnostic(text) => output.diagnostic(text),
            }))
        }
        (Shown::Bar { .. }, Some((dashboard, _, _))) if dashboard.mode() == Mode::Dashboard => {
            let feed = dashboard.feed();
            let held = held_reports.clone();
            Some(Arc::new(move |report: Report<'_>| {
                let text = match report {
                    Report::Error(text) => text.to_string(),
                    Report::Diagnostic(text) => {
                        feed.send(diagnostic_message(text));
                        format!("{}\n", text.trim_end())
                    }
                };
                if let Ok(mut h) = held.lock() {
                    h.push(text);
                }
            }))
        }
        _ => None,
    };
    let eval_args = EvalArgs {
        file: args.file.clone(),
        expr: args.expr.clone(),
        attr: args.attr.clone(),
        arg: args.arg.clone(),
        argstr: args.argstr.clone(),
        include: args.include.clone(),
        show_trace: args.show_trace,
        max_call_depth: 10_000,
        features: args.features.clone(),
        store: Some(url.clone()),
        option: args.option.clone(),
        instantiate: true,
        reporter,
        progress: progress.clone(),
        // Import-from-derivation builds are shown on a dashboard that has the terminal,
        // not written over it.
        build_events: early.as_ref().and_then(|(d, _, _)| {
            let on_screen = matches!(d.mode(), Mode::Dashboard | Mode::Compact);
            on_screen.then(|| Arc::new(d.feed()) as Arc<dyn Subscriber + Send>)
        }),
        interrupt: early.as_ref().map(|(_, _, i)| i.clone()),
        ..EvalArgs::default()
    };
    // Opened (and protected from garbage collection) before the evaluation, so nothing it
    // writes or finds valid can be collected before the outputs are rooted.
    let store = match open_protected_store(&url) {
        Ok(s) => s,
        Err(e) => {
            if let Some((d, _, _)) = early {
                let _ = d.close();
            }
            print_error(&e);
            return 1;
        }
    };
    let watch = early
        .as_ref()
        .zip(progress)
        .map(|((d, _, _), p)| d.watch_evaluation(p));
    let found = instantiate_derivations(&eval_args);
    let early = match (found.is_ok(), early) {
        (true, e) => {
            if let Some(w) = watch {
                w.finish();
            }
            e.map(|(d, c, _)| (d, c))
        }
        (false, e) => {
            drop(watch);
            if let Some((d, _, _)) = e {
                let _ = d.close();
            }
            None
        }
    };
    let found = match found {
        Ok(f) => f,
        Err(code) => {
            // What the evaluation said while the dashboard had the terminal.
            print_held();
            return code;
        }
    };
    let mut targets = Vec::new();
    let close = |early: Option<(Dashboard, CancelToken)>| {
        if let Some((d, _)) = early {
            let _ = d.close();
        }
    };
    for line in &found {
        match DrvOutput::parse(line) {
            Ok(t) => targets.push(t),
            Err(e) => {
                close(early);
                print_held();
                print_error(&e.to_string());
                return 1;
            }
        }
    }

    let realiser = match Realiser::with_store(store, config) {
        Ok(r) => r,
        Err(e) => {
            close(early);
            print_held();
            print_error(&e.to_string());
            return 1;
        }
    };
    let drvs: Vec<StorePath> = targets.iter().map(|t| t.drv.clone()).collect();
    let outputs = if args.check {
        // `--check` rebuilds valid derivations: the sequential driver, on the same
        // per-derivation step as the executor.
        let mut sequential = SequentialOutput::new(&output);
        let result = realiser.check(&drvs, &mut |e| sequential.event(e));
        output.finish();
        match result {
            Ok(o) => o,
            Err(e) => {
                if args.no_build_output {
                    print_error(&e.message_with_log_tail(LOG_COMMAND));
                } else {
                    print_error(&e.to_string());
                }
                return e.exit_status();
            }
        }
    } else {
        let ran = run_executor(&args, &output, &realiser, &drvs, early);
        // The evaluation's warnings and traces, now that the terminal is back.
        print_held();
        match ran {
            Ok(Some(o)) => o,
            Ok(None) => return 0,
            Err(code) => return code,
        }
    };

    let mut paths = Vec::new();
    let prefix = args
        .out_link
        .clone()
        .unwrap_or_else(|| "result".to_string());
    for (i, (target, outs)) in targets.iter().zip(&outputs).enumerate() {
        let output = &target.output;
        let Some(path) = outs.get(output) else {
            print_error(
                &RealiseError::NoSuchOutput {
                    drv: target.drv.clone(),
                    output: output.clone(),
                }
                .to_string(),
            );
            return 1;
        };
        let path = format!("/nix/store/{path}");
        if !args.no_out_link {
            let mut link = prefix.clone();
            if i > 0 {
                link.push_str(&format!("-{}", i + 1));
            }
            if output != "out" {
                link.push_str(&format!("-{output}"));
            }
            if let Err(e) = make_link(&link, &path) {
                print_error(&format!("creating the link '{link}': {e}"));
                return 1;
            }
            if let Err(e) = register_root(&url, &link) {
                print_error(&format!("registering the GC root '{link}': {e}"));
                return 1;
            }
        }
        paths.push(path);
    }
    let mut stdout = std::io::stdout().lock();
    for p in paths {
        let _ = writeln!(stdout, "{p}");
    }
    let _ = stdout.flush();
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_options() {
        let args = BuildArgs {
            option: ["cores", "7", "timeout", "5", "max-jobs", "2"]
                .map(String::from)
                .to_vec(),
            timeout: Some(9),
            max_jobs: Some("3".into()),
            ..Default::default()
        };
        let c = config(&args, "memory://").unwrap();
        assert_eq!(c.settings.request.cores, 7);
        assert_eq!(c.settings.request.timeout, Some(Duration::from_secs(9)));
        assert_eq!(c.exec.max_jobs, 3);
        let bad = BuildArgs {
            option: vec!["cores".into(), "x".into()],
            ..Default::default()
        };
        assert!(config(&bad, "memory://").is_err());
    }
}
