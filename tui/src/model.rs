//! The dashboard's state: what a build run has reported so far, updated by owned
//! [`Update`]s. Pure: no IO, no clock (every update comes with the time since the run
//! started), so it is tested by feeding updates.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tvix_coordinator::eval_progress::EvalCounts;

use crate::history::History;

/// How many log lines of one build are kept in memory; older ones are counted and left
/// to the log store (`tvix log`), so a huge log costs bounded memory.
pub const LOG_LINES_KEPT: usize = 2_000;
/// Longest log line kept, in bytes; the rest of a longer line is cut.
pub const LOG_LINE_MAX: usize = 1_024;
/// Lines of a failed build's log shown on the dashboard.
pub const FAILURE_TAIL: usize = 5;
/// The window download rates are averaged over.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// What the plan does with a derivation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Built here (or on a remote builder).
    Build,
    /// Its outputs are fetched from a substituter.
    Fetch,
}

/// One derivation of a plan, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedDrv {
    /// The `.drv` path.
    pub drv: String,
    /// What the plan does with it.
    pub action: Action,
    /// `.drv` paths of its inputs (those outside the plan are ignored).
    pub inputs: Vec<String>,
}

/// Something that happened, owned (see [`crate::convert`] for where updates come from).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// Derivations that will be built or fetched (may come more than once).
    Planned(Vec<PlannedDrv>),
    /// A substitution of `drv` (or of a store path, from Nix's log) started.
    SubstitutionStarted {
        /// The derivation or path.
        drv: String,
        /// The substituter.
        from: String,
    },
    /// A substitution ended.
    SubstitutionFinished {
        /// The derivation or path.
        drv: String,
        /// Whether the outputs are valid now.
        ok: bool,
    },
    /// A build started on `machine`.
    BuildStarted {
        /// The derivation.
        drv: String,
        /// The machine (`localhost` or empty for a local build).
        machine: String,
    },
    /// A line of a build's log.
    Log {
        /// The derivation.
        drv: String,
        /// The line, without its newline.
        line: String,
    },
    /// A build entered a phase.
    Phase {
        /// The derivation.
        drv: String,
        /// The phase.
        phase: String,
    },
    /// A build finished and its outputs are valid.
    BuildFinished {
        /// The derivation.
        drv: String,
    },
    /// A build (or substitution) failed.
    BuildFailed {
        /// The derivation.
        drv: String,
        /// The message (`builder for '...' failed with exit code 1`).
        message: String,
        /// The last lines of its log, when the source has them.
        log_tail: Vec<String>,
    },
    /// A derivation is not built because an input failed.
    DependencyFailed {
        /// The derivation.
        drv: String,
    },
    /// Bytes moved by a transfer (a download; Nix's fileTransfer and copyPath progress).
    Transfer {
        /// The transfer's identity (unique within a run).
        id: u64,
        /// Bytes done.
        done: u64,
        /// Bytes expected (0 when unknown).
        expected: u64,
    },
    /// A message of the tool (a warning, an error, a line that is no record).
    Message {
        /// Nix's level (0 error, 1 warning, ...).
        level: u8,
        /// The text.
        text: String,
    },
    /// The user asked to cancel the run.
    CancelRequested,
    /// The run is over.
    Ended {
        /// Whether it was cancelled.
        cancelled: bool,
    },
    /// The evaluation (before any build) has got this far.
    Evaluating(EvalCounts),
    /// The evaluation is over, with these counts.
    Evaluated(EvalCounts),
    /// Nothing happened; the time moved (timers on screen).
    Tick,
}

/// How far the evaluation before the builds got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// Files read and derivations instantiated.
    pub counts: EvalCounts,
    /// When it ended (`None` while it runs).
    pub ended: Option<Duration>,
}

/// `12 files read, 3 derivations instantiated`.
pub fn eval_counts_text(c: EvalCounts) -> String {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{} read, {} instantiated",
        plural(c.files_read, "file", "files"),
        plural(c.derivations, "derivation", "derivations")
    )
}

/// Where a derivation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// To be built or fetched, not started.
    Planned,
    /// Its outputs are being fetched.
    Substituting,
    /// Being built.
    Building,
    /// Built.
    Built,
    /// Fetched.
    Substituted,
    /// Failed itself.
    Failed,
    /// Not built because an input failed.
    DependencyFailed,
}

