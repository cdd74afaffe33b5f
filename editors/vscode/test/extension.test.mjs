// The extension's own logic, with a stub `vscode` (test/stub/vscode.cjs): which
// settings are sent, and the arguments palette commands get. The bundle is built by
// esbuild exactly as the extension's, with `vscode` pointed at the stub.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dir = realpathSync(mkdtempSync(join(tmpdir(), 'aisci-ext-')));
const bundle = join(dir, 'logic.cjs');
await build({
  stdin: {
    // The stub's state comes out of the bundle too: the bundle holds its own copy of it.
    contents: "export { explicitSettings } from './settings'; export { executeCommand } from './palette'; export { StatusItem } from './status'; export { RunOutputLines } from './runOutput'; export { __state } from 'vscode';",
    resolveDir: join(here, '..', 'src'),
    loader: 'ts',
  },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  outfile: bundle,
  alias: { vscode: join(here, 'stub', 'vscode.cjs') },
  logLevel: 'error',
});
const require = createRequire(import.meta.url);
const { explicitSettings, executeCommand, StatusItem, RunOutputLines, __state: state } = require(bundle);

/** A context whose manifest is this extension's package.json. */
const context = { extension: { packageJSON: require('../package.json') } };

/** Records what would go to the server, answering listJobs/listRuns from `answers`. */
function recorder(answers = {}) {
  const sent = [];
  const execute = async (command, args) => {
    sent.push([command, args]);
    return answers[command] ?? null;
  };
  return { sent, execute };
}

const template = join(dir, 'tiny_mlp');
mkdirSync(join(template, 'latex'), { recursive: true });
writeFileSync(join(template, 'experiment.py'), 'print(1)\n');
writeFileSync(join(template, 'ideas.json'), JSON.stringify([
  { Name: 'a', Title: 'Idea A' },
  { Name: 'b', Title: 'Idea B', novel: true },
]));
writeFileSync(join(template, 'latex', 'template.tex'), '\\section{Introduction}\n\\section*{Results}\n');

