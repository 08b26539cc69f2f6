//! `tvix build`'s dashboard on a real terminal: each test runs the build inside its own
//! tmux server (a private socket, a fresh store, HOME and state directory), reads the
//! screen with `capture-pane` and types with `send-keys`. The graph (`tests/tui/slow.nix`)
//! builds with runc and busybox, with a fresh nonce, so nothing is valid beforehand.
//! Also the plain mode, when stderr is not a terminal.
//!
//! Needs tmux, runc, root and the busybox of `setup.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;
use common::tmux::{quote, Session};
use common::{check_prerequisites, nonce, run_limited, text};

/// Longest wait for something to appear on screen.
const TIMEOUT: Duration = Duration::from_secs(60);

fn slow_graph() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tui/slow.nix")
}

/// `tvix build` running in a detached tmux session.
struct Term {
    session: Session,
    dir: tempfile::TempDir,
    nonce: String,
}

impl Term {
    /// Starts `tvix build slow.nix ARGS` on a 100x30 terminal.
    fn start(args: &[&str]) -> Term {
        Term::start_to(args, None)
    }

    /// Starts `tvix build slow.nix ARGS`, its stdout into the file `stdout` of the test's
    /// directory when given.
    fn start_to(args: &[&str], stdout: Option<&str>) -> Term {
        let dir = tempfile::tempdir().expect("temp dir");
        Term::start_file(dir, &slow_graph(), args, stdout)
    }

    /// Starts `tvix build FILE --argstr nonce N ARGS` in `dir` (which keeps the store,
    /// HOME and state directory).
    fn start_file(
        dir: tempfile::TempDir,
        file: &Path,
        args: &[&str],
        stdout: Option<&str>,
    ) -> Term {
        check_prerequisites();
        let n = nonce();
        let d = dir.path().display().to_string();
        let mut cmd = format!(
            "env -u TVIX_BUILD_SERVICE -u TVIX_STORE HOME={home} XDG_STATE_HOME={state} \
             TERM=xterm-256color NO_COLOR=1 {bin} build {file} --argstr nonce {n} \
             --no-out-link --store {store}",
            home = quote(&format!("{d}/home")),
            state = quote(&format!("{d}/state")),
            bin = quote(env!("CARGO_BIN_EXE_tvix")),
            file = quote(&file.display().to_string()),
            store = quote(&format!("local://{d}/store")),
        );
        for a in args {
            cmd.push(' ');
            cmd.push_str(&quote(a));
        }
        if let Some(f) = stdout {
            cmd.push_str(&format!(" > {}", quote(&format!("{d}/{f}"))));
        }
        cmd.push_str("; echo \"EXITED $?\"; sleep 600");
        let session = Session::start("tui", dir.path(), 100, 30, &cmd);
        Term {
            session,
            dir,
            nonce: n,
        }
    }

    fn keys(&self, keys: &[&str]) {
        self.session.keys(keys);
    }

    /// Waits until `pred` holds for the screen; returns it.
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.session.wait_for(
            what,
            TIMEOUT,
            Duration::from_millis(100),
            Session::visible,
            pred,
        )
    }

    /// The name a derivation of the graph has in this run.
    fn name(&self, base: &str) -> String {
        format!("{base}-{}", self.nonce)
    }

    /// The line of the running build `name`.
    fn running_line(screen: &str, name: &str) -> Option<String> {
        screen
            .lines()
            .find(|l| l.contains(&format!("▸ {name}")) && l.contains("localhost"))
            .map(str::to_string)
    }
}

/// `m:ss` somewhere in `line`.
fn has_timer(line: &str) -> bool {
    line.split_whitespace().any(|w| {
        let Some((m, s)) = w.split_once(':') else {
            return false;
        };
        !m.is_empty()
            && m.chars().all(|c| c.is_ascii_digit())
            && s.len() == 2
            && s.chars().all(|c| c.is_ascii_digit())
    })
}

