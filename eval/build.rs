//! Rebuilds the crate when its optimisation profile, the profile mode or the wrapper that
//! applies them changes: all three reach rustc through `scripts/pgo-rustc` (see
//! `.cargo/config.toml`), which cargo cannot see.

fn main() {
    println!("cargo:rerun-if-changed=../pgo");
    println!("cargo:rerun-if-changed=../scripts/pgo-rustc");
    println!("cargo:rerun-if-env-changed=TVIX_PGO");
}
