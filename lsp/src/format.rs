//! Formatting through nixpkgs-fmt, used as a library (crates.io `nixpkgs-fmt`).
//!
//! Why this formatter: it is pure Rust and works as a library, so formatting needs no extra
//! command installed. alejandra (also a Rust library) cannot be linked into `tvix`: it
//! declares a `#[global_allocator]` on x86_64 Linux, which conflicts with the binary's own.
//! nixfmt, the formatter Nixpkgs now uses, exists only as a Haskell program.
//! Text that does not parse is refused rather than reformatted around the error.

/// Why a document cannot be formatted.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The text has syntax errors.
    #[error("cannot format a file with syntax errors: {0}")]
    SyntaxErrors(String),
    /// The formatter panicked on this input.
    #[error("the formatter failed on this input")]
    Crashed,
}

/// The formatted text, or `None` when it is already formatted.
pub fn format(text: &str) -> Result<Option<String>, FormatError> {
    let parse = rnix::Root::parse(text);
    if let Some(e) = parse.errors().first() {
        let (_, message) = tvix_eval::lower::describe_parse_error(text, e);
        return Err(FormatError::SyntaxErrors(message));
    }
    let input = text.to_string();
    let after = std::panic::catch_unwind(move || nixpkgs_fmt::reformat_string(&input))
        .map_err(|_| FormatError::Crashed)?;
    Ok((after != text).then_some(after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_refuses_broken_text() {
        let out = format("{a=1;b=[1 2];}").unwrap().unwrap();
        assert!(out.contains("a = 1;"), "{out}");
        assert!(format(&out).unwrap().is_none());
        assert!(matches!(
            format("{ a = ; "),
            Err(FormatError::SyntaxErrors(_))
        ));
    }
}
