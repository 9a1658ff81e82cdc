/**
 * Fault-test helpers for the back-end: a real `pos-backend` process that can be killed (SIGKILL,
 * SIGTERM) and started again on the same store and port; simulated terminals (backend/test/helpers.ts
 * SimTerminal over HTTP) attesting in a loop while an operator halts and lifts; a ledger of everything
 * the clients received as acknowledged; and the checks that the store still holds all of it.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  ISSUER,
  httpHarness,
  seedReferenceValues,
  SimTerminal,
  type Harness,
} from '../../../backend/test/helpers';
import type { Store } from '../../../backend/src/store/types';

export const BACKEND_BIN = fileURLToPath(new URL('../../../backend/bin/pos-backend.js', import.meta.url));

export interface BackendOptions {
  readonly dataDir: string;
  /** PostgreSQL instead of SQLite in the data directory. */
  readonly pg?: { readonly url: string; readonly schema: string };
  /** Extra command-line options (e.g. --reader-ca). */
  readonly args?: readonly string[];
  /** A command the back-end (and its CLI) runs under, e.g. nsenter into a private mount namespace. */
  readonly prefix?: readonly string[];
  /** Where this process sees the back-end's `/` (e.g. /proc/PID/root of that namespace); default `/`. */
  readonly root?: string;
}

/** A free TCP port on 127.0.0.1 (kept across restarts, so clients reconnect to the same address). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A seeded pseudo-random generator (mulberry32): the seed is printed, so a failing run can be replayed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of this run: env POS_FAULT_SEED, or a random one (printed either way). */
export function faultSeed(name: string): number {
  const fromEnv = process.env['POS_FAULT_SEED'];
  const seed =
    fromEnv !== undefined && /^[0-9]+$/.test(fromEnv) ? Number(fromEnv) : randomBytes(4).readUInt32LE(0);
  console.log(`${name}: seed ${seed} (replay with POS_FAULT_SEED=${seed})`);
  return seed;
}

/** A `pos-backend` process on a fixed port; `start` again after a kill reuses data dir, port and master key. */
export class Backend {
  child: ChildProcessWithoutNullStreams | undefined;
  readonly stderr: string[] = [];
  readonly masterKey = randomBytes(32).toString('base64url');
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly options: BackendOptions,
    readonly port: number,
  ) {}

  static async create(options: BackendOptions): Promise<Backend> {
    return new Backend(options, await freePort());
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The store options of the command line (for `pos-backend audit verify` too). */
  storeArgs(): string[] {
    const pg = this.options.pg;
    return [
      '--data-dir',
      this.options.dataDir,
      ...(pg === undefined ? [] : ['--database-url', pg.url, '--database-schema', pg.schema]),
    ];
  }

  env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      DATABASE_URL: undefined,
      DATABASE_SCHEMA: undefined,
      POS_LOG_LEVEL: 'warn',
      POS_MASTER_KEY: this.masterKey,
    };
  }

  /** Starts the process; resolves once it prints its listening line. */
  async start(): Promise<void> {
    const prefix = this.options.prefix ?? [];
    const child = spawn(
      prefix[0] ?? process.execPath,
      [
        ...(prefix.length === 0 ? [] : [...prefix.slice(1), process.execPath]),
        BACKEND_BIN,
        ...this.storeArgs(),
        '--port',
        String(this.port),
        '--issuer',
        ISSUER,
        '--dev',
        '--rate-limit',
        '0',
        ...(this.options.args ?? []),
      ],
      { env: this.env(), stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    createInterface({ input: child.stderr }).on('line', (l) => this.stderr.push(l));
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      lines.once('line', (l) => {
        if (l.includes('"listening"')) resolve();
        else reject(new Error(`unexpected first line: ${l}`));
      });
      child.once('exit', (code) =>
        reject(new Error(`pos-backend exited (${String(code)}): ${this.stderr.slice(-20).join('\n')}`)),
      );
    });
  }

  /** True while the process runs. */
  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends `signal` and waits for the exit; the exit code or signal. */
  async kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<{ code: number | null; signal: string | null }> {
    const child = this.child;
    if (child === undefined) return { code: null, signal: null };
    if (this.running()) child.kill(signal);
    await this.exited;
    return { code: child.exitCode, signal: child.signalCode };
  }

  adminToken(): string {
    return readFileSync(this.hostPath(join(this.options.dataDir, 'admin-token')), 'utf8').trim();
  }

  /** A path of the back-end's file system as this process reaches it. */
  hostPath(path: string): string {
    return this.options.root === undefined ? path : join(this.options.root, path);
  }

  /** `pos-backend audit verify` on this store (the process may be running or stopped). */
  auditVerifyCli(): { code: number | null; out: Record<string, unknown> } {
    const prefix = this.options.prefix ?? [];
    const argv = [...prefix, process.execPath, BACKEND_BIN, 'audit', 'verify', ...this.storeArgs()];
    const r = spawnSync(argv[0] ?? process.execPath, argv.slice(1), {
      env: this.env(),
      encoding: 'utf8',
      timeout: 30_000,
    });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return { code: r.status, out: JSON.parse(last) as Record<string, unknown> };
    } catch {
      return { code: r.status, out: { unparsed: last, stderr: r.stderr.slice(-500) } };
    }
  }
}

