//! Nix's export format (`nix-store --export` / `--import`), both ways.
//!
//! A stream of paths, each introduced by the number 1 and the stream ended by 0. Each path
//! is its NAR, then the number `0x4558494e` (`"NIXE"` read as little-endian bytes), its
//! store path, the count and list of its references, its deriver (empty if unknown) and
//! the number 0 (Nix once allowed 1 followed by a signature here; it is read and
//! ignored). Numbers are 64-bit little-endian; strings are a number (the length), the
//! bytes, and zero bytes up to a multiple of 8.
//!
//! Importing ingests every path of the stream first and registers nothing until the
//! whole stream was read and checked: each NAR's hash is computed while reading and
//! checked again against what the castore renders, every reference must be valid already
//! or come in the same stream, and the paths are registered references first, in one
//! batch.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use super::nar::{ingest_nar, sha256_array, write_nar};
use super::{check_nar_hash, BlobService, DirectoryService, StoreError};
use crate::pathinfo::{PathInfo, PathInfoService};
use crate::store_path::{StoreDir, StorePath};

/// The number after each path's NAR.
pub const EXPORT_MAGIC: u64 = 0x4558_494e;

/// Longest string (a store path) accepted in an export stream.
const MAX_STRING: u64 = 4096;

fn put_u64<W: Write>(w: &mut W, n: u64) -> io::Result<()> {
    w.write_all(&n.to_le_bytes())
}

fn put_str<W: Write>(w: &mut W, s: &[u8]) -> io::Result<()> {
    put_u64(w, s.len() as u64)?;
    w.write_all(s)?;
    let pad = (8 - s.len() % 8) % 8;
    w.write_all(&[0u8; 8][..pad])
}

fn bad(reason: &'static str) -> StoreError {
    StoreError::Decode {
        what: "export stream",
        reason,
    }
}

fn get_u64<R: Read>(r: &mut R) -> Result<u64, StoreError> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            bad("it ends early")
        } else {
            StoreError::Io(e)
        }
    })?;
    Ok(u64::from_le_bytes(b))
}

fn get_str<R: Read>(r: &mut R) -> Result<String, StoreError> {
    let len = get_u64(r)?;
    if len > MAX_STRING {
        return Err(bad("a string is too long"));
    }
    let padded = len.div_ceil(8) * 8;
    let mut buf = vec![0u8; padded as usize];
    r.read_exact(&mut buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            bad("it ends early")
        } else {
            StoreError::Io(e)
        }
    })?;
    if buf[len as usize..].iter().any(|&b| b != 0) {
        return Err(bad("string padding is not zero"));
    }
    buf.truncate(len as usize);
    String::from_utf8(buf).map_err(|_| bad("a string is not UTF-8"))
}

/// Sorts paths references first, as Nix orders exports and `nix-store -qR`: a depth-first
/// walk over the paths in Nix's order (by base name), each path's references (among
/// `infos`, by base name) visited before it. A cycle is an error.
pub fn references_first(infos: &[PathInfo]) -> Result<Vec<PathInfo>, StoreError> {
    let by_name: BTreeMap<String, &PathInfo> = infos
        .iter()
        .map(|i| (i.store_path.to_base_name(), i))
        .collect();
    let mut out = Vec::with_capacity(by_name.len());
    let mut done: BTreeSet<&str> = BTreeSet::new();
    // Iterative depth-first walk: (path, its references left to visit).
    for root in by_name.keys() {
        if done.contains(root.as_str()) {
            continue;
        }
        let mut on_stack: BTreeSet<&str> = BTreeSet::new();
        let mut stack: Vec<(&str, Vec<String>)> = Vec::new();
        let refs_of = |name: &str| -> Vec<String> {
            let mut refs: Vec<String> = by_name[name]
                .references
                .iter()
                .map(StorePath::to_base_name)
                .filter(|r| r != name && by_name.contains_key(r))
                .collect();
            refs.sort();
            refs.reverse();
            refs
        };
        on_stack.insert(root);
        stack.push((root, refs_of(root)));
        while let Some((name, refs)) = stack.last_mut() {
            match refs.pop() {
                Some(r) => {
                    let (r, _) = by_name.get_key_value(&r).ok_or(bad("vanished"))?;
                    if done.contains(r.as_str()) {
                        continue;
                    }
                    if !on_stack.insert(r) {
                        return Err(StoreError::InvalidMessage {
                            what: "references",
                            reason: format!("cycle through '{r}'"),
                        });
                    }
                    let refs = refs_of(r);
                    stack.push((r, refs));
                }
                None => {
                    let name: &str = name;
                    on_stack.remove(name);
                    done.insert(name);
                    out.push(by_name[name].clone());
                    stack.pop();
                }
            }
        }
    }
    Ok(out)
}

