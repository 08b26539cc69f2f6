//! Building one derivation, and the sequential driver.
//!
//! [`Driver::build_checked`] is the one way a derivation is built (system and features,
//! input closure, request, build service, log, output checks) and [`Driver::register`]
//! registers what it produced; the executor ([`crate::executor`], through the
//! [`BuildStep`] impl) and the sequential [`Driver::build`] (used for `--check`, which
//! rebuilds valid derivations) both call them.
//!
//! A derivation's outputs are registered only after every check passed, so a failed build
//! registers nothing.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Read;

use thiserror::Error;
use tvix_build::{BuildError as ServiceError, BuildEvent, BuildRequest, BuildService, CancelToken};
use tvix_store::castore::{Node, StoreError};
use tvix_store::pathinfo::PathInfo;
use tvix_store::store_path::validate_name;
use tvix_store::{Derivation, DerivationError, StorePath, StoreService};

use crate::checks::{self, BuiltOutput, CheckError};
use crate::closure::{self, ClosureError};
use crate::executor::{BuildStep, Graph, StepEvent};
use crate::log::{LogError, LogStore};
use crate::machines::Machine;
use crate::request::{self, ParsedAttrs, RequestError, RequestInput, RequestSettings};

/// How many log lines a failure keeps.
pub const LOG_TAIL_LINES: usize = 10;

/// Settings of the machine and of this run.
#[derive(Clone, Debug, Default)]
pub struct BuildSettings {
    /// What goes into each request (cores, time limits, keep-failed).
    pub request: RequestSettings,
    /// The system of this machine (Nix's `system`).
    pub system: String,
    /// Other systems it builds for (Nix's `extra-platforms`).
    pub extra_platforms: Vec<String>,
    /// Its features (Nix's `system-features`).
    pub system_features: BTreeSet<String>,
    /// Rebuild the requested derivations (whose outputs must be valid) and compare.
    pub check: bool,
}

