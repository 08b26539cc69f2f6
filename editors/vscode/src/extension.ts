// The VS Code side: starts `tvix lsp` over stdio, keeps its configuration current, and
// provides the commands. Everything that can be decided without VS Code lives in
// `settings.ts` and `evaluate.ts`.

import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

import {
  EVALUATE_METHOD,
  EvaluateParams,
  shorten,
  showError,
  showResult,
  textToEvaluate,
} from "./evaluate";
import {
  answerConfigurationPull,
  replArguments,
  serverConfiguration,
  tvixBinary,
} from "./settings";

const SECTION = "tvix";

let client: LanguageClient | undefined;
let output: vscode.OutputChannel;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel("Tvix");
  context.subscriptions.push(
    output,
    vscode.commands.registerCommand("tvix.buildAtCursor", buildAtCursor),
    vscode.commands.registerCommand("tvix.evaluateSelection", evaluateSelection),
    vscode.commands.registerCommand("tvix.openRepl", openRepl),
    vscode.commands.registerCommand("tvix.restartServer", restartServer),
    vscode.workspace.onDidChangeConfiguration(onConfigurationChanged),
  );
  await startServer();
}

export async function deactivate(): Promise<void> {
  await stopServer();
}

function settings(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION);
}

function workspaceDir(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

async function startServer(): Promise<void> {
  const command = tvixBinary(settings());
  const serverOptions: ServerOptions = {
    command,
    args: ["lsp"],
    transport: TransportKind.stdio,
    options: { cwd: workspaceDir() },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "nix" },
      { scheme: "untitled", language: "nix" },
    ],
    initializationOptions: () => serverConfiguration(settings(), workspaceDir()),
    outputChannel: output,
    middleware: {
      workspace: {
        // A server that pulls its settings gets the same values it is pushed, not the raw
        // settings (which hold the client's `path` and unresolved relative paths).
        configuration: async (params, token, next) => {
          const answered = await next(params, token);
          if (!Array.isArray(answered)) {
            return answered;
          }
          return answerConfigurationPull(
            params.items.map((item) => item.section),
            answered,
            serverConfiguration(settings(), workspaceDir()),
          );
        },
      },
    },
  };
  const c = new LanguageClient("tvix", "Tvix language server", serverOptions, clientOptions);
  client = c;
  try {
    await c.start();
  } catch (e) {
    client = undefined;
    // Not awaited: activation must not wait for the user to answer the notification.
    void vscode.window
      .showErrorMessage(`Could not start \`${command} lsp\`: ${showError(e).short}`, "Open Settings")
      .then((choice) => {
        if (choice === "Open Settings") {
          void vscode.commands.executeCommand("workbench.action.openSettings", "tvix.path");
        }
      });
  }
}

async function stopServer(): Promise<void> {
  const c = client;
  client = undefined;
  if (c === undefined) {
    return;
  }
  try {
    await c.stop();
  } catch (e) {
    // A server that already died cannot be stopped; there is nothing left to clean up.
    output.appendLine(`stopping the server: ${showError(e).full}`);
  }
}

async function restartServer(): Promise<void> {
  await stopServer();
  await startServer();
}

async function onConfigurationChanged(e: vscode.ConfigurationChangeEvent): Promise<void> {
  if (!e.affectsConfiguration(SECTION)) {
    return;
  }
  // A different binary means a different server; everything else it takes on the fly.
  if (e.affectsConfiguration(`${SECTION}.path`)) {
    await restartServer();
    return;
  }
  if (client?.isRunning()) {
    await client.sendNotification(DidChangeConfigurationNotification.type, {
      settings: serverConfiguration(settings(), workspaceDir()),
    });
  }
}

async function evaluateSelection(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined) {
    await vscode.window.showWarningMessage("Tvix: no editor to evaluate from.");
    return;
  }
  if (client === undefined || !client.isRunning()) {
    await vscode.window.showErrorMessage("Tvix: the language server is not running.");
    return;
  }
  const doc = editor.document;
  const params: EvaluateParams = {
    uri: doc.uri.toString(),
    text: textToEvaluate(doc.getText(editor.selection), doc.getText()),
  };
  output.appendLine(`> ${shorten(params.text)}`);
  try {
    const shown = showResult(await client.sendRequest(EVALUATE_METHOD, params));
    output.appendLine(shown.full);
    await vscode.window.showInformationMessage(shown.short);
  } catch (e) {
    const shown = showError(e);
    output.appendLine(shown.full);
    output.show(true);
    await vscode.window.showErrorMessage(shown.short);
  }
}

// The code lens runs the server's `tvix/build` itself (the language client registers the
// commands the server lists); this palette command asks for the binding at the cursor.
async function buildAtCursor(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined) {
    await vscode.window.showWarningMessage("Tvix: no editor to build from.");
    return;
  }
  if (client === undefined || !client.isRunning()) {
    await vscode.window.showErrorMessage("Tvix: the language server is not running.");
    return;
  }
  const position = editor.selection.active;
  try {
    // The server shows the outcome (outputs or error) itself; the log keeps it too.
    const answer = await client.sendRequest(ExecuteCommandRequest.type, {
      command: "tvix/build",
      arguments: [
        {
          uri: editor.document.uri.toString(),
          position: { line: position.line, character: position.character },
        },
      ],
    });
    output.appendLine(`build: ${JSON.stringify(answer)}`);
  } catch (e) {
    const shown = showError(e);
    output.appendLine(shown.full);
    await vscode.window.showErrorMessage(shown.short);
  }
}

function openRepl(): void {
  const terminal = vscode.window.createTerminal({
    name: "tvix repl",
    shellPath: tvixBinary(settings()),
    shellArgs: replArguments(serverConfiguration(settings(), workspaceDir())),
    cwd: workspaceDir(),
  });
  terminal.show();
}
