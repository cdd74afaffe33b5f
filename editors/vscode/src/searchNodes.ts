// The answer of the server's `aisci.listNodes` (the search over implementations of an
// idea's experiment) and what the "Search tree" view makes of it: the nesting, the
// texts and the icon of each node. No `vscode` here, so the tests build trees from a
// fixture; src/searchTree.ts turns these into tree items.

export type NodeState =
  | 'proposed'
  | 'smoke'
  | 'running'
  | 'done'
  | 'failed'
  | 'duplicate'
  | 'not_promoted'
  | 'cancelled';

export interface SearchNode {
  id: string;
  parent: string | null;
  kind: 'baseline' | 'draft' | 'debug' | 'improve' | 'run';
  state: NodeState;
  score: number | null;
  smoke_score: number | null;
  /** Relative to the baseline's score; positive is better whatever the metric's direction. */
  vs_baseline: number | null;
  plan: string;
  cost_usd: number;
  /** One line from the server, ready to show. */
  label: string;
  /** Its experiment.py; null when it was not kept (a line's run_0). */
  code: string | null;
  parent_code: string | null;
  diff: string | null;
  run: string | null;
  error: string | null;
}

export interface NodeList {
  folder: string;
  mode: 'tree' | 'line';
  metric: { name: string; direction: 'min' | 'max'; source: string } | null;
  baseline_score: number | null;
  best: string | null;
  seeds: { node: string; scores: number[]; mean: number | null; stderr: number | null } | null;
  nodes: SearchNode[];
}

export interface TreeNode {
  node: SearchNode;
  best: boolean;
  children: TreeNode[];
}

/**
 * The roots of the view. In "tree" mode children go under their parent; in "line" mode
 * (one run after another, each the parent of the next) the runs stay one flat list,
 * since nesting them would indent run_k k levels deep.
 */
export function buildTree(list: NodeList): TreeNode[] {
  const byId = new Map<string, TreeNode>();
  const roots: TreeNode[] = [];
  for (const node of list.nodes) {
    const item: TreeNode = { node, best: node.id === list.best, children: [] };
    byId.set(node.id, item);
    // Parents come first; one that does not (a journal cut short) leaves its child a root.
    const parent = list.mode === 'tree' && node.parent !== null ? byId.get(node.parent) : undefined;
    (parent ? parent.children : roots).push(item);
  }
  return roots;
}

/** Four significant digits: scores are losses, accuracies, seconds. */
export function formatScore(x: number): string {
  return String(Number(x.toPrecision(4)));
}

/** "+4.5%", "-2.0%"; positive means better than the baseline. */
export function formatVsBaseline(v: number): string {
  const pct = (v * 100).toFixed(1);
  return v > 0 ? `+${pct}%` : `${pct}%`;
}

/** The node's id and its score (the smoke run's, marked so, when there is no full one). */
export function labelOf(t: TreeNode): string {
  const { id, score, smoke_score } = t.node;
  if (score !== null) return `${id}: ${formatScore(score)}`;
  if (smoke_score !== null) return `${id}: ${formatScore(smoke_score)} (smoke)`;
  return id;
}

export function stateText(state: NodeState): string {
  return state.replace('_', ' ');
}

/** "★ best · done · +4.5% vs baseline". */
export function descriptionOf(t: TreeNode): string {
  const parts = [stateText(t.node.state)];
  if (t.node.vs_baseline !== null) parts.push(`${formatVsBaseline(t.node.vs_baseline)} vs baseline`);
  if (t.best) parts.unshift('★ best');
  return parts.join(' · ');
}

/** The server's line, then kind and parent, the plan, why it failed, its cost, its seeds. */
export function tooltipOf(t: TreeNode, list: NodeList): string {
  const n = t.node;
  const lines = [n.label, `${n.kind}${n.parent ? ` of ${n.parent}` : ''} · ${stateText(n.state)}`];
  if (n.plan.trim()) lines.push('', n.plan.trim());
  if (n.error) lines.push('', `Error: ${n.error}`);
  lines.push('', `Cost of proposing it: $${n.cost_usd.toFixed(4)}`);
  const s = list.seeds;
  if (s && s.node === n.id) {
    const mean = s.mean !== null && s.stderr !== null ? ` → ${formatScore(s.mean)} ± ${formatScore(s.stderr)}` : '';
    const scores = s.scores.length ? s.scores.map(formatScore).join(', ') : 'none completed';
    lines.push(`Seeds: ${scores}${mean}`);
  }
  if (!n.code) lines.push('Its code was not kept');
  if (t.best) lines.push('Best node of the search');
  return lines.join('\n');
}

/**
 * What the node's context menu offers (package.json's menus match on it): "code" when its
 * code was kept (it can be restored), "change" when there is a change to show.
 */
export function contextOf(t: TreeNode): string {
  const n = t.node;
  return ['aisciNode', n.code && 'code', ((n.parent_code && n.code) || n.diff) && 'change'].filter(Boolean).join('.');
}

/** A codicon and a theme color for the node's state; the best node gets a star. */
export function iconOf(t: TreeNode): { id: string; color?: string } {
  if (t.best) return { id: 'star-full', color: 'charts.yellow' };
  switch (t.node.state) {
    case 'proposed':
      return { id: 'circle-outline' };
    case 'smoke':
      return { id: 'beaker', color: 'charts.blue' };
    case 'running':
      return { id: 'sync~spin', color: 'charts.blue' };
    case 'done':
      return { id: 'pass', color: 'testing.iconPassed' };
    case 'failed':
      return { id: 'error', color: 'testing.iconFailed' };
    case 'duplicate':
      return { id: 'copy', color: 'disabledForeground' };
    case 'not_promoted':
      return { id: 'arrow-down', color: 'disabledForeground' };
    case 'cancelled':
      return { id: 'circle-slash', color: 'disabledForeground' };
  }
  // A state added to the server after this version.
  return { id: 'question' };
}

/** "tree · val_loss (min) · baseline 0.9123": what the view's header says. */
export function summaryOf(list: NodeList): string {
  const parts: string[] = [list.mode === 'tree' ? 'tree search' : 'one run after another'];
  if (list.metric) parts.push(`${list.metric.name} (${list.metric.direction})`);
  if (list.baseline_score !== null) parts.push(`baseline ${formatScore(list.baseline_score)}`);
  if (list.best) parts.push(`best ${list.best}`);
  return parts.join(' · ');
}
