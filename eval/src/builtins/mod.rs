//! The builtins: the global scope (`builtins`, `true`, `map`, ...) and the helpers builtins
//! share to check their arguments.
//!
//! Each submodule exports a table of [`PrimOp`]s; `global_scope` puts them all in the
//! `builtins` set and exposes the top-level aliases the way Nix does (`map`, `toString`...,
//! and `__name` for every builtin).

mod attrs;
mod context;
mod control;
mod derivation;
pub mod docs;
mod fetchers;
mod flakeref;
pub mod hash;
#[cfg(test)]
mod ifd_tests;
mod json;
pub use json::write_json_str;
mod lists;
mod paths;
mod regex;
mod sort;
mod strings;
mod toml;
mod versions;
mod xml;

use std::rc::Rc;

pub(crate) use derivation::Wrapper as DerivationWrapper;
pub use derivation::{corepkg_source, KnownDerivation, COREPKGS_PREFIX};

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::eval::{sym, CoerceMode, EvalConfig, Evaluator};
use crate::io::EvalIO;
use crate::ir::Expr;
use crate::lower::Globals;
use crate::source::{Location, Span};
use crate::symbol::Symbol;
use crate::value::*;

/// Names visible without `builtins.` (besides `__`-prefixed ones).
const TOP_LEVEL: &[&str] = &[
    "abort",
    "baseNameOf",
    "break",
    "derivation",
    "derivationStrict",
    "dirOf",
    "fetchGit",
    "fetchMercurial",
    "fetchTarball",
    "fetchTree",
    "fromTOML",
    "import",
    "isNull",
    "map",
    "placeholder",
    "removeAttrs",
    "scopedImport",
    "throw",
    "toString",
];

fn all_primops() -> impl Iterator<Item = &'static PrimOp> {
    control::BUILTINS
        .iter()
        .chain(attrs::BUILTINS)
        .chain(context::BUILTINS)
        .chain(derivation::BUILTINS)
        .chain(fetchers::BUILTINS)
        .chain(lists::BUILTINS)
        .chain(strings::BUILTINS)
        .chain(paths::BUILTINS)
        .chain(regex::BUILTINS)
        .chain(versions::BUILTINS)
        .chain(flakeref::BUILTINS)
        .chain(json::BUILTINS)
        .chain(xml::BUILTINS)
        .chain(toml::BUILTINS)
        .chain(hash::BUILTINS)
}

