//! The global allocator: mimalloc, called directly.
//!
//! The evaluator allocates many small, short-lived objects (thunks, frames, closures), and
//! mimalloc is markedly faster than glibc's allocator at that. Its Rust wrapper routes every
//! allocation through the aligned entry points; all our allocations need at most 16-byte
//! alignment, which `mi_malloc` guarantees, so the plain entry points are used for those.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

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

/// Hands the memory this thread has freed back to the system now.
///
/// mimalloc returns freed pages to the kernel only after a delay, and only when the thread
/// allocates again; an idle REPL after an interrupted evaluation would keep the whole
/// evaluation's memory resident. Setting the delay to zero process-wide would slow
/// evaluation (pages are returned and faulted in again), so idle points ask for it instead.
pub fn release_free_memory() {
    // SAFETY: `mi_collect` only walks and trims the allocator's own structures.
    unsafe { mi::mi_collect(true) }
}
