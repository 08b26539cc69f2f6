use std::io::Read;

use super::nar::{import_nar, ingest_nar, write_nar};
use super::wire::put_bytes;
use super::*;
use crate::nar::NarEncoder;
use crate::pathinfo::{PathInfo, PathInfoService};
use crate::store_path::StorePath;

/// Deterministic bytes that neither compress nor repeat (xorshift), for tests of chunking
/// and packs.
pub(super) fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn read_all(store: &Store, d: &B3Digest) -> Result<Vec<u8>, StoreError> {
    let mut r = store.open_blob(d)?.ok_or(StoreError::BlobNotFound(*d))?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).map_err(StoreError::from_io)?;
    Ok(out)
}

#[test]
fn blob_roundtrip_and_digest() {
    let store = Store::memory();
    for len in [0usize, 1, 100, CHUNK_MIN, 1_000_000] {
        let data = pseudo_random(len, len as u64 + 7);
        let (d, size) = store.put_blob(&mut data.as_slice()).unwrap();
        assert_eq!(size, len as u64);
        assert_eq!(d, B3Digest::of(&data));
        assert!(store.has_blob(&d).unwrap());
        assert_eq!(store.blob_size(&d).unwrap(), Some(len as u64));
        assert_eq!(read_all(&store, &d).unwrap(), data);
    }
    let absent = B3Digest::of(b"absent");
    assert!(!store.has_blob(&absent).unwrap());
    assert!(store.open_blob(&absent).unwrap().is_none());
}

#[test]
fn similar_blobs_share_chunks() {
    let store = Store::memory();
    let a = pseudo_random(2_000_000, 1);
    let mut b = a.clone();
    // Insert a few bytes near the start: content-defined chunking resynchronises.
    b.splice(1000..1000, b"inserted".iter().copied());
    let (da, _) = store.put_blob(&mut a.as_slice()).unwrap();
    let (db, _) = store.put_blob(&mut b.as_slice()).unwrap();
    let ca = store.blob_chunks(&da).unwrap().unwrap();
    let cb = store.blob_chunks(&db).unwrap().unwrap();
    assert!(ca.len() > 4, "{} chunks", ca.len());
    let shared = cb.iter().filter(|c| ca.contains(c)).count();
    assert!(
        shared >= ca.len() - 2,
        "only {shared} of {} chunks shared",
        ca.len()
    );
    for (_, len) in &ca[..ca.len() - 1] {
        assert!(*len as usize >= CHUNK_MIN && *len as usize <= CHUNK_MAX);
    }
}

#[test]
fn corrupt_chunk_is_detected_not_returned() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path()).unwrap();
    let data = pseudo_random(300_000, 3);
    let (d, _) = store.put_blob(&mut data.as_slice()).unwrap();
    let chunks = store.blob_chunks(&d).unwrap().unwrap();
    let (victim, _) = chunks[1];
    // Reading it back once also writes out the pack's buffer.
    assert_eq!(read_all(&store, &d).unwrap(), data);
    let (f, offset, _) = store.chunk_location(&victim).unwrap().unwrap();
    flip_bit_of_chunk(&store, &victim, 10, 0);

    let mut r = store.open_blob(&d).unwrap().unwrap();
    let mut got = Vec::new();
    let err = r.read_to_end(&mut got).unwrap_err();
    // Nothing of the corrupt chunk (or after it) was returned: chunks are checked in
    // batches, before any of a batch's bytes are handed out.
    assert!(got.len() as u64 <= chunks[0].1);
    assert_eq!(got, data[..got.len()]);
    match StoreError::from_io(err) {
        StoreError::CorruptChunk { expected, .. } => assert_eq!(expected, victim),
        e => panic!("unexpected error {e}"),
    }
    let report = store.verify().unwrap();
    assert!(!report.problems.is_empty());

    // Cut the pack short before the chunk.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(offset)
        .unwrap();
    match read_all(&store, &d) {
        Err(StoreError::MissingChunk(m)) => assert_eq!(m, victim),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn names_are_validated() {
    let file = Node::Symlink {
        target: b"x".to_vec(),
    };
    let mut dir = Directory::new();
    for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
        assert!(
            matches!(
                dir.add(bad.to_vec(), file.clone()),
                Err(StoreError::InvalidName { .. })
            ),
            "{bad:?} accepted"
        );
    }
    dir.add("ok", file.clone()).unwrap();
    assert!(matches!(
        dir.add("ok", file.clone()),
        Err(StoreError::DuplicateName(_))
    ));
    assert!(matches!(
        dir.add("t", Node::Symlink { target: vec![] }),
        Err(StoreError::InvalidSymlinkTarget { .. })
    ));
    assert!(matches!(
        dir.add(
            "t",
            Node::Symlink {
                target: b"a\0".to_vec()
            }
        ),
        Err(StoreError::InvalidSymlinkTarget { .. })
    ));
}

