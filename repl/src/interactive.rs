//! The interactive REPL on a terminal: rustyline with completion, highlighting, the
//! multi-line validator, bracketed paste and history appended after every line; Ctrl-C
//! interrupts a running evaluation (the evaluator's interrupt flag, set from the signal
//! handler) and clears the line at the prompt; Ctrl-D exits.

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::IsTerminal;
use std::rc::Rc;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{ColorMode, CompletionType, Config, Context, Editor, Helper};

use crate::session::{Outcome, Session};
use crate::{complete, highlight, validate, ReplOptions};

const PROMPT: &str = "tvix-repl> ";

/// rustyline's view of the session.
struct ReplHelper {
    session: Rc<RefCell<Session>>,
    color: bool,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let Ok(mut session) = self.session.try_borrow_mut() else {
            return Ok((pos, Vec::new()));
        };
        let (start, candidates) = complete::complete(&mut session, line, pos);
        let pairs = candidates
            .into_iter()
            .map(|c| Pair {
                display: c.display,
                replacement: c.replacement,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if self.color {
            Cow::Owned(highlight::highlight(line))
        } else {
            Cow::Borrowed(line)
        }
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.color
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if validate::needs_more(ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl Helper for ReplHelper {}

/// Runs the interactive REPL; the exit status is 0 unless the terminal fails.
pub fn run(options: ReplOptions) -> i32 {
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let session = Rc::new(RefCell::new(Session::new(
        options.make_evaluator,
        options.auto_args,
        options.show_trace,
        color,
    )));
    session.borrow_mut().set_realiser(options.make_realiser);
    // SIGINT only arrives while an evaluation runs (at the prompt the terminal is raw and
    // rustyline reads Ctrl-C as a key); it sets the evaluator's interrupt flag. A second
    // Ctrl-C before the evaluation noticed the first (stuck inside one builtin) exits.
    let flag = session.borrow().interrupt.clone();
    let sigint = signal_hook::consts::SIGINT;
    if let Err(e) = signal_hook::flag::register_conditional_shutdown(sigint, 130, flag.clone())
        .and_then(|_| signal_hook::flag::register(sigint, flag))
    {
        eprintln!("warning: Ctrl-C will not interrupt evaluations: {e}");
    }
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .bracketed_paste(true)
        .auto_add_history(false)
        .history_ignore_space(true)
        .color_mode(if color {
            ColorMode::Enabled
        } else {
            ColorMode::Disabled
        })
        .build();
    let mut editor: Editor<ReplHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot use the terminal: {e}");
            return 1;
        }
    };
    editor.set_helper(Some(ReplHelper {
        session: session.clone(),
        color,
    }));
    let history = options
        .history_file
        .clone()
        .or_else(crate::default_history_file);
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if h.exists() {
            if let Err(e) = editor.load_history(h) {
                eprintln!("warning: cannot read the history {}: {e}", h.display());
            }
        }
    }

    println!(
        "Welcome to tvix {}. Type :? for help.\n",
        env!("CARGO_PKG_VERSION")
    );
    for r in session
        .borrow_mut()
        .load_initial(&options.files, &options.exprs)
    {
        show(r);
    }
    let mut history_warned = false;
    loop {
        match editor.readline(PROMPT) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                    if let Some(h) = &history {
                        if let Err(e) = editor.append_history(h) {
                            if !history_warned {
                                eprintln!("warning: cannot save the history {}: {e}", h.display());
                                history_warned = true;
                            }
                        }
                    }
                }
                let r = session.borrow_mut().handle(&line);
                if show(r) {
                    break;
                }
                if let Some(release) = options.release_memory {
                    release();
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: reading input: {e}");
                return 1;
            }
        }
    }
    0
}

/// Prints an outcome; true for `:q`.
fn show(r: Result<Outcome, String>) -> bool {
    match r {
        Ok(Outcome::Value(v)) => println!("{v}\n"),
        Ok(Outcome::Message(m)) => println!("{m}"),
        Ok(Outcome::Nothing) => {}
        Ok(Outcome::Quit) => return true,
        Err(e) => eprintln!("{}", e.trim_end()),
    }
    false
}
