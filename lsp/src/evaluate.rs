//! Evaluation jobs run on the worker: evaluate a probe, describe a value for hover, list the
//! attributes of a value with their definition sites, evaluate a whole file for its errors.
//! Results are plain data (values never leave the worker thread).

use std::path::{Path, PathBuf};

use tvix_eval::diagnostic::{render_error, RenderOptions};
use tvix_eval::source::{SourceMap, Span};
use tvix_eval::value::print::{preview, print_value};
use tvix_eval::value::{Attrs, Value};
use tvix_eval::{ErrorKind, EvalError, Evaluator};

use crate::worker::Session;

/// The name probes are evaluated under (their spans point at no real file).
pub const PROBE_NAME: &str = "«tvix-lsp»";

/// A place in some file, 0-based line and UTF-16-ish column (columns count characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRange {
    /// The file's path.
    pub path: PathBuf,
    /// Start (line, column), 0-based.
    pub start: (u32, u32),
    /// End (line, column), 0-based.
    pub end: (u32, u32),
}

/// The real file and range of a span, if it points into a file on disk.
pub fn file_range(sources: &SourceMap, span: Span) -> Option<FileRange> {
    let (name, (l1, c1), (l2, c2)) = sources.range(span);
    let path = PathBuf::from(&name);
    if !path.is_absolute() {
        return None;
    }
    Some(FileRange {
        path,
        start: (l1 as u32 - 1, c1 as u32 - 1),
        end: (l2 as u32 - 1, c2 as u32 - 1),
    })
}

/// Evaluates probe source to weak head normal form.
pub fn eval_probe(
    session: &mut Session,
    source: String,
    base_dir: &Path,
) -> Result<Value, Box<EvalError>> {
    session.account(source.len());
    let ev = session.evaluator();
    let v = ev.eval_source(PROBE_NAME.to_string(), source, base_dir.to_path_buf())?;
    ev.force(v)
}

/// One attribute of an evaluated set.
#[derive(Clone, Debug)]
pub struct AttrInfo {
    /// Its name.
    pub name: String,
    /// Its type if already evaluated (nothing is forced to list a set).
    pub kind: Option<&'static str>,
    /// Where it is defined.
    pub pos: Option<FileRange>,
}

/// The attributes of `v` (forced to a set), or why there are none.
pub fn attributes(ev: &mut Evaluator, v: &Value) -> Vec<AttrInfo> {
    let Value::Attrs(a) = v else {
        return Vec::new();
    };
    attrs_info(&ev.sources, a)
}

fn attrs_info(sources: &SourceMap, a: &Attrs) -> Vec<AttrInfo> {
    a.iter()
        .map(|e| AttrInfo {
            name: e.name.as_str().to_string(),
            kind: known_type(&e.value),
            pos: e.pos.get().and_then(|s| file_range(sources, s)),
        })
        .collect()
}

fn known_type(v: &Value) -> Option<&'static str> {
    match v {
        Value::Thunk(t) => t.value().map(|v| v.type_of()),
        v => Some(v.type_of()),
    }
}

/// How many elements of a list a hover evaluates for its preview.
const PREVIEW_FORCE: usize = 10;

/// Where attribute `name` of the set `v` is defined, when that is in the probe `source`
/// (byte offsets into it).
pub fn attr_span_in_probe(
    ev: &Evaluator,
    v: &Value,
    name: &str,
    source: &str,
) -> Option<(usize, usize)> {
    let span = attr_pos(v, name)?;
    let file = ev.sources.file_of(span);
    if file.name() != PROBE_NAME || file.source() != source {
        return None;
    }
    let base = file.span.low();
    Some(((span.low() - base) as usize, (span.high() - base) as usize))
}

/// Where attribute `name` of the set `v` is defined.
fn attr_pos(v: &Value, name: &str) -> Option<tvix_eval::source::Span> {
    let Value::Attrs(a) = v else { return None };
    a.get_entry(tvix_eval::symbol::Symbol::intern(name))?
        .pos
        .get()
}

