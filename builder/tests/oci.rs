//! The OCI backend, for real: builds run by runc (as root) with a static busybox as the
//! only input, checked from inside (the sandbox must be Nix 2.8's) and from outside
//! (outputs, references, limits, escape attempts).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tvix_build::{
    BuildError, BuildEvent, BuildRequest, BuildResult, BuildService, CancelToken, Constraints,
    SandboxFile, ScratchDir, ServiceOptions,
};
use tvix_store::castore::Node;
use tvix_store::StoreService;

const BUSYBOX_SRC: &str = "/var/lib/tvix-tests/busybox";
const BB: &str = "/nix/store/0c0vk5c9b3m6d6yfn5xqmhfg1l7nwq2d-busybox";
const BB_HASH: &str = "0c0vk5c9b3m6d6yfn5xqmhfg1l7nwq2d";
const OUT: &str = "/nix/store/1i0a2b3c4d5f6g7h8i9j0k1l2m3n4p5q-out";
const OUT_HASH: &str = "1i0a2b3c4d5f6g7h8i9j0k1l2m3n4p5q";
const PASSWD: &str = "root:x:0:0:Nix build user:/build:/noshell\nnixbld:x:1000:100:Nix build user:/build:/noshell\nnobody:x:65534:65534:Nobody:/:/noshell\n";
const GROUP: &str = "root:x:0:\nnixbld:!:100:\nnogroup:x:65534:\n";
const HOSTS: &str = "127.0.0.1 localhost\n::1 localhost\n";

struct Fixture {
    store: Arc<dyn StoreService>,
    service: Box<dyn BuildService>,
    busybox: Node,
    state: tempfile::TempDir,
}

