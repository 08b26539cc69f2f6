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
/// (to the interned record), which keeps attribute set entries small.
#[derive(Clone, Copy)]
pub struct Symbol(&'static Interned);

/// An interned name and the first eight bytes of it as a big-endian number, so that most
/// comparisons in attribute lookups are one integer comparison.
struct Interned {
    prefix: u64,
    text: Box<str>,
}

fn prefix_of(s: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = s.len().min(8);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    u64::from_be_bytes(b)
}

static INTERNER: Mutex<Option<FxHashMap<&'static str, &'static Interned>>> = Mutex::new(None);

impl Symbol {
    /// Interns `name`, returning the unique symbol for it.
    pub fn intern(name: &str) -> Symbol {
        let mut guard = INTERNER.lock().unwrap_or_else(|e| e.into_inner());
        let map = guard.get_or_insert_with(FxHashMap::default);
        if let Some(s) = map.get(name) {
            return Symbol(s);
        }
        // Names live as long as the process: values anywhere may hold them.
        let leaked: &'static Interned = Box::leak(Box::new(Interned {
            prefix: prefix_of(name),
            text: name.into(),
        }));
        map.insert(&leaked.text, leaked);
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
        &self.0.text
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
        (self.0 as *const Interned as usize).hash(state)
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
            return Ordering::Equal;
        }
        // Byte order; strings that differ in their first eight bytes (or in length within
        // them) are decided by the prefixes alone.
        match self.0.prefix.cmp(&other.0.prefix) {
            Ordering::Equal => self.as_str().as_bytes().cmp(other.as_str().as_bytes()),
            unequal => unequal,
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
        // Names sharing their first eight bytes, or differing only past a NUL.
        assert!(Symbol::intern("abcdefgh1") < Symbol::intern("abcdefgh2"));
        assert!(Symbol::intern("a") < Symbol::intern("a\0"));
        assert!(Symbol::intern("abcdefgh") < Symbol::intern("abcdefghi"));
        let mut names = vec!["zz", "a", "abcdefghij", "abcdefghi", "A", "", "a\0b"];
        let mut syms: Vec<Symbol> = names.iter().map(|n| Symbol::intern(n)).collect();
        names.sort();
        syms.sort();
        assert_eq!(syms.iter().map(|s| s.as_str()).collect::<Vec<_>>(), names);
    }
}
