//! What the user looks at, apart from the run itself: the selected build, the failures
//! filter, an open log (scroll, follow, search) and a pending cancellation. Keys update
//! it; it is pure (the terminal's keys arrive as [`Key`]s).

use crate::model::{Model, Node};

/// A key the dashboard understands (converted from the terminal's events at the edge).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Home.
    Home,
    /// End.
    End,
    /// Enter.
    Enter,
    /// Escape.
    Esc,
    /// Backspace.
    Backspace,
    /// Ctrl-C.
    CtrlC,
    /// A character.
    Char(char),
}

/// What a key asks of the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Cancel the run (confirmed).
    Cancel,
}

/// An open log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogView {
    /// The derivation whose log is shown.
    pub drv: String,
    /// The first kept line shown (when not following).
    pub top: usize,
    /// Whether the view sticks to the end as lines arrive.
    pub follow: bool,
    /// The search being typed after `/`.
    pub typing: Option<String>,
    /// The last search.
    pub search: Option<String>,
    /// Whether the last search found nothing.
    pub not_found: bool,
}

/// The view's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewState {
    /// The title (`tvix build`, `tvix monitor`).
    pub title: String,
    /// Whether colours are used (`NO_COLOR` turns them off).
    pub color: bool,
    /// Index of the selected build among [`ViewState::selectable`].
    pub selected: usize,
    /// Only failures are listed.
    pub failures_only: bool,
    /// A cancellation asked for once, waiting for confirmation.
    pub confirm_cancel: bool,
    /// The open log, if any.
    pub log: Option<LogView>,
    /// Lines a page of the log has (set by the driver from the terminal's size).
    pub page: usize,
}

impl ViewState {
    /// The dashboard of `title`.
    pub fn new(title: &str, color: bool) -> ViewState {
        ViewState {
            title: title.to_string(),
            color,
            selected: 0,
            failures_only: false,
            confirm_cancel: false,
            log: None,
            page: 20,
        }
    }

    /// The builds that can be selected, in screen order: running ones (unless only
    /// failures are listed), then failed ones.
    pub fn selectable<'m>(&self, model: &'m Model) -> Vec<&'m Node> {
        let mut list: Vec<&Node> = Vec::new();
        if !self.failures_only {
            list.extend(model.running());
        }
        list.extend(model.failed());
        list
    }

    /// The `.drv` path of the selected build.
    pub fn selected_drv(&self, model: &Model) -> Option<String> {
        let list = self.selectable(model);
        let last = list.len().checked_sub(1)?;
        Some(list[self.selected.min(last)].drv.clone())
    }

    /// Handles `key`.
    pub fn key(&mut self, model: &Model, key: Key) -> Option<Command> {
        if key == Key::CtrlC || (self.log.is_none() && key == Key::Char('q')) {
            if self.confirm_cancel || model.cancel_requested() {
                self.confirm_cancel = false;
                return Some(Command::Cancel);
            }
            self.confirm_cancel = true;
            return None;
        }
        if self.confirm_cancel {
            self.confirm_cancel = false;
            return (key == Key::Char('y')).then_some(Command::Cancel);
        }
        if self.log.is_some() {
            self.log_key(model, key);
            return None;
        }
        let n = self.selectable(model).len();
        match key {
            Key::Up | Key::Char('k') => self.selected = self.selected.min(n).saturating_sub(1),
            Key::Down | Key::Char('j') => {
                self.selected = (self.selected + 1).min(n.saturating_sub(1))
            }
            Key::Char('f') => {
                self.failures_only = !self.failures_only;
                self.selected = 0;
            }
            Key::Char('l') | Key::Enter => {
                if let Some(drv) = self.selected_drv(model) {
                    self.log = Some(LogView {
                        drv,
                        top: 0,
                        follow: true,
                        typing: None,
                        search: None,
                        not_found: false,
                    });
                }
            }
            _ => {}
        }
        None
    }

    fn log_key(&mut self, model: &Model, key: Key) {
        let page = self.page.max(1);
        let Some(view) = self.log.as_mut() else {
            return;
        };
        let lines = model.get(&view.drv).map(|n| n.log.len()).unwrap_or(0);
        let last_top = lines.saturating_sub(page);
        if let Some(typing) = view.typing.as_mut() {
            match key {
                Key::Char(c) => typing.push(c),
                Key::Backspace => {
                    typing.pop();
                }
                Key::Esc => view.typing = None,
                Key::Enter => {
                    view.search = view.typing.take().filter(|s| !s.is_empty());
                    search(model, view, last_top, false);
                }
                _ => {}
            }
            return;
        }
        // Scrolling starts from where the view is, also when it follows the end.
        let top = if view.follow { last_top } else { view.top };
        match key {
            Key::Esc | Key::Char('q') => self.log = None,
            Key::Up | Key::Char('k') => {
                view.follow = false;
                view.top = top.saturating_sub(1);
            }
            Key::Down | Key::Char('j') => {
                view.top = (top + 1).min(last_top);
                view.follow = view.top == last_top;
            }
            Key::PageUp => {
                view.follow = false;
                view.top = top.saturating_sub(page);
            }
            Key::PageDown | Key::Char(' ') => {
                view.top = (top + page).min(last_top);
                view.follow = view.top == last_top;
            }
            Key::Home | Key::Char('g') => {
                view.follow = false;
                view.top = 0;
            }
            Key::End | Key::Char('G') | Key::Char('F') => view.follow = true,
            Key::Char('/') => view.typing = Some(String::new()),
            Key::Char('n') => search(model, view, last_top, true),
            _ => {}
        }
    }
}

