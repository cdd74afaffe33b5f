#!/usr/bin/env node
// Writes package.json's contributes.commands and contributes.configuration from the
// README's settings table and the commands the server (AISCI_SERVER, else the
// repository's build) advertises. `--check` writes nothing and fails when package.json
// is out of date, e.g. after the server gained a command or the README a setting.
//
//   node scripts/gen-manifest.mjs           # update package.json
//   node scripts/gen-manifest.mjs --check   # CI: is it current?

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

import { contributes } from './manifest.mjs';
import { advertisedCommands } from './server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const pkgPath = join(here, '..', 'package.json');
const readme = readFileSync(join(here, '..', '..', '..', 'README.md'), 'utf8');

const pkg = JSON.parse(readFileSync(pkgPath, 'utf8'));
const generated = contributes(readme, await advertisedCommands());
const current = { commands: pkg.contributes?.commands, configuration: pkg.contributes?.configuration };

if (process.argv.includes('--check')) {
  if (!isDeepStrictEqual(current, generated)) {
    const names = (c) => new Set((c ?? []).map((x) => x.command));
    const keys = (c) => new Set((c ?? []).flatMap((s) => Object.keys(s.properties)));
    const diff = (a, b) => [...a].filter((x) => !b.has(x));
    console.error('package.json is out of date; run `npm run gen-manifest`.');
    console.error('  commands to add:', diff(names(generated.commands), names(current.commands)));
    console.error('  commands to remove:', diff(names(current.commands), names(generated.commands)));
    console.error('  settings to add:', diff(keys(generated.configuration), keys(current.configuration)));
    console.error('  settings to remove:', diff(keys(current.configuration), keys(generated.configuration)));
    process.exit(1);
  }
  console.log(`package.json is current: ${generated.commands.length} commands, ${generated.configuration.reduce((n, s) => n + Object.keys(s.properties).length, 0)} settings`);
} else {
  pkg.contributes = { ...pkg.contributes, ...generated };
  writeFileSync(pkgPath, JSON.stringify(pkg, null, 2) + '\n');
  console.log(`package.json: ${generated.commands.length} commands, settings in ${generated.configuration.length} sections`);
}
