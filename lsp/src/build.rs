//! The `tvix/build` command: evaluates an attribute of a file to a derivation with an
//! evaluator that writes to the store, builds it through the coordinator's [`Realiser`], and
//! reports the coordinator's events as progress messages. Runs on a thread of its own (the
//! evaluator is not `Send`, and builds take long); the server turns the updates into
//! `$/progress` notifications.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tvix_build::CancelToken;
use tvix_coordinator::events::{Event, Progress, Subscriber};
use tvix_coordinator::realise::{failure_messages, DrvOutput, Realiser};
use tvix_coordinator::request::SANDBOX_STORE_DIR;
use tvix_eval::symbol::Symbol;
use tvix_eval::{Evaluator, Value};

/// Makes what a build needs for a search path: an evaluator writing derivations to a store,
/// and a realiser building in that same store. The binary passes one.
pub type BuildFactory =
    Arc<dyn Fn(&[String]) -> Result<(Evaluator, Realiser), String> + Send + Sync>;

/// The setting that allows builds, named in messages.
pub const ENABLE_SETTING: &str = "tvix.build.enable";

/// Log lines are reported at most this often (builds can print thousands a second).
const LOG_REPORT_INTERVAL: Duration = Duration::from_millis(200);

/// A progress update for the editor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The message (counts, the current build, its last log line).
    pub message: String,
    /// Builds done out of all, in percent, once known.
    pub percentage: Option<u32>,
}

/// Nix source evaluating `path` inside the value of `file` (called with the `args` it takes
/// when it is a function, as hover and completion call files).
pub fn target_source(file: &Path, args: &BTreeMap<String, String>, path: &[String]) -> String {
    let args: String = args
        .iter()
        .map(|(name, expr)| format!("{} = ({expr}\n); ", nix_string(name)))
        .collect();
    let select: String = path.iter().map(|n| format!(".{}", nix_string(n))).collect();
    format!(
        "let f = import {}; a = {{ {args}}}; \
         v = if builtins.isFunction f then f (builtins.intersectAttrs (builtins.functionArgs f) a) else f; \
         in v{select}",
        nix_string(&file.to_string_lossy())
    )
}

/// `s` as a Nix string literal.
pub(crate) fn nix_string(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace("${", "\\${");
    format!("\"{escaped}\"")
}

/// The progress message for the counts, the build running and its last log line.
pub fn progress_message(p: &Progress, current: Option<&str>, last_line: Option<&str>) -> Update {
    let mut message = format!("{}/{} built", p.builds_done, p.builds_total);
    if p.builds_failed > 0 {
        message.push_str(&format!(", {} failed", p.builds_failed));
    }
    if let Some(drv) = current {
        message.push_str(&format!(", building {}", short_name(drv)));
    }
    if let Some(line) = last_line.filter(|l| !l.trim().is_empty()) {
        message.push_str(&format!(": {}", line.trim_end()));
    }
    let percentage = (p.builds_total > 0).then(|| (p.builds_done * 100 / p.builds_total) as u32);
    Update {
        message,
        percentage,
    }
}

/// A `.drv` path's name without the hash and `.drv` (`hello-2.12`).
fn short_name(drv: &str) -> &str {
    let base = drv.rsplit('/').next().unwrap_or(drv);
    let name = base.split_once('-').map_or(base, |(_, n)| n);
    name.strip_suffix(".drv").unwrap_or(name)
}

/// Turns the coordinator's events into [`Update`]s.
struct ProgressSink<F: Fn(Update) + Sync> {
    send: F,
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    progress: Progress,
    current: Option<String>,
    last_line: Option<String>,
    last_log_report: Option<Instant>,
}

impl<F: Fn(Update) + Sync> Subscriber for ProgressSink<F> {
    fn event(&self, event: &Event<'_>) {
        let Ok(mut s) = self.state.lock() else { return };
        match event {
            Event::Progress(p) => s.progress = *p,
            Event::BuildStarted { drv, .. } => {
                s.current = Some(drv.to_string());
                s.last_line = None;
            }
            Event::Log { line, .. } => {
                s.last_line = Some(String::from_utf8_lossy(line).into_owned());
                let now = Instant::now();
                if s.last_log_report
                    .is_some_and(|t| now.duration_since(t) < LOG_REPORT_INTERVAL)
                {
                    return;
                }
                s.last_log_report = Some(now);
            }
            Event::BuildFinished { drv } | Event::BuildFailed { drv, .. } => {
                if s.current.as_deref() == Some(*drv) {
                    s.current = None;
                }
            }
            _ => return,
        }
        let update = progress_message(&s.progress, s.current.as_deref(), s.last_line.as_deref());
        drop(s);
        (self.send)(update);
    }
}