beforeEach(() => {
  Object.assign(state, { settings: {}, activeFile: undefined, folders: [], picks: [], shown: [], pickedFrom: [], statusItems: [] });
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('settings sent to the server', () => {
  it('only explicitly set values, nested as aisci.toml tables', () => {
    state.settings = {
      'aisci.llm.model': { globalValue: 'claude-sonnet-4-5', workspaceValue: 'gpt-4o' },
      'aisci.run.slurm.partition': { workspaceFolderValue: 'gpu' },
      'aisci.ideas.num_ideas': { globalValue: 3 },
      'aisci.server.path': { globalValue: '/opt/aisci' },
    };
    assert.deepEqual(explicitSettings(context), {
      llm: { model: 'gpt-4o' }, // the workspace's value wins over the user's
      run: { slurm: { partition: 'gpu' } },
      ideas: { num_ideas: 3 },
    });
  });

  it('endpoints and secrets only from the user settings, never from the workspace', () => {
    state.settings = {
      'aisci.llm.base_url': { globalValue: 'http://mine', workspaceValue: 'http://attacker' },
      'aisci.llm.api_key_env': { workspaceValue: 'OTHER_KEY' },
    };
    assert.deepEqual(explicitSettings(context), { llm: { base_url: 'http://mine' } });
  });

  it('nothing set: nothing sent, so aisci.toml decides', () => {
    assert.deepEqual(explicitSettings(context), {});
  });
});

describe('palette arguments', () => {
  it('arguments from a lens go to the server untouched', async () => {
    const { sent, execute } = recorder();
    await executeCommand('aisci.generateIdeas', [{ template: '/x' }], execute);
    assert.deepEqual(sent, [['aisci.generateIdeas', [{ template: '/x' }]]]);
  });

  it('the template of the active file', async () => {
    state.activeFile = join(template, 'latex', 'template.tex');
    const { sent, execute } = recorder();
    await executeCommand('aisci.generateIdeas', [], execute);
    await executeCommand('aisci.launchRun', [], execute);
    assert.deepEqual(sent, [
      ['aisci.generateIdeas', [{ template }]],
      ['aisci.launchRun', [{ folder: template }]],
    ]);
  });

  it('no project around: a clear message and nothing sent', async () => {
    state.activeFile = join(dir, 'elsewhere.txt');
    const { sent, execute } = recorder();
    assert.equal(await executeCommand('aisci.runBaseline', [], execute), undefined);
    assert.deepEqual(sent, []);
    assert.match(state.shown[0][1], /experiment\.py/);
  });

  it('an idea picked from ideas.json', async () => {
    state.folders = [template];
    state.picks = [(items) => items[1]];
    const { sent, execute } = recorder();
    await executeCommand('aisci.implementIdea', [], execute);
    assert.deepEqual(sent, [['aisci.implementIdea', [{ template, idea: 'b' }]]]);
    assert.deepEqual(state.pickedFrom[0].map((i) => i.detail), ['novelty not checked', 'novel']);
    state.picks = [(items) => items[0]];
    await executeCommand('aisci.showIdea', [], execute);
    assert.deepEqual(sent[1], ['aisci.showIdea', [{ file: join(template, 'ideas.json'), index: 0 }]]);
  });

  it('backing out of a pick sends nothing', async () => {
    state.folders = [template];
    const { sent, execute } = recorder();
    assert.equal(await executeCommand('aisci.implementIdea', [], execute), undefined);
    assert.deepEqual(sent, []);
  });

  it('a section of the paper, or all of it', async () => {
    state.activeFile = join(template, 'latex', 'template.tex');
    const tex = state.activeFile;
    const { sent, execute } = recorder();
    state.picks = [(items) => items[1]];
    await executeCommand('aisci.writePaper', [], execute);
    assert.deepEqual(state.pickedFrom[0].map((i) => i.label), ['The whole paper', 'Introduction', 'Results']);
    state.picks = [(items) => items[0]];
    await executeCommand('aisci.writePaper', [], execute);
    await executeCommand('aisci.buildPaper', [], execute);
    assert.deepEqual(sent, [
      ['aisci.writePaper', [{ tex, section: 'Introduction' }]],
      ['aisci.writePaper', [{ tex }]],
      ['aisci.buildPaper', [{ tex }]],
    ]);
  });

  it('a section whose title repeats goes by its position', async () => {
    const tex = join(template, 'latex', 'twice.tex');
    writeFileSync(tex, '\\section{Results}\nA.\n\\section{Method}\n\\section{Results}\nB.\n');
    state.activeFile = tex;
    const { sent, execute } = recorder();
    state.picks = [(items) => items[3]];
    await executeCommand('aisci.writePaper', [], execute);
    assert.deepEqual(state.pickedFrom[0].map((i) => i.label), [
      'The whole paper', 'Results (section 1)', 'Method', 'Results (section 3)',
    ]);
    assert.deepEqual(sent, [['aisci.writePaper', [{ tex, section: { level: 2, index: 2, title: 'Results' } }]]]);
  });

  it('cancel: one job picked from the server\'s list, or all', async () => {
    const jobs = { jobs: [{ id: 4, title: 'Generate ideas', target: template, elapsedMs: 2000 }], spentUsd: 0.05, calls: 5 };
    const { sent, execute } = recorder({ 'aisci.listJobs': jobs });
    state.picks = [(items) => items[0], (items) => items.at(-1)];
    await executeCommand('aisci.cancel', [], execute);
    await executeCommand('aisci.cancel', [], execute);
    assert.deepEqual(sent, [
      ['aisci.listJobs', []], ['aisci.cancel', [4]],
      ['aisci.listJobs', []], ['aisci.cancel', []],
    ]);
  });

  it('the job list (status bar click): picking a job cancels it', async () => {
    const jobs = { jobs: [{ id: 7, title: 'Run experiments', target: template, elapsedMs: 1000, message: 'run 1' }], spentUsd: 1.5, calls: 9 };
    const { sent, execute } = recorder({ 'aisci.listJobs': jobs });
    state.picks = [(items) => items[0]];
    await executeCommand('aisci.listJobs', [], execute);
    assert.deepEqual(sent, [['aisci.listJobs', []], ['aisci.cancel', [7]]]);
    assert.equal(state.pickedFrom[0][0].detail, 'run 1');
  });

  it('a run picked from the list is opened by the server', async () => {
    const runs = { runs: [{ title: 'run_0 ✓', elapsed: '0:01', state: 'done', stdout: '/p/run_0/stdout.txt', folder: '/p' }] };
    const { sent, execute } = recorder({ 'aisci.listRuns': runs });
    state.picks = [(items) => items[0], (items) => items[0]];
    await executeCommand('aisci.openRun', [], execute);
    await executeCommand('aisci.listRuns', [], execute);
    assert.deepEqual(sent, [
      ['aisci.listRuns', []], ['aisci.openRun', [{ path: '/p/run_0/stdout.txt' }]],
      ['aisci.listRuns', []], ['aisci.openRun', [{ path: '/p/run_0/stdout.txt' }]],
    ]);
  });

  it('a command this version does not know goes without arguments', async () => {
    const { sent, execute } = recorder();
    await executeCommand('aisci.somethingNewer', [], execute);
    assert.deepEqual(sent, [['aisci.somethingNewer', []]]);
  });
});

describe('status bar', () => {
  it('idle, one job, several jobs, and a stopped server', () => {
    const status = new StatusItem();
    const [item] = state.statusItems;
    assert.ok(item.visible);
    assert.equal(item.command, 'aisci.listJobs', 'a click lists the jobs');
    assert.equal(item.text, '$(beaker) aisci $0.00');
    const job = (id, title) => ({ id, title, target: '/t', elapsedMs: 10, message: 'Idea 1/2' });
    status.show({ jobs: [job(1, 'Generate ideas')], spentUsd: 0.0530, calls: 5 });
    assert.equal(item.text, '$(sync~spin) Generate ideas · $0.05');
    assert.match(item.tooltip, /Generate ideas: \/t \(Idea 1\/2\)/);
    assert.match(item.tooltip, /\$0\.0530 in 5 model call\(s\) this session/);
    status.show({ jobs: [job(1, 'Generate ideas'), job(2, 'Run baseline')], spentUsd: 1.234, calls: 9 });
    assert.equal(item.text, '$(sync~spin) Generate ideas +1 · $1.23');
    status.stopped();
    assert.match(item.text, /disconnect/);
  });
});

describe('run output channel', () => {
  it('prefixes lines, however notifications split them and runs interleave', () => {
    const lines = new RunOutputLines();
    const out = (run, text) => lines.format({ folder: '/t', run, stream: 'stdout', text });
    let channel = '';
    channel += out(1, 'epoch 1\nepo');
    channel += out(1, 'ch 2\n');
    channel += out(2, 'start');
    channel += out(1, 'epoch 3\n');
    channel += out(1, '');
    assert.equal(channel, [
      '[/t/run_1 stdout] epoch 1',
      '[/t/run_1 stdout] epoch 2',
      '[/t/run_2 stdout] start',
      '[/t/run_1 stdout] epoch 3',
      '',
    ].join('\n'));
  });
});
