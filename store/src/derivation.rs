//! Derivations: the [`Derivation`] struct, its ATerm serialisation (the `.drv` file format)
//! in both directions, `hashDerivationModulo`, and the computation of output paths and of
//! the `.drv` store path, all byte-compatible with Nix.
//!
//! Paths are kept as strings (absolute store paths) so that ATerm round-trips are exact;
//! the path computations parse and validate them. Strings must be UTF-8.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use crate::hash::{HashAlgo, HashError, NixHash};
use crate::store_path::{FileIngestionMethod, StoreDir, StorePath, StorePathError};

/// Errors from parsing derivations or computing their paths.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DerivationError {
    /// The ATerm text is malformed.
    #[error("error parsing derivation at byte {pos}: {msg}")]
    Parse {
        /// Byte offset of the error.
        pos: usize,
        /// What was wrong.
        msg: String,
    },
    /// A map (outputs, input derivations, environment) has the same key twice.
    #[error("derivation has duplicate {what} '{key}'")]
    DuplicateKey {
        /// Which map.
        what: &'static str,
        /// The key.
        key: String,
    },
    /// The derivation has no outputs.
    #[error("derivation has no outputs")]
    NoOutputs,
    /// The lookup function did not know an input derivation.
    #[error("no derivation hash known for input derivation '{0}'")]
    UnknownInputDerivation(String),
    /// A fixed output's `hashAlgo`/`hash` fields are invalid.
    #[error("output '{output}' has an invalid fixed-output hash: {source}")]
    InvalidOutputHash {
        /// The output name.
        output: String,
        /// The hash error.
        source: HashError,
    },
    /// A path in the derivation, or its name, is not a valid store path.
    #[error(transparent)]
    StorePath(#[from] StorePathError),
}

/// One output of a derivation: `(name, path, hashAlgo, hash)` in the ATerm.
///
/// For input-addressed outputs `hash_algo` and `hash` are empty. For fixed outputs
/// `hash_algo` is `<r:>algo` (`r:` for recursive/NAR hashing) and `hash` is base16.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// The absolute output path (empty while it is being computed).
    pub path: String,
    /// `""`, or the algorithm of a fixed output, prefixed with `r:` if recursive.
    pub hash_algo: String,
    /// `""`, or the base16 digest of a fixed output.
    pub hash: String,
}

impl Output {
    /// A fixed output with the given method and hash; the path is filled in by
    /// [`Derivation::calculate_output_paths`].
    pub fn fixed(method: FileIngestionMethod, hash: &NixHash) -> Self {
        let prefix = match method {
            FileIngestionMethod::Flat => "",
            FileIngestionMethod::Recursive => "r:",
        };
        Output {
            path: String::new(),
            hash_algo: format!("{prefix}{}", hash.algo()),
            hash: hash.to_base16(),
        }
    }

    /// Whether this is a fixed output (it has a hash).
    pub fn is_fixed(&self) -> bool {
        !self.hash.is_empty()
    }

    /// The ingestion method and hash of a fixed output (`None` if not fixed).
    pub fn fixed_hash(&self) -> Option<Result<(FileIngestionMethod, NixHash), HashError>> {
        if !self.is_fixed() {
            return None;
        }
        let (method, algo) = match self.hash_algo.strip_prefix("r:") {
            Some(a) => (FileIngestionMethod::Recursive, a),
            None => (FileIngestionMethod::Flat, self.hash_algo.as_str()),
        };
        Some(
            HashAlgo::from_name(algo)
                .and_then(|a| NixHash::parse(&self.hash, Some(a)))
                .map(|h| (method, h)),
        )
    }
}

