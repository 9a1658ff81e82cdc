/**
 * Review issue 5, findings 1 and 2, through the routes:
 * #1 an app-version halt covers a terminal that reports the version after the halt (or whose version
 *    was unknown at halt time): halted with its halt message in the attestation request, no ticket,
 *    transactions refused; tickets and transactions fail closed on any active covering halt.
 * #2 a lift (or the terminal resume shortcut) racing a new halt never leaves the terminal
 *    resume-pending under an active halt.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeHarness, seedReferenceValues, CODE_HASH, type Harness, type SimTerminal } from '../helpers';
import { enrollInto, newMerchant } from './fleet-helpers';

let h: Harness;
beforeEach(async () => {
  h = await makeHarness();
  await seedReferenceValues(h);
  const rv = await h.admin('POST', '/v1/reference-values', {
    version: '9.9.9',
    build: 'release',
    codeHashes: [CODE_HASH],
    allowedShells: ['headless', 'electron'],
  });
  if (rv.statusCode !== 201) throw new Error(rv.body);
});
afterEach(async () => {
  await h.close();
});

const V999 = { app: { version: '9.9.9', build: 'release', codeHash: CODE_HASH } };

interface AttestOut {
  ticket?: { jws: string };
  halted: boolean;
  verdict: { tier: string };
}

/** POST /v1/transactions under a ticket (the body is never read: the halt check comes first). */
const transact = (t: SimTerminal, ticket: string): Promise<{ status: number; code: string | undefined }> =>
  t.transact(ticket);

async function sessionTicket(t: SimTerminal): Promise<string> {
  const out = (await t.attest('pre-transaction')).json<AttestOut>();
  if (out.ticket === undefined) throw new Error('no ticket');
  return out.ticket.jws;
}