/// Moves `view` to the next line matching its search (from its top, or after it with
/// `next`), wrapping around.
fn search(model: &Model, view: &mut LogView, last_top: usize, next: bool) {
    let Some(needle) = view.search.clone() else {
        return;
    };
    let Some(node) = model.get(&view.drv) else {
        return;
    };
    let n = node.log.len();
    let from = if view.follow { last_top } else { view.top } + usize::from(next);
    let found = (0..n)
        .map(|k| (from + k) % n.max(1))
        .find(|&i| node.log.get(i).is_some_and(|l| l.contains(&needle)));
    view.not_found = found.is_none();
    if let Some(i) = found {
        view.top = i;
        view.follow = false;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::history::History;
    use crate::model::Update;

    fn model() -> Model {
        let mut m = Model::new(History::default());
        for d in ["/nix/store/a.drv", "/nix/store/b.drv"] {
            m.update(
                Duration::ZERO,
                Update::BuildStarted {
                    drv: d.into(),
                    machine: String::new(),
                },
            );
        }
        for i in 0..100 {
            m.update(
                Duration::ZERO,
                Update::Log {
                    drv: "/nix/store/b.drv".into(),
                    line: format!("line {i}"),
                },
            );
        }
        m
    }

    #[test]
    fn cancel_asks_once() {
        let m = model();
        let mut v = ViewState::new("t", false);
        assert_eq!(v.key(&m, Key::Char('q')), None);
        assert!(v.confirm_cancel);
        assert_eq!(v.key(&m, Key::Char('x')), None);
        assert!(!v.confirm_cancel);
        v.key(&m, Key::CtrlC);
        assert_eq!(v.key(&m, Key::CtrlC), Some(Command::Cancel));
        v.key(&m, Key::Char('q'));
        assert_eq!(v.key(&m, Key::Char('y')), Some(Command::Cancel));
    }

    #[test]
    fn select_and_open_log_then_scroll_and_search() {
        let m = model();
        let mut v = ViewState::new("t", false);
        v.page = 10;
        v.key(&m, Key::Char('j'));
        v.key(&m, Key::Down);
        assert_eq!(v.selected, 1);
        assert_eq!(v.selected_drv(&m).as_deref(), Some("/nix/store/b.drv"));
        v.key(&m, Key::Char('l'));
        assert!(v.log.as_ref().unwrap().follow);
        v.key(&m, Key::Up);
        let log = v.log.as_ref().unwrap();
        assert_eq!((log.top, log.follow), (89, false));
        for c in "/line 1".chars() {
            v.key(&m, Key::Char(c));
        }
        v.key(&m, Key::Enter);
        // From line 89 on, "line 1" first matches at line 1 after wrapping.
        assert_eq!(v.log.as_ref().unwrap().top, 1);
        v.key(&m, Key::Char('n'));
        assert_eq!(v.log.as_ref().unwrap().top, 10);
        v.key(&m, Key::End);
        assert!(v.log.as_ref().unwrap().follow);
        v.key(&m, Key::Char('q'));
        assert!(v.log.is_none());
        assert!(!v.confirm_cancel);
    }

    #[test]
    fn failures_only_lists_failures() {
        let mut m = model();
        m.update(
            Duration::ZERO,
            Update::BuildFailed {
                drv: "/nix/store/a.drv".into(),
                message: "m".into(),
                log_tail: vec![],
            },
        );
        let mut v = ViewState::new("t", false);
        v.key(&m, Key::Char('f'));
        let names: Vec<_> = v.selectable(&m).iter().map(|n| n.drv.clone()).collect();
        assert_eq!(names, vec!["/nix/store/a.drv".to_string()]);
    }
}
