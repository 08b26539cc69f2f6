//! The build request, its result, events, and the [`BuildService`] trait every backend
//! implements.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tvix_store::castore::{Node, StoreError};

/// One build, as a backend sees it: what to run, with what, and what to collect.
///
/// Paths are absolute paths *inside the sandbox*. The sandbox's root holds only what the
/// request names: the scratch directories, the inputs under their paths, the files, the
/// parents of the outputs, `/dev` and a fresh `/proc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildRequest {
    /// The program to execute (absolute path inside the sandbox).
    pub program: String,
    /// The whole argument vector, `argv[0]` included.
    pub argv: Vec<String>,
    /// The environment, in the order it is passed to the program. Names are unique.
    pub env: Vec<(String, String)>,
    /// The working directory; must be one of the scratch directories.
    pub working_dir: String,
    /// Empty writable directories created for the build (e.g. `/build` 0700, `/tmp` 1777).
    pub scratch_dirs: Vec<ScratchDir>,
    /// The directory holding the inputs and outputs (e.g. `/nix/store`): created with mode
    /// 1775 and writable by the build, so it can create its outputs there.
    pub store_dir: String,
    /// The inputs, each a castore node at an absolute path directly under `store_dir`,
    /// read-only. This is the whole closure: nothing else of the store is visible.
    pub inputs: Vec<(String, Node)>,
    /// The outputs to collect when the build succeeds, each directly under `store_dir`.
    pub outputs: Vec<String>,
    /// Whether the build may reach the network (the host's network namespace, and the
    /// `host_files`); otherwise it gets a network namespace with only a loopback interface.
    pub network: bool,
    /// Files copied from the building machine into the sandbox at the same path (e.g.
    /// `/etc/resolv.conf` for a build with network); a missing one is left out.
    pub host_files: Vec<String>,
    /// Files created in the sandbox before the build starts (e.g. `/etc/passwd`, or
    /// contents passed as files in the working directory).
    pub files: Vec<SandboxFile>,
    /// Strings to look for in the outputs' NAR serialisations (Nix: the 32-character hash
    /// parts of the input closure's and the outputs' store paths); the result says which
    /// ones each output contains.
    pub needles: Vec<String>,
    /// What the build needs of the machine, and its time limits.
    pub constraints: Constraints,
    /// Keep the build's scratch directories when it fails (the backend says where in a
    /// [`BuildEvent::KeptBuildDir`]).
    pub keep_failed: bool,
}

/// A scratch directory of the sandbox and its mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScratchDir {
    /// Absolute path inside the sandbox.
    pub path: String,
    /// Permission bits (e.g. `0o700`, `0o1777`).
    pub mode: u32,
}

/// A file the sandbox starts with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxFile {
    /// Absolute path inside the sandbox; its parent is a scratch directory or is created.
    pub path: String,
    /// The contents.
    pub contents: Vec<u8>,
    /// Permission bits (e.g. `0o444`, `0o644`).
    pub mode: u32,
}

/// What a build needs of the machine that runs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Constraints {
    /// The system type the program is for (e.g. `x86_64-linux`).
    pub system: String,
    /// Features the machine must have (e.g. `kvm`, `big-parallel`).
    pub required_features: BTreeSet<String>,
    /// Kill the build after this long.
    pub timeout: Option<Duration>,
    /// Kill the build after this long without output.
    pub max_silent_time: Option<Duration>,
}

/// What a build service can build.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// System types it runs (e.g. `x86_64-linux`, `i686-linux`).
    pub systems: Vec<String>,
    /// Features it has (Nix's `system-features`).
    pub features: BTreeSet<String>,
}

/// One collected output of a successful build, ingested into the store the service was
/// opened with (not registered: the caller decides whether the output is accepted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildOutput {
    /// The output's path, as in the request.
    pub path: String,
    /// Its contents in the castore.
    pub node: Node,
    /// sha256 of its NAR serialisation.
    pub nar_sha256: [u8; 32],
    /// Size of its NAR serialisation.
    pub nar_size: u64,
    /// The request's needles that occur in its NAR serialisation.
    pub references: BTreeSet<String>,
}

/// A successful build: every output of the request, in the request's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildResult {
    /// The outputs.
    pub outputs: Vec<BuildOutput>,
}

/// What a build reports while it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildEvent {
    /// The program was started (on this machine, named for logs).
    Started {
        /// The machine running the build (`localhost` for a local backend).
        machine: String,
    },
    /// A line of the program's output (stdout and stderr, merged), without its newline.
    Log(Vec<u8>),
    /// The build entered a phase (a `@nix {"action":"setPhase","phase":...}` line).
    Phase(String),
    /// The failed build's scratch directory was kept here (on the building machine).
    KeptBuildDir(String),
}

