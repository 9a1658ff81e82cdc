/**
 * PostgreSQL restarted under a running `pos-backend` while terminals attest. Not the machine's shared
 * server (other tests use it): a private instance (initdb in a temporary directory, its own port and
 * socket directory), run as user postgres when this runs as root (initdb refuses root).
 * Stopped with `pg_ctl stop -m fast` and then `-m immediate` (a crash: recovery from its WAL at the
 * next start): while it is down the back-end keeps running, /readyz answers 503 (store false), and
 * terminal requests get a coded 503 (POS_ERR_UNAVAILABLE), never a 500; when PostgreSQL is back the
 * back-end recovers by itself (no restart of it), and every acknowledged verdict, halt and audit
 * entry is still there; the audit chain verifies (endpoint and CLI).
 * Skipped, with the reason printed, where initdb is missing or cannot be run as postgres.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../../../backend/src/store/postgres';
import {
  attestRecorded,
  Backend,
  checkLedger,
  enrollFleet,
  ErrorOut,
  freePort,
  haltAndLiftRecorded,
  newLedger,
  readAuditRecorded,
  type Fleet,
  type Ledger,
} from './backend-process';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The PostgreSQL server binaries (initdb, pg_ctl), newest version first; undefined when absent. */
function pgBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(base, versions[0], 'bin');
}

/** The prefix that runs a command as postgres (root), none (another user), or why we cannot. */
function runAs(): { prefix: string[]; uid?: number; gid?: number } | { skip: string } {
  if (process.getuid?.() !== 0) return { prefix: [] };
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0 || gid.status !== 0) return { skip: 'running as root and there is no postgres user' };
  if (spawnSync('runuser', ['-u', 'postgres', '--', 'true']).status !== 0)
    return { skip: 'running as root and runuser -u postgres does not work' };
  return { prefix: ['runuser', '-u', 'postgres', '--'], uid: Number(id.stdout), gid: Number(gid.stdout) };
}

const BIN = pgBin();
const AS = runAs();
const SKIP =
  BIN === undefined
    ? 'no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)'
    : 'skip' in AS
      ? AS.skip
      : undefined;
if (SKIP !== undefined) console.warn(`postgres-restart: skipped: ${SKIP}`);

/** A private PostgreSQL cluster in a temporary directory. */
class PrivatePg {
  readonly dir = mkdtempSync(join(tmpdir(), 'pos-fault-pg-'));
  readonly data = join(this.dir, 'data');
  constructor(readonly port: number) {}

  private run(cmd: string, args: string[]): void {
    if (BIN === undefined || 'skip' in AS) throw new Error('no PostgreSQL');
    const argv = [...AS.prefix, join(BIN, cmd), ...args];
    const r = spawnSync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  init(): void {
    if (!('skip' in AS) && AS.uid !== undefined && AS.gid !== undefined) chownSync(this.dir, AS.uid, AS.gid);
    this.run('initdb', ['-D', this.data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  }

  start(): void {
    const opts = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1`;
    this.run('pg_ctl', ['-D', this.data, '-o', opts, '-l', join(this.dir, 'log'), '-w', 'start']);
  }

  stop(mode: 'fast' | 'immediate'): void {
    this.run('pg_ctl', ['-D', this.data, '-m', mode, '-w', 'stop']);
  }

  cleanup(): void {
    try {
      this.stop('immediate');
    } catch {
      // not running
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** /readyz: its status code and body. */
async function readyz(backend: Backend): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${backend.url}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe.skipIf(SKIP !== undefined)(
  `PostgreSQL restarted under pos-backend${SKIP === undefined ? '' : ` (skipped: ${SKIP})`}`,
  () => {
    let pg: PrivatePg;
    let backend: Backend;
    let fleet: Fleet;
    const ledger: Ledger = newLedger();

    beforeAll(async () => {
      pg = new PrivatePg(await freePort());
      pg.init();
      pg.start();
      backend = await Backend.create({
        dataDir: join(pg.dir, 'backend'),
        pg: { url: pg.url, schema: 'pos' },
      });
      await backend.start();
      fleet = await enrollFleet(backend, 3);
    }, 60_000);

    afterAll(async () => {
      await backend.kill('SIGKILL');
      pg.cleanup();
    });

    it.each(['fast', 'immediate'] as const)(
      'pg_ctl stop -m %s: not ready and coded 503s while down, recovers by itself, keeps what it acknowledged',
      async (mode) => {
        let stopping = false;
        const refusals: string[] = [];
        const loops = fleet.terminals.map(async (t, i) => {
          while (!stopping) {
            if (i === 0) {
              await haltAndLiftRecorded(fleet.h, t, ledger);
              await readAuditRecorded(fleet.h, ledger);
            }
            const r = await attestRecorded(fleet.h, t, ledger);
            if (r.outcome === 'refused') await sleep(20);
          }
        });
        const before = ledger.verdicts.length;
        while (ledger.verdicts.length < before + 6) await sleep(5);
        pg.stop(mode);
        expect((await readyz(backend)).body).toMatchObject({ status: 'not-ready', store: false });
        expect((await readyz(backend)).status).toBe(503);
        // Terminal requests while it is down: a coded 503.
        const t = fleet.terminals[1];
        if (t === undefined) throw new Error('no terminal');
        const res = await fleet.h.app.inject({
          method: 'POST',
          url: '/v1/challenges',
          payload: { terminalId: t.id },
        });
        expect(res.statusCode).toBe(503);
        expect(ErrorOut.parse(res.json()).error.code).toBe('POS_ERR_UNAVAILABLE');
        refusals.push(res.body);
        const down = ledger.verdicts.length;
        pg.start();
        // Recovers by itself: ready again, and the terminals get verdicts again.
        for (let i = 0; i < 200 && (await readyz(backend)).status !== 200; i++) await sleep(100);
        expect((await readyz(backend)).status).toBe(200);
        while (ledger.verdicts.length < down + 6) await sleep(5);
        stopping = true;
        await Promise.all(loops);
        expect(backend.running()).toBe(true);
        expect(ledger.uncoded).toEqual([]);
        for (const body of refusals) expect(body).not.toMatch(/\bat \S+ \(|ECONNREFUSED|postgres:\/\//);

        const verify = (await fleet.h.admin('GET', '/v1/audit/verify')).json<{ valid: boolean }>();
        expect(verify.valid).toBe(true);
        const cli = backend.auditVerifyCli();
        expect(cli.out['valid']).toBe(true);
        const store = await openPostgresStore({ url: pg.url, schema: 'pos', max: 2 });
        try {
          expect(await checkLedger(store, ledger)).toEqual([]);
        } finally {
          await store.close();
        }
      },
      60_000,
    );
  },
);
