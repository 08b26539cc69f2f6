//! Whether an input is complete, by parsing it: input continues on the next line while the
//! only problem is that the parser ran out of text (an open bracket, string, `let` without
//! `in`, a trailing operator). Other syntax errors end the input so they are reported.

use rnix::{ParseError, SyntaxKind};

use crate::command::{parse_input, Command, Input};

/// Whether more lines are needed to complete `text`.
pub fn needs_more(text: &str) -> bool {
    let nix = match parse_input(text) {
        Input::Expr(e) => e,
        Input::Binding(_, rhs) => rhs,
        Input::Command(cmd, _, arg) if takes_expression(cmd) && !arg.is_empty() => arg,
        _ => return false,
    };
    let parse = rnix::Root::parse(nix);
    // Only the first error counts: after it, the parser's recovery may run out of text too.
    match parse.errors().first() {
        Some(ParseError::UnexpectedEOF | ParseError::UnexpectedEOFWanted(_)) => true,
        // An unterminated string is one error token running to the end of the text.
        Some(ParseError::UnexpectedWanted(SyntaxKind::TOKEN_ERROR, range, wanted)) => {
            usize::from(range.end()) == nix.len() && wanted.contains(&SyntaxKind::TOKEN_STRING_END)
        }
        _ => false,
    }
}

fn takes_expression(cmd: Command) -> bool {
    matches!(
        cmd,
        Command::Add | Command::Edit | Command::Type | Command::Print | Command::Doc
    )
}

#[cfg(test)]
mod tests {
    use super::needs_more;

    #[test]
    fn open_constructs_continue() {
        for open in [
            "{",
            "[ 1 2",
            "let x = 1;",
            "1 +",
            "''\n  text",
            "\"abc",
            "x = {",
            ":p {",
            "f (",
        ] {
            assert!(needs_more(open), "{open:?} should continue");
        }
    }

    #[test]
    fn complete_or_wrong_inputs_end() {
        for done in [
            "1 + 2",
            "{ a = 1; }",
            "x = 1",
            ":l ./x.nix",
            ":q",
            "",
            "1 )",
            "{ a = ; }",
            "inherit (a) b",
        ] {
            assert!(!needs_more(done), "{done:?} should end");
        }
    }
}