/// Evaluates `attr_path` of `file` to a derivation and builds it; returns its outputs
/// (name, path) or the message saying why not. `send` receives progress updates.
pub fn run_build(
    factory: &BuildFactory,
    search_path: &[String],
    args: &BTreeMap<String, String>,
    file: &Path,
    attr_path: &[String],
    send: impl Fn(Update) + Sync,
    cancel: &CancelToken,
) -> Result<Vec<(String, String)>, String> {
    let (mut ev, realiser) = factory(search_path)?;
    let source = target_source(file, args, attr_path);
    let base = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let drv_path = {
        let r = ev
            .eval_source("«tvix/build»".to_string(), source, base)
            .and_then(|v| derivation_path(&mut ev, v));
        match r {
            Ok(Some(p)) => p,
            Ok(None) => {
                let what = if attr_path.is_empty() {
                    "the file".to_string()
                } else {
                    format!("'{}'", attr_path.join("."))
                };
                return Err(format!("{what} does not evaluate to a derivation"));
            }
            Err(e) => return Err(crate::evaluate::render(&ev, &e)),
        }
    };
    ev.io
        .commit()
        .map_err(|e| format!("committing to the store: {e}"))?;
    let target = DrvOutput::parse(&drv_path).map_err(|e| e.to_string())?;
    let drvs = [target.drv];
    let sink = ProgressSink {
        send,
        state: Mutex::new(SinkState::default()),
    };
    let subscribers: [&dyn Subscriber; 1] = [&sink];
    let outcome = realiser
        .run(&drvs, &subscribers, cancel)
        .map_err(|e| tvix_coordinator::realise::RealiseError::from(e).to_string())?;
    if !outcome.success() {
        return Err(failure_messages(&outcome, &drvs, true).join("\n"));
    }
    Ok(outcome
        .target_outputs
        .first()
        .into_iter()
        .flatten()
        .map(|(name, p)| (name.clone(), format!("{SANDBOX_STORE_DIR}/{p}")))
        .collect())
}

/// The `drvPath` of a derivation value; `None` for other values.
fn derivation_path(ev: &mut Evaluator, v: Value) -> tvix_eval::EvalResult<Option<String>> {
    let v = ev.force(v)?;
    let Value::Attrs(a) = &v else { return Ok(None) };
    let is_drv = match a.get(Symbol::intern("type")).cloned() {
        Some(t) => matches!(ev.force(t)?, Value::String(s) if s.as_bytes() == b"derivation"),
        None => false,
    };
    let Some(p) = a.get(Symbol::intern("drvPath")).cloned().filter(|_| is_drv) else {
        return Ok(None);
    };
    Ok(Some(ev.force_string(p, None)?.to_str_lossy().into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_source_calls_and_selects() {
        let args: BTreeMap<String, String> = [("pkgs".to_string(), "{ }".to_string())].into();
        let s = target_source(
            Path::new("/w/a \"b\".nix"),
            &args,
            &["packages".into(), "x-${y}".into()],
        );
        assert!(
            s.starts_with("let f = import \"/w/a \\\"b\\\".nix\";"),
            "{s}"
        );
        assert!(s.contains("a = { \"pkgs\" = ({ }\n); };"), "{s}");
        assert!(s.ends_with("in v.\"packages\".\"x-\\${y}\""), "{s}");
    }

    #[test]
    fn progress_names_counts_build_and_line() {
        let p = Progress {
            builds_total: 4,
            builds_done: 1,
            builds_failed: 1,
            ..Progress::default()
        };
        let u = progress_message(
            &p,
            Some("/nix/store/0a1hmb1d2dm3g6lrqwscf0lqjfjbzbv2-hello-2.12.drv"),
            Some("compiling x.c\n"),
        );
        assert_eq!(
            u.message,
            "1/4 built, 1 failed, building hello-2.12: compiling x.c"
        );
        assert_eq!(u.percentage, Some(25));
        let none = progress_message(&Progress::default(), None, None);
        assert_eq!(none.message, "0/0 built");
        assert_eq!(none.percentage, None);
    }

    #[test]
    fn sink_reports_events() {
        let got = Mutex::new(Vec::new());
        let sink = ProgressSink {
            send: |u: Update| got.lock().unwrap().push(u.message),
            state: Mutex::new(SinkState::default()),
        };
        sink.event(&Event::Progress(Progress {
            builds_total: 1,
            ..Progress::default()
        }));
        sink.event(&Event::BuildStarted {
            drv: "/nix/store/0a1hmb1d2dm3g6lrqwscf0lqjfjbzbv2-t.drv",
            machine: "localhost",
        });
        sink.event(&Event::Log {
            drv: "/nix/store/0a1hmb1d2dm3g6lrqwscf0lqjfjbzbv2-t.drv",
            line: b"step one",
        });
        // A second line right after is not reported (throttled).
        sink.event(&Event::Log {
            drv: "/nix/store/0a1hmb1d2dm3g6lrqwscf0lqjfjbzbv2-t.drv",
            line: b"step two",
        });
        assert_eq!(
            *got.lock().unwrap(),
            vec![
                "0/1 built",
                "0/1 built, building t",
                "0/1 built, building t: step one"
            ]
        );
    }
}
