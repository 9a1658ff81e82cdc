#!/usr/bin/env node
// `npm test`: set-up, then type check, lint and every test of every workspace.
// Ends with one line `tests: N passed, N failed[, N skipped]` (the two checks count as tests there)
// and exits non-zero if anything failed.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { checkNode, ensureNpmDeps, ensureSystemPackages, root } from './bootstrap.mjs';

checkNode();
ensureNpmDeps();
ensureSystemPackages();

const passthrough = process.argv.slice(2);
const results = [];

function step(name, cmd, args) {
  process.stdout.write(`\n== ${name} ==\n`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  const ok = r.status === 0;
  results.push({ name, ok });
  process.stdout.write(`${name}: ${ok ? 'ok' : 'FAILED'}\n`);
  return ok;
}

step('typecheck', process.execPath, [join(root, 'scripts', 'typecheck.mjs')]);
step('lint', 'npm', ['run', '--silent', 'lint']);

const report = join(root, '.vitest-report.json');
rmSync(report, { force: true });
process.stdout.write('\n== tests ==\n');
const vitest = spawnSync(
  process.execPath,
  [
    join(root, 'node_modules', 'vitest', 'vitest.mjs'),
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...passthrough,
  ],
  { cwd: root, stdio: 'inherit' },
);

let passed = results.filter((r) => r.ok).length;
let failed = results.filter((r) => !r.ok).length;
let skipped = 0;
if (existsSync(report)) {
  const j = JSON.parse(readFileSync(report, 'utf8'));
  passed += j.numPassedTests;
  failed += j.numFailedTests;
  skipped += j.numPendingTests + j.numTodoTests;
  // A suite that fails to load (syntax error, failing import) has no failed test but is a failure.
  if (j.numFailedTestSuites > 0 && j.numFailedTests === 0) failed += j.numFailedTestSuites;
}
if (vitest.status !== 0 && failed === 0) failed = 1; // vitest crashed or wrote no report

const failedSteps = results.filter((r) => !r.ok).map((r) => r.name);
process.stdout.write('\n');
if (failedSteps.length > 0) process.stdout.write(`failed checks: ${failedSteps.join(', ')}\n`);
process.stdout.write(
  `tests: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}\n`,
);
process.exit(failed === 0 && vitest.status === 0 ? 0 : 1);
