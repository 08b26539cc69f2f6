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
    /// The evaluation was stopped from outside (Ctrl-C in the REPL, a cancelled or
    /// over-budget request in the language server).
    #[error("evaluation interrupted")]
    Interrupted,
    /// Integer division by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// A build that evaluation needed (import-from-derivation) failed.
    #[error("{message}")]
    BuildFailed {
        /// Nix's words for the failure, with the log's last lines.
        message: String,
        /// The exit status Nix ends with for it (100 for a failed build, ...).
        exit_status: i32,
    },
    /// Any other failure with Nix's message text.
    #[error("{0}")]
    Other(String),
}

impl ErrorKind {
    /// The exit status a command that fails with this error ends with: Nix's build
    /// statuses for failed builds, otherwise 1.
    pub fn exit_status(&self) -> i32 {
        match self {
            ErrorKind::BuildFailed { exit_status, .. } => *exit_status,
            _ => 1,
        }
    }

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
    /// Close names the user may have meant ("Did you mean ...?").
    pub suggestions: Vec<String>,
    /// Further places shown with the error even without `--show-trace` (the call site of
    /// an argument error, the bindings an infinite recursion goes through).
    pub notes: Vec<TraceFrame>,
    /// While an infinite recursion travels up to the evaluation it re-entered: which value
    /// that is and the places passed on the way.
    pub(crate) recursion: Option<Box<RecursionLoop>>,
}

/// The loop of an infinite recursion, collected as the error leaves the thunks that form it.
#[derive(Debug, Clone)]
pub(crate) struct RecursionLoop {
    /// The thunk found being evaluated (its cell's address, for identity only).
    pub(crate) target: usize,
    /// The expressions of the thunks left so far, innermost first.
    pub(crate) members: Vec<Span>,
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
            suggestions: Vec::new(),
            notes: Vec::new(),
            recursion: None,
        })
    }

    /// An argument error with the place of the call as a second location, shown even
    /// without `--show-trace`: the error itself points at the function's definition (as
    /// current Nix does), and the user's own line must be visible too.
    pub fn with_call_site(mut self: Box<Self>, call: Option<Span>) -> Box<EvalError> {
        if let Some(call) = call.filter(|c| Some(*c) != self.span) {
            self.notes.push(TraceFrame {
                span: Some(call),
                message: "from call site".to_string(),
            });
        }
        self
    }

    /// The same error with "did you mean" suggestions.
    pub fn with_suggestions(mut self: Box<Self>, suggestions: Vec<String>) -> Box<EvalError> {
        self.suggestions = suggestions;
        self
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
    /// Always inlined, with the error's side out of line: this wraps every call and every
    /// attribute read, and when the compiler chose not to inline it, the success path paid
    /// a call and a copy of the result (a fifth of `lists` once).
    #[inline(always)]
    fn context(self, span: Option<Span>, msg: impl FnOnce() -> String) -> EvalResult<T> {
        match self {
            Ok(v) => Ok(v),
            Err(e) => Err(with_frame(e, span, msg)),
        }
    }
}

/// `e` with the frame `msg()` at `span` added to its trace.
#[cold]
#[inline(never)]
fn with_frame(
    mut e: Box<EvalError>,
    span: Option<Span>,
    msg: impl FnOnce() -> String,
) -> Box<EvalError> {
    e.trace.push(TraceFrame {
        span,
        message: msg(),
    });
    e
}

#[cfg(test)]
mod tests {
    use crate::diagnostic::{render_error, RenderOptions};
    use crate::{EvalConfig, Evaluator};

    /// Evaluates `src` deeply; the error rendered with `--show-trace`, or the printed value.
    fn run(src: &str) -> Result<String, String> {
        let mut ev = Evaluator::new(Box::new(crate::io::StdIO::new()), EvalConfig::default());
        ev.diagnostics = Box::new(|_| {});
        let r = ev
            .eval_source(
                "«test»".into(),
                src.into(),
                std::env::current_dir().unwrap(),
            )
            .and_then(|v| ev.force_deep(v));
        match r {
            Ok(v) => Ok(crate::value::print::print_value(&v)),
            Err(e) => Err(render_error(
                &e,
                &ev.sources,
                RenderOptions {
                    show_trace: true,
                    color: false,
                },
            )),
        }
    }

