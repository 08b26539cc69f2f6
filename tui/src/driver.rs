//! The IO edge: a thread that owns the model and either draws the dashboard on stderr
//! (alternate screen, raw mode, keys, at most one frame per [`FRAME_INTERVAL`] and only
//! when something changed) or writes plain lines. Updates reach it through a channel
//! from [`Feed`]s, which are coordinator subscribers.
//!
//! The terminal is restored on every way out: the end of the run, an error of the
//! terminal, a panic on any thread (a panic hook), and the thread's unwinding (a guard).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossterm::event::{
    self as term_event, Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers,
};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tvix_coordinator::eval_progress::EvalProgress;
use tvix_coordinator::events::{Event, Subscriber};

use crate::compact::compact_lines;
use crate::convert::updates;
use crate::history::{History, HistoryFile};
use crate::model::{Model, Update};
use crate::plain::Plain;
use crate::render::{render, FRAME_INTERVAL};
use crate::view::{Command, Key, ViewState};

/// How the run is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The full-screen dashboard (stderr must be a terminal).
    Dashboard,
    /// Timestamped lines.
    Plain,
    /// A few lines drawn in place below what is on the terminal (stderr must be one),
    /// cleared at the end; no keys (the caller keeps Ctrl-C). The REPL's `:b`.
    Compact,
}

impl Mode {
    /// The dashboard when stderr is a terminal that can draw one (not `TERM=dumb`), else
    /// plain lines.
    pub fn detect() -> Mode {
        use std::io::IsTerminal;
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        if std::io::stderr().is_terminal() && !dumb {
            Mode::Dashboard
        } else {
            Mode::Plain
        }
    }
}

/// Whether colours may be used: not when `NO_COLOR` is set to anything non-empty.
pub fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Options of a dashboard.
pub struct Options {
    /// How the run is shown.
    pub mode: Mode,
    /// Print build logs as `name> line` (plain mode).
    pub print_logs: bool,
    /// Use colours.
    pub color: bool,
    /// The title (`tvix build`).
    pub title: String,
    /// Where build durations are kept, for estimates (none: no estimates).
    pub history: Option<HistoryFile>,
    /// Called when the user confirms cancelling the run.
    pub on_cancel: Box<dyn Fn() + Send>,
}

enum Msg {
    Update(Duration, Update),
    End {
        cancelled: bool,
        /// Whether the summary is shown (not when the run ended before any build).
        summary: bool,
    },
}

/// How often plain lines report an evaluation that still runs (the dashboard shows each
/// frame's counts).
pub const PLAIN_EVAL_INTERVAL: Duration = Duration::from_secs(2);

/// Sends updates to a running dashboard; a coordinator [`Subscriber`].
#[derive(Clone)]
pub struct Feed {
    tx: Sender<Msg>,
    start: Instant,
}

impl Feed {
    /// Sends `update`, stamped with the time since the dashboard started.
    pub fn send(&self, update: Update) {
        // A dashboard that stopped (its terminal failed) drops what follows.
        let _ = self.tx.send(Msg::Update(self.start.elapsed(), update));
    }
}

impl Subscriber for Feed {
    fn event(&self, event: &Event<'_>) {
        for u in updates(event) {
            self.send(u);
        }
    }
}

/// A running dashboard.
pub struct Dashboard {
    feed: Feed,
    thread: JoinHandle<std::io::Result<Model>>,
    history: Option<HistoryFile>,
    mode: Mode,
}

/// Reports an evaluation's progress to a dashboard while it runs (see
/// [`Dashboard::watch_evaluation`]); stops when finished or dropped.
pub struct EvalWatch {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    feed: Feed,
    progress: Arc<EvalProgress>,
}

impl EvalWatch {
    /// The evaluation is over: its final counts are shown.
    pub fn finish(mut self) {
        self.stop();
        self.feed.send(Update::Evaluated(self.progress.counts()));
    }

