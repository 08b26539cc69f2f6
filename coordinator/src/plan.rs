//! The build plan: a sans-IO state machine over a derivation graph.
//!
//! A [`Plan`] knows, for every derivation the targets need, whether its outputs are valid,
//! substitutable, buildable (all inputs available) or blocked, and decides what happens next.
//! It does no IO, starts no threads and reads no clock: the caller (the executor) feeds it
//! [`Input`]s and performs the [`Action`]s it hands out, in the style of `quinn-proto`.
//!
//! # Call contract
//!
//! 1. Build it with [`Plan::new`] from the graph ([`NodeSpec`]s), the targets and a
//!    [`Config`]. The graph is checked: unknown inputs and cycles are errors.
//! 2. Drain [`Plan::poll_action`] until it returns `None`, performing each action. Every
//!    action that asks something (`QueryValidity`, `QuerySubstitutable`, `Substitute`,
//!    `Build`, `Register`) must eventually be answered by exactly one [`Input`] for the same
//!    derivation, passed to [`Plan::handle`].
//! 3. After each input, drain `poll_action` again. [`Action::Done`] is handed out exactly
//!    once, when nothing runs any more; after it `poll_action` returns `None` forever.
//!
//! # Policy
//!
//! - Order: derivations are numbered in the order of their `.drv` paths and ties go to the
//!   lower number, so the same inputs always give the same actions.
//! - A derivation whose outputs are all valid is not looked at further (its inputs are not
//!   needed). One that is not valid is asked for substitutability (when substitution is on);
//!   a substitutable one is fetched instead of built, again without its inputs. Only
//!   derivations that must be built pull in their inputs.
//! - Nothing is substituted or built before every question of the first round is answered:
//!   then [`Action::Planned`] lists what will be built and fetched (what `nix-build` prints
//!   before it starts), and with [`Config::dry_run`] the plan is done.
//! - At most [`Config::max_substitutions`] substitutions run at once, and on each machine of
//!   [`Config::machines`] at most its `max_jobs` builds. A derivation is built only once all
//!   its inputs are available (valid, substituted, or built and registered).
//! - Machines: a ready derivation goes to a machine that is up, builds its system, has
//!   every feature it requires (and it requires every mandatory feature of the machine),
//!   and has a free slot. Remote machines are preferred (the least loaded for its speed
//!   factor, then the faster, then the first listed), as Nix's build hook is asked first;
//!   this machine (index 0) builds when no remote one has a free slot, or first for
//!   `preferLocalBuild`. `builtin:` builders build only here, even with `max-jobs` 0 (one
//!   at a time then). A derivation no machine can ever take fails with
//!   [`Action::NoMachine`]; one whose machines are all down fails the same way.
//! - A lost machine ([`Input::BuildLost`]): it is marked down for the rest of the run and
//!   the build goes back to ready, to start on another machine; it is not a failure. A
//!   build that failed ([`Input::BuildFailed`]) is not retried: that is the build's fault.
//! - A failure (build, registration, or substitution without [`Config::fallback`]) fails
//!   every derivation that needs it, transitively. Without [`Config::keep_going`] it also
//!   stops the plan: nothing new starts, and the plan is done once what runs has finished
//!   (finished builds are still registered). With it, everything that does not depend on a
//!   failure goes on, as Nix's `--keep-going`.
//! - [`Input::Cancel`] stops the plan the same way (nothing new starts, what finishes is
//!   registered); stopping running builds is the executor's job.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use thiserror::Error;

use crate::machines::Machine;

/// A derivation of the plan: an index into its nodes, in the order of the `.drv` paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DrvId(u32);

impl DrvId {
    /// The index of this derivation in [`Plan::drvs`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Whether a derivation's outputs are all valid in the store, if already known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// Every output is valid.
    Valid,
    /// Some output is missing.
    Invalid,
    /// Not known yet: the plan asks with [`Action::QueryValidity`] if it needs to know.
    Unknown,
}

/// A derivation of the graph given to [`Plan::new`].
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// The `.drv` path (any unique name; the order of names is the order of actions).
    pub drv: String,
    /// The `.drv` paths of its input derivations.
    pub inputs: Vec<String>,
    /// Its output paths (for [`Plan::outputs`]; the plan itself only passes them on).
    pub outputs: Vec<String>,
    /// What is known of its outputs' validity.
    pub validity: Validity,
    /// The system it is built for.
    pub system: String,
    /// The features it requires (`requiredSystemFeatures`).
    pub required_features: BTreeSet<String>,
    /// Built by a `builtin:` builder: only this machine (index 0) can.
    pub builtin: bool,
    /// `preferLocalBuild`: built on this machine when it can and has a free slot.
    pub prefer_local: bool,
}

/// How a plan runs. Passed explicitly; there is no default on purpose.
#[derive(Clone, Debug)]
pub struct Config {
    /// The machines builds run on, each with its slots (`max_jobs`): this machine first
    /// (its `max_jobs` is `-j`, `--max-jobs`, and may be 0 when there are others), then
    /// the remote builders. Together they have at least one slot.
    pub machines: Vec<Machine>,
    /// How many substitutions run at once (Nix's `max-substitution-jobs`); at least 1.
    pub max_substitutions: usize,
    /// Go on after a failure with everything that does not depend on it (`--keep-going`).
    pub keep_going: bool,
    /// Ask whether invalid outputs can be substituted (false: everything missing is built).
    pub substitute: bool,
    /// When a substitution fails, build the derivation instead (`--fallback`); otherwise the
    /// failure is the derivation's.
    pub fallback: bool,
    /// Only find out what would be built and fetched: done after [`Action::Planned`].
    pub dry_run: bool,
}

/// Why a plan cannot be made.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PlanError {
    /// Two nodes have the same `.drv` path.
    #[error("derivation '{0}' appears twice in the graph")]
    Duplicate(String),
    /// An input or a target is not a node of the graph.
    #[error("derivation '{0}' is not in the graph")]
    Unknown(String),
    /// The derivations depend on each other in a cycle (only a corrupt or hostile set of
    /// `.drv` files can: a derivation's path depends on its inputs' paths).
    #[error("cycle in the derivation graph: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// No machine has a slot, or `max_substitutions` is 0.
    #[error("the number of build and substitution jobs must be at least 1")]
    NoJobs,
}

/// An input that does not answer an outstanding action: a bug of the caller.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{input} for '{drv}', which is not waiting for it")]
pub struct UnexpectedInput {
    /// The input's name.
    pub input: &'static str,
    /// The derivation.
    pub drv: String,
}

/// What the caller tells the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Answers [`Action::QueryValidity`].
    Validity {
        /// The derivation.
        drv: DrvId,
        /// Whether all its outputs are valid.
        valid: bool,
    },
    /// Answers [`Action::QuerySubstitutable`].
    Substitutable {
        /// The derivation.
        drv: DrvId,
        /// Whether a substituter has all its missing outputs.
        substitutable: bool,
    },
    /// [`Action::Substitute`] succeeded: the outputs are valid now.
    Substituted(DrvId),
    /// [`Action::Substitute`] failed.
    SubstituteFailed(DrvId),
    /// [`Action::Build`] succeeded and the outputs passed their checks: register them.
    BuildFinished(DrvId),
    /// [`Action::Build`] failed (or was cancelled).
    BuildFailed(DrvId),
    /// [`Action::Build`]'s machine was lost (the connection broke, the machine died): the
    /// machine is down for the rest of the run and the build is started again elsewhere.
    BuildLost(DrvId),
    /// The machine with this index cannot be used (unreachable from the start).
    MachineDown(usize),
    /// [`Action::Register`] succeeded: the outputs are valid now.
    Registered(DrvId),
    /// [`Action::Register`] failed.
    RegisterFailed(DrvId),
    /// Stop: start nothing new, finish when what runs has finished.
    Cancel,
}

