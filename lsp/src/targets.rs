//! What an evaluation-backed request evaluates, worked out on the syntax tree: the expression
//! under the cursor, the set an attribute is selected from, the namespaces of enclosing
//! `with`s, the base of an attribute path being completed. Each comes out as probe source
//! (see [`crate::probe`]), plain text that can be sent to the evaluation worker.

use std::collections::BTreeMap;

use rnix::ast::{self, HasEntry};
use rnix::{SyntaxKind, SyntaxNode, SyntaxToken, TextRange};
use rowan::ast::AstNode;

use crate::analysis::Analysis;
use crate::probe::probe_source;

/// A probe: the source to evaluate and the range of the code it stands for.
#[derive(Clone, Debug)]
pub struct Probe {
    /// Nix source.
    pub source: String,
    /// The text it evaluates (for display).
    pub label: String,
    /// The range in the document.
    pub range: TextRange,
    /// For an attribute of a selection: a probe for the set and the attribute's name, whose
    /// definition has the doc comment.
    pub attr: Option<(String, String)>,
    /// Which parts of `source` are copies of the document.
    pub map: Vec<crate::probe::Segment>,
}

fn token_at(root: &SyntaxNode, offset: usize) -> Option<SyntaxToken> {
    let at = crate::tree::token_at_offset(root, offset);
    // Prefer the identifier-like token when the cursor sits between two tokens.
    let pick = |t: &SyntaxToken| {
        matches!(
            t.kind(),
            SyntaxKind::TOKEN_IDENT | SyntaxKind::TOKEN_STRING_CONTENT
        )
    };
    match at {
        rowan::TokenAtOffset::Between(l, r) => Some(if pick(&r) || !pick(&l) { r } else { l }),
        rowan::TokenAtOffset::Single(t) => Some(t),
        rowan::TokenAtOffset::None => None,
    }
}

/// The position of an attribute inside a selection: `base.a.b` with the cursor on `b` gives
/// the `Select` node, the text of `base.a` and the name `b`.
pub struct SelectedAttr {
    /// The selection expression.
    pub select: SyntaxNode,
    /// Nix text of the set the attribute is taken from.
    pub base: String,
    /// The attribute's name.
    pub name: String,
    /// The attribute name's range.
    pub range: TextRange,
}

/// The attribute under the cursor in `e.a.b` (a selection) or `inherit (e) a;`.
pub fn selected_attr(root: &SyntaxNode, offset: usize) -> Option<SelectedAttr> {
    let token = token_at(root, offset)?;
    let attr_node = token.parent_ancestors().find(|n| {
        n.parent().is_some_and(|p| {
            matches!(
                p.kind(),
                SyntaxKind::NODE_ATTRPATH | SyntaxKind::NODE_INHERIT
            )
        })
    })?;
    let parent = attr_node.parent()?;
    let name =
        ast::Attr::cast(attr_node.clone()).and_then(|a| crate::analysis::static_attr_name(&a))?;
    if let Some(inh) = ast::Inherit::cast(parent.clone()) {
        let from = inh.from()?.expr()?;
        return Some(SelectedAttr {
            select: inh.syntax().clone(),
            base: from.syntax().text().to_string(),
            name,
            range: attr_node.text_range(),
        });
    }
    let select = parent
        .parent()
        .filter(|s| s.kind() == SyntaxKind::NODE_SELECT)?;
    let sel = ast::Select::cast(select.clone())?;
    let mut base = format!("({})", sel.expr()?.syntax().text());
    for a in sel.attrpath()?.attrs() {
        if a.syntax() == &attr_node {
            break;
        }
        base.push('.');
        base.push_str(&a.syntax().text().to_string());
    }
    Some(SelectedAttr {
        select,
        base,
        name,
        range: attr_node.text_range(),
    })
}

