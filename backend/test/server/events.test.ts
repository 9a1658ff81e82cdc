/**
 * Live events: `GET /v1/events` (Server-Sent Events over a real listening server, read with fetch
 * streaming), tenant filtering, the bounded per-client queue; the velocity event.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FleetEventSchema, type FleetEvent } from '../../src/fleet/events';
import { SseClient, sseFrame, type SseSink } from '../../src/server/routes/monitoring';
import { seedReferenceValues, SimTerminal } from '../helpers';
import {
  makeFileHarness,
  operatorToken,
  pinTicket,
  readerOutput,
  transact,
  type FileHarness,
} from '../fleet-helpers';

let h: FileHarness;
let base: string;
const streams: AbortController[] = [];
beforeEach(async () => {
  h = await makeFileHarness(':memory:');
  await seedReferenceValues(h);
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  for (const s of streams.splice(0)) s.abort();
  await h.close();
});

interface Frame {
  id?: string;
  event?: string;
  data?: string;
}

/** An open event stream: frames as they arrive (comments skipped). */
class Stream {
  private buffer = '';
  private readonly frames: Frame[] = [];
  /** Comment lines received (`: connected`, `: heartbeat`). */
  readonly comments: string[] = [];
  private waiters: (() => void)[] = [];
  private ended = false;

  constructor(private readonly body: ReadableStream<Uint8Array>) {
    void this.pump();
  }

  private async pump(): Promise<void> {
    const reader = this.body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        this.buffer += decoder.decode(value, { stream: true });
        let i: number;
        while ((i = this.buffer.indexOf('\n\n')) >= 0) {
          const block = this.buffer.slice(0, i);
          this.buffer = this.buffer.slice(i + 2);
          const frame: Frame = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(': ')) this.comments.push(line.slice(2));
            const m = /^(id|event|data): (.*)$/.exec(line);
            if (m?.[1] !== undefined && m[2] !== undefined) frame[m[1] as keyof Frame] = m[2];
          }
          if (frame.data !== undefined) this.frames.push(frame);
          this.wake();
        }
      }
    } catch {
      // aborted
    }
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves to the events received once `done` holds for them (or the stream ends). */
  async until(done: (events: FleetEvent[]) => boolean): Promise<FleetEvent[]> {
    for (;;) {
      const events = this.frames.map((f) => FleetEventSchema.parse(JSON.parse(f.data ?? '')));
      if (done(events) || this.ended) return events;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Resolves once `done` holds for the comments received, or the stream ended; true when it ended. */
  async untilComments(done: (comments: readonly string[]) => boolean): Promise<boolean> {
    while (!done(this.comments) && !this.ended) await new Promise<void>((r) => this.waiters.push(r));
    return this.ended;
  }

  get raw(): readonly Frame[] {
    return this.frames;
  }
}

async function open(token: string, at = base): Promise<{ res: Response; stream: Stream }> {
  const abort = new AbortController();
  streams.push(abort);
  const res = await fetch(`${at}/v1/events`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    signal: abort.signal,
  });
  if (res.body === null) throw new Error('no body');
  return { res, stream: new Stream(res.body) };
}

async function enrolled(): Promise<SimTerminal> {
  const t = new SimTerminal(h);
  expect((await t.enroll()).statusCode).toBe(201);
  return t;
}

