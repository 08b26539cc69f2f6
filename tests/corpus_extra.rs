//! What the corpus runner (`../shared/tools/lang-tests`) does not check:
//!
//! - the stderr of the eval-okay cases that come with an `.err.exp` (warnings, traces,
//!   lints): ours must be that text exactly (the runner only compares stdout);
//! - the cases about symlinks: the shared copy of the corpus lost its symlinks (each is a
//!   plain file holding the link's target), so there they fail for every implementation;
//!   here they run on a copy with the symlinks put back.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{shared_dir, tvix};

/// The corpus root (holding `lang/`).
fn corpus_root() -> PathBuf {
    shared_dir()
        .join("lang-tests")
        .canonicalize()
        .expect("the corpus (../shared/lang-tests)")
}

/// Runs case `name` as the corpus runner does: from `root`, with its environment.
fn run_case(root: &Path, name: &str, flags: &[String]) -> Output {
    tvix()
        .current_dir(root)
        .env("NIX_PATH", "lang/dir3:lang/dir4")
        .env("HOME", "/fake-home")
        .env("TEST_VAR", "foo")
        .env("NIX_STORE_DIR", "/nix/store")
        .env("NIX_REMOTE", "dummy://")
        .env("NO_COLOR", "1")
        .arg("eval")
        .args(flags)
        .arg("--strict")
        .arg(format!("lang/{name}.nix"))
        .output()
        .expect("run tvix")
}

/// The flags of a case (`NAME.flags`, without comments and `--eval`), as the corpus
/// runner passes them.
fn flags(lang: &std::path::Path, name: &str) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(lang.join(format!("{name}.flags"))) else {
        return Vec::new();
    };
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|f| f != "--eval")
        .collect()
}

#[test]
fn eval_okay_stderr_matches_err_exp() {
    let root = corpus_root();
    let lang = root.join("lang");
    let mut cases: Vec<String> = std::fs::read_dir(&lang)
        .expect("corpus")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".err.exp").map(str::to_string))
        .filter(|n| n.starts_with("eval-okay-"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 13, "only {} cases found", cases.len());
    let mut failures = Vec::new();
    for name in &cases {
        let out = run_case(&root, name, &flags(&lang, name));
        let got = String::from_utf8_lossy(&out.stderr).replace(&*root.to_string_lossy(), "/pwd");
        let want = std::fs::read_to_string(lang.join(format!("{name}.err.exp"))).expect("err.exp");
        if !out.status.success() || got != want {
            failures.push(format!(
                "{name} (exit {:?}):\n--- expected\n{want}--- got\n{got}",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A copy of the corpus with its symlinks put back, made by `scripts/faithful-corpus.sh`
/// (the one list of the corpus's symlinks; `.ci/run` runs the whole corpus on such a copy).
fn faithful_corpus(corpus: &Path, dest: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/faithful-corpus.sh");
    let status = std::process::Command::new("bash")
        .arg(&script)
        .arg(corpus)
        .arg(dest)
        .status()
        .expect("run scripts/faithful-corpus.sh");
    assert!(
        status.success(),
        "scripts/faithful-corpus.sh failed: {status}"
    );
}

#[test]
fn symlink_cases_pass_with_the_symlinks_restored() {
    let corpus = corpus_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().canonicalize().expect("tempdir");
    faithful_corpus(&corpus, &root);
    let mut failures = Vec::new();
    for name in [
        "eval-okay-pathexists",
        "eval-okay-readDir",
        "eval-okay-readDir-symlinked-directory",
        "eval-okay-readFileType",
        "eval-okay-symlink-resolution",
    ] {
        let out = run_case(&root, name, &[]);
        let got = String::from_utf8_lossy(&out.stdout).replace(&*root.to_string_lossy(), "/pwd");
        let want = std::fs::read_to_string(root.join(format!("lang/{name}.exp"))).expect("exp");
        if !out.status.success() || got != want {
            failures.push(format!(
                "{name} (exit {:?}): expected {want:?}, got {got:?}; stderr:\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `--parse` prints what current Nix prints for each parse-okay case with an `.exp` (the
/// runner only checks that these cases parse).
#[test]
fn parse_okay_cases_print_as_exp() {
    let root = corpus_root();
    let lang = root.join("lang");
    let mut cases: Vec<String> = std::fs::read_dir(&lang)
        .expect("corpus")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".exp").map(str::to_string))
        .filter(|n| n.starts_with("parse-okay-"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 13, "only {} cases found", cases.len());
    let mut failures = Vec::new();
    for name in &cases {
        let out = tvix()
            .current_dir(&root)
            .env("NO_COLOR", "1")
            .args(["eval", "--parse"])
            .arg(format!("lang/{name}.nix"))
            .output()
            .expect("run tvix");
        let got = String::from_utf8_lossy(&out.stdout);
        let want = std::fs::read_to_string(lang.join(format!("{name}.exp"))).expect("exp");
        if !out.status.success() || got.trim_end() != want.trim_end() {
            failures.push(format!(
                "{name} (exit {:?}):\n--- expected\n{want}\n--- got\n{got}{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
