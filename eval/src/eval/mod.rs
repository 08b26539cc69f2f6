//! The evaluator: a direct, synchronous, lazy interpreter over the IR.
//!
//! `eval` returns values in weak head normal form; lazy positions get thunks via `delay`.
//! Native recursion follows the program's recursion, so deep programs are kept safe two ways:
//! the call depth is bounded (`max_call_depth`, CppNix's `--max-call-depth`) and the native
//! stack grows on demand (`stacker`) instead of overflowing.

mod assert_eq;
mod auto_call;
mod coerce;
mod ops;
mod stack;
pub mod sym;

use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustc_hash::FxHashMap;

pub use coerce::CoerceMode;

use crate::error::{AddContext, ErrorKind, EvalError, EvalResult, RecursionLoop, TraceFrame};
use crate::io::EvalIO;
use crate::ir::*;
use crate::lower::{self, Globals, LowerOptions};
use crate::source::{SourceMap, Span};
use crate::symbol::Symbol;
use crate::value::*;

/// One entry of the search path (`-I`, `NIX_PATH`).
#[derive(Clone, Debug)]
pub struct SearchPathEntry {
    /// The prefix (`nixpkgs` in `nixpkgs=/path`), empty for a bare directory.
    pub prefix: String,
    /// The directory or file.
    pub path: String,
}

impl SearchPathEntry {
    /// Parses `prefix=path` or `path`.
    pub fn parse(s: &str) -> SearchPathEntry {
        match s.split_once('=') {
            Some((p, path)) => SearchPathEntry {
                prefix: p.to_string(),
                path: path.to_string(),
            },
            None => SearchPathEntry {
                prefix: String::new(),
                path: s.to_string(),
            },
        }
    }
}

/// Settings fixed when the evaluator is made.
#[derive(Clone)]
pub struct EvalConfig {
    /// Search path entries, highest priority first.
    pub search_path: Vec<SearchPathEntry>,
    /// Maximum depth of nested function calls.
    pub max_call_depth: usize,
    /// Lowering options (experimental features).
    pub lower: LowerOptions,
    /// `builtins.currentSystem`.
    pub system: String,
    /// Experimental feature `parse-toml-timestamps`: `fromTOML` turns dates and times into
    /// `{ _type = "timestamp"; value = "..."; }` instead of failing.
    pub parse_toml_timestamps: bool,
    /// The experimental feature `fetch-closure` (`builtins.fetchClosure`).
    pub fetch_closure: bool,
    /// `abort-on-warn`: `builtins.warn` fails after printing its warning, so the warning gets a
    /// stack trace.
    pub abort_on_warn: bool,
    /// `allow-import-from-derivation`: whether reading a path whose context names a
    /// derivation output may build it (true, Nix's default) or is an error.
    pub allow_import_from_derivation: bool,
    /// Keep every derivation the evaluation creates whole in [`Evaluator::derivations`]
    /// (for tests and tools that inspect them). Off, only what dependent derivations need
    /// is kept: a package set creates tens of thousands, and their environments, outputs
    /// and inputs were most of its peak memory.
    pub keep_derivations: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            search_path: Vec::new(),
            max_call_depth: 10_000,
            lower: LowerOptions::default(),
            system: "x86_64-linux".to_string(),
            parse_toml_timestamps: false,
            fetch_closure: false,
            abort_on_warn: false,
            allow_import_from_derivation: true,
            keep_derivations: false,
        }
    }
}

/// The evaluator and everything that lives as long as it: the source map, the global scope,
/// the import cache and the IO backend.
pub struct Evaluator {
    /// Every file and expression seen so far.
    pub sources: SourceMap,
    /// The outside world (shared, so a builtin can call back into the evaluator while the IO
    /// is working, as `builtins.path`'s filter does).
    pub io: Rc<dyn EvalIO>,
    /// Settings.
    pub config: EvalConfig,
    globals: Globals,
    global_env: Rc<Env>,
    import_cache: FxHashMap<PathBuf, Value>,
    /// Store paths of source paths already added (`"${./src}"`), as Nix's `srcToStore`.
    source_paths: FxHashMap<PathBuf, String>,
    /// Derivation outputs already realised for import-from-derivation in this evaluation
    /// (each is asked for once).
    pub(crate) realised: rustc_hash::FxHashSet<crate::io::DrvOutput>,
    call_depth: usize,
    /// The lowest stack address the recursive paths may use before growing the stack
    /// (`stack.rs`; `stack::UNKNOWN_FLOOR` until the first guarded call sets it).
    stack_floor: usize,
    /// Messages from `builtins.trace` and warnings go here (stderr by default).
    pub diagnostics: Box<dyn FnMut(&str)>,
    /// Derivations created by this evaluation, by `.drv` path, with their modulo hashes
    /// (needed to compute the paths of derivations that depend on them).
    pub derivations: FxHashMap<String, crate::builtins::KnownDerivation>,
    /// What the `derivation` builtin needs of its Nix source, made on first use.
    pub(crate) derivation_wrapper: Option<Rc<crate::builtins::DerivationWrapper>>,
    /// Counters of the evaluator's work (`TVIX_SHOW_STATS`).
    pub stats: Stats,
    /// Set from another thread (a signal handler, a request's deadline) to stop the
    /// evaluation: the next function call fails with [`ErrorKind::Interrupted`].
    pub interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// What an evaluation did, counted as it goes (cheap enough to always count).
pub struct Stats {
    /// The thread's count of thunks made when the evaluator was made (thunks are counted
    /// where they are made, per thread: [`crate::value::thunks_made_on_this_thread`]).
    thunks_before: u64,
    /// Calls of Nix functions.
    pub calls: std::cell::Cell<u64>,
    /// Calls of builtins with all their arguments.
    pub primop_calls: std::cell::Cell<u64>,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            thunks_before: crate::value::thunks_made_on_this_thread(),
            calls: Default::default(),
            primop_calls: Default::default(),
        }
    }

    fn bump(c: &std::cell::Cell<u64>) {
        c.set(c.get() + 1);
    }

    /// Thunks made on this thread since the evaluator was made: every thunk, whether the
    /// evaluator or a builtin made it (with one evaluator per thread, as in the CLI, that
    /// evaluator's thunks).
    pub fn thunks(&self) -> u64 {
        crate::value::thunks_made_on_this_thread() - self.thunks_before
    }
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stats")
            .field("thunks", &self.thunks())
            .field("calls", &self.calls.get())
            .field("primop_calls", &self.primop_calls.get())
            .finish()
    }
}

impl Evaluator {
    /// An evaluator with the given IO and settings.
    pub fn new(io: Box<dyn EvalIO>, config: EvalConfig) -> Evaluator {
        let (globals, global_env) = crate::builtins::global_scope(&config, io.as_ref());
        Evaluator {
            sources: SourceMap::new(),
            io: Rc::from(io),
            config,
            globals,
            global_env,
            import_cache: FxHashMap::default(),
            source_paths: FxHashMap::default(),
            realised: Default::default(),
            call_depth: 0,
            stack_floor: stack::UNKNOWN_FLOOR,
            diagnostics: Box::new(|msg| eprintln!("{msg}")),
            derivations: FxHashMap::default(),
            derivation_wrapper: None,
            stats: Stats::new(),
            interrupt: None,
        }
    }