describe('GET /v1/events', () => {
  it('streams verdicts as Server-Sent Events to an operator', async () => {
    const { res, stream } = await open(h.adminToken);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const t = await enrolled();
    await t.attest();
    const events = await stream.until((e) => e.filter((x) => x.type === 'verdict').length >= 2);
    const verdicts = events.filter((e) => e.type === 'verdict');
    expect(verdicts.map((v) => (v.type === 'verdict' ? [v.terminalId, v.purpose, v.tier] : []))).toEqual([
      [t.id, 'enrollment', 'affirming'],
      [t.id, 'periodic', 'affirming'],
    ]);
    const frame = stream.raw.find((f) => f.event === 'verdict');
    expect(frame?.id).toMatch(/^\d+$/);
  });

  it('refuses a caller without credentials, and a request that does not accept an event stream', async () => {
    const res = await fetch(`${base}/v1/events`, { headers: { accept: 'text/event-stream' } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('POS_ERR_OPERATOR_AUTH');
    const json = await h.admin('GET', '/v1/events');
    expect(json.statusCode).toBe(406);
    expect(json.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_EVENTS_NOT_ACCEPTABLE');
  });

  it('every role may read the stream; a terminal credential may not', async () => {
    const t = await enrolled();
    const merchant = (await h.store.getTerminal(t.id))?.merchantId ?? '';
    for (const [role, scope] of [
      ['admin', null],
      ['operator', null],
      ['auditor', null],
      ['merchant', merchant],
    ] as const) {
      const { res } = await open(await operatorToken(h, role, scope));
      expect(res.status, role).toBe(200);
    }
    const ticket = await t.attest();
    const jws = ticket.json<{ ticket?: { jws: string } }>().ticket?.jws ?? '';
    const res = await fetch(`${base}/v1/events`, {
      headers: { authorization: `PosTicket ${jws}`, accept: 'text/event-stream' },
    });
    expect(res.status).toBe(401);
  });

  it('a merchant-scoped caller gets its merchant’s events only, and no fleet-wide one', async () => {
    const a = await enrolled();
    const b = await enrolled();
    const merchantA = (await h.store.getTerminal(a.id))?.merchantId ?? '';
    const { stream: mine } = await open(await operatorToken(h, 'merchant', merchantA));
    const { stream: all } = await open(h.adminToken);
    // A fleet-wide event, then B's verdict, then A's: the merchant stream must see only A's.
    await h.bus.publish({
      type: 'event',
      event: {
        type: 'halt',
        at: h.clock.now(),
        merchantId: null,
        haltId: 'hlt_fleet',
        scope: 'fleet',
        target: null,
        reason: 'drill',
        source: 'operator',
        terminals: 2,
      },
    });
    await b.attest();
    await a.attest();
    const got = await mine.until((e) => e.some((x) => x.type === 'verdict' && x.terminalId === a.id));
    expect(got.map((e) => [e.type, e.merchantId])).toEqual([['verdict', merchantA]]);
    const everything = await all.until((e) => e.some((x) => x.type === 'verdict' && x.terminalId === a.id));
    expect(everything.map((e) => e.type)).toEqual(['halt', 'verdict', 'verdict']);
  });

  it('skips a bus event that does not parse', async () => {
    const { stream } = await open(h.adminToken);
    await h.bus.publish({ type: 'event', event: { type: 'verdict', merchantId: 'x' } });
    await h.bus.publish({
      type: 'event',
      event: { type: 'stale', at: 1, merchantId: null, terminalId: 'trm_1', overdueMs: 5 },
    });
    const events = await stream.until((e) => e.length >= 1);
    expect(events).toEqual([{ type: 'stale', at: 1, merchantId: null, terminalId: 'trm_1', overdueMs: 5 }]);
  });

  it('emits a velocity event (and counts it) when a velocity rule fires on a transaction', async () => {
    const t = await enrolled();
    for (let i = 0; i < 2; i++) {
      const res = await transact(h, t, readerOutput('visa-pin', '0000'), await pinTicket(t));
      expect(res.statusCode).toBe(200);
      expect(res.json<{ approved: boolean }>().approved).toBe(false);
    }
    await new Promise((r) => setImmediate(r));
    const velocity = h.events.filter((e) => e.type === 'velocity');
    expect(velocity).toHaveLength(1);
    expect(velocity[0]).toMatchObject({ terminalId: t.id, rule: 'wrongPin', action: 'warn' });
    const metrics = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('pos_velocity_alerts_total{rule="wrongPin",action="warn"} 1');
  });
});

describe('GET /v1/events heartbeat', () => {
  it('sends heartbeats, and ends the stream once the caller’s token is revoked', async () => {
    const fast = await makeFileHarness(':memory:', {}, undefined, { events: { heartbeatMs: 5 } });
    try {
      await fast.app.listen({ port: 0, host: '127.0.0.1' });
      const at = `http://127.0.0.1:${(fast.app.server.address() as AddressInfo).port}`;
      const token = await operatorToken(fast, 'operator', null);
      const { res, stream } = await open(token, at);
      expect(res.status).toBe(200);
      expect(await stream.untilComments((c) => c.filter((x) => x === 'heartbeat').length >= 2)).toBe(false);
      expect(stream.comments[0]).toBe('connected');
      const row = (await fast.store.listApiTokens()).find((t) => t.role === 'operator');
      expect(await fast.store.revokeApiToken(row?.id ?? '', fast.clock.now())).toBe(true);
      // The next heartbeat re-checks the caller and ends the stream.
      expect(await stream.untilComments(() => false)).toBe(true);
    } finally {
      await fast.close();
    }
  });
});

/** A stream request expected to be refused: its status and JSON body. */
async function refused(token: string, at: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${at}/v1/events`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
  });
  return { status: res.status, body: await res.json() };
}

describe('GET /v1/events limits', () => {
  it('caps concurrent streams per principal (429 POS_ERR_EVENTS_TOO_MANY) while another principal still gets one; a closed stream frees its slot', async () => {
    const capped = await makeFileHarness(':memory:', {}, undefined, {
      events: { maxStreamsPerPrincipal: 2 },
    });
    try {
      await capped.app.listen({ port: 0, host: '127.0.0.1' });
      const at = `http://127.0.0.1:${(capped.app.server.address() as AddressInfo).port}`;
      const token = await operatorToken(capped, 'auditor', null);
      const other = await operatorToken(capped, 'operator', null);
      const first = await open(token, at);
      const second = await open(token, at);
      expect([first.res.status, second.res.status]).toEqual([200, 200]);
      const third = await refused(token, at);
      expect(third.status).toBe(429);
      expect(third.body).toMatchObject({ error: { code: 'POS_ERR_EVENTS_TOO_MANY' } });
      expect((await open(other, at)).res.status).toBe(200);
      // Closing one of the first two frees a slot for the same principal.
      const abort = streams[0];
      abort?.abort();
      // The server notices the closed connection asynchronously: ask until it has (bounded).
      for (let i = 0; i < 100; i++) {
        if ((await open(token, at)).res.status === 200) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error('the slot of a closed stream was not freed');
    } finally {
      await capped.close();
    }
  });

  it('keeps the global cap (503) across principals', async () => {
    const capped = await makeFileHarness(':memory:', {}, undefined, { events: { maxStreams: 2 } });
    try {
      await capped.app.listen({ port: 0, host: '127.0.0.1' });
      const at = `http://127.0.0.1:${(capped.app.server.address() as AddressInfo).port}`;
      const a = await operatorToken(capped, 'auditor', null);
      const b = await operatorToken(capped, 'operator', null);
      expect((await open(a, at)).res.status).toBe(200);
      expect((await open(b, at)).res.status).toBe(200);
      const c = await refused(await operatorToken(capped, 'admin', null), at);
      expect(c).toMatchObject({ status: 503, body: { error: { code: 'POS_ERR_UNAVAILABLE' } } });
    } finally {
      await capped.close();
    }
  });
});

