//! `tvix build --log-format internal-json`: the stream is Nix's `@nix {...}` records only,
//! every started activity is stopped (after success, failure, cancellation), one build
//! activity per built derivation carries its log lines and phases, substitutions show as
//! substitute and copy-path activities; and against `nix-build --log-format internal-json
//! -v` on the same graph (a fresh nonce, tvix first), the parser reads every line Nix
//! writes and both streams have the same structure.
//!
//! Needs `nix-build`, `runc`, root, and the static busybox at `/var/lib/tvix-tests/busybox`
//! (`setup.sh`); a missing prerequisite fails the tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tvix_coordinator::internal_json::{
    parse_line, ActivityType, Field, Line, LogRecord, ResultType,
};
use tvix_eval::diagnostic::strip_ansi;

mod common;
use common::{check_prerequisites, nix_build, nonce, text, tvix_build};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/internal_json/graph.nix")
}

/// One activity of a stream.
#[derive(Debug, Default)]
struct Activity {
    activity: Option<ActivityType>,
    text: String,
    fields: Vec<Field>,
    parent: u64,
    results: Vec<(ResultType, Vec<Field>)>,
    stopped: bool,
}

/// A stream's records, checked as they are read: an `Err` names the first line that is
/// not a record, a start of an id already seen, a stop or result of an activity that is
/// not open.
#[derive(Debug, Default)]
struct Stream {
    activities: BTreeMap<u64, Activity>,
    /// Start order.
    order: Vec<u64>,
    /// Messages (level, text without colours).
    msgs: Vec<(u8, String)>,
    /// Lines without the `@nix ` prefix.
    plain: Vec<String>,
}

impl Stream {
    fn read(text: &str) -> Result<Stream, String> {
        let mut s = Stream::default();
        for line in text.lines() {
            let record = match parse_line(line) {
                Ok(Line::Record(r)) => r,
                Ok(Line::Plain(p)) => {
                    s.plain.push(p);
                    continue;
                }
                Err(e) => return Err(format!("{line}: {e}")),
            };
            let open = |s: &mut Stream, id: u64| match s.activities.get_mut(&id) {
                Some(a) if !a.stopped => Ok(()),
                _ => Err(format!("{line}: activity {id} is not open")),
            };
            match record {
                LogRecord::Start {
                    id,
                    activity,
                    text,
                    fields,
                    parent,
                    ..
                } => {
                    if s.activities.contains_key(&id) {
                        return Err(format!("{line}: id {id} started twice"));
                    }
                    s.order.push(id);
                    s.activities.insert(
                        id,
                        Activity {
                            activity: Some(activity),
                            text,
                            fields,
                            parent,
                            ..Activity::default()
                        },
                    );
                }
                LogRecord::Stop { id } => {
                    open(&mut s, id)?;
                    s.activities.get_mut(&id).unwrap().stopped = true;
                }
                LogRecord::Result { id, result, fields } => {
                    open(&mut s, id)?;
                    s.activities
                        .get_mut(&id)
                        .unwrap()
                        .results
                        .push((result, fields));
                }
                LogRecord::Msg { level, msg } => s.msgs.push((level, strip_ansi(&msg).into())),
            }
        }
        Ok(s)
    }

    fn of_type(&self, t: ActivityType) -> Vec<&Activity> {
        self.order
            .iter()
            .map(|id| &self.activities[id])
            .filter(|a| a.activity == Some(t))
            .collect()
    }

