//! Draws a [`Model`] as the user's [`ViewState`] asks: the dashboard (header, running
//! builds with their last log line, failures with their log tails and the command that
//! shows the whole log, the tree of derivations, the keys) or an open log. No side
//! effects: the same model and view draw the same screen.
//!
//! Space goes first to the running builds, then to failures, then to the tree, so a
//! failure never pushes a running build off the screen; what does not fit is counted
//! (`… and N more`).

use std::collections::BTreeSet;
use std::time::Duration;

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::model::{bytes, clock, eval_counts_text, Model, Node, State};
use crate::view::ViewState;

/// How the whole log of a derivation is shown.
pub const LOG_COMMAND: &str = "tvix log";

/// Styles, or none without colours.
#[derive(Clone, Copy)]
struct Theme {
    color: bool,
}

impl Theme {
    fn style(self, s: Style) -> Style {
        if self.color {
            s
        } else {
            Style::default()
        }
    }
    fn dim(self) -> Style {
        self.style(Style::default().fg(Color::DarkGray))
    }
    fn bold(self) -> Style {
        self.style(Style::default().add_modifier(Modifier::BOLD))
    }
    fn state(self, s: State) -> Style {
        self.style(Style::default().fg(match s {
            State::Planned => Color::Gray,
            State::Substituting => Color::Cyan,
            State::Building => Color::Yellow,
            State::Built | State::Substituted => Color::Green,
            State::Failed | State::DependencyFailed => Color::Red,
        }))
    }
    fn selected(self) -> Style {
        self.style(Style::default().add_modifier(Modifier::REVERSED))
    }
}

/// The mark and word of a state.
fn state_mark(s: State) -> (&'static str, &'static str) {
    match s {
        State::Planned => ("○", "planned"),
        State::Substituting => ("↓", "fetching"),
        State::Building => ("▸", "building"),
        State::Built => ("✓", "built"),
        State::Substituted => ("✓", "fetched"),
        State::Failed => ("✗", "failed"),
        State::DependencyFailed => ("⊘", "not built: an input failed"),
    }
}

/// Draws the model.
pub fn render(model: &Model, view: &ViewState, frame: &mut Frame<'_>) {
    let area = frame.area();
    if area.height == 0 || area.width == 0 {
        return;
    }
    let theme = Theme { color: view.color };
    let lines = match &view.log {
        Some(_) => log_lines(model, view, theme, area),
        None => dashboard_lines(model, view, theme, area),
    };
    frame.render_widget(Paragraph::new(lines), area);
}

/// The header: title, clock and counts.
fn header(model: &Model, view: &ViewState, theme: Theme) -> Line<'static> {
    let c = model.counts();
    let mut parts = Vec::new();
    if model.evaluating() {
        parts.push("evaluating".to_string());
    }
    if c.building > 0 {
        parts.push(format!("{} building", c.building));
    }
    let builds_total = model
        .nodes()
        .iter()
        .filter(|n| n.action != Some(crate::model::Action::Fetch))
        .count();
    // Nothing is planned while the evaluation runs: no empty count then.
    if !(model.evaluating() && model.nodes().is_empty()) {
        parts.push(format!("{}/{} built", c.built, builds_total));
    }
    let fetch_total = model
        .nodes()
        .iter()
        .filter(|n| n.action == Some(crate::model::Action::Fetch))
        .count();
    if fetch_total > 0 {
        parts.push(format!("{}/{} fetched", c.substituted, fetch_total));
    }
    if c.failed > 0 {
        parts.push(format!("{} failed", c.failed));
    }
    let downloaded = model.downloaded();
    if downloaded > 0 {
        let n = model.transfers();
        parts.push(format!(
            "↓ {n} {} {} {}/s",
            if n == 1 { "path" } else { "paths" },
            bytes(downloaded),
            bytes(model.download_rate())
        ));
    }
    let at = model.ended().map(|(t, _)| t).unwrap_or(model.now());
    Line::from(vec![
        Span::styled(view.title.clone(), theme.bold()),
        Span::raw(format!(" {} · {}", clock(at), parts.join(" · "))),
    ])
}