#[test]
fn the_dashboard_shows_running_builds_then_the_summary() {
    let t = Term::start(&[]);
    let dep = t.name("slow-dep");
    let top = t.name("slow-top");
    let s = t.wait("the running dependency", |s| {
        Term::running_line(s, &dep).is_some()
    });
    let line = Term::running_line(&s, &dep).unwrap();
    assert!(
        has_timer(&line),
        "no timer on the running build's line: {line}\n{s}"
    );
    assert!(s.contains("1 building · 0/2 built"), "no counts:\n{s}");
    assert!(
        s.contains("Derivations (2)") && s.contains(&top),
        "no tree:\n{s}"
    );
    // The timer moves.
    let first = line;
    let s = t.wait("the timer to move", |s| {
        Term::running_line(s, &dep).is_some_and(|l| l != first)
            || Term::running_line(s, &top).is_some()
    });
    let s = if Term::running_line(&s, &top).is_some() {
        s
    } else {
        t.wait("the top build", |s| Term::running_line(s, &top).is_some())
    };
    assert!(s.contains("1/2 built"), "counts after the dependency:\n{s}");
    let s = t.wait("the end", |s| s.contains("EXITED"));
    assert!(
        s.contains("tvix build: built 2, substituted 0, failed 0 in "),
        "no summary:\n{s}"
    );
    assert!(s.contains("EXITED 0"), "{s}");
    assert!(s.contains(&format!("-{top}")), "no output path:\n{s}");
}

/// stdout carries only the output paths, also when the dashboard is on stderr.
#[test]
fn stdout_keeps_only_the_output_paths() {
    let t = Term::start_to(&[], Some("paths"));
    let s = t.wait("the end", |s| s.contains("EXITED"));
    assert!(s.contains("EXITED 0"), "{s}");
    let paths = std::fs::read_to_string(t.dir.path().join("paths")).expect("stdout file");
    let top = t.name("slow-top");
    assert!(
        paths.starts_with("/nix/store/") && paths.trim_end().ends_with(&top),
        "stdout is not the output path: {paths:?}"
    );
    assert_eq!(paths.lines().count(), 1, "{paths:?}");
}

#[test]
fn l_shows_the_selected_builds_log() {
    let t = Term::start(&[]);
    let top = t.name("slow-top");
    t.wait("the top build's log", |s| {
        Term::running_line(s, &top).is_some() && s.contains("tick ")
    });
    t.keys(&["l"]);
    let s = t.wait("the log view", |s| {
        s.contains(&format!("log of {top} (building)"))
    });
    assert!(s.contains("top-start /nix/store/"), "{s}");
    t.wait("a later line", |s| {
        s.contains("tick 3") && s.contains("(following)")
    });
    // Back to the dashboard.
    t.keys(&["q"]);
    t.wait("the dashboard", |s| s.contains("Running (1)"));
}

#[test]
fn ctrl_c_asks_then_cancels() {
    let t = Term::start(&[]);
    let dep = t.name("slow-dep");
    t.wait("the running dependency", |s| {
        Term::running_line(s, &dep).is_some()
    });
    t.keys(&["C-c"]);
    t.wait("the question", |s| s.contains("Cancel the run?"));
    t.keys(&["C-c"]);
    let s = t.wait("the end", |s| s.contains("EXITED"));
    assert!(
        s.contains(", cancelled"),
        "the summary does not say cancelled:\n{s}"
    );
    assert!(!s.contains("EXITED 0"), "a cancelled build succeeded:\n{s}");
}

#[test]
fn a_failure_is_shown_with_its_log_and_command() {
    let t = Term::start(&["--arg", "fail", "true"]);
    let top = t.name("slow-top");
    let s = t.wait("the end", |s| s.contains("EXITED"));
    assert!(s.contains("failed 1"), "{s}");
    assert!(
        s.contains(&format!("failed: {top} (whole log: tvix log /nix/store/")),
        "no command for the whole log:\n{s}"
    );
    assert!(s.contains("going-wrong"), "no log tail in the error:\n{s}");
    assert!(s.contains("EXITED 1") || s.contains("EXITED 100"), "{s}");
}

