//! tvix-coordinator: drives builds of Nix derivations.
//!
//! - [`realise`]: the entry point for every surface: a [`realise::Realiser`] opens a store
//!   and a build service from Nix's options and realises derivation outputs;
//! - [`plan`]: the sans-IO state machine of a run (validity, substitution, builds,
//!   registration, failures, cancellation);
//! - [`machines`]: Nix's `builders` setting, the machines builds are scheduled on;
//! - [`executor`]: performs a plan's actions on threads, reporting [`events`];
//! - [`substitute`]: where outputs come from instead of being built;
//! - [`nix_output`]: events printed as `nix-build` prints its progress;
//! - [`internal_json`]: Nix's `--log-format internal-json` records: a tolerant parser, a
//!   writer, and events written as `nix-build` writes them;
//! - [`request`]: a derivation to a generic [`tvix_build::BuildRequest`] (a pure function,
//!   Nix 2.8's sandbox rules);
//! - [`closure`]: the input closure of a derivation, from the store's path infos;
//! - [`checks`]: what Nix checks of a build's outputs (fixed-output hashes, reference
//!   constraints, cycles between outputs);
//! - [`build`]: one derivation's build step (request, closure, build service, checks,
//!   registration), and a sequential driver for `--check`;
//! - [`log`]: build logs kept per derivation, bzip2-compressed as Nix keeps them;
//! - [`eval_io`]: the evaluator's IO over a tvix store (`StoreIO`), which realises
//!   derivation outputs for import-from-derivation through a [`realise::Realiser`], and
//!   `Gated`, which gives any evaluator IO the [`fetch`] mechanics (HTTP, archives,
//!   git, the fetch cache).

pub mod build;
pub mod checks;
pub mod closure;
pub mod eval_io;
pub mod eval_progress;
pub mod events;
pub mod executor;
pub mod fetch;
pub mod internal_json;
pub mod log;
pub mod machines;
pub mod nix_conf;
pub mod nix_output;
pub mod plan;
pub mod realise;
pub mod request;
pub mod substitute;