/// Where attribute `name` of the set `v` is really defined: when its position is an
/// `inherit (e) name` (nixpkgs' `lib` re-exports `lib.strings.toUpper` as `lib.toUpper`
/// that way), the definition of the same value under that name in a set that `v` holds
/// and that is already evaluated (`lib.strings`, forced by the `inherit` itself), where
/// its doc comment is. Otherwise the attribute's own position.
pub fn defining_pos(ev: &Evaluator, v: &Value, name: &str) -> Option<tvix_eval::source::Span> {
    let span = attr_pos(v, name)?;
    if !is_inherit_at(ev, span) {
        return Some(span);
    }
    let Value::Attrs(a) = v else {
        return Some(span);
    };
    let sym = tvix_eval::symbol::Symbol::intern(name);
    let Some(wanted) = a.get(sym).and_then(forced) else {
        return Some(span);
    };
    for entry in a.iter() {
        let Some(Value::Attrs(inner)) = forced(&entry.value) else {
            continue;
        };
        let Some(found) = inner.get_entry(sym) else {
            continue;
        };
        let (Some(value), Some(pos)) = (forced(&found.value), found.pos.get()) else {
            continue;
        };
        if same_value(&value, &wanted) && !is_inherit_at(ev, pos) {
            return Some(pos);
        }
    }
    Some(span)
}

/// Evaluates attribute `name` of the set `v` to weak head normal form, if it can (an error
/// only means no more is known).
pub fn force_attr(ev: &mut Evaluator, v: &Value, name: &str) {
    let Value::Attrs(a) = v else { return };
    if let Some(value) = a.get(tvix_eval::symbol::Symbol::intern(name)) {
        let _ = ev.force(value.clone());
    }
}

/// The value of `v` if it is evaluated (nothing is forced here).
fn forced(v: &Value) -> Option<Value> {
    match v {
        Value::Thunk(t) => t.value(),
        v => Some(v.clone()),
    }
}

/// Whether two evaluated values are the very same value (not only equal).
fn same_value(a: &Value, b: &Value) -> bool {
    use std::rc::Rc;
    match (a, b) {
        (Value::Lambda(x), Value::Lambda(y)) => Rc::ptr_eq(x, y),
        (Value::PrimOp(x), Value::PrimOp(y)) => Rc::ptr_eq(x, y),
        (Value::Attrs(x), Value::Attrs(y)) => Rc::ptr_eq(x, y),
        (Value::List(x), Value::List(y)) => Rc::ptr_eq(x, y),
        (Value::String(x), Value::String(y)) => Rc::ptr_eq(x, y),
        _ => false,
    }
}

/// Whether the name at `span` is one an `inherit` lists (its statement before it begins
/// with `inherit`).
fn is_inherit_at(ev: &Evaluator, span: tvix_eval::source::Span) -> bool {
    let file = ev.sources.file_of(span);
    let offset = (span.low() - file.span.low()) as usize;
    let Some(before) = file.source().get(..offset) else {
        return false;
    };
    let start = before.rfind([';', '{', '}', '=']).map_or(0, |i| i + 1);
    let statement = before[start..].trim_start();
    // Comments between statements do not count.
    let statement = statement
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    statement.trim_start().starts_with("inherit")
}

/// The doc comment at the definition of attribute `name` of the set `v`.
pub fn attr_doc(ev: &mut Evaluator, v: &Value, name: &str) -> Option<String> {
    let span = defining_pos(ev, v, name)?;
    let file = ev.sources.file_of(span);
    let offset = (span.low() - file.span.low()) as usize;
    tvix_eval::doc_comment::doc_comment_before(file.source(), offset)
}

