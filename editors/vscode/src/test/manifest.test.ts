// Checks that package.json, the language configuration and the code agree with each other.

import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";

import { DEFAULTS, serverConfiguration } from "../settings";

const root = path.resolve(__dirname, "..", "..");
const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
const languageConfiguration = JSON.parse(
  fs.readFileSync(path.join(root, "language-configuration.json"), "utf8"),
);

describe("package.json", () => {
  it("declares every setting with the default the code uses", () => {
    const props = manifest.contributes.configuration.properties;
    const declared = Object.keys(props).map((k) => k.replace(/^tvix\./, "")).sort();
    assert.deepEqual(declared, Object.keys(DEFAULTS).sort());
    for (const [key, value] of Object.entries(DEFAULTS)) {
      assert.deepEqual(props[`tvix.${key}`].default, value, `default of tvix.${key}`);
    }
  });

  it("declares exactly the settings the server receives, plus the binary path", () => {
    // Dotted settings (`tvix.build.enable`) reach the server as nested objects.
    const tvix = serverConfiguration({ get: () => undefined }, undefined).tvix;
    const sent = Object.entries(tvix).flatMap(([k, v]) =>
      k === "build" ? Object.keys(v as object).map((inner) => `${k}.${inner}`) : [k],
    );
    const declared = Object.keys(manifest.contributes.configuration.properties)
      .map((k) => k.replace(/^tvix\./, ""))
      .filter((k) => k !== "path");
    assert.deepEqual(sent.sort(), declared.sort());
  });

  it("registers every contributed command in the extension", () => {
    const code = fs.readFileSync(path.join(root, "out", "extension.js"), "utf8");
    const commands: string[] = manifest.contributes.commands.map((c: { command: string }) => c.command);
    assert.deepEqual(commands.sort(), ["tvix.buildAtCursor", "tvix.evaluateSelection", "tvix.openRepl", "tvix.restartServer"]);
    for (const c of commands) {
      assert.ok(code.includes(`registerCommand("${c}"`), `${c} is not registered`);
    }
  });

  it("points at files that exist, with the grammar's scope name", () => {
    const grammar = manifest.contributes.grammars[0];
    const tm = JSON.parse(fs.readFileSync(path.join(root, grammar.path), "utf8"));
    assert.equal(tm.scopeName, grammar.scopeName);
    assert.ok(fs.existsSync(path.join(root, manifest.contributes.languages[0].configuration)));
    assert.ok(fs.existsSync(path.join(root, manifest.main.replace(/^\.\//, ""))));
    for (const f of ["README.md", "LICENSE"]) {
      assert.ok(fs.existsSync(path.join(root, f)), `${f} is missing`);
    }
  });

  it("bundles the extension with nothing left to load but VS Code and Node's own modules", () => {
    const bundle = fs.readFileSync(path.join(root, manifest.main), "utf8");
    const required = [...bundle.matchAll(/require\(\s*"([^"]+)"\s*\)/g)].map((m) => m[1]);
    assert.ok(required.includes("vscode"), `the bundle does not load vscode: ${required.join(", ")}`);
    const builtins = new Set(require("node:module").builtinModules as string[]);
    for (const r of required) {
      assert.ok(
        r === "vscode" || builtins.has(r.replace(/^node:/, "")),
        `the bundle loads ${r} at run time`,
      );
    }
  });

  it("has what vsce needs to package", () => {
    for (const field of ["name", "publisher", "version", "license", "repository"]) {
      assert.ok(manifest[field], `${field} is missing`);
    }
    assert.match(manifest.engines.vscode, /^\^1\.\d+\.\d+$/);
    // @types/vscode must not be newer than the oldest VS Code the extension accepts.
    assert.equal(manifest.devDependencies["@types/vscode"], manifest.engines.vscode.slice(1));
  });
});

describe("language configuration", () => {
  const rules = languageConfiguration.indentationRules;
  const increase = new RegExp(rules.increaseIndentPattern);
  const decrease = new RegExp(rules.decreaseIndentPattern);

  it("indents after an opening bracket, `let`, `=` and `''`", () => {
    for (const line of ["{", "  attrs = {", "xs = [", "f (", "let", "  text = ''", "  value =", "{ # comment"]) {
      assert.ok(increase.test(line), `no indent after ${JSON.stringify(line)}`);
    }
    for (const line of ["a = 1;", "}", "inherit a;", "x: x", "# let"]) {
      assert.ok(!increase.test(line), `indent after ${JSON.stringify(line)}`);
    }
  });

  it("outdents closing brackets, `''` and `in`", () => {
    for (const line of ["}", "  };", "]", ")", "  '';", "in", "  in x"]) {
      assert.ok(decrease.test(line), `no outdent for ${JSON.stringify(line)}`);
    }
    for (const line of ["inherit a;", "  index = 1;", "a = {"]) {
      assert.ok(!decrease.test(line), `outdent for ${JSON.stringify(line)}`);
    }
  });

  it("takes Nix identifiers, with `-` and `'`, as words", () => {
    const word = new RegExp(languageConfiguration.wordPattern, "g");
    assert.deepEqual("foo-bar' + x1 - 2.5".match(word), ["foo-bar'", "x1", "2.5"]);
  });

  it("closes strings and comments only outside strings and comments", () => {
    const pairs = languageConfiguration.autoClosingPairs as { open: string; notIn?: string[] }[];
    for (const open of ['"', "''", "/*"]) {
      assert.deepEqual(pairs.find((p) => p.open === open)?.notIn, ["string", "comment"]);
    }
  });
});
