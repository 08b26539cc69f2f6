//! Builtins about files and paths: `import`, the search path, reading files.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::control::primop;
use super::fail;
use crate::error::{AddContext, ErrorKind, EvalError, EvalResult};
use crate::eval::{sym, CoerceMode, Evaluator};
use crate::lower::canonicalize_path;
use crate::source::Span;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("import", 1, import),
    primop!("findFile", 2, find_file),
    primop!("scopedImport", 2, scoped_import),
    primop!("pathExists", 1, path_exists),
    primop!("readDir", 1, read_dir),
    primop!("readFileType", 1, read_file_type),
    primop!("toPath", 1, to_path),
    primop!("readFile", 1, |ev, a, s| {
        let p = real_path(ev, a[0].clone(), s)?;
        match ev.io.read_file(&p) {
            Ok(bytes) => Ok(Value::string(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fail(
                format!("opening file '{}': {}", p.display(), os_error(&e)),
                s,
            ),
            Err(e) => fail(format!("reading from file: {}", os_error(&e)), s),
        }
    }),
    primop!("baseNameOf", 1, |ev, a, s| {
        let v = ev.force(a[0].clone())?;
        let st = ev.coerce_to_string(v, CoerceMode::PathSegment, s)?;
        let bytes = st.as_bytes();
        let trimmed = bytes.strip_suffix(b"/").unwrap_or(bytes);
        let base = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => &trimmed[i + 1..],
            None => trimmed,
        };
        let ctx = st.context().cloned().unwrap_or_default();
        Ok(Value::String(Rc::new(NixString::with_context(
            base.to_vec(),
            ctx,
        ))))
    }),
    primop!("dirOf", 1, |ev, a, s| {
        let v = ev.force(a[0].clone())?;
        let is_path = matches!(v, Value::Path(_));
        let st = ev.coerce_to_string(v, CoerceMode::PathSegment, s)?;
        let bytes = st.as_bytes();
        let dir: &[u8] = match bytes.iter().rposition(|&b| b == b'/') {
            Some(0) => b"/",
            Some(i) => &bytes[..i],
            None => b".",
        };
        if is_path {
            return Ok(Value::Path(Rc::new(canonicalize_path(dir))));
        }
        let ctx = st.context().cloned().unwrap_or_default();
        Ok(Value::String(Rc::new(NixString::with_context(
            dir.to_vec(),
            ctx,
        ))))
    }),
];

/// A path argument as a real filesystem path: a path value, or a string holding an absolute path.
pub(crate) fn real_path(ev: &mut Evaluator, v: Value, s: Option<Span>) -> EvalResult<PathBuf> {
    Ok(path_arg(ev, v, s)?.0)
}

/// Like [`real_path`], also telling whether the text ended in `/` or `/.` (then the path
/// must be a directory, as for the operating system).
fn path_arg(ev: &mut Evaluator, v: Value, s: Option<Span>) -> EvalResult<(PathBuf, bool)> {
    let v = ev.force(v)?;
    let st = ev.coerce_to_string(v, CoerceMode::PathSegment, s)?;
    let bytes = st.as_bytes();
    if !bytes.starts_with(b"/") {
        return fail(
            format!(
                "string '{}' doesn't represent an absolute path",
                st.to_str_lossy()
            ),
            s,
        );
    }
    let must_be_dir = bytes.len() > 1 && (bytes.ends_with(b"/") || bytes.ends_with(b"/."));
    let path = canonicalize_path(bytes);
    if let Some(ctx) = st.context() {
        realise_context(ev, ctx, s)?;
    }
    Ok((path, must_be_dir))
}

