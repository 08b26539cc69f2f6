import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Token, tokenize } from "./tokenize";

/** The scopes of the first token of `source` whose text is exactly `text`, or of the
 *  `nth` such token. */
async function scopesOf(source: string, text: string, nth = 0): Promise<string[]> {
  const matches = (await tokenize(source)).flat().filter((t: Token) => t.text === text);
  assert.ok(
    matches.length > nth,
    `no token ${JSON.stringify(text)} (#${nth}) in ${JSON.stringify(source)}; tokens: ${JSON.stringify(
      (await tokenize(source)).flat().map((t) => t.text),
    )}`,
  );
  return matches[nth].scopes;
}

/** Asserts that the token has `scope` (the innermost scope, unless `anywhere`). */
async function expectScope(source: string, text: string, scope: string, nth = 0): Promise<void> {
  const scopes = await scopesOf(source, text, nth);
  assert.equal(
    scopes[scopes.length - 1],
    scope,
    `${JSON.stringify(text)} in ${JSON.stringify(source)} has scopes ${scopes.join(" ")}`,
  );
}

async function expectWithin(source: string, text: string, scope: string, nth = 0): Promise<void> {
  const scopes = await scopesOf(source, text, nth);
  assert.ok(
    scopes.includes(scope),
    `${JSON.stringify(text)} in ${JSON.stringify(source)} has scopes ${scopes.join(" ")}, not ${scope}`,
  );
}

