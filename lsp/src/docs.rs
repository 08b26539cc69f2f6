//! Documentation shown for names: builtins (from the evaluator's builtin documentation),
//! bindings of the file and attributes of evaluated sets (their RFC 145 doc comments).

use rnix::{SyntaxKind, SyntaxNode, TextRange};
use tvix_eval::builtins::docs::builtin_doc;
use tvix_eval::doc_comment::{doc_comment_before, strip_doc_comment};

use crate::analysis::Definition;
use crate::evaluate::FileRange;

/// Markdown for a global name: its signature and documentation.
pub fn global_markdown(name: &str) -> String {
    match builtin_doc(name) {
        Some(d) => {
            let mut sig = format!("builtins.{}", d.name);
            for a in d.args {
                sig.push(' ');
                sig.push_str(a);
            }
            format!("```nix\n{sig}\n```\n\n{}", d.doc)
        }
        None => format!("builtin `{name}`"),
    }
}

/// Markdown for a binding of the file: what it is, and its doc comment (the `/** */` comment
/// right before the binding, read from the tree rather than by parsing the file again).
pub fn binding_markdown(root: &SyntaxNode, def: &Definition) -> String {
    let mut out = format!("{} `{}`", def.kind.describe(), def.name);
    if let Some(doc) = comment_before(root, def.binding).and_then(|c| strip_doc_comment(&c)) {
        out.push_str("\n\n");
        out.push_str(&doc);
    }
    out
}

/// The comment directly before the element at `range` (only whitespace in between).
fn comment_before(root: &SyntaxNode, range: TextRange) -> Option<String> {
    let first = crate::tree::token_at_offset(root, range.start().into()).right_biased()?;
    let mut t = first.prev_token();
    while let Some(tok) = t {
        match tok.kind() {
            SyntaxKind::TOKEN_WHITESPACE => t = tok.prev_token(),
            SyntaxKind::TOKEN_COMMENT => return Some(tok.text().to_string()),
            _ => return None,
        }
    }
    None
}

/// Markdown for an attribute of an evaluated set: where it is defined, and the doc comment
/// there (read from the file).
pub fn attribute_markdown(name: &str, pos: &FileRange) -> String {
    let mut out = format!(
        "`{name}`, defined at {}:{}",
        pos.path.display(),
        pos.start.0 + 1
    );
    if let Some(doc) = std::fs::read_to_string(&pos.path)
        .ok()
        .and_then(|text| doc_at(&text, pos.start))
    {
        out.push_str("\n\n");
        out.push_str(&doc);
    }
    out
}

/// The doc comment of the item starting at a (line, column in characters) position.
pub fn doc_at(text: &str, (line, column): (u32, u32)) -> Option<String> {
    let line_start = if line == 0 {
        0
    } else {
        text.match_indices('\n').nth(line as usize - 1)?.0 + 1
    };
    let offset = text[line_start..]
        .char_indices()
        .nth(column as usize)
        .map(|(i, _)| line_start + i)?;
    doc_comment_before(text, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_docs_and_doc_comments() {
        let md = global_markdown("map");
        assert!(md.starts_with("```nix\nbuiltins.map "), "{md}");
        assert_eq!(global_markdown("noSuchThing"), "builtin `noSuchThing`");
        let text = "{\n  /** Adds one. */\n  inc = x: x + 1;\n}";
        assert_eq!(doc_at(text, (2, 2)).as_deref(), Some("Adds one."));
    }
}
