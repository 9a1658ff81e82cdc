/**
 * The push halt port over a real WebSocket: a small server in the test speaks the push protocol of
 * docs/fleet.md (halt / resume with seq, acks). A halt arriving while the engine waits for the PIN
 * has closed the pad, wiped the digits and aborted the reader by the time its ack reaches the server;
 * a resend after a reconnect is acknowledged but not applied twice; resume lets the terminal sell; an
 * older resume arriving after a newer halt is acknowledged and ignored.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { PushHaltPort, startHaltPush } from '../src/core/push/halt-port';
import { TransactionEngine } from '../src/core/transaction';
import { Rig, settle } from './txn-fakes';
import { until } from './support';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('push halt port', () => {
  it('applies a halt before acknowledging it, once per seq, and a resume lifts it', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    cleanups.push(() => new Promise<void>((r) => wss.close(() => r())));
    const proofs: (string | undefined)[] = [];
    const acks: { seq: number; stateAtAck: string; wipedAtAck: boolean; abortsAtAck: number }[] = [];
    const sockets: WebSocket[] = [];

    const rig = new Rig();
    const port = new PushHaltPort();
    const engine = new TransactionEngine({
      reader: rig.reader,
      backend: rig.backend,
      push: port,
      clock: rig.clock,
    });
    cleanups.push(() => engine.dispose());
    const halts: string[] = [];
    port.onHalt((h) => halts.push(h.haltId));

    wss.on('connection', (ws, req) => {
      proofs.push(req.headers['pos-proof'] as string | undefined);
      sockets.push(ws);
      ws.on('message', (data: Buffer) => {
        const m = JSON.parse(data.toString('utf8')) as { type: string; seq: number };
        acks.push({
          seq: m.seq,
          stateAtAck: engine.state,
          wipedAtAck: engine.pinWiped(),
          abortsAtAck: rig.aborts,
        });
      });
    });
    const { port: tcp } = wss.address() as AddressInfo;
    let n = 0;
    const client = startHaltPush({
      url: `ws://127.0.0.1:${tcp}/v1/push`,
      proof: () => `proof-${++n}`,
      port,
      backoff: { initialMs: 10, maxMs: 50 },
    });
    cleanups.push(() => client.close());
    await until(() => sockets.length === 1, 'the push connection');
    expect(proofs).toEqual(['proof-1']);

    // A sale waiting for its PIN.
    engine.begin();
    engine.enterAmount(100, 'EUR');
    rig.answer('start', true);
    await settle();
    rig.presentCard();
    rig.answer('prePin', true);
    await settle();
    rig.answer('ticket', true);
    await settle();
    expect(engine.state).toBe('pin');
    engine.pressDigit(1);
    engine.pressDigit(2);

    const halt = { type: 'halt', seq: 1, haltId: 'hlt_1', reason: 'incident 42', at: Date.now() };
    sockets[0]?.send(JSON.stringify(halt));
    await until(() => acks.length === 1, 'the ack');
    expect(acks[0]).toEqual({ seq: 1, stateAtAck: 'result', wipedAtAck: true, abortsAtAck: 1 });
    expect(engine.snapshot().result).toMatchObject({ status: 'halted', detail: 'incident 42' });
    expect(rig.pinRequests).toHaveLength(0);

    // Not a protocol message: ignored, not acknowledged.
    sockets[0]?.send('{"type":"halt"}');
    // A reconnect and a resend of seq 1: acknowledged again, applied once.
    sockets[0]?.terminate();
    await until(() => sockets.length === 2, 'the reconnect');
    expect(proofs).toEqual(['proof-1', 'proof-2']);
    sockets[1]?.send(JSON.stringify(halt));
    await until(() => acks.length === 2, 'the second ack');
    expect(acks.map((a) => a.seq)).toEqual([1, 1]);
    expect(halts).toEqual(['hlt_1']);

    engine.reset();
    expect(engine.begin()).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_TXN_HALTED' });
    sockets[1]?.send(
      JSON.stringify({ type: 'resume', seq: 2, haltId: 'hlt_1', reason: 'resolved', at: Date.now() }),
    );
    await until(() => acks.length === 3, 'the resume ack');
    expect(port.current()).toBeUndefined();
    expect(engine.begin()).toEqual({ ok: true });
  });

  it('a resume older than the newest halt (a late fan-out) is acknowledged but does not lift it', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    cleanups.push(() => new Promise<void>((r) => wss.close(() => r())));
    const sockets: WebSocket[] = [];
    const acks: number[] = [];
    wss.on('connection', (ws) => {
      sockets.push(ws);
      ws.on('message', (data: Buffer) =>
        acks.push((JSON.parse(data.toString('utf8')) as { seq: number }).seq),
      );
    });
    const port = new PushHaltPort();
    const resumes: number[] = [];
    port.onResume(() => resumes.push(1));
    const { port: tcp } = wss.address() as AddressInfo;
    const client = startHaltPush({
      url: `ws://127.0.0.1:${tcp}/v1/push`,
      proof: () => 'proof',
      port,
      backoff: { initialMs: 10, maxMs: 50 },
    });
    cleanups.push(() => client.close());
    await until(() => sockets.length === 1, 'the push connection');
    const at = Date.now();
    sockets[0]?.send(JSON.stringify({ type: 'halt', seq: 6, haltId: 'hlt_2', reason: 'fraud', at }));
    sockets[0]?.send(JSON.stringify({ type: 'resume', seq: 5, haltId: 'hlt_1', reason: 'false alarm', at }));
    await until(() => acks.length === 2, 'both acks');
    expect(acks).toEqual([6, 5]);
    expect(port.current()).toEqual({ haltId: 'hlt_2', reason: 'fraud' });
    expect(resumes).toEqual([]);
    // The port on its own (messages handed to it directly) keeps the newest seq too.
    const direct = new PushHaltPort();
    direct.handle({ type: 'halt', seq: 6, haltId: 'hlt_2', reason: 'fraud', at });
    direct.handle({ type: 'resume', seq: 5, haltId: 'hlt_1', reason: 'false alarm', at });
    expect(direct.current()).toEqual({ haltId: 'hlt_2', reason: 'fraud' });
    // A newer resume lifts it.
    sockets[0]?.send(JSON.stringify({ type: 'resume', seq: 7, haltId: 'hlt_2', reason: 'resolved', at }));
    await until(() => acks.length === 3, 'the third ack');
    expect(port.current()).toBeUndefined();
    expect(resumes).toEqual([1]);
  });
});
