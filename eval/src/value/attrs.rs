//! Attribute sets: entries kept sorted by name, so lookup is a binary search (a linear scan
//! comparing interned pointers for small sets), iteration is in Nix's order, and `//` is a
//! linear merge.

use super::Value;
use crate::source::MaybeSpan;
use crate::symbol::Symbol;

/// One attribute: its name, value and where it was defined (for `unsafeGetAttrPos`).
#[derive(Clone, Debug)]
pub struct AttrEntry {
    /// The name.
    pub name: Symbol,
    /// The value (possibly a thunk).
    pub value: Value,
    /// The definition site, when the attribute came from source.
    pub pos: MaybeSpan,
}

/// An immutable attribute set.
///
/// The entries are a boxed slice, exactly as long as the set: a set keeps them for as long
/// as it lives, and without a capacity word `Rc<Attrs>` is a 32-byte allocation (40 with a
/// `Vec`).
#[derive(Clone, Default)]
pub struct Attrs {
    entries: Box<[AttrEntry]>,
}

/// Sets up to this size are scanned by [`Attrs::find`] rather than binary searched.
const LOOKUP_SCAN_MAX: usize = 16;

/// Where a lookup site (a static name in `e.a.b`, `e ? a`) last found its name in a set:
/// see [`Attrs::find_hinted`].
#[derive(Default)]
pub struct LookupHint(std::cell::Cell<u32>);

impl Attrs {
    /// The empty set.
    pub fn new() -> Attrs {
        Attrs::default()
    }

    /// Builds a set from entries that are already sorted and unique by name.
    pub fn from_sorted(entries: Vec<AttrEntry>) -> Attrs {
        debug_assert!(entries.windows(2).all(|w| w[0].name < w[1].name));
        Attrs {
            entries: entries.into_boxed_slice(),
        }
    }

