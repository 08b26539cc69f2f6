//! `tvix repl` on a real pseudo-terminal: each test runs the REPL inside its own tmux server
//! (a private socket, an isolated HOME and XDG data directory), types into it with
//! `send-keys` and reads the screen with `capture-pane`.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;
use common::tmux::{quote, Session};

const PROMPT: &str = "tvix-repl> ";
const TIMEOUT: Duration = Duration::from_secs(30);

/// A REPL running in a detached tmux session.
struct Term {
    session: Session,
    home: tempfile::TempDir,
}

impl Term {
    /// Starts `tvix repl ARGS` in `cwd` with extra environment `env`.
    fn start(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Term {
        let home = tempfile::tempdir().expect("temp home");
        Term::start_in_home(home, cwd, args, env)
    }

    fn start_in_home(
        home: tempfile::TempDir,
        cwd: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Term {
        let mut vars = vec![
            ("HOME".to_string(), home.path().display().to_string()),
            (
                "XDG_DATA_HOME".to_string(),
                home.path().join("data").display().to_string(),
            ),
            ("TERM".to_string(), "xterm-256color".to_string()),
            ("TVIX_STORE".to_string(), "memory://".to_string()),
        ];
        if !env.iter().any(|(k, _)| *k == "COLOR") {
            vars.push(("NO_COLOR".to_string(), "1".to_string()));
        }
        vars.extend(
            env.iter()
                .filter(|(k, _)| *k != "COLOR")
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut cmd = String::from("env -u NO_COLOR");
        for (k, v) in &vars {
            cmd.push_str(&format!(" {k}={}", quote(v)));
        }
        cmd.push_str(&format!(" {} repl", quote(env!("CARGO_BIN_EXE_tvix"))));
        for a in args {
            cmd.push(' ');
            cmd.push_str(&quote(a));
        }
        cmd.push_str("; echo \"EXITED $?\"; sleep 600");
        let session = Session::start("repl", cwd, 200, 50, &cmd);
        let t = Term { session, home };
        t.wait_for_prompts(1);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        self.session.tmux(args)
    }

    /// The whole screen and scrollback, wrapped lines joined.
    fn screen(&self) -> String {
        self.session.scrollback()
    }

    /// Types `text` literally.
    fn type_text(&self, text: &str) {
        self.session.type_text(text);
    }

    fn keys(&self, keys: &[&str]) {
        self.session.keys(keys);
    }

    /// Waits until `pred` holds for the screen; returns it.
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.session.wait_for(
            what,
            TIMEOUT,
            Duration::from_millis(50),
            Session::scrollback,
            pred,
        )
    }

    fn prompts(screen: &str) -> usize {
        screen
            .lines()
            .filter(|l| l.starts_with(PROMPT.trim_end()))
            .count()
    }

    fn wait_for_prompts(&self, n: usize) -> String {
        self.wait(&format!("{n} prompts"), |s| Term::prompts(s) >= n)
    }

    /// Types a line, presses Enter, waits for the next prompt and returns what was printed
    /// between the line and that prompt.
    fn line(&self, text: &str) -> String {
        let before = Term::prompts(&self.screen());
        self.type_text(text);
        self.keys(&["Enter"]);
        let screen = self.wait_for_prompts(before + 1);
        output_after(&screen, before)
    }

    /// `line`, asserting that the output contains each of `expected`.
    #[track_caller]
    fn expect(&self, text: &str, expected: &[&str]) -> String {
        let out = self.line(text);
        for e in expected {
            assert!(out.contains(e), "{text:?}: expected {e:?} in:\n{out}");
        }
        out
    }

    fn wait_exit(&self) -> String {
        self.wait("the REPL to exit", |s| s.contains("EXITED "))
    }
}

/// The screen text after the `n`th prompt line (the typed input) up to the next prompt.
fn output_after(screen: &str, n: usize) -> String {
    let mut seen = 0;
    let mut out = Vec::new();
    for l in screen.lines() {
        if l.starts_with(PROMPT.trim_end()) {
            seen += 1;
            if seen > n {
                break;
            }
            continue;
        }
        if seen == n {
            out.push(l);
        }
    }
    out.join("\n")
}

/// A directory with the files the tests load.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let w = |p: &str, text: &str| {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    w(
        "lib.nix",
        "{\n  n = 1;\n  fn = x: x + 1;\n  nested = { deep = { value = 42; }; \"needs quoting\" = 7; };\n\n  /** Adds two numbers. */\n  add = a: b: a + b;\n}\n",
    );
    w(
        "fl/flake.nix",
        "{\n  inputs.dep.url = \"path:./dep\";\n  inputs.src = { url = \"path:./dep\"; flake = false; };\n  outputs = { self, dep, src }: { value = dep.answer + 1; me = self.value; srcPath = src.outPath; };\n}\n",
    );
    w(
        "fl/dep/flake.nix",
        "{ outputs = { self }: { answer = 41; }; }\n",
    );
    w(
        "netflake/flake.nix",
        "{ inputs.nixpkgs.url = \"github:NixOS/nixpkgs\"; outputs = { self, nixpkgs }: { }; }\n",
    );
    dir
}

