//! `tvix builder daemon` as a process: it serves a build service that is itself remote (an
//! in-process test service behind a socket), with a `tvix store daemon` as the store every
//! party shares. Results, events and cancellation cross both hops; bad arguments are
//! clear errors.

mod common;
use common::daemon::Daemon;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tvix_build::grpc::{ListenAddr, Server};
use tvix_build::{
    BuildError, BuildEvent, BuildOutput, BuildRequest, BuildResult, BuildService, CancelToken,
    Capabilities, Constraints, ScratchDir, ServiceOptions,
};
use tvix_store::castore::{nar::write_nar, Node, StoreError, StoreService};
use tvix_store::NixHash;

const OUT: &str = "/nix/store/vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv-relayed";
const INPUT: &str = "/nix/store/iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii-input";

/// Writes one output file made of its path and its input's contents, or hangs until
/// cancelled when `mode=hang`, or fails with exit code 7 when `mode=fail`.
struct Inner {
    store: Arc<dyn StoreService>,
    hanging: AtomicBool,
    cancelled: AtomicBool,
}

impl BuildService for Inner {
    fn capabilities(&self) -> Result<Capabilities, BuildError> {
        Ok(Capabilities {
            systems: vec!["x86_64-linux".into()],
            features: ["relay-test".to_string()].into(),
        })
    }

    fn build(
        &self,
        req: &BuildRequest,
        events: &mut dyn FnMut(BuildEvent),
        cancel: &CancelToken,
    ) -> Result<BuildResult, BuildError> {
        req.validate()?;
        events(BuildEvent::Started {
            machine: "localhost".into(),
        });
        events(BuildEvent::Log(b"hello from the inner builder".to_vec()));
        match req
            .env
            .iter()
            .find(|(k, _)| k == "mode")
            .map(|(_, v)| v.as_str())
        {
            Some("hang") => {
                self.hanging.store(true, Ordering::SeqCst);
                let deadline = Instant::now() + Duration::from_secs(30);
                while !cancel.is_cancelled() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                self.cancelled
                    .store(cancel.is_cancelled(), Ordering::SeqCst);
                return Err(BuildError::Cancelled);
            }
            Some("fail") => return Err(BuildError::ExitCode(7)),
            _ => {}
        }
        let Node::File { digest, .. } = &req.inputs[0].1 else {
            return Err(BuildError::Sandbox("the input is not a file".into()));
        };
        let mut data = format!("{}\n", req.outputs[0]).into_bytes();
        let mut r = self
            .store
            .open_blob(digest)?
            .ok_or(StoreError::BlobNotFound(*digest))?;
        std::io::copy(&mut r, &mut data)?;
        let (digest, size) = self.store.put_blob_bytes(&data)?;
        let node = Node::File {
            digest,
            size,
            executable: false,
        };
        let nar = write_nar(&*self.store, &node, Vec::new())?;
        Ok(BuildResult {
            outputs: vec![BuildOutput {
                path: req.outputs[0].clone(),
                node,
                nar_sha256: NixHash::sha256(&nar).digest().try_into().unwrap(),
                nar_size: nar.len() as u64,
                references: Default::default(),
            }],
        })
    }
}

