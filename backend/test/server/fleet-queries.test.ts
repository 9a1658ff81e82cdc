/**
 * The dashboard's fleet queries: `GET /v1/terminals` (filters, keyset paging, tenant filtering) and
 * `GET /v1/fleet/summary` (counts by state, per merchant for a merchant caller).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { seedReferenceValues, SimTerminal } from '../helpers';
import { inject, makeFileHarness, operatorToken, type FileHarness } from '../fleet-helpers';

interface TerminalsOut {
  terminals: {
    terminalId: string;
    merchantId: string;
    state: string;
    stale: boolean;
    lastTier: string | null;
  }[];
  next: string | null;
}
interface SummaryOut {
  merchantId: string | null;
  terminals: Record<'total' | 'trusted' | 'warning' | 'halted' | 'resumePending' | 'stale' | 'other', number>;
}

let h: FileHarness;
let a1: SimTerminal;
let a2: SimTerminal;
let b1: SimTerminal;
let merchantA: string;
let merchantB: string;

beforeEach(async () => {
  h = await makeFileHarness(':memory:', { attestationIntervalS: 60, livenessMarginS: 30 });
  await seedReferenceValues(h);
  a1 = new SimTerminal(h);
  await a1.enroll();
  merchantA = (await h.store.getTerminal(a1.id))?.merchantId ?? '';
  // A second terminal of merchant A: a code of A's.
  a2 = new SimTerminal(h);
  const code = (await h.admin('POST', `/v1/merchants/${merchantA}/enrollment-codes`, {})).json<{
    code: string;
  }>().code;
  const challenge = await a2.challenge(true);
  const res = await h.app.inject({
    method: 'POST',
    url: '/v1/enrollments',
    payload: {
      code,
      deviceJwk: a2.jwk,
      readerSerial: a2.readerSerial,
      evidence: a2.evidence(challenge, 'enrollment'),
    },
  });
  expect(res.statusCode).toBe(201);
  a2.id = res.json<{ terminalId: string }>().terminalId;
  b1 = new SimTerminal(h);
  await b1.enroll();
  merchantB = (await h.store.getTerminal(b1.id))?.merchantId ?? '';
});
afterEach(async () => {
  await h.close();
});

const ids = (out: TerminalsOut): string[] => out.terminals.map((t) => t.terminalId);

describe('GET /v1/terminals', () => {
  it('lists every terminal for a provider-wide caller, filtered and paged by id', async () => {
    const all = (await h.admin('GET', '/v1/terminals')).json<TerminalsOut>();
    expect(ids(all).sort()).toEqual([a1.id, a2.id, b1.id].sort());
    expect(ids(all)).toEqual([...ids(all)].sort());
    expect(all.next).toBeNull();
    expect(all.terminals.every((t) => t.lastTier === 'affirming' && !t.stale)).toBe(true);

    const onlyA = (await h.admin('GET', `/v1/terminals?merchant=${merchantA}`)).json<TerminalsOut>();
    expect(ids(onlyA).sort()).toEqual([a1.id, a2.id].sort());

    const page1 = (await h.admin('GET', '/v1/terminals?limit=2')).json<TerminalsOut>();
    expect(page1.terminals).toHaveLength(2);
    expect(page1.next).toBe(page1.terminals[1]?.terminalId);
    const page2 = (
      await h.admin('GET', `/v1/terminals?limit=2&after=${page1.next ?? ''}`)
    ).json<TerminalsOut>();
    expect([...ids(page1), ...ids(page2)]).toEqual(ids(all));

    await h.store.setTerminalState(b1.id, 'halted', 'test', h.clock.now());
    expect(ids((await h.admin('GET', '/v1/terminals?state=halted')).json<TerminalsOut>())).toEqual([b1.id]);

    h.clock.t += 91_000;
    await a2.attest(); // a2 stays live; the others go stale
    expect(await h.app.liveness.sweepOnce()).toBe(2);
    expect(ids((await h.admin('GET', '/v1/terminals?stale=false')).json<TerminalsOut>())).toEqual([a2.id]);
    expect(ids((await h.admin('GET', '/v1/terminals?stale=true')).json<TerminalsOut>()).sort()).toEqual(
      [a1.id, b1.id].sort(),
    );
    expect((await h.admin('GET', '/v1/terminals?appVersion=9.9.9')).json<TerminalsOut>().terminals).toEqual(
      [],
    );
    expect(ids((await h.admin('GET', '/v1/terminals?appVersion=1.2.3')).json<TerminalsOut>())).toHaveLength(
      3,
    );
  });

  it('a merchant caller sees its own terminals only; another merchant answers 404', async () => {
    const token = await operatorToken(h, 'merchant', merchantA);
    const mine = await inject(h.app, token, 'GET', '/v1/terminals');
    expect(mine.statusCode).toBe(200);
    expect(ids(mine.json<TerminalsOut>()).sort()).toEqual([a1.id, a2.id].sort());
    const other = await inject(h.app, token, 'GET', `/v1/terminals?merchant=${merchantB}`);
    expect(other.statusCode).toBe(404);
    expect(other.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_MERCHANT_UNKNOWN');
    const unknown = await h.admin('GET', '/v1/terminals?merchant=mer_nobody');
    expect(unknown.statusCode).toBe(404);
  });

  it('refuses a malformed query and an unauthenticated caller', async () => {
    for (const q of ['limit=0', 'limit=501', 'state=sleeping', 'stale=maybe', 'colour=red']) {
      const res = await h.admin('GET', `/v1/terminals?${q}`);
      expect(res.statusCode, q).toBe(400);
    }
    expect((await h.app.inject({ method: 'GET', url: '/v1/terminals' })).statusCode).toBe(401);
  });
});

describe('GET /v1/fleet/summary', () => {
  it('counts terminals by state for the fleet and per merchant', async () => {
    await h.store.setTerminalState(b1.id, 'halted', 'test', h.clock.now());
    const extra = { measurements: [{ name: 'remote-session', status: 'fail', method: 'test' }] };
    expect((await a2.attest('periodic', extra)).json<{ verdict: { tier: string } }>().verdict.tier).toBe(
      'warning',
    );
    const fleet = (await h.admin('GET', '/v1/fleet/summary')).json<SummaryOut>();
    expect(fleet).toMatchObject({
      merchantId: null,
      terminals: { total: 3, trusted: 1, warning: 1, halted: 1, resumePending: 0, stale: 0, other: 0 },
    });

    h.clock.t += 91_000;
    await h.app.liveness.sweepOnce();
    const later = (await h.admin('GET', '/v1/fleet/summary')).json<SummaryOut>();
    expect(later.terminals).toMatchObject({ total: 3, trusted: 0, warning: 0, halted: 1, stale: 2 });

    const token = await operatorToken(h, 'merchant', merchantA);
    const mine = (await inject(h.app, token, 'GET', '/v1/fleet/summary')).json<SummaryOut>();
    expect(mine).toMatchObject({ merchantId: merchantA, terminals: { total: 2, halted: 0, stale: 2 } });
    expect((await inject(h.app, token, 'GET', `/v1/fleet/summary?merchant=${merchantB}`)).statusCode).toBe(
      404,
    );
    const forB = (await h.admin('GET', `/v1/fleet/summary?merchant=${merchantB}`)).json<SummaryOut>();
    expect(forB).toMatchObject({ merchantId: merchantB, terminals: { total: 1, halted: 1 } });
  });
});
