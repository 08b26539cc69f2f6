//! A shutdown request from the service manager or the terminal: SIGINT or SIGTERM.
//!
//! Long-running servers (a store mount, the gRPC daemons) poll [`requested`] and then
//! stop the way they stop when dropped: a FUSE mount is unmounted, a unix socket
//! removed. Without this, `systemctl stop` or a test ending a daemon would kill the
//! process outright and leave a dead mount point behind ("Transport endpoint is not
//! connected").

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::Duration;

/// Set by [`on_signal`].
static REQUESTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

extern "C" fn on_signal(_sig: libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Installs the SIGINT and SIGTERM handlers (once per process); from then on these
/// signals no longer end the process but set the flag [`requested`] reads.
pub fn install() {
    INSTALL.call_once(|| {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    });
}

/// Whether SIGINT or SIGTERM arrived since [`install`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Installs the handlers and waits until a shutdown is requested or `done()` says the
/// work ended on its own, polling every 50 ms. Returns whether a shutdown was requested.
pub fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    install();
    loop {
        if requested() {
            return true;
        }
        if done() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
