// Tokenizes Nix source with the extension's grammar, the way VS Code does: vscode-textmate
// on the Oniguruma regular expression engine compiled to WebAssembly.

import * as fs from "node:fs";
import * as path from "node:path";
import * as oniguruma from "vscode-oniguruma";
import * as textmate from "vscode-textmate";

/** A token: its text and the scopes it has, outermost first. */
export interface Token {
  text: string;
  scopes: string[];
}

const extensionRoot = path.resolve(__dirname, "..", "..");
const grammarPath = path.join(extensionRoot, "syntaxes", "nix.tmLanguage.json");

let grammar: Promise<textmate.IGrammar> | undefined;

function loadGrammar(): Promise<textmate.IGrammar> {
  grammar ??= (async () => {
    const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm"));
    await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
    const registry = new textmate.Registry({
      onigLib: Promise.resolve({
        createOnigScanner: (sources: string[]) => new oniguruma.OnigScanner(sources),
        createOnigString: (s: string) => new oniguruma.OnigString(s),
      }),
      loadGrammar: async (scopeName: string) =>
        scopeName === "source.nix"
          ? textmate.parseRawGrammar(fs.readFileSync(grammarPath, "utf8"), grammarPath)
          : null,
    });
    const g = await registry.loadGrammar("source.nix");
    if (g === null) {
      throw new Error(`could not load ${grammarPath}`);
    }
    return g;
  })();
  return grammar;
}

/** The tokens of `source`, line by line, carrying the state across lines. */
export async function tokenize(source: string): Promise<Token[][]> {
  const g = await loadGrammar();
  let state = textmate.INITIAL;
  const lines: Token[][] = [];
  for (const line of source.split("\n")) {
    const r = g.tokenizeLine(line, state);
    lines.push(
      r.tokens.map((t) => ({
        text: line.slice(t.startIndex, t.endIndex),
        scopes: t.scopes,
      })),
    );
    state = r.ruleStack;
  }
  return lines;
}
