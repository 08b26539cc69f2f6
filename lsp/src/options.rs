//! Module-system awareness, on the worker: the option tree of the workspace's `optionsExpr`
//! (a module system `options` set, as `(lib.evalModules { ... }).options` gives), walked by
//! attribute path to list option names with their type, default and description.

use std::path::PathBuf;

use tvix_eval::symbol::Symbol;
use tvix_eval::value::print::print_value;
use tvix_eval::value::Value;
use tvix_eval::Evaluator;

use crate::evaluate::{render, FileRange};
use crate::worker::Session;

/// What the editor shows of one option (or of a namespace of options).
#[derive(Clone, Debug, Default)]
pub struct OptionInfo {
    /// The attribute name.
    pub name: String,
    /// Whether it is an option (else a set of options).
    pub is_option: bool,
    /// The type's description (`boolean`, `list of string`, ...).
    pub type_desc: Option<String>,
    /// The default, as `defaultText` or the printed default.
    pub default: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// Where it is declared.
    pub declarations: Vec<FileRange>,
}

impl OptionInfo {
    /// Markdown for hover and completion documentation.
    pub fn markdown(&self, path: &str) -> String {
        let mut out = format!("**{path}**");
        if let Some(t) = &self.type_desc {
            out.push_str(&format!("\n\n*Type:* {t}"));
        }
        if let Some(d) = &self.default {
            out.push_str(&format!("\n\n*Default:* `{d}`"));
        }
        if let Some(d) = &self.description {
            out.push_str(&format!("\n\n{d}"));
        }
        for d in &self.declarations {
            out.push_str(&format!(
                "\n\n*Declared in* {}:{}",
                d.path.display(),
                d.start.0 + 1
            ));
        }
        out
    }
}

/// The options set, evaluated once per evaluator.
fn options_root(session: &mut Session, expr: &str) -> Result<Value, String> {
    if let Some(v) = session.cached(expr) {
        return Ok(v);
    }
    let ev = session.evaluator();
    let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let v = ev
        .eval_source("«tvix.optionsExpr»".to_string(), expr.to_string(), base)
        .and_then(|v| ev.force(v))
        .map_err(|e| render(ev, &e))?;
    session.cache(expr, v.clone());
    Ok(v)
}

/// Follows `path` in the option tree.
fn walk(ev: &mut Evaluator, mut v: Value, path: &[String]) -> Result<Option<Value>, String> {
    for name in path {
        v = ev.force(v).map_err(|e| render(ev, &e))?;
        let Value::Attrs(a) = &v else { return Ok(None) };
        if is_option(ev, &v) {
            // Below an option (`attrsOf (submodule ..)` and the like) the tree stops here.
            return Ok(None);
        }
        match a.get(Symbol::intern(name)) {
            Some(child) => v = child.clone(),
            None => return Ok(None),
        }
    }
    Ok(Some(ev.force(v).map_err(|e| render(ev, &e))?))
}

fn is_option(ev: &mut Evaluator, v: &Value) -> bool {
    let Value::Attrs(a) = v else { return false };
    match a.get(Symbol::intern("_type")).cloned().map(|t| ev.force(t)) {
        Some(Ok(Value::String(s))) => s.as_bytes() == b"option",
        _ => false,
    }
}

