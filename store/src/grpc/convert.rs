//! Conversions between the protocol's messages and the store's types. Every conversion
//! from a message validates it: digest lengths, entry names, sort order and uniqueness,
//! symlink targets, store paths, signatures and content addresses. Invalid messages are
//! [`StoreError::InvalidMessage`] (or the castore's own naming errors).

use super::proto;
use crate::castore::directory::lossy;
use crate::castore::{validate_symlink_target, B3Digest, Directory, Node, StoreError, B3_LEN};
use crate::hash::NixHash;
use crate::pathinfo::PathInfo;
use crate::store_path::StorePath;

/// A [`StoreError::InvalidMessage`].
pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidMessage {
        what,
        reason: reason.into(),
    }
}

/// A BLAKE3 digest from a message field.
pub(crate) fn digest_from(what: &'static str, b: &[u8]) -> Result<B3Digest, StoreError> {
    <[u8; B3_LEN]>::try_from(b)
        .map(B3Digest)
        .map_err(|_| invalid(what, format!("digest has {} bytes, not {B3_LEN}", b.len())))
}

/// The message form of a node (also in other tvix protocols' messages).
pub fn node_to_proto(n: &Node) -> proto::Node {
    let kind = match n {
        Node::Directory { digest, size } => proto::node::Kind::Directory(proto::DirectoryNode {
            digest: digest.0.to_vec().into(),
            size: *size,
        }),
        Node::File {
            digest,
            size,
            executable,
        } => proto::node::Kind::File(proto::FileNode {
            digest: digest.0.to_vec().into(),
            size: *size,
            executable: *executable,
        }),
        Node::Symlink { target } => proto::node::Kind::Symlink(proto::SymlinkNode {
            target: target.clone().into(),
        }),
    };
    proto::Node { kind: Some(kind) }
}

/// A node from a message, validated (digest lengths, symlink target); `what` names the
/// message in errors.
pub fn node_from_proto(what: &'static str, n: Option<proto::Node>) -> Result<Node, StoreError> {
    let kind = n
        .and_then(|n| n.kind)
        .ok_or_else(|| invalid(what, "a node is missing"))?;
    Ok(match kind {
        proto::node::Kind::Directory(d) => Node::Directory {
            digest: digest_from(what, &d.digest)?,
            size: d.size,
        },
        proto::node::Kind::File(f) => Node::File {
            digest: digest_from(what, &f.digest)?,
            size: f.size,
            executable: f.executable,
        },
        proto::node::Kind::Symlink(s) => {
            validate_symlink_target(&s.target)?;
            Node::Symlink {
                target: s.target.to_vec(),
            }
        }
    })
}

/// The message form of a directory (entries in name order).
pub(crate) fn directory_to_proto(d: &Directory) -> proto::Directory {
    proto::Directory {
        entries: d
            .entries()
            .map(|(name, node)| proto::Entry {
                name: name.to_vec().into(),
                node: Some(node_to_proto(node)),
            })
            .collect(),
    }
}

/// A directory from a message: names valid, strictly sorted (so unique), nodes valid.
pub(crate) fn directory_from_proto(d: proto::Directory) -> Result<Directory, StoreError> {
    let mut dir = Directory::new();
    let mut prev: Option<&[u8]> = None;
    for e in &d.entries {
        if let Some(p) = prev {
            if p == &e.name[..] {
                return Err(StoreError::DuplicateName(lossy(&e.name)));
            }
            if p > &e.name[..] {
                return Err(StoreError::UnsortedNames {
                    prev: lossy(p),
                    name: lossy(&e.name),
                });
            }
        }
        prev = Some(&e.name);
        let node = node_from_proto("directory", e.node.clone())?;
        dir.add(e.name.to_vec(), node)?;
    }
    Ok(dir)
}

/// The message form of a path info.
pub(crate) fn path_info_to_proto(i: &PathInfo) -> proto::PathInfo {
    proto::PathInfo {
        store_path: i.store_path.to_base_name(),
        root: Some(node_to_proto(&i.node)),
        nar_sha256: i.nar_sha256.to_vec().into(),
        nar_size: i.nar_size,
        references: i.references.iter().map(|r| r.to_base_name()).collect(),
        deriver: i.deriver.as_ref().map(|d| d.to_base_name()),
        signatures: i.signatures.clone(),
        ca: i.ca.clone(),
    }
}

/// A store path from a base name in a message.
pub(crate) fn store_path_from(what: &'static str, s: &str) -> Result<StorePath, StoreError> {
    StorePath::from_base_name(s).map_err(|e| invalid(what, format!("store path '{s}': {e}")))
}

/// Checks a signature's form: `keyname:base64`, the key name not empty.
fn validate_signature(s: &str) -> Result<(), StoreError> {
    let ok = s.split_once(':').is_some_and(|(name, sig)| {
        !name.is_empty() && data_encoding::BASE64.decode(sig.as_bytes()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "path info",
            format!("signature '{s}' is not 'keyname:base64'"),
        ))
    }
}

/// Checks a content address's form: `text:<hash>`, `fixed:<hash>` or `fixed:r:<hash>`,
/// the hash in any form Nix accepts.
fn validate_ca(s: &str) -> Result<(), StoreError> {
    let hash = s
        .strip_prefix("text:")
        .or_else(|| s.strip_prefix("fixed:r:"))
        .or_else(|| s.strip_prefix("fixed:"));
    match hash.map(|h| NixHash::parse(h, None)) {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(invalid("path info", format!("content address '{s}': {e}"))),
        None => Err(invalid(
            "path info",
            format!("content address '{s}' is not text:, fixed: or fixed:r:"),
        )),
    }
}

/// A path info from a message, every field validated.
pub(crate) fn path_info_from_proto(p: proto::PathInfo) -> Result<PathInfo, StoreError> {
    const WHAT: &str = "path info";
    let store_path = store_path_from(WHAT, &p.store_path)?;
    let node = node_from_proto(WHAT, p.root)?;
    let nar_sha256: [u8; 32] = p.nar_sha256[..].try_into().map_err(|_| {
        invalid(
            WHAT,
            format!("NAR sha256 has {} bytes, not 32", p.nar_sha256.len()),
        )
    })?;
    // The smallest NAR (an empty regular file) is longer than this.
    if p.nar_size < 64 {
        return Err(invalid(
            WHAT,
            format!("NAR size {} is too small", p.nar_size),
        ));
    }
    let references = p
        .references
        .iter()
        .map(|r| store_path_from(WHAT, r))
        .collect::<Result<Vec<_>, _>>()?;
    let deriver = match &p.deriver {
        Some(d) => {
            let sp = store_path_from(WHAT, d)?;
            if !sp.name().ends_with(".drv") {
                return Err(invalid(WHAT, format!("deriver '{d}' is not a .drv path")));
            }
            Some(sp)
        }
        None => None,
    };
    for s in &p.signatures {
        validate_signature(s)?;
    }
    if let Some(ca) = &p.ca {
        validate_ca(ca)?;
    }
    Ok(PathInfo {
        store_path,
        node,
        nar_sha256,
        nar_size: p.nar_size,
        references,
        deriver,
        signatures: p.signatures,
        ca: p.ca,
    })
}
