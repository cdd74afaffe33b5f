// The "Search tree" view without VS Code: the tree built from an `aisci.listNodes`
// answer (a fixture of the contract), its items' texts and icons, and what its node
// commands send, with the stub `vscode` (test/stub/vscode.cjs) and a recorded server.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dir = realpathSync(mkdtempSync(join(tmpdir(), 'aisci-tree-')));
const bundle = join(dir, 'tree.cjs');
await build({
  stdin: {
    contents: "export * from './searchNodes'; export { SearchTree, ideaFolderOf } from './searchTree'; export { executeCommand } from './palette'; export { __state } from 'vscode';",
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
const T = require(bundle);
const state = T.__state;

const idea = join(dir, 'results', 'tiny_mlp', '20261129_120000_dropout');
const nodeDir = (id) => join(idea, '.aisci', 'tree', id);
mkdirSync(nodeDir('node_3'), { recursive: true });
writeFileSync(join(idea, 'experiment.py'), 'print(0)\n');
writeFileSync(join(nodeDir('node_3'), 'experiment.py'), 'print(3)\n');

function node(id, parent, kind, st, more = {}) {
  return {
    id, parent, kind, state: st, score: null, smoke_score: null, vs_baseline: null,
    plan: '', cost_usd: 0, label: `${id} ${kind} ${st}`,
    code: join(nodeDir(id), 'experiment.py'),
    parent_code: parent && join(nodeDir(parent), 'experiment.py'),
    diff: parent && join(nodeDir(id), 'edit.diff'),
    run: join(nodeDir(id), 'run_2'), error: null, ...more,
  };
}

/** A tree search on val_loss (lower is better), as `aisci.listNodes` answers it. */
const treeList = {
  folder: idea,
  mode: 'tree',
  metric: { name: 'val_loss', direction: 'min', source: 'template' },
  baseline_score: 0.9,
  best: 'node_3',
  seeds: { node: 'node_3', scores: [0.8, 0.81, 0.79], mean: 0.8, stderr: 0.005774 },
  nodes: [
    node('node_0', null, 'baseline', 'done', { score: 0.9, vs_baseline: 0, diff: null, parent_code: null }),
    node('node_1', 'node_0', 'draft', 'done', { score: 0.85, vs_baseline: 0.0556, plan: 'Add dropout 0.1.\nKeep the rest.', cost_usd: 0.0123 }),
    node('node_2', 'node_0', 'draft', 'failed', { error: "KeyError: 'lr' (line 40)" }),
    node('node_3', 'node_1', 'improve', 'done', { score: 0.8, vs_baseline: 0.1111, plan: 'Dropout 0.2' }),
    node('node_4', 'node_2', 'debug', 'smoke', { smoke_score: 0.95 }),
    node('node_5', 'node_1', 'improve', 'duplicate'),
    node('node_6', 'node_3', 'improve', 'not_promoted', { smoke_score: 0.99, vs_baseline: -0.1 }),
  ],
};

/** The classic loop: run_0, run_1, run_2, each the parent of the next. */
const lineList = {
  folder: idea,
  mode: 'line',
  metric: null,
  baseline_score: 0.9,
  best: 'run_2',
  seeds: null,
  nodes: [
    node('run_0', null, 'baseline', 'done', { score: 0.9, vs_baseline: 0, code: null }),
    node('run_1', 'run_0', 'run', 'failed', { error: 'Traceback ...' }),
    node('run_2', 'run_1', 'run', 'done', { score: 0.88, vs_baseline: 0.0222 }),
  ],
};

/** Ids, nested as the view nests them. */
function shape(ts) {
  return ts.map((t) => (t.children.length ? [t.node.id, shape(t.children)] : t.node.id));
}

function find(ts, id) {
  for (const t of ts) {
    if (t.node.id === id) return t;
    const inner = find(t.children, id);
    if (inner) return inner;
  }
}

/** A server that answers from `answers` (a value, or an Error to reject with). */
function server(answers) {
  const sent = [];
  const send = async (command, args) => {
    sent.push([command, args]);
    const a = answers[command];
    if (a instanceof Error) throw a;
    return a ?? null;
  };
  return { sent, send };
}

beforeEach(() => {
  Object.assign(state, { activeFile: undefined, folders: [], picks: [], shown: [], pickedFrom: [], treeViews: [], executed: [], editorListeners: [] });
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('the tree built from aisci.listNodes', () => {
  it('children under their parents, in the server\'s order', () => {
    assert.deepEqual(shape(T.buildTree(treeList)), [
      ['node_0', [
        ['node_1', [['node_3', ['node_6']], 'node_5']],
        ['node_2', ['node_4']],
      ]],
    ]);
  });

  it('only the best node is marked', () => {
    const roots = T.buildTree(treeList);
    const best = treeList.nodes.filter((n) => find(roots, n.id).best).map((n) => n.id);
    assert.deepEqual(best, ['node_3']);
    assert.deepEqual(T.iconOf(find(roots, 'node_3')), { id: 'star-full', color: 'charts.yellow' });
    assert.match(T.descriptionOf(find(roots, 'node_3')), /^★ best · /);
  });

  it('line mode: the runs as one flat list', () => {
    const roots = T.buildTree(lineList);
    assert.deepEqual(shape(roots), ['run_0', 'run_1', 'run_2']);
    assert.equal(T.labelOf(roots[2]), 'run_2: 0.88');
    assert.equal(T.descriptionOf(roots[2]), '★ best · done · +2.2% vs baseline');
    assert.equal(T.summaryOf(lineList), 'one run after another · baseline 0.9 · best run_2');
  });

  it('a node whose parent is missing stays visible, as a root', () => {
    const cut = { ...treeList, nodes: treeList.nodes.filter((n) => n.id !== 'node_2') };
    assert.deepEqual(shape(T.buildTree(cut)).slice(1), ['node_4']);
  });

  it('labels: the id and the score (the smoke run\'s when there is no full one)', () => {
    const roots = T.buildTree(treeList);
    const label = (id) => T.labelOf(find(roots, id));
    assert.equal(label('node_3'), 'node_3: 0.8');
    assert.equal(label('node_4'), 'node_4: 0.95 (smoke)');
    assert.equal(label('node_2'), 'node_2');
    assert.equal(T.formatScore(0.123456), '0.1235');
    assert.equal(T.formatScore(12345.6), '12350');
  });

  it('descriptions: the state and the change against the baseline', () => {
    const roots = T.buildTree(treeList);
    const description = (id) => T.descriptionOf(find(roots, id));
    assert.equal(description('node_1'), 'done · +5.6% vs baseline');
    assert.equal(description('node_2'), 'failed');
    assert.equal(description('node_6'), 'not promoted · -10.0% vs baseline');
    assert.equal(description('node_0'), 'done · 0.0% vs baseline');
  });

  it('seeds without a mean (none completed) list what there is', () => {
    const list = { ...treeList, seeds: { node: 'node_3', scores: [], mean: null, stderr: null } };
    assert.match(T.tooltipOf(find(T.buildTree(list), 'node_3'), list), /Seeds: none completed\n/);
  });

  it('tooltips: the server\'s line, the plan, the error, the cost, the seeds', () => {
    const roots = T.buildTree(treeList);
    const tip1 = T.tooltipOf(find(roots, 'node_1'), treeList);
    assert.equal(tip1.split('\n')[0], 'node_1 draft done');
    assert.match(tip1, /draft of node_0 · done/);
    assert.match(tip1, /Add dropout 0\.1\.\nKeep the rest\./);
    assert.match(tip1, /\$0\.0123/);
    assert.match(T.tooltipOf(find(roots, 'node_2'), treeList), /Error: KeyError: 'lr' \(line 40\)/);
    const tip3 = T.tooltipOf(find(roots, 'node_3'), treeList);
    assert.match(tip3, /Seeds: 0\.8, 0\.81, 0\.79 → 0\.8 ± 0\.005774/);
    assert.match(tip3, /Best node of the search/);
  });

  it('an icon for every state', () => {
    const icons = {};
    const byState = (st) => T.iconOf({ node: node('x', null, 'draft', st), best: false, children: [] }).id;
    for (const st of ['proposed', 'smoke', 'running', 'done', 'failed', 'duplicate', 'not_promoted', 'cancelled']) {
      icons[st] = byState(st);
    }
    assert.equal(new Set(Object.values(icons)).size, 8, JSON.stringify(icons));
    assert.equal(icons.running, 'sync~spin');
    assert.equal(byState('some_new_state'), 'question');
  });
});

describe('the Search tree view', () => {
  it('the idea folder of the active file, also from a node\'s own copy in .aisci/', () => {
    assert.equal(T.ideaFolderOf(join(idea, 'experiment.py')), idea);
    assert.equal(T.ideaFolderOf(join(idea, 'run_1', 'final_info.json')), idea);
    assert.equal(T.ideaFolderOf(join(nodeDir('node_3'), 'experiment.py')), idea);
    assert.equal(T.ideaFolderOf(join(dir, 'elsewhere.txt')), undefined);
  });

  it('asks for the active editor\'s folder and shows its nodes as tree items', async () => {
    state.activeFile = join(nodeDir('node_3'), 'experiment.py');
    const { sent, send } = server({ 'aisci.listNodes': treeList });
    const tree = new T.SearchTree(send);
    const [view] = state.treeViews;
    assert.equal(view.id, 'aisci.searchTree');
    await tree.refresh();
    assert.deepEqual(sent, [['aisci.listNodes', [{ folder: idea }]]]);
    assert.equal(view.message, 'tree search · val_loss (min) · baseline 0.9 · best node_3');
    assert.equal(view.description, '20261129_120000_dropout');

    const [root] = tree.getChildren();
    const rootItem = tree.getTreeItem(root);
    assert.equal(rootItem.label, 'node_0: 0.9');
    assert.equal(rootItem.collapsibleState, 2, 'a parent starts expanded');
    assert.equal(rootItem.contextValue, 'aisciNode.code', 'the baseline has no change to show');
    const best = tree.getTreeItem(find(tree.getChildren(), 'node_3'));
    assert.equal(best.iconPath.id, 'star-full');
    assert.equal(best.description, '★ best · done · +11.1% vs baseline');
    assert.equal(best.contextValue, 'aisciNode.code.change');
    assert.equal(best.id, `${idea}#node_3`);
    assert.equal(best.command.command, 'aisci.showNodeChange');
    const failed = tree.getTreeItem(find(tree.getChildren(), 'node_2'));
    assert.deepEqual([failed.iconPath.id, failed.iconPath.color.id], ['error', 'testing.iconFailed']);
    assert.equal(tree.getTreeItem(find(tree.getChildren(), 'node_6')).collapsibleState, 0);
  });

  it('restore, branch and show the change of a node', async () => {
    state.activeFile = join(idea, 'experiment.py');
    const { sent, send } = server({
      'aisci.listNodes': treeList,
      'aisci.restoreCheckpoint': { restored: true, file: join(idea, 'experiment.py') },
      'aisci.branchFrom': { branched: true, message: 'the next run continues from node_3' },
    });
    const tree = new T.SearchTree(send);
    await tree.refresh();
    const n3 = find(tree.getChildren(), 'node_3');
    await tree.restore(n3);
    await tree.branch(n3);
    assert.deepEqual(sent.slice(1, 3), [
      ['aisci.restoreCheckpoint', [{ folder: idea, id: 'node_3' }]],
      ['aisci.branchFrom', [{ folder: idea, id: 'node_3' }]],
    ]);
    assert.equal(sent[3][0], 'aisci.listNodes', 'a branch refreshes the tree');
    assert.match(state.shown[0][1], /experiment\.py now holds the code of node_3/);
    assert.deepEqual(state.shown[1], ['info', 'aisci: the next run continues from node_3']);

    await tree.showChange(n3);
    await tree.showChange(find(tree.getChildren(), 'node_0'));
    const [diff, open] = state.executed;
    assert.deepEqual(diff, [
      'vscode.diff',
      { scheme: 'file', fsPath: join(nodeDir('node_1'), 'experiment.py') },
      { scheme: 'file', fsPath: join(nodeDir('node_3'), 'experiment.py') },
      'experiment.py: node_1 ↔ node_3',
    ]);
    assert.deepEqual(open, ['vscode.open', { scheme: 'file', fsPath: join(nodeDir('node_0'), 'experiment.py') }]);
  });

  it('a node whose code was not kept: nothing to restore or show', async () => {
    state.activeFile = join(idea, 'experiment.py');
    const tree = new T.SearchTree(server({ 'aisci.listNodes': lineList }).send);
    await tree.refresh();
    const [run0, run1] = tree.getChildren();
    const item = tree.getTreeItem(run0);
    assert.equal(item.contextValue, 'aisciNode');
    assert.equal(item.command, undefined);
    assert.match(item.tooltip, /Its code was not kept/);
    assert.equal(tree.getTreeItem(run1).contextValue, 'aisciNode.code.change');
    await tree.showChange(run0);
    assert.deepEqual(state.shown, [['info', 'aisci: the code of run_0 was not kept']]);
    assert.deepEqual(state.executed, []);
  });

  it('the selected node when a command comes without one', async () => {
    state.activeFile = join(idea, 'experiment.py');
    const { sent, send } = server({ 'aisci.listNodes': lineList, 'aisci.restoreCheckpoint': { restored: true, file: 'experiment.py' } });
    const tree = new T.SearchTree(send);
    await tree.refresh();
    state.treeViews[0].selection = [tree.getChildren()[1]];
    await tree.restore();
    assert.deepEqual(sent[1], ['aisci.restoreCheckpoint', [{ folder: idea, id: 'run_1' }]]);
  });

  it('a refusal shows in the view, or as an error for the user\'s own action', async () => {
    state.activeFile = join(idea, 'experiment.py');
    const answers = { 'aisci.listNodes': new Error('not an idea folder') };
    const tree = new T.SearchTree(server(answers).send);
    await tree.refresh();
    assert.equal(state.treeViews[0].message, 'aisci.listNodes: not an idea folder');
    assert.deepEqual(tree.getChildren(), []);
    answers['aisci.listNodes'] = lineList;
    answers['aisci.branchFrom'] = new Error('run_9: no such node');
    await tree.refresh();
    await tree.branch(tree.getChildren()[0]);
    assert.deepEqual(state.shown, [['error', 'aisci: run_9: no such node']]);
  });

  it('follows the active editor, and a hidden view asks only once it shows', async () => {
    const other = join(dir, 'results', 'tiny_mlp', '20261129_130000_other');
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'experiment.py'), 'print(1)\n');
    state.activeFile = join(idea, 'experiment.py');
    const { sent, send } = server({ 'aisci.listNodes': lineList });
    const tree = new T.SearchTree(send);
    const [view] = state.treeViews;
    const settle = () => new Promise((resolve) => setTimeout(resolve, 20));
    tree.follow();
    await settle();
    state.activeFile = join(other, 'notes.txt');
    for (const f of state.editorListeners) f();
    await settle();
    assert.deepEqual(sent.map(([, [a]]) => a.folder), [idea, other]);
    view.setVisible(false);
    tree.refreshSoon(0);
    await settle();
    assert.equal(sent.length, 2, 'nothing asked while hidden');
    view.setVisible(true);
    await settle();
    assert.deepEqual(sent.map(([, [a]]) => a.folder), [idea, other, other]);
    tree.dispose();
  });

  it("a running search's node changes refresh the folder shown, not others", async () => {
    state.activeFile = join(idea, 'experiment.py');
    const { sent, send } = server({ 'aisci.listNodes': treeList });
    const tree = new T.SearchTree(send);
    const settle = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms));
    tree.follow();
    await settle();
    tree.searchChanged(join(dir, 'results', 'tiny_mlp', 'another_folder'));
    await settle(400);
    assert.equal(sent.length, 1, 'another folder changed: nothing asked');
    tree.searchChanged(idea + '/');
    tree.searchChanged(idea);
    await settle(400);
    assert.equal(sent.length, 2, 'a burst of changes: one refresh');
    tree.dispose();
  });

  it('no idea folder open: says what to open, asks nothing', async () => {
    state.activeFile = join(dir, 'elsewhere.txt');
    const { sent, send } = server({});
    const tree = new T.SearchTree(send);
    await tree.refresh();
    assert.deepEqual(sent, []);
    assert.match(state.treeViews[0].message, /experiment\.py of an idea folder/);
  });
});

describe('the search commands from the palette', () => {
  it('restore and branch pick a node; listNodes opens the view', async () => {
    state.activeFile = join(idea, 'latex', 'template.tex');
    const sent = [];
    const execute = async (command, args) => {
      sent.push([command, args]);
      if (command === 'aisci.listNodes') return treeList;
      if (command === 'aisci.branchFrom') return { branched: true, message: 'branching from node_2' };
      return { restored: true, file: join(idea, 'experiment.py') };
    };
    state.picks = [(items) => items.find((i) => i.id === 'node_3'), (items) => items.find((i) => i.id === 'node_2')];
    await T.executeCommand('aisci.restoreCheckpoint', [], execute);
    await T.executeCommand('aisci.branchFrom', [], execute);
    await T.executeCommand('aisci.listNodes', [], execute);
    assert.deepEqual(sent, [
      ['aisci.listNodes', [{ folder: idea }]], ['aisci.restoreCheckpoint', [{ folder: idea, id: 'node_3' }]],
      ['aisci.listNodes', [{ folder: idea }]], ['aisci.branchFrom', [{ folder: idea, id: 'node_2' }]],
      ['aisci.listNodes', [{ folder: idea }]],
    ]);
    // Offered in the tree's order, each with its state.
    assert.deepEqual(state.pickedFrom[0].map((i) => i.id), ['node_0', 'node_1', 'node_3', 'node_6', 'node_5', 'node_2', 'node_4']);
    assert.equal(state.pickedFrom[0][1].detail, 'Add dropout 0.1.');
    assert.deepEqual(state.shown, [['info', 'aisci: branching from node_2']]);
    assert.deepEqual(state.executed, [['aisci.searchTree.focus']]);
  });
});
