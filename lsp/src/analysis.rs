//! Static analysis of one file on its syntax tree: which binding every variable refers to,
//! which bindings are unused, which `with`s are useless. Everything the editor asks about
//! names (definition, references, rename, highlight, completion, unused warnings) reads this.

use std::collections::HashMap;

use rnix::ast::{self, HasEntry};
use rnix::{SyntaxKind, SyntaxNode, TextRange};
use rowan::ast::AstNode;

/// What introduced a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefKind {
    /// A `let` binding (also `inherit` inside `let`).
    Let,
    /// An attribute of a `rec` set (or legacy `let { }`).
    RecAttr,
    /// A formal of a `{ a, b ? d }:` pattern.
    Formal,
    /// The parameter of `x: ...` or the `@` name of a pattern.
    LambdaArg,
}

impl DefKind {
    /// How the editor describes it.
    pub fn describe(self) -> &'static str {
        match self {
            DefKind::Let => "let binding",
            DefKind::RecAttr => "recursive attribute",
            DefKind::Formal => "function formal",
            DefKind::LambdaArg => "function argument",
        }
    }
}

/// A name bound in source.
#[derive(Clone, Debug)]
pub struct Definition {
    /// The name.
    pub name: String,
    /// Where it is defined (the name's range); a name defined by several attribute paths
    /// (`a.b = 1; a.c = 2;`) has several sites, the first is the main one.
    pub sites: Vec<TextRange>,
    /// What introduced it.
    pub kind: DefKind,
    /// Where it is used.
    pub uses: Vec<TextRange>,
    /// The range of the node whose scope it belongs to (the `let`, lambda or `rec` set).
    pub scope: TextRange,
    /// The range of the whole binding (`name = value;`, the formal, the parameter).
    pub binding: TextRange,
    /// Every binding that defines it, in source order (`binding` is the first): one per
    /// site, except that an `inherit` defining several names is each one's binding.
    pub bindings: Vec<TextRange>,
}

/// What a variable reference resolved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A binding in this file (index into [`Analysis::defs`]).
    Def(usize),
    /// A global name (builtin or constant).
    Global,
    /// Nothing lexical: looked up in the enclosing `with`s at run time.
    With,
    /// Nowhere: an error.
    Undefined,
}

/// A variable reference.
#[derive(Clone, Debug)]
pub struct Reference {
    /// The identifier's range.
    pub range: TextRange,
    /// The name.
    pub name: String,
    /// What it refers to.
    pub target: Target,
    /// Whether a `with` encloses the reference between it and its lexical binding; for a
    /// name the `with` namespace also has, the lexical binding wins.
    pub under_with: Option<TextRange>,
}

/// A `with` expression and whether any name falls through to it.
#[derive(Clone, Debug)]
pub struct WithInfo {
    /// The `with` keyword's range.
    pub keyword: TextRange,
    /// The whole expression.
    pub range: TextRange,
    /// Names of a namespace written as a literal set, if it is one.
    pub literal_names: Option<Vec<String>>,
    /// How many references resolve through it.
    pub uses: usize,
}

/// The result of analysing one file.
#[derive(Default, Debug)]
pub struct Analysis {
    /// Bindings, in source order of their scopes.
    pub defs: Vec<Definition>,
    /// Variable references, in source order.
    pub refs: Vec<Reference>,
    /// `with` expressions.
    pub withs: Vec<WithInfo>,
    /// Every definition site with its definition, sorted by position (for lookups by offset).
    sites: Vec<(TextRange, usize)>,
}

impl Analysis {
    /// The reference whose identifier contains `offset`.
    pub fn reference_at(&self, offset: usize) -> Option<&Reference> {
        // References never overlap and are sorted: look at the last one starting at or
        // before `offset` (and the one before it, for a cursor right after an identifier).
        let i = self
            .refs
            .partition_point(|r| u32::from(r.range.start()) as usize <= offset);
        self.refs[i.saturating_sub(2)..i]
            .iter()
            .rev()
            .find(|r| contains(r.range, offset))
    }

    /// The references inside `range`, in source order (a slice of [`Analysis::refs`]).
    pub fn references_in(&self, range: TextRange) -> &[Reference] {
        let from = self
            .refs
            .partition_point(|r| r.range.start() < range.start());
        let to = self.refs.partition_point(|r| r.range.start() < range.end());
        &self.refs[from..to.max(from)]
    }

    /// The definition whose name (at any site) contains `offset`.
    pub fn definition_at(&self, offset: usize) -> Option<usize> {
        let i = self
            .sites
            .partition_point(|(r, _)| u32::from(r.start()) as usize <= offset);
        self.sites[i.saturating_sub(2)..i]
            .iter()
            .rev()
            .find(|(r, _)| contains(*r, offset))
            .map(|(_, d)| *d)
    }

