// The aisci.toml keys the user set in VS Code, as the server's editor layer takes them
// (`{ llm: { model: ... } }`). Only values set explicitly are sent: the editor layer
// wins over the project's aisci.toml, so sending VS Code's defaults would silently
// override every project file.

import * as vscode from 'vscode';

/** Settings of the extension itself, never sent to the server. */
export const CLIENT_PREFIX = 'aisci.server.';

interface Section {
  properties: Record<string, { scope?: string }>;
}

/** Every server setting this extension contributes, from its own manifest. */
function serverKeys(context: vscode.ExtensionContext): [string, { scope?: string }][] {
  const sections: Section[] = context.extension.packageJSON.contributes.configuration;
  return sections
    .flatMap((s) => Object.entries(s.properties))
    .filter(([key]) => !key.startsWith(CLIENT_PREFIX));
}

export function explicitSettings(context: vscode.ExtensionContext): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration();
  const out: Record<string, unknown> = {};
  for (const [key, schema] of serverKeys(context)) {
    const seen = config.inspect(key);
    if (!seen) continue;
    // Machine-scoped keys (endpoints, secrets, commands) count only from the user's
    // own settings, never from a workspace's .vscode/settings.json.
    const value =
      schema.scope === 'machine'
        ? seen.globalValue
        : (seen.workspaceFolderValue ?? seen.workspaceValue ?? seen.globalValue);
    if (value === undefined) continue;
    // "aisci.run.slurm.partition" → out.run.slurm.partition
    const path = key.slice('aisci.'.length).split('.');
    let node = out;
    for (const part of path.slice(0, -1)) {
      node = (node[part] ??= {}) as Record<string, unknown>;
    }
    node[path[path.length - 1]] = value;
  }
  return out;
}
