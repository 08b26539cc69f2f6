//! Generates the gRPC code from `proto/tvix_store.proto` when the `grpc` feature is on.
//! The proto file is compiled by `protox` (pure Rust), so no `protoc` is needed.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "grpc")]
    grpc::generate();
}

#[cfg(feature = "grpc")]
mod grpc {
    const PROTO: &str = "proto/tvix_store.proto";

    pub fn generate() {
        println!("cargo:rerun-if-changed={PROTO}");
        let fds = match protox::compile([PROTO], ["proto"]) {
            Ok(fds) => fds,
            Err(e) => {
                eprintln!("cannot compile {PROTO}: {e:?}");
                std::process::exit(1);
            }
        };
        if let Err(e) = tonic_prost_build::configure().bytes(".").compile_fds(fds) {
            eprintln!("cannot generate gRPC code from {PROTO}: {e}");
            std::process::exit(1);
        }
    }
}
