//! Differential tests of derivations: every `tests/derivations/cases/*.nix` is instantiated
//! by the reference `nix-instantiate` (which writes the `.drv` files into the real local
//! store, /nix/store) and evaluated in-process by tvix-eval. The `.drv` path, every output
//! path and the `.drv` bytes (of the derivation and of every input derivation) must be equal.
//!
//! The reference must be installed: without `nix-instantiate` the test fails (it does not
//! silently pass).
//!
//! Skipped, because the reference Nix 2.8 lacks what the case needs (see `SKIPPED`):
//! content-addressed derivations (`__contentAddressed`, experimental in 2.8 and changed since),
//! `outputHashMode = "text"`/`"git"` and dynamic derivations (not in 2.8), floats in
//! `__structuredAttrs` that 2.8 prints with 6 significant digits.

use std::path::{Path, PathBuf};
use std::process::Command;

use tvix_eval::io::StdIO;
use tvix_eval::symbol::Symbol;
use tvix_eval::{EvalConfig, Evaluator, Value};
use tvix_store::Derivation;

/// Cases of the newer corpus that Nix 2.8 cannot instantiate as current Nix does, with why.
/// They are not in `cases/` (nothing to compare against); listed so the gap is explicit.
const SKIPPED: &[(&str, &str)] = &[
    (
        "__contentAddressed = true",
        "floating content-addressed derivations need the experimental `ca-derivations` \
         feature in Nix 2.8 and their .drv encoding changed since",
    ),
    (
        "outputHashMode = \"text\" / \"git\"",
        "not supported by Nix 2.8",
    ),
    (
        "floats with more than 6 significant digits, or integral, under __structuredAttrs",
        "Nix 2.8 writes them into `__json` with 6 significant digits (1.23457e+08, 3); \
         current Nix, and tvix, write 123456789.0 and 3.0",
    ),
    (
        "dynamic derivations (`dynamicOutputs`, `builtins.outputOf`)",
        "not in Nix 2.8",
    ),
];

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/derivations/cases")
}

fn case_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/derivations/cases exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "nix"))
        .collect();
    files.sort();
    files
}

