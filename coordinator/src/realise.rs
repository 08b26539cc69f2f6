//! Realising derivation outputs: the one entry point every surface uses (`tvix build`,
//! import-from-derivation, the REPL's `:b`, the language server's build command).
//!
//! A [`Realiser`] holds an open store, a build service and the settings of the run, read
//! from Nix's options ([`RealiseConfig::from_options`]). [`Realiser::run`] hands targets to
//! the [`Executor`] and returns its [`Outcome`] (for callers that show failures their own
//! way); [`Realiser::realise`] returns the requested outputs' paths or one
//! [`RealiseError`] whose message is what a user should read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tvix_build::{
    BuildError as ServiceError, BuildRequest, BuildService, CancelToken, ServiceOptions,
};
use tvix_store::castore::StoreError;
use tvix_store::{Derivation, StorePath, StoreService};

use crate::build::{
    read_derivation, BuildFailure, BuildSettings, Driver, Event as DriverEvent, OpenBuilder,
};
use crate::events::Subscriber;
use crate::executor::{DrvFailure, ExecConfig, ExecError, Executor, Outcome};
use crate::log::LogStore;
use crate::machines::{self, Machine, MachinesError};
use crate::request::{RequestSettings, SANDBOX_STORE_DIR};
use crate::substitute::binary_cache::{BinaryCache, CacheSettings};
use crate::substitute::transport::Timeouts;
use crate::substitute::{StoreSubstituter, Substituter, Substituters};

/// Nix's default `trusted-public-keys`: the key of cache.nixos.org.
pub const DEFAULT_TRUSTED_KEY: &str =
    "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";

/// The command that shows a whole build log, named in failure messages.
pub const LOG_COMMAND: &str = "tvix log";

/// One requested output: a derivation and the name of one of its outputs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DrvOutput {
    /// The `.drv` path.
    pub drv: StorePath,
    /// The output's name (`out`, `dev`, ...).
    pub output: String,
}

impl DrvOutput {
    /// Parses `DRV` or `DRV!OUTPUT` (as `nix-instantiate` prints targets and as string
    /// contexts name outputs), with `DRV` an absolute path in the store directory.
    pub fn parse(text: &str) -> Result<DrvOutput, RealiseError> {
        let (drv, output) = text.split_once('!').unwrap_or((text, "out"));
        let drv = drv
            .strip_prefix(SANDBOX_STORE_DIR)
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|base| StorePath::from_base_name(base).ok())
            .filter(|p| p.name().ends_with(".drv"))
            .ok_or_else(|| RealiseError::NotADerivation(drv.to_string()))?;
        Ok(DrvOutput {
            drv,
            output: output.to_string(),
        })
    }
}

impl std::fmt::Display for DrvOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SANDBOX_STORE_DIR}/{}!{}", self.drv, self.output)
    }
}

/// Why outputs could not be realised. The `Display` of each variant is the message to
/// show after `error: `.
#[derive(Debug, Error)]
pub enum RealiseError {
    /// A setting has a value it cannot have.
    #[error("option '{name}' has invalid value '{value}'")]
    BadOption {
        /// The option.
        name: String,
        /// Its value.
        value: String,
    },
    /// A configuration file (nix.conf, `NIX_CONFIG`) is invalid.
    #[error(transparent)]
    Config(#[from] crate::nix_conf::NixConfError),
    /// The `builders` setting is refused.
    #[error(transparent)]
    Builders(#[from] MachinesError),
    /// `max-jobs` is 0 and there is no remote builder.
    #[error("unable to start any build; either increase '--max-jobs' or enable remote builds")]
    NoJobs,
    /// The store could not be opened.
    #[error("opening the store '{url}': {source}")]
    OpenStore {
        /// Its URL.
        url: String,
        /// Why.
        source: StoreError,
    },
    /// The build service could not be opened.
    #[error(transparent)]
    OpenService(ServiceError),
    /// A substituter that is not a store tvix can substitute from.
    #[error(
        "cannot substitute from '{0}': supported substituters are Nix binary caches \
         (file://, http://, https://) and tvix stores (local://, grpc+unix://, grpc+http://)"
    )]
    UnsupportedSubstituter(String),
    /// A substituter could not be opened.
    #[error("opening the substituter '{url}': {source}")]
    OpenSubstituter {
        /// Its URL.
        url: String,
        /// Why.
        source: StoreError,
    },
    /// A target is not a derivation path.
    #[error("'{0}' is not a derivation in the store")]
    NotADerivation(String),
    /// The run could not be carried out (a derivation unreadable, a cycle, the store).
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// Builds failed or the run was interrupted; `message` has every failure, each as
    /// Nix words it.
    #[error("{message}")]
    Failed {
        /// The failures, one per line group.
        message: String,
        /// `nix-build`'s exit status for them.
        exit_status: i32,
    },
    /// A derivation has no output of the requested name.
    #[error("derivation '{SANDBOX_STORE_DIR}/{drv}' does not have an output named '{output}'")]
    NoSuchOutput {
        /// The derivation.
        drv: StorePath,
        /// The output asked for.
        output: String,
    },
}

