//! tvix-coordinator: drives builds of Nix derivations.
//!
//! - [`request`]: a derivation to a generic [`tvix_build::BuildRequest`] (a pure function,
//!   Nix 2.8's sandbox rules);
//! - [`closure`]: the input closure of a derivation, from the store's path infos;
//! - [`checks`]: what Nix checks of a build's outputs (fixed-output hashes, reference
//!   constraints, cycles between outputs);
//! - [`build`]: a first, sequential build driver over a [`tvix_build::BuildService`];
//! - [`log`]: build logs kept per derivation, bzip2-compressed as Nix keeps them.

pub mod build;
pub mod checks;
pub mod closure;
pub mod events;
pub mod executor;
pub mod log;
pub mod plan;
pub mod request;