#[test]
fn evaluates_binds_and_prints() {
    let dir = fixture();
    let t = Term::start(dir.path(), &[], &[]);
    t.expect("1 + 2", &["3"]);
    t.line("x = { a = 1; b = { c = 2; }; f = y: y; e = throw \"boom\"; }");
    t.expect(
        "x",
        &["{ a = 1; b = { ... }; e = «error: boom»; f = «lambda @ «string»:1:30»; }"],
    );
    t.expect(":p x.b", &["{ c = 2; }"]);
    t.expect(":print [ 1 [ 2 ] ]", &["[ 1 [ 2 ] ]"]);
    t.expect(":t x.f", &["a function"]);
    t.expect(":type 1", &["an integer"]);
    t.line("inherit (x) a");
    t.expect("a + 1", &["2"]);
    t.expect("_ + 10", &["12"]);
    t.expect(
        "derivation { name = \"d\"; builder = \"/bin/sh\"; system = \"x86_64-linux\"; }",
        &["«derivation /nix/store/", "-d.drv»"],
    );
    t.expect(
        "undefined_thing",
        &[
            "error: undefined variable 'undefined_thing'",
            "1| undefined_thing",
        ],
    );
    t.expect(":te", &["showing error traces: on"]);
    t.expect(
        "throw \"deep\"",
        &["… while calling the 'throw' builtin", "error: deep"],
    );
    t.expect(":trace-enable false", &["showing error traces: off"]);
    t.expect(
        ":?",
        &[":a, :add <expr>", ":lf, :load-flake <dir>", ":q, :quit"],
    );
    t.expect(":help", &[":e, :edit <expr>", ":doc <expr>"]);
    t.expect(":env", &["bound in this session: _ a x"]);
    for cmd in [":b", ":bl", ":i", ":u", ":sh", ":log"] {
        t.expect(
            &format!("{cmd} x"),
            &["expression does not evaluate to a derivation, so I can't build it"],
        );
    }
    t.type_text(":quit");
    t.keys(&["Enter"]);
    assert!(t.wait_exit().contains("EXITED 0"));
}

#[test]
fn loads_reloads_and_edits_files() {
    let dir = fixture();
    let edited = dir.path().join("edited");
    let editor = dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        format!(
            "#!/bin/sh\necho \"$@\" > {}\n",
            quote(&edited.display().to_string())
        ),
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let t = Term::start(
        dir.path(),
        &["./lib.nix"],
        &[("EDITOR", &editor.display().to_string())],
    );
    assert!(t.screen().contains("Added 4 variables."));
    t.expect("n", &["1"]);
    t.expect(":ll", &["{ add = «lambda @ ", "n = 1; nested = { ... }; }"]);
    t.expect(":last-loaded", &["fn = «lambda @ "]);
    t.expect(":env", &["from ./lib.nix: add fn n nested"]);
    t.expect(
        ":doc add",
        &["Function add", "lib.nix:7:9", "Adds two numbers."],
    );
    t.expect(
        ":doc builtins.map",
        &["Synopsis: builtins.map f list", "A list of `f`"],
    );
    t.expect(
        ":doc fn",
        &["has no documentation comment", "fn = x: x + 1;"],
    );
    t.expect(":a { extra = 7; }", &["Added 1 variable."]);
    t.expect("extra", &["7"]);
    t.expect(":e fn", &["Added 4 variables."]);
    let lib = dir.path().join("lib.nix");
    let lib = std::fs::canonicalize(lib).unwrap();
    assert_eq!(
        std::fs::read_to_string(&edited).unwrap().trim(),
        format!("+3 {}", lib.display())
    );
    std::fs::write(&lib, "{ n = 2; }").unwrap();
    t.expect(":r", &["Added 1 variable."]);
    t.expect("n", &["2"]);
    t.expect("extra", &["undefined variable 'extra'"]);
    std::fs::write(&lib, "{ n = 3; }").unwrap();
    t.expect(":reload", &["Added 1 variable."]);
    t.expect("n", &["3"]);
    t.expect(":load ./fl/dep/flake.nix", &["Added 1 variable."]);
    t.expect(":e 1", &["cannot open an integer in the editor"]);
}