#[test]
fn directory_encoding_roundtrips_and_rejects_bad_input() {
    let mut dir = Directory::new();
    dir.add(
        "b",
        Node::Symlink {
            target: b"t".to_vec(),
        },
    )
    .unwrap();
    dir.add(
        "a",
        Node::File {
            digest: B3Digest::of(b""),
            size: 0,
            executable: true,
        },
    )
    .unwrap();
    let enc = dir.encode();
    let back = Directory::decode(&enc).unwrap();
    assert_eq!(back, dir);
    assert_eq!(back.digest(), B3Digest::of(&enc));
    let names: Vec<&[u8]> = back.entries().map(|(n, _)| n).collect();
    assert_eq!(names, [&b"a"[..], b"b"]);

    // Every truncation and every single-byte change is rejected or decodes to a
    // different directory; none panics.
    for i in 0..enc.len() {
        assert!(Directory::decode(&enc[..i]).is_err());
        let mut m = enc.clone();
        m[i] ^= 0xff;
        if let Ok(d) = Directory::decode(&m) {
            assert_ne!(d.encode(), enc);
        }
    }

    // Unsorted and duplicate names.
    let entry = |name: &[u8]| {
        let mut v = Vec::new();
        put_bytes(&mut v, name);
        Node::Symlink {
            target: b"t".to_vec(),
        }
        .encode_into(&mut v);
        v
    };
    let raw = |names: &[&[u8]]| {
        let mut v = Vec::new();
        put_bytes(&mut v, b"tvix-castore-directory-1");
        wire::put_u64(&mut v, names.len() as u64);
        for n in names {
            v.extend(entry(n));
        }
        v
    };
    assert!(Directory::decode(&raw(&[b"a", b"b"])).is_ok());
    assert!(matches!(
        Directory::decode(&raw(&[b"b", b"a"])),
        Err(StoreError::UnsortedNames { .. })
    ));
    assert!(matches!(
        Directory::decode(&raw(&[b"a", b"a"])),
        Err(StoreError::DuplicateName(_))
    ));
    assert!(matches!(
        Directory::decode(&raw(&[b".."])),
        Err(StoreError::InvalidName { .. })
    ));
    // A huge count cannot make the decoder allocate.
    let mut v = Vec::new();
    put_bytes(&mut v, b"tvix-castore-directory-1");
    wire::put_u64(&mut v, u64::MAX);
    assert!(Directory::decode(&v).is_err());
}

#[test]
fn directories_need_their_children() {
    let store = Store::memory();
    let mut dir = Directory::new();
    dir.add(
        "f",
        Node::File {
            digest: B3Digest::of(b"x"),
            size: 1,
            executable: false,
        },
    )
    .unwrap();
    assert!(matches!(
        store.put_directory(&dir),
        Err(StoreError::BlobNotFound(_))
    ));
    store.put_blob(&mut &b"x"[..]).unwrap();
    let d = store.put_directory(&dir).unwrap();
    let mut parent = Directory::new();
    parent
        .add("sub", Node::Directory { digest: d, size: 7 })
        .unwrap();
    assert!(matches!(
        store.put_directory(&parent),
        Err(StoreError::SizeMismatch { .. })
    ));
    let mut parent = Directory::new();
    parent.add("sub", dir.node()).unwrap();
    let pd = store.put_directory(&parent).unwrap();
    let all = store.get_directory_recursive(&pd).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, pd);
    assert_eq!(all[1].1, dir);
}

