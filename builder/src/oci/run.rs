//! Running a bundle with `runc run` and watching it: the build's output arrives on a
//! pseudo-terminal read here, limits and cancellation are enforced with `runc kill`.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::CancelToken;

/// How often cancellation (a flag with nothing to wake on) is checked, and how often the
/// error path polls for the program's end. The program's end, runc's return, output and
/// the limits' deadlines wake the watcher themselves (pidfds, the terminal, poll's
/// timeout), so this bounds only how late a cancellation is noticed.
const TICK: Duration = Duration::from_millis(100);
/// How often the program's and runc's ends are checked where pidfds are unavailable
/// (kernels before 5.3): short, since every build's end waits for the next check.
const FALLBACK_TICK: Duration = Duration::from_millis(5);
/// How long `runc run` may take to return after its container was killed before it is
/// killed itself.
const KILL_GRACE: Duration = Duration::from_secs(10);
/// Linux's `ADDR_NO_RANDOMIZE` personality flag (address-space randomisation off).
pub const ADDR_NO_RANDOMIZE: libc::c_ulong = 0x0040000;
/// Linux's `PER_LINUX32` personality (`uname` reports a 32-bit machine).
pub const PER_LINUX32: libc::c_ulong = 0x0008;

/// Why the runtime could not run the bundle.
#[derive(Debug, Error)]
pub enum RunError {
    /// Setting up the terminal or starting runc failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
    /// runc reported an error (e.g. the container could not be created).
    #[error("runc: {0}")]
    Runtime(String),
}

/// The limits and personality of one run.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// Kill after this long.
    pub timeout: Option<Duration>,
    /// Kill after this long without output.
    pub max_silent_time: Option<Duration>,
    /// The personality the build runs with (inherited through runc), e.g.
    /// [`ADDR_NO_RANDOMIZE`].
    pub personality: libc::c_ulong,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The program exited with this status.
    Exited(i32),
    /// The program was killed by this signal.
    Signaled(i32),
    /// It ran past [`Limits::timeout`] and was killed.
    TimedOut,
    /// It was silent past [`Limits::max_silent_time`] and was killed.
    Silent,
    /// It was cancelled and killed.
    Cancelled,
}

/// How to invoke runc.
#[derive(Clone, Debug)]
pub struct Runc {
    /// The runc binary.
    pub binary: PathBuf,
    /// runc's state directory (`--root`), private to this service.
    pub root: PathBuf,
}

impl Runc {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        c
    }

    /// Kills every process of container `id` (the PID namespace goes with its first
    /// process). Errors are ignored: the container may be gone already.
    pub fn kill(&self, id: &str) {
        let _ = self
            .command()
            .args(["kill", id, "KILL"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Deletes container `id` and its state, killing what is left of it.
    pub fn delete(&self, id: &str) {
        let _ = self
            .command()
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Runs the bundle in `bundle` as container `id`, calling `on_output` with the bytes
    /// it prints as they arrive, until it ends, a limit is reached or `cancel` is set.
    ///
    /// runc runs detached, so that the program gets runc's stdio (the terminal, and
    /// `/dev/null` as stdin) instead of pipes; the program is then waited for as an orphan
    /// handed to this process, which must be a child subreaper ([`become_subreaper`]).
    pub fn run(
        &self,
        bundle: &Path,
        id: &str,
        limits: &Limits,
        cancel: &CancelToken,
        shim: Option<&File>,
        on_output: &mut dyn FnMut(&[u8]),
    ) -> Result<Outcome, RunError> {
        let (master, slave) = open_pty()?;
        let shim_fd = shim.map(|f| f.as_raw_fd());
        let personality = limits.personality;
        let log = bundle.join("runc.log");
        let pid_file = bundle.join("pid");
        let stdout = slave.try_clone().map_err(|source| RunError::Io {
            what: "dup",
            source,
        })?;
        let mut cmd = self.command();
        cmd.arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "run", "--detach", "--pid-file"])
            .arg(&pid_file);
        if shim_fd.is_some() {
            // The shim is descriptor 3 of the program runc starts.
            cmd.args(["--preserve-fds", "1"]);
        }
        cmd.arg("--bundle")
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // A session of its own, as Nix's builder has; the terminal is not made
                // the controlling one (openpty opens it with O_NOCTTY).
                if libc::setsid() == -1 {
                    return Err(io::Error::last_os_error());
                }
                // Inherited through runc into the build, as Nix sets it for its builder.
                if libc::personality(personality) == -1 {
                    return Err(io::Error::last_os_error());
                }
                // dup2 leaves the copy without close-on-exec, so runc inherits it. When
                // the shim already is descriptor 3, dup2 does nothing (and keeps
                // close-on-exec), so the flag is cleared by hand.
                if let Some(fd) = shim_fd {
                    if fd == 3 {
                        let flags = libc::fcntl(3, libc::F_GETFD);
                        if flags == -1
                            || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) == -1
                        {
                            return Err(io::Error::last_os_error());
                        }
                    } else if libc::dup2(fd, 3) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let runc = cmd.spawn().map_err(|source| RunError::Io {
            what: "starting runc",
            source,
        })?;
        // `cmd` holds the parent's copies of the slave: drop them so that the master
        // reports the end once the build's processes are gone.
        drop(cmd);
        let mut master = File::from(master);
        let runc_pidfd = pidfd_open(runc.id() as libc::pid_t);
        let mut w = Watch {
            runc: self,
            id,
            runc_child: Some(runc),
            runc_pidfd,
            pidfd: None,
            pid: None,
            pid_file: &pid_file,
            log: &log,
        };
        let result = w.watch(&mut master, limits, cancel, on_output);
        if result.is_err() {
            self.kill(id);
            w.reap_all();
        }
        drain(&mut master, on_output);
        result
    }
}

/// The state of one run being watched.
struct Watch<'a> {
    runc: &'a Runc,
    id: &'a str,
    /// `runc run --detach`, until it returns.
    runc_child: Option<Child>,
    /// A pidfd of `runc_child`, readable once it has exited (None: unsupported).
    runc_pidfd: Option<OwnedFd>,
    /// The program's host pid, once runc has started it.
    pid: Option<libc::pid_t>,
    /// A pidfd of the program, readable once it has exited (None: unsupported).
    pidfd: Option<OwnedFd>,
    pid_file: &'a Path,
    log: &'a Path,
}

