//! What a build run reports, for every surface (the CLI's Nix-style lines, the dashboard,
//! Nix's `internal-json` log, the language server's progress) to render as it likes.
//!
//! Events borrow from the executor and are delivered synchronously to each subscriber, on
//! the thread where they happen: the executor's thread for planning, progress and results,
//! a build's worker thread for its log lines and phases. A subscriber must therefore be
//! `Sync` and quick (a slow one delays the build whose lines it receives). Events carry no
//! serde derive on purpose: a surface converts them to its own format.

use crate::plan::{DrvId, Plan};

/// Counts of the run so far, sent after every change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Derivations the plan builds (as planned; a failed substitution with fallback adds
    /// one).
    pub builds_total: usize,
    /// Builds running now.
    pub builds_running: usize,
    /// Builds finished and registered.
    pub builds_done: usize,
    /// Builds failed, and derivations skipped because an input failed.
    pub builds_failed: usize,
    /// Derivations the plan substitutes.
    pub substitutions_total: usize,
    /// Substitutions running now.
    pub substitutions_running: usize,
    /// Substitutions finished.
    pub substitutions_done: usize,
}

/// One thing that happened.
#[derive(Debug)]
pub enum Event<'a> {
    /// The plan is known: the graph, what will be built and what will be fetched.
    Planned {
        /// The whole graph (derivations, their inputs and outputs).
        plan: &'a Plan,
        /// Derivations to build, in `.drv` path order.
        build: &'a [DrvId],
        /// Derivations whose outputs are substituted.
        fetch: &'a [DrvId],
    },
    /// A substitution started.
    SubstitutionStarted {
        /// The derivation whose outputs are fetched.
        drv: &'a str,
        /// The substituter.
        from: &'a str,
    },
    /// A substitution copies one path (an output or something it refers to).
    Copying {
        /// The store path.
        path: &'a str,
        /// The substituter.
        from: &'a str,
    },
    /// Bytes of the path a substitution copies have arrived (after its `Copying`).
    Transfer {
        /// The store path.
        path: &'a str,
        /// Bytes so far.
        done: u64,
        /// Bytes expected (0 when unknown).
        expected: u64,
    },
    /// A substitution ended.
    SubstitutionFinished {
        /// The derivation.
        drv: &'a str,
        /// Whether its outputs are valid now.
        ok: bool,
    },
    /// A build was handed to the build service.
    BuildStarted {
        /// The derivation.
        drv: &'a str,
        /// The machine running it (`localhost` for a local backend).
        machine: &'a str,
    },
    /// A line of a build's log, without its newline.
    Log {
        /// The derivation.
        drv: &'a str,
        /// The line.
        line: &'a [u8],
    },
    /// A build entered a phase (`unpackPhase`, ...).
    Phase {
        /// The derivation.
        drv: &'a str,
        /// The phase.
        phase: &'a str,
    },
    /// A failed build's directory was kept (`--keep-failed`).
    KeptBuildDir {
        /// The derivation.
        drv: &'a str,
        /// Where, on the building machine.
        dir: &'a str,
    },
    /// Counts changed.
    Progress(Progress),
    /// A build finished and its outputs are registered.
    BuildFinished {
        /// The derivation.
        drv: &'a str,
    },
    /// A build failed (or its outputs failed their checks or registration).
    BuildFailed {
        /// The derivation.
        drv: &'a str,
        /// Nix's message (`builder for '...' failed with exit code 1`).
        message: String,
        /// The last lines of its log (empty when the failure is not the builder's).
        log_tail: &'a [String],
    },
    /// Something was passed over or refused and the run goes on (an unreachable or
    /// untrusted binary cache, a corrupt substitute); Nix prints these as `warning: `.
    Warning {
        /// The message, without `warning: `.
        message: &'a str,
    },
    /// A derivation is not built because an input failed.
    DependencyFailed {
        /// The derivation.
        drv: &'a str,
    },
}

/// Something that receives events: any `Fn(&Event) + Sync`.
pub trait Subscriber: Sync {
    /// Receives one event.
    fn event(&self, event: &Event<'_>);
}

impl<F: Fn(&Event<'_>) + Sync> Subscriber for F {
    fn event(&self, event: &Event<'_>) {
        self(event)
    }
}
