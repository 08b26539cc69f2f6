//! The builder protocol end to end, in one process: a [`Server`] on a unix socket and on
//! TCP serves [`TestBuilder`], a build service that does real work in a shared memory
//! store (reads its inputs' blobs, writes its outputs' blobs and directories, computes
//! their NAR hashes and references), logs, and fails in every way on demand; clients
//! reach it through `tvix_build::open` and through the raw generated stubs.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tvix_build::grpc::{proto, ListenAddr, Server, MAX_LOG_PIECE};
use tvix_build::{
    BuildError, BuildEvent, BuildOutput, BuildRequest, BuildResult, BuildService, CancelToken,
    Capabilities, Constraints, InvalidRequest, SandboxFile, ScratchDir, ServiceOptions,
};
use tvix_store::castore::{nar::write_nar, Directory, Node, StoreError, StoreService};
use tvix_store::NixHash;

const OUT: &str = "/nix/store/vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv-test";
const DEV: &str = "/nix/store/wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww-test-dev";
const INPUT: &str = "/nix/store/iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii-input";

/// What the server's side of the test saw.
#[derive(Default)]
struct Seen {
    /// Builds that reached the service.
    builds: AtomicUsize,
    /// A `hang` build is running.
    hanging: AtomicBool,
    /// A `hang` build saw its token cancelled.
    cancelled: AtomicBool,
}

/// A build service that behaves as the request's `mode` variable says.
struct TestBuilder {
    store: Arc<dyn StoreService>,
    seen: Arc<Seen>,
}

impl TestBuilder {
    /// Writes the outputs: `out` a file holding its path, the inputs' contents and the
    /// sandbox files; `dev` a directory with a file naming `out` and a symlink.
    fn make_outputs(&self, req: &BuildRequest) -> Result<BuildResult, BuildError> {
        let mut contents = Vec::new();
        for (path, node) in &req.inputs {
            if let Node::File { digest, .. } = node {
                let mut r = self
                    .store
                    .open_blob(digest)?
                    .ok_or(StoreError::BlobNotFound(*digest))?;
                contents.extend_from_slice(format!("{path}: ").as_bytes());
                std::io::copy(&mut r, &mut contents)?;
            }
        }
        for f in &req.files {
            contents.extend_from_slice(&f.contents);
        }
        let mut outputs = Vec::new();
        for out in &req.outputs {
            let node = if out.ends_with("-dev") {
                let text = format!("see {}\n", req.outputs[0]);
                let (digest, size) = self.store.put_blob_bytes(text.as_bytes())?;
                let mut dir = Directory::new();
                dir.add(
                    "README",
                    Node::File {
                        digest,
                        size,
                        executable: false,
                    },
                )?;
                dir.add(
                    "link",
                    Node::Symlink {
                        target: b"README".to_vec(),
                    },
                )?;
                self.store.put_directory(&dir)?;
                dir.node()
            } else {
                let mut data = format!("{out}\n").into_bytes();
                data.extend_from_slice(&contents);
                let (digest, size) = self.store.put_blob_bytes(&data)?;
                Node::File {
                    digest,
                    size,
                    executable: true,
                }
            };
            let nar = write_nar(&*self.store, &node, Vec::new())?;
            let references = req
                .needles
                .iter()
                .filter(|n| nar.windows(n.len()).any(|w| w == n.as_bytes()))
                .cloned()
                .collect();
            outputs.push(BuildOutput {
                path: out.clone(),
                node,
                nar_sha256: NixHash::sha256(&nar).digest().try_into().unwrap(),
                nar_size: nar.len() as u64,
                references,
            });
        }
        Ok(BuildResult { outputs })
    }
}

impl BuildService for TestBuilder {
    fn capabilities(&self) -> Result<Capabilities, BuildError> {
        Ok(Capabilities {
            systems: vec!["x86_64-linux".into(), "i686-linux".into()],
            features: ["big-parallel".to_string(), "kvm".to_string()].into(),
        })
    }

