//! Builtins about files and paths: `import`, the search path, reading files.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::control::primop;
use super::fail;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::eval::{sym, CoerceMode, Evaluator};
use crate::lower::canonicalize_path;
use crate::source::Span;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("import", 1, import),
    primop!("findFile", 2, find_file),
    primop!("pathExists", 1, |ev, a, s| {
        let p = real_path(ev, a[0].clone(), s)?;
        Ok(Value::Bool(ev.io.path_exists(&p).unwrap_or(false)))
    }),
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
    Ok(canonicalize_path(bytes))
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