fn fixture_with(options: ServiceOptions) -> Fixture {
    assert!(
        Path::new("/usr/sbin/runc").exists(),
        "these tests need Debian's runc at /usr/sbin/runc"
    );
    // SAFETY: geteuid cannot fail.
    assert_eq!(
        unsafe { libc_geteuid() },
        0,
        "these tests run runc and must run as root"
    );
    assert!(
        Path::new(BUSYBOX_SRC).join("bin/busybox").exists(),
        "missing the static busybox at {BUSYBOX_SRC}"
    );
    let store: Arc<dyn StoreService> = Arc::from(tvix_store::open("memory://").unwrap());
    let (busybox, _, _) =
        tvix_store::castore::nar::ingest_path(&*store, Path::new(BUSYBOX_SRC)).unwrap();
    let state = tempfile::Builder::new()
        .prefix("tvix-build-test-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let url = format!("oci://{}", state.path().display());
    let service = tvix_build::open(&url, store.clone(), &options).unwrap();
    Fixture {
        store,
        service,
        busybox,
        state,
    }
}

fn fixture() -> Fixture {
    fixture_with(ServiceOptions::default())
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// A request as the coordinator makes one: `sh -c SCRIPT` with busybox as the input.
fn request(f: &Fixture, script: &str) -> BuildRequest {
    BuildRequest {
        program: format!("{BB}/bin/sh"),
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env: vec![
            ("PATH".into(), format!("{BB}/bin")),
            ("HOME".into(), "/homeless-shelter".into()),
            ("NIX_STORE".into(), "/nix/store".into()),
            ("NIX_BUILD_CORES".into(), "1".into()),
            ("out".into(), OUT.into()),
            ("NIX_BUILD_TOP".into(), "/build".into()),
            ("TMPDIR".into(), "/build".into()),
            ("PWD".into(), "/build".into()),
            ("TERM".into(), "xterm-256color".into()),
        ],
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
        inputs: vec![(BB.into(), f.busybox.clone())],
        outputs: vec![OUT.into()],
        network: false,
        host_files: vec![],
        files: vec![
            file("/etc/passwd", PASSWD),
            file("/etc/group", GROUP),
            file("/etc/hosts", HOSTS),
        ],
        needles: vec![BB_HASH.into(), OUT_HASH.into()],
        constraints: Constraints {
            system: "x86_64-linux".into(),
            timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        },
        keep_failed: false,
    }
}

fn file(path: &str, contents: &str) -> SandboxFile {
    SandboxFile {
        path: path.into(),
        contents: contents.as_bytes().to_vec(),
        mode: 0o444,
    }
}

struct Ran {
    result: Result<BuildResult, BuildError>,
    events: Vec<BuildEvent>,
}

impl Ran {
    fn log(&self) -> String {
        let mut s = String::new();
        for e in &self.events {
            if let BuildEvent::Log(l) = e {
                s.push_str(&String::from_utf8_lossy(l));
                s.push('\n');
            }
        }
        s
    }

    /// The log, failing the test with it when the build failed.
    fn ok_log(&self) -> String {
        if let Err(e) = &self.result {
            panic!("build failed: {e}\n--- log ---\n{}", self.log());
        }
        self.log()
    }
}

fn build(f: &Fixture, req: &BuildRequest) -> Ran {
    build_cancel(f, req, &CancelToken::new())
}

fn build_cancel(f: &Fixture, req: &BuildRequest, cancel: &CancelToken) -> Ran {
    let mut events = Vec::new();
    let result = f.service.build(req, &mut |e| events.push(e), cancel);
    Ran { result, events }
}

/// Runs `script` (which must create $out) and returns its log.
fn inside(f: &Fixture, script: &str) -> String {
    let r = build(f, &request(f, &format!("{script}\ntouch $out")));
    r.ok_log()
}

#[test]
fn outputs_are_ingested_with_references() {
    let f = fixture();
    let script = format!(
        "mkdir -p $out/bin $out/sub
         echo hello > $out/greeting
         echo {BB}/bin/sh > $out/bin/uses-busybox
         chmod +x $out/bin/uses-busybox
         ln -s {OUT}/greeting $out/self-link
         touch $out/sub/{BB_HASH}"
    );
    let ran = build(&f, &request(&f, &script));
    ran.ok_log();
    assert!(matches!(ran.events[0], BuildEvent::Started { ref machine } if machine == "localhost"));
    let out = &ran.result.as_ref().unwrap().outputs[0];
    assert_eq!(out.path, OUT);
    let expected: BTreeSet<String> = [BB_HASH, OUT_HASH].iter().map(|s| s.to_string()).collect();
    assert_eq!(out.references, expected);

    // The NAR rendered from the store equals what Nix would dump of the same tree.
    let nar = tvix_store::castore::nar::write_nar(&*f.store, &out.node, Vec::new()).unwrap();
    assert_eq!(nar.len() as u64, out.nar_size);
    let want = tvix_store::hash::NixHash::sha256(&nar);
    assert_eq!(want.digest(), &out.nar_sha256[..]);
    let copy = tempfile::tempdir().unwrap();
    let dest = copy.path().join("out");
    std::fs::create_dir(&dest).unwrap();
    std::fs::create_dir_all(dest.join("bin")).unwrap();
    std::fs::create_dir_all(dest.join("sub")).unwrap();
    std::fs::write(dest.join("greeting"), "hello\n").unwrap();
    std::fs::write(dest.join("bin/uses-busybox"), format!("{BB}/bin/sh\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dest.join("bin/uses-busybox"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink(format!("{OUT}/greeting"), dest.join("self-link")).unwrap();
    std::fs::write(dest.join("sub").join(BB_HASH), "").unwrap();
    let dumped = tvix_store::nar::dump_path(&dest, Vec::new()).unwrap();
    assert!(dumped == nar, "NAR differs from a dump of the same tree");

    // Nothing is left behind in the state directory but the input cache.
    let builds = f.state.path().join("builds");
    let left: Vec<_> = std::fs::read_dir(&builds)
        .map(|d| d.count())
        .into_iter()
        .collect();
    assert!(left.iter().all(|&n| n == 0), "bundles left behind");
}

#[test]
fn a_reference_only_in_a_symlink_target_or_file_name_is_found() {
    let f = fixture();
    for script in [
        format!("mkdir $out; ln -s {BB}/bin/sh $out/l"),
        format!("mkdir $out; touch $out/x-{BB_HASH}-y"),
        "echo nothing > $out".to_string(),
    ] {
        let ran = build(&f, &request(&f, &script));
        ran.ok_log();
        let refs = &ran.result.unwrap().outputs[0].references;
        if script.contains("nothing") {
            assert!(refs.is_empty(), "{refs:?}");
        } else {
            assert!(refs.contains(BB_HASH), "{script}: {refs:?}");
        }
    }
}

/// The lines printed between `echo "== NAME"` and the next marker.
fn section<'a>(log: &'a str, name: &str) -> Vec<&'a str> {
    let mut lines = log.lines().skip_while(|l| *l != format!("== {name}"));
    lines
        .next()
        .unwrap_or_else(|| panic!("no section {name} in:\n{log}"));
    lines.take_while(|l| !l.starts_with("== ")).collect()
}

#[test]
fn the_sandbox_is_nix_s() {
    let f = fixture();
    let log = inside(
        &f,
        r#"
echo "== root"; ls -a1 /
echo "== modes"; stat -c '%n %a %U %G' / /build /tmp /nix /nix/store /dev/shm /dev/pts/ptmx
echo "== id"; id
echo "== hostname"; hostname
echo "== status"; grep -E '^(Groups|NoNewPrivs|Seccomp|CapEff):' /proc/self/status
echo "== personality"; cat /proc/self/personality
echo "== maps"; cat /proc/self/uid_map /proc/self/gid_map | tr -s ' '
echo "== dev"; ls -a1 /dev
echo "== links"; for l in fd stdin stdout stderr ptmx; do echo "$l $(readlink /dev/$l)"; done
echo "== etc"; ls -1 /etc
echo "== store"; ls -1 /nix/store
echo "== ip"; ip -o addr | awk '{print $2, $4}'
echo "== tty"; [ -t 1 ] && echo out; [ -t 2 ] && echo err; readlink /proc/self/fd/0
echo "== pty"; (exec 3<>/dev/ptmx && ls -1 /dev/pts)
echo "== misc"; umask; ulimit -c; echo "$0"; pwd
echo "== suid"; touch /tmp/x; chmod 4755 /tmp/x 2>&1; chmod 2755 /tmp/x 2>&1; chmod 755 /tmp/x && echo plain chmod ok; stat -c %a /tmp/x
echo "== end"
"#,
    );
    assert_eq!(
        section(&log, "root"),
        [".", "..", "build", "dev", "etc", "nix", "proc", "tmp"]
    );
    assert_eq!(
        section(&log, "modes"),
        [
            "/ 755 nixbld nixbld",
            "/build 700 nixbld nixbld",
            "/tmp 1777 nixbld nixbld",
            "/nix 755 nixbld nixbld",
            "/nix/store 1775 nixbld nixbld",
            "/dev/shm 1777 nixbld nixbld",
            "/dev/pts/ptmx 666 root root",
        ]
    );
    assert_eq!(section(&log, "id"), ["uid=1000(nixbld) gid=100(nixbld)"]);
    assert_eq!(section(&log, "hostname"), ["localhost"]);
    let status: Vec<String> = section(&log, "status")
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        status,
        [
            "Groups:",
            "CapEff: 0000000000000000",
            "NoNewPrivs: 1",
            "Seccomp: 2"
        ]
    );
    assert_eq!(section(&log, "personality"), ["00040000"]);
    // Nix maps only the build user (`1000 0 1`, `100 0 1` as root); runc also needs
    // container root mapped, to an unused host id that no build process runs as.
    let maps = section(&log, "maps");
    assert_eq!(maps.len(), 4, "{maps:?}");
    assert!(
        maps.contains(&" 1000 0 1") && maps.contains(&" 100 0 1"),
        "{maps:?}"
    );
    let root_maps: Vec<&&str> = maps.iter().filter(|m| m.starts_with(" 0 ")).collect();
    assert_eq!(root_maps.len(), 2, "{maps:?}");
    assert!(
        root_maps.iter().all(|m| !m.starts_with(" 0 0 ")),
        "{maps:?}"
    );
    let mut dev = vec![
        ".", "..", "fd", "full", "kvm", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
        "stdout", "tty", "urandom", "zero",
    ];
    if !Path::new("/dev/kvm").exists() {
        dev.retain(|d| *d != "kvm");
    }
    assert_eq!(section(&log, "dev"), dev);
    assert_eq!(
        section(&log, "links"),
        [
            "fd /proc/self/fd",
            "stdin /proc/self/fd/0",
            "stdout /proc/self/fd/1",
            "stderr /proc/self/fd/2",
            "ptmx /dev/pts/ptmx",
        ]
    );
    assert_eq!(section(&log, "etc"), ["group", "hosts", "passwd"]);
    assert_eq!(section(&log, "store"), [&BB[11..]]);
    assert_eq!(section(&log, "ip"), ["lo 127.0.0.1/8", "lo ::1/128"]);
    assert_eq!(section(&log, "tty"), ["out", "err", "/dev/null"]);
    assert_eq!(section(&log, "pty"), ["0", "ptmx"]);
    assert_eq!(section(&log, "misc"), ["0022", "0", "sh", "/build"]);
    assert_eq!(
        section(&log, "suid"),
        [
            "chmod: /tmp/x: Operation not permitted",
            "chmod: /tmp/x: Operation not permitted",
            "plain chmod ok",
            "755",
        ]
    );
}

/// The pids of host processes whose command line contains `needle`.
fn processes_with(needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            if cmd.windows(needle.len()).any(|w| w == needle) {
                found.push(name);
            }
        }
    }
    found
}

