// Every command of the real `aisci lsp` (AISCI_SERVER, else the repository's build),
// driven over stdio as the extension drives it: the answer, and what the editor then
// sees ($/progress with cancel, aisci/status, messages, documents to show, files).
// The model is the recorded demo conversation, or a local endpoint that never answers
// where a job must stay running until it is cancelled. No network, no key.

import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { CLIENT_COMMANDS, contributes, readmeSettings, NOT_EDITOR_SETTINGS } from '../scripts/manifest.mjs';
import { startServer } from '../scripts/server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..');
const pkg = JSON.parse(readFileSync(join(here, '..', 'package.json'), 'utf8'));
const readme = readFileSync(join(repo, 'README.md'), 'utf8');

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'aisci-vscode-')));
const template = join(dir, 'tiny_mlp');
const recording = join(template, '.aisci', 'replay', 'ideas.json');
/** Commands this test sent, to prove at the end that none was left out. */
const exercised = new Set();
let server;
let hanging; // a model endpoint that never answers
const held = [];

const replaySettings = {
  llm: { provider: 'replay', replay_file: recording },
  ideas: { num_ideas: 2, num_reflections: 3 },
  latex: { build_on_save: false },
};

async function execute(command, ...args) {
  exercised.add(command);
  return server.connection.sendRequest('workspace/executeCommand', { command, arguments: args });
}

async function executeError(command, ...args) {
  exercised.add(command);
  return assert.rejects(server.connection.sendRequest('workspace/executeCommand', { command, arguments: args }));
}

/** Switches the editor settings, as the extension does on a settings change. */
async function settings(aisci) {
  await server.connection.sendNotification('workspace/didChangeConfiguration', { settings: { aisci } });
}


/** Waits for the end of a job's progress, received after index `mark`. */
async function progressEnd(job, mark = 0) {
  return server.waitFor(`end of job ${job}`, (m) =>
    server.received.indexOf(m) >= mark &&
    m.method === '$/progress' && m.params.token === `aisci-job-${job}` && m.params.value.kind === 'end');
}

async function statusWithoutJobs(mark) {
  return server.waitFor('aisci/status without jobs', (m) =>
    server.received.indexOf(m) >= mark && m.method === 'aisci/status' && m.params.jobs.length === 0);
}

function ideaFolder(name) {
  const results = join(dir, 'results', 'tiny_mlp');
  const found = existsSync(results) && readdirSync(results).find((d) => d.endsWith(`_${name}`));
  assert.ok(found, `an idea folder for ${name} under ${results}`);
  return join(results, found);
}

/** The documents this test has open, as the editor holds them: uri → { version, text }. */
const open = new Map();

async function didOpen(file) {
  const doc = { version: 1, text: readFileSync(file, 'utf8') };
  open.set(`file://${file}`, doc);
  await server.connection.sendNotification('textDocument/didOpen', {
    textDocument: { uri: `file://${file}`, languageId: 'python', version: doc.version, text: doc.text },
  });
}

async function didClose(file) {
  open.delete(`file://${file}`);
  await server.connection.sendNotification('textDocument/didClose', { textDocument: { uri: `file://${file}` } });
}

/** Text edits applied as an editor does (positions in UTF-16 code units, JS's own). */
function applyTextEdits(text, edits) {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') starts.push(i + 1);
  const offset = ({ line, character }) => (line < starts.length ? starts[line] + character : text.length);
  const sorted = [...edits].sort((a, b) => offset(b.range.start) - offset(a.range.start));
  for (const e of sorted) text = text.slice(0, offset(e.range.start)) + e.newText + text.slice(offset(e.range.end));
  return text;
}

/** `workspace/applyEdit` on an open document: applied, then reported back with didChange. */
async function applyEdit({ edit }) {
  for (const change of edit.documentChanges ?? []) {
    const doc = open.get(change.textDocument.uri);
    if (!doc || (change.textDocument.version !== null && change.textDocument.version !== doc.version)) {
      return { applied: false, failureReason: 'not open at that version' };
    }
    doc.text = applyTextEdits(doc.text, change.edits);
    doc.version += 1;
    await server.connection.sendNotification('textDocument/didChange', {
      textDocument: { uri: change.textDocument.uri, version: doc.version },
      contentChanges: [{ text: doc.text }],
    });
  }
  return { applied: true };
}

/** Holds requests to the model until cancelled: a job waiting on it stays running. */
async function holdingEndpoint() {
  const http = createServer((req, res) => held.push(res));
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  return http;
}

