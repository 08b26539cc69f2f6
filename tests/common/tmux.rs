//! A program on a real terminal, for the terminal tests: a detached tmux session on a
//! private server (its own socket, so tests run in parallel), read with `capture-pane`
//! and typed into with `send-keys`. The server is killed when the session is dropped.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// `s` quoted for the shell tmux runs commands with.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A detached tmux session running one shell command.
pub struct Session {
    socket: String,
}

impl Session {
    /// Runs `command` (a shell command line) in `cwd` on a `width`x`height` terminal.
    /// `tag` names the socket (with the process id and a counter, so it is unique).
    pub fn start(tag: &str, cwd: &Path, width: u16, height: u16, command: &str) -> Session {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let socket = format!(
            "tvix-{tag}-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let status = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", &width.to_string(), "-y", &height.to_string(), "-c"])
            .arg(cwd)
            .arg(command)
            .status()
            .expect("tmux is needed for the terminal tests");
        assert!(status.success(), "tmux new-session failed");
        Session { socket }
    }

    /// Runs a tmux command on this session's server; its stdout.
    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The visible screen.
    pub fn visible(&self) -> String {
        self.tmux(&["capture-pane", "-p"])
    }

    /// The whole screen and scrollback, wrapped lines joined.
    pub fn scrollback(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-"])
    }

    /// Presses keys (tmux's names: `Enter`, `C-c`, ...).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Types `text` literally (tmux reads a trailing `;` as a command separator unless
    /// escaped).
    pub fn type_text(&self, text: &str) {
        let text = match text.strip_suffix(';') {
            Some(t) => format!("{t}\\;"),
            None => text.to_string(),
        };
        self.tmux(&["send-keys", "-l", &text]);
    }

    /// Waits until `pred` holds for what `capture` reads (polled every `every`), at most
    /// `timeout`; returns it, or panics naming `what` with the last screen.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        every: Duration,
        capture: impl Fn(&Session) -> String,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            let s = capture(self);
            if pred(&s) {
                return s;
            }
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}; the screen:\n{s}");
            }
            std::thread::sleep(every);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}
