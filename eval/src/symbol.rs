//! Interned attribute and variable names.
//!
//! Every name the evaluator sees — identifiers in source, attribute names built at run time —
//! is interned once for the life of the process, like CppNix's symbol table. Interned names
//! compare equal by pointer, which makes attribute lookups cheap, and order by their bytes, which
//! is the order in which Nix lists attribute names.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use rustc_hash::FxHashMap;

/// An interned name. Copying is free; equality is pointer equality. It is one pointer wide
/// (to the interned string's box), which keeps attribute set entries small.
#[derive(Clone, Copy)]
pub struct Symbol(&'static Box<str>);

static INTERNER: Mutex<Option<FxHashMap<&'static str, &'static Box<str>>>> = Mutex::new(None);

impl Symbol {
    /// Interns `name`, returning the unique symbol for it.
    pub fn intern(name: &str) -> Symbol {
        let mut guard = INTERNER.lock().unwrap_or_else(|e| e.into_inner());
        let map = guard.get_or_insert_with(FxHashMap::default);
        if let Some(s) = map.get(name) {
            return Symbol(s);
        }
        // Names live as long as the process: values anywhere may hold them.
        let leaked: &'static Box<str> = Box::leak(Box::new(name.to_owned().into_boxed_str()));
        map.insert(&**leaked, leaked);
        Symbol(leaked)
    }

    /// Interns a byte string (Nix strings are bytes); invalid UTF-8 is replaced.
    pub fn intern_bytes(name: &[u8]) -> Symbol {
        match std::str::from_utf8(name) {
            Ok(s) => Symbol::intern(s),
            Err(_) => Symbol::intern(&String::from_utf8_lossy(name)),
        }
    }

    /// The name's text.
    pub fn as_str(self) -> &'static str {
        &**self.0
    }
}

impl PartialEq for Symbol {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}
impl Eq for Symbol {}

impl Hash for Symbol {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.0 as *const Box<str> as usize).hash(state)
    }
}

impl PartialOrd for Symbol {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Symbol {
    fn cmp(&self, other: &Self) -> Ordering {
        if self == other {
            Ordering::Equal
        } else {
            self.as_str().as_bytes().cmp(other.as_str().as_bytes())
        }
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}
impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_unique_and_ordered_by_bytes() {
        let a = Symbol::intern("abc");
        let b = Symbol::intern(&String::from("abc"));
        assert_eq!(a, b);
        assert!(Symbol::intern("B") < Symbol::intern("a"));
        assert!(Symbol::intern("a") < Symbol::intern("a1"));
    }
}
