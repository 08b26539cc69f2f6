//! Run-time environments: one frame per scope that binds variables (a lambda's argument and
//! formals, a `let`, a `rec` set, a `with`). Variables were resolved at lowering time to
//! (depth, slot), so a lookup is a walk up `depth` parents and an index.

use std::cell::OnceCell;
use std::rc::Rc;

use super::Value;

/// A frame of variable slots with a link to the enclosing frame.
pub struct Env {
    /// The enclosing frame; `None` for the global frame.
    pub parent: Option<Rc<Env>>,
    /// The slots. They are filled once, right after the frame is made: recursive scopes need the
    /// frame to exist before the thunks that refer to it.
    slots: Box<[OnceCell<Value>]>,
}

impl Env {
    /// A frame with `size` empty slots.
    pub fn new(parent: Option<Rc<Env>>, size: usize) -> Env {
        Env {
            parent,
            slots: (0..size).map(|_| OnceCell::new()).collect(),
        }
    }

    /// A frame whose slots are the given values.
    pub fn with_values(parent: Option<Rc<Env>>, values: impl IntoIterator<Item = Value>) -> Env {
        Env {
            parent,
            slots: values.into_iter().map(OnceCell::from).collect(),
        }
    }

    /// Fills slot `i`. Filling a slot twice is a lowering bug; the first value stays.
    pub fn set(&self, i: usize, v: Value) {
        let _ = self.slots[i].set(v);
    }

    /// The value in slot `i` of this frame.
    #[inline]
    pub fn get(&self, i: usize) -> Value {
        match self.slots[i].get() {
            Some(v) => v.clone(),
            // Lowering guarantees every slot is filled before code can read it.
            None => Value::Null,
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
        self.slots.len()
    }

    /// Whether the frame has no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}
