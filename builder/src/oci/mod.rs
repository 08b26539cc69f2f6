//! The OCI backend (`oci://`): each build is a runtime bundle run by `runc`, with the
//! sandbox Nix 2.8 gives builds (`notes/nix-sandbox.md`), made stricter where noted.
//!
//! One build: check the request and the machine's capabilities; find the inputs in the
//! store's FUSE mount ([`inputs_mount`]; copied into the cache by [`materialise`] where
//! FUSE is unavailable); lay out the bundle ([`bundle`]); write its
//! `config.json` ([`spec`]); run it ([`run`]); on success collect the outputs
//! ([`outputs`]); always delete the container and the bundle (the failed build's working
//! directory survives with `keep_failed`).
//!
//! State directory layout: `runc/` (runc's `--root`), `store-mount-<pid>/` (the store's
//! mount), `inputs/` (materialised inputs),
//! `builds/<id>/` (bundles), `failed/<id>` (kept working directories).

pub mod bundle;
pub mod exec_shim;
mod fsutil;
pub mod inputs_mount;
pub mod materialise;
pub mod outputs;
pub mod run;
pub mod spec;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tvix_store::castore::Node;
use tvix_store::StoreService;

use crate::{
    BuildError, BuildEvent, BuildRequest, BuildResult, BuildService, CancelToken, Capabilities,
    ServiceOptions,
};
use bundle::{BundleParts, InputSource, SandboxPath};
use materialise::InputCache;
use run::{Limits, Outcome, Runc};

/// Debian's runc.
const RUNC: &str = "/usr/sbin/runc";

/// The host id container root is mapped to. runc needs container id 0 mapped; only
/// runc's own setup runs as it. Chosen far above the ids systems allocate to users and
/// subordinate ranges (and below 2^32 - 1, which means "no id").
const UNUSED_HOST_ID: u32 = 0xfffe_0000 - 2;

/// Host device nodes every build gets, as in Nix.
const DEVICES: &[&str] = &[
    "/dev/full",
    "/dev/null",
    "/dev/random",
    "/dev/tty",
    "/dev/urandom",
    "/dev/zero",
];

/// The OCI build service.
pub struct OciBuildService {
    store: Arc<dyn StoreService>,
    state_dir: PathBuf,
    runc: Runc,
    inputs: InputCache,
    /// The store's FUSE mount, started by the first build; `None` inside when FUSE is
    /// unavailable or inputs are copied by choice (inputs are then copied into `inputs`).
    mount: std::sync::OnceLock<Option<inputs_mount::InputsMount>>,
    /// How inputs reach a build.
    inputs_mode: InputsMode,
    sandbox_paths: Vec<SandboxPath>,
    capabilities: Capabilities,
    /// The exec shim's file, where this machine has one.
    exec_shim: Option<PathBuf>,
}

/// How a build's inputs reach its sandbox; the outputs are the same either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InputsMode {
    /// Bind-mounted from one FUSE mount of the store per service: only what a build
    /// reads is fetched. Falls back to copies, with a warning, where FUSE is unavailable.
    #[default]
    Mount,
    /// Copied (materialised) into the state directory before the build, and reused by
    /// later builds.
    Copy,
}

/// The default state directory: `/var/lib/tvix/builder` for root, else
/// `$XDG_STATE_HOME/tvix/builder` (`~/.local/state/tvix/builder`).
pub fn default_state_dir() -> PathBuf {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/tvix/builder");
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("tvix/builder")
}

/// The systems this machine runs natively (Nix's `system` plus its default
/// `extra-platforms`).
fn native_systems() -> Vec<String> {
    if cfg!(target_arch = "x86_64") {
        vec!["x86_64-linux".into(), "i686-linux".into()]
    } else if cfg!(target_arch = "aarch64") {
        vec!["aarch64-linux".into()]
    } else {
        vec![format!("{}-linux", std::env::consts::ARCH)]
    }
}

/// Whether `/dev/kvm` can be opened for reading and writing.
fn kvm_usable() -> bool {
    // SAFETY: a valid C string.
    unsafe { libc::access(c"/dev/kvm".as_ptr(), libc::R_OK | libc::W_OK) == 0 }
}