describe('#1 app-version halts cover terminals that report the version later', () => {
  it('a terminal attesting with a halted version is halted in that request: no ticket, halt message, transactions 403', async () => {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    const before = await sessionTicket(t);
    const res = await h.admin('POST', '/v1/halts', { scope: 'app-version', target: '9.9.9', reason: 'CVE' });
    expect(res.json<{ terminals: number }>().terminals).toBe(0);
    const haltId = res.json<{ haltId: string }>().haltId;

    const out = (await t.attest('periodic', V999)).json<AttestOut>();
    expect(out.verdict.tier).toBe('affirming');
    expect(out.halted).toBe(true);
    expect(out.ticket).toBeUndefined();
    expect(await h.store.getTerminal(t.id)).toMatchObject({ state: 'halted', appVersion: '9.9.9' });
    const rows = await h.store.pendingOutbox(t.id);
    expect(rows.map((r) => [r.kind, r.haltId])).toEqual([['halt', haltId]]);
    // the operator sees the delivery under the halt
    const view = (await h.admin('GET', `/v1/halts/${haltId}`)).json<{
      deliveries: { terminalId: string }[];
    }>();
    expect(view.deliveries.map((d) => d.terminalId)).toEqual([t.id]);
    // the ticket it held before is refused
    expect(await transact(t, before)).toEqual({ status: 403, code: 'POS_ERR_TERMINAL_HALTED' });
    // and the next attestation (the same version, the one-transaction path's case) gets none either
    const again = (await t.attest('periodic', V999)).json<AttestOut>();
    expect(again.halted).toBe(true);
    expect(again.ticket).toBeUndefined();
  });

  it('a terminal whose version was unknown when the halt was made is halted at its first report of it', async () => {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    // A terminal enrolled before versions were recorded: the store reads no app version for it (the
    // halt below lists terminals by the stored column, so it does not include this one either).
    const store = h.store as unknown as { getTerminal: (id: string) => Promise<unknown> };
    const orig = store.getTerminal.bind(h.store);
    let unknownVersion = true;
    store.getTerminal = async (id) => {
      const row = await orig(id);
      return unknownVersion && id === t.id && typeof row === 'object' && row !== null
        ? { ...row, appVersion: null }
        : row;
    };
    const haltId = (
      await h.admin('POST', '/v1/halts', { scope: 'app-version', target: '9.9.9', reason: 'CVE' })
    ).json<{ haltId: string }>().haltId;
    const out = (await t.attest('periodic', V999)).json<AttestOut>();
    unknownVersion = false;
    expect(out.halted).toBe(true);
    expect(out.ticket).toBeUndefined();
    expect((await h.store.getTerminal(t.id))?.state).toBe('halted');
    expect((await h.store.pendingOutbox(t.id)).map((r) => [r.kind, r.haltId])).toEqual([['halt', haltId]]);
  });

  it('a version without reference values (a warning verdict, accepted) is recorded and its halt applied', async () => {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    const haltId = (
      await h.admin('POST', '/v1/halts', { scope: 'app-version', target: '7.7.7', reason: 'CVE' })
    ).json<{ haltId: string }>().haltId;
    const out = (
      await t.attest('periodic', { app: { version: '7.7.7', build: 'release', codeHash: CODE_HASH } })
    ).json<AttestOut>();
    expect(out.verdict.tier).toBe('warning');
    expect(out.ticket).toBeUndefined();
    expect(out.halted).toBe(true);
    expect(await h.store.getTerminal(t.id)).toMatchObject({ state: 'halted', appVersion: '7.7.7' });
    expect((await h.store.listHaltDeliveries(haltId)).map((r) => [r.terminalId, r.kind])).toEqual([
      [t.id, 'halt'],
    ]);
  });

  it('fails closed: an active covering halt refuses tickets and transactions even when the state says active', async () => {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    const before = await sessionTicket(t);
    const haltId = (
      await h.admin('POST', '/v1/halts', { scope: 'merchant', target: m, reason: 'fraud' })
    ).json<{ haltId: string }>().haltId;
    // A missed transition: the row says active although the merchant halt covers it.
    expect(await h.store.transitionTerminalState(t.id, 'halted', 'active', null, h.clock.now())).toBe(true);
    expect(await transact(t, before)).toEqual({ status: 403, code: 'POS_ERR_TERMINAL_HALTED' });
    const out = (await t.attest()).json<AttestOut>();
    expect(out.ticket).toBeUndefined();
    expect(out.halted).toBe(true);
    // it had its halt message already: none written twice
    expect((await h.store.pendingOutbox(t.id)).map((r) => r.haltId)).toEqual([haltId]);
  });

  it('review 2 L1: a resume-pending terminal covered by an active halt (message already written) gets no ticket at all', async () => {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    const haltId = (
      await h.admin('POST', '/v1/halts', { scope: 'merchant', target: m, reason: 'fraud' })
    ).json<{ haltId: string }>().haltId;
    expect((await h.store.listHaltDeliveries(haltId)).some((r) => r.terminalId === t.id)).toBe(true);
    // A missed transition (a race or a version halt delivered earlier): resume-pending under the halt.
    expect(await h.store.transitionTerminalState(t.id, 'halted', 'resume-pending', null, h.clock.now())).toBe(
      true,
    );
    const out = (await t.attest('pre-transaction')).json<AttestOut>();
    expect(out.ticket).toBeUndefined();
    expect(out.halted).toBe(true);
  });

  it('the one-transaction path issues no ticket to a covered terminal with an unchanged version', async () => {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    const version = (await h.store.getTerminal(t.id))?.appVersion;
    expect(typeof version).toBe('string');
    // An app-version halt stored without this terminal (as if listed before it reported the version).
    const now = h.clock.now();
    await h.store.createHalt(
      {
        id: 'hlt_late',
        scope: 'app-version',
        target: version ?? '',
        reason: 'CVE',
        createdBy: 'operator:x',
        createdAt: now,
        liftedAt: null,
        liftedBy: null,
      },
      [],
    );
    const out = (await t.attest()).json<AttestOut>();
    expect(out.ticket).toBeUndefined();
    expect(out.halted).toBe(true);
    expect((await h.store.getTerminal(t.id))?.state).toBe('halted');
    expect((await h.store.pendingOutbox(t.id)).map((r) => [r.kind, r.haltId])).toEqual([
      ['halt', 'hlt_late'],
    ]);
  });
});

