//! `tvix build` (and `nix-build` under that name): evaluate, instantiate, build in
//! dependency order through a build service, print the output paths and create `result`
//! links, with `nix-build`'s exit statuses.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tvix_build::CancelToken;
use tvix_build::ServiceOptions;
use tvix_coordinator::build::{BuildSettings, Driver, Event};
use tvix_coordinator::events::{Event as ExecEvent, Subscriber};
use tvix_coordinator::executor::{DrvFailure, ExecConfig, ExecError, Executor};
use tvix_coordinator::log::LogStore;
use tvix_coordinator::request::RequestSettings;
use tvix_store::StorePath;

use super::eval::{instantiate_derivations, EvalArgs};

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
    /// Set a Nix option: `sandbox-paths`, `system-features`, `extra-platforms`, `system`,
    /// `cores`, `timeout` and `max-silent-time` are understood; others are accepted and
    /// ignored.
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
    /// How many builds run at once (a number or `auto` for the number of cores;
    /// default 1).
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
    /// Accepted for compatibility.
    #[arg(long, hide = true)]
    pub(super) quiet: bool,
    /// Enable experimental features.
    #[arg(long = "extra-experimental-features", alias = "experimental-features")]
    pub(super) features: Vec<String>,
}

/// The value of `--option NAME VALUE` (the last one given).
fn option<'a>(args: &'a BuildArgs, name: &str) -> Option<&'a str> {
    args.option
        .chunks(2)
        .rev()
        .find(|kv| kv.len() == 2 && kv[0] == name)
        .map(|kv| kv[1].as_str())
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("option '{name}' has invalid value '{v}'"))
}

/// Nix's default `system-features`: `nixos-test benchmark big-parallel`, and `kvm` when
/// `/dev/kvm` can be opened.
fn default_system_features() -> BTreeSet<String> {
    let mut f: BTreeSet<String> = ["nixos-test", "benchmark", "big-parallel"]
        .map(String::from)
        .into();
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
    {
        f.insert("kvm".into());
    }
    f
}

/// Prints an error as Nix does: `error: ` and continuation lines indented to match.
fn print_error(msg: &str) {
    eprintln!("error: {}", msg.replace('\n', "\n       "));
}

/// The settings the flags and options give.
fn settings(args: &BuildArgs) -> Result<(BuildSettings, ServiceOptions), String> {
    let mut request = RequestSettings::with_default_cores();
    if let Some(c) = option(args, "cores") {
        request.cores = number("cores", c)?;
    }
    if let Some(c) = args.cores {
        request.cores = c;
    }
    let secs = |n: u64| (n > 0).then(|| Duration::from_secs(n));
    if let Some(t) = option(args, "timeout") {
        request.timeout = secs(number("timeout", t)?);
    }
    if let Some(t) = args.timeout {
        request.timeout = secs(t);
    }
    if let Some(t) = option(args, "max-silent-time") {
        request.max_silent_time = secs(number("max-silent-time", t)?);
    }
    if let Some(t) = args.max_silent_time {
        request.max_silent_time = secs(t);
    }
    request.keep_failed =
        args.keep_failed || option(args, "keep-failed").is_some_and(|v| v == "true");
    let system_features: Option<BTreeSet<String>> =
        option(args, "system-features").map(|v| words(v).into_iter().collect());
    let extra_platforms = option(args, "extra-platforms")
        .map(words)
        .unwrap_or_default();
    let system = option(args, "system")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}-linux", std::env::consts::ARCH));
    let service = ServiceOptions {
        sandbox_paths: option(args, "sandbox-paths").map(words).unwrap_or_default(),
        system_features: system_features.clone(),
        extra_platforms: extra_platforms.clone(),
        state_dir: None,
    };
    Ok((
        BuildSettings {
            request,
            system,
            extra_platforms,
            system_features: system_features.unwrap_or_else(default_system_features),
            check: args.check,
        },
        service,
    ))
}

