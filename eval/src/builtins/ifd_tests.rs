//! Import-from-derivation on the evaluator's side: which reads ask the IO to realise which
//! outputs, once each, and `allow-import-from-derivation = false`. The IO here stands in
//! for a store: it records what it is asked to build and serves reads below the store
//! directory only after a build was asked for.

use std::cell::RefCell;
use std::io;
use std::path::Path;
use std::rc::Rc;

use crate::eval::{EvalConfig, Evaluator};
use crate::io::{
    AddedPath, DrvOutput, EvalIO, EvalIOError, FileIngestionMethod, FileType, PathFilter, StdIO,
};
use crate::value::print::print_value;

#[derive(Default)]
struct Recorded {
    realised: Vec<String>,
}

struct RecordingIO {
    fs: StdIO,
    log: Rc<RefCell<Recorded>>,
}

impl RecordingIO {
    /// Paths under the store directory exist only once something was built.
    fn built(&self, path: &Path) -> io::Result<()> {
        if path.starts_with(self.fs.store_dir()) && self.log.borrow().realised.is_empty() {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        Ok(())
    }
}

impl EvalIO for RecordingIO {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.built(path)?;
        Ok(
            if path.ends_with("default.nix") || path.extension().is_none() {
                b"{ fromBuild = true; }".to_vec()
            } else {
                b"built".to_vec()
            },
        )
    }
    fn path_exists(&self, path: &Path) -> io::Result<bool> {
        Ok(self.built(path).is_ok())
    }
    fn file_type(&self, path: &Path) -> io::Result<FileType> {
        self.built(path)?;
        Ok(FileType::Directory)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<(Vec<u8>, FileType)>> {
        self.built(path)?;
        Ok(vec![(b"default.nix".to_vec(), FileType::Regular)])
    }
    fn canonicalize(&self, path: &Path) -> io::Result<std::path::PathBuf> {
        Ok(path.to_path_buf())
    }
    fn add_path(
        &self,
        source: &Path,
        name: &str,
        method: FileIngestionMethod,
        filter: Option<PathFilter<'_>>,
    ) -> Result<AddedPath, EvalIOError> {
        self.fs.add_path(source, name, method, filter)
    }
    fn add_text(
        &self,
        name: &str,
        contents: &[u8],
        refs: &[String],
    ) -> Result<String, EvalIOError> {
        self.fs.add_text(name, contents, refs)
    }
    fn writes_to_store(&self) -> bool {
        false
    }
    fn store_dir(&self) -> String {
        self.fs.store_dir()
    }
    fn realise(&self, outputs: &[DrvOutput]) -> Result<(), EvalIOError> {
        let dir = self.store_dir();
        self.log
            .borrow_mut()
            .realised
            .extend(outputs.iter().map(|o| o.display(&dir)));
        Ok(())
    }
}

const DRV: &str = r#"let d = derivation { name = "gen"; system = "x86_64-linux"; builder = "/bin/sh"; outputs = [ "out" "dev" ]; }; in "#;

/// Evaluates `DRV` followed by `body`; the printed value (or error) and the outputs the
/// IO was asked to realise, in order.
fn run(body: &str, config: EvalConfig) -> (Result<String, String>, Vec<String>) {
    let log = Rc::new(RefCell::new(Recorded::default()));
    let io = RecordingIO {
        fs: StdIO::new(),
        log: log.clone(),
    };
    let mut ev = Evaluator::new(Box::new(io), config);
    ev.diagnostics = Box::new(|_| {});
    let src = format!("{DRV}{body}");
    let result = ev
        .eval_source("«test»".into(), src, std::env::temp_dir())
        .and_then(|v| ev.force_deep(v))
        .map(|v| print_value(&v))
        .map_err(|e| e.kind.to_string());
    let names = log
        .borrow()
        .realised
        .iter()
        .map(|p| p.rsplit('-').next().unwrap_or_default().to_string())
        .collect();
    (result, names)
}

#[test]
fn every_reading_builtin_realises_the_context() {
    let cases = [
        (r#"builtins.readFile "${d}/file.txt""#, r#""built""#),
        (r#"builtins.pathExists "${d}/x""#, "true"),
        (
            r#"builtins.readDir d.out"#,
            r#"{ "default.nix" = "regular"; }"#,
        ),
        (r#"builtins.readFileType "${d.dev}/x""#, r#""directory""#),
        (r#"(import d).fromBuild"#, "true"),
        (
            r#"(builtins.scopedImport { } "${d}/default.nix").fromBuild"#,
            "true",
        ),
        // Compared with what `hashString` gives for the file's contents.
        (r#"builtins.hashFile "sha256" "${d}/file.txt""#, ""),
    ];
    for (body, expected) in cases {
        let (got, realised) = run(body, EvalConfig::default());
        if body.contains("hashFile") {
            // The digest of "built": checked against the hash builtin itself.
            let (direct, _) = run(
                r#"builtins.hashString "sha256" "built""#,
                EvalConfig::default(),
            );
            assert_eq!(got, direct, "{body}");
        } else {
            assert_eq!(got.as_deref(), Ok(expected), "{body}");
        }
        let wanted = if body.contains("d.dev") {
            "gen.drv^dev"
        } else {
            "gen.drv^out"
        };
        assert_eq!(realised, vec![wanted.to_string()], "{body}");
    }
}

#[test]
fn each_output_is_realised_once_and_whole_derivations_never() {
    let (got, realised) = run(
        r#"[ (builtins.readFile "${d}/a.txt") (builtins.readFile "${d}/b.txt") (builtins.pathExists "${d.dev}/c") ]"#,
        EvalConfig::default(),
    );
    assert_eq!(got.as_deref(), Ok(r#"[ "built" "built" true ]"#));
    assert_eq!(realised, vec!["gen.drv^out", "gen.drv^dev"]);
    // `drvPath` names the derivation file itself: nothing to build. This IO does not write
    // it, so it is not in the store, and Nix says so before looking (in read-only mode too).
    let (got, realised) = run(r#"builtins.pathExists d.drvPath"#, EvalConfig::default());
    let got = got.unwrap_err();
    assert!(
        got.starts_with("path '/nix/store/") && got.ends_with("-gen.drv' is not valid"),
        "{got}"
    );
    assert!(realised.is_empty());
    // A path without context is read as it is.
    let (got, realised) = run(
        r#"builtins.pathExists (builtins.unsafeDiscardStringContext "${d}")"#,
        EvalConfig::default(),
    );
    assert_eq!(got.as_deref(), Ok("false"));
    assert!(realised.is_empty());
}

#[test]
fn disabled_import_from_derivation_refuses_with_nix_message() {
    let config = EvalConfig {
        allow_import_from_derivation: false,
        ..EvalConfig::default()
    };
    let (got, realised) = run(r#"builtins.readFile "${d}/x""#, config);
    let err = got.expect_err("must fail");
    assert!(
        err.starts_with("cannot build '/") && err.ends_with(
            "-gen.drv^out' during evaluation because the option 'allow-import-from-derivation' is disabled"
        ),
        "{err}"
    );
    assert!(realised.is_empty());
}

#[test]
fn compute_only_io_refuses_to_build() {
    let mut ev = Evaluator::new(Box::new(StdIO::new()), EvalConfig::default());
    let src = format!(r#"{DRV}builtins.readFile "${{d}}/x""#);
    let err = ev
        .eval_source("«test»".into(), src, std::env::temp_dir())
        .and_then(|v| ev.force_deep(v))
        .expect_err("must fail");
    let msg = err.kind.to_string();
    assert!(
        msg.contains("-gen.drv^out' during evaluation: evaluation has no store to build in"),
        "{msg}"
    );
    assert!(err.span.is_some(), "the error points at the call");
}
