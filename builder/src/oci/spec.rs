//! The OCI runtime configuration (`config.json`) of a build: a pure function of the request
//! and of where the bundle put things on the host.
//!
//! The sandbox it describes is Nix 2.8's (see `notes/nix-sandbox.md`), with two things made
//! stricter: the root file system and the inputs are read-only.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Arch, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder, LinuxIdMappingBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, LinuxSeccompAction,
    LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall,
    LinuxSyscallBuilder, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use thiserror::Error;

use crate::BuildRequest;

/// The build user inside the sandbox (Nix's `nixbld`).
pub const BUILD_UID: u32 = 1000;
/// The build group inside the sandbox.
pub const BUILD_GID: u32 = 100;

/// Where the bundle placed the parts of the sandbox on the host, and who owns them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The root file system (holds `/etc` files, the parents of mount points).
    pub rootfs: PathBuf,
    /// The prepared `/dev` directory (symlinks and mount points, mounted read-only).
    pub dev: PathBuf,
    /// Host device nodes bound into `/dev` (e.g. `/dev/null`, `/dev/kvm`), by host path;
    /// each appears under the same path in the sandbox.
    pub devices: Vec<PathBuf>,
    /// The host directory behind the store directory (writable by the build).
    pub store: PathBuf,
    /// Each scratch directory: its sandbox path and the host directory behind it.
    pub scratch: Vec<(String, PathBuf)>,
    /// Inputs bound read-only: sandbox path and host source. (Symlink inputs are created in
    /// the store directory instead: a bind mount would follow them.)
    pub inputs: Vec<(String, PathBuf)>,
    /// Extra read-only binds (`sandbox-paths`): sandbox path and host source.
    pub extra: Vec<(String, PathBuf)>,
    /// The host uid and gid that the build user and group stand for (they own the outputs).
    pub host_uid: u32,
    /// See `host_uid`.
    pub host_gid: u32,
    /// The path runc executes instead of the program when the program runs through the
    /// exec shim (so `argv[0]` can differ from its path), see [`super::exec_shim`].
    pub exec_shim: Option<String>,
    /// An otherwise unused host id that container root (only runc's own setup runs as it)
    /// is mapped to, because runc requires a mapping for container id 0.
    pub unused_host_id: u32,
}

/// Why no configuration could be made.
#[derive(Debug, Error)]
pub enum SpecError {
    /// The `oci-spec` builders refused a value.
    #[error("OCI runtime spec: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
}

/// Mode bits a build may not set with `chmod` (Nix forbids setuid/setgid files).
const S_ISUID: u64 = 0o4000;
const S_ISGID: u64 = 0o2000;
/// `ENOTSUP`, what Nix's filter answers to extended attribute calls.
const ENOTSUP: u32 = libc::ENOTSUP as u32;
/// `EPERM`, what it answers to setuid/setgid `chmod`.
const EPERM: u32 = libc::EPERM as u32;

