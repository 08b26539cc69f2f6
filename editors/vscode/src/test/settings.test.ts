import * as assert from "node:assert/strict";
import * as path from "node:path";
import { describe, it } from "node:test";

import {
  answerConfigurationPull,
  DEFAULTS,
  replArguments,
  serverConfiguration,
  SettingsReader,
  tvixBinary,
} from "../settings";

/** Settings as VS Code hands them over: a key that is not set reads as undefined. */
function reader(values: Record<string, unknown>): SettingsReader {
  return { get: <T>(key: string) => values[key] as T | undefined };
}

const ws = path.resolve("/home/alice/project");

describe("settings", () => {
  it("sends the defaults under the `tvix` key when nothing is set", () => {
    assert.deepEqual(serverConfiguration(reader({}), ws), {
      tvix: {
        searchPath: [],
        evalBudgetMs: 300,
        entryFile: null,
        args: {},
        optionsExpr: null,
        build: { enable: false },
      },
    });
  });

  it("passes every setting through, resolving relative paths in the workspace", () => {
    const config = serverConfiguration(
      reader({
        path: "/opt/tvix/bin/tvix",
        searchPath: ["nixpkgs=./vendor/nixpkgs", "/abs/dir", "lib=https://example.org/lib.tar.gz", "channel:nixos-24.05", "extra"],
        evalBudgetMs: 750,
        entryFile: "default.nix",
        args: { system: '"x86_64-linux"', config: "{ }" },
        optionsExpr: "(import <nixpkgs/nixos> { }).options",
        "build.enable": true,
      }),
      ws,
    );
    assert.deepEqual(config, {
      tvix: {
        searchPath: [
          `nixpkgs=${path.join(ws, "vendor/nixpkgs")}`,
          "/abs/dir",
          "lib=https://example.org/lib.tar.gz",
          "channel:nixos-24.05",
          path.join(ws, "extra"),
        ],
        evalBudgetMs: 750,
        entryFile: path.join(ws, "default.nix"),
        args: { system: '"x86_64-linux"', config: "{ }" },
        optionsExpr: "(import <nixpkgs/nixos> { }).options",
        build: { enable: true },
      },
    });
    // The binary is the client's business, never the server's.
    assert.ok(!("path" in config.tvix));
  });

  it("keeps relative paths as they are without a workspace folder", () => {
    const config = serverConfiguration(reader({ entryFile: "default.nix", searchPath: ["p=./x"] }), undefined);
    assert.equal(config.tvix.entryFile, "default.nix");
    assert.deepEqual(config.tvix.searchPath, ["p=./x"]);
  });

  it("falls back to the defaults for values of the wrong type", () => {
    const config = serverConfiguration(
      reader({
        searchPath: "nixpkgs=/x",
        evalBudgetMs: "fast",
        entryFile: 3,
        args: ["a"],
        optionsExpr: "   ",
        "build.enable": "yes",
      }),
      ws,
    );
    assert.deepEqual(config.tvix, {
      searchPath: DEFAULTS.searchPath,
      evalBudgetMs: DEFAULTS.evalBudgetMs,
      entryFile: null,
      args: {},
      optionsExpr: null,
      build: { enable: false },
    });
  });

  it("drops entries of the wrong type inside arrays and objects", () => {
    const config = serverConfiguration(
      reader({ searchPath: ["/a", 1, "", null, " /b "], args: { a: "1", b: 2, c: null } }),
      ws,
    );
    assert.deepEqual(config.tvix.searchPath, ["/a", "/b"]);
    assert.deepEqual(config.tvix.args, { a: "1" });
  });

  it("keeps the evaluation budget a positive whole number of milliseconds", () => {
    const budget = (v: unknown) => serverConfiguration(reader({ evalBudgetMs: v }), ws).tvix.evalBudgetMs;
    assert.equal(budget(0), 300);
    assert.equal(budget(-5), 300);
    assert.equal(budget(Number.NaN), 300);
    assert.equal(budget(Number.POSITIVE_INFINITY), 300);
    assert.equal(budget(12.6), 13);
    assert.equal(budget(1), 1);
  });

  it("chooses the binary from tvix.path", () => {
    assert.equal(tvixBinary(reader({})), "tvix");
    assert.equal(tvixBinary(reader({ path: "  " })), "tvix");
    assert.equal(tvixBinary(reader({ path: 42 })), "tvix");
    assert.equal(tvixBinary(reader({ path: " /usr/local/bin/tvix " })), "/usr/local/bin/tvix");
  });
});

describe("configuration pull", () => {
  it("answers the tvix section and its keys with the server's settings", () => {
    const config = serverConfiguration(reader({ evalBudgetMs: 50, entryFile: "/w/default.nix" }), ws);
    const answer = answerConfigurationPull(
      ["tvix", "tvix.evalBudgetMs", "tvix.path", "editor", undefined, "tvix.entryFile"],
      ["raw", 300, "tvix", { tabSize: 2 }, { all: true }, "default.nix"],
      config,
    );
    assert.deepEqual(answer, [config.tvix, 50, "tvix", { tabSize: 2 }, { all: true }, "/w/default.nix"]);
  });
});

describe("repl", () => {
  it("runs `tvix repl` with the search path as -I options", () => {
    assert.deepEqual(replArguments(serverConfiguration(reader({}), ws)), ["repl"]);
    const config = serverConfiguration(reader({ searchPath: ["nixpkgs=./np", "/lib"] }), ws);
    assert.deepEqual(replArguments(config), ["repl", "-I", `nixpkgs=${path.join(ws, "np")}`, "-I", "/lib"]);
  });
});
