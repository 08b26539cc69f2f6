//! The IO edge: a thread that owns the model and either draws the dashboard on stderr
//! (alternate screen, raw mode, keys, at most one frame per [`FRAME_INTERVAL`] and only
//! when something changed) or writes plain lines. Updates reach it through a channel
//! from [`Feed`]s, which are coordinator subscribers.
//!
//! The terminal is restored on every way out: the end of the run, an error of the
//! terminal, a panic on any thread (a panic hook), and the thread's unwinding (a guard).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Once;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossterm::event::{
    self as term_event, Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers,
};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tvix_coordinator::events::{Event, Subscriber};

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
    End { cancelled: bool },
}

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
        let thread = std::thread::spawn(move || match options.mode {
            Mode::Plain => plain_loop(&options, history, rx, start),
            Mode::Dashboard => dashboard_loop(&options, history, rx, start),
        });
        Dashboard {
            feed: Feed { tx, start },
            thread,
            history: file,
        }
    }

    /// A subscriber feeding this dashboard.
    pub fn feed(&self) -> Feed {
        self.feed.clone()
    }

    /// Ends the run (`cancelled` when it was): shows the summary, gives the terminal
    /// back, keeps the build durations, and returns the final model.
    pub fn finish(self, cancelled: bool) -> std::io::Result<Model> {
        let _ = self.feed.tx.send(Msg::End { cancelled });
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
        let (at, update) = match msg {
            Msg::Update(at, u) => (at, u),
            Msg::End { cancelled } => (start.elapsed(), Update::Ended { cancelled }),
        };
        let end = matches!(update, Update::Ended { .. });
        model.update(at, update.clone());
        let lines = plain.lines(&model, at, &update);
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
    loop {
        // Updates first: what arrived, for a bounded time, so a flood of log lines
        // cannot starve the frames and the keys.
        let drain_start = Instant::now();
        while drain_start.elapsed() < FRAME_INTERVAL / 2 {
            match rx.try_recv() {
                Ok(Msg::Update(at, u)) => dirty |= model.update(at, u),
                Ok(Msg::End { cancelled }) => {
                    model.update(start.elapsed(), Update::Ended { cancelled });
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
}
