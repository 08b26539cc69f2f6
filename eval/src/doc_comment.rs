//! Doc comments as RFC 145 defines them: a `/** ... */` comment (not `/* */`, not `#`) placed
//! right before a lambda or before the name of the binding whose value it is. `tvix repl`'s
//! `:doc` and the language server's hover show them.
//!
//! The item is found in rnix's lossless syntax tree, so comments inside strings, bindings
//! further out, or an unrelated comment separated by code are never picked up by mistake.

use rnix::{NodeOrToken, SyntaxKind, SyntaxNode, SyntaxToken, TextSize};

/// The doc comment documenting the lambda or binding whose first token starts at byte
/// `offset` of `source`, with the `/**`/`*/` markers and the common indentation removed.
///
/// The comment directly before the item (only whitespace in between) is taken; if there is
/// none and the item is the value of a binding (`name = <item>;` in a set or `let`, possibly
/// in parentheses), the comment directly before the binding's attribute path is taken.
/// `None` when there is no such comment, when it is a plain comment, when it is empty, or
/// when no token starts at `offset`.
pub fn doc_comment_before(source: &str, offset: usize) -> Option<String> {
    if offset >= source.len() || !source.is_char_boundary(offset) {
        return None;
    }
    let root = rnix::Root::parse(source).syntax();
    let at = TextSize::try_from(offset).ok()?;
    let token = root.token_at_offset(at).right_biased()?;
    if token.text_range().start() != at || is_trivia(token.kind()) {
        return None;
    }
    if let Some(doc) = doc_comment_preceding(&token) {
        return Some(doc);
    }
    let item = outermost_node_starting_at(&token, at)?;
    let binding = binding_of_value(&item)?;
    doc_comment_preceding(&first_significant_token(&binding)?)
}

