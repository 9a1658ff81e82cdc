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
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import WebSocket from 'ws';
import { jwkThumbprint, type P256Jwk } from '@pos/shared';
import { ServerMessageSchema, parseFrame, PUSH_PATH } from '@pos/backend/fleet/push-protocol';
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

const b64json = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const EMPTY_HASH = createHash('sha256').update('').digest('base64url');

function pushProof(t: Terminal): string {
  const input = `${b64json({ alg: 'ES256', typ: 'pos-proof+jwt', kid: t.id })}.${b64json({
    htm: 'GET',
    htu: `${ISSUER}${PUSH_PATH}`,
    iat: Math.floor(Date.now() / 1000),
    jti: randomBytes(16).toString('base64url'),
    bh: EMPTY_HASH,
  })}`;
  const sig = sign('sha256', Buffer.from(input), { key: t.key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

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

function startServer(dataDir: string, masterKey: string, db: string[]): Promise<Server> {
  const bin = fileURLToPath(new URL('../../../backend/bin/pos-backend.js', import.meta.url));
  const args = [
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
    env: { ...process.env, POS_MASTER_KEY: masterKey, POS_LOG_LEVEL: 'warn' },
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
  summary: 'fleet halt to N push-connected terminals over K processes: delivery p50/p99',
  async run(ctx) {
    const n = ctx.options['terminals'] === undefined ? 1000 : Number(ctx.options['terminals']);
    const k = ctx.options['instances'] === undefined ? 1 : Number(ctx.options['instances']);
    if (!Number.isInteger(n) || n < 1 || n > 50_000)
      throw new Error('--terminals must be an integer 1-50000');
    if (!Number.isInteger(k) || k < 1 || k > 16) throw new Error('--instances must be an integer 1-16');
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
    const sockets: WebSocket[] = [];
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
      servers.push(await startServer(dataDirs[0] ?? dir, masterKey, db));
      for (let i = 1; i < k; i++) servers.push(await startServer(dataDirs[i] ?? dir, masterKey, db));
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

      const received = new Array<number>(n).fill(Number.NaN);
      let t0 = Number.NaN;
      let opened = 0;
      let failed = 0;
      const acks: (() => void)[] = [];
      // At most 200 handshakes in flight (10,000 at once would overflow the listen backlog); a
      // refused or reset handshake is retried with a fresh proof.
      const open = (t: Terminal, i: number): Promise<void> =>
        new Promise((resolve) => {
          const server = servers[i % k];
          if (server === undefined) return resolve();
          const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}${PUSH_PATH}`, {
            headers: { 'pos-proof': pushProof(t) },
          });
          let isOpen = false;
          ws.on('open', () => {
            isOpen = true;
            opened += 1;
            sockets.push(ws);
            resolve();
          });
          ws.on('error', () => {
            if (isOpen) return;
            failed += 1;
            if (failed > n) return resolve();
            setTimeout(() => void open(t, i).then(resolve), 50);
          });
          ws.on('message', (data, isBinary) => {
            const at = performance.now();
            const m =
              isBinary || !Buffer.isBuffer(data)
                ? undefined
                : parseFrame(ServerMessageSchema, data.toString('utf8'));
            if (m === undefined) return;
            if (m.type === 'halt' && Number.isNaN(received[i])) received[i] = at - t0;
            // Acknowledged after the measurement: the acks' work is not the delivery's.
            acks.push(() => ws.send(JSON.stringify({ type: 'ack', seq: m.seq })));
          });
        });
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(200, n) }, async () => {
          while (next < n) {
            const i = next++;
            const t = terminals[i];
            if (t !== undefined) await open(t, i);
          }
        }),
      );
      if (failed > 0) process.stderr.write(`bench halt: ${failed} handshakes retried\n`);
      await waitFor('connections', () => opened === n, 60_000 + n * 10);
      await waitFor(
        'registrations',
        async () => (await Promise.all(servers.map(connectedCount))).reduce((a, b) => a + b, 0) === n,
        60_000 + n * 20,
      );
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
      t0 = performance.now();
      const res = await fetch(`${first.url}/v1/halts`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ scope: 'fleet', reason: 'bench' }),
      });
      const responseMs = performance.now() - t0;
      if (res.status !== 201) throw new Error(`halt: ${res.status} ${await res.text()}`);
      await waitFor('deliveries', () => received.every((r) => !Number.isNaN(r)), 30_000).catch(
        () => undefined,
      );
      for (const ack of acks.splice(0)) ack();
      const got = received.filter((r) => !Number.isNaN(r)).sort((a, b) => a - b);
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
      for (const ws of sockets) ws.terminate();
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
