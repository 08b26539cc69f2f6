//! Generates the gRPC code from `proto/tvix_build.proto` when the `grpc` feature is on.
//! The proto file is compiled by `protox` (pure Rust), so no `protoc` is needed. It
//! imports the store protocol (`../store/proto/tvix_store.proto`) for castore nodes; their
//! Rust types are the store crate's (`tvix_store::grpc::proto`), not generated again here.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "grpc")]
    grpc::generate();
}

#[cfg(feature = "grpc")]
mod grpc {
    const PROTO: &str = "proto/tvix_build.proto";
    const STORE_PROTO_DIR: &str = "../store/proto";

    pub fn generate() {
        println!("cargo:rerun-if-changed={PROTO}");
        println!("cargo:rerun-if-changed={STORE_PROTO_DIR}/tvix_store.proto");
        let fds = match protox::compile([PROTO], ["proto", STORE_PROTO_DIR]) {
            Ok(fds) => fds,
            Err(e) => {
                eprintln!("cannot compile {PROTO}: {e:?}");
                std::process::exit(1);
            }
        };
        let generated = tonic_prost_build::configure()
            .extern_path(".tvix.store.v1", "::tvix_store::grpc::proto")
            .compile_fds(fds);
        if let Err(e) = generated {
            eprintln!("cannot generate gRPC code from {PROTO}: {e}");
            std::process::exit(1);
        }
    }
}
