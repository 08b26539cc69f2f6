//! The executor: performs a [`Plan`]'s actions with real IO.
//!
//! It loads the derivation graph from the store, answers the plan's validity questions
//! from the store, runs builds through a [`BuildStep`] on as many worker threads as the
//! machines have slots (this machine's `max_jobs` and each remote builder's), each build on
//! the machine the plan chose; a build whose machine was lost goes back to the plan, which
//! starts it elsewhere;
//! registers finished builds on its own thread (so registrations are serialised and a
//! registration never races a build that needs it), and reports [`Event`]s to its
//! subscribers. Cancellation goes through a [`CancelToken`]: once it is set, the plan stops
//! scheduling, running builds see the same token and stop, builds that finished anyway are
//! registered, and the run ends with what finished kept, so a rerun builds only the rest.
//!
//! Substitution goes through [`Substituters`] (none: everything missing is built): the
//! plan asks which derivations' outputs they have, and each substitution runs on a thread
//! of its own, reporting back like a build.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use thiserror::Error;
use tvix_build::{BuildError as ServiceError, CancelToken};
use tvix_store::castore::StoreError;
use tvix_store::{Derivation, StorePath, StoreService};

use crate::build::{read_derivation, BuildFailure};
use crate::events::{Event, Progress, Subscriber};
use crate::machines::Machine;
use crate::plan::{
    Action, Config, DrvId, Input, NodeSpec, Plan, PlanError, Summary, UnexpectedInput, Validity,
};
use crate::request::{self, ParsedAttrs, SANDBOX_STORE_DIR};
use crate::substitute::{CopyProgress, SubstituteError, Substituters};

