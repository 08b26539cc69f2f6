//! `tvix repl` without a terminal: inputs on stdin, one result per line on stdout, errors on
//! stderr rendered as `tvix eval` renders them.

mod common;

use std::process::{Output, Stdio};

use common::{run, tvix};

fn repl_in(dir: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = tvix()
        .arg("repl")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tvix repl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for tvix repl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn one_result_per_line_with_bindings_and_numbered_results() {
    let o = run(
        &["repl"],
        "1 + 2\nx = 4\nx * 2\ninherit (builtins) length\nlength [ 1 2 ]\n_ + 1\n_1 + _2\n",
    );
    assert_eq!(stdout(&o), "3\n8\n2\n3\n11\n", "stderr: {}", stderr(&o));
    assert!(o.status.success());
}

#[test]
fn bindings_are_lazy_and_shadow_builtins() {
    let o = run(&["repl"], "boom = throw \"later\"\nmap = 5\nmap + 1\n");
    assert_eq!(stdout(&o), "6\n", "stderr: {}", stderr(&o));
    assert!(o.status.success());
}

#[test]
fn input_continues_over_lines_while_incomplete() {
    let o = run(
        &["repl"],
        "{ a = 1;\n  b = [ 2\n 3 ]; }\nlet\n  x = 5;\nin x * 2\n''\n  multi\n''\n",
    );
    assert_eq!(
        stdout(&o),
        "{ a = 1; b = [ ... ]; }\n10\n\"multi\\n\"\n",
        "stderr: {}",
        stderr(&o)
    );
}

#[test]
fn prints_like_nix_repl() {
    let o = run(
        &["repl"],
        "let b = { c = 2; }; in { inherit b; x = b; e = throw \"boom\"; f = y: y; l = [ 1 ]; p = map; q = map (x: x); }\n\
         :p { a = { b = [ 1 { c = 3; } ]; }; }\n\
         derivation { name = \"d\"; builder = \"/bin/sh\"; system = \"x86_64-linux\"; }\n",
    );
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "{ b = { ... }; e = «error: boom»; f = «lambda @ «string»:1:66»; l = [ ... ]; p = «primop map»; q = «primop-app map»; x = «repeated»; }"
    );
    assert_eq!(lines[1], "{ a = { b = [ 1 { c = 3; } ]; }; }");
    assert!(
        lines[2].starts_with("«derivation /nix/store/") && lines[2].ends_with("-d.drv»"),
        "{}",
        lines[2]
    );
}

#[test]
fn errors_read_as_in_tvix_eval_and_the_session_goes_on() {
    let expr = "{ a = 1; }.b or (1 + \"x\")";
    let eval = run(&["eval", "-E", expr], "");
    assert!(!eval.status.success());
    let o = run(&["repl"], &format!("{expr}\n2 + 2\n"));
    assert_eq!(stdout(&o), "4\n");
    assert_eq!(stderr(&o), stderr(&eval));
    assert_eq!(
        o.status.code(),
        Some(1),
        "a failed input makes the status 1"
    );
}

#[test]
fn runaway_recursion_ends_with_an_error_and_the_session_goes_on() {
    let o = run(&["repl"], "let f = x: f x; in f 1\n7\n");
    assert!(stderr(&o).contains("stack overflow"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "7\n");
}

#[test]
fn commands_type_help_and_quit() {
    let o = run(
        &["repl"],
        ":t 1\n:type {}\n:t x: x\n:t map\n:t map (x: x)\n\
         :t \"${derivation { name = \"d\"; builder = \"b\"; system = \"s\"; }}\"\n:?\n:q\n99\n",
    );
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "an integer\na set\na function\nthe built-in function 'map'\n\
             the partially applied built-in function 'map'\na string with context\n"
        ),
        "{out}"
    );
    assert!(out.contains(":lf, :load-flake <dir>"), "{out}");
    assert!(!out.contains("99"), ":q stops reading: {out}");
    assert!(o.status.success());
}