    /// The store path of the source path `p` (what `"${p}"` gives), adding it to the store
    /// the first time it is asked for in this evaluation.
    pub fn source_to_store(&mut self, p: &Path, span: Option<Span>) -> EvalResult<String> {
        if let Some(known) = self.source_paths.get(p) {
            return Ok(known.clone());
        }
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let added = self
            .io
            .add_path(p, &name, crate::io::FileIngestionMethod::Recursive, None)
            .map_err(|e| EvalError::new(ErrorKind::Other(e.to_string()), span))?;
        self.source_paths
            .insert(p.to_path_buf(), added.store_path.clone());
        Ok(added.store_path)
    }

    /// Parses and lowers source text without evaluating it.
    pub fn lower(
        &mut self,
        name: String,
        text: String,
        base_dir: PathBuf,
    ) -> EvalResult<lower::Lowered> {
        let lowered = lower::lower_source(
            &self.sources,
            name,
            text,
            base_dir,
            &self.globals,
            &self.config.lower,
        )?;
        for w in &lowered.warnings {
            let text = crate::diagnostic::render_lowering_warning(w, &self.sources);
            (self.diagnostics)(text.trim_end());
        }
        Ok(lowered)
    }

    /// Lowers source text (reporting its errors and warnings as [`Evaluator::lower`] does)
    /// and returns it as `nix-instantiate --parse` prints it.
    pub fn show_parsed(
        &mut self,
        name: String,
        text: String,
        base_dir: PathBuf,
    ) -> EvalResult<String> {
        let (lowered, shown) = lower::show_source(
            &self.sources,
            name,
            text,
            base_dir,
            &self.globals,
            &self.config.lower,
        )?;
        for w in &lowered.warnings {
            let text = crate::diagnostic::render_lowering_warning(w, &self.sources);
            (self.diagnostics)(text.trim_end());
        }
        Ok(shown)
    }

    /// Evaluates source text to weak head normal form.
    pub fn eval_source(
        &mut self,
        name: String,
        text: String,
        base_dir: PathBuf,
    ) -> EvalResult<Value> {
        let lowered = self.lower(name, text, base_dir)?;
        let env = self.global_env.clone();
        self.eval(&lowered.expr, &env)
    }

    /// Lowers source text in the global scope extended (and shadowed) by `scope`, and returns
    /// the expression with the frame it runs in: the REPL's variables (`x = ...`, `:l`) are
    /// bound lexically this way, so they shadow builtins as they do in `nix repl`. The caller
    /// evaluates the result with [`Evaluator::eval`] or keeps it lazy with [`Evaluator::delay`].
    pub fn lower_in_scope(
        &mut self,
        name: String,
        text: String,
        base_dir: PathBuf,
        scope: &[(Symbol, Value)],
    ) -> EvalResult<(lower::Lowered, Rc<Env>)> {
        let base = self.global_env.len();
        let mut globals = self.globals.clone();
        for (i, (sym, _)) in scope.iter().enumerate() {
            globals.insert(*sym, (base + i) as u32);
        }
        let lowered = lower::lower_source(
            &self.sources,
            name,
            text,
            base_dir,
            &globals,
            &self.config.lower,
        )?;
        for w in &lowered.warnings {
            let text = crate::diagnostic::render_lowering_warning(w, &self.sources);
            (self.diagnostics)(text.trim_end());
        }
        let globals_env = &self.global_env;
        let env = Env::with_values(
            None,
            (0..base)
                .map(|i| globals_env.get(i))
                .chain(scope.iter().map(|(_, v)| v.clone())),
        );
        Ok((lowered, Rc::new(env)))
    }

    /// Evaluates a file (`import`-style: a directory means its `default.nix`).
    pub fn eval_file(&mut self, path: &Path) -> EvalResult<Value> {
        self.import(path, None)
    }

    /// The global environment (builtins and top-level names).
    pub fn global_env(&self) -> &Rc<Env> {
        &self.global_env
    }