#[test]
fn escapes_fail() {
    let f = fixture();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let secret = format!("{}", 100_000 + std::process::id());
    let script = format!(
        r#"
try() {{ if "$@" 2>/dev/null; then echo "ESCAPED: $*"; else echo "refused: $*"; fi; }}
try cat /etc/shadow
try ls /work
try ls /var/lib/tvix-tests
try ls /root
try touch /x
try mkdir /y
try touch /etc/x
try rm -f /etc/passwd
try touch {BB}/x
try rm -f {BB}/bin/sh
try mv {BB} /nix/store/moved
try mount -t tmpfs none /build
try chown 0 /build
try sh -c 'echo hi | nc -w 2 127.0.0.1 {port}'
try sh -c 'echo 1 > /proc/sys/kernel/domainname'
{BB}/bin/busybox sleep {secret} &
echo started
"#
    );
    let ran = build(&f, &request(&f, &format!("{script}\ntouch $out")));
    let log = ran.ok_log();
    assert!(!log.contains("ESCAPED"), "{log}");
    assert_eq!(log.matches("refused:").count(), 15, "{log}");
    assert!(
        listener.accept().is_err(),
        "the sandbox reached a listener on the host's loopback"
    );
    let needle = format!("sleep\0{secret}");
    let left = processes_with(needle.as_bytes());
    assert!(
        left.is_empty(),
        "a build process survived the build: {left:?}"
    );
}

