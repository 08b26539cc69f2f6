//! Code actions on the syntax tree: quote or unquote an attribute name, turn `a = a;` into
//! `inherit a;` (and `a = x.a;` into `inherit (x) a;`), add a missing formal for an undefined
//! variable, remove an unused `let` binding.

use rnix::ast::{self, HasEntry};
use rnix::{SyntaxKind, SyntaxNode, TextRange};
use rowan::ast::AstNode;
use tvix_eval::value::print::{is_plain_identifier, write_attr_name};

use crate::analysis::{static_string, Analysis, DefKind, Target};

/// A proposed edit of the document.
#[derive(Clone, Debug)]
pub struct Action {
    /// The title shown in the editor.
    pub title: String,
    /// Whether it fixes a diagnostic (a quick fix) rather than refactors.
    pub quick_fix: bool,
    /// The edits, non-overlapping.
    pub edits: Vec<(TextRange, String)>,
}

/// The actions available for the selection `range`.
pub fn actions(root: &SyntaxNode, analysis: &Analysis, range: TextRange) -> Vec<Action> {
    let mut out = Vec::new();
    // A bare cursor means the token after it, not the whitespace or node around it.
    let element = if range.is_empty() {
        crate::tree::token_at_offset(root, range.start().into())
            .right_biased()
            .map(rowan::NodeOrToken::Token)
    } else {
        Some(root.covering_element(range))
    };
    let node = match element {
        Some(rowan::NodeOrToken::Node(n)) => n,
        Some(rowan::NodeOrToken::Token(t)) => match t.parent() {
            Some(p) => p,
            None => return out,
        },
        None => return out,
    };
    quote_actions(&node, &mut out);
    inherit_actions(&node, &mut out);
    missing_formal_actions(root, analysis, range, &mut out);
    unused_let_actions(root, analysis, range, &mut out);
    out
}

fn quote_actions(node: &SyntaxNode, out: &mut Vec<Action>) {
    let Some(attr) = node
        .ancestors()
        .take_while(|n| n.kind() != SyntaxKind::NODE_ATTRPATH_VALUE)
        .find(|n| {
            n.parent()
                .is_some_and(|p| p.kind() == SyntaxKind::NODE_ATTRPATH)
        })
    else {
        return;
    };
    match attr.kind() {
        SyntaxKind::NODE_IDENT => out.push(Action {
            title: format!("Quote attribute name '{}'", attr.text()),
            quick_fix: false,
            edits: vec![(attr.text_range(), format!("\"{}\"", attr.text()))],
        }),
        SyntaxKind::NODE_STRING => {
            let Some(name) = ast::Str::cast(attr.clone()).and_then(|s| static_string(&s)) else {
                return;
            };
            if is_plain_identifier(&name) {
                out.push(Action {
                    title: format!("Unquote attribute name '{name}'"),
                    quick_fix: false,
                    edits: vec![(attr.text_range(), name)],
                });
            }
        }
        _ => {}
    }
}

fn inherit_actions(node: &SyntaxNode, out: &mut Vec<Action>) {
    let Some(kv) = node.ancestors().find_map(ast::AttrpathValue::cast) else {
        return;
    };
    let attrs: Vec<_> = kv
        .attrpath()
        .map(|p| p.attrs().collect())
        .unwrap_or_default();
    let [ast::Attr::Ident(name)] = attrs.as_slice() else {
        return;
    };
    let name = name.syntax().text().to_string();
    let replacement = match kv.value() {
        Some(ast::Expr::Ident(v)) if v.syntax().text() == name.as_str() => {
            format!("inherit {name};")
        }
        Some(ast::Expr::Select(sel)) if sel.default_expr().is_none() => {
            let path: Vec<_> = sel
                .attrpath()
                .map(|p| p.attrs().collect())
                .unwrap_or_default();
            let Some((ast::Attr::Ident(last), init)) = path.split_last() else {
                return;
            };
            if last.syntax().text() != name.as_str() {
                return;
            }
            let Some(base) = sel.expr() else { return };
            let mut from = base.syntax().text().to_string();
            for a in init {
                from.push('.');
                from.push_str(&a.syntax().text().to_string());
            }
            format!("inherit ({from}) {name};")
        }
        _ => return,
    };
    // `a = a;` in a `let` or `rec` set is infinite recursion, not an inherit: only plain sets.
    let in_recursive = kv.syntax().parent().is_some_and(|p| {
        p.kind() == SyntaxKind::NODE_LET_IN
            || ast::AttrSet::cast(p).is_some_and(|s| s.rec_token().is_some())
    });
    if in_recursive && replacement.starts_with("inherit ") && !replacement.contains('(') {
        return;
    }
    out.push(Action {
        title: format!("Replace with `{replacement}`"),
        quick_fix: false,
        edits: vec![(kv.syntax().text_range(), replacement)],
    });
}

