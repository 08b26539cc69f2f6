//! Static diagnostics of one file: the evaluator's own lowering errors (parse errors in the
//! reference's wording, duplicate attributes, ...), every undefined variable, every parse error
//! rnix recovered from, unused bindings, useless `with`s and names a `with` cannot shadow.

use std::sync::Arc;

use rnix::TextRange;
use tvix_eval::lower::{self, Globals, LowerOptions};
use tvix_eval::source::{File, SourceMap};

use crate::analysis::{Analysis, DefKind, Target};

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The file cannot be evaluated.
    Error,
    /// Probably a mistake.
    Warning,
    /// A remark.
    Hint,
}

/// One finding, with a byte range of the file.
#[derive(Clone, Debug)]
pub struct Finding {
    /// Where.
    pub range: TextRange,
    /// How bad.
    pub severity: Severity,
    /// The message.
    pub message: String,
    /// Whether the code is unneeded (editors fade it).
    pub unnecessary: bool,
    /// A short code naming the kind of finding (`unused-let`, ...).
    pub code: &'static str,
}

/// Lowers `text` with the evaluator's front end and returns its error, if any, as a finding.
/// The evaluator stops at the first error; the other checks below find the rest.
pub fn lowering_error(
    name: &str,
    text: &str,
    path_dir: std::path::PathBuf,
    globals: &Globals,
) -> Option<Finding> {
    let sources = SourceMap::new();
    let result = lower::lower_source(
        &sources,
        name.to_string(),
        text.to_string(),
        path_dir,
        globals,
        &LowerOptions::default(),
    );
    let err = result.err()?;
    let (start, end) = match err.span {
        Some(span) => {
            let file: Arc<File> = sources.file_of(span);
            let base = file.span.low();
            ((span.low() - base) as usize, (span.high() - base) as usize)
        }
        None => (text.len(), text.len()),
    };
    let start = start.min(text.len());
    let end = end.clamp(start, text.len());
    Some(Finding {
        range: TextRange::new((start as u32).into(), (end as u32).into()),
        severity: Severity::Error,
        message: err.kind.to_string(),
        unnecessary: false,
        code: "eval-front-end",
    })
}

/// Findings from the parse (rnix's recovered errors) and from the analysis.
pub fn static_findings(
    name: &str,
    root: &rnix::SyntaxNode,
    text: &str,
    parse_errors: &[rnix::ParseError],
    analysis: &Analysis,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let end = TextRange::empty((text.len() as u32).into());
    // Only the first syntax error: what follows it is rnix's recovery (one unclosed brace
    // or string makes every later token "unexpected"), and Nix itself stops at the first.
    // Names used after that point are read from a recovered tree, so they are not checked.
    let mut checked_until = text.len() as u32;
    if let Some(e) = parse_errors.first() {
        let (range, message) = lower::describe_parse_error(text, e);
        let range = range.unwrap_or(end);
        checked_until = u32::from(range.start());
        out.push(Finding {
            range,
            severity: Severity::Error,
            message,
            unnecessary: false,
            code: "parse",
        });
    }
    for r in &analysis.refs {
        if u32::from(r.range.start()) >= checked_until {
            continue;
        }
        if r.target == Target::Undefined {
            out.push(Finding {
                range: r.range,
                severity: Severity::Error,
                message: format!("undefined variable '{}'", r.name),
                unnecessary: false,
                code: "undefined-variable",
            });
        }
        if let Some(with) = r.under_with {
            let shadowed = analysis.withs.iter().any(|w| {
                w.range == with
                    && w.literal_names
                        .as_ref()
                        .is_some_and(|names| names.contains(&r.name))
            });
            if shadowed {
                let what = match r.target {
                    Target::Global => "the builtin".to_string(),
                    Target::Def(d) => format!("the {}", analysis.defs[d].kind.describe()),
                    _ => continue,
                };
                out.push(Finding {
                    range: r.range,
                    severity: Severity::Hint,
                    message: format!(
                        "'{}' refers to {what}, not to the attribute of the enclosing `with`: \
                         `with` never shadows names bound lexically or built in",
                        r.name
                    ),
                    unnecessary: false,
                    code: "with-shadowed",
                });
            }
        }
    }
    // After a syntax error the tree is rnix's recovery: a binding's uses, a duplicate's
    // other definition or a `with`'s lookups may be in the part it lost, so the findings
    // about whole scopes wait until the file parses (one error, as Nix shows).
    if !parse_errors.is_empty() {
        return out;
    }
    for d in &analysis.defs {
        if !d.uses.is_empty() || d.name.starts_with('_') {
            continue;
        }
        let (severity, what, code) = match d.kind {
            DefKind::Let => (Severity::Warning, "let binding", "unused-let"),
            DefKind::Formal => (Severity::Hint, "formal", "unused-formal"),
            DefKind::LambdaArg => (Severity::Hint, "argument", "unused-argument"),
            DefKind::RecAttr => continue,
        };
        out.push(Finding {
            range: d.sites[0],
            severity,
            message: format!("unused {what} '{}'", d.name),
            unnecessary: true,
            code,
        });
    }
    for d in crate::duplicates::duplicates(root) {
        let first = line_col(text, d.first.start().into());
        out.push(Finding {
            range: d.range,
            severity: Severity::Error,
            message: format!(
                "attribute '{}' already defined at {name}:{}:{}",
                d.path, first.0, first.1
            ),
            unnecessary: false,
            code: "duplicate-attribute",
        });
    }
    for w in &analysis.withs {
        if w.uses == 0 {
            out.push(Finding {
                range: w.keyword,
                severity: Severity::Hint,
                message: "this `with` is unused: no variable in its body is looked up in it"
                    .to_string(),
                unnecessary: true,
                code: "unused-with",
            });
        }
    }
    out
}

/// Adds `extra` to `findings` unless an error with the same range and message is there.
pub fn merge(findings: &mut Vec<Finding>, extra: Option<Finding>) {
    if let Some(f) = extra {
        let dup = findings.iter().any(|g| {
            g.message == f.message && (g.range == f.range || g.range.contains_range(f.range))
        });
        if !dup {
            findings.insert(0, f);
        }
    }
}

/// 1-based line and column (in characters) of a byte offset, as the reference prints them.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map(|i| i + 1).unwrap_or(0)..]
        .chars()
        .count()
        + 1;
    (line, column)
}