    fn build(
        &self,
        req: &BuildRequest,
        events: &mut dyn FnMut(BuildEvent),
        cancel: &CancelToken,
    ) -> Result<BuildResult, BuildError> {
        req.validate()?;
        self.seen.builds.fetch_add(1, Ordering::SeqCst);
        let mode = req
            .env
            .iter()
            .find(|(k, _)| k == "mode")
            .map(|(_, v)| v.as_str())
            .unwrap_or("ok");
        events(BuildEvent::Started {
            machine: "localhost".into(),
        });
        events(BuildEvent::Phase("buildPhase".into()));
        for line in ["compiling", "linking \u{1b}[1mbold\u{1b}[0m"] {
            events(BuildEvent::Log(line.as_bytes().to_vec()));
        }
        let (kind, arg) = mode.split_once(':').unwrap_or((mode, ""));
        let num = arg.parse::<u64>().unwrap_or(0);
        let failure = match kind {
            "ok" => return self.make_outputs(req),
            "exit" => BuildError::ExitCode(num as i32),
            "signal" => BuildError::Signal(num as i32),
            "timeout" => BuildError::TimedOut(num),
            "silent" => BuildError::Silent(num),
            "missing" => BuildError::MissingOutput(req.outputs[0].clone()),
            "bad" => BuildError::BadOutput {
                path: req.outputs[0].clone(),
                reason: "it is world-writable".into(),
            },
            "unsupported" => BuildError::Unsupported(format!(
                "a '{}' with features {:?} is required",
                req.constraints.system, req.constraints.required_features
            )),
            "sandbox" => BuildError::Sandbox("runc: cannot mount /proc".into()),
            "store" => BuildError::Store(StoreError::PathNotValid("gone".into())),
            "io" => BuildError::Io(std::io::Error::other("disk full")),
            "invalid" => BuildError::InvalidRequest(InvalidRequest("backend says no".into())),
            "hang" => {
                self.seen.hanging.store(true, Ordering::SeqCst);
                let deadline = Instant::now() + Duration::from_secs(30);
                while !cancel.is_cancelled() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if cancel.is_cancelled() {
                    self.seen.cancelled.store(true, Ordering::SeqCst);
                }
                BuildError::Cancelled
            }
            "panic" => panic!("the test builder was asked to panic"),
            "huge" => {
                let line: Vec<u8> = (0..MAX_LOG_PIECE * 3 + 12345)
                    .map(|i| b'a' + (i % 26) as u8)
                    .collect();
                events(BuildEvent::Log(line));
                events(BuildEvent::Log(b"after".to_vec()));
                return self.make_outputs(req);
            }
            other => BuildError::Sandbox(format!("unknown mode {other}")),
        };
        if req.keep_failed {
            events(BuildEvent::KeptBuildDir("/tmp/tvix-build-kept-1".into()));
        }
        Err(failure)
    }
}

struct Fixture {
    store: Arc<dyn StoreService>,
    seen: Arc<Seen>,
    unix: Server,
    tcp: Server,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let store: Arc<dyn StoreService> = tvix_store::open("memory://").unwrap().into();
    let seen = Arc::new(Seen::default());
    let service: Arc<dyn BuildService> = Arc::new(TestBuilder {
        store: store.clone(),
        seen: seen.clone(),
    });
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("builder.sock");
    let unix = Server::start(service.clone(), &ListenAddr::Unix(sock.clone())).unwrap();
    assert_eq!(unix.url(), format!("grpc+unix://{}", sock.display()));
    let tcp = Server::start(service, &ListenAddr::Tcp("127.0.0.1:0".into())).unwrap();
    assert!(tcp.url().starts_with("grpc+http://127.0.0.1:"));
    Fixture {
        store,
        seen,
        unix,
        tcp,
        _dir: dir,
    }
}

impl Fixture {
    fn client(&self, url: &str) -> Box<dyn BuildService> {
        tvix_build::open(url, self.store.clone(), &ServiceOptions::default()).unwrap()
    }

    fn urls(&self) -> [String; 2] {
        [self.unix.url().to_string(), self.tcp.url().to_string()]
    }