    // Found by the fuzzer (eval/examples/fuzz.rs): a `__toString` that returns its own set
    // (through a partially applied builtin) recursed without bound and overflowed the stack.
    #[test]
    fn to_string_returning_self_fails_cleanly() {
        let e = run(r#""${{ __toString = builtins.addErrorContext "x"; }}""#).unwrap_err();
        assert!(e.contains("max-call-depth exceeded"), "{e}");
        let e = run("toString { __toString = builtins.seq self: ./dir1/a.nix; }").unwrap_err();
        assert!(e.contains("max-call-depth exceeded"), "{e}");
        let e = run(r#"let x = { outPath = x; }; in "${x}""#).unwrap_err();
        assert!(e.contains("max-call-depth exceeded"), "{e}");
    }

    // Found by the fuzzer: `toString` of a list that contains itself, and (found while
    // fixing that) `==`, `<` and `elem` on two such structures, recursed on the native
    // stack without bound.
    #[test]
    fn self_containing_values_fail_cleanly() {
        for src in [
            "toString (let x = [ x ]; in x)",
            "let x = [ x ]; y = [ y ]; in x == y",
            "let x = { a = x; }; y = { a = y; }; in x == y",
            "let x = [ x ]; y = [ y ]; in x < y",
            "let x = [ x ]; y = [ y ]; in builtins.elem x [ y ]",
        ] {
            let e = run(src).unwrap_err();
            assert!(e.contains("max-call-depth exceeded"), "{src}: {e}");
        }
        // The same cell is equal to itself without being walked.
        assert_eq!(run("let x = [ x ]; in x == x").unwrap(), "true");
    }

    // Found by the fuzzer: rnix's error recovery leaves whitespace inside a path node, on
    // which its `Path::parts()` panicked.
    #[test]
    fn path_followed_by_interpolation_is_a_syntax_error() {
        let e = run(r#"let foo = "x"; in ./a-b ${foo}"#).unwrap_err();
        assert!(e.starts_with("error: syntax error"), "{e}");
        assert!(run(r#"let foo = "x"; in ./a-${foo}-b"#)
            .unwrap()
            .contains("/a-x-b"));
    }

    #[test]
    fn builtin_call_frames() {
        let e = run("builtins.length 1").unwrap_err();
        assert_eq!(
            e,
            "error:\n       … while calling the 'length' builtin\n         at «test»:1:1:\n            1| builtins.length 1\n             | ^\n\n       … while evaluating the first argument passed to builtins.length\n\n       error: expected a list but found an integer: 1\n"
        );
    }

    #[test]
    fn assert_equal_explains() {
        let e = run("assert { b = 1; } == { b = 2; }; 1").unwrap_err();
        assert!(e.contains("… while comparing attribute 'b'"), "{e}");
        assert!(
            e.ends_with(
                "error: an integer with value '1' is not equal to an integer with value '2'\n"
            ),
            "{e}"
        );
        let e = run("assert [ 1 ] == [ 1 2 ]; 1").unwrap_err();
        assert!(
            e.contains("list of size '1' is not equal to list of size '2'"),
            "{e}"
        );
        let e = run(r#"assert "a" == 1; 1"#).unwrap_err();
        assert!(
            e.contains(r#"a string of value '"a"' is not equal to an integer of value '1'"#),
            "{e}"
        );
        let ok = run("builtins.tryEval (assert 1 == 2; 1)").unwrap();
        assert_eq!(ok, "{ success = false; value = false; }");
        assert_eq!(
            run("let f = x: x; in assert [ f ] == [ f ]; 1").unwrap(),
            "1"
        );
    }

    #[test]
    fn nul_bytes_in_strings_are_rejected() {
        let e = run("\"a\0b\"").unwrap_err();
        assert!(e.contains("input string 'a\u{2400}b' cannot be represented as Nix string because it contains null bytes"), "{e}");
    }
}
