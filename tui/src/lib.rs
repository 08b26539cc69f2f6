//! tvix-tui: the build dashboard of `tvix build` and `tvix monitor`.
//!
//! The dashboard is the Elm architecture over a build run's events:
//! - [`model`]: the pure state of a run, updated by owned [`model::Update`]s that carry
//!   no clock (time is an input);
//! - [`convert`]: the coordinator's events as updates;
//! - [`view`]: what the user looks at (selection, open log, filters) and the keys that
//!   change it, pure as well;
//! - [`render`]: the model drawn into a ratatui frame, tested with `TestBackend`;
//! - [`plain`]: one timestamped line per update, for pipes and CI;
//! - [`compact`]: a few lines in place below a prompt (the REPL's `:b`);
//! - [`history`]: past build durations for estimates, and the file keeping them (IO);
//! - [`driver`]: the IO edge: the terminal, the redraw loop, the keys, the plain writer;
//! - `monitor` (feature `internal-json`, which needs the coordinator's
//!   `internal_json` codec): Nix's `internal-json` log as updates, for `tvix monitor`.

pub mod compact;
pub mod convert;
pub mod driver;
pub mod history;
pub mod model;
pub mod monitor;
pub mod plain;
pub mod render;
pub mod view;
