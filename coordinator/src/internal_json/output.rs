//! A build run's events as Nix's `internal-json` records, the way Nix 2.8's `nix-build`
//! writes them: the plan as `msg` lines, a realise activity (102) holding the builds (104)
//! and path copies (103) activities with their progress, one build activity (105) per
//! started build with its log lines (result 101) and phases (result 104), and a
//! substitute (108) and copy-path (100) activity per substituted path.
//!
//! [`Translator`] is the state machine (events in, records out, no IO);
//! [`InternalJsonOutput`] is the [`Subscriber`] that writes its records.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::ThreadId;

use super::record::{ActivityType, Field, LogRecord, ResultType};
use crate::events::{Event, Progress, Subscriber};
use crate::nix_output::plan_messages;

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
    /// Builds check valid outputs (`--check`): their activities say so, as Nix's do.
    checking: bool,
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
    /// Bytes the started downloads take (their paths counted once), which Nix reports
    /// as the realise activity's expected file-transfer size.
    expected_download: u64,
    /// Paths whose download size is counted.
    downloads: HashSet<String>,
    last_progress: Progress,
}

impl Translator {
    /// A translator writing messages up to `verbosity` (activities are written whatever
    /// their level, as Nix does).
    pub fn new(verbosity: u8) -> Translator {
        Translator {
            verbosity,
            checking: false,
            run: None,
            builds: BTreeMap::new(),
            substitution_threads: HashMap::new(),
            copies: HashMap::new(),
            failed_builds: 0,
            failed_substitutions: 0,
            expected_download: 0,
            downloads: HashSet::new(),
            last_progress: Progress::default(),
        }
    }