/// A Nix derivation, as stored in a `.drv` file. Maps are ordered, so serialisation is
/// deterministic and matches Nix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Derivation {
    /// Outputs by name.
    pub outputs: BTreeMap<String, Output>,
    /// Input derivations (absolute `.drv` paths) and the outputs used from each.
    pub input_derivations: BTreeMap<String, BTreeSet<String>>,
    /// Input sources (absolute store paths).
    pub input_sources: BTreeSet<String>,
    /// The system type, e.g. `x86_64-linux`.
    pub system: String,
    /// The builder executable.
    pub builder: String,
    /// Arguments to the builder.
    pub args: Vec<String>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    // Most strings (paths, names) have no byte that needs an escape and are copied whole; a
    // byte-at-a-time push was the largest cost of writing a `.drv`. The others are copied in
    // runs between the escapes.
    let bytes = s.as_bytes();
    if !may_need_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run_start..i]);
        out.extend_from_slice(escaped);
        run_start = i + 1;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

/// Whether `bytes` has a quote, a backslash or a control byte (a superset of the bytes
/// [`write_string`] escapes), tested eight bytes at a time: `x - 0x01..01` borrows into a
/// byte's top bit where that byte of `x` was zero (and `x - 0x20..20` where it was below
/// 0x20), which `!x` keeps only for bytes that had it clear.
fn may_need_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & TOPS;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let x = u64::from_le_bytes(w);
        if below(x ^ (ONES * b'"' as u64), 1) | below(x ^ (ONES * b'\\' as u64), 1) | below(x, 0x20)
            != 0
        {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b == b'"' || b == b'\\' || b < 0x20)
}

fn write_list(out: &mut Vec<u8>, items: impl IntoIterator<Item = impl AsRef<str>>) {
    out.push(b'[');
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, s.as_ref());
    }
    out.push(b']');
}

impl Derivation {
    /// The derivation's name: its `name` environment variable.
    pub fn name(&self) -> Option<&str> {
        self.env.get("name").map(String::as_str)
    }

    /// Whether this is a fixed-output derivation: a single output `out` with a hash.
    pub fn is_fixed_output(&self) -> bool {
        self.outputs.len() == 1
            && self
                .outputs
                .get("out")
                .map(Output::is_fixed)
                .unwrap_or(false)
    }