/// The last line: keys, the cancellation question or the summary.
fn footer(model: &Model, view: &ViewState, theme: Theme) -> Line<'static> {
    if view.confirm_cancel {
        return Line::styled(
            "Cancel the run? y or q/Ctrl-C again: cancel · any other key: go on",
            theme.style(
                Style::default()
                    .fg(Color::Yellow)
                    .add_modifier(Modifier::BOLD),
            ),
        );
    }
    if model.ended().is_some() {
        return Line::styled(model.summary(), theme.bold());
    }
    if model.cancel_requested() {
        return Line::styled("cancelling…", theme.bold());
    }
    let filter = if view.failures_only {
        "f: all"
    } else {
        "f: failures only"
    };
    Line::styled(
        format!("↑↓/jk: select · l: log · {filter} · q: cancel"),
        theme.dim(),
    )
}

/// `elapsed` or `elapsed / ~estimate`.
fn timer(model: &Model, n: &Node) -> String {
    let start = n.started.unwrap_or_default();
    let elapsed = n.ended.unwrap_or(model.now()).saturating_sub(start);
    match model.estimate(&n.name) {
        Some(e) if n.state == State::Building => format!("{} / ~{}", clock(elapsed), clock(e)),
        _ => clock(elapsed),
    }
}

/// A section's lines, cut to the room it was given.
struct Section {
    lines: Vec<Line<'static>>,
}

/// The evaluation while it runs: its clock and what it has read and instantiated, so a
/// long evaluation is no silent stall.
fn evaluation_section(model: &Model, theme: Theme, room: usize) -> Section {
    let Some(e) = model.evaluation().filter(|_| model.evaluating()) else {
        return Section { lines: Vec::new() };
    };
    let mut lines = vec![
        Line::styled(format!("Evaluating ({})", clock(model.now())), theme.bold()),
        Line::raw(format!("  {}", eval_counts_text(e.counts))),
    ];
    lines.truncate(room);
    Section { lines }
}

/// The running builds: one or two lines each (name, phase, timer, host; last log line).
fn running_section(
    model: &Model,
    view: &ViewState,
    theme: Theme,
    width: u16,
    room: usize,
) -> Section {
    let running: Vec<&Node> = if view.failures_only {
        Vec::new()
    } else {
        model.running().collect()
    };
    if running.is_empty() || room == 0 {
        return Section { lines: Vec::new() };
    }
    let selected = view.selected_drv(model);
    let name_width = running
        .iter()
        .map(|n| n.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(usize::from(width) / 3)
        .max(4);
    // Two lines per build when all fit, else one, else as many as fit and a count.
    let two = 2 * running.len() < room;
    let per = if two { 2 } else { 1 };
    let fit = if running.len() < room || two {
        running.len()
    } else {
        room.saturating_sub(2) / per
    };
    let mut lines = vec![Line::styled(
        format!("Running ({})", running.len()),
        theme.bold(),
    )];
    for n in running.iter().take(fit) {
        let is_sel = selected.as_deref() == Some(n.drv.as_str());
        let (mark, word) = state_mark(n.state);
        let phase = n.phase.clone().unwrap_or_else(|| word.to_string());
        let name: String = n.name.chars().take(name_width).collect();
        let head = format!(
            "{} {mark} {name:<name_width$}  {phase:<14} {:<13} {}",
            if is_sel { "▶" } else { " " },
            timer(model, n),
            n.host
        );
        let style = if is_sel {
            theme.selected()
        } else {
            theme.state(n.state)
        };
        lines.push(Line::styled(head.trim_end().to_string(), style));
        if two {
            let last = n.log.last().unwrap_or("");
            lines.push(Line::styled(format!("      {last}"), theme.dim()));
        }
    }
    if fit < running.len() {
        lines.push(Line::styled(
            format!("  … and {} more running", running.len() - fit),
            theme.dim(),
        ));
    }
    lines.truncate(room);
    Section { lines }
}

/// The failures: message, log tail and the command showing the whole log.
fn failure_section(model: &Model, view: &ViewState, theme: Theme, room: usize) -> Section {
    let failed: Vec<&Node> = model.failed().collect();
    if failed.is_empty() || room < 2 {
        return Section { lines: Vec::new() };
    }
    let selected = view.selected_drv(model);
    // Each failure takes at least its message and command; the tails share what is left.
    let min_each = 2;
    let fit = ((room - 1) / min_each).min(failed.len());
    let fit = if fit < failed.len() {
        // Leave a line for the count.
        ((room - 2) / min_each).min(failed.len())
    } else {
        fit
    };
    let spare = room - 1 - fit * min_each - usize::from(fit < failed.len());
    let tail_each = spare
        .checked_div(fit)
        .unwrap_or(0)
        .min(crate::model::FAILURE_TAIL);
    let mut lines = vec![Line::styled(
        format!("Failed ({})", failed.len()),
        theme.style(Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)),
    )];
    for n in failed.iter().take(fit) {
        let is_sel = selected.as_deref() == Some(n.drv.as_str());
        let message = n
            .failure
            .as_ref()
            .map(|f| f.message.clone())
            .unwrap_or_default();
        let style = if is_sel {
            theme.selected()
        } else {
            theme.state(State::Failed)
        };
        lines.push(Line::styled(
            format!(
                "{} ✗ {}: {}",
                if is_sel { "▶" } else { " " },
                n.name,
                message.lines().next().unwrap_or("")
            ),
            style,
        ));
        if let Some(f) = &n.failure {
            let skip = f.log_tail.len().saturating_sub(tail_each);
            for l in f.log_tail.iter().skip(skip) {
                lines.push(Line::styled(format!("      {l}"), theme.dim()));
            }
        }
        lines.push(Line::raw(format!(
            "      whole log: {LOG_COMMAND} {}",
            n.drv
        )));
    }
    if fit < failed.len() {
        lines.push(Line::styled(
            format!("  … and {} more failed", failed.len() - fit),
            theme.dim(),
        ));
    }
    lines.truncate(room);
    Section { lines }
}