#[test]
fn build_commands_want_a_derivation_and_a_store() {
    for cmd in [":b", ":bl", ":i", ":u", ":sh", ":log"] {
        let o = run(&["repl"], &format!("{cmd} 1\n{cmd}\n"));
        let err = stderr(&o);
        assert!(
            err.contains(
                "error: expression does not evaluate to a derivation, so I can't build it"
            ),
            "{cmd}: {err}"
        );
        assert!(
            err.contains(&format!("error: {cmd} needs an expression")),
            "{cmd}: {err}"
        );
        assert_eq!(o.status.code(), Some(1));
        let drv = "derivation { name = \"x\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; }";
        let o = run(&["repl", "--readonly-mode"], &format!("{cmd} {drv}\n"));
        assert!(
            stderr(&o).contains(&format!("error: {cmd} needs a store to build in")),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    let o = run(&["repl"], ":nonsense\n");
    assert!(stderr(&o).contains("unknown command ':nonsense'"));
}

#[test]
fn files_on_the_command_line_are_loaded_with_their_arguments() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("f.nix"),
        "{ who, n ? 1 }: { greeting = \"hi ${who}\"; count = n; }",
    )
    .unwrap();
    std::fs::write(dir.path().join("g.nix"), "{ other = 3; }").unwrap();
    let o = repl_in(
        dir.path(),
        &["--argstr", "who", "tvix", "--arg", "n", "1 + 1", "./f.nix"],
        "greeting\ncount\n:l ./g.nix\nother\n:env\n",
    );
    assert_eq!(
        stdout(&o).lines().take(5).collect::<Vec<_>>(),
        [
            "Added 2 variables.",
            "\"hi tvix\"",
            "2",
            "Added 1 variable.",
            "3"
        ],
        "stderr: {}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("from ./f.nix: count greeting"));
    let missing = repl_in(dir.path(), &["./f.nix"], "");
    assert!(
        stderr(&missing)
            .contains("cannot evaluate a function that has an argument without a value ('who')"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn search_path_lookups_with_include() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lp")).unwrap();
    std::fs::write(dir.path().join("lp/default.nix"), "{ fromLookup = true; }").unwrap();
    let inc = format!("lp={}", dir.path().join("lp").display());
    let o = repl_in(dir.path(), &["-I", &inc], ":l <lp>\nfromLookup\n");
    assert_eq!(stdout(&o), "Added 1 variable.\ntrue\n", "{}", stderr(&o));
}

#[test]
fn print_depth_and_width_settings() {
    let o = run(
        &["repl"],
        "v = { a = { b = { c = 1; }; }; l = [ 1 2 3 ]; }\nv\n:set depth 2\nv\n:set width 1\nv\n:set depth none\n:set\n:set depth x\n",
    );
    assert_eq!(
        stdout(&o),
        "{ a = { ... }; l = [ ... ]; }\ndepth 2 width none\n{ a = { b = { ... }; }; l = [ 1 2 3 ]; }\n\
         depth 2 width 1\n{ a = { b = { ... }; }; «1 more» }\ndepth none width 1\ndepth none width 1\n",
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("depth must be a number or 'none', not 'x'"));
}

#[test]
fn edit_opens_the_editor_at_package_positions_and_paths() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pkg.nix");
    std::fs::write(&file, "{\n  a = 1;\n\n  b = 2;\n}\n").unwrap();
    let log = dir.path().join("log");
    let editor = dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let input = format!(
        ":e {{ meta.position = \"{f}:4\"; }}\n:e {f}\n:e {{ }}\n",
        f = file.display()
    );
    let o = {
        use std::io::Write;
        let mut child = tvix()
            .args(["repl"])
            .env("EDITOR", &editor)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("+4 {f}\n+1 {f}\n", f = file.display())
    );
    assert!(
        stderr(&o).contains("the set has no meta.position"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn file_and_expr_flags_load_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.nix"), "{ fromFile = 1; }").unwrap();
    let o = repl_in(
        dir.path(),
        &["--file", "./a.nix", "--expr", "{ fromExpr = 2; }"],
        "fromFile + fromExpr\n",
    );
    assert_eq!(
        stdout(&o),
        "Added 1 variable.\nAdded 1 variable.\n3\n",
        "{}",
        stderr(&o)
    );
}

#[test]
fn doc_shows_builtin_docs_doc_comments_or_the_definition_site() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lib.nix"),
        "{\n  /** Adds two numbers. */\n  add = a: b: a + b;\n  plain = x: x;\n}\n",
    )
    .unwrap();
    let lib = dir.path().join("lib.nix");
    let o = repl_in(
        dir.path(),
        &["./lib.nix"],
        ":doc builtins.map\n:doc map (x: x)\n:doc builtins.currentSystem\n:doc add\n:doc plain\n:doc 1\n",
    );
    let out = stdout(&o);
    assert!(
        out.contains("Synopsis: builtins.map f list\n\n    A list of `f` applied to each element"),
        "{out}"
    );
    assert!(out.contains("(applied to 1 of its 2 arguments)"), "{out}");
    assert!(out.contains("builtins.currentSystem (a constant)"), "{out}");
    assert!(
        out.contains(&format!(
            "Function add\n    … defined at {}:3:9\n\n    Adds two numbers.",
            lib.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Function plain has no documentation comment (/** ... */).\n    … defined at {}:4:11\n\n      plain = x: x;",
            lib.display()
        )),
        "{out}"
    );
    assert!(stderr(&o).contains("value does not have documentation"));
}

/// The static busybox the build tests use as builder (`setup.sh`, as `tests/builds.rs`).
const BUSYBOX: &str = "/var/lib/tvix-tests/busybox";

/// A derivation expression with a fresh nonce, built by busybox's sh; it logs a line and
/// makes `$out/bin/LABEL`.
fn fresh_derivation(label: &str) -> String {
    assert!(
        std::path::Path::new(BUSYBOX).join("bin/busybox").exists(),
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
    format!(
        "let bb = builtins.path {{ path = {BUSYBOX}; name = \"busybox\"; }}; in derivation {{ \
         name = \"{label}-{nonce}\"; system = \"x86_64-linux\"; builder = \"${{bb}}/bin/sh\"; \
         PATH = \"${{bb}}/bin\"; args = [ \"-c\" \"echo log of {label}; mkdir -p $out/bin; \
         printf '#!/bin/sh\\\\necho ran {label}\\\\n' > $out/bin/{label}; \
         chmod +x $out/bin/{label}\" ]; }}"
    )
}

#[test]
fn build_in_batch_mode() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("local://{}", dir.path().join("store").display());
    let drv = fresh_derivation("batch");
    let o = repl_in(
        dir.path(),
        &["--store", &store],
        &format!(":b {drv}\n:log {drv}\n:b 1\n7\n"),
    );
    let out = stdout(&o);
    let err = stderr(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "", "{out}");
    assert_eq!(
        lines[1], "This derivation produced the following outputs:",
        "{out}"
    );
    assert!(
        lines[2].starts_with("  out -> /nix/store/") && lines[2].contains("-batch-"),
        "{out}"
    );
    assert_eq!(lines[3], "log of batch", "{out}");
    assert_eq!(lines[4], "7", "{out}");
    assert!(err.contains("building '/nix/store/"), "{err}");
    assert!(err.contains("log of batch"), "{err}");
    assert!(
        err.contains("error: expression does not evaluate to a derivation"),
        "{err}"
    );
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn install_and_use_in_batch_mode() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("local://{}", dir.path().join("store").display());
    let state = dir.path().join("state");
    let shell = dir.path().join("shell.sh");
    // The shell runs the program built into the tvix store, and looks for a path of the
    // host's store (the tvix store is laid over it).
    std::fs::write(
        &shell,
        "#!/bin/sh\necho \"SHELL PATH=$PATH\"\npa\n\
         test -z \"$HOST_ENTRY\" || test -e \"/nix/store/$HOST_ENTRY\" && echo host store seen\n",
    )
    .unwrap();
    let host_entry = std::fs::read_dir("/nix/store")
        .ok()
        .and_then(|mut d| d.find_map(|e| e.ok()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut perm = std::fs::metadata(&shell).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&shell, perm).unwrap();
    let (a, b) = (fresh_derivation("pa"), fresh_derivation("pb"));
    let o = tvix()
        .args(["repl", "--store", &store])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("XDG_STATE_HOME", &state)
        .env("SHELL", &shell)
        .env("HOST_ENTRY", &host_entry)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            let input = format!(":i {a}\n:i {b}\n:u {a}\n");
            c.stdin.take().unwrap().write_all(input.as_bytes())?;
            c.wait_with_output()
        })
        .expect("tvix repl");
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(o.status.success(), "{err}");
    assert!(err.contains("installing 'pa-"), "{err}");
    assert!(err.contains("installing 'pb-"), "{err}");
    assert!(
        err.contains("created 1 symlinks in user environment"),
        "{err}"
    );
    assert!(
        err.contains("created 2 symlinks in user environment"),
        "{err}"
    );
    let profiles = state.join("tvix/profiles");
    assert_eq!(
        std::fs::read_link(profiles.join("profile")).unwrap(),
        std::path::Path::new("profile-2-link")
    );
    let generation = std::fs::read_link(profiles.join("profile-2-link")).unwrap();
    let generation = generation.to_string_lossy().into_owned();
    assert!(generation.ends_with("-user-environment"), "{generation}");
    // The generation is in the tvix store, with both packages' programs.
    let listed = tvix()
        .args([
            "store",
            "ls",
            "--store",
            &store,
            &format!("{generation}/bin"),
        ])
        .output()
        .expect("tvix store ls");
    let listed = stdout(&listed) + &stderr(&listed);
    assert!(listed.contains("pa") && listed.contains("pb"), "{listed}");
    // :u runs $SHELL with the outputs' bin directories first on PATH.
    let line = out
        .lines()
        .find(|l| l.starts_with("SHELL PATH=/nix/store/"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("-pa-") && line.contains("/bin:"), "{line}");
    // As root the tvix store is mounted over /nix/store for the shell: the program built
    // into it runs, the host's paths are still there, and no note says otherwise.
    assert!(out.lines().any(|l| l == "ran pa"), "{out}\n{err}");
    assert!(out.lines().any(|l| l == "host store seen"), "{out}\n{err}");
    assert!(!err.contains("could not be mounted"), "{err}");
}
