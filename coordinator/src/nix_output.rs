//! The coordinator's events printed as `nix-build` prints its progress on stderr: the
//! plan (`these 2 derivations will be built:`), `building '...'...`, the build logs and
//! kept build directories. The CLI's default output, and what import-from-derivation and
//! the REPL show while they build.

use std::io::Write;

use crate::events::{Event, Subscriber};
use crate::plan::{DrvId, Plan};

/// Nix's heading and list of derivations that will be built.
pub fn planned_message(list: &[String]) -> String {
    let head = if list.len() == 1 {
        "this derivation will be built:".to_string()
    } else {
        format!("these {} derivations will be built:", list.len())
    };
    let body: String = list.iter().map(|d| format!("\n  {d}")).collect();
    format!("{head}{body}")
}

/// Nix's heading and list of paths that will be fetched.
pub fn fetched_message(list: &[String]) -> String {
    let head = if list.len() == 1 {
        "this path will be fetched:".to_string()
    } else {
        format!("these {} paths will be fetched:", list.len())
    };
    let body: String = list.iter().map(|d| format!("\n  {d}")).collect();
    format!("{head}{body}")
}

/// Nix's announcement of a plan: what will be built, then what will be fetched (each
/// left out when empty).
pub fn plan_messages(plan: &Plan, build: &[DrvId], fetch: &[DrvId]) -> Vec<String> {
    let mut text = Vec::new();
    if !build.is_empty() {
        let list: Vec<String> = build.iter().map(|&d| plan.drv(d).to_string()).collect();
        text.push(planned_message(&list));
    }
    if !fetch.is_empty() {
        let list: Vec<String> = fetch
            .iter()
            .flat_map(|&d| plan.outputs(d).iter().cloned())
            .collect();
        text.push(fetched_message(&list));
    }
    text
}

/// Prints events on stderr as `nix-build` does.
#[derive(Clone, Copy, Debug, Default)]
pub struct NixStyleOutput {
    /// Leave out build logs (`-Q`); failures then show their log tails instead.
    pub quiet_logs: bool,
}

impl NixStyleOutput {
    /// The text of `event`, if it shows as anything, without its final newline.
    pub fn render(&self, event: &Event<'_>) -> Option<Vec<u8>> {
        match event {
            Event::Planned { plan, build, fetch } => {
                let text = plan_messages(plan, build, fetch);
                (!text.is_empty()).then(|| text.join("\n").into_bytes())
            }
            Event::BuildStarted { drv, .. } => Some(format!("building '{drv}'...").into_bytes()),
            Event::Copying { path, from } => {
                Some(format!("copying path '{path}' from '{from}'...").into_bytes())
            }
            Event::Log { .. } if self.quiet_logs => None,
            Event::Log { line, .. } => Some(line.to_vec()),
            Event::KeptBuildDir { dir, .. } => {
                Some(format!("note: keeping build directory '{dir}'").into_bytes())
            }
            Event::Warning { message } => Some(format!("warning: {message}").into_bytes()),
            _ => None,
        }
    }
}

impl Subscriber for NixStyleOutput {
    fn event(&self, event: &Event<'_>) {
        if let Some(mut text) = self.render(event) {
            text.push(b'\n');
            // Lines of builds running at once must not interleave: one write per line.
            let _ = std::io::stderr().lock().write_all(&text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_follow_nix() {
        assert_eq!(
            planned_message(&["/nix/store/a.drv".into()]),
            "this derivation will be built:\n  /nix/store/a.drv"
        );
        assert_eq!(
            planned_message(&["a".into(), "b".into()]),
            "these 2 derivations will be built:\n  a\n  b"
        );
        assert_eq!(
            fetched_message(&["p".into()]),
            "this path will be fetched:\n  p"
        );
    }

    #[test]
    fn quiet_output_drops_logs_only() {
        let quiet = NixStyleOutput { quiet_logs: true };
        let log = Event::Log {
            drv: "d",
            line: b"hello",
        };
        assert_eq!(quiet.render(&log), None);
        assert_eq!(
            NixStyleOutput::default().render(&log),
            Some(b"hello".to_vec())
        );
        let started = Event::BuildStarted {
            drv: "/nix/store/x.drv",
            machine: "localhost",
        };
        assert_eq!(
            quiet.render(&started),
            Some(b"building '/nix/store/x.drv'...".to_vec())
        );
    }
}
