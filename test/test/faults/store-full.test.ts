/**
 * The SQLite store on a full disk and on a read-only file system. The store lives on a small tmpfs
 * mounted in a private mount namespace (held by a `sleep` started under `unshare -m`; the back-end
 * and its CLI run in it through `nsenter`), so the disk really fills (ENOSPC) and the file system
 * really turns read-only, without touching the machine's own mounts.
 * - Full disk while the back-end runs: writes are refused with 503 POS_ERR_STORE_FULL (never a 500,
 *   no stack), /readyz answers 503 with `fault: "full"`, reads still work; once space is freed the
 *   back-end works again by itself, everything acknowledged is there, the audit chain verifies and
 *   `PRAGMA integrity_check` is ok.
 * - Read-only file system: Linux refuses to remount a file system read-only while a process holds a
 *   file on it open for writing (EBUSY), and SQLite holds its database, WAL and shared-memory files
 *   open, so the file system turns read-only between a stop and a start. The back-end then refuses
 *   to start with one coded line (POS_ERR_STORE_READ_ONLY, exit 1, no stack), `audit verify`
 *   refuses the same way, nothing is changed, and once writable again it starts and the chain verifies.
 *   (A store that turns read-only under a running back-end, e.g. ext4 remounting itself read-only
 *   after I/O errors, is answered the same way as a full one: 503 POS_ERR_STORE_READ_ONLY, /readyz
 *   `fault: "read-only"`; backend/test/server/store-faults.test.ts maps the errors. Not reproduced here.)
 * Skipped, with the reason printed, when not root or when unshare/nsenter/mount do not work here.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../../backend/src/store/sqlite';
import {
  attestRecorded,
  Backend,
  checkLedger,
  enrollFleet,
  ErrorOut,
  newLedger,
  readAuditRecorded,
  type Fleet,
  type Ledger,
} from './backend-process';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (a tmpfs mounted in a private mount namespace)';
  const dir = mkdtempSync(join(tmpdir(), 'pos-fault-probe-'));
  try {
    const probe = spawnSync(
      'unshare',
      ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o size=1m tmpfs "${dir}"`],
      {
        encoding: 'utf8',
      },
    );
    if (probe.status !== 0)
      return `unshare -m / mount -t tmpfs do not work here (${probe.stderr.trim().slice(0, 200)})`;
    if (spawnSync('nsenter', ['--version']).status !== 0) return 'nsenter is not installed';
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const SKIP = skipReason();
if (SKIP !== undefined) console.warn(`store-full: skipped: ${SKIP}`);

/** A tmpfs of `size` in a private mount namespace, held open by a sleeping process. */
class PrivateTmpfs {
  readonly mountPoint = mkdtempSync(join(tmpdir(), 'pos-fault-tmpfs-'));
  private holder: ChildProcess | undefined;

