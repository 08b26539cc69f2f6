//! Nix wire formats for tvix: nixbase32, hashes, store paths, NAR and derivations.
//!
//! Everything in this crate is byte-compatible with the reference Nix implementation and
//! needs no gRPC, FUSE or async runtime without its `grpc` feature, so the evaluator can
//! depend on it cheaply (`default-features = false`) to compute derivation and source paths.
//!
//! - [`nixbase32`]: Nix's base-32 encoding.
//! - [`hash`]: [`NixHash`] in all of Nix's textual forms, streaming [`hash::Hasher`],
//!   `compressHash`.
//! - [`store_path`]: [`StorePath`] parsing and validation, and [`StoreDir`] with the path
//!   computations (text, source, fixed-output, derivation outputs).
//! - [`nar`]: streaming NAR writer, hasher, validating parser and restorer.
//! - [`narinfo`]: binary caches' `.narinfo` files, read and written, their signing
//!   fingerprint, and the check of a content address against its path;
//!   [`cache_info`]: a cache's `nix-cache-info`.
//! - `signing` and `compression` (feature `cache`, on by default): ed25519 keys and
//!   signatures as `nix-store --generate-binary-cache-key` writes them, and streaming NAR
//!   (de)compression (xz, bzip2, zstd).
//! - `nix_db` (feature `nix-db`): the local Nix store's SQLite database, read-only.
//! - `castore` (feature `castore`, on by default): the content-addressed store — BLAKE3
//!   blobs in content-defined chunks, Merkle directories, the blob/directory/path info
//!   services with `memory://` and embedded local backends, NAR rendering and ingestion,
//!   and `nix-store --add`-compatible imports; `pathinfo`: store path metadata;
//!   [`open`] (a store by URL, as a [`StoreService`]).
//! - `grpc` (feature `grpc`, on by default): the store protocol, its client (store URLs
//!   `grpc+unix:///socket`, `grpc+http://host:port`) and server (`tvix store daemon`).
//! - [`derivation`]: [`Derivation`], its ATerm in both directions, `hashDerivationModulo`,
//!   output paths and `.drv` paths.
//!
//! # Creating a derivation as `derivationStrict` does
//!
//! ```
//! use std::collections::HashMap;
//! use tvix_store::{Derivation, NixHash, Output, StoreDir};
//!
//! let sd = StoreDir::default();
//! // Modulo hashes of the derivations created so far, by `.drv` path.
//! let mut known: HashMap<String, NixHash> = HashMap::new();
//!
//! let mut drv = Derivation {
//!     system: "x86_64-linux".into(),
//!     builder: "/bin/sh".into(),
//!     ..Default::default()
//! };
//! drv.outputs.insert("out".into(), Output::default());
//! for (k, v) in [("builder", "/bin/sh"), ("name", "x"), ("system", "x86_64-linux")] {
//!     drv.env.insert(k.into(), v.into());
//! }
//! drv.calculate_output_paths(&sd, "x", |p| known.get(p).cloned()).unwrap();
//! let drv_path = drv.drv_path(&sd, "x").unwrap();
//! let modulo = drv.hash_derivation_modulo(|p| known.get(p).cloned()).unwrap();
//! known.insert(sd.display(&drv_path), modulo);
//!
//! assert_eq!(
//!     sd.display(&drv_path),
//!     "/nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y-x.drv"
//! );
//! assert_eq!(drv.outputs["out"].path, "/nix/store/s668cfx1vrqfjryf96jj8wfhg7f67dhj-x");
//! // The bytes to write to the store as the `.drv` file:
//! let _aterm: Vec<u8> = drv.to_aterm_bytes();
//! ```

#[cfg(feature = "castore")]
pub mod cache_info;
#[cfg(feature = "castore")]
pub mod castore;
#[cfg(feature = "cache")]
pub mod compression;
pub mod derivation;
#[cfg(feature = "fuse")]
pub mod fuse;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod hash;
pub mod nar;
pub mod narinfo;
#[cfg(feature = "nix-db")]
pub mod nix_db;
pub mod nixbase32;
#[cfg(feature = "castore")]
pub mod pathinfo;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "castore")]
pub mod shutdown;
#[cfg(feature = "cache")]
pub mod signing;
pub mod store_path;

#[cfg(feature = "castore")]
pub use castore::{open, StoreService};
pub use derivation::{Derivation, DerivationError, Output};
pub use hash::{HashAlgo, HashError, NixHash};
pub use store_path::{FileIngestionMethod, StoreDir, StorePath, StorePathError};