    /// The ATerm serialisation, exactly as Nix writes `.drv` files.
    pub fn to_aterm_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        self.aterm_into(&mut out, Inputs::Paths(&self.input_derivations), false);
        out
    }

    /// Appends the ATerm to `out`, with the input derivations as `inputs` says and, with
    /// `mask_outputs`, the output paths (in `outputs` and `env`) blanked. Gives the byte range
    /// of the input derivations' list in `out` (from its `[` to its `]`).
    fn aterm_into(
        &self,
        out: &mut Vec<u8>,
        inputs: Inputs<'_>,
        mask_outputs: bool,
    ) -> std::ops::Range<usize> {
        out.extend_from_slice(b"Derive([");
        for (i, (name, o)) in self.outputs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'(');
            write_string(out, name);
            out.push(b',');
            write_string(out, if mask_outputs { "" } else { &o.path });
            out.push(b',');
            write_string(out, &o.hash_algo);
            out.push(b',');
            write_string(out, &o.hash);
            out.push(b')');
        }
        out.extend_from_slice(b"],");
        let start = out.len();
        inputs.write(out);
        let end = out.len();
        out.push(b',');
        write_list(out, &self.input_sources);
        out.push(b',');
        write_string(out, &self.system);
        out.push(b',');
        write_string(out, &self.builder);
        out.push(b',');
        write_list(out, &self.args);
        out.extend_from_slice(b",[");
        for (i, (k, v)) in self.env.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'(');
            write_string(out, k);
            out.push(b',');
            let masked = mask_outputs && self.outputs.contains_key(k);
            write_string(out, if masked { "" } else { v });
            out.push(b')');
        }
        out.extend_from_slice(b"])");
        start..end
    }

    /// Parses the ATerm of a `.drv` file.
    pub fn from_aterm_bytes(input: &[u8]) -> Result<Self, DerivationError> {
        let mut p = AtermParser { s: input, pos: 0 };
        let drv = p.derivation()?;
        if p.pos != input.len() {
            return Err(p.err("trailing data after derivation"));
        }
        Ok(drv)
    }

    /// Nix's `hashDerivationModulo`, the hash that identifies a derivation for the purpose of
    /// computing the output paths of derivations that depend on it.
    ///
    /// For a fixed-output derivation: sha256 of `fixed:out:<hashAlgo>:<hash>:<out path>`.
    /// Otherwise: sha256 of the ATerm in which each input derivation path is replaced by the
    /// base16 of its own modulo hash, which `lookup` supplies (given the `.drv` path).
    /// Input derivations with equal modulo hashes (e.g. fixed-output derivations with the
    /// same output) are merged, as in Nix.
    ///
    /// Call it on a complete derivation (output paths filled in); the result is what
    /// `lookup` must return for this derivation's `.drv` path when it is used as an input.
    pub fn hash_derivation_modulo<F>(&self, lookup: F) -> Result<NixHash, DerivationError>
    where
        F: FnMut(&str) -> Option<NixHash>,
    {
        self.hash_modulo(lookup, false)
    }

    fn hash_modulo<F>(&self, lookup: F, mask_outputs: bool) -> Result<NixHash, DerivationError>
    where
        F: FnMut(&str) -> Option<NixHash>,
    {
        if let Some(h) = self.fixed_output_modulo() {
            return Ok(h);
        }
        let replaced = self.replaced_inputs(lookup)?;
        let mut out = Vec::with_capacity(1024);
        self.aterm_into(&mut out, Inputs::Replaced(&replaced), mask_outputs);
        Ok(NixHash::sha256(&out))
    }

    /// The modulo hash of a fixed-output derivation, which depends on its output only.
    fn fixed_output_modulo(&self) -> Option<NixHash> {
        if !self.is_fixed_output() {
            return None;
        }
        let o = self.outputs.get("out")?;
        let s = format!("fixed:out:{}:{}:{}", o.hash_algo, o.hash, o.path);
        Some(NixHash::sha256(s.as_bytes()))
    }

    /// The input derivations as the modulo hash has them: each path replaced by the base16
    /// of its own modulo hash (from `lookup`), sorted by that, and inputs with equal hashes
    /// merged (their output names united).
    fn replaced_inputs<F>(&self, mut lookup: F) -> Result<Vec<(String, Vec<&str>)>, DerivationError>
    where
        F: FnMut(&str) -> Option<NixHash>,
    {
        let mut replaced: Vec<(String, Vec<&str>)> =
            Vec::with_capacity(self.input_derivations.len());
        for (path, outs) in &self.input_derivations {
            let h = lookup(path)
                .ok_or_else(|| DerivationError::UnknownInputDerivation(path.clone()))?;
            replaced.push((h.to_base16(), outs.iter().map(String::as_str).collect()));
        }
        replaced.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // Equal hashes (fixed-output inputs with the same output) are neighbours now.
        if replaced.windows(2).any(|w| w[0].0 == w[1].0) {
            let mut merged: Vec<(String, Vec<&str>)> = Vec::with_capacity(replaced.len());
            for (h, outs) in replaced {
                match merged.last_mut() {
                    Some((last, last_outs)) if *last == h => {
                        last_outs.extend(outs);
                        last_outs.sort_unstable();
                        last_outs.dedup();
                    }
                    _ => merged.push((h, outs)),
                }
            }
            replaced = merged;
        }
        Ok(replaced)
    }

    /// The `.drv` path of this complete derivation (named `name`), its modulo hash (what
    /// [`Self::drv_path`] and [`Self::hash_derivation_modulo`] give) and its ATerm, made
    /// together: the ATerm of the modulo hash differs from the `.drv` file only in the input
    /// derivations, so the rest is written once and hashed from the file's bytes.
    pub fn drv_path_and_modulo<F>(
        &self,
        store_dir: &StoreDir,
        name: &str,
        lookup: F,
    ) -> Result<DrvPathAndModulo, DerivationError>
    where
        F: FnMut(&str) -> Option<NixHash>,
    {
        let mut aterm = Vec::with_capacity(1024);
        let inputs_range =
            self.aterm_into(&mut aterm, Inputs::Paths(&self.input_derivations), false);
        let drv_path = self.drv_path_of(store_dir, name, &aterm)?;
        let modulo = match self.fixed_output_modulo() {
            Some(h) => h,
            None => {
                let replaced = self.replaced_inputs(lookup)?;
                let mut inputs = Vec::with_capacity(inputs_range.len());
                Inputs::Replaced(&replaced).write(&mut inputs);
                let mut hasher = crate::hash::Hasher::new(HashAlgo::Sha256);
                hasher.update(&aterm[..inputs_range.start]);
                hasher.update(&inputs);
                hasher.update(&aterm[inputs_range.end..]);
                hasher.finish()
            }
        };
        Ok(DrvPathAndModulo {
            drv_path,
            modulo,
            aterm,
        })
    }

    /// Computes and fills in the output paths (in `outputs` and in `env`) as Nix does when
    /// it creates a derivation named `name`.
    ///
    /// Fixed-output derivations get their fixed-output path. Otherwise all outputs and their
    /// environment variables are blanked, the modulo hash of that derivation is computed
    /// (input derivation hashes from `lookup`), and each output gets the path of type
    /// `output:<output name>` for that hash.
    pub fn calculate_output_paths<F>(
        &mut self,
        store_dir: &StoreDir,
        name: &str,
        lookup: F,
    ) -> Result<(), DerivationError>
    where
        F: FnMut(&str) -> Option<NixHash>,
    {
        if self.outputs.is_empty() {
            return Err(DerivationError::NoOutputs);
        }
        let fixed = self
            .outputs
            .get("out")
            .filter(|_| self.is_fixed_output())
            .and_then(Output::fixed_hash);
        if let Some(fixed) = fixed {
            let (method, hash) = fixed.map_err(|source| DerivationError::InvalidOutputHash {
                output: "out".into(),
                source,
            })?;
            let p = store_dir.make_fixed_output_path(name, method, &hash, [], false)?;
            let path = store_dir.display(&p);
            self.env.insert("out".into(), path.clone());
            if let Some(o) = self.outputs.get_mut("out") {
                o.path = path;
            }
            return Ok(());
        }
        for (out_name, o) in self.outputs.iter_mut() {
            o.path.clear();
            self.env.insert(out_name.clone(), String::new());
        }
        let h = self.hash_modulo(lookup, true)?;
        for (out_name, o) in self.outputs.iter_mut() {
            let p = store_dir.make_output_path(out_name, &h, name)?;
            o.path = store_dir.display(&p);
            self.env.insert(out_name.clone(), o.path.clone());
        }
        Ok(())
    }

    /// The store path of this derivation's `.drv` file for a derivation named `name`: a text
    /// path `<name>.drv` of the ATerm, referring to the input sources and input derivations.
    pub fn drv_path(&self, store_dir: &StoreDir, name: &str) -> Result<StorePath, DerivationError> {
        self.drv_path_of(store_dir, name, &self.to_aterm_bytes())
    }

    /// [`Self::drv_path`] for this derivation's ATerm `aterm`.
    fn drv_path_of(
        &self,
        store_dir: &StoreDir,
        name: &str,
        aterm: &[u8],
    ) -> Result<StorePath, DerivationError> {
        let refs = self
            .input_sources
            .iter()
            .chain(self.input_derivations.keys());
        Ok(store_dir.make_text_path_of_paths(&format!("{name}.drv"), aterm, refs)?)
    }
}