/// `nix-instantiate FILE`: the `.drv` path (the `!output` suffix removed).
fn reference_drv_path(file: &Path) -> Result<String, String> {
    let out = Command::new("nix-instantiate")
        .arg(file)
        .env_remove("NIX_REMOTE")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the reference `nix-instantiate` (Nix 2.8) is required for the derivation \
                 differential tests but could not be run: {e}"
            )
        });
    if !out.status.success() {
        return Err(format!(
            "nix-instantiate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .next()
        .ok_or_else(|| "nix-instantiate printed nothing".to_string())?;
    Ok(line.split('!').next().unwrap_or(line).to_string())
}

fn get_string(ev: &mut Evaluator, attrs: &Value, name: &str) -> Result<String, String> {
    let Value::Attrs(a) = attrs else {
        return Err(format!("not an attribute set when selecting '{name}'"));
    };
    let v = a
        .get(Symbol::intern(name))
        .cloned()
        .ok_or_else(|| format!("attribute '{name}' missing"))?;
    let v = ev.force(v).map_err(|e| e.kind.to_string())?;
    match &v {
        Value::Attrs(_) => get_string(ev, &v, "outPath"),
        _ => ev
            .force_string(v, None)
            .map(|s| s.to_str_lossy().into_owned())
            .map_err(|e| e.kind.to_string()),
    }
}

/// Compares one case; `Err` describes every difference.
fn check_case(file: &Path) -> Result<usize, String> {
    let drv_path = reference_drv_path(file)?;
    let ref_bytes =
        std::fs::read(&drv_path).map_err(|e| format!("reading reference {drv_path}: {e}"))?;
    let ref_drv = Derivation::from_aterm_bytes(&ref_bytes)
        .map_err(|e| format!("parsing reference {drv_path}: {e}"))?;

    let config = EvalConfig {
        keep_derivations: true,
        ..EvalConfig::default()
    };
    let mut ev = Evaluator::new(Box::new(StdIO::new()), config);
    let v = ev
        .import(file, None)
        .and_then(|v| ev.force(v))
        .map_err(|e| format!("tvix failed: {}", e.kind))?;
    let mut problems = Vec::new();
    let got_drv_path = get_string(&mut ev, &v, "drvPath")?;
    if got_drv_path != drv_path {
        problems.push(format!("drvPath: tvix {got_drv_path}, nix {drv_path}"));
    }
    for (name, out) in &ref_drv.outputs {
        match get_string(&mut ev, &v, name) {
            Ok(p) if p == out.path => {}
            Ok(p) => problems.push(format!("output {name}: tvix {p}, nix {}", out.path)),
            Err(e) => problems.push(format!("output {name}: {e}")),
        }
    }
    // The derivation and, transitively, every input derivation must serialise identically.
    let mut stack = vec![(drv_path.clone(), got_drv_path.clone())];
    let mut seen = std::collections::BTreeSet::new();
    let mut compared = 0;
    while let Some((ref_path, tvix_path)) = stack.pop() {
        if !seen.insert(ref_path.clone()) {
            continue;
        }
        let bytes = std::fs::read(&ref_path).map_err(|e| format!("reading {ref_path}: {e}"))?;
        let Some(drv) = ev.derivations.get(&tvix_path).and_then(|k| k.drv.clone()) else {
            problems.push(format!("tvix did not create {tvix_path}"));
            continue;
        };
        let got = drv.to_aterm_bytes();
        compared += 1;
        if got != bytes {
            problems.push(format!(
                "{ref_path} differs:\n  nix:  {}\n  tvix: {}",
                String::from_utf8_lossy(&bytes),
                String::from_utf8_lossy(&got)
            ));
            continue;
        }
        if let Ok(d) = Derivation::from_aterm_bytes(&bytes) {
            for input in d.input_derivations.keys() {
                stack.push((input.clone(), input.clone()));
            }
        }
    }
    if problems.is_empty() {
        Ok(compared)
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn derivations_match_nix() {
    let files = case_files();
    assert!(
        files.len() >= 60,
        "expected at least 60 derivation cases, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    let mut drvs = 0;
    for f in &files {
        match check_case(f) {
            Ok(n) => drvs += n,
            Err(e) => failures.push(format!(
                "{}:\n{e}",
                f.file_name().unwrap_or_default().to_string_lossy()
            )),
        }
    }
    for (what, why) in SKIPPED {
        eprintln!("skipped: {what}: {why}");
    }
    eprintln!(
        "{} cases, {} .drv files compared, {} failed",
        files.len(),
        drvs,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} derivation cases differ from Nix:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

/// `tvix ARGS` with the store at `store`; stdout, or the failure.
fn tvix_with_store(store: &str, args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(args)
        .env("TVIX_STORE", store)
        .env_remove("NIX_REMOTE")
        .output()
        .map_err(|e| format!("running tvix: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "tvix {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `nix-store --dump PATH`.
fn reference_nar(path: &str) -> Result<Vec<u8>, String> {
    let out = Command::new("nix-store")
        .args(["--dump", path])
        .env_remove("NIX_REMOTE")
        .output()
        .map_err(|e| format!("running nix-store: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "nix-store --dump {path} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `tvix instantiate` writes each case's `.drv` files and sources into the tvix store; the
/// NAR of every written path (the derivation, its input derivations and sources,
/// transitively) is the one `nix-store --dump` gives for the path nix-instantiate wrote.
#[test]
fn written_derivations_and_sources_match_nix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("local://{}", dir.path().display());
    let mut failures = Vec::new();
    let mut compared = 0;
    for file in case_files() {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let result = (|| -> Result<usize, String> {
            let drv_path = reference_drv_path(&file)?;
            let printed = tvix_with_store(&store, &["instantiate", &file.to_string_lossy()])?;
            let printed = String::from_utf8_lossy(&printed);
            let first = printed.lines().next().unwrap_or_default();
            if first.split('!').next() != Some(drv_path.as_str()) {
                return Err(format!("tvix printed {first}, nix {drv_path}"));
            }
            let mut todo = vec![drv_path];
            let mut seen = std::collections::BTreeSet::new();
            while let Some(p) = todo.pop() {
                if !seen.insert(p.clone()) {
                    continue;
                }
                let ours = tvix_with_store(&store, &["store", "export", &p])?;
                if ours != reference_nar(&p)? {
                    return Err(format!("the NAR of {p} differs"));
                }
                if p.ends_with(".drv") {
                    let bytes = std::fs::read(&p).map_err(|e| format!("reading {p}: {e}"))?;
                    let d = Derivation::from_aterm_bytes(&bytes).map_err(|e| e.to_string())?;
                    todo.extend(d.input_derivations.keys().cloned());
                    todo.extend(d.input_sources.iter().cloned());
                }
            }
            Ok(seen.len())
        })();
        match result {
            Ok(n) => compared += n,
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    eprintln!("{compared} store paths written by tvix compared with nix-store --dump");
    assert!(compared > 100, "only {compared} store paths were compared");
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