/**
 * Pauses the k-th store call (any method) made after `arm()` until released: a slow round trip or
 * another process at that exact point. `reached` resolves when the pause starts; calls made while
 * paused (the racing halt) are not counted.
 */
function pauseAtCall(k: number): { arm: () => void; release: () => void; reached: Promise<void> } {
  const store = h.store as unknown as Record<string, unknown>;
  let calls = 0;
  let armed = false;
  let release!: () => void;
  let reached!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const reachedP = new Promise<void>((r) => (reached = r));
  // Every method, own or inherited (the SQLite store keeps its methods on a prototype).
  const names: string[] = [];
  for (const name in store) names.push(name);
  for (const name of names) {
    const fn = store[name];
    if (typeof fn !== 'function') continue;
    const bound = (fn as (...a: unknown[]) => unknown).bind(h.store);
    store[name] = async (...args: unknown[]) => {
      const out = await bound(...args);
      if (armed && ++calls === k) {
        armed = false;
        reached();
        await gate;
      }
      return out;
    };
  }
  return { arm: () => (armed = true), release, reached: reachedP };
}

/** Invariant: every active halt with a halt message for the terminal leaves it halted. */
async function assertInvariant(terminalId: string): Promise<void> {
  const active = await h.store.listHalts({ activeOnly: true, limit: 100 });
  for (const halt of active) {
    const rows = await h.store.listHaltDeliveries(halt.id);
    if (rows.some((r) => r.kind === 'halt' && r.terminalId === terminalId))
      expect((await h.store.getTerminal(terminalId))?.state).toBe('halted');
  }
}

describe('#2 a lift racing a new halt', () => {
  // The lift paused after each of its store calls in turn while a merchant halt is stored: at every
  // point, the invariant holds and the terminal gets no ticket.
  for (const route of ['lift', 'resume'] as const) {
    it(`${route}: a merchant halt stored at any point of it leaves the terminal halted`, async () => {
      let reachedEnd = false;
      let paused = 0;
      for (let k = 1; k <= 40 && !reachedEnd; k++) {
        await h.close();
        h = await makeHarness();
        await seedReferenceValues(h);
        const m = await newMerchant(h);
        const { t } = await enrollInto(h, m);
        const h1 = (
          await h.admin('POST', '/v1/halts', { scope: 'terminal', target: t.id, reason: 'h1' })
        ).json<{ haltId: string }>().haltId;
        const pause = pauseAtCall(k);
        pause.arm();
        const done =
          route === 'lift'
            ? h.admin('POST', `/v1/halts/${h1}/lift`, { reason: 'false alarm' })
            : h.admin('POST', `/v1/terminals/${t.id}/resume`, { reason: 'false alarm' });
        const first = await Promise.race([pause.reached.then(() => 'paused'), done.then(() => 'done')]);
        if (first === 'done') reachedEnd = true;
        else paused++;
        // The halt runs while the lift is paused; if it needs something the paused lift holds (the
        // in-process audit chain), it completes after the release: that ordering is tried too.
        const h2p = h.admin('POST', '/v1/halts', { scope: 'merchant', target: m, reason: 'fraud' });
        await Promise.race([h2p, new Promise((r) => setTimeout(r, 25))]);
        pause.release();
        expect((await h2p).statusCode).toBe(201);
        const res = await done;
        expect([200, 409], res.body).toContain(res.statusCode);
        expect((await h.store.getTerminal(t.id))?.state, `paused at call ${k}`).toBe('halted');
        await assertInvariant(t.id);
        const last = (await h.store.pendingOutbox(t.id)).at(-1);
        expect(last?.kind, `paused at call ${k}`).toBe('halt');
        const out = (await t.attest()).json<AttestOut>();
        expect(out.ticket).toBeUndefined();
      }
      // the loop went past the lift's last store call: every point was tried, and there were some
      expect(reachedEnd).toBe(true);
      expect(paused).toBeGreaterThan(1);
    }, 120_000);
  }
});