/// Builds the global frame: `builtins`, the constants and the aliases.
pub(crate) fn global_scope(config: &EvalConfig, io: &dyn EvalIO) -> (Globals, Rc<Env>) {
    let mut builtins: Vec<(Symbol, Value)> = Vec::new();
    for op in all_primops() {
        builtins.push((
            Symbol::intern(op.name),
            Value::PrimOp(Rc::new(PrimOpApp {
                op,
                args: ArgVec::new(),
            })),
        ));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let nix_path: Vec<Value> = config
        .search_path
        .iter()
        .map(|e| {
            Value::attrs(Attrs::from_unsorted(vec![
                entry(sym::path(), Value::string(e.path.as_str())),
                entry(sym::prefix(), Value::string(e.prefix.as_str())),
            ]))
        })
        .collect();
    let constants: Vec<(&str, Value)> = vec![
        ("true", Value::bool(true)),
        ("false", Value::bool(false)),
        ("null", Value::Null),
        ("currentSystem", Value::string(config.system.as_str())),
        ("currentTime", Value::Int(now)),
        ("langVersion", Value::Int(6)),
        ("nixVersion", Value::string("2.24.0")),
        ("storeDir", Value::string(io.store_dir())),
        ("nixPath", Value::list(nix_path)),
    ];
    for (name, v) in constants {
        builtins.push((Symbol::intern(name), v));
    }

    // Global slots: the top-level builtins and the constants that are visible unqualified
    // under their own names (and only so: there is no `__map`), every other builtin as
    // `__name`, and `builtins` itself.
    let mut names: Vec<(Symbol, Value)> = Vec::new();
    for (name, v) in &builtins {
        let n = name.as_str();
        if matches!(n, "true" | "false" | "null") || TOP_LEVEL.contains(&n) {
            names.push((*name, v.clone()));
        } else {
            names.push((Symbol::intern(&format!("__{n}")), v.clone()));
        }
    }
    let builtins_sym = Symbol::intern("builtins");
    let builtins_slot = names.len();
    let env = Env::shared(None, names.len() + 1);
    // `builtins.builtins` is the set itself: a thunk reading the global slot.
    let self_ref = Value::Thunk(Thunk::suspended(
        Rc::new(Expr::Local {
            depth: 0,
            idx: builtins_slot as u32,
            span: None,
        }),
        env.clone(),
    ));
    builtins.push((builtins_sym, self_ref));
    let set = Value::attrs(Attrs::from_unsorted(
        builtins
            .into_iter()
            .map(|(name, value)| AttrEntry {
                name,
                value,
                pos: (None).into(),
            })
            .collect(),
    ));
    let mut globals = Globals::default();
    for (i, (name, v)) in names.into_iter().enumerate() {
        globals.insert(name, i as u32);
        env.set(i, v);
    }
    globals.insert(builtins_sym, builtins_slot as u32);
    env.set(builtins_slot, set);
    (globals, env)
}

fn entry(name: Symbol, value: Value) -> AttrEntry {
    AttrEntry {
        name,
        value,
        pos: (None).into(),
    }
}

/// `{ file, line, column }` for a location (`__curPos`, `unsafeGetAttrPos`).
pub fn pos_value(loc: &Location) -> Value {
    Value::attrs(Attrs::from_unsorted(vec![
        entry(sym::column(), Value::Int(loc.column as i64)),
        entry(sym::file(), Value::string(loc.file.as_str())),
        entry(sym::line(), Value::Int(loc.line as i64)),
    ]))
}

/// Builds an attribute set from names and values.
pub fn make_attrs(items: impl IntoIterator<Item = (Symbol, Value)>) -> Value {
    Value::attrs(Attrs::from_unsorted(
        items.into_iter().map(|(n, v)| entry(n, v)).collect(),
    ))
}

/// Argument checks shared by all builtins. Each forces the value and reports a type error in
/// Nix's words (`expected a list but found a string: "foo"`).
impl Evaluator {
    fn type_error<T>(
        &self,
        expected: &'static str,
        v: &Value,
        span: Option<Span>,
    ) -> EvalResult<T> {
        Err(EvalError::new(
            ErrorKind::TypeError {
                expected,
                found: self.describe(v),
            },
            span,
        ))
    }

    /// Forces an integer.
    pub fn force_int(&mut self, v: Value, span: Option<Span>) -> EvalResult<i64> {
        match self.force(v)? {
            Value::Int(i) => Ok(i),
            other => self.type_error("an integer", &other, span),
        }
    }

    /// Forces a number (integer or float) as a float.
    pub fn force_float(&mut self, v: Value, span: Option<Span>) -> EvalResult<f64> {
        match self.force(v)? {
            Value::Int(i) => Ok(i as f64),
            Value::Float(f) => Ok(f.get()),
            other => self.type_error("a float", &other, span),
        }
    }

    /// Forces a Boolean.
    pub fn force_bool(&mut self, v: Value, span: Option<Span>) -> EvalResult<bool> {
        self.expect_bool(v, span)
    }

    /// Forces a string (no coercion).
    pub fn force_string(&mut self, v: Value, span: Option<Span>) -> EvalResult<Rc<NixString>> {
        match self.force(v)? {
            Value::String(s) => Ok(s),
            other => self.type_error("a string", &other, span),
        }
    }

    /// Forces a list.
    pub fn force_list(&mut self, v: Value, span: Option<Span>) -> EvalResult<Rc<Vec<Value>>> {
        match self.force(v)? {
            Value::List(l) => Ok(l),
            other => self.type_error("a list", &other, span),
        }
    }

    /// Forces an attribute set.
    pub fn force_attrs(&mut self, v: Value, span: Option<Span>) -> EvalResult<Rc<Attrs>> {
        match self.force(v)? {
            Value::Attrs(a) => Ok(a),
            other => self.type_error("a set", &other, span),
        }
    }

    /// Forces a function (lambda, builtin, or a set with `__functor`).
    pub fn force_function(&mut self, v: Value, span: Option<Span>) -> EvalResult<Value> {
        match self.force(v)? {
            f @ (Value::Lambda(_) | Value::PrimOp(_)) => Ok(f),
            a @ Value::Attrs(_) if matches!(&a, Value::Attrs(s) if s.contains(sym::functor())) => {
                Ok(a)
            }
            other => self.type_error("a function", &other, span),
        }
    }

    /// Coerces to a string the way `toString`-like builtins that accept paths do.
    pub fn coerce_string_arg(&mut self, v: Value, span: Option<Span>) -> EvalResult<Rc<NixString>> {
        self.coerce_to_string(v, CoerceMode::Interpolation, span)
    }

    /// Calls `f` with one argument and forces the result.
    pub fn call_forced(&mut self, f: Value, a: Value, span: Option<Span>) -> EvalResult<Value> {
        let r = self.call(f, a, span)?;
        self.force(r)
    }
}

/// Shorthand for a failure with Nix's message.
pub fn fail<T>(msg: impl Into<String>, span: Option<Span>) -> EvalResult<T> {
    Err(EvalError::new(ErrorKind::Other(msg.into()), span))
}
