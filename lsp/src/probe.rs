//! Probes: Nix source whose value is the value of one sub-expression of a file, in that
//! sub-expression's scope. The scopes around it are rebuilt from the file's own text (`let`
//! bindings, `rec` sets, `with`s, function parameters, the latter applied to the configured
//! arguments), so hover and completion can evaluate any expression without the evaluator
//! recording values by position.
//!
//! A probe made with the file's [`Analysis`] copies only the bindings of the enclosing `let`s
//! and `rec` sets that its target uses, directly or through other bindings: hovering one name
//! in a `let` of 40 000 bindings evaluates a handful of them, not all (which the evaluator
//! would parse and lower on every request).

use std::collections::{BTreeMap, HashMap, HashSet};

use rnix::ast::{self, HasEntry};
use rnix::{SyntaxKind, SyntaxNode, TextRange};
use rowan::ast::AstNode;

use crate::analysis::{Analysis, Target};

/// A piece of a probe's text copied from the document, for mapping positions in the probe
/// (where evaluation puts attribute definitions) back to the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Byte offset in the probe.
    pub probe: usize,
    /// Byte offset in the document.
    pub doc: usize,
    /// Length in bytes.
    pub len: usize,
}

/// Maps a byte range of a probe back to the document, if it lies in a copied piece.
pub fn to_document(map: &[Segment], start: usize, end: usize) -> Option<(usize, usize)> {
    map.iter()
        .find(|s| s.probe <= start && end <= s.probe + s.len)
        .map(|s| (s.doc + start - s.probe, s.doc + end - s.probe))
}

enum Piece {
    Text(String),
    /// Text of the document at this offset.
    Doc(String, usize),
}

fn text(s: impl Into<String>) -> Piece {
    Piece::Text(s.into())
}

fn doc(node: &SyntaxNode) -> Piece {
    Piece::Doc(
        node.text().to_string(),
        usize::from(node.text_range().start()),
    )
}

/// The source of an expression equal to `replacement` (Nix text) evaluated where `target`
/// stands in the tree. `args` gives arguments for enclosing functions by formal name.
pub fn probe_source(
    target: &SyntaxNode,
    replacement: &str,
    args: &BTreeMap<String, String>,
) -> String {
    probe_with_map(target, replacement, args).0
}

/// [`probe_source`], with the pieces of the probe that are copies of the document.
pub fn probe_with_map(
    target: &SyntaxNode,
    replacement: &str,
    args: &BTreeMap<String, String>,
) -> (String, Vec<Segment>) {
    build(target, replacement, args, None)
}

/// [`probe_with_map`] for a `replacement` whose variables are those of the text of `target`
/// (or bound by the functions around it): the enclosing `let`s and `rec` sets keep only the
/// bindings it needs, found with the file's `analysis` (made on the same tree).
pub fn pruned_probe(
    target: &SyntaxNode,
    replacement: &str,
    args: &BTreeMap<String, String>,
    analysis: &Analysis,
) -> (String, Vec<Segment>) {
    let keep = needed_bindings(target, analysis);
    build(target, replacement, args, Some(&keep))
}

/// For each `let` or `rec` set around a target (by its range), the ranges of the bindings
/// the target needs, in source order.
type Kept = HashMap<TextRange, Vec<TextRange>>;

