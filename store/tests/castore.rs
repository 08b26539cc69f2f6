//! The castore against the reference Nix, on every kind of store (`memory://`, a local
//! store in a temporary directory, and gRPC clients of a server on a unix socket and on
//! loopback TCP): `import_path` gives the store path `nix-store --add` gives, the NAR rendered from the castore is byte-identical to `nix-store --dump`, and
//! the recorded NAR hash is what `nix-hash --type sha256` prints. NAR ingestion round-trips.
//!
//! Needs the reference tools (Debian package `nix-bin`) and a writable `/nix/store` for
//! `nix-store --add`.

#![cfg(feature = "grpc")]

mod common;
use common::stores::{self, Kind};
use common::{run_nix, run_nix_str};

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use tvix_store::castore::nar::{import_path, ingest_nar, resolve, write_nar};
use tvix_store::castore::{Node, Store, StoreService};
use tvix_store::hash::HashEncoding;
use tvix_store::pathinfo::PathInfoService;
use tvix_store::store_path::StoreDir;

/// Executables, symlinks, empty files and directories, deep nesting, unicode names,
/// a file large enough for several chunks, and two files sharing most of their chunks.
fn make_tree(root: &Path) {
    fs::create_dir_all(root).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::create_dir(root.join("emptydir")).unwrap();
    let exe = root.join("run.sh");
    fs::write(&exe, b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let empty_exe = root.join("empty-exe");
    fs::write(&empty_exe, b"").unwrap();
    fs::set_permissions(&empty_exe, fs::Permissions::from_mode(0o700)).unwrap();
    symlink("run.sh", root.join("link-rel")).unwrap();
    symlink("/etc/passwd", root.join("link-abs")).unwrap();
    symlink("does/not/exist", root.join("link-dangling")).unwrap();
    symlink("emptydir", root.join("link-dir")).unwrap();
    for n in 0..=9 {
        fs::write(root.join(format!("pad{n}")), vec![b'a' + n as u8; n]).unwrap();
    }
    for name in ["ünïcödé", "日本語", "B", "a", "a.b", "a-b", "with space"] {
        fs::write(root.join(name), name.as_bytes()).unwrap();
    }
    let mut deep = root.join("deep");
    for i in 0..80 {
        deep.push(format!("d{i}"));
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("leaf"), b"leaf\n").unwrap();
    // Pseudo-random (xorshift) so that FastCDC finds cut points.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let big: Vec<u8> = (0..1_500_007u32)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    fs::write(root.join("big.bin"), &big).unwrap();
    let mut big2 = big.clone();
    big2.splice(500..500, b"edit".iter().copied());
    fs::write(root.join("big2.bin"), &big2).unwrap();
}

fn fixtures() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let file = dir.path().join("file.txt");
    fs::write(&file, b"hello\n").unwrap();
    let exe = dir.path().join("exe");
    fs::write(&exe, b"#!x").unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let link = dir.path().join("link");
    symlink("tree", &link).unwrap();
    let empty_dir = dir.path().join("emptydir");
    fs::create_dir(&empty_dir).unwrap();
    (dir, vec![tree, file, exe, link, empty_dir])
}

fn check_store(store: &dyn StoreService) {
    let (_dir, paths) = fixtures();
    let sd = StoreDir::default();
    for p in &paths {
        let ps = p.to_str().unwrap();
        let info = import_path(store, &sd, p).unwrap();
        let expected_path = run_nix_str("nix-store", &["--add", ps], true);
        assert_eq!(
            sd.display(&info.store_path),
            expected_path,
            "store path of {ps}"
        );
        let expected_hash = run_nix_str("nix-hash", &["--type", "sha256", "--base32", ps], false);
        assert_eq!(info.nar_hash().encode(HashEncoding::Nix32), expected_hash);

        let nar = write_nar(store, &info.node, Vec::new()).unwrap();
        let reference = run_nix("nix-store", &["--dump", ps], false);
        assert!(
            nar == reference,
            "NAR of {ps} differs from nix-store --dump"
        );
        assert_eq!(nar.len() as u64, info.nar_size);

        let got = store.get_path_info(&info.store_path).unwrap().unwrap();
        assert_eq!(got, info);

        // Ingesting the reference NAR gives the same root node.
        let (node, hash, size) = ingest_nar(store, reference.as_slice()).unwrap();
        assert_eq!(node, info.node);
        assert_eq!(hash, info.nar_hash());
        assert_eq!(size, info.nar_size);
    }
    let report = store.verify().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.paths, paths.len() as u64);
}

fn check_kind(kind: Kind) {
    let s = stores::open(kind);
    check_store(&*s.store);
}

#[test]
fn memory_store_matches_nix() {
    check_kind(Kind::Memory);
}

#[test]
fn local_store_matches_nix() {
    check_kind(Kind::Local);
}

#[test]
fn grpc_unix_store_matches_nix() {
    check_kind(Kind::GrpcUnix);
}

