// What package.json contributes, derived from the two sources of truth: the settings
// table in the repository's README.md (every aisci.toml key) and the commands the
// server advertises. gen-manifest.mjs writes it; the tests check it is current.

/** Palette titles where the command name alone reads badly. */
const TITLES = {
  'aisci.cancel': 'Cancel a running job',
  'aisci.listJobs': 'Show running jobs and spending',
  'aisci.listRuns': 'Show runs',
  'aisci.openRun': 'Open a run',
  'aisci.showIdea': 'Show an idea',
  'aisci.reviewPaper': 'Review the paper',
  'aisci.reviseFromReview': 'Revise the paper for one review comment',
  'aisci.reviseAll': 'Revise the paper for every review comment, then review again',
  'aisci.resolveEdit': 'Keep or reject an agent edit waiting for review',
  'aisci.pendingEdits': 'Show agent edits waiting for review',
  'aisci.applyReply': 'Apply agent edits from a reply',
  'aisci.listNodes': 'Show the search tree',
  'aisci.restoreCheckpoint': 'Restore a checkpoint of the search',
  'aisci.branchFrom': 'Branch the search from a node',
};

/** Commands of the extension itself (the server has no say in them). */
export const CLIENT_COMMANDS = [
  { command: 'aisci.showServerLog', title: 'Show the server log', category: 'aisci' },
  { command: 'aisci.restartServer', title: 'Restart the server', category: 'aisci' },
  // The Search tree view (src/searchTree.ts): its title button and each node's context menu.
  { command: 'aisci.refreshSearchTree', title: 'Refresh the search tree', category: 'aisci', icon: '$(refresh)' },
  { command: 'aisci.restoreNode', title: 'Restore this checkpoint', category: 'aisci' },
  { command: 'aisci.branchFromNode', title: 'Branch from here', category: 'aisci' },
  { command: 'aisci.showNodeChange', title: 'Show the change', category: 'aisci' },
];

/** Settings of the extension itself (never sent to the server; see src/settings.ts). */
export const CLIENT_SETTINGS = {
  title: 'aisci: editor',
  properties: {
    'aisci.server.path': {
      type: 'string',
      default: '',
      scope: 'machine',
      markdownDescription: 'The `aisci` binary to start as `aisci lsp`; empty: `aisci` found on `PATH`.',
    },
  },
};

/** README keys the editor cannot set: the server ignores them from editor settings. */
export const NOT_EDITOR_SETTINGS = {
  trusted_folders: 'read only from the user-level config file',
};

/** Types of keys whose README default ("unset", "built-in table") does not show one. */
const TYPES = {
  'llm.base_url': { type: 'string' },
  'llm.api_key_env': { type: 'string' },
  'llm.budget_usd': { type: 'number', minimum: 0 },
  'llm.replay_file': { type: 'string' },
  'run.max_memory_bytes': { type: 'integer', minimum: 16777216 },
  'llm.prices': {
    type: 'object',
    additionalProperties: {
      type: 'object',
      properties: {
        input: { type: 'number' },
        cached_input: { type: 'number' },
        cache_write: { type: 'number' },
        output: { type: 'number' },
      },
      required: ['input', 'output'],
    },
  },
  'literature.openalex_mailto': { type: 'string' },
  'literature.cache_dir': { type: 'string' },
  'writeup.model': { type: 'string' },
  'review.model': { type: 'string' },
  'review.examples': {
    type: 'array',
    items: {
      type: 'object',
      properties: { paper: { type: 'string' }, review: { type: 'string' } },
      required: ['paper', 'review'],
    },
  },
  'run.gpus': { type: 'array', items: { type: 'string' } },
  'run.slurm.partition': { type: 'string' },
  'run.slurm.account': { type: 'string' },
  'experiment.tree.metric': { type: 'string' },
  'experiment.tree.direction': { type: 'string' },
};

/** Closed sets of values; each must appear in backticks in the key's README row. */
const ENUMS = {
  'llm.provider': ['auto', 'openai', 'anthropic', 'deepseek', 'openrouter', 'gemini', 'ollama', 'vllm', 'llamacpp', 'replay'],
  'run.runner': ['local', 'slurm'],
  'llm.vision': ['auto', 'yes', 'no'],
  'experiment.search': ['line', 'tree'],
  'experiment.tree.direction': ['min', 'max'],
  'edits.review': ['off', 'experiment', 'all'],
};

