//! `:e`: opens `$EDITOR` (`less` when unset, as in Nix) at the definition of a function, the
//! `meta.position` of a package, or a path; the caller reloads the files afterwards.

use std::path::PathBuf;
use std::process::Command;

use tvix_eval::symbol::Symbol;
use tvix_eval::{EvalResult, Value};

use crate::session::{other, Session};

/// Where `v` is defined, then runs the editor there.
pub fn edit(s: &mut Session, v: Value) -> EvalResult<()> {
    let (file, line) = location_of(s, v)?;
    let editor = std::env::var("EDITOR")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "less".to_string());
    let mut words = editor.split_whitespace();
    let program = words.next().expect("EDITOR is not blank");
    let status = Command::new(program)
        .args(words)
        .arg(format!("+{line}"))
        .arg(&file)
        .status()
        .map_err(|e| other(format!("cannot run the editor '{editor}': {e}")))?;
    if !status.success() {
        return Err(other(format!("the editor '{editor}' failed ({status})")));
    }
    Ok(())
}

/// The file and line `:e` opens for `v`.
fn location_of(s: &mut Session, v: Value) -> EvalResult<(PathBuf, usize)> {
    let v = s.ev.force(v)?;
    let (file, line) = match &v {
        Value::Lambda(c) => {
            let loc = s.ev.sources.location(c.lambda.span);
            (PathBuf::from(loc.file), loc.line)
        }
        Value::Path(p) => (p.to_path_buf(), 1),
        Value::Attrs(a) => {
            let position = match a.get(Symbol::intern("meta")).cloned() {
                Some(meta) => match s.ev.force(meta)? {
                    Value::Attrs(m) => m.get(Symbol::intern("position")).cloned(),
                    _ => None,
                },
                None => None,
            };
            let Some(position) = position else {
                return Err(other(
                    "the set has no meta.position: nothing to open in the editor".to_string(),
                ));
            };
            let position = s.ev.force_string(position, None)?;
            let position = position.to_str_lossy();
            match position.rsplit_once(':') {
                Some((f, l)) if l.parse::<usize>().is_ok() => {
                    (PathBuf::from(f), l.parse().expect("checked"))
                }
                _ => (PathBuf::from(position.as_ref()), 1),
            }
        }
        other_value => {
            return Err(other(format!(
                "cannot open {} in the editor: only functions, packages (meta.position) and paths have a source location",
                other_value.type_desc()
            )))
        }
    };
    if !file.is_file() {
        return Err(other(format!(
            "'{}' is not a file (the value was not defined in a file)",
            file.display()
        )));
    }
    Ok((file, line))
}
