//! Typed evaluation errors. Each carries the span where it happened and the chain of
//! `… while …` frames collected as it travelled up, so the CLI, REPL and LSP can all show the
//! same diagnostic without parsing text.

use crate::source::Span;

/// What went wrong.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ErrorKind {
    /// A syntax error reported by the parser or found while lowering.
    #[error("{0}")]
    Parse(String),
    /// `undefined variable 'x'`, found while lowering.
    #[error("undefined variable '{0}'")]
    UndefinedVariable(String),
    /// `throw msg`
    #[error("{0}")]
    Throw(String),
    /// `abort msg`
    #[error("evaluation aborted with the following error message: '{0}'")]
    Abort(String),
    /// `assert` with a false condition; holds the condition's source text.
    #[error("assertion '{0}' failed")]
    AssertionFailed(String),
    /// `assert a == b` with unequal sides: why they differ.
    #[error("{0}")]
    AssertEqual(String),
    /// A value of the wrong type; `found` is e.g. `a string: "foo"`.
    #[error("expected {expected} but found {found}")]
    TypeError {
        /// e.g. `an integer`
        expected: &'static str,
        /// The type and a preview of the value.
        found: String,
    },
    /// Selecting an attribute that is not there.
    #[error("attribute '{name}' missing")]
    MissingAttr {
        /// The missing name.
        name: String,
        /// Names in the set that are close to it.
        suggestions: Vec<String>,
    },
    /// A thunk forced while it was being evaluated.
    #[error("infinite recursion encountered")]
    InfiniteRecursion,
    /// Too deep a chain of calls.
    #[error("stack overflow; max-call-depth exceeded")]
    StackOverflow,
    /// Integer division by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// Any other failure with Nix's message text.
    #[error("{0}")]
    Other(String),
}

impl ErrorKind {
    /// Whether `builtins.tryEval` catches this error (only `throw` and failed assertions).
    pub fn is_catchable(&self) -> bool {
        matches!(
            self,
            ErrorKind::Throw(_) | ErrorKind::AssertionFailed(_) | ErrorKind::AssertEqual(_)
        )
    }
}

/// One `… while …` frame of a trace.
#[derive(Debug, Clone)]
pub struct TraceFrame {
    /// Where.
    pub span: Option<Span>,
    /// What was happening, e.g. `while evaluating the attribute 'x'`.
    pub message: String,
}

/// An evaluation error with its location and trace.
#[derive(Debug, Clone)]
pub struct EvalError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Where, if known.
    pub span: Option<Span>,
    /// Context frames, innermost first.
    pub trace: Vec<TraceFrame>,
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for EvalError {}

/// Errors are boxed so that `Result<Value, _>` stays small on the hot path.
pub type EvalResult<T> = Result<T, Box<EvalError>>;

impl EvalError {
    /// An error of `kind` at `span`.
    pub fn new(kind: ErrorKind, span: Option<Span>) -> Box<EvalError> {
        Box::new(EvalError {
            kind,
            span,
            trace: Vec::new(),
        })
    }
}

/// Shorthand for an `Other` error with a message.
pub fn err<T>(msg: impl Into<String>, span: Option<Span>) -> EvalResult<T> {
    Err(EvalError::new(ErrorKind::Other(msg.into()), span))
}

/// Extension for adding trace frames to results.
pub trait AddContext<T> {
    /// Adds a `… while …` frame if this is an error.
    fn context(self, span: Option<Span>, msg: impl FnOnce() -> String) -> EvalResult<T>;
}

impl<T> AddContext<T> for EvalResult<T> {
    fn context(self, span: Option<Span>, msg: impl FnOnce() -> String) -> EvalResult<T> {
        self.map_err(|mut e| {
            e.trace.push(TraceFrame {
                span,
                message: msg(),
            });
            e
        })
    }
}