/// What a build reports while it runs (the executor turns these into [`Event`]s).
#[derive(Debug)]
pub enum StepEvent<'a> {
    /// The build service started the build on this machine.
    Started {
        /// The machine.
        machine: &'a str,
    },
    /// A line of the log, without its newline.
    Log(&'a [u8]),
    /// The build entered a phase.
    Phase(&'a str),
    /// The failed build's directory was kept here.
    KeptBuildDir(&'a str),
}

/// The one way a derivation is built: implemented by [`crate::build::Driver`] (request,
/// closure, build service, checks, log), replaced by fakes in tests.
pub trait BuildStep: Sync {
    /// A build whose outputs passed their checks, not registered yet.
    type Built: Send;

    /// Builds `drv` (whose inputs are all valid) on the machine with index `machine`
    /// (0: this one, then the remote builders in their order) and checks its outputs.
    /// Called on a worker thread; `cancel` is the run's token. A lost machine is
    /// [`BuildFailure::is_lost`].
    fn build(
        &self,
        drv: &StorePath,
        graph: &Graph,
        machine: usize,
        events: &mut dyn FnMut(StepEvent<'_>),
        cancel: &CancelToken,
    ) -> Result<Self::Built, BuildFailure>;

    /// This machine with `max_jobs` slots: the systems and features it builds.
    fn this_machine(&self, max_jobs: usize) -> Machine;

    /// Why the remote builder with index `machine` (1 and up) cannot be used at all
    /// (unreachable when the run started), if it cannot.
    fn unavailable(&self, machine: usize) -> Option<String> {
        let _ = machine;
        None
    }

    /// The failure of `drv`, which no machine can build: this machine's message (Nix's
    /// `a 'system' with features {...} is required`), or that it could but may not
    /// build (`max-jobs` 0).
    fn cannot_build(&self, drv: &StorePath, graph: &Graph) -> BuildFailure;

    /// Registers the outputs of a checked build. Called on the executor's thread.
    fn register(&self, built: Self::Built) -> Result<(), BuildFailure>;
}

/// The derivations a run needs, read from the store.
#[derive(Debug, Default)]
pub struct Graph {
    /// Each derivation by its absolute `.drv` path.
    pub drvs: BTreeMap<String, Derivation>,
    /// Its output paths by output name.
    pub outputs: BTreeMap<String, BTreeMap<String, StorePath>>,
}

fn abs(p: &StorePath) -> String {
    format!("{SANDBOX_STORE_DIR}/{p}")
}

impl Graph {
    /// Reads `targets` and every input derivation they reach. A cycle does not make this
    /// loop (each path is read once); the plan reports it.
    pub fn load(store: &dyn StoreService, targets: &[StorePath]) -> Result<Graph, BuildFailure> {
        let mut graph = Graph::default();
        let mut todo: Vec<StorePath> = targets.to_vec();
        while let Some(p) = todo.pop() {
            let name = abs(&p);
            if graph.drvs.contains_key(&name) {
                continue;
            }
            let drv = read_derivation(store, &p)?;
            for input in drv.input_derivations.keys() {
                if !graph.drvs.contains_key(input) {
                    let ip = input
                        .strip_prefix("/nix/store/")
                        .and_then(|b| StorePath::from_base_name(b).ok())
                        .ok_or_else(|| BuildFailure::NotValid(input.clone()))?;
                    todo.push(ip);
                }
            }
            graph
                .outputs
                .insert(name.clone(), request::output_paths(&drv, &name)?);
            graph.drvs.insert(name, drv);
        }
        Ok(graph)
    }

    /// The nodes of the plan (validity unknown: the plan asks for what it needs). A
    /// derivation whose structured attributes do not parse is given no required features
    /// here; its build fails with the parse error.
    fn nodes(&self) -> Vec<NodeSpec> {
        self.drvs
            .iter()
            .map(|(name, drv)| {
                let attrs = ParsedAttrs::new(drv, name).ok();
                let required_features = attrs
                    .as_ref()
                    .and_then(|a| a.required_system_features(name).ok())
                    .unwrap_or_default();
                let prefer_local = match attrs.as_ref().and_then(|a| a.structured()) {
                    Some(m) => m.get("preferLocalBuild") == Some(&serde_json::Value::Bool(true)),
                    None => drv.env.get("preferLocalBuild").map(String::as_str) == Some("1"),
                };
                NodeSpec {
                    drv: name.clone(),
                    inputs: drv.input_derivations.keys().cloned().collect(),
                    outputs: self.outputs[name].values().map(abs).collect(),
                    validity: Validity::Unknown,
                    system: drv.system.clone(),
                    required_features,
                    builtin: drv.builder.starts_with("builtin:"),
                    prefer_local,
                }
            })
            .collect()
    }
}

/// How a run goes.
#[derive(Clone, Debug)]
pub struct ExecConfig {
    /// Builds at once on this machine (`-j`); 0 only with remote builders.
    pub max_jobs: usize,
    /// The remote builders (Nix's `builders`), in their order.
    pub builders: Vec<Machine>,
    /// `--keep-going`.
    pub keep_going: bool,
    /// `--dry-run`: plan only.
    pub dry_run: bool,
    /// `--fallback`: build what fails to substitute.
    pub fallback: bool,
}

/// Why a run could not be carried out at all (a failed build is not this: see
/// [`Outcome::failures`]).
#[derive(Debug, Error)]
pub enum ExecError {
    /// A derivation could not be read.
    #[error(transparent)]
    Load(#[from] BuildFailure),
    /// The graph is not a plan (a cycle).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The store failed while checking validity.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The executor broke the plan's contract (a bug).
    #[error("internal error: {0}")]
    Protocol(#[from] UnexpectedInput),
}

/// Why one derivation failed.
#[derive(Debug, Error)]
pub enum DrvFailure {
    /// Its build, checks or registration failed.
    #[error(transparent)]
    Build(#[from] BuildFailure),
    /// Its outputs could not be substituted (and `--fallback` is off).
    #[error("substituting the outputs of '{drv}': {source}")]
    Substitute {
        /// The derivation.
        drv: String,
        /// Why.
        source: SubstituteError,
    },
    /// The build step panicked (a bug; the other builds go on as after a failure).
    #[error("building '{drv}' panicked: {message}")]
    Panicked {
        /// The derivation.
        drv: String,
        /// The panic's message.
        message: String,
    },
}

impl DrvFailure {
    /// `nix-build`'s exit status for this failure alone.
    pub fn exit_status(&self) -> i32 {
        match self {
            DrvFailure::Build(f) => f.exit_status(),
            DrvFailure::Substitute { .. } | DrvFailure::Panicked { .. } => 1,
        }
    }
}

/// Where the coordinator's own time went (not the builds'): for `TVIX_SHOW_STATS` and
/// the figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Derivations in the graph.
    pub derivations: usize,
    /// Reading the graph from the store.
    pub load: Duration,
    /// From the plan's creation to its first [`Action::Planned`] (validity queries
    /// included).
    pub plan: Duration,
    /// Registering finished builds.
    pub register: Duration,
    /// Builds registered.
    pub registered: usize,
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The coordinator's own timings.
    pub stats: Stats,
    /// The plan, for its derivations' names.
    pub plan: Plan,
    /// What the plan says of each derivation.
    pub summary: Summary,
    /// What was (or, with `--dry-run`, would be) built, as `.drv` paths.
    pub planned_builds: Vec<String>,
    /// What was (or would be) fetched, as output paths.
    pub planned_fetches: Vec<String>,
    /// Each failed derivation with why, in the order they failed.
    pub failures: Vec<(String, DrvFailure)>,
    /// Every derivation that failed or was not built because an input failed, in the
    /// order that became known (the order Nix reports them in).
    pub unsuccessful: Vec<DrvId>,
    /// Each target's output paths by output name.
    pub target_outputs: Vec<BTreeMap<String, StorePath>>,
}

impl Outcome {
    /// Whether every target is valid.
    pub fn success(&self) -> bool {
        self.summary.targets_valid && self.failures.is_empty()
    }

    /// `nix-build`'s exit status: 0 on success; for build failures, Nix's bits combined
    /// (100 failed, 101 timed out, 102 hash mismatch, 104 not deterministic: with
    /// `--keep-going`, several at once); 1 for any other failure or an interruption.
    pub fn exit_status(&self) -> i32 {
        if self.success() {
            return 0;
        }
        let mut bits = 0;
        for (_, f) in &self.failures {
            let s = f.exit_status();
            if (96..112).contains(&s) {
                bits |= s & 0x0f;
            }
        }
        if bits != 0 {
            0x60 | bits
        } else {
            1
        }
    }
}

/// Runs builds: see the module documentation.
pub struct Executor<'a, S: BuildStep> {
    /// Where derivations are read and validity is checked.
    pub store: &'a dyn StoreService,
    /// How a derivation is built and registered.
    pub step: &'a S,
    /// Where outputs may be substituted from (empty: nowhere).
    pub substituters: &'a Substituters,
    /// Jobs, keep-going, dry run.
    pub config: ExecConfig,
    /// Who receives the events.
    pub subscribers: &'a [&'a dyn Subscriber],
    /// Set by the caller (Ctrl-C) to stop the run.
    pub cancel: &'a CancelToken,
}

/// What a worker sends back.
enum Report<B> {
    Built(DrvId, B),
    Failed(DrvId, DrvFailure),
    /// The build's machine was lost (why).
    Lost(DrvId, String),
    Substituted(DrvId, Result<(), SubstituteError>),
}

/// How often the executor looks at the cancel token while it waits for a build.
const CANCEL_POLL: Duration = Duration::from_millis(50);

impl<S: BuildStep> Executor<'_, S> {
    fn emit(&self, e: &Event<'_>) {
        for s in self.subscribers {
            s.event(e);
        }
    }

    /// Builds what `targets` need.
    pub fn run(&self, targets: &[StorePath]) -> Result<Outcome, ExecError> {
        let started = Instant::now();
        let graph = Graph::load(self.store, targets)?;
        let stats = Stats {
            derivations: graph.drvs.len(),
            load: started.elapsed(),
            ..Stats::default()
        };
        let planning = Instant::now();
        let target_names: Vec<String> = targets.iter().map(abs).collect();
        let mut machines = vec![self.step.this_machine(self.config.max_jobs)];
        machines.extend(self.config.builders.iter().cloned());
        let n_machines = machines.len();
        let mut plan = Plan::new(
            graph.nodes(),
            &target_names,
            Config {
                machines,
                max_substitutions: 1,
                keep_going: self.config.keep_going,
                substitute: !self.substituters.is_empty(),
                fallback: self.config.fallback,
                dry_run: self.config.dry_run,
            },
        )?;
        for m in 1..n_machines {
            if let Some(why) = self.step.unavailable(m) {
                self.warn(&[format!(
                    "not using the builder '{}': {why}",
                    plan.machines()[m].url
                )]);
                plan.handle(Input::MachineDown(m))?;
            }
        }
        let target_outputs: Vec<BTreeMap<String, StorePath>> = target_names
            .iter()
            .map(|t| graph.outputs[t].clone())
            .collect();
        let (to_workers, jobs) = mpsc::channel::<(DrvId, usize)>();
        let jobs = Mutex::new(jobs);
        let (reports_tx, reports) = mpsc::channel::<Report<S::Built>>();
        std::thread::scope(|scope| -> Result<Outcome, ExecError> {
            let mut n_workers = 0;
            let mut n_busy = 0;
            let mut state = RunState {
                plan,
                progress: Progress::default(),
                failures: Vec::new(),
                unsuccessful: Vec::new(),
                planned_builds: Vec::new(),
                planned_fetches: Vec::new(),
                finished: BTreeMap::new(),
                told_cancel: false,
                stats,
                planning,
            };
            let summary = loop {
                if self.cancel.is_cancelled() && !state.told_cancel {
                    state.told_cancel = true;
                    state.plan.handle(Input::Cancel)?;
                }
                let mut done = None;
                while let Some(action) = state.plan.poll_action() {
                    match action {
                        Action::Build { drv: id, machine } => {
                            // Workers are started on demand, never more than the
                            // machines' slots (the plan never has more builds out).
                            if n_busy == n_workers {
                                n_workers += 1;
                                let jobs = &jobs;
                                let reports = reports_tx.clone();
                                let graph = &graph;
                                let names = state.plan_names();
                                scope.spawn(move || self.worker(jobs, reports, graph, names));
                            }
                            n_busy += 1;
                            state.progress.builds_running += 1;
                            self.emit(&Event::Progress(state.progress));
                            // The receiving side lives as long as the scope.
                            let _ = to_workers.send((id, machine));
                        }
                        Action::Substitute(id) => {
                            let drv = state.plan.drv(id).to_string();
                            let outputs = state.plan.outputs(id).to_vec();
                            let reports = reports_tx.clone();
                            state.progress.substitutions_running += 1;
                            self.emit(&Event::Progress(state.progress));
                            scope.spawn(move || {
                                let result = self.substitute(&drv, &outputs);
                                let _ = reports.send(Report::Substituted(id, result));
                            });
                        }
                        Action::Done(summary) => {
                            done = Some(summary);
                            break;
                        }
                        other => self.perform(&mut state, &graph, other)?,
                    }
                }
                if let Some(summary) = done {
                    break summary;
                }
                match reports.recv_timeout(CANCEL_POLL) {
                    Ok(Report::Substituted(id, result)) => {
                        state.progress.substitutions_running -= 1;
                        self.substituted(&mut state, id, result)?;
                    }
                    Ok(report) => {
                        n_busy -= 1;
                        state.progress.builds_running -= 1;
                        match report {
                            Report::Built(id, built) => {
                                state.finished.insert(id, built);
                                state.plan.handle(Input::BuildFinished(id))?;
                            }
                            Report::Failed(id, failure) => {
                                self.failed(&mut state, id, failure)?;
                            }
                            Report::Lost(id, why) => {
                                let message = format!(
                                    "{why}; building '{}' on another machine",
                                    state.plan.drv(id)
                                );
                                self.emit(&Event::Warning { message: &message });
                                state.plan.handle(Input::BuildLost(id))?;
                            }
                            Report::Substituted(..) => unreachable!("matched above"),
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        unreachable!("the executor holds a sender")
                    }
                }
            };
            // Closing the job channel ends the workers; the scope joins them.
            drop(to_workers);
            Ok(Outcome {
                stats: state.stats,
                summary,
                planned_builds: state.planned_builds,
                planned_fetches: state.planned_fetches,
                failures: state.failures,
                unsuccessful: state.unsuccessful,
                target_outputs,
                plan: state.plan,
            })
        })
    }

    /// Performs an action of the plan that is not a build.
    fn perform(
        &self,
        state: &mut RunState<S::Built>,
        graph: &Graph,
        action: Action,
    ) -> Result<(), ExecError> {
        match action {
            Action::QueryValidity(id) => {
                let mut valid = true;
                for out in state.plan.outputs(id) {
                    let p = StorePath::from_absolute_path(out)
                        .map_err(|_| BuildFailure::NotValid(out.clone()))?;
                    if self.store.get_path_info(&p)?.is_none() {
                        valid = false;
                        break;
                    }
                }
                state.plan.handle(Input::Validity { drv: id, valid })?;
            }
            Action::QuerySubstitutable(id) => {
                let mut missing = Vec::new();
                for out in state.plan.outputs(id) {
                    let p = StorePath::from_absolute_path(out)
                        .map_err(|_| BuildFailure::NotValid(out.clone()))?;
                    if self.store.get_path_info(&p)?.is_none() {
                        missing.push(p);
                    }
                }
                // A substituter that cannot be asked is passed over, as Nix passes over
                // an unreachable cache: the derivation is built instead.
                let mut warnings = Vec::new();
                let substitutable = self.substituters.find(&missing, &mut warnings).is_some();
                self.warn(&warnings);
                state.plan.handle(Input::Substitutable {
                    drv: id,
                    substitutable,
                })?;
            }
            Action::Planned { build, fetch } => {
                state.stats.plan = state.planning.elapsed();
                state.planned_builds = build.iter().map(|&d| state.plan.drv(d).into()).collect();
                state.planned_fetches = fetch
                    .iter()
                    .flat_map(|&d| state.plan.outputs(d).iter().cloned())
                    .collect();
                state.progress.builds_total = build.len();
                state.progress.substitutions_total = fetch.len();
                self.emit(&Event::Planned {
                    plan: &state.plan,
                    build: &build,
                    fetch: &fetch,
                });
                self.emit(&Event::Progress(state.progress));
            }
            Action::Register(id) => {
                let built = state
                    .finished
                    .remove(&id)
                    .expect("the plan registers only finished builds");
                let registering = Instant::now();
                let result = self.step.register(built);
                state.stats.register += registering.elapsed();
                match result {
                    Ok(()) => {
                        state.stats.registered += 1;
                        state.plan.handle(Input::Registered(id))?;
                        state.progress.builds_done += 1;
                        self.emit(&Event::BuildFinished {
                            drv: state.plan.drv(id),
                        });
                        self.emit(&Event::Progress(state.progress));
                    }
                    Err(e) => {
                        state.plan.handle(Input::RegisterFailed(id))?;
                        self.record_failure(state, id, e.into());
                    }
                }
            }
            Action::NoMachine { drv: id, lost } => {
                let name = state.plan.drv(id).to_string();
                let failure = if lost {
                    let machines = state.plan.machines();
                    let (system, features) = state.plan.requirements(id);
                    let lost: Vec<&str> = machines
                        .iter()
                        .skip(1)
                        .filter(|m| m.can_build(system, features))
                        .map(|m| m.url.as_str())
                        .collect();
                    BuildFailure::MachinesLost {
                        drv: name,
                        machines: lost.join(", "),
                    }
                } else {
                    match StorePath::from_absolute_path(&name) {
                        Ok(path) => self.step.cannot_build(&path, graph),
                        Err(_) => BuildFailure::NotValid(name),
                    }
                };
                self.record_failure(state, id, failure.into());
            }
            Action::Build { .. } | Action::Substitute(_) | Action::Done(_) => {
                unreachable!("handled by run")
            }
        }
        Ok(())
    }

    /// Shows `warnings` as warning events.
    fn warn(&self, warnings: &[String]) {
        for message in warnings {
            self.emit(&Event::Warning { message });
        }
    }

    /// Substitutes the outputs of `drv` (on a thread of its own): from the first
    /// substituter that has them; if that fails (a corrupt NAR, a broken connection),
    /// from the next one that has them, as Nix tries the next substituter.
    fn substitute(&self, drv: &str, outputs: &[String]) -> Result<(), SubstituteError> {
        let paths: Vec<StorePath> = outputs
            .iter()
            .filter_map(|o| StorePath::from_absolute_path(o).ok())
            .collect();
        let mut start = 0;
        let mut last_error = None;
        loop {
            let mut warnings = Vec::new();
            let found = self.substituters.find_after(&paths, start, &mut warnings);
            self.warn(&warnings);
            let Some((idx, from)) = found else {
                return Err(last_error.unwrap_or_else(|| SubstituteError::Unavailable {
                    drv: drv.to_string(),
                }));
            };
            self.emit(&Event::SubstitutionStarted {
                drv,
                from: from.name(),
            });
            // The path being copied and the bytes it is expected to take.
            let mut current: Option<(String, u64)> = None;
            let mut copying = |p: CopyProgress<'_>| match p {
                CopyProgress::Started { path, expected } => {
                    let path = abs(path);
                    self.emit(&Event::Copying {
                        path: &path,
                        from: from.name(),
                    });
                    current = Some((path, expected));
                }
                CopyProgress::Transferred { done } => {
                    if let Some((path, expected)) = &current {
                        self.emit(&Event::Transfer {
                            path,
                            done,
                            expected: *expected,
                        });
                    }
                }
            };
            let result = from.substitute_reporting(&paths, self.store, &mut copying, self.cancel);
            self.warn(&from.take_warnings());
            match result {
                Ok(()) => return Ok(()),
                Err(SubstituteError::Cancelled) => return Err(SubstituteError::Cancelled),
                Err(e) => {
                    self.warn(&[e.to_string()]);
                    last_error = Some(e);
                    start = idx + 1;
                }
            }
        }
    }

    /// A substitution ended.
    fn substituted(
        &self,
        state: &mut RunState<S::Built>,
        id: DrvId,
        result: Result<(), SubstituteError>,
    ) -> Result<(), ExecError> {
        let drv = state.plan.drv(id).to_string();
        let ok = result.is_ok();
        self.emit(&Event::SubstitutionFinished { drv: &drv, ok });
        match result {
            Ok(()) => {
                state.plan.handle(Input::Substituted(id))?;
                state.progress.substitutions_done += 1;
                self.emit(&Event::Progress(state.progress));
            }
            Err(source) => {
                state.plan.handle(Input::SubstituteFailed(id))?;
                let interrupted =
                    matches!(source, SubstituteError::Cancelled) && self.cancel.is_cancelled();
                // With --fallback the plan builds it instead; a failure is recorded only
                // if that build fails.
                if !interrupted && !self.config.fallback {
                    self.record_failure(state, id, DrvFailure::Substitute { drv, source });
                }
            }
        }
        Ok(())
    }

    /// A build failed: a cancelled build after the run was cancelled is an interruption,
    /// not a failure.
    fn failed(
        &self,
        state: &mut RunState<S::Built>,
        id: DrvId,
        failure: DrvFailure,
    ) -> Result<(), ExecError> {
        state.plan.handle(Input::BuildFailed(id))?;
        let interrupted = matches!(
            failure,
            DrvFailure::Build(BuildFailure::Service {
                source: ServiceError::Cancelled,
                ..
            })
        ) && self.cancel.is_cancelled();
        if !interrupted {
            self.record_failure(state, id, failure);
        }
        Ok(())
    }

    fn record_failure(&self, state: &mut RunState<S::Built>, id: DrvId, failure: DrvFailure) {
        let drv = state.plan.drv(id).to_string();
        let tail: &[String] = match &failure {
            DrvFailure::Build(BuildFailure::Builder { log_tail, .. }) => log_tail,
            _ => &[],
        };
        self.emit(&Event::BuildFailed {
            drv: &drv,
            message: failure.to_string(),
            log_tail: tail,
        });
        state.failures.push((drv, failure));
        state.unsuccessful.push(id);
        // What the failure blocks is reported once the plan is done with it.
        let before = state.progress.builds_failed;
        state.progress.builds_failed = state.count_failed();
        if state.progress.builds_failed != before {
            for d in state.newly_blocked() {
                state.unsuccessful.push(d);
                self.emit(&Event::DependencyFailed {
                    drv: state.plan.drv(d),
                });
            }
        }
        self.emit(&Event::Progress(state.progress));
    }

    /// A worker: takes derivations off the job channel until it closes.
    fn worker(
        &self,
        jobs: &Mutex<mpsc::Receiver<(DrvId, usize)>>,
        reports: mpsc::Sender<Report<S::Built>>,
        graph: &Graph,
        names: Vec<(DrvId, String)>,
    ) {
        let by_id: BTreeMap<DrvId, String> = names.into_iter().collect();
        loop {
            // Hold the lock only to take one job.
            let job = jobs.lock().map(|rx| rx.recv());
            let Ok(Ok((id, machine))) = job else { return };
            let drv = &by_id[&id];
            let path = StorePath::from_absolute_path(drv).expect("loaded from a store path");
            let mut on_event = |e: StepEvent<'_>| match e {
                StepEvent::Started { machine } => self.emit(&Event::BuildStarted { drv, machine }),
                StepEvent::Log(line) => self.emit(&Event::Log { drv, line }),
                StepEvent::Phase(phase) => self.emit(&Event::Phase { drv, phase }),
                StepEvent::KeptBuildDir(dir) => self.emit(&Event::KeptBuildDir { drv, dir }),
            };
            let result = catch_unwind(AssertUnwindSafe(|| {
                self.step
                    .build(&path, graph, machine, &mut on_event, self.cancel)
            }));
            let report = match result {
                Ok(Ok(built)) => Report::Built(id, built),
                Ok(Err(e)) if e.is_lost() => Report::Lost(id, e.to_string()),
                Ok(Err(e)) => Report::Failed(id, e.into()),
                Err(panic) => Report::Failed(
                    id,
                    DrvFailure::Panicked {
                        drv: drv.clone(),
                        message: panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "(no message)".into()),
                    },
                ),
            };
            if reports.send(report).is_err() {
                return;
            }
        }
    }
}

