//! The REPL's build commands: `:b`, `:bl`, `:i`, `:u`, `:sh` and `:log`. They evaluate
//! their argument to a derivation, then hand its `.drv` path to the coordinator's
//! [`Realiser`] (opened on first use, from the factory the binary gives); build output goes
//! to standard error as `nix-build` prints it, and Ctrl-C cancels the build.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tvix_build::CancelToken;
use tvix_coordinator::events::Subscriber;
use tvix_coordinator::log::LogError;
use tvix_coordinator::nix_output::NixStyleOutput;
use tvix_coordinator::realise::{failure_messages, RealiseError, Realiser};
use tvix_coordinator::request::SANDBOX_STORE_DIR;
use tvix_eval::symbol::Symbol;
use tvix_eval::{EvalResult, Value};
use tvix_store::StorePath;
use tvix_tui::driver::{Dashboard, Mode, Options};
use tvix_tui::history::HistoryFile;

use crate::session::{other, Outcome, Session};
use crate::{profile, shell};

/// Opens the store and build service the REPL builds with; the error is the message to show.
pub type MakeRealiser = Box<dyn Fn() -> Result<Realiser, String>>;

/// The REPL's access to the coordinator: a factory, and the realiser once it is open.
pub(crate) struct Builds {
    make: Option<MakeRealiser>,
    realiser: Option<Realiser>,
}

impl Builds {
    /// Builds through realisers `make` opens; `None` when the REPL has no store to build in
    /// (`--readonly-mode`, `dummy://`).
    pub(crate) fn new(make: Option<MakeRealiser>) -> Builds {
        Builds {
            make,
            realiser: None,
        }
    }

    /// The realiser, opened now if this is the first build.
    fn realiser(&mut self, command: &str) -> EvalResult<&Realiser> {
        if self.realiser.is_none() {
            let Some(make) = &self.make else {
                return Err(other(format!(
                    "{command} needs a store to build in; this REPL evaluates without one \
                     (--readonly-mode or a dummy:// store)"
                )));
            };
            self.realiser = Some(make().map_err(other)?);
        }
        Ok(self.realiser.as_ref().expect("opened above"))
    }
}

/// Nix's message for `:b` of something that is not a derivation.
const NOT_A_DERIVATION: &str = "expression does not evaluate to a derivation, so I can't build it";

/// What `:b` prints: each output's label (its name, or the link made for it with `:bl`) and
/// its path, after a blank line, as `nix repl` does.
pub fn outputs_message(outputs: &[(String, String)]) -> String {
    let mut m = String::from("\nThis derivation produced the following outputs:");
    for (label, path) in outputs {
        m.push_str(&format!("\n  {label} -> {path}"));
    }
    m
}

/// The name of the link `:bl` makes for an output (Nix's `repl-result-OUTPUT`).
pub fn link_name(output: &str) -> String {
    format!("repl-result-{output}")
}

/// An absolute store path as it is shown.
fn shown(p: &StorePath) -> String {
    format!("{SANDBOX_STORE_DIR}/{p}")
}

/// Indents continuation lines as `error: ` messages are (see `tvix build`).
fn indent(msg: &str) -> String {
    msg.trim_end().replace('\n', "\n       ")
}

