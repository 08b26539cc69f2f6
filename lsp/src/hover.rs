//! Hover, evaluation-backed go to definition, and inlay hints. The plan (what to show, what
//! to evaluate) is made on the syntax tree; the evaluation runs on the worker within budget.

use std::path::PathBuf;
use std::time::Duration;

use rnix::TextRange;

use crate::analysis::Target;
use crate::config::Settings;
use crate::document::Document;
use crate::evaluate::{self, FileRange};
use crate::targets::{self, Probe};
use crate::worker::Worker;
use crate::{docs, options};

/// What a hover shows.
pub struct HoverPlan {
    static_part: Option<String>,
    probe: Option<Probe>,
    option: Option<(String, Vec<String>)>,
    range: Option<TextRange>,
}

/// Works out the hover at `offset` without evaluating anything.
pub fn plan(doc: &Document, offset: usize, settings: &Settings, _globals: &[String]) -> HoverPlan {
    let an = &doc.analysis;
    let root = doc.root();
    let mut static_part = None;
    let mut range = None;
    if let Some(r) = an.reference_at(offset) {
        range = Some(r.range);
        static_part = match r.target {
            Target::Global => Some(docs::global_markdown(&r.name)),
            Target::Def(d) => Some(docs::binding_markdown(&root, &an.defs[d])),
            Target::With => Some(format!("`{}`: looked up in the enclosing `with`", r.name)),
            Target::Undefined => None,
        };
    } else if let Some(d) = an.definition_at(offset) {
        static_part = Some(docs::binding_markdown(&root, &an.defs[d]));
    }
    let builtin_attr = builtins_attr(doc, offset);
    if let Some(name) = &builtin_attr {
        static_part = Some(docs::global_markdown(name));
    }
    let option = settings.options_expr.as_ref().and_then(|expr| {
        let (mut path, at) = targets::option_path(&root, offset)?;
        let at = at?;
        path.push(targets::attr_name_at(&root, at)?);
        range = Some(at);
        Some((expr.clone(), path))
    });
    // A builtin's value is its documentation, shown already.
    let on_global = builtin_attr.is_some()
        || an
            .reference_at(offset)
            .is_some_and(|r| r.target == Target::Global);
    let probe = if option.is_some() || on_global {
        None
    } else {
        targets::hover_probe(&root, an, offset, &settings.args)
    };
    if range.is_none() {
        range = probe.as_ref().map(|p| p.range);
    }
    HoverPlan {
        static_part,
        probe,
        option,
        range,
    }
}

/// `builtins.NAME` with the cursor on `NAME`.
fn builtins_attr(doc: &Document, offset: usize) -> Option<String> {
    let sel = targets::selected_attr(&doc.root(), offset)?;
    (sel.base == "(builtins)").then_some(sel.name)
}

/// Evaluates what the plan needs and assembles the Markdown.
pub async fn run(
    plan: HoverPlan,
    worker: &Worker,
    budget: Duration,
    base: PathBuf,
) -> Option<(String, Option<TextRange>)> {
    let mut parts: Vec<String> = plan.static_part.into_iter().collect();
    if let Some((expr, path)) = plan.option {
        let shown = path.join(".");
        let found = worker
            .run(budget, move |s| options::option_at(s, &expr, &path))
            .await;
        match found {
            Ok(Ok(Some(info))) => parts.push(info.markdown(&shown)),
            Ok(Err(e)) => parts.push(format!("options unavailable:\n```\n{e}\n```")),
            _ => {}
        }
    }
    if let Some(probe) = plan.probe {
        let label = probe.label.clone();
        let result = worker
            .run(budget, move |s| {
                match evaluate::eval_probe(s, probe.source, &base) {
                    Ok(v) => {
                        let ev = s.evaluator();
                        let mut desc = evaluate::describe(ev, &v);
                        // A function's doc comment is found from the function; for other
                        // values, look where the attribute is defined.
                        if let (false, Some((set, name))) =
                            (matches!(v, tvix_eval::Value::Lambda(_)), probe.attr)
                        {
                            if let Ok(set) = evaluate::eval_probe(s, set, &base) {
                                if let Some(doc) = evaluate::attr_doc(s.evaluator(), &set, &name) {
                                    desc.push('\n');
                                    desc.push_str(&doc);
                                    desc.push('\n');
                                }
                            }
                        }
                        Ok(desc)
                    }
                    Err(e) if matches!(e.kind, tvix_eval::ErrorKind::Interrupted) => Err(Some(
                        "evaluation stopped: it ran out of its time budget (tvix.evalBudgetMs)"
                            .to_string(),
                    )),
                    Err(e) if evaluate::is_inconclusive(&e) => Err(None),
                    Err(e) => Err(Some(e.kind.to_string())),
                }
            })
            .await;
        match result {
            Ok(Ok(desc)) => parts.push(format!("`{}` : {desc}", short(&label))),
            Ok(Err(Some(e))) => parts.push(format!("`{}` fails to evaluate: {e}", short(&label))),
            Ok(Err(None)) => {}
            Err(e) => parts.push(format!("*{e}*")),
        }
    }
    (!parts.is_empty()).then(|| (parts.join("\n\n---\n\n"), plan.range))
}

fn short(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 60 {
        format!("{}…", one_line.chars().take(60).collect::<String>())
    } else {
        one_line
    }
}

/// What evaluation-backed go to definition looks up: sets (as probes) and the attribute
/// name in them, and an option path.
type DefinitionPlan = (Vec<Lookup>, Option<(String, Vec<String>)>);

