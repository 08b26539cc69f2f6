//! Helpers for the evaluator's unit tests: evaluate source and print the result the way
//! `nix-instantiate --eval --strict` does.

use crate::eval::{EvalConfig, Evaluator};
use crate::value::print::print_value;

/// Evaluates `src` (named `name`, relative paths against the current directory) deeply with
/// `config`; the printed value, or the error message.
pub(crate) fn eval_named_with(name: &str, src: &str, config: EvalConfig) -> Result<String, String> {
    let mut ev = Evaluator::new(Box::new(crate::io::StdIO::new()), config);
    ev.diagnostics = Box::new(|_| {});
    let base = std::env::current_dir().map_err(|e| e.to_string())?;
    let v = ev
        .eval_source(name.into(), src.into(), base)
        .and_then(|v| ev.force_deep(v))
        .map_err(|e| e.kind.to_string())?;
    Ok(print_value(&v))
}

/// [`eval_named_with`] for source named `«test»` and the default settings.
pub(crate) fn eval(src: &str) -> Result<String, String> {
    eval_named_with("«test»", src, EvalConfig::default())
}

/// Asserts that `src` evaluates and prints as `expected`.
#[track_caller]
pub(crate) fn ok(src: &str, expected: &str) {
    assert_eq!(eval(src), Ok(expected.to_string()), "evaluating {src}");
}

/// Asserts that `src` fails with exactly the message `expected`.
#[track_caller]
pub(crate) fn err(src: &str, expected: &str) {
    assert_eq!(eval(src), Err(expected.to_string()), "evaluating {src}");
}
