//! The differential build suite: every derivation in `tests/builds/cases/` is built by
//! `tvix build` (OCI backend, a fresh `local://` store per run; once with inputs
//! bind-mounted from the store's FUSE mount, once with inputs copied) and by the reference
//! `nix-build` (sandboxed, as root); the output paths, their NAR bytes, and the references
//! and deriver each registers must be the same. Every case in `tests/builds/fail/` must fail in both with the same message and
//! exit status, and tvix must register none of its outputs.
//!
//! Each run passes a fresh nonce (`--argstr nonce ...`) that goes into every derivation's
//! name, so no output exists beforehand in either store.
//!
//! Needs `nix-build`, `nix-store`, `runc`, root, and the static busybox at
//! `/var/lib/tvix-tests/busybox` (`setup.sh`); a missing prerequisite fails the tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;
use common::{
    check_prerequisites, nix_build, nix_dump, nonce, run_limited, text, tvix_build, tvix_export,
};

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/builds")
}

/// The references and deriver tvix registered for `path` (base names, sorted).
fn tvix_references(store: &Path, path: &str) -> (Vec<String>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(["store", "info", path, "--store"])
        .arg(format!("local://{}", store.display()))
        .output()
        .expect("tvix store info");
    let out = text(&o.stdout);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let mut refs: Vec<String> = field("References:")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    refs.sort();
    (refs, field("Deriver:"))
}

/// The references and deriver the reference Nix registered for `path`.
fn nix_references(path: &str) -> (Vec<String>, String) {
    let q = |flag: &str| {
        let o = Command::new("nix-store")
            .args(["-q", flag, path])
            .output()
            .expect("nix-store -q");
        text(&o.stdout)
            .lines()
            .map(|l| l.trim_start_matches("/nix/store/").to_string())
            .collect::<Vec<String>>()
    };
    let mut refs = q("--references");
    refs.sort();
    (refs, q("--deriver").concat())
}

fn cases(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(suite_dir().join(dir))
        .expect("case directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "nix"))
        .collect();
    v.sort();
    v
}

/// The build service with inputs copied into the sandbox instead of bind-mounted from the
/// store's FUSE mount (the default).
const COPIED_INPUTS: &str = "oci://?inputs=copy";

/// Builds one successful case with tvix (inputs through the store's mount, and in a
/// second store with inputs copied) and with nix-build; `Err` describes the first
/// difference.
fn compare_success(file: &Path) -> Result<usize, String> {
    let n = nonce();
    let store = tempfile::tempdir().map_err(|e| e.to_string())?;
    let copied = tempfile::tempdir().map_err(|e| e.to_string())?;
    let t = tvix_build(file, &n, store.path(), &[]);
    let c = tvix_build(file, &n, copied.path(), &["--build-service", COPIED_INPUTS]);
    let r = nix_build(file, &n, &[]);
    if !r.status.success() {
        return Err(format!("nix-build failed:\n{}", text(&r.stderr)));
    }
    if !t.status.success() {
        return Err(format!(
            "tvix build failed ({:?}):\n{}",
            t.status.code(),
            text(&t.stderr)
        ));
    }
    if !c.status.success() {
        return Err(format!(
            "tvix build with copied inputs failed ({:?}):\n{}",
            c.status.code(),
            text(&c.stderr)
        ));
    }
    let (tp, rp) = (text(&t.stdout), text(&r.stdout));
    if tp != rp {
        return Err(format!("output paths differ:\ntvix:\n{tp}nix:\n{rp}"));
    }
    if text(&c.stdout) != tp {
        return Err(format!(
            "output paths differ with copied inputs:\n{}",
            text(&c.stdout)
        ));
    }
    let mut compared = 0;
    for path in tp.lines() {
        let a = tvix_export(store.path(), path);
        let b = nix_dump(path);
        if tvix_export(copied.path(), path).stdout != a.stdout {
            return Err(format!("NAR of {path} differs with copied inputs"));
        }
        if !a.status.success() || !b.status.success() {
            return Err(format!(
                "cannot export {path}: {}{}",
                text(&a.stderr),
                text(&b.stderr)
            ));
        }
        if a.stdout != b.stdout {
            return Err(format!(
                "NAR of {path} differs:\ntvix:\n{}\nnix:\n{}",
                text(&a.stdout).escape_debug(),
                text(&b.stdout).escape_debug()
            ));
        }
        let (tr, nr) = (tvix_references(store.path(), path), nix_references(path));
        if tr != nr {
            return Err(format!(
                "references of {path} differ:\ntvix: {tr:?}\nnix:  {nr:?}"
            ));
        }
        compared += 1;
    }
    Ok(compared)
}

/// Runs `f` over `items` on two threads (the machines have two cores) and returns the
/// results in order.
fn on_two_threads<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let half = items.len().div_ceil(2);
    std::thread::scope(|s| {
        let (a, b) = items.split_at(half);
        let f = &f;
        let h = s.spawn(move || b.iter().map(f).collect::<Vec<R>>());
        let mut out: Vec<R> = a.iter().map(f).collect();
        out.extend(h.join().expect("worker thread"));
        out
    })
}

