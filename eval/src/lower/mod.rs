//! Lowering: rnix's syntax tree to the evaluator's IR.
//!
//! This is where the static half of the language lives: variables resolve to frame slots
//! (only `with` stays dynamic), nested attribute paths are merged into nested sets, and the
//! syntax errors that rnix accepts but Nix rejects (duplicate attributes, dynamic attributes in
//! `let`, duplicate formals, undefined variables) are reported with their spans.

mod attrs;
mod lift;
mod paths;
mod scope;
mod show;
mod syntax_error;

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use rnix::ast::{self, AstToken, HasEntry, InterpolPart};
use rowan::ast::AstNode;
use rustc_hash::FxHashMap;

pub use paths::canonicalize_path;
use scope::{Resolved, Scope, Scopes};

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::ir::*;
use crate::source::{File, SourceMap, Span};
use crate::symbol::Symbol;
use crate::value::Value;

/// How a lint reports what it finds (`--lint-*` flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LintLevel {
    /// Not reported.
    #[default]
    Off,
    /// Reported as a warning.
    Warn,
    /// Reported as an error.
    Fatal,
}

impl LintLevel {
    /// Parses `warn` / `fatal` / `off`.
    pub fn parse(s: &str) -> Option<LintLevel> {
        match s {
            "warn" => Some(LintLevel::Warn),
            "fatal" => Some(LintLevel::Fatal),
            "off" | "ignore" => Some(LintLevel::Off),
            _ => None,
        }
    }
}

/// A warning found while lowering.
#[derive(Clone, Debug)]
pub struct Warning {
    /// The message.
    pub message: String,
    /// Where.
    pub span: Span,
    /// Whether the reference shows the warning with a code frame (lints) or only with
    /// its position before the message (`warning: at FILE:LINE:COL: ...`).
    pub code_frame: bool,
}

/// Options that change how source is lowered.
#[derive(Clone, Default)]
pub struct LowerOptions {
    /// `--lint-absolute-path-literals` (absolute and `~/` paths).
    pub lint_absolute_paths: LintLevel,
    /// `--lint-short-path-literals` (relative paths without `./`).
    pub lint_short_paths: LintLevel,
    /// `--lint-url-literals`.
    pub lint_url_literals: LintLevel,
    /// Allow `|>` and `<|` (experimental feature `pipe-operators`).
    pub pipe_operators: bool,
    /// The home directory for `~/` paths.
    pub home: Option<PathBuf>,
}

/// A variable reference resolved while lowering: where it is used and where it is defined
/// (`None` for builtins). The LSP uses these for go-to-definition and references.
#[derive(Clone, Debug)]
pub struct Resolution {
    /// The reference.
    pub use_span: Span,
    /// The binding, if it is in source.
    pub def_span: Option<Span>,
}

/// The result of lowering one file or expression.
pub struct Lowered {
    /// The expression.
    pub expr: ExprRef,
    /// Every resolved variable reference.
    pub resolutions: Vec<Resolution>,
    /// Lint warnings.
    pub warnings: Vec<Warning>,
}

/// The names of the global frame, in slot order.
pub type Globals = FxHashMap<Symbol, u32>;

/// Parses and lowers `text` as file `name`; relative paths resolve against `base_dir`.
pub fn lower_source(
    sources: &SourceMap,
    name: String,
    text: String,
    base_dir: PathBuf,
    globals: &Globals,
    options: &LowerOptions,
) -> EvalResult<Lowered> {
    parse_and_lower(sources, name, text, base_dir, globals, options).map(|(lowered, ..)| lowered)
}

/// Lowers `text` as [`lower_source`] does (so it fails as evaluation would, undefined
/// variables included) and also returns the expression as `nix-instantiate --parse`
/// prints it.
pub fn show_source(
    sources: &SourceMap,
    name: String,
    text: String,
    base_dir: PathBuf,
    globals: &Globals,
    options: &LowerOptions,
) -> EvalResult<(Lowered, String)> {
    let (lowered, root, file) =
        parse_and_lower(sources, name, text, base_dir.clone(), globals, options)?;
    // A lowerer of its own: its scopes and lint findings are not wanted again.
    let quiet = LowerOptions {
        lint_absolute_paths: LintLevel::Off,
        lint_short_paths: LintLevel::Off,
        lint_url_literals: LintLevel::Off,
        ..options.clone()
    };
    let mut l = Lowerer::new(file, base_dir, globals, &quiet);
    let mut out = String::new();
    l.show(&root, &mut out)?;
    Ok((lowered, out))
}