impl State {
    /// Whether the derivation is running (building or fetching).
    pub fn running(self) -> bool {
        matches!(self, State::Building | State::Substituting)
    }
}

/// The last lines of a log, bounded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogTail {
    lines: VecDeque<String>,
    dropped: u64,
}

impl LogTail {
    /// Adds a line (without terminal escapes, cut to [`LOG_LINE_MAX`] bytes), dropping
    /// the oldest beyond [`LOG_LINES_KEPT`].
    pub fn push(&mut self, line: String) {
        let mut line = printable(line);
        if line.len() > LOG_LINE_MAX {
            let mut cut = LOG_LINE_MAX;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        if self.lines.len() == LOG_LINES_KEPT {
            self.lines.pop_front();
            self.dropped += 1;
        }
        self.lines.push_back(line);
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.lines.iter().map(String::as_str)
    }

    /// The `n`th kept line.
    pub fn get(&self, n: usize) -> Option<&str> {
        self.lines.get(n).map(String::as_str)
    }

    /// How many lines are kept.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether no line is kept.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// How many older lines were dropped.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The last line.
    pub fn last(&self) -> Option<&str> {
        self.lines.back().map(String::as_str)
    }
}

/// Why a derivation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The message.
    pub message: String,
    /// The last lines of its log.
    pub log_tail: Vec<String>,
}

/// One derivation the run knows about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The `.drv` path (or a store path, for substitutions Nix reports by path).
    pub drv: String,
    /// The name: the path without store directory, hash and `.drv`.
    pub name: String,
    /// Indices of its inputs among the nodes.
    pub inputs: Vec<usize>,
    /// Where it stands.
    pub state: State,
    /// What the plan does with it (`None` when it was reported without a plan).
    pub action: Option<Action>,
    /// When it started.
    pub started: Option<Duration>,
    /// When it ended.
    pub ended: Option<Duration>,
    /// The machine building it, or the substituter fetching it.
    pub host: String,
    /// The current phase.
    pub phase: Option<String>,
    /// Its log so far.
    pub log: LogTail,
    /// Why it failed.
    pub failure: Option<Failure>,
    /// Whether some node has it as input.
    pub is_input: bool,
}

/// Counts shown on the dashboard, derived from the nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Planned, not started.
    pub planned: usize,
    /// Building now.
    pub building: usize,
    /// Fetching now.
    pub substituting: usize,
    /// Built.
    pub built: usize,
    /// Fetched.
    pub substituted: usize,
    /// Failed themselves.
    pub failed: usize,
    /// Not built because an input failed.
    pub dependency_failed: usize,
}

