//! Nix's `internal-json` log (`nix-build --log-format internal-json -v`) as dashboard
//! updates, for `tvix monitor`. A sans-IO state machine: lines in, updates out. It keeps
//! which activity is which build, substitution or download; unknown activity and result
//! types are ignored, lines that are no record are shown as messages.

use std::collections::BTreeMap;

use tvix_coordinator::internal_json::{
    parse_line, ActivityType, Field, Line, LogRecord, ResultType,
};

use crate::model::{printable, Action, PlannedDrv, Update};

/// The level non-record lines are shown at (Nix's "notice": shown on the dashboard).
pub const PLAIN_LEVEL: u8 = 2;

#[derive(Clone, Debug)]
enum Activity {
    Build(String),
    /// The parent of all builds, whose progress counts failures.
    Builds,
    Substitute(String),
    Download,
}

/// What Nix's lines said so far.
#[derive(Clone, Debug, Default)]
pub struct Monitor {
    activities: BTreeMap<u64, Activity>,
    /// Nix lists what it will build or fetch in messages after a heading.
    listing: Option<Action>,
    /// The list so far, sent as one plan when it ends.
    listed: Vec<PlannedDrv>,
    /// Failed builds as the builds activity counts them, and how many stopped builds
    /// were taken as those.
    n_failed: u64,
    n_failed_seen: u64,
    /// Builds that stopped as failed, whose error message has not come yet.
    failed_pending: Vec<String>,
}

fn text(fields: &[Field], k: usize) -> Option<&str> {
    fields.get(k).and_then(Field::as_str)
}

fn int(fields: &[Field], k: usize) -> Option<u64> {
    fields.get(k).and_then(Field::as_int)
}

/// The quoted store path after `marker` in `msg` (`builder for '/nix/store/...' failed`).
fn quoted_after<'a>(msg: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &msg[msg.find(marker)? + marker.len()..];
    let end = rest.find('\'')?;
    Some(&rest[..end])
}

impl Monitor {
    /// A new stream.
    pub fn new() -> Monitor {
        Monitor::default()
    }

    /// The updates one line of the stream makes (its newline removed).
    pub fn line(&mut self, line: &str) -> Vec<Update> {
        match parse_line(line) {
            Ok(Line::Record(r)) => self.record(r),
            Ok(Line::Plain(p)) => {
                let mut out = self.end_listing();
                out.push(Update::Message {
                    level: PLAIN_LEVEL,
                    text: p,
                });
                out
            }
            // A damaged record is still something the user should see.
            Err(e) => {
                let mut out = self.end_listing();
                out.push(Update::Message {
                    level: 1,
                    text: format!("unreadable log record ({e}): {line}"),
                });
                out
            }
        }
    }

    /// What is still held back at the end of the stream: a list of planned derivations,
    /// failed builds whose message never came.
    pub fn finish(&mut self) -> Vec<Update> {
        let mut out = self.end_listing();
        out.extend(
            self.failed_pending
                .drain(..)
                .map(|drv| Update::BuildFailed {
                    drv,
                    message: "the build failed".to_string(),
                    log_tail: vec![],
                }),
        );
        out
    }

    /// The list of planned derivations, once something else comes.
    fn end_listing(&mut self) -> Vec<Update> {
        self.listing = None;
        if self.listed.is_empty() {
            return vec![];
        }
        vec![Update::Planned(std::mem::take(&mut self.listed))]
    }

    /// The updates of one record.
    pub fn record(&mut self, record: LogRecord) -> Vec<Update> {
        if let LogRecord::Msg { level, msg } = record {
            return self.message(level, msg);
        }
        let mut out = self.end_listing();
        out.extend(self.activity(record));
        out
    }