fn parse_and_lower(
    sources: &SourceMap,
    name: String,
    text: String,
    base_dir: PathBuf,
    globals: &Globals,
    options: &LowerOptions,
) -> EvalResult<(Lowered, ast::Expr, Arc<File>)> {
    // Nix ends a line at a lone carriage return; rnix does not. Turning it into a newline
    // keeps every byte offset, and so every span, unchanged.
    let text = normalize_lone_cr(text);
    let file = sources.add(name, text);
    let parse = rnix::Root::parse(file.source());
    if let Some(e) = parse.errors().first() {
        return Err(parse_error(&file, e));
    }
    let root = parse.tree();
    let mut l = Lowerer::new(file.clone(), base_dir, globals, options);
    let Some(root_expr) = root.expr() else {
        return Err(l.error(root.syntax(), "syntax error, unexpected end of file"));
    };
    let expr = l.lower(&root_expr, None)?;
    let lowered = Lowered {
        expr: Rc::new(expr),
        resolutions: l.resolutions,
        warnings: l.warnings,
    };
    Ok((lowered, root_expr, file))
}

fn normalize_lone_cr(text: String) -> String {
    if !text.contains('\r') {
        return text;
    }
    let mut bytes = text.into_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n') {
            bytes[i] = b'\n';
        }
    }
    String::from_utf8(bytes).expect("replacing ASCII keeps UTF-8 valid")
}

/// A parse error in the reference's wording, with its range (`None`: at the end of the file).
/// The language server reports every error rnix recovered from with this wording.
pub fn describe_parse_error(
    source: &str,
    e: &rnix::ParseError,
) -> (Option<rnix::TextRange>, String) {
    use rnix::ParseError as P;
    // The lexer rejects a path ending in `/`; say so, as the reference does (at the end).
    if let P::UnexpectedWanted(got, r, _) = e {
        if *got == rnix::SyntaxKind::TOKEN_ERROR && is_trailing_slash_path(source, *r) {
            let end = rnix::TextRange::empty(r.end());
            return (Some(end), "path has a trailing slash".to_string());
        }
    }
    if let Some(described) = syntax_error::describe(source, e) {
        return described;
    }
    match e {
        P::DuplicatedArgs(r, name) => (
            Some(*r),
            format!("duplicate formal function argument '{name}'"),
        ),
        P::UnexpectedDoubleBind(r) => (Some(*r), "syntax error, double @ binding".to_string()),
        P::RecursionLimitExceeded => (None, "expression nested too deeply".to_string()),
        other => (None, format!("syntax error: {other}")),
    }
}

fn parse_error(file: &Arc<File>, e: &rnix::ParseError) -> Box<EvalError> {
    let len = file.source().len() as u64;
    let (range, msg) = describe_parse_error(file.source(), e);
    let span = match range {
        Some(r) => file.span.subspan(
            u64::from(u32::from(r.start())),
            u64::from(u32::from(r.end())),
        ),
        None => file.span.subspan(len, len),
    };
    EvalError::new(ErrorKind::Parse(msg), Some(span))
}

/// Whether the text at `r` is a path literal with a trailing slash (`/nix/store/`).
fn is_trailing_slash_path(source: &str, r: rnix::TextRange) -> bool {
    let text = source
        .get(usize::from(r.start())..usize::from(r.end()))
        .unwrap_or("");
    text.len() > 1
        && text.ends_with('/')
        && text.contains('/')
        && !text.contains(char::is_whitespace)
        && (text.starts_with('/')
            || text.starts_with("./")
            || text.starts_with("~/")
            || text.starts_with("../")
            || text
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric()))
}

pub(crate) struct Lowerer<'a> {
    file: Arc<File>,
    base_dir: PathBuf,
    scopes: Scopes,
    options: &'a LowerOptions,
    resolutions: Vec<Resolution>,
    warnings: Vec<Warning>,
}