describe("grammar", () => {
  it("every token is in the source.nix scope", async () => {
    const lines = await tokenize("let x = 1; in x");
    for (const t of lines.flat()) {
      assert.equal(t.scopes[0], "source.nix");
    }
  });

  it("comments: line, block and doc comments", async () => {
    await expectWithin("x # note", " note", "comment.line.number-sign.nix");
    await expectWithin("/* plain */ x", " plain ", "comment.block.nix");
    await expectWithin("/** doc */ x", " doc ", "comment.block.documentation.nix");
    await expectWithin("/**/ x", "/*", "comment.block.nix");
    // A block comment spans lines and ends where `*/` is.
    const lines = await tokenize("/*\n  still a comment\n*/ 42");
    assert.ok(lines[1][0].scopes.includes("comment.block.nix"));
    await expectScope("/*\n  still\n*/ 42", "42", "constant.numeric.integer.nix");
  });

  it("double-quoted strings with escapes and interpolation", async () => {
    const src = '"a\\"b ${x + 1} $${y}"';
    await expectWithin(src, '\\"', "constant.character.escape.nix");
    await expectScope(src, "${", "punctuation.section.embedded.begin.nix");
    await expectScope(src, "x", "variable.other.nix");
    await expectWithin(src, "x", "meta.embedded.interpolation.nix");
    await expectScope(src, "1", "constant.numeric.integer.nix");
    // `$${` is literal text: `y` stays inside the string.
    const y = await scopesOf(src, "{y}");
    assert.equal(y[y.length - 1], "string.quoted.double.nix");
  });

  it("indented strings with their escapes and interpolation", async () => {
    const src = "''\n  a ''${b} ''' ${c} ''\\n\n''";
    // `''$` escapes the `$`, so `{b}` is text.
    await expectScope(src, "''$", "constant.character.escape.nix");
    await expectWithin(src, "{b} ", "string.quoted.other.indented.nix");
    await expectScope(src, "{b} ", "string.quoted.other.indented.nix");
    await expectScope(src, "'''", "constant.character.escape.nix");
    await expectScope(src, "''\\n", "constant.character.escape.nix");
    await expectScope(src, "c", "variable.other.nix");
    await expectScope(src, "''", "punctuation.definition.string.end.nix", 1);
  });

  it("paths, search paths and URLs", async () => {
    await expectScope("import ./lib/default.nix", "./lib/default.nix", "string.unquoted.path.nix");
    await expectScope("x /etc/hosts", "/etc/hosts", "string.unquoted.path.nix");
    await expectScope("~/.config", "~/.config", "string.unquoted.path.nix");
    await expectScope("import <nixpkgs/lib>", "<nixpkgs/lib>", "string.unquoted.path.search.nix");
    await expectScope("https://example.org/a.tar.gz", "https://example.org/a.tar.gz", "string.unquoted.url.nix");
    // An interpolated path is one path with an embedded expression.
    const src = "./hosts/${name}.nix";
    await expectScope(src, "./hosts/", "string.unquoted.path.nix");
    await expectScope(src, "name", "variable.other.nix");
    await expectScope(src, ".nix", "string.unquoted.path.nix");
    // Division with spaces is an operator, not a path.
    await expectScope("a / b", "/", "keyword.operator.nix");
    await expectScope("a // b", "//", "keyword.operator.nix");
  });

  it("keywords, constants and builtins", async () => {
    const src = "let a = if true then null else rec { }; in with a; assert a; a.b or false";
    for (const k of ["if", "then", "else"]) {
      await expectScope(src, k, "keyword.control.conditional.nix");
    }
    await expectScope(src, "let", "keyword.control.let.nix");
    await expectScope(src, "in", "keyword.control.let.nix");
    await expectScope(src, "with", "keyword.control.with.nix");
    await expectScope(src, "assert", "keyword.control.assert.nix");
    await expectScope(src, "rec", "storage.modifier.rec.nix");
    await expectScope(src, "or", "keyword.operator.or.nix");
    await expectScope(src, "true", "constant.language.nix");
    await expectScope(src, "null", "constant.language.nix");
    await expectScope("builtins.map f xs", "map", "support.function.builtin.nix");
    await expectScope("builtins.map f xs", "builtins", "support.constant.builtins.nix");
    await expectScope("import ./x.nix", "import", "support.function.builtin.nix");
    // Identifiers may contain keywords, `-` and `'`.
    await expectScope("if-then'", "if-then'", "variable.other.nix");
  });

  it("attribute names in bindings, inherit and selections", async () => {
    const src = '{ a.b."c d" = 1; e = x == y; inherit (pkgs) hello; }';
    await expectScope(src, "a", "entity.other.attribute-name.nix");
    await expectScope(src, "b", "entity.other.attribute-name.nix");
    await expectWithin(src, "c d", "meta.attribute-path.nix");
    await expectScope(src, "e", "entity.other.attribute-name.nix");
    await expectScope(src, "=", "keyword.operator.bind.nix");
    await expectScope(src, "x", "variable.other.nix");
    await expectScope(src, "==", "keyword.operator.nix");
    await expectScope(src, "inherit", "keyword.other.inherit.nix");
    await expectScope(src, "pkgs", "variable.other.nix");
    await expectScope(src, "hello", "entity.other.attribute-name.nix");
    await expectScope("pkgs.lib.id", "lib", "variable.other.member.nix");
    await expectScope("let x = 1; in x", "x", "entity.other.attribute-name.nix");
  });

  it("function parameters: plain, set patterns and @-bindings", async () => {
    await expectScope("x: x + 1", "x", "variable.parameter.name.nix");
    await expectScope("x: x + 1", "x", "variable.other.nix", 1);
    const src = "{ lib, pkgs ? import <nixpkgs> { }, ... }@args: lib";
    await expectScope(src, "lib", "variable.parameter.name.nix");
    await expectScope(src, "pkgs", "variable.parameter.name.nix");
    await expectScope(src, "?", "keyword.operator.default.nix");
    await expectScope(src, "import", "support.function.builtin.nix");
    await expectScope(src, "...", "keyword.operator.ellipsis.nix");
    await expectScope(src, "args", "variable.parameter.name.nix");
    await expectScope(src, "lib", "variable.other.nix", 1);
    // One formal per line, the style of nixpkgs.
    const multi = "{\n  lib,\n  stdenv ? null,\n}:\nstdenv";
    await expectScope(multi, "lib", "variable.parameter.name.nix");
    await expectScope(multi, "stdenv", "variable.parameter.name.nix");
    // `x:y` without a space is a URL in Nix, not a lambda.
    await expectScope("x:y", "x:y", "string.unquoted.url.nix");
  });

  it("numbers and operators", async () => {
    await expectScope("42", "42", "constant.numeric.integer.nix");
    await expectScope("3.14", "3.14", "constant.numeric.float.nix");
    await expectScope(".5e3", ".5e3", "constant.numeric.float.nix");
    for (const op of ["++", "->", "&&", "||", "!=", "<=", "|>"]) {
      await expectScope(`a ${op} b`, op, "keyword.operator.nix");
    }
    await expectScope("a < b", "<", "keyword.operator.nix");
    await expectScope("x ? y", "?", "keyword.operator.nix");
  });

  it("tokenizes a realistic file with balanced scopes", async () => {
    const src = [
      "/** Builds the greeting. */",
      "{ lib, stdenv, name ? \"world\" }:",
      "let",
      "  greeting = ''",
      "    Hello, ${name}!",
      "  '';",
      "in",
      "stdenv.mkDerivation {",
      "  pname = \"hello-${name}\";",
      "  src = ./src;",
      "  meta.license = lib.licenses.mit;",
      "  passthru = { inherit greeting; };",
      "}",
    ].join("\n");
    const lines = await tokenize(src);
    // After the last `}` nothing is open any more: the last token is only in source.nix
    // plus the closing punctuation of the attribute set.
    const last = lines[lines.length - 1];
    assert.deepEqual(last[last.length - 1].scopes, [
      "source.nix",
      "meta.attrset.nix",
      "punctuation.definition.attrset.end.nix",
    ]);
    await expectScope(src, "pname", "entity.other.attribute-name.nix");
    await expectScope(src, "./src", "string.unquoted.path.nix");
    await expectScope(src, "license", "entity.other.attribute-name.nix");
    await expectScope(src, "mkDerivation", "variable.other.member.nix");
  });
});
