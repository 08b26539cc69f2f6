//! The gRPC protocol itself: the server rejects every invalid message with a clear status
//! (digest lengths, names, order, sizes, store paths, signatures, content addresses,
//! missing children), computes uploaded blobs' digests itself, and the client rejects a
//! server that sends bytes or directories other than those asked for.

#![cfg(feature = "grpc")]

use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;

use prost::bytes::Bytes;
use tokio_stream::Stream;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status, Streaming};
use tvix_store::castore::{B3Digest, BlobService, Directory, DirectoryService, Node, Store};
use tvix_store::grpc::proto::blob_service_client::BlobServiceClient;
use tvix_store::grpc::proto::directory_service_client::DirectoryServiceClient;
use tvix_store::grpc::proto::path_info_service_client::PathInfoServiceClient;
use tvix_store::grpc::proto::{self, node::Kind};
use tvix_store::grpc::{GrpcStore, ListenAddr, Server, MAX_BLOB_PIECE};
use tvix_store::pathinfo::PathInfoService;

/// A server over a memory store on loopback, a raw channel to it and a runtime to drive
/// the raw calls.
struct Fixture {
    rt: tokio::runtime::Runtime,
    channel: Channel,
    backing: Arc<Store>,
    _server: Server,
}

fn fixture() -> Fixture {
    let backing = Arc::new(Store::memory());
    let server = Server::start(backing.clone(), &ListenAddr::Tcp("127.0.0.1:0".into())).unwrap();
    let uri = server.url().strip_prefix("grpc+").unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let channel = rt
        .block_on(Channel::from_shared(uri).unwrap().connect())
        .unwrap();
    Fixture {
        rt,
        channel,
        backing,
        _server: server,
    }
}

#[track_caller]
fn assert_status<T: std::fmt::Debug>(res: Result<T, Status>, code: Code, text: &str) {
    match res {
        Ok(v) => panic!("expected {code:?} ({text}), got {v:?}"),
        Err(s) => {
            assert_eq!(s.code(), code, "{}", s.message());
            assert!(
                s.message().contains(text),
                "{:?} lacks {text:?}",
                s.message()
            );
        }
    }
}

fn file_node(digest: &[u8], size: u64) -> proto::Node {
    proto::Node {
        kind: Some(Kind::File(proto::FileNode {
            digest: Bytes::copy_from_slice(digest),
            size,
            executable: false,
        })),
    }
}

fn symlink_node(target: &[u8]) -> proto::Node {
    proto::Node {
        kind: Some(Kind::Symlink(proto::SymlinkNode {
            target: Bytes::copy_from_slice(target),
        })),
    }
}

fn entry(name: &[u8], node: proto::Node) -> proto::Entry {
    proto::Entry {
        name: Bytes::copy_from_slice(name),
        node: Some(node),
    }
}

#[test]
fn digests_of_the_wrong_length_are_rejected() {
    let f = fixture();
    let mut blobs = BlobServiceClient::new(f.channel.clone());
    let mut dirs = DirectoryServiceClient::new(f.channel.clone());
    for len in [0usize, 31, 33] {
        let d = Bytes::from(vec![1u8; len]);
        let text = format!("digest has {len} bytes, not 32");
        let r =
            f.rt.block_on(blobs.stat(proto::StatBlobRequest { digest: d.clone() }));
        assert_status(r, Code::InvalidArgument, &text);
        let r = f.rt.block_on(blobs.read(proto::ReadBlobRequest {
            digest: d.clone(),
            ..Default::default()
        }));
        assert_status(r.map(|_| ()), Code::InvalidArgument, &text);
        let req = proto::GetDirectoryRequest {
            digest: d,
            recursive: true,
        };
        let r = f.rt.block_on(dirs.get(req));
        assert_status(r.map(|_| ()), Code::InvalidArgument, &text);
    }
    // A well-formed digest of nothing stored.
    let absent = Bytes::from(vec![7u8; 32]);
    let r = f.rt.block_on(blobs.read(proto::ReadBlobRequest {
        digest: absent,
        ..Default::default()
    }));
    assert_status(r.map(|_| ()), Code::NotFound, "not found");
}