fn sample_nar() -> Vec<u8> {
    let mut enc = NarEncoder::new(Vec::new());
    enc.begin_directory(None).unwrap();
    let big = pseudo_random(200_000, 9);
    enc.write_file(Some(b"big"), false, big.len() as u64, &mut big.as_slice())
        .unwrap();
    enc.write_file(Some(b"exe"), true, 3, &mut &b"abc"[..])
        .unwrap();
    enc.write_symlink(Some(b"link"), b"exe").unwrap();
    enc.begin_directory(Some(b"sub")).unwrap();
    enc.begin_directory(Some(b"empty")).unwrap();
    enc.end_directory(true).unwrap();
    enc.write_file(Some(b"zero"), false, 0, &mut &b""[..])
        .unwrap();
    enc.end_directory(true).unwrap();
    enc.end_directory(false).unwrap();
    enc.into_inner()
}

#[test]
fn nar_ingest_and_render_roundtrip() {
    let store = Store::memory();
    let nar = sample_nar();
    let (node, hash, size) = ingest_nar(&store, nar.as_slice()).unwrap();
    assert_eq!(size, nar.len() as u64);
    assert_eq!(hash, crate::hash::NixHash::sha256(&nar));
    let rendered = write_nar(&store, &node, Vec::new()).unwrap();
    assert_eq!(rendered, nar);

    // Single nodes at the root.
    for nar in [
        {
            let mut e = NarEncoder::new(Vec::new());
            e.write_file(None, true, 2, &mut &b"hi"[..]).unwrap();
            e.into_inner()
        },
        {
            let mut e = NarEncoder::new(Vec::new());
            e.write_symlink(None, b"/target").unwrap();
            e.into_inner()
        },
    ] {
        let (node, _, _) = ingest_nar(&store, nar.as_slice()).unwrap();
        assert_eq!(write_nar(&store, &node, Vec::new()).unwrap(), nar);
    }
}

#[test]
fn hostile_nar_registers_nothing() {
    let store = Store::memory();
    let sp = StorePath::from_base_name("00000000000000000000000000000000-x").unwrap();
    let nar = sample_nar();
    let hostile: Vec<Vec<u8>> = vec![
        nar[..nar.len() - 8].to_vec(),
        nar[..nar.len() / 2].to_vec(),
        {
            // Rename "sub" to ".." (same length), i.e. a traversal attempt.
            let mut m = nar.clone();
            let pos = m.windows(3).rposition(|w| w == b"sub").unwrap();
            m[pos..pos + 3].copy_from_slice(b"../");
            m
        },
        {
            // "link" -> "aaaa" breaks the ordering.
            let mut m = nar.clone();
            let pos = m.windows(4).rposition(|w| w == b"link").unwrap();
            m[pos..pos + 4].copy_from_slice(b"aaaa");
            m
        },
        b"not a nar".to_vec(),
    ];
    for h in hostile {
        assert!(import_nar(&store, h.as_slice(), sp.clone(), vec![], None).is_err());
        assert!(store.get_path_info(&sp).unwrap().is_none());
        assert!(store.path_infos().next().is_none());
    }
    // A wrong expected hash registers nothing either.
    let wrong = crate::hash::NixHash::sha256(b"other");
    assert!(matches!(
        import_nar(&store, nar.as_slice(), sp.clone(), vec![], Some(&wrong)),
        Err(StoreError::NarHashMismatch { .. })
    ));
    assert!(store.get_path_info(&sp).unwrap().is_none());
    let right = crate::hash::NixHash::sha256(&nar);
    let info = import_nar(&store, nar.as_slice(), sp.clone(), vec![], Some(&right)).unwrap();
    assert_eq!(store.get_path_info(&sp).unwrap(), Some(info));
}

