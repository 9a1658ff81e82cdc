/**
 * The benchmark tests' one way to run `npm run bench -- ...` (the runner under tsx, from the repository
 * root) and read its stdout as JSON lines, and to check an option the runner refuses.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

export function bench(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ['--import', 'tsx', 'tools/src/bench/run.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 240_000,
  });
}

/** Every stdout line, parsed (each is one JSON object). */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The options are refused with exit 2 and `bench: <code>: <message>`, before anything is printed. */
export function expectRefused(args: readonly string[], code: string, message: RegExp): void {
  const r = bench(...args);
  expect(r.status).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr).toContain(`bench: ${code}: `);
  expect(r.stderr).toMatch(message);
}
