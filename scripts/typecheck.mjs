#!/usr/bin/env node
// Type-checks every workspace: its tsconfig.json, any tsconfig.json in a folder below it (a renderer
// with DOM types) and test/tsconfig.json, one tsc run each.
// shared/tsconfig.json has no Node or DOM types, so shared/src cannot reach for either.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** True when a folder holds a .ts/.tsx file somewhere below it (outside node_modules). */
function hasTypeScript(dir) {
  if (!existsSync(dir)) return false;
  return readdirSync(dir, { withFileTypes: true }).some((e) =>
    e.isDirectory() ? e.name !== 'node_modules' && hasTypeScript(join(dir, e.name)) : /\.tsx?$/.test(e.name),
  );
}
import { join, dirname } from 'node:path';

/**
 * tsconfig.json files in folders below a workspace (a renderer with DOM types and no Node types has its
 * own, so the linter's project service finds it too), up to three levels down.
 */
function nestedConfigs(dir, rel, depth = 0) {
  if (depth > 3) return [];
  const out = [];
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    if (!e.isDirectory() || ['node_modules', 'dist', 'test', '.git'].includes(e.name)) continue;
    const sub = rel === '' ? e.name : `${rel}/${e.name}`;
    if (existsSync(join(dir, sub, 'tsconfig.json'))) out.push(`${sub}/tsconfig.json`);
    out.push(...nestedConfigs(dir, sub, depth + 1));
  }
  return out.sort();
}
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { workspaces } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
let failed = 0;
for (const ws of ['.', ...workspaces]) {
  const dir = join(root, ws);
  if (ws !== '.' && !hasTypeScript(dir)) {
    console.log(`typecheck ${ws}: no TypeScript sources yet`);
    continue;
  }
  // A workspace's own config, and one in its test/ folder where its tests need other types.
  const configs =
    ws === '.'
      ? ['tsconfig.json']
      : ['tsconfig.json', ...nestedConfigs(dir, ''), 'test/tsconfig.json'].filter(
          (f, i, all) => existsSync(join(dir, f)) && all.indexOf(f) === i,
        );
  for (const file of configs) {
    const rel = `${ws}/${file}`;
    const r = spawnSync(process.execPath, [tsc, '-p', join(dir, file), '--noEmit', '--pretty'], {
      stdio: 'inherit',
      cwd: root,
    });
    if (r.status === 0) console.log(`typecheck ${rel}: ok`);
    else {
      failed++;
      console.log(`typecheck ${rel}: FAILED`);
    }
  }
}
process.exit(failed === 0 ? 0 : 1);