impl Session {
    /// Runs a build command.
    pub(crate) fn build_command(
        &mut self,
        cmd: crate::command::Command,
        name: &str,
        arg: &str,
    ) -> EvalResult<Outcome> {
        use crate::command::Command;
        if arg.is_empty() {
            return Err(other(format!("{name} needs an expression")));
        }
        let drv = self.derivation_of(arg)?;
        match cmd {
            Command::Build | Command::BuildLink => {
                let outputs = self.realise_all(name, &drv)?;
                let mut shown_outputs = Vec::new();
                for (output, path) in &outputs {
                    let label = if cmd == Command::BuildLink {
                        let link = link_name(output);
                        make_link(Path::new(&link), &shown(path))
                            .map_err(|e| other(format!("creating the link './{link}': {e}")))?;
                        format!("./{link}")
                    } else {
                        output.clone()
                    };
                    shown_outputs.push((label, shown(path)));
                }
                Ok(Outcome::Message(outputs_message(&shown_outputs)))
            }
            Command::Install => {
                let outputs = self.realise_all(name, &drv)?;
                let realiser = self.builds.realiser(name)?;
                let pkg = drv.name().trim_end_matches(".drv").to_string();
                eprintln!("installing '{pkg}'");
                let installed = profile::install(&**realiser.store(), &pkg, &outputs)
                    .map_err(|e| other(format!("installing '{pkg}': {e}")))?;
                eprintln!(
                    "created {} symlinks in user environment",
                    installed.n_symlinks
                );
                shell::note_missing_on_host([installed.generation.as_str()], &[], None);
                Ok(Outcome::Nothing)
            }
            Command::UseShell => {
                let outputs = self.realise_all(name, &drv)?;
                let paths: Vec<String> = outputs.values().map(shown).collect();
                let env = shell::use_environment(&paths, std::env::var("PATH").ok().as_deref());
                self.shell_seeing_store(name, &env, &paths, &[])?;
                Ok(Outcome::Nothing)
            }
            Command::DevShell => self.dev_shell(name, &drv),
            Command::Log => self.show_log(name, &drv),
            _ => Err(other(format!("{name} is not a build command"))),
        }
    }

    /// Evaluates `arg` to a derivation and returns its `.drv` path (written to the store,
    /// and committed, so the coordinator can read it).
    fn derivation_of(&mut self, arg: &str) -> EvalResult<StorePath> {
        let v = self.eval_expr(arg)?;
        let v = self.ev.force(v)?;
        let Value::Attrs(attrs) = &v else {
            return Err(other(NOT_A_DERIVATION.to_string()));
        };
        let is_drv = match attrs.get(Symbol::intern("type")).cloned() {
            Some(t) => {
                matches!(self.ev.force(t)?, Value::String(s) if s.as_bytes() == b"derivation")
            }
            None => false,
        };
        let drv_path = attrs.get(Symbol::intern("drvPath")).cloned();
        let (true, Some(drv_path)) = (is_drv, drv_path) else {
            return Err(other(NOT_A_DERIVATION.to_string()));
        };
        let text = self.ev.force_string(drv_path, None)?;
        let text = text.to_str_lossy().into_owned();
        let drv = StorePath::from_absolute_path(&text)
            .ok()
            .filter(|p| p.name().ends_with(".drv"))
            .ok_or_else(|| other(format!("'{text}' is not a derivation in the store")))?;
        self.ev
            .io
            .commit()
            .map_err(|e| other(format!("committing to the store: {e}")))?;
        Ok(drv)
    }

    /// Builds `drvs` (what is valid already is not rebuilt), shown on standard error as
    /// a compact dashboard on a terminal (cleared when done), else as `nix-build` prints
    /// it; Ctrl-C cancels. Returns each derivation's outputs.
    fn realise(
        &mut self,
        command: &str,
        drvs: &[StorePath],
    ) -> EvalResult<Vec<BTreeMap<String, StorePath>>> {
        let interrupt = self.interrupt.clone();
        let realiser = self.builds.realiser(command)?;
        let cancel = CancelToken::new();
        let watcher = InterruptWatcher::start(interrupt, cancel.clone());
        let compact = Mode::detect() == Mode::Dashboard;
        let run = if compact {
            let dashboard = Dashboard::start(Options {
                mode: Mode::Compact,
                print_logs: false,
                color: false,
                title: command.to_string(),
                history: HistoryFile::default_location().ok(),
                // Ctrl-C reaches the REPL's handler, which cancels the token.
                on_cancel: Box::new(|| {}),
            });
            let feed = dashboard.feed();
            let subscribers: [&dyn Subscriber; 1] = [&feed];
            let run = realiser.run(drvs, &subscribers, &cancel);
            // The lines are gone either way; a dashboard that failed showed nothing more.
            let _ = dashboard.finish(cancel.is_cancelled());
            run
        } else {
            let output = NixStyleOutput::default();
            let subscribers: [&dyn Subscriber; 1] = [&output];
            realiser.run(drvs, &subscribers, &cancel)
        };
        drop(watcher);
        let outcome = run.map_err(|e| other(indent(&RealiseError::from(e).to_string())))?;
        if outcome.success() {
            return Ok(outcome.target_outputs);
        }
        // Nix's lines showed the log as the build ran, so the messages leave out its
        // tail; the compact dashboard's lines are gone, so they carry it.
        let messages = failure_messages(&outcome, drvs, compact);
        Err(other(indent(&messages.join("\n"))))
    }

