//! Conversion between byte offsets in a document and LSP positions (line, UTF-16 column).

use tower_lsp_server::ls_types::{Position, Range};

/// Line starts of one text, for offset/position conversion in both directions.
#[derive(Clone, Debug)]
pub struct LineIndex {
    line_starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes `text`.
    pub fn new(text: &str) -> LineIndex {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { line_starts }
    }

    /// The byte offset of an LSP position; positions past a line's end clamp to its end.
    pub fn offset(&self, text: &str, pos: Position) -> usize {
        let Some(&start) = self.line_starts.get(pos.line as usize) else {
            return text.len();
        };
        let end = self
            .line_starts
            .get(pos.line as usize + 1)
            .map(|e| e - 1)
            .unwrap_or(text.len());
        let mut units = 0u32;
        for (i, c) in text[start..end].char_indices() {
            if units >= pos.character {
                return start + i;
            }
            units += c.len_utf16() as u32;
        }
        end
    }

    /// The LSP position of a byte offset.
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let offset = offset.min(text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let character = text
            .get(start..offset)
            .map(|s| s.chars().map(|c| c.len_utf16() as u32).sum())
            .unwrap_or(0);
        Position::new(line as u32, character)
    }

    /// The LSP range of a byte range.
    pub fn range(&self, text: &str, range: rowan::TextRange) -> Range {
        Range::new(
            self.position(text, range.start().into()),
            self.position(text, range.end().into()),
        )
    }

    /// The byte range of an LSP range.
    pub fn text_range(&self, text: &str, range: Range) -> rowan::TextRange {
        let start = self.offset(text, range.start);
        let end = self.offset(text, range.end).max(start);
        rowan::TextRange::new((start as u32).into(), (end as u32).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_utf16_columns() {
        let text = "ab\n\u{1F600}x = 1;\nlast";
        let idx = LineIndex::new(text);
        let emoji_x = text.find('x').unwrap();
        assert_eq!(idx.position(text, emoji_x), Position::new(1, 2));
        assert_eq!(idx.offset(text, Position::new(1, 2)), emoji_x);
        assert_eq!(idx.offset(text, Position::new(0, 99)), 2);
        assert_eq!(idx.offset(text, Position::new(9, 0)), text.len());
        assert_eq!(idx.position(text, text.len()), Position::new(2, 4));
    }
}
