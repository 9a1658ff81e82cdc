/**
 * A real `pos-backend` (SQLite) stopped (SIGTERM) or killed (SIGKILL) and started again on the same
 * store and port:
 * - during attestation: the terminal's client gets a clean answer (a coded 503, or no connection;
 *   never a 500), retries, and gets a verdict and ticket after the restart; a challenge already used
 *   before the restart is refused after it, and one issued before it but unused is usable once.
 * - during a sale: a PIN transaction interrupted at a seeded moment is never approved twice. The
 *   PIN-entry ticket is consumed before the acquirer is asked, so the retry of the same request after
 *   the restart is refused with POS_ERR_TICKET_USED when the ticket was spent, approved only when the
 *   first attempt never reached the store; the store holds at most one transaction per ticket.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CA_CERT_FILE, CA_DIR, createIdentity } from '@pos/device-sim/state/identity';
import { afterAll, describe, expect, it } from 'vitest';
import { SimTerminal, useRealReader } from '../../../backend/test/helpers';
import { openSqliteStore } from '../../../backend/src/store/sqlite';
import { pinTicket, readerOutput, transact } from '../../../backend/test/fleet-helpers';
import {
  attestRecorded,
  Backend,
  enrollFleet,
  ErrorOut,
  faultSeed,
  newLedger,
  seeded,
  ticketJti,
} from './backend-process';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface AttestBody {
  verdict?: { tier: string; reasons: { code: string }[] };
  ticket?: { jws: string };
}

describe.each(['SIGTERM', 'SIGKILL'] as const)('pos-backend restarted (%s) during attestation', (signal) => {
  const root = mkdtempSync(join(tmpdir(), 'pos-fault-restart-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('clients get a clean error, retry and get a verdict; used challenges stay used', async () => {
    const backend = await Backend.create({ dataDir: join(root, 'data') });
    try {
      await backend.start();
      const fleet = await enrollFleet(backend, 3);
      const [a, ...others] = fleet.terminals;
      if (a === undefined) throw new Error('no terminal');
      // Before the restart: one challenge used (answered), one issued and not used.
      const usedChallenge = await a.challenge();
      expect((await a.submit(a.evidence(usedChallenge, 'periodic'))).json<AttestBody>().ticket).toBeDefined();
      const unusedChallenge = await a.challenge();

      // The others attest in a loop; the signal comes mid-load. Every answer is a verdict or a coded error.
      const ledger = newLedger();
      let stopping = false;
      const loops = others.map(async (t) => {
        while (!stopping) await attestRecorded(fleet.h, t, ledger);
      });
      while (ledger.verdicts.length < 6) await sleep(2);
      const exit = await backend.kill(signal);
      stopping = true;
      await Promise.all(loops);
      if (signal === 'SIGTERM') expect(exit.code).toBe(0);
      else expect(exit.signal).toBe('SIGKILL');
      expect(ledger.uncoded).toEqual([]);

      // While it is down: a clean failure (connection refused), not a hang.
      await expect(fetch(`${backend.url}/readyz`)).rejects.toThrow();
      // The client retries until the process is back, then gets its verdict.
      const restarted = backend.start();
      for (const t of others) {
        let got: AttestBody | undefined;
        for (let attempt = 0; got?.ticket === undefined && attempt < 200; attempt++) {
          const r = await attestRecorded(fleet.h, t, ledger);
          if (r.outcome === 'answered') got = { ticket: { jws: 'answered' } };
          else await sleep(50);
        }
        expect(got?.ticket).toBeDefined();
      }
      await restarted;
      expect(ledger.uncoded).toEqual([]);

      const replay = (await a.submit(a.evidence(usedChallenge, 'periodic'))).json<AttestBody>();
      expect(replay.ticket).toBeUndefined();
      expect(JSON.stringify(replay.verdict?.reasons)).toContain('POS_ERR_ATTEST_CHALLENGE_USED');
      // The challenge issued before the restart but not used: used once (whatever the verdict: that
      // replay just halted `a`), then refused as used.
      const first = (await a.submit(a.evidence(unusedChallenge, 'periodic'))).json<AttestBody>();
      const second = (await a.submit(a.evidence(unusedChallenge, 'periodic'))).json<AttestBody>();
      expect(JSON.stringify(first.verdict?.reasons)).not.toContain('POS_ERR_ATTEST_CHALLENGE_USED');
      expect(JSON.stringify(second.verdict?.reasons)).toContain('POS_ERR_ATTEST_CHALLENGE_USED');

      const verify = (await fleet.h.admin('GET', '/v1/audit/verify')).json<{ valid: boolean }>();
      expect(verify.valid).toBe(true);
    } finally {
      await backend.kill('SIGKILL');
    }
  }, 60_000);
});

describe('pos-backend restarted during a sale (PIN transaction)', () => {
  const root = mkdtempSync(join(tmpdir(), 'pos-fault-sale-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('an interrupted sale is never approved twice; the retry of a spent ticket is POS_ERR_TICKET_USED', async () => {
    const rand = seeded(faultSeed('backend-restart sale'));
    const readerDir = join(root, 'reader');
    const made = await createIdentity(readerDir);
    if (!made.ok) throw new Error(made.code);
    const dataDir = join(root, 'data');
    const backend = await Backend.create({
      dataDir,
      args: ['--reader-ca', join(readerDir, CA_DIR, CA_CERT_FILE)],
    });
    try {
      await backend.start();
      const fleet = await enrollFleet(backend, 0);
      const t = new SimTerminal(fleet.h);
      useRealReader(t, made.identity);
      expect((await t.enroll()).statusCode).toBe(201);

      const outcomes: string[] = [];
      const jtis: string[] = [];
      let answeredApprovals = 0;
      for (const signal of ['SIGKILL', 'SIGKILL', 'SIGKILL', 'SIGTERM'] as const) {
        const ticket = await pinTicket(t);
        const jti = ticketJti(ticket);
        const body = readerOutput('visa-pin', '1234');
        const sale = transact(fleet.h, t, body, ticket).then(
          (res) => ({ status: res.statusCode, body: res.body }),
          () => undefined,
        );
        await sleep(Math.floor(rand() * 15));
        const exit = await backend.kill(signal);
        if (signal === 'SIGTERM') expect(exit.code).toBe(0);
        const first = await sale;
        await backend.start();
        // The terminal retries the same sale (same ticket, same reader output, a fresh proof).
        const retry = await transact(fleet.h, t, body, ticket);
        const approvals = [first, { status: retry.statusCode, body: retry.body }].filter(
          (r) => r?.status === 200 && (JSON.parse(r.body) as { approved?: boolean }).approved === true,
        );
        expect(approvals.length).toBeLessThanOrEqual(1);
        if (first !== undefined) {
          // Answered before the stop: only an approval or a coded refusal, and the retry is refused.
          if (first.status >= 400)
            expect(ErrorOut.parse(JSON.parse(first.body)).error.code).toMatch(/^POS_ERR_/);
          expect(first.status).not.toBe(500);
        }
        if (retry.statusCode !== 200) {
          expect(retry.statusCode).toBe(401);
          expect(ErrorOut.parse(retry.json()).error.code).toBe('POS_ERR_TICKET_USED');
        }
        outcomes.push(
          `${signal}:${first === undefined ? 'unanswered' : String(first.status)}/${retry.statusCode}`,
        );
        jtis.push(jti);
        answeredApprovals += approvals.length;
      }
      console.log(`backend-restart sale: first/retry outcomes ${outcomes.join(' ')}`);
      // A SIGTERM lets a sale the process has begun finish (answered; the retry refused); one whose
      // bytes it had not read yet is dropped with the idle connection, unanswered, like a kill.
      expect(outcomes[3]).toMatch(/^SIGTERM:(200\/401|unanswered\/(200|401))$/);
      const verify = (await fleet.h.admin('GET', '/v1/audit/verify')).json<{ valid: boolean }>();
      expect(verify.valid).toBe(true);
      await backend.kill('SIGTERM');
      // The store: at most one transaction under each ticket, and every answered approval is there.
      const store = openSqliteStore({ path: join(dataDir, 'backend.sqlite') });
      try {
        const txns = await store.listTransactions(t.id, 100);
        for (const jti of jtis) expect(txns.filter((x) => x.ticketJti === jti).length).toBeLessThanOrEqual(1);
        expect(txns.filter((x) => x.approved).length).toBeGreaterThanOrEqual(answeredApprovals);
        expect(txns.length).toBeLessThanOrEqual(jtis.length);
      } finally {
        await store.close();
      }
    } finally {
      await backend.kill('SIGKILL');
    }
  }, 80_000);
});