/// What the driver reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// These derivations will be built, in this order.
    Planned(&'a [String]),
    /// A derivation's build starts.
    Building(&'a str),
    /// A line of its log (without the newline).
    Log(&'a [u8]),
    /// The failed build's directory was kept here.
    KeptBuildDir(&'a str),
}

/// Why a build did not succeed.
#[derive(Debug, Error)]
pub enum BuildFailure {
    /// A `.drv` file is not in the store.
    #[error("path '{0}' is not valid")]
    NotValid(String),
    /// A `.drv` file is not a regular file of the store.
    #[error("derivation '{0}' is not a regular file")]
    NotAFile(String),
    /// A `.drv` file does not parse.
    #[error("cannot parse derivation '{drv}': {source}")]
    Parse {
        /// The derivation.
        drv: String,
        /// The parse error.
        source: DerivationError,
    },
    /// An output name is not valid.
    #[error("derivation '{drv}' has an invalid output name '{output}'")]
    OutputName {
        /// The derivation.
        drv: String,
        /// The output name.
        output: String,
    },
    /// The derivations depend on each other in a cycle.
    #[error("cycle detected in the derivation graph at '{0}'")]
    Cycle(String),
    /// The machine cannot build the derivation (system or features).
    #[error("a '{system}' with features {{{required}}} is required to build '{drv}', but I am a '{my_system}' with features {{{my_features}}}")]
    CannotBuild {
        /// The derivation's system.
        system: String,
        /// Its required features.
        required: String,
        /// The derivation.
        drv: String,
        /// This machine's system.
        my_system: String,
        /// This machine's features.
        my_features: String,
    },
    /// This machine could build the derivation, but `max-jobs` is 0 and no remote
    /// builder can.
    #[error("unable to build '{0}': no remote builder can build it and this machine does not build ('max-jobs' is 0); either increase '--max-jobs' or add a builder that can")]
    NoLocalSlots(String),
    /// Every machine that could build the derivation is down (unreachable from the start,
    /// or lost during the run).
    #[error("cannot build '{drv}': every builder that can build it is down, unreachable or lost ({machines})")]
    MachinesLost {
        /// The derivation.
        drv: String,
        /// The lost builders.
        machines: String,
    },
    /// The builder failed (non-zero exit, signal).
    #[error("builder for '{drv}' {status}")]
    Builder {
        /// The derivation.
        drv: String,
        /// `failed with exit code N`, `failed due to signal N`.
        status: String,
        /// The last lines of its log.
        log_tail: Vec<String>,
        /// Whether it is a fixed-output derivation (whose failures Nix deems transient).
        fixed_output: bool,
    },
    /// The build ran too long or was silent too long.
    #[error("building of '{drv}!{outputs}' from .drv file timed out after {secs} seconds{}", if *.silent { " of silence" } else { "" })]
    TimedOut {
        /// The derivation.
        drv: String,
        /// The outputs wanted (`out` when the derivation has it, as `nix-build` wants).
        outputs: String,
        /// The limit.
        secs: u64,
        /// Whether it was the silence limit.
        silent: bool,
    },
    /// An output was not produced.
    #[error("builder for '{drv}' failed to produce output path for output '{output}' at '{path}'")]
    MissingOutput {
        /// The derivation.
        drv: String,
        /// The output name.
        output: String,
        /// Its path.
        path: String,
    },
    /// An output is group- or world-writable or not owned by the build.
    #[error("suspicious ownership or permission on '{path}' for output '{output}'; rejecting this build output")]
    Suspicious {
        /// The output's path.
        path: String,
        /// The output name.
        output: String,
    },
    /// `--check`: the outputs of the derivation are not all valid.
    #[error("some outputs of '{0}' are not valid, so checking is not possible")]
    CheckNotPossible(String),
    /// `--check`: a rebuilt output differs.
    #[error("derivation '{drv}' may not be deterministic: output '{output}' differs")]
    NotDeterministic {
        /// The derivation.
        drv: String,
        /// The output's path.
        output: String,
    },
    /// The outputs failed a check.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// The derivation cannot be turned into a request.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The input closure cannot be computed.
    #[error(transparent)]
    Closure(#[from] ClosureError),
    /// The build service failed otherwise.
    #[error("building '{drv}': {source}")]
    Service {
        /// The derivation.
        drv: String,
        /// The error.
        source: ServiceError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log could not be kept.
    #[error(transparent)]
    Log(#[from] LogError),
}

impl BuildFailure {
    /// The exit status `nix-build` gives this failure: 100 for a failed builder (Nix
    /// deems a failing fixed-output builder transient: 1), 101 for a timeout, 102 for a
    /// hash mismatch, 104 for a `--check` mismatch, 1 otherwise.
    pub fn exit_status(&self) -> i32 {
        match self {
            BuildFailure::Builder {
                fixed_output: false,
                ..
            } => 100,
            BuildFailure::TimedOut { .. } => 101,
            BuildFailure::Check(CheckError::HashMismatch { .. }) => 102,
            BuildFailure::NotDeterministic { .. } => 104,
            _ => 1,
        }
    }
}

/// The description `strsignal` gives a signal on Linux (what Nix prints).
fn signal_name(n: i32) -> String {
    let name = match n {
        1 => "Hangup",
        2 => "Interrupt",
        3 => "Quit",
        4 => "Illegal instruction",
        5 => "Trace/breakpoint trap",
        6 => "Aborted",
        7 => "Bus error",
        8 => "Floating point exception",
        9 => "Killed",
        10 => "User defined signal 1",
        11 => "Segmentation fault",
        12 => "User defined signal 2",
        13 => "Broken pipe",
        14 => "Alarm clock",
        15 => "Terminated",
        24 => "CPU time limit exceeded",
        25 => "File size limit exceeded",
        31 => "Bad system call",
        _ => return format!("Unknown signal {n}"),
    };
    name.to_string()
}

impl BuildFailure {
    /// Whether the build's machine was lost (the build is not at fault and may be
    /// started elsewhere).
    pub fn is_lost(&self) -> bool {
        matches!(
            self,
            BuildFailure::Service {
                source: ServiceError::Lost { .. },
                ..
            }
        )
    }

    /// The message as Nix shows a builder's failure when the build log was not printed:
    /// followed by the last lines of the log and how to see all of it
    /// (`LOG_COMMAND DRV`).
    pub fn message_with_log_tail(&self, log_command: &str) -> String {
        match self {
            BuildFailure::Builder { drv, log_tail, .. } if !log_tail.is_empty() => {
                let mut m = format!("{self};\nlast {} log lines:\n", log_tail.len());
                for line in log_tail {
                    m.push_str("> ");
                    m.push_str(line);
                    m.push('\n');
                }
                m.push_str(&format!("For full logs, run '{log_command} {drv}'."));
                m
            }
            _ => self.to_string(),
        }
    }
}

/// A derivation read from the store.
#[derive(Clone, Debug)]
pub struct LoadedDrv {
    /// Its `.drv` store path.
    pub path: StorePath,
    /// The derivation.
    pub drv: Derivation,
}

fn abs(p: &StorePath) -> String {
    format!("{}/{p}", request::SANDBOX_STORE_DIR)
}

/// Reads and parses a `.drv` file from the store, and checks its output names.
pub fn read_derivation<S: StoreService + ?Sized>(
    store: &S,
    path: &StorePath,
) -> Result<Derivation, BuildFailure> {
    let info = store
        .get_path_info(path)?
        .ok_or_else(|| BuildFailure::NotValid(abs(path)))?;
    let Node::File { digest, .. } = info.node else {
        return Err(BuildFailure::NotAFile(abs(path)));
    };
    let mut bytes = Vec::new();
    store
        .open_blob(&digest)?
        .ok_or(StoreError::BlobNotFound(digest))?
        .read_to_end(&mut bytes)
        .map_err(StoreError::from_io)?;
    let drv = Derivation::from_aterm_bytes(&bytes).map_err(|source| BuildFailure::Parse {
        drv: abs(path),
        source,
    })?;
    for name in drv.outputs.keys() {
        if name.is_empty() || validate_name(name).is_err() {
            return Err(BuildFailure::OutputName {
                drv: abs(path),
                output: name.clone(),
            });
        }
    }
    Ok(drv)
}

/// Loads the derivations `targets` need and returns them inputs first. A cycle (which a
/// real store cannot hold, but a corrupt one might) is an error.
pub fn load_graph<S: StoreService + ?Sized>(
    store: &S,
    targets: &[StorePath],
) -> Result<Vec<LoadedDrv>, BuildFailure> {
    let mut drvs: BTreeMap<StorePath, Derivation> = BTreeMap::new();
    let mut queue: VecDeque<StorePath> = targets.iter().cloned().collect();
    while let Some(p) = queue.pop_front() {
        if drvs.contains_key(&p) {
            continue;
        }
        let drv = read_derivation(store, &p)?;
        for input in drv.input_derivations.keys() {
            let ip = parse_abs(input)?;
            if !drvs.contains_key(&ip) {
                queue.push_back(ip);
            }
        }
        drvs.insert(p, drv);
    }
    // Depth-first post-order over the inputs, with an explicit stack.
    let mut state: BTreeMap<StorePath, u8> = BTreeMap::new();
    let mut order = Vec::new();
    for t in targets {
        if state.contains_key(t) {
            continue;
        }
        let inputs_of = |p: &StorePath| -> Result<Vec<StorePath>, BuildFailure> {
            drvs[p]
                .input_derivations
                .keys()
                .map(|k| parse_abs(k))
                .collect()
        };
        state.insert(t.clone(), 1);
        let mut stack = vec![(t.clone(), inputs_of(t)?)];
        while let Some((p, rest)) = stack.last_mut() {
            match rest.pop() {
                Some(d) => match state.get(&d) {
                    None => {
                        state.insert(d.clone(), 1);
                        let dd = inputs_of(&d)?;
                        stack.push((d, dd));
                    }
                    Some(1) => return Err(BuildFailure::Cycle(abs(&d))),
                    _ => {}
                },
                None => {
                    let p = p.clone();
                    state.insert(p.clone(), 2);
                    stack.pop();
                    order.push(p);
                }
            }
        }
    }
    Ok(order
        .into_iter()
        .map(|p| {
            let drv = drvs[&p].clone();
            LoadedDrv { path: p, drv }
        })
        .collect())
}

fn parse_abs(p: &str) -> Result<StorePath, BuildFailure> {
    p.strip_prefix("/nix/store/")
        .and_then(|b| StorePath::from_base_name(b).ok())
        .ok_or_else(|| BuildFailure::NotValid(p.to_string()))
}

/// A build whose outputs passed every check, ready to be registered.
#[derive(Debug)]
pub struct Checked {
    /// The derivation (each output's deriver).
    pub deriver: StorePath,
    /// The outputs, in the order they must be registered (empty after `--check`).
    pub outputs: Vec<BuiltOutput>,
    /// The content address of a fixed output (`fixed:[r:]algo:hash`).
    pub ca: Option<String>,
}

impl BuildStep for Driver<'_> {
    type Built = Checked;

    fn build(
        &self,
        drv: &StorePath,
        graph: &Graph,
        machine: usize,
        events: &mut dyn FnMut(StepEvent<'_>),
        cancel: &CancelToken,
    ) -> Result<Checked, BuildFailure> {
        let name = abs(drv);
        let d = graph.drvs.get(&name).ok_or(BuildFailure::NotValid(name))?;
        let input_drv = |p: &str| graph.drvs.get(p);
        if machine == 0 {
            return self.build_checked(drv, d, &input_drv, events, cancel);
        }
        // The plan chose a builder that can build it: this machine's system and
        // features do not matter.
        match self.builders.get(machine - 1) {
            Some(Ok(service)) => self.build_on(&**service, drv, d, &input_drv, events, cancel),
            Some(Err(e)) => Err(BuildFailure::Service {
                drv: abs(drv),
                source: ServiceError::Lost {
                    url: String::new(),
                    message: e.to_string(),
                },
            }),
            None => Err(BuildFailure::Service {
                drv: abs(drv),
                source: ServiceError::Sandbox(format!("no builder number {machine}")),
            }),
        }
    }

    fn register(&self, built: Checked) -> Result<(), BuildFailure> {
        Driver::register(self, &built)
    }

    fn this_machine(&self, max_jobs: usize) -> Machine {
        let s = self.settings;
        let mut systems: BTreeSet<String> = s.extra_platforms.iter().cloned().collect();
        systems.insert(s.system.clone());
        Machine::this_machine(systems, s.system_features.clone(), max_jobs)
    }

    fn unavailable(&self, machine: usize) -> Option<String> {
        match self.builders.get(machine.checked_sub(1)?) {
            Some(Err(e)) => Some(e.to_string()),
            _ => None,
        }
    }

    fn cannot_build(&self, drv: &StorePath, graph: &Graph) -> BuildFailure {
        let name = abs(drv);
        let Some(d) = graph.drvs.get(&name) else {
            return BuildFailure::NotValid(name);
        };
        match self.can_build(d, &name) {
            Err(e) => e,
            Ok(()) => BuildFailure::NoLocalSlots(name),
        }
    }
}

/// A remote builder as the run opened it: its service, or why it could not be reached.
pub type OpenBuilder = Result<Box<dyn BuildService>, ServiceError>;

/// The sequential driver.
pub struct Driver<'a> {
    /// The store holding the derivations, their inputs, and receiving the outputs.
    pub store: &'a dyn StoreService,
    /// Where builds run on this machine.
    pub service: &'a dyn BuildService,
    /// The remote builders (Nix's `builders`), in their order: machine `i` of the plan
    /// is `builders[i - 1]`.
    pub builders: &'a [OpenBuilder],
    /// Where logs are kept (none: not kept).
    pub logs: Option<&'a LogStore>,
    /// Settings.
    pub settings: &'a BuildSettings,
    /// The caller's environment (for fixed-output derivations' `impureEnvVars`); `Sync`
    /// because the executor builds on several threads.
    pub caller_env: &'a (dyn Fn(&str) -> Option<String> + Sync),
}

impl Driver<'_> {
    /// Whether every output of `drv` is valid in the store.
    fn all_valid(&self, drv: &Derivation, drv_path: &str) -> Result<bool, BuildFailure> {
        for p in request::output_paths(drv, drv_path)?.values() {
            if self.store.get_path_info(p)?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Builds `targets` (and what they need) and returns each target's output paths by
    /// output name.
    pub fn build(
        &self,
        targets: &[StorePath],
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<Vec<BTreeMap<String, StorePath>>, BuildFailure> {
        let graph = load_graph(self.store, targets)?;
        let by_path: BTreeMap<String, &Derivation> =
            graph.iter().map(|d| (abs(&d.path), &d.drv)).collect();
        let target_set: BTreeSet<&StorePath> = targets.iter().collect();
        let mut todo = Vec::new();
        for d in &graph {
            let p = abs(&d.path);
            let valid = self.all_valid(&d.drv, &p)?;
            if self.settings.check && target_set.contains(&d.path) {
                if !valid {
                    return Err(BuildFailure::CheckNotPossible(p));
                }
                todo.push(d);
            } else if !valid {
                todo.push(d);
            }
        }
        if !todo.is_empty() {
            let names: Vec<String> = todo.iter().map(|d| abs(&d.path)).collect();
            events(Event::Planned(&names));
        }
        for d in todo {
            self.build_one(d, &by_path, events)?;
        }
        targets
            .iter()
            .map(|t| {
                let d = graph
                    .iter()
                    .find(|d| &d.path == t)
                    .ok_or_else(|| BuildFailure::NotValid(abs(t)))?;
                Ok(request::output_paths(&d.drv, &abs(t))?)
            })
            .collect()
    }

    /// Checks that this machine can build `drv` (Nix's `canBuildLocally`).
    fn can_build(&self, drv: &Derivation, drv_path: &str) -> Result<(), BuildFailure> {
        let required = ParsedAttrs::new(drv, drv_path)?.required_system_features(drv_path)?;
        let s = self.settings;
        let system_ok = drv.system == s.system
            || s.extra_platforms.contains(&drv.system)
            || drv.builder.starts_with("builtin:");
        if system_ok && required.iter().all(|f| s.system_features.contains(f)) {
            return Ok(());
        }
        let join = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(", ");
        Err(BuildFailure::CannotBuild {
            system: drv.system.clone(),
            required: join(&required),
            drv: drv_path.to_string(),
            my_system: s.system.clone(),
            my_features: join(&s.system_features),
        })
    }

    /// The build request of a derivation whose inputs are all valid: its input closure
    /// read from the store, then [`request::derivation_to_request`]. What
    /// [`Driver::build_checked`] runs, and what the REPL's `:sh` takes its environment
    /// from.
    pub fn request_for<'d>(
        &self,
        path: &StorePath,
        drv: &Derivation,
        input_drv: &dyn Fn(&str) -> Option<&'d Derivation>,
    ) -> Result<BuildRequest, BuildFailure> {
        Ok(self.request_and_closure(path, drv, input_drv)?.0)
    }

    /// [`Driver::request_for`], and the input closure it was made from.
    fn request_and_closure<'d>(
        &self,
        path: &StorePath,
        drv: &Derivation,
        input_drv: &dyn Fn(&str) -> Option<&'d Derivation>,
    ) -> Result<(BuildRequest, Vec<PathInfo>), BuildFailure> {
        let drv_path = abs(path);
        let roots = closure::input_roots(drv, &drv_path, input_drv)?;
        let closure = closure::closure_of(self.store, &roots)?;
        let inputs = closure::as_inputs(&closure);
        let references: BTreeMap<StorePath, Vec<StorePath>> = closure
            .iter()
            .map(|i| (i.store_path.clone(), i.references.clone()))
            .collect();
        let req = request::derivation_to_request(&RequestInput {
            drv,
            drv_path: &drv_path,
            closure: &inputs,
            references: &references,
            settings: &self.settings.request,
            caller_env: self.caller_env,
        })?;
        Ok((req, closure))
    }

    /// Builds one derivation whose inputs are all valid and checks its outputs: the one
    /// way a derivation is built, for the sequential [`Driver::build`] and for the
    /// executor ([`crate::executor`]) alike. `input_drv` finds input derivations by
    /// `.drv` path. Nothing is registered here ([`Driver::register`] does it), so the
    /// executor can register on its own thread; with `--check` the outputs are compared
    /// with the valid ones here and the result registers nothing.
    pub fn build_checked<'d>(
        &self,
        path: &StorePath,
        drv: &Derivation,
        input_drv: &dyn Fn(&str) -> Option<&'d Derivation>,
        events: &mut dyn FnMut(StepEvent<'_>),
        cancel: &CancelToken,
    ) -> Result<Checked, BuildFailure> {
        self.can_build(drv, &abs(path))?;
        self.build_on(self.service, path, drv, input_drv, events, cancel)
    }

    /// [`Driver::build_checked`] on `service`, which can build the derivation.
    fn build_on<'d>(
        &self,
        service: &dyn BuildService,
        path: &StorePath,
        drv: &Derivation,
        input_drv: &dyn Fn(&str) -> Option<&'d Derivation>,
        events: &mut dyn FnMut(StepEvent<'_>),
        cancel: &CancelToken,
    ) -> Result<Checked, BuildFailure> {
        let drv_path = abs(path);
        let (req, closure) = self.request_and_closure(path, drv, input_drv)?;

        let mut log: Vec<u8> = Vec::new();
        let mut tail: VecDeque<String> = VecDeque::new();
        let mut kept: Option<String> = None;
        let result = {
            let mut on_event = |e: BuildEvent| match e {
                BuildEvent::Log(line) => {
                    events(StepEvent::Log(&line));
                    log.extend_from_slice(&line);
                    log.push(b'\n');
                    if tail.len() == LOG_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(String::from_utf8_lossy(&line).into_owned());
                }
                BuildEvent::KeptBuildDir(dir) => kept = Some(dir),
                BuildEvent::Started { machine } => events(StepEvent::Started { machine: &machine }),
                BuildEvent::Phase(phase) => events(StepEvent::Phase(&phase)),
            };
            service.build(&req, &mut on_event, cancel)
        };
        if let Some(logs) = self.logs {
            logs.write(path, &log)?;
        }
        if let Some(dir) = &kept {
            events(StepEvent::KeptBuildDir(dir));
        }
        let outputs = request::output_paths(drv, &drv_path)?;
        let result = result.map_err(|e| {
            self.service_failure(e, drv, &drv_path, &outputs, tail.into_iter().collect())
        })?;

        // Resolve the references: needles are the hash parts of the closure and outputs.
        let by_hash: BTreeMap<String, StorePath> = closure
            .iter()
            .map(|i| i.store_path.clone())
            .chain(outputs.values().cloned())
            .map(|p| (p.hash_part(), p))
            .collect();
        let name_of: BTreeMap<String, &String> = outputs.iter().map(|(n, p)| (abs(p), n)).collect();
        let mut built = Vec::new();
        for o in result.outputs {
            let Some(name) = name_of.get(&o.path) else {
                return Err(BuildFailure::Service {
                    drv: drv_path,
                    source: ServiceError::Sandbox(format!("unexpected output '{}'", o.path)),
                });
            };
            let path = outputs[*name].clone();
            built.push(BuiltOutput {
                name: (*name).clone(),
                path,
                node: o.node,
                nar_sha256: o.nar_sha256,
                nar_size: o.nar_size,
                references: o
                    .references
                    .iter()
                    .filter_map(|h| by_hash.get(h).cloned())
                    .collect(),
            });
        }
        for (name, path) in &outputs {
            if !built.iter().any(|b| &b.name == name) {
                return Err(BuildFailure::MissingOutput {
                    drv: drv_path.clone(),
                    output: name.clone(),
                    path: abs(path),
                });
            }
        }

        checks::check_fixed_output(self.store, drv, &drv_path, &built)?;
        let order = checks::registration_order(&drv_path, &built)?;
        checks::check_references(self.store, drv, &drv_path, &built)?;

        if self.settings.check {
            for b in &built {
                let old = self.store.get_path_info(&b.path)?;
                if old.map(|i| i.nar_sha256) != Some(b.nar_sha256) {
                    return Err(BuildFailure::NotDeterministic {
                        drv: drv_path.clone(),
                        output: abs(&b.path),
                    });
                }
            }
            // Compared: nothing to register.
            return Ok(Checked {
                deriver: path.clone(),
                outputs: Vec::new(),
                ca: None,
            });
        }

        let ca = if drv.is_fixed_output() {
            match drv.outputs.get("out").and_then(|o| o.fixed_hash()) {
                Some(Ok((method, hash))) => Some(format!(
                    "fixed:{}{}",
                    match method {
                        tvix_store::FileIngestionMethod::Flat => "",
                        tvix_store::FileIngestionMethod::Recursive => "r:",
                    },
                    hash.to_prefixed(tvix_store::hash::HashEncoding::Nix32)
                )),
                _ => None,
            }
        } else {
            None
        };
        // Outputs referring to others of the same build are registered after them.
        let mut slots: Vec<Option<BuiltOutput>> = built.into_iter().map(Some).collect();
        let outputs = order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take))
            .collect();
        Ok(Checked {
            deriver: path.clone(),
            outputs,
            ca,
        })
    }

    /// Registers the outputs of a checked build, in their order (a path is registered
    /// only after those it refers to).
    pub fn register(&self, checked: &Checked) -> Result<(), BuildFailure> {
        for b in &checked.outputs {
            self.store.put_path_info(&PathInfo {
                store_path: b.path.clone(),
                node: b.node.clone(),
                nar_sha256: b.nar_sha256,
                nar_size: b.nar_size,
                references: b.references.iter().cloned().collect(),
                deriver: Some(checked.deriver.clone()),
                signatures: vec![],
                ca: checked.ca.clone(),
            })?;
        }
        Ok(())
    }

    fn build_one(
        &self,
        d: &LoadedDrv,
        by_path: &BTreeMap<String, &Derivation>,
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), BuildFailure> {
        let drv_path = abs(&d.path);
        let mut on_step = |e: StepEvent<'_>| match e {
            StepEvent::Started { .. } => events(Event::Building(&drv_path)),
            StepEvent::Log(line) => events(Event::Log(line)),
            StepEvent::KeptBuildDir(dir) => events(Event::KeptBuildDir(dir)),
            StepEvent::Phase(_) => {}
        };
        let checked = self.build_checked(
            &d.path,
            &d.drv,
            &|p| by_path.get(p).copied(),
            &mut on_step,
            &CancelToken::new(),
        )?;
        self.register(&checked)
    }

    fn service_failure(
        &self,
        e: ServiceError,
        drv: &Derivation,
        drv_path: &str,
        outputs: &BTreeMap<String, StorePath>,
        log_tail: Vec<String>,
    ) -> BuildFailure {
        let builder = |status: String| BuildFailure::Builder {
            drv: drv_path.to_string(),
            status,
            log_tail: log_tail.clone(),
            fixed_output: drv.is_fixed_output(),
        };
        let name_of = |path: &str| {
            outputs
                .iter()
                .find(|(_, p)| abs(p) == path)
                .map(|(n, _)| n.clone())
                .unwrap_or_default()
        };
        let wanted = if outputs.contains_key("out") {
            "out".to_string()
        } else {
            outputs.keys().cloned().collect::<Vec<_>>().join(",")
        };
        match e {
            ServiceError::ExitCode(n) => builder(format!("failed with exit code {n}")),
            ServiceError::Signal(n) => {
                builder(format!("failed due to signal {n} ({})", signal_name(n)))
            }
            ServiceError::TimedOut(secs) => BuildFailure::TimedOut {
                drv: drv_path.to_string(),
                outputs: wanted,
                secs,
                silent: false,
            },
            ServiceError::Silent(secs) => BuildFailure::TimedOut {
                drv: drv_path.to_string(),
                outputs: wanted,
                secs,
                silent: true,
            },
            ServiceError::BadOutput { path, reason }
                if reason == "suspicious ownership or permission" =>
            {
                BuildFailure::Suspicious {
                    output: name_of(&path),
                    path,
                }
            }
            ServiceError::MissingOutput(path) => {
                let output = name_of(&path);
                BuildFailure::MissingOutput {
                    drv: drv_path.to_string(),
                    output,
                    path,
                }
            }
            source => BuildFailure::Service {
                drv: drv_path.to_string(),
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tvix_build::{BuildOutput, BuildResult, Capabilities};
    use tvix_store::castore::{BlobService, Store};
    use tvix_store::derivation::Output;
    use tvix_store::pathinfo::PathInfoService;
    use tvix_store::StoreDir;

    /// A fake service: each output becomes a file with its path as contents (referring
    /// to every needle in `refs`), or fails as told.
    struct Fake<'a> {
        store: &'a Store,
        fail: Option<fn() -> ServiceError>,
        requests: Mutex<Vec<BuildRequest>>,
        refs: Vec<String>,
        salt: &'static str,
    }

    impl BuildService for Fake<'_> {
        fn capabilities(&self) -> Result<Capabilities, ServiceError> {
            Ok(Capabilities::default())
        }
        fn build(
            &self,
            r: &BuildRequest,
            events: &mut dyn FnMut(BuildEvent),
            _: &CancelToken,
        ) -> Result<BuildResult, ServiceError> {
            self.requests.lock().unwrap().push(r.clone());
            events(BuildEvent::Log(b"hello".to_vec()));
            if let Some(f) = self.fail {
                return Err(f());
            }
            let mut outputs = Vec::new();
            for o in &r.outputs {
                let contents = format!("{o}{}", self.salt);
                let (digest, size) = self.store.put_blob(&mut contents.as_bytes())?;
                let node = Node::File {
                    digest,
                    size,
                    executable: false,
                };
                let nar = tvix_store::castore::nar::write_nar(self.store, &node, Vec::new())?;
                let h = tvix_store::NixHash::sha256(&nar);
                let mut references: BTreeSet<String> = self
                    .refs
                    .iter()
                    .filter(|n| r.needles.contains(n))
                    .cloned()
                    .collect();
                references.insert(o[11..43].to_string());
                outputs.push(BuildOutput {
                    path: o.clone(),
                    node,
                    nar_sha256: h.digest().try_into().unwrap(),
                    nar_size: nar.len() as u64,
                    references,
                });
            }
            Ok(BuildResult { outputs })
        }
    }

    fn add_drv(
        store: &Store,
        name: &str,
        inputs: &[&StorePath],
        env: &[(&str, &str)],
    ) -> StorePath {
        let sd = StoreDir::default();
        let mut d = Derivation {
            system: "x86_64-linux".into(),
            builder: "/nix/store/00000000000000000000000000000000-sh/bin/sh".into(),
            ..Default::default()
        };
        d.outputs.insert("out".into(), Output::default());
        for i in inputs {
            d.input_derivations
                .insert(abs(i), ["out".to_string()].into());
        }
        d.env.insert("name".into(), name.into());
        for (k, v) in env {
            d.env.insert(k.to_string(), v.to_string());
        }
        let input_drvs: BTreeMap<String, Derivation> = inputs
            .iter()
            .map(|i| (abs(i), read_derivation(store, i).unwrap()))
            .collect();
        let mut hashes = BTreeMap::new();
        for (p, dd) in &input_drvs {
            hashes.insert(p.clone(), dd.hash_derivation_modulo(|_| None).ok());
        }
        d.calculate_output_paths(&sd, name, |p| hashes.get(p).cloned().flatten())
            .unwrap();
        let path = d.drv_path(&sd, name).unwrap();
        let bytes = d.to_aterm_bytes();
        let (digest, size) = store.put_blob(&mut &bytes[..]).unwrap();
        let node = Node::File {
            digest,
            size,
            executable: false,
        };
        store
            .put_path_info(&PathInfo {
                store_path: path.clone(),
                node,
                nar_sha256: [0; 32],
                nar_size: 0,
                references: vec![],
                deriver: None,
                signatures: vec![],
                ca: None,
            })
            .unwrap();
        path
    }

    fn settings() -> BuildSettings {
        BuildSettings {
            system: "x86_64-linux".into(),
            system_features: ["big-parallel".to_string()].into(),
            ..Default::default()
        }
    }

    fn run(
        store: &Store,
        fake: &Fake,
        s: &BuildSettings,
        t: &[StorePath],
    ) -> Result<Vec<BTreeMap<String, StorePath>>, BuildFailure> {
        let env = |_: &str| None;
        Driver {
            store,
            service: fake,
            builders: &[],
            logs: None,
            settings: s,
            caller_env: &env,
        }
        .build(t, &mut |_| {})
    }

    fn fake(store: &Store) -> Fake<'_> {
        Fake {
            store,
            fail: None,
            requests: Mutex::new(vec![]),
            refs: vec![],
            salt: "",
        }
    }

    #[test]
    fn builds_inputs_first_and_registers() {
        let store = Store::memory();
        let a = add_drv(&store, "a", &[], &[]);
        let b = add_drv(&store, "b", &[&a], &[]);
        let a_out = request::output_paths(&read_derivation(&store, &a).unwrap(), "").unwrap()
            ["out"]
            .clone();
        let mut f = fake(&store);
        f.refs = vec![a_out.hash_part()];
        let outs = run(&store, &f, &settings(), std::slice::from_ref(&b)).unwrap();
        let reqs = f.requests.lock().unwrap();
        assert_eq!(reqs.len(), 2);
        assert!(reqs[0].outputs[0].ends_with("-a"));
        assert_eq!(reqs[1].inputs.len(), 1, "b sees a's output");
        let info = store.get_path_info(&outs[0]["out"]).unwrap().unwrap();
        assert_eq!(info.deriver, Some(b.clone()));
        assert!(info.references.contains(&a_out));
        assert!(info.references.contains(&outs[0]["out"]));
        drop(reqs);
        // Everything valid now: nothing is built again.
        let f2 = fake(&store);
        run(&store, &f2, &settings(), &[b]).unwrap();
        assert!(f2.requests.lock().unwrap().is_empty());
    }

    #[test]
    fn failed_build_registers_nothing() {
        let store = Store::memory();
        let a = add_drv(&store, "a", &[], &[]);
        let mut f = fake(&store);
        f.fail = Some(|| ServiceError::ExitCode(3));
        let e = run(&store, &f, &settings(), std::slice::from_ref(&a)).unwrap_err();
        assert_eq!(e.exit_status(), 100);
        assert!(e.to_string().ends_with("' failed with exit code 3"), "{e}");
        let m = e.message_with_log_tail("tvix log");
        assert!(
            m.contains("' failed with exit code 3;\nlast 1 log lines:\n> hello\nFor full logs, run 'tvix log /nix/store/"),
            "{m}"
        );
        let out = request::output_paths(&read_derivation(&store, &a).unwrap(), "").unwrap();
        assert!(store.get_path_info(&out["out"]).unwrap().is_none());
    }

    #[test]
    fn forbidden_reference_registers_nothing() {
        let store = Store::memory();
        let a = add_drv(&store, "a", &[], &[]);
        let a_out = request::output_paths(&read_derivation(&store, &a).unwrap(), "").unwrap()
            ["out"]
            .clone();
        let b = add_drv(
            &store,
            "b",
            &[&a],
            &[("disallowedReferences", &abs(&a_out))],
        );
        let mut f = fake(&store);
        f.refs = vec![a_out.hash_part()];
        let e = run(&store, &f, &settings(), std::slice::from_ref(&b)).unwrap_err();
        assert_eq!(e.exit_status(), 1);
        let out = request::output_paths(&read_derivation(&store, &b).unwrap(), "").unwrap();
        assert!(store.get_path_info(&out["out"]).unwrap().is_none());
        assert!(store.get_path_info(&a_out).unwrap().is_some());
    }

    #[test]
    fn missing_features_and_systems() {
        let store = Store::memory();
        let a = add_drv(
            &store,
            "a",
            &[],
            &[("requiredSystemFeatures", "kvm big-parallel")],
        );
        let f = fake(&store);
        let e = run(&store, &f, &settings(), &[a]).unwrap_err();
        assert!(e.to_string().starts_with("a 'x86_64-linux' with features {big-parallel, kvm} is required to build '/nix/store/"), "{e}");
        assert!(
            e.to_string()
                .ends_with("but I am a 'x86_64-linux' with features {big-parallel}"),
            "{e}"
        );
        assert!(f.requests.lock().unwrap().is_empty());
    }

    #[test]
    fn check_mode_compares() {
        let store = Store::memory();
        let a = add_drv(&store, "a", &[], &[]);
        let f = fake(&store);
        let mut s = settings();
        s.check = true;
        assert!(matches!(
            run(&store, &f, &s, std::slice::from_ref(&a)),
            Err(BuildFailure::CheckNotPossible(_))
        ));
        run(&store, &f, &settings(), std::slice::from_ref(&a)).unwrap();
        run(&store, &f, &s, std::slice::from_ref(&a)).unwrap();
        let mut f2 = fake(&store);
        f2.salt = "different";
        let e = run(&store, &f2, &s, &[a]).unwrap_err();
        assert_eq!(e.exit_status(), 104);
        assert!(
            e.to_string().contains("may not be deterministic: output '"),
            "{e}"
        );
    }

    #[test]
    fn unparsable_drv_is_an_error() {
        let store = Store::memory();
        let (digest, size) = store.put_blob(&mut &b"Derive(nonsense"[..]).unwrap();
        let p = StorePath::from_base_name("00000000000000000000000000000000-bad.drv").unwrap();
        store
            .put_path_info(&PathInfo {
                store_path: p.clone(),
                node: Node::File {
                    digest,
                    size,
                    executable: false,
                },
                nar_sha256: [0; 32],
                nar_size: 0,
                references: vec![],
                deriver: None,
                signatures: vec![],
                ca: None,
            })
            .unwrap();
        let f = fake(&store);
        let e = run(&store, &f, &settings(), &[p]).unwrap_err();
        assert!(
            e.to_string().contains(
                "cannot parse derivation '/nix/store/00000000000000000000000000000000-bad.drv'"
            ),
            "{e}"
        );
    }
}
