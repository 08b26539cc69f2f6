//! Lookups in the syntax tree by offset in logarithmic time. rowan's own `token_at_offset`
//! walks every child of each node on the way down: in a `let` of 40 000 bindings that is a
//! scan of 80 000 children per lookup, and a hover makes several.

use rnix::{SyntaxNode, SyntaxToken, TextRange, TextSize};
use rowan::TokenAtOffset;

/// The token(s) at `offset` in `root`, as rowan's `SyntaxNode::token_at_offset` gives them
/// (two when the offset is the boundary between tokens), found by binary search.
pub fn token_at_offset(root: &SyntaxNode, offset: usize) -> TokenAtOffset<SyntaxToken> {
    let range = root.text_range();
    let Ok(offset) = u32::try_from(offset).map(TextSize::from) else {
        return TokenAtOffset::None;
    };
    if range.is_empty() || offset < range.start() || offset > range.end() {
        return TokenAtOffset::None;
    }
    let one = TextSize::from(1);
    // The token holding the byte before `offset` and the one holding the byte at it.
    let left = (offset > range.start()).then(|| token_covering(root, offset - one));
    let right = (offset < range.end()).then(|| token_covering(root, offset));
    match (left.flatten(), right.flatten()) {
        (Some(l), Some(r)) if l == r => TokenAtOffset::Single(l),
        (Some(l), Some(r)) => TokenAtOffset::Between(l, r),
        (Some(t), None) | (None, Some(t)) => TokenAtOffset::Single(t),
        (None, None) => TokenAtOffset::None,
    }
}

/// The token that holds the byte at `at`.
fn token_covering(root: &SyntaxNode, at: TextSize) -> Option<SyntaxToken> {
    root.covering_element(TextRange::at(at, TextSize::from(1)))
        .into_token()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_rowan_at_every_offset() {
        let src = "let a = { b = 1; }; /* c */ in a.b  ++ [ \"x${a}\" ]\n";
        let root = rnix::Root::parse(src).syntax();
        for offset in 0..=src.len() {
            let ours: Vec<_> = token_at_offset(&root, offset).collect();
            let rowans: Vec<_> = root.token_at_offset((offset as u32).into()).collect();
            assert_eq!(ours, rowans, "at {offset}");
        }
        assert!(matches!(
            token_at_offset(&root, src.len() + 1),
            TokenAtOffset::None
        ));
    }
}
