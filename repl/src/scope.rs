//! The variables the REPL adds to the scope (bindings, loaded files, results), in the order
//! added, with where each came from (for `:env`). A name bound again keeps its slot.

use std::collections::HashMap;

use tvix_eval::symbol::Symbol;
use tvix_eval::Value;

/// Where a variable came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `x = ...`, `inherit`, `_`.
    Bound,
    /// `:l`, `:lf` or `:a` of this (file, flake or expression).
    Loaded(String),
}

/// The REPL's variables.
#[derive(Default)]
pub struct ReplScope {
    entries: Vec<(Symbol, Value)>,
    origins: Vec<Origin>,
    index: HashMap<Symbol, usize>,
}

impl ReplScope {
    /// Binds `name` (replacing an earlier binding of it).
    pub fn bind(&mut self, name: Symbol, v: Value, origin: Origin) {
        match self.index.get(&name) {
            Some(&i) => {
                self.entries[i].1 = v;
                self.origins[i] = origin;
            }
            None => {
                self.index.insert(name, self.entries.len());
                self.entries.push((name, v));
                self.origins.push(origin);
            }
        }
    }

    /// The variables, as [`tvix_eval::Evaluator::lower_in_scope`] takes them.
    pub fn entries(&self) -> &[(Symbol, Value)] {
        &self.entries
    }

    /// Forgets every variable (`:r`).
    pub fn clear(&mut self) {
        *self = ReplScope::default();
    }

    /// `:env`'s listing: the names grouped by origin, sorted within a group; numbered
    /// results (`_1`, ...) are left out.
    pub fn listing(&self) -> String {
        let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
        for ((name, _), origin) in self.entries.iter().zip(&self.origins) {
            if is_numbered_result(name.as_str()) {
                continue;
            }
            let label = match origin {
                Origin::Bound => "bound in this session".to_string(),
                Origin::Loaded(l) => format!("from {l}"),
            };
            match groups.iter_mut().find(|(l, _)| *l == label) {
                Some((_, names)) => names.push(name.as_str()),
                None => groups.push((label, vec![name.as_str()])),
            }
        }
        let mut out = String::new();
        for (label, mut names) in groups {
            names.sort_unstable();
            out.push_str(&format!("{label}: {}\n", names.join(" ")));
        }
        out
    }
}

/// `_1`, `_2`, ...
pub fn is_numbered_result(name: &str) -> bool {
    name.len() > 1 && name.starts_with('_') && name[1..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebinding_keeps_the_slot_and_listing_groups_by_origin() {
        let mut s = ReplScope::default();
        let (x, y, r) = (
            Symbol::intern("x"),
            Symbol::intern("y"),
            Symbol::intern("_1"),
        );
        s.bind(x, Value::Int(1), Origin::Bound);
        s.bind(y, Value::Int(2), Origin::Loaded("./f.nix".into()));
        s.bind(r, Value::Int(3), Origin::Bound);
        s.bind(x, Value::Int(4), Origin::Loaded("./f.nix".into()));
        assert_eq!(s.entries().len(), 3);
        assert!(matches!(s.entries()[0], (n, Value::Int(4)) if n == x));
        assert_eq!(s.listing(), "from ./f.nix: x y\n");
        assert!(is_numbered_result("_12") && !is_numbered_result("_") && !is_numbered_result("_a"));
    }
}
