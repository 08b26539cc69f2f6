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

/// Where bytes that are not UTF-8 go in decoded source: U+10FF00 + byte, in a private-use
/// plane that Nix files do not otherwise use. The parser needs text; string literals turn
/// these characters back into the original bytes (Nix strings are bytes).
const RAW_BYTE_BASE: u32 = 0x10FF00;

/// Decodes a Nix file: UTF-8 as is, any other byte kept as a private-use character.
pub fn decode_source(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let bytes = e.into_bytes();
            let mut out = String::with_capacity(bytes.len() + 8);
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                match std::str::from_utf8(rest) {
                    Ok(s) => {
                        out.push_str(s);
                        break;
                    }
                    Err(err) => {
                        let (good, bad) = rest.split_at(err.valid_up_to());
                        out.push_str(std::str::from_utf8(good).expect("valid prefix"));
                        let n = err.error_len().unwrap_or(bad.len()).max(1);
                        for &b in &bad[..n] {
                            out.push(
                                char::from_u32(RAW_BYTE_BASE + u32::from(b))
                                    .expect("private-use char"),
                            );
                        }
                        rest = &bad[n..];
                    }
                }
            }
            out
        }
    }
}

/// The bytes of literal text from source, with raw bytes kept by [`decode_source`] restored.
pub fn literal_bytes(text: String) -> Vec<u8> {
    if !text
        .chars()
        .any(|c| (RAW_BYTE_BASE..=RAW_BYTE_BASE + 0xFF).contains(&u32::from(c)))
    {
        return text.into_bytes();
    }
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let code = u32::from(c);
        if (RAW_BYTE_BASE..=RAW_BYTE_BASE + 0xFF).contains(&code) {
            out.push((code - RAW_BYTE_BASE) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_bytes_survive_decoding() {
        let src = b"\"a\xffb\xc3\"".to_vec();
        let text = decode_source(src);
        assert!(text.starts_with("\"a"));
        assert_eq!(literal_bytes(text), b"\"a\xffb\xc3\"".to_vec());
        assert_eq!(decode_source("plain ü".as_bytes().to_vec()), "plain ü");
        assert_eq!(literal_bytes("plain ü".to_string()), "plain ü".as_bytes());
    }
}
