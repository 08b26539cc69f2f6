//! Path info: what the store knows about a Nix store path — its root node in the castore
//! and the Nix metadata (NAR hash and size, references, deriver, signatures, CA).

use crate::castore::wire::{put_bytes, put_u64, Decoder};
use crate::castore::{Node, StoreError};
use crate::hash::{HashAlgo, HashEncoding, NixHash};
use crate::store_path::StorePath;

/// Metadata of a valid store path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathInfo {
    /// The store path.
    pub store_path: StorePath,
    /// Its contents in the castore.
    pub node: Node,
    /// sha256 of its NAR serialisation.
    pub nar_sha256: [u8; 32],
    /// Size of its NAR serialisation.
    pub nar_size: u64,
    /// Store paths it refers to.
    pub references: Vec<StorePath>,
    /// The derivation that built it, if known.
    pub deriver: Option<StorePath>,
    /// Signatures (`name:base64`).
    pub signatures: Vec<String>,
    /// Content address (e.g. `fixed:r:sha256:<nix32>`), if content-addressed.
    pub ca: Option<String>,
}

const PATH_INFO_MAGIC: &[u8] = b"tvix-pathinfo-1";

impl PathInfo {
    /// The NAR hash as a [`NixHash`].
    pub fn nar_hash(&self) -> NixHash {
        // A 32-byte digest is always a valid sha256.
        NixHash::from_digest(HashAlgo::Sha256, self.nar_sha256.to_vec())
            .unwrap_or_else(|_| NixHash::sha256(b""))
    }

    /// `sha256:<nix32>`, as Nix prints NAR hashes in narinfo files.
    pub fn nar_hash_string(&self) -> String {
        self.nar_hash().to_prefixed(HashEncoding::Nix32)
    }

    /// The stored encoding.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, PATH_INFO_MAGIC);
        put_bytes(&mut out, self.store_path.to_base_name().as_bytes());
        self.node.encode_into(&mut out);
        out.extend_from_slice(&self.nar_sha256);
        put_u64(&mut out, self.nar_size);
        put_u64(&mut out, self.references.len() as u64);
        for r in &self.references {
            put_bytes(&mut out, r.to_base_name().as_bytes());
        }
        match &self.deriver {
            Some(d) => {
                out.push(1);
                put_bytes(&mut out, d.to_base_name().as_bytes());
            }
            None => out.push(0),
        }
        put_u64(&mut out, self.signatures.len() as u64);
        for s in &self.signatures {
            put_bytes(&mut out, s.as_bytes());
        }
        match &self.ca {
            Some(ca) => {
                out.push(1);
                put_bytes(&mut out, ca.as_bytes());
            }
            None => out.push(0),
        }
        out
    }

    /// Decodes [`PathInfo::encode`]'s output.
    pub(crate) fn decode(buf: &[u8]) -> Result<PathInfo, StoreError> {
        let mut d = Decoder::new(buf, "path info");
        if d.bytes()? != PATH_INFO_MAGIC {
            return Err(d.err("bad magic"));
        }
        let store_path = StorePath::from_base_name(&d.string()?)?;
        let node = Node::decode_from(&mut d)?;
        let mut nar_sha256 = [0u8; 32];
        nar_sha256.copy_from_slice(&d.digest()?.0);
        let nar_size = d.u64()?;
        let n = d.count(8)?;
        let mut references = Vec::with_capacity(n);
        for _ in 0..n {
            references.push(StorePath::from_base_name(&d.string()?)?);
        }
        let deriver = match d.u8()? {
            0 => None,
            1 => Some(StorePath::from_base_name(&d.string()?)?),
            _ => return Err(d.err("bad deriver flag")),
        };
        let n = d.count(8)?;
        let mut signatures = Vec::with_capacity(n);
        for _ in 0..n {
            signatures.push(d.string()?);
        }
        let ca = match d.u8()? {
            0 => None,
            1 => Some(d.string()?),
            _ => return Err(d.err("bad CA flag")),
        };
        d.finish()?;
        Ok(PathInfo {
            store_path,
            node,
            nar_sha256,
            nar_size,
            references,
            deriver,
            signatures,
            ca,
        })
    }
}

/// Stores [`PathInfo`]s by store path.
pub trait PathInfoService {
    /// Registers `info`. Its root node (and so, transitively, everything below it) must
    /// already be stored; a path is never valid before its contents are durable.
    fn put_path_info(&self, info: &PathInfo) -> Result<(), StoreError>;

    /// Registers `info` as part of a batch: valid for this process at once, durable (and
    /// visible to other processes) after the next [`PathInfoService::commit`]. For work
    /// that registers many small paths (evaluation writing `.drv` files and sources),
    /// which would otherwise wait for the disk once per path; it commits before anything
    /// naming the paths leaves the process. By default the same as `put_path_info`.
    fn put_path_info_batched(&self, info: &PathInfo) -> Result<(), StoreError> {
        self.put_path_info(info)
    }

    /// Makes every path registered with [`PathInfoService::put_path_info_batched`] durable.
    fn commit(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The path info of `path`, or `None` if it is not valid.
    fn get_path_info(&self, path: &StorePath) -> Result<Option<PathInfo>, StoreError>;

    /// Up to `limit` registered path infos whose store path's digest sorts after `after`
    /// (from the first when `None`), in digest order; none at the end. Listings are read
    /// page by page like this, never whole.
    fn list_path_infos_page(
        &self,
        after: Option<&[u8; crate::store_path::DIGEST_LEN]>,
        limit: usize,
    ) -> Result<Vec<PathInfo>, StoreError>;

    /// Every registered path info, in digest order, read a page at a time as the
    /// iterator is consumed (stores that stream, such as a gRPC client, override it). An
    /// error ends the iteration after it is yielded.
    fn path_infos(&self) -> Box<dyn Iterator<Item = Result<PathInfo, StoreError>> + '_> {
        Box::new(crate::castore::backend::pages(
            move |after: Option<&[u8; crate::store_path::DIGEST_LEN]>| {
                self.list_path_infos_page(after, crate::castore::backend::PAGE)
            },
            |info: &PathInfo| *info.store_path.digest(),
        ))
    }

    /// The path info of the valid path whose hash part is `digest` (what a binary
    /// cache's `<hash>.narinfo` names), or `None`. By default a scan of every path;
    /// stores keyed by the digest override it with a lookup.
    fn get_path_info_by_digest(
        &self,
        digest: &[u8; crate::store_path::DIGEST_LEN],
    ) -> Result<Option<PathInfo>, StoreError> {
        for info in self.path_infos() {
            let info = info?;
            if info.store_path.digest() == digest {
                return Ok(Some(info));
            }
        }
        Ok(None)
    }
}
