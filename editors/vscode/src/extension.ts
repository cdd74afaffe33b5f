// The aisci extension: starts `aisci lsp` and forwards to it. Every command is the
// server's; this adds what VS Code users expect around it: palette entries with their
// arguments filled in (palette.ts), settings sent as the server takes them
// (settings.ts), a status bar item (status.ts), the server log and run output in
// output channels, and the "Search tree" view of an idea's experiment (searchTree.ts).
// Progress with cancel is vscode-languageclient's own rendering of the server's
// `$/progress`.

import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  type Executable,
  LanguageClient,
  type LanguageClientOptions,
  State,
} from 'vscode-languageclient/node';

import { executeCommand, type Status } from './palette';
import { type RunOutput, RunOutputLines } from './runOutput';
import { registerSearchTree } from './searchTree';
import { CLIENT_PREFIX, explicitSettings } from './settings';
import { StatusItem } from './status';

let client: LanguageClient | undefined;

/**
 * Runs a server command. One that cannot start (no review yet, already running, no API
 * key) is a JSON-RPC error whose message says why: that message is shown, once.
 */
async function runOnServer(command: string, args: unknown[]): Promise<unknown> {
  try {
    return await client?.sendRequest('workspace/executeCommand', { command, arguments: args });
  } catch (e) {
    void vscode.window.showErrorMessage(`aisci: ${(e as Error).message}`);
    return undefined;
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel('aisci', { log: true });
  const runs = vscode.window.createOutputChannel('aisci runs');
  const status = new StatusItem();
  const lines = new RunOutputLines();
  context.subscriptions.push(log, runs, status);

  const serverCommand = () => vscode.workspace.getConfiguration('aisci.server').get<string>('path') || 'aisci';
  // The client reads this object at each (re)start, so a new path takes effect on restart.
  // No `transport`: stdio is the default, and `TransportKind.stdio` would append
  // `--stdio`, which `aisci lsp` refuses (exit 2; found by the code-server e2e test).
  const serverOptions: Executable = { command: serverCommand(), args: ['lsp'] };
  const clientOptions: LanguageClientOptions = {
    // The files the server has something to say about; it ignores those outside a project.
    documentSelector: [
      { scheme: 'file', language: 'python' },
      { scheme: 'file', language: 'json', pattern: '**/ideas.json' },
      { scheme: 'file', language: 'latex' },
      { scheme: 'file', language: 'bibtex' },
      // A model reply pasted or saved as text: "Apply agent edits" applies its blocks.
      { scheme: 'file', language: 'markdown' },
      { scheme: 'file', language: 'plaintext' },
    ],
    outputChannel: log,
    // A function: a restart sends the settings of that moment.
    initializationOptions: () => explicitSettings(context),
    middleware: {
      executeCommand: (cmd, args) => executeCommand(cmd, args, runOnServer),
      workspace: {
        // The server pulls section "aisci" when told settings changed without them.
        configuration: async (params, token, next) => {
          const answers = await next(params, token);
          if (!Array.isArray(answers)) return answers;
          return params.items.map((item, i) => (item.section === 'aisci' ? explicitSettings(context) : answers[i]));
        },
      },
    },
  };
  client = new LanguageClient('aisci', 'aisci', serverOptions, clientOptions);
  const lc = client;
  // The view handles refusals itself (in its message, or one error for a user's action).
  const tree = registerSearchTree(context, (command, args) =>
    lc.sendRequest('workspace/executeCommand', { command, arguments: args }),
  );

  context.subscriptions.push(
    vscode.commands.registerCommand('aisci.showServerLog', () => log.show()),
    vscode.commands.registerCommand('aisci.restartServer', () => lc.restart()),
    lc.onDidChangeState((e) => {
      if (e.newState === State.Stopped) status.stopped();
      // At the first start and after a restart: the tree is asked for again.
      if (e.newState === State.Running) tree.follow();
    }),
    lc.onNotification('aisci/status', (s: Status) => {
      status.show(s);
      // A job started, moved on or ended: a search's nodes may have changed with it.
      tree.refreshSoon();
    }),
    // A node of a running search changed: the view follows the search as it goes.
    lc.onNotification('aisci/searchChanged', (c: { folder: string }) => tree.searchChanged(c.folder)),
    lc.onNotification('aisci/runOutput', (o: RunOutput) => runs.append(lines.format(o))),
    lc.onNotification('aisci/pdfBuilt', (p: { pdf: string }) => {
      vscode.window.setStatusBarMessage(`$(file-pdf) aisci: built ${vscode.workspace.asRelativePath(p.pdf)}`, 5000);
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration(CLIENT_PREFIX.slice(0, -1))) {
        const pick = await vscode.window.showInformationMessage('aisci: restart the server to use the new path?', 'Restart');
        if (pick) {
          serverOptions.command = serverCommand();
          await lc.restart();
        }
      } else if (e.affectsConfiguration('aisci') && lc.isRunning()) {
        // The server reads `{ aisci: {...} }`; the whole explicit set replaces the last one.
        await lc.sendNotification(DidChangeConfigurationNotification.type, { settings: { aisci: explicitSettings(context) } });
      }
    }),
  );

  try {
    await lc.start();
  } catch (e) {
    status.stopped();
    void vscode.window.showErrorMessage(
      `aisci: cannot start "${serverOptions.command} lsp" (${(e as Error).message}); set aisci.server.path to the aisci binary`,
    );
    return;
  }
  // Jobs re-attached at start (runs left running by an earlier aisci) show at once; an
  // older server without aisci.listJobs just leaves the idle text.
  lc.sendRequest('workspace/executeCommand', { command: 'aisci.listJobs', arguments: [] }).then(
    (s) => status.show(s as Status),
    (e: Error) => log.warn(`aisci.listJobs: ${e.message}`),
  );
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
