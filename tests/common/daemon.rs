//! A `tvix` daemon (`store daemon`, `builder daemon`) run by a test: started with a bounded
//! wait for the address it serves on, and stopped as a service manager stops one.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon may take to say where it serves.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long a daemon may take to stop after SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// A running daemon; stopped with SIGTERM when dropped (unless it has ended already).
pub struct Daemon {
    child: Child,
    /// The address it serves on, from its first line (`serving ... on URL`).
    pub url: String,
}

impl Daemon {
    /// Starts `tvix ARGS` (with `TVIX_STORE` and `TVIX_BUILD_SERVICE` removed, so the
    /// daemon serves only what its arguments name).
    pub fn start<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Daemon {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tvix"));
        c.args(args);
        Daemon::spawn(c)
    }

    /// Starts a prepared command (for daemons that need environment variables) and waits,
    /// at most [`START_LIMIT`], for the line ending with the address it serves on. Its
    /// standard error is drained afterwards, so the daemon never blocks on a full pipe.
    pub fn spawn(mut c: Command) -> Daemon {
        let what = format!("{c:?}");
        let mut child = c
            .env_remove("TVIX_STORE")
            .env_remove("TVIX_BUILD_SERVICE")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        let stderr = child.stderr.take().expect("piped standard error");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr);
            let mut line = String::new();
            let _ = lines.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut lines, &mut std::io::sink());
        });
        let line = match rx.recv_timeout(START_LIMIT) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not say where it serves within {START_LIMIT:?}");
            }
        };
        match line.trim().rsplit_once(" on ") {
            Some((_, url)) => Daemon {
                url: url.to_string(),
                child,
            },
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} could not start: {line:?}");
            }
        }
    }

    /// `kill -9`, as a machine dying.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    /// SIGTERM, as a service manager stops a daemon: it must end on its own within
    /// [`STOP_LIMIT`] (a builder daemon releases its store mount on the way); it is killed
    /// otherwise, and the test fails unless it is failing already.
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        if !std::thread::panicking() {
            panic!("the daemon did not stop within {STOP_LIMIT:?} of SIGTERM");
        }
    }
}
