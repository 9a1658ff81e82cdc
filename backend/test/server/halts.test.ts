/**
 * Halts by scope through the operator API: stored, the covered terminals halted, one outbox message
 * each (the deliveries operators see), lifting with overlapping halts, enrollment under a halt,
 * and the merchant-scoped principal's limits.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashApiToken } from '../../src/server/context';
import { makeHarness, seedReferenceValues, type Harness } from '../helpers';
import { enrollInto, newMerchant } from './fleet-helpers';

interface HaltView {
  haltId: string;
  scope: string;
  liftedAt: number | null;
  deliveries: {
    terminalId: string;
    seq: number;
    kind: string;
    sentAt: number | null;
    ackedAt: number | null;
  }[];
  acknowledged: number;
  pending: number;
}

const code = (res: { json<T>(): T }): string => res.json<{ error: { code: string } }>().error.code;

let h: Harness;
beforeEach(async () => {
  h = await makeHarness();
  await seedReferenceValues(h);
});
afterEach(async () => {
  await h.close();
});

describe('halts by scope', () => {
  it('a fleet halt halts every terminal, writes one message each and shows the deliveries', async () => {
    const m1 = await newMerchant(h);
    const m2 = await newMerchant(h);
    const { t: a } = await enrollInto(h, m1);
    const { t: b } = await enrollInto(h, m2);
    const res = await h.admin('POST', '/v1/halts', { scope: 'fleet', reason: 'incident 42' });
    expect(res.statusCode).toBe(201);
    const { haltId, terminals } = res.json<{ haltId: string; terminals: number }>();
    expect(terminals).toBe(2);
    for (const t of [a, b]) {
      expect(await h.store.getTerminal(t.id)).toMatchObject({ state: 'halted', stateReason: 'incident 42' });
      // A halted terminal gets no ticket.
      const out = (await t.attest()).json<{ ticket?: unknown; halted: boolean }>();
      expect(out.halted).toBe(true);
      expect(out.ticket).toBeUndefined();
    }
    const view = (await h.admin('GET', `/v1/halts/${haltId}`)).json<HaltView>();
    expect(view).toMatchObject({ haltId, scope: 'fleet', liftedAt: null, acknowledged: 0, pending: 2 });
    expect(view.deliveries.map((d) => [d.terminalId, d.seq, d.kind, d.ackedAt]).sort()).toEqual(
      [
        [a.id, 1, 'halt', null],
        [b.id, 1, 'halt', null],
      ].sort(),
    );
    const audit = (await h.admin('GET', '/v1/audit')).body;
    expect(audit).toContain('"action":"halt.create"');
    const metrics = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/pos_halts_total\{source="operator"\} 1/);
  });

  it('checks the target against the scope', async () => {
    const m = await newMerchant(h);
    const bad = [
      [{ scope: 'fleet', target: m, reason: 'x' }, 400, 'POS_ERR_HALT_TARGET'],
      [{ scope: 'merchant', reason: 'x' }, 400, 'POS_ERR_HALT_TARGET'],
      [{ scope: 'merchant', target: 'mer_nope', reason: 'x' }, 404, 'POS_ERR_MERCHANT_UNKNOWN'],
      [{ scope: 'terminal', target: 'ter_nope', reason: 'x' }, 404, 'POS_ERR_TERMINAL_UNKNOWN'],
      [{ scope: 'galaxy', reason: 'x' }, 400, 'POS_ERR_REQUEST_INVALID'],
      [{ scope: 'fleet', reason: '' }, 400, 'POS_ERR_REQUEST_INVALID'],
      [{ scope: 'fleet', reason: 'x', extra: 1 }, 400, 'POS_ERR_REQUEST_INVALID'],
    ] as const;
    for (const [body, status, c] of bad) {
      const res = await h.admin('POST', '/v1/halts', body);
      expect([res.statusCode, code(res)]).toEqual([status, c]);
    }
    expect((await h.store.listHalts({ activeOnly: false, limit: 10 })).length).toBe(0);
  });

  it('lifting: a terminal another active halt covers stays halted; the rest become resume-pending with a notice', async () => {
    const m1 = await newMerchant(h);
    const m2 = await newMerchant(h);
    const { t: a } = await enrollInto(h, m1);
    const { t: b } = await enrollInto(h, m2);
    const merchantHalt = (
      await h.admin('POST', '/v1/halts', { scope: 'merchant', target: m1, reason: 'm1' })
    ).json<{
      haltId: string;
      terminals: number;
    }>();
    expect(merchantHalt.terminals).toBe(1);
    h.clock.t += 1000;
    const fleetHalt = (await h.admin('POST', '/v1/halts', { scope: 'fleet', reason: 'all' })).json<{
      haltId: string;
    }>();
    // The shortcut cannot resume a terminal a merchant halt still covers.
    const early = await h.admin('POST', `/v1/terminals/${a.id}/resume`, { reason: 'try' });
    expect([early.statusCode, code(early)]).toEqual([409, 'POS_ERR_HALT_STILL_COVERS']);
    h.clock.t += 1000;
    const lift = await h.admin('POST', `/v1/halts/${fleetHalt.haltId}/lift`, { reason: 'fixed' });
    expect(lift.json()).toEqual({ haltId: fleetHalt.haltId, resumed: 1, stillHalted: 1 });
    expect((await h.store.getTerminal(a.id))?.state).toBe('halted');
    expect((await h.store.getTerminal(b.id))?.state).toBe('resume-pending');
    // b got a resume notice after its halt; a did not.
    expect((await h.store.pendingOutbox(b.id)).map((r) => [r.seq, r.kind])).toEqual([
      [1, 'halt'],
      [2, 'resume'],
    ]);
    expect((await h.store.pendingOutbox(a.id)).map((r) => r.kind)).toEqual(['halt', 'halt']);
    const again = await h.admin('POST', `/v1/halts/${fleetHalt.haltId}/lift`, { reason: 'again' });
    expect([again.statusCode, code(again)]).toEqual([409, 'POS_ERR_HALT_LIFTED']);
    const unknown = await h.admin('POST', '/v1/halts/hlt_nope/lift', { reason: 'x' });
    expect([unknown.statusCode, code(unknown)]).toEqual([404, 'POS_ERR_HALT_UNKNOWN']);
    expect(
      (await h.admin('POST', `/v1/halts/${merchantHalt.haltId}/lift`, { reason: 'ok' })).json(),
    ).toMatchObject({ resumed: 1, stillHalted: 0 });
    expect((await h.store.getTerminal(a.id))?.state).toBe('resume-pending');
    // resume-pending: still no ticket until an affirming attestation made after the resume.
    const active = (await h.admin('GET', '/v1/halts')).json<{ halts: unknown[] }>();
    expect(active.halts).toHaveLength(0);
    const all = (await h.admin('GET', '/v1/halts?state=all')).json<{ halts: { haltId: string }[] }>();
    expect(all.halts.map((x) => x.haltId)).toEqual([fleetHalt.haltId, merchantHalt.haltId]);
    const audit = (await h.admin('GET', '/v1/audit')).body;
    expect(audit).toContain('"action":"halt.lift"');
  });

  it('a terminal enrolled while a fleet or merchant halt is active starts halted, with the halt message', async () => {
    const m1 = await newMerchant(h);
    const m2 = await newMerchant(h);
    const halt = (
      await h.admin('POST', '/v1/halts', { scope: 'merchant', target: m1, reason: 'm1 frozen' })
    ).json<{
      haltId: string;
    }>();
    const { t, res } = await enrollInto(h, m1);
    expect(res.json<{ ticket?: unknown }>().ticket).toBeUndefined();
    expect(await h.store.getTerminal(t.id)).toMatchObject({ state: 'halted', stateReason: 'm1 frozen' });
    expect((await h.store.pendingOutbox(t.id)).map((r) => [r.seq, r.haltId])).toEqual([[1, halt.haltId]]);
    // Another merchant's enrollment is not affected.
    const { t: other, res: otherRes } = await enrollInto(h, m2);
    expect(otherRes.json<{ ticket?: unknown }>().ticket).toBeDefined();
    expect((await h.store.getTerminal(other.id))?.state).toBe('active');
  });

  it('the terminal shortcuts halt (stored and pushed like any halt) and resume', async () => {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    const halted = (await h.admin('POST', `/v1/terminals/${t.id}/halt`, { reason: 'check' })).json<{
      state: string;
      haltId: string;
    }>();
    expect(halted.state).toBe('halted');
    expect((await h.store.getHalt(halted.haltId))?.scope).toBe('terminal');
    h.clock.t += 1000;
    const resumed = await h.admin('POST', `/v1/terminals/${t.id}/resume`, { reason: 'ok' });
    expect(resumed.json()).toMatchObject({ state: 'resume-pending' });
    expect((await h.store.getHalt(halted.haltId))?.liftedAt).toBe(h.clock.t);
    expect((await h.store.pendingOutbox(t.id)).map((r) => r.kind)).toEqual(['halt', 'resume']);
  });
});

describe('a merchant-scoped principal', () => {
  const merchantToken = async (merchantId: string): Promise<string> => {
    const token = `pos_merchant_${'m'.repeat(43)}`;
    await h.store.createApiToken({
      id: 'tok_merchant',
      tokenHash: hashApiToken(token),
      label: 'merchant',
      role: 'merchant',
      merchantId,
      createdBy: null,
      createdAt: h.clock.now(),
      expiresAt: null,
      revokedAt: null,
    });
    return token;
  };

  it('halts its own terminals and merchant, never another tenant, the fleet or an app version', async () => {
    const mine = await newMerchant(h);
    const theirs = await newMerchant(h);
    const { t: own } = await enrollInto(h, mine);
    const { t: other } = await enrollInto(h, theirs);
    const token = await merchantToken(mine);
    const as = (method: 'GET' | 'POST', url: string, body?: Record<string, unknown>) =>
      h.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${token}` },
        ...(body === undefined ? {} : { payload: body }),
      });
    const refusals = [
      [{ scope: 'fleet', reason: 'x' }, 403, 'POS_ERR_FORBIDDEN'],
      [{ scope: 'app-version', target: '1.2.3', reason: 'x' }, 403, 'POS_ERR_FORBIDDEN'],
      [{ scope: 'merchant', target: theirs, reason: 'x' }, 404, 'POS_ERR_MERCHANT_UNKNOWN'],
      [{ scope: 'terminal', target: other.id, reason: 'x' }, 404, 'POS_ERR_TERMINAL_UNKNOWN'],
    ] as const;
    for (const [body, status, c] of refusals) {
      const res = await as('POST', '/v1/halts', body);
      expect([res.statusCode, code(res)]).toEqual([status, c]);
    }
    const shortcut = await as('POST', `/v1/terminals/${other.id}/halt`, { reason: 'x' });
    expect([shortcut.statusCode, code(shortcut)]).toEqual([404, 'POS_ERR_TERMINAL_UNKNOWN']);
    expect((await h.store.getTerminal(other.id))?.state).toBe('active');
    const ok = await as('POST', '/v1/halts', { scope: 'terminal', target: own.id, reason: 'mine' });
    expect(ok.statusCode).toBe(201);
    expect((await h.store.getTerminal(own.id))?.state).toBe('halted');
    // Another tenant's halt is invisible (404), and the fleet halt shows only its own deliveries.
    const theirHalt = (
      await h.admin('POST', '/v1/halts', { scope: 'merchant', target: theirs, reason: 'x' })
    ).json<{
      haltId: string;
    }>();
    const hidden = await as('GET', `/v1/halts/${theirHalt.haltId}`);
    expect([hidden.statusCode, code(hidden)]).toEqual([404, 'POS_ERR_HALT_UNKNOWN']);
    const fleet = (await h.admin('POST', '/v1/halts', { scope: 'fleet', reason: 'all' })).json<{
      haltId: string;
    }>();
    const view = (await as('GET', `/v1/halts/${fleet.haltId}`)).json<HaltView>();
    expect(view.deliveries.map((d) => d.terminalId)).toEqual([own.id]);
    const listed = (await as('GET', '/v1/halts')).json<{ halts: { haltId: string }[] }>();
    expect(listed.halts.map((x) => x.haltId)).not.toContain(theirHalt.haltId);
    // Lifting needs the resume permission, which a merchant does not hold.
    const lift = await as('POST', `/v1/halts/${fleet.haltId}/lift`, { reason: 'x' });
    expect([lift.statusCode, code(lift)]).toEqual([403, 'POS_ERR_FORBIDDEN']);
  });
});

describe('lift authority', () => {
  const scopedOperator = async (id: string, merchantId: string | null): Promise<string> => {
    const token = `pos_operator_${id.padEnd(43, 'o')}`;
    await h.store.createApiToken({
      id,
      tokenHash: hashApiToken(token),
      label: id,
      role: 'operator',
      merchantId,
      createdBy: null,
      createdAt: h.clock.now(),
      expiresAt: null,
      revokedAt: null,
    });
    return token;
  };
  const call = (token: string, url: string, body: Record<string, unknown>) =>
    h.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` }, payload: body });

  it("an operator of merchant A lifts A's own halts, never the provider's halt on A nor a fleet or app-version halt", async () => {
    const a = await newMerchant(h);
    const { t } = await enrollInto(h, a);
    const opA = await scopedOperator('tok_op_a', a);
    const provider = await scopedOperator('tok_op_provider', null);
    const byProvider = (
      await call(provider, '/v1/halts', { scope: 'merchant', target: a, reason: 'provider' })
    ).json<{ haltId: string }>();
    const providerOnTerminal = (
      await call(provider, '/v1/halts', { scope: 'terminal', target: t.id, reason: 'provider t' })
    ).json<{ haltId: string }>();
    const byAdmin = (
      await h.admin('POST', '/v1/halts', { scope: 'merchant', target: a, reason: 'admin' })
    ).json<{
      haltId: string;
    }>();
    const fleet = (await call(provider, '/v1/halts', { scope: 'fleet', reason: 'fleet' })).json<{
      haltId: string;
    }>();
    const byA = await call(opA, '/v1/halts', { scope: 'merchant', target: a, reason: 'own' });
    expect(byA.statusCode).toBe(201);
    // The provider's halts on A (an operator token, the admin), the fleet halt: 403, and still active.
    for (const haltId of [byProvider.haltId, providerOnTerminal.haltId, byAdmin.haltId, fleet.haltId]) {
      const res = await call(opA, `/v1/halts/${haltId}/lift`, { reason: 'mine now' });
      expect([res.statusCode, code(res)]).toEqual([403, 'POS_ERR_FORBIDDEN']);
      expect((await h.store.getHalt(haltId))?.liftedAt).toBeNull();
    }
    // The terminal shortcut cannot lift the provider's terminal halt either.
    const shortcut = await call(opA, `/v1/terminals/${t.id}/resume`, { reason: 'x' });
    expect([shortcut.statusCode, code(shortcut)]).toEqual([403, 'POS_ERR_FORBIDDEN']);
    expect((await h.store.getHalt(providerOnTerminal.haltId))?.liftedAt).toBeNull();
    // Its own halt it lifts (the terminal stays halted: the provider's halts still cover it).
    const own = await call(opA, `/v1/halts/${byA.json<{ haltId: string }>().haltId}/lift`, {
      reason: 'done',
    });
    expect(own.json()).toMatchObject({ resumed: 0, stillHalted: 1 });
    // The provider-wide operator lifts any of them.
    const lifted = await call(provider, `/v1/halts/${byProvider.haltId}/lift`, { reason: 'ok' });
    expect(lifted.statusCode).toBe(200);
  });

  it("an operator of merchant A may not lift merchant B's operator's halt (404: invisible)", async () => {
    const a = await newMerchant(h);
    const b = await newMerchant(h);
    await enrollInto(h, b);
    const opA = await scopedOperator('tok_op_a2', a);
    const opB = await scopedOperator('tok_op_b2', b);
    const halt = (await call(opB, '/v1/halts', { scope: 'merchant', target: b, reason: 'b' })).json<{
      haltId: string;
    }>();
    const res = await call(opA, `/v1/halts/${halt.haltId}/lift`, { reason: 'x' });
    expect([res.statusCode, code(res)]).toEqual([404, 'POS_ERR_HALT_UNKNOWN']);
  });
});