/// What [`Derivation::drv_path_and_modulo`] gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrvPathAndModulo {
    /// The path of the `.drv` file.
    pub drv_path: StorePath,
    /// The modulo hash (`hashDerivationModulo`).
    pub modulo: NixHash,
    /// The `.drv` file's contents.
    pub aterm: Vec<u8>,
}

/// The input derivations of an ATerm being written.
enum Inputs<'a> {
    /// By `.drv` path, as in the file.
    Paths(&'a BTreeMap<String, BTreeSet<String>>),
    /// By modulo hash, sorted, as in the modulo hash's ATerm.
    Replaced(&'a [(String, Vec<&'a str>)]),
}

impl Inputs<'_> {
    /// `[("path",["out",...]),...]`
    fn write(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        let mut entry = |i: usize, path: &str, outs: &mut dyn Iterator<Item = &str>| {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'(');
            write_string(out, path);
            out.push(b',');
            write_list(out, outs);
            out.push(b')');
        };
        match self {
            Inputs::Paths(map) => {
                for (i, (path, outs)) in map.iter().enumerate() {
                    entry(i, path, &mut outs.iter().map(String::as_str));
                }
            }
            Inputs::Replaced(list) => {
                for (i, (hash, outs)) in list.iter().enumerate() {
                    entry(i, hash, &mut outs.iter().copied());
                }
            }
        }
        out.push(b']');
    }
}