/// The probe for the value of the expression under the cursor: a variable, an attribute of a
/// selection (up to that attribute), a binding's value (on its name), a formal, or the
/// smallest enclosing expression. The probe keeps only the bindings around it that it needs
/// (`analysis` is the document's).
pub fn hover_probe(
    root: &SyntaxNode,
    analysis: &Analysis,
    offset: usize,
    args: &BTreeMap<String, String>,
) -> Option<Probe> {
    let probe_source = |target: &SyntaxNode, replacement: &str| {
        crate::probe::pruned_probe(target, replacement, args, analysis).0
    };
    if let Some(sel) = selected_attr(root, offset) {
        let label = format!("{}.{}", sel.base, crate::actions::attr_name(&sel.name));
        return Some(Probe {
            source: probe_source(&sel.select, &label),
            label,
            range: sel.range,
            attr: Some((probe_source(&sel.select, &sel.base), sel.name)),
            map: Vec::new(),
        });
    }
    let token = token_at(root, offset)?;
    // Comments, blanks and string text have no value of their own to show.
    if matches!(
        token.kind(),
        SyntaxKind::TOKEN_COMMENT | SyntaxKind::TOKEN_WHITESPACE | SyntaxKind::TOKEN_STRING_CONTENT
    ) {
        return None;
    }
    let parent = token.parent()?;
    // The name of a binding: its value.
    if let Some(kv) = parent.ancestors().find_map(|n| {
        let p = n.parent()?;
        (n.kind() == SyntaxKind::NODE_ATTRPATH)
            .then_some(p)
            .and_then(ast::AttrpathValue::cast)
    }) {
        let value = kv.value()?;
        let text = value.syntax().text().to_string();
        return Some(Probe {
            source: probe_source(value.syntax(), &text),
            label: kv.attrpath()?.syntax().text().to_string(),
            range: kv.attrpath()?.syntax().text_range(),
            attr: None,
            map: Vec::new(),
        });
    }
    // A formal or `x:` parameter: its value inside the function.
    if let Some(lambda) = parent
        .ancestors()
        .find(|n| {
            matches!(
                n.kind(),
                SyntaxKind::NODE_PAT_ENTRY
                    | SyntaxKind::NODE_IDENT_PARAM
                    | SyntaxKind::NODE_PAT_BIND
            )
        })
        .and_then(|n| n.ancestors().find_map(ast::Lambda::cast))
    {
        if token.kind() == SyntaxKind::TOKEN_IDENT {
            let body = lambda.body()?;
            let name = token.text().to_string();
            return Some(Probe {
                source: probe_source(body.syntax(), &name),
                label: name,
                range: token.text_range(),
                attr: None,
                map: Vec::new(),
            });
        }
    }
    let expr = parent.ancestors().find(|n| {
        ast::Expr::cast(n.clone()).is_some()
            && !matches!(
                n.kind(),
                SyntaxKind::NODE_ROOT
                    | SyntaxKind::NODE_ATTR_SET
                    | SyntaxKind::NODE_LET_IN
                    | SyntaxKind::NODE_LAMBDA
                    | SyntaxKind::NODE_WITH
                    | SyntaxKind::NODE_LITERAL
                    | SyntaxKind::NODE_STRING
            )
    })?;
    let text = expr.text().to_string();
    Some(Probe {
        source: probe_source(&expr, &text),
        label: text,
        range: expr.text_range(),
        attr: None,
        map: Vec::new(),
    })
}

/// Probes for the namespaces of the `with`s around `offset`, innermost first.
pub fn with_namespaces(
    root: &SyntaxNode,
    analysis: &Analysis,
    offset: usize,
    args: &BTreeMap<String, String>,
) -> Vec<Probe> {
    let Some(token) = token_at(root, offset) else {
        return Vec::new();
    };
    token
        .parent_ancestors()
        .filter_map(ast::With::cast)
        .filter(|w| {
            w.body().is_some_and(|b| {
                b.syntax()
                    .text_range()
                    .contains_inclusive((offset as u32).into())
            })
        })
        .filter_map(|w| {
            let ns = w.namespace()?;
            let text = ns.syntax().text().to_string();
            let (source, map) = crate::probe::pruned_probe(ns.syntax(), &text, args, analysis);
            Some(Probe {
                source,
                label: text,
                range: ns.syntax().text_range(),
                attr: None,
                map,
            })
        })
        .collect()
}

/// A name used inside a `with` that is bound lexically (or built in): if the `with`'s namespace
/// has it too, the namespace's attribute is not what the name means.
pub struct ShadowCandidate {
    /// The name.
    pub name: String,
    /// Where it is used.
    pub range: TextRange,
    /// What it refers to (`the let binding`, `the builtin`).
    pub refers_to: String,
}

