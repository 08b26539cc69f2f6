//! Semantic tokens: keywords, literals and comments from the lexer; identifiers classified by
//! what they refer to (parameter, builtin, `with` lookup, attribute name).

use rnix::{SyntaxKind, SyntaxToken};
use tower_lsp_server::ls_types::{
    SemanticToken, SemanticTokenModifier, SemanticTokenType, SemanticTokensLegend,
};

use crate::analysis::{DefKind, Target};
use crate::document::Document;

const TYPES: &[SemanticTokenType] = &[
    SemanticTokenType::KEYWORD,
    SemanticTokenType::VARIABLE,
    SemanticTokenType::PARAMETER,
    SemanticTokenType::PROPERTY,
    SemanticTokenType::FUNCTION,
    SemanticTokenType::STRING,
    SemanticTokenType::NUMBER,
    SemanticTokenType::COMMENT,
    SemanticTokenType::OPERATOR,
];
const KEYWORD: u32 = 0;
const VARIABLE: u32 = 1;
const PARAMETER: u32 = 2;
const PROPERTY: u32 = 3;
const FUNCTION: u32 = 4;
const STRING: u32 = 5;
const NUMBER: u32 = 6;
const COMMENT: u32 = 7;
const OPERATOR: u32 = 8;

const MODIFIERS: &[SemanticTokenModifier] = &[
    SemanticTokenModifier::DEFINITION,
    SemanticTokenModifier::DEFAULT_LIBRARY,
    SemanticTokenModifier::READONLY,
];
const DEFINITION: u32 = 1;
const DEFAULT_LIBRARY: u32 = 2;

/// The legend announced in the server's capabilities.
pub fn legend() -> SemanticTokensLegend {
    SemanticTokensLegend {
        token_types: TYPES.to_vec(),
        token_modifiers: MODIFIERS.to_vec(),
    }
}

/// The tokens of the whole document, delta-encoded as LSP wants them.
pub fn semantic_tokens(doc: &Document) -> Vec<SemanticToken> {
    let mut out = Vec::new();
    let (mut prev_line, mut prev_char) = (0u32, 0u32);
    for elem in doc.root().descendants_with_tokens() {
        let Some(token) = elem.into_token() else {
            continue;
        };
        let Some((ty, mods)) = classify(doc, &token) else {
            continue;
        };
        // Tokens may not span lines: emit one per line.
        let start = usize::from(token.text_range().start());
        let mut line_start = start;
        for piece in token.text().split_inclusive('\n') {
            let content = piece.trim_end_matches('\n');
            if !content.is_empty() {
                let pos = doc.lines.position(&doc.text, line_start);
                let length: u32 = content.chars().map(|c| c.len_utf16() as u32).sum();
                let delta_line = pos.line - prev_line;
                let delta_start = if delta_line == 0 {
                    pos.character - prev_char
                } else {
                    pos.character
                };
                out.push(SemanticToken {
                    delta_line,
                    delta_start,
                    length,
                    token_type: ty,
                    token_modifiers_bitset: mods,
                });
                prev_line = pos.line;
                prev_char = pos.character;
            }
            line_start += piece.len();
        }
    }
    out
}

fn classify(doc: &Document, token: &SyntaxToken) -> Option<(u32, u32)> {
    use SyntaxKind::*;
    Some(match token.kind() {
        TOKEN_COMMENT => (COMMENT, 0),
        TOKEN_ASSERT | TOKEN_ELSE | TOKEN_IF | TOKEN_IN | TOKEN_INHERIT | TOKEN_LET | TOKEN_REC
        | TOKEN_THEN | TOKEN_WITH | TOKEN_OR => (KEYWORD, 0),
        TOKEN_INTEGER | TOKEN_FLOAT => (NUMBER, 0),
        TOKEN_STRING_START | TOKEN_STRING_END | TOKEN_STRING_CONTENT | TOKEN_PATH_ABS
        | TOKEN_PATH_HOME | TOKEN_PATH_REL | TOKEN_PATH_SEARCH | TOKEN_URI => (STRING, 0),
        TOKEN_CONCAT | TOKEN_UPDATE | TOKEN_ADD | TOKEN_SUB | TOKEN_MUL | TOKEN_DIV
        | TOKEN_AND_AND | TOKEN_OR_OR | TOKEN_EQUAL | TOKEN_NOT_EQUAL | TOKEN_LESS
        | TOKEN_LESS_OR_EQ | TOKEN_MORE | TOKEN_MORE_OR_EQ | TOKEN_IMPLICATION | TOKEN_INVERT
        | TOKEN_PIPE_LEFT | TOKEN_PIPE_RIGHT => (OPERATOR, 0),
        TOKEN_IDENT => classify_ident(doc, token),
        _ => return None,
    })
}

fn classify_ident(doc: &Document, token: &SyntaxToken) -> (u32, u32) {
    let offset = usize::from(token.text_range().start());
    let an = &doc.analysis;
    if let Some(r) = an
        .reference_at(offset)
        .filter(|r| r.range.contains_range(token.text_range()))
    {
        return match r.target {
            Target::Def(d) => match an.defs[d].kind {
                DefKind::Formal | DefKind::LambdaArg => (PARAMETER, 0),
                _ => (VARIABLE, 0),
            },
            Target::Global => (FUNCTION, DEFAULT_LIBRARY),
            Target::With | Target::Undefined => (VARIABLE, 0),
        };
    }
    if let Some(d) = an.definition_at(offset) {
        return match an.defs[d].kind {
            DefKind::Formal | DefKind::LambdaArg => (PARAMETER, DEFINITION),
            DefKind::RecAttr => (PROPERTY, DEFINITION),
            DefKind::Let => (VARIABLE, DEFINITION),
        };
    }
    (PROPERTY, 0)
}
