//! Run-time environments: one frame per scope that binds variables (a lambda's argument and
//! formals, a `let`, a `rec` set, a `with`). Variables were resolved at lowering time to
//! (depth, slot), so a lookup is a walk up `depth` parents and an index.

use std::cell::UnsafeCell;
use std::rc::Rc;

use smallvec::SmallVec;

use super::Value;

/// Frames of up to this many slots need no second allocation. One: a plain lambda's
/// argument frame is most of the frames alive in a module-system evaluation (2.9 M of 3.9 M
/// in modules-large), and with one slot inline a frame's allocation is 48 bytes instead of
/// 64 (two inline), while a larger frame's slots cost the same either way.
const INLINE_SLOTS: usize = 1;

/// A frame of variable slots with a link to the enclosing frame.
pub struct Env {
    /// The enclosing frame; `None` for the global frame.
    pub parent: Option<Rc<Env>>,
    /// The slots. Recursive scopes need the frame to exist before the thunks that refer to it,
    /// so slots are filled after the frame is shared (see `set`).
    ///
    /// The contract that keeps the `UnsafeCell` sound: a reference into `slots` lives only
    /// inside one method of this impl and never while a slot is written. `get` and
    /// `evaluated_or_thunk` clone, `len` reads the length, `set` writes; none of them calls
    /// out (to the evaluator or to a caller's function) while it holds the reference. Writes may come at any time
    /// (while a frame is set up, and when `__overrides` replaces bindings of a recursive set
    /// that has started to evaluate); no method reading a slot holds a reference across
    /// one. `Env` is not `Sync`, so no other thread can write meanwhile.
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
            slots: UnsafeCell::new(SmallVec::from_buf([value])),
        }
    }

    /// A shared frame with `size` slots, all `null` until filled (allocated before it is
    /// built: see [`crate::value::rc_new`]). Every frame filled after it is shared is made
    /// here, and recorded if this thread tracks (`registry.rs`): such a frame can end up
    /// holding itself. A frame shared complete (`shared_single`, or `Rc::new` of a frame
    /// filled first) is not recorded: its slots hold values made before it, which can reach
    /// it again only through a thunk or a frame filled later, both recorded, so a release
    /// breaks every cycle through it all the same (and a lambda's argument frame, most of
    /// all frames, costs nothing more). Always inlined: out of line (as the check made it)
    /// it cost `enter_frame` more than the check itself.
    #[inline(always)]
    pub fn shared(parent: Option<Rc<Env>>, size: usize) -> Rc<Env> {
        let env = super::rc_new(|| Env::new(parent, size));
        super::registry::note_frame(&env);
        env
    }

    /// A shared frame of one slot (allocated before it is built).
    #[inline]
    pub fn shared_single(parent: Option<Rc<Env>>, value: Value) -> Rc<Env> {
        super::rc_new(|| Env::single(parent, value))
    }

    /// A frame whose slots are the given values.
    pub fn with_values(parent: Option<Rc<Env>>, values: impl IntoIterator<Item = Value>) -> Env {
        Env {
            parent,
            slots: UnsafeCell::new(values.into_iter().collect()),
        }
    }

    /// Fills slot `i`: while the frame is being set up, or to replace a binding
    /// (`__overrides`). Crate-private: only the evaluator lays out frames.
    ///
    /// ```compile_fail
    /// // Outside the evaluator frames are read-only.
    /// let env = tvix_eval::value::Env::new(None, 1);
    /// env.set(0, tvix_eval::Value::Null);
    /// ```
    pub(crate) fn set(&self, i: usize, v: Value) {
        // SAFETY: by the contract on `slots`, no reference into them is alive now: every
        // other method's reference ends within the method, and `peek`'s function cannot
        // call back into this frame.
        let slots = unsafe { &mut *self.slots.get() };
        if let Some(slot) = slots.get_mut(i) {
            let old = std::mem::replace(slot, v);
            // Dropping the old value may run arbitrary drops; it happens after the write.
            drop(old);
        }
    }

    /// Sets every slot to `v`, dropping what they held (a registry's release: `null` to
    /// break cycles, then a failing thunk for a frame still held after it).
    pub(crate) fn fill(&self, v: &Value) {
        for i in 0..self.len() {
            self.set(i, v.clone());
        }
    }

    /// The value in slot `i` of this frame.
    #[inline]
    pub fn get(&self, i: usize) -> Value {
        // SAFETY: see `set`; the reference lives only for the clone.
        let slots = unsafe { &*self.slots.get() };
        slots[i].clone()
    }

    /// Slot `i` as a variable read needs it: `Ok` with the value when it is evaluated (not
    /// a thunk, or a thunk already done), otherwise `Err` with the thunk to force. One
    /// clone either way, and no call through a pointer: this is every variable read.
    #[inline(always)]
    pub(crate) fn evaluated_or_thunk(&self, i: usize) -> Result<Value, super::Thunk> {
        // SAFETY: see `set`; the reference lives only inside this method, which calls
        // nothing that could reach this frame.
        let slots = unsafe { &*self.slots.get() };
        match &slots[i] {
            Value::Thunk(t) => t.value().ok_or_else(|| t.clone()),
            v => Ok(v.clone()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// With the reference counts, a one-slot frame is a 48-byte allocation.
    #[test]
    fn frame_is_four_words() {
        assert_eq!(std::mem::size_of::<Env>(), 32);
        let env = Env::single(None, Value::Int(3));
        assert!(matches!(env.get(0), Value::Int(3)));
        assert_eq!(env.len(), 1);
        let env = Env::with_values(None, [Value::Int(1), Value::Int(2), Value::Null]);
        assert!(matches!(env.get(1), Value::Int(2)));
        assert_eq!(env.len(), 3);
    }
}
