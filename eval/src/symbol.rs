//! Interned attribute and variable names.
//!
//! Every name the evaluator sees — identifiers in source, attribute names built at run time —
//! is interned once for the life of the process, like CppNix's symbol table. Interned names
//! compare equal by pointer, which makes attribute lookups cheap, and order by their bytes, which
//! is the order in which Nix lists attribute names.

use std::cell::RefCell;
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
    /// The name as text; for a name that is not UTF-8, with replacement characters (for
    /// messages only: the name is `raw`).
    text: Box<str>,
    /// The bytes of a name that is not UTF-8 (Nix names are bytes); `None` when `text` is
    /// the name.
    raw: Option<Box<[u8]>>,
}

impl Interned {
    fn bytes(&self) -> &[u8] {
        match &self.raw {
            Some(raw) => raw,
            None => self.text.as_bytes(),
        }
    }
}

fn prefix_of(s: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = s.len().min(8);
    b[..n].copy_from_slice(&s[..n]);
    u64::from_be_bytes(b)
}

/// Interned names by their bytes: two names are one symbol exactly when their bytes are
/// equal, UTF-8 or not.
static INTERNER: Mutex<Option<FxHashMap<&'static [u8], &'static Interned>>> = Mutex::new(None);

thread_local! {
    /// The names this thread has interned or looked up, in front of [`INTERNER`]: names built
    /// at run time (`pkgs.${name}`, `listToAttrs`) are interned by the hundred thousand, and
    /// taking the global lock for each was most of the cost. It holds only symbols of
    /// `INTERNER`, which lives as long as the process, so it is never stale.
    static SEEN: RefCell<FxHashMap<&'static [u8], &'static Interned>> =
        RefCell::new(FxHashMap::default());
}

impl Symbol {
    /// Interns `name`, returning the unique symbol for it.
    pub fn intern(name: &str) -> Symbol {
        Symbol::intern_bytes(name.as_bytes())
    }

    /// Interns a byte string (Nix strings are bytes, and so are attribute names: names
    /// that are not UTF-8 stay distinct, and [`Symbol::as_bytes`] gives them back whole).
    pub fn intern_bytes(name: &[u8]) -> Symbol {
        // `try_with`: during thread teardown the cache may be gone; the global map is not.
        let cached = SEEN
            .try_with(|seen| seen.borrow().get(name).copied())
            .ok()
            .flatten();
        if let Some(s) = cached {
            return Symbol(s);
        }
        let symbol = Symbol::intern_global(name);
        let _ = SEEN.try_with(|seen| seen.borrow_mut().insert(symbol.as_bytes(), symbol.0));
        symbol
    }

    /// Interns `name` in the process-wide map.
    fn intern_global(name: &[u8]) -> Symbol {
        let mut guard = INTERNER.lock().unwrap_or_else(|e| e.into_inner());
        let map = guard.get_or_insert_with(FxHashMap::default);
        if let Some(s) = map.get(name) {
            return Symbol(s);
        }
        let (text, raw) = match std::str::from_utf8(name) {
            Ok(s) => (Box::from(s), None),
            Err(_) => (
                String::from_utf8_lossy(name).into_owned().into_boxed_str(),
                Some(Box::from(name)),
            ),
        };
        // Names live as long as the process: values anywhere may hold them.
        let leaked: &'static Interned = Box::leak(Box::new(Interned {
            prefix: prefix_of(name),
            text,
            raw,
        }));
        map.insert(leaked.bytes(), leaked);
        Symbol(leaked)
    }

    /// The name's text (replacement characters where the name is not UTF-8: use
    /// [`Symbol::as_bytes`] wherever the name itself is needed).
    pub fn as_str(self) -> &'static str {
        &self.0.text
    }

    /// The name's bytes, exactly.
    pub fn as_bytes(self) -> &'static [u8] {
        self.0.bytes()
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
            Ordering::Equal => self.as_bytes().cmp(other.as_bytes()),
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

    #[test]
    fn threads_share_symbols() {
        let here = Symbol::intern("shared-between-threads");
        let there = std::thread::spawn(|| {
            // Seen first on the other thread, then on this one.
            let a = Symbol::intern("shared-between-threads");
            let b = Symbol::intern("first-seen-on-the-other-thread");
            (
                a.0 as *const Interned as usize,
                b.0 as *const Interned as usize,
            )
        })
        .join()
        .unwrap();
        assert_eq!(here.0 as *const Interned as usize, there.0);
        let later = Symbol::intern("first-seen-on-the-other-thread");
        assert_eq!(later.0 as *const Interned as usize, there.1);
    }

    #[test]
    fn names_that_are_not_utf8_stay_distinct() {
        // Both would read "a\u{FFFD}" with replacement characters.
        let a = Symbol::intern_bytes(b"a\xff");
        let b = Symbol::intern_bytes(b"a\xfe");
        assert_ne!(a, b);
        assert_eq!(a, Symbol::intern_bytes(b"a\xff"));
        assert_ne!(a, Symbol::intern("a\u{FFFD}"));
        assert_eq!(a.as_bytes(), b"a\xff");
        assert_eq!(b.as_bytes(), b"a\xfe");
        assert!(b < a, "ordered by bytes");
        assert_eq!(Symbol::intern("plain").as_bytes(), b"plain");
    }
}