/// Writes `infos` (in the order given) in Nix's export format.
pub fn write_export<S, W>(
    store: &S,
    store_dir: &StoreDir,
    infos: &[PathInfo],
    mut w: W,
) -> Result<W, StoreError>
where
    S: BlobService + DirectoryService + ?Sized,
    W: Write,
{
    for info in infos {
        put_u64(&mut w, 1)?;
        w = write_nar(store, &info.node, w)?;
        put_u64(&mut w, EXPORT_MAGIC)?;
        put_str(&mut w, store_dir.display(&info.store_path).as_bytes())?;
        put_u64(&mut w, info.references.len() as u64)?;
        let mut refs: Vec<String> = info
            .references
            .iter()
            .map(|r| store_dir.display(r))
            .collect();
        refs.sort();
        for r in &refs {
            put_str(&mut w, r.as_bytes())?;
        }
        let deriver = info
            .deriver
            .as_ref()
            .map(|d| store_dir.display(d))
            .unwrap_or_default();
        put_str(&mut w, deriver.as_bytes())?;
        put_u64(&mut w, 0)?;
    }
    put_u64(&mut w, 0)?;
    w.flush()?;
    Ok(w)
}

/// Reads an export stream into the castore and returns the path infos it describes, in
/// stream order, registering nothing.
pub fn read_export<S, R>(
    store: &S,
    store_dir: &StoreDir,
    mut r: R,
) -> Result<Vec<PathInfo>, StoreError>
where
    S: BlobService + DirectoryService + ?Sized,
    R: Read,
{
    let mut out = Vec::new();
    loop {
        match get_u64(&mut r)? {
            0 => return Ok(out),
            1 => {}
            _ => {
                return Err(StoreError::InvalidMessage {
                    what: "export stream",
                    reason: "input doesn't look like something created by 'nix-store --export'"
                        .into(),
                })
            }
        }
        let (node, hash, size) = ingest_nar(store, &mut r)?;
        if get_u64(&mut r)? != EXPORT_MAGIC {
            return Err(StoreError::InvalidMessage {
                what: "export stream",
                reason: "Nix archive cannot be imported; wrong format".into(),
            });
        }
        let store_path = store_dir.parse_path(&get_str(&mut r)?)?;
        let n = get_u64(&mut r)?;
        let mut references = Vec::new();
        for _ in 0..n {
            // Each reference takes at least 8 bytes of the stream: a bogus count ends
            // with the stream, not with memory.
            references.push(store_dir.parse_path(&get_str(&mut r)?)?);
        }
        let deriver = get_str(&mut r)?;
        let deriver = if deriver.is_empty() {
            None
        } else {
            Some(store_dir.parse_path(&deriver)?)
        };
        match get_u64(&mut r)? {
            0 => {}
            1 => {
                get_str(&mut r)?;
            }
            _ => return Err(bad("bad signature flag")),
        }
        out.push(PathInfo {
            store_path,
            node,
            nar_sha256: sha256_array(&hash),
            nar_size: size,
            references,
            deriver,
            signatures: Vec::new(),
            ca: None,
        });
    }
}