export const ErrorOut = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
const AttestOut = z.object({
  verdict: z.object({ tier: z.string(), reasons: z.array(z.object({ code: z.string() })) }),
  ticket: z.object({ jws: z.string(), use: z.string() }).optional(),
  halted: z.boolean(),
});
export type AttestOut = z.infer<typeof AttestOut>;

/** The jti of a ticket JWS (its payload is not checked here: the back-end issued it). */
export function ticketJti(jws: string): string {
  const payload = jws.split('.')[1] ?? '';
  return z.object({ jti: z.string() }).parse(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')))
    .jti;
}

export const evidenceHash = (jws: string): string => createHash('sha256').update(jws).digest('hex');

/** What a client received an answer for: the back-end acknowledged it, so it must survive anything. */
export interface Ledger {
  /** Verdicts answered to terminals: terminal, counter, evidence hash, challenge, ticket jti (when one came). */
  readonly verdicts: {
    terminalId: string;
    counter: number;
    evidenceHash: string;
    challenge: string;
    jti?: string;
  }[];
  /** Halts the operator got a 201 for. */
  readonly halts: string[];
  /** Halts the operator got a 200 lift for. */
  readonly lifts: string[];
  /** Audit entries the operator read (seq and hash). */
  readonly audit: Map<number, string>;
  /** Answers that were not a success or a coded refusal (a 500, a body without a code). */
  readonly uncoded: string[];
  /** Requests that got no answer (the process was gone). */
  unanswered: number;
}

export function newLedger(): Ledger {
  return { verdicts: [], halts: [], lifts: [], audit: new Map(), uncoded: [], unanswered: 0 };
}

/** A server error is coded and says nothing more (no stack, no SQL, no path). */
export function checkCoded(status: number, body: string, ledger: Ledger): void {
  if (status < 500) return;
  const parsed = ErrorOut.safeParse(JSON.parse(body) as unknown);
  if (!parsed.success || status === 500 || /\bat \S+ \(|node_modules|\/tmp\//.test(body)) {
    ledger.uncoded.push(`${status} ${body.slice(0, 300)}`);
  }
}

export interface Fleet {
  readonly h: Harness;
  readonly terminals: SimTerminal[];
}

/** Enrolls `n` terminals (reference values seeded) through the HTTP harness of `backend`. */
export async function enrollFleet(backend: Backend, n: number): Promise<Fleet> {
  const h = httpHarness(() => backend.url, backend.adminToken());
  await seedReferenceValues(h);
  const terminals: SimTerminal[] = [];
  for (let i = 0; i < n; i++) {
    const t = new SimTerminal(h);
    const res = await t.enroll();
    if (res.statusCode !== 201) throw new Error(`enroll: ${res.body}`);
    terminals.push(t);
  }
  return { h, terminals };
}

/**
 * One attestation of `t`, recorded in the ledger when answered with a verdict: 'answered', 'refused'
 * (a coded error) or 'unanswered' (no response: the process is gone), with the challenge when one was
 * issued but its evidence got no answer (it may or may not have been used).
 */
export async function attestRecorded(
  h: Harness,
  t: SimTerminal,
  ledger: Ledger,
): Promise<{ outcome: 'answered' | 'refused' | 'unanswered'; inFlight?: string }> {
  let challenge: string;
  try {
    const res = await h.app.inject({ method: 'POST', url: '/v1/challenges', payload: { terminalId: t.id } });
    checkCoded(res.statusCode, res.body, ledger);
    if (res.statusCode !== 201) return { outcome: 'refused' };
    challenge = res.json<{ challenge: string }>().challenge;
  } catch {
    ledger.unanswered++;
    return { outcome: 'unanswered' };
  }
  const evidence = t.evidence(challenge, 'periodic');
  try {
    const res = await t.submit(evidence);
    checkCoded(res.statusCode, res.body, ledger);
    if (res.statusCode !== 200) return { outcome: 'refused' };
    const out = AttestOut.parse(res.json());
    ledger.verdicts.push({
      terminalId: t.id,
      counter: t.counter,
      evidenceHash: evidenceHash(evidence),
      challenge,
      ...(out.ticket === undefined ? {} : { jti: ticketJti(out.ticket.jws) }),
    });
    return { outcome: 'answered' };
  } catch {
    ledger.unanswered++;
    return { outcome: 'unanswered', inFlight: challenge };
  }
}

/** Reads the audit chain through the operator API and records every entry it got. */
export async function readAuditRecorded(h: Harness, ledger: Ledger): Promise<void> {
  try {
    const res = await h.admin('GET', '/v1/audit');
    if (res.statusCode !== 200) return;
    for (const line of res.body.split('\n')) {
      if (line === '') continue;
      const e = z.object({ seq: z.number(), hash: z.string() }).parse(JSON.parse(line));
      ledger.audit.set(e.seq, e.hash);
    }
  } catch {
    ledger.unanswered++;
  }
}

/** The operator halts `t`, then lifts the halt; each answered step goes into the ledger. */
export async function haltAndLiftRecorded(h: Harness, t: SimTerminal, ledger: Ledger): Promise<void> {
  try {
    const halt = await h.admin('POST', '/v1/halts', {
      scope: 'terminal',
      target: t.id,
      reason: 'fault test',
    });
    checkCoded(halt.statusCode, halt.body, ledger);
    if (halt.statusCode !== 201) return;
    const haltId = halt.json<{ haltId: string }>().haltId;
    ledger.halts.push(haltId);
    const lift = await h.admin('POST', `/v1/halts/${haltId}/lift`, { reason: 'fault test over' });
    checkCoded(lift.statusCode, lift.body, ledger);
    if (lift.statusCode === 200) ledger.lifts.push(haltId);
  } catch {
    ledger.unanswered++;
  }
}

/**
 * Everything acknowledged is in `store`, and nothing is half-written: every verdict the terminals
 * got (attestation row with its evidence hash, audit entry, ticket), every halt and lift, every audit
 * entry read (same hash at the same place); each terminal's counter is at least its highest
 * acknowledged one; every stored verdict has its audit entry and every verdict entry its attestation;
 * every stored halt, lift and terminal has its audit entry.
 * Returns the problems (empty when all holds).
 */
export async function checkLedger(store: Store, ledger: Ledger): Promise<string[]> {
  const problems: string[] = [];
  const audit = await store.listAudit(0, 1_000_000);
  const auditedAttestations = new Set<string>();
  for (const e of audit) {
    if (e.action === 'attestation.verdict' || e.action === 'enrollment') {
      const id = e.data['attestation'];
      if (typeof id === 'string') auditedAttestations.add(id);
    }
  }
  for (const [seq, hash] of ledger.audit) {
    const e = audit.find((a) => a.seq === seq);
    if (e?.hash !== hash)
      problems.push(`audit entry ${seq}: acknowledged ${hash}, stored ${e?.hash ?? 'none'}`);
  }
  const byTerminal = new Map<string, Awaited<ReturnType<Store['listAttestations']>>>();
  const maxCounter = new Map<string, number>();
  for (const v of ledger.verdicts) {
    let rows = byTerminal.get(v.terminalId);
    if (rows === undefined) {
      rows = await store.listAttestations(v.terminalId, 1_000_000);
      byTerminal.set(v.terminalId, rows);
    }
    const row = rows.find((r) => r.evidenceHash === v.evidenceHash);
    if (row === undefined) problems.push(`verdict ${v.terminalId}#${v.counter}: no attestation row`);
    else if (!auditedAttestations.has(row.id)) problems.push(`verdict ${row.id}: no audit entry`);
    if (v.jti !== undefined && (await store.getTicket(v.jti)) === undefined)
      problems.push(`verdict ${v.terminalId}#${v.counter}: ticket ${v.jti} not recorded`);
    maxCounter.set(v.terminalId, Math.max(maxCounter.get(v.terminalId) ?? 0, v.counter));
  }
  for (const [id, counter] of maxCounter) {
    const t = await store.getTerminal(id);
    if (t === undefined || t.lastCounter < counter)
      problems.push(`terminal ${id}: counter ${t?.lastCounter ?? 'none'} below acknowledged ${counter}`);
  }
  // Not half-written: every stored verdict of these terminals, answered or not, is audited (one
  // transaction on both the ordinary and the step-by-step path).
  for (const rows of byTerminal.values()) {
    for (const r of rows) {
      if (!auditedAttestations.has(r.id)) problems.push(`attestation ${r.id} stored without its audit entry`);
    }
  }
  for (const id of ledger.halts) {
    const halt = await store.getHalt(id);
    if (halt === undefined) problems.push(`halt ${id}: not stored`);
    else if (ledger.lifts.includes(id) && halt.liftedAt === null) problems.push(`halt ${id}: lift lost`);
  }
  // Not half-written either: every stored halt has its entry, every lifted one its lift entry, every
  // terminal its enrollment entry (each change and its entry are one transaction).
  const entriesOf = (actions: readonly string[], key: (e: (typeof audit)[number]) => unknown): Set<unknown> =>
    new Set(audit.filter((e) => actions.includes(e.action)).map(key));
  const haltEntries = entriesOf(['terminal.halt', 'halt.create'], (e) => e.data['halt']);
  const liftEntries = entriesOf(['halt.lift'], (e) => e.subject);
  for (const h of await store.listHalts({ activeOnly: false, limit: 1_000_000 })) {
    if (!haltEntries.has(h.id)) problems.push(`halt ${h.id} stored without its audit entry`);
    if (h.liftedAt !== null && !liftEntries.has(h.id))
      problems.push(`halt ${h.id} lifted without its audit entry`);
  }
  const enrollEntries = entriesOf(['terminal.enroll'], (e) => e.subject);
  for (const id of await store.listTerminalIds({}))
    if (!enrollEntries.has(id)) problems.push(`terminal ${id} stored without its enrollment entry`);
  return problems;
}
