//! Syntax highlighting of the input line with rnix's tokenizer (colours only, so the width
//! of the line is unchanged, as rustyline requires).

use rnix::SyntaxKind::{self, *};

use crate::style::Style;

/// `line` with ANSI colours; a leading `:command` is shown bold and the rest highlighted.
pub fn highlight(line: &str) -> String {
    let st = Style::new(true);
    let mut out = String::with_capacity(line.len() * 2);
    let mut rest = line;
    if line.trim_start().starts_with(':') {
        let start = line.len() - line.trim_start().len();
        let end = line[start..]
            .find(char::is_whitespace)
            .map_or(line.len(), |i| start + i);
        out.push_str(&line[..start]);
        out.push_str("\x1b[1m");
        out.push_str(&line[start..end]);
        out.push_str(st.reset);
        rest = &line[end..];
    }
    for (kind, text) in rnix::tokenize(rest) {
        match colour(kind, &st) {
            Some(c) => {
                out.push_str(c);
                out.push_str(text);
                out.push_str(st.reset);
            }
            None => out.push_str(text),
        }
    }
    out
}

fn colour(kind: SyntaxKind, st: &Style) -> Option<&'static str> {
    Some(match kind {
        TOKEN_IF | TOKEN_THEN | TOKEN_ELSE | TOKEN_LET | TOKEN_IN | TOKEN_WITH | TOKEN_REC
        | TOKEN_INHERIT | TOKEN_ASSERT | TOKEN_OR => st.keyword,
        TOKEN_INTEGER | TOKEN_FLOAT => st.number,
        TOKEN_STRING_START | TOKEN_STRING_CONTENT | TOKEN_STRING_END | TOKEN_URI => st.string,
        TOKEN_PATH_ABS | TOKEN_PATH_REL | TOKEN_PATH_HOME | TOKEN_PATH_SEARCH => st.path,
        TOKEN_COMMENT => st.comment,
        TOKEN_ERROR => st.error,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvix_eval::diagnostic::strip_ansi;

    #[test]
    fn highlighting_keeps_the_text() {
        for line in [
            "let x = \"a${b}c\"; in x + 1 # note",
            ":p { a = ./x.nix; }",
            "''\n multi",
            "\"unterminated",
        ] {
            let h = highlight(line);
            assert_eq!(strip_ansi(&h), line);
        }
        assert!(highlight("if true then 1 else 2").contains("\x1b[33mif\x1b[0m"));
    }
}
