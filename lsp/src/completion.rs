//! Completion: names in scope and builtins (static), attributes after `.` and names of
//! enclosing `with` namespaces (evaluated), option names in module files (from the
//! workspace's `optionsExpr`).

use std::path::PathBuf;
use std::time::Duration;

use rnix::TextRange;
use tower_lsp_server::ls_types::{
    CompletionItem, CompletionItemKind, CompletionTextEdit, Documentation, MarkupContent,
    MarkupKind, TextEdit,
};

use crate::analysis::DefKind;
use crate::config::Settings;
use crate::document::Document;
use crate::targets::{self, Probe};
use crate::worker::Worker;
use crate::{docs, evaluate, options};

const KEYWORDS: &[&str] = &[
    "let", "in", "with", "rec", "inherit", "if", "then", "else", "assert", "or",
];

/// What to complete at a position.
pub enum CompletionPlan {
    /// Attributes of an evaluated set, replacing `range`.
    Attributes(Probe, TextRange),
    /// Options below a path.
    Options { expr: String, path: Vec<String> },
    /// Names in scope, plus the names of the enclosing `with` namespaces.
    Scope {
        items: Vec<CompletionItem>,
        withs: Vec<Probe>,
    },
}

/// Works out the completion at `offset` without evaluating anything.
pub fn plan(
    uri: &str,
    doc: &Document,
    offset: usize,
    settings: &Settings,
    globals: &[String],
) -> CompletionPlan {
    if let Some((probe, range)) = targets::dot_completion(&doc.text, offset, &settings.args) {
        return CompletionPlan::Attributes(probe, range);
    }
    let root = doc.root();
    if let Some(expr) = &settings.options_expr {
        if let Some(path) = targets::option_completion_path(&doc.text, offset) {
            return CompletionPlan::Options {
                expr: expr.clone(),
                path,
            };
        }
    }
    let mut items = Vec::new();
    for d in doc.analysis.visible_at(offset) {
        let def = &doc.analysis.defs[d];
        items.push(CompletionItem {
            label: def.name.clone(),
            kind: Some(match def.kind {
                DefKind::Formal | DefKind::LambdaArg => CompletionItemKind::VARIABLE,
                DefKind::Let => CompletionItemKind::VARIABLE,
                DefKind::RecAttr => CompletionItemKind::FIELD,
            }),
            detail: Some(def.kind.describe().to_string()),
            // Doc comments are looked up when the item is resolved (one parse each).
            data: Some(serde_json::json!({"uri": uri, "version": doc.version, "def": d})),
            sort_text: Some(format!("0{}", def.name)),
            ..CompletionItem::default()
        });
    }
    for name in globals.iter().filter(|n| !n.starts_with("__")) {
        items.push(CompletionItem {
            label: name.clone(),
            kind: Some(CompletionItemKind::FUNCTION),
            detail: Some("builtin".to_string()),
            documentation: markdown(docs::global_markdown(name)),
            sort_text: Some(format!("2{name}")),
            ..CompletionItem::default()
        });
    }
    for k in KEYWORDS {
        items.push(CompletionItem {
            label: k.to_string(),
            kind: Some(CompletionItemKind::KEYWORD),
            sort_text: Some(format!("3{k}")),
            ..CompletionItem::default()
        });
    }
    let withs = targets::with_namespaces(&root, &doc.analysis, offset, &settings.args);
    CompletionPlan::Scope { items, withs }
}

fn markdown(value: String) -> Option<Documentation> {
    Some(Documentation::MarkupContent(MarkupContent {
        kind: MarkupKind::Markdown,
        value,
    }))
}

