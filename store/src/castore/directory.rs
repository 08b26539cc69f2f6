//! Directories as Merkle nodes, their canonical encoding, and the [`DirectoryService`].

use std::collections::BTreeMap;

use super::wire::{put_bytes, put_u64, Decoder};
use super::{B3Digest, StoreError};
use crate::nar::MAX_STRING_LEN;

/// A file system object as the castore sees it: what a directory entry (or a store path's
/// root) points to. Names live in the containing [`Directory`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// A subdirectory: the digest of its [`Directory`] and its size
    /// ([`Directory::size`]).
    Directory {
        /// The directory's digest.
        digest: B3Digest,
        /// Number of entries in the whole subtree.
        size: u64,
    },
    /// A regular file.
    File {
        /// The digest of its contents (a blob).
        digest: B3Digest,
        /// Its size in bytes.
        size: u64,
        /// Whether it is executable.
        executable: bool,
    },
    /// A symbolic link.
    Symlink {
        /// Where it points (never empty, no NUL).
        target: Vec<u8>,
    },
}

const KIND_DIRECTORY: u8 = 1;
const KIND_FILE: u8 = 2;
const KIND_SYMLINK: u8 = 3;

impl Node {
    /// Appends the canonical encoding of this node (without a name).
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Node::Directory { digest, size } => {
                out.push(KIND_DIRECTORY);
                out.extend_from_slice(&digest.0);
                put_u64(out, *size);
            }
            Node::File {
                digest,
                size,
                executable,
            } => {
                out.push(KIND_FILE);
                out.extend_from_slice(&digest.0);
                put_u64(out, *size);
                out.push(u8::from(*executable));
            }
            Node::Symlink { target } => {
                out.push(KIND_SYMLINK);
                put_bytes(out, target);
            }
        }
    }

    /// Decodes a node written by [`Node::encode_into`], validating symlink targets.
    pub(crate) fn decode_from(d: &mut Decoder<'_>) -> Result<Node, StoreError> {
        match d.u8()? {
            KIND_DIRECTORY => Ok(Node::Directory {
                digest: d.digest()?,
                size: d.u64()?,
            }),
            KIND_FILE => {
                let digest = d.digest()?;
                let size = d.u64()?;
                let executable = match d.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(d.err("bad executable flag")),
                };
                Ok(Node::File {
                    digest,
                    size,
                    executable,
                })
            }
            KIND_SYMLINK => {
                let target = d.bytes()?.to_vec();
                validate_symlink_target(&target)?;
                Ok(Node::Symlink { target })
            }
            _ => Err(d.err("unknown node kind")),
        }
    }

    /// The size this node contributes to its parent directory's [`Directory::size`]
    /// (one for the entry itself plus, for a directory, its subtree).
    fn tree_size(&self) -> u64 {
        match self {
            Node::Directory { size, .. } => size.saturating_add(1),
            _ => 1,
        }
    }
}

/// A name or target for an error message: lossily decoded, and cut short so that a
/// hostile 64 KiB name does not make a 64 KiB message.
pub(crate) fn lossy(b: &[u8]) -> String {
    const SHOWN: usize = 200;
    let s = String::from_utf8_lossy(&b[..b.len().min(SHOWN)]);
    if b.len() > SHOWN {
        format!("{s}... ({} bytes)", b.len())
    } else {
        s.into_owned()
    }
}

/// Checks that `name` may name a directory entry: not empty, not `.` or `..`, no `/` or
/// NUL, at most [`MAX_STRING_LEN`] bytes (the NAR limit).
pub fn validate_name(name: &[u8]) -> Result<(), StoreError> {
    let reason = if let Some(problem) = crate::nar::entry_name_problem(name) {
        problem
    } else if name.len() as u64 > MAX_STRING_LEN {
        "too long"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidName {
        name: lossy(name),
        reason,
    })
}

/// Checks that `target` may be a symlink target: not empty, no NUL, at most
/// [`MAX_STRING_LEN`] bytes.
pub fn validate_symlink_target(target: &[u8]) -> Result<(), StoreError> {
    let reason = if target.is_empty() {
        "empty"
    } else if target.contains(&0) {
        "contains NUL"
    } else if target.len() as u64 > MAX_STRING_LEN {
        "too long"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidSymlinkTarget {
        target: lossy(target),
        reason,
    })
}

/// A directory: entries with unique, valid names, kept sorted bytewise (the NAR order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    entries: BTreeMap<Vec<u8>, Node>,
}

