/**
 * The push connection over a real listening server with the `ws` client: proof at the upgrade,
 * halts with seq, acknowledgements the operator sees, resend on reconnect, malformed frames, the
 * heartbeat, and one device key on two connections (fleet correlation: halt); messages go out in seq
 * order even when two halts' fan-outs race; ack frames are rate-limited and handled one at a time.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { buildApp } from '../../src/server/app';
import { hashApiToken, newAdminToken } from '../../src/server/context';
import {
  CLOSE_DUPLICATE,
  CLOSE_POLICY,
  CLOSE_TRY_AGAIN,
  type ServerMessage,
} from '../../src/fleet/push-protocol';
import { startPushClient, type PushClient } from '../../src/fleet/push-client';
import type { PushOptions } from '../../src/fleet/push';
import { createMemoryBus, type Bus } from '../../src/fleet/bus';
import type { HaltRow, OutboxRow } from '../../src/store/types';
import { KeyRing } from '../../src/keys/keyring';
import { openSqliteStore } from '../../src/store/sqlite';
import { ISSUER, SimTerminal, seedReferenceValues, standInReaderVerifier, type Harness } from '../helpers';
import { enrollInto, listen, newMerchant, until } from './fleet-helpers';

/** makeHarness with push options (heartbeat timings) and a real clock (the heartbeat uses real timers). */
async function pushHarness(push: PushOptions = {}, bus?: Bus): Promise<Harness> {
  const store = openSqliteStore({ path: ':memory:' });
  const clock = {
    t: Date.now(),
    now(): number {
      return this.t;
    },
  };
  const opened = await KeyRing.open(store, randomBytes(32), clock.now(), { ticketLifetimeS: 60 });
  if (!opened.ok) throw new Error(opened.code);
  const app = await buildApp({
    store,
    keys: opened.ring,
    clock,
    config: { issuer: ISSUER, rateLimitPerMinute: false, development: true },
    readerStatusVerifier: standInReaderVerifier,
    readerCaRoots: [new Uint8Array([1])],
    defaultMetrics: false,
    push,
    ...(bus === undefined ? {} : { bus }),
  });
  const adminToken = newAdminToken();
  await store.createApiToken({
    id: 'tok_admin',
    tokenHash: hashApiToken(adminToken),
    label: 'test admin',
    role: 'admin',
    merchantId: null,
    createdBy: null,
    createdAt: clock.now(),
    expiresAt: null,
    revokedAt: null,
  });
  return {
    app,
    store,
    keys: opened.ring,
    clock,
    adminToken,
    admin: (method, url, body) =>
      app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${adminToken}` },
        ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
      }),
    close: () => app.close(),
  };
}

let h: Harness;
let url: string;
const clients: PushClient[] = [];
const sockets: WebSocket[] = [];

beforeEach(async () => {
  h = await pushHarness({ pingIntervalMs: 100, probeTimeoutMs: 500 });
  await seedReferenceValues(h);
  url = await listen(h);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const s of sockets.splice(0)) s.terminate();
  await h.close();
});

const pushProof = (t: SimTerminal, opts: Parameters<SimTerminal['proof']>[3] = {}): string =>
  t.proof('GET', '/v1/push', '', opts);

/** A push client for the terminal that records what it receives. */
function connect(
  t: SimTerminal,
  autoAck = true,
): { client: PushClient; got: ServerMessage[]; states: { state: string; code?: number }[] } {
  const got: ServerMessage[] = [];
  const states: { state: string; code?: number }[] = [];
  const client = startPushClient({
    url,
    proof: () => pushProof(t),
    onMessage: (m) => got.push(m),
    onState: (state, detail) => states.push({ state, ...detail }),
    autoAck,
    reconnect: false,
  });
  clients.push(client);
  return { client, got, states };
}

/** A raw ws connection; resolves to the socket once open, or to the refused upgrade's status and code. */
function raw(
  headers: Record<string, string>,
  options: WebSocket.ClientOptions = {},
): Promise<{ ws: WebSocket } | { status: number; code: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, ...options });
    sockets.push(ws);
    ws.on('error', () => undefined);
    ws.on('open', () => resolve({ ws }));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          code: (JSON.parse(body) as { error: { code: string } }).error.code,
        }),
      );
    });
  });
}

const closed = (ws: WebSocket): Promise<number> =>
  new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve(-1);
    ws.on('close', (code) => resolve(code));
  });

describe('push: halts reach the terminal', () => {
  it('a halt arrives with its seq; the ack is recorded and the operator sees who acknowledged', async () => {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    const { t: offline } = await enrollInto(h, m);
    const { client, got } = connect(t);
    await until('connected', () => client.isOpen());
    await until('registered', async () =>
      (await h.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 1'),
    );
    const halt = (
      await h.admin('POST', '/v1/halts', { scope: 'merchant', target: m, reason: 'incident' })
    ).json<{
      haltId: string;
    }>();
    await until('halt received', () => got.length === 1);
    expect(got[0]).toEqual({ type: 'halt', seq: 1, haltId: halt.haltId, reason: 'incident', at: h.clock.t });
    type View = { deliveries: { terminalId: string; sentAt: number | null; ackedAt: number | null }[] };
    await until('ack stored', async () => {
      const v = (await h.admin('GET', `/v1/halts/${halt.haltId}`)).json<View>();
      return v.deliveries.some((d) => d.terminalId === t.id && d.ackedAt !== null);
    });
    const view = (await h.admin('GET', `/v1/halts/${halt.haltId}`)).json<
      View & { acknowledged: number; pending: number }
    >();
    expect(view).toMatchObject({ acknowledged: 1, pending: 1 });
    expect(view.deliveries.find((d) => d.terminalId === t.id)).toMatchObject({
      sentAt: h.clock.t,
      ackedAt: h.clock.t,
    });
    expect(view.deliveries.find((d) => d.terminalId === offline.id)).toMatchObject({
      sentAt: null,
      ackedAt: null,
    });
    const metrics = (await h.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/pos_halt_delivery_seconds_count\{kind="halt"\} 1/);
  });

  /** A terminal whose push connection got a halt (seq 1) and went away without acknowledging it. */
  async function haltDeliveredThenDropped(): Promise<{ t: SimTerminal; halt: { haltId: string } }> {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    const first = connect(t, false);
    await until('connected', () => first.client.isOpen());
    await until('registered', async () =>
      (await h.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 1'),
    );
    const halt = (await h.admin('POST', `/v1/terminals/${t.id}/halt`, { reason: 'check' })).json<{
      haltId: string;
    }>();
    await until('first delivery', () => first.got.length === 1);
    await first.client.close();
    await until('released', async () =>
      (await h.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 0'),
    );
    return { t, halt };
  }

  it('an unacknowledged halt is sent again on reconnect, an acknowledged one is not', async () => {
    const { t, halt } = await haltDeliveredThenDropped();
    const second = connect(t, false);
    await until('resent', () => second.got.length === 1);
    expect(second.got[0]).toMatchObject({ type: 'halt', seq: 1, haltId: halt.haltId });
    second.client.ack(1);
    await until('acked', async () => (await h.store.pendingOutbox(t.id)).length === 0);
    await second.client.close();
    await until('released again', async () =>
      (await h.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 0'),
    );
    // Lifting writes a resume notice (seq 2): the third connection gets only that.
    h.clock.t += 1000;
    await h.admin('POST', `/v1/terminals/${t.id}/resume`, { reason: 'ok' });
    const third = connect(t);
    await until('resume notice', () => third.got.length === 1);
    expect(third.got[0]).toMatchObject({ type: 'resume', seq: 2, haltId: halt.haltId, reason: 'ok' });
  });

  it('a halt lifted before it was acknowledged is not sent again ahead of its resume; acking the resume acknowledges both', async () => {
    // The terminal goes away without acknowledging; the operator resumes it meanwhile.
    const { t, halt } = await haltDeliveredThenDropped();
    h.clock.t += 1000;
    await h.admin('POST', `/v1/terminals/${t.id}/resume`, { reason: 'ok' });
    expect((await h.store.pendingOutbox(t.id)).map((r) => [r.seq, r.kind])).toEqual([
      [1, 'halt'],
      [2, 'resume'],
    ]);
    // On reconnect only the resume is sent (a stale halt first would stop a sale for nothing).
    const second = connect(t, false);
    await until('resume notice', () => second.got.length === 1);
    expect(second.got.map((x) => [x.type, x.seq])).toEqual([['resume', 2]]);
    second.client.ack(2);
    await until('both acknowledged', async () => (await h.store.pendingOutbox(t.id)).length === 0);
    expect(second.got).toHaveLength(1);
    // The operator sees the halt acknowledged by the terminal.
    const delivery = await h.admin('GET', `/v1/halts/${halt.haltId}`);
    expect(JSON.stringify(delivery.json())).toMatch(/"ackedAt":\d/);
    expect(JSON.stringify(delivery.json())).not.toContain('"ackedAt":null');
  });

  it('an automatic halt (contraindicated verdict) is pushed too', async () => {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    const { client, got } = connect(t);
    await until('connected', () => client.isOpen());
    await until('registered', async () =>
      (await h.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 1'),
    );
    // Code that matches no release: contraindicated.
    const out = await t.attest('periodic', {
      app: { version: '1.2.3', build: 'release', codeHash: 'cd'.repeat(32) },
    });
    expect(out.json<{ halted: boolean }>().halted).toBe(true);
    await until('policy halt received', () => got.length === 1);
    expect(got[0]).toMatchObject({ type: 'halt', seq: 1, reason: 'contraindicated verdict' });
  });
});

describe('push: the device key proof at the upgrade', () => {
  it('refuses a missing, forged, replayed or misdirected proof with 401', async () => {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    expect(await raw({})).toEqual({ status: 401, code: 'POS_ERR_PROOF_MISSING' });
    // Signed by another key under this terminal's id.
    const forger = new SimTerminal(h);
    expect(await raw({ 'pos-proof': forger.proof('GET', '/v1/push', '', { kid: t.id }) })).toEqual({
      status: 401,
      code: 'POS_ERR_PROOF_SIGNATURE',
    });
    // A proof for another URL or method.
    expect(await raw({ 'pos-proof': t.proof('GET', '/v1/attestations', '') })).toEqual({
      status: 401,
      code: 'POS_ERR_PROOF_BINDING',
    });
    expect(await raw({ 'pos-proof': t.proof('POST', '/v1/push', '') })).toEqual({
      status: 401,
      code: 'POS_ERR_PROOF_BINDING',
    });
    // Stale.
    expect(await raw({ 'pos-proof': pushProof(t, { iat: Math.floor(h.clock.t / 1000) - 3600 }) })).toEqual({
      status: 401,
      code: 'POS_ERR_PROOF_STALE',
    });
    // Replayed: the same proof twice.
    const proof = pushProof(t);
    const ok = await raw({ 'pos-proof': proof });
    expect('ws' in ok).toBe(true);
    if ('ws' in ok) {
      ok.ws.close();
      await closed(ok.ws);
    }
    expect(await raw({ 'pos-proof': proof })).toEqual({ status: 401, code: 'POS_ERR_PROOF_REPLAY' });
    expect(await raw({ 'pos-proof': 'garbage' })).toEqual({ status: 401, code: 'POS_ERR_PROOF_INVALID' });
  });
});

describe('push: frames and liveness', () => {
  it('a malformed frame closes the connection with 1008; the server keeps serving', async () => {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    const frames: [string | Buffer, boolean][] = [
      ['not json', false],
      [JSON.stringify({ type: 'ack', seq: -1 }), false],
      [JSON.stringify({ type: 'ack', seq: 1, extra: true }), false],
      [JSON.stringify({ type: 'hello' }), false],
      [JSON.stringify({ type: 'ack', seq: 1.5 }), false],
      [Buffer.from([1, 2, 3]), true],
    ];
    for (const [frame, binary] of frames) {
      const r = await raw({ 'pos-proof': pushProof(t) });
      if (!('ws' in r)) throw new Error(`refused: ${r.code}`);
      const done = closed(r.ws);
      r.ws.send(frame, { binary });
      expect(await done).toBe(CLOSE_POLICY);
      await until('released', async () =>
        (await h.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 0'),
      );
    }
    // Too large: ws closes with 1009.
    const big = await raw({ 'pos-proof': pushProof(t) });
    if (!('ws' in big)) throw new Error('refused');
    const bigClosed = closed(big.ws);
    big.ws.send('x'.repeat(10_000));
    expect(await bigClosed).toBe(1009);
    // An ack for an unknown seq is harmless; the connection stays and still gets halts.
    const { client, got } = connect(t);
    await until('connected', () => client.isOpen());
    client.ack(999);
    await until('registered', async () =>
      (await h.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 1'),
    );
    await h.admin('POST', `/v1/terminals/${t.id}/halt`, { reason: 'after garbage' });
    await until('halt received', () => got.length === 1);
    expect(got[0]).toMatchObject({ seq: 1, reason: 'after garbage' });
  });

  it('a connection that stops answering pings is closed and its row released', async () => {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    const r = await raw({ 'pos-proof': pushProof(t) }, { autoPong: false });
    if (!('ws' in r)) throw new Error('refused');
    expect(await closed(r.ws)).toBe(1006);
    await until('released', async () =>
      (await h.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 0'),
    );
    // The terminal can connect again at once: no correlation.
    const again = connect(t);
    await until('connected', () => again.client.isOpen());
    await until('registered', async () =>
      (await h.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 1'),
    );
    expect((await h.store.getTerminal(t.id))?.state).toBe('active');
  });
});

describe('push: fleet correlation', () => {
  it('one device key on two live connections: the second is closed 4409 and the terminal halted', async () => {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    const first = connect(t);
    await until('connected', () => first.client.isOpen());
    await until('registered', async () =>
      (await h.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 1'),
    );
    const second = connect(t);
    await until('second closed', () => second.states.some((s) => s.state === 'closed'));
    expect(second.states.find((s) => s.state === 'closed')?.code).toBe(CLOSE_DUPLICATE);
    // The live connection receives the correlation halt.
    await until('halt on the first', () => first.got.length === 1);
    expect(first.got[0]).toMatchObject({ type: 'halt', seq: 1 });
    const terminal = await h.store.getTerminal(t.id);
    expect(terminal?.state).toBe('halted');
    const halts = await h.store.listHalts({ activeOnly: true, limit: 10 });
    expect(halts).toHaveLength(1);
    expect(halts[0]).toMatchObject({ scope: 'terminal', target: t.id, createdBy: 'correlation' });
    const audit = (await h.admin('GET', '/v1/audit')).body;
    expect(audit).toContain('"action":"correlation.alert"');
    expect(audit).toContain('device-key-two-connections');
    const metrics = (await h.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/pos_halts_total\{source="correlation"\} 1/);
  });
});

describe('push: a live row held by another process', () => {
  it('the other process never answers the probe: the row is waited out, the connection told to retry (1013), nobody halted', async () => {
    const h2 = await pushHarness({ pingIntervalMs: 100, liveWindowMs: 300, probeAnswerMs: 50 });
    try {
      await seedReferenceValues(h2);
      url = await listen(h2);
      const m = await newMerchant(h2);
      const { t } = await enrollInto(h2, m);
      // A row of a process that is gone (no bus, no answer); the test's clock does not move, so it
      // stays live until the clock is moved.
      const claimed = await h2.store.claimPushConnection(
        {
          terminalId: t.id,
          connectionId: 'conn-gone',
          instanceId: 'gone',
          connectedAt: h2.clock.t,
          seenAt: h2.clock.t,
        },
        h2.clock.t - 300,
      );
      expect(claimed).toEqual({ ok: true });
      const first = connect(t);
      await until('closed', () => first.states.some((s) => s.state === 'closed'));
      expect(first.states.find((s) => s.state === 'closed')?.code).toBe(CLOSE_TRY_AGAIN);
      expect(await h2.store.getTerminal(t.id)).toMatchObject({ state: 'active' });
      expect(await h2.store.listHalts({ activeOnly: true, limit: 10 })).toEqual([]);
      // Once the row is stale, the terminal connects.
      h2.clock.t += 1000;
      const second = connect(t);
      await until('connected', () => second.client.isOpen());
      await until('registered', async () =>
        (await h2.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 1'),
      );
      await second.client.close();
    } finally {
      await h2.close();
    }
  });
});

describe('push: order and flooding', () => {
  const haltRow = (id: string, target: string, at: number): HaltRow => ({
    id,
    scope: 'terminal',
    target,
    reason: id,
    createdBy: 'operator:test',
    createdAt: at,
    liftedAt: null,
    liftedBy: null,
  });

  it('two halts fanned out from the bus: the first one read late, the terminal still gets its messages in seq order', async () => {
    // This test's own app with a bus the test can publish on, as another process would.
    const bus = createMemoryBus();
    const h2 = await pushHarness({ pingIntervalMs: 100, probeTimeoutMs: 500 }, bus);
    try {
      await seedReferenceValues(h2);
      url = await listen(h2);
      const m = await newMerchant(h2);
      const { t } = await enrollInto(h2, m);
      const { client, got } = connect(t);
      await until('connected', () => client.isOpen());
      await until('registered', async () =>
        (await h2.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 1'),
      );
      // Halt 1 (seq 1), written by "another process": delivered and acknowledged.
      await h2.store.createHalt(haltRow('hlt_one', t.id, h2.clock.t), [t.id]);
      await bus.publish({ type: 'outbox', haltId: 'hlt_one' });
      await until('seq 1', () => got.length === 1);
      await until('seq 1 acknowledged', async () => (await h2.store.pendingOutbox(t.id)).length === 0);
      // Halt 1 lifted (resume, seq 2), then halt 2 (seq 3); the read of halt 1's rows answers late.
      await h2.store.appendOutbox([t.id], {
        kind: 'resume',
        haltId: 'hlt_one',
        reason: 'lifted',
        createdAt: h2.clock.t,
      });
      await h2.store.createHalt(haltRow('hlt_two', t.id, h2.clock.t), [t.id]);
      let release = (): void => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const original = h2.store.listHaltDeliveries.bind(h2.store);
      const late = vi
        .spyOn(h2.store, 'listHaltDeliveries')
        .mockImplementationOnce(async (id: string): Promise<OutboxRow[]> => {
          await gate;
          return original(id);
        });
      await bus.publish({ type: 'outbox', haltId: 'hlt_one' });
      await bus.publish({ type: 'outbox', haltId: 'hlt_two' });
      await until('seq 3', () => got.some((message) => message.seq === 3));
      release();
      await late.mock.results[0]?.value;
      await until('all acknowledged', async () => (await h2.store.pendingOutbox(t.id)).length === 0);
      await new Promise((resolve) => setImmediate(resolve));
      expect(got.map((message) => [message.seq, message.type, message.haltId])).toEqual([
        [1, 'halt', 'hlt_one'],
        [2, 'resume', 'hlt_one'],
        [3, 'halt', 'hlt_two'],
      ]);
      await client.close();
    } finally {
      await h2.close();
    }
  });

  it('ack frames: only those of messages sent on the connection reach the store, one at a time; a flood is closed 1008', async () => {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    const r = await raw({ 'pos-proof': pushProof(t) });
    if (!('ws' in r)) throw new Error(`refused: ${r.code}`);
    const received: number[] = [];
    r.ws.on('message', (data: Buffer) =>
      received.push((JSON.parse(data.toString('utf8')) as { seq: number }).seq),
    );
    await until('registered', async () =>
      (await h.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 1'),
    );
    await h.admin('POST', `/v1/terminals/${t.id}/halt`, { reason: 'one' });
    await h.admin('POST', '/v1/halts', { scope: 'merchant', target: m, reason: 'two' });
    await until('two messages', () => received.length === 2);
    expect(received).toEqual([1, 2]);

    let inFlight = 0;
    let most = 0;
    const original = h.store.ackOutbox.bind(h.store);
    const acks = vi
      .spyOn(h.store, 'ackOutbox')
      .mockImplementation(async (terminalId: string, seq: number, at: number) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        try {
          return await original(terminalId, seq, at);
        } finally {
          inFlight -= 1;
        }
      });
    // The two real acks, repeats, and acks of messages never sent, then a flood.
    r.ws.send(JSON.stringify({ type: 'ack', seq: 1 }));
    r.ws.send(JSON.stringify({ type: 'ack', seq: 2 }));
    r.ws.send(JSON.stringify({ type: 'ack', seq: 1 }));
    r.ws.send(JSON.stringify({ type: 'ack', seq: 999 }));
    await until('both acknowledged', async () => (await h.store.pendingOutbox(t.id)).length === 0);
    expect(acks.mock.calls.map((call) => call[1])).toEqual([1, 2]);
    expect(most).toBe(1);
    const done = closed(r.ws);
    for (let i = 0; i < 10_000; i++)
      r.ws.send(JSON.stringify({ type: 'ack', seq: 1 + Math.floor(Math.random() * 1_000_000) }));
    expect(await done).toBe(CLOSE_POLICY);
    expect(acks).toHaveBeenCalledTimes(2);
    await until('released', async () =>
      (await h.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 0'),
    );
    // The server keeps serving: the terminal connects again.
    const again = connect(t);
    await until('connected again', () => again.client.isOpen());
  });
});
