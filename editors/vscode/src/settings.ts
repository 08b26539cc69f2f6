// The extension's settings and the configuration the language server receives.
//
// Kept free of the `vscode` module so the mapping can be unit-tested with plain Node: the
// extension reads the settings through the small `SettingsReader` interface, which
// `vscode.WorkspaceConfiguration` satisfies.

import * as path from "node:path";

/** Reads one setting of the `tvix` section; `vscode.WorkspaceConfiguration` is one. */
export interface SettingsReader {
  get<T>(key: string): T | undefined;
}

/** What the server is told, under the `tvix` key, at start-up and on every change. */
export interface ServerSettings {
  searchPath: string[];
  evalBudgetMs: number;
  entryFile: string | null;
  args: Record<string, string>;
  optionsExpr: string | null;
  build: { enable: boolean };
}

/** The payload of `initializationOptions` and of `workspace/didChangeConfiguration`. */
export interface ServerConfiguration {
  tvix: ServerSettings;
}

/** The defaults, the same as those declared in package.json. */
export const DEFAULTS = {
  path: "tvix",
  searchPath: [] as string[],
  evalBudgetMs: 300,
  entryFile: null as string | null,
  args: {} as Record<string, string>,
  optionsExpr: null as string | null,
  "build.enable": false,
};

/** The `tvix` binary to run: `tvix.path`, or the default when it is unset or blank. */
export function tvixBinary(settings: SettingsReader): string {
  const p = settings.get<unknown>("path");
  return typeof p === "string" && p.trim() !== "" ? p.trim() : DEFAULTS.path;
}

/**
 * The server's configuration from the user's settings. Values of the wrong type (settings
 * files are hand-edited JSON) fall back to the defaults rather than reaching the server;
 * relative file paths are resolved against `workspaceDir` when there is one, because the
 * server's working directory is not the user's concern.
 */
export function serverConfiguration(
  settings: SettingsReader,
  workspaceDir: string | undefined,
): ServerConfiguration {
  return {
    tvix: {
      searchPath: searchPath(settings.get<unknown>("searchPath"), workspaceDir),
      evalBudgetMs: evalBudget(settings.get<unknown>("evalBudgetMs")),
      entryFile: entryFile(settings.get<unknown>("entryFile"), workspaceDir),
      args: args(settings.get<unknown>("args")),
      optionsExpr: nonBlankString(settings.get<unknown>("optionsExpr")),
      build: { enable: settings.get<unknown>("build.enable") === true },
    },
  };
}

function nonBlankString(v: unknown): string | null {
  return typeof v === "string" && v.trim() !== "" ? v : null;
}

function evalBudget(v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 1) {
    return DEFAULTS.evalBudgetMs;
  }
  return Math.round(v);
}

function entryFile(v: unknown, workspaceDir: string | undefined): string | null {
  const file = nonBlankString(v);
  return file === null ? null : resolveLocal(file, workspaceDir);
}

function args(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    return out;
  }
  for (const [name, expr] of Object.entries(v)) {
    if (typeof expr === "string") {
      out[name] = expr;
    }
  }
  return out;
}

function searchPath(v: unknown, workspaceDir: string | undefined): string[] {
  if (!Array.isArray(v)) {
    return [];
  }
  return v
    .filter((e): e is string => typeof e === "string" && e.trim() !== "")
    .map((e) => searchPathEntry(e.trim(), workspaceDir));
}

/**
 * One `-I` style entry, `prefix=target` or `target`. Only a relative directory is resolved;
 * URLs (`https://...`), `channel:`/`flake:` references and absolute paths are kept.
 */
function searchPathEntry(entry: string, workspaceDir: string | undefined): string {
  const eq = entry.indexOf("=");
  const prefix = eq >= 0 ? entry.slice(0, eq + 1) : "";
  const target = eq >= 0 ? entry.slice(eq + 1) : entry;
  if (target === "" || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(target)) {
    return entry;
  }
  return prefix + resolveLocal(target, workspaceDir);
}

function resolveLocal(file: string, workspaceDir: string | undefined): string {
  if (path.isAbsolute(file) || file.startsWith("~") || workspaceDir === undefined) {
    return file;
  }
  return path.resolve(workspaceDir, file);
}

/**
 * Answers a server's `workspace/configuration` pull the same way as the pushed
 * configuration: the section `tvix` is the server's settings, `tvix.NAME` one of them.
 * Other sections keep the answer VS Code gave (`answered`, in the same order).
 */
export function answerConfigurationPull(
  sections: (string | undefined)[],
  answered: unknown[],
  config: ServerConfiguration,
): unknown[] {
  return sections.map((section, i) => {
    if (section === "tvix") {
      return config.tvix;
    }
    const key = section?.startsWith("tvix.") ? section.slice("tvix.".length) : undefined;
    if (key !== undefined && Object.prototype.hasOwnProperty.call(config.tvix, key)) {
      return config.tvix[key as keyof ServerSettings];
    }
    if (key === "build.enable") {
      return config.tvix.build.enable;
    }
    return answered[i];
  });
}

/**
 * The arguments of `tvix repl` for **Tvix: Open REPL**: the workspace's search path as `-I`
 * options, so `<name>` lookups in the REPL resolve as they do in the editor.
 */
export function replArguments(config: ServerConfiguration): string[] {
  return ["repl", ...config.tvix.searchPath.flatMap((entry) => ["-I", entry])];
}