/// Errors, warnings and notices the tool printed (the last few).
fn message_section(model: &Model, theme: Theme, room: usize) -> Section {
    // Errors, warnings and notices (what a monitored command printed besides records).
    let msgs: Vec<(u8, &str)> = model.messages().filter(|(level, _)| *level <= 2).collect();
    if msgs.is_empty() || room == 0 {
        return Section { lines: Vec::new() };
    }
    let shown = msgs.len().min(room).min(3);
    let mut lines: Vec<Line<'static>> = msgs[msgs.len() - shown..]
        .iter()
        .map(|(level, m)| {
            let (word, color) = match level {
                0 => ("error: ", Color::Red),
                1 => ("warning: ", Color::Yellow),
                _ => ("", Color::Reset),
            };
            Line::styled(
                format!("{word}{}", m.lines().next().unwrap_or("")),
                theme.style(Style::default().fg(color)),
            )
        })
        .collect();
    lines.truncate(room);
    Section { lines }
}

/// The derivations as a tree (each once, inputs below their users), cut to `room` lines.
fn tree_section(model: &Model, view: &ViewState, theme: Theme, room: usize) -> Section {
    let nodes = model.nodes();
    if nodes.is_empty() || room < 2 {
        return Section { lines: Vec::new() };
    }
    let shown_max = room - 1;
    let mut rows: Vec<(String, usize)> = Vec::new();
    let total;
    if view.failures_only {
        let failed: Vec<usize> = (0..nodes.len())
            .filter(|&i| matches!(nodes[i].state, State::Failed | State::DependencyFailed))
            .collect();
        total = failed.len();
        rows.extend(failed.into_iter().map(|i| (String::new(), i)));
    } else {
        total = nodes.len();
        tree_rows(model, shown_max + 1, &mut rows);
    }
    let mut lines = vec![Line::styled(format!("Derivations ({total})"), theme.bold())];
    let fit = if total <= shown_max {
        total
    } else {
        shown_max - 1
    };
    for (prefix, i) in rows.iter().take(fit) {
        let n = &nodes[*i];
        let (mark, word) = state_mark(n.state);
        lines.push(Line::from(vec![
            Span::styled(prefix.clone(), theme.dim()),
            Span::styled(format!("{mark} {}", n.name), theme.state(n.state)),
            Span::styled(format!("  {word}"), theme.dim()),
        ]));
    }
    if fit < total {
        lines.push(Line::styled(
            format!("  … and {} more", total - fit),
            theme.dim(),
        ));
    }
    lines.truncate(room);
    Section { lines }
}

