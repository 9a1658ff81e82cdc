/**
 * Decommissioning a terminal (POST /v1/terminals/:terminalId/decommission; docs/fleet.md
 * "Decommissioning"): who may, what is stored and audited, and that it is final: the device key is
 * refused on every terminal route, no halt, resume or lift changes it, liveness forgets it, an open
 * push connection gets the notice and is closed, and its reader may be enrolled on a replacement.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CLOSE_DECOMMISSIONED, type ServerMessage } from '../../src/fleet/push-protocol';
import { startPushClient } from '../../src/fleet/push-client';
import { seedReferenceValues, SimTerminal } from '../helpers';
import {
  auditOf,
  inject,
  makeFileHarness,
  operatorToken,
  readerOutput,
  sessionTicket,
  transact,
  pinTicket,
  type FileHarness,
} from '../fleet-helpers';
import { enrollInto, listen, newMerchant, until } from './fleet-helpers';

let h: FileHarness;
beforeEach(async () => {
  h = await makeFileHarness(':memory:');
  await seedReferenceValues(h);
});
afterEach(async () => {
  await h.close();
});

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
const code = (res: { json: <T>() => T }): string => res.json<{ error: { code: string } }>().error.code;
const decommission = (terminalId: string, reason: unknown = 'stolen PC', token?: string) =>
  token === undefined
    ? h.admin('POST', `/v1/terminals/${terminalId}/decommission`, { reason })
    : inject(h.app, token, 'POST', `/v1/terminals/${terminalId}/decommission`, { reason });

async function enrolled(): Promise<SimTerminal> {
  const t = new SimTerminal(h);
  const res = await t.enroll();
  expect(res.statusCode, res.body).toBe(201);
  return t;
}

async function metric(name: string): Promise<number> {
  const res = await h.app.inject({ method: 'GET', url: '/metrics' });
  const line = res.body.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('POST /v1/terminals/:terminalId/decommission', () => {
  it('retires the terminal: state, reason and time stored, audited, counted, published; listed and filterable', async () => {
    const t = await enrolled();
    await t.attest();
    const before = h.clock.now();
    const res = await decommission(t.id);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ terminalId: t.id, state: 'decommissioned', previousState: 'active' });
    expect(await h.store.getTerminal(t.id)).toMatchObject({
      state: 'decommissioned',
      stateReason: 'stolen PC',
      stateChangedAt: before,
      nextDueAt: null,
      staleAt: null,
    });
    const audit = await auditOf(h, 'terminal.decommission');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ subject: t.id, data: { reason: 'stolen PC', previousState: 'active' } });
    expect(await metric('pos_terminal_decommissions_total')).toBe(1);
    await settle();
    const row = await h.store.getTerminal(t.id);
    expect(h.events.filter((e) => e.type === 'decommission')).toEqual([
      {
        type: 'decommission',
        at: before,
        merchantId: row?.merchantId,
        terminalId: t.id,
        reason: 'stolen PC',
      },
    ]);
    // Still listed, with its history.
    const one = await h.admin('GET', `/v1/terminals/${t.id}`);
    expect(one.json()).toMatchObject({ terminalId: t.id, state: 'decommissioned', stateReason: 'stolen PC' });
    const list = await h.admin('GET', '/v1/terminals?state=decommissioned');
    expect(list.statusCode, list.body).toBe(200);
    expect(list.json<{ terminals: { terminalId: string }[] }>().terminals.map((x) => x.terminalId)).toEqual([
      t.id,
    ]);
    const history = await h.admin('GET', `/v1/terminals/${t.id}/attestations`);
    expect(history.statusCode).toBe(200);
    expect(history.json<{ attestations: unknown[] }>().attestations.length).toBeGreaterThan(0);
    const summary = await h.admin('GET', '/v1/fleet/summary');
    expect(summary.json()).toMatchObject({ terminals: { total: 1, decommissioned: 1 } });
  });

  it('is final: a second decommission, a halt and a resume answer 409 POS_ERR_TERMINAL_DECOMMISSIONED', async () => {
    const t = await enrolled();
    expect((await decommission(t.id)).statusCode).toBe(200);
    for (const res of [
      await decommission(t.id, 'again'),
      await h.admin('POST', `/v1/terminals/${t.id}/halt`, { reason: 'x' }),
      await h.admin('POST', `/v1/terminals/${t.id}/resume`, { reason: 'x' }),
      await h.admin('POST', '/v1/halts', { scope: 'terminal', target: t.id, reason: 'x' }),
    ]) {
      expect(res.statusCode, res.body).toBe(409);
      expect(code(res)).toBe('POS_ERR_TERMINAL_DECOMMISSIONED');
    }
    expect(await auditOf(h, 'terminal.decommission')).toHaveLength(1);
    expect((await h.store.getTerminal(t.id))?.state).toBe('decommissioned');
  });

  it('a lift of the halt that covered it, and a later merchant halt, leave it decommissioned', async () => {
    const merchant = await newMerchant(h);
    const { t } = await enrollInto(h, merchant);
    const { t: other } = await enrollInto(h, merchant);
    const halt = await h.admin('POST', '/v1/halts', {
      scope: 'merchant',
      target: merchant,
      reason: 'incident',
    });
    const haltId = halt.json<{ haltId: string }>().haltId;
    const res = await decommission(t.id);
    expect(res.json()).toMatchObject({ previousState: 'halted' });
    const lift = await h.admin('POST', `/v1/halts/${haltId}/lift`, { reason: 'over' });
    expect(lift.json()).toEqual({ haltId, resumed: 1, stillHalted: 0 });
    expect((await h.store.getTerminal(t.id))?.state).toBe('decommissioned');
    expect((await h.store.getTerminal(other.id))?.state).toBe('resume-pending');
    const later = await h.admin('POST', '/v1/halts', {
      scope: 'merchant',
      target: merchant,
      reason: 'again',
    });
    expect(later.json()).toMatchObject({ terminals: 1 });
    const laterId = later.json<{ haltId: string }>().haltId;
    expect((await h.store.listHaltDeliveries(laterId)).map((d) => d.terminalId)).toEqual([other.id]);
    expect((await h.store.getTerminal(t.id))?.state).toBe('decommissioned');
  });

  it('validates the reason as halts do: 400 for none, an empty one or one over 500 characters', async () => {
    const t = await enrolled();
    for (const body of [{}, { reason: '' }, { reason: 'x'.repeat(501) }, { reason: 'ok', extra: 1 }]) {
      const res = await h.admin('POST', `/v1/terminals/${t.id}/decommission`, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
    }
    expect((await h.store.getTerminal(t.id))?.state).toBe('active');
  });

  it("roles and tenancy: admin, operator and the merchant's own principals may; an auditor may not; another merchant's terminal is 404", async () => {
    const a = await newMerchant(h, 'A');
    const b = await newMerchant(h, 'B');
    const terminals = await Promise.all([1, 2, 3, 4].map(() => enrollInto(h, a)));
    const [t1, t2, t3, t4] = terminals.map((x) => x.t.id) as [string, string, string, string];
    const { t: tb } = await enrollInto(h, b);
    const auditor = await operatorToken(h, 'auditor', null);
    const res403 = await decommission(t1, 'x', auditor);
    expect(res403.statusCode).toBe(403);
    expect(code(res403)).toBe('POS_ERR_FORBIDDEN');
    const merchantOfB = await operatorToken(h, 'merchant', b);
    const res404 = await decommission(t1, 'x', merchantOfB);
    expect(res404.statusCode).toBe(404);
    expect(code(res404)).toBe('POS_ERR_TERMINAL_UNKNOWN');
    expect((await decommission('trm_absent', 'x')).statusCode).toBe(404);
    expect((await decommission(t1, 'x', await operatorToken(h, 'operator', null))).statusCode).toBe(200);
    expect((await decommission(t2, 'x', await operatorToken(h, 'operator', a))).statusCode).toBe(200);
    expect((await decommission(t3, 'x', await operatorToken(h, 'merchant', a))).statusCode).toBe(200);
    expect((await decommission(t4, 'x')).statusCode).toBe(200);
    expect((await h.store.getTerminal(tb.id))?.state).toBe('active');
    expect((await auditOf(h, 'terminal.decommission')).map((e) => e.subject)).toEqual([t1, t2, t3, t4]);
  });
});

describe('a decommissioned device key is refused on every terminal route', () => {
  it('challenges, attestations, transactions and the push upgrade answer 403 POS_ERR_TERMINAL_DECOMMISSIONED', async () => {
    const t = await enrolled();
    const session = await sessionTicket(t);
    const pin = await pinTicket(t);
    const issuedBefore = await t.challenge();
    const lastTicket = (await h.store.latestTicket(t.id))?.jti;
    expect(lastTicket).toBeDefined();
    expect((await decommission(t.id)).statusCode).toBe(200);

    const challenge = await h.app.inject({
      method: 'POST',
      url: '/v1/challenges',
      payload: { terminalId: t.id },
    });
    expect(challenge.statusCode).toBe(403);
    expect(code(challenge)).toBe('POS_ERR_TERMINAL_DECOMMISSIONED');

    // Evidence on a challenge issued before the decommissioning, or on one not bound to a terminal:
    // refused, no ticket.
    for (const ch of [issuedBefore, await t.challenge(true)]) {
      const attested = await t.submit(t.evidence(ch, 'periodic'));
      expect(attested.statusCode).toBe(403);
      expect(code(attested)).toBe('POS_ERR_TERMINAL_DECOMMISSIONED');
      expect(attested.json<{ ticket?: unknown }>().ticket).toBeUndefined();
    }
    expect((await h.store.latestTicket(t.id))?.jti).toBe(lastTicket);

    // A ticket issued before it is worth nothing now.
    for (const ticket of [session, pin]) {
      const sale = await transact(h, t, readerOutput('visa-pin', '1234'), ticket);
      expect(sale.statusCode).toBe(403);
      expect(code(sale)).toBe('POS_ERR_TERMINAL_DECOMMISSIONED');
    }
    expect(await h.store.listTransactions(t.id, 10)).toEqual([]);

    const url = await listen(h);
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { 'pos-proof': t.proof('GET', '/v1/push', '') } });
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
        ws.terminate();
      });
      ws.on('open', () => reject(new Error('upgrade accepted')));
      ws.on('error', () => undefined);
    });
    expect(status).toBe(403);
  });
});

describe('an open push connection', () => {
  it('gets the notice as a halt message and is closed 4410; the client does not reconnect', async () => {
    const t = await enrolled();
    const url = await listen(h);
    const messages: ServerMessage[] = [];
    const states: { state: string; code?: number; status?: number }[] = [];
    const client = startPushClient({
      url,
      proof: () => Promise.resolve(t.proof('GET', '/v1/push', '')),
      onMessage: (m) => messages.push(m),
      onState: (state, detail) => states.push({ state, ...detail }),
      backoff: { initialMs: 1, maxMs: 5 },
    });
    try {
      await until('connected', () => states.some((s) => s.state === 'open'));
      const connection = (connected: boolean) => () =>
        h.events.some((e) => e.type === 'connection' && e.terminalId === t.id && e.connected === connected);
      await until('registered', connection(true));
      expect((await decommission(t.id, 'shop closed')).statusCode).toBe(200);
      await until('closed', () => states.some((s) => s.state === 'closed'));
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatchObject({ type: 'halt', seq: 1, reason: 'decommissioned: shop closed' });
      expect(messages[0]?.haltId.startsWith('dcm_')).toBe(true);
      expect(states.find((s) => s.state === 'closed')?.code).toBe(CLOSE_DECOMMISSIONED);
      const deliveries = await h.store.listHaltDeliveries(messages[0]?.haltId ?? '');
      expect(deliveries.map((d) => [d.terminalId, d.kind])).toEqual([[t.id, 'halt']]);
      await until('released', connection(false));
    } finally {
      await client.close();
    }
  });
});

describe('liveness and fleet correlation forget it', () => {
  it('no stale mark, however long it stays silent', async () => {
    const t = await enrolled();
    await t.attest();
    expect((await decommission(t.id)).statusCode).toBe(200);
    h.clock.t += 24 * 3600 * 1000;
    expect((await h.store.listOverdue(h.clock.now(), 100)).map((x) => x.id)).not.toContain(t.id);
    expect(await h.store.countStale()).toBe(0);
  });

  it('a replacement terminal enrolls with the same reader once the old one is decommissioned (refused before)', async () => {
    const old = await enrolled();
    const early = new SimTerminal(h);
    early.readerSerial = old.readerSerial;
    const refused = await early.enroll();
    expect(refused.statusCode).toBe(403);
    expect(refused.json<{ error: { message: string } }>().error.message).toContain(
      'POS_ERR_CORRELATION_READER_SHARED',
    );
    expect((await decommission(old.id, 'replaced PC')).statusCode).toBe(200);
    const replacement = new SimTerminal(h);
    replacement.readerSerial = old.readerSerial;
    const res = await replacement.enroll();
    expect(res.statusCode, res.body).toBe(201);
    const out = await replacement.attest();
    expect(out.json<{ verdict: { tier: string } }>().verdict.tier).toBe('affirming');
    expect((await auditOf(h, 'correlation.alert')).map((e) => e.subject)).toEqual([early.jkt]);
  });
});
