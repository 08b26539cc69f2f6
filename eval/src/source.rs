//! The shared source map: every file and expression the evaluator has seen, so that any span
//! in the IR or in an error can be turned back into `file:line:column` and a code frame.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

pub use codemap::{File, Span};

/// Where a span points, resolved to 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file's name as given when it was added (a path, or `«string»` and the like).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

/// A cheaply clonable handle to the process's source map.
#[derive(Clone, Default)]
pub struct SourceMap(Rc<RefCell<codemap::CodeMap>>);

impl SourceMap {
    /// An empty source map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file's text and returns the file handle (its span covers the whole text).
    pub fn add(&self, name: String, text: String) -> Arc<File> {
        self.0.borrow_mut().add_file(name, text)
    }

    /// The file that contains `span`.
    pub fn file_of(&self, span: Span) -> Arc<File> {
        self.0.borrow().find_file(span.low()).clone()
    }

    /// The start of `span` as a location.
    pub fn location(&self, span: Span) -> Location {
        let map = self.0.borrow();
        let file = map.find_file(span.low());
        let lc = file.find_line_col(span.low());
        Location {
            file: file.name().to_string(),
            line: lc.line + 1,
            column: lc.column + 1,
        }
    }

    /// Line and column (1-based) of the start and end of `span`, and the file's name.
    pub fn range(&self, span: Span) -> (String, (usize, usize), (usize, usize)) {
        let map = self.0.borrow();
        let loc = map.look_up_span(span);
        (
            loc.file.name().to_string(),
            (loc.begin.line + 1, loc.begin.column + 1),
            (loc.end.line + 1, loc.end.column + 1),
        )
    }

    /// The source text covered by `span`.
    pub fn text(&self, span: Span) -> String {
        let map = self.0.borrow();
        let file = map.find_file(span.low());
        file.source_slice(span).to_string()
    }

    /// The text of line `line` (0-based) of the file containing `span`.
    pub fn line_text(&self, span: Span, line: usize) -> String {
        let map = self.0.borrow();
        let file = map.find_file(span.low());
        if line < file.num_lines() {
            file.source_line(line).to_string()
        } else {
            String::new()
        }
    }
}