    /// The names of the global scope (for completion).
    pub fn global_names(&self) -> impl Iterator<Item = Symbol> + '_ {
        self.globals.keys().copied()
    }

    /// Evaluates `e` in `env` to weak head normal form.
    ///
    /// Tail positions that stay in this function (`if` branches, `let`/`with` bodies) loop
    /// instead of recursing; rarely used forms live out of line to keep this frame small.
    pub fn eval(&mut self, e: &Expr, env: &Rc<Env>) -> EvalResult<Value> {
        let mut e = e;
        let mut owned: Option<Rc<Env>> = None;
        loop {
            let env: &Rc<Env> = match &owned {
                Some(o) => o,
                None => env,
            };
            match e {
                Expr::Const(v) => return Ok(v.clone()),
                Expr::Local { depth, idx, .. } => return self.read_local(env, *depth, *idx),
                Expr::Apply { func, arg, span } => {
                    if let Expr::Apply { .. } = &**func {
                        return self.eval_apply_spine(e, env);
                    }
                    let f = self.eval_operand(func, env)?;
                    let arg = self.delay(arg, env);
                    return self.call_from_site(f, arg, *span);
                }
                Expr::BinOp { op, lhs, rhs, span } => {
                    return self.eval_binop(*op, lhs, rhs, env, *span)
                }
                Expr::If {
                    cond,
                    then,
                    else_,
                    span,
                } => {
                    let c = self.eval_operand(cond, env)?;
                    let c = match c {
                        Value::Bool(b) => b.get(),
                        other => self.branch_condition(other, cond, *span)?,
                    };
                    e = if c { then } else { else_ };
                }
                Expr::Let { frame, body } => {
                    let new = self.enter_frame(frame, env);
                    e = body;
                    owned = Some(new);
                }
                Expr::With {
                    namespace, body, ..
                } => {
                    let ns = self.delay(namespace, env);
                    let new = Env::shared_single(Some(env.clone()), ns);
                    e = body;
                    owned = Some(new);
                }
                Expr::Select {
                    expr,
                    path,
                    default,
                    span,
                } => return self.eval_select(expr, path, default.as_ref(), env, *span),
                Expr::Lambda(l) => {
                    return Ok(Value::Lambda(rc_new(|| Closure {
                        lambda: l.clone(),
                        env: env.clone(),
                    })))
                }
                Expr::Assert {
                    cond,
                    body,
                    span,
                    cond_span,
                } => {
                    self.check_assertion(cond, env, *span, *cond_span)?;
                    e = body;
                }
                _ => return self.eval_other(e, env),
            }
        }
    }

    /// Evaluates an operand, handling constants and variables without a recursive call.
    #[inline(always)]
    pub(crate) fn eval_operand(&mut self, e: &Expr, env: &Rc<Env>) -> EvalResult<Value> {
        match e {
            Expr::Const(v) => Ok(v.clone()),
            Expr::Local { depth, idx, .. } => self.read_local(env, *depth, *idx),
            _ => self.eval(e, env),
        }
    }

    /// `rec { __overrides = { ... }; ... }`: the overrides replace the recursive bindings
    /// (so other bindings see them) and the set's attributes. An old feature nixpkgs no
    /// longer uses, kept for compatibility.
    fn apply_overrides(
        &mut self,
        set: Value,
        attrs: &AttrsExpr,
        env: &Rc<Env>,
    ) -> EvalResult<Value> {
        let Value::Attrs(set) = set else {
            return Ok(set);
        };
        let Some(ov) = set.get(sym::overrides()).cloned() else {
            return Ok(Value::Attrs(set));
        };
        let ov = self.force_attrs(ov, attrs.span)?;
        let mut result = (*set).clone();
        for entry in ov.iter() {
            if let Some(i) = attrs.statics.iter().position(|a| a.name == entry.name) {
                env.set(i, entry.value.clone());
            }
            result.insert(entry.clone());
        }
        Ok(Value::attrs(result))
    }

    /// The value of a variable, forced; an already evaluated thunk is read in place.
    #[inline(always)]
    fn read_local(&mut self, env: &Rc<Env>, depth: u32, idx: u32) -> EvalResult<Value> {
        match env
            .ancestor(depth as usize)
            .evaluated_or_thunk(idx as usize)
        {
            Ok(value) => Ok(value),
            Err(thunk) => self.force_thunk(&thunk),
        }
    }

    #[inline(never)]
    fn branch_condition(&mut self, c: Value, cond: &Expr, span: Span) -> EvalResult<bool> {
        self.expect_bool(c, Some(cond_span(cond, span)))
            .context(Some(span), || {
                "while evaluating a branch condition".to_string()
            })
    }

    /// `Ok(true)` when both sides are equal; otherwise an error that says why (`Ok(false)`
    /// only if the explanation found no difference).
    fn assert_condition_equal(
        &mut self,
        lhs: &Expr,
        rhs: &Expr,
        env: &Rc<Env>,
        span: Span,
    ) -> EvalResult<bool> {
        let l = self.eval(lhs, env)?;
        let r = self.eval(rhs, env)?;
        if self.values_equal(l.clone(), r.clone(), Some(span))? {
            return Ok(true);
        }
        self.assert_equal(l, r, span).map(|()| false)
    }

    #[inline(never)]
    fn check_assertion(
        &mut self,
        cond: &Expr,
        env: &Rc<Env>,
        span: Span,
        cond_span: Span,
    ) -> EvalResult<()> {
        // The condition as the messages quote it: on one line, operators parenthesised.
        let quoted = |ev: &Self| {
            let text = ev.sources.text(cond_span);
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if matches!(cond, Expr::BinOp { .. }) {
                format!("({text})")
            } else {
                text
            }
        };
        let ok = if let Expr::BinOp {
            op: BinOp::Eq,
            lhs,
            rhs,
            ..
        } = cond
        {
            // `assert a == b` explains a failure, as the reference does.
            self.assert_condition_equal(lhs, rhs, env, span)
        } else {
            self.eval(cond, env)
                .and_then(|c| self.expect_bool(c, Some(cond_span)))
        };
        match ok {
            Ok(true) => Ok(()),
            Ok(false) => Err(EvalError::new(
                ErrorKind::AssertionFailed(quoted(self)),
                Some(span),
            )),
            Err(e) => {
                let text = quoted(self);
                Err(e).context(Some(span), || {
                    format!("while evaluating the condition of the assertion '{text}'")
                })
            }
        }
    }

    /// The less frequent expression forms, out of line.
    #[inline(never)]
    fn eval_other(&mut self, e: &Expr, env: &Rc<Env>) -> EvalResult<Value> {
        match e {
            Expr::WithVar { name, withs, span } => self.lookup_with(*name, withs, env, *span),
            Expr::Str { parts, span } => self
                .eval_str(parts, env, *span, CoerceMode::Interpolation)
                .map(|s| Value::String(Rc::new(s))),
            Expr::PathInterp { parts, span } => self.eval_path(parts, env, *span),
            Expr::Attrs(a) => self.build_attrs(a, env),
            Expr::RecAttrs { frame, attrs } => {
                let env = self.enter_frame(frame, env);
                let set = self.build_attrs(attrs, &env)?;
                if attrs.statics.iter().any(|a| a.name == sym::overrides()) {
                    return self.apply_overrides(set, attrs, &env);
                }
                Ok(set)
            }
            Expr::List(items) => Ok(Value::list(
                items.iter().map(|i| self.delay(i, env)).collect(),
            )),
            Expr::HasAttr { expr, path, span } => self.eval_has_attr(expr, path, env, *span),
            Expr::Not { expr, span } => {
                let at = Some(cond_span(expr, *span));
                let b = self
                    .eval(expr, env)
                    .and_then(|v| self.expect_bool(v, at))
                    .context(at, || "in the argument of '!'".to_string())?;
                Ok(Value::bool(!b))
            }
            Expr::Neg { expr, span } => {
                let v = self.eval(expr, env)?;
                ops::sub(Value::Int(0), v, Some(*span))
            }
            Expr::CurPos(span) => Ok(self.pos_attrs(*span)),
            Expr::Parent(inner) => self.eval(inner, parent_of(env)),
            // The frequent forms are handled in `eval`; route them back there.
            _ => self.eval(e, env),
        }
    }

    /// A value for `e` in `env` without evaluating it (a thunk unless `e` is trivially a value).
    #[inline]
    pub fn delay(&self, e: &ExprRef, env: &Rc<Env>) -> Value {
        match &**e {
            Expr::Const(v) => v.clone(),
            Expr::Local { depth, idx, .. } => env.ancestor(*depth as usize).get(*idx as usize),
            Expr::Lambda(l) => Value::Lambda(rc_new(|| Closure {
                lambda: l.clone(),
                env: env.clone(),
            })),
            Expr::BinOp { op, lhs, rhs, .. } => match ops::int_binop_now(*op, lhs, rhs, env) {
                Some(v) => v,
                None => Value::Thunk(Thunk::suspended(e.clone(), env.clone())),
            },
            Expr::Select { expr, path, .. } => match select_now(expr, path, env) {
                Some(v) => v,
                None => Value::Thunk(Thunk::suspended(e.clone(), env.clone())),
            },
            // Building a list, or a set without `${}` names, cannot fail (their elements
            // are delayed), so doing it now is as lazy as a thunk would be.
            Expr::List(items) => Value::list(items.iter().map(|i| self.delay(i, env)).collect()),
            Expr::Attrs(a) if a.dynamics.is_empty() => self.static_attrs(a, env),
            Expr::WithVar { name, withs, .. } => match with_lookup_now(*name, withs, env) {
                Some(v) => v,
                None => Value::Thunk(Thunk::suspended(e.clone(), env.clone())),
            },
            Expr::Parent(inner) => self.delay(inner, parent_of(env)),
            _ => Value::Thunk(Thunk::suspended(e.clone(), env.clone())),
        }
    }

    /// Makes the frame for `let`/`rec` bindings and fills it with thunks of its bindings.
    fn enter_frame(&mut self, frame: &Frame, env: &Rc<Env>) -> Rc<Env> {
        let new = Env::shared(Some(env.clone()), frame.bindings.len());
        for (i, b) in frame.bindings.iter().enumerate() {
            // The slots of this frame are not all filled yet, so nothing here may read them:
            // only values that need no slot are made now, everything else is a thunk.
            let v = match &**b {
                Expr::Const(v) => v.clone(),
                // Reads no slot of this frame: made over the parent (filled long ago).
                Expr::Parent(inner) => self.delay(inner, env),
                Expr::Lambda(l) => Value::Lambda(rc_new(|| Closure {
                    lambda: l.clone(),
                    env: new.clone(),
                })),
                _ => Value::Thunk(Thunk::suspended(b.clone(), new.clone())),
            };
            new.set(i, v);
        }
        new
    }

    /// [`Evaluator::force`] on a borrowed value: a thunk is forced in place.
    #[inline]
    pub(crate) fn force_ref(&mut self, v: &Value) -> EvalResult<Value> {
        match v {
            Value::Thunk(t) => self.force_thunk(t),
            other => Ok(other.clone()),
        }
    }

    /// Forces a value to weak head normal form.
    #[inline]
    pub fn force(&mut self, v: Value) -> EvalResult<Value> {
        match v {
            Value::Thunk(t) => self.force_thunk(&t),
            other => Ok(other),
        }
    }

    fn force_thunk(&mut self, t: &Thunk) -> EvalResult<Value> {
        if let Some(done) = t.evaluated() {
            return done;
        }
        let state = t.replace(ThunkState::Blackhole);
        let result = match &state {
            ThunkState::Suspended(e, env) => self.guarded(|ev| ev.eval(e, env)),
            ThunkState::Apply(app) => {
                let (f, a) = (app.0.clone(), app.1.clone());
                self.guarded(|ev| {
                    let f = ev.force(f)?;
                    ev.call(f, a, None)
                })
            }
            ThunkState::Apply2(app) => {
                let (a, b) = (app.1.clone(), app.2.clone());
                self.guarded(|ev| ev.call2(&app.0, a, b, None))
            }
            ThunkState::Blackhole => {
                // Located later: the evaluations it passes through on its way back to this
                // thunk's own evaluation are the loop (see `close_recursion_loop`).
                let mut e = EvalError::new(ErrorKind::InfiniteRecursion, None);
                e.recursion = Some(Box::new(RecursionLoop {
                    target: t.addr(),
                    members: Vec::new(),
                }));
                Err(e)
            }
            ThunkState::Done(_) | ThunkState::Failed(_) => unreachable!("checked above"),
        };
        match result {
            Ok(v) => {
                // Swapped in, the old state (a blackhole) dropped after the write: assigning
                // would drop it first, and the new state, kept across that call, was copied
                // in from the stack in loads that stall on the stores that built it.
                drop(t.replace(ThunkState::Done(v.clone())));
                Ok(v)
            }
            Err(mut e) => {
                // (Not where the loop was found: that thunk's own evaluation is further up.)
                if e.recursion.is_some() && !matches!(state, ThunkState::Blackhole) {
                    self.close_recursion_loop(&mut e, t, &state);
                }
                // As in current Nix, a thunk's error is remembered: forcing it again (after
                // `tryEval`, say) fails the same way without evaluating again. A thunk found
                // being evaluated stays so (its outer evaluation decides), and running out of
                // call depth is not a property of the thunk, so that one may be retried.
                let failed = match state {
                    ThunkState::Blackhole => ThunkState::Blackhole,
                    other
                        if matches!(e.kind, ErrorKind::StackOverflow | ErrorKind::Interrupted) =>
                    {
                        other
                    }
                    _ => ThunkState::Failed(e.clone()),
                };
                drop(t.replace(failed));
                Err(e)
            }
        }
    }

    /// An infinite recursion leaving the evaluation of thunk `t` (which was in `state`):
    /// records where `t`'s code is, and once `t` is the thunk that was found being
    /// evaluated, the loop is complete: the error is located at that thunk's code, as Nix
    /// locates it, and names the bindings that form the loop.
    #[cold]
    fn close_recursion_loop(&self, e: &mut EvalError, t: &Thunk, state: &ThunkState) {
        let Some(r) = e.recursion.as_mut() else {
            return;
        };
        let expr_span = match state {
            ThunkState::Suspended(expr, _) => expr.span(),
            _ => None,
        };
        if let Some(s) = expr_span {
            r.members.push(s);
        }
        if r.target != t.addr() {
            return;
        }
        let members = std::mem::take(&mut r.members);
        e.recursion = None;
        if e.span.is_none() {
            e.span = expr_span;
        }
        // Outermost first: the code of the thunk found being evaluated, then the code it
        // led to. When every step is a variable, the variables are the bindings of the loop:
        // the innermost one names the binding the loop returned to.
        let texts: Vec<String> = members
            .iter()
            .rev()
            .map(|s| self.sources.text(*s))
            .collect();
        let is_name = |t: &String| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-'))
        };
        if !texts.is_empty() && texts.iter().all(is_name) {
            let mut chain = vec![texts[texts.len() - 1].as_str()];
            chain.extend(texts.iter().map(String::as_str));
            let names = chain
                .iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(" -> ");
            e.notes.push(TraceFrame {
                span: None,
                message: format!("the bindings that form the loop: {names}"),
            });
        } else {
            // Not a loop of plain variables: show where it passes (a few places).
            const SHOWN: usize = 6;
            let members: Vec<Span> = members.into_iter().filter(|s| Some(*s) != e.span).collect();
            let n = members.len();
            for s in members.iter().rev().take(SHOWN) {
                e.notes.push(TraceFrame {
                    span: Some(*s),
                    message: "part of the loop".to_string(),
                });
            }
            if n > SHOWN {
                e.notes.push(TraceFrame {
                    span: None,
                    message: format!("and {} more places in the loop", n - SHOWN),
                });
            }
        }
    }

    /// Forces a value and everything inside it (for `--strict`, `deepSeq`).
    pub fn force_deep(&mut self, v: Value) -> EvalResult<Value> {
        let mut seen = rustc_hash::FxHashSet::default();
        let v = self.force(v)?;
        self.force_deep_inner(&v, &mut seen)?;
        Ok(v)
    }

    fn force_deep_inner(
        &mut self,
        v: &Value,
        seen: &mut rustc_hash::FxHashSet<usize>,
    ) -> EvalResult<()> {
        match v {
            Value::Attrs(a) => {
                if a.is_empty() || !seen.insert(Rc::as_ptr(a) as usize) {
                    return Ok(());
                }
                self.nested(None, |ev| {
                    for entry in a.iter() {
                        ev.check_interrupt(None)?;
                        let inner =
                            ev.force(entry.value.clone()).context(entry.pos.get(), || {
                                format!("while evaluating the attribute '{}'", entry.name)
                            })?;
                        ev.force_deep_inner(&inner, seen)?;
                    }
                    Ok(())
                })
            }
            Value::List(l) => {
                if l.is_empty() || !seen.insert(Rc::as_ptr(l) as usize) {
                    return Ok(());
                }
                self.nested(None, |ev| {
                    for item in l.iter() {
                        ev.check_interrupt(None)?;
                        let inner = ev.force(item.clone())?;
                        ev.force_deep_inner(&inner, seen)?;
                    }
                    Ok(())
                })
            }
            _ => Ok(()),
        }
    }

    /// Runs `f` one level deeper in the evaluator's recursion: counted against
    /// `max_call_depth` like a call (so deeply nested data fails the way the reference does,
    /// with a clean error), and with the native stack grown as needed.
    pub fn nested<T>(
        &mut self,
        span: Option<Span>,
        f: impl FnOnce(&mut Self) -> EvalResult<T>,
    ) -> EvalResult<T> {
        self.enter_call(span)?;
        let r = self.guarded(f);
        self.call_depth -= 1;
        r
    }

    /// Applies `f` to `arg`.
    pub fn call(&mut self, f: Value, arg: Value, span: Option<Span>) -> EvalResult<Value> {
        match f {
            Value::Lambda(c) => self.call_lambda(&c, arg, span),
            Value::PrimOp(app) => {
                // Built in place, not collected and moved (see `eval_apply_spine`).
                let mut args = ArgVec::new();
                for a in app.args.iter() {
                    args.push(a.clone());
                }
                args.push(arg);
                if args.len() == app.op.arity {
                    self.call_primop(app.op, &args, span)
                } else {
                    Ok(Value::PrimOp(Rc::new(PrimOpApp { op: app.op, args })))
                }
            }
            Value::Attrs(ref a) if a.contains(sym::functor()) => {
                let functor = a.get(sym::functor()).cloned().unwrap_or(Value::Null);
                let functor = self.force(functor)?;
                let g = self.call(functor, f.clone(), span)?;
                let g = self.force(g)?;
                self.call(g, arg, span)
            }
            Value::Thunk(t) => {
                let f = self.force_thunk(&t)?;
                self.call(f, arg, span)
            }
            other => {
                let shown = self.preview(&other);
                Err(EvalError::new(
                    ErrorKind::Other(format!(
                        "attempt to call something which is not a function but {}: {shown}",
                        other.type_desc()
                    )),
                    span,
                ))
            }
        }
    }

    /// A call written in the source: a lambda's errors get a `from call site` frame.
    #[inline(always)]
    fn call_from_site(&mut self, f: Value, arg: Value, span: Span) -> EvalResult<Value> {
        let is_lambda = matches!(f, Value::Lambda(_));
        let r = self.call(f, arg, Some(span));
        if is_lambda && r.is_err() {
            return r.context(Some(span), || "from call site".to_string());
        }
        r
    }

    /// Runs a builtin with all its arguments; the result is forced, like every call's.
    fn call_primop(
        &mut self,
        op: &'static PrimOp,
        args: Args<'_>,
        span: Option<Span>,
    ) -> EvalResult<Value> {
        self.enter_call(span)?;
        Stats::bump(&self.stats.primop_calls);
        // Guarded like a lambda's body: a builtin called from the top of an evaluation
        // (`builtins.foldl' f 0 xs` as the whole expression) would otherwise make each of
        // its calls the outermost guarded one, which finds no stack floor set and takes the
        // guard's slow path (`stack.rs`) every time.
        let r = self
            .guarded(|ev| (op.func)(ev, args, span))
            .context(span, || format!("while calling the '{}' builtin", op.name));
        self.call_depth -= 1;
        self.force(r?)
    }

    /// `f a b c`: evaluates the head once and passes arguments straight to builtins that take
    /// several, instead of building a partial application per argument.
    ///
    /// The application nodes are gathered in a fixed array (most spines have two or three
    /// arguments), not a growable vector: its checks and moves were a third of this
    /// function's instructions.
    #[inline(never)]
    fn eval_apply_spine(&mut self, e: &Expr, env: &Rc<Env>) -> EvalResult<Value> {
        const INLINE: usize = 8;
        let mut nodes: [&Expr; INLINE] = [e; INLINE];
        let mut n = 0;
        let mut head = e;
        while let Expr::Apply { func, .. } = head {
            if n == INLINE {
                let (head, all) = head_and_nodes(e);
                return self.apply_nodes(head, &all, env);
            }
            nodes[n] = head;
            n += 1;
            head = func;
        }
        self.apply_nodes(head, &nodes[..n], env)
    }

    /// Applies `head` to the arguments of the application nodes `nodes` (outermost first,
    /// so the first argument is the last node's).
    #[inline(always)]
    fn apply_nodes(&mut self, head: &Expr, nodes: &[&Expr], env: &Rc<Env>) -> EvalResult<Value> {
        let count = nodes.len();
        let arg_at = |i: usize| -> (&ExprRef, Span) {
            match nodes[count - 1 - i] {
                Expr::Apply { arg, span, .. } => (arg, *span),
                _ => unreachable!("only application nodes are gathered"),
            }
        };
        let mut f = self.eval_operand(head, env)?;
        let mut i = 0;
        while i < count {
            if let Value::PrimOp(app) = &f {
                let arity = app.op.arity;
                if app.args.is_empty() && arity > 1 && arity <= count - i {
                    let op = app.op;
                    // Pushed into a vector that stays where it is: collected, the vector was
                    // built in a temporary and moved, in wide loads that stalled on the
                    // narrower stores of the values just pushed.
                    let mut args = ArgVec::new();
                    for k in i..i + arity {
                        args.push(self.delay(arg_at(k).0, env));
                    }
                    f = self.call_primop(op, &args, Some(arg_at(i + arity - 1).1))?;
                    i += arity;
                    continue;
                }
            }
            if matches!(&f, Value::Lambda(_)) && i + 1 < count {
                let (a, b) = (arg_at(i), arg_at(i + 1));
                let (a, b_value) = (self.delay(a.0, env), self.delay(b.0, env));
                f = self.call2(&f, a, b_value, Some(b.1))?;
                i += 2;
                continue;
            }
            let (arg, span) = arg_at(i);
            let arg = self.delay(arg, env);
            f = self.call_from_site(f, arg, span)?;
            i += 1;
        }
        Ok(f)
    }

    /// Fails with [`ErrorKind::Interrupted`] once the interrupt flag is set. Called on every
    /// function call and in every loop of a builtin over a list, a set or a range, so that
    /// Ctrl-C stops `genList` of a hundred million elements (which calls nothing) as
    /// promptly as a recursive function; the error unwinds and drops what the loop built.
    #[inline]
    pub fn check_interrupt(&self, span: Option<Span>) -> EvalResult<()> {
        if let Some(flag) = &self.interrupt {
            if flag.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(EvalError::new(ErrorKind::Interrupted, span));
            }
        }
        Ok(())
    }

    fn enter_call(&mut self, span: Option<Span>) -> EvalResult<()> {
        self.check_interrupt(span)?;
        self.call_depth += 1;
        if self.call_depth > self.config.max_call_depth {
            self.call_depth -= 1;
            return Err(EvalError::new(ErrorKind::StackOverflow, span));
        }
        Ok(())
    }

    fn call_lambda(&mut self, c: &Closure, arg: Value, span: Option<Span>) -> EvalResult<Value> {
        Stats::bump(&self.stats.calls);
        self.enter_call(span)?;
        let result = self.guarded(|ev| {
            let env = ev.bind_args(&c.lambda, &c.env, arg, span)?;
            ev.eval(&c.lambda.body, &env)
                .context(Some(c.lambda.span), || calling_frame(&c.lambda))
        });
        self.call_depth -= 1;
        result
    }

    /// Applies `f` to two arguments. A curried lambda (`a: b: ...`) gets both at once: the
    /// function between the two applications is never observable, so it is not made.
    ///
    /// The function is borrowed: with it by value, the arguments took seven words, one more
    /// than fit in registers, and the second argument, passed on the stack in two stores and
    /// read back in one wide load, stalled every call (4 % of `lists`).
    pub fn call2(
        &mut self,
        f: &Value,
        a: Value,
        b: Value,
        span: Option<Span>,
    ) -> EvalResult<Value> {
        let forced;
        let f = match f {
            Value::Thunk(t) => {
                forced = self.force_thunk(t)?;
                &forced
            }
            other => other,
        };
        if let Value::Lambda(c) = f {
            if let Expr::Lambda(inner) = &*c.lambda.body {
                Stats::bump(&self.stats.calls);
                Stats::bump(&self.stats.calls);
                self.enter_call(span)?;
                if let Err(e) = self.enter_call(span) {
                    self.call_depth -= 1;
                    return Err(e);
                }
                let result = self.guarded(|ev| {
                    let env = ev.bind_args(&c.lambda, &c.env, a, span)?;
                    let env = ev.bind_args(inner, &env, b, span)?;
                    ev.eval(&inner.body, &env)
                        .context(Some(inner.span), || calling_frame(inner))
                        .context(Some(c.lambda.span), || calling_frame(&c.lambda))
                });
                self.call_depth -= 2;
                return result;
            }
        }
        let g = self.call(f.clone(), a, span)?;
        let g = self.force(g)?;
        self.call(g, b, span)
    }

    fn lambda_name(&self, l: &Lambda) -> String {
        match l.name {
            Some(n) => format!("'{n}'"),
            None => "'anonymous lambda'".to_string(),
        }
    }

    fn bind_args(
        &mut self,
        lambda: &Lambda,
        parent: &Rc<Env>,
        arg: Value,
        span: Option<Span>,
    ) -> EvalResult<Rc<Env>> {
        let pattern = match &lambda.param {
            Param::Ident(_) => return Ok(Env::shared_single(Some(parent.clone()), arg)),
            Param::Pattern(p) => p,
        };
        let forced = self.force(arg.clone())?;
        let Value::Attrs(attrs) = &forced else {
            let found = self.describe(&forced);
            return Err(EvalError::new(
                ErrorKind::TypeError {
                    expected: "a set",
                    found,
                },
                span,
            )
            .with_call_site(span));
        };
        // The whole argument gets a slot only when the pattern names it (`@args`): with two
        // formals or fewer the frame then fits in the `Env` itself, with no second allocation.
        let env = Env::shared(Some(parent.clone()), pattern.frame_size());
        let mut used = 0;
        for (i, formal) in pattern.formals.iter().enumerate() {
            match attrs.get(formal.name) {
                Some(v) => {
                    used += 1;
                    env.set(i, v.clone());
                }
                None => match &formal.default {
                    // A default that reads no formal is made over the closure's frame.
                    Some(d) if matches!(&**d, Expr::Parent(_)) => env.set(i, self.delay(d, &env)),
                    Some(d) => env.set(i, Value::Thunk(Thunk::suspended(d.clone(), env.clone()))),
                    None => {
                        return Err(EvalError::new(
                            ErrorKind::Other(format!(
                                "function {} called without required argument '{}'",
                                self.lambda_name(lambda),
                                formal.name
                            )),
                            Some(lambda.span),
                        )
                        .with_call_site(span))
                    }
                },
            }
        }
        if !pattern.ellipsis && used < attrs.len() {
            for entry in attrs.iter() {
                if !pattern.formals.iter().any(|f| f.name == entry.name) {
                    let suggestions = crate::suggest::similar(
                        entry.name.as_str(),
                        pattern.formals.iter().map(|f| f.name.as_str()),
                    );
                    return Err(EvalError::new(
                        ErrorKind::Other(format!(
                            "function {} called with unexpected argument '{}'",
                            self.lambda_name(lambda),
                            entry.name
                        )),
                        Some(lambda.span),
                    )
                    .with_suggestions(suggestions)
                    .with_call_site(span));
                }
            }
        }
        if pattern.bind.is_some() {
            env.set(pattern.arg_slot(), forced);
        }
        Ok(env)
    }

    fn lookup_with(
        &mut self,
        name: Symbol,
        withs: &[u32],
        env: &Rc<Env>,
        span: Span,
    ) -> EvalResult<Value> {
        for &depth in withs {
            let ns = env.ancestor(depth as usize).get(0);
            let ns = self.force(ns)?;
            let Value::Attrs(a) = &ns else {
                let found = self.describe(&ns);
                return Err(EvalError::new(
                    ErrorKind::TypeError {
                        expected: "a set",
                        found,
                    },
                    Some(span),
                ));
            };
            if let Some(v) = a.get(name) {
                let v = v.clone();
                return self.force(v);
            }
        }
        Err(EvalError::new(
            ErrorKind::UndefinedVariable(name.to_string()),
            Some(span),
        ))
    }

    fn eval_str(
        &mut self,
        parts: &[StrPart],
        env: &Rc<Env>,
        _span: Span,
        mode: CoerceMode,
    ) -> EvalResult<NixString> {
        let mut b = StringBuilder::new();
        for part in parts {
            match part {
                StrPart::Lit(bytes) => b.push_bytes(bytes),
                StrPart::Interp(e, ispan) => {
                    let v = self.eval(e, env)?;
                    let s =
                        self.coerce_to_string(v, mode, Some(*ispan))
                            .context(Some(*ispan), || match mode {
                                CoerceMode::PathSegment => {
                                    "while evaluating a path segment".to_string()
                                }
                                _ => "while evaluating a path segment".to_string(),
                            });
                    b.push(&*s?);
                }
            }
        }
        Ok(b.finish())
    }

    fn eval_path(&mut self, parts: &[StrPart], env: &Rc<Env>, span: Span) -> EvalResult<Value> {
        let s = self.eval_str(parts, env, span, CoerceMode::PathSegment)?;
        Ok(Value::Path(Rc::new(lower::canonicalize_path(s.as_bytes()))))
    }

    /// Evaluates an attribute name expression to a symbol (`None` for `null`: skip it).
    fn attr_name(&mut self, e: &Expr, env: &Rc<Env>, span: Span) -> EvalResult<Option<Symbol>> {
        let v = self.eval(e, env)?;
        match v {
            Value::String(s) => Ok(Some(Symbol::intern_bytes(s.as_bytes()))),
            Value::Null => Ok(None),
            other => {
                let found = self.describe(&other);
                Err(EvalError::new(
                    ErrorKind::TypeError {
                        expected: "a string",
                        found,
                    },
                    Some(span),
                ))
            }
        }
    }

    /// A set literal without `${}` names.
    fn static_attrs(&self, a: &AttrsExpr, env: &Rc<Env>) -> Value {
        Value::attrs(Attrs::from_sorted(
            a.statics
                .iter()
                .map(|s| AttrEntry {
                    name: s.name,
                    value: self.delay(&s.value, env),
                    pos: s.span.into(),
                })
                .collect(),
        ))
    }

    fn build_attrs(&mut self, a: &AttrsExpr, env: &Rc<Env>) -> EvalResult<Value> {
        let mut entries: Vec<AttrEntry> = a
            .statics
            .iter()
            .map(|s| AttrEntry {
                name: s.name,
                value: self.delay(&s.value, env),
                pos: (Some(s.span)).into(),
            })
            .collect();
        if a.dynamics.is_empty() {
            return Ok(Value::attrs(Attrs::from_sorted(entries)));
        }
        let mut attrs = Attrs::from_sorted(std::mem::take(&mut entries));
        for d in &a.dynamics {
            let Some(name) = self.attr_name(&d.name, env, d.span)? else {
                continue;
            };
            if let Some(prev) = attrs.get_entry(name) {
                let at = prev
                    .pos
                    .get()
                    .map(|p| self.location_string(p))
                    .unwrap_or_default();
                return Err(EvalError::new(
                    ErrorKind::Other(format!(
                        "dynamic attribute '{name}' already defined at {at}"
                    )),
                    Some(d.span),
                ));
            }
            attrs.insert(AttrEntry {
                name,
                value: self.delay(&d.value, env),
                pos: (Some(d.span)).into(),
            });
        }
        Ok(Value::attrs(attrs))
    }

    /// `file:line:column` of a span.
    pub fn location_string(&self, span: Span) -> String {
        let loc = self.sources.location(span);
        format!("{}:{}:{}", loc.file, loc.line, loc.column)
    }

    fn key_name(&mut self, key: &AttrKey, env: &Rc<Env>) -> EvalResult<Symbol> {
        match key {
            AttrKey::Static(s, _) => Ok(*s),
            AttrKey::Dynamic(e, span) => {
                let v = self.eval(e, env)?;
                match v {
                    Value::String(s) => Ok(Symbol::intern_bytes(s.as_bytes())),
                    other => {
                        let found = self.describe(&other);
                        Err(EvalError::new(
                            ErrorKind::TypeError {
                                expected: "a string",
                                found,
                            },
                            Some(*span),
                        ))
                        .context(Some(*span), || {
                            "while evaluating an attribute name".to_string()
                        })
                    }
                }
            }
        }
    }

    fn eval_select(
        &mut self,
        expr: &Expr,
        path: &[AttrKey],
        default: Option<&ExprRef>,
        env: &Rc<Env>,
        span: Span,
    ) -> EvalResult<Value> {
        let mut v = self.eval(expr, env)?;
        for key in path {
            let name = self.key_name(key, env)?;
            // The attribute is forced where it lies in the set (which `v` keeps alive): no
            // count taken on a thunk only to read the value it already has.
            let next = match &v {
                Value::Attrs(a) => entry_at(a, key, name).map(|e| {
                    self.force_ref(&e.value).context(e.pos.get(), || {
                        format!("while evaluating the attribute '{name}'")
                    })
                }),
                _ if default.is_some() => None,
                other => {
                    let found = self.describe(other);
                    return Err(EvalError::new(
                        ErrorKind::TypeError {
                            expected: "a set",
                            found,
                        },
                        Some(span),
                    ))
                    .context(Some(span), || "while selecting an attribute".to_string());
                }
            };
            match next {
                Some(value) => v = value?,
                None => {
                    if let Some(d) = default {
                        return self.eval(d, env);
                    }
                    let Value::Attrs(a) = &v else { unreachable!() };
                    return Err(self.missing_attr(name, a, Some(span)));
                }
            }
        }
        Ok(v)
    }

    /// The error for a missing attribute, with suggestions of close names.
    pub fn missing_attr(&self, name: Symbol, attrs: &Attrs, span: Option<Span>) -> Box<EvalError> {
        let suggestions =
            crate::suggest::similar(name.as_str(), attrs.iter().map(|e| e.name.as_str()));
        EvalError::new(
            ErrorKind::MissingAttr {
                name: name.to_string(),
                suggestions,
            },
            span,
        )
    }

    fn eval_has_attr(
        &mut self,
        expr: &Expr,
        path: &[AttrKey],
        env: &Rc<Env>,
        _span: Span,
    ) -> EvalResult<Value> {
        let mut v = self.eval(expr, env)?;
        for (i, key) in path.iter().enumerate() {
            let name = self.key_name(key, env)?;
            let Value::Attrs(a) = &v else {
                return Ok(Value::bool(false));
            };
            match entry_at(a, key, name).map(|e| &e.value) {
                // The last attribute's value is not needed, only its presence.
                Some(_) if i + 1 == path.len() => return Ok(Value::bool(true)),
                Some(next) => v = self.force_ref(next)?,
                None => return Ok(Value::bool(false)),
            }
        }
        Ok(Value::bool(true))
    }

    fn pos_attrs(&self, span: Span) -> Value {
        let loc = self.sources.location(span);
        crate::builtins::pos_value(&loc)
    }

    /// Imports a file (a directory means its `default.nix`), caching the result per path.
    pub fn import(&mut self, path: &Path, span: Option<Span>) -> EvalResult<Value> {
        if let Some(text) = crate::builtins::corepkg_source(path) {
            if let Some(v) = self.import_cache.get(path) {
                return Ok(v.clone());
            }
            let base = PathBuf::from(crate::builtins::COREPKGS_PREFIX);
            let v = self.eval_source(path.display().to_string(), text.to_string(), base)?;
            self.import_cache.insert(path.to_path_buf(), v.clone());
            return Ok(v);
        }
        let path = self.import_target(path);
        if let Some(v) = self.import_cache.get(&path) {
            return Ok(v.clone());
        }
        let (text, base) = self.read_source(&path, span)?;
        let v = self.eval_source(path.display().to_string(), text, base)?;
        self.import_cache.insert(path, v.clone());
        Ok(v)
    }

    /// The file an import of `path` reads: `path`, or its `default.nix` when it is a
    /// directory (also through a symlink).
    fn import_target(&self, path: &Path) -> PathBuf {
        let is_dir = match self.io.file_type(path) {
            Ok(crate::io::FileType::Directory) => true,
            Ok(crate::io::FileType::Symlink) => {
                std::fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false)
            }
            _ => false,
        };
        if is_dir {
            path.join("default.nix")
        } else {
            path.to_path_buf()
        }
    }

    /// A Nix file's text and the directory its relative paths resolve against.
    fn read_source(&self, path: &Path, span: Option<Span>) -> EvalResult<(String, PathBuf)> {
        let bytes = self.io.read_file(path).map_err(|e| {
            let msg = if e.kind() == std::io::ErrorKind::NotFound {
                format!("path '{}' does not exist", path.display())
            } else {
                format!("reading '{}': {e}", path.display())
            };
            EvalError::new(ErrorKind::Other(msg), span)
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        Ok((crate::source::decode_source(bytes), base))
    }

    /// `scopedImport`: evaluates a file (a directory means its `default.nix`) with the
    /// attributes of `scope` as an outermost lexical frame that shadows the global names.
    /// The result is not cached: the same file means something else in another scope.
    pub fn import_scoped(
        &mut self,
        path: &Path,
        scope: Value,
        span: Option<Span>,
    ) -> EvalResult<Value> {
        let scope = match self.force(scope)? {
            Value::Attrs(a) => a,
            other => {
                let found = self.describe(&other);
                return Err(EvalError::new(
                    ErrorKind::TypeError {
                        expected: "a set",
                        found,
                    },
                    span,
                ));
            }
        };
        let path = self.import_target(path);
        let (text, base) = self.read_source(&path, span)?;
        // A copy of the global frame with the scope's names appended (and bound to them).
        let n = self.global_env.len();
        let env = Env::new(None, n + scope.len());
        for i in 0..n {
            env.set(i, self.global_env.get(i));
        }
        let mut globals = self.globals.clone();
        for (j, e) in scope.iter().enumerate() {
            globals.insert(e.name, (n + j) as u32);
            env.set(n + j, e.value.clone());
        }
        let lowered = lower::lower_source(
            &self.sources,
            path.display().to_string(),
            text,
            base,
            &globals,
            &self.config.lower,
        )?;
        self.eval(&lowered.expr, &Rc::new(env))
    }

    /// Expects a Boolean.
    pub fn expect_bool(&mut self, v: Value, span: Option<Span>) -> EvalResult<bool> {
        match self.force(v)? {
            Value::Bool(b) => Ok(b.get()),
            other => {
                let found = self.describe(&other);
                Err(EvalError::new(
                    ErrorKind::TypeError {
                        expected: "a Boolean",
                        found,
                    },
                    span,
                ))
            }
        }
    }

    /// `a string: "foo"`: the type and a short rendering of a value, for messages.
    pub fn describe(&self, v: &Value) -> String {
        format!("{}: {}", v.type_desc(), self.preview(v))
    }

    /// A short rendering of a value for messages (no forcing, nested values elided).
    pub fn preview(&self, v: &Value) -> String {
        crate::value::print::preview(v, &self.sources)
    }
}

/// The trace frame for a call of `lambda`.
fn calling_frame(lambda: &Lambda) -> String {
    match lambda.name {
        Some(n) => format!("while calling '{n}'"),
        None => "while calling anonymous lambda".to_string(),
    }
}

/// The frame enclosing `env`: where an [`Expr::Parent`] in `env` runs.
fn parent_of(env: &Rc<Env>) -> &Rc<Env> {
    env.ancestor(1)
}

/// The set a value already is, without evaluating anything.
fn evaluated_attrs(v: &Value) -> Option<Rc<Attrs>> {
    match v {
        Value::Attrs(a) => Some(a.clone()),
        Value::Thunk(t) => match t.value() {
            Some(Value::Attrs(a)) => Some(a),
            _ => None,
        },
        _ => None,
    }
}

/// `x.a.b` for a variable `x` already evaluated to a set that has the attributes: the
/// attribute's own value (evaluated or not). Such a selection cannot fail, so handing out the
/// attribute's value is exactly as lazy as a thunk for the selection, and saves the thunk.
fn select_now(expr: &Expr, path: &[AttrKey], env: &Rc<Env>) -> Option<Value> {
    let Expr::Local { depth, idx, .. } = expr else {
        return None;
    };
    let mut v = env.ancestor(*depth as usize).get(*idx as usize);
    for key in path {
        let AttrKey::Static(name, hint) = key else {
            return None;
        };
        v = evaluated_attrs(&v)?.find_hinted(*name, hint)?.value.clone();
    }
    Some(v)
}

/// The head of an application spine and its application nodes, outermost first (for
/// spines longer than `eval_apply_spine` gathers in place).
fn head_and_nodes(e: &Expr) -> (&Expr, Vec<&Expr>) {
    let mut nodes = Vec::new();
    let mut head = e;
    while let Expr::Apply { func, .. } = head {
        nodes.push(head);
        head = func;
    }
    (head, nodes)
}

/// Attribute `name` of `a`, looked up as `key` says: a static key remembers where it found
/// its name last.
#[inline]
fn entry_at<'a>(a: &'a Attrs, key: &AttrKey, name: Symbol) -> Option<&'a AttrEntry> {
    match key {
        AttrKey::Static(_, hint) => a.find_hinted(name, hint),
        AttrKey::Dynamic(..) => a.get_entry(name),
    }
}