impl RealiseError {
    /// The exit status `nix-build` ends with for this error.
    pub fn exit_status(&self) -> i32 {
        match self {
            RealiseError::Failed { exit_status, .. } => *exit_status,
            RealiseError::Exec(ExecError::Load(f)) => f.exit_status(),
            _ => 1,
        }
    }
}

/// What a realisation uses: the store, the build service and the settings of the run.
#[derive(Clone, Debug)]
pub struct RealiseConfig {
    /// The store holding derivations and receiving outputs.
    pub store_url: String,
    /// Where builds run (`oci://`, `grpc+unix://...`).
    pub build_service_url: String,
    /// Per-build settings.
    pub settings: BuildSettings,
    /// Settings of the build service.
    pub service_options: ServiceOptions,
    /// Jobs, keep-going, dry run, fallback.
    pub exec: ExecConfig,
    /// Stores to substitute from, in priority order (Nix's `substituters` and
    /// `extra-substituters`); unused when `substitute` is false.
    pub substituters: Vec<String>,
    /// Whether to substitute at all (Nix's `substitute`, `--option substitute false`).
    pub substitute: bool,
    /// Settings of binary caches (keys, `require-sigs`, TTLs, timeouts).
    pub cache: CacheSettings,
    /// Nix's `builders-use-substitutes`. Read and checked, with no effect: a tvix
    /// builder shares the coordinator's store, so no input is ever copied to it.
    pub builders_use_substitutes: bool,
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, RealiseError> {
    v.parse().map_err(|_| RealiseError::BadOption {
        name: name.to_string(),
        value: v.to_string(),
    })
}

fn boolean(name: &str, v: &str) -> Result<bool, RealiseError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(RealiseError::BadOption {
            name: name.to_string(),
            value: v.to_string(),
        }),
    }
}

/// Parses Nix's `max-jobs`: a number or `auto` (the number of cores). 0 (no local
/// builds) is allowed only with remote builders: see [`RealiseConfig::check_jobs`].
pub fn parse_max_jobs(value: &str) -> Result<usize, RealiseError> {
    match value {
        "auto" => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        v => number::<usize>("max-jobs", v),
    }
}