    /// A request with one file input (in the store) and two outputs.
    fn request(&self, mode: &str) -> BuildRequest {
        let (digest, size) = self.store.put_blob_bytes(b"input contents\n").unwrap();
        BuildRequest {
            program: format!("{INPUT}/bin/sh"),
            argv: vec!["sh".into(), "-c".into(), "build".into()],
            env: vec![
                ("out".into(), OUT.into()),
                ("dev".into(), DEV.into()),
                ("mode".into(), mode.into()),
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
            inputs: vec![(
                INPUT.into(),
                Node::File {
                    digest,
                    size,
                    executable: false,
                },
            )],
            outputs: vec![OUT.into(), DEV.into()],
            network: false,
            host_files: vec![],
            files: vec![SandboxFile {
                path: "/build/.attrs.sh".into(),
                contents: b"declare -x x=1\n".to_vec(),
                mode: 0o444,
            }],
            needles: vec![
                "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv".into(),
                "wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww".into(),
                "iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii".into(),
            ],
            constraints: Constraints {
                system: "x86_64-linux".into(),
                required_features: BTreeSet::new(),
                timeout: Some(Duration::from_secs(60)),
                max_silent_time: None,
            },
            keep_failed: false,
        }
    }
}

/// Runs a build and collects its events.
fn run(
    service: &dyn BuildService,
    req: &BuildRequest,
) -> (Vec<BuildEvent>, Result<BuildResult, BuildError>) {
    let mut events = Vec::new();
    let res = service.build(req, &mut |e| events.push(e), &CancelToken::new());
    (events, res)
}

#[test]
fn builds_round_trip_over_unix_and_tcp() {
    let f = fixture();
    let req = f.request("ok");
    // What the service produces when called directly: the remote result must be the same.
    let direct = TestBuilder {
        store: f.store.clone(),
        seen: Arc::new(Seen::default()),
    };
    let (_, expected) = run(&direct, &req);
    let expected = expected.unwrap();
    for url in f.urls() {
        let client = f.client(&url);
        let (events, res) = run(&*client, &req);
        let res = res.unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(res, expected, "{url}");
        assert_eq!(
            events,
            vec![
                BuildEvent::Started {
                    machine: url.clone()
                },
                BuildEvent::Phase("buildPhase".into()),
                BuildEvent::Log(b"compiling".to_vec()),
                BuildEvent::Log("linking \u{1b}[1mbold\u{1b}[0m".as_bytes().to_vec()),
            ],
            "{url}"
        );
    }
    // The outputs are in the shared store, made from the input's blob and the files.
    let out = &expected.outputs[0];
    let Node::File { digest, .. } = &out.node else {
        panic!("out is not a file: {:?}", out.node)
    };
    let mut data = Vec::new();
    std::io::copy(&mut f.store.open_blob(digest).unwrap().unwrap(), &mut data).unwrap();
    assert_eq!(
        String::from_utf8(data).unwrap(),
        format!("{OUT}\n{INPUT}: input contents\ndeclare -x x=1\n")
    );
    let refs: Vec<&str> = out.references.iter().map(String::as_str).collect();
    assert_eq!(
        refs,
        [
            "iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii",
            "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
        ]
    );
    let dev = &expected.outputs[1];
    assert!(matches!(dev.node, Node::Directory { size: 2, .. }));
    let refs: Vec<&str> = dev.references.iter().map(String::as_str).collect();
    assert_eq!(refs, ["vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"]);
    assert_eq!(f.seen.builds.load(Ordering::SeqCst), 2);
}

#[test]
fn every_failure_keeps_its_kind() {
    let f = fixture();
    type IsKind = fn(&BuildError) -> bool;
    let cases: Vec<(&str, IsKind, &str)> = vec![
        (
            "exit:3",
            |e| matches!(e, BuildError::ExitCode(3)),
            "failed with exit code 3",
        ),
        (
            "signal:9",
            |e| matches!(e, BuildError::Signal(9)),
            "failed due to signal 9",
        ),
        (
            "timeout:10",
            |e| matches!(e, BuildError::TimedOut(10)),
            "timed out after 10 seconds",
        ),
        (
            "silent:5",
            |e| matches!(e, BuildError::Silent(5)),
            "5 seconds of silence",
        ),
        (
            "missing",
            |e| matches!(e, BuildError::MissingOutput(p) if p == OUT),
            "failed to produce output path",
        ),
        (
            "bad",
            |e| matches!(e, BuildError::BadOutput { path, .. } if path == OUT),
            "world-writable",
        ),
        (
            "unsupported",
            |e| matches!(e, BuildError::Unsupported(_)),
            "x86_64-linux",
        ),
        (
            "sandbox",
            |e| matches!(e, BuildError::Sandbox(_)),
            "cannot mount /proc",
        ),
        ("store", |e| matches!(e, BuildError::Store(_)), "gone"),
        ("io", |e| matches!(e, BuildError::Io(_)), "disk full"),
        (
            "invalid",
            |e| matches!(e, BuildError::InvalidRequest(_)),
            "backend says no",
        ),
        (
            "panic",
            |e| matches!(e, BuildError::Remote { .. }),
            "asked to panic",
        ),
    ];
    for url in f.urls() {
        let client = f.client(&url);
        for (mode, is_kind, text) in &cases {
            let mut req = f.request(mode);
            req.keep_failed = true;
            let (events, res) = run(&*client, &req);
            let e = res.expect_err(mode);
            assert!(is_kind(&e), "{url} {mode}: wrong kind: {e:?}");
            assert!(e.to_string().contains(text), "{url} {mode}: {e}");
            if *mode != "panic" {
                assert_eq!(
                    events.last(),
                    Some(&BuildEvent::KeptBuildDir("/tmp/tvix-build-kept-1".into())),
                    "{url} {mode}"
                );
            }
        }
    }
}

#[test]
fn cancelling_reaches_the_servers_token() {
    let f = fixture();
    for url in f.urls() {
        f.seen.hanging.store(false, Ordering::SeqCst);
        f.seen.cancelled.store(false, Ordering::SeqCst);
        let client = f.client(&url);
        let req = f.request("hang");
        let cancel = CancelToken::new();
        let t0 = Instant::now();
        let events = std::sync::atomic::AtomicUsize::new(0);
        let res = std::thread::scope(|s| {
            let worker = s.spawn(|| {
                let res = client.build(
                    &req,
                    &mut |_| {
                        events.fetch_add(1, Ordering::SeqCst);
                    },
                    &cancel,
                );
                (res, Instant::now())
            });
            // Cancel only once the build runs on the server and its first event has
            // reached the client, so the test does not race the event stream.
            while !f.seen.hanging.load(Ordering::SeqCst) || events.load(Ordering::SeqCst) == 0 {
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "the build never started"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            let cancelled_at = Instant::now();
            cancel.cancel();
            let (res, returned_at) = worker.join().unwrap();
            // The client polls its token every 50 ms; the bound leaves room for a loaded
            // machine.
            assert!(
                returned_at - cancelled_at < Duration::from_secs(2),
                "{url}: the client took {:?} to give up",
                returned_at - cancelled_at
            );
            res
        });
        assert!(matches!(res, Err(BuildError::Cancelled)), "{url}: {res:?}");
        let t1 = Instant::now();
        while !f.seen.cancelled.load(Ordering::SeqCst) {
            assert!(
                t1.elapsed() < Duration::from_secs(5),
                "{url}: the server's build was not cancelled"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // The daemon still serves after cancelled calls.
    let (_, res) = run(&*f.client(f.unix.url()), &f.request("ok"));
    res.unwrap();
}

#[test]
fn a_cancel_before_the_call_sends_nothing() {
    let f = fixture();
    let client = f.client(f.tcp.url());
    let cancel = CancelToken::new();
    cancel.cancel();
    let res = client.build(&f.request("ok"), &mut |_| {}, &cancel);
    assert!(matches!(res, Err(BuildError::Cancelled)), "{res:?}");
    assert_eq!(f.seen.builds.load(Ordering::SeqCst), 0);
}

/// Sends a raw request message with the generated client and returns the status the
/// server answered with.
fn raw_build(url: &str, msg: proto::BuildRequest) -> tonic::Status {
    let uri = url.replace("grpc+http://", "http://");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut c = proto::build_service_client::BuildServiceClient::connect(uri)
            .await
            .unwrap();
        match c.build(msg).await {
            Ok(_) => panic!("the server accepted a malformed request"),
            Err(s) => s,
        }
    })
}

/// The message form of a request, built field by field as a foreign client would.
fn raw_request(f: &Fixture) -> proto::BuildRequest {
    use tvix_store::grpc::proto as sp;
    let req = f.request("ok");
    let Node::File { digest, size, .. } = req.inputs[0].1.clone() else {
        unreachable!()
    };
    proto::BuildRequest {
        program: req.program,
        argv: req.argv,
        env: req
            .env
            .into_iter()
            .map(|(name, value)| proto::EnvVar { name, value })
            .collect(),
        working_dir: req.working_dir,
        scratch_dirs: vec![proto::ScratchDir {
            path: "/build".into(),
            mode: 0o700,
        }],
        store_dir: req.store_dir,
        inputs: vec![proto::Input {
            path: INPUT.into(),
            node: Some(sp::Node {
                kind: Some(sp::node::Kind::File(sp::FileNode {
                    digest: digest.0.to_vec().into(),
                    size,
                    executable: false,
                })),
            }),
        }],
        outputs: req.outputs,
        network: false,
        host_files: vec![],
        files: vec![],
        needles: req.needles,
        constraints: Some(proto::Constraints {
            system: "x86_64-linux".into(),
            required_features: vec![],
            timeout_ms: None,
            max_silent_time_ms: None,
        }),
        keep_failed: false,
    }
}

#[test]
fn malformed_requests_are_refused_before_anything_runs() {
    use tvix_store::grpc::proto as sp;
    let f = fixture();
    type Edit = fn(&mut proto::BuildRequest);
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "short digest",
            |m| {
                if let Some(sp::node::Kind::File(file)) =
                    m.inputs[0].node.as_mut().and_then(|n| n.kind.as_mut())
                {
                    file.digest = vec![0; 31].into();
                }
            },
            "digest has 31 bytes",
        ),
        (
            "empty symlink",
            |m| {
                m.inputs[0].node = Some(sp::Node {
                    kind: Some(sp::node::Kind::Symlink(sp::SymlinkNode {
                        target: vec![].into(),
                    })),
                })
            },
            "symlink",
        ),
        ("no node", |m| m.inputs[0].node = None, "node is missing"),
        (
            "relative output",
            |m| m.outputs[0] = "nix/store/x-out".into(),
            "nix/store/x-out",
        ),
        (
            "dotdot input",
            |m| m.inputs[0].path = "/nix/store/../etc".into(),
            "/nix/store/../etc",
        ),
        (
            "relative program",
            |m| m.program = "bin/sh".into(),
            "not a clean absolute path",
        ),
        ("no constraints", |m| m.constraints = None, "constraints"),
        (
            "bad scratch mode",
            |m| m.scratch_dirs[0].mode = 0o170000,
            "mode",
        ),
    ];
    // The unmodified message is fine (checked through the real client below).
    for url in [f.tcp.url()] {
        for (what, edit, text) in &cases {
            let mut m = raw_request(&f);
            edit(&mut m);
            let status = raw_build(url, m);
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{what}");
            assert!(
                status.message().contains(text),
                "{what}: {}",
                status.message()
            );
        }
    }
    assert_eq!(
        f.seen.builds.load(Ordering::SeqCst),
        0,
        "a malformed request reached the build service"
    );
    // A malformed request given to the client is refused before it travels.
    let client = f.client(f.unix.url());
    let mut req = f.request("ok");
    req.outputs.push("relative".into());
    let (_, res) = run(&*client, &req);
    assert!(matches!(res, Err(BuildError::InvalidRequest(_))), "{res:?}");
    assert_eq!(f.seen.builds.load(Ordering::SeqCst), 0);
}

#[test]
fn capabilities_travel() {
    let f = fixture();
    for url in f.urls() {
        let caps = f.client(&url).capabilities().unwrap();
        assert_eq!(caps.systems, ["x86_64-linux", "i686-linux"]);
        let features: Vec<&str> = caps.features.iter().map(String::as_str).collect();
        assert_eq!(features, ["big-parallel", "kvm"]);
    }
}

#[test]
fn unreachable_and_bad_urls() {
    let store: Arc<dyn StoreService> = tvix_store::open("memory://").unwrap().into();
    let opts = ServiceOptions::default();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("grpc+unix://{}/nobody.sock", dir.path().display());
    match tvix_build::open(&url, store.clone(), &opts) {
        Err(BuildError::Remote { message, .. }) => {
            assert!(message.contains("cannot connect"), "{message}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("connected to nothing"),
    }
    for bad in [
        "grpc+unix://relative.sock",
        "grpc+http://nohost",
        "grpc+ftp://x:1",
    ] {
        assert!(
            matches!(
                tvix_build::open(bad, store.clone(), &opts),
                Err(BuildError::BadUrl { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn a_live_socket_is_not_taken_over() {
    let f = fixture();
    let path = f
        .unix
        .url()
        .strip_prefix("grpc+unix://")
        .unwrap()
        .to_string();
    let service: Arc<dyn BuildService> = Arc::new(TestBuilder {
        store: f.store.clone(),
        seen: f.seen.clone(),
    });
    let e = Server::start(service, &ListenAddr::Unix(path.into()))
        .err()
        .expect("a second server took over a live socket");
    assert!(e.to_string().contains("another server"), "{e}");
    // The first server still answers.
    f.client(f.unix.url()).capabilities().unwrap();
}

#[test]
fn stopping_the_server_cancels_its_builds_and_fails_the_call() {
    let f = fixture();
    let client = f.client(f.tcp.url());
    let req = f.request("hang");
    let t0 = Instant::now();
    let res = std::thread::scope(|s| {
        let worker = s.spawn(|| client.build(&req, &mut |_| {}, &CancelToken::new()));
        while !f.seen.hanging.load(Ordering::SeqCst) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the build never started"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(f.tcp);
        worker.join().unwrap()
    });
    // The machine is gone, not the build at fault: the caller may build it elsewhere.
    assert!(matches!(res, Err(BuildError::Lost { .. })), "{res:?}");
    while !f.seen.cancelled.load(Ordering::SeqCst) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the server's build was not cancelled"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_huge_log_line_travels_in_pieces() {
    let f = fixture();
    let (events, res) = run(&*f.client(f.unix.url()), &f.request("huge"));
    res.unwrap();
    let logs: Vec<&Vec<u8>> = events
        .iter()
        .filter_map(|e| match e {
            BuildEvent::Log(l) => Some(l),
            _ => None,
        })
        .collect();
    // "compiling", "linking ...", four pieces, "after".
    assert_eq!(logs.len(), 7);
    assert!(logs[2..6].iter().all(|l| l.len() <= MAX_LOG_PIECE));
    let joined: Vec<u8> = logs[2..6].iter().flat_map(|l| l.iter().copied()).collect();
    assert_eq!(joined.len(), MAX_LOG_PIECE * 3 + 12345);
    assert!(joined
        .iter()
        .enumerate()
        .all(|(i, &b)| b == b'a' + (i % 26) as u8));
    assert_eq!(logs[6], b"after");
}

#[test]
fn one_client_runs_builds_from_several_threads() {
    let f = fixture();
    let client = f.client(f.tcp.url());
    let expected = run(&*client, &f.request("ok")).1.unwrap();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|i| {
                let (client, f, expected) = (&client, &f, &expected);
                s.spawn(move || {
                    for _ in 0..5 {
                        if i % 2 == 0 {
                            let (events, res) = run(&**client, &f.request("ok"));
                            assert_eq!(&res.unwrap(), expected);
                            assert_eq!(events.len(), 4);
                        } else {
                            let (_, res) = run(&**client, &f.request("exit:1"));
                            assert!(matches!(res, Err(BuildError::ExitCode(1))));
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    });
    assert_eq!(f.seen.builds.load(Ordering::SeqCst), 21);
}
