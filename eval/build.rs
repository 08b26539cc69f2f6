//! Rebuilds the crate when its optimisation profile or the profile mode changes: both reach
//! rustc through `scripts/pgo-rustc` (see `.cargo/config.toml`), which cargo cannot see.

fn main() {
    println!("cargo:rerun-if-changed=../pgo");
    println!("cargo:rerun-if-env-changed=TVIX_PGO");
}
