//! The OCI backend, for real: builds run by runc (as root) with a static busybox as the
//! only input, checked from inside (the sandbox must be Nix 2.8's) and from outside
//! (outputs, references, limits, escape attempts).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
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

#[test]
fn zz_show_inside() {
    let f = fixture();
    let log = inside(
        &f,
        "ls -la /; ls -la /dev /nix/store /etc; stat -c %a:%U /dev/shm; ls -ld /dev/shm/; id; hostname; cat /proc/self/status | grep -E 'NoNewPrivs|Seccomp|CapEff|Groups'; cat /proc/self/personality; ip addr; [ -t 1 ] && echo tty1; [ -t 2 ] && echo tty2; [ -t 0 ] || echo notty0; ls -l /proc/self/fd/0; umask; ulimit -c; touch /tmp/x; chmod 4755 /tmp/x; chmod 2755 /tmp/x; chmod 755 /tmp/x && echo chmod-ok; mount | head -30; echo $0; cat /proc/self/cmdline | tr '\\0' ' '",
    );
    println!("{log}");
}