#[test]
fn path_info_roundtrip_and_registration_needs_contents() {
    let sp = StorePath::from_base_name("00000000000000000000000000000000-x").unwrap();
    let drv = StorePath::from_base_name("11111111111111111111111111111111-x.drv").unwrap();
    let info = PathInfo {
        store_path: sp.clone(),
        node: Node::File {
            digest: B3Digest::of(b"hi"),
            size: 2,
            executable: false,
        },
        nar_sha256: [7; 32],
        nar_size: 128,
        references: vec![sp.clone(), drv.clone()],
        deriver: Some(drv),
        signatures: vec!["cache:abc=".into()],
        ca: Some("fixed:r:sha256:xyz".into()),
    };
    let enc = info.encode();
    assert_eq!(PathInfo::decode(&enc).unwrap(), info);
    for i in 0..enc.len() {
        assert!(PathInfo::decode(&enc[..i]).is_err());
    }
    let store = Store::memory();
    assert!(matches!(
        store.put_path_info(&info),
        Err(StoreError::BlobNotFound(_))
    ));
    store.put_blob(&mut &b"hi"[..]).unwrap();
    store.put_path_info(&info).unwrap();
    assert_eq!(store.get_path_info(&sp).unwrap(), Some(info));
}

#[test]
fn store_urls() {
    assert!(Store::open("memory://").is_ok());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("local://{}", dir.path().display());
    assert!(Store::open(&url).is_ok());
    // Reopening sees the same data.
    {
        let s = Store::open(&url).unwrap();
        s.put_blob(&mut &b"persist"[..]).unwrap();
    }
    let s = Store::open(&url).unwrap();
    assert!(s.has_blob(&B3Digest::of(b"persist")).unwrap());
    for bad in ["s3://bucket", "local://relative/dir", "nonsense"] {
        assert!(
            matches!(Store::open(bad), Err(StoreError::BadUrl { .. })),
            "{bad}"
        );
    }
}

#[test]
fn digest_parse_and_display() {
    let d = B3Digest::of(b"abc");
    assert_eq!(B3Digest::parse(&d.to_string()).unwrap(), d);
    assert_eq!(B3Digest::parse(&d.to_hex()).unwrap(), d);
    assert!(B3Digest::parse("b3:zz").is_err());
    assert!(B3Digest::parse("b3:00").is_err());
}

#[test]
fn two_handles_on_one_local_store() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::local(dir.path()).unwrap();
    let b = Store::local(dir.path()).unwrap();
    let sp = StorePath::from_base_name("00000000000000000000000000000000-x").unwrap();
    let nar = sample_nar();
    import_nar(&a, nar.as_slice(), sp.clone(), vec![], None).unwrap();
    // Registered paths are visible to the other handle, with all their contents.
    let info = b.get_path_info(&sp).unwrap().unwrap();
    assert_eq!(write_nar(&b, &info.node, Vec::new()).unwrap(), nar);
    import_nar(&b, nar.as_slice(), sp.clone(), vec![], None).unwrap();
    assert_eq!(a.path_infos().count(), 1);
}

#[test]
fn blobs_around_the_in_memory_limit() {
    let store = Store::memory();
    for len in [
        0,
        1,
        CHUNK_MIN - 1,
        CHUNK_MIN + 1,
        CHUNK_MAX,
        CHUNK_MAX + 1,
        3 * CHUNK_MAX,
    ] {
        let data = pseudo_random(len, len as u64 + 7);
        let (d, size) = store.put_blob(&mut data.as_slice()).unwrap();
        assert_eq!(d, B3Digest::of(&data), "{len}");
        assert_eq!(size, len as u64);
        assert_eq!(read_all(&store, &d).unwrap(), data, "{len}");
        let chunks = store.blob_chunks(&d).unwrap().unwrap();
        assert_eq!(chunks.iter().map(|c| c.1).sum::<u64>(), len as u64);
        assert!(chunks.iter().all(|c| c.1 <= CHUNK_MAX as u64));
        assert_eq!(chunks.is_empty(), len == 0);
    }
}