#[test]
fn a_network_build_shares_the_host_network() {
    let f = fixture();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut req = request(
        &f,
        &format!("echo hi | nc -w 5 127.0.0.1 {port}; touch $out"),
    );
    req.network = true;
    req.host_files = vec!["/etc/resolv.conf".into(), "/etc/services".into()];
    let accepting = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = String::new();
        use std::io::Read;
        s.read_to_string(&mut got).unwrap();
        got
    });
    build(&f, &req).ok_log();
    assert_eq!(accepting.join().unwrap(), "hi\n");
}

#[test]
fn failures_are_reported() {
    let f = fixture();
    let err = |script: &str| {
        let ran = build(&f, &request(&f, script));
        ran.result
            .err()
            .unwrap_or_else(|| panic!("{script} succeeded"))
    };
    assert!(matches!(err("exit 3"), BuildError::ExitCode(3)));
    // The program is the PID namespace's init, which signals from inside cannot kill;
    // a fault can (a stack overflow here).
    assert!(matches!(
        err("ulimit -s 64; f() { f; }; f"),
        BuildError::Signal(11)
    ));
    assert!(matches!(
        err("sh -c 'kill -9 $$'; exit $?"),
        BuildError::ExitCode(137)
    ));
    assert!(matches!(err("true"), BuildError::MissingOutput(p) if p == OUT));
    assert!(matches!(
        err("mkdir $out; chmod 777 $out"),
        BuildError::BadOutput { .. }
    ));
    assert!(matches!(
        err("mkdir $out; mkfifo $out/fifo"),
        BuildError::BadOutput { .. }
    ));
    let missing = format!("{BB}/bin/nonexistent");
    let mut req = request(&f, "");
    req.program = missing;
    let ran = build(&f, &req);
    assert!(
        matches!(ran.result, Err(BuildError::ExitCode(1))),
        "{:?}",
        ran.result.err()
    );
    assert!(
        ran.log().contains("cannot execute the builder"),
        "{}",
        ran.log()
    );
}