    /// The definition under the cursor, at a use or at a definition site.
    pub fn symbol_at(&self, offset: usize) -> Option<usize> {
        match self.reference_at(offset) {
            Some(Reference {
                target: Target::Def(i),
                ..
            }) => Some(*i),
            _ => self.definition_at(offset),
        }
    }

    /// The names visible at `offset`, innermost first, with their definitions.
    pub fn visible_at(&self, offset: usize) -> Vec<usize> {
        let mut found: Vec<usize> = (0..self.defs.len())
            .filter(|&i| contains_inclusive(self.defs[i].scope, offset))
            .collect();
        // Innermost scope first; among the same scope, source order.
        found.sort_by_key(|&i| {
            let s = self.defs[i].scope;
            (
                std::cmp::Reverse(s.start()),
                s.end(),
                self.defs[i].sites[0].start(),
            )
        });
        let mut seen = std::collections::HashSet::new();
        found.retain(|&i| seen.insert(self.defs[i].name.clone()));
        found
    }
}

fn contains(r: TextRange, offset: usize) -> bool {
    let o = offset as u32;
    u32::from(r.start()) <= o && o <= u32::from(r.end()) && !r.is_empty()
}

fn contains_inclusive(r: TextRange, offset: usize) -> bool {
    let o = offset as u32;
    u32::from(r.start()) <= o && o <= u32::from(r.end())
}

/// The text of a static attribute name (`a`, `"a"` without interpolation), if it is one.
pub fn static_attr_name(attr: &ast::Attr) -> Option<String> {
    match attr {
        ast::Attr::Ident(i) => Some(i.syntax().text().to_string()),
        ast::Attr::Str(s) => static_string(s),
        ast::Attr::Dynamic(d) => match d.expr()? {
            ast::Expr::Str(s) => static_string(&s),
            _ => None,
        },
    }
}

/// The contents of a string literal without interpolation.
pub fn static_string(s: &ast::Str) -> Option<String> {
    let mut out = String::new();
    for part in s.normalized_parts() {
        match part {
            ast::InterpolPart::Literal(l) => out.push_str(&l),
            ast::InterpolPart::Interpolation(_) => return None,
        }
    }
    Some(out)
}

enum Scope {
    Names(HashMap<String, usize>),
    With(usize),
}

/// Analyses the tree of one file; `globals` are the names of the global scope.
pub fn analyse(root: &SyntaxNode, is_global: &dyn Fn(&str) -> bool) -> Analysis {
    let mut w = Walker {
        out: Analysis::default(),
        scopes: Vec::new(),
        is_global,
    };
    w.node(root);
    w.out.refs.sort_by_key(|r| r.range.start());
    let mut sites: Vec<(TextRange, usize)> = w
        .out
        .defs
        .iter()
        .enumerate()
        .flat_map(|(i, d)| d.sites.iter().map(move |s| (*s, i)))
        .collect();
    sites.sort_by_key(|(r, _)| r.start());
    w.out.sites = sites;
    w.out
}

struct Walker<'a> {
    out: Analysis,
    scopes: Vec<Scope>,
    is_global: &'a dyn Fn(&str) -> bool,
}