/// The placeholder string `builtins.placeholder output_name` returns: `/` followed by the
/// nix32 sha256 of `nix-output:<output_name>`.
pub fn placeholder(output_name: &str) -> String {
    format!(
        "/{}",
        NixHash::sha256(format!("nix-output:{output_name}").as_bytes()).to_nix32()
    )
}

struct AtermParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl AtermParser<'_> {
    fn err(&self, msg: impl Into<String>) -> DerivationError {
        DerivationError::Parse {
            pos: self.pos,
            msg: msg.into(),
        }
    }

    fn expect(&mut self, tok: &str) -> Result<(), DerivationError> {
        if self.s[self.pos..].starts_with(tok.as_bytes()) {
            self.pos += tok.len();
            Ok(())
        } else {
            Err(self.err(format!("expected '{tok}'")))
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn string(&mut self) -> Result<String, DerivationError> {
        self.expect("\"")?;
        let start = self.pos;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => {
                    self.pos = start;
                    return Err(self.err("unterminated string"));
                }
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.peek().ok_or_else(|| self.err("unterminated escape"))?;
                    out.push(match c {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        other => other,
                    });
                    self.pos += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| DerivationError::Parse {
            pos: start,
            msg: "string is not valid UTF-8".into(),
        })
    }

    fn path(&mut self) -> Result<String, DerivationError> {
        let start = self.pos;
        let s = self.string()?;
        if !s.starts_with('/') {
            return Err(DerivationError::Parse {
                pos: start,
                msg: format!("bad path '{s}' in derivation"),
            });
        }
        Ok(s)
    }

    /// Parses `[item,item,...]` with `item` parsing one element.
    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DerivationError>,
    ) -> Result<Vec<T>, DerivationError> {
        self.expect("[")?;
        let mut v = Vec::new();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(v);
        }
        loop {
            v.push(item(self)?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(v);
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn derivation(&mut self) -> Result<Derivation, DerivationError> {
        self.expect("Derive(")?;
        let mut drv = Derivation::default();
        let outputs = self.list(|p| {
            p.expect("(")?;
            let name = p.string()?;
            p.expect(",")?;
            let start = p.pos;
            let path = p.string()?;
            if !path.is_empty() && !path.starts_with('/') {
                return Err(DerivationError::Parse {
                    pos: start,
                    msg: format!("bad path '{path}' in derivation"),
                });
            }
            p.expect(",")?;
            let hash_algo = p.string()?;
            p.expect(",")?;
            let hash = p.string()?;
            p.expect(")")?;
            Ok((
                name,
                Output {
                    path,
                    hash_algo,
                    hash,
                },
            ))
        })?;
        for (k, v) in outputs {
            if drv.outputs.insert(k.clone(), v).is_some() {
                return Err(DerivationError::DuplicateKey {
                    what: "output",
                    key: k,
                });
            }
        }
        self.expect(",")?;
        let inputs = self.list(|p| {
            p.expect("(")?;
            let path = p.path()?;
            p.expect(",")?;
            let outs = p.list(|p| p.string())?;
            p.expect(")")?;
            Ok((path, outs))
        })?;
        for (k, outs) in inputs {
            let set: BTreeSet<String> = outs.into_iter().collect();
            if drv.input_derivations.insert(k.clone(), set).is_some() {
                return Err(DerivationError::DuplicateKey {
                    what: "input derivation",
                    key: k,
                });
            }
        }
        self.expect(",")?;
        for p in self.list(|p| p.path())? {
            if !drv.input_sources.insert(p.clone()) {
                return Err(DerivationError::DuplicateKey {
                    what: "input source",
                    key: p,
                });
            }
        }
        self.expect(",")?;
        drv.system = self.string()?;
        self.expect(",")?;
        drv.builder = self.string()?;
        self.expect(",")?;
        drv.args = self.list(|p| p.string())?;
        self.expect(",")?;
        let env = self.list(|p| {
            p.expect("(")?;
            let k = p.string()?;
            p.expect(",")?;
            let v = p.string()?;
            p.expect(")")?;
            Ok((k, v))
        })?;
        for (k, v) in env {
            if drv.env.insert(k.clone(), v).is_some() {
                return Err(DerivationError::DuplicateKey {
                    what: "environment variable",
                    key: k,
                });
            }
        }
        self.expect(")")?;
        Ok(drv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `derivation { name="x"; system="x86_64-linux"; builder="/bin/sh"; }` as written by
    // nix-instantiate 2.8, at /nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y-x.drv.
    const SIMPLE: &str = r#"Derive([("out","/nix/store/s668cfx1vrqfjryf96jj8wfhg7f67dhj-x","","")],[],[],"x86_64-linux","/bin/sh",[],[("builder","/bin/sh"),("name","x"),("out","/nix/store/s668cfx1vrqfjryf96jj8wfhg7f67dhj-x"),("system","x86_64-linux")])"#;

    #[test]
    fn simple_roundtrip_and_paths() {
        let drv = Derivation::from_aterm_bytes(SIMPLE.as_bytes()).unwrap();
        assert_eq!(drv.to_aterm_bytes(), SIMPLE.as_bytes());
        let sd = StoreDir::default();
        assert_eq!(
            drv.drv_path(&sd, "x").unwrap().to_base_name(),
            "97qlv6h78lxlm9zc8849ahsbcklhsi2y-x.drv"
        );
        let mut fresh = Derivation {
            system: "x86_64-linux".into(),
            builder: "/bin/sh".into(),
            ..Default::default()
        };
        fresh.outputs.insert("out".into(), Output::default());
        for (k, v) in [
            ("builder", "/bin/sh"),
            ("name", "x"),
            ("system", "x86_64-linux"),
        ] {
            fresh.env.insert(k.into(), v.into());
        }
        fresh.calculate_output_paths(&sd, "x", |_| None).unwrap();
        assert_eq!(fresh, drv);
    }

    /// The `.drv` path, ATerm and modulo hash made together are those made one by one, and
    /// the modulo hash replaces input derivations by their hashes, merging equal ones.
    #[test]
    fn drv_path_and_modulo_agree_with_the_separate_computations() {
        let sd = StoreDir::default();
        let mut drv = Derivation::from_aterm_bytes(SIMPLE.as_bytes()).unwrap();
        let path = |c: char| format!("/nix/store/{}-{c}.drv", c.to_string().repeat(32));
        let outs = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
        drv.input_derivations.insert(path('a'), outs(&["out"]));
        drv.input_derivations
            .insert(path('b'), outs(&["dev", "out"]));
        drv.input_derivations.insert(path('c'), outs(&["lib"]));
        drv.env.insert("quoted".into(), "a\"b\nc".into());
        let same = NixHash::sha256(b"same");
        let other = NixHash::sha256(b"other");
        let lookup = |p: &str| {
            Some(if p == path('c') {
                other.clone()
            } else {
                same.clone()
            })
        };

        let made = drv.drv_path_and_modulo(&sd, "x", lookup).unwrap();
        assert_eq!(made.drv_path, drv.drv_path(&sd, "x").unwrap());
        assert_eq!(made.aterm, drv.to_aterm_bytes());
        assert_eq!(made.modulo, drv.hash_derivation_modulo(lookup).unwrap());

        let text = String::from_utf8(drv.to_aterm_bytes()).unwrap();
        let by_path = format!(
            r#"[("{}",["out"]),("{}",["dev","out"]),("{}",["lib"])]"#,
            path('a'),
            path('b'),
            path('c')
        );
        let mut by_hash = [
            format!(r#"("{}",["dev","out"])"#, same.to_base16()),
            format!(r#"("{}",["lib"])"#, other.to_base16()),
        ];
        by_hash.sort();
        let by_hash = format!("[{}]", by_hash.join(","));
        assert!(text.contains(&by_path), "{text}");
        let modulo_text = text.replace(&by_path, &by_hash);
        assert_eq!(made.modulo, NixHash::sha256(modulo_text.as_bytes()));

        // A fixed output's modulo hash is of the output alone.
        let mut fixed = Derivation::from_aterm_bytes(SIMPLE.as_bytes()).unwrap();
        let h = NixHash::sha256(b"contents");
        fixed
            .outputs
            .insert("out".into(), Output::fixed(FileIngestionMethod::Flat, &h));
        fixed.calculate_output_paths(&sd, "x", |_| None).unwrap();
        let made = fixed.drv_path_and_modulo(&sd, "x", |_| None).unwrap();
        let out = &fixed.outputs["out"];
        assert_eq!(
            made.modulo,
            NixHash::sha256(format!("fixed:out:sha256:{}:{}", h.to_base16(), out.path).as_bytes())
        );
        assert_eq!(made.drv_path, fixed.drv_path(&sd, "x").unwrap());
    }

    #[test]
    fn escaping() {
        let mut drv = Derivation::from_aterm_bytes(SIMPLE.as_bytes()).unwrap();
        drv.args = vec![
            "a\"b\\c\nd\re\tf$g".into(),
            // Escapes past the first blocks of 16 bytes, and a control byte kept as it is.
            "0123456789abcdef0123456789abcdef\n0123456789\x01abcdef0123456789abcdef\"".into(),
        ];
        let bytes = drv.to_aterm_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains(concat!(
                r#"["a\"b\\c\nd\re\tf$g","0123456789abcdef0123456789abcdef\n0123456789"#,
                "\x01",
                r#"abcdef0123456789abcdef\""]"#
            )),
            "{text}"
        );
        assert_eq!(Derivation::from_aterm_bytes(&bytes).unwrap(), drv);
    }

    #[test]
    fn escape_test_finds_every_byte_that_needs_one() {
        for len in [1, 7, 8, 9, 16, 23, 24, 31] {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    let suspect = b == b'"' || b == b'\\' || b < 0x20;
                    assert_eq!(may_need_escape(&bytes), suspect, "{len} {at} {b}");
                }
            }
        }
        // Bytes around the borrow cases next to a hit or above 0x80.
        assert!(!may_need_escape(b"\x80\xff\x21\x5d\x23\x5b !~\x7f"));
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "",
            "Derive(",
            "Derive([],[],[],\"s\",\"b\",[],[]",
            "Derive([],[],[],\"s\",\"b\",[],[]) ",
            "Derive([],[],[\"relative\"],\"s\",\"b\",[],[])",
            "Derive([],[],[],\"s\",\"b\",[\"x\",],[])",
            "Derive([],[],[],\"s\",\"b\",[\"x\"],[(\"a\",\"1\"),(\"a\",\"2\")])",
            "Derive([],[],[],\"s\",\"b\",[\"\\",
        ] {
            assert!(
                Derivation::from_aterm_bytes(bad.as_bytes()).is_err(),
                "{bad}"
            );
        }
        assert!(Derivation::from_aterm_bytes(b"Derive([],[],[],\"\xff\",\"b\",[],[])").is_err());
    }

    #[test]
    fn unknown_input() {
        let mut drv = Derivation::from_aterm_bytes(SIMPLE.as_bytes()).unwrap();
        drv.input_derivations.insert(
            "/nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y-x.drv".into(),
            ["out".to_string()].into(),
        );
        assert!(matches!(
            drv.hash_derivation_modulo(|_| None),
            Err(DerivationError::UnknownInputDerivation(_))
        ));
    }
}
