//! The state of a REPL session and what each input does to it: the evaluator, the variables
//! the REPL added to the scope, the loaded files (for `:r`), and the last result.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tvix_eval::diagnostic::{render_error, strip_ansi, RenderOptions};
use tvix_eval::symbol::Symbol;
use tvix_eval::{ErrorKind, EvalError, EvalResult, Evaluator, Value};

use crate::build::{Builds, MakeRealiser};
use crate::command::{help_text, parse_input, Command, Input};
use crate::load::Reloadable;
use crate::print::{print, PrintOptions};
use crate::scope::{Origin, ReplScope};
use crate::style::Style;
use crate::{doc, edit, AutoArg};

/// The name under which REPL input appears in positions and error frames (as in `tvix eval
/// -E`, so errors read the same).
pub const INPUT_NAME: &str = "«string»";

/// What handling an input produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A printed value.
    Value(String),
    /// A message for the user (help, "Added 3 variables.", ...).
    Message(String),
    /// Nothing to show (a binding, an empty line).
    Nothing,
    /// `:q`.
    Quit,
}

/// A REPL session.
pub struct Session {
    pub(crate) make_evaluator: Box<dyn Fn() -> Evaluator>,
    /// The evaluator (public for completion and the commands' modules).
    pub ev: Evaluator,
    /// Variables added by the REPL.
    pub(crate) scope: ReplScope,
    pub(crate) reloadable: Vec<Reloadable>,
    pub(crate) auto_args: Vec<AutoArg>,
    pub(crate) last_loaded: Option<Value>,
    results: usize,
    /// Set by Ctrl-C while an evaluation runs.
    pub interrupt: Arc<AtomicBool>,
    /// Show whole error traces (`:te`).
    pub show_trace: bool,
    /// Colour the output (a terminal without `NO_COLOR`).
    pub color: bool,
    /// How deep results are printed (`:set depth`; `:p` prints everything).
    depth: usize,
    /// How many items of each set or list are printed (`:set width`).
    width: usize,
    /// The coordinator, for the build commands.
    pub(crate) builds: Builds,
}

impl Session {
    /// A session with a fresh evaluator from `make_evaluator`; loaded files are called with
    /// `auto_args`. The files to load at start are loaded by [`Session::load_initial`].
    pub fn new(
        make_evaluator: Box<dyn Fn() -> Evaluator>,
        auto_args: Vec<AutoArg>,
        show_trace: bool,
        color: bool,
    ) -> Session {
        let ev = make_evaluator();
        let mut s = Session {
            make_evaluator,
            ev,
            scope: ReplScope::default(),
            reloadable: Vec::new(),
            auto_args,
            last_loaded: None,
            results: 0,
            interrupt: Arc::new(AtomicBool::new(false)),
            show_trace,
            color,
            depth: 1,
            width: usize::MAX,
            builds: Builds::new(None),
        };
        s.configure_evaluator();
        s
    }

    /// Lets the build commands build through realisers `make` opens (on first use).
    pub fn set_realiser(&mut self, make: Option<MakeRealiser>) {
        self.builds = Builds::new(make);
    }

    pub(crate) fn configure_evaluator(&mut self) {
        let color = self.color;
        self.ev.diagnostics = Box::new(move |msg| {
            if color {
                eprintln!("{msg}");
            } else {
                eprintln!("{}", strip_ansi(msg));
            }
        });
        self.ev.interrupt = Some(self.interrupt.clone());
    }

    /// Loads the files, then adds the expressions, given on the command line; each error is
    /// returned rendered.
    pub fn load_initial(
        &mut self,
        files: &[String],
        exprs: &[String],
    ) -> Vec<Result<Outcome, String>> {
        let commands = files
            .iter()
            .map(|f| format!(":l {f}"))
            .chain(exprs.iter().map(|e| format!(":a {e}")));
        commands.map(|c| self.handle(&c)).collect()
    }

    /// Handles one input (possibly several lines). Errors come back rendered as text, like
    /// `tvix eval` prints them.
    pub fn handle(&mut self, text: &str) -> Result<Outcome, String> {
        self.interrupt.store(false, Ordering::SeqCst);
        let r = self.dispatch(text);
        // What the input wrote to the store becomes durable before its result is shown.
        let r = r.and_then(|out| {
            self.ev
                .io
                .commit()
                .map_err(|e| other(format!("committing to the store: {e}")))?;
            Ok(out)
        });
        r.map_err(|e| self.render(&e))
    }

    /// Renders an error for the terminal (or plain, without colour).
    pub fn render(&self, e: &EvalError) -> String {
        let opts = RenderOptions {
            show_trace: self.show_trace,
            color: self.color,
        };
        // The hint for more detail names the REPL's command rather than the CLI flag.
        let text = render_error(e, &self.ev.sources, opts).replace("'--show-trace'", "':te'");
        if self.color {
            text
        } else {
            strip_ansi(&text).into_owned()
        }
    }