/// Without a terminal: one timestamped line per event, no escape sequences; `-L` adds the
/// logs as `name> line`.
#[test]
fn plain_lines_without_a_terminal() {
    check_prerequisites();
    let dir = tempfile::tempdir().unwrap();
    let n = nonce();
    let mut c = Command::new(env!("CARGO_BIN_EXE_tvix"));
    c.arg("build")
        .arg(slow_graph())
        .args(["--argstr", "nonce", &n, "--no-out-link", "-L", "--store"])
        .arg(format!("local://{}/store", dir.path().display()))
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env_remove("TVIX_BUILD_SERVICE");
    let o = run_limited(c, Duration::from_secs(120));
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        !err.contains('\x1b'),
        "escape sequences in plain mode:\n{err}"
    );
    let stamped = |what: &str| {
        err.lines()
            .any(|l| l.starts_with('[') && l.contains("s] ") && l.ends_with(what))
    };
    assert!(
        stamped(&format!("building slow-dep-{n} on localhost")),
        "{err}"
    );
    assert!(err.contains(&format!("slow-top-{n}> tick 3")), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with('[') && l.contains(&format!("built slow-top-{n} in 0:0"))),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with('[') && l.contains("] built 2, substituted 0, failed 0 in ")),
        "no summary:\n{err}"
    );
    // The durations are kept for the next run's estimates.
    let history = std::fs::read_to_string(dir.path().join("state/tvix/build-times"))
        .expect("the build history");
    assert!(history.contains(&format!("slow-top-{n}\t")), "{history}");
}

/// Parts of the slowly evaluated graph, each in a file of its own.
const EVAL_PARTS: usize = 30;

/// A graph whose evaluation takes seconds: the top derivation names the `.drv` paths of
/// [`EVAL_PARTS`] generated files' derivations (instantiated, not built), each after some
/// busy work of `spin` additions. Written into `dir`; returns the top file.
fn slow_eval_graph(dir: &Path, spin: u64) -> PathBuf {
    let gen = dir.join("gen");
    std::fs::create_dir_all(&gen).unwrap();
    for i in 0..EVAL_PARTS {
        std::fs::write(
            gen.join(format!("f{i}.nix")),
            format!(
                "{{ mk, spin }}: mk {{ name = \"eval-part-{i}\"; script = \"echo {i} > $out\"; \
                 work = toString (spin {spin}); }}\n"
            ),
        )
        .unwrap();
    }
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/builds/lib.nix");
    let top = dir.join("eval.nix");
    std::fs::write(
        &top,
        format!(
            "{{ nonce }}: with import {lib} {{ inherit nonce; }};\n\
             let\n\
               spin = n: builtins.foldl' builtins.add 0 (builtins.genList (x: x) n);\n\
               parts = builtins.genList (i: import (./gen + \"/f${{toString i}}.nix\") {{ inherit mk spin; }}) {EVAL_PARTS};\n\
             in mk {{\n\
               name = \"eval-top\";\n\
               script = \"echo ${{toString (map (p: builtins.unsafeDiscardStringContext p.drvPath) parts)}} > $out\";\n\
             }}\n",
            lib = lib.display()
        ),
    )
    .unwrap();
    top
}

/// Additions per part that make the evaluation last a few seconds.
const EVAL_SPIN: u64 = 800_000;

/// While the evaluator runs, the dashboard shows the files read and the derivations
/// instantiated so far; then the build, then the summary.
#[test]
fn a_slow_evaluation_shows_its_progress() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = slow_eval_graph(dir.path(), EVAL_SPIN);
    let t = Term::start_file(dir, &file, &[], None);
    let counted = |s: &str| {
        s.lines().find_map(|l| {
            let (files, rest) = l.trim().split_once(" files read, ")?;
            let drvs = rest.strip_suffix(" derivations instantiated")?;
            Some((files.parse::<u64>().ok()?, drvs.parse::<u64>().ok()?))
        })
    };
    let s = t.wait("the evaluation's counts", |s| {
        s.contains("Evaluating (") && counted(s).is_some_and(|(f, d)| f > 1 && d > 0)
    });
    assert!(s.contains("· evaluating"), "no state in the header:\n{s}");
    let (files, drvs) = counted(&s).unwrap();
    assert!(
        files <= EVAL_PARTS as u64 + 1 && drvs <= EVAL_PARTS as u64,
        "counts beyond the graph ({files}, {drvs}):\n{s}"
    );
    assert!(
        !s.contains("Running ("),
        "a build ran during evaluation:\n{s}"
    );
    let s = t.wait("the end", |s| s.contains("EXITED"));
    assert!(s.contains("EXITED 0"), "{s}");
    assert!(
        s.contains("tvix build: built 1, substituted 0, failed 0 in "),
        "no summary:\n{s}"
    );
}