static BUILD_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A container id no other build (of this or another process) uses.
fn unique_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "tvix-{}-{}-{}",
        std::process::id(),
        nanos,
        BUILD_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl OciBuildService {
    /// A service keeping its state in `state_dir` (created if missing).
    pub fn new(
        store: Arc<dyn StoreService>,
        state_dir: PathBuf,
        options: &ServiceOptions,
        inputs_mode: InputsMode,
    ) -> Result<Self, BuildError> {
        std::fs::create_dir_all(&state_dir)?;
        run::become_subreaper()?;
        let mut sandbox_paths = Vec::new();
        for s in &options.sandbox_paths {
            sandbox_paths.push(
                SandboxPath::parse(s).ok_or_else(|| {
                    BuildError::Sandbox(format!("sandbox path '{s}' is not valid"))
                })?,
            );
        }
        let mut systems = native_systems();
        for p in &options.extra_platforms {
            if !systems.contains(p) {
                systems.push(p.clone());
            }
        }
        let features = match &options.system_features {
            Some(f) => f.clone(),
            None => {
                let mut f: BTreeSet<String> = ["benchmark", "big-parallel", "nixos-test"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                if kvm_usable() {
                    f.insert("kvm".into());
                }
                f
            }
        };
        let runc = Runc {
            binary: PathBuf::from(RUNC),
            root: state_dir.join("runc"),
        };
        remove_stale_builds(&state_dir, &runc);
        let exec_shim = match exec_shim::elf() {
            Some(elf) => Some(write_shim(&state_dir, &elf)?),
            None => None,
        };
        Ok(OciBuildService {
            exec_shim,
            inputs: InputCache::new(state_dir.join("inputs"))?,
            mount: std::sync::OnceLock::new(),
            inputs_mode,
            runc,
            store,
            state_dir,
            sandbox_paths,
            capabilities: Capabilities { systems, features },
        })
    }

    /// Refuses a request this machine cannot build.
    fn check_supported(&self, req: &BuildRequest) -> Result<(), BuildError> {
        let caps = &self.capabilities;
        if !caps.systems.contains(&req.constraints.system) {
            return Err(BuildError::Unsupported(format!(
                "system '{}' is not one of {:?}",
                req.constraints.system, caps.systems
            )));
        }
        let missing: Vec<&String> = req
            .constraints
            .required_features
            .iter()
            .filter(|f| !caps.features.contains(*f))
            .collect();
        if !missing.is_empty() {
            return Err(BuildError::Unsupported(format!(
                "missing system features {missing:?}"
            )));
        }
        Ok(())
    }

    /// The store's mount, started on first use. `None` when inputs are copied by choice
    /// or FUSE is unavailable (said once): inputs are then copied, with the same contents
    /// and modes.
    fn store_mount(&self) -> Option<&inputs_mount::InputsMount> {
        if self.inputs_mode == InputsMode::Copy {
            return None;
        }
        self.mount
            .get_or_init(|| {
                match inputs_mount::InputsMount::start(self.store.clone(), &self.state_dir) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        eprintln!(
                            "warning: tvix builder: cannot mount the store with FUSE ({e}); \
                             build inputs are copied instead"
                        );
                        None
                    }
                }
            })
            .as_ref()
    }

    /// Every input's source: a node of the store's mount, or a materialised copy when
    /// FUSE is unavailable (symlinks are made in the sandbox's store directory).
    fn prepare_inputs(&self, req: &BuildRequest) -> Result<Vec<(String, InputSource)>, BuildError> {
        let mount = self.store_mount();
        req.inputs
            .iter()
            .map(|(path, node)| {
                let mounted = mount.and_then(|m| m.source(node));
                let source = match (node, mounted) {
                    (Node::Symlink { target }, _) => InputSource::Symlink(target.clone()),
                    (_, Some(src)) => InputSource::Bind(src),
                    _ => InputSource::Bind(
                        self.inputs
                            .materialise(&*self.store, path, node)
                            .map_err(|e| match e {
                                materialise::MaterialiseError::Store(s) => BuildError::Store(s),
                                e => BuildError::Sandbox(e.to_string()),
                            })?,
                    ),
                };
                Ok((path.clone(), source))
            })
            .collect()
    }

    /// Device nodes this build gets.
    fn devices(&self) -> Vec<PathBuf> {
        let mut d: Vec<PathBuf> = DEVICES
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.exists())
            .collect();
        if self.capabilities.features.contains("kvm") && Path::new("/dev/kvm").exists() {
            d.push(PathBuf::from("/dev/kvm"));
        }
        d
    }

    /// Runs a validated, supported request in bundle directory `dir` as container `id`.
    fn build_in(
        &self,
        req: &BuildRequest,
        dir: &Path,
        id: &str,
        events: &mut dyn FnMut(BuildEvent),
        cancel: &CancelToken,
        work_dir: &mut Option<PathBuf>,
    ) -> Result<BuildResult, BuildError> {
        let inputs = self.prepare_inputs(req)?;
        let devices = self.devices();
        // The build user stands for the user running the service (it owns the outputs).
        // SAFETY: getuid/getgid cannot fail.
        let (host_uid, host_gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let parts = BundleParts {
            inputs: &inputs,
            sandbox_paths: &self.sandbox_paths,
            devices: &devices,
            host_uid,
            host_gid,
            unused_host_id: UNUSED_HOST_ID,
            exec_shim: self
                .exec_shim
                .as_ref()
                .map(|_| exec_shim::SHIM_PATH.to_string()),
        };
        let shim = match &self.exec_shim {
            Some(p) => Some(std::fs::File::open(p)?),
            None => None,
        };
        let bundle =
            bundle::prepare(dir, req, &parts).map_err(|e| BuildError::Sandbox(e.to_string()))?;
        *work_dir = Some(bundle.work_dir.clone());
        let spec = spec::runtime_spec(req, &bundle.layout)
            .map_err(|e| BuildError::Sandbox(e.to_string()))?;
        let json = serde_json::to_vec_pretty(&spec)
            .map_err(|e| BuildError::Sandbox(format!("serialising config.json: {e}")))?;
        std::fs::write(dir.join("config.json"), json)?;

        if cancel.is_cancelled() {
            return Err(BuildError::Cancelled);
        }
        events(BuildEvent::Started {
            machine: "localhost".into(),
        });
        // As Nix: address-space randomisation off, and a 32-bit `uname` for i686 builds
        // on x86_64.
        let mut personality = run::ADDR_NO_RANDOMIZE;
        if cfg!(target_arch = "x86_64") && req.constraints.system == "i686-linux" {
            personality |= run::PER_LINUX32;
        }
        let limits = Limits {
            timeout: req.constraints.timeout,
            max_silent_time: req.constraints.max_silent_time,
            personality,
        };
        let mut lines = LineSplitter::default();
        let outcome = self
            .runc
            .run(dir, id, &limits, cancel, shim.as_ref(), &mut |bytes| {
                lines.feed(bytes, &mut |l| emit_line(l, events))
            })
            .map_err(|e| BuildError::Sandbox(e.to_string()));
        lines.finish(&mut |l| emit_line(l, events));
        match outcome? {
            Outcome::Exited(0) => {}
            Outcome::Exited(n) => return Err(BuildError::ExitCode(n)),
            Outcome::Signaled(n) => return Err(BuildError::Signal(n)),
            Outcome::TimedOut => {
                let t = req.constraints.timeout.unwrap_or_default();
                return Err(BuildError::TimedOut(t.as_secs()));
            }
            Outcome::Silent => {
                let t = req.constraints.max_silent_time.unwrap_or_default();
                return Err(BuildError::Silent(t.as_secs()));
            }
            Outcome::Cancelled => return Err(BuildError::Cancelled),
        }
        let mut outputs = Vec::with_capacity(req.outputs.len());
        for out in &req.outputs {
            let name = out.rsplit('/').next().unwrap_or(out);
            let host = bundle.layout.store.join(name);
            outputs.push(outputs::collect(
                &*self.store,
                out,
                &host,
                host_uid,
                &req.needles,
            )?);
        }
        Ok(BuildResult { outputs })
    }
}