/// Every kind of range of a blob of several chunks: at the start, across chunk
/// boundaries, inside one chunk, at the end, past the end, empty; and that a ranged read
/// fetches only the chunks covering its range.
fn check_ranges(store: &Store) {
    let data = pseudo_random(3_000_000, 99);
    let (d, _) = store.put_blob(&mut data.as_slice()).unwrap();
    let chunks = store.blob_chunks(&d).unwrap().unwrap();
    assert!(chunks.len() > 8, "{} chunks", chunks.len());
    let mut bounds = vec![0u64];
    for (_, len) in &chunks {
        bounds.push(bounds.last().unwrap() + len);
    }
    let size = data.len() as u64;
    let b1 = bounds[1];
    let b5 = bounds[5];
    let cases: Vec<(u64, u64)> = vec![
        (0, 0),
        (0, 1),
        (0, 100),
        (0, b1),
        (b1 - 1, 2),
        (b1, 10),
        (b1 - 10, b5 - b1 + 20),
        (b5 + 3, 1000),
        (size - 1, 1),
        (size - 10, 100),
        (size, 5),
        (size, 0),
        (0, size),
        (0, u64::MAX),
        (12345, u64::MAX),
    ];
    for (offset, len) in cases {
        let got = store.read_blob_range(&d, offset, len).unwrap().unwrap();
        let end = offset.saturating_add(len).min(size);
        assert_eq!(
            &got[..],
            &data[offset as usize..end as usize],
            "range {offset}+{len}"
        );
    }
    let err = store.read_blob_range(&d, size + 1, 1).unwrap_err();
    assert!(
        matches!(err, StoreError::RangeOutOfBounds { offset, size: s, .. } if offset == size + 1 && s == size),
        "{err}"
    );
    assert!(store
        .read_blob_range(&B3Digest::of(b"absent"), 0, 1)
        .unwrap()
        .is_none());

    // Only the covering chunks are fetched.
    let before = store.range_chunk_reads();
    store.read_blob_range(&d, bounds[3] + 5, 10).unwrap();
    assert_eq!(store.range_chunk_reads() - before, 1);
    let before = store.range_chunk_reads();
    store.read_blob_range(&d, bounds[3] - 5, 10).unwrap();
    assert_eq!(store.range_chunk_reads() - before, 2);
    let before = store.range_chunk_reads();
    store
        .read_blob_range(&d, bounds[2], bounds[4] - bounds[2])
        .unwrap();
    assert_eq!(store.range_chunk_reads() - before, 2);
    let before = store.range_chunk_reads();
    store.read_blob_range(&d, size, 10).unwrap();
    assert_eq!(store.range_chunk_reads() - before, 0);

    // Empty and one-chunk blobs.
    let (e, _) = store.put_blob(&mut &b""[..]).unwrap();
    assert!(store
        .read_blob_range(&e, 0, 10)
        .unwrap()
        .unwrap()
        .is_empty());
    assert!(store.read_blob_range(&e, 1, 0).is_err());
    let (s, _) = store.put_blob(&mut &b"hello world"[..]).unwrap();
    assert_eq!(
        &store.read_blob_range(&s, 6, 100).unwrap().unwrap()[..],
        b"world"
    );
}

#[test]
fn ranged_reads_memory() {
    check_ranges(&Store::memory());
}

#[test]
fn ranged_reads_local() {
    let dir = tempfile::tempdir().unwrap();
    check_ranges(&Store::local(dir.path()).unwrap());
}

#[test]
fn ranged_read_of_a_corrupt_chunk_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path()).unwrap();
    let data = pseudo_random(1_000_000, 5);
    let (d, _) = store.put_blob(&mut data.as_slice()).unwrap();
    store.commit().unwrap();
    let chunks = store.blob_chunks(&d).unwrap().unwrap();
    let (pack, off, _) = store.chunk_location(&chunks[1].0).unwrap().unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[off as usize + 7] ^= 0xff;
    std::fs::write(&pack, bytes).unwrap();
    let first = chunks[0].1;
    // The chunk before it is fine; the corrupt one is reported, never returned.
    assert_eq!(
        &store.read_blob_range(&d, 0, first).unwrap().unwrap()[..],
        &data[..first as usize]
    );
    let err = store.read_blob_range(&d, first + 1, 5).unwrap_err();
    assert!(matches!(err, StoreError::CorruptChunk { .. }), "{err}");
}