/// A `with`-bound variable whose namespaces are already evaluated: its value, found the way
/// `lookup_with` would (innermost `with` first).
fn with_lookup_now(name: Symbol, withs: &[u32], env: &Rc<Env>) -> Option<Value> {
    for &depth in withs {
        let ns = evaluated_attrs(&env.ancestor(depth as usize).get(0))?;
        if let Some(v) = ns.get(name) {
            return Some(v.clone());
        }
    }
    None
}

/// The span to blame for a condition: the condition itself.
fn cond_span(cond: &Expr, whole: Span) -> Span {
    match cond {
        Expr::BinOp { span, .. } | Expr::Apply { span, .. } | Expr::Select { span, .. } => *span,
        _ => whole,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    /// `TVIX_SHOW_STATS` counts the thunks builtins make too (`genList` and `map` make one
    /// per element): it counted only some of the evaluator's own before.
    #[test]
    fn stats_count_every_thunk_made() {
        let mut ev = Evaluator::new(Box::new(crate::io::StdIO::new()), EvalConfig::default());
        let before = ev.stats.thunks();
        let src = "builtins.length (builtins.map (x: x) (builtins.genList (i: i) 100))";
        let v = ev.eval_source("«test»".into(), src.into(), "/".into());
        assert!(matches!(v, Ok(Value::Int(100))));
        let made = ev.stats.thunks() - before;
        assert!((200..300).contains(&made), "{made} thunks counted");
        assert!(format!("{:?}", ev.stats).contains(&format!("thunks: {}", ev.stats.thunks())));
    }

    #[test]
    fn an_interrupt_stops_a_long_evaluation_and_the_evaluator_stays_usable() {
        let flag = Arc::new(AtomicBool::new(false));
        let setter = {
            let flag = flag.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                flag.store(true, Ordering::Relaxed);
            })
        };
        // 10^8 calls in constant memory: far longer than the 50 ms before the interrupt.
        let src = "let l = builtins.genList (x: x) 10000; \
                   in builtins.foldl' (a: _: builtins.foldl' (b: _: b + 1) a l) 0 l";
        let mut ev = Evaluator::new(Box::new(crate::io::StdIO::new()), EvalConfig::default());
        ev.interrupt = Some(flag.clone());
        let r = ev.eval_source("«test»".into(), src.into(), "/".into());
        setter.join().unwrap();
        assert_eq!(
            r.err().map(|e| e.kind.to_string()).as_deref(),
            Some("evaluation interrupted")
        );
        flag.store(false, Ordering::Relaxed);
        let again = ev.eval_source("«test»".into(), "1 + 2".into(), "/".into());
        assert_eq!(
            again
                .map(|v| crate::value::print::print_value(&v))
                .ok()
                .as_deref(),
            Some("3")
        );
    }

    /// Builtins that loop without calling anything (here `genList`, `map`, `listToAttrs`,
    /// `deepSeq`, `toJSON`, `sort lessThan`, `elem`) stop when the flag is set, and the
    /// evaluator is usable afterwards. Each input would run for many seconds (and gigabytes)
    /// if the loop ignored the flag; the test allows two seconds.
    #[test]
    fn an_interrupt_stops_every_looping_builtin() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let big = "(builtins.genList (x: x) 50000000)";
        let cases = [
            format!("builtins.length {big}"),
            "builtins.length (builtins.map (x: x) (builtins.genList (x: x) 20000000))".to_string(),
            format!("builtins.deepSeq {big} 1"),
            format!("builtins.foldl' (a: b: a + b) 0 {big}"),
            format!("builtins.elem (-1) {big}"),
            format!("builtins.length (builtins.sort builtins.lessThan {big})"),
            format!("builtins.stringLength (builtins.toJSON {big})"),
            format!(
                "builtins.length (builtins.attrNames (builtins.listToAttrs (builtins.map \
                 (x: {{ name = toString x; value = x; }}) {big})))"
            ),
        ];
        for src in cases {
            let flag = Arc::new(AtomicBool::new(false));
            let setter = {
                let flag = flag.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    flag.store(true, Ordering::Relaxed);
                })
            };
            let mut ev = Evaluator::new(Box::new(crate::io::StdIO::new()), EvalConfig::default());
            ev.interrupt = Some(flag.clone());
            let started = std::time::Instant::now();
            let r = ev.eval_source("«test»".into(), src.clone(), "/".into());
            let took = started.elapsed();
            setter.join().unwrap();
            assert_eq!(
                r.err().map(|e| e.kind.to_string()).as_deref(),
                Some("evaluation interrupted"),
                "{src}"
            );
            assert!(took < std::time::Duration::from_secs(2), "{src}: {took:?}");
            flag.store(false, Ordering::Relaxed);
            let again = ev.eval_source("«test»".into(), "1 + 2".into(), "/".into());
            assert!(again.is_ok(), "{src}");
        }
    }
}
