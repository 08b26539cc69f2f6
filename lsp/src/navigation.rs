//! Name navigation within a file: definition, references, highlights and rename of `let`
//! bindings, formals, `rec` attributes and `inherit`s.

use rnix::{SyntaxKind, SyntaxNode, TextRange};
use rowan::ast::AstNode;
use tvix_eval::value::print::is_plain_identifier;

use crate::analysis::Analysis;

/// Where the binding under the cursor is defined (its main site).
pub fn definition(analysis: &Analysis, offset: usize) -> Option<TextRange> {
    let d = analysis.symbol_at(offset)?;
    Some(analysis.defs[d].sites[0])
}

/// Every occurrence of the binding under the cursor: definition sites (first, if asked) and uses.
pub fn references(analysis: &Analysis, offset: usize, with_definition: bool) -> Vec<TextRange> {
    let Some(d) = analysis.symbol_at(offset) else {
        return Vec::new();
    };
    let def = &analysis.defs[d];
    let mut out = Vec::new();
    if with_definition {
        out.extend(def.sites.iter().copied());
    }
    out.extend(def.uses.iter().copied());
    out
}

/// Occurrences for highlighting: `(range, is_definition)`. On a `with` keyword: the `with`
/// and every name looked up in it.
pub fn highlights(analysis: &Analysis, offset: usize) -> Vec<(TextRange, bool)> {
    let on = |r: TextRange| {
        u32::from(r.start()) as usize <= offset && offset <= u32::from(r.end()) as usize
    };
    if let Some(w) = analysis.withs.iter().find(|w| on(w.keyword)) {
        let mut out = vec![(w.keyword, true)];
        out.extend(
            analysis
                .refs
                .iter()
                .filter(|r| {
                    r.target == crate::analysis::Target::With && w.range.contains_range(r.range)
                })
                .map(|r| (r.range, false)),
        );
        return out;
    }
    let Some(d) = analysis.symbol_at(offset) else {
        return Vec::new();
    };
    let def = &analysis.defs[d];
    def.sites
        .iter()
        .map(|s| (*s, true))
        .chain(def.uses.iter().map(|u| (*u, false)))
        .collect()
}

/// Why a rename cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum RenameError {
    /// The cursor is not on a name bound in this file.
    #[error(
        "no binding of this file under the cursor (builtins and `with` names cannot be renamed)"
    )]
    NoBinding,
    /// The new name is not an identifier.
    #[error("'{0}' is not a valid Nix identifier")]
    InvalidName(String),
}

/// The range of the name under the cursor, if it can be renamed.
pub fn prepare_rename(analysis: &Analysis, offset: usize) -> Option<TextRange> {
    let d = analysis.symbol_at(offset)?;
    let def = &analysis.defs[d];
    def.sites
        .iter()
        .chain(def.uses.iter())
        .find(|r| u32::from(r.start()) as usize <= offset && offset <= u32::from(r.end()) as usize)
        .copied()
}

/// The edits that rename the binding under the cursor to `new_name`. Names inside `inherit`
/// keep the attribute they create or read: `inherit a;` becomes `a = new;` or `new = a;`.
pub fn rename(
    root: &SyntaxNode,
    analysis: &Analysis,
    offset: usize,
    new_name: &str,
) -> Result<Vec<(TextRange, String)>, RenameError> {
    if !is_plain_identifier(new_name) {
        return Err(RenameError::InvalidName(new_name.to_string()));
    }
    let d = analysis.symbol_at(offset).ok_or(RenameError::NoBinding)?;
    let def = &analysis.defs[d];
    let mut edits = Vec::new();
    for site in &def.sites {
        match inherit_of(root, *site) {
            Some(inh) => edits.extend(rewrite_inherit(&inh, *site, &|old, from| match from {
                Some(e) => format!("{new_name} = ({e}).{old};"),
                None => format!("{new_name} = {old};"),
            })),
            None => edits.push((*site, new_name.to_string())),
        }
    }
    for u in &def.uses {
        match inherit_of(root, *u) {
            Some(inh) => edits.extend(rewrite_inherit(&inh, *u, &|old, _| {
                format!("{old} = {new_name};")
            })),
            None => edits.push((*u, new_name.to_string())),
        }
    }
    Ok(merge_inherit_edits(edits))
}