#[test]
fn successful_builds_match_nix_build() {
    check_prerequisites();
    let files = cases("cases");
    assert!(files.len() >= 30, "at least 30 cases");
    let results = on_two_threads(&files, |f| compare_success(f));
    let mut failures = Vec::new();
    let mut outputs = 0;
    for (f, r) in files.iter().zip(results) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        match r {
            Ok(n) => outputs += n,
            Err(e) => failures.push(format!("--- {name}: {e}")),
        }
    }
    eprintln!(
        "{} of {} cases identical ({outputs} outputs compared)",
        files.len() - failures.len(),
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A failure case: its file, extra flags for both tools, the expected exit status.
const FAILURES: &[(&str, &[&str], i32)] = &[
    ("hash-mismatch", &[], 102),
    ("fod-sandbox", &[], 102),
    ("forbidden-ref", &[], 1),
    ("allowed-ref", &[], 1),
    ("requisites", &[], 1),
    ("output-checks", &[], 1),
    ("builder-fails", &[], 100),
    ("builder-fails", &["-Q"], 100),
    ("signal", &[], 1),
    ("fod-builder-fails", &[], 1),
    ("missing-output", &[], 1),
    ("missing-second-output", &[], 1),
    ("timeout", &["--timeout", "2"], 101),
    ("silent", &["--max-silent-time", "2"], 101),
    ("feature", &[], 1),
    ("system", &[], 1),
    ("output-cycle", &[], 1),
    ("writable-output", &[], 1),
    ("no-builder", &[], 100),
    ("fod-reference", &[], 102),
    ("fod-self-reference", &[], 102),
    ("dependency-fails", &[], 100),
    ("dependency-fails", &["--keep-going"], 100),
];

/// The error part of stderr (from the last line starting with `error:`), with what legitimately
/// differs removed: Nix names a missing output by its path in the chroot.
fn error_text(stderr: &[u8]) -> String {
    let s = text(stderr);
    // Nix may warn with `error:` lines first (a busy database); the failure is the last.
    let Some(start) = s
        .match_indices("error:")
        .map(|(i, _)| i)
        .filter(|i| *i == 0 || s.as_bytes()[i - 1] == b'\n')
        .last()
    else {
        return String::new();
    };
    let mut e = s[start..].trim_end().to_string();
    // With -Q the message says how to see the whole log: with `nix log` or `tvix log`.
    e = e.replace("run 'nix log ", "run 'tvix log ");
    while let Some(i) = e.find(".drv.chroot/") {
        let begin = e[..i].rfind("/nix/store/").unwrap_or(i);
        e.replace_range(begin..i + ".drv.chroot".len(), "");
    }
    e
}

/// The output paths of the derivation `file` evaluates to.
fn output_paths(file: &Path, nonce: &str) -> Vec<String> {
    let expr = format!(
        "let d = import {} {{ nonce = \"{nonce}\"; }}; in map (o: d.${{o}}.outPath) (d.outputs or [ \"out\" ])",
        file.display()
    );
    let o = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", &expr])
        .output()
        .expect("nix-instantiate");
    let v: Vec<String> = serde_json::from_slice(&o.stdout).expect("output paths");
    v
}

fn compare_failure(name: &str, extra: &[&str], status: i32) -> Result<(), String> {
    let file = suite_dir().join("fail").join(format!("{name}.nix"));
    let n = nonce();
    let store = tempfile::tempdir().map_err(|e| e.to_string())?;
    let t = tvix_build(&file, &n, store.path(), extra);
    let r = nix_build(&file, &n, extra);
    let (te, re) = (error_text(&t.stderr), error_text(&r.stderr));
    if r.status.code() != Some(status) {
        return Err(format!(
            "nix-build exited with {:?}, not {status}:\n{}",
            r.status.code(),
            text(&r.stderr)
        ));
    }
    if t.status.code() != Some(status) {
        return Err(format!(
            "tvix build exited with {:?}, not {status}:\n{}",
            t.status.code(),
            text(&t.stderr)
        ));
    }
    if te != re {
        return Err(format!("messages differ:\ntvix: {te}\nnix:  {re}"));
    }
    for p in output_paths(&file, &n) {
        let info = Command::new(env!("CARGO_BIN_EXE_tvix"))
            .args(["store", "info", &p, "--store"])
            .arg(format!("local://{}", store.path().display()))
            .output()
            .expect("tvix store info");
        if info.status.success() && !info.stdout.is_empty() {
            return Err(format!("tvix registered {p}:\n{}", text(&info.stdout)));
        }
    }
    Ok(())
}

#[test]
fn failing_builds_fail_as_nix_build_does() {
    check_prerequisites();
    let results = on_two_threads(FAILURES, |(name, extra, status)| {
        compare_failure(name, extra, *status)
    });
    let mut failures = Vec::new();
    for ((name, _, _), r) in FAILURES.iter().zip(results) {
        if let Err(e) = r {
            failures.push(format!("--- {name}: {e}"));
        }
    }
    eprintln!(
        "{} of {} failure cases identical",
        FAILURES.len() - failures.len(),
        FAILURES.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every `error:` line, in order (the builder's output left out).
fn error_lines(stderr: &[u8]) -> Vec<String> {
    text(stderr)
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn dependency_failures_are_reported_as_nix_reports_them() {
    check_prerequisites();
    let file = suite_dir().join("fail/dependency-fails.nix");
    for extra in [&[][..], &["--keep-going"][..]] {
        let n = nonce();
        let store = tempfile::tempdir().expect("tempdir");
        // tvix first: nothing nix-build leaves behind can help it.
        let t = tvix_build(&file, &n, store.path(), extra);
        let r = nix_build(&file, &n, extra);
        assert_eq!(t.status.code(), r.status.code(), "{}", text(&t.stderr));
        let tvix = error_lines(&t.stderr);
        assert_eq!(tvix, error_lines(&r.stderr), "{extra:?}");
        assert_eq!(tvix.len(), 4, "{tvix:?}");
    }
}

#[test]
fn keep_failed_and_logs() {
    check_prerequisites();
    let file = suite_dir().join("fail/builder-fails.nix");
    let n = nonce();
    let store = tempfile::tempdir().expect("tempdir");
    let t = tvix_build(&file, &n, store.path(), &["--keep-failed"]);
    assert_eq!(t.status.code(), Some(100), "{}", text(&t.stderr));
    let err = text(&t.stderr);
    let note = err
        .lines()
        .find_map(|l| l.strip_prefix("note: keeping build directory '"))
        .unwrap_or_else(|| panic!("no keep-failed note in:\n{err}"));
    let dir = note.trim_end_matches('\'');
    assert!(Path::new(dir).is_dir(), "{dir} was not kept");
    let _ = std::fs::remove_dir_all(dir);
    // The log of the failed build is kept and `tvix log` prints it.
    let drv = err
        .lines()
        .find_map(|l| l.strip_prefix("building '"))
        .and_then(|l| l.strip_suffix("'..."))
        .expect("building line")
        .to_string();
    let log = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(["log", &drv, "--store"])
        .arg(format!("local://{}", store.path().display()))
        .output()
        .expect("tvix log");
    assert!(log.status.success(), "{}", text(&log.stderr));
    let lines: Vec<String> = (1..=12).map(|i| format!("line {i}")).collect();
    assert_eq!(text(&log.stdout), format!("{}\n", lines.join("\n")));
}

#[test]
fn check_mode_rebuilds_and_compares() {
    check_prerequisites();
    let file = suite_dir().join("cases/tree.nix");
    let n = nonce();
    let store = tempfile::tempdir().expect("tempdir");
    // Checking needs valid outputs.
    let t = tvix_build(&file, &n, store.path(), &["--check"]);
    assert_eq!(t.status.code(), Some(1), "{}", text(&t.stderr));
    assert!(
        error_text(&t.stderr).contains("are not valid, so checking is not possible"),
        "{}",
        text(&t.stderr)
    );
    let first = tvix_build(&file, &n, store.path(), &[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    // A deterministic build checks out, and prints the same paths.
    let again = tvix_build(&file, &n, store.path(), &["--check"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(again.stdout, first.stdout);
    assert!(
        text(&again.stderr).contains("checking outputs of '"),
        "it was rebuilt, worded as Nix words it"
    );
}

#[test]
fn result_links_as_nix_build_makes_them() {
    check_prerequisites();
    let file = suite_dir().join("cases/multi-output.nix");
    let n = nonce();
    let store = tempfile::tempdir().expect("tempdir");
    let cwd = tempfile::tempdir().expect("tempdir");
    let mut c = Command::new(env!("CARGO_BIN_EXE_tvix"));
    c.arg("build")
        .arg(&file)
        .args(["--argstr", "nonce", &n, "-o", "res", "--store"])
        .arg(format!("local://{}", store.path().display()))
        .current_dir(cwd.path());
    let t = run_limited(c, Duration::from_secs(120));
    assert!(t.status.success(), "{}", text(&t.stderr));
    let paths: Vec<String> = text(&t.stdout).lines().map(str::to_string).collect();
    assert_eq!(paths.len(), 3);
    for (link, path) in ["res", "res-2-dev", "res-3-lib"].iter().zip(&paths) {
        let target = std::fs::read_link(cwd.path().join(link)).expect(link);
        assert_eq!(target.to_string_lossy(), path.as_str(), "{link}");
    }

    // The links are GC roots of the store: a collection keeps the outputs (and their
    // closures); once the links are gone, it deletes them.
    let url = format!("local://{}", store.path().display());
    let store_cmd = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tvix"))
            .arg("store")
            .args(args)
            .args(["--store", &url])
            .output()
            .expect("tvix store");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    store_cmd(&["gc"]);
    store_cmd(&["verify"]);
    let valid = store_cmd(&["info"]);
    for p in &paths {
        assert!(
            valid.contains(&format!("StorePath: {p}\n")),
            "{p} was collected"
        );
    }
    for link in ["res", "res-2-dev", "res-3-lib"] {
        std::fs::remove_file(cwd.path().join(link)).expect(link);
    }
    let report = store_cmd(&["gc"]);
    assert!(!report.starts_with("0 store paths"), "{report}");
    let valid = store_cmd(&["info"]);
    for p in &paths {
        assert!(!valid.contains(p.as_str()), "{p} was kept");
    }
    store_cmd(&["verify"]);
}

#[test]
fn invoked_as_nix_build() {
    check_prerequisites();
    let bin = tempfile::tempdir().expect("tempdir");
    let link = bin.path().join("nix-build");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tvix"), &link).expect("symlink");
    let file = suite_dir().join("cases/several.nix");
    let n = nonce();
    let store = tempfile::tempdir().expect("tempdir");
    let mut c = Command::new(&link);
    c.arg(&file)
        .args([
            "-A",
            "b",
            "--argstr",
            "nonce",
            &n,
            "--no-out-link",
            "-j1",
            "--store",
        ])
        .arg(format!("local://{}", store.path().display()));
    let t = run_limited(c, Duration::from_secs(120));
    assert!(t.status.success(), "{}", text(&t.stderr));
    let path = text(&t.stdout);
    assert!(
        path.trim_end().ends_with(&format!("-several-b-{n}")),
        "{path}"
    );
    // The log of the derivation that built it, found through the output.
    let log = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(["log", path.trim_end(), "--store"])
        .arg(format!("local://{}", store.path().display()))
        .output()
        .expect("tvix log");
    assert!(log.status.success(), "{}", text(&log.stderr));
    assert_eq!(text(&log.stdout), "");
}

#[test]
fn nix_store_realise_builds_derivations() {
    check_prerequisites();
    let bin = tempfile::tempdir().expect("tempdir");
    let shim = bin.path().join("nix-store");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tvix"), &shim).expect("symlink");
    let file = suite_dir().join("cases/multi-output.nix");
    let n = nonce();
    let store = tempfile::tempdir().expect("tempdir");
    let url = format!("local://{}", store.path().display());
    let inst = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .arg("instantiate")
        .arg(&file)
        .args(["--argstr", "nonce", &n, "--store", &url])
        .output()
        .expect("tvix instantiate");
    assert!(inst.status.success(), "{}", text(&inst.stderr));
    let drv = text(&inst.stdout)
        .lines()
        .next()
        .expect("a derivation")
        .to_string();
    let realise = |args: &[&str]| {
        let mut c = Command::new(&shim);
        c.args(["--store", &url, "--realise"]).args(args);
        run_limited(c, Duration::from_secs(120))
    };
    let first = realise(&[&drv]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stderr).contains("building '"),
        "nothing was built"
    );
    // Every output, by output name (dev, lib, out), as Nix prints them.
    let outputs: Vec<String> = text(&first.stdout).lines().map(str::to_string).collect();
    assert_eq!(outputs.len(), 3, "{outputs:?}");
    assert!(outputs[0].ends_with("-dev") && outputs[1].ends_with("-lib"));
    let mut sorted = outputs.clone();
    sorted.sort();
    // The same outputs `tvix build` gives, now without building.
    let built = tvix_build(&file, &n, store.path(), &[]);
    assert!(built.status.success(), "{}", text(&built.stderr));
    let mut from_build: Vec<String> = text(&built.stdout).lines().map(str::to_string).collect();
    from_build.sort();
    assert_eq!(sorted, from_build);
    // Valid now: printed without a build; one output by name.
    let again = realise(&[&format!("{drv}!lib"), &outputs[0]]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(!text(&again.stderr).contains("building '"));
    let lib = outputs.iter().find(|o| o.ends_with("-lib")).expect("lib");
    assert_eq!(text(&again.stdout), format!("{lib}\n{}\n", outputs[0]));
}
