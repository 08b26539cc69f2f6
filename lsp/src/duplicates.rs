//! Duplicate attributes, all of them (the evaluator's front end stops at the first): a name
//! defined twice in a set or `let`, with Nix's merging rules: attribute paths (`a.b = 1;
//! a.c = 2;`) and set literals (`a = { b = 1; }; a.c = 2;`) merge, anything else conflicts.

use std::collections::HashMap;

use rnix::ast::{self, HasEntry};
use rnix::{SyntaxKind, SyntaxNode, TextRange};
use rowan::ast::AstNode;

use crate::analysis::static_attr_name;

enum Slot {
    /// A set that further definitions may add to.
    Set(HashMap<String, Slot>, TextRange),
    /// A value: nothing may be added to it.
    Leaf(TextRange),
}

impl Slot {
    fn range(&self) -> TextRange {
        match self {
            Slot::Set(_, r) | Slot::Leaf(r) => *r,
        }
    }
}

/// A duplicate: the second definition's range, its full path and the first one's range.
pub struct Duplicate {
    /// Where the name is defined again.
    pub range: TextRange,
    /// The attribute path, dotted.
    pub path: String,
    /// Where it was defined first.
    pub first: TextRange,
}

/// Every duplicate attribute of the file.
pub fn duplicates(root: &SyntaxNode) -> Vec<Duplicate> {
    let mut out = Vec::new();
    for node in root.descendants() {
        let entries: Vec<ast::Entry> = match node.kind() {
            SyntaxKind::NODE_ATTR_SET => {
                // A set literal that is the value of a binding is checked with its parent,
                // into which it merges.
                if node.parent().is_some_and(|p| {
                    p.kind() == SyntaxKind::NODE_ATTRPATH_VALUE
                        && p.parent().is_some_and(|g| {
                            matches!(
                                g.kind(),
                                SyntaxKind::NODE_ATTR_SET | SyntaxKind::NODE_LET_IN
                            )
                        })
                }) {
                    continue;
                }
                ast::AttrSet::cast(node.clone()).map(|s| s.entries().collect())
            }
            SyntaxKind::NODE_LET_IN => {
                ast::LetIn::cast(node.clone()).map(|s| s.entries().collect())
            }
            SyntaxKind::NODE_LEGACY_LET => {
                ast::LegacyLet::cast(node.clone()).map(|s| s.entries().collect())
            }
            _ => None,
        }
        .unwrap_or_default();
        let mut top = HashMap::new();
        insert_entries(&mut top, "", entries, &mut out);
    }
    out
}

fn insert_entries(
    map: &mut HashMap<String, Slot>,
    prefix: &str,
    entries: Vec<ast::Entry>,
    out: &mut Vec<Duplicate>,
) {
    for entry in entries {
        match entry {
            ast::Entry::AttrpathValue(kv) => {
                let Some(path) = kv.attrpath() else { continue };
                let attrs: Vec<(String, TextRange)> = match path
                    .attrs()
                    .map(|a| static_attr_name(&a).map(|n| (n, a.syntax().text_range())))
                    .collect::<Option<Vec<_>>>()
                {
                    Some(a) if !a.is_empty() => a,
                    // Dynamic names are only known when evaluated.
                    _ => continue,
                };
                insert_path(map, prefix, &attrs, kv.value(), out);
            }
            ast::Entry::Inherit(inh) => {
                for attr in inh.attrs() {
                    if let Some(name) = static_attr_name(&attr) {
                        let r = attr.syntax().text_range();
                        insert_path(map, prefix, &[(name, r)], None, out);
                    }
                }
            }
        }
    }
}

fn insert_path(
    map: &mut HashMap<String, Slot>,
    prefix: &str,
    attrs: &[(String, TextRange)],
    value: Option<ast::Expr>,
    out: &mut Vec<Duplicate>,
) {
    let ((name, range), rest) = attrs.split_first().expect("non-empty path");
    let full = if prefix.is_empty() {
        name.clone()
    } else {
        format!("{prefix}.{name}")
    };
    let set_literal = match &value {
        Some(ast::Expr::AttrSet(s)) if rest.is_empty() => Some(s.clone()),
        _ => None,
    };
    let wants_set = !rest.is_empty() || set_literal.is_some();
    match map.get_mut(name) {
        Some(Slot::Set(inner, _)) if wants_set => {
            if rest.is_empty() {
                let entries = set_literal.expect("checked").entries().collect();
                insert_entries(inner, &full, entries, out);
            } else {
                insert_path(inner, &full, rest, value, out);
            }
        }
        Some(existing) => {
            // The reference names the path down to the first attribute that conflicts.
            let shown = match rest.first() {
                Some((next, _)) if matches!(existing, Slot::Leaf(_)) => format!("{full}.{next}"),
                _ => full,
            };
            out.push(Duplicate {
                range: *range,
                path: shown,
                first: existing.range(),
            });
        }
        None if wants_set => {
            let mut inner = HashMap::new();
            if rest.is_empty() {
                let entries = set_literal.expect("checked").entries().collect();
                insert_entries(&mut inner, &full, entries, out);
            } else {
                insert_path(&mut inner, &full, rest, value, out);
            }
            map.insert(name.clone(), Slot::Set(inner, *range));
        }
        None => {
            map.insert(name.clone(), Slot::Leaf(*range));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dups(src: &str) -> Vec<String> {
        duplicates(&rnix::Root::parse(src).syntax())
            .into_iter()
            .map(|d| d.path)
            .collect()
    }

    #[test]
    fn follows_nix_merging_rules() {
        assert!(dups("{ a = { b = 1; }; a.c = 2; }").is_empty());
        assert!(dups("{ a.b = 1; a = { c = 2; }; }").is_empty());
        assert!(dups("{ a = { b = 1; }; a = { c = 2; }; }").is_empty());
        assert!(dups("let a.b = 1; a.c = 2; in a").is_empty());
        assert_eq!(dups("{ a = x; a.c = 2; }"), vec!["a.c"]);
        assert_eq!(dups("{ a.b = 1; a.b = 2; }"), vec!["a.b"]);
        assert_eq!(dups("{ inherit ({a=1;}) a; a = 2; }"), vec!["a"]);
        assert_eq!(
            dups("{ x = 1; x = 2; y = { z = 1; }; y = { z = 2; }; }"),
            vec!["x", "y.z"]
        );
        assert!(dups("{ ${a} = 1; ${a} = 2; }").is_empty());
    }
}
