//! Snapshot tests: a model drawn on a `TestBackend` of a fixed size, compared with the
//! expected screen written here (colours off, so only the text counts).

use std::time::Duration;

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;

use super::render;
use crate::history::History;
use crate::model::{Action, Model, PlannedDrv, Update};
use crate::view::{Key, ViewState};
use tvix_coordinator::eval_progress::EvalCounts;

fn drv(name: &str) -> String {
    let hash: String = name.chars().cycle().take(32).collect();
    format!("/nix/store/{hash}-{name}.drv")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The screen of `model` at `width`x`height`, lines without trailing blanks.
fn screen(model: &Model, view: &ViewState, width: u16, height: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
    t.draw(|f| render(model, view, f)).unwrap();
    text(t.backend().buffer())
}

fn text(b: &Buffer) -> String {
    let w = usize::from(b.area.width);
    let cells: Vec<&str> = b.content().iter().map(|c| c.symbol()).collect();
    cells
        .chunks(w)
        .map(|row| row.concat().trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[track_caller]
fn check(actual: String, expected: &str) {
    let expected = expected.strip_prefix('\n').unwrap_or(expected).trim_end();
    let expected: Vec<&str> = expected.lines().map(str::trim_end).collect();
    let actual_lines: Vec<&str> = actual.trim_end().lines().collect();
    assert_eq!(actual_lines, expected, "screen:\n{actual}\n");
}

/// app needs lib and hello; lib needs glibc; zlib is fetched.
fn planned() -> Model {
    let mut history = History::default();
    history.record("hello", secs(30));
    let mut m = Model::new(history);
    let p = |name: &str, inputs: &[&str], action| PlannedDrv {
        drv: drv(name),
        action,
        inputs: inputs.iter().map(|i| drv(i)).collect(),
    };
    m.update(
        secs(0),
        Update::Planned(vec![
            p("app", &["lib", "hello"], Action::Build),
            p("glibc", &[], Action::Build),
            p("hello", &["glibc"], Action::Build),
            p("lib", &["glibc", "zlib"], Action::Build),
            p("zlib", &[], Action::Fetch),
        ]),
    );
    m
}

fn in_progress() -> Model {
    let mut m = planned();
    let u = |m: &mut Model, t, u| {
        m.update(secs(t), u);
    };
    u(
        &mut m,
        1,
        Update::SubstitutionStarted {
            drv: drv("zlib"),
            from: "https://cache".into(),
        },
    );
    u(
        &mut m,
        2,
        Update::SubstitutionFinished {
            drv: drv("zlib"),
            ok: true,
        },
    );
    u(
        &mut m,
        2,
        Update::BuildStarted {
            drv: drv("glibc"),
            machine: "localhost".into(),
        },
    );
    u(&mut m, 9, Update::BuildFinished { drv: drv("glibc") });
    u(
        &mut m,
        10,
        Update::BuildStarted {
            drv: drv("hello"),
            machine: "localhost".into(),
        },
    );
    u(
        &mut m,
        10,
        Update::BuildStarted {
            drv: drv("lib"),
            machine: "builder1".into(),
        },
    );
    u(
        &mut m,
        11,
        Update::Phase {
            drv: drv("hello"),
            phase: "buildPhase".into(),
        },
    );
    u(
        &mut m,
        12,
        Update::Log {
            drv: drv("hello"),
            line: "gcc -c hello.c".into(),
        },
    );
    u(
        &mut m,
        13,
        Update::Log {
            drv: drv("lib"),
            line: "checking for cc... yes".into(),
        },
    );
    u(&mut m, 22, Update::Tick);
    m
}

fn failed() -> Model {
    let mut m = in_progress();
    m.update(
        secs(23),
        Update::BuildFailed {
            drv: drv("hello"),
            message: format!("builder for '{}' failed with exit code 2", drv("hello")),
            log_tail: vec![
                "hello.c:1: error: expected ';'".into(),
                "make: *** [hello] Error 1".into(),
            ],
        },
    );
    m.update(secs(23), Update::DependencyFailed { drv: drv("app") });
    m.update(secs(25), Update::Tick);
    m
}

fn dashboard() -> ViewState {
    ViewState::new("tvix build", false)
}

#[test]
fn a_plan() {
    check(
        screen(&planned(), &dashboard(), 80, 9),
        "
tvix build 0:00 · 0/4 built · 0/1 fetched
Derivations (5)
○ app  planned
├─○ lib  planned
│ ├─○ glibc  planned
│ └─○ zlib  planned
└─○ hello  planned

↑↓/jk: select · l: log · f: failures only · q: cancel",
    );
}

#[test]
fn an_evaluation_in_progress() {
    let mut m = Model::new(History::default());
    let counts = |files_read, derivations| EvalCounts {
        files_read,
        derivations,
    };
    m.update(secs(1), Update::Evaluating(counts(1, 0)));
    m.update(secs(4), Update::Evaluating(counts(120, 35)));
    check(
        screen(&m, &dashboard(), 60, 6),
        "
tvix build 0:04 · evaluating
Evaluating (0:04)
  120 files read, 35 derivations instantiated


↑↓/jk: select · l: log · f: failures only · q: cancel
",
    );
    // Once it is over, the plan takes its place.
    m.update(secs(5), Update::Evaluated(counts(121, 36)));
    let screen = screen(&m, &dashboard(), 60, 6);
    assert!(!screen.contains("Evaluating"), "{screen}");
    assert!(!screen.contains("evaluating"), "{screen}");
}

#[test]
fn downloads_show_paths_bytes_and_rate() {
    let mut m = Model::new(History::default());
    let t = |id, done| Update::Transfer {
        id,
        done,
        expected: 8 << 20,
    };
    m.update(secs(0), t(1, 0));
    m.update(secs(1), t(1, 4 << 20));
    m.update(secs(2), t(2, 4 << 20));
    let s = screen(&m, &dashboard(), 70, 3);
    assert_eq!(
        s.lines().next().unwrap(),
        "tvix build 0:02 · 0/0 built · ↓ 2 paths 8.0 MiB 4.0 MiB/s",
        "{s}"
    );
}

#[test]
fn builds_in_progress() {
    check(
        screen(&in_progress(), &dashboard(), 80, 13),
        "
tvix build 0:22 · 2 building · 1/4 built · 1/1 fetched
Running (2)
▶ ▸ hello  buildPhase     0:12 / ~0:30  localhost
      gcc -c hello.c
  ▸ lib    building       0:12          builder1
      checking for cc... yes
Derivations (5)
○ app  planned
├─▸ lib  building
│ ├─✓ glibc  built
│ └─✓ zlib  fetched
└─▸ hello  building
↑↓/jk: select · l: log · f: failures only · q: cancel",
    );
}

#[test]
fn a_failure_keeps_running_builds_on_screen() {
    let expected = "
tvix build 0:25 · 1 building · 1/4 built · 1/1 fetched · 1 failed
Running (1)
▶ ▸ lib   building       0:15          builder1
      checking for cc... yes
Failed (1)
  ✗ hello: builder for '/nix/store/hellohellohellohellohellohellohe-hello.drv' f
      hello.c:1: error: expected ';'
      make: *** [hello] Error 1
      whole log: tvix log /nix/store/hellohellohellohellohellohellohe-hello.drv
Derivations (5)
⊘ app  not built: an input failed
├─▸ lib  building
│ ├─✓ glibc  built
│ └─✓ zlib  fetched
└─✗ hello  failed
↑↓/jk: select · l: log · f: failures only · q: cancel";
    check(screen(&failed(), &dashboard(), 80, 16), expected);
    // Less room: the tree and then the log tail give way, the running build stays.
    check(
        screen(&failed(), &dashboard(), 80, 9),
        "
tvix build 0:25 · 1 building · 1/4 built · 1/1 fetched · 1 failed
Running (1)
▶ ▸ lib   building       0:15          builder1
      checking for cc... yes
Failed (1)
  ✗ hello: builder for '/nix/store/hellohellohellohellohellohellohe-hello.drv' f
      make: *** [hello] Error 1
      whole log: tvix log /nix/store/hellohellohellohellohellohellohe-hello.drv
↑↓/jk: select · l: log · f: failures only · q: cancel",
    );
}

#[test]
fn failures_only() {
    let mut v = dashboard();
    let m = failed();
    v.key(&m, Key::Char('f'));
    check(
        screen(&m, &v, 80, 9),
        "
tvix build 0:25 · 1 building · 1/4 built · 1/1 fetched · 1 failed
Failed (1)
▶ ✗ hello: builder for '/nix/store/hellohellohellohellohellohellohe-hello.drv' f
      hello.c:1: error: expected ';'
      make: *** [hello] Error 1
      whole log: tvix log /nix/store/hellohellohellohellohellohellohe-hello.drv
Derivations (2)
  … and 2 more
↑↓/jk: select · l: log · f: all · q: cancel",
    );
}

#[test]
fn the_summary() {
    let mut m = failed();
    m.update(secs(40), Update::BuildFinished { drv: drv("lib") });
    m.update(secs(41), Update::Ended { cancelled: false });
    check(
        screen(&m, &dashboard(), 80, 14),
        "
tvix build 0:41 · 2/4 built · 1/1 fetched · 1 failed
Failed (1)
▶ ✗ hello: builder for '/nix/store/hellohellohellohellohellohellohe-hello.drv' f
      hello.c:1: error: expected ';'
      make: *** [hello] Error 1
      whole log: tvix log /nix/store/hellohellohellohellohellohellohe-hello.drv
Derivations (5)
⊘ app  not built: an input failed
├─✓ lib  built
│ ├─✓ glibc  built
│ └─✓ zlib  fetched
└─✗ hello  failed

built 2, substituted 1, failed 1 (+1 not built) in 0:41",
    );
    let mut m = in_progress();
    m.update(secs(30), Update::CancelRequested);
    m.update(secs(31), Update::Ended { cancelled: true });
    let s = screen(&m, &dashboard(), 60, 4);
    check(
        s,
        "
tvix build 0:31 · 1/4 built · 1/1 fetched
Derivations (5)
  … and 5 more
built 1, substituted 1, failed 0 in 0:31, cancelled",
    );
}

#[test]
fn a_60_column_terminal() {
    check(
        screen(&failed(), &dashboard(), 60, 12),
        "
tvix build 0:25 · 1 building · 1/4 built · 1/1 fetched · 1 f
Running (1)
▶ ▸ lib   building       0:15          builder1
      checking for cc... yes
Failed (1)
  ✗ hello: builder for '/nix/store/hellohellohellohellohello
      hello.c:1: error: expected ';'
      make: *** [hello] Error 1
      whole log: tvix log /nix/store/hellohellohellohellohel
Derivations (5)
  … and 5 more
↑↓/jk: select · l: log · f: failures only · q: cancel",
    );
}

#[test]
fn a_small_terminal_counts_what_does_not_fit() {
    let mut m = Model::new(History::default());
    for i in 0..30 {
        m.update(
            secs(i),
            Update::BuildStarted {
                drv: drv(&format!("pkg{i:02}")),
                machine: String::new(),
            },
        );
    }
    m.update(secs(40), Update::Tick);
    check(
        screen(&m, &dashboard(), 50, 8),
        "
tvix build 0:40 · 30 building · 0/30 built
Running (30)
▶ ▸ pkg00  building       0:40          localhost
  ▸ pkg01  building       0:39          localhost
  ▸ pkg02  building       0:38          localhost
  ▸ pkg03  building       0:37          localhost
  … and 26 more running
↑↓/jk: select · l: log · f: failures only · q: can",
    );
}

#[test]
fn an_open_log() {
    let mut m = in_progress();
    for i in 0..50 {
        m.update(
            secs(20),
            Update::Log {
                drv: drv("hello"),
                line: format!("cc -c file{i}.c"),
            },
        );
    }
    let mut v = dashboard();
    v.page = 4;
    v.key(&m, Key::Char('l'));
    check(
        screen(&m, &v, 70, 6),
        "
log of hello (building)
cc -c file46.c
cc -c file47.c
cc -c file48.c
cc -c file49.c
lines 48-51 of 51 (following) · ↑↓ PgUp PgDn: scroll · End: follow · /",
    );
    for c in "/file7.".chars() {
        v.key(&m, Key::Char(c));
    }
    check(
        screen(&m, &v, 70, 6),
        "
log of hello (building)
cc -c file46.c
cc -c file47.c
cc -c file48.c
cc -c file49.c
/file7.",
    );
    v.key(&m, Key::Enter);
    check(
        screen(&m, &v, 70, 6),
        "
log of hello (building)
cc -c file7.c
cc -c file8.c
cc -c file9.c
cc -c file10.c
lines 9-12 of 51 · ↑↓ PgUp PgDn: scroll · End: follow · /: search · n:",
    );
}

#[test]
fn colours_only_when_allowed() {
    let mut t = Terminal::new(TestBackend::new(40, 3)).unwrap();
    t.draw(|f| render(&planned(), &dashboard(), f)).unwrap();
    let plain = t.backend().buffer().clone();
    let mut expected = Buffer::with_lines([
        "tvix build 0:00 · 0/4 built · 0/1 fetche",
        "",
        "↑↓/jk: select · l: log · f: failures onl",
    ]);
    expected.set_style(expected.area, ratatui::style::Style::default());
    assert_eq!(plain, expected);
    let coloured = ViewState::new("tvix build", true);
    t.draw(|f| render(&planned(), &coloured, f)).unwrap();
    assert_ne!(t.backend().buffer(), &plain);
}
