//! `tvix store run`: runs a command that sees the tvix store at the store directory
//! (`/nix/store`), in a private mount namespace, so a reference Nix's own `/nix/store` on
//! the same machine is hidden from that command only and untouched for every other
//! process.

use std::path::Path;
use std::process::Command;

/// Runs `argv` with `url`'s store mounted read-only on `store_dir` inside a mount
/// namespace of its own; returns the command's exit status (128 + signal when killed).
///
/// Steps, all on the calling thread (a mount namespace belongs to the thread that
/// unshared it, and the FUSE threads and the command are started from it):
/// `unshare(CLONE_NEWNS)`; every mount made private (so nothing propagates back to the
/// host's namespace); the store mounted on `store_dir`; the command run and waited for;
/// the store unmounted. When the last process of the namespace ends, the kernel removes
/// the mount anyway.
pub(super) fn run_command(
    url: &str,
    store_dir: &Path,
    argv: &[std::ffi::OsString],
    opts: &tvix_store::fuse::MountOptions,
) -> Result<i32, String> {
    let Some((prog, args)) = argv.split_first() else {
        return Err("no command given (tvix store run -- COMMAND [ARGS...])".into());
    };
    if !store_dir.is_dir() {
        return Err(format!(
            "the store directory {} does not exist: create it (it stays empty; the store \
             is mounted on it only inside the command's mount namespace)",
            store_dir.display()
        ));
    }
    private_mount_namespace()?;
    let store: std::sync::Arc<dyn tvix_store::StoreService> =
        tvix_store::open(url).map_err(|e| e.to_string())?.into();
    let mount = tvix_store::fuse::mount(store, store_dir, opts).map_err(|e| e.to_string())?;
    // The command gets the terminal's signals itself; this process waits for it to end
    // and unmounts then, so Ctrl-C must not end it first.
    set_interrupts(libc::SIG_IGN);
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
    let status = cmd.status();
    let unmounted = mount.unmount();
    let status = status.map_err(|e| format!("cannot run {}: {e}", prog.to_string_lossy()))?;
    unmounted.map_err(|e| e.to_string())?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Moves the calling thread into a new mount namespace in which no mount propagates to
/// the parent's (systemd makes `/` a shared mount, which a new namespace inherits).
fn private_mount_namespace() -> Result<(), String> {
    // SAFETY: plain system calls with valid arguments; they affect this thread only.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!(
                "cannot make a private mount namespace: {e} (tvix store run needs root, \
                 or use `tvix store mount DIR` on a directory of your own)"
            ));
        }
        let root = c"/";
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            let e = std::io::Error::last_os_error();
            return Err(format!("cannot make the mounts private: {e}"));
        }
    }
    Ok(())
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