    fn unstopped(&self) -> Vec<u64> {
        self.activities
            .iter()
            .filter(|(_, a)| !a.stopped)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The build activities by the derivation's name (`ij-a`, ...; the nonce cut off).
    fn builds(&self) -> BTreeMap<String, Vec<&Activity>> {
        let mut m: BTreeMap<String, Vec<&Activity>> = BTreeMap::new();
        for a in self.of_type(ActivityType::Build) {
            let drv = a.fields.first().and_then(Field::as_str).unwrap_or("");
            m.entry(short_name(drv)).or_default().push(a);
        }
        m
    }

    /// Results of one type of an activity, as strings.
    fn texts(a: &Activity, t: ResultType) -> Vec<String> {
        a.results
            .iter()
            .filter(|(r, _)| *r == t)
            .map(|(_, f)| f.first().and_then(Field::as_str).unwrap_or("").to_string())
            .collect()
    }

    /// The last progress of the builds activity.
    /// Every `SetExpected` result: (its activity's type, the type expected, the value).
    fn set_expected(&self) -> BTreeSet<(u64, u64, u64)> {
        self.activities
            .values()
            .flat_map(|a| {
                let kind = a.activity.map_or(0, ActivityType::code);
                a.results
                    .iter()
                    .filter(|(r, _)| *r == ResultType::SetExpected)
                    .filter_map(move |(_, f)| {
                        Some((kind, f.first()?.as_int()?, f.get(1)?.as_int()?))
                    })
            })
            .collect()
    }

    fn builds_progress(&self) -> Option<Vec<Field>> {
        let builds = self.of_type(ActivityType::Builds);
        builds
            .first()?
            .results
            .iter()
            .rev()
            .find_map(|(r, f)| (*r == ResultType::Progress).then(|| f.clone()))
    }

    fn errors(&self) -> BTreeSet<String> {
        self.msgs
            .iter()
            .filter(|(l, _)| *l == 0)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

/// `/nix/store/HASH-ij-a-NONCE.drv` to `ij-a`.
fn short_name(drv: &str) -> String {
    let base = drv.rsplit('/').next().unwrap_or("");
    let name = base.split_once('-').map_or(base, |(_, n)| n);
    name.rsplit_once('-').map_or(name, |(n, _)| n).to_string()
}

/// Checks what every tvix stream must be: records only, all stopped, build activities
/// under the builds activity, which is under the realise activity.
fn check_tvix_stream(err: &str) -> Stream {
    let s = Stream::read(err).unwrap_or_else(|e| panic!("{e}\n{err}"));
    assert!(s.plain.is_empty(), "only records on stderr: {:?}", s.plain);
    assert!(
        s.unstopped().is_empty(),
        "not stopped: {:?}\n{err}",
        s.unstopped()
    );
    let realise = s.of_type(ActivityType::Realise);
    let builds = s.of_type(ActivityType::Builds);
    assert_eq!((realise.len(), builds.len()), (1, 1), "{err}");
    let builds_id = s
        .order
        .iter()
        .find(|id| s.activities[id].activity == Some(ActivityType::Builds));
    for b in s.of_type(ActivityType::Build) {
        assert_eq!(Some(&b.parent), builds_id, "{err}");
        assert_eq!(b.fields.len(), 4, "{err}");
        assert_eq!(
            b.fields[1..],
            [Field::from(""), 1.into(), 1.into()],
            "{err}"
        );
    }
    s
}

#[test]
fn a_failing_graph_with_keep_going() {
    check_prerequisites();
    let n = nonce();
    let store = tempfile::tempdir().unwrap();
    let o = tvix_build(
        &fixture(),
        &n,
        store.path(),
        &["--log-format", "internal-json", "-v", "-k", "-j2"],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(100), "{err}");
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));
    let s = check_tvix_stream(&err);
    let builds = s.builds();
    // One build activity per built derivation, none for those an input failure blocked.
    let names: Vec<(&str, usize)> = builds.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
    assert_eq!(names, [("ij-a", 1), ("ij-b", 1), ("ij-bad", 1)], "{err}");
    let a = builds["ij-a"][0];
    assert_eq!(
        Stream::texts(a, ResultType::BuildLogLine),
        ["hello from a", "second line"],
        "{err}"
    );
    assert_eq!(
        Stream::texts(a, ResultType::SetPhase),
        ["buildPhase"],
        "{err}"
    );
    assert_eq!(
        Stream::texts(builds["ij-bad"][0], ResultType::BuildLogLine),
        ["about to fail"],
        "{err}"
    );
    // Done 2, expected 2, running 0, failed 1, as Nix counts them.
    assert_eq!(
        s.builds_progress(),
        Some(vec![2.into(), 2.into(), 0.into(), 1.into()]),
        "{err}"
    );
    let errors = s.errors();
    assert!(
        errors.iter().any(|e| e.starts_with("error: builder for '")
            && e.contains("-ij-bad-")
            && e.ends_with("' failed with exit code 1")),
        "{err}"
    );
    assert_eq!(errors.len(), 3, "{err}");
}

#[test]
fn the_parser_reads_what_nix_build_writes_and_tvix_writes_the_same_structure() {
    check_prerequisites();
    let n = nonce();
    let store = tempfile::tempdir().unwrap();
    let flags = ["--log-format", "internal-json", "-v", "-k"];
    // tvix first: nothing nix leaves in /nix/store can make it pass.
    let t = tvix_build(&fixture(), &n, store.path(), &flags);
    let nx = nix_build(&fixture(), &n, &flags);
    let (terr, nerr) = (text(&t.stderr), text(&nx.stderr));
    assert_eq!(nx.status.code(), Some(100), "{nerr}");
    assert_eq!(t.status.code(), nx.status.code(), "{terr}");
    // Every line Nix writes parses (Nix 2.8 writes records only).
    let ns = Stream::read(&nerr).unwrap_or_else(|e| panic!("{e}\n{nerr}"));
    assert!(ns.plain.is_empty(), "{:?}", ns.plain);
    assert!(ns.unstopped().is_empty(), "{nerr}");
    let ts = check_tvix_stream(&terr);

    // The same derivations built, each in one build activity, with the same logs and
    // phases.
    let (tb, nb) = (ts.builds(), ns.builds());
    let names = |m: &BTreeMap<String, Vec<&Activity>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&nb), ["ij-a", "ij-b", "ij-bad"], "{nerr}");
    assert_eq!(names(&tb), names(&nb), "{terr}\n{nerr}");
    for (name, nix_acts) in &nb {
        let tvix_acts = &tb[name];
        assert_eq!((tvix_acts.len(), nix_acts.len()), (1, 1), "{name}");
        let (t, n) = (tvix_acts[0], nix_acts[0]);
        assert_eq!(
            t.fields, n.fields,
            "{name}: the same .drv, machine and rounds"
        );
        for r in [ResultType::BuildLogLine, ResultType::SetPhase] {
            assert_eq!(Stream::texts(t, r), Stream::texts(n, r), "{name} {r:?}");
        }
    }
    // The same kinds of activities (Nix's own `querying info` ones, type 0, aside).
    let kinds = |s: &Stream| -> BTreeSet<u64> {
        s.activities
            .values()
            .filter_map(|a| a.activity)
            .map(ActivityType::code)
            .filter(|&c| c != 0)
            .collect()
    };
    assert_eq!(kinds(&ts), kinds(&ns), "{terr}\n{nerr}");
    assert_eq!(ts.builds_progress(), ns.builds_progress(), "{terr}\n{nerr}");
    // The expected sizes (106) Nix sets on its realise activity, `[type, expected]`:
    // tvix sets the download size (101) as Nix does, and nothing Nix does not (the NAR
    // size, 100, is not known to tvix before a copy); nothing was downloaded here.
    let (te, ne) = (ts.set_expected(), ns.set_expected());
    assert!(ne.contains(&(102, 101, 0)), "{nerr}");
    assert!(!te.is_empty(), "no setExpected from tvix:\n{terr}");
    assert!(te.is_subset(&ne), "{te:?} vs Nix's {ne:?}");
    // The same errors and the same plan (Nix lists it in another order).
    assert_eq!(ts.errors(), ns.errors(), "{terr}\n{nerr}");
    let info = |s: &Stream| -> BTreeSet<String> {
        s.msgs
            .iter()
            .filter(|(l, _)| *l == 3)
            .map(|(_, m)| m.clone())
            .collect()
    };
    assert_eq!(info(&ts), info(&ns), "{terr}\n{nerr}");
}