    fn stop(&mut self) {
        // Hanging up wakes the sampling thread at once.
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EvalWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Dashboard {
    /// Starts showing a run.
    pub fn start(options: Options) -> Dashboard {
        let (tx, rx) = channel();
        let start = Instant::now();
        let history = options
            .history
            .as_ref()
            .and_then(|f| f.load().ok())
            .unwrap_or_default();
        let file = options.history.clone();
        let mode = options.mode;
        let thread = std::thread::spawn(move || match options.mode {
            Mode::Plain => plain_loop(&options, history, rx, start),
            Mode::Dashboard => dashboard_loop(&options, history, rx, start),
            Mode::Compact => compact_loop(history, rx, start),
        });
        Dashboard {
            feed: Feed { tx, start },
            thread,
            history: file,
            mode,
        }
    }

    /// How the run is shown.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Shows the progress of an evaluation that counts into `progress` until the
    /// returned watch is finished: on the dashboard at once and then each frame, in plain
    /// lines every [`PLAIN_EVAL_INTERVAL`] while the counts change. The counters are
    /// read on a thread of the watch's own, so the evaluation does nothing but count.
    pub fn watch_evaluation(&self, progress: Arc<EvalProgress>) -> EvalWatch {
        let (stop, stopped) = channel::<()>();
        let feed = self.feed();
        let (interval, at_once) = match self.mode {
            Mode::Dashboard | Mode::Compact => (FRAME_INTERVAL, true),
            Mode::Plain => (PLAIN_EVAL_INTERVAL, false),
        };
        let counters = progress.clone();
        let sampler = feed.clone();
        let thread = std::thread::spawn(move || {
            let mut last = None;
            if at_once {
                let c = counters.counts();
                sampler.send(Update::Evaluating(c));
                last = Some(c);
            }
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                let c = counters.counts();
                if last != Some(c) {
                    sampler.send(Update::Evaluating(c));
                    last = Some(c);
                }
            }
        });
        EvalWatch {
            stop: Some(stop),
            thread: Some(thread),
            feed,
            progress,
        }
    }

    /// Ends a run that stopped before anything was planned (an evaluation error):
    /// gives the terminal back without a summary, so the error printed next stands
    /// alone.
    pub fn close(self) -> std::io::Result<()> {
        self.end(false, false).map(|_| ())
    }

    /// A subscriber feeding this dashboard.
    pub fn feed(&self) -> Feed {
        self.feed.clone()
    }

    /// Ends the run (`cancelled` when it was): shows the summary, gives the terminal
    /// back, keeps the build durations, and returns the final model.
    pub fn finish(self, cancelled: bool) -> std::io::Result<Model> {
        self.end(cancelled, true)
    }

    fn end(self, cancelled: bool, summary: bool) -> std::io::Result<Model> {
        let _ = self.feed.tx.send(Msg::End { cancelled, summary });
        let model = self
            .thread
            .join()
            .map_err(|_| std::io::Error::other("the dashboard's thread panicked"))??;
        if let Some(file) = &self.history {
            // Estimates are a convenience: a history that cannot be written is no error
            // of the build.
            let _ = file.add(model.finished_durations());
        }
        Ok(model)
    }
}

fn plain_loop(
    options: &Options,
    history: History,
    rx: Receiver<Msg>,
    start: Instant,
) -> std::io::Result<Model> {
    let plain = Plain {
        print_logs: options.print_logs,
    };
    let mut model = Model::new(history);
    for msg in rx {
        let (at, update, shown) = match msg {
            Msg::Update(at, u) => (at, u, true),
            Msg::End { cancelled, summary } => {
                (start.elapsed(), Update::Ended { cancelled }, summary)
            }
        };
        let end = matches!(update, Update::Ended { .. });
        model.update(at, update.clone());
        let lines = if shown {
            plain.lines(&model, at, &update)
        } else {
            Vec::new()
        };
        if !lines.is_empty() {
            // One write per update, so lines of builds running at once do not interleave
            // with other writers'.
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
        if end {
            break;
        }
    }
    Ok(model)
}

/// Draws `lines` over the `drawn` lines drawn before (the cursor is at the end of the
/// last one, or where the first goes when none was drawn); returns how many are drawn
/// now. No lines clears what was drawn, leaving the cursor where it started.
fn draw_compact(out: &mut impl Write, drawn: usize, lines: &[String]) -> std::io::Result<usize> {
    let mut text = String::new();
    if drawn > 0 {
        text.push('\r');
        if drawn > 1 {
            text.push_str(&format!("\x1b[{}A", drawn - 1));
        }
    }
    // Clear to the end of the screen, then write.
    text.push_str("\x1b[J");
    text.push_str(&lines.join("\r\n"));
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(lines.len())
}

fn compact_loop(history: History, rx: Receiver<Msg>, start: Instant) -> std::io::Result<Model> {
    let mut model = Model::new(history);
    let mut stderr = std::io::stderr();
    let mut drawn = 0;
    let mut shown: Vec<String> = Vec::new();
    loop {
        let mut ended = false;
        // What arrives within a frame, then the frame.
        let frame_start = Instant::now();
        while let Some(left) = FRAME_INTERVAL.checked_sub(frame_start.elapsed()) {
            match rx.recv_timeout(left) {
                Ok(Msg::Update(at, u)) => {
                    model.update(at, u);
                }
                Ok(Msg::End { cancelled, .. }) => {
                    model.update(start.elapsed(), Update::Ended { cancelled });
                    ended = true;
                    break;
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    ended = true;
                    break;
                }
            }
        }
        if ended {
            // Nothing stays: what follows (the outputs, an error) is printed there.
            draw_compact(&mut stderr, drawn, &[])?;
            return Ok(model);
        }
        model.update(start.elapsed(), Update::Tick);
        // One column short of the width, so no line wraps and the count of lines holds.
        let width = terminal::size().map_or(80, |(w, _)| usize::from(w));
        let lines = compact_lines(&model, width.saturating_sub(1));
        if lines != shown {
            drawn = draw_compact(&mut stderr, drawn, &lines)?;
            shown = lines;
        }
    }
}

/// Whether the terminal is in the dashboard's state (raw mode, alternate screen).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Gives the terminal back, once.
fn restore_terminal() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        let _ = crossterm::execute!(
            std::io::stderr(),
            LeaveAlternateScreen,
            crossterm::cursor::Show
        );
    }
}

