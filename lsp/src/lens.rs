//! Where the "build" code lens goes: bindings whose value is, by its syntax alone, a call of a
//! function that makes a derivation (`derivation`, `mkDerivation`, `runCommand`, ...).
//! Knowing it costs nothing (no evaluation), so the lens may miss derivations made in other
//! ways; the command itself evaluates.

use rnix::ast::{self, HasEntry};
use rnix::{SyntaxNode, TextRange};
use rowan::ast::AstNode;

/// Functions whose result is a derivation (the last name of the applied expression).
const DERIVATION_MAKERS: &[&str] = &[
    "derivation",
    "derivationStrict",
    "mkDerivation",
    "runCommand",
    "runCommandLocal",
    "runCommandCC",
    "writeText",
    "writeTextFile",
    "writeScript",
    "writeScriptBin",
    "writeShellScript",
    "writeShellScriptBin",
    "writeShellApplication",
    "symlinkJoin",
    "buildEnv",
    "buildPythonPackage",
    "buildPythonApplication",
    "buildGoModule",
    "buildRustPackage",
    "buildNpmPackage",
];

/// A binding that gets a lens: its attribute path from the file's top-level set and the
/// range of its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DerivationBinding {
    /// The attribute path (`packages.hello`).
    pub path: Vec<String>,
    /// The range of the binding's attribute path in the document.
    pub range: TextRange,
}

/// The bindings of the file's value (through a top-level function and `let`s) whose value
/// is a derivation by its syntax, in nested sets too.
pub fn derivation_bindings(root: &SyntaxNode) -> Vec<DerivationBinding> {
    let mut out = Vec::new();
    if let Some(set) = ast::Root::cast(root.clone())
        .and_then(|r| r.expr())
        .and_then(top_set)
    {
        collect(&set, &mut Vec::new(), &mut out);
    }
    out
}

/// The set a file's value is written as: under lambdas, `let`s and parentheses.
fn top_set(mut e: ast::Expr) -> Option<ast::AttrSet> {
    loop {
        e = match e {
            ast::Expr::Lambda(l) => l.body()?,
            ast::Expr::LetIn(l) => l.body()?,
            ast::Expr::Paren(p) => p.expr()?,
            ast::Expr::AttrSet(s) => return Some(s),
            _ => return None,
        };
    }
}

fn collect(set: &ast::AttrSet, prefix: &mut Vec<String>, out: &mut Vec<DerivationBinding>) {
    for kv in set.attrpath_values() {
        let Some(attrpath) = kv.attrpath() else {
            continue;
        };
        let names: Option<Vec<String>> = attrpath
            .attrs()
            .map(|a| crate::analysis::static_attr_name(&a))
            .collect();
        let (Some(names), Some(value)) = (names, kv.value()) else {
            continue;
        };
        let depth = prefix.len();
        prefix.extend(names);
        match value {
            ast::Expr::AttrSet(inner) => collect(&inner, prefix, out),
            v if makes_derivation(&v) => out.push(DerivationBinding {
                path: prefix.clone(),
                range: attrpath.syntax().text_range(),
            }),
            _ => {}
        }
        prefix.truncate(depth);
    }
}

/// Whether `e` applies a function [`DERIVATION_MAKERS`] names (possibly selected from a
/// set, as `pkgs.stdenv.mkDerivation`).
fn makes_derivation(e: &ast::Expr) -> bool {
    let ast::Expr::Apply(mut app) = e.clone() else {
        return false;
    };
    loop {
        match app.lambda() {
            Some(ast::Expr::Apply(inner)) => app = inner,
            Some(ast::Expr::Ident(i)) => {
                return i
                    .ident_token()
                    .is_some_and(|t| DERIVATION_MAKERS.contains(&t.text()))
            }
            Some(ast::Expr::Select(s)) => {
                return s
                    .attrpath()
                    .and_then(|p| p.attrs().last())
                    .and_then(|a| crate::analysis::static_attr_name(&a))
                    .is_some_and(|n| DERIVATION_MAKERS.contains(&n.as_str()))
            }
            _ => return false,
        }
    }
}

/// The attribute path of the lens binding whose name contains `offset`, for a build asked
/// for at a position.
pub fn binding_at(root: &SyntaxNode, offset: usize) -> Option<Vec<String>> {
    derivation_bindings(root)
        .into_iter()
        .find(|b| b.range.contains_inclusive((offset as u32).into()))
        .map(|b| b.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(src: &str) -> Vec<String> {
        let root = rnix::Root::parse(src).syntax();
        derivation_bindings(&root)
            .into_iter()
            .map(|b| b.path.join("."))
            .collect()
    }

    #[test]
    fn finds_derivation_calls_only() {
        let src = r#"{ pkgs ? import <nixpkgs> {} }:
let x = 1; in {
  hello = derivation { name = "h"; builder = "/bin/sh"; system = "x"; };
  packages.tool = pkgs.stdenv.mkDerivation { name = "t"; };
  nested = { script = pkgs.writeShellScriptBin "s" "echo"; num = 2; };
  cmd = pkgs.runCommand "c" {} "touch $out";
  notOne = builtins.map (x: x) [];
  ${x} = derivation {};
}"#;
        assert_eq!(
            paths(src),
            vec!["hello", "packages.tool", "nested.script", "cmd"]
        );
        assert!(paths("1 + 2").is_empty());
        assert!(paths("{ a = ").is_empty());
        let root = rnix::Root::parse(src).syntax();
        let offset = src.find("tool").unwrap() + 1;
        assert_eq!(
            binding_at(&root, offset),
            Some(vec!["packages".to_string(), "tool".to_string()])
        );
        assert_eq!(binding_at(&root, 0), None);
    }
}