/// Without a terminal, a long evaluation reports its progress every few seconds, and its
/// final counts.
#[test]
fn plain_lines_report_a_slow_evaluation() {
    check_prerequisites();
    let dir = tempfile::tempdir().unwrap();
    let file = slow_eval_graph(dir.path(), EVAL_SPIN);
    let n = nonce();
    let mut c = Command::new(env!("CARGO_BIN_EXE_tvix"));
    c.arg("build")
        .arg(&file)
        .args(["--argstr", "nonce", &n, "--no-out-link", "--store"])
        .arg(format!("local://{}/store", dir.path().display()))
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env_remove("TVIX_BUILD_SERVICE");
    let o = run_limited(c, Duration::from_secs(120));
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with('[') && l.contains("s] evaluating: ")),
        "no progress while evaluating:\n{err}"
    );
    // The generated files and lib.nix; the parts and the top derivation.
    let parts = EVAL_PARTS + 1;
    assert!(
        err.contains(&format!(
            "s] evaluated: {parts} files read, {parts} derivations instantiated"
        )),
        "no final counts:\n{err}"
    );
    let evaluated = err.find("] evaluated: ").unwrap();
    let building = err.find(&format!("] building eval-top-{n}")).expect(&err);
    assert!(evaluated < building, "{err}");
}

/// An evaluation that fails under the dashboard: the terminal is given back with the
/// evaluation's trace and error on it, and no summary.
#[test]
fn an_evaluation_error_is_printed_once_the_terminal_is_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bad.nix");
    std::fs::write(
        &file,
        "{ nonce }: builtins.trace \"tvix-trace-${nonce}\" (throw \"tvix-boom\")\n",
    )
    .unwrap();
    let t = Term::start_file(dir, &file, &[], None);
    let s = t.wait("the end", |s| s.contains("EXITED"));
    assert!(s.contains("EXITED 1"), "{s}");
    let trace = s
        .find(&format!("trace: tvix-trace-{}", t.nonce))
        .unwrap_or_else(|| panic!("no trace:\n{s}"));
    let error = s
        .find("error: tvix-boom")
        .unwrap_or_else(|| panic!("no error:\n{s}"));
    assert!(trace < error, "{s}");
    assert!(!s.contains("tvix build: built"), "a summary:\n{s}");
}

/// An import-from-derivation build during the evaluation is shown on the dashboard, as a
/// running build with its log line, never as Nix's raw lines written over the screen.
#[test]
fn import_from_derivation_builds_show_on_the_dashboard() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/builds/lib.nix");
    let file = dir.path().join("ifd.nix");
    std::fs::write(
        &file,
        format!(
            "{{ nonce }}: with import {lib} {{ inherit nonce; }};\n\
             let gen = mk {{ name = \"ifd-gen\"; script = \"echo ifd-log-line; sleep 4; echo '\\\"hi\\\"' > $out\"; }};\n\
             in mk {{ name = \"ifd-top\"; script = \"echo ${{import gen}} > $out\"; }}\n",
            lib = lib.display()
        ),
    )
    .unwrap();
    let t = Term::start_file(dir, &file, &[], None);
    let gen = t.name("ifd-gen");
    let s = t.wait("the import-from-derivation build", |s| {
        Term::running_line(s, &gen).is_some()
    });
    assert!(
        !s.contains("building '/nix/store/"),
        "Nix's lines over the dashboard:\n{s}"
    );
    let s = t.wait("the end", |s| s.contains("EXITED"));
    assert!(s.contains("EXITED 0"), "{s}");
    assert!(
        !s.contains("building '/nix/store/"),
        "Nix's lines over the dashboard:\n{s}"
    );
}