fn missing_formal_actions(
    root: &SyntaxNode,
    analysis: &Analysis,
    range: TextRange,
    out: &mut Vec<Action>,
) {
    for r in &analysis.refs {
        if r.target != Target::Undefined || r.range.intersect(range).is_none() {
            continue;
        }
        let token_node = match root.covering_element(r.range) {
            rowan::NodeOrToken::Node(n) => n,
            rowan::NodeOrToken::Token(t) => match t.parent() {
                Some(p) => p,
                None => continue,
            },
        };
        let Some(pattern) = token_node
            .ancestors()
            .filter_map(ast::Lambda::cast)
            .find_map(|l| match l.param() {
                Some(ast::Param::Pattern(p)) => Some(p),
                _ => None,
            })
        else {
            continue;
        };
        let entries: Vec<_> = pattern.pat_entries().collect();
        let edit = if let Some(ellipsis) = pattern.ellipsis_token() {
            (
                TextRange::empty(ellipsis.text_range().start()),
                format!("{}, ", r.name),
            )
        } else if let Some(last) = entries.last() {
            (
                TextRange::empty(last.syntax().text_range().end()),
                format!(", {}", r.name),
            )
        } else {
            let Some(open) = pattern.syntax().first_token() else {
                continue;
            };
            (
                TextRange::empty(open.text_range().end()),
                format!(" {} ", r.name),
            )
        };
        out.push(Action {
            title: format!("Add formal '{}' to the function's arguments", r.name),
            quick_fix: true,
            edits: vec![edit],
        });
    }
}

fn unused_let_actions(
    root: &SyntaxNode,
    analysis: &Analysis,
    range: TextRange,
    out: &mut Vec<Action>,
) {
    for d in &analysis.defs {
        if d.kind != DefKind::Let || !d.uses.is_empty() || d.sites.len() != 1 {
            continue;
        }
        if d.sites[0].intersect(range).is_none() {
            continue;
        }
        // Only whole `name = value;` bindings; a name among several in an `inherit` stays.
        let Some(kv) = root
            .covering_element(d.binding)
            .into_node()
            .and_then(ast::AttrpathValue::cast)
        else {
            continue;
        };
        let Some(let_in) = kv.syntax().parent().and_then(ast::LetIn::cast) else {
            continue;
        };
        let edit = if let_in.entries().count() == 1 {
            // The last binding: the whole `let ... in` goes, the body stays.
            let Some(body) = let_in.body() else { continue };
            (
                let_in.syntax().text_range(),
                body.syntax().text().to_string(),
            )
        } else {
            (kv.syntax().text_range(), String::new())
        };
        out.push(Action {
            title: format!("Remove unused binding '{}'", d.name),
            quick_fix: true,
            edits: vec![edit],
        });
    }
}

/// `name` as an attribute name (quoted when it is not an identifier).
pub fn attr_name(name: &str) -> String {
    let mut s = String::new();
    write_attr_name(name, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyse;

    fn titles(src: &str, at: &str) -> Vec<(String, String)> {
        let root = rnix::Root::parse(src).syntax();
        let an = analyse(&root, &|_| false);
        let o = src.find(at).unwrap() as u32;
        actions(&root, &an, TextRange::new(o.into(), (o + 1).into()))
            .into_iter()
            .map(|a| {
                let mut s = src.to_string();
                for (r, t) in a.edits.iter().rev() {
                    s.replace_range(usize::from(r.start())..usize::from(r.end()), t);
                }
                (a.title, s)
            })
            .collect()
    }

    #[test]
    fn offers_quote_inherit_formal_and_removal() {
        let t = titles("x: { a = a; }", "a =");
        assert!(t.iter().any(|(_, s)| s == "x: { inherit a; }"), "{t:?}");
        assert!(t.iter().any(|(_, s)| s == "x: { \"a\" = a; }"), "{t:?}");
        let t = titles("{ \"b\" = x.y.b; }", "\"b\"");
        assert!(t.iter().any(|(_, s)| s == "{ b = x.y.b; }"), "{t:?}");
        let t = titles("{ b = x.y.b; }", "b =");
        assert!(t.iter().any(|(_, s)| s == "{ inherit (x.y) b; }"), "{t:?}");
        let t = titles("{ a, ... }: a + zz", "zz");
        assert!(
            t.iter().any(|(_, s)| s == "{ a, zz, ... }: a + zz"),
            "{t:?}"
        );
        let t = titles("let u = 1; v = 2; in v", "u =");
        assert!(t.iter().any(|(_, s)| s == "let  v = 2; in v"), "{t:?}");
        assert!(titles("let a = a; in a", "a =")
            .iter()
            .all(|(t, _)| !t.contains("inherit")));
    }
}
