//! Nix's `--log-format internal-json` both ways: the records as types with a tolerant
//! parser and a writer ([`record`]), and a build run's events written as those records
//! the way `nix-build` writes them ([`output`]). `tvix build --log-format internal-json`
//! writes them; `tvix monitor` reads them.

pub mod output;
pub mod record;

pub use output::{InternalJsonOutput, Translator};
pub use record::{
    parse_line, ActivityType, Field, InternalJsonError, Line, LogRecord, ResultType, PREFIX,
};