/// Why a build did not produce its outputs.
#[derive(Debug, Error)]
pub enum BuildError {
    /// The request is malformed.
    #[error(transparent)]
    InvalidRequest(#[from] InvalidRequest),
    /// The machine cannot run it (system or features).
    #[error("{0}")]
    Unsupported(String),
    /// The program exited with a non-zero status.
    #[error("failed with exit code {0}")]
    ExitCode(i32),
    /// The program was killed by a signal.
    #[error("failed due to signal {0}")]
    Signal(i32),
    /// It ran longer than [`Constraints::timeout`].
    #[error("timed out after {0} seconds")]
    TimedOut(u64),
    /// It was silent longer than [`Constraints::max_silent_time`].
    #[error("timed out after {0} seconds of silence")]
    Silent(u64),
    /// The program succeeded but did not create an output.
    #[error("failed to produce output path '{0}'")]
    MissingOutput(String),
    /// An output is not acceptable as it is (e.g. group- or world-writable, a device
    /// node, a socket).
    #[error("output '{path}' is not acceptable: {reason}")]
    BadOutput {
        /// The output's path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The build was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The sandbox could not be set up or the runtime failed.
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// The store failed (reading inputs, ingesting outputs).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A remote build service failed or could not be reached.
    #[error("build service {url}: {message}")]
    Remote {
        /// The service's URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The connection to a remote build service broke, or could not be made, while a
    /// build was asked of it: the machine is gone, the build is not at fault, and it may
    /// be built elsewhere.
    #[error("lost the build service {url}: {message}")]
    Lost {
        /// The service's URL.
        url: String,
        /// What happened to the connection.
        message: String,
    },
    /// A build service URL is not understood.
    #[error("unsupported build service URL '{url}': {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A request that breaks the rules of [`BuildRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid build request: {0}")]
pub struct InvalidRequest(pub String);

/// Asks a running build to stop. Clones share one flag.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every build holding a clone of this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Runs builds. Backends are chosen by URL (see [`crate::open`]).
pub trait BuildService: Send + Sync {
    /// What this service can build.
    fn capabilities(&self) -> Result<Capabilities, BuildError>;

    /// Runs `request` to completion and returns its outputs, ingested into the store the
    /// service was opened with. `events` receives the build's log and phases as they
    /// happen, on the calling thread. A failed build leaves nothing behind but its
    /// ingested blobs (unregistered, so garbage) and, with `keep_failed`, its scratch
    /// directory. `cancel` stops the build (and its processes) with [`BuildError::Cancelled`].
    fn build(
        &self,
        request: &BuildRequest,
        events: &mut dyn FnMut(BuildEvent),
        cancel: &CancelToken,
    ) -> Result<BuildResult, BuildError>;
}

/// Whether `p` is an absolute, normalised path: starts with `/`, no empty, `.` or `..`
/// components, no trailing `/` (except `/` itself is refused too), no NUL.
fn is_clean_absolute(p: &str) -> bool {
    p.len() > 1
        && p.starts_with('/')
        && !p.contains('\0')
        && p[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// The parent directory of a clean absolute path (`/` for a top-level one).
fn parent_of(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

/// Whether `p` is `dir` or below it.
fn is_within(p: &str, dir: &str) -> bool {
    p == dir || (p.starts_with(dir) && p.as_bytes().get(dir.len()) == Some(&b'/'))
}

impl BuildRequest {
    /// Checks the rules documented on the fields; backends and the gRPC server call it on
    /// every request before acting on it.
    pub fn validate(&self) -> Result<(), InvalidRequest> {
        let bad = |m: String| Err(InvalidRequest(m));
        if !is_clean_absolute(&self.program) {
            return bad(format!(
                "program '{}' is not a clean absolute path",
                self.program
            ));
        }
        if self.argv.is_empty() {
            return bad("argv is empty".into());
        }
        if self.argv.iter().any(|a| a.contains('\0')) {
            return bad("an argument contains NUL".into());
        }
        let mut names = BTreeSet::new();
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return bad(format!("environment variable '{k}' is not valid"));
            }
            if !names.insert(k.as_str()) {
                return bad(format!("environment variable '{k}' is set twice"));
            }
        }
        if !is_clean_absolute(&self.store_dir) {
            return bad(format!(
                "store directory '{}' is not a clean absolute path",
                self.store_dir
            ));
        }
        let mut scratch = BTreeSet::new();
        for d in &self.scratch_dirs {
            if !is_clean_absolute(&d.path) || is_within(&d.path, &self.store_dir) {
                return bad(format!("scratch directory '{}' is not allowed", d.path));
            }
            if d.mode & !0o7777 != 0 {
                return bad(format!(
                    "scratch directory '{}' has mode {:o}",
                    d.path, d.mode
                ));
            }
            if !scratch.insert(d.path.as_str()) {
                return bad(format!("scratch directory '{}' is named twice", d.path));
            }
        }
        if !scratch.contains(self.working_dir.as_str()) {
            return bad(format!(
                "working directory '{}' is not a scratch directory",
                self.working_dir
            ));
        }
        let mut in_store = BTreeSet::new();
        let inputs = self.inputs.iter().map(|(p, _)| ("input", p));
        let outputs = self.outputs.iter().map(|p| ("output", p));
        for (what, p) in inputs.chain(outputs) {
            if !is_clean_absolute(p) || parent_of(p) != self.store_dir {
                return bad(format!(
                    "{what} '{p}' is not directly in '{}'",
                    self.store_dir
                ));
            }
            if !in_store.insert(p.as_str()) {
                return bad(format!("{what} '{p}' is named twice"));
            }
        }
        if self.outputs.is_empty() {
            return bad("no outputs".into());
        }
        let mut files = BTreeSet::new();
        let host = self.host_files.iter().map(|p| ("host file", p));
        let made = self.files.iter().map(|f| ("file", &f.path));
        for (what, p) in host.chain(made) {
            if !is_clean_absolute(p)
                || is_within(p, &self.store_dir)
                || scratch.contains(p.as_str())
            {
                return bad(format!("{what} '{p}' is not allowed"));
            }
            if !files.insert(p.as_str()) {
                return bad(format!("{what} '{p}' is named twice"));
            }
        }
        if let Some(f) = self.files.iter().find(|f| f.mode & !0o777 != 0) {
            return bad(format!("file '{}' has mode {:o}", f.path, f.mode));
        }
        if self.needles.iter().any(|n| n.is_empty() || n.len() > 256) {
            return bad("a needle is empty or longer than 256 bytes".into());
        }
        if self.constraints.system.is_empty() {
            return bad("no system".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> BuildRequest {
        BuildRequest {
            program: "/nix/store/00000000000000000000000000000000-sh/bin/sh".into(),
            argv: vec!["sh".into(), "-c".into(), "true".into()],
            env: vec![(
                "out".into(),
                "/nix/store/11111111111111111111111111111111-x".into(),
            )],
            working_dir: "/build".into(),
            scratch_dirs: vec![
                ScratchDir {
                    path: "/build".into(),
                    mode: 0o700,
                },
                ScratchDir {
                    path: "/tmp".into(),
                    mode: 0o1777,
                },
            ],
            store_dir: "/nix/store".into(),
            inputs: vec![(
                "/nix/store/00000000000000000000000000000000-sh".into(),
                Node::Symlink {
                    target: b"/x".to_vec(),
                },
            )],
            outputs: vec!["/nix/store/11111111111111111111111111111111-x".into()],
            network: false,
            host_files: vec![],
            files: vec![SandboxFile {
                path: "/etc/passwd".into(),
                contents: vec![],
                mode: 0o444,
            }],
            needles: vec!["11111111111111111111111111111111".into()],
            constraints: Constraints {
                system: "x86_64-linux".into(),
                ..Default::default()
            },
            keep_failed: false,
        }
    }

    #[test]
    fn a_good_request_validates() {
        assert_eq!(request().validate(), Ok(()));
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn bad_requests_are_refused() {
        let cases: Vec<(&str, fn(&mut BuildRequest))> = vec![
            ("relative program", |r| r.program = "sh".into()),
            ("dotdot", |r| r.program = "/nix/../etc/shadow".into()),
            ("empty argv", |r| r.argv.clear()),
            ("twice", |r| r.env.push(r.env[0].clone())),
            ("equals", |r| r.env.push(("a=b".into(), "c".into()))),
            ("working dir", |r| r.working_dir = "/elsewhere".into()),
            ("output outside", |r| r.outputs = vec!["/etc/x".into()]),
            ("nested output", |r| {
                r.outputs = vec!["/nix/store/11111111111111111111111111111111-x/y".into()]
            }),
            ("no outputs", |r| r.outputs.clear()),
            ("output is input", |r| {
                r.outputs = vec![r.inputs[0].0.clone()]
            }),
            ("file in store", |r| r.files[0].path = "/nix/store/f".into()),
            ("setuid file", |r| r.files[0].mode = 0o4755),
            ("scratch in store", |r| {
                r.scratch_dirs[1].path = "/nix/store/t".into()
            }),
            ("empty needle", |r| r.needles.push(String::new())),
            ("no system", |r| r.constraints.system.clear()),
        ];
        for (what, edit) in cases {
            let mut r = request();
            edit(&mut r);
            assert!(r.validate().is_err(), "{what} was accepted");
        }
    }
}
