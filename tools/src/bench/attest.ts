/**
 * `npm run bench -- attest [--seconds N] [--workers N] [--terminals-per-worker N]`: simulated terminals
 * (worker threads, each terminal with its own device key) attesting against one back-end process
 * (`pos-backend`, a child process) over loopback HTTP. Each attestation is the real protocol: a
 * challenge, evidence signed by the device key, a Pos-Proof, appraisal, policy, a stored verdict and
 * audit entry, and a signed ticket.
 *
 * Beside it, measured in the same run: `bare_crypto_per_s`, this machine's rate of one evidence
 * verification plus one ticket signature with node:crypto (ES256), and `ratio`, the quotient. Also the
 * store's growth per attestation, extrapolated to a million.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { BenchOptionError, measure, numberOption, parseBenchOptions, type Benchmark } from './measure';

export const CODE_HASH = 'ab'.repeat(32);
export const APP_VERSION = '1.0.0-bench';

/** The simulated terminals, as plain JavaScript (a worker thread with no TypeScript loader). */
const WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const crypto = require('node:crypto');
const { url, codes, codeHash, version } = workerData;
const b64 = (b) => Buffer.from(b).toString('base64url');
const b64json = (o) => b64(JSON.stringify(o));
const sha = (s) => crypto.createHash('sha256').update(s).digest('base64url');
const SIGNALS = ['debugger','inspector','devtools','node-options','run-as-node','suspicious-env','virtual-machine','remote-session','screen-capture-protection'];

