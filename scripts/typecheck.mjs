#!/usr/bin/env node
// Type-checks every workspace: each tsconfig*.json below a workspace folder, one tsc run each.
// shared/tsconfig.json has no Node or DOM types, so shared/src cannot reach for either.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { workspaces } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
let failed = 0;
for (const ws of workspaces) {
  const dir = join(root, ws);
  if (!existsSync(dir)) continue;
  for (const file of readdirSync(dir)
    .filter((f) => /^tsconfig.*\.json$/.test(f))
    .sort()) {
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
