//! The NAR listing of a path (`/<hash part>.ls`), as Nix writes it next to a narinfo with
//! `write-nar-listing=1`: `{"version":1,"root":NODE}`, where a directory is
//! `{"type":"directory","entries":{NAME:NODE,...}}`, a symlink
//! `{"type":"symlink","target":T}` and a regular file
//! `{"type":"regular","size":N,"executable":true,"narOffset":O}` (`executable` only when
//! set). `narOffset` is where the file's contents start in
//! the NAR; it is computed from the NAR framing, so no NAR is rendered.

use std::fmt::Write as _;

use crate::castore::{DirectoryService, Node, StoreError};

/// The size of a NAR string of `len` bytes: its 8-byte length and the bytes padded to 8.
fn nar_str(len: u64) -> u64 {
    8 + len.div_ceil(8) * 8
}

/// `s` as a JSON string: Nix's writer escapes `"`, `\` and control characters.
fn json_string(out: &mut String, s: &[u8]) {
    out.push('"');
    for c in String::from_utf8_lossy(s).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A directory being listed: its entries and the index of the next one.
struct Open {
    entries: Vec<(Vec<u8>, Node)>,
    next: usize,
}

/// The listing of the tree at `root`, as JSON text. Directories are walked with an
/// explicit stack, so depth is not limited by the call stack.
pub fn listing<S: DirectoryService + ?Sized>(store: &S, root: &Node) -> Result<String, StoreError> {
    let mut out = String::from("{\"version\":1,\"root\":");
    // The NAR starts with the "nix-archive-1" string.
    let mut offset = nar_str(13);
    let mut stack: Vec<Open> = Vec::new();
    node(store, root, &mut out, &mut offset, &mut stack)?;
    while let Some(top) = stack.last_mut() {
        if top.next < top.entries.len() {
            let (name, child) = top.entries[top.next].clone();
            if top.next > 0 {
                out.push(',');
            }
            top.next += 1;
            json_string(&mut out, &name);
            out.push(':');
            // "entry" "(" "name" NAME "node", then the node.
            offset += nar_str(5) + nar_str(1) + nar_str(4) + nar_str(name.len() as u64);
            offset += nar_str(4);
            node(store, &child, &mut out, &mut offset, &mut stack)?;
        } else {
            stack.pop();
            out.push_str("}}");
            // The directory's ")", then the ")" of the entry holding it, if any.
            offset += nar_str(1);
            if !stack.is_empty() {
                offset += nar_str(1);
            }
        }
    }
    out.push('}');
    Ok(out)
}

/// Lists `n`, whose NAR serialisation starts at `offset` (its "("), and moves `offset`
/// past it; a directory is opened on `stack` and finished by the caller's loop.
fn node<S: DirectoryService + ?Sized>(
    store: &S,
    n: &Node,
    out: &mut String,
    offset: &mut u64,
    stack: &mut Vec<Open>,
) -> Result<(), StoreError> {
    // "(" "type"
    *offset += nar_str(1) + nar_str(4);
    let in_directory = !stack.is_empty();
    match n {
        Node::File {
            size, executable, ..
        } => {
            *offset += nar_str(7);
            if *executable {
                *offset += nar_str(10) + nar_str(0);
            }
            // "contents", then the contents' length; the contents start after it.
            *offset += nar_str(8) + 8;
            let _ = write!(out, "{{\"type\":\"regular\",\"size\":{size}");
            if *executable {
                out.push_str(",\"executable\":true");
            }
            let _ = write!(out, ",\"narOffset\":{offset}");
            out.push('}');
            *offset += size.div_ceil(8) * 8 + nar_str(1);
        }
        Node::Symlink { target } => {
            *offset += nar_str(7) + nar_str(6) + nar_str(target.len() as u64) + nar_str(1);
            out.push_str("{\"type\":\"symlink\",\"target\":");
            json_string(out, target);
            out.push('}');
        }
        Node::Directory { digest, .. } => {
            *offset += nar_str(9);
            let dir = store
                .get_directory(digest)?
                .ok_or(StoreError::DirectoryNotFound(*digest))?;
            out.push_str("{\"type\":\"directory\",\"entries\":{");
            stack.push(Open {
                entries: dir
                    .entries()
                    .map(|(name, node)| (name.to_vec(), node.clone()))
                    .collect(),
                next: 0,
            });
            return Ok(());
        }
    }
    if in_directory {
        // The ")" of the entry.
        *offset += nar_str(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::castore::nar::{ingest_path, write_nar};
    use crate::castore::Store;

    /// Every `narOffset` of the listing points at its file's contents in the rendered NAR.
    #[test]
    fn offsets_point_at_the_contents() {
        let src = tempfile::tempdir().unwrap();
        let root = src.path().join("t");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/deep"), b"deep contents").unwrap();
        std::fs::write(root.join("a/odd"), b"seven!!").unwrap();
        std::fs::write(root.join("empty"), b"").unwrap();
        std::fs::write(root.join("x\"q"), b"quoted name").unwrap();
        std::os::unix::fs::symlink("a/odd", root.join("link")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(root.join("tool"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(root.join("tool"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let store = Store::memory();
        let (node, _, _) = ingest_path(&store, &root).unwrap();
        let nar = write_nar(&store, &node, Vec::new()).unwrap();
        let text = listing(&store, &node).unwrap();
        assert!(text.starts_with("{\"version\":1,\"root\":{\"type\":\"directory\""));
        for (name, contents) in [
            ("\"deep\"", &b"deep contents"[..]),
            ("\"odd\"", b"seven!!"),
            ("\"x\\\"q\"", b"quoted name"),
            ("\"tool\"", b"#!/bin/sh\n"),
        ] {
            let at = text
                .find(name)
                .unwrap_or_else(|| panic!("{name} in {text}"));
            let rest = &text[at..];
            let off: usize = rest[rest.find("\"narOffset\":").unwrap() + 12..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(&nar[off..off + contents.len()], contents, "{name}");
        }
        assert!(text.contains("\"tool\":{\"type\":\"regular\",\"size\":10,\"executable\":true,"));
        assert!(text.contains("\"link\":{\"type\":\"symlink\",\"target\":\"a/odd\"}"));
    }

    #[test]
    fn a_single_file() {
        let src = tempfile::tempdir().unwrap();
        let f = src.path().join("f");
        std::fs::write(&f, b"hello").unwrap();
        let store = Store::memory();
        let (node, _, _) = ingest_path(&store, &f).unwrap();
        let nar = write_nar(&store, &node, Vec::new()).unwrap();
        let text = listing(&store, &node).unwrap();
        assert_eq!(
            text,
            "{\"version\":1,\"root\":{\"type\":\"regular\",\"size\":5,\"narOffset\":96}}"
        );
        assert_eq!(&nar[96..101], b"hello");
    }
}