    /// Builds of this run check valid outputs (`--check`): their activities' text is
    /// `checking outputs of '...'`, as Nix writes it.
    pub fn checking(mut self) -> Translator {
        self.checking = true;
        self
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
                let text = plan_messages(plan, build, fetch);
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
            Event::Transfer {
                path,
                done,
                expected,
            } => {
                if self.downloads.insert(path.to_string()) {
                    self.expected_download += expected;
                    self.set_expected(&mut out);
                }
                // The bytes of the path being copied, as Nix reports a copy's progress:
                // `[done, expected, running, failed]` on its copy-path activity.
                if let Some(&[copy, _]) = self.copies.get(&thread) {
                    Self::result(
                        &mut out,
                        copy,
                        ResultType::Progress,
                        vec![
                            Field::Int(*done),
                            Field::Int(*expected),
                            Field::Int(0),
                            Field::Int(0),
                        ],
                    );
                }
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
                    if self.checking {
                        format!("checking outputs of '{drv}'")
                    } else {
                        format!("building '{drv}'")
                    },
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
            Event::Warning { message } => {
                // Nix writes its warnings as messages at level warn, colour codes aside.
                out.extend(self.message(level::WARN, &format!("warning: {message}")));
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

    /// The realise activity's expected download size, as Nix sets it (result 106,
    /// `[101, bytes]`: the sizes of the downloads started so far).
    fn set_expected(&self, out: &mut Vec<LogRecord>) {
        let Some(run) = self.run else { return };
        Self::result(
            out,
            run.realise,
            ResultType::SetExpected,
            vec![
                Field::Int(ActivityType::FileTransfer.code()),
                Field::Int(self.expected_download),
            ],
        );
    }

    /// The progress results of the builds and copies activities, and the expected
    /// download size after them, in Nix's order.
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
        self.set_expected(out);
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

    /// Builds of this run check valid outputs (`--check`; see [`Translator::checking`]).
    pub fn checking(self) -> InternalJsonOutput<W> {
        let (translator, writer) = self.inner.into_inner().unwrap_or_else(|e| e.into_inner());
        InternalJsonOutput {
            inner: Mutex::new((translator.checking(), writer)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internal_json::record::{parse_line, Line};
    use crate::plan::{Config, NodeSpec, Plan, Validity};
    use std::collections::BTreeSet;

    fn plan() -> Plan {
        let node = |drv: &str, inputs: &[&str]| NodeSpec {
            drv: format!("/nix/store/{drv}.drv"),
            inputs: inputs
                .iter()
                .map(|i| format!("/nix/store/{i}.drv"))
                .collect(),
            outputs: vec![format!("/nix/store/{drv}")],
            validity: Validity::Invalid,
            system: "x86_64-linux".into(),
            required_features: BTreeSet::new(),
            builtin: false,
            prefer_local: false,
        };
        let config = Config {
            machines: vec![crate::machines::Machine::this_machine(
                ["x86_64-linux".into()].into(),
                BTreeSet::new(),
                2,
            )],
            max_substitutions: 1,
            keep_going: true,
            substitute: false,
            fallback: false,
            dry_run: false,
        };
        Plan::new(
            vec![node("a", &[]), node("b", &["a"]), node("c", &["a"])],
            &["/nix/store/b.drv".into(), "/nix/store/c.drv".into()],
            config,
        )
        .unwrap()
    }

    /// Start and stop ids balance: every started activity is stopped once, nothing else.
    fn assert_balanced(records: &[LogRecord]) {
        let mut open = BTreeSet::new();
        for r in records {
            match r {
                LogRecord::Start { id, .. } => assert!(open.insert(*id), "{id} started twice"),
                LogRecord::Stop { id } => assert!(open.remove(id), "{id} stopped, not open"),
                LogRecord::Result { id, .. } => assert!(open.contains(id), "{id} not open"),
                LogRecord::Msg { .. } => {}
            }
        }
        assert!(open.is_empty(), "left open: {open:?}");
    }

    fn started(records: &[LogRecord], activity: ActivityType) -> Vec<(u64, Vec<Field>, u64)> {
        records
            .iter()
            .filter_map(|r| match r {
                LogRecord::Start {
                    id,
                    activity: a,
                    fields,
                    parent,
                    ..
                } if *a == activity => Some((*id, fields.clone(), *parent)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_run_with_a_failure_as_nix_writes_it() {
        let plan = plan();
        let ids = |names: &[&str]| -> Vec<_> {
            names
                .iter()
                .map(|n| plan.id_of(&format!("/nix/store/{n}.drv")).unwrap())
                .collect()
        };
        let build = ids(&["a", "b", "c"]);
        let me = std::thread::current().id();
        let worker = std::thread::spawn(|| std::thread::current().id())
            .join()
            .unwrap();
        let mut t = Translator::new(level::INFO);
        let mut out = Vec::new();
        let mut progress = Progress {
            builds_total: 3,
            ..Progress::default()
        };
        let mut feed = |t: &mut Translator, e: Event<'_>, thread| out.extend(t.event(&e, thread));
        feed(
            &mut t,
            Event::Planned {
                plan: &plan,
                build: &build,
                fetch: &[],
            },
            me,
        );
        feed(&mut t, Event::Progress(progress), me);
        let a = "/nix/store/a.drv";
        feed(
            &mut t,
            Event::BuildStarted {
                drv: a,
                machine: "localhost",
            },
            worker,
        );
        feed(
            &mut t,
            Event::Log {
                drv: a,
                line: b"hello \xff",
            },
            worker,
        );
        feed(
            &mut t,
            Event::Phase {
                drv: a,
                phase: "buildPhase",
            },
            worker,
        );
        feed(&mut t, Event::BuildFinished { drv: a }, me);
        progress.builds_done = 1;
        feed(&mut t, Event::Progress(progress), me);
        let b = "/nix/store/b.drv";
        feed(
            &mut t,
            Event::BuildStarted {
                drv: b,
                machine: "ssh://builder",
            },
            worker,
        );
        feed(
            &mut t,
            Event::BuildFailed {
                drv: b,
                message: "builder for '/nix/store/b.drv' failed with exit code 1".into(),
                log_tail: &[],
            },
            me,
        );
        progress.builds_failed = 1;
        feed(&mut t, Event::Progress(progress), me);
        // c is still running when the run ends (cancelled).
        let c = "/nix/store/c.drv";
        feed(
            &mut t,
            Event::BuildStarted {
                drv: c,
                machine: "localhost",
            },
            worker,
        );
        out.extend(t.finish());
        assert!(t.finish().is_empty(), "finish is idempotent");

        assert_balanced(&out);
        let msgs: Vec<&str> = out
            .iter()
            .filter_map(|r| match r {
                LogRecord::Msg { level: 3, msg } => Some(msg.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            msgs,
            [
                "these 3 derivations will be built:",
                "  /nix/store/a.drv",
                "  /nix/store/b.drv",
                "  /nix/store/c.drv"
            ]
        );
        let realise = started(&out, ActivityType::Realise);
        let builds = started(&out, ActivityType::Builds);
        assert_eq!((realise.len(), builds.len()), (1, 1));
        assert_eq!(builds[0].2, realise[0].0);
        let build_acts = started(&out, ActivityType::Build);
        let fields: Vec<&Vec<Field>> = build_acts.iter().map(|b| &b.1).collect();
        assert_eq!(
            fields,
            [
                &vec![a.into(), "".into(), 1.into(), 1.into()],
                &vec![b.into(), "ssh://builder".into(), 1.into(), 1.into()],
                &vec![c.into(), "".into(), 1.into(), 1.into()],
            ]
        );
        assert!(build_acts.iter().all(|b| b.2 == builds[0].0));
        let a_id = build_acts[0].0;
        assert!(out.contains(&LogRecord::Result {
            id: a_id,
            result: ResultType::BuildLogLine,
            fields: vec!["hello \u{fffd}".into()],
        }));
        assert!(out.contains(&LogRecord::Result {
            id: a_id,
            result: ResultType::SetPhase,
            fields: vec!["buildPhase".into()],
        }));
        let last_progress = out.iter().rev().find_map(|r| match r {
            LogRecord::Result {
                id,
                result: ResultType::Progress,
                fields,
            } if *id == builds[0].0 => Some(fields.clone()),
            _ => None,
        });
        // done 1, expected 2 (the failed one no longer), running 0, failed 1.
        assert_eq!(
            last_progress,
            Some(vec![1.into(), 2.into(), 0.into(), 1.into()])
        );
        // The run's activities stop last, innermost first.
        let tail: Vec<&LogRecord> = out.iter().rev().take(3).collect();
        assert_eq!(tail[0], &LogRecord::Stop { id: realise[0].0 });
        assert_eq!(tail[1], &LogRecord::Stop { id: builds[0].0 });
    }

    #[test]
    fn substitutions_copy_each_path_in_turn() {
        let plan = plan();
        let mut t = Translator::new(level::INFO);
        let me = std::thread::current().id();
        let (s1, s2) = (
            std::thread::spawn(|| std::thread::current().id())
                .join()
                .unwrap(),
            std::thread::spawn(|| std::thread::current().id())
                .join()
                .unwrap(),
        );
        let fetch = [plan.id_of("/nix/store/a.drv").unwrap()];
        let mut out = t.event(
            &Event::Planned {
                plan: &plan,
                build: &[],
                fetch: &fetch,
            },
            me,
        );
        let from = "https://cache.example";
        let started = |drv| Event::SubstitutionStarted { drv, from };
        out.extend(t.event(&started("/nix/store/a.drv"), s1));
        out.extend(t.event(&started("/nix/store/b.drv"), s2));
        for (path, thread) in [
            ("/nix/store/a", s1),
            ("/nix/store/b", s2),
            ("/nix/store/dep", s1),
        ] {
            out.extend(t.event(&Event::Copying { path, from }, thread));
        }
        out.extend(t.event(
            &Event::SubstitutionFinished {
                drv: "/nix/store/a.drv",
                ok: true,
            },
            me,
        ));
        // b's substitution is cut short: finish stops its copy.
        out.extend(t.finish());
        assert_balanced(&out);
        assert!(out.contains(&LogRecord::Msg {
            level: 3,
            msg: "this path will be fetched:".into()
        }));
        let subs = super::tests::started(&out, ActivityType::Substitute);
        let copies = super::tests::started(&out, ActivityType::CopyPath);
        assert_eq!(subs.len(), 3);
        assert_eq!(copies.len(), 3);
        for (s, c) in subs.iter().zip(&copies) {
            assert_eq!(c.2, s.0, "a copy belongs to its substitution");
            assert_eq!(c.1[..2], s.1[..]);
            assert_eq!(c.1[2], Field::from("local"));
        }
        // a's first path is stopped when its second starts, before b's is.
        let pos = |rec: &LogRecord| out.iter().position(|r| r == rec).unwrap();
        assert!(
            pos(&LogRecord::Stop { id: copies[0].0 }) < pos(&LogRecord::Stop { id: copies[1].0 })
        );
    }

    #[test]
    fn checks_say_so() {
        let mut t = Translator::new(level::INFO).checking();
        let out = t.event(
            &Event::BuildStarted {
                drv: "/nix/store/a.drv",
                machine: "localhost",
            },
            std::thread::current().id(),
        );
        assert!(
            matches!(&out[..], [LogRecord::Start { text, .. }] if text == "checking outputs of '/nix/store/a.drv'"),
            "{out:?}"
        );
        assert_eq!(t.finish().len(), 1);
    }

    #[test]
    fn messages_follow_the_verbosity() {
        let t = Translator::new(level::INFO);
        assert!(t.message(level::ERROR, "error: x").is_some());
        assert!(t.message(4, "talkative").is_none());
        assert!(Translator::new(4).message(4, "talkative").is_some());
        assert!(Translator::new(0).message(level::WARN, "w").is_none());
    }

    #[test]
    fn output_writes_whole_lines_from_many_threads() {
        let output = InternalJsonOutput::new(Vec::new(), level::INFO);
        std::thread::scope(|s| {
            for i in 0..4 {
                let output = &output;
                s.spawn(move || {
                    let drv = format!("/nix/store/d{i}.drv");
                    output.event(&Event::BuildStarted {
                        drv: &drv,
                        machine: "localhost",
                    });
                    for _ in 0..100 {
                        output.event(&Event::Log {
                            drv: &drv,
                            line: b"a line with \"quotes\" and \x1b[1mescapes",
                        });
                    }
                });
            }
        });
        output.message(level::ERROR, "error: interrupted by the user");
        output.finish();
        let text = String::from_utf8(output.into_writer()).unwrap();
        let records: Vec<LogRecord> = text
            .lines()
            .map(|l| match parse_line(l) {
                Ok(Line::Record(r)) => r,
                other => panic!("{l}: {other:?}"),
            })
            .collect();
        assert_eq!(records.len(), 4 * 102 + 1);
        assert_balanced(&records);
        assert_eq!(
            records[records.len() - 5],
            LogRecord::Msg {
                level: 0,
                msg: "error: interrupted by the user".into()
            }
        );
    }
}