/// The `inherit` whose attribute list contains the name at `range`.
pub fn inherit_of(root: &SyntaxNode, range: TextRange) -> Option<rnix::ast::Inherit> {
    let elem = root.covering_element(range);
    let node = match elem {
        rowan::NodeOrToken::Node(n) => n,
        rowan::NodeOrToken::Token(t) => t.parent()?,
    };
    let attr = node
        .ancestors()
        .find(|n| matches!(n.kind(), SyntaxKind::NODE_IDENT | SyntaxKind::NODE_STRING))?;
    let parent = attr.parent()?;
    rnix::ast::Inherit::cast(parent)
}

/// Takes the name at `name` out of `inherit` and adds the binding `make(name, from)` after it
/// (or in place of the whole `inherit` when it was its only name).
fn rewrite_inherit(
    inh: &rnix::ast::Inherit,
    name: TextRange,
    make: &dyn Fn(&str, Option<String>) -> String,
) -> Vec<(TextRange, String)> {
    let text = inh.syntax().text().to_string();
    let start = u32::from(inh.syntax().text_range().start()) as usize;
    let old =
        &text[u32::from(name.start()) as usize - start..u32::from(name.end()) as usize - start];
    let from = inh
        .from()
        .and_then(|f| f.expr())
        .map(|e| e.syntax().text().to_string());
    let binding = make(old, from);
    if inh.attrs().count() == 1 {
        return vec![(inh.syntax().text_range(), binding)];
    }
    // Take the space before the name along with it.
    let mut cut = name;
    if let Some(ws) = inh
        .syntax()
        .covering_element(name)
        .as_node()
        .map(|n| n.first_token())
        .unwrap_or_else(|| inh.syntax().covering_element(name).into_token())
        .and_then(|t| t.prev_token())
        .filter(|t| t.kind() == SyntaxKind::TOKEN_WHITESPACE)
    {
        cut = TextRange::new(ws.text_range().start(), name.end());
    }
    vec![
        (cut, String::new()),
        (
            TextRange::empty(inh.syntax().text_range().end()),
            format!(" {binding}"),
        ),
    ]
}

/// Several names of one `inherit` may be renamed at once; the insertions after it are joined
/// so that edits never overlap.
fn merge_inherit_edits(mut edits: Vec<(TextRange, String)>) -> Vec<(TextRange, String)> {
    edits.sort_by_key(|(r, _)| (r.start(), r.end()));
    let mut out: Vec<(TextRange, String)> = Vec::new();
    for (r, t) in edits {
        if let Some(last) = out.last_mut() {
            if last.0 == r && r.is_empty() {
                last.1.push_str(&t);
                continue;
            }
            if last.0 == r {
                continue;
            }
        }
        out.push((r, t));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyse;

    fn apply(src: &str, edits: &[(TextRange, String)]) -> String {
        let mut s = src.to_string();
        for (r, t) in edits.iter().rev() {
            s.replace_range(usize::from(r.start())..usize::from(r.end()), t);
        }
        s
    }

    #[test]
    fn rename_keeps_inherited_attribute_names() {
        let src = "let a = 1; b = 2; in { inherit a b; c = a; }";
        let root = rnix::Root::parse(src).syntax();
        let an = analyse(&root, &|_| false);
        let edits = rename(&root, &an, 4, "x").unwrap();
        assert_eq!(
            apply(src, &edits),
            "let x = 1; b = 2; in { inherit b; a = x; c = x; }"
        );
        assert!(matches!(
            rename(&root, &an, 4, "1x"),
            Err(RenameError::InvalidName(_))
        ));
    }

    #[test]
    fn with_keyword_highlights_its_names() {
        let src = "x: with x; [ a b x ]";
        let an = analyse(&rnix::Root::parse(src).syntax(), &|_| false);
        let h = highlights(&an, 4);
        let texts: Vec<&str> = h
            .iter()
            .map(|(r, _)| &src[usize::from(r.start())..usize::from(r.end())])
            .collect();
        assert_eq!(texts, vec!["with", "a", "b"]);
    }

    #[test]
    fn rename_of_inherited_let_binding() {
        let src = "{ a }: let inherit a; in a";
        let root = rnix::Root::parse(src).syntax();
        let an = analyse(&root, &|_| false);
        let at = src.rfind('a').unwrap();
        let edits = rename(&root, &an, at, "z").unwrap();
        assert_eq!(apply(src, &edits), "{ a }: let z = a; in z");
    }
}