/// A store composed of pack objects in a directory (`object_store`'s local store) and
/// redb metadata: no server needed.
#[cfg(feature = "cluster")]
fn composed_store(dir: &std::path::Path) -> Store {
    Store::composed(
        &format!("file://{}/objects", dir.display()),
        &format!("redb://{}/meta.redb", dir.display()),
    )
    .unwrap()
}

#[cfg(feature = "cluster")]
#[test]
fn ranged_reads_composed() {
    let dir = tempfile::tempdir().unwrap();
    check_ranges(&composed_store(dir.path()));
}

/// Registered paths survive the process (a second handle sees them), every chunk is in
/// a pack object, small chunks share objects, and `verify` checks them all.
#[cfg(feature = "cluster")]
#[test]
fn composed_store_registers_after_its_chunks_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let nar = sample_nar();
    let sp = StorePath::from_base_name("00000000000000000000000000000000-x").unwrap();
    {
        let store = composed_store(dir.path());
        for i in 0..50u64 {
            store
                .put_blob_bytes(&pseudo_random(100, 2 * i + 1))
                .unwrap();
        }
        import_nar(&store, nar.as_slice(), sp.clone(), vec![], None).unwrap();
        let stats = store.chunk_store_stats().unwrap();
        assert_eq!(stats.puts, 1, "{stats:?}");
    }
    let store = composed_store(dir.path());
    let info = store.get_path_info(&sp).unwrap().unwrap();
    assert_eq!(write_nar(&store, &info.node, Vec::new()).unwrap(), nar);
    let report = store.verify().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.paths, 1);
    assert!(report.chunks > 50, "{report:?}");
    let objects = std::fs::read_dir(dir.path().join("objects/packs"))
        .unwrap()
        .count();
    assert_eq!(objects, 1);
}

/// A blob larger than a pack and than a read block, read back through a second handle
/// (from the pack objects, chunks spanning blocks included).
#[cfg(feature = "cluster")]
#[test]
fn composed_store_reads_back_what_spans_packs_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(20 << 20, 5);
    let d = {
        let store = composed_store(dir.path());
        let (d, _) = store.put_blob(&mut data.as_slice()).unwrap();
        PathInfoService::commit(&store).unwrap();
        assert!(store.chunk_store_stats().unwrap().puts >= 2);
        d
    };
    let store = composed_store(dir.path());
    assert_eq!(read_all(&store, &d).unwrap(), data);
    let mid = (9 << 20) + 12345;
    let got = store.read_blob_range(&d, mid, 3 << 20).unwrap().unwrap();
    assert_eq!(&got[..], &data[mid as usize..mid as usize + (3 << 20)]);
    let report = store.verify().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// Rewrites every chunk location of the (closed) local store in `dir` with `change`, as