/// The bindings of the scopes around `target` that the code a probe copies refers to: the
/// target, the parameters of enclosing functions and the namespaces of enclosing `with`s,
/// and, transitively, the bindings so found.
fn needed_bindings(target: &SyntaxNode, analysis: &Analysis) -> Kept {
    let mut prunable = HashSet::new();
    let mut pending = vec![target.text_range()];
    let mut child = target.clone();
    while let Some(parent) = child.parent() {
        match parent.kind() {
            SyntaxKind::NODE_LET_IN | SyntaxKind::NODE_LEGACY_LET => {
                prunable.insert(parent.text_range());
            }
            SyntaxKind::NODE_ATTR_SET
                if ast::AttrSet::cast(parent.clone()).is_some_and(|s| s.rec_token().is_some()) =>
            {
                prunable.insert(parent.text_range());
            }
            SyntaxKind::NODE_WITH => {
                let w = ast::With::cast(parent.clone()).expect("kind checked");
                if w.body().is_some_and(|b| b.syntax() == &child) {
                    pending.extend(w.namespace().map(|ns| ns.syntax().text_range()));
                }
            }
            SyntaxKind::NODE_LAMBDA => {
                let l = ast::Lambda::cast(parent.clone()).expect("kind checked");
                pending.extend(l.param().map(|p| p.syntax().text_range()));
            }
            _ => {}
        }
        child = parent;
    }
    let mut marked = HashSet::new();
    let mut kept = Kept::new();
    while let Some(range) = pending.pop() {
        for r in analysis.references_in(range) {
            let Target::Def(d) = r.target else { continue };
            let def = &analysis.defs[d];
            // Bindings of other scopes are copied with the code around them, or are
            // function parameters.
            if prunable.contains(&def.scope) && marked.insert(d) {
                pending.extend(def.bindings.iter().copied());
                kept.entry(def.scope)
                    .or_default()
                    .extend(def.bindings.iter().copied());
            }
        }
    }
    for bindings in kept.values_mut() {
        bindings.sort_by_key(|r| r.start());
        bindings.dedup();
    }
    kept
}

fn build(
    target: &SyntaxNode,
    replacement: &str,
    args: &BTreeMap<String, String>,
    keep: Option<&Kept>,
) -> (String, Vec<Segment>) {
    let mut pieces = vec![text("("), text(replacement), text(")")];
    let mut child = target.clone();
    while let Some(parent) = child.parent() {
        pieces = wrap(&parent, &child, pieces, args, keep);
        child = parent;
    }
    let mut out = String::new();
    let mut map = Vec::new();
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(&t),
            Piece::Doc(t, at) => {
                map.push(Segment {
                    probe: out.len(),
                    doc: at,
                    len: t.len(),
                });
                out.push_str(&t);
            }
        }
    }
    (out, map)
}

fn wrap(
    parent: &SyntaxNode,
    child: &SyntaxNode,
    inner: Vec<Piece>,
    args: &BTreeMap<String, String>,
    keep: Option<&Kept>,
) -> Vec<Piece> {
    match parent.kind() {
        SyntaxKind::NODE_LET_IN => {
            let l = ast::LetIn::cast(parent.clone()).expect("kind checked");
            let mut before = vec![text("let ")];
            match keep {
                Some(keep) => before.extend(kept_entries(parent, keep)),
                None => before.extend(entries(&l)),
            }
            before.push(text(" in "));
            around(before, inner, vec![])
        }
        SyntaxKind::NODE_ATTR_SET | SyntaxKind::NODE_LEGACY_LET => {
            let entries = match (ast::AttrSet::cast(parent.clone()), keep) {
                (Some(s), _) if s.rec_token().is_none() => return inner,
                (_, Some(keep)) => kept_entries(parent, keep),
                (Some(s), None) => entries(&s),
                (None, None) => {
                    entries(&ast::LegacyLet::cast(parent.clone()).expect("kind checked"))
                }
            };
            let mut before = vec![text("(rec { ")];
            before.extend(entries);
            before.push(text(" __tvixProbe = "));
            around(before, inner, vec![text("; }).__tvixProbe")])
        }
        SyntaxKind::NODE_WITH => {
            let w = ast::With::cast(parent.clone()).expect("kind checked");
            let in_body = w.body().is_some_and(|b| b.syntax() == child);
            match (in_body, w.namespace()) {
                (true, Some(ns)) => around(
                    vec![text("with "), doc(ns.syntax()), text("; ")],
                    inner,
                    vec![],
                ),
                _ => inner,
            }
        }
        SyntaxKind::NODE_LAMBDA => {
            let l = ast::Lambda::cast(parent.clone()).expect("kind checked");
            let Some(param) = l.param() else { return inner };
            let arg = argument(&param, args);
            around(
                vec![text("(("), doc(param.syntax()), text(": ")],
                inner,
                vec![text(format!(") {arg})"))],
            )
        }
        _ => inner,
    }
}