/// `-j N`, `--max-jobs N` or `--option max-jobs N`: a number, or `auto` (the number of
/// cores). Nix's default is 1.
fn max_jobs(args: &BuildArgs) -> Result<usize, String> {
    let value = args
        .max_jobs
        .as_deref()
        .or_else(|| option(args, "max-jobs"));
    match value {
        None => Ok(1),
        Some("auto") => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        Some(v) => match v.parse::<usize>() {
            Ok(0) => Err(
                "unable to start any build; either increase '--max-jobs' or enable remote builds"
                    .into(),
            ),
            Ok(n) => Ok(n),
            Err(_) => Err(format!("option 'max-jobs' has invalid value '{v}'")),
        },
    }
}

/// Nix's heading and list of derivations that will be built.
fn planned_message(list: &[String]) -> String {
    let head = if list.len() == 1 {
        "this derivation will be built:".to_string()
    } else {
        format!("these {} derivations will be built:", list.len())
    };
    let body: String = list.iter().map(|d| format!("\n  {d}")).collect();
    format!("{head}{body}")
}

/// Nix's heading and list of paths that will be fetched.
fn fetched_message(list: &[String]) -> String {
    let head = if list.len() == 1 {
        "this path will be fetched:".to_string()
    } else {
        format!("these {} paths will be fetched:", list.len())
    };
    let body: String = list.iter().map(|d| format!("\n  {d}")).collect();
    format!("{head}{body}")
}

/// Prints the executor's events as `nix-build` prints its progress, on stderr.
struct CliOutput {
    quiet_logs: bool,
}

impl CliOutput {
    fn show(&self, e: &ExecEvent<'_>) {
        let mut err = std::io::stderr().lock();
        let _ = match e {
            ExecEvent::Planned { plan, build, fetch } => {
                let mut r = Ok(());
                if !build.is_empty() {
                    let list: Vec<String> =
                        build.iter().map(|&d| plan.drv(d).to_string()).collect();
                    r = writeln!(err, "{}", planned_message(&list));
                }
                if !fetch.is_empty() {
                    let list: Vec<String> = fetch
                        .iter()
                        .flat_map(|&d| plan.outputs(d).iter().cloned())
                        .collect();
                    r = r.and(writeln!(err, "{}", fetched_message(&list)));
                }
                r
            }
            ExecEvent::BuildStarted { drv, .. } => writeln!(err, "building '{drv}'..."),
            ExecEvent::Log { .. } if self.quiet_logs => Ok(()),
            ExecEvent::Log { line, .. } => err.write_all(line).and_then(|_| err.write_all(b"\n")),
            ExecEvent::KeptBuildDir { dir, .. } => {
                writeln!(err, "note: keeping build directory '{dir}'")
            }
            _ => Ok(()),
        };
    }
}

/// Asks `cancel` to stop the run when SIGINT arrives (Ctrl-C); a second Ctrl-C is
/// handled the same way (the run is already stopping).
fn cancel_on_sigint(cancel: &CancelToken) {
    let cancel = cancel.clone();
    // SAFETY: the handler only stores to an atomic flag, which is async-signal-safe.
    let registered = unsafe {
        signal_hook::low_level::register(signal_hook::consts::SIGINT, move || cancel.cancel())
    };
    if let Err(e) = registered {
        eprintln!("warning: cannot handle Ctrl-C: {e}");
    }
}