  async mount(size: string): Promise<void> {
    const holder = spawn(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mount -t tmpfs -o size=${size},mode=0700 tmpfs "$0" && echo mounted && exec sleep 600`,
        this.mountPoint,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.holder = holder;
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: holder.stdout }).once('line', () => resolve());
      holder.once('exit', (code) => reject(new Error(`unshare exited ${String(code)}`)));
    });
  }

  get pid(): number {
    const pid = this.holder?.pid;
    if (pid === undefined) throw new Error('not mounted');
    return pid;
  }

  /** Runs a command in the namespace (nsenter). */
  run(args: readonly string[]): { status: number | null; stderr: string } {
    const r = spawnSync('nsenter', ['-t', String(this.pid), '-m', '--', ...args], { encoding: 'utf8' });
    return { status: r.status, stderr: r.stderr };
  }

  /** nsenter into the namespace: the back-end's command prefix. */
  prefix(): string[] {
    return ['nsenter', '-t', String(this.pid), '-m', '--'];
  }

  /** Where this process sees the namespace's `/`. */
  root(): string {
    return `/proc/${this.pid}/root`;
  }

  cleanup(): void {
    if (this.holder?.pid !== undefined && this.holder.exitCode === null) this.holder.kill('SIGKILL');
    rmSync(this.mountPoint, { recursive: true, force: true });
  }
}

async function readyz(backend: Backend): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${backend.url}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/**
 * After a clean stop: `pos-backend audit verify` (in the namespace), then a copy of the store (SQLite
 * resolves /proc/PID/root itself, to this namespace's path) passes `PRAGMA integrity_check` and holds
 * everything acknowledged.
 */
async function expectStoreIntact(backend: Backend, ledger: Ledger): Promise<void> {
  expect((await backend.kill('SIGTERM')).code).toBe(0);
  const cli = backend.auditVerifyCli();
  expect(cli.out['valid']).toBe(true);
  const copy = mkdtempSync(join(tmpdir(), 'pos-fault-copy-'));
  try {
    for (const f of ['backend.sqlite', 'backend.sqlite-wal']) {
      const from = backend.hostPath(join(backend.options.dataDir, f));
      if (existsSync(from)) copyFileSync(from, join(copy, f));
    }
    const path = join(copy, 'backend.sqlite');
    const db = new Database(path, { fileMustExist: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }
    const store = openSqliteStore({ path });
    try {
      expect(await checkLedger(store, ledger)).toEqual([]);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

/** Attests with every terminal `rounds` times (recorded). */
async function attestAll(fleet: Fleet, ledger: Ledger, rounds: number): Promise<void> {
  for (let i = 0; i < rounds; i++) for (const t of fleet.terminals) await attestRecorded(fleet.h, t, ledger);
}

describe.skipIf(SKIP !== undefined)(
  `the SQLite store's disk full or read-only${SKIP === undefined ? '' : ` (skipped: ${SKIP})`}`,
  () => {
    let fs: PrivateTmpfs | undefined;
    let backend: Backend | undefined;
    afterEach(async (context) => {
      if (context.task.result?.state === 'fail' && backend !== undefined)
        console.error(`pos-backend stderr:\n${backend.stderr.slice(-30).join('\n')}`);
      await backend?.kill('SIGKILL');
      fs?.cleanup();
    });

    it('full disk: writes refused with POS_ERR_STORE_FULL, reads work, /readyz says so; recovers when space is freed', async () => {
      fs = new PrivateTmpfs();
      await fs.mount('8m');
      const dataDir = join(fs.mountPoint, 'data');
      const b = await Backend.create({ dataDir, prefix: fs.prefix(), root: fs.root() });
      backend = b;
      await b.start();
      const fleet = await enrollFleet(b, 3);
      const ledger = newLedger();
      await attestAll(fleet, ledger, 3);
      expect(ledger.verdicts.length).toBe(9);

      // Fill the disk (dd stops at ENOSPC).
      expect(
        fs.run([
          'sh',
          '-c',
          `dd if=/dev/zero of="${fs.mountPoint}/filler" bs=64k 2>/dev/null; df -k "${fs.mountPoint}" | tail -1`,
        ]).status,
      ).toBe(0);
      // Writes are refused, coded; a few may still fit in pages the store already holds.
      const refusals: string[] = [];
      for (let i = 0; i < 100 && refusals.length < 3; i++) {
        const t = fleet.terminals[i % 3];
        if (t === undefined) break;
        const res = await t.submit(t.evidence(await t.challenge(), 'periodic'));
        if (res.statusCode !== 200) {
          expect(res.statusCode).toBe(503);
          expect(ErrorOut.parse(res.json()).error.code).toBe('POS_ERR_STORE_FULL');
          expect(res.body).not.toMatch(/\bat \S+ \(|\/tmp\/|node_modules/);
          refusals.push(res.body);
        }
      }
      expect(refusals.length).toBe(3);
      expect(await readyz(b)).toMatchObject({
        status: 503,
        body: { status: 'not-ready', store: false, fault: 'full' },
      });
      // An operator write is refused the same way; reads are answered.
      const halt = await fleet.h.admin('POST', '/v1/halts', { scope: 'fleet', reason: 'disk full test' });
      expect(halt.statusCode).toBe(503);
      expect(ErrorOut.parse(halt.json()).error.code).toBe('POS_ERR_STORE_FULL');
      expect((await fleet.h.admin('GET', `/v1/terminals/${fleet.terminals[0]?.id ?? ''}`)).statusCode).toBe(
        200,
      );
      const verify = (await fleet.h.admin('GET', '/v1/audit/verify')).json<{ valid: boolean }>();
      expect(verify.valid).toBe(true);
      await readAuditRecorded(fleet.h, ledger);
      expect(b.running()).toBe(true);

      // Space back: ready again without a restart, and the terminals attest.
      expect(fs.run(['rm', '-f', `${fs.mountPoint}/filler`]).status).toBe(0);
      expect(await readyz(b)).toMatchObject({ status: 200, body: { status: 'ready', store: true } });
      const before = ledger.verdicts.length;
      await attestAll(fleet, ledger, 2);
      expect(ledger.verdicts.length).toBe(before + 6);
      expect(ledger.uncoded).toEqual([]);
      await readAuditRecorded(fleet.h, ledger);
      await expectStoreIntact(b, ledger);
    }, 80_000);

    it('read-only file system: the back-end refuses to start with POS_ERR_STORE_READ_ONLY; nothing changes', async () => {
      fs = new PrivateTmpfs();
      await fs.mount('16m');
      const dataDir = join(fs.mountPoint, 'data');
      const b = await Backend.create({ dataDir, prefix: fs.prefix(), root: fs.root() });
      backend = b;
      await b.start();
      const fleet = await enrollFleet(b, 2);
      const ledger = newLedger();
      await attestAll(fleet, ledger, 2);
      await readAuditRecorded(fleet.h, ledger);
      expect((await b.kill('SIGTERM')).code).toBe(0);

      // While nothing holds a file open for writing, the file system can turn read-only (not before:
      // Linux refuses with EBUSY). The back-end then refuses to start: one coded line, no stack.
      const ro = fs.run(['mount', '-o', 'remount,ro', fs.mountPoint]);
      expect(ro.stderr).toBe('');
      await expect(b.start()).rejects.toThrow(/pos-backend: POS_ERR_STORE_READ_ONLY: /);
      expect(b.child?.exitCode).toBe(1);
      expect(b.stderr.filter((l) => /^\s+at |node:internal|Error: /.test(l))).toEqual([]);
      // `pos-backend audit verify` opens the same store: it refuses the same way.
      const cli = b.auditVerifyCli();
      expect(cli.code).toBe(1);
      expect(cli.out['stderr']).toMatch(/^pos-backend: POS_ERR_STORE_READ_ONLY: /m);

      // Writable again: it starts, and everything is as it was.
      expect(fs.run(['mount', '-o', 'remount,rw', fs.mountPoint]).status).toBe(0);
      await b.start();
      expect((await readyz(b)).status).toBe(200);
      await attestAll(fleet, ledger, 1);
      expect(ledger.verdicts.length).toBe(6);
      expect(ledger.uncoded).toEqual([]);
      await expectStoreIntact(b, ledger);
    }, 80_000);
  },
);