describe('aisci lsp, as the VS Code extension drives it', () => {
  before(async () => {
    cpSync(join(repo, 'templates', 'tiny_mlp'), template, { recursive: true });
    // The baseline is run by the test itself.
    rmSync(join(template, 'run_0'), { recursive: true, force: true });
    hanging = await holdingEndpoint();
    server = await startServer({
      rootPath: dir,
      capabilities: {
        window: { workDoneProgress: true, showDocument: { support: true } },
        workspace: { applyEdit: true, workspaceEdit: { documentChanges: true } },
      },
      initializationOptions: replaySettings,
      onRequest: (method, params) => {
        if (method === 'window/showDocument') return { success: true };
        if (method === 'workspace/applyEdit') return applyEdit(params);
        return null;
      },
    });
  });

  after(async () => {
    for (const res of held) res.destroy();
    hanging?.closeAllConnections();
    hanging?.close();
    if (server) assert.equal(await server.stop(), 0, 'exit code after shutdown');
    rmSync(dir, { recursive: true, force: true });
  });

  it('package.json has a palette entry for every advertised command and a setting for every README key', () => {
    const advertised = server.init.capabilities.executeCommandProvider.commands;
    const palette = pkg.contributes.commands.map((c) => c.command);
    const clientOnly = CLIENT_COMMANDS.map((c) => c.command);
    assert.deepEqual(
      palette.filter((c) => !clientOnly.includes(c)).sort(),
      [...advertised].sort(),
      'run `npm run gen-manifest` after the server gained or lost a command',
    );
    const contributed = new Set(pkg.contributes.configuration.flatMap((s) => Object.keys(s.properties)));
    const missing = readmeSettings(readme)
      .map((r) => r.key.replace(/\."<[^>]+>"$/, ''))
      .filter((k) => !NOT_EDITOR_SETTINGS[k] && !contributed.has(`aisci.${k}`));
    assert.deepEqual(missing, [], 'README keys without a VS Code setting');
    // Titles, types and descriptions too: the manifest is exactly what the generator makes.
    assert.deepEqual(
      { commands: pkg.contributes.commands, configuration: pkg.contributes.configuration },
      contributes(readme, advertised),
    );
  });

  it('aisci.listJobs: nothing running, nothing spent yet', async () => {
    const status = await execute('aisci.listJobs');
    assert.deepEqual(status.jobs, []);
    assert.equal(status.spentUsd, 0);
    assert.equal(status.calls, 0);
    assert.ok(!Number.isNaN(Date.parse(status.since)));
  });

  it('aisci.generateIdeas: progress, status, ideas.json and the money spent', async () => {
    const mark = server.received.length;
    const { job } = await execute('aisci.generateIdeas', { template });
    assert.equal(typeof job, 'number');
    const begin = await server.waitFor('progress begin', (m) =>
      m.method === '$/progress' && m.params.token === `aisci-job-${job}` && m.params.value.kind === 'begin');
    assert.equal(begin.params.value.title, 'Generate ideas');
    assert.equal(begin.params.value.cancellable, true);
    assert.ok(server.received.some((m) => m.method === 'window/workDoneProgress/create'));
    await progressEnd(job, mark);
    // The replayed job is over in milliseconds, so its start and end may come as one
    // aisci/status; a job that stays running is listed in the implementIdea case.
    const done = await statusWithoutJobs(mark);

    const names = JSON.parse(readFileSync(join(template, 'ideas.json'), 'utf8')).map((i) => i.Name);
    assert.ok(names.includes('edge_of_stability_tiny_mlp'), names.join(', '));
    const lines = readFileSync(join(template, '.aisci', 'usage.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    // The stage's estimate sits beside its call records.
    assert.ok(lines.some((l) => l.estimate && l.estimate.expected.stage === 'ideas'), JSON.stringify(lines.at(-1)));
    const ledger = lines.filter((l) => !l.estimate);
    const cost = ledger.reduce((s, r) => s + r.cost_usd, 0);
    assert.ok(cost > 0, 'the recording has a priced model');
    assert.equal(done.params.calls, ledger.length);
    assert.ok(Math.abs(done.params.spentUsd - cost) < 1e-9, `${done.params.spentUsd} vs ${cost}`);
    const listed = await execute('aisci.listJobs');
    assert.deepEqual(listed.jobs, []);
    assert.equal(listed.spentUsd, done.params.spentUsd);
  });

  it('aisci.showIdea: the idea, summarised in a message', async () => {
    const ideas = JSON.parse(readFileSync(join(template, 'ideas.json'), 'utf8'));
    const mark = server.received.length;
    assert.equal(await execute('aisci.showIdea', { file: join(template, 'ideas.json'), index: 0 }), null);
    const shown = await server.waitFor('the idea as a message', (m) =>
      server.received.indexOf(m) >= mark && m.method === 'window/showMessage');
    assert.ok(shown.params.message.includes(ideas[0].Title), shown.params.message);
    await executeError('aisci.showIdea', { file: join(template, 'ideas.json'), index: 99 });
  });

  it('aisci.checkNovelty: a decision from the model is written to ideas.json', async () => {
    const novelty = join(dir, 'novelty-recording.json');
    writeFileSync(novelty, JSON.stringify({
      about: 'one novelty decision, written by the VS Code extension test',
      model: 'gpt-4o-2024-11-20',
      exchanges: [{
        stage: 'novelty',
        response: { text: 'THOUGHT:\nNothing close comes to mind.\n\nDecision made: novel.\n\nRESPONSE:\n```json\n{"Reason": "no close work", "Closest": []}\n```' },
      }],
    }));
    await settings({ ...replaySettings, llm: { provider: 'replay', replay_file: novelty } });
    const mark = server.received.length;
    const { job } = await execute('aisci.checkNovelty', { template, ideas: ['edge_of_stability_tiny_mlp'] });
    await progressEnd(job, mark);
    const idea = JSON.parse(readFileSync(join(template, 'ideas.json'), 'utf8')).find((i) => i.Name === 'edge_of_stability_tiny_mlp');
    assert.equal(idea.novel, true, JSON.stringify(idea));
    await statusWithoutJobs(mark);
  });

  it('aisci.runBaseline: run_0 of the template, with its output streamed', async () => {
    const mark = server.received.length;
    const { job } = await execute('aisci.runBaseline', { template });
    await progressEnd(job, mark);
    assert.ok(existsSync(join(template, 'run_0', 'final_info.json')));
    const output = await server.waitFor('run output', (m) => m.method === 'aisci/runOutput' && m.params.run === 0);
    assert.equal(output.params.folder, template);
  });

  it('aisci.launchRun: the next run of a folder', async () => {
    const mark = server.received.length;
    const { job } = await execute('aisci.launchRun', { folder: template });
    await progressEnd(job, mark);
    assert.ok(existsSync(join(template, 'run_1', 'final_info.json')));
  });

  let run0;
  it('aisci.listRuns: the runs with their titles and logs', async () => {
    const { runs } = await execute('aisci.listRuns', { folder: template });
    const numbers = runs.map((r) => r.run).sort();
    assert.deepEqual(numbers, [0, 1]);
    run0 = runs.find((r) => r.run === 0);
    assert.equal(typeof run0.title, 'string');
    assert.ok(existsSync(run0.stdout), run0.stdout);
  });

  it('aisci.openRun: the editor is asked to show the file', async () => {
    const mark = server.received.length;
    assert.equal(await execute('aisci.openRun', { path: run0.stdout }), null);
    const shown = await server.waitFor('showDocument', (m) =>
      server.received.indexOf(m) >= mark && m.method === 'window/showDocument');
    assert.equal(decodeURIComponent(new URL(shown.params.uri).pathname), run0.stdout);
  });

  it('aisci.implementIdea, cancelled from the progress: the job ends, the idea folder stays', async () => {
    await settings({ ...replaySettings, llm: { provider: 'vllm', base_url: `http://127.0.0.1:${hanging.address().port}/v1`, model: 'gpt-4o', stream: false } });
    const mark = server.received.length;
    const { job } = await execute('aisci.implementIdea', { template, idea: 'edge_of_stability_tiny_mlp' });
    const running = await server.waitFor('status with the job', (m) =>
      m.method === 'aisci/status' && m.params.jobs.some((j) => j.id === job));
    assert.equal(running.params.jobs[0].title, 'Run experiments');
    assert.equal(running.params.jobs[0].target, ideaFolder('edge_of_stability_tiny_mlp'));
    await server.connection.sendNotification('window/workDoneProgress/cancel', { token: `aisci-job-${job}` });
    await progressEnd(job, mark);
    await statusWithoutJobs(mark);
    assert.ok(existsSync(join(ideaFolder('edge_of_stability_tiny_mlp'), 'experiment.py')));
  });

  it('aisci.runExperiments and aisci.cancel: a job cancelled by id', async () => {
    const folder = ideaFolder('edge_of_stability_tiny_mlp');
    const mark = server.received.length;
    const { job } = await execute('aisci.runExperiments', { folder });
    const { jobs } = await execute('aisci.listJobs');
    assert.deepEqual(jobs.map((j) => [j.id, j.target]), [[job, folder]]);
    assert.deepEqual(await execute('aisci.cancel', job), { cancelled: [job] });
    await progressEnd(job, mark);
    // The job leaves the registry just after its progress ends; aisci/status says when.
    await statusWithoutJobs(mark);
    assert.deepEqual(await execute('aisci.cancel'), { cancelled: [] }, 'nothing left to cancel');
  });

  it('aisci.writePaper: the writing job starts on the idea folder\'s paper and can be cancelled', async () => {
    const tex = join(ideaFolder('edge_of_stability_tiny_mlp'), 'latex', 'template.tex');
    const mark = server.received.length;
    const { job } = await execute('aisci.writePaper', { tex, section: 'Introduction' });
    await server.waitFor('status with the job', (m) =>
      m.method === 'aisci/status' && m.params.jobs.some((j) => j.id === job && j.title === 'Write the paper'));
    assert.deepEqual(await execute('aisci.cancel', job), { cancelled: [job] });
    await progressEnd(job, mark);
    await executeError('aisci.writePaper', { tex: join(template, 'experiment.py') });
  });

  it('aisci.reviewPaper, aisci.reviseFromReview, aisci.reviseAll: review jobs on the paper, cancelled', async () => {
    const folder = ideaFolder('edge_of_stability_tiny_mlp');
    const tex = join(folder, 'latex', 'template.tex');
    let mark = server.received.length;
    const { job } = await execute('aisci.reviewPaper', { tex });
    await server.waitFor('status with the review job', (m) =>
      m.method === 'aisci/status' && m.params.jobs.some((j) => j.id === job && j.title === 'Review the paper'));
    assert.deepEqual(await execute('aisci.cancel', job), { cancelled: [job] });
    await progressEnd(job, mark);
    await statusWithoutJobs(mark);
    // Without a review there is nothing to revise for: the command fails as every command
    // that cannot start does (InvalidRequest, saying why), and nothing starts.
    exercised.add('aisci.reviseAll');
    await assert.rejects(
      server.connection.sendRequest('workspace/executeCommand', { command: 'aisci.reviseAll', arguments: [{ tex }] }),
      (e) => e.code === -32600 && e.message.includes('no review yet'),
    );
    const review = {
      Summary: 'S', Strengths: [], Weaknesses: [{ text: 'Unclear claim.', section: 'Results' }],
      Originality: 2, Quality: 2, Clarity: 2, Significance: 2, Questions: [], Limitations: [],
      'Ethical Concerns': false, Soundness: 2, Presentation: 2, Contribution: 2, Overall: 4, Confidence: 3, Decision: 'Reject',
    };
    writeFileSync(join(folder, 'review.json'), JSON.stringify({
      created: '2026-11-29T12:00:00', review, decision: 'Reject', calibrated_decision: 'Reject', threshold: 6,
      ensemble: { requested: 1, used: 1, meta_reviewed: false, means: {}, rounding: 'half to even', members: [review] },
      reflections: 0, reflection_done: false, notes: [], paper: { source: 'tex', path: tex },
      model: 'm', provider: 'p', calls: 1, cost_usd: 0,
    }));
    for (const [command, args, title] of [
      ['aisci.reviseFromReview', { tex, comment: 'weakness-0' }, 'Revise for the review'],
      ['aisci.reviseAll', { tex }, 'Revise for the review'],
    ]) {
      mark = server.received.length;
      const started = await execute(command, args);
      assert.ok(started && typeof started.job === 'number', `${command} started a job: ${JSON.stringify(started)}`);
      await server.waitFor(`status with the ${command} job`, (m) =>
        m.method === 'aisci/status' && m.params.jobs.some((j) => j.id === started.job && j.title === title));
      assert.deepEqual(await execute('aisci.cancel', started.job), { cancelled: [started.job] });
      await progressEnd(started.job, mark);
      await statusWithoutJobs(mark);
    }
    await executeError('aisci.reviseFromReview', { tex });
    await executeError('aisci.reviewPaper', {});
    rmSync(join(folder, 'review.json'));
  });

  it('aisci.buildPaper: a PDF and aisci/pdfBuilt', async () => {
    const paper = join(dir, 'paper');
    mkdirSync(paper);
    const tex = join(paper, 'note.tex');
    writeFileSync(tex, '\\documentclass{article}\n\\begin{document}\nHello.\n\\end{document}\n');
    assert.equal(await execute('aisci.buildPaper', { tex }), null);
    const built = await server.waitFor('aisci/pdfBuilt', (m) => m.method === 'aisci/pdfBuilt', 60000);
    assert.equal(built.params.tex, tex);
    assert.ok(existsSync(built.params.pdf), built.params.pdf);
  });

  it('aisci.listNodes, aisci.restoreCheckpoint, aisci.branchFrom: the template\'s runs as a line of nodes', async () => {
    // run_0 (the baseline) and run_1 ran above, one after the other: the classic loop.
    // Neither kept its code (only the experiment loop's runs do); run_1 gets v1's snapshot.
    const file = join(template, 'experiment.py');
    const snapshot = `${readFileSync(file, 'utf8')}# run_1's version\n`;
    writeFileSync(join(template, 'run_1.py'), snapshot);
    const list = await execute('aisci.listNodes', { folder: template });
    assert.equal(list.folder, template);
    assert.equal(list.mode, 'line');
    assert.deepEqual(list.nodes.map((n) => [n.id, n.parent]), [['run_0', null], ['run_1', 'run_0']]);
    const fields = ['kind', 'state', 'score', 'smoke_score', 'vs_baseline', 'plan', 'cost_usd', 'label', 'code', 'parent_code', 'diff', 'run', 'error'];
    for (const n of list.nodes) {
      assert.deepEqual(fields.filter((f) => !(f in n)), [], `${n.id}: ${JSON.stringify(n)}`);
      assert.ok(n.code === null || existsSync(n.code), n.code);
    }
    assert.equal(list.nodes[1].code, join(template, 'run_1.py'));
    for (const key of ['metric', 'baseline_score', 'best', 'seeds']) assert.ok(key in list, key);

    // Restored into the open experiment.py as an editor edit, then on disk too.
    await didOpen(file);
    const mark = server.received.length;
    assert.deepEqual(await execute('aisci.restoreCheckpoint', { folder: template, id: 'run_1' }), { restored: true, file });
    assert.ok(server.received.slice(mark).some((m) => m.method === 'workspace/applyEdit'), 'an edit, not a rewrite behind the editor');
    assert.equal(open.get(`file://${file}`).text, snapshot);
    assert.equal(readFileSync(file, 'utf8'), snapshot);
    await didClose(file);
    await executeError('aisci.restoreCheckpoint', { folder: template, id: 'run_99' });

    const branched = await execute('aisci.branchFrom', { folder: template, id: 'run_1' });
    assert.equal(branched.branched, true);
    assert.equal(typeof branched.message, 'string');
    await executeError('aisci.branchFrom', { folder: template, id: 'run_99' });
  });

  it('aisci.applyReply applies a pasted reply as one editor edit; a reply that does not apply changes nothing', async () => {
    const file = join(template, 'experiment.py');
    const before = readFileSync(file, 'utf8');
    const line = before.split('\n').find((l) => l.trim() !== '');
    const reply = join(template, 'reply.md');
    writeFileSync(reply, `PLAN: a comment.\n\nexperiment.py\n\`\`\`python\n<<<<<<< SEARCH\n${line}\n=======\n${line}\n# pasted from a chat\n>>>>>>> REPLACE\n\`\`\`\n`);
    await didOpen(file);
    const mark = server.received.length;
    const applied = await execute('aisci.applyReply', { file: reply });
    assert.deepEqual(applied.files, ['experiment.py']);
    assert.ok(server.received.slice(mark).some((m) => m.method === 'workspace/applyEdit'), 'an editor edit');
    assert.ok(open.get(`file://${file}`).text.includes('# pasted from a chat'));
    await didClose(file);
    writeFileSync(file, before);
    writeFileSync(reply, 'experiment.py\n```python\n<<<<<<< SEARCH\nthis line is nowhere\n=======\nx = 1\n>>>>>>> REPLACE\n```\n');
    await executeError('aisci.applyReply', { file: reply });
    assert.equal(readFileSync(file, 'utf8'), before, 'nothing changed');
    // Nothing waits for review here: an empty list, and resolving an unknown edit is refused.
    assert.deepEqual(await execute('aisci.pendingEdits'), []);
    await executeError('aisci.resolveEdit', { id: 4242, accept: [] });
  });

  it('every advertised command was exercised, and spending only grew', async () => {
    const advertised = server.init.capabilities.executeCommandProvider.commands;
    assert.deepEqual(advertised.filter((c) => !exercised.has(c)), [], 'commands without a round trip in this test');
    const status = await execute('aisci.listJobs');
    assert.deepEqual(status.jobs, []);
    assert.ok(status.spentUsd > 0);
    await assert.rejects(server.connection.sendRequest('workspace/executeCommand', { command: 'aisci.noSuchCommand', arguments: [] }));
  });
});