const DIRECTORY_MAGIC: &[u8] = b"tvix-castore-directory-1";

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry, rejecting invalid names, invalid symlink targets and duplicates.
    pub fn add(&mut self, name: impl Into<Vec<u8>>, node: Node) -> Result<(), StoreError> {
        let name = name.into();
        validate_name(&name)?;
        if let Node::Symlink { target } = &node {
            validate_symlink_target(target)?;
        }
        if self.entries.contains_key(&name) {
            return Err(StoreError::DuplicateName(lossy(&name)));
        }
        self.entries.insert(name, node);
        Ok(())
    }

    /// The entries in name order.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        self.entries.iter().map(|(k, v)| (k.as_slice(), v))
    }

    /// The entry called `name`.
    pub fn get(&self, name: &[u8]) -> Option<&Node> {
        self.entries.get(name)
    }

    /// Number of direct entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the directory has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of entries in the whole subtree (each entry counts one, plus the size of the
    /// directories it points to). Recorded in [`Node::Directory`].
    pub fn size(&self) -> u64 {
        self.entries
            .values()
            .fold(0u64, |acc, n| acc.saturating_add(n.tree_size()))
    }

    /// The canonical encoding: the magic `tvix-castore-directory-1`, the entry count (u64
    /// LE), then per entry in name order the name (u64 LE length + bytes) and the node (kind
    /// byte 1 = directory: digest, size; 2 = file: digest, size, executable byte;
    /// 3 = symlink: length-prefixed target).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.entries.len() * 64);
        put_bytes(&mut out, DIRECTORY_MAGIC);
        put_u64(&mut out, self.entries.len() as u64);
        for (name, node) in &self.entries {
            put_bytes(&mut out, name);
            node.encode_into(&mut out);
        }
        out
    }

    /// The directory's address: BLAKE3 of [`Directory::encode`].
    pub fn digest(&self) -> B3Digest {
        B3Digest::of(&self.encode())
    }

    /// The node pointing to this directory.
    pub fn node(&self) -> Node {
        Node::Directory {
            digest: self.digest(),
            size: self.size(),
        }
    }

    /// Decodes and validates a canonical encoding (names valid, sorted and unique).
    pub fn decode(buf: &[u8]) -> Result<Directory, StoreError> {
        let mut d = Decoder::new(buf, "directory");
        if d.bytes()? != DIRECTORY_MAGIC {
            return Err(d.err("bad magic"));
        }
        // The smallest entry: 8-byte name length, 1 name byte, kind, 8-byte target length,
        // 1 target byte.
        let n = d.count(19)?;
        let mut dir = Directory::new();
        let mut prev: Option<Vec<u8>> = None;
        for _ in 0..n {
            let name = d.bytes()?.to_vec();
            validate_name(&name)?;
            if let Some(p) = &prev {
                if *p == name {
                    return Err(StoreError::DuplicateName(lossy(&name)));
                }
                if *p > name {
                    return Err(StoreError::UnsortedNames {
                        prev: lossy(p),
                        name: lossy(&name),
                    });
                }
            }
            let node = Node::decode_from(&mut d)?;
            prev = Some(name.clone());
            dir.entries.insert(name, node);
        }
        d.finish()?;
        Ok(dir)
    }
}

/// Stores directories by digest.
pub trait DirectoryService {
    /// Stores `dir` and returns its digest. Every subdirectory and file it points to must
    /// already be stored, with matching sizes, so a stored directory's closure is complete.
    fn put_directory(&self, dir: &Directory) -> Result<B3Digest, StoreError>;

    /// The directory with `digest`, checked against it, or `None` if absent.
    fn get_directory(&self, digest: &B3Digest) -> Result<Option<Directory>, StoreError>;

    /// The directory with `digest` and all directories below it, each once, parents
    /// before children. A missing one is [`StoreError::DirectoryNotFound`].
    fn get_directory_recursive(
        &self,
        digest: &B3Digest,
    ) -> Result<Vec<(B3Digest, Directory)>, StoreError> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut queue = std::collections::VecDeque::from([*digest]);
        seen.insert(*digest);
        while let Some(d) = queue.pop_front() {
            let dir = self
                .get_directory(&d)?
                .ok_or(StoreError::DirectoryNotFound(d))?;
            for (_, node) in dir.entries() {
                if let Node::Directory { digest, .. } = node {
                    if seen.insert(*digest) {
                        queue.push_back(*digest);
                    }
                }
            }
            out.push((d, dir));
        }
        Ok(out)
    }
}
