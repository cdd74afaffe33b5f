// Arguments for server commands run from the command palette. Code lenses and code
// actions come with their arguments; the palette has none, so they are taken from the
// active editor (its template or idea folder, its .tex) or asked for with a quick pick.
// The server still does all the work: this only fills in what a lens would have sent.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

import { buildTree, descriptionOf, labelOf, type NodeList, type TreeNode } from './searchNodes';
import { ideaFolderOf } from './searchTree';

export type Execute = (command: string, args: unknown[]) => Promise<unknown>;

/** Arguments for `command`, or undefined when the user backed out. */
type Filler = (execute: Execute) => Promise<unknown[] | undefined>;

function activeFile(): string | undefined {
  const uri = vscode.window.activeTextEditor?.document.uri;
  return uri?.scheme === 'file' ? uri.fsPath : undefined;
}

/** The template or idea folder around the active file: the nearest folder with an experiment.py. */
function projectFolder(): string | undefined {
  const starts = [activeFile(), ...(vscode.workspace.workspaceFolders ?? []).map((f) => path.join(f.uri.fsPath, 'x'))];
  for (const start of starts) {
    if (!start) continue;
    for (let dir = path.dirname(start); ; dir = path.dirname(dir)) {
      if (fs.existsSync(path.join(dir, 'experiment.py'))) return dir;
      if (path.dirname(dir) === dir) break;
    }
  }
  void vscode.window.showErrorMessage('aisci: open a file of a template or idea folder (one with experiment.py) first');
  return undefined;
}

function texFile(): string | undefined {
  const file = activeFile();
  if (file?.endsWith('.tex')) return file;
  const folder = projectFolder();
  return folder && path.join(folder, 'latex', 'template.tex');
}

interface ReviewFile {
  review?: Record<string, unknown>;
  addressed?: string[];
}

/** A comment of the paper's review.json not yet addressed, by its id ("weakness-0"). */
async function pickComment(file: string): Promise<string | undefined> {
  let review: ReviewFile;
  try {
    review = JSON.parse(fs.readFileSync(file, 'utf8')) as ReviewFile;
  } catch (e) {
    void vscode.window.showErrorMessage(`aisci: no review to revise for (${(e as Error).message}); review the paper first`);
    return undefined;
  }
  const items: (vscode.QuickPickItem & { id: string })[] = [];
  for (const [key, kind] of [['Weaknesses', 'weakness'], ['Questions', 'question'], ['Limitations', 'limitation']]) {
    const list = review.review?.[key];
    if (!Array.isArray(list)) continue;
    list.forEach((c: unknown, i: number) => {
      const id = `${kind}-${i}`;
      if (review.addressed?.includes(id)) return;
      const text = typeof c === 'string' ? c : String((c as { text?: string }).text ?? '');
      items.push({ id, label: text, description: kind });
    });
  }
  const picked = await vscode.window.showQuickPick(items, { placeHolder: 'Revise the paper for which comment?' });
  return picked?.id;
}

interface Idea {
  Name?: string;
  Title?: string;
  novel?: boolean;
}

function readIdeas(file: string): Idea[] | undefined {
  try {
    const ideas: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (Array.isArray(ideas)) return ideas as Idea[];
  } catch (e) {
    void vscode.window.showErrorMessage(`aisci: cannot read ${file}: ${(e as Error).message}`);
    return undefined;
  }
  void vscode.window.showErrorMessage(`aisci: ${file} is not a list of ideas`);
  return undefined;
}

async function pickIdea(file: string): Promise<{ index: number; name: string } | undefined> {
  const ideas = readIdeas(file);
  if (!ideas) return undefined;
  const items = ideas.map((idea, index) => ({
    label: idea.Name ?? `idea ${index}`,
    description: idea.Title,
    detail: idea.novel === undefined ? 'novelty not checked' : idea.novel ? 'novel' : 'not novel',
    index,
  }));
  const picked = await vscode.window.showQuickPick(items, { placeHolder: 'Which idea?' });
  return picked && { index: picked.index, name: picked.label };
}

interface JobView {
  id: number;
  title: string;
  target: string;
  elapsedMs: number;
  message?: string | null;
}

export interface Status {
  jobs: JobView[];
  spentUsd: number;
  calls: number;
}

function jobItem(job: JobView) {
  return {
    label: job.title,
    description: `${path.basename(job.target)} · ${Math.round(job.elapsedMs / 1000)} s`,
    detail: job.message ?? undefined,
    id: job.id,
  };
}

const template: Filler = async () => {
  const folder = projectFolder();
  return folder ? [{ template: folder }] : undefined;
};