fn around(before: Vec<Piece>, inner: Vec<Piece>, after: Vec<Piece>) -> Vec<Piece> {
    before.into_iter().chain(inner).chain(after).collect()
}

/// The bindings of a `let` or set, each copied from the document, separated by spaces.
fn entries(node: &impl HasEntry) -> Vec<Piece> {
    let mut out = Vec::new();
    for (i, e) in node.entries().enumerate() {
        if i > 0 {
            out.push(text(" "));
        }
        out.push(doc(e.syntax()));
    }
    out
}

/// The bindings of `scope` (a `let` or `rec` set) that `keep` lists for it, copied from the
/// document, separated by spaces.
fn kept_entries(scope: &SyntaxNode, keep: &Kept) -> Vec<Piece> {
    let mut out = Vec::new();
    for range in keep.get(&scope.text_range()).into_iter().flatten() {
        let Some(node) = scope.covering_element(*range).into_node() else {
            continue;
        };
        if !out.is_empty() {
            out.push(text(" "));
        }
        out.push(doc(&node));
    }
    out
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
    fn maps_copied_text_back_to_the_document() {
        let src = "let s = { a = 1; }; in s.a";
        let root = rnix::Root::parse(src).syntax();
        let at = src.rfind("s.a").unwrap() as u32;
        let node = root
            .token_at_offset(at.into())
            .right_biased()
            .unwrap()
            .parent()
            .unwrap();
        let (p, map) = probe_with_map(&node, "s", &BTreeMap::new());
        assert_eq!(p, "let s = { a = 1; }; in (s)");
        let a = p.find("a = 1").unwrap();
        let doc_a = src.find("a = 1").unwrap();
        assert_eq!(to_document(&map, a, a + 1), Some((doc_a, doc_a + 1)));
        assert_eq!(to_document(&map, p.len() - 2, p.len() - 1), None);
    }

    /// The probe for the expression at `at` (its innermost node), keeping only what it needs.
    fn pruned_at(src: &str, at: &str) -> String {
        let root = rnix::Root::parse(src).syntax();
        let analysis = crate::analysis::analyse(&root, &|n| n == "toString");
        let o = src.find(at).unwrap() as u32;
        let node = crate::tree::token_at_offset(&root, o as usize)
            .right_biased()
            .unwrap()
            .parent()
            .unwrap();
        let text = node.text().to_string();
        pruned_probe(&node, &text, &BTreeMap::new(), &analysis).0
    }

    #[test]
    fn keeps_only_the_bindings_the_target_needs() {
        // `d` needs `c` and, through it, `a` (by `inherit`), which needs `s`; not `b` or `e`.
        let src = "let s = { a = 1; }; b = 2; inherit (s) a; c = a + 1; e = b; \
                   in rec { x = c; y = x; z = y + d; d = c; }";
        assert_eq!(
            pruned_at(src, "d; d ="),
            "let s = { a = 1; }; inherit (s) a; c = a + 1; in \
             (rec { d = c; __tvixProbe = (d); }).__tvixProbe"
        );
        // A name defined by several paths keeps all of them; `with` namespaces and function
        // parameters (with their defaults) count as used code.
        let src = "let n.a = 1; m = 3; q = 9; n.b = m; k = { }; o = 5; in { p ? o }: with k; n\n";
        assert_eq!(
            pruned_at(src, "n\n"),
            "let n.a = 1; m = 3; n.b = m; k = { }; o = 5; in (({ p ? o }: with k; (n)) { })"
        );
        // Nothing needed: the `let` stays, empty (as `let in e`, valid Nix).
        assert_eq!(pruned_at("let a = 1; in 2 + 3", "2"), "let  in (2)");
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
