//! The global allocator: mimalloc, called directly.
//!
//! The evaluator allocates many small, short-lived objects (thunks, frames, closures), and
//! mimalloc is markedly faster than glibc's allocator at that. Its Rust wrapper routes every
//! allocation through the aligned entry points; all our allocations need at most 16-byte
//! alignment, which `mi_malloc` guarantees, so the plain entry points are used for those.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::{c_int, c_long, c_void};

use libmimalloc_sys as mi;

extern "C" {
    // In the mimalloc library linked by libmimalloc-sys; the crate declares it only with
    // its `extended` feature, which would bring in more than this one function.
    fn mi_option_set(option: c_int, value: c_long);
    #[cfg(all(test, target_os = "linux"))]
    fn mi_option_get(option: c_int) -> c_long;
}

/// `mi_option_allow_thp` in the `mi_option_t` enum of the mimalloc (v3) that
/// libmimalloc-sys bundles (`c_src/mimalloc/v3/include/mimalloc.h`).
const MI_OPTION_ALLOW_THP: c_int = 43;

/// Runs [`configure`] from the executable's initialisers, before the Rust runtime's first
/// allocation: mimalloc maps its first arena (1 GiB) on that allocation, so an option set
/// in `main` would come too late for everything an evaluation of up to 1 GiB uses.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static CONFIGURE_BEFORE_MAIN: extern "C" fn() = configure_before_main;

#[cfg(target_os = "linux")]
extern "C" fn configure_before_main() {
    configure();
}

/// Settles mimalloc's options for this process: before `main` on Linux (see
/// `CONFIGURE_BEFORE_MAIN`), and again first thing in `main` (idempotent) elsewhere.
///
/// Transparent huge pages off. mimalloc asks for them (`madvise(MADV_HUGEPAGE)`) on the
/// memory it maps; the kernel then zeroes 2 MiB at a time and compacts memory to find
/// huge pages, which made the system time of an evaluation large and erratic. Measured
/// with `MIMALLOC_ALLOW_THP=0` against the default, 2 cores, medians of 3 (wall / system
/// time / peak RSS): modules-large.nix 4.48-4.68 s / 0.61-0.71 s / 1752 MB against
/// 4.69-4.83 s / 0.66-0.85 s / 1767 MB; modules.nix 0.42-0.47 s / 0.05-0.06 s / 186 MB
/// against 0.55-0.71 s / 0.10-0.28 s / 197 MB; pkgset.nix level in time, 220 MB against
/// 231 MB. `MIMALLOC_PURGE_DELAY=-1` (never give freed memory back to the kernel) made no
/// difference in time or peak in the same runs, and would keep a long-running language
/// server at its peak forever, so purging stays at mimalloc's default.
pub fn configure() {
    // SAFETY: setting an option is a plain store into mimalloc's option table; this
    // option is read when mimalloc maps new memory.
    unsafe { mi_option_set(MI_OPTION_ALLOW_THP, 0) }
}

/// Whether mimalloc may ask for transparent huge pages.
#[cfg(all(test, target_os = "linux"))]
fn huge_pages_allowed() -> bool {
    // SAFETY: reads mimalloc's option table.
    unsafe { mi_option_get(MI_OPTION_ALLOW_THP) != 0 }
}

/// Alignment `mi_malloc` guarantees on x86-64 and aarch64.
const MIN_ALIGN: usize = 16;

/// mimalloc as the process allocator.
pub struct MiMalloc;

// SAFETY: every method forwards to mimalloc's functions with the layout's size and, where
// the plain functions would not satisfy it, its alignment; memory is freed by the same
// allocator that gave it out.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            unsafe { mi::mi_malloc(layout.size()) as *mut u8 }
        } else {
            unsafe { mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8 }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            unsafe { mi::mi_zalloc(layout.size()) as *mut u8 }
        } else {
            unsafe { mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8 }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        unsafe { mi::mi_free(ptr as *mut c_void) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            unsafe { mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8 }
        } else {
            unsafe {
                mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The initialiser ran before any test code (test binaries link this module too): the
    /// option is already off without a call to `configure`.
    #[test]
    #[cfg(target_os = "linux")]
    fn huge_pages_are_off_before_main() {
        assert!(!huge_pages_allowed());
    }
}