#[test]
fn uploaded_blobs_are_hashed_by_the_server_and_pieces_are_bounded() {
    let f = fixture();
    let mut blobs = BlobServiceClient::new(f.channel.clone());
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let pieces: Vec<proto::BlobChunk> = data
        .chunks(70_000)
        .map(|c| proto::BlobChunk {
            data: Bytes::copy_from_slice(c),
        })
        .collect();
    let resp =
        f.rt.block_on(blobs.put(tokio_stream::iter(pieces)))
            .unwrap()
            .into_inner();
    assert_eq!(resp.digest.as_ref(), blake3::hash(&data).as_bytes());
    assert_eq!(resp.size, data.len() as u64);
    let d = B3Digest::of(&data);
    assert_eq!(f.backing.blob_size(&d).unwrap(), Some(data.len() as u64));

    let too_big = proto::BlobChunk {
        data: Bytes::from(vec![0u8; MAX_BLOB_PIECE + 1]),
    };
    let r = f.rt.block_on(blobs.put(tokio_stream::iter([too_big])));
    assert_status(r, Code::InvalidArgument, "is more than 1048576");
    assert!(!f
        .backing
        .has_blob(&B3Digest::of(&vec![0u8; MAX_BLOB_PIECE + 1]))
        .unwrap());
}

#[test]
fn invalid_directories_are_rejected() {
    let f = fixture();
    let (blob, _) = f.backing.put_blob(&mut &b"hello"[..]).unwrap();
    let good = file_node(&blob.0, 5);
    let mut dirs = DirectoryServiceClient::new(f.channel.clone());
    let cases: Vec<(Vec<proto::Entry>, Code, &str)> = vec![
        (
            vec![entry(b"..", good.clone())],
            Code::InvalidArgument,
            "invalid name '..'",
        ),
        (
            vec![entry(b".", good.clone())],
            Code::InvalidArgument,
            "invalid name '.'",
        ),
        (
            vec![entry(b"", good.clone())],
            Code::InvalidArgument,
            "invalid name ''",
        ),
        (
            vec![entry(b"a/b", good.clone())],
            Code::InvalidArgument,
            "invalid name 'a/b'",
        ),
        (
            vec![entry(b"a\0b", good.clone())],
            Code::InvalidArgument,
            "invalid name",
        ),
        (
            vec![entry(&[b'x'; 70_000], good.clone())],
            Code::InvalidArgument,
            "too long",
        ),
        (
            vec![entry(b"b", good.clone()), entry(b"a", good.clone())],
            Code::InvalidArgument,
            "is not sorted after",
        ),
        (
            vec![entry(b"a", good.clone()), entry(b"a", good.clone())],
            Code::InvalidArgument,
            "duplicate directory entry 'a'",
        ),
        (
            vec![entry(b"l", symlink_node(b""))],
            Code::InvalidArgument,
            "invalid symlink target",
        ),
        (
            vec![entry(b"l", symlink_node(b"a\0b"))],
            Code::InvalidArgument,
            "contains NUL",
        ),
        (
            vec![proto::Entry {
                name: Bytes::from_static(b"n"),
                node: None,
            }],
            Code::InvalidArgument,
            "a node is missing",
        ),
        (
            vec![entry(b"f", file_node(&[1; 20], 5))],
            Code::InvalidArgument,
            "digest has 20 bytes",
        ),
        (
            vec![entry(b"f", file_node(&[9; 32], 5))],
            Code::NotFound,
            "not found",
        ),
        (
            vec![entry(b"f", file_node(&blob.0, 6))],
            Code::InvalidArgument,
            "has size 5, but the node says 6",
        ),
        (
            vec![entry(
                b"d",
                proto::Node {
                    kind: Some(Kind::Directory(proto::DirectoryNode {
                        digest: Bytes::from(vec![3u8; 32]),
                        size: 0,
                    })),
                },
            )],
            Code::NotFound,
            "not found",
        ),
    ];
    for (entries, code, text) in cases {
        let msg = proto::Directory { entries };
        let r = f.rt.block_on(dirs.put(tokio_stream::iter([msg])));
        assert_status(r, code, text);
    }
    let r =
        f.rt.block_on(dirs.put(tokio_stream::iter(Vec::<proto::Directory>::new())));
    assert_status(r, Code::InvalidArgument, "no directories were sent");

    // Children before parents in one stream is accepted; the root digest comes back.
    let mut child = Directory::new();
    child
        .add(
            "f",
            Node::File {
                digest: blob,
                size: 5,
                executable: true,
            },
        )
        .unwrap();
    let mut parent = Directory::new();
    parent.add("c", child.node()).unwrap();
    let to_msg = |d: &Directory| proto::Directory {
        entries: d
            .entries()
            .map(|(n, node)| {
                let node = match node {
                    Node::Directory { digest, size } => proto::Node {
                        kind: Some(Kind::Directory(proto::DirectoryNode {
                            digest: Bytes::copy_from_slice(&digest.0),
                            size: *size,
                        })),
                    },
                    Node::File {
                        digest,
                        size,
                        executable,
                    } => proto::Node {
                        kind: Some(Kind::File(proto::FileNode {
                            digest: Bytes::copy_from_slice(&digest.0),
                            size: *size,
                            executable: *executable,
                        })),
                    },
                    Node::Symlink { target } => symlink_node(target),
                };
                entry(n, node)
            })
            .collect(),
    };
    // Parent first: its child is unknown.
    let r =
        f.rt.block_on(dirs.put(tokio_stream::iter([to_msg(&parent), to_msg(&child)])));
    assert_status(r, Code::NotFound, "not found");
    let resp =
        f.rt.block_on(dirs.put(tokio_stream::iter([to_msg(&child), to_msg(&parent)])))
            .unwrap()
            .into_inner();
    assert_eq!(resp.root_digest.as_ref(), &parent.digest().0);
    assert!(f.backing.get_directory(&parent.digest()).unwrap().is_some());
}