/// Nix's default `system-features`: `nixos-test benchmark big-parallel`, and `kvm` when
/// `/dev/kvm` can be opened.
pub fn default_system_features() -> BTreeSet<String> {
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

impl RealiseConfig {
    /// The configuration Nix's options give (`--option NAME VALUE`, in `options`), over
    /// the defaults: `cores`, `timeout`, `max-silent-time`, `keep-failed`, `keep-going`,
    /// `max-jobs`, `system`, `system-features`, `extra-platforms` and `sandbox-paths`
    /// are understood; other options are not this module's. The build service is
    /// `$TVIX_BUILD_SERVICE`, else `oci://`.
    pub fn from_options(
        store_url: &str,
        options: &BTreeMap<String, String>,
    ) -> Result<RealiseConfig, RealiseError> {
        let get = |name: &str| options.get(name).map(String::as_str);
        let mut request = RequestSettings::with_default_cores();
        if let Some(c) = get("cores") {
            request.cores = number("cores", c)?;
        }
        let secs = |n: u64| (n > 0).then(|| Duration::from_secs(n));
        if let Some(t) = get("timeout") {
            request.timeout = secs(number("timeout", t)?);
        }
        if let Some(t) = get("max-silent-time") {
            request.max_silent_time = secs(number("max-silent-time", t)?);
        }
        if let Some(v) = get("keep-failed") {
            request.keep_failed = boolean("keep-failed", v)?;
        }
        let system_features: Option<BTreeSet<String>> =
            get("system-features").map(|v| words(v).into_iter().collect());
        let extra_platforms = get("extra-platforms").map(words).unwrap_or_default();
        let system = get("system")
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}-linux", std::env::consts::ARCH));
        let max_jobs = match get("max-jobs") {
            Some(v) => parse_max_jobs(v)?,
            None => 1,
        };
        let flag = |name: &str, default: bool| match get(name) {
            Some(v) => boolean(name, v),
            None => Ok(default),
        };
        let keep_going = flag("keep-going", false)?;
        let fallback = flag("fallback", false)?;
        let substitute = flag("substitute", true)?;
        let substituters: Vec<String> = ["substituters", "extra-substituters"]
            .iter()
            .filter_map(|name| get(name))
            .flat_map(words)
            .collect();
        let cache = cache_settings(&get)?;
        let builders = machines::read(
            get("builders").unwrap_or(machines::DEFAULT_BUILDERS),
            &system,
        )?;
        let builders_use_substitutes = flag("builders-use-substitutes", false)?;
        let build_service_url = std::env::var("TVIX_BUILD_SERVICE")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "oci://".to_string());
        RealiseConfig {
            store_url: store_url.to_string(),
            build_service_url,
            service_options: ServiceOptions {
                sandbox_paths: get("sandbox-paths").map(words).unwrap_or_default(),
                system_features: system_features.clone(),
                extra_platforms: extra_platforms.clone(),
                state_dir: None,
            },
            settings: BuildSettings {
                request,
                system,
                extra_platforms,
                system_features: system_features.unwrap_or_else(default_system_features),
                check: false,
            },
            exec: ExecConfig {
                max_jobs,
                builders,
                keep_going,
                dry_run: false,
                fallback,
            },
            substituters,
            substitute,
            cache,
            builders_use_substitutes,
        }
        .check_jobs()
    }

    /// Refuses `max-jobs` 0 without remote builders: nothing could build (Nix's
    /// message).
    pub fn check_jobs(self) -> Result<RealiseConfig, RealiseError> {
        if self.exec.max_jobs == 0 && self.exec.builders.is_empty() {
            return Err(RealiseError::NoJobs);
        }
        Ok(self)
    }
}

/// The binary cache settings among Nix's options, with Nix's defaults.
fn cache_settings<'a>(
    get: &dyn Fn(&str) -> Option<&'a str>,
) -> Result<CacheSettings, RealiseError> {
    let keys: Vec<String> = match get("trusted-public-keys") {
        Some(v) => words(v),
        None => vec![DEFAULT_TRUSTED_KEY.to_string()],
    }
    .into_iter()
    .chain(
        get("extra-trusted-public-keys")
            .map(words)
            .unwrap_or_default(),
    )
    .collect();
    let trusted_keys = keys
        .iter()
        .map(|k| {
            tvix_store::signing::PublicKey::parse(k).map_err(|_| RealiseError::BadOption {
                name: "trusted-public-keys".into(),
                value: k.clone(),
            })
        })
        .collect::<Result<_, _>>()?;
    let require_sigs = match get("require-sigs") {
        Some(v) => boolean("require-sigs", v)?,
        None => true,
    };
    let secs = |name: &str, default: u64| -> Result<Duration, RealiseError> {
        Ok(Duration::from_secs(match get(name) {
            Some(v) => number(name, v)?,
            None => default,
        }))
    };
    // Nix's `connect-timeout` 0 means the HTTP library's default; 0 here means the same
    // as Nix's library's usual 300 s would be too long for a cache that is down, so 0
    // stands for 30 s.
    let connect = match secs("connect-timeout", 0)? {
        d if d.is_zero() => Duration::from_secs(30),
        d => d,
    };
    Ok(CacheSettings {
        trusted_keys,
        require_sigs,
        positive_ttl: secs("narinfo-cache-positive-ttl", 30 * 24 * 3600)?,
        negative_ttl: secs("narinfo-cache-negative-ttl", 3600)?,
        timeouts: Timeouts {
            connect,
            stalled: secs("stalled-download-timeout", 300)?,
        },
        store_dir: tvix_store::StoreDir::default(),
    })
}