describe('SseClient (the per-client queue)', () => {
  const event: FleetEvent = { type: 'stale', at: 1, merchantId: null, terminalId: 'trm_1', overdueMs: 0 };

  class FakeSink implements SseSink {
    written: string[] = [];
    ended = false;
    accept = true;
    private drain: (() => void) | undefined;
    write(chunk: string): boolean {
      this.written.push(chunk);
      return this.accept;
    }
    once(_event: 'drain', listener: () => void): unknown {
      this.drain = listener;
      return this;
    }
    end(): void {
      this.ended = true;
    }
    emitDrain(): void {
      const d = this.drain;
      this.drain = undefined;
      d?.();
    }
  }

  it('a client that does not keep up is dropped once its queue is full; memory stays bounded', () => {
    const sink = new FakeSink();
    sink.accept = false; // congested from the first write, never drains
    const reasons: string[] = [];
    const client = new SseClient(sink, 3, (r) => reasons.push(r));
    expect(client.send(sseFrame(1, event))).toBe(true); // written, the sink is now congested
    for (let i = 2; i <= 4; i++) expect(client.send(sseFrame(i, event))).toBe(true);
    expect(client.queued).toBe(3);
    expect(client.send(sseFrame(5, event))).toBe(false);
    expect(client.isClosed).toBe(true);
    expect(client.queued).toBe(0);
    expect(sink.ended).toBe(true);
    expect(reasons).toEqual(['dropped']);
    expect(client.send(sseFrame(6, event))).toBe(false);
    expect(sink.written).toHaveLength(1);
  });

  it('a congested client gets its queued frames in order once the connection drains', () => {
    const sink = new FakeSink();
    sink.accept = false;
    const client = new SseClient(sink, 10, () => undefined);
    for (let i = 1; i <= 4; i++) client.send(sseFrame(i, event));
    expect(sink.written).toHaveLength(1);
    sink.accept = true;
    sink.emitDrain();
    expect(sink.written.map((f) => /^id: (\d+)/.exec(f)?.[1])).toEqual(['1', '2', '3', '4']);
    expect(client.queued).toBe(0);
    expect(client.isClosed).toBe(false);
  });

  it('frames carry id, event type and one data line of JSON', () => {
    expect(sseFrame(7, event)).toBe(`id: 7\nevent: stale\ndata: ${JSON.stringify(event)}\n\n`);
  });
});
