//! An open document: its text, kept in sync with the editor's edits, and what the static
//! analysis found in it. The syntax tree is kept as a green tree (thread-safe) and turned into
//! a cursor tree on demand.

use rnix::{SyntaxNode, TextRange};
use rowan::GreenNode;
use tower_lsp_server::ls_types::{Position, Range, TextDocumentContentChangeEvent};

use crate::analysis::{analyse, Analysis};
use crate::line_index::LineIndex;

/// One open file.
pub struct Document {
    /// The text.
    pub text: String,
    /// The editor's version number.
    pub version: i32,
    /// Line starts of `text`.
    pub lines: LineIndex,
    green: GreenNode,
    /// Errors the parser recovered from.
    pub parse_errors: Vec<rnix::ParseError>,
    /// Scopes and references.
    pub analysis: Analysis,
}

impl Document {
    /// Parses and analyses `text`.
    pub fn new(text: String, version: i32, is_global: &dyn Fn(&str) -> bool) -> Document {
        let parse = rnix::Root::parse(&text);
        let parse_errors = parse.errors().to_vec();
        let green = parse.syntax().green().to_owned();
        let root = SyntaxNode::new_root(green.clone());
        let analysis = analyse(&root, is_global);
        Document {
            lines: LineIndex::new(&text),
            text,
            version,
            green,
            parse_errors,
            analysis,
        }
    }

    /// The syntax tree's root.
    pub fn root(&self) -> SyntaxNode {
        SyntaxNode::new_root(self.green.clone())
    }

    /// The byte offset of a position.
    pub fn offset(&self, pos: Position) -> usize {
        self.lines.offset(&self.text, pos)
    }

    /// The LSP range of a byte range.
    pub fn range(&self, r: TextRange) -> Range {
        self.lines.range(&self.text, r)
    }

    /// Applies the editor's changes (whole-text or ranged, in order) and returns the new text.
    pub fn apply_changes(&self, changes: Vec<TextDocumentContentChangeEvent>) -> String {
        let mut text = self.text.clone();
        let mut lines = self.lines.clone();
        for change in changes {
            match change.range {
                Some(range) => {
                    let r = lines.text_range(&text, range);
                    text.replace_range(usize::from(r.start())..usize::from(r.end()), &change.text);
                }
                None => text = change.text,
            }
            lines = LineIndex::new(&text);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranged_edits_apply_in_order() {
        let doc = Document::new("let a = 1;\nin a".to_string(), 1, &|_| false);
        let edit = |l1, c1, l2, c2, t: &str| TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(l1, c1), Position::new(l2, c2))),
            range_length: None,
            text: t.to_string(),
        };
        let text = doc.apply_changes(vec![edit(0, 4, 0, 5, "bb"), edit(1, 3, 1, 4, "bb + 1")]);
        assert_eq!(text, "let bb = 1;\nin bb + 1");
    }
}
