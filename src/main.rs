//! The `tvix` command.

mod alloc;
mod cli;

#[global_allocator]
static GLOBAL: alloc::MiMalloc = alloc::MiMalloc;

fn main() {
    std::process::exit(cli::run());
}