/// Restores the terminal when dropped (also while unwinding).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// A panic anywhere first gives the terminal back, so its message is readable.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
    });
}

/// The terminal's key as the view's.
fn key_of(event: &TermEvent) -> Option<Key> {
    let TermEvent::Key(k) = event else {
        return None;
    };
    if k.kind == KeyEventKind::Release {
        return None;
    }
    Some(match k.code {
        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Key::CtrlC,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        _ => return None,
    })
}

/// How long the loop waits for a key before looking at the channel again.
const POLL: Duration = Duration::from_millis(30);

fn dashboard_loop(
    options: &Options,
    history: History,
    rx: Receiver<Msg>,
    start: Instant,
) -> std::io::Result<Model> {
    let mut model = Model::new(history);
    let mut view = ViewState::new(&options.title, options.color);
    install_panic_hook();
    terminal::enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let _guard = TerminalGuard;
    let mut stderr = std::io::stderr();
    // Cleared here, not with `Terminal::clear`, which asks the terminal where its cursor
    // is by writing to stdout, where output paths go.
    crossterm::execute!(
        stderr,
        EnterAlternateScreen,
        crossterm::cursor::Hide,
        terminal::Clear(terminal::ClearType::All)
    )?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stderr()))?;
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut ended = false;
    let mut summary = true;
    loop {
        // Updates first: what arrived, for a bounded time, so a flood of log lines
        // cannot starve the frames and the keys.
        let drain_start = Instant::now();
        while drain_start.elapsed() < FRAME_INTERVAL / 2 {
            match rx.try_recv() {
                Ok(Msg::Update(at, u)) => dirty |= model.update(at, u),
                Ok(Msg::End {
                    cancelled,
                    summary: with_summary,
                }) => {
                    model.update(start.elapsed(), Update::Ended { cancelled });
                    summary = with_summary;
                    ended = true;
                    break;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    ended = true;
                    break;
                }
            }
        }
        if ended {
            break;
        }
        dirty |= model.update(start.elapsed(), Update::Tick);
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME_INTERVAL) {
            let size = term.size()?;
            view.page = usize::from(size.height.saturating_sub(2)).max(1);
            term.draw(|f| render(&model, &view, f))?;
            last_draw = Some(Instant::now());
            dirty = false;
        }
        // Keys (and resizes) while waiting a little.
        if term_event::poll(POLL)? {
            let event = term_event::read()?;
            if let TermEvent::Resize(..) = event {
                dirty = true;
            }
            if let Some(key) = key_of(&event) {
                dirty = true;
                if view.key(&model, key) == Some(Command::Cancel) && !model.cancel_requested() {
                    (options.on_cancel)();
                    model.update(start.elapsed(), Update::CancelRequested);
                }
            }
        }
    }
    // The last frame, then the summary on the normal screen, where it stays.
    term.draw(|f| render(&model, &view, f))?;
    restore_terminal();
    if !summary {
        return Ok(model);
    }
    let mut text = format!("{}: {}\n", options.title, model.summary());
    for n in model.failed() {
        text.push_str(&format!(
            "failed: {} (whole log: {} {})\n",
            n.name,
            crate::render::LOG_COMMAND,
            n.drv
        ));
    }
    let _ = stderr.write_all(text.as_bytes());
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEvent;

    #[test]
    fn compact_lines_are_drawn_over_and_cleared() {
        let mut out = Vec::new();
        let n = draw_compact(&mut out, 0, &["a".into(), "b".into()]).unwrap();
        assert_eq!(n, 2);
        let n = draw_compact(&mut out, n, &["c".into()]).unwrap();
        draw_compact(&mut out, n, &[]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\x1b[Ja\r\nb\r\x1b[1A\x1b[Jc\r\x1b[J"
        );
    }

    #[test]
    fn keys_convert() {
        let ctrl_c = TermEvent::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert_eq!(key_of(&ctrl_c), Some(Key::CtrlC));
        let j = TermEvent::Key(KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE));
        assert_eq!(key_of(&j), Some(Key::Char('j')));
        assert_eq!(key_of(&TermEvent::Resize(10, 10)), None);
    }

    #[test]
    fn plain_mode_runs_to_the_end() {
        let d = Dashboard::start(Options {
            mode: Mode::Plain,
            print_logs: false,
            color: false,
            title: "t".into(),
            history: None,
            on_cancel: Box::new(|| {}),
        });
        d.feed().send(Update::BuildStarted {
            drv: "/nix/store/x.drv".into(),
            machine: String::new(),
        });
        d.feed().send(Update::BuildFinished {
            drv: "/nix/store/x.drv".into(),
        });
        let m = d.finish(false).unwrap();
        assert_eq!(m.counts().built, 1);
        assert_eq!(m.finished_durations().len(), 1);
    }

    #[test]
    fn an_evaluation_is_watched_until_it_finishes() {
        let d = Dashboard::start(Options {
            mode: Mode::Plain,
            print_logs: false,
            color: false,
            title: "t".into(),
            history: None,
            on_cancel: Box::new(|| {}),
        });
        let progress = Arc::new(EvalProgress::new());
        let watch = d.watch_evaluation(progress.clone());
        progress.file_read();
        progress.derivation();
        progress.derivation();
        watch.finish();
        let m = d.finish(false).unwrap();
        let e = m.evaluation().expect("the evaluation was reported");
        assert_eq!((e.counts.files_read, e.counts.derivations), (1, 2));
        assert!(e.ended.is_some());
    }
}