/// Import-from-derivation: builds the derivation outputs `ctx` names before a path with
/// that context is read, as Nix realises the context of every path a builtin reads
/// (`import`, `scopedImport`, `readFile`, `readFileType`, `readDir`, `pathExists`,
/// `hashFile`, `filterSource`, `builtins.path`). Plain paths and whole derivations
/// (`drvPath`'s context) need no build, but must be in the store: Nix's "path '…' is not
/// valid" (in read-only mode, `toFile` and source paths are only computed). Each output is
/// asked for once per evaluation.
fn realise_context(ev: &mut Evaluator, ctx: &Context, s: Option<Span>) -> EvalResult<()> {
    let mut wanted = Vec::new();
    let mut store_dir = None;
    for elem in ctx {
        let (ContextElem::Plain(path) | ContextElem::AllOutputs(path)) = elem else {
            continue;
        };
        // An IO that cannot tell (a refused read) leaves the read itself to report.
        if let Ok(false) = ev.io.path_exists(Path::new(path)) {
            return fail(format!("path '{path}' is not valid"), s);
        }
    }
    for elem in ctx {
        let ContextElem::Output(drv, output) = elem else {
            continue;
        };
        let dir = match &store_dir {
            Some(d) => d,
            None => store_dir.insert(
                tvix_store::StoreDir::new(ev.io.store_dir())
                    .map_err(|e| EvalError::new(ErrorKind::Other(e.to_string()), s))?,
            ),
        };
        let drv = dir.parse_path(drv).map_err(|e| {
            EvalError::new(
                ErrorKind::Other(format!("invalid derivation path '{drv}' in a context: {e}")),
                s,
            )
        })?;
        let out = crate::io::DrvOutput {
            drv,
            output: output.clone(),
        };
        if !ev.realised.contains(&out) {
            wanted.push(out);
        }
    }
    let Some(first) = wanted.first() else {
        return Ok(());
    };
    if !ev.config.allow_import_from_derivation {
        // Current Nix's words (2.8 names the `.drv` without `^output`).
        return fail(
            format!(
                "cannot build '{}' during evaluation because the option \
                 'allow-import-from-derivation' is disabled",
                first.display(&ev.io.store_dir())
            ),
            s,
        );
    }
    ev.io.realise(&wanted).map_err(|e| {
        EvalError::new(
            ErrorKind::BuildFailed {
                exit_status: e.exit_status(),
                message: e.to_string(),
            },
            s,
        )
    })?;
    ev.realised.extend(wanted);
    Ok(())
}

/// An IO error as the system describes it (`No such file or directory`), as Nix shows it.
fn os_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Whether an IO error means "there is nothing there" (missing, or a parent is not a directory).
fn is_missing(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(20)
}

/// `pathExists p`: whether `p` exists, without following a final symlink (a dangling symlink
/// exists), unless `p` was written with a trailing `/` or `/.`: then it must be a directory.
fn path_exists(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let (p, must_be_dir) = path_arg(ev, a[0].clone(), s)
        .context(None, || "while realising the context of a path".to_string())?;
    if must_be_dir {
        // Asking the system about `p/.` follows symlinks and fails for non-directories.
        return Ok(Value::bool(
            ev.io.path_exists(&p.join(".")).unwrap_or(false),
        ));
    }
    match ev.io.file_type(&p) {
        Ok(_) => Ok(Value::bool(true)),
        Err(e) if is_missing(&e) => Ok(Value::bool(false)),
        Err(e) => fail(
            format!("getting status of '{}': {}", p.display(), os_error(&e)),
            s,
        ),
    }
}

/// `readDir p`: `{ name = "regular" | "directory" | "symlink" | "unknown"; }` for the entries
/// of the directory `p` (symlinks to it are followed).
fn read_dir(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let p = real_path(ev, a[0].clone(), s).context(None, || {
        "while evaluating the first argument passed to builtins.readDir".to_string()
    })?;
    if !matches!(ev.io.path_exists(&p), Ok(true)) {
        return fail(format!("path '{}' does not exist", p.display()), s);
    }
    let resolved = match ev.io.file_type(&p) {
        Ok(crate::io::FileType::Symlink) => ev.io.canonicalize(&p).unwrap_or_else(|_| p.clone()),
        _ => p.clone(),
    };
    match ev.io.file_type(&resolved) {
        Ok(crate::io::FileType::Directory) => {}
        Ok(_) => return fail(format!("'{}' is not a directory", resolved.display()), s),
        Err(e) => {
            return fail(
                format!(
                    "getting status of '{}': {}",
                    resolved.display(),
                    os_error(&e)
                ),
                s,
            )
        }
    }
    let entries = ev.io.read_dir(&resolved).or_else(|e| {
        fail(
            format!(
                "opening directory '{}': {}",
                resolved.display(),
                os_error(&e)
            ),
            s,
        )
    })?;
    Ok(super::make_attrs(entries.into_iter().map(|(name, ft)| {
        (
            crate::symbol::Symbol::intern_bytes(&name),
            Value::string(ft.as_str()),
        )
    })))
}

/// `readFileType p`: the type of `p` itself (a symlink is reported as such).
fn read_file_type(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let p = real_path(ev, a[0].clone(), s).context(None, || {
        "while evaluating the first argument passed to builtins.readFileType".to_string()
    })?;
    match ev.io.file_type(&p) {
        Ok(ft) => Ok(Value::string(ft.as_str())),
        Err(e) => fail(
            format!("getting status of '{}': {}", p.display(), os_error(&e)),
            s,
        ),
    }
}

