//! Path literals: resolution against the file's directory or `$HOME`, and Nix's lexical
//! canonicalisation (no filesystem access, symlinks are not resolved).

use std::path::PathBuf;
use std::rc::Rc;

use rnix::ast::{self, InterpolPart};
use rowan::ast::AstNode;

use super::Lowerer;
use crate::error::EvalResult;
use crate::ir::{Expr, StrPart};
use crate::value::Value;

/// Canonicalises an absolute path the way Nix does: collapses `//`, drops `.`, resolves `..`
/// lexically and removes a trailing slash.
pub fn canonicalize_path(path: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

impl Lowerer<'_> {
    pub(super) fn lower_path(&mut self, p: &ast::Path) -> EvalResult<Expr> {
        let span = self.span(p.syntax());
        let mut parts = Vec::new();
        // rnix's own `parts()` panics on the odd tokens its error recovery leaves inside a
        // path node (`./a ${b}`), so the children are walked here and anything else is a
        // syntax error.
        for (i, child) in p.syntax().children_with_tokens().enumerate() {
            let part = match child {
                rowan::NodeOrToken::Token(t)
                    if matches!(
                        t.kind(),
                        rnix::SyntaxKind::TOKEN_PATH_ABS
                            | rnix::SyntaxKind::TOKEN_PATH_REL
                            | rnix::SyntaxKind::TOKEN_PATH_HOME
                    ) =>
                {
                    InterpolPart::Literal(t)
                }
                rowan::NodeOrToken::Node(n) if ast::Interpol::can_cast(n.kind()) => {
                    match ast::Interpol::cast(n) {
                        Some(interp) => InterpolPart::Interpolation(interp),
                        None => return Err(self.error(p.syntax(), "syntax error in path")),
                    }
                }
                other => {
                    let text = other.to_string();
                    return Err(self.error(
                        p.syntax(),
                        format!("syntax error, unexpected '{}' in path", text.trim()),
                    ));
                }
            };
            match part {
                InterpolPart::Literal(lit) => {
                    let text = lit.text();
                    let text = if i == 0 {
                        self.path_prefix(p, text)?
                    } else {
                        text.to_string()
                    };
                    parts.push(StrPart::Lit(text.into_bytes().into_boxed_slice()));
                }
                InterpolPart::Interpolation(interp) => {
                    let ispan = self.span(interp.syntax());
                    let e = self.lower_child_rc(interp.syntax(), interp.expr())?;
                    parts.push(StrPart::Interp(e, ispan));
                }
            }
        }
        if let [StrPart::Lit(text)] = parts.as_slice() {
            return Ok(Expr::Const(Value::Path(Rc::new(canonicalize_path(text)))));
        }
        Ok(Expr::PathInterp {
            parts: parts.into_boxed_slice(),
            span,
        })
    }

    /// Makes the literal start of a path absolute.
    pub(super) fn path_prefix(&mut self, p: &ast::Path, text: &str) -> EvalResult<String> {
        let whole = p.syntax().text().to_string();
        match p {
            ast::Path::PathAbs(_) => {
                let level = self.options().lint_absolute_paths;
                self.lint(level, p.syntax(), format!("absolute path literals are not portable. Consider replacing path literal '{whole}' by a string, relative path, or parameter (lint-absolute-path-literals)"))?;
            }
            ast::Path::PathHome(_) => {
                let level = self.options().lint_absolute_paths;
                self.lint(level, p.syntax(), format!("home path literals are not portable. Consider replacing path literal '{whole}' by a string, relative path, or parameter (lint-absolute-path-literals)"))?;
            }
            ast::Path::PathRel(_) if !whole.starts_with("./") && !whole.starts_with("../") => {
                let level = self.options().lint_short_paths;
                self.lint(level, p.syntax(), format!("relative path literal '{whole}' should be prefixed with '.' for clarity: './{whole}' (lint-short-path-literals)"))?;
            }
            _ => {}
        }
        match p {
            ast::Path::PathAbs(_) => Ok(text.to_string()),
            ast::Path::PathHome(_) => {
                let home = match &self.options().home {
                    Some(h) => h.clone(),
                    None => std::env::var_os("HOME")
                        .map(PathBuf::from)
                        .unwrap_or_else(|| PathBuf::from("/")),
                };
                Ok(format!(
                    "{}/{}",
                    home.display(),
                    text.trim_start_matches('~').trim_start_matches('/')
                ))
            }
            ast::Path::PathRel(_) => Ok(format!("{}/{}", self.base_dir().display(), text)),
            ast::Path::PathSearch(_) => Err(self.error(p.syntax(), "unexpected search path")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalization() {
        assert_eq!(
            canonicalize_path(b"/a//b/./c/../d/"),
            PathBuf::from("/a/b/d")
        );
        assert_eq!(canonicalize_path(b"/.."), PathBuf::from("/"));
        assert_eq!(canonicalize_path(b"/"), PathBuf::from("/"));
    }
}
