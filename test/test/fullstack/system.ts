/**
 * Full-stack helpers: `npm start` (scripts/start.mjs) in its own process on a temporary data directory,
 * and `pos-terminal` commands against it. Real processes, a real socat pseudo-terminal.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const START = join(ROOT, 'scripts', 'start.mjs');
const TERMINAL_BIN = join(ROOT, 'desktop', 'bin', 'pos-terminal.js');

export const HAVE_SOCAT = ['/usr/bin/socat', '/usr/local/bin/socat', '/bin/socat'].some((p) => existsSync(p));

export const ReadySchema = z.strictObject({
  event: z.literal('ready'),
  dataDir: z.string(),
  backend: z.url(),
  dashboard: z.strictObject({ url: z.url(), username: z.string(), password: z.string().min(12) }),
  terminal: z.null(),
  simulator: z.strictObject({ control: z.url(), path: z.string() }),
});
export type Ready = z.infer<typeof ReadySchema>;

/** A child's environment without what a test runner adds that the terminal's collectors would flag. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, POS_LOG_LEVEL: 'warn', ...extra };
  for (const k of [
    'NODE_OPTIONS',
    'LD_PRELOAD',
    'LD_LIBRARY_PATH',
    'NODE_PATH',
    'SSH_CONNECTION',
    'SSH_CLIENT',
    'SSH_TTY',
  ])
    delete env[k];
  return env;
}

export interface System {
  readonly ready: Ready;
  readonly dir: string;
  readonly child: ChildProcess;
  /** SIGTERM, then its exit code. */
  stop(): Promise<number | null>;
  cleanup(): void;
}

/** Starts the system on `dir` (default: a fresh temporary directory). */
export async function startSystem(existing?: string): Promise<System> {
  const dir = existing ?? mkdtempSync(join(tmpdir(), 'pos-fullstack-'));
  const child = spawn(process.execPath, [START, '--data-dir', dir, '--headless'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: cleanEnv({ POS_START_SKIP_SETUP: '1' }),
  });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`npm start exited (${code}): ${stderr.slice(-2000)}`)));
  });
  lines.on('line', () => undefined);
  const ready = ReadySchema.parse(JSON.parse(first));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  return {
    ready,
    dir,
    child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * How to run the terminal so that the development policy lets it take a PIN. The attestation's
 * environment verifier warns on a virtual machine (DMI strings naming a hypervisor), and a warning means
 * no PIN-entry ticket. Where the DMI strings cannot be read at all (a container, as in CI) the hint is
 * reported `unknown`, which the development policy (dev-2) tolerates: the terminal runs as it is, the
 * path a developer's `npm start` takes. On a VM whose DMI strings name a hypervisor, the terminal runs in
 * its own mount namespace whose `/sys/class` holds the DMI strings of a laptop: a simulated physical
 * machine, as the reader simulator is a simulated reader. Skipped (with the reason) when neither works.
 */
export function physicalMachine(): { prefix: string[] } | { skip: string } {
  const vendorFile = '/sys/class/dmi/id/sys_vendor';
  if (!existsSync(vendorFile)) return { prefix: [] };
  {
    const v = readFileSync(vendorFile, 'utf8').toLowerCase();
    if (
      !/qemu|kvm|vmware|virtualbox|innotek|xen|bochs|parallels|bhyve|hyper-v|virtual|amazon|google|openstack|firecracker/.test(
        v,
      )
    )
      return { prefix: [] };
  }
  const probe = spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs none /sys/class'], {
    encoding: 'utf8',
  });
  if (probe.status !== 0)
    return {
      skip: 'this machine is a VM (its DMI strings name a hypervisor, so the terminal gets no PIN entry, by design) and cannot simulate a physical one (unshare -m and mount need root)',
    };
  const script =
    'mount -t tmpfs none /sys/class && mkdir -p /sys/class/dmi/id && cd /sys/class/dmi/id && ' +
    'printf "Framework\\n" > sys_vendor && printf "Laptop 13\\n" > product_name && printf "INSYDE Corp.\\n" > bios_vendor && ' +
    'exec "$@"';
  return { prefix: ['unshare', '-m', 'sh', '-c', script, 'sh'] };
}

export interface TerminalRun {
  readonly child: ChildProcess;
  /** Resolves with the JSON result line and the exit code. */
  readonly result: Promise<{ line: Record<string, unknown>; code: number | null; stderr: string }>;
  /** Resolves when stderr contains this text. */
  stderrHas(text: string): Promise<void>;
}

export function runTerminal(prefix: readonly string[], args: readonly string[]): TerminalRun {
  const cmd = [...prefix, process.execPath, TERMINAL_BIN, ...args];
  const child = spawn(cmd[0] ?? process.execPath, cmd.slice(1), {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: cleanEnv(),
  });
  let stdout = '';
  let stderr = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString('utf8');
    for (const w of waiters.splice(0)) {
      if (stderr.includes(w.text)) w.resolve();
      else waiters.push(w);
    }
  });
  const result = new Promise<{ line: Record<string, unknown>; code: number | null; stderr: string }>(
    (resolve, reject) => {
      child.once('exit', (code) => {
        const last = stdout.trim().split('\n').pop() ?? '';
        try {
          resolve({ line: JSON.parse(last) as Record<string, unknown>, code, stderr });
        } catch {
          reject(new Error(`pos-terminal printed no JSON line (exit ${code}): ${stderr.slice(-1500)}`));
        }
      });
    },
  );
  return {
    child,
    result,
    stderrHas: (text) =>
      stderr.includes(text)
        ? Promise.resolve()
        : new Promise((resolve) => {
            waiters.push({ text, resolve });
          }),
  };
}

export async function admin(
  sys: System,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const token = readFileSync(join(sys.dir, 'backend', 'admin-token'), 'utf8').trim();
  const res = await fetch(sys.ready.backend + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: await res.json().catch(() => undefined) };
}

/** The reader simulator's events (one JSON object a line) since the system started. */
export function readerEvents(sys: System): Record<string, unknown>[] {
  const path = join(sys.dir, 'logs', 'reader.log');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function terminalId(sys: System): string {
  const f = JSON.parse(readFileSync(join(sys.dir, 'terminal', 'terminal.json'), 'utf8')) as {
    config?: { terminalId?: string };
  };
  const id = f.config?.terminalId;
  if (id === undefined) throw new Error('the terminal is not enrolled');
  return id;
}