impl Watch<'_> {
    /// Reads output and enforces limits until the program is gone; returns how it ended.
    fn watch(
        &mut self,
        master: &mut File,
        limits: &Limits,
        cancel: &CancelToken,
        on_output: &mut dyn FnMut(&[u8]),
    ) -> Result<Outcome, RunError> {
        let start = Instant::now();
        let mut last_output = start;
        let mut stopped: Option<(Outcome, Instant)> = None;
        let mut buf = vec![0u8; 64 * 1024];
        let mut master_open = true;
        let io_err = |what| move |source| RunError::Io { what, source };
        loop {
            // Sleep until output arrives, runc or the program ends, a limit's deadline
            // passes or it is time to look at the cancellation flag again.
            let now = Instant::now();
            let mut wait = TICK;
            if stopped.is_none() {
                if let Some(t) = limits.timeout {
                    wait = wait.min((start + t).saturating_duration_since(now));
                }
                if let Some(t) = limits.max_silent_time {
                    wait = wait.min((last_output + t).saturating_duration_since(now));
                }
            }
            let mut fds: Vec<libc::pollfd> = Vec::with_capacity(3);
            let pollin = |fd: libc::c_int| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            if master_open {
                fds.push(pollin(master.as_raw_fd()));
            }
            for (waiting, pidfd) in [
                (self.runc_child.is_some(), &self.runc_pidfd),
                (self.pid.is_some(), &self.pidfd),
            ] {
                match (waiting, pidfd) {
                    (true, Some(fd)) => fds.push(pollin(fd.as_raw_fd())),
                    (true, None) => wait = wait.min(FALLBACK_TICK),
                    (false, _) => {}
                }
            }
            // Rounded up, so that a deadline a fraction of a millisecond away is not
            // polled for with a zero timeout over and over.
            let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
            // SAFETY: `fds` holds `fds.len()` valid pollfds.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(io_err("poll")(e));
                }
            }
            if r > 0 && master_open && fds[0].revents != 0 {
                match master.read(&mut buf) {
                    Ok(0) => master_open = false,
                    Ok(n) => {
                        last_output = Instant::now();
                        on_output(&buf[..n]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // EIO: every slave is closed (the build is gone).
                    Err(_) => master_open = false,
                }
            }

            if let Some(child) = &mut self.runc_child {
                if let Some(status) = child.try_wait().map_err(io_err("waiting for runc"))? {
                    self.runc_child = None;
                    if !status.success() {
                        let msg = runc_error(self.log)
                            .unwrap_or_else(|| format!("runc run failed ({status})"));
                        return Err(RunError::Runtime(msg));
                    }
                    let text = std::fs::read_to_string(self.pid_file)
                        .map_err(io_err("reading runc's pid file"))?;
                    let pid = text.trim().parse().map_err(|_| {
                        RunError::Runtime(format!("bad pid file contents '{}'", text.trim()))
                    })?;
                    self.pid = Some(pid);
                    // The program is this process's child now (orphaned to this
                    // subreaper) and is not reaped before `try_wait_pid` sees it end, so
                    // the pid cannot have been reused.
                    self.pidfd = pidfd_open(pid);
                }
            }
            if let Some(pid) = self.pid {
                if let Some(status) = try_wait_pid(pid).map_err(io_err("waiting for the build"))? {
                    return Ok(match stopped {
                        Some((why, _)) => why,
                        None => status,
                    });
                }
            }

            match stopped {
                None => {
                    let now = Instant::now();
                    let why = if cancel.is_cancelled() {
                        Some(Outcome::Cancelled)
                    } else if limits.timeout.is_some_and(|t| now - start >= t) {
                        Some(Outcome::TimedOut)
                    } else if limits
                        .max_silent_time
                        .is_some_and(|t| now - last_output >= t)
                    {
                        Some(Outcome::Silent)
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        self.runc.kill(self.id);
                        stopped = Some((why, now));
                    }
                }
                Some((why, at)) if at.elapsed() > KILL_GRACE => {
                    // Neither runc nor the program went away: give up on them (the caller
                    // deletes the container, which kills what is left).
                    if let Some(mut c) = self.runc_child.take() {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    return Ok(why);
                }
                Some((_, at)) if at.elapsed() > Duration::from_secs(1) => {
                    // The container may not have been running yet when it was killed.
                    self.runc.kill(self.id);
                }
                Some(_) => {}
            }
        }
    }

    /// After an error: stops and reaps runc and the program, if they are there.
    fn reap_all(&mut self) {
        if let Some(mut c) = self.runc_child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(pid) = self.pid.take() {
            let deadline = Instant::now() + KILL_GRACE;
            while Instant::now() < deadline {
                match try_wait_pid(pid) {
                    Ok(None) => std::thread::sleep(TICK),
                    _ => break,
                }
            }
        }
    }
}

