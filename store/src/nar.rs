//! NAR (`nix-archive-1`), Nix's canonical serialisation of a file system tree.
//!
//! Every token is a *string*: a little-endian `u64` length, the bytes, and zero padding up
//! to a multiple of 8. A node is
//!
//! ```text
//! ( type regular [executable ""] contents <bytes> )
//! ( type symlink target <target> )
//! ( type directory (entry ( name <name> node <node> ))* )
//! ```
//!
//! with directory entries sorted by name (bytewise), after the magic `nix-archive-1`.
//!
//! This module streams in both directions: [`dump_path`] writes a NAR of a file system path
//! to any [`Write`] without holding it in memory, [`NarHasher`] / [`nar_hash_of_path`] hash
//! it on the fly, and [`parse`] reads a NAR from any [`Read`], validating it and reporting
//! its contents to a [`NarVisitor`] ([`NarEncoder`] re-serialises, [`Restorer`] unpacks).

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::hash::{HashAlgo, Hasher, NixHash};

/// The magic string every NAR starts with.
pub const NAR_MAGIC: &[u8] = b"nix-archive-1";

/// Longest string (other than file contents) the parser accepts, to bound memory use.
pub const MAX_STRING_LEN: u64 = 64 * 1024;

/// Errors from writing or parsing NARs.
#[derive(Debug, Error)]
pub enum NarError {
    /// Reading or writing failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// Reading a file system path failed.
    #[error("cannot read '{path}': {source}")]
    Path {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The path is neither a regular file, a symlink nor a directory.
    #[error("file '{0}' has an unsupported type")]
    UnsupportedFileType(PathBuf),
    /// The filter of [`dump_path_filtered`] failed.
    #[error("filtering '{path}' failed: {source}")]
    Filter {
        /// The path being filtered.
        path: PathBuf,
        /// The filter's error.
        source: io::Error,
    },
    /// A file changed size while it was being serialised.
    #[error("file '{0}' changed while it was being archived")]
    FileChanged(PathBuf),
    /// The input ended before the NAR was complete.
    #[error("NAR is truncated")]
    Truncated,
    /// The input does not start with `nix-archive-1`.
    #[error("input is not a NAR archive (bad magic)")]
    BadMagic,
    /// A different token was expected.
    #[error("bad NAR: expected {expected}, got '{got}'")]
    UnexpectedToken {
        /// What was expected.
        expected: &'static str,
        /// What was found (lossily decoded).
        got: String,
    },
    /// Padding bytes after a string are not zero.
    #[error("bad NAR: non-zero padding")]
    BadPadding,
    /// A string is longer than [`MAX_STRING_LEN`].
    #[error("bad NAR: string of {0} bytes is too long")]
    StringTooLong(u64),
    /// A directory entry name is not a valid file name.
    #[error("bad NAR: invalid entry name '{name}': {reason}")]
    InvalidName {
        /// The name (lossily decoded).
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Directory entries are not in strictly increasing order.
    #[error("bad NAR: entry '{name}' is not sorted after '{prev}'")]
    UnsortedEntries {
        /// The previous entry.
        prev: String,
        /// The offending entry.
        name: String,
    },
    /// Two directory entries have the same name.
    #[error("bad NAR: duplicate entry '{0}'")]
    DuplicateEntry(String),
    /// A symlink has an empty target.
    #[error("bad NAR: symlink with an empty target")]
    EmptySymlinkTarget,
    /// The visitor failed.
    #[error("NAR consumer failed: {0}")]
    Visitor(io::Error),
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn padding(len: u64) -> usize {
    ((8 - (len % 8)) % 8) as usize
}

/// Low-level NAR writer: emits NAR tokens to a [`Write`]. Used by [`dump_path`] and as a
/// [`NarVisitor`] that re-serialises a parsed NAR.
pub struct NarEncoder<W: Write> {
    w: W,
    started: bool,
}

impl<W: Write> NarEncoder<W> {
    /// A writer that has not written anything yet; the magic is written with the first node.
    pub fn new(w: W) -> Self {
        NarEncoder { w, started: false }
    }

    /// Returns the underlying writer.
    pub fn into_inner(self) -> W {
        self.w
    }

    /// The underlying writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    fn str(&mut self, s: &[u8]) -> io::Result<()> {
        self.w.write_all(&(s.len() as u64).to_le_bytes())?;
        self.w.write_all(s)?;
        self.w.write_all(&[0u8; 8][..padding(s.len() as u64)])
    }

    /// Starts a node: the magic (for the root) or `entry ( name <name> node`.
    fn begin_node(&mut self, name: Option<&[u8]>) -> io::Result<()> {
        if !self.started {
            self.started = true;
            self.str(NAR_MAGIC)?;
        }
        if let Some(name) = name {
            self.str(b"entry")?;
            self.str(b"(")?;
            self.str(b"name")?;
            self.str(name)?;
            self.str(b"node")?;
        }
        self.str(b"(")?;
        self.str(b"type")
    }

    fn end_node(&mut self, in_entry: bool) -> io::Result<()> {
        self.str(b")")?;
        if in_entry {
            self.str(b")")?;
        }
        Ok(())
    }

    /// Writes a regular file node, copying exactly `size` bytes from `contents`.
    fn file(
        &mut self,
        name: Option<&[u8]>,
        executable: bool,
        size: u64,
        contents: &mut dyn Read,
    ) -> io::Result<u64> {
        self.begin_file(name, executable, size)?;
        let copied = io::copy(&mut contents.take(size), &mut self.w)?;
        if copied != size {
            return Ok(copied);
        }
        self.end_file(name.is_some(), size)?;
        Ok(copied)
    }

    fn symlink(&mut self, name: Option<&[u8]>, target: &[u8]) -> io::Result<()> {
        self.begin_node(name)?;
        self.str(b"symlink")?;
        self.str(b"target")?;
        self.str(target)?;
        self.end_node(name.is_some())
    }

    fn dir_start(&mut self, name: Option<&[u8]>) -> io::Result<()> {
        self.begin_node(name)?;
        self.str(b"directory")
    }

    /// Writes a regular file node named `name` (`None` for the root), copying `size` bytes
    /// from `contents`. Returns the number of bytes copied; if it is less than `size` the
    /// contents ended early and the output is incomplete.
    pub fn write_file(
        &mut self,
        name: Option<&[u8]>,
        executable: bool,
        size: u64,
        contents: &mut dyn Read,
    ) -> io::Result<u64> {
        self.file(name, executable, size, contents)
    }

    /// Starts a regular file node whose `size` content bytes the caller then passes to
    /// [`NarEncoder::write_contents`] before calling [`NarEncoder::end_file`].
    pub fn begin_file(
        &mut self,
        name: Option<&[u8]>,
        executable: bool,
        size: u64,
    ) -> io::Result<()> {
        self.begin_node(name)?;
        self.str(b"regular")?;
        if executable {
            self.str(b"executable")?;
            self.str(b"")?;
        }
        self.str(b"contents")?;
        self.w.write_all(&size.to_le_bytes())
    }

    /// Writes file content bytes of a file started with [`NarEncoder::begin_file`].
    pub fn write_contents(&mut self, data: &[u8]) -> io::Result<()> {
        self.w.write_all(data)
    }

    /// Ends a file started with [`NarEncoder::begin_file`] once all of its `size` bytes were
    /// written; `is_entry` says whether it was given a name (is a directory entry).
    pub fn end_file(&mut self, is_entry: bool, size: u64) -> io::Result<()> {
        self.w.write_all(&[0u8; 8][..padding(size)])?;
        self.end_node(is_entry)
    }

    /// Writes a symlink node named `name` (`None` for the root).
    pub fn write_symlink(&mut self, name: Option<&[u8]>, target: &[u8]) -> io::Result<()> {
        self.symlink(name, target)
    }

    /// Starts a directory node named `name` (`None` for the root); its entries follow, in
    /// increasing bytewise name order, and then [`NarEncoder::end_directory`].
    pub fn begin_directory(&mut self, name: Option<&[u8]>) -> io::Result<()> {
        self.dir_start(name)
    }

    /// Ends the directory most recently started; `is_entry` as given to its start (`true` if
    /// it had a name).
    pub fn end_directory(&mut self, is_entry: bool) -> io::Result<()> {
        self.end_node(is_entry)
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

impl<W: Write> NarVisitor for NarEncoder<W> {
    fn directory_start(&mut self, path: &[Vec<u8>]) -> io::Result<()> {
        self.dir_start(path.last().map(|n| n.as_slice()))
    }

    fn directory_end(&mut self, path: &[Vec<u8>]) -> io::Result<()> {
        self.end_node(!path.is_empty())
    }

    fn symlink(&mut self, path: &[Vec<u8>], target: &[u8]) -> io::Result<()> {
        self.symlink(path.last().map(|n| n.as_slice()), target)
    }

    fn file(
        &mut self,
        path: &[Vec<u8>],
        executable: bool,
        size: u64,
        contents: &mut dyn Read,
    ) -> io::Result<()> {
        let copied = self.file(
            path.last().map(|n| n.as_slice()),
            executable,
            size,
            contents,
        )?;
        if copied != size {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

/// Writes the NAR serialisation of the file system object at `path` to `w`, streaming file
/// contents. Symlinks are not followed; a file is executable if its owner-execute bit is set.
pub fn dump_path<W: Write>(path: &Path, w: W) -> Result<W, NarError> {
    dump_path_filtered(path, w, |_, _| Ok(true))
}

/// Like [`dump_path`], but leaves out every object below `path` for which `filter` (given
/// its path and `lstat` metadata) returns `false`, as `builtins.filterSource` and
/// `builtins.path { filter = ...; }` do. The root itself is never filtered. An error from
/// the filter aborts the dump with [`NarError::Filter`].
pub fn dump_path_filtered<W, F>(path: &Path, w: W, mut filter: F) -> Result<W, NarError>
where
    W: Write,
    F: FnMut(&Path, &fs::Metadata) -> io::Result<bool>,
{
    let mut enc = NarEncoder::new(w);
    let meta = fs::symlink_metadata(path).map_err(|source| NarError::Path {
        path: path.to_path_buf(),
        source,
    })?;
    dump_node(&mut enc, path, meta, None, &mut filter)?;
    enc.w.flush()?;
    Ok(enc.into_inner())
}

fn dump_node<W: Write>(
    enc: &mut NarEncoder<W>,
    path: &Path,
    meta: fs::Metadata,
    name: Option<&[u8]>,
    filter: &mut dyn FnMut(&Path, &fs::Metadata) -> io::Result<bool>,
) -> Result<(), NarError> {
    let path_err = |source| NarError::Path {
        path: path.to_path_buf(),
        source,
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(path).map_err(path_err)?;
        enc.symlink(name, target.as_os_str().as_bytes())?;
    } else if ft.is_file() {
        let mut f = fs::File::open(path).map_err(path_err)?;
        let executable = meta.permissions().mode() & 0o100 != 0;
        let size = meta.len();
        let copied = enc.file(name, executable, size, &mut f)?;
        if copied != size {
            return Err(NarError::FileChanged(path.to_path_buf()));
        }
    } else if ft.is_dir() {
        let mut names: Vec<Vec<u8>> = fs::read_dir(path)
            .map_err(path_err)?
            .map(|e| e.map(|e| e.file_name().into_vec()))
            .collect::<Result<_, _>>()
            .map_err(path_err)?;
        names.sort();
        enc.dir_start(name)?;
        for n in &names {
            let child = path.join(std::ffi::OsStr::from_bytes(n));
            let child_meta = fs::symlink_metadata(&child).map_err(|source| NarError::Path {
                path: child.clone(),
                source,
            })?;
            let keep = filter(&child, &child_meta).map_err(|source| NarError::Filter {
                path: child.clone(),
                source,
            })?;
            if keep {
                dump_node(enc, &child, child_meta, Some(n), filter)?;
            }
        }
        enc.end_node(name.is_some())?;
    } else {
        return Err(NarError::UnsupportedFileType(path.to_path_buf()));
    }
    Ok(())
}

/// A [`Write`] sink that computes the sha256 and the size of what is written to it.
pub struct NarHasher {
    hasher: Hasher,
    size: u64,
}

impl Default for NarHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl NarHasher {
    /// A fresh sha256 hasher.
    pub fn new() -> Self {
        NarHasher {
            hasher: Hasher::new(HashAlgo::Sha256),
            size: 0,
        }
    }

    /// The hash and the number of bytes written.
    pub fn finish(self) -> (NixHash, u64) {
        (self.hasher.finish(), self.size)
    }
}

impl Write for NarHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The sha256 NAR hash and NAR size of the file system object at `path`
/// (what `nix-hash --type sha256 PATH` prints, and what `nix-store --add` uses).
pub fn nar_hash_of_path(path: &Path) -> Result<(NixHash, u64), NarError> {
    nar_hash_of_path_filtered(path, |_, _| Ok(true))
}

/// The sha256 NAR hash and size of `path` with `filter` applied as in
/// [`dump_path_filtered`].
pub fn nar_hash_of_path_filtered<F>(path: &Path, filter: F) -> Result<(NixHash, u64), NarError>
where
    F: FnMut(&Path, &fs::Metadata) -> io::Result<bool>,
{
    let sink = io::BufWriter::with_capacity(64 * 1024, NarHasher::new());
    let hasher = dump_path_filtered(path, sink, filter)?;
    let hasher = hasher
        .into_inner()
        .map_err(|e| NarError::Io(e.into_error()))?;
    Ok(hasher.finish())
}

/// Receives the contents of a NAR from [`parse`], in NAR order. `path` holds the names of
/// the directory entries leading to the node; it is empty for the root.
pub trait NarVisitor {
    /// A directory starts; its entries follow until [`NarVisitor::directory_end`].
    fn directory_start(&mut self, path: &[Vec<u8>]) -> io::Result<()>;
    /// The directory at `path` is complete.
    fn directory_end(&mut self, path: &[Vec<u8>]) -> io::Result<()> {
        let _ = path;
        Ok(())
    }
    /// A symlink to `target`.
    fn symlink(&mut self, path: &[Vec<u8>], target: &[u8]) -> io::Result<()>;
    /// A regular file of `size` bytes, readable from `contents`. Bytes the visitor does not
    /// read are skipped.
    fn file(
        &mut self,
        path: &[Vec<u8>],
        executable: bool,
        size: u64,
        contents: &mut dyn Read,
    ) -> io::Result<()>;
}

struct Parser<R: Read> {
    r: R,
}

/// Reads file contents, noting whether the input ended early.
struct ContentsReader<'a, R: Read> {
    r: &'a mut R,
    remaining: u64,
    truncated: bool,
}

impl<R: Read> Read for ContentsReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let n = self.r.read(&mut buf[..max])?;
        if n == 0 {
            self.truncated = true;
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn map_read_err(e: io::Error) -> NarError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        NarError::Truncated
    } else {
        NarError::Io(e)
    }
}

impl<R: Read> Parser<R> {
    fn u64(&mut self) -> Result<u64, NarError> {
        let mut b = [0u8; 8];
        self.r.read_exact(&mut b).map_err(map_read_err)?;
        Ok(u64::from_le_bytes(b))
    }

    fn padding(&mut self, len: u64) -> Result<(), NarError> {
        let n = padding(len);
        let mut b = [0u8; 8];
        self.r.read_exact(&mut b[..n]).map_err(map_read_err)?;
        if b[..n].iter().any(|&x| x != 0) {
            return Err(NarError::BadPadding);
        }
        Ok(())
    }

    fn string(&mut self) -> Result<Vec<u8>, NarError> {
        let len = self.u64()?;
        if len > MAX_STRING_LEN {
            return Err(NarError::StringTooLong(len));
        }
        let mut v = vec![0u8; len as usize];
        self.r.read_exact(&mut v).map_err(map_read_err)?;
        self.padding(len)?;
        Ok(v)
    }

    fn expect(&mut self, token: &'static str) -> Result<(), NarError> {
        let s = self.string()?;
        if s != token.as_bytes() {
            return Err(NarError::UnexpectedToken {
                expected: token,
                got: lossy(&s),
            });
        }
        Ok(())
    }

    fn run(&mut self, v: &mut dyn NarVisitor) -> Result<(), NarError> {
        match self.string() {
            Ok(m) if m == NAR_MAGIC => {}
            Ok(_) | Err(NarError::StringTooLong(_)) => return Err(NarError::BadMagic),
            Err(e) => return Err(e),
        }
        let visit = NarError::Visitor;
        // Previous entry name of each open directory.
        let mut dirs: Vec<Option<Vec<u8>>> = Vec::new();
        let mut path: Vec<Vec<u8>> = Vec::new();
        'node: loop {
            self.expect("(")?;
            self.expect("type")?;
            let ty = self.string()?;
            let mut finished = true;
            match ty.as_slice() {
                b"regular" => {
                    let mut tok = self.string()?;
                    let executable = tok == b"executable";
                    if executable {
                        self.expect("")?;
                        tok = self.string()?;
                    }
                    if tok != b"contents" {
                        return Err(NarError::UnexpectedToken {
                            expected: "contents",
                            got: lossy(&tok),
                        });
                    }
                    let size = self.u64()?;
                    let mut cr = ContentsReader {
                        r: &mut self.r,
                        remaining: size,
                        truncated: false,
                    };
                    let res = v.file(&path, executable, size, &mut cr);
                    if cr.truncated {
                        return Err(NarError::Truncated);
                    }
                    res.map_err(visit)?;
                    io::copy(&mut cr, &mut io::sink()).map_err(map_read_err)?;
                    self.padding(size)?;
                    self.expect(")")?;
                }
                b"symlink" => {
                    self.expect("target")?;
                    let target = self.string()?;
                    if target.is_empty() {
                        return Err(NarError::EmptySymlinkTarget);
                    }
                    v.symlink(&path, &target).map_err(visit)?;
                    self.expect(")")?;
                }
                b"directory" => {
                    v.directory_start(&path).map_err(visit)?;
                    dirs.push(None);
                    finished = false;
                }
                _ => {
                    return Err(NarError::UnexpectedToken {
                        expected: "node type",
                        got: lossy(&ty),
                    })
                }
            }
            loop {
                if finished {
                    if path.is_empty() {
                        return Ok(());
                    }
                    self.expect(")")?;
                    path.pop();
                }
                let tok = self.string()?;
                match tok.as_slice() {
                    b"entry" => {
                        self.expect("(")?;
                        self.expect("name")?;
                        let name = self.string()?;
                        check_name(&name)?;
                        let prev = dirs.last_mut().ok_or(NarError::UnexpectedToken {
                            expected: "end of NAR",
                            got: "entry".into(),
                        })?;
                        if let Some(p) = prev.as_ref() {
                            if *p == name {
                                return Err(NarError::DuplicateEntry(lossy(&name)));
                            }
                            if *p > name {
                                return Err(NarError::UnsortedEntries {
                                    prev: lossy(p),
                                    name: lossy(&name),
                                });
                            }
                        }
                        *prev = Some(name.clone());
                        self.expect("node")?;
                        path.push(name);
                        continue 'node;
                    }
                    b")" => {
                        dirs.pop();
                        v.directory_end(&path).map_err(visit)?;
                        finished = true;
                    }
                    _ => {
                        return Err(NarError::UnexpectedToken {
                            expected: "'entry' or ')'",
                            got: lossy(&tok),
                        })
                    }
                }
            }
        }
    }
}

/// Why `name` cannot name a directory entry (empty, `.`, `..`, containing `/` or NUL), if it
/// cannot. The castore applies the same rule.
pub fn entry_name_problem(name: &[u8]) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty")
    } else if name == b"." || name == b".." {
        Some("'.' and '..' are not allowed")
    } else if name.contains(&b'/') {
        Some("contains '/'")
    } else if name.contains(&0) {
        Some("contains NUL")
    } else {
        None
    }
}

fn check_name(name: &[u8]) -> Result<(), NarError> {
    let Some(reason) = entry_name_problem(name) else {
        return Ok(());
    };
    Err(NarError::InvalidName {
        name: lossy(name),
        reason,
    })
}

/// Parses and validates a NAR from `r`, streaming its contents to `visitor`. Reading stops
/// right after the NAR's last token.
pub fn parse<R: Read>(r: R, visitor: &mut dyn NarVisitor) -> Result<(), NarError> {
    Parser { r }.run(visitor)
}

/// A [`NarVisitor`] that unpacks a NAR to the file system under a destination path that
/// must not exist yet (like `nix-store --restore`).
pub struct Restorer {
    dest: PathBuf,
}

impl Restorer {
    /// Unpacks into `dest`.
    pub fn new(dest: impl Into<PathBuf>) -> Self {
        Restorer { dest: dest.into() }
    }

    fn path_of(&self, path: &[Vec<u8>]) -> PathBuf {
        let mut p = self.dest.clone();
        for c in path {
            p.push(std::ffi::OsStr::from_bytes(c));
        }
        p
    }
}

impl NarVisitor for Restorer {
    fn directory_start(&mut self, path: &[Vec<u8>]) -> io::Result<()> {
        fs::create_dir(self.path_of(path))
    }

    fn symlink(&mut self, path: &[Vec<u8>], target: &[u8]) -> io::Result<()> {
        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), self.path_of(path))
    }