    /// Builds a set from entries in any order; for duplicate names the first one wins.
    pub fn from_unsorted(mut entries: Vec<AttrEntry>) -> Attrs {
        entries.sort_by_key(|a| a.name);
        entries.dedup_by(|later, earlier| later.name == earlier.name);
        Attrs {
            entries: entries.into_boxed_slice(),
        }
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where `name` is (`Ok`) or would go in name order (`Err`), for [`Attrs::insert`];
    /// lookups use [`Attrs::find`].
    fn index_of(&self, name: Symbol) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| e.name.cmp(&name))
    }

    /// Where attribute `name` is, if the set has it: what a lookup needs, and nothing
    /// more. A miss (`x.a or d`, `x ? a`) in a small set is one scan comparing pointers,
    /// without `index_of`'s search for where the name would go; a scan of up to
    /// [`LOOKUP_SCAN_MAX`] names beats a binary search, each of whose steps reads the
    /// interned name behind a pointer.
    #[inline]
    fn find(&self, name: Symbol) -> Option<usize> {
        if self.entries.len() <= LOOKUP_SCAN_MAX {
            return self.entries.iter().position(|e| e.name == name);
        }
        self.entries.binary_search_by(|e| e.name.cmp(&name)).ok()
    }

    /// The set without the attributes named in `names` (any order, repeats allowed), or
    /// `None` when it has none of them, so that the caller keeps the set it has instead of
    /// a copy. `removeAttrs` mostly gets a handful of names (`[ "_file" "key" ]` in the
    /// module system): each is looked up, with no hash set built, and the kept entries
    /// are copied once, in runs.
    pub fn without(&self, names: &[Symbol]) -> Option<Attrs> {
        let mut gone: smallvec::SmallVec<[usize; 8]> =
            names.iter().filter_map(|n| self.find(*n)).collect();
        if gone.is_empty() {
            return None;
        }
        gone.sort_unstable();
        gone.dedup();
        let mut out = Vec::with_capacity(self.entries.len() - gone.len());
        let mut from = 0;
        for &i in &gone {
            out.extend_from_slice(&self.entries[from..i]);
            from = i + 1;
        }
        out.extend_from_slice(&self.entries[from..]);
        Some(Attrs {
            entries: out.into_boxed_slice(),
        })
    }

    /// The entry of attribute `name`, trying first where `hint` says the lookup site found
    /// its name last, and remembering where it was found. Sets made at the same place in the
    /// code have the same names at the same positions (option declarations, definitions,
    /// `builtins`, a library's set), so a site's lookups mostly hit at the first try,
    /// without a scan or a binary search. A wrong hint costs one comparison; it is never
    /// trusted without checking the name, so it cannot give a wrong entry.
    #[inline]
    pub fn find_hinted(&self, name: Symbol, hint: &LookupHint) -> Option<&AttrEntry> {
        let at = hint.0.get() as usize;
        if let Some(e) = self.entries.get(at) {
            if e.name == name {
                return Some(e);
            }
        }
        let i = self.find(name)?;
        hint.0.set(i as u32);
        Some(&self.entries[i])
    }

    /// The value of attribute `name`.
    #[inline]
    pub fn get(&self, name: Symbol) -> Option<&Value> {
        self.find(name).map(|i| &self.entries[i].value)
    }

    /// The whole entry of attribute `name`.
    pub fn get_entry(&self, name: Symbol) -> Option<&AttrEntry> {
        self.find(name).map(|i| &self.entries[i])
    }

    /// Whether attribute `name` exists.
    pub fn contains(&self, name: Symbol) -> bool {
        self.find(name).is_some()
    }

    /// Entries in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, AttrEntry> {
        self.entries.iter()
    }

    /// The entries, sorted by name.
    pub fn entries(&self) -> &[AttrEntry] {
        &self.entries
    }

    /// Consumes the set, giving its sorted entries.
    pub fn into_entries(self) -> Vec<AttrEntry> {
        self.entries.into_vec()
    }

    /// `self // other`: attributes of `other` win.
    pub fn update(&self, other: &Attrs) -> Attrs {
        if other.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return other.clone();
        }
        let (a, b) = (&self.entries, &other.entries);
        // Exactly as many entries as the result has: the module system's `//` mostly
        // overrides names that are already there, and a set keeps its vector for as long
        // as it lives, so room for `a.len() + b.len()` would be memory held for nothing.
        let (small, large) = if a.len() <= b.len() {
            (a, other)
        } else {
            (b, self)
        };
        if small.len() * 8 <= large.len() {
            let shared = small.iter().filter(|e| large.contains(e.name)).count();
            let mut out = Vec::with_capacity(a.len() + b.len() - shared);
            merge_in_runs(a, b, &mut out);
            return Attrs {
                entries: out.into_boxed_slice(),
            };
        }
        // Sides of comparable size: the names they share are counted in one walk over
        // both in order, not by a binary search of one side per name of the other (which
        // reads an interned name behind a pointer at every step). Shared names are the
        // same symbol, so most steps of the walk compare two pointers.
        let mut out = Vec::with_capacity(a.len() + b.len() - count_shared(a, b));
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].name.cmp(&b[j].name) {
                std::cmp::Ordering::Less => {
                    out.push(a[i].clone());
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b[j].clone());
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push(b[j].clone());
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        Attrs {
            entries: out.into_boxed_slice(),
        }
    }

    /// Inserts or replaces one attribute (used while building a set: `${name}` attributes
    /// and `__overrides`, a few per set).
    pub fn insert(&mut self, entry: AttrEntry) {
        match self.index_of(entry.name) {
            Ok(i) => self.entries[i] = entry,
            Err(i) => {
                let mut entries = std::mem::take(&mut self.entries).into_vec();
                entries.insert(i, entry);
                self.entries = entries.into_boxed_slice();
            }
        }
    }
}

/// How many names the sorted `a` and `b` have in common.
fn count_shared(a: &[AttrEntry], b: &[AttrEntry]) -> usize {
    let (mut i, mut j, mut shared) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].name.cmp(&b[j].name) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    shared
}