/// An open store and build service, ready to realise outputs.
pub struct Realiser {
    store: Arc<dyn StoreService>,
    service: Box<dyn BuildService>,
    /// The remote builders, in the order of `config.exec.builders`.
    builders: Vec<OpenBuilder>,
    substituters: Substituters,
    logs: Option<LogStore>,
    config: RealiseConfig,
}

impl Realiser {
    /// Opens the store and the build service `config` names.
    pub fn open(config: RealiseConfig) -> Result<Realiser, RealiseError> {
        let store =
            tvix_store::open(&config.store_url).map_err(|source| RealiseError::OpenStore {
                url: config.store_url.clone(),
                source,
            })?;
        Realiser::with_store(Arc::from(store), config)
    }

    /// Uses an already open store (whose URL is `config.store_url`, where logs are kept).
    pub fn with_store(
        store: Arc<dyn StoreService>,
        config: RealiseConfig,
    ) -> Result<Realiser, RealiseError> {
        let config = config.check_jobs()?;
        let service = tvix_build::open(
            &config.build_service_url,
            store.clone(),
            &config.service_options,
        )
        .map_err(RealiseError::OpenService)?;
        // A builder that cannot be reached is not used (the run warns); the others are.
        let builders = config
            .exec
            .builders
            .iter()
            .map(|m: &Machine| {
                // In a machines list a bare host name is Nix's SSH builder.
                let url = if m.url.contains("://") {
                    m.url.clone()
                } else {
                    format!("ssh://{}", m.url)
                };
                tvix_build::open(&url, store.clone(), &config.service_options)
            })
            .collect();
        let logs = LogStore::for_store_url(&config.store_url).ok();
        let substituters = if config.substitute {
            open_substituters(&config.substituters, &config.cache)?
        } else {
            Substituters::default()
        };
        Ok(Realiser {
            store,
            service,
            builders,
            substituters,
            logs,
            config,
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn StoreService> {
        &self.store
    }

    /// Where build logs are kept, if anywhere.
    pub fn logs(&self) -> Option<&LogStore> {
        self.logs.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &RealiseConfig {
        &self.config
    }

    fn driver(&self) -> Driver<'_> {
        Driver {
            store: &*self.store,
            service: &*self.service,
            builders: &self.builders,
            logs: self.logs.as_ref(),
            settings: &self.config.settings,
            caller_env: &caller_env,
        }
    }

    /// Builds what `drvs` need on the executor and returns how the run went; failures
    /// are in the [`Outcome`], not an error.
    pub fn run(
        &self,
        drvs: &[StorePath],
        subscribers: &[&dyn Subscriber],
        cancel: &CancelToken,
    ) -> Result<Outcome, ExecError> {
        let driver = self.driver();
        Executor {
            store: &*self.store,
            step: &driver,
            substituters: &self.substituters,
            config: self.config.exec.clone(),
            subscribers,
            cancel,
        }
        .run(drvs)
    }

    /// Rebuilds `drvs` (whose outputs must be valid) one after the other and compares
    /// the results with what is registered (`--check`).
    pub fn check(
        &self,
        drvs: &[StorePath],
        on_event: &mut dyn FnMut(DriverEvent<'_>),
    ) -> Result<Vec<BTreeMap<String, StorePath>>, BuildFailure> {
        let mut config = self.config.settings.clone();
        config.check = true;
        let mut driver = self.driver();
        driver.settings = &config;
        driver.build(drvs, on_event)
    }

    /// The build request of `drv` as the build service would get it (environment,
    /// arguments, files, input closure), for a shell with the build's environment
    /// (the REPL's `:sh`). The derivation's inputs must be valid: realise them first.
    pub fn build_request(&self, drv: &StorePath) -> Result<BuildRequest, BuildFailure> {
        let store = &*self.store;
        let derivation = read_derivation(store, drv)?;
        let mut inputs: BTreeMap<String, Derivation> = BTreeMap::new();
        for input in derivation.input_derivations.keys() {
            let path = StorePath::from_absolute_path(input)
                .map_err(|_| BuildFailure::NotValid(input.clone()))?;
            inputs.insert(input.clone(), read_derivation(store, &path)?);
        }
        self.driver()
            .request_for(drv, &derivation, &|p: &str| inputs.get(p))
    }

    /// Builds (or finds valid) each target and returns its output path, in order. A
    /// failure's message carries the last lines of the build's log when `with_log_tail`
    /// (for callers whose subscribers did not show the log as it ran).
    pub fn realise(
        &self,
        targets: &[DrvOutput],
        subscribers: &[&dyn Subscriber],
        cancel: &CancelToken,
        with_log_tail: bool,
    ) -> Result<Vec<StorePath>, RealiseError> {
        let mut drvs: Vec<StorePath> = Vec::new();
        for t in targets {
            if !drvs.contains(&t.drv) {
                drvs.push(t.drv.clone());
            }
        }
        let outcome = self.run(&drvs, subscribers, cancel)?;
        if !outcome.success() {
            return Err(RealiseError::Failed {
                message: failure_messages(&outcome, &drvs, with_log_tail).join("\n"),
                exit_status: outcome.exit_status(),
            });
        }
        targets
            .iter()
            .map(|t| {
                let i = drvs.iter().position(|d| *d == t.drv).expect("added above");
                outcome.target_outputs[i]
                    .get(&t.output)
                    .cloned()
                    .ok_or_else(|| RealiseError::NoSuchOutput {
                        drv: t.drv.clone(),
                        output: t.output.clone(),
                    })
            })
            .collect()
    }
}

/// Opens the substituters `urls` names, ordered by priority as Nix orders them (a binary
/// cache's comes from its `nix-cache-info` or the URL's `?priority=`; tvix stores come
/// first); equal priorities keep the order of `urls`.
pub fn open_substituters(
    urls: &[String],
    cache: &CacheSettings,
) -> Result<Substituters, RealiseError> {
    let settings = Arc::new(cache.clone());
    // Binary caches' nix-cache-info files are read in parallel: one slow cache does not
    // hold up the others.
    let opened: Vec<Result<Prioritised, RealiseError>> = std::thread::scope(|s| {
        let handles: Vec<_> = urls
            .iter()
            .map(|url| {
                let settings = settings.clone();
                s.spawn(move || open_substituter(url, settings))
            })
            .collect();
        handles
            .into_iter()
            .zip(urls)
            .map(|(h, url)| {
                h.join()
                    .unwrap_or_else(|_| Err(RealiseError::UnsupportedSubstituter(url.clone())))
            })
            .collect()
    });
    let mut list = opened.into_iter().collect::<Result<Vec<_>, _>>()?;
    list.sort_by_key(|(priority, _)| *priority);
    Ok(Substituters::new(
        list.into_iter().map(|(_, s)| s).collect(),
    ))
}

/// A substituter and its priority (lower first).
type Prioritised = (u64, Box<dyn Substituter + Send>);

/// Opens one substituter, with its priority.
fn open_substituter(url: &str, settings: Arc<CacheSettings>) -> Result<Prioritised, RealiseError> {
    if BinaryCache::handles(url) {
        let cache = BinaryCache::open(url, settings)
            .ok_or_else(|| RealiseError::UnsupportedSubstituter(url.to_string()))?;
        return Ok((cache.priority(), Box::new(cache)));
    }
    let is_store = url.starts_with("local://")
        || url.starts_with("grpc+unix://")
        || url.starts_with("grpc+http://")
        || url.starts_with('/');
    if !is_store {
        return Err(RealiseError::UnsupportedSubstituter(url.to_string()));
    }
    let source = tvix_store::open(url).map_err(|source| RealiseError::OpenSubstituter {
        url: url.to_string(),
        source,
    })?;
    Ok((0, Box::new(StoreSubstituter::new(source))))
}

/// The caller's environment, for fixed-output derivations' `impureEnvVars`.
fn caller_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// What went wrong in an unsuccessful run, as Nix reports it, in its order: each
/// derivation that failed (with the last lines of its log when `with_log_tail`, for
/// callers that did not show the log) or was not built because `N dependencies of
/// derivation '...' failed to build`; the failed targets last; with more than one failed
/// target, the first one's message and then `build of '...', '...' failed`; an
/// interruption.
pub fn failure_messages(
    outcome: &Outcome,
    targets: &[StorePath],
    with_log_tail: bool,
) -> Vec<String> {
    let plan = &outcome.plan;
    let failed: BTreeSet<_> = outcome.summary.failed.iter().copied().collect();
    let blocked: BTreeSet<_> = outcome.summary.dependency_failed.iter().copied().collect();
    let by_drv: BTreeMap<&str, &DrvFailure> = outcome
        .failures
        .iter()
        .map(|(d, f)| (d.as_str(), f))
        .collect();
    let message = |id| -> String {
        let drv = plan.drv(id);
        match by_drv.get(drv) {
            Some(DrvFailure::Build(f)) if with_log_tail => f.message_with_log_tail(LOG_COMMAND),
            Some(f) => f.to_string(),
            None => {
                // Nix counts the inputs that failed by the time it gave up on this one.
                let n = plan
                    .inputs(id)
                    .filter(|i| failed.contains(i) || blocked.contains(i))
                    .count();
                format!("{n} dependencies of derivation '{drv}' failed to build")
            }
        }
    };
    let target_ids: BTreeSet<_> = targets
        .iter()
        .filter_map(|t| plan.id_of(&format!("{SANDBOX_STORE_DIR}/{t}")))
        .collect();
    let mut out = Vec::new();
    let mut failed_targets = Vec::new();
    for &id in &outcome.unsuccessful {
        if target_ids.contains(&id) {
            failed_targets.push(id);
        } else {
            out.push(message(id));
        }
    }
    // A failure the executor recorded outside the plan's order (a bug) is still shown.
    for (drv, f) in &outcome.failures {
        let known = plan
            .id_of(drv)
            .is_some_and(|id| outcome.unsuccessful.contains(&id));
        if !known {
            out.push(f.to_string());
        }
    }
    if let Some(&first) = failed_targets.first() {
        out.push(message(first));
        if failed_targets.len() > 1 {
            let mut names: Vec<&str> = failed_targets.iter().map(|&id| plan.drv(id)).collect();
            names.sort();
            let list: Vec<String> = names.iter().map(|d| format!("'{d}'")).collect();
            out.push(format!("build of {} failed", list.join(", ")));
        }
    }
    if outcome.summary.cancelled {
        out.push("interrupted by the user".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t = DrvOutput::parse("/nix/store/0a1hmb1d2dm3g6lrqwscf0lqjfjbzbv2-t.drv!dev").unwrap();
        assert_eq!(t.drv.name(), "t.drv");
        assert_eq!(t.output, "dev");
        let t = DrvOutput::parse("/nix/store/0a1hmb1d2dm3g6lrqwscf0lqjfjbzbv2-t.drv").unwrap();
        assert_eq!(t.output, "out");
        assert_eq!(
            t.to_string(),
            "/nix/store/0a1hmb1d2dm3g6lrqwscf0lqjfjbzbv2-t.drv!out"
        );
        assert!(DrvOutput::parse("/tmp/x.drv").is_err());
        assert!(DrvOutput::parse("/nix/store/0a1hmb1d2dm3g6lrqwscf0lqjfjbzbv2-t").is_err());
    }

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_override_defaults() {
        let c = RealiseConfig::from_options(
            "memory://",
            &options(&[
                ("cores", "7"),
                ("timeout", "5"),
                ("system-features", "kvm foo"),
                ("sandbox-paths", "/bin/sh=/x /usr?"),
                ("extra-platforms", "i686-linux"),
                ("max-jobs", "3"),
                ("keep-going", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(c.settings.request.cores, 7);
        assert_eq!(c.settings.request.timeout, Some(Duration::from_secs(5)));
        assert_eq!(
            c.settings.system_features,
            ["foo", "kvm"].map(String::from).into()
        );
        assert_eq!(c.service_options.sandbox_paths, vec!["/bin/sh=/x", "/usr?"]);
        assert_eq!(c.settings.extra_platforms, vec!["i686-linux"]);
        assert_eq!(c.exec.max_jobs, 3);
        assert!(c.exec.keep_going);
        let defaults = RealiseConfig::from_options("memory://", &BTreeMap::new()).unwrap();
        assert_eq!(defaults.exec.max_jobs, 1);
        assert!(defaults.substitute && defaults.substituters.is_empty());
        assert!(!defaults.exec.fallback);
        let c = RealiseConfig::from_options(
            "memory://",
            &options(&[
                ("substituters", "local:///a grpc+unix:///b"),
                ("extra-substituters", "/c"),
                ("substitute", "false"),
                ("fallback", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(c.substituters, ["local:///a", "grpc+unix:///b", "/c"]);
        assert!(!c.substitute && c.exec.fallback);
        assert_eq!(defaults.settings.request.timeout, None);
    }

    #[test]
    fn substituters_are_stores_and_binary_caches() {
        let cache = RealiseConfig::from_options("memory://", &BTreeMap::new())
            .unwrap()
            .cache;
        let e = open_substituters(&["s3://bucket".into()], &cache)
            .err()
            .unwrap();
        assert!(matches!(e, RealiseError::UnsupportedSubstituter(_)), "{e}");
        assert!(e.to_string().contains("file://, http://, https://"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let url = format!("local://{}", dir.path().display());
        let cache_dir = format!("file://{}", dir.path().display());
        assert!(!open_substituters(&[url, cache_dir], &cache)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn cache_settings_are_read() {
        let c = RealiseConfig::from_options("memory://", &BTreeMap::new()).unwrap();
        assert!(c.cache.require_sigs);
        assert_eq!(c.cache.trusted_keys.len(), 1);
        assert_eq!(c.cache.negative_ttl, Duration::from_secs(3600));
        let c = RealiseConfig::from_options(
            "memory://",
            &options(&[
                ("require-sigs", "false"),
                ("trusted-public-keys", ""),
                (
                    "extra-trusted-public-keys",
                    "k:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                ),
                ("stalled-download-timeout", "2"),
            ]),
        )
        .unwrap();
        assert!(!c.cache.require_sigs);
        assert_eq!(c.cache.trusted_keys[0].name(), "k");
        assert_eq!(c.cache.timeouts.stalled, Duration::from_secs(2));
        let e = RealiseConfig::from_options(
            "memory://",
            &options(&[("trusted-public-keys", "broken")]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "option 'trusted-public-keys' has invalid value 'broken'"
        );
    }

    #[test]
    fn bad_options_are_named() {
        for (k, v) in [("cores", "x"), ("max-jobs", "many"), ("keep-failed", "yes")] {
            let e = RealiseConfig::from_options("memory://", &options(&[(k, v)])).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("option '{k}' has invalid value '{v}'")
            );
        }
        let e =
            RealiseConfig::from_options("memory://", &options(&[("max-jobs", "0")])).unwrap_err();
        assert!(matches!(e, RealiseError::NoJobs));
    }

    #[test]
    fn builders_are_read_and_allow_max_jobs_0() {
        let c = RealiseConfig::from_options(
            "memory://",
            &options(&[
                ("max-jobs", "0"),
                ("builders", "grpc+http://a:1 - - 3 ; grpc+unix:///b.sock"),
                ("builders-use-substitutes", "true"),
                ("system", "aarch64-linux"),
            ]),
        )
        .unwrap();
        assert_eq!(c.exec.max_jobs, 0);
        assert_eq!(c.exec.builders.len(), 2);
        assert_eq!(c.exec.builders[0].max_jobs, 3);
        assert_eq!(
            c.exec.builders[1].systems,
            ["aarch64-linux".to_string()].into()
        );
        assert!(c.builders_use_substitutes);
        let e = RealiseConfig::from_options(
            "memory://",
            &options(&[("builders", "grpc+http://a:1 - /root/.ssh/id")]),
        )
        .unwrap_err();
        assert!(matches!(e, RealiseError::Builders(_)), "{e}");
        assert!(
            e.to_string()
                .starts_with("builder 'grpc+http://a:1 - /root/.ssh/id'"),
            "{e}"
        );
        let e = RealiseConfig::from_options(
            "memory://",
            &options(&[("builders-use-substitutes", "maybe")]),
        )
        .unwrap_err();
        assert!(matches!(e, RealiseError::BadOption { .. }));
    }
}