/// Builds the runtime configuration for `req` laid out as `layout`.
///
/// The caller has validated `req`.
pub fn runtime_spec(req: &BuildRequest, layout: &Layout) -> Result<Spec, SpecError> {
    let user = UserBuilder::default()
        .uid(BUILD_UID)
        .gid(BUILD_GID)
        .umask(0o022u32)
        .additional_gids(Vec::<u32>::new())
        .build()?;
    let no_caps = LinuxCapabilitiesBuilder::default()
        .bounding(HashSet::new())
        .effective(HashSet::new())
        .inheritable(HashSet::new())
        .permitted(HashSet::new())
        .ambient(HashSet::new())
        .build()?;
    // Nix turns core dumps off.
    let no_core = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitCore)
        .hard(0u64)
        .soft(0u64)
        .build()?;
    let process = ProcessBuilder::default()
        // runc hands its own stdio (our pseudo-terminal) through as it is.
        .terminal(false)
        .user(user)
        .args(process_args(req, layout.exec_shim.as_deref()))
        .env(
            req.env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        )
        .cwd(&req.working_dir)
        .capabilities(no_caps)
        .rlimits(vec![no_core])
        .no_new_privileges(true)
        .build()?;

    let mut namespaces = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::User,
    ];
    if !req.network {
        // A fresh network namespace: runc brings its loopback interface up.
        namespaces.push(LinuxNamespaceType::Network);
    }
    let namespaces = namespaces
        .into_iter()
        .map(|t| LinuxNamespaceBuilder::default().typ(t).build())
        .collect::<Result<Vec<_>, _>>()?;

    let map = |container: u32, host: u32| {
        LinuxIdMappingBuilder::default()
            .container_id(container)
            .host_id(host)
            .size(1u32)
            .build()
    };
    let uid_mappings = vec![
        map(0, layout.unused_host_id)?,
        map(BUILD_UID, layout.host_uid)?,
    ];
    let gid_mappings = vec![
        map(0, layout.unused_host_id)?,
        map(BUILD_GID, layout.host_gid)?,
    ];

    // The device cgroup allows everything: the build has no capability to make device
    // nodes, so it reaches only those bound into /dev (as in Nix, which uses no device
    // cgroup; runc's default list would refuse /dev/kvm).
    let all_devices = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .access("rwm")
        .build()?;
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![all_devices])
        .build()?;

    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .uid_mappings(uid_mappings)
        .gid_mappings(gid_mappings)
        .resources(resources)
        .seccomp(seccomp()?)
        // The build user stands for a host uid (root here): keep runc's defaults that hide
        // or freeze the kernel's global knobs in /proc (Nix does not; safer).
        .masked_paths(oci_spec::runtime::get_default_maskedpaths())
        .readonly_paths(oci_spec::runtime::get_default_readonly_paths())
        .build()?;

    let root = RootBuilder::default()
        .path(&layout.rootfs)
        .readonly(true)
        .build()?;

    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(root)
        .hostname("localhost")
        .process(process)
        .mounts(mounts(req, layout)?)
        .linux(linux)
        .build()?)
}

/// The argument vector runc executes: it runs `args[0]` and passes that same string as
/// `argv[0]`. Through the exec shim, that is `SHIM PROGRAM ARGV...`, and the program gets
/// the request's `argv[0]`; without it the program's path has to be `argv[0]`.
fn process_args(req: &BuildRequest, shim: Option<&str>) -> Vec<String> {
    let mut args = Vec::with_capacity(req.argv.len() + 1);
    match shim {
        Some(shim) => {
            args.push(shim.to_string());
            args.push(req.program.clone());
            args.extend(req.argv.iter().cloned());
        }
        None => {
            args.push(req.program.clone());
            args.extend(req.argv.iter().skip(1).cloned());
        }
    }
    args
}

fn mount(dest: &str, typ: &str, source: &Path, options: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()?)
}

