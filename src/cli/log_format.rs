//! `--log-format`: how a command that builds reports on stderr, spelled as Nix spells the
//! formats. `raw` is Nix's plain lines (`building '...'...`, the build logs, `error:
//! ...`); `bar` is the dashboard on a terminal and timestamped lines elsewhere;
//! `bar-with-logs` adds the build logs (`name> line`); `internal-json` is Nix's `@nix
//! {...}` records, and then nothing else reaches stderr: errors go as `msg` records, as
//! Nix writes them. Without the flag: `bar` (`bar-with-logs` with `-L`), except as
//! `nix-build`, whose scripts expect Nix's lines.

use std::io::{Stderr, Write};

use clap::ValueEnum;
use tvix_coordinator::build::Event as DriverEvent;
use tvix_coordinator::events::{Event, Subscriber};
use tvix_coordinator::internal_json::output::level;
use tvix_coordinator::internal_json::InternalJsonOutput;
use tvix_coordinator::nix_output::{planned_message, NixStyleOutput};

/// The formats, spelled as Nix spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum LogFormat {
    /// Plain lines, as `nix-build` prints them without a terminal.
    Raw,
    /// The dashboard on a terminal, one timestamped line per event elsewhere.
    Bar,
    /// As `bar`, with the build logs as `name> line`.
    BarWithLogs,
    /// Nix's `@nix {...}` records, for tools made for Nix (nix-output-monitor,
    /// `tvix monitor`).
    InternalJson,
}

/// How a run is shown, once the flags and the invocation are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shown {
    /// Nix's lines.
    Raw,
    /// The dashboard (or its plain lines); with the logs when `print_logs`.
    Bar {
        /// Print build logs as `name> line`.
        print_logs: bool,
    },
    /// Nix's records.
    InternalJson,
}

/// What `format` (or its absence) shows: `print_logs` is `-L`, `as_nix_build` whether
/// the binary runs under the name `nix-build`.
pub(super) fn shown(format: Option<LogFormat>, print_logs: bool, as_nix_build: bool) -> Shown {
    match format {
        Some(LogFormat::Raw) => Shown::Raw,
        Some(LogFormat::InternalJson) => Shown::InternalJson,
        None if as_nix_build => Shown::Raw,
        Some(LogFormat::Bar) | None => Shown::Bar { print_logs },
        Some(LogFormat::BarWithLogs) => Shown::Bar { print_logs: true },
    }
}

/// Nix's verbosity from `-v` flags (each adds a level to the default, `info`) and
/// `--quiet` (takes one away).
pub(super) fn verbosity(n_verbose: u8, quiet: bool) -> u8 {
    level::INFO
        .saturating_add(n_verbose)
        .saturating_sub(u8::from(quiet))
}

/// Where a build's progress and errors go, in the chosen format.
pub(super) enum BuildOutput {
    /// Nix's plain lines.
    Raw(NixStyleOutput),
    /// Nix's records on stderr.
    InternalJson(Box<InternalJsonOutput<Stderr>>),
}

impl BuildOutput {
    /// The output for `shown`; `quiet_logs` (`-Q`) leaves build logs out of the plain
    /// lines (the records keep them: they are what tools show as logs).
    /// `checking`: the builds check valid outputs (`--check`). The dashboard is started
    /// by the run itself; its errors, and everything outside a run, are plain lines.
    pub(super) fn new(
        shown: Shown,
        quiet_logs: bool,
        verbosity: u8,
        checking: bool,
    ) -> BuildOutput {
        match shown {
            Shown::Raw | Shown::Bar { .. } => BuildOutput::Raw(NixStyleOutput { quiet_logs }),
            Shown::InternalJson => {
                let json = InternalJsonOutput::new(std::io::stderr(), verbosity);
                BuildOutput::InternalJson(Box::new(if checking { json.checking() } else { json }))
            }
        }
    }

    /// The subscriber receiving the run's events.
    pub(super) fn subscriber(&self) -> &dyn Subscriber {
        match self {
            BuildOutput::Raw(o) => o,
            BuildOutput::InternalJson(o) => &**o,
        }
    }

    /// Reports an error as Nix does: `error: ` and continuation lines indented to match,
    /// or that text as a `msg` record at level 0.
    pub(super) fn error(&self, msg: &str) {
        let text = format!("error: {}", msg.replace('\n', "\n       "));
        self.error_text(&text);
    }

    /// Reports an error already rendered (`error: ...`, e.g. an evaluation error with
    /// its trace).
    pub(super) fn error_text(&self, text: &str) {
        match self {
            BuildOutput::Raw(_) => eprintln!("{}", text.trim_end_matches('\n')),
            BuildOutput::InternalJson(o) => o.message(level::ERROR, text.trim_end_matches('\n')),
        }
    }

