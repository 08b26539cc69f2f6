//! Nix wire formats for tvix: nixbase32, hashes, store paths, NAR and derivations.
//!
//! Everything in this crate is byte-compatible with the reference Nix implementation and
//! has no dependency on gRPC, FUSE or async runtimes, so the evaluator can depend on it
//! cheaply to compute derivation and source paths.

pub mod derivation;
pub mod hash;
pub mod nar;
pub mod nixbase32;
pub mod store_path;

pub use derivation::{Derivation, DerivationError, Output};
pub use hash::{HashAlgo, HashError, NixHash};
pub use store_path::{StoreDir, StorePath, StorePathError};