/// For each `with` (at most `max`), a probe for its namespace and the names in its body that
/// are bound lexically or built in.
pub fn with_shadow_candidates(
    root: &SyntaxNode,
    analysis: &crate::analysis::Analysis,
    args: &BTreeMap<String, String>,
    max: usize,
) -> Vec<(Probe, Vec<ShadowCandidate>)> {
    use crate::analysis::Target;
    let mut out = Vec::new();
    for w in root.descendants().filter_map(ast::With::cast) {
        if out.len() >= max {
            break;
        }
        let range = w.syntax().text_range();
        let names: Vec<ShadowCandidate> = analysis
            .refs
            .iter()
            .filter(|r| r.under_with == Some(range))
            .filter_map(|r| {
                let refers_to = match r.target {
                    Target::Global => "the builtin".to_string(),
                    Target::Def(d) => format!("the {}", analysis.defs[d].kind.describe()),
                    _ => return None,
                };
                Some(ShadowCandidate {
                    name: r.name.clone(),
                    range: r.range,
                    refers_to,
                })
            })
            .collect();
        let Some(ns) = w.namespace() else { continue };
        if names.is_empty() {
            continue;
        }
        let text = ns.syntax().text().to_string();
        out.push((
            Probe {
                source: crate::probe::pruned_probe(ns.syntax(), &text, args, analysis).0,
                label: text,
                range: ns.syntax().text_range(),
                attr: None,
                map: Vec::new(),
            },
            names,
        ));
    }
    out
}

/// The set whose attributes complete `base.pre|` at the cursor: the probe for `base`, and the
/// range of the partial name `pre` (to be replaced).
pub fn dot_completion(
    text: &str,
    offset: usize,
    args: &BTreeMap<String, String>,
) -> Option<(Probe, TextRange)> {
    text.get(..offset)?;
    let (start, end) = word_around(text, offset);
    if !text[..start].ends_with('.') {
        return None;
    }
    const DUMMY: &str = "__tvixComplete";
    for filler in [DUMMY.to_string(), format!("{DUMMY};")] {
        let patched = format!("{}{filler}{}", &text[..start], &text[end..]);
        let root = rnix::Root::parse(&patched).syntax();
        let Some(sel) = selected_attr(&root, start + 1) else {
            continue;
        };
        if sel.name != DUMMY {
            continue;
        }
        // The scopes around must have survived the patch without errors.
        let source = probe_source(&sel.select, &sel.base, args);
        if rnix::Root::parse(&source).errors().is_empty() {
            let range = TextRange::new((start as u32).into(), (end as u32).into());
            return Some((
                Probe {
                    source,
                    label: sel.base,
                    range,
                    attr: None,
                    map: Vec::new(),
                },
                range,
            ));
        }
    }
    None
}

/// The extent of the identifier (or partial one) around `offset`.
fn word_around(text: &str, offset: usize) -> (usize, usize) {
    let is_word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\'');
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map(|(i, _)| i)
        .unwrap_or(offset);
    let end = text[offset..]
        .char_indices()
        .find(|(_, c)| !is_word(*c))
        .map(|(i, _)| offset + i)
        .unwrap_or(text.len());
    (start, end)
}

/// The option path whose children complete the name at the cursor in a module. The name being
/// typed is replaced by a whole binding first, so that `services.web.` or a bare `serv`
/// (which do not parse as bindings yet) are seen as the binding they will become.
pub fn option_completion_path(text: &str, offset: usize) -> Option<Vec<String>> {
    const DUMMY: &str = "__tvixComplete = null;";
    let (start, end) = word_around(text, offset);
    let patched = format!("{}{DUMMY}{}", &text[..start], &text[end..]);
    let root = rnix::Root::parse(&patched).syntax();
    match option_path(&root, start + 1) {
        Some((path, Some(_))) => Some(path),
        _ => option_path(&rnix::Root::parse(text).syntax(), offset).map(|(p, _)| p),
    }
}

/// Names bound by the sets and `let`s a module's value is written in, from the module's top
/// set down to the binding at the cursor: the option path being defined there. `None` when the
/// cursor is not inside a module's configuration.
pub fn option_path(root: &SyntaxNode, offset: usize) -> Option<(Vec<String>, Option<TextRange>)> {
    let mut body = ast::Root::cast(root.clone())?.expr()?;
    if let ast::Expr::Lambda(l) = &body {
        body = l.body()?;
    }
    let ast::Expr::AttrSet(top) = strip(body)? else {
        return None;
    };
    let has_config_section = top
        .attrpath_values()
        .any(|kv| first_name(&kv).is_some_and(|n| n == "config" || n == "options"));
    let mut path = Vec::new();
    let mut set = top;
    let mut at_top = true;
    'descend: loop {
        for kv in set.attrpath_values() {
            let range = kv.syntax().text_range();
            if !range.contains_inclusive((offset as u32).into()) {
                continue;
            }
            let names: Vec<(String, TextRange)> = kv
                .attrpath()?
                .attrs()
                .map(|a| {
                    (
                        crate::analysis::static_attr_name(&a).unwrap_or_default(),
                        a.syntax().text_range(),
                    )
                })
                .collect();
            let mut names_iter = names.into_iter();
            if at_top && has_config_section {
                let (first, _) = names_iter.next()?;
                if first != "config" {
                    return None;
                }
            } else if at_top
                && names_iter.as_slice().first().is_some_and(|(n, _)| {
                    matches!(
                        n.as_str(),
                        "imports" | "options" | "_file" | "key" | "meta" | "disabledModules"
                    )
                })
            {
                return None;
            }
            at_top = false;
            for (name, r) in names_iter {
                if r.contains_inclusive((offset as u32).into()) {
                    return Some((path, Some(r)));
                }
                path.push(name);
            }
            let value = kv.value()?;
            if value
                .syntax()
                .text_range()
                .contains_inclusive((offset as u32).into())
            {
                if let Some(inner) = innermost_set(value, offset) {
                    set = inner;
                    continue 'descend;
                }
                return None;
            }
            return Some((path, None));
        }
        // Inside the set but not in a binding: a new name is being typed.
        return Some((path, None));
    }
}