/// `text` without terminal escape sequences and control characters (tabs become spaces),
/// so a build's colours cannot move the dashboard's cursor.
pub fn printable(text: String) -> String {
    if !text.chars().any(|c| c.is_control()) {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI (`ESC [ ... final`) and OSC (`ESC ] ... BEL|ESC \\`); other escapes
                // are two characters.
                match chars.next() {
                    Some('[') => {
                        for c in chars.by_ref() {
                            if ('@'..='~').contains(&c) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        while let Some(c) = chars.next() {
                            if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            }
            '\t' => out.push_str("    "),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The name of a store path: without `/nix/store/`, the hash and `.drv`.
pub fn drv_name(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    let name = match base.split_once('-') {
        Some((hash, rest)) if hash.len() == 32 => rest,
        _ => base,
    };
    name.strip_suffix(".drv").unwrap_or(name)
}

/// The dashboard's state.
#[derive(Clone, Debug)]
pub struct Model {
    nodes: Vec<Node>,
    index: BTreeMap<String, usize>,
    /// Nodes in the order their builds started (for the running list).
    start_order: Vec<usize>,
    /// Nodes in the order they failed.
    failed_order: Vec<usize>,
    transfers: BTreeMap<u64, (u64, u64)>,
    /// (time, total bytes) samples within the rate window.
    samples: VecDeque<(Duration, u64)>,
    messages: VecDeque<(u8, String)>,
    history: History,
    /// Successful builds' (name, duration), for the history store.
    finished: Vec<(String, Duration)>,
    now: Duration,
    cancel_requested: bool,
    ended: Option<(Duration, bool)>,
    evaluation: Option<Evaluation>,
}

/// Messages kept for the screen.
const MESSAGES_KEPT: usize = 50;

impl Model {
    /// An empty run; `history` gives the estimates of builds.
    pub fn new(history: History) -> Model {
        Model {
            nodes: Vec::new(),
            index: BTreeMap::new(),
            start_order: Vec::new(),
            failed_order: Vec::new(),
            transfers: BTreeMap::new(),
            samples: VecDeque::new(),
            messages: VecDeque::new(),
            history,
            finished: Vec::new(),
            now: Duration::ZERO,
            cancel_requested: false,
            ended: None,
            evaluation: None,
        }
    }

    /// Applies `update`, which happened `now` after the run started (times never go
    /// back: an earlier `now` counts as the latest one seen). Returns whether anything
    /// shown may have changed.
    pub fn update(&mut self, now: Duration, update: Update) -> bool {
        let tick_changed = now.as_secs() != self.now.as_secs();
        self.now = self.now.max(now);
        let now = self.now;
        match update {
            Update::Planned(drvs) => {
                // A plan comes after the evaluation.
                if let Some(e) = self.evaluation.as_mut() {
                    e.ended.get_or_insert(now);
                }
                for p in &drvs {
                    let i = self.node(&p.drv);
                    if self.nodes[i].action.is_none() {
                        self.nodes[i].action = Some(p.action);
                    }
                }
                for p in drvs {
                    let i = self.index[&p.drv];
                    for input in p.inputs {
                        // Inputs outside the plan are not shown.
                        if let Some(&j) = self.index.get(&input) {
                            if !self.nodes[i].inputs.contains(&j) && i != j {
                                self.nodes[i].inputs.push(j);
                                self.nodes[j].is_input = true;
                            }
                        }
                    }
                }
            }
            Update::SubstitutionStarted { drv, from } => {
                let i = self.node(&drv);
                let n = &mut self.nodes[i];
                n.state = State::Substituting;
                n.action.get_or_insert(Action::Fetch);
                n.host = from;
                n.started = Some(now);
                self.start_order.push(i);
            }
            Update::SubstitutionFinished { drv, ok } => {
                let i = self.node(&drv);
                let n = &mut self.nodes[i];
                n.ended = Some(now);
                if ok {
                    n.state = State::Substituted;
                } else if n.state == State::Substituting {
                    // A failed substitution falls back to building (when allowed); a
                    // real failure comes as its own update.
                    n.state = State::Planned;
                    n.action = Some(Action::Build);
                }
            }
            Update::BuildStarted { drv, machine } => {
                let i = self.node(&drv);
                let n = &mut self.nodes[i];
                n.state = State::Building;
                n.action.get_or_insert(Action::Build);
                n.host = if machine.is_empty() {
                    "localhost".to_string()
                } else {
                    machine
                };
                n.started = Some(now);
                n.ended = None;
                n.phase = None;
                self.start_order.push(i);
            }
            Update::Log { drv, line } => {
                let i = self.node(&drv);
                self.nodes[i].log.push(line);
            }
            Update::Phase { drv, phase } => {
                let i = self.node(&drv);
                self.nodes[i].phase = Some(phase);
            }
            Update::BuildFinished { drv } => {
                let i = self.node(&drv);
                let n = &mut self.nodes[i];
                n.state = State::Built;
                n.ended = Some(now);
                n.phase = None;
                if let Some(start) = n.started {
                    self.finished
                        .push((n.name.clone(), now.saturating_sub(start)));
                }
            }
            Update::BuildFailed {
                drv,
                message,
                mut log_tail,
            } => {
                let i = self.node(&drv);
                let n = &mut self.nodes[i];
                if log_tail.is_empty() {
                    let skip = n.log.len().saturating_sub(FAILURE_TAIL);
                    log_tail = n.log.lines().skip(skip).map(str::to_string).collect();
                }
                if n.state == State::Built {
                    // Nix's log says a build failed after its activity stopped, which
                    // looked like success: it took no time worth remembering.
                    let name = n.name.clone();
                    if let Some(k) = self.finished.iter().rposition(|(f, _)| *f == name) {
                        self.finished.remove(k);
                    }
                } else {
                    n.ended = Some(now);
                }
                n.state = State::Failed;
                n.failure = Some(Failure { message, log_tail });
                if !self.failed_order.contains(&i) {
                    self.failed_order.push(i);
                }
            }
            Update::DependencyFailed { drv } => {
                let i = self.node(&drv);
                self.nodes[i].state = State::DependencyFailed;
            }
            Update::Transfer { id, done, expected } => {
                self.transfers.insert(id, (done, expected));
                let total = self.downloaded();
                self.samples.push_back((now, total));
                self.trim_samples();
            }
            Update::Message { level, text } => {
                if self.messages.len() == MESSAGES_KEPT {
                    self.messages.pop_front();
                }
                self.messages.push_back((level, printable(text)));
            }
            Update::CancelRequested => self.cancel_requested = true,
            Update::Ended { cancelled } => {
                self.ended = Some((now, cancelled || self.cancel_requested));
                // What never finished is not running any more.
                for n in &mut self.nodes {
                    if n.state.running() {
                        n.state = State::Planned;
                        n.ended = Some(now);
                    }
                }
            }
            Update::Evaluating(counts) => {
                if self.evaluation.is_some_and(|e| e.counts == counts) {
                    return false;
                }
                self.evaluation = Some(Evaluation {
                    counts,
                    ended: None,
                });
            }
            Update::Evaluated(counts) => {
                self.evaluation = Some(Evaluation {
                    counts,
                    ended: Some(now),
                });
            }
            Update::Tick => {
                self.trim_samples();
                return tick_changed && self.has_timers();
            }
        }
        true
    }

    /// Whether something on screen shows a timer (a running build, the run's clock).
    fn has_timers(&self) -> bool {
        self.ended.is_none()
    }

    fn trim_samples(&mut self) {
        while self.samples.len() > 1 && self.now.saturating_sub(self.samples[0].0) > RATE_WINDOW {
            self.samples.pop_front();
        }
    }

    /// The index of the node of `drv`, added when new.
    fn node(&mut self, drv: &str) -> usize {
        if let Some(&i) = self.index.get(drv) {
            return i;
        }
        let i = self.nodes.len();
        self.nodes.push(Node {
            drv: drv.to_string(),
            name: drv_name(drv).to_string(),
            inputs: Vec::new(),
            state: State::Planned,
            action: None,
            started: None,
            ended: None,
            host: String::new(),
            phase: None,
            log: LogTail::default(),
            failure: None,
            is_input: false,
        });
        self.index.insert(drv.to_string(), i);
        i
    }

    /// Every node, in the order they became known.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node of `drv`.
    pub fn get(&self, drv: &str) -> Option<&Node> {
        self.index.get(drv).map(|&i| &self.nodes[i])
    }

    /// The running builds and substitutions, in the order they started.
    pub fn running(&self) -> impl Iterator<Item = &Node> {
        self.start_order
            .iter()
            .map(|&i| &self.nodes[i])
            .filter(|n| n.state.running())
    }

    /// The failed derivations, in the order they failed.
    pub fn failed(&self) -> impl Iterator<Item = &Node> {
        self.failed_order.iter().map(|&i| &self.nodes[i])
    }

    /// Derivations built or fetched, the most recently ended first.
    pub fn finished_builds(&self) -> Vec<&Node> {
        let mut done: Vec<&Node> = self
            .nodes
            .iter()
            .filter(|n| matches!(n.state, State::Built | State::Substituted))
            .collect();
        done.sort_by_key(|n| std::cmp::Reverse(n.ended));
        done
    }

    /// The counts.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for n in &self.nodes {
            match n.state {
                State::Planned => c.planned += 1,
                State::Substituting => c.substituting += 1,
                State::Building => c.building += 1,
                State::Built => c.built += 1,
                State::Substituted => c.substituted += 1,
                State::Failed => c.failed += 1,
                State::DependencyFailed => c.dependency_failed += 1,
            }
        }
        c
    }

    /// Bytes downloaded so far.
    pub fn downloaded(&self) -> u64 {
        self.transfers.values().map(|(done, _)| done).sum()
    }

    /// How many transfers (downloaded paths) the run reported.
    pub fn transfers(&self) -> usize {
        self.transfers.len()
    }

    /// Bytes per second over the last few seconds.
    pub fn download_rate(&self) -> u64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, b0)), Some(&(t1, b1))) if t1 > t0 => {
                let secs = (t1 - t0).as_secs_f64();
                (b1.saturating_sub(b0) as f64 / secs) as u64
            }
            _ => 0,
        }
    }

    /// The estimate of a build of `name`, from the history.
    pub fn estimate(&self, name: &str) -> Option<Duration> {
        self.history.median(name)
    }

    /// The latest time seen.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Messages, oldest first.
    pub fn messages(&self) -> impl Iterator<Item = (u8, &str)> {
        self.messages.iter().map(|(l, m)| (*l, m.as_str()))
    }

    /// How far the evaluation got (`None` when the run reported no evaluation).
    pub fn evaluation(&self) -> Option<Evaluation> {
        self.evaluation
    }

    /// Whether the evaluation before the builds still runs.
    pub fn evaluating(&self) -> bool {
        self.evaluation.is_some_and(|e| e.ended.is_none()) && self.ended.is_none()
    }

    /// Whether cancellation was asked for.
    pub fn cancel_requested(&self) -> bool {
        self.cancel_requested
    }

    /// When the run ended and whether it was cancelled.
    pub fn ended(&self) -> Option<(Duration, bool)> {
        self.ended
    }

    /// Successful builds and how long each took, for the history.
    pub fn finished_durations(&self) -> &[(String, Duration)] {
        &self.finished
    }

    /// Whether some derivation failed.
    pub fn any_failed(&self) -> bool {
        !self.failed_order.is_empty()
    }

    /// The summary line (`built 3, substituted 1, failed 1 in 1:02, cancelled`).
    pub fn summary(&self) -> String {
        let c = self.counts();
        let (at, cancelled) = self.ended.unwrap_or((self.now, self.cancel_requested));
        let mut s = format!(
            "built {}, substituted {}, failed {}",
            c.built, c.substituted, c.failed
        );
        if c.dependency_failed > 0 {
            s.push_str(&format!(" (+{} not built)", c.dependency_failed));
        }
        s.push_str(&format!(" in {}", clock(at)));
        if cancelled {
            s.push_str(", cancelled");
        }
        s
    }
}