#[test]
fn loads_local_flakes() {
    let dir = fixture();
    let t = Term::start(dir.path(), &[], &[]);
    t.expect(":lf ./fl", &["Added 8 variables."]);
    t.expect("value", &["42"]);
    t.expect("me", &["42"]);
    t.expect("srcPath", &["/fl/dep\""]);
    t.expect("inputs.dep.answer", &["41"]);
    t.expect(
        ":load-flake ./netflake",
        &["flake input 'nixpkgs' is 'github:NixOS/nixpkgs': tvix loads only flakes whose inputs are local paths"],
    );
    t.expect(":lf github:NixOS/nixpkgs", &["is not a local flake"]);
}

#[test]
fn completes_by_context() {
    let dir = fixture();
    let t = Term::start(dir.path(), &["./lib.nix"], &[]);
    // One candidate: completed in place.
    t.type_text("builtins.attrN");
    t.keys(&["Tab"]);
    t.wait("builtins.attrNames", |s| {
        s.contains("tvix-repl> builtins.attrNames")
    });
    t.keys(&["C-u"]);
    // Several: the second Tab lists them.
    t.type_text("builtins.a");
    t.keys(&["Tab"]);
    t.keys(&["Tab"]);
    let s = t.wait("a list of builtins.a*", |s| {
        s.contains("attrValues") && s.contains("all") && s.contains("abort")
    });
    assert!(!s.contains("map"), "only names starting with 'a':\n{s}");
    t.keys(&["C-u"]);
    // An attribute path of the loaded file, evaluated for completion.
    t.type_text("nested.deep.va");
    t.keys(&["Tab"]);
    t.wait("nested.deep.value", |s| {
        s.contains("tvix-repl> nested.deep.value")
    });
    t.keys(&["Enter"]);
    t.wait("42", |s| s.lines().any(|l| l == "42"));
    // Names that are not identifiers are quoted.
    t.type_text("nested.ne");
    t.keys(&["Tab"]);
    t.wait("quoted name", |s| {
        s.contains("tvix-repl> nested.\"needs quoting\"")
    });
    t.keys(&["Enter"]);
    t.wait("7", |s| s.lines().any(|l| l == "7"));
    // Variables in scope.
    t.type_text("neste");
    t.keys(&["Tab"]);
    t.wait("nested", |s| {
        s.lines().last_non_empty().contains("tvix-repl> nested")
    });
    t.keys(&["C-u"]);
    // Commands.
    t.type_text(":lo");
    t.keys(&["Tab"]);
    t.keys(&["Tab"]);
    t.wait("command list", |s| {
        s.contains(":load-flake") && s.contains(":load ")
    });
    t.keys(&["C-u"]);
    // File paths after :l.
    t.type_text(":l ./li");
    t.keys(&["Tab"]);
    t.wait(":l ./lib.nix", |s| s.contains("tvix-repl> :l ./lib.nix"));
    t.keys(&["C-u"]);
    // A prefix that fails or runs too long completes nothing, quietly.
    t.type_text("(throw \"no\").x");
    t.keys(&["Tab"]);
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["C-u"]);
    t.expect("1", &["1"]);
}

trait LastNonEmpty {
    fn last_non_empty(self) -> String;
}

impl<'a, I: Iterator<Item = &'a str>> LastNonEmpty for I {
    fn last_non_empty(self) -> String {
        self.filter(|l| !l.trim().is_empty())
            .last()
            .unwrap_or("")
            .to_string()
    }
}