    fn activity(&mut self, record: LogRecord) -> Vec<Update> {
        match record {
            LogRecord::Start {
                id,
                activity,
                fields,
                ..
            } => match activity {
                ActivityType::Build => {
                    let Some(drv) = text(&fields, 0) else {
                        return vec![];
                    };
                    self.activities.insert(id, Activity::Build(drv.to_string()));
                    vec![Update::BuildStarted {
                        drv: drv.to_string(),
                        machine: text(&fields, 1).unwrap_or("").to_string(),
                    }]
                }
                ActivityType::Substitute => {
                    let Some(path) = text(&fields, 0) else {
                        return vec![];
                    };
                    self.activities
                        .insert(id, Activity::Substitute(path.to_string()));
                    vec![Update::SubstitutionStarted {
                        drv: path.to_string(),
                        from: text(&fields, 1).unwrap_or("").to_string(),
                    }]
                }
                ActivityType::Builds => {
                    self.activities.insert(id, Activity::Builds);
                    vec![]
                }
                ActivityType::FileTransfer => {
                    self.activities.insert(id, Activity::Download);
                    vec![]
                }
                _ => vec![],
            },
            LogRecord::Stop { id } => match self.activities.remove(&id) {
                // Nix counts a failure before the build's activity stops, and says
                // why only later: a stop after a new failure is that failure.
                Some(Activity::Build(drv)) if self.n_failed > self.n_failed_seen => {
                    self.n_failed_seen += 1;
                    self.failed_pending.push(drv);
                    vec![]
                }
                Some(Activity::Build(drv)) => vec![Update::BuildFinished { drv }],
                Some(Activity::Substitute(drv)) => {
                    vec![Update::SubstitutionFinished { drv, ok: true }]
                }
                _ => vec![],
            },
            LogRecord::Result { id, result, fields } => {
                let activity = self.activities.get(&id);
                match (activity, result) {
                    (Some(Activity::Build(drv)), ResultType::BuildLogLine)
                    | (Some(Activity::Build(drv)), ResultType::PostBuildLogLine) => {
                        vec![Update::Log {
                            drv: drv.clone(),
                            line: text(&fields, 0).unwrap_or("").to_string(),
                        }]
                    }
                    (Some(Activity::Build(drv)), ResultType::SetPhase) => vec![Update::Phase {
                        drv: drv.clone(),
                        phase: text(&fields, 0).unwrap_or("").to_string(),
                    }],
                    (Some(Activity::Builds), ResultType::Progress) => {
                        self.n_failed = int(&fields, 3).unwrap_or(self.n_failed);
                        vec![]
                    }
                    (Some(Activity::Download), ResultType::Progress) => vec![Update::Transfer {
                        id,
                        done: int(&fields, 0).unwrap_or(0),
                        expected: int(&fields, 1).unwrap_or(0),
                    }],
                    _ => vec![],
                }
            }
            LogRecord::Msg { .. } => vec![],
        }
    }

    fn message(&mut self, level: u8, msg: String) -> Vec<Update> {
        let msg = printable(msg);
        if let Some(action) = self.listing {
            if let Some(path) = msg.strip_prefix("  /nix/store/") {
                self.listed.push(PlannedDrv {
                    drv: format!("/nix/store/{}", path.trim_end()),
                    action,
                    inputs: vec![],
                });
                return vec![];
            }
        }
        let mut out = self.end_listing();
        out.extend(self.other_message(level, msg));
        out
    }

