//! A build run's events as Nix's `internal-json` records, the way Nix 2.8's `nix-build`
//! writes them: the plan as `msg` lines, a realise activity (102) holding the builds (104)
//! and path copies (103) activities with their progress, one build activity (105) per
//! started build with its log lines (result 101) and phases (result 104), and a
//! substitute (108) and copy-path (100) activity per substituted path.
//!
//! [`Translator`] is the state machine (events in, records out, no IO);
//! [`InternalJsonOutput`] is the [`Subscriber`] that writes its records.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::ThreadId;

use super::record::{ActivityType, Field, LogRecord, ResultType};
use crate::events::{Event, Progress, Subscriber};
use crate::nix_output::{fetched_message, planned_message};

/// Nix's verbosity levels used here.
pub mod level {
    /// Errors (and the run's own activities, which Nix starts at this level).
    pub const ERROR: u8 = 0;
    /// Warnings.
    pub const WARN: u8 = 1;
    /// Informational messages: the plan, builds, copies (Nix's default verbosity).
    pub const INFO: u8 = 3;
}

/// A fresh activity id, unique in this process however many outputs it has: the process
/// id in the high 32 bits and a counter in the low ones, as Nix numbers them (so ids of
/// two processes writing to one stream do not collide either).
fn fresh_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    (u64::from(std::process::id()) << 32) | (n & 0xffff_ffff)
}

/// The run's own activities, started when the plan is known.
#[derive(Clone, Copy, Debug)]
struct RunActivities {
    realise: u64,
    builds: u64,
    copy_paths: u64,
}

/// The `internal-json` state of one run: which activities are open. Feed it events with
/// [`Translator::event`], and call [`Translator::finish`] when the run is over (also after
/// a failure or cancellation): it stops whatever is still open, so every started activity
/// is stopped exactly once.
#[derive(Debug)]
pub struct Translator {
    verbosity: u8,
    run: Option<RunActivities>,
    /// Open build activities by `.drv` path.
    builds: BTreeMap<String, u64>,
    /// The thread each running substitution reports its copies on (a substitution's
    /// `Copying` events carry no derivation, but come from the substitution's thread).
    substitution_threads: HashMap<String, ThreadId>,
    /// The open substitute and copy-path activities of each substitution thread.
    copies: HashMap<ThreadId, [u64; 2]>,
    /// Builds that failed (not those skipped because an input failed: Nix does not count
    /// them as failed, it stops expecting them).
    failed_builds: u64,
    /// Substitutions that failed.
    failed_substitutions: u64,
    last_progress: Progress,
}

impl Translator {
    /// A translator writing messages up to `verbosity` (activities are written whatever
    /// their level, as Nix does).
    pub fn new(verbosity: u8) -> Translator {
        Translator {
            verbosity,
            run: None,
            builds: BTreeMap::new(),
            substitution_threads: HashMap::new(),
            copies: HashMap::new(),
            failed_builds: 0,
            failed_substitutions: 0,
            last_progress: Progress::default(),
        }
    }

    /// A message at `level` (nothing above the verbosity).
    pub fn message(&self, level: u8, msg: &str) -> Option<LogRecord> {
        (level <= self.verbosity).then(|| LogRecord::Msg {
            level,
            msg: msg.to_string(),
        })
    }

    fn start(
        out: &mut Vec<LogRecord>,
        level: u8,
        activity: ActivityType,
        text: String,
        fields: Vec<Field>,
        parent: u64,
    ) -> u64 {
        let id = fresh_id();
        out.push(LogRecord::Start {
            id,
            level,
            activity,
            text,
            fields,
            parent,
        });
        id
    }

    fn result(out: &mut Vec<LogRecord>, id: u64, result: ResultType, fields: Vec<Field>) {
        out.push(LogRecord::Result { id, result, fields });
    }