    /// Builds every output of `drv`.
    fn realise_all(
        &mut self,
        command: &str,
        drv: &StorePath,
    ) -> EvalResult<BTreeMap<String, StorePath>> {
        let mut outputs = self.realise(command, std::slice::from_ref(drv))?;
        Ok(outputs.pop().unwrap_or_default())
    }

    /// `:sh`: builds the derivation's inputs, then starts a shell in the environment its
    /// builder would get (the coordinator's build request), with a temporary build
    /// directory removed afterwards.
    fn dev_shell(&mut self, command: &str, drv: &StorePath) -> EvalResult<Outcome> {
        let inputs = {
            let realiser = self.builds.realiser(command)?;
            let d = tvix_coordinator::build::read_derivation(&**realiser.store(), drv)
                .map_err(|e| other(e.to_string()))?;
            d.input_derivations
                .keys()
                .map(|p| StorePath::from_absolute_path(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| other(format!("derivation '{}': {e}", shown(drv))))?
        };
        if !inputs.is_empty() {
            self.realise(command, &inputs)?;
        }
        let realiser = self.builds.realiser(command)?;
        let request = realiser
            .build_request(drv)
            .map_err(|e| other(e.to_string()))?;
        let build_dir = tempfile::Builder::new()
            .prefix("tvix-shell-")
            .tempdir()
            .map_err(|e| other(format!("creating a build directory: {e}")))?;
        let env = shell::build_environment(
            &request,
            build_dir.path(),
            std::env::var("PATH").ok().as_deref(),
        )
        .map_err(|e| other(format!("preparing the build directory: {e}")))?;
        let named: Vec<String> = env.iter().map(|(_, v)| v.clone()).collect();
        // The derivation's own outputs are not built by `:sh`, so they are not expected.
        let r = self.shell_seeing_store(command, &env, &named, &request.outputs);
        // The build directory goes whatever the shell did.
        let removed = build_dir.close();
        r?;
        removed.map_err(|e| other(format!("removing the build directory: {e}")))?;
        Ok(Outcome::Nothing)
    }

    /// Runs the user's shell with `env` where the tvix store's paths are seen at the store
    /// directory, laid over the host's (a private mount namespace; needs root). Where the
    /// store cannot be mounted, the shell runs on the host as it is, after a note naming
    /// the paths of `named` (other than `except`) that are missing there.
    fn shell_seeing_store(
        &mut self,
        command: &str,
        env: &[(String, String)],
        named: &[String],
        except: &[String],
    ) -> EvalResult<()> {
        use tvix_store::fuse::{with_store_mounted, MountError, MountOptions, StoreView};
        let store = self.builds.realiser(command)?.store().clone();
        let opts = MountOptions {
            threads: 2,
            ..MountOptions::default()
        };
        let started =
            |r: std::io::Result<()>| r.map_err(|e| other(format!("starting a shell: {e}")));
        match with_store_mounted(
            store,
            Path::new(SANDBOX_STORE_DIR),
            &opts,
            StoreView::OverHost,
            || shell::run_shell(env),
        ) {
            Ok(r) => started(r),
            // The shell ran; only the unmount failed.
            Err(e @ MountError::Unmount { .. }) => Err(other(e.to_string())),
            Err(e) => {
                let why = e.to_string();
                shell::note_missing_on_host(named.iter().map(String::as_str), except, Some(&why));
                started(shell::run_shell(env))
            }
        }
    }

    /// `:log`: the derivation's build log, through `$PAGER` on a terminal.
    fn show_log(&mut self, command: &str, drv: &StorePath) -> EvalResult<Outcome> {
        let realiser = self.builds.realiser(command)?;
        let logs = realiser
            .logs()
            .ok_or_else(|| other(LogError::NoDirectory.to_string()))?;
        let log = logs.read(drv).map_err(|e| match e {
            LogError::NotFound(_) => other(LogError::NotFound(shown(drv)).to_string()),
            e => other(e.to_string()),
        })?;
        if std::io::stdout().is_terminal() {
            if let Some(pager) = pager_command(|name| std::env::var(name).ok()) {
                page(&pager, &log)
                    .map_err(|e| other(format!("running the pager '{pager}': {e}")))?;
                return Ok(Outcome::Nothing);
            }
        }
        let text = String::from_utf8_lossy(&log);
        Ok(Outcome::Message(text.trim_end_matches('\n').to_string()))
    }
}

/// The pager, as Nix picks it: `$NIX_PAGER`, else `$PAGER`, else `less`; none when it is
/// set empty or to `cat`.
fn pager_command(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let pager = var("NIX_PAGER")
        .or_else(|| var("PAGER"))
        .unwrap_or_else(|| "less".to_string());
    let trimmed = pager.trim();
    (!trimmed.is_empty() && trimmed != "cat").then(|| trimmed.to_string())
}

/// Sends `text` through the pager command `pager` (run by `sh`, as `$PAGER` may have
/// arguments) and waits for it.
fn page(pager: &str, text: &[u8]) -> std::io::Result<()> {
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(pager)
        .stdin(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // The user may quit the pager before reading everything: not an error.
        let _ = stdin.write_all(text);
    }
    child.wait()?;
    Ok(())
}

/// Replaces (or creates) the symlink `link` pointing to `target`.
fn make_link(link: &Path, target: &str) -> std::io::Result<()> {
    let tmp = link.with_file_name(format!(
        "{}.tmp-{}",
        link.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

/// Turns the REPL's Ctrl-C flag into a build cancellation while a build runs: the flag is
/// set by the SIGINT handler; the watcher cancels the token and clears the flag (so a
/// second Ctrl-C while the build stops does not end the REPL).
struct InterruptWatcher {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InterruptWatcher {
    fn start(flag: Arc<AtomicBool>, cancel: CancelToken) -> InterruptWatcher {
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let thread = std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if flag.swap(false, Ordering::SeqCst) {
                    cancel.cancel();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        InterruptWatcher {
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for InterruptWatcher {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_print_as_nix_repl() {
        assert_eq!(
            outputs_message(&[
                ("dev".into(), "/nix/store/a-x-dev".into()),
                ("out".into(), "/nix/store/b-x".into())
            ]),
            "\nThis derivation produced the following outputs:\n  dev -> /nix/store/a-x-dev\n  out -> /nix/store/b-x"
        );
        assert_eq!(link_name("out"), "repl-result-out");
    }

    #[test]
    fn watcher_cancels_and_clears_the_flag() {
        let flag = Arc::new(AtomicBool::new(false));
        let cancel = CancelToken::new();
        let w = InterruptWatcher::start(flag.clone(), cancel.clone());
        flag.store(true, Ordering::SeqCst);
        let start = std::time::Instant::now();
        while !cancel.is_cancelled() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(w);
        assert!(cancel.is_cancelled());
        assert!(!flag.load(Ordering::SeqCst));
    }

    #[test]
    fn pager_as_nix_picks_it() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(pager_command(env(&[])), Some("less".to_string()));
        assert_eq!(
            pager_command(env(&[("PAGER", "more -s"), ("NIX_PAGER", "most")])),
            Some("most".to_string())
        );
        assert_eq!(pager_command(env(&[("PAGER", "cat")])), None);
        assert_eq!(pager_command(env(&[("NIX_PAGER", "")])), None);
    }

    #[test]
    fn links_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join(link_name("out"));
        make_link(&link, "/nix/store/a").unwrap();
        make_link(&link, "/nix/store/b").unwrap();
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("/nix/store/b")
        );
    }
}