/// Builds on the executor; `Ok(None)` for a dry run, `Err(status)` after printing why.
fn run_executor(
    args: &BuildArgs,
    driver: &Driver<'_>,
    store: &dyn tvix_store::StoreService,
    drvs: &[StorePath],
) -> Result<Option<Vec<std::collections::BTreeMap<String, StorePath>>>, i32> {
    let max_jobs = max_jobs(args).map_err(|e| {
        print_error(&e);
        1
    })?;
    let cancel = CancelToken::new();
    cancel_on_sigint(&cancel);
    let output = CliOutput {
        quiet_logs: args.no_build_output,
    };
    let show = |e: &ExecEvent<'_>| output.show(e);
    let subscribers: [&dyn Subscriber; 1] = [&show];
    let executor = Executor {
        store,
        step: driver,
        config: ExecConfig {
            max_jobs,
            keep_going: args.keep_going,
            dry_run: args.dry_run,
        },
        subscribers: &subscribers,
        cancel: &cancel,
    };
    let outcome = executor.run(drvs).map_err(|e| {
        print_error(&e.to_string());
        match e {
            ExecError::Load(f) => f.exit_status(),
            _ => 1,
        }
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
    for (_, failure) in &outcome.failures {
        match failure {
            DrvFailure::Build(f) if args.no_build_output => {
                print_error(&f.message_with_log_tail("tvix log"))
            }
            f => print_error(&f.to_string()),
        }
    }
    if outcome.summary.cancelled {
        print_error("interrupted by the user");
    }
    // With several failures (--keep-going) or blocked targets, Nix ends with the
    // targets that were not built.
    let unbuilt: Vec<String> = drvs
        .iter()
        .map(|d| format!("/nix/store/{d}"))
        .filter(|d| {
            outcome
                .plan
                .id_of(d)
                .is_some_and(|id| outcome.summary.dependency_failed.contains(&id))
        })
        .collect();
    if !unbuilt.is_empty() && !outcome.summary.cancelled {
        let list: Vec<String> = unbuilt.iter().map(|d| format!("'{d}'")).collect();
        print_error(&format!("build of {} failed", list.join(", ")));
    }
    Err(outcome.exit_status())
}

/// One requested derivation output, as `nix-instantiate` prints it (`DRV[!OUTPUT]`).
fn parse_target(line: &str) -> Result<(StorePath, String), String> {
    let (drv, output) = line.split_once('!').unwrap_or((line, "out"));
    let drv = drv
        .strip_prefix("/nix/store/")
        .and_then(|b| StorePath::from_base_name(b).ok())
        .ok_or_else(|| format!("'{drv}' is not a derivation in the store"))?;
    Ok((drv, output.to_string()))
}

/// Replaces (or creates) the symlink `link` pointing to `target`.
fn make_link(link: &str, target: &str) -> std::io::Result<()> {
    let tmp = format!("{link}.tmp-{}", std::process::id());
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

/// `--check`: rebuilds the (valid) derivations with the sequential driver and compares.
fn check_build(
    args: &BuildArgs,
    driver: &Driver<'_>,
    drvs: &[StorePath],
) -> Result<Vec<std::collections::BTreeMap<String, StorePath>>, i32> {
    let mut on_event = |e: Event<'_>| {
        let mut err = std::io::stderr().lock();
        let _ = match e {
            Event::Planned(list) => writeln!(err, "{}", planned_message(list)),
            Event::Building(d) => writeln!(err, "building '{d}'..."),
            Event::Log(_) if args.no_build_output => Ok(()),
            Event::Log(line) => err.write_all(line).and_then(|_| err.write_all(b"\n")),
            Event::KeptBuildDir(dir) => {
                writeln!(err, "note: keeping build directory '{dir}'")
            }
        };
    };
    driver.build(drvs, &mut on_event).map_err(|e| {
        if args.no_build_output {
            print_error(&e.message_with_log_tail("tvix log"));
        } else {
            print_error(&e.to_string());
        }
        e.exit_status()
    })
}

/// Runs `f` with the build driver `args` describe (settings and options, the build
/// service by URL, logs kept next to the store): the one wiring of the per-derivation
/// step, shared by `tvix build` and `nix-store --realise`.
fn with_driver<T>(
    args: &BuildArgs,
    url: &str,
    store: &Arc<dyn tvix_store::StoreService>,
    f: impl FnOnce(&Driver<'_>) -> Result<T, i32>,
) -> Result<T, i32> {
    let (settings, service_options) = settings(args).map_err(|e| {
        print_error(&e);
        1
    })?;
    let service_url = args
        .build_service
        .clone()
        .or_else(|| {
            std::env::var("TVIX_BUILD_SERVICE")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "oci://".to_string());
    let service = tvix_build::open(&service_url, store.clone(), &service_options).map_err(|e| {
        print_error(&e.to_string());
        1
    })?;
    let logs = LogStore::for_store_url(url).ok();
    let caller_env = |name: &str| std::env::var(name).ok();
    let driver = Driver {
        store: &**store,
        service: &*service,
        logs: logs.as_ref(),
        settings: &settings,
        caller_env: &caller_env,
    };
    f(&driver)
}

/// Builds derivations already in `store` on the executor, as `tvix build` does (flags
/// from `args`, progress on stderr): the outputs of each, `Ok(None)` for a dry run, or
/// the exit status after printing why.
pub(super) fn realise(
    args: &BuildArgs,
    url: &str,
    store: &Arc<dyn tvix_store::StoreService>,
    drvs: &[StorePath],
) -> Result<Option<Vec<std::collections::BTreeMap<String, StorePath>>>, i32> {
    with_driver(args, url, store, |driver| {
        run_executor(args, driver, &**store, drvs)
    })
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
    let url = args
        .store
        .clone()
        .unwrap_or_else(tvix_store::castore::default_store_url);
    // Bad settings are reported before anything is evaluated.
    if let Err(e) = settings(&args) {
        print_error(&e);
        return 1;
    }
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
        instantiate: true,
        ..EvalArgs::default()
    };
    // Opened (and protected from garbage collection) before the evaluation, so nothing it
    // writes or finds valid can be collected before the outputs are rooted.
    let store: Arc<dyn tvix_store::StoreService> = match open_protected_store(&url) {
        Ok(s) => s,
        Err(e) => {
            print_error(&e);
            return 1;
        }
    };
    let found = match instantiate_derivations(&eval_args) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let mut targets = Vec::new();
    for line in &found {
        match parse_target(line) {
            Ok(t) => targets.push(t),
            Err(e) => {
                print_error(&e);
                return 1;
            }
        }
    }

    let drvs: Vec<StorePath> = targets.iter().map(|(d, _)| d.clone()).collect();
    let outputs = with_driver(&args, &url, &store, |driver| {
        if args.check {
            // `--check` rebuilds valid derivations: the sequential driver, on the same
            // per-derivation step as the executor.
            check_build(&args, driver, &drvs).map(Some)
        } else {
            run_executor(&args, driver, &*store, &drvs)
        }
    });
    let outputs = match outputs {
        Ok(Some(o)) => o,
        Ok(None) => return 0,
        Err(code) => return code,
    };

    let mut paths = Vec::new();
    let prefix = args
        .out_link
        .clone()
        .unwrap_or_else(|| "result".to_string());
    for (i, ((drv, output), outs)) in targets.iter().zip(&outputs).enumerate() {
        let Some(path) = outs.get(output) else {
            print_error(&format!(
                "derivation '/nix/store/{drv}' does not have an output named '{output}'"
            ));
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
    fn targets() {
        let (d, o) = parse_target("/nix/store/0a1hmb1d2dm3g6lrqwscf0lqjfjbzbv2-t.drv!dev").unwrap();
        assert_eq!(d.name(), "t.drv");
        assert_eq!(o, "dev");
        let (_, o) = parse_target("/nix/store/0a1hmb1d2dm3g6lrqwscf0lqjfjbzbv2-t.drv").unwrap();
        assert_eq!(o, "out");
        assert!(parse_target("/tmp/x.drv").is_err());
    }

    #[test]
    fn options_override_defaults_and_flags_override_options() {
        let args = BuildArgs {
            option: [
                "cores",
                "7",
                "timeout",
                "5",
                "system-features",
                "kvm foo",
                "sandbox-paths",
                "/bin/sh=/x /usr?",
                "extra-platforms",
                "i686-linux",
            ]
            .map(String::from)
            .to_vec(),
            timeout: Some(9),
            ..Default::default()
        };
        let (s, o) = settings(&args).unwrap();
        assert_eq!(s.request.cores, 7);
        assert_eq!(s.request.timeout, Some(Duration::from_secs(9)));
        assert_eq!(s.system_features, ["foo", "kvm"].map(String::from).into());
        assert_eq!(o.sandbox_paths, vec!["/bin/sh=/x", "/usr?"]);
        assert_eq!(s.extra_platforms, vec!["i686-linux"]);
        let bad = BuildArgs {
            option: vec!["cores".into(), "x".into()],
            ..Default::default()
        };
        assert!(settings(&bad).is_err());
    }
}