/// Imports an export stream: reads it whole ([`read_export`]), checks it, and registers
/// its paths references first in one batch (see the module's documentation). Paths
/// already valid are left as they are. Returns the paths in stream order.
pub fn import_export<S, R>(
    store: &S,
    store_dir: &StoreDir,
    r: R,
) -> Result<Vec<PathInfo>, StoreError>
where
    S: BlobService + DirectoryService + PathInfoService + ?Sized,
    R: Read,
{
    let infos = read_export(store, store_dir, r)?;
    let mut seen = BTreeSet::new();
    for info in &infos {
        if !seen.insert(info.store_path.clone()) {
            return Err(StoreError::InvalidMessage {
                what: "export stream",
                reason: format!("'{}' comes twice", store_dir.display(&info.store_path)),
            });
        }
    }
    for info in &infos {
        // What the castore now holds must render to the NAR that was read.
        check_nar_hash(store, info)?;
        for r in &info.references {
            if !seen.contains(r) && store.get_path_info(r)?.is_none() {
                return Err(StoreError::InvalidMessage {
                    what: "export stream",
                    reason: format!(
                        "cannot import '{}': its reference '{}' is neither valid nor in the stream",
                        store_dir.display(&info.store_path),
                        store_dir.display(r)
                    ),
                });
            }
        }
    }
    for info in references_first(&infos)? {
        if store.get_path_info(&info.store_path)?.is_none() {
            store.put_path_info_batched(&info)?;
        }
    }
    store.commit()?;
    Ok(infos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::castore::{Node, Store};

    fn sp(c: char, name: &str) -> StorePath {
        StorePath::from_base_name(&format!("{}-{name}", c.to_string().repeat(32))).unwrap()
    }

    /// A registered-looking path info for `contents`, referring to `refs`.
    fn info(store: &Store, path: StorePath, contents: &[u8], refs: &[&StorePath]) -> PathInfo {
        let (digest, size) = store.put_blob_bytes(contents).unwrap();
        let node = Node::File {
            digest,
            size,
            executable: false,
        };
        let (hash, nar_size) = write_nar(store, &node, crate::nar::NarHasher::new())
            .unwrap()
            .finish();
        PathInfo {
            store_path: path,
            node,
            nar_sha256: sha256_array(&hash),
            nar_size,
            references: refs.iter().map(|r| (*r).clone()).collect(),
            deriver: None,
            signatures: Vec::new(),
            ca: None,
        }
    }

    #[test]
    fn references_first_is_a_depth_first_post_order() {
        let store = Store::memory();
        let (a, b, c, d) = (sp('a', "a"), sp('b', "b"), sp('c', "c"), sp('d', "d"));
        // a -> c, b -> a, b -> d, c -> itself
        let infos = vec![
            info(&store, b.clone(), b"b", &[&a, &d]),
            info(&store, a.clone(), b"a", &[&c]),
            info(&store, c.clone(), b"c", &[&c]),
            info(&store, d.clone(), b"d", &[]),
        ];
        let order: Vec<StorePath> = references_first(&infos)
            .unwrap()
            .into_iter()
            .map(|i| i.store_path)
            .collect();
        assert_eq!(order, vec![c.clone(), a.clone(), d, b]);
        let cyclic = vec![
            info(&store, a.clone(), b"a", &[&c]),
            info(&store, c, b"c", &[&a]),
        ];
        assert!(references_first(&cyclic).is_err());
    }

    #[test]
    fn round_trip_and_refusals() {
        let sd = StoreDir::default();
        let from = Store::memory();
        let (a, b) = (sp('a', "a"), sp('b', "b"));
        let infos = vec![
            info(&from, a.clone(), b"a", &[]),
            info(&from, b.clone(), b"b", &[&a]),
        ];
        let stream = write_export(&from, &sd, &infos, Vec::new()).unwrap();
        let to = Store::memory();
        let got = import_export(&to, &sd, &stream[..]).unwrap();
        assert_eq!(got, infos);
        assert_eq!(to.get_path_info(&b).unwrap().as_ref(), Some(&infos[1]));

        // `b` alone refers to a path the target does not have.
        let lone = write_export(&from, &sd, &infos[1..], Vec::new()).unwrap();
        let fresh = Store::memory();
        assert!(import_export(&fresh, &sd, &lone[..]).is_err());
        assert!(fresh.path_infos().next().is_none());
        // Every cut of the stream fails and registers nothing.
        for cut in [0, 7, 8, 100, stream.len() - 9, stream.len() - 1] {
            let fresh = Store::memory();
            assert!(import_export(&fresh, &sd, &stream[..cut]).is_err(), "{cut}");
            assert!(fresh.path_infos().next().is_none());
        }
        // A wrong magic number after the NAR.
        let mut bad = stream.clone();
        let magic = EXPORT_MAGIC.to_le_bytes();
        let at = bad.windows(8).position(|w| w == magic).unwrap();
        bad[at] ^= 1;
        assert!(read_export(&Store::memory(), &sd, &bad[..]).is_err());
    }
}
