//! Probes: Nix source whose value is the value of one sub-expression of a file, in that
//! sub-expression's scope. The scopes around it are rebuilt from the file's own text (`let`
//! bindings, `rec` sets, `with`s, function parameters, the latter applied to the configured
//! arguments), so hover and completion can evaluate any expression without the evaluator
//! recording values by position.

use std::collections::BTreeMap;

use rnix::ast::{self, HasEntry};
use rnix::{SyntaxKind, SyntaxNode};
use rowan::ast::AstNode;

/// The source of an expression equal to `replacement` (Nix text) evaluated where `target`
/// stands in the tree. `args` gives arguments for enclosing functions by formal name.
pub fn probe_source(
    target: &SyntaxNode,
    replacement: &str,
    args: &BTreeMap<String, String>,
) -> String {
    let mut src = format!("({replacement})");
    let mut child = target.clone();
    while let Some(parent) = child.parent() {
        src = wrap(&parent, &child, src, args);
        child = parent;
    }
    src
}

fn wrap(
    parent: &SyntaxNode,
    child: &SyntaxNode,
    inner: String,
    args: &BTreeMap<String, String>,
) -> String {
    match parent.kind() {
        SyntaxKind::NODE_LET_IN => {
            let l = ast::LetIn::cast(parent.clone()).expect("kind checked");
            format!("let {} in {inner}", entries_text(&l))
        }
        SyntaxKind::NODE_ATTR_SET => {
            let s = ast::AttrSet::cast(parent.clone()).expect("kind checked");
            if s.rec_token().is_none() {
                return inner;
            }
            format!(
                "(rec {{ {} __tvixProbe = {inner}; }}).__tvixProbe",
                entries_text(&s)
            )
        }
        SyntaxKind::NODE_LEGACY_LET => {
            let s = ast::LegacyLet::cast(parent.clone()).expect("kind checked");
            format!(
                "(rec {{ {} __tvixProbe = {inner}; }}).__tvixProbe",
                entries_text(&s)
            )
        }
        SyntaxKind::NODE_WITH => {
            let w = ast::With::cast(parent.clone()).expect("kind checked");
            let in_body = w.body().is_some_and(|b| b.syntax() == child);
            match (in_body, w.namespace()) {
                (true, Some(ns)) => format!("with {}; {inner}", ns.syntax().text()),
                _ => inner,
            }
        }
        SyntaxKind::NODE_LAMBDA => {
            let l = ast::Lambda::cast(parent.clone()).expect("kind checked");
            let Some(param) = l.param() else { return inner };
            format!(
                "(({}: {inner}) {})",
                param.syntax().text(),
                argument(&param, args)
            )
        }
        _ => inner,
    }
}

/// The bindings of a `let` or set as text (`a = 1; inherit b;`).
fn entries_text(node: &impl HasEntry) -> String {
    node.entries()
        .map(|e| e.syntax().text().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The argument a probe applies a function to: the configured arguments it accepts, and a
/// `throw` for each required formal without one (so only using it fails).
pub fn argument(param: &ast::Param, args: &BTreeMap<String, String>) -> String {
    match param {
        ast::Param::IdentParam(p) => {
            let name = p
                .ident()
                .map(|i| i.syntax().text().to_string())
                .unwrap_or_default();
            missing(&name)
        }
        ast::Param::Pattern(p) => {
            let mut out = String::from("{ ");
            let ellipsis = p.ellipsis_token().is_some();
            let formals: Vec<(String, bool)> = p
                .pat_entries()
                .filter_map(|e| {
                    Some((
                        e.ident()?.syntax().text().to_string(),
                        e.default().is_some(),
                    ))
                })
                .collect();
            for (name, has_default) in &formals {
                match args.get(name) {
                    Some(expr) => out.push_str(&format!("{} = ({expr}); ", attr(name))),
                    None if !has_default => {
                        out.push_str(&format!("{} = {}; ", attr(name), missing(name)))
                    }
                    None => {}
                }
            }
            if ellipsis {
                for (name, expr) in args {
                    if !formals.iter().any(|(f, _)| f == name) {
                        out.push_str(&format!("{} = ({expr}); ", attr(name)));
                    }
                }
            }
            out.push('}');
            out
        }
    }
}

fn attr(name: &str) -> String {
    crate::actions::attr_name(name)
}

/// The marker text of an argument the workspace gives no value for.
pub const NO_VALUE: &str = "tvix lsp: no value for function argument";

fn missing(name: &str) -> String {
    format!(
        "(throw \"{NO_VALUE} '{}'\")",
        name.replace(['"', '\\', '$'], "")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_at(src: &str, at: &str, args: &[(&str, &str)]) -> String {
        let root = rnix::Root::parse(src).syntax();
        let o = src.find(at).unwrap() as u32;
        let tok = root.token_at_offset(o.into()).right_biased().unwrap();
        let node = tok.parent().unwrap();
        let args = args
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        probe_source(&node, &node.text().to_string(), &args)
    }

    #[test]
    fn rebuilds_scopes_and_applies_arguments() {
        let p = probe_at(
            "{ a, b ? 2, ... }: let c = a + b; in rec { d = c; e = d; }",
            "d;",
            &[("a", "1"), ("x", "3")],
        );
        assert_eq!(
            p,
            "(({ a, b ? 2, ... }: let c = a + b; in (rec { d = c; e = d; __tvixProbe = (d); }).__tvixProbe) { a = (1); x = (3); })"
        );
        let p = probe_at("x: with x; y", "y", &[]);
        assert!(p.starts_with("((x: with x; (y)) (throw"), "{p}");
    }
}