const USER_LEVEL_ONLY = '**user-level or trusted projects only**';

/** "aisci.generateIdeas" → "Generate ideas". */
export function titleOf(command) {
  if (TITLES[command]) return TITLES[command];
  const words = command.replace(/^aisci\./, '').replace(/([A-Z])/g, ' $1').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The rows of the README's settings table: [{key, default, meaning}]. */
export function readmeSettings(readme) {
  const rows = [];
  let inTable = false;
  for (const line of readme.split('\n')) {
    if (line.startsWith('| key | default | meaning |')) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    if (line.startsWith('|---')) continue;
    const m = /^\| `([^`]+)` \| (.*?) \| (.*) \|$/.exec(line);
    if (!m) break;
    rows.push({ key: m[1], default: m[2], meaning: m[3] });
  }
  if (rows.length === 0) throw new Error('README.md: no settings table (| key | default | meaning |) found');
  return rows;
}

/** `llm.prices."<model>"` names the table `llm.prices`. */
function tableKey(key) {
  return key.replace(/\."<[^>]+>"$/, '');
}

/** The JSON schema of one setting, from its README row. */
export function schemaOf(row) {
  const key = tableKey(row.key);
  const literal = /^`([^`]*)`$/.exec(row.default.trim());
  let schema;
  if (TYPES[key]) {
    schema = structuredClone(TYPES[key]);
  } else if (literal) {
    let value;
    try {
      value = JSON.parse(literal[1]);
    } catch {
      value = literal[1]; // an unquoted URL or word
    }
    if (typeof value === 'boolean') schema = { type: 'boolean', default: value };
    else if (typeof value === 'number') {
      schema = Number.isInteger(value) && !literal[1].includes('.')
        ? { type: 'integer', minimum: 0, default: value }
        : { type: 'number', default: value };
    } else if (typeof value === 'string') schema = { type: 'string', default: value };
    else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
      schema = { type: 'array', items: { type: 'string' }, default: value };
    }
  }
  if (!schema) {
    throw new Error(`README.md: cannot tell the type of \`${row.key}\` from its default ${row.default}; add it to TYPES in scripts/manifest.mjs`);
  }
  if (ENUMS[key]) {
    for (const v of ENUMS[key]) {
      if (!row.meaning.includes(`\`${v}\``)) {
        throw new Error(`README.md: \`${row.key}\` no longer lists \`${v}\`; update ENUMS in scripts/manifest.mjs`);
      }
    }
    schema.enum = ENUMS[key];
  }
  schema.markdownDescription = row.meaning;
  // A workspace's .vscode/settings.json arrives with a cloned repository: keys that
  // choose endpoints, secrets or commands may only come from the user's settings.
  if (row.meaning.includes(USER_LEVEL_ONLY)) schema.scope = 'machine';
  return { key, schema };
}

/** contributes.configuration: one section per table, in README order. */
export function configuration(readme) {
  const sections = new Map();
  let order = 0;
  for (const row of readmeSettings(readme)) {
    if (NOT_EDITOR_SETTINGS[row.key]) continue;
    const { key, schema } = schemaOf(row);
    if (key.startsWith('server.')) throw new Error(`README.md: \`${key}\` collides with the extension's own aisci.server.* settings`);
    const table = key.split('.')[0];
    if (!sections.has(table)) sections.set(table, { title: `aisci: ${table}`, properties: {} });
    sections.get(table).properties[`aisci.${key}`] = { ...schema, order: order++ };
  }
  return [...sections.values(), CLIENT_SETTINGS];
}

/** contributes.commands: every server command, then the extension's own. */
export function commands(serverCommands) {
  const fromServer = [...serverCommands].sort().map((command) => ({
    command,
    title: titleOf(command),
    category: 'aisci',
  }));
  return [...fromServer, ...CLIENT_COMMANDS];
}

/** The generated part of package.json. */
export function contributes(readme, serverCommands) {
  return {
    commands: commands(serverCommands),
    configuration: configuration(readme),
  };
}
