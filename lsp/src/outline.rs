//! The shape of a file for the editor: document symbols (nested attribute sets and `let`s),
//! folding ranges and selection ranges.

use rnix::ast::{self, HasEntry};
use rnix::{SyntaxKind, SyntaxNode, TextRange};
use rowan::ast::AstNode;
use tower_lsp_server::ls_types::{
    DocumentSymbol, FoldingRange, FoldingRangeKind, Range, SelectionRange, SymbolKind,
};

use crate::document::Document;

/// Nested symbols: every binding of a set or `let`, with the bindings inside its value.
pub fn document_symbols(doc: &Document) -> Vec<DocumentSymbol> {
    let mut out = Vec::new();
    collect_symbols(doc, &doc.root(), &mut out);
    out
}

/// The symbols of `node`: its own bindings if it holds some, else those of its children.
fn collect_symbols(doc: &Document, node: &SyntaxNode, out: &mut Vec<DocumentSymbol>) {
    let entries: Option<Vec<ast::Entry>> = match node.kind() {
        SyntaxKind::NODE_ATTR_SET => {
            ast::AttrSet::cast(node.clone()).map(|s| s.entries().collect())
        }
        SyntaxKind::NODE_LET_IN => ast::LetIn::cast(node.clone()).map(|s| s.entries().collect()),
        SyntaxKind::NODE_LEGACY_LET => {
            ast::LegacyLet::cast(node.clone()).map(|s| s.entries().collect())
        }
        _ => None,
    };
    let Some(entries) = entries else {
        for child in node.children() {
            collect_symbols(doc, &child, out);
        }
        return;
    };
    for entry in entries {
        match entry {
            ast::Entry::AttrpathValue(kv) => {
                let (Some(path), Some(value)) = (kv.attrpath(), kv.value()) else {
                    continue;
                };
                let mut children = Vec::new();
                collect_symbols(doc, value.syntax(), &mut children);
                #[allow(deprecated)]
                out.push(DocumentSymbol {
                    name: path.syntax().text().to_string(),
                    detail: Some(value_kind_name(&value).to_string()),
                    kind: symbol_kind(&value),
                    tags: None,
                    deprecated: None,
                    range: doc.range(kv.syntax().text_range()),
                    selection_range: doc.range(path.syntax().text_range()),
                    children: (!children.is_empty()).then_some(children),
                });
            }
            ast::Entry::Inherit(inh) => {
                for attr in inh.attrs() {
                    #[allow(deprecated)]
                    out.push(DocumentSymbol {
                        name: attr.syntax().text().to_string(),
                        detail: Some("inherit".to_string()),
                        kind: SymbolKind::FIELD,
                        tags: None,
                        deprecated: None,
                        range: doc.range(inh.syntax().text_range()),
                        selection_range: doc.range(attr.syntax().text_range()),
                        children: None,
                    });
                }
            }
        }
    }
    if let Some(body) = ast::LetIn::cast(node.clone()).and_then(|l| l.body()) {
        collect_symbols(doc, body.syntax(), out);
    }
}

fn value_kind_name(value: &ast::Expr) -> &'static str {
    match value {
        ast::Expr::AttrSet(_) => "set",
        ast::Expr::Lambda(_) => "function",
        ast::Expr::List(_) => "list",
        ast::Expr::Str(_) => "string",
        ast::Expr::Literal(_) => "number",
        ast::Expr::PathAbs(_)
        | ast::Expr::PathRel(_)
        | ast::Expr::PathHome(_)
        | ast::Expr::PathSearch(_) => "path",
        ast::Expr::LetIn(_) => "let",
        _ => "expression",
    }
}

fn symbol_kind(value: &ast::Expr) -> SymbolKind {
    match value {
        ast::Expr::AttrSet(_) => SymbolKind::NAMESPACE,
        ast::Expr::Lambda(_) => SymbolKind::FUNCTION,
        ast::Expr::List(_) => SymbolKind::ARRAY,
        ast::Expr::Str(_) => SymbolKind::STRING,
        ast::Expr::Literal(_) => SymbolKind::NUMBER,
        ast::Expr::PathAbs(_)
        | ast::Expr::PathRel(_)
        | ast::Expr::PathHome(_)
        | ast::Expr::PathSearch(_) => SymbolKind::FILE,
        _ => SymbolKind::VARIABLE,
    }
}

/// Multi-line sets, lists, `let`s, strings, function patterns and comment blocks.
pub fn folding_ranges(doc: &Document) -> Vec<FoldingRange> {
    let mut out = Vec::new();
    let mut push = |r: TextRange, kind: Option<FoldingRangeKind>| {
        let range = doc.range(r);
        if range.end.line > range.start.line {
            out.push(FoldingRange {
                start_line: range.start.line,
                start_character: None,
                end_line: range.end.line,
                end_character: None,
                kind,
                collapsed_text: None,
            });
        }
    };
    for elem in doc.root().descendants_with_tokens() {
        match elem {
            rowan::NodeOrToken::Node(n) => {
                if matches!(
                    n.kind(),
                    SyntaxKind::NODE_ATTR_SET
                        | SyntaxKind::NODE_LET_IN
                        | SyntaxKind::NODE_LEGACY_LET
                        | SyntaxKind::NODE_LIST
                        | SyntaxKind::NODE_STRING
                        | SyntaxKind::NODE_PATTERN
                        | SyntaxKind::NODE_PAREN
                        | SyntaxKind::NODE_ATTRPATH_VALUE
                ) {
                    push(n.text_range(), None);
                }
            }
            rowan::NodeOrToken::Token(t) => {
                if t.kind() == SyntaxKind::TOKEN_COMMENT {
                    push(t.text_range(), Some(FoldingRangeKind::Comment));
                }
            }
        }
    }
    out.sort_by_key(|f| (f.start_line, std::cmp::Reverse(f.end_line)));
    out.dedup_by_key(|f| (f.start_line, f.end_line));
    out
}

/// For each position, the chain of enclosing syntax ranges, innermost first.
pub fn selection_ranges(doc: &Document, offsets: &[usize]) -> Vec<SelectionRange> {
    let root = doc.root();
    offsets
        .iter()
        .map(|&offset| {
            let mut ranges: Vec<TextRange> = Vec::new();
            let offset = (offset as u32).min(u32::from(root.text_range().end()));
            if let Some(token) = crate::tree::token_at_offset(&root, offset as usize).right_biased()
            {
                if token.kind() != SyntaxKind::TOKEN_WHITESPACE {
                    ranges.push(token.text_range());
                }
                for n in token.parent_ancestors() {
                    if ranges.last() != Some(&n.text_range()) {
                        ranges.push(n.text_range());
                    }
                }
            }
            let mut sel: Option<SelectionRange> = None;
            for r in ranges.into_iter().rev() {
                sel = Some(SelectionRange {
                    range: doc.range(r),
                    parent: sel.map(Box::new),
                });
            }
            sel.unwrap_or(SelectionRange {
                range: Range::new(
                    doc.lines.position(&doc.text, offset as usize),
                    doc.lines.position(&doc.text, offset as usize),
                ),
                parent: None,
            })
        })
        .collect()
}
