//! Running the reference Nix tools from the store's integration tests.

#![allow(dead_code)]

use std::process::Command;

/// Runs a reference Nix tool and returns its stdout; fails the test clearly if the tool
/// is missing or fails.
pub fn run_nix(tool: &str, args: &[&str], needs_store: bool) -> Vec<u8> {
    let mut cmd = Command::new(tool);
    cmd.args(args);
    if !needs_store {
        cmd.env("NIX_REMOTE", "dummy://");
    }
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "reference tool '{tool}' not found in PATH: install Nix (Debian package nix-bin) \
             to run the differential tests"
        ),
        Err(e) => panic!("cannot run reference tool '{tool}': {e}"),
    };
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn run_nix_str(tool: &str, args: &[&str], needs_store: bool) -> String {
    String::from_utf8(run_nix(tool, args, needs_store))
        .expect("reference output is UTF-8")
        .trim()
        .to_string()
}

/// The stores the castore suites run against.
#[cfg(feature = "grpc")]
pub mod stores {
    use std::sync::Arc;

    use tvix_store::castore::{Store, StoreService};
    use tvix_store::grpc::{GrpcStore, ListenAddr, Server};

    /// Where a test store lives.
    #[derive(Clone, Copy, Debug)]
    pub enum Kind {
        /// `memory://`
        Memory,
        /// The embedded local store in a temporary directory.
        Local,
        /// A client of an in-process server (over a local store) on a unix socket.
        GrpcUnix,
        /// A client of an in-process server (over a local store) on loopback TCP.
        GrpcTcp,
    }

    /// Every kind.
    pub const ALL: [Kind; 4] = [Kind::Memory, Kind::Local, Kind::GrpcUnix, Kind::GrpcTcp];

    /// A store under test, with what keeps it alive. Fields drop in order: the client
    /// before the server, the server before its directory.
    pub struct TestStore {
        /// The store.
        pub store: Box<dyn StoreService>,
        /// The server, for the gRPC kinds.
        pub server: Option<Server>,
        /// The directory of the local store (and socket).
        pub dir: tempfile::TempDir,
    }

    /// A fresh store of `kind`.
    pub fn open(kind: Kind) -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        let local = || Store::local(&dir.path().join("store")).unwrap();
        let serve = |listen: ListenAddr| {
            let backing: Arc<dyn StoreService> = Arc::new(local());
            let server = Server::start(backing, &listen).unwrap();
            let client = GrpcStore::connect(server.url()).unwrap();
            (Box::new(client) as Box<dyn StoreService>, Some(server))
        };
        let (store, server) = match kind {
            Kind::Memory => (Box::new(Store::memory()) as Box<dyn StoreService>, None),
            Kind::Local => (Box::new(local()) as Box<dyn StoreService>, None),
            Kind::GrpcUnix => serve(ListenAddr::Unix(dir.path().join("sock"))),
            Kind::GrpcTcp => serve(ListenAddr::Tcp("127.0.0.1:0".into())),
        };
        TestStore { store, server, dir }
    }
}