fn valid_path_info(root: proto::Node) -> proto::PathInfo {
    proto::PathInfo {
        store_path: "00000000000000000000000000000000-x".into(),
        root: Some(root),
        nar_sha256: Bytes::from(vec![0u8; 32]),
        nar_size: 120,
        references: vec!["00000000000000000000000000000000-x".into()],
        deriver: Some("11111111111111111111111111111111-x.drv".into()),
        signatures: vec!["cache.example.org-1:aGVsbG8=".into()],
        ca: Some(format!(
            "fixed:r:{}",
            tvix_store::NixHash::sha256(b"").to_prefixed(tvix_store::hash::HashEncoding::Nix32)
        )),
    }
}

#[test]
fn invalid_path_infos_are_rejected() {
    let f = fixture();
    let mut infos = PathInfoServiceClient::new(f.channel.clone());
    let root = symlink_node(b"/somewhere");
    type Mutation = fn(&mut proto::PathInfo);
    let cases: Vec<(Mutation, Code, &str)> = vec![
        (
            |p| p.store_path = "x".into(),
            Code::InvalidArgument,
            "store path 'x'",
        ),
        (
            |p| p.store_path = "00000000000000000000000000000000-a b".into(),
            Code::InvalidArgument,
            "illegal character",
        ),
        (
            |p| p.root = None,
            Code::InvalidArgument,
            "a node is missing",
        ),
        (
            |p| p.nar_sha256 = Bytes::from(vec![0u8; 20]),
            Code::InvalidArgument,
            "NAR sha256 has 20 bytes",
        ),
        (
            |p| p.nar_size = 3,
            Code::InvalidArgument,
            "NAR size 3 is too small",
        ),
        (
            |p| p.references.push("../../etc/passwd".into()),
            Code::InvalidArgument,
            "store path '../../etc/passwd'",
        ),
        (
            |p| p.deriver = Some("11111111111111111111111111111111-x".into()),
            Code::InvalidArgument,
            "is not a .drv path",
        ),
        (
            |p| p.signatures.push("nocolon".into()),
            Code::InvalidArgument,
            "signature 'nocolon'",
        ),
        (
            |p| p.signatures.push(":aGVsbG8=".into()),
            Code::InvalidArgument,
            "is not 'keyname:base64'",
        ),
        (
            |p| p.ca = Some("fixed:r:sha256:nothash".into()),
            Code::InvalidArgument,
            "content address",
        ),
        (
            |p| p.ca = Some("weird:sha256:x".into()),
            Code::InvalidArgument,
            "is not text:, fixed: or fixed:r:",
        ),
        (
            |p| p.root = Some(file_node(&[5; 32], 3)),
            Code::NotFound,
            "not found",
        ),
    ];
    for (mutate, code, text) in cases {
        let mut p = valid_path_info(root.clone());
        mutate(&mut p);
        let r = f.rt.block_on(infos.put(p));
        assert_status(r, code, text);
    }
    assert!(f.backing.path_infos().next().is_none());

    let p = valid_path_info(root);
    f.rt.block_on(infos.put(p.clone())).unwrap();
    let got =
        f.rt.block_on(infos.get(proto::GetPathInfoRequest {
            store_path: p.store_path.clone(),
        }))
        .unwrap()
        .into_inner();
    assert_eq!(got, p);
    let r = f.rt.block_on(infos.get(proto::GetPathInfoRequest {
        store_path: "nope".into(),
    }));
    assert_status(r, Code::InvalidArgument, "store path 'nope'");
    let r = f.rt.block_on(infos.get(proto::GetPathInfoRequest {
        store_path: "22222222222222222222222222222222-y".into(),
    }));
    assert_status(r, Code::NotFound, "is not valid");
}