#[test]
fn multi_line_input() {
    let dir = fixture();
    let t = Term::start(dir.path(), &[], &[]);
    let before = Term::prompts(&t.screen());
    t.type_text("{ a = 1;");
    t.keys(&["Enter"]);
    t.type_text("  b = [ 2");
    t.keys(&["Enter"]);
    t.type_text("3 ]; }");
    t.keys(&["Enter"]);
    let s = t.wait_for_prompts(before + 1);
    assert!(
        output_after(&s, before).contains("{ a = 1; b = [ ... ]; }"),
        "{s}"
    );
    t.type_text("let");
    t.keys(&["Enter"]);
    t.type_text("  x = 5;");
    t.keys(&["Enter"]);
    t.type_text("in x * 2");
    t.keys(&["Enter"]);
    let s = t.wait_for_prompts(before + 2);
    assert!(s.lines().any(|l| l == "10"), "{s}");
    // A bracketed paste is inserted whole, its newlines do not end the input (`100` alone
    // would be complete); Enter then evaluates all of it.
    t.tmux(&["set-buffer", "100\n+ 11"]);
    t.tmux(&["paste-buffer", "-p"]);
    t.keys(&["Enter"]);
    let s = t.wait_for_prompts(before + 3);
    let out = output_after(&s, before + 2);
    assert!(out.lines().any(|l| l == "111"), "{s}");
    assert!(!s.contains("error:"), "{s}");
}

#[test]
fn ctrl_c_interrupts_evaluation_and_keeps_the_session() {
    let dir = fixture();
    let t = Term::start(dir.path(), &[], &[]);
    t.line("keep = 5");
    // A long loop: ten billion additions, interrupted after a second.
    let before = Term::prompts(&t.screen());
    t.type_text(
        "builtins.foldl' (a: b: builtins.foldl' (x: y: x + y) a (builtins.genList (i: i) 100000)) 0 (builtins.genList (i: i) 100000)",
    );
    t.keys(&["Enter"]);
    std::thread::sleep(Duration::from_secs(1));
    t.keys(&["C-c"]);
    let s = t.wait_for_prompts(before + 1);
    assert!(
        output_after(&s, before).contains("error: evaluation interrupted"),
        "{s}"
    );
    t.expect("keep + 1", &["6"]);
    // Runaway recursion ends by itself (max-call-depth) or by the Ctrl-C typed soon after:
    // either way the prompt comes back and the session goes on.
    let before = Term::prompts(&t.screen());
    t.type_text("let f = x: f x; in f 1");
    t.keys(&["Enter"]);
    std::thread::sleep(Duration::from_millis(200));
    t.keys(&["C-c"]);
    let s = t.wait_for_prompts(before + 1);
    let out = output_after(&s, before);
    assert!(
        out.contains("evaluation interrupted") || out.contains("stack overflow"),
        "{out}"
    );
    t.expect("let f = x: f x; in f 1", &["stack overflow"]);
    t.expect("keep + 2", &["7"]);
    // At the prompt, Ctrl-C drops the line being typed.
    let before = Term::prompts(&t.screen());
    t.type_text("garbage");
    t.keys(&["C-c"]);
    t.wait_for_prompts(before + 1);
    t.expect("keep + 3", &["8"]);
    // Ctrl-D exits.
    t.keys(&["C-d"]);
    assert!(t.wait_exit().contains("EXITED 0"));
}