/// `a // b` into `out` when one side is much smaller (`acc // { x = ...; }` in a fold): the
/// larger side is copied in whole runs between the smaller side's names, found by binary
/// search, instead of compared and pushed one entry at a time.
fn merge_in_runs(a: &[AttrEntry], b: &[AttrEntry], out: &mut Vec<AttrEntry>) {
    if b.len() <= a.len() {
        let mut i = 0;
        for e in b {
            let run = a[i..].partition_point(|x| x.name < e.name);
            out.extend_from_slice(&a[i..i + run]);
            i += run;
            if a.get(i).is_some_and(|x| x.name == e.name) {
                i += 1;
            }
            out.push(e.clone());
        }
        out.extend_from_slice(&a[i..]);
    } else {
        let mut j = 0;
        for e in a {
            let run = b[j..].partition_point(|x| x.name < e.name);
            out.extend_from_slice(&b[j..j + run]);
            j += run;
            // On equal names `b`'s entry wins; it starts the next run.
            if b.get(j).is_none_or(|x| x.name != e.name) {
                out.push(e.clone());
            }
        }
        out.extend_from_slice(&b[j..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_in_runs_is_update_by_merging() {
        let set = |names: &[&str], v: i64| {
            Attrs::from_unsorted(
                names
                    .iter()
                    .map(|n| AttrEntry {
                        name: Symbol::intern(n),
                        value: Value::Int(v),
                        pos: (None).into(),
                    })
                    .collect(),
            )
        };
        let show = |s: &Attrs| {
            s.iter()
                .map(|e| match e.value {
                    Value::Int(v) => format!("{}={v}", e.name),
                    _ => unreachable!(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let large: Vec<String> = (0..40).map(|i| format!("k{i:02}")).collect();
        let large: Vec<&str> = large.iter().map(String::as_str).collect();
        let big = set(&large, 1);
        for small in [
            &["a", "k05", "k20", "zz"][..],
            &["k00"],
            &["k39", "m"],
            &["b"],
        ] {
            let small = set(small, 2);
            let mut expected: std::collections::BTreeMap<String, i64> =
                big.iter().map(|e| (e.name.to_string(), 1)).collect();
            let right: std::collections::BTreeMap<String, i64> =
                small.iter().map(|e| (e.name.to_string(), 2)).collect();
            let mut left_wins = right.clone();
            expected.extend(right);
            let want: Vec<String> = expected.iter().map(|(k, v)| format!("{k}={v}")).collect();
            assert_eq!(show(&big.update(&small)), want.join(" "));
            // The other way round, the large side's values win on shared names.
            left_wins.extend(big.iter().map(|e| (e.name.to_string(), 1)));
            let want: Vec<String> = left_wins.iter().map(|(k, v)| format!("{k}={v}")).collect();
            assert_eq!(show(&small.update(&big)), want.join(" "));
        }
    }

    #[test]
    fn update_of_comparable_sides_counts_shared_names_exactly() {
        let set = |names: &[&str], v: i64| {
            Attrs::from_unsorted(names.iter().map(|n| entry(n, v)).collect())
        };
        for (left, right) in [
            (&["a", "b", "c"][..], &["b", "c", "d"][..]),
            (&["a", "b"], &["a", "b"]),
            (&["a", "c", "e"], &["b", "d", "f"]),
            (&["x"], &["a", "x", "z"]),
        ] {
            let (l, r) = (set(left, 1), set(right, 2));
            let shared = left.iter().filter(|n| right.contains(n)).count();
            assert_eq!(count_shared(l.entries(), r.entries()), shared);
            let mut want: std::collections::BTreeMap<String, i64> =
                left.iter().map(|n| (n.to_string(), 1)).collect();
            want.extend(right.iter().map(|n| (n.to_string(), 2)));
            let want: Vec<(String, i64)> = want.into_iter().collect();
            assert_eq!(names(&l.update(&r)), want);
        }
    }

    #[test]
    fn entries_are_four_words() {
        // Large sets are kept in many versions at once (`//` in a fold): size matters.
        assert_eq!(std::mem::size_of::<AttrEntry>(), 32);
        // A set is a pointer and a length: with the counts, a 32-byte allocation.
        assert_eq!(std::mem::size_of::<Attrs>(), 16);
    }

    /// Lookups by scan (small sets) and by binary search (larger ones) find every name a
    /// set has and none it lacks, and inserts still land in name order.
    #[test]
    fn lookups_find_exactly_the_names_a_set_has() {
        for n in [0, 1, 7, 8, 9, LOOKUP_SCAN_MAX, LOOKUP_SCAN_MAX + 1, 40] {
            let mut set = Attrs::new();
            for i in (0..n).rev() {
                set.insert(AttrEntry {
                    name: Symbol::intern(&format!("k{i:03}")),
                    value: Value::Int(i as i64),
                    pos: MaybeSpan::none(),
                });
            }
            assert!(set
                .iter()
                .zip(set.iter().skip(1))
                .all(|(a, b)| a.name < b.name));
            for i in 0..n {
                let name = Symbol::intern(&format!("k{i:03}"));
                assert!(matches!(set.get(name), Some(Value::Int(v)) if *v == i as i64));
                assert!(set.contains(name) && set.get_entry(name).is_some());
            }
            for missing in ["k", "k0000", "a", "zz", &format!("k{n:03}")] {
                let name = Symbol::intern(missing);
                assert!(
                    set.get(name).is_none() && !set.contains(name),
                    "{missing} in {n}"
                );
            }
        }
    }

    fn entry(name: &str, v: i64) -> AttrEntry {
        AttrEntry {
            name: Symbol::intern(name),
            value: Value::Int(v),
            pos: MaybeSpan::none(),
        }
    }

    fn names(a: &Attrs) -> Vec<(String, i64)> {
        a.iter()
            .map(|e| {
                let Value::Int(v) = e.value else {
                    panic!("an int")
                };
                (String::from_utf8_lossy(e.name.as_bytes()).into_owned(), v)
            })
            .collect()
    }

    /// `without` drops exactly the named entries (in any order, repeated, missing), keeps
    /// the rest in order, and says so when nothing would be removed, for small (scanned)
    /// and large (binary searched) sets.
    #[test]
    fn without_removes_exactly_the_named_entries() {
        for n in [1, 5, LOOKUP_SCAN_MAX as i64 + 5, 60] {
            let set = Attrs::from_unsorted((0..n).map(|i| entry(&format!("w{i:03}"), i)).collect());
            let sym = |i: i64| Symbol::intern(&format!("w{i:03}"));
            assert!(set.without(&[]).is_none());
            assert!(set.without(&[Symbol::intern("absent"), sym(n)]).is_none());
            let gone = [
                sym(n - 1),
                sym(0),
                sym(n / 2),
                sym(0),
                Symbol::intern("absent"),
            ];
            let rest = set.without(&gone).expect("some names are there");
            let want: Vec<(String, i64)> = (0..n)
                .filter(|i| ![0, n / 2, n - 1].contains(i))
                .map(|i| (format!("w{i:03}"), i))
                .collect();
            assert_eq!(names(&rest), want, "{n} entries");
        }
    }

    #[test]
    fn insert_keeps_order_and_replaces() {
        let mut a = Attrs::from_unsorted(vec![entry("b", 1), entry("d", 2), entry("b", 9)]);
        a.insert(entry("c", 3));
        a.insert(entry("a", 4));
        a.insert(entry("d", 5));
        let want: Vec<(String, i64)> = [("a", 4), ("b", 1), ("c", 3), ("d", 5)]
            .iter()
            .map(|(n, v)| (n.to_string(), *v))
            .collect();
        assert_eq!(names(&a), want);
        let b = Attrs::from_unsorted(vec![entry("c", 7), entry("e", 8)]);
        let u = a.update(&b);
        assert_eq!(u.len(), 5);
        assert_eq!(
            u.get(Symbol::intern("c"))
                .map(|v| matches!(v, Value::Int(7))),
            Some(true)
        );
        assert_eq!(u.into_entries().len(), 5);
    }

    /// A hint is only a first guess: lookups through one hint in sets of different shapes
    /// find exactly what a plain lookup finds.
    #[test]
    fn hinted_lookups_find_what_plain_lookups_find() {
        let set = |names: &[&str]| {
            let mut s = Attrs::new();
            for (i, n) in names.iter().enumerate() {
                s.insert(AttrEntry {
                    name: Symbol::intern(n),
                    value: Value::Int(i as i64),
                    pos: MaybeSpan::none(),
                });
            }
            s
        };
        let big: Vec<String> = (0..40).map(|i| format!("n{i:02}")).collect();
        let big: Vec<&str> = big.iter().map(String::as_str).collect();
        let sets = [
            set(&["a", "b", "c"]),
            set(&["b", "c"]),
            set(&[]),
            set(&big),
            set(&["c"]),
        ];
        let hint = LookupHint::default();
        for _ in 0..2 {
            for s in &sets {
                for name in ["a", "b", "c", "n07", "n39", "zz"] {
                    let name = Symbol::intern(name);
                    let plain = s.get_entry(name).map(|e| e.name);
                    assert_eq!(s.find_hinted(name, &hint).map(|e| e.name), plain);
                }
            }
        }
    }
}
