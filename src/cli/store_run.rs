//! `tvix store run`: runs a command that sees the tvix store at the store directory
//! (`/nix/store`), in a private mount namespace, so a reference Nix's own `/nix/store` on
//! the same machine is hidden from that command only and untouched for every other
//! process.

use std::path::Path;
use std::process::Command;

/// Runs `argv` with `url`'s store mounted read-only on `store_dir` inside a mount
/// namespace of its own ([`tvix_store::fuse::with_store_mounted`]), alone or over the
/// directory's own contents as `view` says; returns the command's
/// exit status (128 + signal when killed).
pub(super) fn run_command(
    url: &str,
    store_dir: &Path,
    argv: &[std::ffi::OsString],
    opts: &tvix_store::fuse::MountOptions,
    view: tvix_store::fuse::StoreView,
) -> Result<i32, String> {
    let Some((prog, args)) = argv.split_first() else {
        return Err("no command given (tvix store run -- COMMAND [ARGS...])".into());
    };
    let store: std::sync::Arc<dyn tvix_store::StoreService> =
        tvix_store::open(url).map_err(|e| e.to_string())?.into();
    // The command gets the terminal's signals itself; this process waits for it to end
    // and unmounts then, so Ctrl-C must not end it first.
    set_interrupts(libc::SIG_IGN);
    let status = tvix_store::fuse::with_store_mounted(store, store_dir, opts, view, || {
        let mut cmd = Command::new(prog);
        cmd.args(args);
        use std::os::unix::process::CommandExt;
        // SAFETY: only `signal(2)`, which is async-signal-safe, runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                set_interrupts(libc::SIG_DFL);
                Ok(())
            });
        }
        cmd.status()
    })
    .map_err(|e| e.to_string())?;
    let status = status.map_err(|e| format!("cannot run {}: {e}", prog.to_string_lossy()))?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Sets the disposition of SIGINT and SIGQUIT: ignored here while the command runs
/// (as `system(3)` does), back to the default in the command, which would otherwise
/// inherit the ignored dispositions.
fn set_interrupts(disposition: libc::sighandler_t) {
    // SAFETY: SIG_IGN and SIG_DFL are always valid dispositions.
    unsafe {
        libc::signal(libc::SIGINT, disposition);
        libc::signal(libc::SIGQUIT, disposition);
    }
}
