/**
 * Full-stack helpers: `npm start` (scripts/start.mjs) in its own process on a temporary data directory,
 * and `pos-terminal` commands against it. Real processes, a real socat pseudo-terminal.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { z } from 'zod';
import { SnapshotSchema, type Command, type Snapshot } from '../../../desktop/src/api/contract';
import { snapshotEventSplitter } from '../../../desktop/test/browser-shell/helpers';

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

export interface StartOptions {
  /** Extra environment for `npm start` and the children it starts (e.g. POS_DEV_TICKET_LIFETIME_S). */
  readonly env?: Record<string, string>;
  /** Everything `npm start` writes, as it comes (its children write to DIR/logs; the ready line included). */
  readonly onOutput?: (stream: 'stdout' | 'stderr', text: string) => void;
}

/** Starts the system on `dir` (default: a fresh temporary directory). */
export async function startSystem(existing?: string, opts: StartOptions = {}): Promise<System> {
  const dir = existing ?? mkdtempSync(join(tmpdir(), 'pos-fullstack-'));
  const { ready, sys } = await spawnStart([process.execPath, START, '--data-dir', dir, '--headless'], dir, {
    ...opts,
    madeDir: existing === undefined,
  });
  return { ...sys, ready: ReadySchema.parse(ready) };
}

/**
 * Runs `argv` (npm start, maybe behind a prefix) on `dir` and reads its ready line; the ready line is
 * returned as parsed JSON, for the caller's schema. A start that fails removes `dir` when `madeDir`.
 */
async function spawnStart(
  argv: readonly string[],
  dir: string,
  opts: StartOptions & { readonly madeDir: boolean },
): Promise<{ ready: unknown; sys: Omit<System, 'ready'> }> {
  const child = spawn(argv[0] ?? process.execPath, argv.slice(1), {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    // The dashboard and renderer builds are not these tests' business (the back-end serves its not-built page).
    env: cleanEnv({ ...opts.env, POS_START_SKIP_SETUP: '1', POS_START_SKIP_UI_BUILD: '1' }),
  });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const onOutput = opts.onOutput;
  if (onOutput !== undefined) {
    child.stdout?.on('data', (b: Buffer) => onOutput('stdout', b.toString('utf8')));
    child.stderr?.on('data', (b: Buffer) => onOutput('stderr', b.toString('utf8')));
  }
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`npm start exited (${code}): ${stderr.slice(-2000)}`)));
  }).catch((e: unknown) => {
    // A start that failed leaves nothing behind (a directory the caller made for it).
    if (opts.madeDir) rmSync(dir, { recursive: true, force: true });
    throw e;
  });
  lines.on('line', () => undefined);
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  return {
    ready: JSON.parse(first) as unknown,
    sys: {
      dir,
      child,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        return exited;
      },
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    },
  };
}