    fn file(
        &mut self,
        path: &[Vec<u8>],
        executable: bool,
        _size: u64,
        contents: &mut dyn Read,
    ) -> io::Result<()> {
        let p = self.path_of(path);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)?;
        io::copy(contents, &mut f)?;
        if executable {
            f.set_permissions(fs::Permissions::from_mode(0o755))?;
        }
        Ok(())
    }
}

/// Unpacks the NAR read from `r` to `dest` (which must not exist).
pub fn restore<R: Read>(r: R, dest: &Path) -> Result<(), NarError> {
    parse(r, &mut Restorer::new(dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
        out.resize(out.len() + padding(b.len() as u64), 0);
    }

    fn nar(tokens: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for t in tokens {
            s(&mut out, t);
        }
        out
    }

    fn roundtrip(input: &[u8]) -> Result<Vec<u8>, NarError> {
        let mut enc = NarEncoder::new(Vec::new());
        parse(input, &mut enc)?;
        Ok(enc.into_inner())
    }

    fn dir_with(names: &[&[u8]]) -> Vec<u8> {
        let mut t: Vec<&[u8]> = vec![b"nix-archive-1", b"(", b"type", b"directory"];
        for n in names {
            t.extend_from_slice(&[
                b"entry", b"(", b"name", n, b"node", b"(", b"type", b"symlink", b"target", b"x",
                b")", b")",
            ]);
        }
        t.push(b")");
        nar(&t)
    }

    #[test]
    fn file_nar_matches_nix() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        fs::write(&p, b"hi\n").unwrap();
        let (h, size) = nar_hash_of_path(&p).unwrap();
        assert_eq!(
            h.to_base16(),
            "10551daed7fa467d0b58826e7eb9a0f2af7d693de319f2ef775fffcda244b9f6"
        );
        let bytes = dump_path(&p, Vec::new()).unwrap();
        assert_eq!(bytes.len() as u64, size);
        assert_eq!(
            bytes,
            nar(&[
                b"nix-archive-1",
                b"(",
                b"type",
                b"regular",
                b"contents",
                b"hi\n",
                b")"
            ])
        );
        assert_eq!(roundtrip(&bytes).unwrap(), bytes);
    }

    #[test]
    fn roundtrip_and_restore_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        fs::create_dir_all(root.join("d/e")).unwrap();
        fs::write(root.join("d/f"), b"12345678").unwrap();
        fs::write(root.join("x"), b"").unwrap();
        fs::set_permissions(root.join("x"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("d/f", root.join("l")).unwrap();
        let bytes = dump_path(&root, Vec::new()).unwrap();
        assert_eq!(roundtrip(&bytes).unwrap(), bytes);
        let out = dir.path().join("restored");
        restore(bytes.as_slice(), &out).unwrap();
        assert_eq!(dump_path(&out, Vec::new()).unwrap(), bytes);
    }

    #[test]
    fn rejects_bad_names() {
        assert!(roundtrip(&dir_with(&[b"a", b"b"])).is_ok());
        for bad in [&b".."[..], b".", b"", b"a/b", b"a\0"] {
            assert!(
                matches!(
                    roundtrip(&dir_with(&[bad])),
                    Err(NarError::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            roundtrip(&dir_with(&[b"b", b"a"])),
            Err(NarError::UnsortedEntries { .. })
        ));
        assert!(matches!(
            roundtrip(&dir_with(&[b"a", b"a"])),
            Err(NarError::DuplicateEntry(_))
        ));
    }

    #[test]
    fn rejects_malformed() {
        let good = nar(&[
            b"nix-archive-1",
            b"(",
            b"type",
            b"regular",
            b"contents",
            b"hi\n",
            b")",
        ]);
        for cut in 0..good.len() {
            assert!(
                matches!(
                    roundtrip(&good[..cut]),
                    Err(NarError::Truncated | NarError::BadMagic)
                ),
                "cut at {cut}"
            );
        }
        let mut bad = good.clone();
        // The padding byte after "hi\n" is at 8 * 10 + 8 + 3.
        let idx = good.len() - 16 - 5;
        assert_eq!(bad[idx], 0);
        bad[idx] = 1;
        assert!(matches!(roundtrip(&bad), Err(NarError::BadPadding)));
        assert!(matches!(
            roundtrip(&nar(&[b"nix-archive-2"])),
            Err(NarError::BadMagic)
        ));
        assert!(matches!(
            roundtrip(&nar(&[b"nix-archive-1", b"(", b"type", b"fifo", b")"])),
            Err(NarError::UnexpectedToken { .. })
        ));
        assert!(matches!(
            roundtrip(&nar(&[
                b"nix-archive-1",
                b"(",
                b"type",
                b"regular",
                b"executable",
                b"x",
                b"contents"
            ])),
            Err(NarError::UnexpectedToken { .. })
        ));
        let mut huge = nar(&[b"nix-archive-1", b"(", b"type", b"symlink", b"target"]);
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(roundtrip(&huge), Err(NarError::StringTooLong(_))));
        // A file claiming more contents than present.
        let mut short = nar(&[b"nix-archive-1", b"(", b"type", b"regular", b"contents"]);
        short.extend_from_slice(&100u64.to_le_bytes());
        short.extend_from_slice(b"abc");
        assert!(matches!(roundtrip(&short), Err(NarError::Truncated)));
    }
}