/// A server that answers with other bytes and other directories than those asked for.
#[derive(Clone)]
struct Liar;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl proto::blob_service_server::BlobService for Liar {
    async fn put(
        &self,
        _req: Request<Streaming<proto::BlobChunk>>,
    ) -> Result<Response<proto::PutBlobResponse>, Status> {
        Err(Status::unimplemented("read-only"))
    }

    type ReadStream = BoxStream<proto::BlobChunk>;

    async fn read(
        &self,
        _req: Request<proto::ReadBlobRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let piece = proto::BlobChunk {
            data: Bytes::from_static(b"not what you asked for"),
        };
        let mut resp: Response<Self::ReadStream> =
            Response::new(Box::pin(tokio_stream::iter([Ok(piece)])));
        // The size of the blob asked for, but not of what is sent.
        resp.metadata_mut().insert(
            "tvix-blob-size",
            tonic::metadata::MetadataValue::from(22u64),
        );
        Ok(resp)
    }

    async fn stat(
        &self,
        _req: Request<proto::StatBlobRequest>,
    ) -> Result<Response<proto::StatBlobResponse>, Status> {
        Ok(Response::new(proto::StatBlobResponse {
            found: true,
            size: 22,
        }))
    }
}

#[tonic::async_trait]
impl proto::directory_service_server::DirectoryService for Liar {
    async fn put(
        &self,
        _req: Request<Streaming<proto::Directory>>,
    ) -> Result<Response<proto::PutDirectoryResponse>, Status> {
        Err(Status::unimplemented("read-only"))
    }

    type GetStream = BoxStream<proto::Directory>;

    async fn get(
        &self,
        _req: Request<proto::GetDirectoryRequest>,
    ) -> Result<Response<Self::GetStream>, Status> {
        let d = proto::Directory {
            entries: vec![entry(b"l", symlink_node(b"t"))],
        };
        Ok(Response::new(Box::pin(tokio_stream::iter([Ok(d)]))))
    }
}

#[test]
fn the_client_checks_what_the_server_sends() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(proto::blob_service_server::BlobServiceServer::new(Liar))
            .add_service(proto::directory_service_server::DirectoryServiceServer::new(Liar))
            .serve_with_incoming(incoming),
    );
    let client = GrpcStore::connect(&format!("grpc+http://{addr}")).unwrap();

    let asked = B3Digest::of(b"the real contents, 22b");
    let mut r = client.open_blob(&asked).unwrap().unwrap();
    let mut out = Vec::new();
    let err = r.read_to_end(&mut out).unwrap_err();
    let err = tvix_store::castore::StoreError::from_io(err);
    assert!(err.to_string().contains("is corrupt"), "{err}");

    let err = client.get_directory(&asked).unwrap_err();
    assert!(err.to_string().contains("is corrupt"), "{err}");
    let err = client.get_directory_recursive(&asked).unwrap_err();
    assert!(err.to_string().contains("was not asked for"), "{err}");
}

