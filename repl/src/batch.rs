//! The REPL without a terminal, for scripts and tests: inputs are read from standard input
//! (an input continues over lines while it is incomplete, as interactively), each result is
//! printed on its own line to standard output and errors go to standard error. The exit
//! status is 1 if any input failed.

use std::io::{BufRead, IsTerminal, Write};

use crate::session::{Outcome, Session};
use crate::validate::needs_more;
use crate::ReplOptions;

/// Runs the REPL over standard input.
pub fn run(options: ReplOptions) -> i32 {
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut session = Session::new(
        options.make_evaluator,
        options.auto_args,
        options.show_trace,
        color,
    );
    session.set_realiser(options.make_realiser);
    let mut failed = false;
    for r in session.load_initial(&options.files, &options.exprs) {
        failed |= r.is_err();
        if emit(r) {
            return i32::from(failed);
        }
    }
    let mut input = String::new();
    for line in std::io::stdin().lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: reading standard input: {e}");
                return 1;
            }
        };
        input.push_str(&line);
        if needs_more(&input) {
            input.push('\n');
            continue;
        }
        let r = session.handle(&input);
        input.clear();
        failed |= r.is_err();
        if emit(r) {
            return i32::from(failed);
        }
    }
    if !input.trim().is_empty() {
        let r = session.handle(&input);
        failed |= r.is_err();
        emit(r);
    }
    i32::from(failed)
}

/// Prints an outcome; true for `:q`.
fn emit(r: Result<Outcome, String>) -> bool {
    let mut out = std::io::stdout().lock();
    match r {
        Ok(Outcome::Value(v)) | Ok(Outcome::Message(v)) => {
            let _ = writeln!(out, "{v}");
        }
        Ok(Outcome::Nothing) => {}
        Ok(Outcome::Quit) => return true,
        Err(e) => {
            let _ = out.flush();
            eprintln!("{}", e.trim_end());
        }
    }
    let _ = out.flush();
    false
}