fn first_name(kv: &ast::AttrpathValue) -> Option<String> {
    crate::analysis::static_attr_name(&kv.attrpath()?.attrs().next()?)
}

fn strip(e: ast::Expr) -> Option<ast::Expr> {
    match e {
        ast::Expr::Paren(p) => strip(p.expr()?),
        ast::Expr::LetIn(l) => strip(l.body()?),
        ast::Expr::With(w) => strip(w.body()?),
        e => Some(e),
    }
}

/// The set literal holding the cursor, looking through `mkIf c { }`, `mkMerge [ ]`, parens.
fn innermost_set(e: ast::Expr, offset: usize) -> Option<ast::AttrSet> {
    let inside = |n: &SyntaxNode| n.text_range().contains_inclusive((offset as u32).into());
    match strip(e)? {
        ast::Expr::AttrSet(s) if s.rec_token().is_none() => Some(s),
        ast::Expr::Apply(a) => {
            let arg = a.argument()?;
            if inside(arg.syntax()) {
                innermost_set(arg, offset)
            } else {
                innermost_set(a.lambda()?, offset)
            }
        }
        ast::Expr::List(l) => l
            .items()
            .find(|i| inside(i.syntax()))
            .and_then(|i| innermost_set(i, offset)),
        _ => None,
    }
}

/// The static name of the attribute whose range is `range` (from [`option_path`]).
pub fn attr_name_at(root: &SyntaxNode, range: TextRange) -> Option<String> {
    let node = match root.covering_element(range) {
        rowan::NodeOrToken::Node(n) => n,
        rowan::NodeOrToken::Token(t) => t.parent()?,
    };
    let attr = node.ancestors().find_map(ast::Attr::cast)?;
    crate::analysis::static_attr_name(&attr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_option_paths_in_modules() {
        let src = "{ lib, ... }: { imports = [ ]; config = lib.mkIf true { services.web.port = 80; networking = { }; }; }";
        let root = rnix::Root::parse(src).syntax();
        let (p, _) = option_path(&root, src.find("port =").unwrap() + 1).unwrap();
        assert_eq!(p, vec!["services", "web"]);
        let (p, _) = option_path(&root, src.find("{ }").unwrap() + 1).unwrap();
        assert_eq!(p, vec!["networking"]);
        assert!(option_path(&root, src.find("[ ]").unwrap() + 1).is_none());
    }

    #[test]
    fn completes_option_names_being_typed() {
        let path =
            |src: &str| option_completion_path(src, src.find('|').unwrap()).map(|p| p.join("."));
        assert_eq!(
            path("{ ... }: { services.web.| }"),
            Some("services.web".to_string())
        );
        assert_eq!(
            path("{ ... }: { config.services.|\n foo = 1; }"),
            Some("services".to_string())
        );
        assert_eq!(path("{ ... }: { serv| }"), Some(String::new()));
        assert_eq!(path("{ ... }: { x = foo|; }"), None);
    }

    #[test]
    fn completes_after_a_dot_in_broken_text() {
        let src = "let lib = { a = 1; }; in { x = lib.\n; }";
        let (probe, range) =
            dot_completion(src, src.find("lib.").unwrap() + 4, &BTreeMap::new()).unwrap();
        assert_eq!(probe.label, "(lib)");
        assert!(
            probe.source.starts_with("let lib = { a = 1; }; in"),
            "{}",
            probe.source
        );
        assert!(range.is_empty());
    }
}