/// Whether process `pid` (a child of this process) has ended, and how.
fn try_wait_pid(pid: libc::pid_t) -> io::Result<Option<Outcome>> {
    let mut status: libc::c_int = 0;
    // SAFETY: a valid out pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if r == 0 {
        return Ok(None);
    }
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Some(if libc::WIFEXITED(status) {
        Outcome::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Outcome::Signaled(libc::WTERMSIG(status))
    } else {
        return Ok(None);
    }))
}

/// A pidfd for process `pid` (readable once it has exited, zombie or not), or None where
/// the kernel has no `pidfd_open` (the watcher then polls on a short tick).
fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open with a pid and no flags; returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor we now own (pidfds are close-on-exec).
    Some(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Makes this process a child subreaper, so that a build's first process, orphaned when
/// `runc run --detach` returns, becomes its child and can be waited for (its exit status
/// is the build's). Orphans of other descendants also come here and stay zombies until
/// this process ends.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads what is left in the terminal after the build's processes are gone.
fn drain(master: &mut File, on_output: &mut dyn FnMut(&[u8])) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => on_output(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// The first error runc logged (its JSON log lines with `"level":"error"`).
fn runc_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "error")
        .map(|v| v["msg"].as_str().unwrap_or("unknown error").to_string())
}

/// A pseudo-terminal pair: the master non-blocking, both close-on-exec (the slave is
/// duplicated onto runc's stdout and stderr).
fn open_pty() -> Result<(OwnedFd, OwnedFd), RunError> {
    let err = |what| move |source| RunError::Io { what, source };
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    // SAFETY: out pointers are valid; no name, termios or window size.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(err("openpty")(io::Error::last_os_error()));
    }
    // SAFETY: openpty returned two fresh descriptors we now own.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    for fd in [&master, &slave] {
        // SAFETY: valid descriptor.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
            return Err(err("fcntl")(io::Error::last_os_error()));
        }
    }
    // SAFETY: valid descriptor.
    let flags = unsafe { libc::fcntl(master.as_raw_fd(), libc::F_GETFL) };
    // SAFETY: valid descriptor.
    if flags == -1
        || unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } == -1
    {
        return Err(err("fcntl")(io::Error::last_os_error()));
    }
    Ok((master, slave))
}