#[test]
fn limits_and_cancellation_stop_every_process() {
    let f = fixture();
    let secret = format!("{}", 200_000 + std::process::id());
    let script =
        format!("{BB}/bin/busybox sleep {secret} & echo waiting; {BB}/bin/busybox sleep 100");

    let mut req = request(&f, &script);
    req.constraints.timeout = Some(Duration::from_secs(1));
    let t = Instant::now();
    let ran = build(&f, &req);
    assert!(
        matches!(ran.result, Err(BuildError::TimedOut(1))),
        "{:?}",
        ran.result.err()
    );
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t.elapsed()
    );
    assert!(ran.log().contains("waiting"));

    let mut req = request(&f, &script);
    req.constraints.max_silent_time = Some(Duration::from_secs(1));
    let ran = build(&f, &req);
    assert!(
        matches!(ran.result, Err(BuildError::Silent(1))),
        "{:?}",
        ran.result.err()
    );

    let cancel = CancelToken::new();
    let c = cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        c.cancel();
    });
    let t = Instant::now();
    let ran = build_cancel(&f, &request(&f, &script), &cancel);
    canceller.join().unwrap();
    assert!(
        matches!(ran.result, Err(BuildError::Cancelled)),
        "{:?}",
        ran.result.err()
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );

    let left = processes_with(format!("sleep\0{secret}").as_bytes());
    assert!(left.is_empty(), "build processes survived: {left:?}");
    assert_eq!(bundles_left(&f), 0);
}

