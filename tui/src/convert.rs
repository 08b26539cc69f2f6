//! The coordinator's borrowed [`Event`]s as owned [`Update`]s (they cross to the
//! dashboard's thread).

use tvix_coordinator::events::Event;

use crate::model::{Action, PlannedDrv, Update};

/// The updates `event` makes (none for events the dashboard derives itself, such as the
/// counts).
pub fn updates(event: &Event<'_>) -> Vec<Update> {
    let one = |u| vec![u];
    match event {
        Event::Planned { plan, build, fetch } => {
            let planned = |ids: &[_], action| {
                ids.iter()
                    .map(|&id| PlannedDrv {
                        drv: plan.drv(id).to_string(),
                        action,
                        inputs: plan.inputs(id).map(|i| plan.drv(i).to_string()).collect(),
                    })
                    .collect::<Vec<_>>()
            };
            let mut all = planned(build, Action::Build);
            all.extend(planned(fetch, Action::Fetch));
            one(Update::Planned(all))
        }
        Event::SubstitutionStarted { drv, from } => one(Update::SubstitutionStarted {
            drv: drv.to_string(),
            from: from.to_string(),
        }),
        // Each copied path is part of its substitution, shown as one line.
        Event::Copying { .. } => vec![],
        Event::Transfer {
            path,
            done,
            expected,
        } => one(Update::Transfer {
            id: transfer_id(path),
            done: *done,
            expected: *expected,
        }),
        Event::SubstitutionFinished { drv, ok } => one(Update::SubstitutionFinished {
            drv: drv.to_string(),
            ok: *ok,
        }),
        Event::BuildStarted { drv, machine } => one(Update::BuildStarted {
            drv: drv.to_string(),
            machine: machine.to_string(),
        }),
        Event::Log { drv, line } => one(Update::Log {
            drv: drv.to_string(),
            line: String::from_utf8_lossy(line).into_owned(),
        }),
        Event::Phase { drv, phase } => one(Update::Phase {
            drv: drv.to_string(),
            phase: phase.to_string(),
        }),
        Event::KeptBuildDir { drv, dir } => one(Update::Log {
            drv: drv.to_string(),
            line: format!("note: keeping build directory '{dir}'"),
        }),
        // Counts are derived from the states.
        Event::Progress(_) => vec![],
        Event::BuildFinished { drv } => one(Update::BuildFinished {
            drv: drv.to_string(),
        }),
        Event::BuildFailed {
            drv,
            message,
            log_tail,
        } => one(Update::BuildFailed {
            drv: drv.to_string(),
            message: message.clone(),
            log_tail: log_tail.to_vec(),
        }),
        Event::Warning { message } => one(Update::Message {
            level: 1,
            text: message.to_string(),
        }),
        Event::DependencyFailed { drv } => one(Update::DependencyFailed {
            drv: drv.to_string(),
        }),
    }
}

/// A transfer's identity: its store path, hashed (each path is copied once per run).
fn transfer_id(path: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_updates() {
        let tail = vec!["x".to_string()];
        assert_eq!(
            updates(&Event::BuildFailed {
                drv: "d",
                message: "m".into(),
                log_tail: &tail,
            }),
            vec![Update::BuildFailed {
                drv: "d".into(),
                message: "m".into(),
                log_tail: tail.clone(),
            }]
        );
        assert_eq!(
            updates(&Event::Log {
                drv: "d",
                line: b"a\xffb",
            }),
            vec![Update::Log {
                drv: "d".into(),
                line: "a\u{fffd}b".into(),
            }]
        );
        assert!(updates(&Event::Progress(Default::default())).is_empty());
        // Each path's transfer is one, whatever its reports.
        let transfer = |done| {
            updates(&Event::Transfer {
                path: "/nix/store/p",
                done,
                expected: 10,
            })
        };
        let (first, second) = (transfer(1), transfer(10));
        match (&first[..], &second[..]) {
            (
                [Update::Transfer {
                    id: a,
                    done: 1,
                    expected: 10,
                }],
                [Update::Transfer {
                    id: b,
                    done: 10,
                    expected: 10,
                }],
            ) => assert_eq!(a, b),
            other => panic!("{other:?}"),
        }
    }
}
