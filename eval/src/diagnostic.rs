//! Rendering errors as text, in the reference's layout: `error: message`, then
//! `at file:line:column:` and a code frame with a caret under the span. The CLI and the REPL
//! both print errors through this, so they read the same everywhere.

use std::fmt::Write;

use crate::error::EvalError;
use crate::source::{SourceMap, Span};

/// How to render.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenderOptions {
    /// Include every `… while …` frame (`--show-trace`).
    pub show_trace: bool,
    /// Use ANSI colours.
    pub color: bool,
}

struct Style {
    red: &'static str,
    bold: &'static str,
    dim: &'static str,
    reset: &'static str,
}

fn style(color: bool) -> Style {
    if color {
        Style {
            red: "\x1b[31;1m",
            bold: "\x1b[1m",
            dim: "\x1b[34;1m",
            reset: "\x1b[0m",
        }
    } else {
        Style {
            red: "",
            bold: "",
            dim: "",
            reset: "",
        }
    }
}

/// Renders an error with its code frame (and trace frames when asked).
pub fn render_error(err: &EvalError, sources: &SourceMap, opts: RenderOptions) -> String {
    let st = style(opts.color);
    let mut out = String::new();
    if opts.show_trace && !err.trace.is_empty() {
        writeln!(out, "{}error:{}", st.red, st.reset).expect("write");
        for frame in err.trace.iter().rev() {
            writeln!(out, "       … {}", frame.message).expect("write");
            if let Some(span) = frame.span {
                out.push('\n');
                code_frame(&mut out, span, sources, &st, "         ");
            }
            out.push('\n');
        }
        write!(out, "       {}error:{} {}", st.red, st.reset, err.kind).expect("write");
    } else {
        write!(out, "{}error:{} {}", st.red, st.reset, err.kind).expect("write");
    }
    out.push('\n');
    if let Some(span) = err.span {
        out.push('\n');
        code_frame(&mut out, span, sources, &st, "       ");
    }
    if let crate::error::ErrorKind::MissingAttr { suggestions, .. } = &err.kind {
        if !suggestions.is_empty() {
            let list = suggestions
                .iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(", ");
            writeln!(
                out,
                "       Did you mean {}?",
                one_of(&list, suggestions.len())
            )
            .expect("write");
        }
    }
    if !opts.show_trace && !err.trace.is_empty() {
        writeln!(
            out,
            "       (use '--show-trace' to show detailed location information)"
        )
        .expect("write");
    }
    out
}

fn one_of(list: &str, n: usize) -> String {
    if n == 1 {
        list.to_string()
    } else {
        format!("one of {list}")
    }
}

/// Writes `at file:line:col:` and the source line with a caret under the span.
fn code_frame(out: &mut String, span: Span, sources: &SourceMap, st: &Style, indent: &str) {
    let (file, (line, col), (end_line, end_col)) = sources.range(span);
    writeln!(
        out,
        "{indent}at {}{file}:{line}:{col}{}:",
        st.bold, st.reset
    )
    .expect("write");
    let text = sources.line_text(span, line - 1);
    let width = line.to_string().len().max(1);
    if line > 1 {
        let prev = sources.line_text(span, line - 2);
        writeln!(
            out,
            "{indent}{}{:>w$}|{} {}",
            st.dim,
            line - 1,
            st.reset,
            prev.trim_end(),
            w = width + 4
        )
        .expect("write");
    }
    writeln!(
        out,
        "{indent}{}{:>w$}|{} {}",
        st.dim,
        line,
        st.reset,
        text.trim_end(),
        w = width + 4
    )
    .expect("write");
    let caret_len = if end_line == line {
        end_col.saturating_sub(col).max(1)
    } else {
        1
    };
    writeln!(
        out,
        "{indent}{}{:>w$}|{} {}{}{}{}",
        st.dim,
        "",
        st.reset,
        " ".repeat(col - 1),
        st.red,
        "^".repeat(caret_len.min(text.chars().count().saturating_sub(col - 1).max(1))),
        st.reset,
        w = width + 4
    )
    .expect("write");
}

/// Renders a warning (`warning: ...` and a code frame).
pub fn render_warning(message: &str, span: Span, sources: &SourceMap, color: bool) -> String {
    let st = style(color);
    let mut out = String::new();
    writeln!(
        out,
        "{}warning:{} {message}",
        "\x1b[35;1m".get(..if color { 7 } else { 0 }).unwrap_or(""),
        st.reset
    )
    .expect("write");
    code_frame(&mut out, span, sources, &st, "         ");
    out
}

/// Removes ANSI escape sequences (`ESC [ ... letter`), as the reference does for messages
/// written to something that is not a colour terminal: messages may carry colour codes of
/// their own (nixpkgs' module system adds them).
pub fn strip_ansi(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\x1b') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte in '@'..='~'.
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colour_codes() {
        assert_eq!(strip_ansi("a \x1b[1;35m\"x\"\x1b[0m b"), "a \"x\" b");
        assert_eq!(strip_ansi("plain"), "plain");
        assert_eq!(strip_ansi("cut \x1b["), "cut ");
    }
}