fn bundles_left(f: &Fixture) -> usize {
    std::fs::read_dir(f.state.path().join("builds"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn keep_failed_keeps_the_build_directory() {
    let f = fixture();
    let mut req = request(
        &f,
        "echo kept > marker; mkdir -p $out/ro; chmod 555 $out/ro; exit 1",
    );
    req.keep_failed = true;
    let ran = build(&f, &req);
    assert!(matches!(ran.result, Err(BuildError::ExitCode(1))));
    let kept = ran
        .events
        .iter()
        .find_map(|e| match e {
            BuildEvent::KeptBuildDir(p) => Some(p.clone()),
            _ => None,
        })
        .expect("no KeptBuildDir event");
    assert_eq!(
        std::fs::read_to_string(Path::new(&kept).join("marker")).unwrap(),
        "kept\n"
    );
    assert_eq!(bundles_left(&f), 0);

    // Without keep_failed nothing is kept, read-only output directories included.
    let ran = build(
        &f,
        &request(&f, "mkdir -p $out/ro; chmod 555 $out/ro $out; exit 1"),
    );
    assert!(!ran
        .events
        .iter()
        .any(|e| matches!(e, BuildEvent::KeptBuildDir(_))));
    assert_eq!(bundles_left(&f), 0);
    let ran = build(&f, &request(&f, "mkdir -p $out/ro; chmod 555 $out/ro $out"));
    ran.ok_log();
    assert_eq!(bundles_left(&f), 0);
}

#[test]
fn log_lines_and_phases() {
    let f = fixture();
    let ran = build(
        &f,
        &request(
            &f,
            r#"echo one; echo '@nix {"action":"setPhase","phase":"buildPhase"}'; echo two >&2; touch $out; printf last"#,
        ),
    );
    ran.ok_log();
    let events: Vec<BuildEvent> = ran.events[1..].to_vec();
    assert_eq!(
        events,
        [
            BuildEvent::Log(b"one".to_vec()),
            BuildEvent::Phase("buildPhase".into()),
            BuildEvent::Log(b"two".to_vec()),
            BuildEvent::Log(b"last".to_vec()),
        ]
    );
}

#[test]
fn requests_the_machine_cannot_build_are_refused() {
    let f = fixture();
    let caps = f.service.capabilities().unwrap();
    assert!(caps.systems.contains(&"x86_64-linux".to_string()));
    assert!(caps.systems.contains(&"i686-linux".to_string()));
    assert!(caps.features.contains("big-parallel"));
    let mut req = request(&f, "touch $out");
    req.constraints.system = "aarch64-darwin".into();
    assert!(matches!(
        build(&f, &req).result,
        Err(BuildError::Unsupported(_))
    ));
    let mut req = request(&f, "touch $out");
    req.constraints.required_features.insert("gpu".into());
    assert!(matches!(
        build(&f, &req).result,
        Err(BuildError::Unsupported(_))
    ));
    let mut req = request(&f, "touch $out");
    req.program = "relative".into();
    assert!(matches!(
        build(&f, &req).result,
        Err(BuildError::InvalidRequest(_))
    ));
}

#[test]
fn an_i686_build_sees_a_32_bit_machine() {
    let f = fixture();
    let mut req = request(&f, "uname -m; cat /proc/self/personality; touch $out");
    req.constraints.system = "i686-linux".into();
    let ran = build(&f, &req);
    assert!(
        ran.ok_log().starts_with("i686\n00040008\n"),
        "{}",
        ran.log()
    );
    let ran = build(&f, &request(&f, "uname -m; touch $out"));
    assert_eq!(ran.ok_log(), "x86_64\n");
}

#[test]
fn sandbox_paths_are_bound_read_only() {
    let f = fixture_with(ServiceOptions {
        sandbox_paths: vec![
            format!("/bin/sh={BUSYBOX_SRC}/bin/busybox"),
            "/nonexistent/path?".into(),
        ],
        ..Default::default()
    });
    let log = inside(
        &f,
        "/bin/sh -c 'echo from bin sh'; touch /bin/sh 2>/dev/null || echo refused; ls /nonexistent 2>/dev/null || echo absent",
    );
    assert!(log.contains("from bin sh\nrefused\nabsent\n"), "{log}");
}

#[test]
fn request_files_land_where_they_are_named() {
    let f = fixture();
    let mut req = request(
        &f,
        "cat /build/.attr-x /etc/extra/conf; stat -c '%a %U' /build/.attr-x; touch $out",
    );
    req.files.push(SandboxFile {
        path: "/build/.attr-x".into(),
        contents: b"passed as file\n".to_vec(),
        mode: 0o444,
    });
    req.files.push(file("/etc/extra/conf", "nested\n"));
    let log = build(&f, &req).ok_log();
    assert_eq!(log, "passed as file\nnested\n444 nixbld\n");
}

#[test]
fn stale_builds_of_dead_processes_are_removed() {
    let f = fixture();
    // A bundle left by a process that no longer exists (pid_max is below 2^22).
    let stale = f.state.path().join("builds/tvix-4194305-1-0");
    std::fs::create_dir_all(stale.join("rootfs/ro")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        stale.join("rootfs/ro"),
        std::fs::Permissions::from_mode(0o555),
    )
    .unwrap();
    let url = format!("oci://{}", f.state.path().display());
    let _again = tvix_build::open(&url, f.store.clone(), &ServiceOptions::default()).unwrap();
    assert!(!stale.exists());
}
