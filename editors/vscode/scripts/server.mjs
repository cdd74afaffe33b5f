// Drives a real `aisci lsp` over stdio with vscode-jsonrpc: used by the manifest
// generator (to ask the server which commands it has) and by the tests.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as rpc from 'vscode-jsonrpc/node';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The server binary: $AISCI_SERVER, else the repository's release then debug build. */
export function serverPath() {
  if (process.env.AISCI_SERVER) return process.env.AISCI_SERVER;
  for (const profile of ['release', 'debug']) {
    const p = join(repo, 'target', profile, 'aisci');
    if (existsSync(p)) return p;
  }
  throw new Error('no aisci binary: set AISCI_SERVER or run `cargo build --release -p aisci --bin aisci`');
}

/**
 * Starts `aisci lsp` and initializes it. `onRequest` answers server→client requests
 * (method, params) => result; every notification and request is kept in `received`.
 */
export async function startServer({
  capabilities = {},
  initializationOptions = null,
  rootPath = null,
  onRequest = () => null,
  env = {},
} = {}) {
  const proc = spawn(serverPath(), ['lsp'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  const connection = rpc.createMessageConnection(
    new rpc.StreamMessageReader(proc.stdout),
    new rpc.StreamMessageWriter(proc.stdin),
  );
  const received = [];
  const waiters = new Set();
  const arrived = (msg) => {
    received.push(msg);
    for (const w of waiters) w();
  };
  connection.onNotification((method, params) => arrived({ method, params }));
  // vscode-jsonrpc routes `$/progress` to per-token handlers; none is registered here.
  connection.onUnhandledProgress((params) => arrived({ method: '$/progress', params }));
  connection.onRequest((method, params) => {
    arrived({ method, params, request: true });
    return onRequest(method, params) ?? null;
  });
  connection.listen();
  const rootUri = rootPath ? `file://${rootPath}` : null;
  const init = await connection.sendRequest('initialize', {
    processId: process.pid,
    rootUri,
    workspaceFolders: rootPath ? [{ uri: rootUri, name: 'root' }] : null,
    capabilities,
    initializationOptions,
  });
  await connection.sendNotification('initialized', {});

  /** Waits until a received message satisfies `pred` and returns it. */
  async function waitFor(what, pred, ms = 15000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = received.find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out waiting for ${what}; received:\n${JSON.stringify(received, null, 1)}\nstderr:\n${stderr}`);
      }
      await new Promise((resolve) => {
        const w = () => {
          waiters.delete(w);
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(w, left);
        waiters.add(w);
      });
    }
  }

  /** shutdown, exit, and the exit code (the LSP spec asks for 0 after shutdown). */
  async function stop() {
    await connection.sendRequest('shutdown');
    await connection.sendNotification('exit');
    // tower-lsp waits for the input to close after `exit`.
    proc.stdin.end();
    const code = await exited;
    connection.dispose();
    return code;
  }

  return { connection, init, received, waitFor, stop, proc, stderr: () => stderr };
}

/** The commands a server advertises in its `initialize` result. */
export async function advertisedCommands() {
  const server = await startServer();
  const commands = server.init.capabilities.executeCommandProvider?.commands ?? [];
  const code = await server.stop();
  if (code !== 0) throw new Error(`aisci lsp exited with ${code}: ${server.stderr()}`);
  return commands;
}
