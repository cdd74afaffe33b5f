// The "Search tree" view in the explorer: the nodes of the search over implementations
// of the active editor's idea folder (`aisci.listNodes`), children under their parent,
// and on each node "Restore this checkpoint", "Branch from here" and "Show the change".
// The search is the server's; this view shows it and forwards the user's choices.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

import {
  buildTree,
  contextOf,
  descriptionOf,
  iconOf,
  labelOf,
  type NodeList,
  summaryOf,
  tooltipOf,
  type TreeNode,
} from './searchNodes';

/** Sends a server command; a refusal rejects with the server's message. */
export type Send = (command: string, args: unknown[]) => Promise<unknown>;

export const VIEW_ID = 'aisci.searchTree';

/** The extension's own commands on the view (package.json lists them through scripts/manifest.mjs). */
export const TREE_COMMANDS = {
  refresh: 'aisci.refreshSearchTree',
  restore: 'aisci.restoreNode',
  branch: 'aisci.branchFromNode',
  showChange: 'aisci.showNodeChange',
};

/**
 * The idea folder of a file: the nearest folder with an experiment.py, never one inside
 * `.aisci/` (where each node keeps its own copy of the code, opened by "Show the change").
 */
export function ideaFolderOf(file: string): string | undefined {
  const cut = file.indexOf(`${path.sep}.aisci${path.sep}`);
  let dir = cut >= 0 ? file.slice(0, cut) : path.dirname(file);
  for (;;) {
    if (fs.existsSync(path.join(dir, 'experiment.py'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

function activeFolder(): string | undefined {
  const uri = vscode.window.activeTextEditor?.document.uri;
  return uri?.scheme === 'file' ? ideaFolderOf(uri.fsPath) : undefined;
}

export class SearchTree implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  readonly view: vscode.TreeView<TreeNode>;
  folder: string | undefined;
  list: NodeList | undefined;
  private roots: TreeNode[] = [];
  /** Counts refreshes, so that a slow answer for a folder left since is dropped. */
  private generation = 0;
  /** The folder changed while the view was hidden: refresh when it shows. */
  private stale = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(private readonly send: Send) {
    this.view = vscode.window.createTreeView(VIEW_ID, { treeDataProvider: this, showCollapseAll: true });
    this.subscriptions.push(
      this.view,
      this.changed,
      this.view.onDidChangeVisibility((e) => {
        if (e.visible && this.stale) void this.refresh();
      }),
      vscode.window.onDidChangeActiveTextEditor(() => {
        const folder = activeFolder();
        // An editor outside any idea folder (output, settings) keeps the tree shown.
        if (folder && folder !== this.folder) this.follow(folder);
      }),
    );
  }

  getTreeItem(t: TreeNode): vscode.TreeItem {
    const state = t.children.length
      ? vscode.TreeItemCollapsibleState.Expanded
      : vscode.TreeItemCollapsibleState.None;
    const item = new vscode.TreeItem(labelOf(t), state);
    // Stable across refreshes, so VS Code keeps what the user collapsed.
    item.id = `${this.list?.folder}#${t.node.id}`;
    item.description = descriptionOf(t);
    item.tooltip = this.list ? tooltipOf(t, this.list) : undefined;
    const icon = iconOf(t);
    item.iconPath = new vscode.ThemeIcon(icon.id, icon.color ? new vscode.ThemeColor(icon.color) : undefined);
    item.contextValue = contextOf(t);
    if (t.node.code || t.node.diff) {
      item.command = { command: TREE_COMMANDS.showChange, title: 'Show the change', arguments: [t] };
    }
    return item;
  }

  getChildren(t?: TreeNode): TreeNode[] {
    return t ? t.children : this.roots;
  }

  /** Shows `folder`'s search, now if the view is visible, else when it next shows. */
  follow(folder = this.folder ?? activeFolder()): void {
    this.folder = folder;
    if (this.view.visible) void this.refresh();
    else this.stale = true;
  }

  /** `aisci/searchChanged`: a refresh soon when it is the folder shown. */
  searchChanged(folder: string): void {
    if (this.folder && sameFolder(this.folder, folder)) this.refreshSoon();
  }

  /** A refresh soon: the server's status notifications come in bursts. */
  refreshSoon(ms = 300): void {
    if (!this.folder) return;
    if (!this.view.visible) {
      this.stale = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), ms);
  }

  async refresh(): Promise<void> {
    this.stale = false;
    const folder = this.folder ?? activeFolder();
    this.folder = folder;
    const generation = ++this.generation;
    if (!folder) {
      this.show(undefined, 'Open the experiment.py of an idea folder to see its search.');
      return;
    }
    try {
      const list = (await this.send('aisci.listNodes', [{ folder }])) as NodeList;
      if (generation !== this.generation) return;
      this.show(list, list.nodes.length ? summaryOf(list) : 'No runs or nodes yet.');
    } catch (e) {
      if (generation !== this.generation) return;
      this.show(undefined, `aisci.listNodes: ${(e as Error).message}`);
    }
  }

  private show(list: NodeList | undefined, message: string): void {
    this.list = list;
    this.roots = list ? buildTree(list) : [];
    this.view.message = message;
    this.view.description = this.folder ? path.basename(this.folder) : undefined;
    this.changed.fire();
  }

  /** The node a command is about: the item right-clicked, else the selected one. */
  private target(t: TreeNode | undefined): { folder: string; t: TreeNode } | undefined {
    const node = t ?? this.view.selection[0];
    if (!node || !this.list) {
      void vscode.window.showInformationMessage('aisci: pick a node in the Search tree first');
      return undefined;
    }
    return { folder: this.list.folder, t: node };
  }

  /** The folder's experiment.py gets the node's code, as an edit the user can undo. */
  async restore(t?: TreeNode): Promise<void> {
    const at = this.target(t);
    if (!at) return;
    try {
      const r = (await this.send('aisci.restoreCheckpoint', [{ folder: at.folder, id: at.t.node.id }])) as { file: string };
      vscode.window.setStatusBarMessage(`$(history) aisci: ${path.basename(r.file)} now holds the code of ${at.t.node.id} (undo to go back)`, 8000);
    } catch (e) {
      void vscode.window.showErrorMessage(`aisci: ${(e as Error).message}`);
    }
  }

  /** The next experiment run continues from the node; the server says how. */
  async branch(t?: TreeNode): Promise<void> {
    const at = this.target(t);
    if (!at) return;
    try {
      const r = (await this.send('aisci.branchFrom', [{ folder: at.folder, id: at.t.node.id }])) as { message: string };
      void vscode.window.showInformationMessage(`aisci: ${r.message}`);
      await this.refresh();
    } catch (e) {
      void vscode.window.showErrorMessage(`aisci: ${(e as Error).message}`);
    }
  }

  /** The parent's code beside the node's, else the node's diff file, else its code. */
  async showChange(t?: TreeNode): Promise<void> {
    const at = this.target(t);
    if (!at) return;
    const n = at.t.node;
    if (n.parent_code && n.code) {
      const title = `experiment.py: ${n.parent ?? 'parent'} ↔ ${n.id}`;
      await vscode.commands.executeCommand('vscode.diff', vscode.Uri.file(n.parent_code), vscode.Uri.file(n.code), title);
    } else if (n.diff ?? n.code) {
      await vscode.commands.executeCommand('vscode.open', vscode.Uri.file((n.diff ?? n.code) as string));
    } else {
      void vscode.window.showInformationMessage(`aisci: the code of ${n.id} was not kept`);
    }
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const d of this.subscriptions) d.dispose();
  }
}

/** The view and its commands; it asks the server once the client runs (see extension.ts). */
export function registerSearchTree(context: vscode.ExtensionContext, send: Send): SearchTree {
  const tree = new SearchTree(send);
  context.subscriptions.push(
    tree,
    vscode.commands.registerCommand(TREE_COMMANDS.refresh, () => tree.refresh()),
    vscode.commands.registerCommand(TREE_COMMANDS.restore, (t?: TreeNode) => tree.restore(t)),
    vscode.commands.registerCommand(TREE_COMMANDS.branch, (t?: TreeNode) => tree.branch(t)),
    vscode.commands.registerCommand(TREE_COMMANDS.showChange, (t?: TreeNode) => tree.showChange(t)),
  );
  return tree;
}

/** Whether two folder paths name the same folder (a trailing slash aside). */
function sameFolder(a: string, b: string): boolean {
  const norm = (p: string) => p.replace(/\/+$/, '');
  return norm(a) === norm(b);
}