/// The executor's bookkeeping during a run.
struct RunState<B> {
    plan: Plan,
    progress: Progress,
    failures: Vec<(String, DrvFailure)>,
    unsuccessful: Vec<DrvId>,
    planned_builds: Vec<String>,
    planned_fetches: Vec<String>,
    /// Finished builds waiting for their registration.
    finished: BTreeMap<DrvId, B>,
    told_cancel: bool,
    stats: Stats,
    /// When planning started.
    planning: Instant,
}

impl<B> RunState<B> {
    fn plan_names(&self) -> Vec<(DrvId, String)> {
        self.plan
            .drvs()
            .map(|d| (d, self.plan.drv(d).to_string()))
            .collect()
    }

    fn count_failed(&self) -> usize {
        self.failures.len() + self.plan.n_dependency_failed()
    }

    fn newly_blocked(&mut self) -> Vec<DrvId> {
        self.plan.take_newly_dependency_failed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::substitute::{StoreSubstituter, Substituter};
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tvix_store::castore::{BlobService, Node, Store};
    use tvix_store::derivation::Output;
    use tvix_store::pathinfo::{PathInfo, PathInfoService};
    use tvix_store::StoreDir;

    /// Writes a derivation named `name` with `inputs` into the store.
    fn add_drv(store: &Store, name: &str, inputs: &[&StorePath]) -> StorePath {
        let sd = StoreDir::default();
        let mut d = Derivation {
            system: "x86_64-linux".into(),
            builder: "/bin/sh".into(),
            ..Default::default()
        };
        d.outputs.insert("out".into(), Output::default());
        let mut hashes = BTreeMap::new();
        for i in inputs {
            d.input_derivations
                .insert(abs(i), ["out".to_string()].into());
            hashes.insert(abs(i), modulo(store, &abs(i)));
        }
        d.env.insert("name".into(), name.into());
        d.calculate_output_paths(&sd, name, |p| hashes.get(p).cloned().flatten())
            .unwrap();
        let path = d.drv_path(&sd, name).unwrap();
        let bytes = d.to_aterm_bytes();
        let (digest, size) = store.put_blob(&mut &bytes[..]).unwrap();
        store
            .put_path_info(&info(
                path.clone(),
                Node::File {
                    digest,
                    size,
                    executable: false,
                },
            ))
            .unwrap();
        path
    }

    /// The hash modulo of a derivation in the store, its inputs' hashes looked up in turn.
    fn modulo(store: &Store, drv: &str) -> Option<tvix_store::NixHash> {
        let path = StorePath::from_absolute_path(drv).ok()?;
        let d = read_derivation(store, &path).ok()?;
        d.hash_derivation_modulo(|q| modulo(store, q)).ok()
    }

    fn info(store_path: StorePath, node: Node) -> PathInfo {
        PathInfo {
            store_path,
            node,
            nar_sha256: [0; 32],
            nar_size: 0,
            references: vec![],
            deriver: None,
            signatures: vec![],
            ca: None,
        }
    }

    /// A step that "builds" by noting the derivation and registers an empty file as each
    /// output; fails the derivations named in `failing`; waits for the token in `hang`.
    struct FakeStep<'a> {
        store: &'a Store,
        failing: BTreeSet<String>,
        hang: BTreeSet<String>,
        built: Mutex<Vec<String>>,
        running: AtomicUsize,
        max_running: AtomicUsize,
        /// Machines whose builds are lost (as a killed builder's are).
        lost: BTreeSet<usize>,
        /// Each build asked for, with its machine.
        on: Mutex<Vec<(String, usize)>>,
    }