fn string_attr(ev: &mut Evaluator, v: &Value, name: &str) -> Option<String> {
    let Value::Attrs(a) = v else { return None };
    let x = ev.force(a.get(Symbol::intern(name))?.clone()).ok()?;
    match &x {
        Value::String(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        // `lib.literalExpression`, `lib.literalMD`, `mdDoc`: `{ _type; text; }`.
        Value::Attrs(_) => string_attr(ev, &x, "text"),
        _ => None,
    }
}

fn info(ev: &mut Evaluator, name: &str, v: &Value) -> OptionInfo {
    if !is_option(ev, v) {
        return OptionInfo {
            name: name.to_string(),
            ..OptionInfo::default()
        };
    }
    let Value::Attrs(a) = v else {
        unreachable!("is_option checked a set")
    };
    let type_desc = a
        .get(Symbol::intern("type"))
        .cloned()
        .and_then(|t| ev.force(t).ok())
        .and_then(|t| string_attr(ev, &t, "description"));
    let default = string_attr(ev, v, "defaultText").or_else(|| {
        let d = ev.force(a.get(Symbol::intern("default"))?.clone()).ok()?;
        let d = ev.force_deep(d).ok()?;
        let s = print_value(&d);
        Some(if s.len() > 200 {
            format!("{}…", &s[..s.floor_char_boundary(200)])
        } else {
            s
        })
    });
    let description = string_attr(ev, v, "description");
    OptionInfo {
        name: name.to_string(),
        is_option: true,
        type_desc,
        default,
        description,
        declarations: declarations(ev, v),
    }
}

/// `declarationPositions` (`{ file; line; column; }`), else `declarations` (file names).
fn declarations(ev: &mut Evaluator, v: &Value) -> Vec<FileRange> {
    let Value::Attrs(a) = v else {
        return Vec::new();
    };
    let list = |ev: &mut Evaluator, name: &str| -> Vec<Value> {
        match a.get(Symbol::intern(name)).cloned().map(|l| ev.force(l)) {
            Some(Ok(Value::List(l))) => l.iter().cloned().collect(),
            _ => Vec::new(),
        }
    };
    let mut out = Vec::new();
    for p in list(ev, "declarationPositions") {
        let Ok(p) = ev.force(p) else { continue };
        let Some(file) = string_attr(ev, &p, "file") else {
            continue;
        };
        let num = |ev: &mut Evaluator, n: &str| -> u32 {
            let Value::Attrs(pa) = &p else { return 1 };
            match pa.get(Symbol::intern(n)).cloned().map(|x| ev.force(x)) {
                Some(Ok(Value::Int(i))) => i.max(1) as u32,
                _ => 1,
            }
        };
        let (line, col) = (num(ev, "line") - 1, num(ev, "column") - 1);
        out.push(FileRange {
            path: PathBuf::from(file),
            start: (line, col),
            end: (line, col),
        });
    }
    if out.is_empty() {
        for d in list(ev, "declarations") {
            if let Ok(Value::String(s)) = ev.force(d) {
                out.push(FileRange {
                    path: PathBuf::from(String::from_utf8_lossy(s.as_bytes()).into_owned()),
                    start: (0, 0),
                    end: (0, 0),
                });
            }
        }
    }
    out.retain(|r| r.path.is_absolute());
    out
}

/// The options and option sets directly below `path`.
pub fn children(
    session: &mut Session,
    expr: &str,
    path: &[String],
) -> Result<Vec<OptionInfo>, String> {
    let root = options_root(session, expr)?;
    let ev = session.evaluator();
    let Some(v) = walk(ev, root, path)? else {
        return Ok(Vec::new());
    };
    if is_option(ev, &v) {
        return Ok(Vec::new());
    }
    let Value::Attrs(a) = &v else {
        return Ok(Vec::new());
    };
    let entries: Vec<_> = a
        .iter()
        .map(|e| (e.name.as_str().to_string(), e.value.clone()))
        .collect();
    let mut out = Vec::new();
    for (name, child) in entries {
        if name.starts_with('_') {
            continue;
        }
        let child = ev.force(child).map_err(|e| render(ev, &e))?;
        out.push(info(ev, &name, &child));
    }
    Ok(out)
}

/// The option (or option set) at `path`.
pub fn option_at(
    session: &mut Session,
    expr: &str,
    path: &[String],
) -> Result<Option<OptionInfo>, String> {
    let root = options_root(session, expr)?;
    let ev = session.evaluator();
    let Some(v) = walk(ev, root, path)? else {
        return Ok(None);
    };
    let name = path.last().cloned().unwrap_or_default();
    Ok(Some(info(ev, &name, &v)))
}
