//! The tvix builder: runs generic build requests in a sandbox.
//!
//! A [`BuildRequest`] is not a Nix derivation: it names a program, its arguments and
//! environment, the inputs as castore nodes by the absolute path they appear at inside the
//! sandbox (the whole closure), the outputs to collect, whether the network is reachable,
//! files to create, needles to scan outputs for, and constraints. Turning a derivation into
//! a request is the coordinator's job (`tvix-coordinator`); nothing here knows Nix's
//! semantics beyond the conventions of its sandbox.
//!
//! A [`BuildService`] runs requests. Backends are chosen by URL, as stores are:
//! `grpc+unix:///path/to/socket` and `grpc+http://HOST:PORT` reach a `tvix builder
//! daemon` ([`grpc`], feature `grpc`, on by default).

#[cfg(feature = "grpc")]
pub mod grpc;
pub mod oci;
pub mod refscan;
mod request;
mod service;

pub use request::{
    BuildError, BuildEvent, BuildOutput, BuildRequest, BuildResult, BuildService, CancelToken,
    Capabilities, Constraints, InvalidRequest, SandboxFile, ScratchDir,
};
pub use service::{open, ServiceOptions};