/// `toPath s`: the canonical absolute path `s` names, as a string (with `s`'s context).
fn to_path(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let v = ev.force(a[0].clone())?;
    let st = ev
        .coerce_to_string(v, CoerceMode::PathSegment, s)
        .context(None, || {
            "while evaluating the first argument passed to builtins.toPath".to_string()
        })?;
    if !st.as_bytes().starts_with(b"/") {
        return fail(
            format!(
                "string '{}' doesn't represent an absolute path",
                st.to_str_lossy()
            ),
            s,
        )
        .context(None, || {
            "while evaluating the first argument passed to builtins.toPath".to_string()
        });
    }
    let canonical = canonicalize_path(st.as_bytes());
    Ok(Value::String(Rc::new(NixString::with_context(
        canonical.as_os_str().as_bytes().to_vec(),
        st.context().cloned().unwrap_or_default(),
    ))))
}

/// `scopedImport attrs path`: imports `path` with the names of `attrs` in scope (they shadow
/// the builtins). Not cached together with plain imports.
fn scoped_import(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let scope = ev.force_attrs(a[0].clone(), s).context(None, || {
        "while evaluating the first argument passed to builtins.scopedImport".to_string()
    })?;
    let p = real_path(ev, a[1].clone(), s)?;
    ev.import_scoped(&p, Value::Attrs(scope), s)
}

fn import(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let p = real_path(ev, a[0].clone(), s)?;
    ev.import(&p, s)
}

