/**
 * kill -9 of a real `pos-backend` under attestation load, then a restart on the same store (SQLite in
 * a temporary data directory; PostgreSQL in a fresh schema): everything a client was answered is
 * still there (verdicts with their tickets and audit entries, halts and lifts, the audit entries the
 * operator read), the audit chain verifies (endpoint and CLI), counters did not go back, a challenge
 * in flight at the kill is used at most once, and the terminals attest again.
 * The kill comes after a seeded number of answered verdicts plus a seeded delay (the seed is printed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../../backend/src/store/sqlite';
import { openPostgresStore } from '../../../backend/src/store/postgres';
import type { Store } from '../../../backend/src/store/types';
import { describePg, dropSchemas, freshSchemaName, PG_URL } from '../../../backend/test/pg-helpers';
import type { SimTerminal } from '../../../backend/test/helpers';
import {
  attestRecorded,
  Backend,
  checkLedger,
  enrollFleet,
  faultSeed,
  haltAndLiftRecorded,
  newLedger,
  readAuditRecorded,
  seeded,
  type Fleet,
  type Ledger,
} from './backend-process';

const TERMINALS = 4;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Terminals 1..n-1 attest in a loop, terminal 0 is halted and lifted by the operator, who also reads
 * the audit chain; the process is killed after `killAfter` answered verdicts plus `delayMs`. Resolves
 * with the challenges that were in flight at the kill.
 */
async function loadUntilKilled(
  backend: Backend,
  fleet: Fleet,
  ledger: Ledger,
  killAfter: number,
  delayMs: number,
): Promise<{ terminal: SimTerminal; challenge: string }[]> {
  const inFlight: { terminal: SimTerminal; challenge: string }[] = [];
  const kill = (async () => {
    while (ledger.verdicts.length < killAfter && backend.running()) await sleep(2);
    await sleep(delayMs);
    return backend.kill('SIGKILL');
  })();
  const loops = fleet.terminals.map(async (t, i) => {
    if (i === 0) {
      while (backend.running()) {
        await haltAndLiftRecorded(fleet.h, t, ledger);
        await readAuditRecorded(fleet.h, ledger);
        const r = await attestRecorded(fleet.h, t, ledger);
        if (r.inFlight !== undefined) inFlight.push({ terminal: t, challenge: r.inFlight });
      }
      return;
    }
    for (;;) {
      const r = await attestRecorded(fleet.h, t, ledger);
      if (r.inFlight !== undefined) inFlight.push({ terminal: t, challenge: r.inFlight });
      if (r.outcome === 'unanswered') return;
    }
  });
  const killed = await kill;
  await Promise.all(loops);
  expect(killed.signal).toBe('SIGKILL');
  return inFlight;
}

interface AttestBody {
  verdict?: { tier: string; reasons: { code: string }[] };
  ticket?: unknown;
}

/** The crash, the restart, and every check but the store's own (done by the caller, engine by engine). */
async function crashAndRestart(backend: Backend, name: string): Promise<Ledger> {
  const seed = faultSeed(name);
  const rand = seeded(seed);
  await backend.start();
  const fleet = await enrollFleet(backend, TERMINALS);
  const ledger = newLedger();
  const killAfter = 10 + Math.floor(rand() * 30);
  const inFlight = await loadUntilKilled(backend, fleet, ledger, killAfter, Math.floor(rand() * 25));
  expect(ledger.verdicts.length).toBeGreaterThanOrEqual(killAfter);
  expect(ledger.halts.length).toBeGreaterThan(0);
  expect(ledger.audit.size).toBeGreaterThan(0);

  await backend.start();
  const ready = await fetch(`${backend.url}/readyz`);
  expect(ready.status).toBe(200);
  const verify = (await fleet.h.admin('GET', '/v1/audit/verify')).json<{ valid: boolean; count: number }>();
  expect(verify.valid).toBe(true);
  expect(verify.count).toBeGreaterThanOrEqual(Math.max(...ledger.audit.keys()));

  // A challenge in flight at the kill is used at most once after the restart (its use survived the
  // crash, or it is used now, once).
  for (const { terminal, challenge } of inFlight) {
    const tickets = [];
    for (let i = 0; i < 2; i++) {
      const res = await terminal.submit(terminal.evidence(challenge, 'periodic'));
      tickets.push(res.json<AttestBody>().ticket);
    }
    expect(tickets.filter((t) => t !== undefined).length).toBeLessThanOrEqual(1);
  }
  // The terminals attest again after the restart (the halted-and-lifted one may be resume-pending).
  for (const t of fleet.terminals.slice(1)) {
    const r = await attestRecorded(fleet.h, t, ledger);
    expect(r.outcome).toBe('answered');
  }
  await readAuditRecorded(fleet.h, ledger);
  // A challenge whose verdict was answered before the kill cannot be used again after it.
  const used = ledger.verdicts.find((v) => v.terminalId === fleet.terminals[1]?.id);
  const t1 = fleet.terminals[1];
  if (used === undefined || t1 === undefined) throw new Error('no verdict of terminal 1');
  const replay = (await t1.submit(t1.evidence(used.challenge, 'periodic'))).json<AttestBody>();
  expect(replay.ticket).toBeUndefined();
  expect(JSON.stringify(replay.verdict?.reasons)).toContain('POS_ERR_ATTEST_CHALLENGE_USED');

  expect(ledger.uncoded).toEqual([]);
  const cli = backend.auditVerifyCli();
  expect(cli.out['valid']).toBe(true);
  expect(cli.code).toBe(0);
  const stopped = await backend.kill('SIGTERM');
  expect(stopped.code).toBe(0);
  console.log(
    `${name}: ${ledger.verdicts.length} verdicts, ${ledger.halts.length} halts, ${ledger.audit.size} audit entries acknowledged; ${inFlight.length} in flight at the kill`,
  );
  return ledger;
}

async function expectLedgerKept(store: Store, ledger: Ledger): Promise<void> {
  try {
    expect(await checkLedger(store, ledger)).toEqual([]);
  } finally {
    await store.close();
  }
}

describe('kill -9 of pos-backend under attestation load (SQLite)', () => {
  const root = mkdtempSync(join(tmpdir(), 'pos-fault-crash-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('keeps every acknowledged verdict, halt and audit entry; the chain verifies; integrity ok', async () => {
    const dataDir = join(root, 'data');
    const backend = await Backend.create({ dataDir });
    try {
      const ledger = await crashAndRestart(backend, 'backend-crash sqlite');
      const path = join(dataDir, 'backend.sqlite');
      const db = new Database(path, { readonly: true });
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      } finally {
        db.close();
      }
      await expectLedgerKept(openSqliteStore({ path }), ledger);
    } finally {
      await backend.kill('SIGKILL');
    }
  }, 80_000);
});

describePg('kill -9 of pos-backend under attestation load (PostgreSQL)', () => {
  const root = mkdtempSync(join(tmpdir(), 'pos-fault-crash-pg-'));
  const schema = freshSchemaName('crash');
  afterAll(async () => {
    rmSync(root, { recursive: true, force: true });
    await dropSchemas([schema]);
  });

  it('keeps every acknowledged verdict, halt and audit entry; the chain verifies', async () => {
    const backend = await Backend.create({ dataDir: join(root, 'data'), pg: { url: PG_URL, schema } });
    try {
      const ledger = await crashAndRestart(backend, 'backend-crash postgres');
      await expectLedgerKept(await openPostgresStore({ url: PG_URL, schema, max: 2 }), ledger);
    } finally {
      await backend.kill('SIGKILL');
    }
  }, 80_000);
});