impl<'a> Lowerer<'a> {
    fn new(
        file: Arc<File>,
        base_dir: PathBuf,
        globals: &Globals,
        options: &'a LowerOptions,
    ) -> Self {
        let mut scopes = Scopes::default();
        scopes.push(Scope::Frame(
            globals.iter().map(|(k, v)| (*k, (*v, None))).collect(),
        ));
        Lowerer {
            file,
            base_dir,
            scopes,
            options,
            resolutions: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn span(&self, node: &rnix::SyntaxNode) -> Span {
        let r = node.text_range();
        self.file.span.subspan(
            u64::from(u32::from(r.start())),
            u64::from(u32::from(r.end())),
        )
    }

    pub(crate) fn error(&self, node: &rnix::SyntaxNode, msg: impl Into<String>) -> Box<EvalError> {
        EvalError::new(ErrorKind::Parse(msg.into()), Some(self.span(node)))
    }

    /// Lowers an expression; `name` is the binding it is the value of (names lambdas).
    pub(crate) fn lower(&mut self, e: &ast::Expr, name: Option<Symbol>) -> EvalResult<Expr> {
        use ast::Expr as E;
        Ok(match e {
            E::Paren(p) => return self.lower_child(p.syntax(), p.expr(), name),
            E::Root(r) => return self.lower_child(r.syntax(), r.expr(), name),
            E::Error(n) => return Err(self.error(n.syntax(), "syntax error")),
            E::Literal(lit) => self.lower_literal(lit)?,
            E::Ident(id) => {
                let span = self.span(id.syntax());
                let sym = self.ident_name(id)?;
                self.resolve(sym, 0, span)?
            }
            E::Str(s) => self.lower_str(s)?,
            E::PathAbs(_) | E::PathRel(_) | E::PathHome(_) => {
                let p = ast::Path::cast(e.syntax().clone()).expect("path node");
                self.lower_path(&p)?
            }
            E::PathSearch(p) => self.lower_search_path(p)?,
            E::List(l) => {
                let mut items = Vec::new();
                for item in l.items() {
                    self.warn_if_cursed_or(&item);
                    items.push(Rc::new(self.lower(&item, None)?));
                }
                Expr::List(items.into_boxed_slice())
            }
            E::AttrSet(set) => self.lower_attrset(set)?,
            E::LetIn(l) => self.lower_let_in(l)?,
            E::LegacyLet(l) => self.lower_legacy_let(l)?,
            E::Select(s) => {
                let span = self.span(s.syntax());
                let expr = self.lower_child_rc(s.syntax(), s.expr())?;
                let path = self.lower_attrpath(s.attrpath(), s.syntax())?;
                let default = match s.default_expr() {
                    Some(d) => {
                        self.warn_if_cursed_or(&d);
                        Some(Rc::new(self.lower(&d, None)?))
                    }
                    None => None,
                };
                Expr::Select {
                    expr,
                    path,
                    default,
                    span,
                }
            }
            E::HasAttr(h) => {
                let span = self.span(h.syntax());
                let expr = self.lower_child_rc(h.syntax(), h.expr())?;
                let path = self.lower_attrpath(h.attrpath(), h.syntax())?;
                Expr::HasAttr { expr, path, span }
            }
            E::Apply(a) => {
                let span = self.span(a.syntax());
                if let Some(arg) = a.argument() {
                    self.warn_if_cursed_or(&arg);
                }
                let func = self.lower_child_rc(a.syntax(), a.lambda())?;
                let arg = self.lower_child_rc(a.syntax(), a.argument())?;
                Expr::Apply { func, arg, span }
            }
            E::Lambda(l) => self.lower_lambda(l, name)?,
            E::With(w) => {
                let span = self.span(w.syntax());
                let namespace = self.lower_child_rc(w.syntax(), w.namespace())?;
                self.scopes.push(Scope::With);
                let body = self.lower_child_rc(w.syntax(), w.body());
                self.scopes.pop();
                Expr::With {
                    namespace,
                    body: body?,
                    span,
                }
            }
            E::IfElse(i) => {
                let span = self.span(i.syntax());
                Expr::If {
                    cond: self.lower_child_rc(i.syntax(), i.condition())?,
                    then: self.lower_child_rc(i.syntax(), i.body())?,
                    else_: self.lower_child_rc(i.syntax(), i.else_body())?,
                    span,
                }
            }
            E::Assert(a) => {
                let span = self.span(a.syntax());
                let cond_span = match a.condition() {
                    Some(c) => self.span(c.syntax()),
                    None => span,
                };
                Expr::Assert {
                    cond: self.lower_child_rc(a.syntax(), a.condition())?,
                    body: self.lower_child_rc(a.syntax(), a.body())?,
                    span,
                    cond_span,
                }
            }
            E::UnaryOp(u) => {
                let span = self.span(u.syntax());
                let expr = self.lower_child_rc(u.syntax(), u.expr())?;
                match u.operator() {
                    Some(ast::UnaryOpKind::Invert) => Expr::Not { expr, span },
                    Some(ast::UnaryOpKind::Negate) => Expr::Neg { expr, span },
                    None => return Err(self.error(u.syntax(), "syntax error, unknown operator")),
                }
            }
            E::BinOp(b) => self.lower_binop(b)?,
            E::CurPos(c) => Expr::CurPos(self.span(c.syntax())),
        })
    }

    fn lower_child(
        &mut self,
        parent: &rnix::SyntaxNode,
        child: Option<ast::Expr>,
        name: Option<Symbol>,
    ) -> EvalResult<Expr> {
        match child {
            Some(c) => self.lower(&c, name),
            None => Err(self.error(parent, "syntax error, missing expression")),
        }
    }

    fn lower_child_rc(
        &mut self,
        parent: &rnix::SyntaxNode,
        child: Option<ast::Expr>,
    ) -> EvalResult<ExprRef> {
        self.lower_child(parent, child, None).map(Rc::new)
    }

    fn ident_name(&self, id: &ast::Ident) -> EvalResult<Symbol> {
        match id.ident_token() {
            Some(t) => Ok(Symbol::intern(t.text())),
            // `or` used as an identifier is a token of its own kind.
            None => Ok(Symbol::intern(id.syntax().text().to_string().trim())),
        }
    }

    /// Resolves a variable reference (skipping `skip` innermost scopes).
    fn resolve(&mut self, name: Symbol, skip: usize, span: Span) -> EvalResult<Expr> {
        match self.scopes.resolve(name, skip) {
            Resolved::Local(mut e, def) => {
                self.resolutions.push(Resolution {
                    use_span: span,
                    def_span: def,
                });
                if let Expr::Local { span: s, .. } = &mut e {
                    *s = Some(span);
                }
                Ok(e)
            }
            Resolved::With(withs) => Ok(Expr::WithVar { name, withs, span }),
            Resolved::Undefined => {
                let names: Vec<Symbol> = self.scopes.visible_names().collect();
                let suggestions =
                    crate::suggest::similar(name.as_str(), names.iter().map(|n| n.as_str()));
                Err(
                    EvalError::new(ErrorKind::UndefinedVariable(name.to_string()), Some(span))
                        .with_suggestions(suggestions),
                )
            }
        }
    }

    fn lower_literal(&mut self, lit: &ast::Literal) -> EvalResult<Expr> {
        Ok(Expr::Const(match lit.kind() {
            ast::LiteralKind::Integer(i) => match i.value() {
                Ok(v) => Value::Int(v),
                Err(_) => {
                    return Err(self.error(
                        lit.syntax(),
                        format!("invalid integer '{}'", i.syntax().text()),
                    ))
                }
            },
            ast::LiteralKind::Float(f) => match f.value() {
                Ok(v) => Value::float(v),
                Err(_) => {
                    return Err(self.error(
                        lit.syntax(),
                        format!("invalid float '{}'", f.syntax().text()),
                    ))
                }
            },
            ast::LiteralKind::Uri(u) => {
                let text = u.syntax().text();
                let level = self.options.lint_url_literals;
                let verb = if level == LintLevel::Fatal {
                    "disallowed"
                } else {
                    "discouraged"
                };
                self.lint(level, lit.syntax(), format!("URL literals are {verb}. Consider using a string literal \"{text}\" instead (lint-url-literals)"))?;
                Value::string(text)
            }
        }))
    }

    fn lower_str(&mut self, s: &ast::Str) -> EvalResult<Expr> {
        let span = self.span(s.syntax());
        let parts = self.lower_str_parts(s)?;
        Ok(match parts.as_slice() {
            [] => Expr::Const(Value::string("")),
            [StrPart::Lit(b)] => Expr::Const(Value::string(b.to_vec())),
            _ => Expr::Str {
                parts: parts.into_boxed_slice(),
                span,
            },
        })
    }

    /// Nix strings cannot hold NUL bytes: a literal part that has one is rejected, with the
    /// part's source text (NUL shown as `␀`) as the reference reports it.
    fn check_nul(&self, s: &ast::Str) -> EvalResult<()> {
        for el in s.syntax().children_with_tokens() {
            let Some(tok) = el.as_token() else { continue };
            if tok.kind() != rnix::SyntaxKind::TOKEN_STRING_CONTENT || !tok.text().contains('\0') {
                continue;
            }
            let r = tok.text_range();
            let text = tok.text();
            // An indented string's first line, when blank, is not part of its content.
            let skip = match text.find('\n') {
                Some(i)
                    if text[..i].bytes().all(|b| b == b' ')
                        && s.syntax().first_token().is_some_and(|t| t.text() == "''")
                        && u32::from(r.start())
                            == u32::from(s.syntax().text_range().start()) + 2 =>
                {
                    i + 1
                }
                _ => 0,
            };
            let start = u64::from(u32::from(r.start())) + skip as u64;
            let span = self.file.span.subspan(start, u64::from(u32::from(r.end())));
            return Err(EvalError::new(
                ErrorKind::Other(format!(
                    "input string '{}' cannot be represented as Nix string because it contains null bytes",
                    text[skip..].replace('\0', "\u{2400}")
                )),
                Some(span),
            ));
        }
        Ok(())
    }

    fn lower_str_parts(&mut self, s: &ast::Str) -> EvalResult<Vec<StrPart>> {
        self.check_nul(s)?;
        let mut parts = Vec::new();
        for p in str_parts(s) {
            match p {
                InterpolPart::Literal(text) => {
                    if !text.is_empty() {
                        let bytes = crate::source::literal_bytes(text);
                        parts.push(StrPart::Lit(bytes.into_boxed_slice()))
                    }
                }
                InterpolPart::Interpolation(i) => {
                    let span = self.span(i.syntax());
                    let e = self.lower_child_rc(i.syntax(), i.expr())?;
                    parts.push(StrPart::Interp(e, span));
                }
            }
        }
        Ok(parts)
    }

    fn lower_search_path(&mut self, p: &ast::PathSearch) -> EvalResult<Expr> {
        let span = self.span(p.syntax());
        let text = p
            .content()
            .map(|c| c.text().to_string())
            .unwrap_or_default();
        let name = text
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string();
        // `<x>` means `__findFile __nixPath "x"`, resolved in scope so users can override both.
        let find_file = self.resolve(Symbol::intern("__findFile"), 0, span)?;
        let nix_path = self.resolve(Symbol::intern("__nixPath"), 0, span)?;
        let inner = Expr::Apply {
            func: Rc::new(find_file),
            arg: Rc::new(nix_path),
            span,
        };
        Ok(Expr::Apply {
            func: Rc::new(inner),
            arg: Rc::new(Expr::Const(Value::string(name))),
            span,
        })
    }

    fn lower_binop(&mut self, b: &ast::BinOp) -> EvalResult<Expr> {
        use ast::BinOpKind as K;
        let span = self.span(b.syntax());
        let op = match b.operator() {
            Some(K::Concat) => BinOp::Concat,
            Some(K::Update) => BinOp::Update,
            Some(K::Add) => BinOp::Add,
            Some(K::Sub) => BinOp::Sub,
            Some(K::Mul) => BinOp::Mul,
            Some(K::Div) => BinOp::Div,
            Some(K::And) => BinOp::And,
            Some(K::Or) => BinOp::Or,
            Some(K::Implication) => BinOp::Impl,
            Some(K::Equal) => BinOp::Eq,
            Some(K::NotEqual) => BinOp::NotEq,
            Some(K::Less) => BinOp::Lt,
            Some(K::LessOrEq) => BinOp::LtEq,
            Some(K::More) => BinOp::Gt,
            Some(K::MoreOrEq) => BinOp::GtEq,
            Some(K::PipeRight) | Some(K::PipeLeft) if !self.options.pipe_operators => {
                return Err(EvalError::new(
                    ErrorKind::Parse("experimental Nix feature 'pipe-operators' is disabled; add '--extra-experimental-features pipe-operators' to enable it".into()),
                    Some(span),
                ))
            }
            Some(K::PipeRight) => BinOp::PipeRight,
            Some(K::PipeLeft) => BinOp::PipeLeft,
            None => return Err(self.error(b.syntax(), "syntax error, unknown operator")),
        };
        let lhs = self.lower_child_rc(b.syntax(), b.lhs())?;
        let rhs = self.lower_child_rc(b.syntax(), b.rhs())?;
        Ok(Expr::BinOp { op, lhs, rhs, span })
    }

    fn lower_lambda(&mut self, l: &ast::Lambda, name: Option<Symbol>) -> EvalResult<Expr> {
        let span = self.span(l.syntax());
        let param = l
            .param()
            .ok_or_else(|| self.error(l.syntax(), "syntax error, missing parameter"))?;
        match param {
            ast::Param::IdentParam(ip) => {
                let id = ip
                    .ident()
                    .ok_or_else(|| self.error(ip.syntax(), "syntax error"))?;
                let sym = self.ident_name(&id)?;
                let def = self.span(id.syntax());
                let mut names = FxHashMap::default();
                names.insert(sym, (0, Some(def)));
                self.scopes.push(Scope::Frame(names));
                let body = self.lower_child_rc(l.syntax(), l.body());
                self.scopes.pop();
                Ok(Expr::Lambda(Rc::new(Lambda {
                    param: Param::Ident(sym),
                    body: body?,
                    span,
                    name,
                })))
            }
            ast::Param::Pattern(p) => {
                let mut names = FxHashMap::default();
                let mut entries = Vec::new();
                for (i, entry) in p.pat_entries().enumerate() {
                    let id = entry
                        .ident()
                        .ok_or_else(|| self.error(entry.syntax(), "syntax error"))?;
                    let sym = self.ident_name(&id)?;
                    let def = self.span(id.syntax());
                    if names.insert(sym, (i as u32, Some(def))).is_some() {
                        return Err(self.error(
                            id.syntax(),
                            format!("duplicate formal function argument '{sym}'"),
                        ));
                    }
                    entries.push((sym, def, entry));
                }
                let n = entries.len() as u32;
                let bind = match p.pat_bind() {
                    Some(b) => {
                        let id = b
                            .ident()
                            .ok_or_else(|| self.error(b.syntax(), "syntax error"))?;
                        let sym = self.ident_name(&id)?;
                        if names.contains_key(&sym) {
                            return Err(self.error(
                                id.syntax(),
                                format!("duplicate formal function argument '{sym}'"),
                            ));
                        }
                        names.insert(sym, (n, Some(self.span(id.syntax()))));
                        Some(sym)
                    }
                    None => None,
                };
                self.scopes.push(Scope::Frame(names));
                let result = (|| -> EvalResult<(Vec<Formal>, ExprRef)> {
                    let mut formals = Vec::new();
                    for (sym, def, entry) in &entries {
                        let default = match entry.default() {
                            Some(d) => Some(lift::lift(Rc::new(self.lower(&d, None)?))),
                            None => None,
                        };
                        formals.push(Formal {
                            name: *sym,
                            default,
                            span: *def,
                        });
                    }
                    let body = self.lower_child_rc(l.syntax(), l.body())?;
                    Ok((formals, body))
                })();
                self.scopes.pop();
                let (formals, body) = result?;
                let pattern = Pattern {
                    formals,
                    ellipsis: p.ellipsis_token().is_some(),
                    bind,
                };
                Ok(Expr::Lambda(Rc::new(Lambda {
                    param: Param::Pattern(Box::new(pattern)),
                    body,
                    span,
                    name,
                })))
            }
        }
    }

    /// Lowers the attribute path of a select or `?`.
    fn lower_attrpath(
        &mut self,
        path: Option<ast::Attrpath>,
        parent: &rnix::SyntaxNode,
    ) -> EvalResult<Box<[AttrKey]>> {
        let path =
            path.ok_or_else(|| self.error(parent, "syntax error, missing attribute path"))?;
        let mut keys = Vec::new();
        for attr in path.attrs() {
            keys.push(self.lower_attr_key(&attr)?);
        }
        Ok(keys.into_boxed_slice())
    }

    /// One attribute name: static when it is an identifier or a string without interpolation.
    pub(crate) fn lower_attr_key(&mut self, attr: &ast::Attr) -> EvalResult<AttrKey> {
        if let Some(sym) = self.static_attr_name(attr)? {
            return Ok(AttrKey::Static(sym, LookupHint::default()));
        }
        let span = self.span(attr.syntax());
        let e = match attr {
            ast::Attr::Dynamic(d) => self.lower_child(d.syntax(), d.expr(), None)?,
            ast::Attr::Str(s) => self.lower_str(s)?,
            ast::Attr::Ident(_) => unreachable!("identifiers are static names"),
        };
        Ok(AttrKey::Dynamic(Rc::new(e), span))
    }

    /// The static name of an attribute, if it has one.
    pub(crate) fn static_attr_name(&mut self, attr: &ast::Attr) -> EvalResult<Option<Symbol>> {
        match attr {
            ast::Attr::Ident(id) => Ok(Some(self.ident_name(id)?)),
            ast::Attr::Str(s) => Ok(self.literal_str(s)),
            ast::Attr::Dynamic(d) => match d.expr() {
                Some(ast::Expr::Str(s)) => Ok(self.literal_str(&s)),
                _ => Ok(None),
            },
        }
    }

    fn literal_str(&self, s: &ast::Str) -> Option<Symbol> {
        let parts = str_parts(s);
        match parts.as_slice() {
            [] => Some(Symbol::intern("")),
            // Raw bytes of the source (not UTF-8) are the name's bytes, as in a string.
            [InterpolPart::Literal(t)] => Some(Symbol::intern_bytes(
                &crate::source::literal_bytes(t.clone()),
            )),
            _ => None,
        }
    }

    /// Warns, as the reference does since Nix 2.24, about a "cursed `or`": `f or`, where
    /// `or` is taken as a variable applied to as an argument, in a place where the planned
    /// change of `or` into an ordinary identifier will change the meaning (as an
    /// argument, a list element, or the default of an `or`). At the head of an
    /// application (`map or [ ]`) or on its own (`(f or)`) the meaning stays the same.
    fn warn_if_cursed_or(&mut self, e: &ast::Expr) {
        let ast::Expr::Apply(call) = e else {
            return;
        };
        let Some(ast::Expr::Ident(id)) = call.argument() else {
            return;
        };
        if id.syntax().text() != "or" {
            return;
        }
        let Some(func) = call.lambda() else {
            return;
        };
        let text = call.syntax().text().to_string();
        let start = func.syntax().text_range().start() - call.syntax().text_range().start();
        let shown = &text[usize::from(start)..];
        self.warnings.push(Warning {
            message: format!(
                "This expression uses `or` as an identifier in a way that will change in a future Nix release.\n\
                 Wrap this entire expression in parentheses to preserve its current meaning:\n    \
                 ({shown})\n\
                 Give feedback at https://github.com/NixOS/nix/pull/11121"
            ),
            span: self.span(func.syntax()),
            code_frame: false,
        });
    }

    /// Reports a lint finding at `node` according to `level`.
    pub(crate) fn lint(
        &mut self,
        level: LintLevel,
        node: &rnix::SyntaxNode,
        message: String,
    ) -> EvalResult<()> {
        match level {
            LintLevel::Off => Ok(()),
            LintLevel::Warn => {
                let span = self.span(node);
                self.warnings.push(Warning {
                    message,
                    span,
                    code_frame: true,
                });
                Ok(())
            }
            LintLevel::Fatal => Err(self.error(node, message)),
        }
    }

    pub(crate) fn base_dir(&self) -> &std::path::Path {
        &self.base_dir
    }

    pub(crate) fn options(&self) -> &LowerOptions {
        self.options
    }
}

/// The parts of a string literal, escapes resolved. An indented string's are rnix's; a
/// plain string's are read here because Nix turns a line break written CR LF inside one
/// into LF (an escaped `\r` stays), which rnix does not (lone CRs are already LF, see
/// `normalize_lone_cr`).
pub(crate) fn str_parts(s: &ast::Str) -> Vec<InterpolPart<String>> {
    let indented = s.syntax().first_token().is_some_and(|t| t.text() == "''");
    if indented {
        return s.normalized_parts();
    }
    s.parts()
        .map(|part| match part {
            InterpolPart::Literal(lit) => {
                InterpolPart::Literal(unescape_plain(lit.syntax().text()))
            }
            InterpolPart::Interpolation(i) => InterpolPart::Interpolation(i),
        })
        .collect()
}

/// A plain string's literal text with its escapes resolved and CR LF read as LF.
fn unescape_plain(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            },
            '\r' if chars.peek() == Some(&'\n') => {}
            c => out.push(c),
        }
    }
    out
}

/// Lowers entries of `node` as a `let` (used by both `let ... in` and legacy `let { }`).
fn entries_of<N: HasEntry>(n: &N) -> Vec<ast::Entry> {
    n.entries().collect()
}