/// The resident memory of the REPL process (the pane's shell's child), in KiB.
fn repl_rss_kib(t: &Term) -> u64 {
    let shell = t.tmux(&["list-panes", "-F", "#{pane_pid}"]);
    let shell = shell.trim();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
        .expect("the pane's children");
    let repl = children
        .split_whitespace()
        .next()
        .expect("the REPL process");
    let status = std::fs::read_to_string(format!("/proc/{repl}/status")).expect("its status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn ctrl_c_stops_a_long_builtin_and_frees_its_memory() {
    // Issue 20's case: before, this ran on for more than 15 s after Ctrl-C, up to 7.5 GB,
    // and 5.7 GB stayed taken. Now `genList` and `foldl'` check the interrupt flag.
    let dir = fixture();
    let t = Term::start(dir.path(), &[], &[]);
    let before = Term::prompts(&t.screen());
    t.type_text("builtins.foldl' (a: b: a + b) 0 (builtins.genList (x: x) 100000000)");
    t.keys(&["Enter"]);
    std::thread::sleep(Duration::from_millis(700));
    let pressed = std::time::Instant::now();
    t.keys(&["C-c"]);
    let s = t.wait_for_prompts(before + 1);
    assert!(
        pressed.elapsed() < Duration::from_secs(3),
        "the prompt came back after {:?}",
        pressed.elapsed()
    );
    assert!(
        output_after(&s, before).contains("error: evaluation interrupted"),
        "{s}"
    );
    // What the evaluation built (the list, the thunks) is dropped: the REPL is back to a
    // small size (it was at hundreds of megabytes when interrupted).
    t.expect("1 + 1", &["2"]);
    let rss = repl_rss_kib(&t);
    assert!(rss < 400 * 1024, "the REPL still holds {rss} KiB");
    t.keys(&["C-d"]);
    assert!(t.wait_exit().contains("EXITED 0"));
}

#[test]
fn history_survives_a_restart() {
    let dir = fixture();
    let home = tempfile::tempdir().unwrap();
    let home_path: PathBuf = home.path().to_path_buf();
    let t = Term::start_in_home(home, dir.path(), &[], &[]);
    t.expect("40 + 2", &["42"]);
    t.expect("\"second\"", &["\"second\""]);
    let history = home_path.join("data/tvix/repl-history");
    // Saved after every line, before the REPL exits.
    let saved = std::fs::read_to_string(&history).expect("history file");
    assert!(
        saved.contains("40 + 2") && saved.contains("\"second\""),
        "{saved}"
    );
    t.keys(&["C-d"]);
    t.wait_exit();
    let home = t.home_dir();
    drop(t);
    let t = Term::start_in_home(home, dir.path(), &[], &[]);
    t.keys(&["Up", "Up"]);
    t.wait("recalled line", |s| s.contains("tvix-repl> 40 + 2"));
    t.keys(&["Enter"]);
    t.wait("42 again", |s| {
        s.lines().filter(|l| *l == "42").count() == 1
    });
}

impl Term {
    /// Takes the home directory out of a finished session to start another in it.
    fn home_dir(&self) -> tempfile::TempDir {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(self.home.path(), copy.path());
        copy
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn colours_on_a_terminal_unless_no_color() {
    let dir = fixture();
    let t = Term::start(dir.path(), &[], &[("COLOR", "1")]);
    t.line("12345");
    let coloured = t.tmux(&["capture-pane", "-p", "-e", "-S", "-"]);
    assert!(
        coloured.contains("\x1b[36m12345"),
        "the number is coloured:\n{coloured:?}"
    );
    let t = Term::start(dir.path(), &[], &[]);
    t.line("12345");
    let plain = t.tmux(&["capture-pane", "-p", "-e", "-S", "-"]);
    assert!(!plain.contains("\x1b[36m"), "NO_COLOR: {plain:?}");
}

/// The static busybox the build tests use as builder (`setup.sh`, as `tests/builds.rs`).
const BUSYBOX: &str = "/var/lib/tvix-tests/busybox";

/// A directory with `d.nix`: derivations with a fresh nonce in their names (so nothing is
/// built beforehand), built by busybox's sh: `ok` (logs a line, makes `bin/hi`), `bad`
/// (fails) and `slow` (sleeps).
fn build_fixture() -> (tempfile::TempDir, String) {
    assert!(
        Path::new(BUSYBOX).join("bin/busybox").exists(),
        "{BUSYBOX} is missing: run setup.sh"
    );
    let nonce = format!(
        "{:x}{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
        std::process::id()
    );
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"let
  bb = builtins.path {{ path = {BUSYBOX}; name = "busybox"; }};
  mk = name: script: derivation {{
    name = "${{name}}-{nonce}";
    system = "x86_64-linux";
    builder = "${{bb}}/bin/sh";
    PATH = "${{bb}}/bin";
    args = [ "-c" script ];
  }};
in {{
  ok = mk "ok" "echo hello from the build; mkdir -p $out/bin; echo '#!/bin/sh' > $out/bin/hi; chmod +x $out/bin/hi";
  bad = mk "bad" "echo failing now; exit 3";
  slow = mk "slow" "echo sleeping; sleep 60; touch $out";
}}
"#
    );
    std::fs::write(dir.path().join("d.nix"), text).unwrap();
    (dir, nonce)
}

#[test]
fn builds_links_logs_and_shells() {
    let (dir, nonce) = build_fixture();
    let store = format!("local://{}", dir.path().join("store").display());
    let t = Term::start(
        dir.path(),
        &["--store", &store, "./d.nix"],
        &[("SHELL", "/bin/bash"), ("PAGER", "sed s/^/paged:/")],
    );
    // On a terminal the build is shown as a compact dashboard, cleared when it is done:
    // only the outputs stay.
    let out = t.expect(
        ":b ok",
        &[
            "This derivation produced the following outputs:",
            "  out -> /nix/store/",
        ],
    );
    assert!(
        !out.contains("building '"),
        "Nix's lines on a terminal:\n{out}"
    );
    let path = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("out -> "))
        .expect("an output line")
        .to_string();
    assert!(path.ends_with(&format!("-ok-{nonce}")), "{path}");

    t.expect(":bl ok", &[&format!("  ./repl-result-out -> {path}")]);
    assert_eq!(
        std::fs::read_link(dir.path().join("repl-result-out")).unwrap(),
        Path::new(&path)
    );
    // Built already: nothing is built again.
    let again = t.expect(":b ok", &["out -> "]);
    assert!(!again.contains("building '"), "{again}");

    // On a terminal the log goes through the pager.
    t.expect(":log ok", &["paged:hello from the build"]);

    // The error carries the log's tail, which the cleared dashboard no longer shows.
    let failed = t.expect(
        ":b bad",
        &[
            "error: builder for '/nix/store/",
            "failed with exit code 3",
            "failing now",
        ],
    );
    assert!(
        !failed.contains("produced the following outputs"),
        "{failed}"
    );
    t.expect(":log bad", &["paged:failing now"]);
    t.expect("1 + 1", &["2"]);

    // :sh starts bash with the derivation's build environment in a temporary directory.
    let before = Term::prompts(&t.screen());
    t.type_text(":sh ok");
    t.keys(&["Enter"]);
    t.type_text("echo NAME=$name TOP=$NIX_BUILD_TOP TMP=$TMPDIR");
    t.keys(&["Enter"]);
    let screen = t.wait("the shell's output", |s| {
        s.lines().any(|l| l.starts_with("NAME=ok-"))
    });
    let line = screen
        .lines()
        .find(|l| l.starts_with("NAME=ok-"))
        .unwrap()
        .to_string();
    assert!(line.contains(&format!("NAME=ok-{nonce} TOP=/")), "{line}");
    let top = line
        .split(" TOP=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert!(line.ends_with(&format!("TMP={top}")), "{line}");
    assert!(Path::new(top).is_dir(), "the build directory exists: {top}");
    t.type_text("exit");
    t.keys(&["Enter"]);
    t.wait_for_prompts(before + 1);
    assert!(
        !Path::new(top).exists(),
        "the build directory is removed: {top}"
    );
    t.expect("2 + 2", &["4"]);
}

#[test]
fn ctrl_c_cancels_a_build() {
    let (dir, nonce) = build_fixture();
    let store = format!("local://{}", dir.path().join("store").display());
    let t = Term::start(dir.path(), &["--store", &store, "./d.nix"], &[]);
    let before = Term::prompts(&t.screen());
    t.type_text(":b slow");
    t.keys(&["Enter"]);
    // The compact dashboard: the build's name, its timer and counts, its last log line.
    let s = t.wait("the build to start", |s| s.contains("  sleeping"));
    let line = s
        .lines()
        .find(|l| l.starts_with(&format!("building slow-{nonce} · 0:")))
        .unwrap_or_else(|| panic!("no compact dashboard line:\n{s}"));
    assert!(line.ends_with(" · 0/1 done"), "{line}");
    let started = std::time::Instant::now();
    t.keys(&["C-c"]);
    let screen = t.wait_for_prompts(before + 1);
    assert!(
        !screen.contains(&format!("building slow-{nonce} · ")),
        "the compact dashboard was not cleared:\n{screen}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "cancelled well before the build's 60 s"
    );
    let out = output_after(&screen, before);
    assert!(out.contains("interrupted by the user"), "{out}");
    assert!(!out.contains(&format!("-slow-{nonce}\n")), "{out}");
    t.expect("3 * 3", &["9"]);
}
