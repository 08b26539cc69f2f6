//! Loading into the REPL scope: files and `<lookup paths>` (`:l`, auto-called with the
//! `--arg`s), local flakes (`:lf`), the attributes of any set (`:a`), and `:r`, which starts
//! a fresh evaluator and loads everything again.

use tvix_eval::symbol::Symbol;
use tvix_eval::{EvalResult, Value};

use crate::scope::Origin;
use crate::session::{added, cwd, expand_path, other, Outcome, Session, INPUT_NAME};
use crate::{flake, AutoArg};

/// Something `:r` loads again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reloadable {
    /// `:l` (a path or `<lookup path>`).
    File(String),
    /// `:lf` (a local flake reference).
    Flake(String),
}

impl Session {
    /// Adds the attributes of the set `v` to the scope; returns how many.
    pub(crate) fn add_attrs(&mut self, v: Value, origin: Origin) -> EvalResult<usize> {
        let v = self.ev.force(v)?;
        let Value::Attrs(a) = &v else {
            return Err(other(format!(
                "expected a set to add to the scope but got {}",
                self.ev.describe(&v)
            )));
        };
        for e in a.iter() {
            self.bind(e.name, e.value.clone(), origin.clone());
        }
        self.last_loaded = Some(v.clone());
        Ok(a.len())
    }

    /// Records `item` for `:r` (once, in the order of its last load).
    pub(crate) fn remember(&mut self, item: Reloadable) {
        self.reloadable.retain(|r| *r != item);
        self.reloadable.push(item);
    }

    /// Loads `item` into the scope; returns how many variables it added.
    pub(crate) fn load(&mut self, item: &Reloadable) -> EvalResult<usize> {
        let (v, label) = match item {
            Reloadable::File(arg) => (self.load_file(arg)?, arg.clone()),
            Reloadable::Flake(arg) => (flake::load_flake(&mut self.ev, arg)?, arg.clone()),
        };
        self.add_attrs(v, Origin::Loaded(label))
    }

    fn load_file(&mut self, arg: &str) -> EvalResult<Value> {
        let v = if arg.starts_with('<') && arg.ends_with('>') {
            self.ev
                .eval_source(INPUT_NAME.to_string(), format!("import {arg}"), cwd())?
        } else {
            let path = expand_path(arg);
            if !path.exists() {
                return Err(other(format!("path '{}' does not exist", path.display())));
            }
            self.ev.eval_file(&path)?
        };
        let args = self.auto_arg_values()?;
        self.ev.auto_call(v, &args)
    }

    fn auto_arg_values(&mut self) -> EvalResult<Vec<(Symbol, Value)>> {
        let mut out = Vec::new();
        for a in self.auto_args.clone() {
            match a {
                AutoArg::Expr(name, text) => {
                    let lowered = self.ev.lower(INPUT_NAME.to_string(), text, cwd())?;
                    let env = self.ev.global_env().clone();
                    out.push((Symbol::intern(&name), self.ev.delay(&lowered.expr, &env)));
                }
                AutoArg::Str(name, s) => out.push((Symbol::intern(&name), Value::string(s))),
            }
        }
        Ok(out)
    }

    /// `:r`: a fresh evaluator (so changed files are read again), an empty scope, and every
    /// file and flake loaded again in order.
    pub(crate) fn reload(&mut self) -> EvalResult<Outcome> {
        self.ev = (self.make_evaluator)();
        self.configure_evaluator();
        self.scope.clear();
        self.last_loaded = None;
        let mut total = 0;
        let mut first_error = None;
        for item in self.reloadable.clone() {
            match self.load(&item) {
                Ok(n) => total += n,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            None => Ok(added(total)),
            Some(e) => Err(e),
        }
    }
}