/// `tvix build` of `tests/build_graph/graph.nix` (`n` derivations) into `store`.
fn graph_command(store: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tvix"));
    c.arg("build")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/build_graph/graph.nix"))
        .args(["--no-out-link", "--store"])
        .arg(format!("local://{}", store.display()))
        .args(args)
        .env_remove("TVIX_BUILD_SERVICE")
        .env("NO_COLOR", "1");
    c
}

#[test]
fn substitutions_show_as_substitute_and_copy_activities() {
    check_prerequisites();
    let n = nonce();
    let (farm, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let graph = ["--argstr", "nonce", &n, "--arg", "n", "3"];
    let o = graph_command(farm.path(), &graph).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let farm_url = format!("local://{}", farm.path().display());
    let mut args = graph.to_vec();
    args.extend([
        "--option",
        "substituters",
        &farm_url,
        "--log-format",
        "internal-json",
    ]);
    let o = graph_command(store.path(), &args).output().unwrap();
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    let s = check_tvix_stream(&err);
    assert!(s.builds().is_empty(), "substituted, not built: {err}");
    let subs = s.of_type(ActivityType::Substitute);
    let copies = s.of_type(ActivityType::CopyPath);
    assert!(!subs.is_empty(), "{err}");
    assert_eq!(subs.len(), copies.len(), "{err}");
    let copy_paths_id = s
        .order
        .iter()
        .find(|id| s.activities[id].activity == Some(ActivityType::CopyPaths))
        .copied();
    for (sub, copy) in subs.iter().zip(&copies) {
        assert_eq!(Some(sub.parent), copy_paths_id, "{err}");
        assert_eq!(
            sub.fields,
            [copy.fields[0].clone(), Field::from(farm_url.as_str())]
        );
        assert_eq!(copy.fields[2], Field::from("local"), "{err}");
        let path = copy.fields[0].as_str().unwrap_or("");
        assert!(path.starts_with("/nix/store/"), "{err}");
    }
    assert!(
        s.msgs
            .iter()
            .any(|(l, m)| *l == 3 && m.contains("will be fetched")),
        "{err}"
    );
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn an_interrupted_run_stops_every_activity() {
    check_prerequisites();
    let n = nonce();
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let args = [
        "--argstr",
        "nonce",
        &n,
        "--arg",
        "n",
        "4",
        "--argstr",
        "sleep",
        "60",
        "-j2",
        "--log-format",
        "internal-json",
    ];
    let mut child = graph_command(store.path(), &args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("tvix build");
    // Wait until a build activity started, then press Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let err = std::fs::read_to_string(&log).unwrap_or_default();
        if err.contains("\"type\":105}")
            && err
                .lines()
                .any(|l| l.contains("\"action\":\"start\"") && l.ends_with("\"type\":105}"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no build started: {err}");
        assert!(child.try_wait().unwrap().is_none(), "finished early: {err}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc_kill(child.id() as i32, 2) }, 0);
    let status = child.wait().unwrap();
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{err}");
    let s = check_tvix_stream(&err);
    assert!(!s.builds().is_empty(), "{err}");
    assert!(
        s.errors().contains("error: interrupted by the user"),
        "{err}"
    );
}

#[test]
fn a_check_writes_records_worded_as_nix_words_them() {
    check_prerequisites();
    let n = nonce();
    let store = tempfile::tempdir().unwrap();
    let graph = ["--argstr", "nonce", &n, "--arg", "n", "2"];
    let o = graph_command(store.path(), &graph).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut check = graph.to_vec();
    check.extend(["--check", "--log-format", "internal-json"]);
    let o = graph_command(store.path(), &check).output().unwrap();
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    let s = Stream::read(&err).unwrap_or_else(|e| panic!("{e}\n{err}"));
    assert!(s.plain.is_empty(), "only records on stderr: {err}");
    assert!(s.unstopped().is_empty(), "{err}");
    let builds = s.builds();
    assert!(!builds.is_empty(), "{err}");
    for (name, acts) in &builds {
        assert_eq!(acts.len(), 1, "{name}: {err}");
        let drv = acts[0].fields[0].as_str().unwrap_or("");
        assert_eq!(
            acts[0].text,
            format!("checking outputs of '{drv}'"),
            "{err}"
        );
        let log = Stream::texts(acts[0], ResultType::BuildLogLine);
        assert!(log.iter().any(|l| l.starts_with("building node ")), "{err}");
    }
}

#[test]
fn evaluation_errors_and_traces_are_records_too() {
    let store = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(["build", "--log-format", "internal-json", "--store"])
        .arg(format!("local://{}", store.path().display()))
        .args(["-E", r#"builtins.trace "tr" (throw "boom")"#])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let s = Stream::read(&err).unwrap_or_else(|e| panic!("{e}\n{err}"));
    assert!(s.plain.is_empty(), "only records on stderr: {err}");
    assert!(s.activities.is_empty(), "{err}");
    let levels: Vec<(u8, &str)> = s
        .msgs
        .iter()
        .map(|(l, m)| (*l, m.lines().next().unwrap_or("")))
        .collect();
    // As Nix writes them: the trace and the error, both at level 0.
    assert_eq!(levels, [(0, "trace: tr"), (0, "error: boom")], "{err}");
}