/// `__findFile nixPath "name/rest"`: the first search path entry whose prefix matches.
fn find_file(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let entries = ev.force_list(a[0].clone(), s)?;
    let wanted = ev.force_string(a[1].clone(), s)?;
    let wanted = wanted.to_str_lossy().into_owned();
    for entry in entries.iter() {
        let entry = ev.force_attrs(entry.clone(), s)?;
        let prefix = match entry.get(sym::prefix()) {
            Some(p) => ev.force_string(p.clone(), s)?.to_str_lossy().into_owned(),
            None => String::new(),
        };
        let Some(path) = entry.get(sym::path()).cloned() else {
            return Err(EvalError::new(
                ErrorKind::Other("attribute 'path' missing".into()),
                s,
            ));
        };
        let path = ev
            .coerce_to_string(path, CoerceMode::PathSegment, s)?
            .to_str_lossy()
            .into_owned();
        let rest = if prefix.is_empty() {
            Some(wanted.as_str())
        } else if wanted == prefix {
            Some("")
        } else {
            wanted
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_prefix('/'))
        };
        let Some(rest) = rest else { continue };
        let candidate = if rest.is_empty() {
            PathBuf::from(&path)
        } else {
            Path::new(&path).join(rest)
        };
        if ev.io.path_exists(&candidate).unwrap_or(false) {
            let abs = if candidate.is_absolute() {
                candidate
            } else {
                std::env::current_dir().unwrap_or_default().join(candidate)
            };
            return Ok(Value::Path(Rc::new(canonicalize_path(
                abs.as_os_str().as_bytes(),
            ))));
        }
    }
    // Nix's own files (`<nix/fetchurl.nix>`) come last: the search path may override them.
    if let Some(rest) = wanted.strip_prefix("nix/") {
        return Ok(Value::Path(Rc::new(canonicalize_path(
            format!("{}{rest}", super::COREPKGS_PREFIX).as_bytes(),
        ))));
    }
    // Nix throws this one as a catchable error: `tryEval <missing>` is false, not fatal.
    Err(EvalError::new(
        ErrorKind::Throw(format!(
            "file '{wanted}' was not found in the Nix search path (add it using $NIX_PATH or -I)"
        )),
        s,
    ))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::eval::{EvalConfig, Evaluator};
    use crate::value::print::print_value;

    fn eval_in(dir: &Path, src: &str) -> Result<String, String> {
        let mut ev = Evaluator::new(Box::new(crate::io::StdIO::new()), EvalConfig::default());
        let v = ev
            .eval_source("«test»".into(), src.into(), dir.to_path_buf())
            .and_then(|v| ev.force_deep(v))
            .map_err(|e| e.kind.to_string())?;
        Ok(print_value(&v))
    }

    /// A scratch directory with files, a directory and symlinks (removed on drop).
    struct Fixture(PathBuf);

    impl Fixture {
        fn new(name: &str) -> Fixture {
            let root =
                std::env::temp_dir().join(format!("tvix-paths-test-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(root.join("foo/lib")).unwrap();
            std::fs::create_dir_all(root.join("overlays")).unwrap();
            std::fs::write(root.join("bar"), "").unwrap();
            std::fs::write(root.join("foo/file"), "").unwrap();
            std::fs::write(root.join("foo/lib/default.nix"), "\"test\"").unwrap();
            std::fs::write(root.join("overlays/overlay.nix"), "import ../lib").unwrap();
            std::fs::write(root.join("lib.nix"), "{ x = 1; }").unwrap();
            std::fs::write(
                root.join("scoped.nix"),
                "[ range import (builtins.length [ ]) ]",
            )
            .unwrap();
            std::os::unix::fs::symlink("foo", root.join("ldir")).unwrap();
            std::os::unix::fs::symlink("foo/file", root.join("linked")).unwrap();
            std::os::unix::fs::symlink("nonexistent", root.join("broken")).unwrap();
            std::os::unix::fs::symlink("../overlays", root.join("foo/overlays")).unwrap();
            Fixture(root)
        }

        fn ok(&self, src: &str, expected: &str) {
            assert_eq!(
                eval_in(&self.0, src),
                Ok(expected.to_string()),
                "evaluating {src}"
            );
        }

        fn err(&self, src: &str, expected: &str) {
            let expected = expected.replace("ROOT", &self.0.display().to_string());
            assert_eq!(eval_in(&self.0, src), Err(expected), "evaluating {src}");
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn base_name_and_dir_of() {
        assert_eq!(
            crate::testing::eval(
                "[ (builtins.baseNameOf \"/a/b/\") (builtins.baseNameOf \"/a/b\") (builtins.dirOf \"/a/b\") (builtins.dirOf \"a\") (builtins.dirOf /a/b) (builtins.dirOf \"/\") ]"
            ),
            Ok(r#"[ "b" "b" "/a" "." /a "/" ]"#.to_string())
        );
        assert_eq!(
            crate::testing::eval("builtins.baseNameOf 1"),
            Err("cannot coerce an integer to a string: 1".to_string())
        );
    }

    #[test]
    fn find_file_and_import() {
        let dir = std::env::temp_dir().join(format!("tvix-findfile-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pkgs")).unwrap();
        std::fs::write(dir.join("pkgs/default.nix"), "{ answer = 42; }").unwrap();
        let d = dir.display();
        assert_eq!(
            crate::testing::eval(&format!(
                "(import (builtins.findFile [ {{ prefix = \"p\"; path = \"{d}/pkgs\"; }} ] \"p\")).answer"
            )),
            Ok("42".to_string())
        );
        assert_eq!(
            crate::testing::eval(&format!("(import {d}/pkgs).answer")),
            Ok("42".to_string())
        );
        assert_eq!(
            crate::testing::eval("builtins.tryEval (builtins.findFile [ ] \"missing\")"),
            Ok("{ success = false; value = false; }".to_string())
        );
        assert!(crate::testing::eval("import /surely/not/there.nix")
            .unwrap_err()
            .contains("does not exist"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn path_exists() {
        let f = Fixture::new("exists");
        f.ok("builtins.pathExists ./lib.nix", "true");
        f.ok("builtins.pathExists ./nope.nix", "false");
        f.ok("builtins.pathExists (toString ./lib.nix)", "true");
        f.ok("builtins.pathExists (toString ./lib.nix + \"/\")", "false");
        f.ok("builtins.pathExists (toString ./lib.nix + \"/.\")", "false");
        f.ok(
            "builtins.pathExists (toString ./lib.nix + \"/./\")",
            "false",
        );
        f.ok("builtins.pathExists (toString ./. + \"/\")", "true");
        f.ok(
            "builtins.pathExists (toString ./foo + \"/../foo/.\")",
            "true",
        );
        f.ok("builtins.pathExists ./broken", "true");
        f.ok("builtins.pathExists (toString ./broken + \"/.\")", "false");
        f.ok("builtins.pathExists (toString ./ldir + \"/.\")", "true");
        f.ok("builtins.pathExists ./foo/overlays/overlay.nix", "true");
        f.ok("builtins.pathExists ./lib.nix/foo", "false");
        f.ok(
            "builtins.pathExists { outPath = toString ./lib.nix; }",
            "true",
        );
        f.err(
            "builtins.pathExists [ ]",
            "cannot coerce a list to a string: [ ]",
        );
        f.err(
            "builtins.pathExists \"zorglub\"",
            "string 'zorglub' doesn't represent an absolute path",
        );
    }

    #[test]
    fn read_dir() {
        let f = Fixture::new("readdir");
        f.ok(
            "builtins.readDir ./.",
            "{ bar = \"regular\"; broken = \"symlink\"; foo = \"directory\"; ldir = \"symlink\"; \"lib.nix\" = \"regular\"; linked = \"symlink\"; overlays = \"directory\"; \"scoped.nix\" = \"regular\"; }",
        );
        f.ok(
            "builtins.readDir ./ldir",
            "{ file = \"regular\"; lib = \"directory\"; overlays = \"symlink\"; }",
        );
        f.err("builtins.readDir ./bar", "'ROOT/bar' is not a directory");
        f.err(
            "builtins.readDir ./linked",
            "'ROOT/foo/file' is not a directory",
        );
        f.err("builtins.readDir ./nope", "path 'ROOT/nope' does not exist");
        f.err(
            "builtins.readDir 1",
            "cannot coerce an integer to a string: 1",
        );
    }

    #[test]
    fn read_file_type() {
        let f = Fixture::new("filetype");
        f.ok(
            "map builtins.readFileType [ ./bar ./foo ./ldir ./linked ./broken ]",
            "[ \"regular\" \"directory\" \"symlink\" \"symlink\" \"symlink\" ]",
        );
        f.err(
            "builtins.readFileType ./nope",
            "getting status of 'ROOT/nope': No such file or directory",
        );
        f.err(
            "builtins.readFileType { outPath = \"not-absolute\"; }",
            "string 'not-absolute' doesn't represent an absolute path",
        );
        f.err(
            "builtins.readFileType { outPath = abort \"some failure\"; }",
            "evaluation aborted with the following error message: 'some failure'",
        );
        f.err(
            "builtins.readFileType { __toString = \"not a function\"; }",
            "attempt to call something which is not a function but a string: \"not a function\"",
        );
    }

    #[test]
    fn read_file() {
        let f = Fixture::new("readfile");
        f.ok("builtins.readFile ./lib.nix", "\"{ x = 1; }\"");
        f.ok(
            "builtins.readFile ./foo/overlays/overlay.nix",
            "\"import ../lib\"",
        );
        f.err(
            "builtins.readFile ./nope",
            "opening file 'ROOT/nope': No such file or directory",
        );
        f.err(
            "builtins.readFile ./foo",
            "reading from file: Is a directory",
        );
    }

    #[test]
    fn to_path() {
        let f = Fixture::new("topath");
        f.ok("builtins.toPath \"/a/b/../c/\"", "\"/a/c\"");
        f.ok("builtins.typeOf (builtins.toPath ./bar)", "\"string\"");
        f.ok("builtins.toPath { __toString = _: \"/x//y\"; }", "\"/x/y\"");
        f.err(
            "builtins.toPath [ ]",
            "cannot coerce a list to a string: [ ]",
        );
        f.err(
            "builtins.toPath \"foo/bar\"",
            "string 'foo/bar' doesn't represent an absolute path",
        );
    }

    #[test]
    fn import_through_symlinked_parent_is_lexical() {
        let f = Fixture::new("symlink-import");
        // `foo/overlays` -> `../overlays`; `overlay.nix` imports `../lib`, which Nix
        // resolves against the path as written: `foo/lib`.
        f.ok("import ./foo/overlays/overlay.nix", "\"test\"");
        f.ok("import ./ldir/lib", "\"test\"");
    }

    #[test]
    fn scoped_import() {
        let f = Fixture::new("scoped");
        f.ok(
            "builtins.scopedImport { range = 1; import = 2; } ./scoped.nix",
            "[ 1 2 0 ]",
        );
        // The scope shadows builtins; other names still resolve to them.
        f.ok(
            "builtins.scopedImport { builtins = { length = _: 7; }; range = 0; import = 0; } ./scoped.nix",
            "[ 0 0 7 ]",
        );
        // Not cached with plain imports, nor across scopes.
        f.ok(
            "[ (import ./lib.nix).x (builtins.scopedImport { } ./lib.nix).x ]",
            "[ 1 1 ]",
        );
        f.ok(
            "map (n: builtins.head (builtins.scopedImport { range = n; import = 0; } ./scoped.nix)) [ 1 2 ]",
            "[ 1 2 ]",
        );
        f.err(
            "builtins.scopedImport { } ./scoped.nix",
            "undefined variable 'range'",
        );
        f.err(
            "builtins.scopedImport 1 ./scoped.nix",
            "expected a set but found an integer: 1",
        );
    }
}
