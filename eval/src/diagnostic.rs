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
            let message = indent_continuation(&frame.message, "         ");
            writeln!(out, "       {}…{} {}", st.dim, st.reset, message).expect("write");
            if let Some(span) = frame.span.filter(|_| !is_unlocated_frame(&frame.message)) {
                code_frame(&mut out, span, sources, &st, "         ", ERROR_GUTTER);
            }
            out.push('\n');
        }
        write!(out, "       {}error:{} ", st.red, st.reset).expect("write");
    } else {
        write!(out, "{}error:{} ", st.red, st.reset).expect("write");
    }
    out.push_str(&indent_continuation(&err.kind.to_string(), "       "));
    out.push('\n');
    // Under a trace, an error raised by a builtin is not located again: the reference
    // reports it at the `while calling the '…' builtin` frame only.
    let located_by_call = opts.show_trace
        && err
            .trace
            .iter()
            .find(|f| f.span.is_some() && !is_unlocated_frame(&f.message))
            .is_some_and(|f| f.span == err.span && is_builtin_call_frame(&f.message));
    if let Some(span) = err.span.filter(|_| !located_by_call) {
        code_frame(&mut out, span, sources, &st, "       ", ERROR_GUTTER);
    }
    let suggestions = match &err.kind {
        crate::error::ErrorKind::MissingAttr { suggestions, .. } if err.suggestions.is_empty() => {
            suggestions
        }
        _ => &err.suggestions,
    };
    if let Some(text) = did_you_mean(suggestions) {
        writeln!(out, "       {text}").expect("write");
    }
    // Second locations shown in every mode; under a trace, those the trace shows already
    // (the call site of an argument error) are not repeated.
    for note in &err.notes {
        let in_trace = opts.show_trace
            && err
                .trace
                .iter()
                .any(|f| f.span == note.span && f.message == note.message);
        if in_trace {
            continue;
        }
        writeln!(out, "       {}…{} {}", st.dim, st.reset, note.message).expect("write");
        if let Some(span) = note.span {
            code_frame(&mut out, span, sources, &st, "         ", ERROR_GUTTER);
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

/// Frames the reference prints without a location (the argument frames of builtins: the
/// `while calling` frame above them already points at the call).
fn is_unlocated_frame(message: &str) -> bool {
    message.contains("passed to builtins.")
}

/// Frames that locate the error below them: the reference reports such errors without a
/// location of their own.
fn is_builtin_call_frame(message: &str) -> bool {
    (message.starts_with("while calling the '") && message.ends_with("' builtin"))
        || message == "while evaluating a path segment"
}

/// Width of the right-aligned line numbers (with their left margin) under an error.
const ERROR_GUTTER: usize = 13;
/// The same under a warning, which is indented two columns more.
const WARNING_GUTTER: usize = 15;

/// Indents every line of `msg` after the first by `indent`, as the reference does for
/// multi-line messages (empty lines stay empty).
pub fn indent_continuation(msg: &str, indent: &str) -> String {
    if !msg.contains('\n') {
        return msg.to_string();
    }
    let mut out = String::with_capacity(msg.len() + 16);
    for (i, line) in msg.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(indent);
            }
        }
        out.push_str(line);
    }
    out
}

/// A message prefixed by `prefix` (`evaluation warning:`): continuation lines are aligned
/// under the first line's text; a message that starts with a newline is printed as it is.
pub fn prefixed_message(prefix: &str, msg: &str) -> String {
    if msg.starts_with('\n') {
        format!("{prefix}{msg}")
    } else {
        let indent = " ".repeat(prefix.chars().count() + 1);
        format!("{prefix} {}", indent_continuation(msg, &indent))
    }
}

/// `Did you mean x?` / `Did you mean one of x, y or z?`, as the reference words it.
pub fn did_you_mean(suggestions: &[String]) -> Option<String> {
    match suggestions {
        [] => None,
        [one] => Some(format!("Did you mean {one}?")),
        [init @ .., last] => Some(format!(
            "Did you mean one of {} or {last}?",
            init.join(", ")
        )),
    }
}

/// Writes `at file:line:column:` and, as the reference does, the line before, the line
/// itself with a caret under the span's first column, and the line after.
fn code_frame(
    out: &mut String,
    span: Span,
    sources: &SourceMap,
    st: &Style,
    indent: &str,
    gutter: usize,
) {
    let (file, (line, col), _) = sources.range(span);
    writeln!(
        out,
        "{indent}at {}{file}:{line}:{col}{}:",
        st.bold, st.reset
    )
    .expect("write");
    // Sources that are not files (`«string»`, `«stdin»`...) still get their lines shown.
    let num_lines = sources.file_of(span).num_lines();
    let source_line = |out: &mut String, n: usize| {
        let text = sources.line_text(span, n - 1);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            writeln!(out, "{}{:>gutter$}|{}", st.dim, n, st.reset).expect("write");
        } else {
            writeln!(out, "{}{:>gutter$}|{} {}", st.dim, n, st.reset, text).expect("write");
        }
    };
    if line > 1 {
        source_line(out, line - 1);
    }
    source_line(out, line);
    writeln!(
        out,
        "{}{:>gutter$}|{} {}{}^{}",
        st.dim,
        "",
        st.reset,
        " ".repeat(col.saturating_sub(1)),
        st.red,
        st.reset,
    )
    .expect("write");
    if line < num_lines {
        source_line(out, line + 1);
    }
}

/// Renders a warning (`warning: ...` and a code frame).
pub fn render_warning(message: &str, span: Span, sources: &SourceMap, color: bool) -> String {
    let st = style(color);
    let mut out = String::new();
    let (magenta, reset) = if color {
        ("\x1b[35;1m", st.reset)
    } else {
        ("", "")
    };
    writeln!(
        out,
        "{magenta}warning:{reset} {}",
        indent_continuation(message, "         ")
    )
    .expect("write");
    code_frame(&mut out, span, sources, &st, "         ", WARNING_GUTTER);
    out
}

/// A warning found while lowering, as the reference shows it: with a code frame, or
/// with its position before the message.
pub fn render_lowering_warning(w: &crate::lower::Warning, sources: &SourceMap) -> String {
    if w.code_frame {
        return render_warning(&w.message, w.span, sources, false);
    }
    let loc = sources.location(w.span);
    format!(
        "warning: at {}:{}:{}: {}\n",
        loc.file, loc.line, loc.column, w.message
    )
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