    /// The records for `event`, which happened on `thread`.
    pub fn event(&mut self, event: &Event<'_>, thread: ThreadId) -> Vec<LogRecord> {
        let mut out = Vec::new();
        match event {
            Event::Planned { plan, build, fetch } => {
                // Nix prints the plan one line per message.
                let mut text = Vec::new();
                if !build.is_empty() {
                    let list: Vec<String> =
                        build.iter().map(|&d| plan.drv(d).to_string()).collect();
                    text.push(planned_message(&list));
                }
                if !fetch.is_empty() {
                    let list: Vec<String> = fetch
                        .iter()
                        .flat_map(|&d| plan.outputs(d).iter().cloned())
                        .collect();
                    text.push(fetched_message(&list));
                }
                for line in text.iter().flat_map(|t| t.lines()) {
                    out.extend(self.message(level::INFO, line));
                }
                if self.run.is_none() {
                    let realise = Self::start(
                        &mut out,
                        level::ERROR,
                        ActivityType::Realise,
                        String::new(),
                        vec![],
                        0,
                    );
                    let builds = Self::start(
                        &mut out,
                        level::ERROR,
                        ActivityType::Builds,
                        String::new(),
                        vec![],
                        realise,
                    );
                    let copy_paths = Self::start(
                        &mut out,
                        level::ERROR,
                        ActivityType::CopyPaths,
                        String::new(),
                        vec![],
                        realise,
                    );
                    self.run = Some(RunActivities {
                        realise,
                        builds,
                        copy_paths,
                    });
                }
            }
            Event::Progress(p) => {
                self.last_progress = *p;
                self.progress(&mut out);
            }
            Event::SubstitutionStarted { drv, .. } => {
                self.substitution_threads.insert(drv.to_string(), thread);
                self.stop_copy(&mut out, thread);
            }
            Event::Copying { path, from } => {
                // The previous path of this substitution is done.
                self.stop_copy(&mut out, thread);
                let parent = self.run.map_or(0, |r| r.copy_paths);
                let substitute = Self::start(
                    &mut out,
                    level::ERROR,
                    ActivityType::Substitute,
                    String::new(),
                    vec![(*path).into(), (*from).into()],
                    parent,
                );
                let copy = Self::start(
                    &mut out,
                    level::INFO,
                    ActivityType::CopyPath,
                    format!("copying path '{path}' from '{from}'"),
                    vec![(*path).into(), (*from).into(), "local".into()],
                    substitute,
                );
                self.copies.insert(thread, [copy, substitute]);
            }
            Event::SubstitutionFinished { drv, ok } => {
                if let Some(t) = self.substitution_threads.remove(*drv) {
                    self.stop_copy(&mut out, t);
                }
                if !ok {
                    self.failed_substitutions += 1;
                    self.progress(&mut out);
                }
            }
            Event::BuildStarted { drv, machine } => {
                if let Some(id) = self.builds.remove(*drv) {
                    out.push(LogRecord::Stop { id });
                }
                // Nix names the local machine "".
                let machine = if *machine == "localhost" { "" } else { machine };
                let parent = self.run.map_or(0, |r| r.builds);
                let id = Self::start(
                    &mut out,
                    level::INFO,
                    ActivityType::Build,
                    format!("building '{drv}'"),
                    vec![(*drv).into(), machine.into(), 1.into(), 1.into()],
                    parent,
                );
                self.builds.insert(drv.to_string(), id);
            }
            Event::Log { drv, line } => {
                let line = String::from_utf8_lossy(line).into_owned();
                match self.builds.get(*drv) {
                    Some(&id) => {
                        Self::result(&mut out, id, ResultType::BuildLogLine, vec![line.into()])
                    }
                    // A line outside a build activity is still shown.
                    None => out.extend(self.message(level::INFO, &line)),
                }
            }
            Event::Phase { drv, phase } => {
                if let Some(&id) = self.builds.get(*drv) {
                    Self::result(&mut out, id, ResultType::SetPhase, vec![(*phase).into()]);
                }
            }
            Event::KeptBuildDir { dir, .. } => {
                out.extend(self.message(
                    level::ERROR,
                    &format!("note: keeping build directory '{dir}'"),
                ));
            }
            Event::BuildFinished { drv } => {
                if let Some(id) = self.builds.remove(*drv) {
                    out.push(LogRecord::Stop { id });
                }
            }
            Event::BuildFailed { drv, .. } => {
                // The message itself is the caller's to write: Nix's failure messages
                // need the whole outcome (`N dependencies of ... failed to build`).
                if let Some(id) = self.builds.remove(*drv) {
                    self.failed_builds += 1;
                    out.push(LogRecord::Stop { id });
                }
            }
            Event::DependencyFailed { .. } => {}
        }
        out
    }

