//! The `tvix` command.

mod cli;

// The evaluator allocates many small, short-lived objects (thunks, frames); mimalloc is
// markedly faster than glibc's allocator at that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cli::run());
}
