//! Run-time environments: one frame per scope that binds variables (a lambda's argument and
//! formals, a `let`, a `rec` set, a `with`). Variables were resolved at lowering time to
//! (depth, slot), so a lookup is a walk up `depth` parents and an index.

use std::cell::UnsafeCell;
use std::rc::Rc;

use smallvec::SmallVec;

use super::Value;

/// Frames of up to this many slots (most lambdas and small `let`s) need no second allocation.
const INLINE_SLOTS: usize = 2;

/// A frame of variable slots with a link to the enclosing frame.
pub struct Env {
    /// The enclosing frame; `None` for the global frame.
    pub parent: Option<Rc<Env>>,
    /// The slots. Recursive scopes need the frame to exist before the thunks that refer to it,
    /// so slots are filled after the frame is shared (see `set`).
    slots: UnsafeCell<SmallVec<[Value; INLINE_SLOTS]>>,
}

impl Env {
    /// A frame with `size` slots, all `null` until filled.
    pub fn new(parent: Option<Rc<Env>>, size: usize) -> Env {
        Env {
            parent,
            slots: UnsafeCell::new(smallvec::smallvec![Value::Null; size]),
        }
    }

    /// A frame of one slot (a plain lambda's argument, a `with` namespace).
    #[inline]
    pub fn single(parent: Option<Rc<Env>>, value: Value) -> Env {
        Env {
            parent,
            slots: UnsafeCell::new(SmallVec::from_buf_and_len([value, Value::Null], 1)),
        }
    }

    /// A frame whose slots are the given values.
    pub fn with_values(parent: Option<Rc<Env>>, values: impl IntoIterator<Item = Value>) -> Env {
        Env {
            parent,
            slots: UnsafeCell::new(values.into_iter().collect()),
        }
    }

    /// Fills slot `i` (done while the frame is being set up, before code runs in it).
    pub fn set(&self, i: usize, v: Value) {
        // SAFETY: `Env` is not `Sync`, and no reference into `slots` ever escapes this impl
        // (`get` clones), so there is no live borrow while we write.
        let slots = unsafe { &mut *self.slots.get() };
        if let Some(slot) = slots.get_mut(i) {
            let old = std::mem::replace(slot, v);
            // Dropping the old value may run arbitrary drops; it happens after the write.
            drop(old);
        }
    }

    /// The value in slot `i` of this frame.
    #[inline]
    pub fn get(&self, i: usize) -> Value {
        // SAFETY: see `set`; the reference lives only for the clone.
        let slots = unsafe { &*self.slots.get() };
        slots[i].clone()
    }

    /// Calls `f` with a reference to slot `i`, without cloning it.
    #[inline]
    pub fn peek<R>(&self, i: usize, f: impl FnOnce(&Value) -> R) -> R {
        // SAFETY: see `set`; slots are only written while the frame is set up, before any
        // code that could call `peek` runs, so the reference cannot be invalidated by `f`.
        let slots = unsafe { &*self.slots.get() };
        f(&slots[i])
    }

    /// The frame `depth` levels up (0 is this one).
    #[inline]
    pub fn ancestor(self: &Rc<Env>, depth: usize) -> &Rc<Env> {
        let mut env = self;
        for _ in 0..depth {
            env = env
                .parent
                .as_ref()
                .expect("lowering resolved a variable past the global frame");
        }
        env
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        // SAFETY: see `set`.
        unsafe { &*self.slots.get() }.len()
    }

    /// Whether the frame has no slots.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