/// an older tvix or a damaged database would have left it.
fn rewrite_locations(dir: &std::path::Path, mut change: impl FnMut(&mut backend::Location)) {
    use redb::ReadableTable;
    let db = backend::open_db(&dir.join("db.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(backend::Table::Chunks.def()).unwrap();
        let all: Vec<(Vec<u8>, Vec<u8>)> = table
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value().to_vec(), v.value().to_vec())
            })
            .collect();
        assert!(!all.is_empty());
        for (k, v) in all {
            let mut loc = backend::Location::decode(&v).unwrap();
            change(&mut loc);
            table.insert(k.as_slice(), loc.encode().as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

/// Flips one bit of chunk `victim` in its pack (found through `store`).
fn flip_bit_of_chunk(store: &Store, victim: &B3Digest, at: u64, bit: u8) {
    let (pack, offset, _) = store.chunk_location(victim).unwrap().unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[(offset + at) as usize] ^= 1 << bit;
    std::fs::write(&pack, bytes).unwrap();
}

#[test]
fn chunk_locations_encode_with_and_without_a_checksum() {
    let with = backend::Location {
        pack: "1-2-3.pack".into(),
        offset: 7 << 33,
        len: CHUNK_MAX as u64,
        sum: Some(0x8000_0000_0000_0001),
    };
    assert_eq!(backend::Location::decode(&with.encode()).unwrap(), with);
    let without = backend::Location {
        sum: None,
        ..with.clone()
    };
    assert_eq!(
        backend::Location::decode(&without.encode()).unwrap(),
        without
    );
    // What stores written before checksums hold: offset, length, name.
    let mut old = Vec::new();
    old.extend_from_slice(&5u64.to_le_bytes());
    old.extend_from_slice(&100u64.to_le_bytes());
    old.extend_from_slice(b"9-9-9.pack");
    let loc = backend::Location::decode(&old).unwrap();
    assert_eq!((loc.offset, loc.len, loc.sum), (5, 100, None));
    assert_eq!(loc.encode(), old);
    // A checksum flagged but cut off, a name missing, a length too large.
    let enc = with.encode();
    for bad in [&enc[..20], &enc[..24], &old[..16]] {
        assert!(backend::Location::decode(bad).is_err());
    }
    let mut long = old.clone();
    long[8..16].copy_from_slice(&(CHUNK_MAX as u64 + 1).to_le_bytes());
    assert!(backend::Location::decode(&long).is_err());
}

#[test]
fn local_chunks_are_checked_by_checksum_and_old_stores_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(1_000_000, 11);
    let (d, chunks) = {
        let store = Store::local(dir.path()).unwrap();
        let (d, _) = store.put_blob(&mut data.as_slice()).unwrap();
        store.commit().unwrap();
        (d, store.blob_chunks(&d).unwrap().unwrap())
    };
    // Every location written carries the checksum of its chunk's bytes.
    let packs = dir.path().join("packs");
    let mut n_locations = 0;
    rewrite_locations(dir.path(), |l| {
        let bytes = std::fs::read(packs.join(&l.pack)).unwrap();
        let piece = &bytes[l.offset as usize..(l.offset + l.len) as usize];
        assert_eq!(l.sum, Some(chunk_sum::of(piece)));
        n_locations += 1;
    });
    assert_eq!(n_locations, chunks.len());
    // A store whose locations have no checksum (written before they existed) reads the
    // same, and still finds a damaged chunk (by its digest).
    rewrite_locations(dir.path(), |l| l.sum = None);
    let store = Store::local(dir.path()).unwrap();
    assert_eq!(read_all(&store, &d).unwrap(), data);
    flip_bit_of_chunk(&store, &chunks[2].0, 5, 3);
    match read_all(&store, &d) {
        Err(StoreError::CorruptChunk { expected, .. }) => assert_eq!(expected, chunks[2].0),
        other => panic!("unexpected {other:?}"),
    }
    flip_bit_of_chunk(&store, &chunks[2].0, 5, 3);
    assert_eq!(read_all(&store, &d).unwrap(), data);
    // Writing to an old store: new chunks get checksums, old ones are left as they are.
    let more = pseudo_random(300_000, 12);
    let (d2, _) = store.put_blob(&mut more.as_slice()).unwrap();
    store.commit().unwrap();
    assert_eq!(read_all(&store, &d2).unwrap(), more);
    let n_new = store.blob_chunks(&d2).unwrap().unwrap().len();
    drop(store);
    let (mut with, mut without) = (0, 0);
    rewrite_locations(dir.path(), |l| match l.sum {
        Some(_) => with += 1,
        None => without += 1,
    });
    assert_eq!((with, without), (n_new, chunks.len()));
}

#[test]
fn a_damaged_checksum_does_not_reject_good_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(600_000, 13);
    let d = {
        let store = Store::local(dir.path()).unwrap();
        let (d, _) = store.put_blob(&mut data.as_slice()).unwrap();
        store.commit().unwrap();
        d
    };
    rewrite_locations(dir.path(), |l| l.sum = l.sum.map(|s| s ^ 1));
    let store = Store::local(dir.path()).unwrap();
    assert_eq!(read_all(&store, &d).unwrap(), data);
    assert!(store.verify().unwrap().problems.is_empty());
}