/// What the plan asks the caller to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Find out whether all outputs of the derivation are valid; answer with
    /// [`Input::Validity`].
    QueryValidity(DrvId),
    /// Ask the substituters whether they have the derivation's outputs; answer with
    /// [`Input::Substitutable`].
    QuerySubstitutable(DrvId),
    /// The first round of questions is answered: these derivations will be built and these
    /// will be fetched (each in `.drv` path order). Handed out once, even when both are
    /// empty.
    Planned {
        /// Derivations to build.
        build: Vec<DrvId>,
        /// Derivations whose outputs will be substituted.
        fetch: Vec<DrvId>,
    },
    /// Substitute the derivation's outputs; answer with [`Input::Substituted`] or
    /// [`Input::SubstituteFailed`].
    Substitute(DrvId),
    /// Build the derivation (its inputs are available) on the machine with this index in
    /// [`Config::machines`]; answer with [`Input::BuildFinished`], [`Input::BuildFailed`]
    /// or [`Input::BuildLost`].
    Build {
        /// The derivation.
        drv: DrvId,
        /// The machine's index.
        machine: usize,
    },
    /// The derivation failed without being built: no machine can build it (`lost`:
    /// every machine that could is down). Asks nothing: the derivation is failed.
    NoMachine {
        /// The derivation.
        drv: DrvId,
        /// Whether machines that could build it exist but were lost.
        lost: bool,
    },
    /// Register the outputs of a finished build; answer with [`Input::Registered`] or
    /// [`Input::RegisterFailed`].
    Register(DrvId),
    /// Nothing runs and nothing more will start.
    Done(Summary),
}

/// How a plan ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Built and registered.
    pub built: Vec<DrvId>,
    /// Substituted.
    pub substituted: Vec<DrvId>,
    /// Failed themselves (build, registration, or substitution).
    pub failed: Vec<DrvId>,
    /// Not built because an input failed.
    pub dependency_failed: Vec<DrvId>,
    /// Needed but never started, because the plan stopped (failure without keep-going,
    /// cancellation, dry run).
    pub not_started: Vec<DrvId>,
    /// Whether [`Input::Cancel`] was received.
    pub cancelled: bool,
    /// Whether every target's outputs are valid at the end.
    pub targets_valid: bool,
}

/// Where a derivation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not needed (yet).
    Unreached,
    /// [`Action::QueryValidity`] handed out or queued.
    QueryingValidity,
    /// [`Action::QuerySubstitutable`] handed out or queued.
    QueryingSubstitutable,
    /// Valid before the plan did anything.
    Valid,
    /// To be substituted once the plan is planned.
    WillSubstitute,
    /// [`Action::Substitute`] handed out.
    Substituting,
    /// Substituted.
    Substituted,
    /// Must be built; its inputs are being reached.
    Expanding,
    /// Must be built; this many inputs are not available yet.
    Waiting(u32),
    /// Must be built, every input is available.
    Ready,
    /// [`Action::Build`] handed out.
    Building,
    /// [`Action::Register`] handed out.
    Registering,
    /// Built and registered.
    Built,
    /// Failed itself.
    Failed,
    /// An input failed.
    DependencyFailed,
}

impl State {
    fn available(self) -> bool {
        matches!(self, State::Valid | State::Substituted | State::Built)
    }

    fn failed(self) -> bool {
        matches!(self, State::Failed | State::DependencyFailed)
    }
}

/// The state machine. See the module documentation for the call contract.
#[derive(Debug)]
pub struct Plan {
    config: Config,
    /// `.drv` paths, sorted.
    names: Vec<String>,
    outputs: Vec<Vec<String>>,
    inputs: Vec<Vec<u32>>,
    dependents: Vec<Vec<u32>>,
    known: Vec<Validity>,
    state: Vec<State>,
    /// Each derivation's system, required features, `builtin:` builder, preferLocalBuild.
    system: Vec<String>,
    required_features: Vec<BTreeSet<String>>,
    builtin: Vec<bool>,
    prefer_local: Vec<bool>,
    /// Builds running on each machine.
    running_on: Vec<usize>,
    /// Whether each machine is up.
    up: Vec<bool>,
    /// The machine of each running build.
    building_on: BTreeMap<u32, usize>,
    targets: Vec<u32>,
    /// Actions decided but not handed out yet.
    queue: VecDeque<Action>,
    /// Derivations ready to build, lowest first.
    ready: BTreeSet<u32>,
    /// Derivations waiting to be substituted, lowest first.
    to_substitute: BTreeSet<u32>,
    n_queries: usize,
    n_building: usize,
    n_substituting: usize,
    n_registering: usize,
    /// Derivations that became `DependencyFailed` since the last
    /// [`Plan::take_newly_dependency_failed`].
    newly_dependency_failed: Vec<u32>,
    n_dependency_failed: usize,
    planned: bool,
    stopped: bool,
    cancelled: bool,
    done: bool,
}

impl Plan {
    /// Makes the plan for `targets` over `graph`. The graph may hold derivations the
    /// targets do not need; they are ignored (and not checked for cycles).
    pub fn new(
        graph: Vec<NodeSpec>,
        targets: &[String],
        config: Config,
    ) -> Result<Plan, PlanError> {
        let slots: usize = config.machines.iter().map(|m| m.max_jobs).sum();
        if slots == 0 || config.max_substitutions == 0 {
            return Err(PlanError::NoJobs);
        }
        let mut graph = graph;
        graph.sort_by(|a, b| a.drv.cmp(&b.drv));
        for w in graph.windows(2) {
            if w[0].drv == w[1].drv {
                return Err(PlanError::Duplicate(w[0].drv.clone()));
            }
        }
        let index: BTreeMap<&str, u32> = graph
            .iter()
            .enumerate()
            .map(|(i, n)| (n.drv.as_str(), i as u32))
            .collect();
        let lookup = |name: &str| {
            index
                .get(name)
                .copied()
                .ok_or_else(|| PlanError::Unknown(name.to_string()))
        };
        let mut inputs = Vec::with_capacity(graph.len());
        for n in &graph {
            let mut ins = n
                .inputs
                .iter()
                .map(|i| lookup(i))
                .collect::<Result<Vec<u32>, _>>()?;
            ins.sort_unstable();
            ins.dedup();
            inputs.push(ins);
        }
        let mut target_ids = Vec::new();
        for t in targets {
            let id = lookup(t)?;
            if !target_ids.contains(&id) {
                target_ids.push(id);
            }
        }
        let mut dependents = vec![Vec::new(); graph.len()];
        for (i, ins) in inputs.iter().enumerate() {
            for &d in ins {
                dependents[d as usize].push(i as u32);
            }
        }
        find_cycle(&inputs, &target_ids).map_or(Ok(()), |cycle| {
            Err(PlanError::Cycle(
                cycle
                    .iter()
                    .map(|&i| graph[i as usize].drv.clone())
                    .collect(),
            ))
        })?;
        let n = graph.len();
        let mut names = Vec::with_capacity(n);
        let mut outputs = Vec::with_capacity(n);
        let mut known = Vec::with_capacity(n);
        let mut system = Vec::with_capacity(n);
        let mut required_features = Vec::with_capacity(n);
        let mut builtin = Vec::with_capacity(n);
        let mut prefer_local = Vec::with_capacity(n);
        for node in graph {
            names.push(node.drv);
            outputs.push(node.outputs);
            known.push(node.validity);
            system.push(node.system);
            required_features.push(node.required_features);
            builtin.push(node.builtin);
            prefer_local.push(node.prefer_local);
        }
        let n_machines = config.machines.len();
        let mut plan = Plan {
            config,
            names,
            outputs,
            inputs,
            dependents,
            known,
            state: vec![State::Unreached; n],
            system,
            required_features,
            builtin,
            prefer_local,
            running_on: vec![0; n_machines],
            up: vec![true; n_machines],
            building_on: BTreeMap::new(),
            targets: target_ids.clone(),
            queue: VecDeque::new(),
            ready: BTreeSet::new(),
            to_substitute: BTreeSet::new(),
            n_queries: 0,
            n_building: 0,
            n_substituting: 0,
            n_registering: 0,
            newly_dependency_failed: Vec::new(),
            n_dependency_failed: 0,
            planned: false,
            stopped: false,
            cancelled: false,
            done: false,
        };
        for t in target_ids {
            plan.reach(t);
        }
        Ok(plan)
    }