impl Walker<'_> {
    fn node(&mut self, node: &SyntaxNode) {
        match node.kind() {
            SyntaxKind::NODE_IDENT => {
                if let Some(i) = ast::Ident::cast(node.clone()) {
                    self.reference(&i, 0);
                }
            }
            SyntaxKind::NODE_LET_IN => {
                let l = ast::LetIn::cast(node.clone()).expect("kind checked");
                self.bindings(node, &l, DefKind::Let);
                if let Some(b) = l.body() {
                    self.node(b.syntax());
                }
                self.scopes.pop();
            }
            SyntaxKind::NODE_LEGACY_LET => {
                let l = ast::LegacyLet::cast(node.clone()).expect("kind checked");
                self.bindings(node, &l, DefKind::RecAttr);
                self.scopes.pop();
            }
            SyntaxKind::NODE_ATTR_SET => {
                let s = ast::AttrSet::cast(node.clone()).expect("kind checked");
                if s.rec_token().is_some() {
                    self.bindings(node, &s, DefKind::RecAttr);
                    self.scopes.pop();
                } else {
                    self.plain_set(&s);
                }
            }
            SyntaxKind::NODE_LAMBDA => {
                let l = ast::Lambda::cast(node.clone()).expect("kind checked");
                self.lambda(node, &l);
            }
            SyntaxKind::NODE_WITH => {
                let w = ast::With::cast(node.clone()).expect("kind checked");
                if let Some(ns) = w.namespace() {
                    self.node(ns.syntax());
                }
                let literal_names = match w.namespace() {
                    Some(ast::Expr::AttrSet(s)) if s.rec_token().is_none() => Some(
                        s.attrpath_values()
                            .filter_map(|kv| kv.attrpath()?.attrs().next())
                            .filter_map(|a| static_attr_name(&a))
                            .chain(s.inherits().flat_map(|i| {
                                i.attrs()
                                    .filter_map(|a| static_attr_name(&a))
                                    .collect::<Vec<_>>()
                            }))
                            .collect(),
                    ),
                    _ => None,
                };
                let keyword = w
                    .with_token()
                    .map(|t| t.text_range())
                    .unwrap_or(node.text_range());
                self.out.withs.push(WithInfo {
                    keyword,
                    range: node.text_range(),
                    literal_names,
                    uses: 0,
                });
                self.scopes.push(Scope::With(self.out.withs.len() - 1));
                if let Some(b) = w.body() {
                    self.node(b.syntax());
                }
                self.scopes.pop();
            }
            SyntaxKind::NODE_ATTRPATH => self.attrpath(node),
            _ => {
                for child in node.children() {
                    self.node(&child);
                }
            }
        }
    }

    /// Walks the dynamic parts of an attribute path (its plain names are not variables).
    fn attrpath(&mut self, node: &SyntaxNode) {
        for child in node.children() {
            if child.kind() != SyntaxKind::NODE_IDENT {
                self.node(&child);
            }
        }
    }

    fn reference(&mut self, ident: &ast::Ident, skip: usize) {
        let name = ident.syntax().text().to_string();
        let range = ident.syntax().text_range();
        let mut first_with = None;
        let mut target = None;
        for scope in self.scopes.iter().rev().skip(skip) {
            match scope {
                Scope::Names(names) => {
                    if let Some(&d) = names.get(&name) {
                        target = Some(Target::Def(d));
                        break;
                    }
                }
                Scope::With(w) => {
                    first_with.get_or_insert(*w);
                }
            }
        }
        let target = match target {
            Some(t) => t,
            None if (self.is_global)(&name) => Target::Global,
            None => match first_with {
                Some(w) => {
                    // Every enclosing `with` may be the one that has it.
                    for scope in self.scopes.iter().rev().skip(skip) {
                        if let Scope::With(w) = scope {
                            self.out.withs[*w].uses += 1;
                        }
                    }
                    let _ = w;
                    Target::With
                }
                None => Target::Undefined,
            },
        };
        if let Target::Def(d) = target {
            self.out.defs[d].uses.push(range);
        }
        let under_with = match target {
            Target::Def(_) | Target::Global => first_with.map(|w| self.out.withs[w].range),
            _ => None,
        };
        self.out.refs.push(Reference {
            range,
            name,
            target,
            under_with,
        });
    }

    fn define(
        &mut self,
        names: &mut HashMap<String, usize>,
        name: String,
        site: TextRange,
        kind: DefKind,
        scope: TextRange,
        binding: TextRange,
    ) {
        if let Some(&d) = names.get(&name) {
            let def = &mut self.out.defs[d];
            def.sites.push(site);
            if def.bindings.last() != Some(&binding) {
                def.bindings.push(binding);
            }
            return;
        }
        self.out.defs.push(Definition {
            name: name.clone(),
            sites: vec![site],
            kind,
            uses: Vec::new(),
            scope,
            binding,
            bindings: vec![binding],
        });
        names.insert(name, self.out.defs.len() - 1);
    }

    /// A recursive binding group (`let`, `rec { }`): pushes its scope, walks its values.
    fn bindings(&mut self, node: &SyntaxNode, entries: &impl HasEntry, kind: DefKind) {
        let scope = node.text_range();
        let mut names = HashMap::new();
        for entry in entries.entries() {
            match entry {
                ast::Entry::AttrpathValue(kv) => {
                    let Some(first) = kv.attrpath().and_then(|p| p.attrs().next()) else {
                        continue;
                    };
                    if let Some(name) = static_attr_name(&first) {
                        let binding = kv.syntax().text_range();
                        self.define(
                            &mut names,
                            name,
                            first.syntax().text_range(),
                            kind,
                            scope,
                            binding,
                        );
                    }
                }
                ast::Entry::Inherit(inh) => {
                    for attr in inh.attrs() {
                        if let Some(name) = static_attr_name(&attr) {
                            self.define(
                                &mut names,
                                name,
                                attr.syntax().text_range(),
                                kind,
                                scope,
                                inh.syntax().text_range(),
                            );
                        }
                    }
                }
            }
        }
        self.scopes.push(Scope::Names(names));
        for entry in entries.entries() {
            match entry {
                ast::Entry::AttrpathValue(kv) => {
                    if let Some(p) = kv.attrpath() {
                        self.attrpath(p.syntax());
                    }
                    if let Some(v) = kv.value() {
                        self.node(v.syntax());
                    }
                }
                ast::Entry::Inherit(inh) => self.inherit(&inh, 1),
            }
        }
    }

    /// `inherit a;` refers to `a` outside the binding group (`skip` scopes up); `inherit (e) a;`
    /// only evaluates `e`.
    fn inherit(&mut self, inh: &ast::Inherit, skip: usize) {
        if let Some(from) = inh.from() {
            if let Some(e) = from.expr() {
                self.node(e.syntax());
            }
            return;
        }
        for attr in inh.attrs() {
            if let ast::Attr::Ident(i) = attr {
                self.reference(&i, skip);
            }
        }
    }

    fn plain_set(&mut self, s: &ast::AttrSet) {
        for entry in s.entries() {
            match entry {
                ast::Entry::AttrpathValue(kv) => {
                    if let Some(p) = kv.attrpath() {
                        self.attrpath(p.syntax());
                    }
                    if let Some(v) = kv.value() {
                        self.node(v.syntax());
                    }
                }
                ast::Entry::Inherit(inh) => self.inherit(&inh, 0),
            }
        }
    }

    fn lambda(&mut self, node: &SyntaxNode, l: &ast::Lambda) {
        let scope = node.text_range();
        let mut names = HashMap::new();
        let mut defaults = Vec::new();
        match l.param() {
            Some(ast::Param::IdentParam(p)) => {
                if let Some(i) = p.ident() {
                    let r = i.syntax().text_range();
                    self.define(
                        &mut names,
                        i.syntax().text().to_string(),
                        r,
                        DefKind::LambdaArg,
                        scope,
                        r,
                    );
                }
            }
            Some(ast::Param::Pattern(p)) => {
                for entry in p.pat_entries() {
                    if let Some(i) = entry.ident() {
                        self.define(
                            &mut names,
                            i.syntax().text().to_string(),
                            i.syntax().text_range(),
                            DefKind::Formal,
                            scope,
                            entry.syntax().text_range(),
                        );
                    }
                    if let Some(d) = entry.default() {
                        defaults.push(d);
                    }
                }
                if let Some(i) = p.pat_bind().and_then(|b| b.ident()) {
                    let r = i.syntax().text_range();
                    self.define(
                        &mut names,
                        i.syntax().text().to_string(),
                        r,
                        DefKind::LambdaArg,
                        scope,
                        r,
                    );
                }
            }
            None => {}
        }
        self.scopes.push(Scope::Names(names));
        for d in defaults {
            self.node(d.syntax());
        }
        if let Some(b) = l.body() {
            self.node(b.syntax());
        }
        self.scopes.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> Analysis {
        let root = rnix::Root::parse(src).syntax();
        analyse(&root, &|n| n == "map" || n == "builtins")
    }

    #[test]
    fn resolves_let_formals_rec_and_inherit() {
        let a = run("{ x, y ? x }: let a = x; b.c = a; inherit y; in rec { p = b; q = p; r = map; s = zz; }");
        let names: Vec<_> = a
            .defs
            .iter()
            .map(|d| (d.name.as_str(), d.uses.len()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("x", 2),
                ("y", 1),
                ("a", 1),
                ("b", 1),
                ("y", 0),
                ("p", 1),
                ("q", 0),
                ("r", 0),
                ("s", 0)
            ]
        );
        let zz = a.refs.iter().find(|r| r.name == "zz").unwrap();
        assert_eq!(zz.target, Target::Undefined);
        let map = a.refs.iter().find(|r| r.name == "map").unwrap();
        assert_eq!(map.target, Target::Global);
    }

    #[test]
    fn with_catches_unknown_names_and_counts_uses() {
        let a = run("let x = 1; in with { y = 2; }; [ x y ] ++ (with z; [ ])");
        assert_eq!(
            a.refs.iter().find(|r| r.name == "y").unwrap().target,
            Target::With
        );
        // `z` is looked up in the outer `with`: a namespace is evaluated outside its own `with`.
        assert_eq!(a.withs[0].uses, 2);
        assert_eq!(a.withs[1].uses, 0);
        assert_eq!(
            a.withs[0].literal_names.as_deref(),
            Some(&["y".to_string()][..])
        );
        let x = a.refs.iter().find(|r| r.name == "x").unwrap();
        assert!(x.under_with.is_some());
        assert_eq!(
            a.refs.iter().find(|r| r.name == "z").unwrap().target,
            Target::With
        );
        // A namespace is evaluated outside its own `with`.
        let b = run("with z; 1");
        assert_eq!(b.refs[0].target, Target::Undefined);
    }

    #[test]
    fn select_names_are_not_variables() {
        let a = run("let a = { b = 1; }; in a.b or a.${a.b}");
        let names: Vec<_> = a.refs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["a", "a", "a"]);
    }
}