/// Bit positions in the first bytes of a buffer whose flipping together leaves its
/// CRC-64 unchanged (a CRC is linear over equal-length inputs, so among any 65 single-bit
/// changes some set cancels out): what someone forging a pack would write.
fn bits_keeping_the_checksum(data: &[u8]) -> Vec<usize> {
    let base = chunk_sum::of(data);
    // An XOR basis of the checksum changes, indexed by their top bit, each with the set
    // of flips (a bit mask over the first 128 bits) that makes it.
    let mut basis: [Option<(u64, u128)>; 64] = [None; 64];
    for bit in 0..128usize {
        let mut flipped = data.to_vec();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let mut v = chunk_sum::of(&flipped) ^ base;
        let mut set: u128 = 1 << bit;
        for top in (0..64).rev() {
            if v >> top & 1 == 0 {
                continue;
            }
            match basis[top] {
                Some((bv, bs)) => {
                    v ^= bv;
                    set ^= bs;
                }
                None => {
                    basis[top] = Some((v, set));
                    break;
                }
            }
        }
        if v == 0 {
            return (0..128).filter(|b| set >> b & 1 == 1).collect();
        }
    }
    unreachable!("65 vectors in a 64-bit space are dependent")
}

#[test]
fn a_forged_pack_passes_the_checksum_but_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path()).unwrap();
    let data = pseudo_random(200_000, 14);
    let (d, _) = store.put_blob(&mut data.as_slice()).unwrap();
    store.commit().unwrap();
    let chunks = store.blob_chunks(&d).unwrap().unwrap();
    let (victim, len) = chunks[0];
    let (pack, offset, _) = store.chunk_location(&victim).unwrap().unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let piece = offset as usize..(offset + len) as usize;
    let bits = bits_keeping_the_checksum(&bytes[piece.clone()]);
    for b in &bits {
        bytes[offset as usize + b / 8] ^= 1 << (b % 8);
    }
    assert_eq!(
        chunk_sum::of(&bytes[piece.clone()]),
        chunk_sum::of(&data[..len as usize])
    );
    std::fs::write(&pack, &bytes).unwrap();
    // The documented limit: a read checks the checksum only, so it returns the forged
    // bytes; `verify` hashes every chunk and names it.
    let read = read_all(&store, &d).unwrap();
    assert_ne!(read, data);
    assert_eq!(&read[..len as usize], &bytes[piece]);
    let report = store.verify().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&victim.to_string())),
        "{:?}",
        report.problems
    );
}

#[test]
fn the_collector_records_checksums_for_the_chunks_it_moves() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let sd = crate::store_path::StoreDir::default();
    let (keep, keep_data) = (files.path().join("keep"), pseudo_random(400_000, 21));
    let drop_it = files.path().join("drop");
    std::fs::write(&keep, &keep_data).unwrap();
    std::fs::write(&drop_it, pseudo_random(400_000, 22)).unwrap();
    let kept = {
        let store = Store::local(dir.path()).unwrap();
        let kept = nar::import_path(&store, &sd, &keep).unwrap();
        nar::import_path(&store, &sd, &drop_it).unwrap();
        gc::GcRoots::in_store_dir(dir.path())
            .add_direct("keep", &sd.display(&kept.store_path))
            .unwrap();
        // Locations as an older tvix wrote them: no checksums.
        kept
    };
    rewrite_locations(dir.path(), |l| l.sum = None);
    let store = Store::local(dir.path()).unwrap();
    let opts = gc::GcOptions {
        dry_run: false,
        store_dir: sd.clone(),
    };
    let report = store.collect_garbage(&opts, &|| {}).unwrap();
    assert_eq!(report.deleted.len(), 1);
    drop(store);
    // The live chunks were moved to a new pack, each with the checksum of its bytes.
    let packs = dir.path().join("packs");
    let mut moved = 0;
    rewrite_locations(dir.path(), |l| {
        assert!(l.pack.contains("-gc"), "{} was not rewritten", l.pack);
        let bytes = std::fs::read(packs.join(&l.pack)).unwrap();
        let piece = &bytes[l.offset as usize..(l.offset + l.len) as usize];
        assert_eq!(l.sum, Some(chunk_sum::of(piece)));
        moved += 1;
    });
    assert!(moved > 1);
    let store = Store::local(dir.path()).unwrap();
    let Node::File { digest, .. } = kept.node else {
        panic!("not a file: {:?}", kept.node)
    };
    assert_eq!(read_all(&store, &digest).unwrap(), keep_data);
    assert!(store.verify().unwrap().problems.is_empty());
}