const folder: Filler = async () => {
  const dir = projectFolder();
  return dir ? [{ folder: dir }] : undefined;
};

/** The idea folder of the active file, also when it is a node's own copy in `.aisci/`. */
function ideaFolder(): string | undefined {
  const file = activeFile();
  return (file && ideaFolderOf(file)) || projectFolder();
}

const searchFolder: Filler = async () => {
  const dir = ideaFolder();
  return dir ? [{ folder: dir }] : undefined;
};

/** The folder and a node of its search, picked from `aisci.listNodes`. */
const folderAndNode: Filler = async (execute) => {
  const dir = ideaFolder();
  if (!dir) return undefined;
  const list = (await execute('aisci.listNodes', [{ folder: dir }])) as NodeList | undefined;
  if (!list) return undefined;
  const flat: TreeNode[] = [];
  const walk = (ts: TreeNode[]): void => {
    for (const t of ts) {
      flat.push(t);
      walk(t.children);
    }
  };
  walk(buildTree(list));
  const picked = await vscode.window.showQuickPick(
    flat.map((t) => ({ label: labelOf(t), description: descriptionOf(t), detail: t.node.plan.split('\n')[0], id: t.node.id })),
    { placeHolder: flat.length ? 'Which node?' : 'No nodes in this folder yet' },
  );
  return picked ? [{ folder: list.folder, id: picked.id }] : undefined;
};

interface Proposal {
  id: number;
  file: string;
  label: string;
  hunks: unknown[];
}

/** An agent edit waiting for review, and whether to keep it all or reject it all. */
const resolveEdit: Filler = async (execute) => {
  const pending = (await execute('aisci.pendingEdits', [])) as Proposal[] | undefined;
  if (!pending?.length) {
    void vscode.window.showInformationMessage('aisci: no agent edit waits for review');
    return undefined;
  }
  const items = pending.flatMap((p) => [
    { label: `Keep: ${path.basename(p.file)}`, description: `${p.hunks.length} hunk(s) · ${p.label}`, id: p.id, accept: p.hunks.map((_, i) => i) },
    { label: `Reject: ${path.basename(p.file)}`, description: `${p.hunks.length} hunk(s) · ${p.label}`, id: p.id, accept: [] as number[] },
  ]);
  const picked = await vscode.window.showQuickPick(items, { placeHolder: 'Keep or reject which agent edit?' });
  return picked ? [{ id: picked.id, accept: picked.accept }] : undefined;
};

const FILLERS: Partial<Record<string, Filler>> = {
  'aisci.applyReply': async () => {
    const file = activeFile();
    if (!file) void vscode.window.showErrorMessage('aisci: open the file that holds the model reply first');
    return file ? [{ file }] : undefined;
  },
  'aisci.resolveEdit': resolveEdit,
  'aisci.pendingEdits': async () => [],
  'aisci.generateIdeas': template,
  'aisci.checkNovelty': template,
  'aisci.runBaseline': template,
  'aisci.runExperiments': folder,
  'aisci.launchRun': folder,
  'aisci.listRuns': async () => [],
  'aisci.listNodes': searchFolder,
  'aisci.restoreCheckpoint': folderAndNode,
  'aisci.branchFrom': folderAndNode,
  'aisci.listJobs': async () => [],
  'aisci.implementIdea': async () => {
    const t = projectFolder();
    const idea = t && (await pickIdea(path.join(t, 'ideas.json')));
    return idea ? [{ template: t, idea: idea.name }] : undefined;
  },
  'aisci.showIdea': async () => {
    const active = activeFile();
    const t = active?.endsWith('ideas.json') ? path.dirname(active) : projectFolder();
    const file = t && path.join(t, 'ideas.json');
    const idea = file && (await pickIdea(file));
    return idea ? [{ file, index: idea.index }] : undefined;
  },
  'aisci.buildPaper': async () => {
    const tex = texFile();
    return tex ? [{ tex }] : undefined;
  },
  'aisci.writePaper': async () => {
    const tex = texFile();
    if (!tex) return undefined;
    const titles = fs.existsSync(tex)
      ? // Headings as the server counts them: a commented-out \\section is none.
        [...fs.readFileSync(tex, 'utf8').matchAll(/^[^%\n]*?\\section\*?\{([^}]*)\}/gm)].map((m) => m[1])
      : [];
    // A title that appears twice is sent by position, so the server writes the one picked.
    const count = (t: string) => titles.filter((x) => x === t).length;
    const items = titles.map((title, index) => ({
      label: count(title) > 1 ? `${title} (section ${index + 1})` : title,
      section: count(title) > 1 ? { level: 2, index, title } : title,
    }));
    const whole = { label: 'The whole paper', section: undefined };
    const picked = await vscode.window.showQuickPick([whole, ...items], { placeHolder: 'Write which part?' });
    if (!picked) return undefined;
    return [picked.section === undefined ? { tex } : { tex, section: picked.section }];
  },
  'aisci.reviewPaper': async () => {
    const tex = texFile();
    return tex ? [{ tex }] : undefined;
  },
  'aisci.reviseAll': async () => {
    const tex = texFile();
    return tex ? [{ tex }] : undefined;
  },
  'aisci.reviseFromReview': async () => {
    const tex = texFile();
    if (!tex) return undefined;
    const picked = await pickComment(path.join(path.dirname(path.dirname(tex)), 'review.json'));
    return picked ? [{ tex, comment: picked }] : undefined;
  },
  'aisci.openRun': async (execute) => {
    const stdout = await pickRun(await listRuns(execute));
    return stdout ? [{ path: stdout }] : undefined;
  },
  'aisci.cancel': async (execute) => {
    const status = (await execute('aisci.listJobs', [])) as Status;
    if (status.jobs.length === 0) {
      void vscode.window.showInformationMessage('aisci: no job is running');
      return undefined;
    }
    const all = { label: 'All jobs', description: `${status.jobs.length} running`, id: -1 };
    const picked = await vscode.window.showQuickPick([...status.jobs.map(jobItem), all], {
      placeHolder: 'Cancel which job?',
    });
    if (!picked) return undefined;
    return picked.id < 0 ? [] : [picked.id];
  },
};