    /// The `.drv` path of a derivation.
    pub fn drv(&self, id: DrvId) -> &str {
        &self.names[id.index()]
    }

    /// The output paths of a derivation, as given.
    pub fn outputs(&self, id: DrvId) -> &[String] {
        &self.outputs[id.index()]
    }

    /// The input derivations of a derivation.
    pub fn inputs(&self, id: DrvId) -> impl Iterator<Item = DrvId> + '_ {
        self.inputs[id.index()].iter().map(|&i| DrvId(i))
    }

    /// Every derivation of the graph, in `.drv` path order.
    pub fn drvs(&self) -> impl Iterator<Item = DrvId> {
        (0..self.names.len() as u32).map(DrvId)
    }

    /// The derivation with this `.drv` path.
    pub fn id_of(&self, drv: &str) -> Option<DrvId> {
        self.names
            .binary_search_by(|n| n.as_str().cmp(drv))
            .ok()
            .map(|i| DrvId(i as u32))
    }

    /// How many builds run now.
    pub fn running_builds(&self) -> usize {
        self.n_building
    }

    /// The machines, as configured (index 0 is this machine).
    pub fn machines(&self) -> &[Machine] {
        &self.config.machines
    }

    /// The system a derivation is built for, and the features it requires.
    pub fn requirements(&self, id: DrvId) -> (&str, &BTreeSet<String>) {
        (
            &self.system[id.index()],
            &self.required_features[id.index()],
        )
    }

    /// How many derivations cannot be built because an input failed.
    pub fn n_dependency_failed(&self) -> usize {
        self.n_dependency_failed
    }

    /// The derivations that became blocked by a failed input since the last call, so a
    /// surface can report each once.
    pub fn take_newly_dependency_failed(&mut self) -> Vec<DrvId> {
        self.newly_dependency_failed.drain(..).map(DrvId).collect()
    }

    /// Whether the plan stopped scheduling (a failure without keep-going, or cancellation).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Takes an answer. An input that answers nothing outstanding is refused and changes
    /// nothing.
    pub fn handle(&mut self, input: Input) -> Result<(), UnexpectedInput> {
        let expect = |plan: &Plan, drv: DrvId, want: State, name: &'static str| {
            if plan.state.get(drv.index()) == Some(&want) {
                Ok(drv.0)
            } else {
                Err(UnexpectedInput {
                    input: name,
                    drv: plan
                        .names
                        .get(drv.index())
                        .cloned()
                        .unwrap_or_else(|| format!("#{}", drv.0)),
                })
            }
        };
        match input {
            Input::Validity { drv, valid } => {
                let i = expect(self, drv, State::QueryingValidity, "validity")?;
                self.n_queries -= 1;
                self.known[i as usize] = if valid {
                    Validity::Valid
                } else {
                    Validity::Invalid
                };
                self.state[i as usize] = State::Unreached;
                self.reach(i);
            }
            Input::Substitutable { drv, substitutable } => {
                let i = expect(self, drv, State::QueryingSubstitutable, "substitutability")?;
                self.n_queries -= 1;
                if substitutable {
                    self.state[i as usize] = State::WillSubstitute;
                    self.to_substitute.insert(i);
                } else {
                    self.must_build(i);
                }
            }
            Input::Substituted(drv) => {
                let i = expect(self, drv, State::Substituting, "substituted")?;
                self.n_substituting -= 1;
                self.became_available(i, State::Substituted);
            }
            Input::SubstituteFailed(drv) => {
                let i = expect(self, drv, State::Substituting, "substitution failure")?;
                self.n_substituting -= 1;
                if self.config.fallback && !self.stopped {
                    self.must_build(i);
                } else {
                    self.fail(i);
                }
            }
            Input::BuildFinished(drv) => {
                let i = expect(self, drv, State::Building, "build finished")?;
                self.stop_building(i);
                // Registration goes on even after a stop: the build's work is kept.
                self.state[i as usize] = State::Registering;
                self.n_registering += 1;
                self.queue.push_back(Action::Register(drv));
            }
            Input::BuildFailed(drv) => {
                let i = expect(self, drv, State::Building, "build failure")?;
                self.stop_building(i);
                self.fail(i);
            }
            Input::BuildLost(drv) => {
                let i = expect(self, drv, State::Building, "build lost")?;
                let machine = self.stop_building(i);
                self.up[machine] = false;
                self.state[i as usize] = State::Ready;
                self.ready.insert(i);
            }
            Input::MachineDown(machine) => match self.up.get_mut(machine) {
                Some(up) => *up = false,
                None => {
                    return Err(UnexpectedInput {
                        input: "machine down",
                        drv: format!("machine #{machine}"),
                    })
                }
            },
            Input::Registered(drv) => {
                let i = expect(self, drv, State::Registering, "registered")?;
                self.n_registering -= 1;
                self.became_available(i, State::Built);
            }
            Input::RegisterFailed(drv) => {
                let i = expect(self, drv, State::Registering, "registration failure")?;
                self.n_registering -= 1;
                self.fail(i);
            }
            Input::Cancel => {
                self.cancelled = true;
                self.stopped = true;
            }
        }
        Ok(())
    }

    /// The next action, or `None` when the plan waits for inputs (or is done).
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some(a) = self.queue.pop_front() {
            return Some(a);
        }
        if self.done {
            return None;
        }
        if !self.planned {
            if self.n_queries > 0 {
                return None;
            }
            self.planned = true;
            let build = self
                .drvs()
                .filter(|d| matches!(self.state[d.index()], State::Waiting(_) | State::Ready))
                .collect();
            let fetch = self.to_substitute.iter().map(|&i| DrvId(i)).collect();
            if self.config.dry_run {
                self.stopped = true;
            }
            return Some(Action::Planned { build, fetch });
        }
        if !self.stopped {
            if self.n_substituting < self.config.max_substitutions {
                if let Some(i) = self.to_substitute.pop_first() {
                    self.state[i as usize] = State::Substituting;
                    self.n_substituting += 1;
                    return Some(Action::Substitute(DrvId(i)));
                }
            }
            if let Some(action) = self.next_build() {
                return Some(action);
            }
        }
        let idle = self.n_building == 0 && self.n_substituting == 0 && self.n_registering == 0;
        let more = !self.stopped
            && (self.n_queries > 0 || !self.ready.is_empty() || !self.to_substitute.is_empty());
        if idle && !more && (self.stopped || self.n_queries == 0) {
            self.done = true;
            return Some(Action::Done(self.summary()));
        }
        None
    }

    /// How many builds machine `m` may run for derivation `i`: a `builtin:` builder gets
    /// one slot here even with `max-jobs` 0; other machines never take it.
    fn slots(&self, m: usize, i: u32) -> usize {
        let max = self.config.machines[m].max_jobs;
        match (self.builtin[i as usize], m) {
            (true, 0) => max.max(1),
            (true, _) => 0,
            (false, _) => max,
        }
    }

    /// Whether machine `m` can ever build derivation `i` (this machine has no mandatory
    /// features, and builds `builtin:` builders of any system).
    fn eligible(&self, m: usize, i: u32) -> bool {
        let iu = i as usize;
        if self.slots(m, i) == 0 {
            return false;
        }
        let machine = &self.config.machines[m];
        if m == 0 {
            (self.builtin[iu] || machine.systems.contains(&self.system[iu]))
                && self.required_features[iu].is_subset(&machine.supported_features)
        } else {
            machine.can_build(&self.system[iu], &self.required_features[iu])
        }
    }

    /// Where derivation `i` goes now: `Ok(Some(machine))`, `Ok(None)` to wait for a slot,
    /// `Err(lost)` when no machine can take it.
    fn choose(&self, i: u32) -> Result<Option<usize>, bool> {
        let n = self.config.machines.len();
        let eligible: Vec<usize> = (0..n).filter(|&m| self.eligible(m, i)).collect();
        if eligible.is_empty() {
            return Err(false);
        }
        let up: Vec<usize> = eligible.into_iter().filter(|&m| self.up[m]).collect();
        if up.is_empty() {
            return Err(true);
        }
        let free = |m: &usize| self.running_on[*m] < self.slots(*m, i);
        if self.prefer_local[i as usize] && up.first() == Some(&0) && free(&0) {
            return Ok(Some(0));
        }
        let load = |m: usize| self.running_on[m] as f64 / self.config.machines[m].speed_factor;
        let remote = up
            .iter()
            .copied()
            .filter(|&m| m > 0 && free(&m))
            .min_by(|&a, &b| {
                let (ma, mb) = (&self.config.machines[a], &self.config.machines[b]);
                load(a)
                    .total_cmp(&load(b))
                    .then(mb.speed_factor.total_cmp(&ma.speed_factor))
                    .then(self.running_on[a].cmp(&self.running_on[b]))
                    .then(a.cmp(&b))
            });
        Ok(remote.or_else(|| (up.first() == Some(&0) && free(&0)).then_some(0)))
    }

    /// The next ready derivation that a machine takes now (the lowest first), or the
    /// first that no machine can take, failed.
    fn next_build(&mut self) -> Option<Action> {
        // Nothing can start while every machine that is up is full (a derivation no
        // machine can take is found once a slot frees); with every machine down, each
        // ready derivation fails.
        let n = self.config.machines.len();
        let any_up = self.up.iter().any(|&u| u);
        let any_free = (0..n).any(|m| {
            self.up[m]
                && (self.running_on[m] < self.config.machines[m].max_jobs
                    || (m == 0 && self.running_on[0] == 0))
        });
        if any_up && !any_free {
            return None;
        }
        let mut found = None;
        for &i in &self.ready {
            match self.choose(i) {
                Ok(None) => {}
                Ok(Some(m)) => {
                    found = Some((i, Ok(m)));
                    break;
                }
                Err(lost) => {
                    found = Some((i, Err(lost)));
                    break;
                }
            }
        }
        let (i, choice) = found?;
        self.ready.remove(&i);
        match choice {
            Ok(machine) => {
                self.state[i as usize] = State::Building;
                self.n_building += 1;
                self.running_on[machine] += 1;
                self.building_on.insert(i, machine);
                Some(Action::Build {
                    drv: DrvId(i),
                    machine,
                })
            }
            Err(lost) => {
                self.fail(i);
                Some(Action::NoMachine {
                    drv: DrvId(i),
                    lost,
                })
            }
        }
    }

    /// A build of `i` ended: its machine's slot is free again. Returns the machine.
    fn stop_building(&mut self, i: u32) -> usize {
        self.n_building -= 1;
        let machine = self
            .building_on
            .remove(&i)
            .expect("a building derivation has a machine");
        self.running_on[machine] -= 1;
        machine
    }

    fn summary(&self) -> Summary {
        let mut s = Summary {
            cancelled: self.cancelled,
            targets_valid: self
                .targets
                .iter()
                .all(|&t| self.state[t as usize].available()),
            ..Summary::default()
        };
        for d in self.drvs() {
            match self.state[d.index()] {
                State::Built => s.built.push(d),
                State::Substituted => s.substituted.push(d),
                State::Failed => s.failed.push(d),
                State::DependencyFailed => s.dependency_failed.push(d),
                State::WillSubstitute | State::Waiting(_) | State::Ready => s.not_started.push(d),
                _ => {}
            }
        }
        s
    }

    /// The derivation is needed: find out what it takes. Iterative (a worklist of
    /// derivations that must be built), since hostile graphs may be very deep.
    fn reach(&mut self, i: u32) {
        let mut expand = Vec::new();
        self.reach_one(i, &mut expand);
        while let Some(j) = expand.pop() {
            self.expand(j, &mut expand);
        }
    }

    /// Settles what can be settled of `i` now; a derivation that must be built is put on
    /// `expand` (in state `Expanding`) for its inputs to be reached.
    fn reach_one(&mut self, i: u32, expand: &mut Vec<u32>) {
        let iu = i as usize;
        if self.state[iu] != State::Unreached {
            return;
        }
        match self.known[iu] {
            Validity::Valid => self.became_available(i, State::Valid),
            Validity::Unknown => {
                self.state[iu] = State::QueryingValidity;
                self.n_queries += 1;
                self.queue.push_back(Action::QueryValidity(DrvId(i)));
            }
            Validity::Invalid if self.config.substitute => {
                self.state[iu] = State::QueryingSubstitutable;
                self.n_queries += 1;
                self.queue.push_back(Action::QuerySubstitutable(DrvId(i)));
            }
            Validity::Invalid => {
                self.state[iu] = State::Expanding;
                expand.push(i);
            }
        }
    }

    /// The derivation must be built: reach its inputs and count the missing ones.
    fn expand(&mut self, i: u32, expand: &mut Vec<u32>) {
        for k in 0..self.inputs[i as usize].len() {
            let input = self.inputs[i as usize][k];
            self.reach_one(input, expand);
        }
        let ins = &self.inputs[i as usize];
        if ins.iter().any(|&d| self.state[d as usize].failed()) {
            self.dependency_failed(i);
            return;
        }
        let missing = ins
            .iter()
            .filter(|&&d| !self.state[d as usize].available())
            .count() as u32;
        if missing == 0 {
            self.state[i as usize] = State::Ready;
            self.ready.insert(i);
        } else {
            self.state[i as usize] = State::Waiting(missing);
        }
    }

    /// The derivation must be built after all (not substitutable, or fallback).
    fn must_build(&mut self, i: u32) {
        self.state[i as usize] = State::Expanding;
        let mut expand = vec![i];
        while let Some(j) = expand.pop() {
            self.expand(j, &mut expand);
        }
    }

    fn became_available(&mut self, i: u32, state: State) {
        self.state[i as usize] = state;
        for k in 0..self.dependents[i as usize].len() {
            let d = self.dependents[i as usize][k] as usize;
            if let State::Waiting(n) = self.state[d] {
                self.state[d] = if n == 1 {
                    self.ready.insert(d as u32);
                    State::Ready
                } else {
                    State::Waiting(n - 1)
                };
            }
        }
    }

    fn fail(&mut self, i: u32) {
        self.state[i as usize] = State::Failed;
        if !self.config.keep_going {
            self.stopped = true;
        }
        self.fail_dependents(i);
    }

    fn dependency_failed(&mut self, i: u32) {
        self.state[i as usize] = State::DependencyFailed;
        self.newly_dependency_failed.push(i);
        self.n_dependency_failed += 1;
        if !self.config.keep_going {
            self.stopped = true;
        }
        self.fail_dependents(i);
    }

    /// Every derivation that waits for `i` (transitively) cannot be built.
    fn fail_dependents(&mut self, i: u32) {
        let mut stack = vec![i];
        while let Some(j) = stack.pop() {
            for k in 0..self.dependents[j as usize].len() {
                let d = self.dependents[j as usize][k];
                if matches!(self.state[d as usize], State::Waiting(_) | State::Ready) {
                    self.ready.remove(&d);
                    self.state[d as usize] = State::DependencyFailed;
                    self.newly_dependency_failed.push(d);
                    self.n_dependency_failed += 1;
                    stack.push(d);
                }
            }
        }
    }
}