    /// Stops the open copy of the substitution on `thread`, if any.
    fn stop_copy(&mut self, out: &mut Vec<LogRecord>, thread: ThreadId) {
        if let Some(ids) = self.copies.remove(&thread) {
            out.extend(ids.map(|id| LogRecord::Stop { id }));
        }
    }

    /// The progress results of the builds and copies activities.
    fn progress(&self, out: &mut Vec<LogRecord>) {
        let Some(run) = self.run else { return };
        let p = self.last_progress;
        let n = |x: usize| Field::Int(x as u64);
        // Nix's expected count is what is done plus what is still to do: failed builds
        // and those skipped for a failed input are no longer expected.
        let expected = p.builds_total.saturating_sub(p.builds_failed);
        Self::result(
            out,
            run.builds,
            ResultType::Progress,
            vec![
                n(p.builds_done),
                n(expected),
                n(p.builds_running),
                Field::Int(self.failed_builds),
            ],
        );
        let expected_copies =
            (p.substitutions_total as u64).saturating_sub(self.failed_substitutions);
        Self::result(
            out,
            run.copy_paths,
            ResultType::Progress,
            vec![
                n(p.substitutions_done),
                Field::Int(expected_copies),
                n(p.substitutions_running),
                Field::Int(self.failed_substitutions),
            ],
        );
    }

    /// Stops every activity still open (builds and copies a failure or cancellation left
    /// running, then the run's own activities, innermost first). Idempotent.
    pub fn finish(&mut self) -> Vec<LogRecord> {
        let mut out = Vec::new();
        let mut copies: Vec<[u64; 2]> = self.copies.drain().map(|(_, ids)| ids).collect();
        copies.sort();
        out.extend(
            copies
                .into_iter()
                .flatten()
                .map(|id| LogRecord::Stop { id }),
        );
        self.substitution_threads.clear();
        let builds = std::mem::take(&mut self.builds);
        out.extend(builds.into_values().map(|id| LogRecord::Stop { id }));
        if let Some(run) = self.run.take() {
            out.extend([run.copy_paths, run.builds, run.realise].map(|id| LogRecord::Stop { id }));
        }
        out
    }
}

/// A [`Subscriber`] writing a run's events to `W` (stderr for the CLI) as Nix's
/// `internal-json` records, one `write` per event so lines of builds running at once never
/// interleave. Call [`InternalJsonOutput::finish`] when the run is over; messages of the
/// caller's own (errors) go through [`InternalJsonOutput::message`].
pub struct InternalJsonOutput<W: Write + Send> {
    inner: Mutex<(Translator, W)>,
}

impl<W: Write + Send> InternalJsonOutput<W> {
    /// Writes to `writer`, messages up to `verbosity` (Nix's default is
    /// [`level::INFO`], each `-v` adds one).
    pub fn new(writer: W, verbosity: u8) -> InternalJsonOutput<W> {
        InternalJsonOutput {
            inner: Mutex::new((Translator::new(verbosity), writer)),
        }
    }

    fn with<F: FnOnce(&mut Translator) -> Vec<LogRecord>>(&self, f: F) {
        // A panic elsewhere while holding the lock leaves consistent state: keep writing.
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (translator, writer) = &mut *inner;
        let records = f(translator);
        if records.is_empty() {
            return;
        }
        let mut text = String::new();
        for r in &records {
            text.push_str(&r.to_line());
            text.push('\n');
        }
        // Nothing to do about a closed stderr; the build goes on.
        let _ = writer
            .write_all(text.as_bytes())
            .and_then(|_| writer.flush());
    }

    /// Writes a message of the caller's (`error: ...` at level 0, as Nix writes errors).
    pub fn message(&self, level: u8, msg: &str) {
        self.with(|t| t.message(level, msg).into_iter().collect());
    }

    /// Stops every activity still open; call it when the run is over, successful or not.
    pub fn finish(&self) {
        self.with(Translator::finish);
    }

    /// The writer (for tests and callers that write to a buffer).
    pub fn into_writer(self) -> W {
        self.inner.into_inner().unwrap_or_else(|e| e.into_inner()).1
    }
}

impl<W: Write + Send> Subscriber for InternalJsonOutput<W> {
    fn event(&self, event: &Event<'_>) {
        let thread = std::thread::current().id();
        self.with(|t| t.event(event, thread));
    }
}
