//! `tvix monitor`: Nix's `internal-json` log on standard input
//! (`nix-build --log-format internal-json -v ... 2>&1 | tvix monitor`) shown as `tvix
//! build`'s dashboard, or as its plain lines when stderr is not a terminal. Exits 1 when a
//! build it watched failed (or the user cancelled), 0 otherwise.

use std::io::BufRead;
use std::sync::mpsc::channel;

use clap::Args;
use tvix_tui::driver::{color_allowed, Dashboard, Mode, Options};
use tvix_tui::history::HistoryFile;
use tvix_tui::monitor::Monitor;

/// Flags of `tvix monitor`.
#[derive(Args)]
pub(crate) struct MonitorArgs {
    /// Print build logs as `name> line` (plain lines only).
    #[arg(short = 'L', long)]
    print_build_logs: bool,
}

/// Why reading stopped.
enum Stop {
    /// The input ended.
    End,
    /// The input could not be read.
    Error(std::io::Error),
    /// The user cancelled.
    Cancelled,
}

/// Runs `tvix monitor`; the exit status.
pub(crate) fn monitor_command(args: MonitorArgs) -> i32 {
    let (tx, rx) = channel();
    let on_cancel = tx.clone();
    let dashboard = Dashboard::start(Options {
        mode: Mode::detect(),
        print_logs: args.print_build_logs,
        color: color_allowed(),
        title: "tvix monitor".to_string(),
        history: HistoryFile::default_location().ok(),
        on_cancel: Box::new(move || {
            let _ = on_cancel.send(Stop::Cancelled);
        }),
    });
    let feed = dashboard.feed();
    // The reader blocks on stdin; cancelling does not wait for it.
    std::thread::spawn(move || {
        let mut monitor = Monitor::new();
        let mut stdin = std::io::stdin().lock();
        let mut buf = Vec::new();
        let stop = loop {
            buf.clear();
            match stdin.read_until(b'\n', &mut buf) {
                Ok(0) => {
                    for u in monitor.finish() {
                        feed.send(u);
                    }
                    break Stop::End;
                }
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']);
                    for u in monitor.line(line) {
                        feed.send(u);
                    }
                }
                Err(e) => break Stop::Error(e),
            }
        };
        let _ = tx.send(stop);
    });
    let stop = rx.recv().unwrap_or(Stop::End);
    let cancelled = matches!(stop, Stop::Cancelled);
    let model = match dashboard.finish(cancelled) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: the dashboard failed: {e}");
            return 1;
        }
    };
    if let Stop::Error(e) = stop {
        eprintln!("error: reading standard input: {e}");
        return 1;
    }
    if cancelled || model.any_failed() {
        1
    } else {
        0
    }
}