fn request(input: Node, mode: &str) -> BuildRequest {
    BuildRequest {
        program: format!("{INPUT}/bin/sh"),
        argv: vec!["sh".into()],
        env: vec![("out".into(), OUT.into()), ("mode".into(), mode.into())],
        working_dir: "/build".into(),
        scratch_dirs: vec![ScratchDir {
            path: "/build".into(),
            mode: 0o700,
        }],
        store_dir: "/nix/store".into(),
        inputs: vec![(INPUT.into(), input)],
        outputs: vec![OUT.into()],
        network: false,
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

#[test]
fn a_builder_daemon_relays_builds_events_and_cancellation() {
    let dir = tempfile::tempdir().unwrap();
    let sock = |name: &str| dir.path().join(name).display().to_string();
    let store_daemon = Daemon::start(&[
        "store",
        "--store",
        "memory://",
        "daemon",
        "--listen",
        &format!("unix://{}", sock("store.sock")),
    ]);
    // The inner build service, in this process, on the shared store.
    let inner_store: Arc<dyn StoreService> = tvix_store::open(&store_daemon.url).unwrap().into();
    let inner = Arc::new(Inner {
        store: inner_store,
        hanging: AtomicBool::new(false),
        cancelled: AtomicBool::new(false),
    });
    let inner_server =
        Server::start(inner.clone(), &ListenAddr::Unix(sock("inner.sock").into())).unwrap();
    let builder_daemon = Daemon::start(&[
        "builder",
        "daemon",
        "--listen",
        &format!("unix://{}", sock("builder.sock")),
        "--store",
        &store_daemon.url,
        "--build-service",
        inner_server.url(),
    ]);
    assert_eq!(
        builder_daemon.url,
        format!("grpc+unix://{}", sock("builder.sock"))
    );

    // The client's side: the same store, the outer daemon as its build service.
    let store: Arc<dyn StoreService> = tvix_store::open(&store_daemon.url).unwrap().into();
    let (digest, size) = store.put_blob_bytes(b"the input\n").unwrap();
    let input = Node::File {
        digest,
        size,
        executable: false,
    };
    let service = tvix_build::open(
        &builder_daemon.url,
        store.clone(),
        &ServiceOptions::default(),
    )
    .unwrap();
    let caps = service.capabilities().unwrap();
    assert_eq!(caps.systems, ["x86_64-linux"]);
    assert!(caps.features.contains("relay-test"));

    let mut events = Vec::new();
    let res = service
        .build(
            &request(input.clone(), "ok"),
            &mut |e| events.push(e),
            &CancelToken::new(),
        )
        .unwrap();
    assert_eq!(
        events,
        [
            // Named by the hop that knew the machine: the inner service's URL.
            BuildEvent::Started {
                machine: inner_server.url().to_string()
            },
            BuildEvent::Log(b"hello from the inner builder".to_vec()),
        ]
    );
    let Node::File { digest, .. } = &res.outputs[0].node else {
        panic!("{:?}", res.outputs[0].node)
    };
    let mut data = Vec::new();
    std::io::copy(&mut store.open_blob(digest).unwrap().unwrap(), &mut data).unwrap();
    assert_eq!(data, format!("{OUT}\nthe input\n").as_bytes());

    let failed = service.build(
        &request(input.clone(), "fail"),
        &mut |_| {},
        &CancelToken::new(),
    );
    assert!(matches!(failed, Err(BuildError::ExitCode(7))), "{failed:?}");

    // Cancelling the outer call cancels the inner build.
    let cancel = CancelToken::new();
    let req = request(input, "hang");
    let res = std::thread::scope(|s| {
        let worker = s.spawn(|| service.build(&req, &mut |_| {}, &cancel));
        let t0 = Instant::now();
        while !inner.hanging.load(Ordering::SeqCst) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the build never started"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        cancel.cancel();
        worker.join().unwrap()
    });
    assert!(matches!(res, Err(BuildError::Cancelled)), "{res:?}");
    let t0 = Instant::now();
    while !inner.cancelled.load(Ordering::SeqCst) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the inner build was not cancelled"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn bad_builder_daemon_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let nobody = format!("grpc+unix://{}/nobody.sock", dir.path().display());
    let cases: [(&[&str], &str); 3] = [
        (&["--listen", "nowhere"], "HOST:PORT"),
        (
            &["--listen", "127.0.0.1:0", "--build-service", "ftp://x"],
            "unsupported build service URL 'ftp://x'",
        ),
        (
            &["--listen", "127.0.0.1:0", "--build-service", &nobody],
            "cannot connect",
        ),
    ];
    for (args, text) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_tvix"))
            .args(["builder", "daemon", "--store", "memory://"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(text), "{args:?}: {err}");
    }
}