#[test]
fn ranged_reads_over_grpc() {
    let f = fixture();
    let data: Vec<u8> = (0..2_500_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let (d, _) = f.backing.put_blob(&mut data.as_slice()).unwrap();
    let size = data.len() as u64;
    let client = GrpcStore::connect(f._server.url()).unwrap();
    for (offset, len) in [
        (0u64, 0u64),
        (0, 10),
        (70_000, 300_000),
        (size - 5, 100),
        (size, 10),
        (0, u64::MAX),
    ] {
        let got = client.read_blob_range(&d, offset, len).unwrap().unwrap();
        let end = offset.saturating_add(len).min(size) as usize;
        assert_eq!(&got[..], &data[offset as usize..end], "{offset}+{len}");
    }
    let err = client.read_blob_range(&d, size + 1, 1).unwrap_err();
    assert!(err.to_string().contains("it has 2500000 bytes"), "{err}");
    assert!(client
        .read_blob_range(&B3Digest::of(b"absent"), 0, 1)
        .unwrap()
        .is_none());

    // The server validates the range itself.
    let mut blobs = BlobServiceClient::new(f.channel.clone());
    let r = f.rt.block_on(blobs.read(proto::ReadBlobRequest {
        digest: d.0.to_vec().into(),
        offset: Some(size + 1),
        length: None,
    }));
    assert_status(r.map(|_| ()), Code::OutOfRange, "it has 2500000 bytes");
    // Only the chunks covering a range are read from the server's store.
    let before = f.backing.range_chunk_reads();
    client.read_blob_range(&d, 1_000_000, 10).unwrap();
    assert!(f.backing.range_chunk_reads() - before <= 2);
}

#[test]
fn ranged_reads_from_a_server_without_them_cut_the_whole_blob() {
    // `Liar` ignores the range (as a server predating ranged reads does) and sends 22
    // bytes that are not the blob asked for: the client reads it whole, re-hashes it
    // and refuses it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(proto::blob_service_server::BlobServiceServer::new(Liar))
            .serve_with_incoming(incoming),
    );
    let client = GrpcStore::connect(&format!("grpc+http://{addr}")).unwrap();
    let err = client
        .read_blob_range(&B3Digest::of(b"x"), 2, 3)
        .unwrap_err();
    assert!(err.to_string().contains("is corrupt"), "{err}");
    // The same server telling the truth: the range is cut out of the whole blob.
    let good = B3Digest::of(b"not what you asked for");
    let got = client.read_blob_range(&good, 4, 4).unwrap().unwrap();
    assert_eq!(&got[..], b"what");
}

/// A listing of several server pages comes out whole and in digest order: streamed in one
/// call, and read page by page with `after`/`limit`; a malformed cursor is rejected.
#[test]
fn listings_longer_than_a_page_come_out_whole_and_in_order() {
    use tvix_store::pathinfo::PathInfo;
    use tvix_store::store_path::StorePath;

    let f = fixture();
    // More than the server reads at once (256) and than a backend page (1024).
    let n_paths = 1500u32;
    let mut digests = Vec::new();
    for path_idx in 0..n_paths {
        // Spread over the key space, not inserted in order.
        let mut digest = [0u8; 20];
        digest[..4].copy_from_slice(&path_idx.wrapping_mul(2_654_435_761).to_be_bytes());
        digest[19] = path_idx as u8;
        let info = PathInfo {
            store_path: StorePath::new(digest, format!("p{path_idx}")).unwrap(),
            node: Node::Symlink {
                target: format!("t{path_idx}").into_bytes(),
            },
            nar_sha256: [0; 32],
            nar_size: 120,
            references: Vec::new(),
            deriver: None,
            signatures: Vec::new(),
            ca: None,
        };
        f.backing.put_path_info(&info).unwrap();
        digests.push(digest);
    }
    digests.sort();

    let client = GrpcStore::connect(f._server.url()).unwrap();
    let streamed: Vec<[u8; 20]> = client
        .path_infos()
        .map(|i| *i.unwrap().store_path.digest())
        .collect();
    assert_eq!(streamed, digests);

    let mut paged = Vec::new();
    let mut after: Option<[u8; 20]> = None;
    loop {
        let page = client.list_path_infos_page(after.as_ref(), 300).unwrap();
        assert!(page.len() <= 300, "{}", page.len());
        let Some(last) = page.last() else { break };
        after = Some(*last.store_path.digest());
        paged.extend(page.iter().map(|i| *i.store_path.digest()));
    }
    assert_eq!(paged, digests);
    let tail = client
        .list_path_infos_page(Some(&digests[1400]), 1000)
        .unwrap();
    assert_eq!(tail.len(), 99);
    assert_eq!(tail[0].store_path.digest(), &digests[1401]);

    let mut infos = PathInfoServiceClient::new(f.channel.clone());
    let r = f.rt.block_on(infos.list(proto::ListPathInfoRequest {
        after_digest: Bytes::from(vec![0u8; 3]),
        limit: 0,
    }));
    assert_status(
        r.map(|_| ()),
        Code::InvalidArgument,
        "after_digest has 3 bytes",
    );
}
