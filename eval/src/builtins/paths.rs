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
            Err(e) => fail(format!("reading file '{}': {e}", p.display()), s),
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
    Ok((canonicalize_path(bytes), must_be_dir))
}

/// Whether an IO error means "there is nothing there" (missing, or a parent is not a directory).
fn is_missing(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(20)
}

/// `pathExists p`: whether `p` exists, without following a final symlink (a dangling symlink
/// exists), unless `p` was written with a trailing `/` or `/.`: then it must be a directory.
fn path_exists(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let (p, must_be_dir) = path_arg(ev, a[0].clone(), s)
        .context(s, || "while realising the context of a path".to_string())?;
    if must_be_dir {
        // Asking the system about `p/.` follows symlinks and fails for non-directories.
        return Ok(Value::Bool(
            ev.io.path_exists(&p.join(".")).unwrap_or(false),
        ));
    }
    match ev.io.file_type(&p) {
        Ok(_) => Ok(Value::Bool(true)),
        Err(e) if is_missing(&e) => Ok(Value::Bool(false)),
        Err(e) => fail(format!("getting status of '{}': {e}", p.display()), s),
    }
}

/// `readDir p`: `{ name = "regular" | "directory" | "symlink" | "unknown"; }` for the entries
/// of the directory `p` (symlinks to it are followed).
fn read_dir(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let p = real_path(ev, a[0].clone(), s).context(s, || {
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
                format!("getting status of '{}': {e}", resolved.display()),
                s,
            )
        }
    }
    let entries = ev.io.read_dir(&resolved).or_else(|e| {
        fail(
            format!("opening directory '{}': {e}", resolved.display()),
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
fn read_file_type(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let p = real_path(ev, a[0].clone(), s).context(s, || {
        "while evaluating the first argument passed to builtins.readFileType".to_string()
    })?;
    match ev.io.file_type(&p) {
        Ok(ft) => Ok(Value::string(ft.as_str())),
        Err(e) => fail(format!("getting status of '{}': {e}", p.display()), s),
    }
}

/// `toPath s`: the canonical absolute path `s` names, as a string (with `s`'s context).
fn to_path(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let v = ev.force(a[0].clone())?;
    let st = ev
        .coerce_to_string(v, CoerceMode::PathSegment, s)
        .context(s, || {
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
        .context(s, || {
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
fn scoped_import(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let scope = ev.force_attrs(a[0].clone(), s).context(s, || {
        "while evaluating the first argument passed to builtins.scopedImport".to_string()
    })?;
    let p = real_path(ev, a[1].clone(), s)?;
    ev.import_scoped(&p, Value::Attrs(scope), s)
}

fn import(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let p = real_path(ev, a[0].clone(), s)?;
    ev.import(&p, s)
}

/// `__findFile nixPath "name/rest"`: the first search path entry whose prefix matches.
fn find_file(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
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
    fail(
        format!(
            "file '{wanted}' was not found in the Nix search path (add it using $NIX_PATH or -I)"
        ),
        s,
    )
}
