//! Figures of the dashboard (`scripts/tui-bench.py` runs them and reports):
//!
//! - `frame`: milliseconds to draw one frame of a run with 1 000 planned derivations
//!   (8 running, with logs) on a 200x50 `TestBackend`;
//! - `memory`: resident memory after a build printed 200 000 log lines of 100 bytes
//!   through the model (the model keeps a bounded tail);
//! - `live SECONDS`: the real driver on this terminal (it must be one) during a synthetic
//!   run of SECONDS: 8 builds at a time, each printing 50 lines a second, one finishing
//!   every second; prints the CPU time the process used (the feeding is a small part).

use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tvix_tui::driver::{Dashboard, Mode, Options};
use tvix_tui::history::History;
use tvix_tui::model::{Action, Model, PlannedDrv, Update};
use tvix_tui::render::render;
use tvix_tui::view::ViewState;

fn drv(i: usize) -> String {
    format!("/nix/store/{:032}-package-{i}.drv", i)
}

/// 1 000 derivations, each needing up to three earlier ones.
fn plan(n: usize) -> Update {
    Update::Planned(
        (0..n)
            .map(|i| PlannedDrv {
                drv: drv(i),
                action: if i % 10 == 0 {
                    Action::Fetch
                } else {
                    Action::Build
                },
                inputs: [i / 2, i / 3, i / 5]
                    .iter()
                    .filter(|&&j| j < i)
                    .map(|&j| drv(j))
                    .collect(),
            })
            .collect(),
    )
}

fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn frame() {
    let mut m = Model::new(History::default());
    let t0 = Duration::ZERO;
    m.update(t0, plan(1000));
    for i in 0..8 {
        m.update(
            t0,
            Update::BuildStarted {
                drv: drv(i * 7 + 1),
                machine: String::new(),
            },
        );
        for k in 0..100 {
            m.update(
                t0,
                Update::Log {
                    drv: drv(i * 7 + 1),
                    line: format!("compiling file {k}.c"),
                },
            );
        }
    }
    let view = ViewState::new("tvix build", true);
    let mut term = Terminal::new(TestBackend::new(200, 50)).expect("test terminal");
    let n = 1000;
    let start = Instant::now();
    for k in 0..n {
        m.update(Duration::from_millis(k * 100), Update::Tick);
        term.draw(|f| render(&m, &view, f)).expect("draw");
    }
    let per = start.elapsed().as_secs_f64() * 1e3 / n as f64;
    println!("frame_ms={per:.3} derivations=1000 size=200x50 frames={n}");
}

fn memory() {
    let before = rss_kib("VmRSS:");
    let mut m = Model::new(History::default());
    let d = drv(1);
    m.update(
        Duration::ZERO,
        Update::BuildStarted {
            drv: d.clone(),
            machine: String::new(),
        },
    );
    let start = Instant::now();
    let line = "x".repeat(90);
    for i in 0..200_000u64 {
        m.update(
            Duration::from_micros(i * 50),
            Update::Log {
                drv: d.clone(),
                line: format!("{i:>9} {line}"),
            },
        );
    }
    let took = start.elapsed();
    let after = rss_kib("VmRSS:");
    let peak = rss_kib("VmHWM:");
    let kept = m.get(&d).map(|n| n.log.len()).unwrap_or(0);
    println!(
        "log_lines=200000 kept_lines={kept} rss_before_kib={before} rss_after_kib={after} \
         peak_kib={peak} ingest_ms={:.1}",
        took.as_secs_f64() * 1e3
    );
}

fn live(seconds: u64) {
    let d = Dashboard::start(Options {
        mode: Mode::Dashboard,
        print_logs: false,
        color: true,
        title: "bench".into(),
        history: None,
        on_cancel: Box::new(|| {}),
    });
    let feed = d.feed();
    feed.send(plan(1000));
    let cpu0 = cpu_time();
    let start = Instant::now();
    let mut next = 0usize;
    let mut running: Vec<usize> = Vec::new();
    let mut lines = 0u64;
    let mut tick = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        // Every second one build ends and the next starts.
        if tick.is_multiple_of(50) {
            if running.len() == 8 {
                let done = running.remove(0);
                feed.send(Update::BuildFinished { drv: drv(done) });
            }
            while running.len() < 8 {
                feed.send(Update::BuildStarted {
                    drv: drv(next),
                    machine: String::new(),
                });
                running.push(next);
                next += 1;
            }
        }
        for &r in &running {
            feed.send(Update::Log {
                drv: drv(r),
                line: format!("line {lines} of a build"),
            });
            lines += 1;
        }
        tick += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let model = d.finish(false).expect("dashboard");
    let cpu = cpu_time() - cpu0;
    let wall = start.elapsed();
    println!(
        "live_seconds={} cpu_ms={:.0} cpu_percent={:.2} log_lines={lines} built={}",
        wall.as_secs(),
        cpu.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 100.0 / wall.as_secs_f64(),
        model.counts().built
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("frame") => frame(),
        Some("memory") => memory(),
        Some("live") => live(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(60)),
        _ => {
            eprintln!("usage: dashboard-bench frame | memory | live [SECONDS]");
            std::process::exit(2);
        }
    }
}