/// Deletes the containers and bundles of builds whose process is gone (killed before it
/// could clean up), and unfinished input cache entries of such processes.
fn remove_stale_builds(state_dir: &Path, runc: &Runc) {
    // Ids and temporary names carry the pid of the process that made them.
    let dead = |pid: &str| {
        pid.parse::<u32>().is_ok_and(|p| p != std::process::id())
            && !Path::new("/proc").join(pid).exists()
    };
    if let Ok(entries) = std::fs::read_dir(state_dir.join("builds")) {
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let pid = id.strip_prefix("tvix-").and_then(|r| r.split('-').next());
            if pid.is_some_and(dead) {
                runc.delete(&id);
                let _ = fsutil::remove_tree(&e.path());
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(state_dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.strip_prefix(inputs_mount::PREFIX).is_some_and(dead) {
                inputs_mount::remove_stale(&e.path());
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(state_dir.join("inputs")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.strip_prefix(".tmp-").and_then(|r| r.split('-').next());
            if pid.is_some_and(dead) {
                let _ = fsutil::remove_tree(&e.path());
            }
        }
    }
}

/// Writes the exec shim into the state directory (replacing it atomically) and returns
/// its path.
fn write_shim(state_dir: &Path, elf: &[u8]) -> Result<PathBuf, BuildError> {
    use std::os::unix::fs::PermissionsExt;
    let path = state_dir.join("exec-shim");
    let tmp = state_dir.join(format!(".exec-shim-{}", unique_id()));
    std::fs::write(&tmp, elf)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Reports one line of output: a phase for Nix's `setPhase` messages, else a log line.
fn emit_line(line: &[u8], events: &mut dyn FnMut(BuildEvent)) {
    if let Some(json) = line.strip_prefix(b"@nix ") {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) {
            if v["action"] == "setPhase" {
                if let Some(p) = v["phase"].as_str() {
                    events(BuildEvent::Phase(p.to_string()));
                    return;
                }
            }
        }
    }
    events(BuildEvent::Log(line.to_vec()));
}

/// Splits a byte stream into lines (`\n`, a trailing `\r` dropped: the terminal turns
/// `\n` into `\r\n`).
#[derive(Default)]
struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    fn feed(&mut self, bytes: &[u8], out: &mut dyn FnMut(&[u8])) {
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..i]);
            rest = &rest[i + 1..];
            let mut line = std::mem::take(&mut self.partial);
            while line.last() == Some(&b'\r') {
                line.pop();
            }
            out(&line);
        }
        self.partial.extend_from_slice(rest);
    }

    fn finish(&mut self, out: &mut dyn FnMut(&[u8])) {
        if !self.partial.is_empty() {
            let mut line = std::mem::take(&mut self.partial);
            while line.last() == Some(&b'\r') {
                line.pop();
            }
            out(&line);
        }
    }
}