#[test]
fn grpc_tcp_store_matches_nix() {
    check_kind(Kind::GrpcTcp);
}

/// What the server stored is what the client sent: the local store behind the daemon
/// verifies clean at every level (chunks, blobs, directories, paths).
#[test]
fn grpc_writes_land_in_the_served_store() {
    for kind in [Kind::GrpcUnix, Kind::GrpcTcp] {
        let s = stores::open(kind);
        let (_fx, paths) = fixtures();
        let sd = StoreDir::default();
        let info = import_path(&*s.store, &sd, &paths[0]).unwrap();
        let url = s.server.as_ref().unwrap().url().to_string();
        drop(s.store);
        drop(s.server);
        let local = Store::local(&s.dir.path().join("store")).unwrap();
        let report = local.verify().unwrap();
        assert!(report.problems.is_empty(), "{url}: {:?}", report.problems);
        assert!(report.chunks > 10 && report.blobs > 10, "{report:?}");
        assert_eq!(local.get_path_info(&info.store_path).unwrap(), Some(info));
    }
}

#[test]
fn similar_files_share_chunks_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(&dir.path().join("store")).unwrap();
    let (_fx, paths) = fixtures();
    let info = import_path(&store, &StoreDir::default(), &paths[0]).unwrap();
    let chunks_of = |name: &str| {
        let node = resolve(&store, &info.node, name, name).unwrap();
        let Node::File { digest, .. } = node else {
            panic!("{name} is not a file")
        };
        store.blob_chunks(&digest).unwrap().unwrap()
    };
    let a = chunks_of("big.bin");
    let b = chunks_of("big2.bin");
    assert!(a.len() >= 5, "{} chunks", a.len());
    let new_in_b = b.iter().filter(|c| !a.contains(c)).count();
    assert!(new_in_b <= 2, "{new_in_b} of {} chunks not shared", b.len());
    drop(store);
    // On disk, the two files take little more than one: the packs hold every chunk once.
    let store = Store::local(&dir.path().join("store")).unwrap();
    let report = store.verify().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let mut packed = 0;
    for f in fs::read_dir(dir.path().join("store/packs")).unwrap() {
        packed += f.unwrap().metadata().unwrap().len();
    }
    let big = fs::metadata(paths[0].join("big.bin")).unwrap().len();
    let total = store.path_infos().next().unwrap().unwrap().nar_size;
    assert!(packed < total, "{packed} bytes packed, NAR is {total}");
    assert!(
        packed < big * 2 - big / 2,
        "{packed} bytes packed for two files of {big}"
    );
}

/// Truncated NARs, a traversal name, and a duplicate entry, made from Nix's NAR of the
/// fixture tree; and that NAR itself.
fn hostile_nars() -> (Vec<Vec<u8>>, Vec<u8>) {
    let (_fx, paths) = fixtures();
    let good = run_nix("nix-store", &["--dump", paths[0].to_str().unwrap()], false);
    let mut hostile = vec![
        good[..good.len() - 16].to_vec(),
        good[..good.len() / 3].to_vec(),
    ];
    // A name turned into a traversal ("emptydir" -> "../../..").
    let mut m = good.clone();
    // The first occurrence is the entry name (the last is the target of "link-dir").
    let pos = m.windows(8).position(|w| w == b"emptydir").unwrap();
    m[pos..pos + 8].copy_from_slice(b"../../..");
    hostile.push(m);
    // Two entries swapped out of order ("pad1" -> "pad0" makes a duplicate).
    let mut m = good.clone();
    let pos = m.windows(4).rposition(|w| w == b"pad1").unwrap();
    m[pos..pos + 4].copy_from_slice(b"pad0");
    hostile.push(m);
    (hostile, good)
}

#[test]
fn hostile_nar_registers_nothing() {
    use tvix_store::castore::nar::import_nar;
    use tvix_store::store_path::StorePath;
    let (hostile, good) = hostile_nars();
    let sp = StorePath::from_base_name("00000000000000000000000000000000-tree").unwrap();
    for kind in [Kind::Local, Kind::GrpcUnix, Kind::GrpcTcp] {
        let s = stores::open(kind);
        for h in &hostile {
            assert!(import_nar(&*s.store, h.as_slice(), sp.clone(), vec![], None).is_err());
            assert!(s.store.get_path_info(&sp).unwrap().is_none());
        }
        assert!(s.store.path_infos().next().is_none());
        // Nothing was registered on disk either.
        drop(s.store);
        drop(s.server);
        let store = Store::local(&s.dir.path().join("store")).unwrap();
        assert!(store.path_infos().next().is_none(), "{kind:?}");
        assert!(store.verify().unwrap().problems.is_empty(), "{kind:?}");
        let info = import_nar(&store, good.as_slice(), sp.clone(), vec![], None).unwrap();
        assert_eq!(write_nar(&store, &info.node, Vec::new()).unwrap(), good);
    }
}