/** The ready line of `npm start` with the browser shell: `terminal` is the shell's URL with its bootstrap code. */
export const ShellReadySchema = z.object({
  event: z.literal('ready'),
  dataDir: z.string(),
  backend: z.url(),
  terminal: z.string().regex(/^http:\/\/127\.0\.0\.1:\d{1,5}\/#c=[A-Za-z0-9_-]{43}$/),
  simulator: z.object({ control: z.url(), path: z.string() }),
  dashboard: z.object({ url: z.url(), username: z.string(), password: z.string() }),
});

/** `npm start` with the browser shell: the system, its shell ready line, the shell's origin and bootstrap code. */
export interface ShellSystem {
  /** The system (its `ready.terminal` null: the shell's URL is `shellReady.terminal`). */
  readonly sys: System;
  readonly shellReady: z.infer<typeof ShellReadySchema>;
  readonly origin: string;
  /** The single-use bootstrap code in the shell URL's fragment. */
  readonly code: string;
}

/**
 * Starts `npm start` with the browser shell (no --headless) on a fresh temporary directory, behind
 * `prefix` (`fullStackMachine().prefix`: the terminal's core runs under npm start here). A start that
 * fails removes the directory.
 */
export async function startShellSystem(
  prefix: readonly string[],
  opts: Pick<StartOptions, 'env'> = {},
): Promise<ShellSystem> {
  const dir = mkdtempSync(join(tmpdir(), 'pos-fullstack-ui-'));
  const started = await spawnStart([...prefix, process.execPath, START, '--data-dir', dir], dir, {
    ...opts,
    madeDir: true,
  });
  const shellReady = ShellReadySchema.parse(started.ready);
  const u = new URL(shellReady.terminal);
  return {
    sys: { ...started.sys, ready: { ...shellReady, terminal: null } },
    shellReady,
    origin: u.origin,
    code: u.hash.replace(/^#c=/, ''),
  };
}

/** `POST /api/session` with the bootstrap code from the shell's own origin, as its page does. */
export function exchangeShellCode(origin: string, code: string): Promise<Response> {
  return fetch(`${origin}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin },
    body: JSON.stringify({ code }),
  });
}

/** The UI API of a browser shell, as the renderer's browser transport uses it. */
export interface ShellApi {
  /** The launch secret the bootstrap code was exchanged for. */
  readonly key: string;
  /** The HTTP status of `GET /api/events`. */
  readonly eventsStatus: number;
  /** `POST /api/command`: the answer's JSON. */
  readonly invoke: (c: Command) => Promise<unknown>;
  /** The newest snapshot the event stream delivered. */
  readonly last: () => Snapshot | undefined;
  /** Ends the event stream. */
  readonly stopEvents: () => void;
}

/**
 * Exchanges the shell's bootstrap code (asserts a 200) and opens its event stream, each `snapshot`
 * event parsed with the UI API's schema.
 */
export async function openShellApi(shell: ShellSystem): Promise<ShellApi> {
  const { origin } = shell;
  const exchanged = await exchangeShellCode(origin, shell.code);
  expect(exchanged.status).toBe(200);
  const key = z.object({ key: z.string() }).parse(await exchanged.json()).key;
  const snaps: Snapshot[] = [];
  const events = new AbortController();
  const res = await fetch(`${origin}/api/events`, {
    headers: { 'x-pos-shell-key': key, accept: 'text/event-stream' },
    signal: events.signal,
  });
  const body = res.body;
  if (body === null) throw new Error('no event stream');
  void (async () => {
    const decoder = new TextDecoder();
    const split = snapshotEventSplitter();
    try {
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        for (const data of split.push(decoder.decode(chunk, { stream: true })))
          snaps.push(SnapshotSchema.parse(JSON.parse(data)));
      }
    } catch {
      // Aborted at the end.
    }
  })();
  return {
    key,
    eventsStatus: res.status,
    invoke: async (c) => {
      const r = await fetch(`${origin}/api/command`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-pos-shell-key': key },
        body: JSON.stringify(c),
      });
      return r.json();
    },
    last: () => snaps.at(-1),
    stopEvents: () => events.abort(),
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
  /** SIGKILL to the whole process group (a namespace wrapper and what it started). */
  kill(): void;
  /** Resolves with the JSON result line and the exit code. */
  readonly result: Promise<{ line: Record<string, unknown>; code: number | null; stderr: string }>;
  /** Resolves when stderr contains this text. */
  stderrHas(text: string): Promise<void>;
}

export interface RunOptions {
  /** Another `pos-terminal` entry (a copy of the app: see `copyApp`). */
  readonly bin?: string;
}

export function runTerminal(
  prefix: readonly string[],
  args: readonly string[],
  opts: RunOptions = {},
): TerminalRun {
  const cmd = [...prefix, process.execPath, opts.bin ?? TERMINAL_BIN, ...args];
  const child = spawn(cmd[0] ?? process.execPath, cmd.slice(1), {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: cleanEnv(),
    detached: true,
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
    kill: () => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
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

/** A request to the reader simulator's control API (POST /card, /fault; GET /status). */
export async function simulator(
  sys: System,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(sys.ready.simulator.control + path, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: res.status, json: await res.json().catch(() => undefined) };
}

/** Polls `cond` every 50 ms until it holds; throws after `ms` (a safety net, never a timed assertion). */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  ms = 30_000,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A request the terminal sent to the back-end, as the recording proxy saw it. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * Splits the bytes a client sent on one HTTP/1.1 connection into requests (Content-Length bodies, as
 * the terminal's fetch sends them). Stops at a WebSocket upgrade or at anything it does not understand.
 */
export function parseRequests(bytes: Buffer): RecordedRequest[] {
  const out: RecordedRequest[] = [];
  let at = 0;
  for (;;) {
    const end = bytes.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) return out;
    const lines = bytes.subarray(at, end).toString('latin1').split('\r\n');
    const [method, path] = (lines[0] ?? '').split(' ');
    if (method === undefined || path === undefined) return out;
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const length = Number(headers['content-length'] ?? '0');
    if (!Number.isInteger(length) || headers['transfer-encoding'] !== undefined) return out;
    const bodyEnd = end + 4 + length;
    if (bodyEnd > bytes.length) return out;
    out.push({ method, path, headers, body: bytes.subarray(end + 4, bodyEnd).toString('utf8') });
    if (headers['upgrade'] !== undefined) return out;
    at = bodyEnd;
  }
}

/**
 * The terminal's own network: `pos-terminal` runs in a new network namespace (`unshare -n`, root) whose
 * only way out is a socat listener on the back-end's own address and port (so the URL in its key file
 * and the Pos-Proof `htu` stay exactly what they are), started in that namespace with `nsenter`, that
 * hands each connection to a Unix socket, where this proxy records what the terminal sends and passes it
 * on to the real back-end. `down()` makes the back-end unreachable for the terminal as a stopped server
 * is: the listener goes (a new connection is refused) and every open connection is cut; `up()` brings it
 * back. The terminal is not changed in any way: this is a wire a failing network or an attacker could
 * sit on.
 */
export interface BackendLink {
  /** `runTerminal` in its own network namespace wired to this link (`prefix`: e.g. `physicalMachine()`). */
  run(prefix: readonly string[], args: readonly string[], opts?: RunOptions): TerminalRun;
  /** Every request the terminal sent so far, in order. */
  requests(): RecordedRequest[];
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/** Whether `unshare -n` and `nsenter` work here (root); the reason otherwise. */
export function canIsolateNetwork(): { ok: true } | { ok: false; skip: string } {
  const probe = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && command -v nsenter'], {
    encoding: 'utf8',
  });
  return probe.status === 0
    ? { ok: true }
    : {
        ok: false,
        skip: 'the terminal cannot be given its own network namespace here (unshare -n, ip and nsenter need root), so its link to the back-end cannot be cut or recorded',
      };
}

export async function startBackendLink(sys: System): Promise<BackendLink> {
  const target = new URL(sys.ready.backend);
  const port = Number(target.port);
  const dir = mkdtempSync(join(tmpdir(), 'pos-link-'));
  const sock = join(dir, 'backend.sock');
  const conns: Buffer[][] = [];
  const open = new Set<Socket>();
  /** Live namespaces (by the pid of the process that made them) and their socat listener. */
  const spaces = new Map<number, { listener?: ChildProcess | undefined }>();
  let isDown = false;
  const server: Server = createServer((client) => {
    if (isDown) {
      client.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    conns.push(chunks);
    const upstream = createConnection({ host: target.hostname, port });
    open.add(client);
    open.add(upstream);
    const gone = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('data', (b: Buffer) => {
      chunks.push(b);
      upstream.write(b);
    });
    upstream.on('data', (b: Buffer) => client.write(b));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('close', gone);
    upstream.on('close', gone);
    client.on('error', gone);
    upstream.on('error', gone);
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(sock, () => res());
  });

  const listen = async (pid: number): Promise<void> => {
    const space = spaces.get(pid);
    if (space === undefined || space.listener !== undefined) return;
    const listener = spawn(
      'nsenter',
      [
        '-t',
        String(pid),
        '-n',
        'socat',
        `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`,
        `UNIX-CONNECT:${sock}`,
      ],
      { stdio: 'ignore' },
    );
    space.listener = listener;
    // Listening once a connection goes through (it reaches the proxy as an empty connection).
    await waitFor(
      () =>
        listener.exitCode !== null ||
        spawnSync('nsenter', [
          '-t',
          String(pid),
          '-n',
          'socat',
          '-u',
          'OPEN:/dev/null',
          `TCP:127.0.0.1:${port}`,
        ]).status === 0,
      'the socat listener in the namespace',
      10_000,
    );
  };
  const unlisten = async (space: { listener?: ChildProcess | undefined }): Promise<void> => {
    const l = space.listener;
    space.listener = undefined;
    if (l === undefined || l.exitCode !== null || l.signalCode !== null) return;
    const exited = new Promise((res) => l.once('exit', res));
    l.kill('SIGTERM');
    await exited;
  };

  return {
    run: (prefix, args, opts) => {
      // In the namespace: loopback up, say so (a file named by the namespace's pid), wait until the
      // listener is there, then become the command.
      const script = [
        'ip link set lo up || exit 97',
        `: > ${dir}/ns.$$`,
        'i=0',
        `until [ -e ${dir}/go.$$ ]; do i=$((i+1)); [ $i -gt 1000 ] && exit 98; sleep 0.02; done`,
        'exec "$@"',
      ].join('\n');
      const run = runTerminal(['unshare', '-n', 'sh', '-c', script, 'sh', ...prefix], args, opts);
      const pid = run.child.pid;
      if (pid !== undefined) {
        spaces.set(pid, {});
        run.child.once('exit', () => {
          const space = spaces.get(pid);
          spaces.delete(pid);
          if (space !== undefined) void unlisten(space);
        });
        void (async () => {
          await waitFor(
            () => existsSync(join(dir, `ns.${pid}`)) || !spaces.has(pid),
            'the namespace',
            10_000,
          );
          if (!isDown) await listen(pid);
          appendFileSync(join(dir, `go.${pid}`), '');
        })().catch(() => run.kill());
      }
      return run;
    },
    requests: () => conns.flatMap((c) => parseRequests(Buffer.concat(c))),
    down: async () => {
      isDown = true;
      await Promise.all([...spaces.values()].map(unlisten));
      for (const s of open) s.destroy();
      open.clear();
    },
    up: async () => {
      isDown = false;
      await Promise.all([...spaces.keys()].map(listen));
    },
    close: async () => {
      await Promise.all([...spaces.values()].map(unlisten));
      for (const s of open) s.destroy();
      await new Promise<void>((res) => server.close(() => res()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A copy of the terminal app (desktop/bin, desktop/src, desktop/package.json) in a temporary directory
 * whose node_modules is the project's, with `change` applied to the copy's src directory. The code hash
 * covers the app's src directory, so a changed copy measures another code hash; nothing in the
 * terminal knows it is a copy. Returns the copy's `pos-terminal` entry and a clean-up.
 */
export function copyApp(change: (srcDir: string) => void): { bin: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'pos-app-copy-'));
  const desktop = join(ROOT, 'desktop');
  mkdirSync(join(dir, 'desktop'));
  for (const part of ['bin', 'src', 'package.json'])
    cpSync(join(desktop, part), join(dir, 'desktop', part), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  change(join(dir, 'desktop', 'src'));
  return {
    bin: join(dir, 'desktop', 'bin', 'pos-terminal.js'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Appends one byte (a newline) to a file: the smallest change to the app's code. */
export function appendOneByte(file: string): void {
  appendFileSync(file, '\n');
}

/**
 * Whether the full-stack tests can run on this machine, and how to run `pos-terminal` there:
 * `skipReason` says why not (socat missing, or a VM that cannot pass for a physical machine,
 * `physicalMachine`); `prefix` goes before the terminal's command.
 */
export function fullStackMachine(): { readonly skipReason: string | undefined; readonly prefix: string[] } {
  const machine = physicalMachine();
  return {
    skipReason: !HAVE_SOCAT
      ? 'socat is not installed (apt-get install socat)'
      : 'skip' in machine
        ? machine.skip
        : undefined,
    prefix: 'prefix' in machine ? machine.prefix : [],
  };
}

/** The transactions the back-end holds for the system's terminal (operator API; asserts a 200). */
export async function storedTransactions(sys: System): Promise<unknown[]> {
  const r = await admin(sys, 'GET', `/v1/terminals/${terminalId(sys)}/transactions`);
  expect(r.status).toBe(200);
  return (r.json as { transactions?: unknown[] }).transactions ?? [];
}

/** How many transactions the back-end holds for the system's terminal (`storedTransactions`). */
export async function transactionCount(sys: System): Promise<number> {
  return (await storedTransactions(sys)).length;
}

/** The reader simulator's events of one kind (`readerEvents`). */
export function eventsNamed(events: Record<string, unknown>[], name: string): Record<string, unknown>[] {
  return events.filter((e) => e['event'] === name);
}

/**
 * A full-stack file's teardown: kills the terminal runs left, clears the simulator's fault if asked
 * (failure ignored), stops npm start and removes its data directory. Nothing to do before a start.
 */
export async function stopSystem(
  sys: System | undefined,
  runs: readonly TerminalRun[],
  opts: { readonly clearFault?: boolean } = {},
): Promise<void> {
  for (const r of runs) r.kill();
  if (sys === undefined) return;
  if (opts.clearFault === true)
    await simulator(sys, 'POST', '/fault', { fault: 'clear' }).catch(() => undefined);
  await sys.stop();
  sys.cleanup();
}

/** Waits until the sale shown by the UI API (`last`: its newest snapshot) opens its PIN pad or ends. */
export function padOrResult(last: () => Snapshot | undefined): Promise<void> {
  return waitFor(
    () => last()?.sale.pad !== undefined || last()?.sale.state === 'result',
    'the PIN pad or a result',
    60_000,
  );
}

/**
 * Over the UI API: types `digits` on the open PIN pad by their positions in its `layout`, then OK
 * (each command asserted to be taken, the dots counted), and waits for the sale's result.
 */
export async function enterPinByPositions(
  api: Pick<ShellApi, 'invoke' | 'last'>,
  layout: readonly number[],
  digits: readonly number[],
): Promise<void> {
  for (const d of digits)
    expect(await api.invoke({ cmd: 'pin.key', position: layout.indexOf(d) })).toEqual({ ok: true });
  await waitFor(() => api.last()?.sale.pad?.digits === digits.length, `${digits.length} dots`);
  expect(await api.invoke({ cmd: 'pin.ok' })).toEqual({ ok: true });
  await waitFor(() => api.last()?.sale.state === 'result', 'the result', 60_000);
}