interface RunEntry {
  title: string;
  elapsed: string;
  state: string;
  stdout: string;
  folder: string;
}

async function pickRun(runs: RunEntry[]): Promise<string | undefined> {
  const picked = await vscode.window.showQuickPick(
    runs.map((r) => ({ label: r.title, description: `${r.elapsed} · ${path.basename(r.folder)}`, stdout: r.stdout })),
    { placeHolder: runs.length ? 'Open the output of which run?' : 'No runs in this workspace' },
  );
  return picked?.stdout;
}

async function listRuns(execute: Execute): Promise<RunEntry[]> {
  return ((await execute('aisci.listRuns', [])) as { runs: RunEntry[] }).runs;
}

/** What the palette does with a result (lenses get the result as it is). */
async function afterPalette(command: string, result: unknown, execute: Execute): Promise<void> {
  if (command === 'aisci.listRuns') {
    const stdout = await pickRun((result as { runs: RunEntry[] }).runs);
    if (stdout) await execute('aisci.openRun', [{ path: stdout }]);
  } else if (command === 'aisci.listJobs') {
    const status = result as Status;
    const spent = `$${status.spentUsd.toFixed(4)} spent in ${status.calls} model call(s) this session`;
    const picked = await vscode.window.showQuickPick(status.jobs.map(jobItem), {
      placeHolder: status.jobs.length ? `${spent}; pick a job to cancel it` : `No job running; ${spent}`,
    });
    if (picked) await execute('aisci.cancel', [picked.id]);
  } else if (command === 'aisci.listNodes') {
    // The nodes have their own view, with the actions on each.
    await vscode.commands.executeCommand('aisci.searchTree.focus');
  } else if (command === 'aisci.pendingEdits') {
    const pending = result as Proposal[];
    void vscode.window.showInformationMessage(
      pending.length
        ? `aisci: ${pending.map((p) => `${path.basename(p.file)} (${p.hunks.length} hunk(s))`).join(', ')} wait(s) for review; the file's code actions keep or reject them`
        : 'aisci: no agent edit waits for review',
    );
  } else if (command === 'aisci.applyReply') {
    const r = result as { files: string[] };
    void vscode.window.showInformationMessage(`aisci: applied the reply's edits to ${r.files.join(', ')} (undo takes them back)`);
  } else if (command === 'aisci.branchFrom') {
    void vscode.window.showInformationMessage(`aisci: ${(result as { message: string }).message}`);
  }
}

/**
 * `middleware.executeCommand`: commands with arguments (lenses, actions) go straight to
 * the server; argument-less ones (the palette, the status bar) are completed first.
 */
export async function executeCommand(command: string, args: unknown[], execute: Execute): Promise<unknown> {
  if (args.length > 0) return execute(command, args);
  const filler = FILLERS[command];
  // A command this version does not know yet goes as it is; the server says what it needs.
  const filled = filler ? await filler(execute) : [];
  if (filled === undefined) return undefined;
  const result = await execute(command, filled);
  // A command that could not start has said why already (see `runOnServer`).
  if (filler && result !== undefined) await afterPalette(command, result, execute);
  return result;
}
