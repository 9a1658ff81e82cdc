/**
 * `npm run bench -- halt [--terminals N] [--instances K] [--database-url URL]`: N terminals hold
 * authenticated push connections (WebSocket, device-key Pos-Proof at the upgrade) spread over K
 * `pos-backend` processes; an operator halts the fleet through process 1; the bench measures, per
 * terminal, the time from sending the halt request to receiving the halt message.
 *
 * K = 1 runs on SQLite (or PostgreSQL with --database-url); K > 1 needs PostgreSQL (--database-url or
 * DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test) and uses a fresh schema, dropped
 * afterwards; the processes share it and its LISTEN/NOTIFY bus.
 *
 * Bench-only enrollment: the N terminals (device keys made here) are written directly to the store
 * before the processes start, instead of N enrollments through the API (which would take minutes
 * at 10,000 and measure enrollment, not halts).
 *
 * The clients share this one process's event loop, so a receive time includes the wait for the
 * generator's own turn: the numbers are an upper bound of the delivery latency.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { z } from 'zod';
import { jwkThumbprint, type P256Jwk } from '@pos/shared';
import { openPostgresStore } from '@pos/backend/store/postgres';
import { openSqliteStore } from '@pos/backend/store/sqlite';
import type { Store } from '@pos/backend/store/types';
import type { Benchmark } from './measure';

const ISSUER = 'http://bench-halt.local';
const DEFAULT_PG = 'postgres://postgres@127.0.0.1:5432/test';

interface Terminal {
  readonly id: string;
  readonly key: KeyObject;
  readonly jwk: P256Jwk;
}

interface Server {
  readonly url: string;
  readonly child: ChildProcess;
}

/** Messages from a client process (tools/src/bench/halt-clients.ts). */
const ChildMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('opened'), opened: z.number().int(), retried: z.number().int() }),
  z.strictObject({ type: z.literal('done') }),
  z.strictObject({ type: z.literal('received'), at: z.array(z.number().nullable()) }),
]);

function makeTerminals(n: number): Terminal[] {
  return Array.from({ length: n }, (_, i) => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const j = pair.publicKey.export({ format: 'jwk' }) as { x: string; y: string };
    return {
      id: `ter_bench_${String(i).padStart(6, '0')}`,
      key: pair.privateKey,
      jwk: { kty: 'EC', crv: 'P-256', x: j.x, y: j.y },
    };
  });
}

/** The bench-only enrollment: one merchant, N active terminals, written straight to the store. */
async function seed(store: Store, terminals: readonly Terminal[]): Promise<void> {
  const now = Date.now();
  await store.createMerchant({ id: 'mer_bench', name: 'Halt bench', createdAt: now });
  for (const t of terminals) {
    await store.createTerminal({
      id: t.id,
      merchantId: 'mer_bench',
      deviceJwk: JSON.stringify(t.jwk),
      deviceJkt: jwkThumbprint(t.jwk),
      readerSerial: `RDR-${t.id}`,
      lastCounter: 0,
      state: 'active',
      stateReason: null,
      intervalS: 3600,
      createdAt: now,
      lastAttestedAt: now,
    });
  }
  await store.close();
}

function startServer(
  dataDir: string,
  masterKey: string,
  db: string[],
  cpuProfDir: string | undefined,
): Promise<Server> {
  const bin = fileURLToPath(new URL('../../../backend/bin/pos-backend.js', import.meta.url));
  const args = [
    // `--cpu-prof DIR`: each server writes a V8 CPU profile there when it exits.
    ...(cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfDir]),
    bin,
    '--data-dir',
    dataDir,
    '--port',
    '0',
    '--rate-limit',
    '0',
    '--dev',
    '--issuer',
    ISSUER,
    ...db,
  ];
  const child = spawn(process.execPath, args, {
    // The bench reads /metrics without a scrape token: a token file in the caller's environment is not
    // passed on.
    env: {
      ...process.env,
      POS_MASTER_KEY: masterKey,
      POS_LOG_LEVEL: 'warn',
      POS_METRICS_TOKEN_FILE: undefined,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      const line = out.split('\n')[0];
      if (out.includes('\n') && line !== undefined)
        resolve({ url: (JSON.parse(line) as { url: string }).url, child });
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString('utf8');
    });
    child.once('exit', (code) =>
      reject(new Error(`pos-backend exited (${String(code)}): ${err.slice(0, 500)}`)),
    );
  });
}