/// A duration as `m:ss` (or `h:mm:ss`).
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Bytes in binary units (`12.3 MiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a.drv";
    const B: &str = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b-1.0.drv";

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn plan() -> Update {
        Update::Planned(vec![
            PlannedDrv {
                drv: A.into(),
                action: Action::Build,
                inputs: vec![B.into(), "/nix/store/outside.drv".into()],
            },
            PlannedDrv {
                drv: B.into(),
                action: Action::Build,
                inputs: vec![],
            },
        ])
    }

    #[test]
    fn names() {
        assert_eq!(drv_name(A), "a");
        assert_eq!(drv_name(B), "b-1.0");
        assert_eq!(drv_name("plain"), "plain");
    }

    #[test]
    fn a_run_counts_and_times() {
        let mut m = Model::new(History::default());
        assert!(m.update(secs(0), plan()));
        assert_eq!(m.nodes().len(), 2);
        assert_eq!(m.get(A).unwrap().inputs, vec![1]);
        assert!(m.get(B).unwrap().is_input);
        m.update(
            secs(1),
            Update::BuildStarted {
                drv: B.into(),
                machine: String::new(),
            },
        );
        assert_eq!(m.get(B).unwrap().host, "localhost");
        assert_eq!(m.counts().building, 1);
        assert_eq!(m.counts().planned, 1);
        m.update(secs(4), Update::BuildFinished { drv: B.into() });
        assert_eq!(m.finished_durations(), &[("b-1.0".to_string(), secs(3))]);
        m.update(
            secs(5),
            Update::BuildStarted {
                drv: A.into(),
                machine: "m1".into(),
            },
        );
        m.update(
            secs(6),
            Update::Log {
                drv: A.into(),
                line: "oops".into(),
            },
        );
        m.update(
            secs(7),
            Update::BuildFailed {
                drv: A.into(),
                message: "builder failed".into(),
                log_tail: vec![],
            },
        );
        let failure = m.get(A).unwrap().failure.clone().unwrap();
        assert_eq!(failure.log_tail, vec!["oops".to_string()]);
        assert!(m.any_failed());
        m.update(secs(8), Update::Ended { cancelled: false });
        assert_eq!(m.summary(), "built 1, substituted 0, failed 1 in 0:08");
    }

    #[test]
    fn time_never_goes_back_and_ticks_change_once_a_second() {
        let mut m = Model::new(History::default());
        m.update(secs(5), Update::Tick);
        m.update(secs(2), Update::Tick);
        assert_eq!(m.now(), secs(5));
        assert!(!m.update(Duration::from_millis(5_500), Update::Tick));
        assert!(m.update(secs(6), Update::Tick));
        m.update(secs(6), Update::Ended { cancelled: false });
        assert!(!m.update(secs(7), Update::Tick));
    }

    #[test]
    fn logs_are_bounded() {
        let mut m = Model::new(History::default());
        for i in 0..(LOG_LINES_KEPT + 10) {
            m.update(
                secs(0),
                Update::Log {
                    drv: A.into(),
                    line: format!("line {i}"),
                },
            );
        }
        let log = &m.get(A).unwrap().log;
        assert_eq!(log.len(), LOG_LINES_KEPT);
        assert_eq!(log.dropped(), 10);
        assert_eq!(log.get(0), Some("line 10"));
        let long = "é".repeat(LOG_LINE_MAX);
        m.update(
            secs(0),
            Update::Log {
                drv: A.into(),
                line: long,
            },
        );
        assert!(m.get(A).unwrap().log.last().unwrap().len() <= LOG_LINE_MAX);
    }

    #[test]
    fn cancellation_and_rates() {
        let mut m = Model::new(History::default());
        m.update(
            secs(0),
            Update::Transfer {
                id: 1,
                done: 0,
                expected: 100,
            },
        );
        m.update(
            secs(2),
            Update::Transfer {
                id: 1,
                done: 2048,
                expected: 4096,
            },
        );
        assert_eq!(m.downloaded(), 2048);
        assert_eq!(m.download_rate(), 1024);
        m.update(
            secs(3),
            Update::SubstitutionStarted {
                drv: B.into(),
                from: "cache".into(),
            },
        );
        m.update(secs(3), Update::CancelRequested);
        m.update(secs(4), Update::Ended { cancelled: false });
        assert_eq!(m.counts().substituting, 0);
        assert!(m.summary().ends_with(", cancelled"));
    }

    #[test]
    fn escapes_are_removed() {
        assert_eq!(
            printable("\x1b[31;1merror:\x1b[0m a\tb\x07".into()),
            "error: a    b"
        );
        assert_eq!(printable("\x1b]0;title\x07x\x1b]8;;u\x1b\\y".into()), "xy");
        assert_eq!(printable("plain".into()), "plain");
    }

    #[test]
    fn a_failure_after_a_stop_is_a_failure() {
        let mut m = Model::new(History::default());
        let started = Update::BuildStarted {
            drv: A.into(),
            machine: String::new(),
        };
        m.update(secs(0), started);
        m.update(secs(2), Update::BuildFinished { drv: A.into() });
        m.update(
            secs(2),
            Update::BuildFailed {
                drv: A.into(),
                message: "m".into(),
                log_tail: vec![],
            },
        );
        assert_eq!(m.counts().failed, 1);
        assert_eq!(m.counts().built, 0);
        assert!(m.finished_durations().is_empty());
    }

    #[test]
    fn evaluation_progress() {
        let mut m = Model::new(History::default());
        assert!(!m.evaluating());
        let counts = |files_read, derivations| EvalCounts {
            files_read,
            derivations,
        };
        assert!(m.update(secs(1), Update::Evaluating(counts(3, 0))));
        assert!(m.evaluating());
        // The same counts again change nothing on screen.
        assert!(!m.update(secs(1), Update::Evaluating(counts(3, 0))));
        m.update(secs(2), Update::Evaluated(counts(4, 2)));
        assert!(!m.evaluating());
        assert_eq!(
            m.evaluation(),
            Some(Evaluation {
                counts: counts(4, 2),
                ended: Some(secs(2))
            })
        );
        assert_eq!(
            eval_counts_text(counts(1, 2)),
            "1 file read, 2 derivations instantiated"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(clock(secs(65)), "1:05");
        assert_eq!(clock(secs(3725)), "1:02:05");
        assert_eq!(bytes(12), "12 B");
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}
