//! `--log-format`: how a command that builds reports on stderr, spelled as Nix spells the
//! formats. `raw` is Nix's plain lines (`building '...'...`, the build logs); `bar` is
//! the dashboard on a terminal and timestamped lines elsewhere; `bar-with-logs` adds the
//! build logs (`name> line`) to the lines. Without the flag: `bar` (`bar-with-logs`
//! with `-L`), except as `nix-build`, whose scripts expect Nix's lines.

use clap::ValueEnum;

/// The formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum LogFormat {
    /// Plain lines, as `nix-build` prints them without a terminal.
    Raw,
    /// The dashboard on a terminal, one timestamped line per event elsewhere.
    Bar,
    /// As `bar`, with the build logs as `name> line`.
    BarWithLogs,
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
}

/// What `format` (or its absence) shows: `print_logs` is `-L`, `as_nix_build` whether
/// the binary runs under the name `nix-build`.
pub(super) fn shown(format: Option<LogFormat>, print_logs: bool, as_nix_build: bool) -> Shown {
    match format {
        Some(LogFormat::Raw) => Shown::Raw,
        None if as_nix_build => Shown::Raw,
        Some(LogFormat::Bar) | None => Shown::Bar { print_logs },
        Some(LogFormat::BarWithLogs) => Shown::Bar { print_logs: true },
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
        assert!(parse("fancy").is_err());
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
    }
}