/// Evaluates what the plan needs and returns the items.
pub async fn run(
    plan: CompletionPlan,
    doc: &Document,
    worker: &Worker,
    budget: Duration,
    base: PathBuf,
) -> Vec<CompletionItem> {
    match plan {
        CompletionPlan::Attributes(probe, range) => {
            let edit_range = doc.range(range);
            let attrs = worker
                .run(budget, move |s| {
                    let v = evaluate::eval_probe(s, probe.source, &base).ok()?;
                    let ev = s.evaluator();
                    Some(evaluate::attributes(ev, &v))
                })
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            attrs
                .into_iter()
                .map(|a| {
                    let name = crate::actions::attr_name(&a.name);
                    CompletionItem {
                        label: a.name.clone(),
                        kind: Some(match a.kind {
                            Some("lambda") => CompletionItemKind::FUNCTION,
                            Some("set") => CompletionItemKind::MODULE,
                            _ => CompletionItemKind::FIELD,
                        }),
                        detail: a.kind.map(str::to_string),
                        // The doc comment is read when the item is resolved: reading it for
                        // every attribute of a large set would slow the list down.
                        data: a.pos.as_ref().map(|p| {
                            serde_json::json!({"path": p.path, "line": p.start.0, "column": p.start.1})
                        }),
                        text_edit: Some(CompletionTextEdit::Edit(TextEdit {
                            range: edit_range,
                            new_text: name,
                        })),
                        ..CompletionItem::default()
                    }
                })
                .collect()
        }
        CompletionPlan::Options { expr, path } => {
            let shown = path.join(".");
            let found = worker
                .run(budget, move |s| options::children(s, &expr, &path))
                .await;
            let Ok(Ok(found)) = found else {
                return Vec::new();
            };
            found
                .into_iter()
                .map(|o| {
                    let full = if shown.is_empty() {
                        o.name.clone()
                    } else {
                        format!("{shown}.{}", o.name)
                    };
                    CompletionItem {
                        label: o.name.clone(),
                        kind: Some(if o.is_option {
                            CompletionItemKind::PROPERTY
                        } else {
                            CompletionItemKind::MODULE
                        }),
                        detail: o
                            .type_desc
                            .clone()
                            .or_else(|| (!o.is_option).then(|| "option set".to_string())),
                        documentation: markdown(o.markdown(&full)),
                        ..CompletionItem::default()
                    }
                })
                .collect()
        }
        CompletionPlan::Scope { mut items, withs } => {
            if !withs.is_empty() {
                let names = worker
                    .run(budget, move |s| {
                        let mut out = Vec::new();
                        for probe in withs {
                            if let Ok(v) = evaluate::eval_probe(s, probe.source, &base) {
                                let ev = s.evaluator();
                                out.extend(
                                    evaluate::attributes(ev, &v)
                                        .into_iter()
                                        .map(|a| (a, probe.label.clone())),
                                );
                            }
                        }
                        out
                    })
                    .await
                    .unwrap_or_default();
                for (a, ns) in names {
                    if items.iter().any(|i| i.label == a.name) {
                        continue;
                    }
                    items.push(CompletionItem {
                        label: a.name.clone(),
                        kind: Some(CompletionItemKind::FIELD),
                        detail: Some(format!("from `with {ns};`")),
                        sort_text: Some(format!("1{}", a.name)),
                        ..CompletionItem::default()
                    });
                }
            }
            items
        }
    }
}

/// Adds the documentation of an item: an attribute's doc comment where it is defined, or a
/// binding's in `doc` (the document the item came from, if still at that version).
pub fn resolve(mut item: CompletionItem, doc: Option<&Document>) -> CompletionItem {
    let Some(data) = item.data.clone() else {
        return item;
    };
    let place = (|| {
        Some(crate::evaluate::FileRange {
            path: data.get("path")?.as_str()?.into(),
            start: (
                data.get("line")?.as_u64()? as u32,
                data.get("column")?.as_u64()? as u32,
            ),
            end: (0, 0),
        })
    })();
    if let Some(place) = place {
        item.documentation = markdown(docs::attribute_markdown(&item.label, &place));
        return item;
    }
    let def = data.get("def").and_then(|d| d.as_u64());
    let version = data.get("version").and_then(|v| v.as_i64());
    if let (Some(doc), Some(def), Some(version)) = (doc, def, version) {
        if i64::from(doc.version) == version {
            if let Some(def) = doc.analysis.defs.get(def as usize) {
                item.documentation = markdown(docs::binding_markdown(&doc.root(), def));
            }
        }
    }
    item
}
