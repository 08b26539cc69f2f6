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
#[derive(Clone)]
pub struct SourceMap(Rc<RefCell<codemap::CodeMap>>);

/// The span of the empty file every source map starts with; it stands for "no position" in
/// compact fields ([`MaybeSpan`]). Real files start after it, so no real span equals it.
fn no_span() -> Span {
    static NO_SPAN: std::sync::OnceLock<Span> = std::sync::OnceLock::new();
    *NO_SPAN.get_or_init(|| {
        codemap::CodeMap::new()
            .add_file(String::new(), String::new())
            .span
    })
}

/// An optional span in the size of a span (an `Option<Span>` is half as large again), for
/// fields stored by the million such as attribute positions.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MaybeSpan(Span);

impl MaybeSpan {
    /// No position.
    pub fn none() -> MaybeSpan {
        MaybeSpan(no_span())
    }

    /// The span, if there is one.
    pub fn get(self) -> Option<Span> {
        (self.0 != no_span()).then_some(self.0)
    }
}

impl From<Option<Span>> for MaybeSpan {
    fn from(s: Option<Span>) -> MaybeSpan {
        s.map(MaybeSpan).unwrap_or_else(MaybeSpan::none)
    }
}

impl From<Span> for MaybeSpan {
    fn from(s: Span) -> MaybeSpan {
        MaybeSpan(s)
    }
}

impl std::fmt::Debug for MaybeSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl Default for SourceMap {
    fn default() -> Self {
        let mut map = codemap::CodeMap::new();
        let none = map.add_file(String::new(), String::new());
        debug_assert!(none.span == no_span());
        SourceMap(Rc::new(RefCell::new(map)))
    }
}

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
