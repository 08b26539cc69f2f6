//! `:doc`: a builtin's documentation, a function's `/** */` doc comment, or else where the
//! function is defined.

use tvix_eval::builtins::docs::builtin_doc;
use tvix_eval::doc_comment::doc_comment_before;
use tvix_eval::{EvalResult, Evaluator, Value};

use crate::session::other;

/// The text `:doc` shows for `v` (already forced), the value of the expression `expr`.
pub fn doc(ev: &Evaluator, expr: &str, v: &Value, color: bool) -> EvalResult<String> {
    let (bold, reset) = if color {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("", "")
    };
    match v {
        Value::PrimOp(app) => {
            let name = app.op.name;
            let Some(d) = builtin_doc(name) else {
                return Err(other(format!("builtin '{name}' has no documentation")));
            };
            let mut synopsis = format!("builtins.{}", d.name);
            for a in d.args {
                synopsis.push(' ');
                synopsis.push_str(a);
            }
            let mut out = format!("{bold}Synopsis:{reset} {synopsis}\n");
            if !app.args.is_empty() {
                out.push_str(&format!(
                    "(applied to {} of its {} arguments)\n",
                    app.args.len(),
                    d.args.len()
                ));
            }
            out.push('\n');
            out.push_str(&indent(d.doc.trim_end()));
            Ok(out)
        }
        Value::Lambda(c) => {
            let span = c.lambda.span;
            let loc = ev.sources.location(span);
            let file = ev.sources.file_of(span);
            let offset = (span.low() - file.span.low()) as usize;
            let title = match c.lambda.name {
                Some(n) => format!("Function {n}"),
                None => "Anonymous function".to_string(),
            };
            let site = format!("{}:{}:{}", loc.file, loc.line, loc.column);
            match doc_comment_before(file.source(), offset) {
                Some(text) => Ok(format!(
                    "{bold}{title}{reset}\n    … defined at {site}\n\n{}",
                    indent(text.trim_end())
                )),
                None => {
                    let line = file.source_line(loc.line - 1).trim_end().to_string();
                    Ok(format!(
                        "{bold}{title}{reset} has no documentation comment (/** ... */).\n    \
                         … defined at {site}\n\n    {line}"
                    ))
                }
            }
        }
        // Constants of `builtins` (`currentSystem`, `storeDir`) are documented too; only the
        // expression names them.
        _ if builtin_doc(expr.trim()).is_some() && is_builtin_name(expr.trim()) => {
            let d = builtin_doc(expr.trim()).expect("checked");
            Ok(format!(
                "{bold}builtins.{}{reset} (a constant)\n\n{}",
                d.name,
                indent(d.doc.trim_end())
            ))
        }
        _ => Err(other(format!(
            "value does not have documentation: it is {}, not a function",
            v.type_desc()
        ))),
    }
}

/// `builtins.NAME` or `__NAME`: an expression that can only mean a builtin.
fn is_builtin_name(expr: &str) -> bool {
    expr.strip_prefix("builtins.")
        .or_else(|| expr.strip_prefix("__"))
        .is_some_and(tvix_eval::value::print::is_plain_identifier)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("    {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