/// A set to evaluate (probe source and its map to the document) and an attribute to find.
type Lookup = (String, Vec<crate::probe::Segment>, String);

/// Where a definition is.
pub enum Place {
    /// In a file on disk.
    File(FileRange),
    /// In the document itself (byte range).
    Document(usize, usize),
}

fn definition_plan(doc: &Document, offset: usize, settings: &Settings) -> DefinitionPlan {
    let root = doc.root();
    let args = &settings.args;
    let mut lookups: Vec<Lookup> = Vec::new();
    if let Some(sel) = targets::selected_attr(&root, offset) {
        let (source, map) = crate::probe::pruned_probe(&sel.select, &sel.base, args, &doc.analysis);
        lookups.push((source, map, sel.name));
    } else if let Some(r) = doc
        .analysis
        .reference_at(offset)
        .filter(|r| r.target == Target::With)
    {
        for ns in targets::with_namespaces(&root, &doc.analysis, offset, args) {
            lookups.push((ns.source, ns.map, r.name.clone()));
        }
    }
    let option = settings.options_expr.clone().and_then(|expr| {
        let (mut path, at) = targets::option_path(&root, offset)?;
        path.push(targets::attr_name_at(&root, at?)?);
        Some((expr, path))
    });
    (lookups, option)
}

/// Where the attribute or `with` variable under the cursor is defined, by evaluation: the
/// attribute's position as `unsafeGetAttrPos` reports it, or an option's declaration.
pub async fn definition(
    doc: &Document,
    offset: usize,
    settings: &Settings,
    worker: &Worker,
    budget: Duration,
    base: PathBuf,
) -> Option<Place> {
    let (lookups, option) = definition_plan(doc, offset, settings);
    if let Some((expr, path)) = option {
        if let Ok(Ok(Some(info))) = worker
            .run(budget, move |s| options::option_at(s, &expr, &path))
            .await
        {
            if let Some(d) = info.declarations.into_iter().next() {
                return Some(Place::File(d));
            }
        }
    }
    if lookups.is_empty() {
        return None;
    }
    worker
        .run(budget, move |s| {
            for (source, map, name) in lookups {
                let Ok(v) = evaluate::eval_probe(s, source.clone(), &base) else {
                    continue;
                };
                let ev = s.evaluator();
                if let Some(a) = evaluate::attributes(ev, &v)
                    .into_iter()
                    .find(|a| a.name == name)
                {
                    if a.pos.is_some() {
                        // Through an `inherit`, to where the value is defined (which
                        // needs the value).
                        evaluate::force_attr(ev, &v, &name);
                        let span = evaluate::defining_pos(ev, &v, &name)?;
                        return evaluate::file_range(&ev.sources, span).map(Place::File);
                    }
                    // Defined in this document: in the probe's copy of it.
                    let (start, end) = evaluate::attr_span_in_probe(ev, &v, &name, &source)?;
                    let (start, end) = crate::probe::to_document(&map, start, end)?;
                    return Some(Place::Document(start, end));
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
}

/// Values of the `let` bindings in `range`, where evaluating them to weak head normal form is
/// cheap: numbers, Booleans and short strings are shown, other values by type.
pub async fn inlay_hints(
    doc: &Document,
    range: TextRange,
    settings: &Settings,
    worker: &Worker,
    budget: Duration,
    base: PathBuf,
) -> Vec<(usize, String)> {
    let probes = inlay_probes(doc, range, settings);
    if probes.is_empty() {
        return Vec::new();
    }
    worker
        .run(budget, move |s| {
            let mut out = Vec::new();
            for (at, source) in probes {
                let Ok(v) = evaluate::eval_probe(s, source, &base) else {
                    continue;
                };
                let label = match &v {
                    tvix_eval::Value::Int(_)
                    | tvix_eval::Value::Bool(_)
                    | tvix_eval::Value::Float(_)
                    | tvix_eval::Value::Null => tvix_eval::value::print::print_value(&v),
                    tvix_eval::Value::String(st) if st.as_bytes().len() <= 30 => {
                        tvix_eval::value::print::print_value(&v)
                    }
                    other => other.type_of().to_string(),
                };
                out.push((at, format!(": {label}")));
            }
            out
        })
        .await
        .unwrap_or_default()
}

/// The `let` bindings in `range` worth a hint (not literals, functions, sets or lists, whose
/// value is plain to see or too big), with probes for their values.
fn inlay_probes(doc: &Document, range: TextRange, settings: &Settings) -> Vec<(usize, String)> {
    use rnix::ast::{self, HasEntry};
    use rowan::ast::AstNode;
    const MAX: usize = 30;
    let root = doc.root();
    let mut probes = Vec::new();
    for l in root.descendants().filter_map(ast::LetIn::cast) {
        for kv in l.attrpath_values() {
            if probes.len() >= MAX || kv.syntax().text_range().intersect(range).is_none() {
                continue;
            }
            let (Some(path), Some(value)) = (kv.attrpath(), kv.value()) else {
                continue;
            };
            if matches!(
                value,
                ast::Expr::Literal(_)
                    | ast::Expr::Str(_)
                    | ast::Expr::Lambda(_)
                    | ast::Expr::AttrSet(_)
                    | ast::Expr::List(_)
            ) {
                continue;
            }
            let text = value.syntax().text().to_string();
            let (source, _) =
                crate::probe::pruned_probe(value.syntax(), &text, &settings.args, &doc.analysis);
            probes.push((usize::from(path.syntax().text_range().end()), source));
        }
    }
    probes
}