    /// Reports a diagnostic of the evaluator (`warning: ...`, `trace: ...`): a record at
    /// the level Nix gives it (warnings 1; traces, which Nix prints as errors, 0).
    pub(super) fn diagnostic(&self, text: &str) {
        match self {
            BuildOutput::Raw(_) => eprintln!("{text}"),
            BuildOutput::InternalJson(o) => {
                let warning =
                    text.starts_with("warning:") || text.starts_with("evaluation warning:");
                let lvl = if warning { level::WARN } else { level::ERROR };
                o.message(lvl, text);
            }
        }
    }

    /// The run is over (successful, failed or cancelled): stops what is still open.
    pub(super) fn finish(&self) {
        if let BuildOutput::InternalJson(o) = self {
            o.finish();
        }
    }
}

/// The `--check` driver's events (one build at a time, no plan object) in the chosen
/// format, worded as Nix words checks (`checking outputs of '...'...`). Call [`BuildOutput::finish`] after the driver returns.
pub(super) struct SequentialOutput<'a> {
    output: &'a BuildOutput,
    /// The derivation being built (its build activity is open).
    building: Option<String>,
}

impl<'a> SequentialOutput<'a> {
    pub(super) fn new(output: &'a BuildOutput) -> SequentialOutput<'a> {
        SequentialOutput {
            output,
            building: None,
        }
    }

    /// Reports one event of the driver.
    pub(super) fn event(&mut self, e: DriverEvent<'_>) {
        let json = match self.output {
            BuildOutput::Raw(raw) => {
                let mut err = std::io::stderr().lock();
                let _ = match e {
                    DriverEvent::Planned(list) => writeln!(err, "{}", planned_message(list)),
                    DriverEvent::Building(d) => writeln!(err, "checking outputs of '{d}'..."),
                    DriverEvent::Log(_) if raw.quiet_logs => Ok(()),
                    DriverEvent::Log(line) => {
                        err.write_all(line).and_then(|_| err.write_all(b"\n"))
                    }
                    DriverEvent::KeptBuildDir(dir) => {
                        writeln!(err, "note: keeping build directory '{dir}'")
                    }
                };
                return;
            }
            BuildOutput::InternalJson(json) => json,
        };
        let drv = self.building.clone().unwrap_or_default();
        match e {
            DriverEvent::Planned(list) => {
                for line in planned_message(list).lines() {
                    json.message(level::INFO, line);
                }
            }
            DriverEvent::Building(next) => {
                // The driver goes on to the next derivation only after the previous one
                // succeeded.
                if self.building.is_some() {
                    json.event(&Event::BuildFinished { drv: &drv });
                }
                json.event(&Event::BuildStarted {
                    drv: next,
                    machine: "localhost",
                });
                self.building = Some(next.to_string());
            }
            DriverEvent::Log(line) => json.event(&Event::Log { drv: &drv, line }),
            DriverEvent::KeptBuildDir(dir) => json.event(&Event::KeptBuildDir { drv: &drv, dir }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    }

    #[test]
    fn formats_are_spelled_as_nix_spells_them() {
        let parse = |v: &str| Cli::try_parse_from(["x", "--log-format", v]).map(|c| c.log_format);
        assert_eq!(parse("raw").unwrap(), Some(LogFormat::Raw));
        assert_eq!(parse("bar").unwrap(), Some(LogFormat::Bar));
        assert_eq!(
            parse("bar-with-logs").unwrap(),
            Some(LogFormat::BarWithLogs)
        );
        assert_eq!(
            parse("internal-json").unwrap(),
            Some(LogFormat::InternalJson)
        );
        assert!(parse("json").is_err());
        assert_eq!(Cli::try_parse_from(["x"]).unwrap().log_format, None);
    }

    #[test]
    fn defaults() {
        assert_eq!(shown(None, false, false), Shown::Bar { print_logs: false });
        assert_eq!(shown(None, true, false), Shown::Bar { print_logs: true });
        assert_eq!(shown(None, false, true), Shown::Raw);
        assert_eq!(
            shown(Some(LogFormat::Bar), false, true),
            Shown::Bar { print_logs: false }
        );
        assert_eq!(
            shown(Some(LogFormat::BarWithLogs), false, false),
            Shown::Bar { print_logs: true }
        );
        assert_eq!(shown(Some(LogFormat::Raw), true, false), Shown::Raw);
        assert_eq!(
            shown(Some(LogFormat::InternalJson), true, true),
            Shown::InternalJson
        );
    }

    #[test]
    fn verbosity_counts_flags() {
        assert_eq!(verbosity(0, false), 3);
        assert_eq!(verbosity(1, false), 4);
        assert_eq!(verbosity(0, true), 2);
        assert_eq!(verbosity(255, false), 255);
    }
}