/// The mounts, parents before children (runc mounts them in this order).
fn mounts(req: &BuildRequest, layout: &Layout) -> Result<Vec<Mount>, SpecError> {
    let mut m = vec![
        mount(
            "/proc",
            "proc",
            Path::new("proc"),
            &["nosuid", "noexec", "nodev"],
        )?,
        // A bind mount at /dev stops runc from making its own /dev (which would hold
        // `core` and `console` and point `ptmx` elsewhere than Nix does).
        mount(
            "/dev",
            "bind",
            &layout.dev,
            &["bind", "ro", "nosuid", "noexec"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            Path::new("devpts"),
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            Path::new("shm"),
            &[
                "nosuid",
                "nodev",
                "mode=1777",
                "size=50%",
                &format!("uid={BUILD_UID}"),
                &format!("gid={BUILD_GID}"),
            ],
        )?,
    ];
    for dev in &layout.devices {
        let dest = dev.to_string_lossy();
        m.push(mount(&dest, "bind", dev, &["bind", "nosuid", "noexec"])?);
    }
    for (dest, src) in &layout.scratch {
        m.push(mount(dest, "bind", src, &["bind", "nosuid", "nodev"])?);
    }
    m.push(mount(
        &req.store_dir,
        "bind",
        &layout.store,
        &["bind", "nosuid", "nodev"],
    )?);
    for (dest, src) in layout.inputs.iter().chain(&layout.extra) {
        m.push(mount(
            dest,
            "bind",
            src,
            &["rbind", "ro", "nosuid", "nodev"],
        )?);
    }
    Ok(m)
}

/// Nix's system call filter: no setuid/setgid bits, no extended attributes; everything
/// else allowed. The 32-bit ABIs are filtered too, so a 32-bit program cannot go around it.
fn seccomp() -> Result<oci_spec::runtime::LinuxSeccomp, SpecError> {
    let mut syscalls: Vec<LinuxSyscall> = Vec::new();
    // (syscall, index of its mode argument)
    let chmods = [
        ("chmod", 1),
        ("fchmod", 1),
        ("fchmodat", 2),
        ("fchmodat2", 2),
    ];
    for (name, index) in chmods {
        for bit in [S_ISUID, S_ISGID] {
            let arg = LinuxSeccompArgBuilder::default()
                .index(index as usize)
                .value(bit)
                .value_two(bit)
                .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                .build()?;
            syscalls.push(
                LinuxSyscallBuilder::default()
                    .names(vec![name.to_string()])
                    .action(LinuxSeccompAction::ScmpActErrno)
                    .errno_ret(EPERM)
                    .args(vec![arg])
                    .build()?,
            );
        }
    }
    let xattrs = [
        "setxattr",
        "lsetxattr",
        "fsetxattr",
        "removexattr",
        "lremovexattr",
        "fremovexattr",
    ];
    syscalls.push(
        LinuxSyscallBuilder::default()
            .names(xattrs.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(ENOTSUP)
            .build()?,
    );
    Ok(LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(native_arches())
        .syscalls(syscalls)
        .build()?)
}

/// The ABIs a program on this machine can use.
fn native_arches() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchNative]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Constraints, ScratchDir};
    use serde_json::Value;

    fn request(network: bool) -> BuildRequest {
        BuildRequest {
            program: "/nix/store/aaaa-busybox/bin/sh".into(),
            argv: vec!["sh".into(), "-c".into(), "echo hi".into()],
            env: vec![("PATH".into(), "/path-not-set".into())],
            working_dir: "/build".into(),
            scratch_dirs: vec![ScratchDir {
                path: "/build".into(),
                mode: 0o700,
            }],
            store_dir: "/nix/store".into(),
            inputs: vec![],
            outputs: vec!["/nix/store/bbbb-out".into()],
            network,
            host_files: vec![],
            files: vec![],
            needles: vec![],
            constraints: Constraints {
                system: "x86_64-linux".into(),
                ..Default::default()
            },
            keep_failed: false,
        }
    }

    fn layout() -> Layout {
        Layout {
            rootfs: "/s/rootfs".into(),
            dev: "/s/dev".into(),
            devices: vec!["/dev/null".into(), "/dev/kvm".into()],
            store: "/s/store".into(),
            scratch: vec![("/build".into(), "/s/scratch/0".into())],
            inputs: vec![("/nix/store/aaaa-busybox".into(), "/c/aaaa".into())],
            extra: vec![("/bin/sh".into(), "/bin/busybox".into())],
            host_uid: 0,
            host_gid: 0,
            exec_shim: Some("/proc/self/fd/3".into()),
            unused_host_id: 4000,
        }
    }

    fn json(network: bool) -> Value {
        let spec = runtime_spec(&request(network), &layout()).unwrap();
        serde_json::to_value(&spec).unwrap()
    }

    #[test]
    fn process_runs_the_program_as_the_build_user_without_privileges() {
        let v = json(false);
        let p = &v["process"];
        assert_eq!(p["args"][0], "/proc/self/fd/3");
        assert_eq!(p["args"][1], "/nix/store/aaaa-busybox/bin/sh");
        assert_eq!(p["args"][2], "sh");
        assert_eq!(p["args"][3], "-c");
        let mut without = layout();
        without.exec_shim = None;
        let plain = runtime_spec(&request(false), &without).unwrap();
        let args = plain.process().as_ref().unwrap().args().clone().unwrap();
        assert_eq!(args, ["/nix/store/aaaa-busybox/bin/sh", "-c", "echo hi"]);
        assert_eq!(p["env"][0], "PATH=/path-not-set");
        assert_eq!(p["cwd"], "/build");
        assert_eq!(p["user"]["uid"], 1000);
        assert_eq!(p["user"]["gid"], 100);
        assert_eq!(p["user"]["umask"], 0o022);
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(p["terminal"], false);
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            assert_eq!(p["capabilities"][set], serde_json::json!([]), "{set}");
        }
        assert_eq!(p["rlimits"][0]["type"], "RLIMIT_CORE");
        assert_eq!(p["rlimits"][0]["hard"], 0);
        assert_eq!(v["hostname"], "localhost");
        assert_eq!(v["root"]["readonly"], true);
    }

    #[test]
    fn namespaces_and_mappings() {
        let types = |v: &Value| -> Vec<String> {
            v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["type"].as_str().unwrap().to_string())
                .collect()
        };
        let v = json(false);
        assert_eq!(types(&v), ["pid", "ipc", "uts", "mount", "user", "network"]);
        assert_eq!(types(&json(true)), ["pid", "ipc", "uts", "mount", "user"]);
        let uid = &v["linux"]["uidMappings"];
        assert_eq!(uid[0]["containerID"], 0);
        assert_eq!(uid[0]["hostID"], 4000);
        assert_eq!(uid[1]["containerID"], 1000);
        assert_eq!(uid[1]["hostID"], 0);
        assert_eq!(uid[1]["size"], 1);
        assert_eq!(v["linux"]["gidMappings"][1]["containerID"], 100);
    }

    #[test]
    fn mounts_are_ordered_and_inputs_read_only() {
        let v = json(false);
        let mounts = v["mounts"].as_array().unwrap();
        let dests: Vec<&str> = mounts
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/null",
                "/dev/kvm",
                "/build",
                "/nix/store",
                "/nix/store/aaaa-busybox",
                "/bin/sh"
            ]
        );
        assert!(!dests.contains(&"/sys"));
        let opts = |i: usize| -> Vec<String> {
            serde_json::from_value(mounts[i]["options"].clone()).unwrap()
        };
        assert!(opts(1).contains(&"ro".to_string()), "/dev read-only");
        assert!(opts(8).contains(&"ro".to_string()), "input read-only");
        assert!(
            opts(9).contains(&"ro".to_string()),
            "sandbox path read-only"
        );
        assert!(!opts(7).contains(&"ro".to_string()), "store writable");
        assert!(opts(2).contains(&"ptmxmode=0666".to_string()));
        assert_eq!(mounts[8]["source"], "/c/aaaa");
    }

    #[test]
    fn seccomp_refuses_setuid_and_xattrs() {
        let v = json(false);
        let s = &v["linux"]["seccomp"];
        assert_eq!(s["defaultAction"], "SCMP_ACT_ALLOW");
        let rules = s["syscalls"].as_array().unwrap();
        let chmod: Vec<&Value> = rules
            .iter()
            .filter(|r| r["names"][0] == "fchmodat")
            .collect();
        assert_eq!(chmod.len(), 2);
        assert_eq!(chmod[0]["args"][0]["index"], 2);
        assert_eq!(chmod[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(chmod[0]["args"][0]["value"], 0o4000);
        assert_eq!(chmod[1]["args"][0]["valueTwo"], 0o2000);
        assert_eq!(chmod[0]["errnoRet"], libc::EPERM);
        let xattr = rules.iter().find(|r| r["names"][0] == "setxattr").unwrap();
        assert_eq!(xattr["errnoRet"], libc::ENOTSUP);
    }
}