    impl<'a> FakeStep<'a> {
        fn new(store: &'a Store) -> Self {
            FakeStep {
                store,
                failing: BTreeSet::new(),
                hang: BTreeSet::new(),
                built: Mutex::new(vec![]),
                running: AtomicUsize::new(0),
                max_running: AtomicUsize::new(0),
                lost: BTreeSet::new(),
                on: Mutex::new(vec![]),
            }
        }
    }

    impl BuildStep for FakeStep<'_> {
        type Built = Vec<StorePath>;

        fn build(
            &self,
            drv: &StorePath,
            graph: &Graph,
            machine: usize,
            events: &mut dyn FnMut(StepEvent<'_>),
            cancel: &CancelToken,
        ) -> Result<Vec<StorePath>, BuildFailure> {
            let name = abs(drv);
            let short = drv.name().trim_end_matches(".drv").to_string();
            self.on.lock().unwrap().push((short.clone(), machine));
            if self.lost.contains(&machine) {
                return Err(BuildFailure::Service {
                    drv: name,
                    source: ServiceError::Lost {
                        url: format!("grpc+http://m{machine}:1"),
                        message: "connection reset".into(),
                    },
                });
            }
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            events(StepEvent::Started {
                machine: "localhost",
            });
            events(StepEvent::Log(b"hello"));
            // Inputs are registered before a build starts.
            for input in graph.drvs[&name].input_derivations.keys() {
                for p in graph.outputs[input].values() {
                    assert!(self.store.get_path_info(p).unwrap().is_some(), "{p}");
                }
            }
            std::thread::sleep(Duration::from_millis(5));
            let result = if self.hang.contains(&short) {
                while !cancel.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(BuildFailure::Service {
                    drv: name.clone(),
                    source: ServiceError::Cancelled,
                })
            } else if self.failing.contains(&short) {
                Err(BuildFailure::Builder {
                    drv: name.clone(),
                    status: "failed with exit code 1".into(),
                    log_tail: vec!["hello".into()],
                    fixed_output: false,
                })
            } else {
                self.built.lock().unwrap().push(short);
                Ok(graph.outputs[&name].values().cloned().collect())
            };
            self.running.fetch_sub(1, Ordering::SeqCst);
            result
        }

        fn this_machine(&self, max_jobs: usize) -> Machine {
            Machine::this_machine(["x86_64-linux".into()].into(), BTreeSet::new(), max_jobs)
        }

        fn cannot_build(&self, drv: &StorePath, _: &Graph) -> BuildFailure {
            BuildFailure::NoLocalSlots(abs(drv))
        }

        fn register(&self, built: Vec<StorePath>) -> Result<(), BuildFailure> {
            for p in built {
                let (digest, size) = self.store.put_blob(&mut &b""[..])?;
                self.store.put_path_info(&info(
                    p,
                    Node::File {
                        digest,
                        size,
                        executable: false,
                    },
                ))?;
            }
            Ok(())
        }
    }