    fn dispatch(&mut self, text: &str) -> EvalResult<Outcome> {
        match parse_input(text) {
            Input::Empty => Ok(Outcome::Nothing),
            Input::UnknownCommand(name) => Err(other(format!(
                "unknown command '{name}'; type :? for the list of commands"
            ))),
            Input::Binding(name, rhs) => {
                let v = self.delay_expr(rhs)?;
                self.bind(Symbol::intern(name), v, Origin::Bound);
                Ok(Outcome::Nothing)
            }
            Input::Inherit(text) => {
                let text = text.trim_end().trim_end_matches(';');
                let set = self.eval_expr(&format!("{{ {text}; }}"))?;
                let Value::Attrs(a) = set else {
                    return Err(other(format!("'{text}' is not an inherit binding")));
                };
                for e in a.iter() {
                    self.bind(e.name, e.value.clone(), Origin::Bound);
                }
                Ok(Outcome::Nothing)
            }
            Input::Expr(e) => {
                let v = self.eval_expr(e)?;
                let out = self.print(v.clone(), self.depth, false)?;
                self.record_result(v);
                Ok(Outcome::Value(out))
            }
            Input::Command(cmd, name, arg) => self.command(cmd, name, arg),
        }
    }

    fn command(&mut self, cmd: Command, name: &str, arg: &str) -> EvalResult<Outcome> {
        let need_arg = |what: &str| -> EvalResult<()> {
            if arg.is_empty() {
                Err(other(format!("{name} needs {what}")))
            } else {
                Ok(())
            }
        };
        match cmd {
            Command::Help => Ok(Outcome::Message(help_text())),
            Command::Quit => Ok(Outcome::Quit),
            Command::Add => {
                need_arg("an expression")?;
                let v = self.eval_expr(arg)?;
                let n = self.add_attrs(v, Origin::Loaded(arg.to_string()))?;
                Ok(added(n))
            }
            Command::Load => {
                need_arg("a file")?;
                let item = Reloadable::File(arg.to_string());
                self.remember(item.clone());
                self.load(&item).map(added)
            }
            Command::LoadFlake => {
                need_arg("a flake directory")?;
                let item = Reloadable::Flake(arg.to_string());
                self.remember(item.clone());
                self.load(&item).map(added)
            }
            Command::Reload => self.reload(),
            Command::Edit => {
                need_arg("an expression")?;
                let v = self.eval_expr(arg)?;
                edit::edit(self, v)?;
                // As in Nix, the loaded files are read again to pick up the edit.
                if self.reloadable.is_empty() {
                    Ok(Outcome::Nothing)
                } else {
                    self.reload()
                }
            }
            Command::Type => {
                need_arg("an expression")?;
                let v = self.eval_expr(arg)?;
                let v = self.ev.force(v)?;
                Ok(Outcome::Message(type_description(&v)))
            }
            Command::Print => {
                need_arg("an expression")?;
                let v = self.eval_expr(arg)?;
                let out = self.print(v.clone(), usize::MAX, true)?;
                self.record_result(v);
                Ok(Outcome::Value(out))
            }
            Command::Doc => {
                need_arg("an expression")?;
                let v = self.eval_expr(arg)?;
                let v = self.ev.force(v)?;
                doc::doc(&self.ev, arg, &v, self.color).map(Outcome::Message)
            }
            Command::TraceEnable => {
                self.show_trace = match arg {
                    "" => !self.show_trace,
                    "true" | "on" | "1" => true,
                    "false" | "off" | "0" => false,
                    _ => return Err(other(format!("{name} takes true or false, not '{arg}'"))),
                };
                Ok(Outcome::Message(format!(
                    "showing error traces: {}",
                    if self.show_trace { "on" } else { "off" }
                )))
            }
            Command::Env => Ok(Outcome::Message(self.env_listing())),
            Command::Set => self.set(arg).map(Outcome::Message),
            Command::LastLoaded => match self.last_loaded.clone() {
                Some(v) => self.print(v, self.depth, false).map(Outcome::Value),
                None => Ok(Outcome::Message("nothing loaded yet".to_string())),
            },
            c if c.builds() => self.build_command(c, name, arg),
            _ => Err(other(format!("{name} is not handled"))),
        }
    }

    /// Evaluates `text` in the REPL scope to weak head normal form.
    pub fn eval_expr(&mut self, text: &str) -> EvalResult<Value> {
        let (lowered, env) = self.ev.lower_in_scope(
            INPUT_NAME.to_string(),
            text.to_string(),
            cwd(),
            self.scope.entries(),
        )?;
        self.ev.eval(&lowered.expr, &env)
    }