/// The content of a doc comment (`/** ... */`): markers removed, a first line that holds only
/// whitespace dropped (text on the line of `/**` is kept, without its leading blanks), a last
/// line holding only whitespace dropped, and the indentation that all other non-blank lines
/// share removed, as in indented strings. `None` for anything that is not a doc comment
/// (`/* */`, `/**/`, `#`) and for a doc comment without content.
pub fn strip_doc_comment(comment: &str) -> Option<String> {
    if comment == "/**/" || comment.len() < 5 {
        return None;
    }
    let inner = comment.strip_prefix("/**")?.strip_suffix("*/")?;
    let mut lines: Vec<&str> = inner
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let first = lines.remove(0);
    if lines.last().is_some_and(|l| is_blank(l)) {
        lines.pop();
    }
    let indent = lines
        .iter()
        .filter(|l| !is_blank(l))
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    let mut out: Vec<&str> = Vec::with_capacity(lines.len() + 1);
    if !is_blank(first) {
        out.push(first.trim_start_matches([' ', '\t']));
    }
    // Blank lines may be shorter than the indentation; they become empty.
    out.extend(
        lines
            .iter()
            .map(|l| if is_blank(l) { "" } else { &l[indent..] }),
    );
    let text = out.join("\n");
    let text = text.trim_end();
    (!text.trim().is_empty()).then(|| text.to_string())
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn is_trivia(kind: SyntaxKind) -> bool {
    matches!(
        kind,
        SyntaxKind::TOKEN_WHITESPACE | SyntaxKind::TOKEN_COMMENT
    )
}

/// The doc comment right before `token`, skipping only whitespace.
fn doc_comment_preceding(token: &SyntaxToken) -> Option<String> {
    let mut prev = token.prev_token();
    while let Some(t) = prev {
        match t.kind() {
            SyntaxKind::TOKEN_WHITESPACE => prev = t.prev_token(),
            SyntaxKind::TOKEN_COMMENT => return strip_doc_comment(t.text()),
            _ => return None,
        }
    }
    None
}

/// The first token of `node` that is not whitespace or a comment (rnix may place leading
/// trivia inside a node).
fn first_significant_token(node: &SyntaxNode) -> Option<SyntaxToken> {
    node.descendants_with_tokens().find_map(|e| match e {
        NodeOrToken::Token(t) if !is_trivia(t.kind()) => Some(t),
        _ => None,
    })
}

/// The largest node whose first significant token is `token` (at `at`): for `f = x: y: x;`
/// and the token `x` after `=`, the whole lambda `x: y: x`. The root is never returned.
fn outermost_node_starting_at(token: &SyntaxToken, at: TextSize) -> Option<SyntaxNode> {
    token
        .parent_ancestors()
        .take_while(|n| {
            n.kind() != SyntaxKind::NODE_ROOT
                && first_significant_token(n).is_some_and(|t| t.text_range().start() == at)
        })
        .last()
}

/// The binding (`name = value;`) whose value is `item`, looking through parentheses.
fn binding_of_value(item: &SyntaxNode) -> Option<SyntaxNode> {
    let mut value = item.clone();
    loop {
        let parent = value.parent()?;
        match parent.kind() {
            SyntaxKind::NODE_PAREN => value = parent,
            SyntaxKind::NODE_ATTRPATH_VALUE => {
                // The attribute path is the binding's first child; the value comes after it.
                let is_value = parent
                    .children()
                    .any(|c| c.kind() != SyntaxKind::NODE_ATTRPATH && c == value);
                return is_value.then_some(parent);
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The doc comment for the item at the first occurrence of `marker` in `src`.
    fn doc_at(src: &str, marker: &str) -> Option<String> {
        let offset = src
            .find(marker)
            .unwrap_or_else(|| panic!("{marker} not in {src}"));
        doc_comment_before(src, offset)
    }

    #[test]
    fn doc_comment_directly_before_a_lambda() {
        let src = "/** Adds one. */\nx: x + 1";
        assert_eq!(doc_at(src, "x:"), Some("Adds one.".into()));
    }

    #[test]
    fn doc_comment_before_a_binding_documents_its_lambda_and_its_name() {
        let src = "{\n  /**\n    Doubles `x`.\n  */\n  double = x: x * 2;\n}";
        assert_eq!(doc_at(src, "x: x"), Some("Doubles `x`.".into()));
        assert_eq!(doc_at(src, "double"), Some("Doubles `x`.".into()));
    }

    #[test]
    fn doc_comment_between_name_and_lambda_wins() {
        let src = "{ /** outer */ f = /** inner */ x: x; }";
        assert_eq!(doc_at(src, "x: x"), Some("inner".into()));
        assert_eq!(doc_at(src, "f ="), Some("outer".into()));
    }

    #[test]
    fn doc_comment_plain_comments_are_not_doc_comments() {
        assert_eq!(doc_at("{ /* plain */ f = x: x; }", "x: x"), None);
        assert_eq!(doc_at("{ # line\n f = x: x; }", "x: x"), None);
        assert_eq!(doc_at("{ /**/ f = x: x; }", "x: x"), None);
        assert_eq!(doc_at("{ /** */ f = x: x; }", "x: x"), None);
    }

    #[test]
    fn doc_comment_must_be_next_to_the_item() {
        // A plain comment in between hides the doc comment.
        assert_eq!(doc_at("{ /** doc */ # note\n f = x: x; }", "x: x"), None);
        // The comment documents the previous binding's neighbour, not this one.
        let src = "{ /** for a */ a = 1; b = x: x; }";
        assert_eq!(doc_at(src, "x: x"), None);
        assert_eq!(doc_at(src, "a ="), Some("for a".into()));
        // A lambda in a function application is not a binding's value.
        assert_eq!(doc_at("{ /** doc */ f = map (x: x); }", "x: x"), None);
    }

    #[test]
    fn doc_comment_nested_attrsets_take_the_nearest_binding() {
        let src = "{\n  /** the set */\n  lib = {\n    /** identity */\n    id = x: x;\n    const = a: b: a;\n  };\n}";
        assert_eq!(doc_at(src, "x: x"), Some("identity".into()));
        assert_eq!(doc_at(src, "a: b"), None);
        assert_eq!(doc_at(src, "lib"), Some("the set".into()));
        assert_eq!(doc_at(src, "{\n    /**"), Some("the set".into()));
    }

    #[test]
    fn doc_comment_attribute_paths_let_bindings_and_parentheses() {
        assert_eq!(
            doc_at("{ /** deep */ a.b.c = x: x; }", "x: x"),
            Some("deep".into())
        );
        assert_eq!(
            doc_at("let /** in let */ f = { a, b ? 1 }: a; in f", "{ a,"),
            Some("in let".into())
        );
        assert_eq!(
            doc_at("{ /** wrapped */ f = (x: x); }", "x: x"),
            Some("wrapped".into())
        );
    }

    #[test]
    fn doc_comment_offsets_that_start_no_token_give_none() {
        let src = "/** doc */ x: x";
        assert_eq!(doc_comment_before(src, src.len()), None);
        assert_eq!(doc_comment_before(src, 10_000), None);
        // Inside the comment, inside a token, on whitespace.
        assert_eq!(doc_comment_before(src, 3), None);
        assert_eq!(doc_comment_before("/** d */ foo: foo", 10), None);
        assert_eq!(doc_comment_before(src, 10), None);
        // Not on a character boundary.
        assert_eq!(doc_comment_before("/** é */ x: x", 6), None);
    }

    #[test]
    fn doc_comment_survives_syntax_errors() {
        let src = "{ /** still found */ f = x: ; ";
        assert_eq!(doc_at(src, "f ="), Some("still found".into()));
    }

    #[test]
    fn doc_comment_stripping_removes_common_indentation() {
        let c = "/**\n    Summary.\n\n    # Example\n\n    ```nix\n    f {\n      a = 1;\n    }\n    ```\n  */";
        assert_eq!(
            strip_doc_comment(c).as_deref(),
            Some("Summary.\n\n# Example\n\n```nix\nf {\n  a = 1;\n}\n```")
        );
    }

    #[test]
    fn doc_comment_stripping_text_on_the_first_line() {
        assert_eq!(
            strip_doc_comment("/**compact*/").as_deref(),
            Some("compact")
        );
        assert_eq!(
            strip_doc_comment("/** First line.\n     Second line.\n */").as_deref(),
            Some("First line.\nSecond line.")
        );
        assert_eq!(
            strip_doc_comment("/**\r\n  crlf\r\n    indented\r\n*/").as_deref(),
            Some("crlf\n  indented")
        );
    }

    #[test]
    fn doc_comment_stripping_rejects_other_comments() {
        for c in [
            "/* plain */",
            "/**/",
            "# line",
            "/** */",
            "/**\n   \n*/",
            "/** open",
        ] {
            assert_eq!(strip_doc_comment(c), None, "{c}");
        }
    }
}
