/**
 * Helpers of the `pos-backend` CLI tests: captured output, temporary directories removed after each
 * test, the service started in-process, and the real bin run to its exit.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { runCli, type CliIo } from '../src/cli/main';

/** The real `pos-backend` bin. */
export const BIN = fileURLToPath(new URL('../bin/pos-backend.js', import.meta.url));

/** A stack trace line in output: the CLI prints coded lines, never a stack. */
export const STACK_RE = /\n\s+at /;

export type CapturedIo = CliIo & { outLines: string[]; errLines: string[] };

/** An io that keeps every line (stderr is not a terminal). */
export function capture(): CapturedIo {
  const outLines: string[] = [];
  const errLines: string[] = [];
  return { outLines, errLines, out: (l) => outLines.push(l), err: (l) => errLines.push(l), errIsTty: false };
}

/**
 * Call at the top of a test file: returns a maker of temporary directories (`root`, and `dataDir` =
 * `root/data`, not created) that are removed after each test.
 */
export function useTempRoots(prefix: string): () => { root: string; dataDir: string } {
  const roots: string[] = [];
  afterEach(() => {
    for (const d of roots.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const root = mkdtempSync(join(tmpdir(), prefix));
    roots.push(root);
    return { root, dataDir: join(root, 'data') };
  };
}

export interface Started {
  readonly code: number;
  /** The listening line's URL, when it started. */
  readonly url?: string;
  readonly out: string[];
  readonly err: string[];
  stop(): Promise<void>;
}

/** Starts the service in-process on a free port (`--port 0` first, so args may override it). */
export async function startService(args: readonly string[], env: NodeJS.ProcessEnv): Promise<Started> {
  const io = capture();
  const run = await runCli(['--port', '0', ...args], io, env);
  const first = io.outLines[0];
  const url = first === undefined ? undefined : (JSON.parse(first) as { url: string }).url;
  return {
    code: run.code,
    ...(url === undefined ? {} : { url }),
    out: io.outLines,
    err: io.errLines,
    stop: run.stop ?? (() => Promise.resolve()),
  };
}

/** Starts the service and stops it again: the exit code and what it printed. */
export async function startStop(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; out: string[]; err: string[] }> {
  const run = await startService(args, env);
  await run.stop();
  return { code: run.code, out: run.out, err: run.err };
}

/**
 * Runs the real bin (`--port 0` first) to its exit, with none of the caller's database, master key or
 * metrics token settings and silent logs unless `env` sets them.
 */
export async function runBin(
  args: readonly string[],
  env: Record<string, string | undefined>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, '--port', '0', ...args], {
    env: {
      ...process.env,
      DATABASE_URL: undefined,
      POS_MASTER_KEY: undefined,
      POS_MASTER_KEY_FILE: undefined,
      POS_METRICS_TOKEN_FILE: undefined,
      POS_LOG_LEVEL: 'silent',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  return { code, stdout, stderr };
}