function makeTerminal(code) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const j = publicKey.export({ format: 'jwk' });
  return { code, privateKey, jwk: { kty: 'EC', crv: 'P-256', x: j.x, y: j.y }, id: '', counter: 0, conn: connect() };
}
function jws(t, header, payload) {
  const input = b64json(header) + '.' + b64json(payload);
  return input + '.' + b64(crypto.sign('sha256', Buffer.from(input), { key: t.privateKey, dsaEncoding: 'ieee-p1363' }));
}
function evidence(t, challenge, purpose) {
  t.counter += 1;
  const now = Date.now();
  const header = { alg: 'ES256', typ: 'pos-evidence+jwt' };
  if (purpose === 'enrollment') header.jwk = t.jwk;
  return jws(t, header, {
    iss: purpose === 'enrollment' ? 'enrolling' : t.id, iat: Math.floor(now / 1000), challenge, counter: t.counter, purpose,
    app: { version, build: 'release', codeHash }, shell: 'headless',
    measurements: SIGNALS.map((name) => ({ name, status: 'ok', method: 'bench' })), time: now,
  });
}
// A minimal HTTP/1.1 keep-alive client on node:net, one connection per terminal: the load generator
// shares the machine with the server, so it spends as little CPU per request as it can (node:http's
// client costs several times more). Responses carry content-length (Fastify sets it for JSON).
const net = require('node:net');
const base = new URL(url);
function connect() {
  const socket = net.connect({ host: base.hostname, port: Number(base.port) });
  socket.setNoDelay(true);
  const conn = { socket, buf: Buffer.alloc(0), pending: undefined };
  socket.on('data', (d) => {
    conn.buf = conn.buf.length === 0 ? d : Buffer.concat([conn.buf, d]);
    const p = conn.pending;
    if (p === undefined) return;
    const end = conn.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = conn.buf.toString('latin1', 0, end);
    const m = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (m === null) { conn.pending = undefined; p.reject(new Error('no content-length: ' + head.slice(0, 200))); return; }
    const total = end + 4 + Number(m[1]);
    if (conn.buf.length < total) return;
    const text = conn.buf.toString('utf8', end + 4, total);
    conn.buf = conn.buf.subarray(total);
    conn.pending = undefined;
    const status = Number(head.slice(9, 12));
    if (status >= 300) p.reject(new Error(p.path + ' ' + status + ' ' + text.slice(0, 300)));
    else { try { p.resolve(JSON.parse(text)); } catch (e) { p.reject(e); } }
  });
  const fail = (e) => { const p = conn.pending; conn.pending = undefined; p?.reject(e ?? new Error('connection closed')); };
  socket.on('error', fail);
  socket.on('close', () => fail());
  return conn;
}
function post(conn, path, body, extra = '') {
  return new Promise((resolve, reject) => {
    if (conn.socket.destroyed) { reject(new Error(path + ': connection closed')); return; }
    conn.pending = { resolve, reject, path };
    conn.socket.write('POST ' + path + ' HTTP/1.1\r\nhost: ' + base.host + '\r\ncontent-type: application/json\r\ncontent-length: ' +
      Buffer.byteLength(body) + '\r\n' + extra + '\r\n' + body);
  });
}
async function enroll(t) {
  const { challenge } = await post(t.conn, '/v1/challenges', '{}');
  const r = await post(t.conn, '/v1/enrollments', JSON.stringify({ code: t.code, deviceJwk: t.jwk, readerSerial: 'BENCH-' + t.code.slice(-6), evidence: evidence(t, challenge, 'enrollment') }));
  t.id = r.terminalId;
}
async function attestOnce(t) {
  const { challenge } = await post(t.conn, '/v1/challenges', JSON.stringify({ terminalId: t.id }));
  const body = JSON.stringify({ evidence: evidence(t, challenge, 'periodic') });
  const proof = jws(t, { alg: 'ES256', typ: 'pos-proof+jwt', kid: t.id }, {
    htm: 'POST', htu: url + '/v1/attestations', iat: Math.floor(Date.now() / 1000), jti: b64(crypto.randomBytes(16)), bh: sha(body),
  });
  const out = await post(t.conn, '/v1/attestations', body, 'pos-proof: ' + proof + '\r\n');
  if (out.ticket === undefined) throw new Error('no ticket: ' + JSON.stringify(out.verdict));
}
// The floor: the cheapest request through the same server stack (no store, no crypto), one per call.
async function floorOnce(t) {
  await post(t.conn, '/v1/challenges', '{}');
}
// Each round: the parent sends { start, deadline, mode }; the thread answers with what it counted.
async function round(terminals, { start, deadline, mode }) {
  const once = mode === 'floor' ? floorOnce : attestOnce;
  const latencies = [];
  let errors = 0;
  let firstError;
  // This thread's busy time over the counted window (event-loop utilisation: CPU the generator spends).
  let eluStart;
  const mark = setTimeout(() => { eluStart = performance.eventLoopUtilization(); }, Math.max(0, start - Date.now()));
  await Promise.all(terminals.map(async (t) => {
    while (Date.now() < deadline) {
      const t0 = performance.now();
      const counted = Date.now() >= start;
      try { await once(t); if (counted) latencies.push(performance.now() - t0); }
      catch (e) { if (counted) { errors++; firstError ??= String(e).slice(0, 300); } }
    }
  }));
  clearTimeout(mark);
  const busyMs = eluStart === undefined ? undefined : performance.eventLoopUtilization(eluStart).active;
  return { type: 'done', latencies, errors, firstError, busyMs };
}
(async () => {
  const terminals = codes.map(makeTerminal);
  for (const t of terminals) await enroll(t);
  parentPort.postMessage({ type: 'ready' });
  parentPort.on('message', (m) => {
    round(terminals, m).then((r) => parentPort.postMessage(r), (e) => parentPort.postMessage({ type: 'failed', error: String(e).slice(0, 500) }));
  });
})().catch((e) => parentPort.postMessage({ type: 'failed', error: String(e).slice(0, 500) }));
`;

export interface ServerHandle {
  url: string;
  adminToken: string;
  child: ChildProcess;
}

export interface ServerOptions {
  /** Write a V8 CPU profile here when the server exits. */
  readonly profileDir?: string | undefined;
  /** What node runs (default: backend/bin/pos-backend.js). */
  readonly entry?: readonly string[];
  /** More pos-backend options (e.g. --reader-ca). */
  readonly args?: readonly string[];
}

/** One `pos-backend` process (SQLite in dataDir, any port, no rate limit, --dev); resolves once it listens. */
export function startServer(dataDir: string, opts: ServerOptions = {}): Promise<ServerHandle> {
  const bin = fileURLToPath(new URL('../../../backend/bin/pos-backend.js', import.meta.url));
  const nodeArgs = opts.profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', opts.profileDir];
  // --dev: with no policy activated, the development policy (H2: prod-1 otherwise), as before.
  const args = [
    ...nodeArgs,
    ...(opts.entry ?? [bin]),
    '--data-dir',
    dataDir,
    '--port',
    '0',
    '--rate-limit',
    '0',
    '--dev',
    ...(opts.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    env: {
      ...process.env,
      POS_MASTER_KEY: randomBytes(32).toString('base64url'),
      POS_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    let url: string | undefined;
    let token: string | undefined;
    const done = (): void => {
      if (url !== undefined && token !== undefined) resolve({ url, adminToken: token, child });
    };
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      const line = out.split('\n')[0];
      if (url === undefined && line !== undefined && out.includes('\n')) {
        url = (JSON.parse(line) as { url: string }).url;
        done();
      }
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString('utf8');
      token ??= /pos_admin_[A-Za-z0-9_-]{43}/.exec(err)?.[0];
      // A first start writes the admin token to DATA_DIR/admin-token and says so on stderr (older
      // versions printed the token itself).
      if (token === undefined && err.includes('admin-token')) {
        try {
          token = /pos_admin_[A-Za-z0-9_-]{43}/.exec(readFileSync(join(dataDir, 'admin-token'), 'utf8'))?.[0];
        } catch {
          // not written yet
        }
      }
      done();
    });
    child.once('exit', (code) =>
      reject(new Error(`pos-backend exited (${String(code)}): ${err.slice(0, 500)}`)),
    );
  });
}

export async function admin(
  server: Pick<ServerHandle, 'url' | 'adminToken'>,
  path: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status >= 300) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Audit entries in the store: one per attestation (enrollments included) plus a few set-up entries. */
async function attestationCount(server: Pick<ServerHandle, 'url' | 'adminToken'>): Promise<number> {
  const res = await fetch(`${server.url}/v1/audit/verify`, {
    headers: { authorization: `Bearer ${server.adminToken}` },
  });
  const body = (await res.json()) as { count?: number };
  return body.count ?? 0;
}

function storeBytes(dataDir: string): number {
  let total = 0;
  for (const f of ['backend.sqlite', 'backend.sqlite-wal']) {
    try {
      total += statSync(join(dataDir, f)).size;
    } catch {
      // absent
    }
  }
  return total;
}

/**
 * Adds `n` enrolled terminals of `merchantId` to the SQLite store at `path` in one transaction, next
 * to the running server (WAL: it keeps serving; the bench holds it idle meanwhile), and returns how
 * many terminals the store then holds. Each has its own id, device-key thumbprint and reader serial
 * (random-looking ids, so the primary key's B-tree is as fragmented as with real enrollments), is
 * active, and is not due for a day: the liveness sweeper finds none of them overdue during the run,
 * so what is measured is the attestation path's lookups, not the sweeper marking a million
 * terminals stale.
 */
export function preloadTerminals(path: string, merchantId: string, n: number): number {
  const db = new Database(path);
  try {
    db.pragma('busy_timeout = 10000');
    const jwk = JSON.stringify(
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }),
    );
    const now = Date.now();
    db.prepare(
      `WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
       INSERT INTO terminals (id, merchant_id, device_jwk, device_jkt, reader_serial, last_counter, state,
         state_reason, interval_s, created_at, last_attested_at, state_changed_at, next_due_at, stale_at,
         app_version, last_tier)
       SELECT printf('trm_%016x%07d', random(), i), ?, ?, printf('jkt%016x%07d', random(), i),
         printf('PRELOAD-%09d', i), i, 'active', NULL, 300, ?, ?, NULL, ?, NULL, ?, 'affirming'
       FROM seq`,
    ).run(n, merchantId, jwk, now, now, now + 86_400_000, APP_VERSION);
    const row = db.prepare('SELECT count(*) AS n FROM terminals').get() as { n: number };
    return row.n;
  } finally {
    db.close();
  }
}

/** One evidence verification plus one ticket signature, ES256 on node:crypto: the work floor. */
function bareCryptoRate(seconds: number): number {
  const device = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ticketKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const evidenceInput = Buffer.from('e'.repeat(900));
  const ticketInput = Buffer.from('t'.repeat(600));
  const sig = sign('sha256', evidenceInput, { key: device.privateKey, dsaEncoding: 'ieee-p1363' });
  const rate = measure(
    () => {
      if (!verify('sha256', evidenceInput, { key: device.publicKey, dsaEncoding: 'ieee-p1363' }, sig)) {
        throw new Error('verify');
      }
      sign('sha256', ticketInput, { key: ticketKey.privateKey, dsaEncoding: 'ieee-p1363' });
    },
    seconds,
    16,
  );
  return rate.opsPerSec;
}

/**
 * CPU time the back-end has used so far, ms (Linux: /proc schedstat, nanoseconds on a CPU): its main
 * thread (the event loop) and all its threads together. undefined where /proc is not there.
 */
function serverCpuMs(pid: number | undefined): { main: number; all: number } | undefined {
  if (pid === undefined) return undefined;
  const onCpu = (path: string): number => Number(readFileSync(path, 'utf8').split(' ')[0]) / 1e6;
  try {
    let all = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        all += onCpu(`/proc/${pid}/task/${tid}/schedstat`);
      } catch {
        // the thread ended meanwhile
      }
    }
    return { main: onCpu(`/proc/${pid}/task/${pid}/schedstat`), all };
  } catch {
    return undefined;
  }
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? 0;
}

export const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;
const round3 = (n: number): number => round(n, 3);

/** What one counted round of the workers saw. */
interface Round {
  elapsed: number;
  latencies: number[];
  errors: number;
  firstError: string | undefined;
  generatorBusyMs: number;
  cpu: { start: { main: number; all: number }; end: { main: number; all: number } } | undefined;
}

const text = (what: string) =>
  z.string({ error: `--${what} takes a value` }).min(1, `--${what} takes a value`);

/** The attest benchmark's options (the runner's --seconds included). */
export const AttestOptionsSchema = z.strictObject({
  workers: numberOption('workers', 1, 64, true).optional(),
  'terminals-per-worker': numberOption('terminals-per-worker', 1, 256, true).optional(),
  url: text('url')
    .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), '--url must be an http(s) URL')
    .optional(),
  'admin-token': text('admin-token').optional(),
  profile: text('profile').optional(),
  'preload-terminals': numberOption('preload-terminals', 0, 5_000_000, true).optional(),
  seconds: z.unknown().optional(),
});

export interface AttestOptions {
  readonly workers: number;
  readonly perWorker: number;
  /** A running service instead of a child process (with its admin token). */
  readonly external: { readonly url: string; readonly adminToken: string } | undefined;
  readonly profileDir: string | undefined;
  /** Enrolled terminals added to the store before a second round (0: no second round). */
  readonly preload: number;
}

export function parseAttestOptions(options: Readonly<Record<string, string | boolean>>): AttestOptions {
  const o = parseBenchOptions(
    'attest',
    '--workers, --terminals-per-worker, --url with --admin-token, --profile and --preload-terminals',
    AttestOptionsSchema,
    options,
  );
  if ((o.url === undefined) !== (o['admin-token'] === undefined)) {
    throw new BenchOptionError('POS_ERR_CLI_INVALID_OPTION', '--url and --admin-token go together');
  }
  if (o.url !== undefined && (o['preload-terminals'] ?? 0) > 0) {
    throw new BenchOptionError(
      'POS_ERR_CLI_INVALID_OPTION',
      '--preload-terminals needs the bench to start the server (no --url): it writes to its SQLite file',
    );
  }
  if (o.url !== undefined && o.profile !== undefined) {
    throw new BenchOptionError(
      'POS_ERR_CLI_INVALID_OPTION',
      '--profile needs the bench to start the server (no --url)',
    );
  }
  return {
    workers: o.workers ?? 1,
    perWorker: o['terminals-per-worker'] ?? 8,
    external:
      o.url === undefined || o['admin-token'] === undefined
        ? undefined
        : { url: o.url.replace(/\/$/, ''), adminToken: o['admin-token'] },
    profileDir: o.profile,
    preload: o['preload-terminals'] ?? 0,
  };
}

export const attestBench: Benchmark = {
  name: 'attest',
  usesSeconds: true,
  summary: 'attestations per second of one back-end process, beside bare ES256 verify+sign',
  check(options) {
    parseAttestOptions(options);
  },
  async run(ctx) {
    const { workers, perWorker, external, profileDir, preload } = parseAttestOptions(ctx.options);
    const seconds = Math.max(ctx.seconds, 1) * 3;
    const dir = mkdtempSync(join(tmpdir(), 'pos-bench-attest-'));
    const dataDir = join(dir, 'data');
    const server: ServerHandle | (Omit<ServerHandle, 'child'> & { child?: undefined }) =
      external === undefined ? await startServer(dataDir, { profileDir }) : { ...external };
    const threads: Worker[] = [];
    let storeCount = 0;
    try {
      const { merchantId } = (await admin(server, '/v1/merchants', { name: 'bench' })) as {
        merchantId: string;
      };
      await admin(server, '/v1/reference-values', {
        version: APP_VERSION,
        build: 'release',
        codeHashes: [CODE_HASH],
        allowedShells: ['headless'],
      });
      const codes: string[][] = [];
      for (let w = 0; w < workers; w++) {
        const list: string[] = [];
        for (let t = 0; t < perWorker; t++) {
          const r = (await admin(server, `/v1/merchants/${merchantId}/enrollment-codes`, {})) as {
            code: string;
          };
          list.push(r.code);
        }
        codes.push(list);
      }
      process.stderr.write(
        `attest: ${workers} workers x ${perWorker} terminals enrolling against ${server.url}\n`,
      );
      type Msg =
        | { type: 'ready' }
        | { type: 'failed'; error: string }
        | { type: 'done'; latencies: number[]; errors: number; firstError?: string; busyMs?: number };
      const inbox: Promise<Msg>[] = [];
      const waiters: ((m: Msg) => void)[][] = [];
      for (let w = 0; w < workers; w++) {
        const worker = new Worker(WORKER_SOURCE, {
          eval: true,
          workerData: { url: server.url, codes: codes[w], codeHash: CODE_HASH, version: APP_VERSION },
        });
        threads.push(worker);
        const queue: ((m: Msg) => void)[] = [];
        waiters.push(queue);
        worker.on('message', (m: Msg) => queue.shift()?.(m));
        worker.on('error', (e) => queue.shift()?.({ type: 'failed', error: String(e) }));
      }
      const next = (w: number): Promise<Msg> =>
        new Promise((resolve) => {
          waiters[w]?.push(resolve);
        });
      for (let w = 0; w < workers; w++) inbox.push(next(w));
      for (const m of await Promise.all(inbox)) if (m.type === 'failed') throw new Error(m.error);

      const pid = server.child?.pid;
      /** One counted round of `mode` on every worker after a warm-up second (JIT, SQLite cache). */
      const runRound = async (mode: 'attest' | 'floor', roundSeconds: number): Promise<Round> => {
        const started = Date.now() + 1000;
        const deadline = started + roundSeconds * 1000;
        const results = threads.map((_, w) => next(w));
        for (const t of threads) t.postMessage({ start: started, deadline, mode });
        let cpuAtStart: ReturnType<typeof serverCpuMs>;
        let cpuAtEnd: ReturnType<typeof serverCpuMs>;
        const marks = [
          setTimeout(() => (cpuAtStart = serverCpuMs(pid)), started - Date.now()),
          setTimeout(() => (cpuAtEnd = serverCpuMs(pid)), deadline - Date.now()),
        ];
        const done = await Promise.all(results);
        for (const m of marks) clearTimeout(m);
        // Short requests can all be answered before the deadline's timer runs: read it now then (the
        // workers have stopped, so the server is idle and the late reading adds next to nothing).
        cpuAtEnd ??= serverCpuMs(pid);
        const out: Round = {
          elapsed: (deadline - started) / 1000,
          latencies: [],
          errors: 0,
          firstError: undefined,
          generatorBusyMs: 0,
          cpu:
            cpuAtStart === undefined || cpuAtEnd === undefined
              ? undefined
              : { start: cpuAtStart, end: cpuAtEnd },
        };
        for (const m of done) {
          if (m.type === 'failed') throw new Error(m.error);
          if (m.type === 'done') {
            out.generatorBusyMs += m.busyMs ?? 0;
            out.latencies.push(...m.latencies);
            out.errors += m.errors;
            out.firstError ??= m.firstError;
          }
        }
        out.latencies.sort((a, b) => a - b);
        return out;
      };
      const attest = await runRound('attest', seconds);
      const n = attest.latencies.length;
      const attestationsPerS = n / attest.elapsed;
      const cpu =
        attest.cpu === undefined || n === 0
          ? {}
          : {
              server_cpu_ms_per_attestation: round3((attest.cpu.end.all - attest.cpu.start.all) / n),
              server_main_thread_ms_per_attestation: round3(
                (attest.cpu.end.main - attest.cpu.start.main) / n,
              ),
              server_main_thread_busy: round(
                (attest.cpu.end.main - attest.cpu.start.main) / (attest.elapsed * 1000),
                2,
              ),
            };
      const generator = n === 0 ? {} : { generator_ms_per_attestation: round3(attest.generatorBusyMs / n) };
      process.stderr.write('attest: measuring the request floor (POST /v1/challenges, no terminal)\n');
      const floor = await runRound('floor', Math.max(ctx.seconds, 1));
      const f = floor.latencies.length;
      const floorLine =
        f === 0
          ? {}
          : {
              floor_requests_per_s: round(f / floor.elapsed),
              ...(floor.cpu === undefined
                ? {}
                : {
                    server_main_thread_ms_per_floor_request: round3(
                      (floor.cpu.end.main - floor.cpu.start.main) / f,
                    ),
                  }),
              generator_ms_per_floor_request: round3(floor.generatorBusyMs / f),
            };
      process.stderr.write('attest: measuring bare crypto (node:crypto ES256 verify + sign)\n');
      const bare = bareCryptoRate(ctx.seconds);
      const firstError = attest.firstError ?? floor.firstError;
      ctx.emit({
        attestations_per_s: round(attestationsPerS),
        p50_ms: round(percentile(attest.latencies, 50), 2),
        p99_ms: round(percentile(attest.latencies, 99), 2),
        bare_crypto_per_s: round(bare),
        ratio: round(attestationsPerS / bare, 3),
        ...cpu,
        ...generator,
        ...floorLine,
        // The ratio a server would reach if an attestation cost nothing but its two requests.
        ...(f === 0 ? {} : { floor_ratio: round3(f / floor.elapsed / 2 / bare) }),
        attestations: n,
        errors: attest.errors,
        ...(floor.errors === 0 ? {} : { floor_errors: floor.errors }),
        terminals: workers * perWorker,
        workers,
        seconds: round(attest.elapsed, 2),
        ...(firstError === undefined ? {} : { first_error: firstError }),
      });
      if (preload > 0) {
        // The same round on the small store again, right before the preload: both rounds then run on
        // a warm server (JIT, caches), so the comparison shows the store's size and nothing else.
        process.stderr.write('attest: attesting again on the small store (the comparison round)\n');
        const before = await runRound('attest', seconds);
        const beforeRate = before.latencies.length / before.elapsed;
        process.stderr.write(`attest: adding ${preload} enrolled terminals to the store\n`);
        const t0 = performance.now();
        const inStore = preloadTerminals(join(dataDir, 'backend.sqlite'), merchantId, preload);
        const preloadS = (performance.now() - t0) / 1000;
        process.stderr.write(`attest: ${inStore} terminals in the store; attesting again\n`);
        const again = await runRound('attest', seconds);
        const m = again.latencies.length;
        const preloadedError = before.firstError ?? again.firstError;
        const rate = m / again.elapsed;
        ctx.emit({
          metric: 'preloaded',
          terminals_in_store: inStore,
          attestations_per_s: round(rate),
          small_store_attestations_per_s: round(beforeRate),
          ratio_to_small_store: beforeRate === 0 ? 0 : round3(rate / beforeRate),
          p50_ms: round(percentile(again.latencies, 50), 2),
          p99_ms: round(percentile(again.latencies, 99), 2),
          ...(again.cpu === undefined || m === 0
            ? {}
            : {
                server_main_thread_ms_per_attestation: round3(
                  (again.cpu.end.main - again.cpu.start.main) / m,
                ),
              }),
          ...(before.cpu === undefined || before.latencies.length === 0
            ? {}
            : {
                small_store_server_main_thread_ms_per_attestation: round3(
                  (before.cpu.end.main - before.cpu.start.main) / before.latencies.length,
                ),
              }),
          attestations: m,
          errors: again.errors + before.errors,
          preload_s: round(preloadS, 1),
          ...(preloadedError === undefined ? {} : { first_error: preloadedError }),
        });
      }
      storeCount = await attestationCount(server);
    } finally {
      await Promise.all(threads.map((t) => t.terminate()));
      if (server.child !== undefined) {
        const child = server.child;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
        // Closing the last connection checkpoints the WAL into the main file: its size is the data
        // (not reported after a preload: the added terminals would dominate it).
        if (storeCount > 0 && preload === 0) {
          const perAttestation = storeBytes(dataDir) / storeCount;
          ctx.emit({
            metric: 'store_size',
            bytes_per_attestation: Math.round(perAttestation),
            mb_per_million_attestations: Math.round(perAttestation),
            attestations_stored: storeCount,
            note: 'SQLite file after the run (WAL checkpointed) over the attestations it holds (counted as audit entries); includes the fixed schema pages',
          });
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
