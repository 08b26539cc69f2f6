//! The compact dashboard: a few lines drawn in place below a prompt (the REPL's `:b`),
//! with no alternate screen and no keys. [`compact_lines`] is pure: the model as at most
//! [`COMPACT_LINES`] lines cut to the terminal's width; the driver draws and clears them.

use crate::model::{clock, eval_counts_text, Model, State};

/// The most lines the compact dashboard takes.
pub const COMPACT_LINES: usize = 2;

/// `text` cut to `width` characters (an ellipsis marks the cut).
fn fit(text: String, width: usize) -> String {
    if text.chars().count() <= width {
        return text;
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The compact dashboard of `model` at `width` columns: the running build (the first
/// one; a count of the others), its phase, its timer and the counts; then its last log
/// line. While evaluating: the evaluation's counts.
pub fn compact_lines(model: &Model, width: usize) -> Vec<String> {
    if width == 0 {
        return Vec::new();
    }
    let c = model.counts();
    let planned_total = model.nodes().len();
    let done = c.built + c.substituted;
    let mut counts = format!("{done}/{planned_total} done");
    if c.failed > 0 {
        counts.push_str(&format!(", {} failed", c.failed));
    }
    let mut running = model.running();
    let Some(first) = running.next() else {
        if model.evaluating() {
            let e = model.evaluation().map(|e| e.counts).unwrap_or_default();
            return vec![fit(
                format!(
                    "evaluating {} · {}",
                    clock(model.now()),
                    eval_counts_text(e)
                ),
                width,
            )];
        }
        if planned_total == 0 {
            return Vec::new();
        }
        return vec![fit(format!("{} · {counts}", clock(model.now())), width)];
    };
    let others = running.count();
    let word = match first.state {
        State::Substituting => "fetching",
        _ => "building",
    };
    let phase = first
        .phase
        .as_deref()
        .map(|p| format!(" · {p}"))
        .unwrap_or_default();
    let elapsed = model
        .now()
        .saturating_sub(first.started.unwrap_or_default());
    let more = if others > 0 {
        format!(" (+{others} more)")
    } else {
        String::new()
    };
    let mut lines = vec![fit(
        format!(
            "{word} {}{more}{phase} · {} · {counts}",
            first.name,
            clock(elapsed)
        ),
        width,
    )];
    if let Some(last) = first.log.last() {
        lines.push(fit(format!("  {last}"), width));
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tvix_coordinator::eval_progress::EvalCounts;

    use super::*;
    use crate::history::History;
    use crate::model::{Action, PlannedDrv, Update};

    const A: &str = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12.drv";
    const B: &str = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-zlib.drv";

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_build_in_one_line_and_its_last_log_line() {
        let mut m = Model::new(History::default());
        assert!(compact_lines(&m, 80).is_empty());
        m.update(
            secs(0),
            Update::Evaluating(EvalCounts {
                files_read: 3,
                derivations: 1,
            }),
        );
        assert_eq!(
            compact_lines(&m, 80),
            vec!["evaluating 0:00 · 3 files read, 1 derivation instantiated"]
        );
        let p = |drv: &str| PlannedDrv {
            drv: drv.into(),
            action: Action::Build,
            inputs: vec![],
        };
        m.update(secs(1), Update::Planned(vec![p(A), p(B)]));
        m.update(
            secs(1),
            Update::BuildStarted {
                drv: A.into(),
                machine: String::new(),
            },
        );
        m.update(
            secs(2),
            Update::Phase {
                drv: A.into(),
                phase: "buildPhase".into(),
            },
        );
        m.update(
            secs(3),
            Update::Log {
                drv: A.into(),
                line: "gcc -c hello.c".into(),
            },
        );
        m.update(secs(13), Update::Tick);
        assert_eq!(
            compact_lines(&m, 80),
            vec![
                "building hello-2.12 · buildPhase · 0:12 · 0/2 done",
                "  gcc -c hello.c"
            ]
        );
        assert_eq!(
            compact_lines(&m, 20),
            vec!["building hello-2.12…", "  gcc -c hello.c"]
        );
        m.update(secs(14), Update::BuildFinished { drv: A.into() });
        assert_eq!(compact_lines(&m, 80), vec!["0:14 · 1/2 done"]);
    }
}