    /// A graph of `width` independent derivations under one top.
    fn fan(store: &Store, width: usize) -> StorePath {
        let leaves: Vec<StorePath> = (0..width)
            .map(|i| add_drv(store, &format!("leaf{i}"), &[]))
            .collect();
        let refs: Vec<&StorePath> = leaves.iter().collect();
        add_drv(store, "top", &refs)
    }

    fn run_with(
        store: &Store,
        step: &FakeStep,
        config: ExecConfig,
        cancel: &CancelToken,
        targets: &[StorePath],
    ) -> (Outcome, Vec<String>) {
        run_substituting(
            store,
            step,
            config,
            cancel,
            targets,
            &Substituters::default(),
        )
    }

    fn run_substituting(
        store: &Store,
        step: &FakeStep,
        config: ExecConfig,
        cancel: &CancelToken,
        targets: &[StorePath],
        substituters: &Substituters,
    ) -> (Outcome, Vec<String>) {
        let seen = Mutex::new(Vec::new());
        let record = |e: &Event<'_>| {
            let line = match e {
                Event::SubstitutionFinished { ok, .. } => format!("substituted {ok}"),
                Event::Planned { build, .. } => format!("planned {}", build.len()),
                Event::BuildFinished { .. } => "finished".into(),
                Event::BuildFailed { .. } => "failed".into(),
                Event::DependencyFailed { .. } => "dependency failed".into(),
                Event::Warning { message } => format!("warning: {message}"),
                _ => return,
            };
            seen.lock().unwrap().push(line);
        };
        let subscribers: [&dyn Subscriber; 1] = [&record];
        let outcome = Executor {
            store,
            step,
            substituters,
            config,
            subscribers: &subscribers,
            cancel,
        }
        .run(targets)
        .unwrap();
        (outcome, seen.into_inner().unwrap())
    }

    fn config(max_jobs: usize) -> ExecConfig {
        ExecConfig {
            max_jobs,
            builders: vec![],
            keep_going: false,
            dry_run: false,
            fallback: false,
        }
    }

    /// Registers an empty file at each output of the derivations of `graph` whose names
    /// contain `part`, in `to`.
    fn register_outputs(graph: &Graph, part: &str, to: &Store) {
        for (name, outs) in &graph.outputs {
            if name.contains(part) {
                for p in outs.values() {
                    let (digest, size) = to.put_blob(&mut &b""[..]).unwrap();
                    let node = Node::File {
                        digest,
                        size,
                        executable: false,
                    };
                    to.put_path_info(&info(p.clone(), node)).unwrap();
                }
            }
        }
    }

    #[test]
    fn substitutes_what_a_substituter_has_and_builds_the_rest() {
        let store = Store::memory();
        let top = fan(&store, 3);
        let graph = Graph::load(&store, std::slice::from_ref(&top)).unwrap();
        // Another store has the leaves' outputs, as if another machine had built them.
        let source = Store::memory();
        register_outputs(&graph, "leaf", &source);
        let substituters =
            Substituters::new(vec![Box::new(StoreSubstituter::new(Box::new(source)))]);
        let step = FakeStep::new(&store);
        let (o, events) = run_substituting(
            &store,
            &step,
            config(2),
            &CancelToken::new(),
            std::slice::from_ref(&top),
            &substituters,
        );
        assert!(o.success(), "{:?}", o.failures);
        assert_eq!(*step.built.lock().unwrap(), ["top"]);
        assert_eq!(o.summary.substituted.len(), 3);
        assert_eq!(o.planned_fetches.len(), 3);
        assert_eq!(events.first().unwrap(), "planned 1");
        assert_eq!(
            events.iter().filter(|e| *e == "substituted true").count(),
            3
        );
        for outs in graph.outputs.values() {
            for p in outs.values() {
                assert!(store.get_path_info(p).unwrap().is_some(), "{p}");
            }
        }
    }

    /// Claims to have everything, fails every copy.
    struct BrokenCache;

    impl Substituter for BrokenCache {
        fn name(&self) -> &str {
            "broken://"
        }
        fn has_all(&self, _: &[StorePath]) -> Result<bool, SubstituteError> {
            Ok(true)
        }
        fn substitute(
            &self,
            _: &[StorePath],
            _: &dyn StoreService,
            _: &mut (dyn FnMut(&StorePath) + Send),
            _: &CancelToken,
        ) -> Result<(), SubstituteError> {
            Err(SubstituteError::Unavailable { drv: "x".into() })
        }
    }

    #[test]
    fn a_failed_substitution_fails_unless_falling_back() {
        let store = Store::memory();
        let top = fan(&store, 2);
        let substituters = Substituters::new(vec![Box::new(BrokenCache)]);
        let step = FakeStep::new(&store);
        let (o, _) = run_substituting(
            &store,
            &step,
            config(1),
            &CancelToken::new(),
            std::slice::from_ref(&top),
            &substituters,
        );
        assert!(!o.success());
        assert!(step.built.lock().unwrap().is_empty());
        assert!(matches!(o.failures[0].1, DrvFailure::Substitute { .. }));
        let fallback = ExecConfig {
            fallback: true,
            ..config(1)
        };
        let (o, _) = run_substituting(
            &store,
            &step,
            fallback,
            &CancelToken::new(),
            &[top],
            &substituters,
        );
        assert!(o.success(), "{:?}", o.failures);
        assert_eq!(step.built.lock().unwrap().len(), 3);
    }

    #[test]
    fn builds_each_once_within_the_jobs_bound_and_reruns_build_nothing() {
        let store = Store::memory();
        let top = fan(&store, 12);
        let step = FakeStep::new(&store);
        let (o, events) = run_with(
            &store,
            &step,
            config(3),
            &CancelToken::new(),
            std::slice::from_ref(&top),
        );
        assert!(o.success(), "{:?}", o.failures);
        assert_eq!(o.exit_status(), 0);
        let mut built = step.built.lock().unwrap().clone();
        built.sort();
        built.dedup();
        assert_eq!(built.len(), 13);
        assert!(step.max_running.load(Ordering::SeqCst) <= 3);
        assert_eq!(events.first().unwrap(), "planned 13");
        assert_eq!(events.iter().filter(|e| *e == "finished").count(), 13);
        let step2 = FakeStep::new(&store);
        let (o, _) = run_with(&store, &step2, config(3), &CancelToken::new(), &[top]);
        assert!(o.success());
        assert!(step2.built.lock().unwrap().is_empty());
        assert!(o.planned_builds.is_empty());
    }

    fn builder(url: &str, jobs: usize) -> Machine {
        crate::machines::parse(&format!("{url} - - {jobs}"), "x86_64-linux")
            .unwrap()
            .remove(0)
    }

    #[test]
    fn a_lost_builder_s_builds_finish_on_the_other_one() {
        let store = Store::memory();
        let top = fan(&store, 8);
        let mut step = FakeStep::new(&store);
        step.lost = [1].into();
        let mut c = config(0);
        c.builders = vec![
            builder("grpc+http://m1:1", 2),
            builder("grpc+http://m2:1", 2),
        ];
        let (o, events) = run_with(&store, &step, c, &CancelToken::new(), &[top]);
        assert!(o.success(), "{:?}", o.failures);
        let on = step.on.lock().unwrap().clone();
        // Machine 1 got builds until it was found lost (one per slot at most), then
        // nothing; every derivation was built on machine 2 in the end, once.
        let on_lost: Vec<&(String, usize)> = on.iter().filter(|(_, m)| *m == 1).collect();
        assert!(!on_lost.is_empty() && on_lost.len() <= 2, "{on:?}");
        let mut built = step.built.lock().unwrap().clone();
        built.sort();
        assert_eq!(built.len(), 9);
        built.dedup();
        assert_eq!(built.len(), 9);
        assert!(on.iter().all(|(_, m)| *m == 1 || *m == 2), "{on:?}");
        assert!(
            events.iter().any(|e| e.contains("on another machine")),
            "{events:?}"
        );
    }

    #[test]
    fn a_failed_remote_build_is_not_retried_and_no_machine_is_a_failure() {
        let store = Store::memory();
        let top = fan(&store, 2);
        let mut step = FakeStep::new(&store);
        step.failing = ["leaf0".to_string()].into();
        let mut c = config(0);
        c.builders = vec![
            builder("grpc+http://m1:1", 1),
            builder("grpc+http://m2:1", 1),
        ];
        let (o, _) = run_with(
            &store,
            &step,
            c,
            &CancelToken::new(),
            std::slice::from_ref(&top),
        );
        assert!(!o.success());
        let on = step.on.lock().unwrap().clone();
        assert_eq!(on.iter().filter(|(d, _)| d == "leaf0").count(), 1, "{on:?}");
        assert_eq!(o.exit_status(), 100);
        // With every builder lost, what is left fails with the builders named.
        let mut step = FakeStep::new(&store);
        step.lost = [1].into();
        let mut c = config(0);
        c.builders = vec![builder("grpc+http://m1:1", 1)];
        let (o, _) = run_with(&store, &step, c, &CancelToken::new(), &[top]);
        let messages: Vec<String> = o.failures.iter().map(|(_, f)| f.to_string()).collect();
        assert!(
            messages[0].contains(
                "every builder that can build it is down, unreachable or lost (grpc+http://m1:1)"
            ),
            "{messages:?}"
        );
    }

    #[test]
    fn failure_with_and_without_keep_going() {
        let store = Store::memory();
        let top = fan(&store, 6);
        let mut step = FakeStep::new(&store);
        step.failing.insert("leaf0".into());
        let (o, events) = run_with(
            &store,
            &step,
            config(1),
            &CancelToken::new(),
            std::slice::from_ref(&top),
        );
        assert_eq!(o.exit_status(), 100);
        // leaf0 is first in path order? Not necessarily: only one build ran after it failed
        // at most, and nothing started after the failure.
        assert!(events.contains(&"failed".to_string()));
        let built_before = step.built.lock().unwrap().len();
        assert!(built_before < 6, "stopped after the failure");
        assert!(!o.summary.not_started.is_empty() || built_before == 5);

        let mut step = FakeStep::new(&store);
        step.failing.insert("leaf0".into());
        let mut c = config(2);
        c.keep_going = true;
        let (o, events) = run_with(&store, &step, c, &CancelToken::new(), &[top]);
        assert_eq!(o.exit_status(), 100);
        assert_eq!(o.failures.len(), 1);
        assert_eq!(o.summary.dependency_failed.len(), 1, "top");
        assert!(events.contains(&"dependency failed".to_string()));
        // Every other leaf is valid now.
        let valid = (1..6)
            .filter(|i| {
                let leaf = add_drv(&store, &format!("leaf{i}"), &[]);
                let d = read_derivation(&store, &leaf).unwrap();
                let out = &request::output_paths(&d, "").unwrap()["out"];
                store.get_path_info(out).unwrap().is_some()
            })
            .count();
        assert_eq!(valid, 5);
    }

    #[test]
    fn cancellation_stops_running_builds_and_keeps_what_finished() {
        let store = Store::memory();
        let a = add_drv(&store, "a", &[]);
        let b = add_drv(&store, "b", &[&a]);
        let h = add_drv(&store, "h", &[]);
        let top = add_drv(&store, "top", &[&b, &h]);
        let mut step = FakeStep::new(&store);
        step.hang.insert("h".into());
        let cancel = CancelToken::new();
        // Cancel once a and b are registered (h is hanging meanwhile).
        let b_out = request::output_paths(&read_derivation(&store, &b).unwrap(), "").unwrap()
            ["out"]
            .clone();
        let (o, _) = std::thread::scope(|s| {
            s.spawn(|| {
                while store.get_path_info(&b_out).unwrap().is_none() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                cancel.cancel();
            });
            run_with(
                &store,
                &step,
                config(2),
                &cancel,
                std::slice::from_ref(&top),
            )
        });
        assert!(o.summary.cancelled);
        assert!(o.failures.is_empty(), "an interruption is not a failure");
        assert_eq!(o.exit_status(), 1);
        assert_eq!(o.summary.built.len(), 2);
        // A rerun builds only what is missing.
        let step2 = FakeStep::new(&store);
        let (o, _) = run_with(&store, &step2, config(2), &CancelToken::new(), &[top]);
        assert!(o.success());
        let mut built = step2.built.lock().unwrap().clone();
        built.sort();
        assert_eq!(built, ["h", "top"]);
    }

    #[test]
    fn dry_run_builds_nothing() {
        let store = Store::memory();
        let top = fan(&store, 3);
        let step = FakeStep::new(&store);
        let mut c = config(2);
        c.dry_run = true;
        let (o, _) = run_with(&store, &step, c, &CancelToken::new(), &[top]);
        assert_eq!(o.planned_builds.len(), 4);
        assert!(step.built.lock().unwrap().is_empty());
    }
}