impl BuildService for OciBuildService {
    fn capabilities(&self) -> Result<Capabilities, BuildError> {
        Ok(self.capabilities.clone())
    }

    fn build(
        &self,
        request: &BuildRequest,
        events: &mut dyn FnMut(BuildEvent),
        cancel: &CancelToken,
    ) -> Result<BuildResult, BuildError> {
        request.validate()?;
        self.check_supported(request)?;
        let id = unique_id();
        let dir = self.state_dir.join("builds").join(&id);
        let mut work_dir = None;
        let result = self.build_in(request, &dir, &id, events, cancel, &mut work_dir);
        // Always: the container (and any process left in it) goes, then the bundle.
        self.runc.delete(&id);
        if result.is_err() && request.keep_failed {
            if let Some(w) = work_dir.filter(|w| w.exists()) {
                let kept = self.state_dir.join("failed").join(&id);
                let moved = std::fs::create_dir_all(self.state_dir.join("failed"))
                    .and_then(|_| std::fs::rename(&w, &kept));
                if moved.is_ok() {
                    events(BuildEvent::KeptBuildDir(kept.display().to_string()));
                }
            }
        }
        let cleaned = fsutil::remove_tree(&dir);
        match (result, cleaned) {
            (Ok(r), Ok(())) => Ok(r),
            (Ok(_), Err(e)) => Err(BuildError::Sandbox(format!(
                "removing bundle {}: {e}",
                dir.display()
            ))),
            (Err(e), _) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_reads_and_lose_carriage_returns() {
        let mut s = LineSplitter::default();
        let mut got: Vec<Vec<u8>> = Vec::new();
        s.feed(b"one\r\ntw", &mut |l| got.push(l.to_vec()));
        s.feed(b"o\r\n\r\nthree", &mut |l| got.push(l.to_vec()));
        s.finish(&mut |l| got.push(l.to_vec()));
        assert_eq!(got, [&b"one"[..], b"two", b"", b"three"]);
    }

    #[test]
    fn set_phase_lines_become_phases() {
        let mut got = Vec::new();
        emit_line(
            br#"@nix {"action":"setPhase","phase":"buildPhase"}"#,
            &mut |e| got.push(e),
        );
        emit_line(b"plain", &mut |e| got.push(e));
        assert_eq!(
            got,
            [
                BuildEvent::Phase("buildPhase".into()),
                BuildEvent::Log(b"plain".to_vec())
            ]
        );
    }

    #[test]
    fn ids_are_unique() {
        assert_ne!(unique_id(), unique_id());
    }
}