async function connectedCount(server: Server): Promise<number> {
  const body = await (await fetch(`${server.url}/metrics`)).text();
  const m = /^pos_push_connections (\d+)/m.exec(body);
  return m?.[1] === undefined ? 0 : Number(m[1]);
}

async function waitFor(
  label: string,
  check: () => Promise<boolean> | boolean,
  limitMs: number,
): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`bench halt: timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const percentile = (sorted: readonly number[], p: number): number =>
  sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN);

export const haltBench: Benchmark = {
  name: 'halt',
  usesSeconds: false,
  summary: 'fleet halt to N push-connected terminals over K processes: delivery p50/p99',
  async run(ctx) {
    const n = ctx.options['terminals'] === undefined ? 1000 : Number(ctx.options['terminals']);
    const k = ctx.options['instances'] === undefined ? 1 : Number(ctx.options['instances']);
    if (!Number.isInteger(n) || n < 1 || n > 50_000)
      throw new Error('--terminals must be an integer 1-50000');
    if (!Number.isInteger(k) || k < 1 || k > 16) throw new Error('--instances must be an integer 1-16');
    const c = ctx.options['client-procs'] === undefined ? 2 : Number(ctx.options['client-procs']);
    if (!Number.isInteger(c) || c < 1 || c > 16) throw new Error('--client-procs must be an integer 1-16');
    const urlOption = ctx.options['database-url'];
    const pgUrl =
      typeof urlOption === 'string'
        ? urlOption
        : k > 1
          ? (process.env['DATABASE_URL'] ?? DEFAULT_PG)
          : undefined;
    const schema = `bench_halt_${randomBytes(4).toString('hex')}`;
    const dir = mkdtempSync(join(tmpdir(), 'pos-bench-halt-'));
    const masterKey = randomBytes(32).toString('base64url');
    const servers: Server[] = [];
    const clients: { child: ChildProcess; indexes: number[] }[] = [];
    try {
      process.stderr.write(
        `bench halt: ${n} terminals, ${k} process(es), ${pgUrl === undefined ? 'SQLite' : 'PostgreSQL'}\n`,
      );
      const terminals = makeTerminals(n);
      const dataDirs = Array.from({ length: k }, (_, i) => join(dir, `p${i}`));
      for (const d of dataDirs) mkdirSync(d, { recursive: true });
      const db = pgUrl === undefined ? [] : ['--database-url', pgUrl, '--database-schema', schema];
      await seed(
        pgUrl === undefined
          ? openSqliteStore({ path: join(dataDirs[0] ?? dir, 'backend.sqlite') })
          : await openPostgresStore({ url: pgUrl, schema }),
        terminals,
      );
      // Process 1 first: it writes the admin token once for the database.
      const prof = typeof ctx.options['cpu-prof'] === 'string' ? ctx.options['cpu-prof'] : undefined;
      servers.push(await startServer(dataDirs[0] ?? dir, masterKey, db, prof));
      for (let i = 1; i < k; i++) servers.push(await startServer(dataDirs[i] ?? dir, masterKey, db, prof));
      // The first start writes the admin token just after its listening line.
      let adminToken: string | undefined;
      await waitFor(
        'the admin token',
        () => {
          try {
            adminToken = /pos_admin_[A-Za-z0-9_-]{43}/.exec(
              readFileSync(join(dataDirs[0] ?? dir, 'admin-token'), 'utf8'),
            )?.[0];
          } catch {
            // not written yet
          }
          return adminToken !== undefined;
        },
        10_000,
      );
      if (adminToken === undefined) throw new Error('no admin token written');

      // The clients: `--client-procs` forked processes (default 2), each holding its share of the
      // terminals' connections (terminal i on process i % K).
      const shares = Array.from({ length: c }, () => [] as number[]);
      for (let i = 0; i < n; i++) shares[i % c]?.push(i);
      for (let j = 0; j < c; j++) {
        const child = fork(fileURLToPath(new URL('./halt-clients.ts', import.meta.url)), [], {
          execArgv: ['--import', 'tsx'],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        clients.push({ child, indexes: shares[j] ?? [] });
      }
      const opened = await Promise.all(
        clients.map(
          (cl) =>
            new Promise<number>((resolve, reject) => {
              cl.child.once('exit', (code) => reject(new Error(`bench client exited (${String(code)})`)));
              const onMessage = (raw: unknown): void => {
                const m = ChildMessageSchema.safeParse(raw);
                if (!m.success || m.data.type !== 'opened') return;
                cl.child.off('message', onMessage);
                if (m.data.retried > 0)
                  process.stderr.write(`bench halt: ${m.data.retried} handshakes retried\n`);
                resolve(m.data.opened);
              };
              cl.child.on('message', onMessage);
              // Terminal i connects to server i % K.
              cl.child.send({
                type: 'open',
                urls: servers.map((s) => s.url),
                issuer: ISSUER,
                terminals: cl.indexes.map((i) => ({
                  id: terminals[i]?.id ?? '',
                  key: terminals[i]?.key.export({ format: 'pem', type: 'pkcs8' }).toString() ?? '',
                  server: i % k,
                })),
              });
            }),
        ),
      );
      const openedTotal = opened.reduce((a, b) => a + b, 0);
      if (openedTotal !== n) throw new Error(`bench halt: ${openedTotal} of ${n} connections opened`);
      await waitFor(
        'registrations',
        async () => (await Promise.all(servers.map(connectedCount))).reduce((a, b) => a + b, 0) === n,
        60_000 + n * 20,
      );
      // A real fleet connected long before the halt: let the connection bookkeeping (store rows,
      // `connection` events over the bus to every process) finish before timing.
      await new Promise((r) => setTimeout(r, 1500));
      const first = servers[0];
      if (first === undefined) throw new Error('no server');
      // Warm-up: the generator's HTTP client and the server's operator path (auth, halts route).
      for (let i = 0; i < 3; i++) {
        const warm = await fetch(`${first.url}/v1/halts`, {
          headers: { authorization: `Bearer ${adminToken}` },
        });
        if (warm.status !== 200) throw new Error(`warm-up: ${warm.status}`);
        await warm.arrayBuffer();
      }
      // Each client process says `done` once every terminal it holds has the halt.
      const done = clients.map(
        (cl) =>
          new Promise<void>((resolve) => {
            const onMessage = (raw: unknown): void => {
              const m = ChildMessageSchema.safeParse(raw);
              if (!m.success || m.data.type !== 'done') return;
              cl.child.off('message', onMessage);
              resolve();
            };
            cl.child.on('message', onMessage);
          }),
      );
      const t0 = performance.timeOrigin + performance.now();
      const res = await fetch(`${first.url}/v1/halts`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ scope: 'fleet', reason: 'bench' }),
      });
      const responseMs = performance.timeOrigin + performance.now() - t0;
      if (res.status !== 201) throw new Error(`halt: ${res.status} ${await res.text()}`);
      // Every terminal has it, or 30 s have passed: ask the clients for their receive times.
      const report = (): Promise<(number | null)[][]> =>
        Promise.all(
          clients.map(
            (cl) =>
              new Promise<(number | null)[]>((resolve) => {
                const onMessage = (raw: unknown): void => {
                  const m = ChildMessageSchema.safeParse(raw);
                  if (!m.success || m.data.type !== 'received') return;
                  cl.child.off('message', onMessage);
                  resolve(m.data.at);
                };
                cl.child.on('message', onMessage);
                cl.child.send({ type: 'report' });
              }),
          ),
        );
      await Promise.race([Promise.all(done), new Promise((r) => setTimeout(r, 30_000).unref())]);
      const times = await report();
      for (const cl of clients) cl.child.send({ type: 'ack' });
      const got = times
        .flat()
        .filter((x): x is number => x !== null)
        .map((x) => x - t0)
        .sort((a, b) => a - b);
      ctx.emit({
        terminals: n,
        instances: k,
        delivered: got.length,
        p50_ms: Math.round(percentile(got, 0.5) * 10) / 10,
        p99_ms: Math.round(percentile(got, 0.99) * 10) / 10,
        first_ms: Math.round((got[0] ?? Number.NaN) * 10) / 10,
        max_ms: Math.round((got[got.length - 1] ?? Number.NaN) * 10) / 10,
        halt_response_ms: Math.round(responseMs * 10) / 10,
        engine: pgUrl === undefined ? 'sqlite' : 'postgres',
      });
    } finally {
      for (const cl of clients) cl.child.kill('SIGTERM');
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.child.once('exit', () => resolve());
              s.child.kill('SIGTERM');
            }),
        ),
      );
      if (pgUrl !== undefined) {
        const client = new pg.Client({ connectionString: pgUrl });
        client.on('error', () => undefined);
        try {
          await client.connect();
          await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        } finally {
          await client.end().catch(() => undefined);
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