    /// `text` as a thunk in the REPL scope (bindings are lazy, as in `nix repl`); syntax and
    /// scope errors are reported now.
    fn delay_expr(&mut self, text: &str) -> EvalResult<Value> {
        let (lowered, env) = self.ev.lower_in_scope(
            INPUT_NAME.to_string(),
            text.to_string(),
            cwd(),
            self.scope.entries(),
        )?;
        Ok(self.ev.delay(&lowered.expr, &env))
    }

    /// Evaluates `text` for completion: at most `budget` long (the evaluator's interrupt flag
    /// is set by a timer), with `trace` output suppressed; any error gives `None`.
    pub fn eval_quietly(&mut self, text: &str, budget: Duration) -> Option<Value> {
        let flag = Arc::new(AtomicBool::new(false));
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let timer_flag = flag.clone();
        let timer = std::thread::spawn(move || {
            if wait.recv_timeout(budget).is_err() {
                timer_flag.store(true, Ordering::SeqCst);
            }
        });
        let saved_interrupt = self.ev.interrupt.replace(flag);
        let saved_diagnostics = std::mem::replace(&mut self.ev.diagnostics, Box::new(|_| {}));
        let r = self.eval_expr(text).and_then(|v| self.ev.force(v));
        self.ev.interrupt = saved_interrupt;
        self.ev.diagnostics = saved_diagnostics;
        let _ = done.send(());
        let _ = timer.join();
        r.ok()
    }

    /// Renders `v` to `depth`.
    pub fn print(&mut self, v: Value, depth: usize, strict: bool) -> EvalResult<String> {
        let opts = PrintOptions {
            depth,
            width: self.width,
            strict,
            style: Style::new(self.color),
        };
        if strict {
            // `:p` is `--strict`: everything is forced first, so the first error is the
            // result (with the trace of where it was reached).
            let v = self.ev.force_deep(v)?;
            return print(&mut self.ev, v, &opts);
        }
        print(&mut self.ev, v, &opts)
    }

    /// `:set depth N`, `:set width N` (`none` for no limit); `:set` alone shows them.
    fn set(&mut self, arg: &str) -> EvalResult<String> {
        let show = |n: usize| {
            if n == usize::MAX {
                "none".to_string()
            } else {
                n.to_string()
            }
        };
        let mut words = arg.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (None, _, _) => {}
            (Some(key @ ("depth" | "width")), Some(value), None) => {
                let n = match value {
                    "none" => usize::MAX,
                    v => v.parse::<usize>().map_err(|_| {
                        other(format!("{key} must be a number or 'none', not '{v}'"))
                    })?,
                };
                if key == "depth" {
                    self.depth = n;
                } else {
                    self.width = n;
                }
            }
            _ => {
                return Err(other(format!(
                    ":set takes 'depth N' or 'width N', not '{arg}'"
                )))
            }
        }
        Ok(format!(
            "depth {} width {}",
            show(self.depth),
            show(self.width)
        ))
    }

    fn record_result(&mut self, v: Value) {
        self.results += 1;
        self.bind(
            Symbol::intern(&format!("_{}", self.results)),
            v.clone(),
            Origin::Bound,
        );
        self.bind(Symbol::intern("_"), v, Origin::Bound);
    }

    pub(crate) fn bind(&mut self, name: Symbol, v: Value, origin: Origin) {
        self.scope.bind(name, v, origin);
    }

    /// The names the REPL added to the scope (for completion).
    pub fn scope_names(&self) -> impl Iterator<Item = Symbol> + '_ {
        self.scope.entries().iter().map(|(n, _)| *n)
    }

    fn env_listing(&self) -> String {
        let head = format!(
            "{} builtins and global names; {} results numbered _1.._{}\n",
            self.ev.global_names().count(),
            self.results,
            self.results
        );
        (head + &self.scope.listing()).trim_end().to_string()
    }
}

/// `:t`'s description of a value, as Nix's: builtins are named, strings with context say so.
fn type_description(v: &Value) -> String {
    match v {
        Value::PrimOp(app) if app.args.is_empty() => {
            format!("the built-in function '{}'", app.op.name)
        }
        Value::PrimOp(app) => format!("the partially applied built-in function '{}'", app.op.name),
        Value::String(s) if s.has_context() => "a string with context".to_string(),
        other_value => other_value.type_desc().to_string(),
    }
}

pub(crate) fn added(n: usize) -> Outcome {
    Outcome::Message(format!(
        "Added {n} variable{}.",
        if n == 1 { "" } else { "s" }
    ))
}

/// An error without a source position.
pub fn other(msg: String) -> Box<EvalError> {
    EvalError::new(ErrorKind::Other(msg), None)
}

/// The current directory (relative paths in input resolve against it).
pub fn cwd() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))
}

/// A path argument of `:l`/`:lf`: `~/` is the home directory, relative paths are relative to
/// the current directory.
pub fn expand_path(arg: &str) -> PathBuf {
    let path = match (arg.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => cwd().join(arg),
    };
    tvix_eval::lower::canonicalize_path(path.as_os_str().as_encoded_bytes())
}
