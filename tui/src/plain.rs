//! The plain mode, for pipes and CI: one line per update, prefixed by the time since the
//! run started, no cursor movement. Build logs are printed as `name> line` when asked
//! (`-L`), as Nix prints them.

use std::time::Duration;

use crate::model::{drv_name, eval_counts_text, Model, Update};
use crate::render::LOG_COMMAND;

/// Options of the plain mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plain {
    /// Print build logs as `name> line`.
    pub print_logs: bool,
}

/// `[   3.2s] ` for `at`.
fn stamp(at: Duration) -> String {
    format!("[{:>7.1}s] ", at.as_secs_f64())
}

impl Plain {
    /// The lines of `update`, which `model` has just applied at `now`.
    pub fn lines(&self, model: &Model, now: Duration, update: &Update) -> Vec<String> {
        let t = stamp(now);
        let name = |drv: &str| drv_name(drv).to_string();
        match update {
            Update::Planned(drvs) => {
                let fetch = drvs
                    .iter()
                    .filter(|d| d.action == crate::model::Action::Fetch)
                    .count();
                vec![format!(
                    "{t}planned: {} to build, {fetch} to fetch",
                    drvs.len() - fetch
                )]
            }
            Update::SubstitutionStarted { drv, from } => {
                vec![format!("{t}fetching {} from {from}", name(drv))]
            }
            Update::SubstitutionFinished { drv, ok: true } => {
                vec![format!("{t}fetched {}", name(drv))]
            }
            Update::SubstitutionFinished { drv, ok: false } => {
                vec![format!("{t}could not fetch {}", name(drv))]
            }
            Update::BuildStarted { drv, machine } => {
                let host = if machine.is_empty() {
                    "localhost"
                } else {
                    machine
                };
                vec![format!("{t}building {} on {host}", name(drv))]
            }
            Update::Log { drv, line } if self.print_logs => {
                vec![format!("{}> {line}", name(drv))]
            }
            Update::Log { .. } => vec![],
            Update::Phase { drv, phase } => vec![format!("{t}{}: {phase}", name(drv))],
            Update::BuildFinished { drv } => {
                let took = model
                    .get(drv)
                    .and_then(|n| Some(n.ended?.saturating_sub(n.started?)))
                    .unwrap_or_default();
                vec![format!(
                    "{t}built {} in {}",
                    name(drv),
                    crate::model::clock(took)
                )]
            }
            Update::BuildFailed {
                drv,
                message,
                log_tail,
            } => {
                let mut out = vec![format!("{t}failed {}: {message}", name(drv))];
                // With -L the log was printed already.
                if !self.print_logs {
                    let tail = model
                        .get(drv)
                        .and_then(|n| n.failure.as_ref())
                        .map(|f| f.log_tail.clone())
                        .unwrap_or_else(|| log_tail.clone());
                    out.extend(tail.iter().map(|l| format!("{t}  {}> {l}", name(drv))));
                }
                out.push(format!("{t}  whole log: {LOG_COMMAND} {drv}"));
                out
            }
            Update::DependencyFailed { drv } => {
                vec![format!("{t}not building {}: an input failed", name(drv))]
            }
            Update::Transfer { .. } | Update::Tick => vec![],
            Update::Evaluating(c) => {
                vec![format!("{t}evaluating: {}", eval_counts_text(*c))]
            }
            Update::Evaluated(c) => vec![format!("{t}evaluated: {}", eval_counts_text(*c))],
            Update::Message { level, text } => {
                let word = match level {
                    0 => "error: ",
                    1 => "warning: ",
                    _ => "",
                };
                vec![format!("{t}{word}{text}")]
            }
            Update::CancelRequested => vec![format!("{t}cancelling")],
            Update::Ended { .. } => vec![format!("{t}{}", model.summary())],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;

    const D: &str = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello.drv";

    fn run(plain: Plain, updates: Vec<(u64, Update)>) -> Vec<String> {
        let mut m = Model::new(History::default());
        let mut out = Vec::new();
        for (ms, u) in updates {
            let now = Duration::from_millis(ms);
            m.update(now, u.clone());
            out.extend(plain.lines(&m, now, &u));
        }
        out
    }

    #[test]
    fn one_line_per_event() {
        let lines = run(
            Plain::default(),
            vec![
                (
                    0,
                    Update::BuildStarted {
                        drv: D.into(),
                        machine: String::new(),
                    },
                ),
                (
                    100,
                    Update::Log {
                        drv: D.into(),
                        line: "hi".into(),
                    },
                ),
                (
                    1500,
                    Update::Phase {
                        drv: D.into(),
                        phase: "buildPhase".into(),
                    },
                ),
                (3200, Update::BuildFinished { drv: D.into() }),
                (3300, Update::Ended { cancelled: false }),
            ],
        );
        assert_eq!(
            lines,
            vec![
                "[    0.0s] building hello on localhost",
                "[    1.5s] hello: buildPhase",
                "[    3.2s] built hello in 0:03",
                "[    3.3s] built 1, substituted 0, failed 0 in 0:03",
            ]
        );
    }

    #[test]
    fn logs_with_print_logs_and_failures_with_tails() {
        let lines = run(
            Plain { print_logs: true },
            vec![(
                0,
                Update::Log {
                    drv: D.into(),
                    line: "hi".into(),
                },
            )],
        );
        assert_eq!(lines, vec!["hello> hi"]);
        let lines = run(
            Plain::default(),
            vec![(
                2000,
                Update::BuildFailed {
                    drv: D.into(),
                    message: "builder failed".into(),
                    log_tail: vec!["boom".into()],
                },
            )],
        );
        assert_eq!(
            lines,
            vec![
                "[    2.0s] failed hello: builder failed".to_string(),
                "[    2.0s]   hello> boom".to_string(),
                format!("[    2.0s]   whole log: tvix log {D}"),
            ]
        );
    }
}