/// A cycle reachable from `roots`, as the list of nodes along it (the first repeated at
/// the end), found by an iterative depth-first search (hostile graphs may be deep).
fn find_cycle(inputs: &[Vec<u32>], roots: &[u32]) -> Option<Vec<u32>> {
    const WHITE: u8 = 0;
    const GREY: u8 = 1;
    const BLACK: u8 = 2;
    let mut colour = vec![WHITE; inputs.len()];
    for &root in roots {
        if colour[root as usize] != WHITE {
            continue;
        }
        colour[root as usize] = GREY;
        // (node, index of the next input to look at)
        let mut stack: Vec<(u32, usize)> = vec![(root, 0)];
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            match inputs[node as usize].get(*next) {
                Some(&input) => {
                    *next += 1;
                    match colour[input as usize] {
                        WHITE => {
                            colour[input as usize] = GREY;
                            stack.push((input, 0));
                        }
                        GREY => {
                            let start = stack.iter().position(|&(n, _)| n == input)?;
                            let mut cycle: Vec<u32> =
                                stack[start..].iter().map(|&(n, _)| n).collect();
                            cycle.push(input);
                            return Some(cycle);
                        }
                        _ => {}
                    }
                }
                None => {
                    colour[node as usize] = BLACK;
                    stack.pop();
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted world: which derivations are valid, substitutable, fail to build or
    /// to substitute. Unknown validity is answered from `valid` too.
    #[derive(Default)]
    struct World {
        valid: BTreeSet<&'static str>,
        substitutable: BTreeSet<&'static str>,
        failing: BTreeSet<&'static str>,
        failing_substitution: BTreeSet<&'static str>,
        /// Send `Cancel` right after the n-th `Build` action.
        cancel_after_builds: Option<usize>,
        /// Machines (by URL) whose builds are lost instead of finishing.
        lost_machines: BTreeSet<&'static str>,
    }

    const SYSTEM: &str = "x86_64-linux";

    /// This machine, building `SYSTEM` with `jobs` slots.
    fn local(jobs: usize) -> Machine {
        Machine::this_machine([SYSTEM.to_string()].into(), BTreeSet::new(), jobs)
    }

    fn config() -> Config {
        Config {
            machines: vec![local(1)],
            max_substitutions: 1,
            keep_going: false,
            substitute: false,
            fallback: false,
            dry_run: false,
        }
    }

    /// `edges`: "a: b c" means a's inputs are b and c.
    fn graph(edges: &[&str], unknown_validity: bool) -> Vec<NodeSpec> {
        edges
            .iter()
            .map(|line| {
                let (name, ins) = line.split_once(':').unwrap_or((line, ""));
                NodeSpec {
                    drv: name.trim().to_string(),
                    inputs: ins.split_whitespace().map(String::from).collect(),
                    outputs: vec![format!("{}-out", name.trim())],
                    validity: if unknown_validity {
                        Validity::Unknown
                    } else {
                        Validity::Invalid
                    },
                    system: SYSTEM.into(),
                    required_features: BTreeSet::new(),
                    builtin: false,
                    prefer_local: false,
                }
            })
            .collect()
    }

    /// Runs the plan to completion against `world`, answering each action as soon as the
    /// running builds exceed nothing: builds finish in the order they started, one per
    /// step, so several run at once. Returns the trace and the summary.
    fn drive(plan: &mut Plan, world: &World) -> (String, Summary) {
        let mut trace = String::new();
        let mut running: VecDeque<(DrvId, usize)> = VecDeque::new();
        let mut substituting: VecDeque<DrvId> = VecDeque::new();
        let mut n_builds = 0;
        let mut max_running = 0;
        let name = |p: &Plan, d: DrvId| p.drv(d).to_string();
        for _ in 0..10_000 {
            while let Some(a) = plan.poll_action() {
                match a {
                    Action::QueryValidity(d) => {
                        let valid = world.valid.contains(plan.drv(d));
                        trace.push_str(&format!("query-valid {}\n", name(plan, d)));
                        plan.handle(Input::Validity { drv: d, valid }).unwrap();
                    }
                    Action::QuerySubstitutable(d) => {
                        let s = world.substitutable.contains(plan.drv(d));
                        trace.push_str(&format!("query-subst {}\n", name(plan, d)));
                        plan.handle(Input::Substitutable {
                            drv: d,
                            substitutable: s,
                        })
                        .unwrap();
                    }
                    Action::Planned { build, fetch } => {
                        let b: Vec<String> = build.iter().map(|&d| name(plan, d)).collect();
                        let f: Vec<String> = fetch.iter().map(|&d| name(plan, d)).collect();
                        trace.push_str(&format!(
                            "planned build [{}] fetch [{}]\n",
                            b.join(" "),
                            f.join(" ")
                        ));
                    }
                    Action::Substitute(d) => {
                        trace.push_str(&format!("substitute {}\n", name(plan, d)));
                        substituting.push_back(d);
                    }
                    Action::Build { drv: d, machine } => {
                        if machine == 0 {
                            trace.push_str(&format!("build {}\n", name(plan, d)));
                        } else {
                            let m = &plan.machines()[machine].url;
                            trace.push_str(&format!("build {} on {m}\n", name(plan, d)));
                        }
                        running.push_back((d, machine));
                        n_builds += 1;
                        max_running = max_running.max(running.len());
                        if world.cancel_after_builds == Some(n_builds) {
                            trace.push_str("cancel\n");
                            plan.handle(Input::Cancel).unwrap();
                        }
                    }
                    Action::Register(d) => {
                        trace.push_str(&format!("register {}\n", name(plan, d)));
                        plan.handle(Input::Registered(d)).unwrap();
                    }
                    Action::NoMachine { drv, lost } => {
                        trace.push_str(&format!(
                            "no machine{} for {}\n",
                            if lost { " left" } else { "" },
                            name(plan, drv)
                        ));
                    }
                    Action::Done(s) => {
                        trace.push_str(&format!("done (max {max_running} running)\n"));
                        assert_eq!(plan.poll_action(), None);
                        return (trace, s);
                    }
                }
            }
            // One thing finishes per step: substitutions first, then the oldest build.
            if let Some(d) = substituting.pop_front() {
                let ok = !world.failing_substitution.contains(plan.drv(d));
                trace.push_str(&format!(
                    "{} {}\n",
                    if ok {
                        "substituted"
                    } else {
                        "substitute-failed"
                    },
                    name(plan, d)
                ));
                plan.handle(if ok {
                    Input::Substituted(d)
                } else {
                    Input::SubstituteFailed(d)
                })
                .unwrap();
            } else if let Some((d, machine)) = running.pop_front() {
                let url = plan.machines()[machine].url.clone();
                if world.lost_machines.contains(url.as_str()) {
                    trace.push_str(&format!("lost {} on {url}\n", name(plan, d)));
                    plan.handle(Input::BuildLost(d)).unwrap();
                    continue;
                }
                let ok = !world.failing.contains(plan.drv(d));
                trace.push_str(&format!(
                    "{} {}\n",
                    if ok { "finished" } else { "failed" },
                    name(plan, d)
                ));
                plan.handle(if ok {
                    Input::BuildFinished(d)
                } else {
                    Input::BuildFailed(d)
                })
                .unwrap();
            } else {
                panic!("plan stuck:\n{trace}");
            }
        }
        panic!("plan did not finish:\n{trace}");
    }

    fn names(plan: &Plan, ids: &[DrvId]) -> Vec<String> {
        ids.iter().map(|&d| plan.drv(d).to_string()).collect()
    }

    fn run(
        edges: &[&str],
        targets: &[&str],
        config: Config,
        world: &World,
    ) -> (String, Summary, Plan) {
        let unknown = !world.valid.is_empty();
        let targets: Vec<String> = targets.iter().map(|s| s.to_string()).collect();
        let mut plan = Plan::new(graph(edges, unknown), &targets, config).unwrap();
        let (trace, summary) = drive(&mut plan, world);
        (trace, summary, plan)
    }

    const DIAMOND: &[&str] = &["a", "b: a", "c: a", "d: b c"];

    #[test]
    fn diamond_builds_each_once_inputs_first() {
        let (trace, s, p) = run(DIAMOND, &["d"], config(), &World::default());
        assert_eq!(
            trace,
            "planned build [a b c d] fetch []\n\
             build a\nfinished a\nregister a\n\
             build b\nfinished b\nregister b\n\
             build c\nfinished c\nregister c\n\
             build d\nfinished d\nregister d\n\
             done (max 1 running)\n"
        );
        assert_eq!(names(&p, &s.built), ["a", "b", "c", "d"]);
        assert!(s.targets_valid);
    }

    #[test]
    fn diamond_with_two_jobs_runs_the_middle_in_parallel() {
        let mut c = config();
        c.machines = vec![local(2)];
        let (trace, s, _) = run(DIAMOND, &["d"], c, &World::default());
        assert_eq!(
            trace,
            "planned build [a b c d] fetch []\n\
             build a\nfinished a\nregister a\n\
             build b\nbuild c\nfinished b\nregister b\nfinished c\nregister c\n\
             build d\nfinished d\nregister d\n\
             done (max 2 running)\n"
        );
        assert_eq!(s.built.len(), 4);
    }

    #[test]
    fn the_jobs_bound_holds() {
        // Twenty independent leaves under one root.
        let mut edges: Vec<String> = (0..20).map(|i| format!("leaf{i:02}")).collect();
        edges.push(format!("root: {}", edges.join(" ")));
        let edges: Vec<&str> = edges.iter().map(String::as_str).collect();
        for jobs in [1, 3, 8] {
            let mut c = config();
            c.machines = vec![local(jobs)];
            let (trace, s, _) = run(&edges, &["root"], c, &World::default());
            assert!(
                trace.ends_with(&format!("done (max {jobs} running)\n")),
                "{trace}"
            );
            assert_eq!(s.built.len(), 21);
        }
    }

    #[test]
    fn failure_without_keep_going_stops_and_waits_for_running_builds() {
        // x fails while y runs: y is still registered, z (independent) never starts.
        let edges = ["x", "y", "z", "top: x y z"];
        let mut c = config();
        c.machines = vec![local(2)];
        let world = World {
            failing: ["x"].into(),
            ..World::default()
        };
        let (trace, s, p) = run(&edges, &["top"], c, &world);
        assert_eq!(
            trace,
            "planned build [top x y z] fetch []\n\
             build x\nbuild y\nfailed x\nfinished y\nregister y\n\
             done (max 2 running)\n"
        );
        assert_eq!(names(&p, &s.failed), ["x"]);
        assert_eq!(names(&p, &s.built), ["y"]);
        assert_eq!(names(&p, &s.dependency_failed), ["top"]);
        assert_eq!(names(&p, &s.not_started), ["z"]);
        assert!(!s.targets_valid);
    }

    #[test]
    fn failure_with_keep_going_skips_only_dependents() {
        let edges = ["x", "y", "z", "xx: x", "top: xx y z", "other: y"];
        let mut c = config();
        c.keep_going = true;
        let world = World {
            failing: ["x"].into(),
            ..World::default()
        };
        let (trace, s, p) = run(&edges, &["top", "other"], c, &world);
        assert_eq!(
            trace,
            "planned build [other top x xx y z] fetch []\n\
             build x\nfailed x\n\
             build y\nfinished y\nregister y\n\
             build other\nfinished other\nregister other\n\
             build z\nfinished z\nregister z\n\
             done (max 1 running)\n"
        );
        assert_eq!(names(&p, &s.failed), ["x"]);
        assert_eq!(names(&p, &s.dependency_failed), ["top", "xx"]);
        assert_eq!(names(&p, &s.built), ["other", "y", "z"]);
        assert!(s.not_started.is_empty());
    }

    #[test]
    fn cancellation_keeps_what_finished() {
        let mut c = config();
        c.machines = vec![local(2)];
        let world = World {
            cancel_after_builds: Some(3),
            ..World::default()
        };
        let (trace, s, p) = run(DIAMOND, &["d"], c, &world);
        assert_eq!(
            trace,
            "planned build [a b c d] fetch []\n\
             build a\nfinished a\nregister a\n\
             build b\nbuild c\ncancel\n\
             finished b\nregister b\nfinished c\nregister c\n\
             done (max 2 running)\n"
        );
        assert!(s.cancelled);
        assert_eq!(names(&p, &s.built), ["a", "b", "c"]);
        assert_eq!(names(&p, &s.not_started), ["d"]);
        assert!(!s.targets_valid);
    }

    #[test]
    fn valid_outputs_are_not_rebuilt_and_their_inputs_not_needed() {
        let world = World {
            valid: ["b", "a"].into(),
            ..World::default()
        };
        let (trace, s, p) = run(DIAMOND, &["d"], config(), &world);
        // b is valid, so only c needs a, which is valid too.
        assert_eq!(
            trace,
            "query-valid d\nquery-valid b\nquery-valid c\nquery-valid a\n\
             planned build [c d] fetch []\n\
             build c\nfinished c\nregister c\n\
             build d\nfinished d\nregister d\n\
             done (max 1 running)\n"
        );
        assert_eq!(names(&p, &s.built), ["c", "d"]);
    }

    #[test]
    fn everything_valid_builds_nothing() {
        let world = World {
            valid: ["d"].into(),
            ..World::default()
        };
        let (trace, s, _) = run(DIAMOND, &["d"], config(), &world);
        assert_eq!(
            trace,
            "query-valid d\nplanned build [] fetch []\ndone (max 0 running)\n"
        );
        assert!(s.targets_valid);
        assert!(s.built.is_empty());
    }

    #[test]
    fn substitution_replaces_builds_and_their_inputs() {
        let mut c = config();
        c.substitute = true;
        let world = World {
            substitutable: ["b"].into(),
            ..World::default()
        };
        let (trace, s, p) = run(&["a", "b: a", "c: b"], &["c"], c, &world);
        assert_eq!(
            trace,
            "query-subst c\nquery-subst b\n\
             planned build [c] fetch [b]\n\
             substitute b\nsubstituted b\n\
             build c\nfinished c\nregister c\n\
             done (max 1 running)\n"
        );
        assert_eq!(names(&p, &s.substituted), ["b"]);
    }

    #[test]
    fn failed_substitution_falls_back_only_with_fallback() {
        let world = World {
            substitutable: ["b"].into(),
            failing_substitution: ["b"].into(),
            ..World::default()
        };
        let mut c = config();
        c.substitute = true;
        let (_, s, p) = run(&["a", "b: a", "c: b"], &["c"], c.clone(), &world);
        assert_eq!(names(&p, &s.failed), ["b"]);
        assert_eq!(names(&p, &s.dependency_failed), ["c"]);
        c.fallback = true;
        let (trace, s, p) = run(&["a", "b: a", "c: b"], &["c"], c, &world);
        assert!(
            trace.contains("substitute-failed b\nquery-subst a\nbuild a\n"),
            "{trace}"
        );
        assert_eq!(names(&p, &s.built), ["a", "b", "c"]);
    }

    #[test]
    fn dry_run_lists_and_stops() {
        let mut c = config();
        c.substitute = true;
        c.dry_run = true;
        let world = World {
            substitutable: ["a"].into(),
            ..World::default()
        };
        let (trace, s, p) = run(DIAMOND, &["d"], c, &world);
        assert_eq!(
            trace,
            "query-subst d\nquery-subst b\nquery-subst c\nquery-subst a\n\
             planned build [b c d] fetch [a]\n\
             done (max 0 running)\n"
        );
        assert_eq!(names(&p, &s.not_started), ["a", "b", "c", "d"]);
        assert!(!s.cancelled);
    }

    #[test]
    fn cycles_are_errors() {
        let e = Plan::new(
            graph(&["a: c", "b: a", "c: b", "d: a"], false),
            &["d".into()],
            config(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            PlanError::Cycle(["a", "c", "b", "a"].map(String::from).to_vec())
        );
        assert_eq!(
            e.to_string(),
            "cycle in the derivation graph: a -> c -> b -> a"
        );
        let e = Plan::new(graph(&["a: a"], false), &["a".into()], config()).unwrap_err();
        assert_eq!(e, PlanError::Cycle(vec!["a".into(), "a".into()]));
        // A cycle the targets do not reach does not matter.
        assert!(Plan::new(
            graph(&["a: b", "b: a", "c"], false),
            &["c".into()],
            config()
        )
        .is_ok());
    }

    #[test]
    fn bad_graphs_and_inputs_are_refused() {
        assert_eq!(
            Plan::new(graph(&["a: zz"], false), &["a".into()], config()).unwrap_err(),
            PlanError::Unknown("zz".into())
        );
        assert_eq!(
            Plan::new(graph(&["a", "a"], false), &["a".into()], config()).unwrap_err(),
            PlanError::Duplicate("a".into())
        );
        let mut c = config();
        c.machines = vec![local(0)];
        assert_eq!(
            Plan::new(graph(&["a"], false), &["a".into()], c).unwrap_err(),
            PlanError::NoJobs
        );
        let mut p = Plan::new(graph(&["a", "b: a"], false), &["b".into()], config()).unwrap();
        let b = p.id_of("b").unwrap();
        assert_eq!(
            p.handle(Input::BuildFinished(b)).unwrap_err().to_string(),
            "build finished for 'b', which is not waiting for it"
        );
    }

    /// A remote builder: `spec` is a line of Nix's `builders` setting.
    fn remote(spec: &str) -> Machine {
        crate::machines::parse(spec, SYSTEM).unwrap().remove(0)
    }

    /// The graph of `edges`, each node's system and features set by `f`.
    fn graph_with(edges: &[&str], f: impl Fn(&mut NodeSpec)) -> Vec<NodeSpec> {
        let mut g = graph(edges, false);
        g.iter_mut().for_each(f);
        g
    }

    fn run_graph(
        g: Vec<NodeSpec>,
        targets: &[&str],
        config: Config,
        world: &World,
    ) -> (String, Summary, Plan) {
        let targets: Vec<String> = targets.iter().map(|s| s.to_string()).collect();
        let mut plan = Plan::new(g, &targets, config).unwrap();
        let (trace, summary) = drive(&mut plan, world);
        (trace, summary, plan)
    }

    const LEAVES: &[&str] = &["l1", "l2", "l3", "l4", "l5", "top: l1 l2 l3 l4 l5"];

    #[test]
    fn builds_spread_over_machines_by_free_slots_and_speed() {
        let mut c = config();
        // No local slot: everything goes remote, as with Nix's `max-jobs 0`.
        c.machines = vec![
            local(0),
            remote("grpc+http://a:1 - - 2 2"),
            remote("grpc+http://b:1 - - 2 1"),
        ];
        let (trace, s, _) = run(LEAVES, &["top"], c, &World::default());
        // a (twice as fast) first; then b, less loaded for its speed; then a again
        // (0.5 against 1); then b, the only free one.
        assert_eq!(
            trace,
            "planned build [l1 l2 l3 l4 l5 top] fetch []\n\
             build l1 on grpc+http://a:1\nbuild l2 on grpc+http://b:1\n\
             build l3 on grpc+http://a:1\nbuild l4 on grpc+http://b:1\n\
             finished l1\nregister l1\nbuild l5 on grpc+http://a:1\n\
             finished l2\nregister l2\nfinished l3\nregister l3\n\
             finished l4\nregister l4\nfinished l5\nregister l5\n\
             build top on grpc+http://a:1\nfinished top\nregister top\n\
             done (max 4 running)\n"
        );
        assert_eq!(s.built.len(), 6);
    }

    #[test]
    fn this_machine_builds_when_no_remote_slot_is_free() {
        let mut c = config();
        c.machines = vec![local(1), remote("grpc+http://a:1")];
        let (trace, _, _) = run(
            &["l1", "l2", "l3", "top: l1 l2 l3"],
            &["top"],
            c,
            &World::default(),
        );
        assert!(
            trace.starts_with(
                "planned build [l1 l2 l3 top] fetch []\n\
                 build l1 on grpc+http://a:1\nbuild l2\nfinished l1\nregister l1\n\
                 build l3 on grpc+http://a:1\n"
            ),
            "{trace}"
        );
    }

    #[test]
    fn systems_and_features_choose_the_machine() {
        let mut c = config();
        c.keep_going = true;
        c.machines = vec![
            local(1),
            remote("grpc+http://arm:1 aarch64-linux - 1 1 kvm"),
            remote("grpc+http://big:1 x86_64-linux - 1 1 - big"),
        ];
        let g = graph_with(&["arm", "big", "plain", "gpu", "kvm-x86"], |n| {
            match n.drv.as_str() {
                "arm" => n.system = "aarch64-linux".into(),
                "big" => n.required_features = ["big".to_string()].into(),
                "gpu" => n.required_features = ["gpu".to_string()].into(),
                "kvm-x86" => n.required_features = ["kvm".to_string()].into(),
                _ => {}
            }
        });
        let targets = ["arm", "big", "plain", "gpu", "kvm-x86"];
        let (trace, s, p) = run_graph(g, &targets, c, &World::default());
        // plain goes to neither remote: big requires the feature `big` (mandatory there),
        // arm builds only aarch64-linux; this machine has no features at all.
        assert_eq!(
            trace,
            "planned build [arm big gpu kvm-x86 plain] fetch []\n\
             build arm on grpc+http://arm:1\nbuild big on grpc+http://big:1\n\
             no machine for gpu\nno machine for kvm-x86\nbuild plain\n\
             finished arm\nregister arm\nfinished big\nregister big\n\
             finished plain\nregister plain\ndone (max 3 running)\n"
        );
        assert_eq!(names(&p, &s.failed), ["gpu", "kvm-x86"]);
    }

    #[test]
    fn a_lost_machine_is_not_used_again_and_its_builds_move() {
        let mut c = config();
        c.machines = vec![
            local(0),
            remote("grpc+http://a:1 - - 2"),
            remote("grpc+http://b:1 - - 1"),
        ];
        let world = World {
            lost_machines: ["grpc+http://a:1"].into(),
            ..World::default()
        };
        let (trace, s, _) = run(LEAVES, &["top"], c, &world);
        assert_eq!(
            trace,
            "planned build [l1 l2 l3 l4 l5 top] fetch []\n\
             build l1 on grpc+http://a:1\nbuild l2 on grpc+http://b:1\n\
             build l3 on grpc+http://a:1\n\
             lost l1 on grpc+http://a:1\n\
             finished l2\nregister l2\nbuild l1 on grpc+http://b:1\n\
             lost l3 on grpc+http://a:1\n\
             finished l1\nregister l1\nbuild l3 on grpc+http://b:1\n\
             finished l3\nregister l3\nbuild l4 on grpc+http://b:1\n\
             finished l4\nregister l4\nbuild l5 on grpc+http://b:1\n\
             finished l5\nregister l5\nbuild top on grpc+http://b:1\n\
             finished top\nregister top\ndone (max 3 running)\n"
        );
        assert!(s.targets_valid && s.failed.is_empty());
    }

    #[test]
    fn with_every_able_machine_lost_the_build_fails() {
        let mut c = config();
        c.machines = vec![local(0), remote("grpc+http://a:1")];
        let world = World {
            lost_machines: ["grpc+http://a:1"].into(),
            ..World::default()
        };
        let (trace, s, p) = run(&["x", "top: x"], &["top"], c.clone(), &world);
        assert_eq!(
            trace,
            "planned build [top x] fetch []\nbuild x on grpc+http://a:1\n\
             lost x on grpc+http://a:1\nno machine left for x\ndone (max 1 running)\n"
        );
        assert_eq!(names(&p, &s.failed), ["x"]);
        assert_eq!(names(&p, &s.dependency_failed), ["top"]);
        // A machine down from the start is never used.
        let mut p = Plan::new(graph(&["x"], false), &["x".into()], c).unwrap();
        p.handle(Input::MachineDown(1)).unwrap();
        assert!(matches!(p.poll_action(), Some(Action::Planned { .. })));
        assert!(matches!(
            p.poll_action(),
            Some(Action::NoMachine { lost: true, .. })
        ));
        assert!(p.handle(Input::MachineDown(7)).is_err());
    }

    #[test]
    fn builtin_builders_and_prefer_local_build_here() {
        let mut c = config();
        c.machines = vec![local(0), remote("grpc+http://a:1 - - 4")];
        let g = graph_with(&["fetch", "b", "top: fetch b"], |n| {
            n.builtin = n.drv == "fetch";
            n.system = if n.builtin {
                "builtin".into()
            } else {
                SYSTEM.into()
            };
        });
        let (trace, _, _) = run_graph(g, &["top"], c.clone(), &World::default());
        assert!(
            trace.starts_with(
                "planned build [b fetch top] fetch []\nbuild b on grpc+http://a:1\nbuild fetch\n"
            ),
            "{trace}"
        );
        c.machines[0].max_jobs = 1;
        let g = graph_with(&["a", "b"], |n| n.prefer_local = n.drv == "b");
        let (trace, _, _) = run_graph(g, &["a", "b"], c, &World::default());
        assert!(
            trace
                .starts_with("planned build [a b] fetch []\nbuild a on grpc+http://a:1\nbuild b\n"),
            "{trace}"
        );
    }

    #[test]
    fn a_deep_chain_is_fine() {
        // 100 000 derivations in a line: no recursion in the plan.
        let n = 100_000;
        let specs: Vec<NodeSpec> = (0..n)
            .map(|i| NodeSpec {
                drv: format!("d{i:06}"),
                inputs: if i > 0 {
                    vec![format!("d{:06}", i - 1)]
                } else {
                    vec![]
                },
                outputs: vec![],
                validity: Validity::Invalid,
                system: SYSTEM.into(),
                required_features: BTreeSet::new(),
                builtin: false,
                prefer_local: false,
            })
            .collect();
        let mut c = config();
        c.dry_run = true;
        let mut p = Plan::new(specs, &[format!("d{:06}", n - 1)], c).unwrap();
        match p.poll_action() {
            Some(Action::Planned { build, .. }) => assert_eq!(build.len(), n),
            a => panic!("{a:?}"),
        }
    }
}