/// A short Markdown description of a value: its type, its shape, its printed form.
pub fn describe(ev: &mut Evaluator, v: &Value) -> String {
    const MAX: usize = 1500;
    let mut out = String::new();
    match v {
        Value::Attrs(a) => {
            if v.is_derivation() {
                out.push_str("derivation");
                if let Some(name) = a.get(tvix_eval::symbol::Symbol::intern("name")).cloned() {
                    if let Ok(Value::String(s)) = ev.force(name) {
                        out.push_str(&format!(" `{}`", String::from_utf8_lossy(s.as_bytes())));
                    }
                }
                out.push('\n');
                return out;
            }
            out.push_str(&format!("set of {} attributes\n\n", a.len()));
            let names: Vec<String> = a
                .iter()
                .take(40)
                .map(|e| match known_type(&e.value) {
                    Some(t) => format!("{} ({t})", e.name),
                    None => e.name.to_string(),
                })
                .collect();
            out.push_str(&format!(
                "```\n{}{}\n```\n",
                names.join(", "),
                if a.len() > 40 { ", …" } else { "" }
            ));
        }
        Value::List(l) => {
            // Show the first elements' values, not «thunk»s, as far as the budget allows.
            for item in l.iter().take(PREVIEW_FORCE) {
                if ev.force(item.clone()).is_err() {
                    break;
                }
            }
            out.push_str(&format!(
                "list of {} elements\n\n```nix\n{}\n```\n",
                l.len(),
                clip(&preview(v, &ev.sources), MAX)
            ));
        }
        Value::Lambda(c) => {
            out.push_str("function");
            let doc = {
                let file = ev.sources.file_of(c.lambda.span);
                let offset = (c.lambda.span.low() - file.span.low()) as usize;
                tvix_eval::doc_comment::doc_comment_before(file.source(), offset)
            };
            let text = ev.sources.text(c.lambda.span);
            let header: String = text
                .split_inclusive(':')
                .next()
                .unwrap_or("")
                .chars()
                .take(300)
                .collect();
            out.push_str(&format!("\n\n```nix\n{}\n```\n", header.trim()));
            if let Some(r) = file_range(&ev.sources, c.lambda.span) {
                out.push_str(&format!(
                    "\ndefined at {}:{}\n",
                    r.path.display(),
                    r.start.0 + 1
                ));
            }
            if let Some(doc) = doc {
                out.push('\n');
                out.push_str(&doc);
                out.push('\n');
            }
        }
        Value::PrimOp(app) if app.args.is_empty() => {
            out.push_str(&crate::docs::global_markdown(app.op.name));
            out.push('\n');
        }
        Value::PrimOp(app) => {
            out.push_str(&format!(
                "builtin `{}` ({} of {} arguments given)\n",
                app.op.name,
                app.args.len(),
                app.op.arity
            ));
        }
        other => {
            out.push_str(&format!(
                "{}\n\n```nix\n{}\n```\n",
                other.type_of(),
                clip(&print_value(other), MAX)
            ));
        }
    }
    out
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// An evaluation error as a diagnostic: where in the evaluated file (if there), the rendered
/// message, and the trace frames with their locations.
#[derive(Clone, Debug)]
pub struct EvalDiagnostic {
    /// The byte range in the evaluated text, when the error points into it.
    pub range: Option<(usize, usize)>,
    /// The message as the CLI prints it (without the code frame).
    pub message: String,
    /// Trace frames and the error site in other files.
    pub related: Vec<(FileRange, String)>,
}

/// Renders an error the way the CLI does without `--show-trace` (a deep recursion has
/// thousands of frames; diagnostics carry the first of them as related places).
pub fn render(ev: &Evaluator, e: &EvalError) -> String {
    render_error(
        e,
        &ev.sources,
        RenderOptions {
            show_trace: false,
            color: false,
        },
    )
}

/// How many trace frames an evaluation diagnostic lists.
const MAX_RELATED: usize = 20;

/// Whether an error only says the evaluation was stopped or lacked an argument, rather than
/// that the code is wrong.
pub fn is_inconclusive(e: &EvalError) -> bool {
    matches!(e.kind, ErrorKind::Interrupted)
        || matches!(&e.kind, ErrorKind::Throw(m) if m.starts_with(crate::probe::NO_VALUE))
}

/// Whether an error is a failure the code asks for (`throw`, `abort`, `assert`), which a
/// lazy attribute or list element only reaches when something uses it.
fn is_deliberate(e: &EvalError) -> bool {
    matches!(
        e.kind,
        ErrorKind::Throw(_)
            | ErrorKind::Abort(_)
            | ErrorKind::AssertionFailed(_)
            | ErrorKind::AssertEqual(_)
    )
}

/// Evaluates a whole file (its text as in the editor) deeply, calling it with the workspace
/// arguments if it is a function, and reports the error it ends in. Any error of the value
/// itself (weak head normal form: `let x = 1 + "a"; in x`, `assert false; 1`) is reported;
/// below it, a `throw`, `abort` or `assert` written in this file is not, since attributes
/// are lazy and Nix only fails there when something uses them (`{ a = throw "no"; }`, the
/// way nixpkgs' aliases are written), while a type error or a library's `throw` about an
/// argument from this file is. With an entry file, the entry is evaluated instead
/// (`call_source` is then its argument) and only an error located in this file is reported.
pub fn file_errors(
    session: &mut Session,
    path: &Path,
    text: &str,
    call_source: Option<String>,
    entry: Option<&Path>,
) -> Option<EvalDiagnostic> {
    let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    session.account(text.len());
    let name = path.to_string_lossy().into_owned();
    let ev = session.evaluator();
    let result = (|| {
        // With an entry file, the file is checked as that evaluation uses it (as saved).
        let v = match entry {
            Some(entry) => ev.eval_file(entry),
            None => ev.eval_source(name.clone(), text.to_string(), base.clone()),
        };
        let v = ev.force(v?)?;
        let v = match (&v, call_source) {
            (Value::Lambda(_), Some(arg)) => {
                let arg = ev.eval_source(PROBE_NAME.to_string(), arg, base.clone())?;
                let v = ev.call(v, arg, None)?;
                ev.force(v)?
            }
            _ => v,
        };
        let mut seen = std::collections::HashSet::new();
        force_below(ev, &v, &mut seen, &|ev: &Evaluator, e: &EvalError| {
            is_deliberate(e)
                && e.span
                    .is_some_and(|s| in_text(ev, s, &name, text).is_some())
        })
    })();
    let e = result.err()?;
    if is_inconclusive(&e) {
        return None;
    }
    let in_file = |span: Span| in_text(ev, span, &name, text);
    let mut range = e.span.and_then(in_file);
    if entry.is_some()
        && range.is_none()
        && !e
            .trace
            .iter()
            .filter_map(|f| f.span)
            .any(|s| in_file(s).is_some())
    {
        // The entry's evaluation fails elsewhere: that file reports it.
        return None;
    }
    let mut related = Vec::new();
    if let Some(r) = e.span.and_then(|s| file_range(&ev.sources, s)) {
        if range.is_none() {
            related.push((r, e.kind.to_string()));
        }
    }
    for frame in &e.trace {
        let Some(span) = frame.span else { continue };
        if range.is_none() {
            range = in_file(span);
        }
        if related.len() < MAX_RELATED {
            if let Some(r) = file_range(&ev.sources, span) {
                related.push((r, frame.message.clone()));
            }
        }
    }
    let rendered = render(ev, &e);
    Some(EvalDiagnostic {
        range,
        message: strip_frames(&rendered),
        related,
    })
}

/// The byte range of `span` in `text`, if it points into that text evaluated as `name`.
fn in_text(ev: &Evaluator, span: Span, name: &str, text: &str) -> Option<(usize, usize)> {
    let file = ev.sources.file_of(span);
    if file.name() != name || file.source() != text {
        return None;
    }
    let base = file.span.low();
    Some(((span.low() - base) as usize, (span.high() - base) as usize))
}

/// Forces what `v` (evaluated) holds, as `force_deep` does, except that an attribute or
/// element whose error `skip` accepts is left as it is and the walk goes on with the next.
fn force_below(
    ev: &mut Evaluator,
    v: &Value,
    seen: &mut std::collections::HashSet<usize>,
    skip: &dyn Fn(&Evaluator, &EvalError) -> bool,
) -> Result<(), Box<EvalError>> {
    use tvix_eval::error::AddContext;
    let items: Vec<(Value, Option<Span>, Option<String>)> = match v {
        Value::Attrs(a) if seen.insert(std::rc::Rc::as_ptr(a) as usize) => a
            .iter()
            .map(|e| {
                (
                    e.value.clone(),
                    e.pos.get(),
                    Some(e.name.as_str().to_string()),
                )
            })
            .collect(),
        Value::List(l) if seen.insert(std::rc::Rc::as_ptr(l) as usize) => {
            l.iter().map(|i| (i.clone(), None, None)).collect()
        }
        _ => return Ok(()),
    };
    ev.nested(None, |ev| {
        for (item, pos, name) in items {
            ev.check_interrupt(None)?;
            let inner = match ev.force(item) {
                Ok(inner) => inner,
                Err(e) if skip(ev, &e) => continue,
                // The frame `force_deep` adds (none for list elements).
                Err(e) => match name {
                    Some(n) => {
                        return Err(e)
                            .context(pos, || format!("while evaluating the attribute '{n}'"))
                    }
                    None => return Err(e),
                },
            };
            force_below(ev, &inner, seen, skip)?;
        }
        Ok(())
    })
}

/// The message part of a rendered error: the `error:` line(s) and the trace lines without
/// code frames (the editor shows the places itself).
fn strip_frames(rendered: &str) -> String {
    rendered
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("at ") || t.contains('|') || t.is_empty())
        })
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join("\n")
}