/// The first `limit` rows of the tree: the roots (derivations nothing planned depends on)
/// by name, each followed by its inputs; a derivation reached again is not repeated.
fn tree_rows(model: &Model, limit: usize, rows: &mut Vec<(String, usize)>) {
    let nodes = model.nodes();
    let mut roots: Vec<usize> = (0..nodes.len()).filter(|&i| !nodes[i].is_input).collect();
    roots.sort_by(|&a, &b| nodes[a].name.cmp(&nodes[b].name));
    let mut seen = BTreeSet::new();
    // (node, prefix of its children, prefix of itself)
    let mut stack: Vec<(usize, String, String)> = roots
        .iter()
        .rev()
        .map(|&r| (r, String::new(), String::new()))
        .collect();
    while let Some((i, child_prefix, own_prefix)) = stack.pop() {
        if rows.len() >= limit {
            return;
        }
        if !seen.insert(i) {
            continue;
        }
        rows.push((own_prefix, i));
        let children: Vec<usize> = nodes[i]
            .inputs
            .iter()
            .copied()
            .filter(|c| !seen.contains(c))
            .collect();
        for (k, &c) in children.iter().enumerate().rev() {
            let last = k + 1 == children.len();
            let own = format!("{child_prefix}{}", if last { "└─" } else { "├─" });
            let next = format!("{child_prefix}{}", if last { "  " } else { "│ " });
            stack.push((c, next, own));
        }
    }
    // Derivations only reachable through a cycle of inputs (not in a plan, but in a
    // stream that reported odd inputs) are listed too, so each appears once.
    for i in 0..nodes.len() {
        if rows.len() >= limit {
            return;
        }
        if seen.insert(i) {
            rows.push((String::new(), i));
        }
    }
}

/// The dashboard.
fn dashboard_lines(
    model: &Model,
    view: &ViewState,
    theme: Theme,
    area: Rect,
) -> Vec<Line<'static>> {
    let height = usize::from(area.height);
    let mut lines = vec![header(model, view, theme)];
    if height == 1 {
        return lines;
    }
    let footer_line = footer(model, view, theme);
    let mut room = height - 2;
    let evaluation = evaluation_section(model, theme, room);
    room -= evaluation.lines.len();
    let running = running_section(model, view, theme, area.width, room);
    room -= running.lines.len();
    let failures = failure_section(model, view, theme, room);
    room -= failures.lines.len();
    let messages = message_section(model, theme, room);
    room -= messages.lines.len();
    let tree = tree_section(model, view, theme, room);
    for s in [evaluation, running, failures, messages, tree] {
        lines.extend(s.lines);
    }
    while lines.len() < height - 1 {
        lines.push(Line::raw(""));
    }
    lines.push(footer_line);
    lines
}

/// An open log: a heading, the lines and the keys.
fn log_lines(model: &Model, view: &ViewState, theme: Theme, area: Rect) -> Vec<Line<'static>> {
    let Some(log) = &view.log else {
        return Vec::new();
    };
    let height = usize::from(area.height);
    let node = model.get(&log.drv);
    let name = node.map(|n| n.name.as_str()).unwrap_or("?");
    let state = node.map(|n| state_mark(n.state).1).unwrap_or("");
    let mut head = format!("log of {name} ({state})");
    if let Some(n) = node {
        if n.log.dropped() > 0 {
            head.push_str(&format!(
                " · {} earlier lines: {LOG_COMMAND} {}",
                n.log.dropped(),
                n.drv
            ));
        }
    }
    let mut lines = vec![Line::styled(head, theme.bold())];
    if height < 3 {
        return lines;
    }
    let page = height - 2;
    let kept = node.map(|n| n.log.len()).unwrap_or(0);
    let top = if log.follow {
        kept.saturating_sub(page)
    } else {
        log.top.min(kept.saturating_sub(1))
    };
    if let Some(n) = node {
        for i in top..(top + page).min(kept) {
            let text = n.log.get(i).unwrap_or("").to_string();
            let hit = log
                .search
                .as_deref()
                .is_some_and(|s| !s.is_empty() && text.contains(s));
            let style = if hit {
                theme.style(Style::default().fg(Color::Black).bg(Color::Yellow))
            } else {
                Style::default()
            };
            lines.push(Line::styled(text, style));
        }
    }
    while lines.len() < height - 1 {
        lines.push(Line::raw(""));
    }
    let footer = if let Some(t) = &log.typing {
        format!("/{t}")
    } else {
        let mut s = format!(
            "lines {}-{} of {kept}{} · ↑↓ PgUp PgDn: scroll · End: follow · /: search · n: next · q: back",
            (top + 1).min(kept),
            (top + page).min(kept),
            if log.follow { " (following)" } else { "" },
        );
        if log.not_found {
            s = format!("not found: {} · {s}", log.search.as_deref().unwrap_or(""));
        }
        s
    };
    lines.push(Line::styled(footer, theme.dim()));
    lines
}

/// How long a frame may be kept before the clock on it is stale.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests;