    fn other_message(&mut self, level: u8, msg: String) -> Vec<Update> {
        let heading = msg.trim_end();
        if heading.ends_with("will be built:") {
            self.listing = Some(Action::Build);
            return vec![];
        }
        if heading.ends_with("will be fetched:") || heading.contains("will be fetched (") {
            self.listing = Some(Action::Fetch);
            return vec![];
        }
        let body = msg.strip_prefix("error: ").unwrap_or(&msg);
        if level == 0 {
            if let Some(drv) = quoted_after(body, "builder for '") {
                self.failed_pending.retain(|d| d != drv);
                return vec![Update::BuildFailed {
                    drv: drv.to_string(),
                    message: body.to_string(),
                    log_tail: vec![],
                }];
            }
            if let Some(drv) = quoted_after(body, "dependencies of derivation '") {
                return vec![Update::DependencyFailed {
                    drv: drv.to_string(),
                }];
            }
        }
        // Talkative and chattier messages (`evaluating file ...`) are not shown.
        if level > 3 {
            return vec![];
        }
        let text = match level {
            0 | 1 => body.strip_prefix("warning: ").unwrap_or(body).to_string(),
            _ => msg.clone(),
        };
        vec![Update::Message { level, text }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRV: &str = "/nix/store/ld24smwl6z73cqck3vqq551wbmykxsx4-slow-dep-r1.drv";

    fn feed(lines: &[&str]) -> Vec<Update> {
        let mut m = Monitor::new();
        lines.iter().flat_map(|l| m.line(l)).collect()
    }

    #[test]
    fn a_build_with_log_phase_and_failure() {
        let start = format!(
            r#"@nix {{"action":"start","fields":["{DRV}","",1,1],"id":9,"level":3,"parent":0,"text":"building '{DRV}'","type":105}}"#
        );
        let failure = format!(
            r#"@nix {{"action":"msg","column":null,"file":null,"level":0,"line":null,"msg":"\u001b[31;1merror:\u001b[0m builder for '\u001b[35;1m{DRV}\u001b[0m' failed with exit code 3"}}"#
        );
        let updates = feed(&[
            r#"@nix {"action":"msg","level":3,"msg":"these 2 derivations will be built:"}"#,
            &format!(r#"@nix {{"action":"msg","level":3,"msg":"  {DRV}"}}"#),
            &start,
            r#"@nix {"action":"result","fields":["dep-start"],"id":9,"type":101}"#,
            r#"@nix {"action":"result","fields":["buildPhase"],"id":9,"type":104}"#,
            r#"@nix {"action":"result","fields":[1,2,3],"id":9,"type":999}"#,
            r#"@nix {"action":"start","id":10,"level":0,"text":"","type":4242}"#,
            r#"@nix {"action":"start","id":3,"level":0,"text":"","type":104}"#,
            r#"@nix {"action":"result","fields":[0,1,0,1],"id":3,"type":105}"#,
            r#"@nix {"action":"stop","id":9}"#,
            &failure,
            "a plain line",
        ]);
        assert_eq!(
            updates,
            vec![
                Update::Planned(vec![PlannedDrv {
                    drv: DRV.into(),
                    action: Action::Build,
                    inputs: vec![],
                }]),
                Update::BuildStarted {
                    drv: DRV.into(),
                    machine: String::new(),
                },
                Update::Log {
                    drv: DRV.into(),
                    line: "dep-start".into(),
                },
                Update::Phase {
                    drv: DRV.into(),
                    phase: "buildPhase".into(),
                },
                Update::BuildFailed {
                    drv: DRV.into(),
                    message: format!("builder for '{DRV}' failed with exit code 3"),
                    log_tail: vec![],
                },
                Update::Message {
                    level: PLAIN_LEVEL,
                    text: "a plain line".into(),
                },
            ]
        );
    }

    #[test]
    fn a_failure_without_its_message_is_reported_at_the_end() {
        let mut m = Monitor::new();
        let start = format!(
            r#"@nix {{"action":"start","fields":["{DRV}","",1,1],"id":9,"level":3,"parent":0,"text":"","type":105}}"#
        );
        for l in [
            r#"@nix {"action":"start","id":3,"level":0,"text":"","type":104}"#,
            &start,
            r#"@nix {"action":"result","fields":[0,1,0,1],"id":3,"type":105}"#,
        ] {
            m.line(l);
        }
        assert_eq!(m.line(r#"@nix {"action":"stop","id":9}"#), vec![]);
        assert_eq!(
            m.finish(),
            vec![Update::BuildFailed {
                drv: DRV.into(),
                message: "the build failed".into(),
                log_tail: vec![],
            }]
        );
    }

    #[test]
    fn downloads_and_substitutions() {
        let updates = feed(&[
            r#"@nix {"action":"start","fields":["/nix/store/abc-x","https://cache"],"id":1,"level":4,"parent":0,"text":"","type":108}"#,
            r#"@nix {"action":"start","fields":["https://cache/nar/x"],"id":2,"level":4,"parent":1,"text":"","type":101}"#,
            r#"@nix {"action":"result","fields":[512,1024,0,0],"id":2,"type":105}"#,
            r#"@nix {"action":"stop","id":2}"#,
            r#"@nix {"action":"stop","id":1}"#,
            r#"@nix {"action":"msg","level":1,"msg":"warning: something odd"}"#,
            r#"@nix {"action":"msg","level":5,"msg":"evaluating file 'x'"}"#,
            r#"@nix {broken"#,
        ]);
        assert_eq!(updates.len(), 5, "{updates:?}");
        assert_eq!(
            updates[1],
            Update::Transfer {
                id: 2,
                done: 512,
                expected: 1024,
            }
        );
        assert_eq!(
            updates[2],
            Update::SubstitutionFinished {
                drv: "/nix/store/abc-x".into(),
                ok: true,
            }
        );
        assert_eq!(
            updates[3],
            Update::Message {
                level: 1,
                text: "something odd".into(),
            }
        );
        assert!(
            matches!(&updates[4], Update::Message { level: 1, text } if text.starts_with("unreadable log record"))
        );
    }
}
