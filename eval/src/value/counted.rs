//! A reference-counted cell for thunks: one count and the contents, nothing else.
//!
//! `Rc<RefCell<T>>` adds a weak count and a borrow flag to every allocation. Nothing takes a
//! weak reference to a thunk, and a thunk's state is only ever replaced whole or cloned out
//! (never borrowed across evaluation, see [`Shared::replace`]), so neither is needed: for
//! the 24-byte thunk state the allocation is 32 bytes instead of 48, and millions of thunks
//! are alive at once in a module-system evaluation.
//!
//! The unsafe code is confined to this module. Its invariants:
//! - the allocation lives while the count is non-zero, and the count is the number of
//!   `Shared` handles to it (`new_with` makes one, `clone` adds one, `drop` removes one);
//! - no reference into the contents outlives a method of `Shared`: `with` and `replace`
//!   hold one only for their own duration, and `with` is `unsafe`: its callers promise
//!   that what they run on the contents does not replace them (they clone a part out);
//! - `Shared` is neither `Send` nor `Sync` (it holds a `NonNull`), so no other thread sees
//!   the count or the contents.

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// The allocation: the count of handles, then the contents.
struct Inner<T> {
    count: Cell<usize>,
    value: UnsafeCell<T>,
}

/// A counted handle to a mutable cell shared by all its clones.
pub(crate) struct Shared<T> {
    ptr: NonNull<Inner<T>>,
    /// Owns an `Inner<T>` (for drop checking).
    _owns: PhantomData<Inner<T>>,
}

impl<T> Shared<T> {
    /// A new cell holding `make()`, with one handle, allocated before the value is made
    /// (see [`crate::value::rc_new`]: made first, the value is built on the stack and
    /// copied in after the allocator call, in loads that stall on the stores that built it).
    #[inline(always)]
    pub(crate) fn new_with(make: impl FnOnce() -> T) -> Shared<T> {
        let inner = Box::write(
            Box::<Inner<T>>::new_uninit(),
            Inner {
                count: Cell::new(1),
                value: UnsafeCell::new(make()),
            },
        );
        Shared {
            ptr: NonNull::from(Box::leak(inner)),
            _owns: PhantomData,
        }
    }

    #[inline]
    fn inner(&self) -> &Inner<T> {
        // SAFETY: the allocation lives while this handle does (the count is at least one).
        unsafe { self.ptr.as_ref() }
    }

    /// Runs `f` on the contents.
    ///
    /// # Safety
    /// `f` must not call [`Shared::replace`] on this cell (through another handle): it is
    /// meant for reading or cloning a part out, which cannot reach a handle.
    #[inline]
    pub(crate) unsafe fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        // SAFETY: no mutable access happens while `f` runs: the only writer is `replace`,
        // and the caller promises `f` does not call it.
        f(unsafe { &*self.inner().value.get() })
    }

    /// Puts `value` in the cell, giving back what was there. The old contents are dropped
    /// by the caller, after the write: their drop may run arbitrary drops, none of which
    /// can then observe a half-written cell.
    #[inline]
    pub(crate) fn replace(&self, value: T) -> T {
        // SAFETY: no reference into the contents is alive (every other reference ends
        // within a method of this type, and none of them calls `replace`).
        unsafe { std::ptr::replace(self.inner().value.get(), value) }
    }

    /// The address of the shared cell: the same for every handle to it.
    #[inline]
    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The number of handles to the cell.
    #[inline]
    pub(crate) fn count(&self) -> usize {
        self.inner().count.get()
    }
}

impl<T> Clone for Shared<T> {
    #[inline]
    fn clone(&self) -> Shared<T> {
        let count = &self.inner().count;
        // More handles than addressable bytes cannot exist unless handles were leaked in a
        // loop; stop rather than wrap around to a count that frees too early.
        let n = count
            .get()
            .checked_add(1)
            .unwrap_or_else(|| std::process::abort());
        count.set(n);
        Shared {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<T> Drop for Shared<T> {
    #[inline]
    fn drop(&mut self) {
        let count = &self.inner().count;
        let n = count.get() - 1;
        count.set(n);
        if n == 0 {
            // SAFETY: this was the last handle, so nothing else refers to the allocation;
            // it was made by `Box` in `new`.
            drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// Counts its drops, to see each value dropped exactly once.
    struct Tally(Rc<Cell<usize>>);

    impl Drop for Tally {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn handle_is_one_word_and_the_cell_has_no_weak_count_or_flag() {
        assert_eq!(std::mem::size_of::<Shared<[u64; 3]>>(), 8);
        assert_eq!(std::mem::size_of::<Option<Shared<u64>>>(), 8);
        assert_eq!(std::mem::size_of::<Inner<[u64; 3]>>(), 32);
    }

    #[test]
    fn contents_dropped_once_after_the_last_handle() {
        let drops = Rc::new(Cell::new(0));
        let a = Shared::new_with(|| Tally(drops.clone()));
        let b = a.clone();
        let c = b.clone();
        assert_eq!(a.count(), 3);
        drop(a);
        drop(c);
        assert_eq!(drops.get(), 0);
        assert_eq!(b.count(), 1);
        drop(b);
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn replace_gives_back_the_old_contents_and_all_handles_see_the_new() {
        let drops = Rc::new(Cell::new(0));
        let a = Shared::new_with(|| (1, Tally(drops.clone())));
        let b = a.clone();
        let old = b.replace((2, Tally(drops.clone())));
        assert_eq!(old.0, 1);
        assert_eq!(drops.get(), 0);
        drop(old);
        assert_eq!(drops.get(), 1);
        // SAFETY: the closure only reads.
        assert_eq!(unsafe { a.with(|v| v.0) }, 2);
        assert_eq!(a.addr(), b.addr());
        drop((a, b));
        assert_eq!(drops.get(), 2);
    }

    #[test]
    fn many_clones_and_drops_balance() {
        let drops = Rc::new(Cell::new(0));
        let a = Shared::new_with(|| Tally(drops.clone()));
        let clones: Vec<_> = (0..10_000).map(|_| a.clone()).collect();
        assert_eq!(a.count(), 10_001);
        drop(clones);
        assert_eq!(a.count(), 1);
        assert_eq!(drops.get(), 0);
        drop(a);
        assert_eq!(drops.get(), 1);
    }
}
