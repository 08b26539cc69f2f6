//! Conversions from the server's findings and places to LSP types.

use std::path::Path;

use tower_lsp_server::ls_types::{
    Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, DiagnosticTag, Location,
    NumberOrString, Position, Range, TextEdit, Uri,
};

use crate::diagnostics::{Finding, Severity};
use crate::document::Document;
use crate::evaluate::FileRange;

/// A static finding as an LSP diagnostic.
pub fn diagnostic(doc: &Document, f: &Finding) -> Diagnostic {
    Diagnostic {
        range: doc.range(f.range),
        severity: Some(match f.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
            Severity::Hint => DiagnosticSeverity::HINT,
        }),
        code: Some(NumberOrString::String(f.code.to_string())),
        source: Some("tvix".to_string()),
        message: f.message.clone(),
        tags: f.unnecessary.then(|| vec![DiagnosticTag::UNNECESSARY]),
        ..Diagnostic::default()
    }
}

/// A place in a file on disk as an LSP location.
pub fn location(r: &FileRange) -> Option<Location> {
    Some(Location {
        uri: Uri::from_file_path(&r.path)?,
        range: Range::new(
            Position::new(r.start.0, r.start.1),
            Position::new(r.end.0, r.end.1),
        ),
    })
}

/// Related information for an evaluation error's trace.
pub fn related(items: &[(FileRange, String)]) -> Option<Vec<DiagnosticRelatedInformation>> {
    let out: Vec<_> = items
        .iter()
        .filter_map(|(r, msg)| {
            Some(DiagnosticRelatedInformation {
                location: location(r)?,
                message: msg.clone(),
            })
        })
        .collect();
    (!out.is_empty()).then_some(out)
}

/// Byte-range edits as LSP text edits.
pub fn edits(doc: &Document, edits: &[(rnix::TextRange, String)]) -> Vec<TextEdit> {
    edits
        .iter()
        .map(|(r, t)| TextEdit {
            range: doc.range(*r),
            new_text: t.clone(),
        })
        .collect()
}

/// The local path of a `file:` URI.
pub fn path_of(uri: &Uri) -> Option<std::path::PathBuf> {
    uri.to_file_path().map(|p| p.into_owned())
}

/// The directory a document's relative paths resolve against.
pub fn base_dir(uri: &Uri) -> std::path::PathBuf {
    path_of(uri)
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| "/".into()))
}
