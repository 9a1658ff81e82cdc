/**
 * An acknowledgement the terminal sends just before it closes its push connection is recorded: the
 * headless terminal acknowledges a halt, ends its sale and closes the connection at once, and a
 * back-end busy for a moment reads the ack frame and the close frame in one go (the socket is then
 * already closing when the ack is handled).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { makeHarness, seedReferenceValues, type Harness } from '../helpers';
import { enrollInto, listen, newMerchant, until } from './fleet-helpers';

let h: Harness;
let url: string;

beforeEach(async () => {
  h = await makeHarness();
  await seedReferenceValues(h);
  url = await listen(h);
});
afterEach(async () => {
  await h.close();
});

describe('push: an ack right before the close', () => {
  it('is recorded when the ack and the close frame arrive together', async () => {
    const m = await newMerchant(h);
    const { t } = await enrollInto(h, m);
    const ws = new WebSocket(url, { headers: { 'pos-proof': t.proof('GET', '/v1/push', '') } });
    ws.on('error', () => undefined);
    const got: string[] = [];
    ws.on('message', (data: Buffer) => {
      got.push(data.toString('utf8'));
      const seq = (JSON.parse(data.toString('utf8')) as { seq: number }).seq;
      // Ack and close in one write: the server reads both frames in one chunk.
      ws.send(JSON.stringify({ type: 'ack', seq }));
      ws.close(1000, 'bye');
    });
    await new Promise<void>((r) => ws.once('open', () => r()));
    await until('registered', async () =>
      (await h.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 1'),
    );
    const halt = (await h.admin('POST', `/v1/terminals/${t.id}/halt`, { reason: 'check' })).json<{
      haltId: string;
    }>();
    await until('closed', () => ws.readyState === WebSocket.CLOSED);
    expect(got).toHaveLength(1);
    await until('released', async () =>
      (await h.app.inject({ url: '/metrics' })).body.includes('pos_push_connections 0'),
    );
    const view = (await h.admin('GET', `/v1/halts/${halt.haltId}`)).json<{ pending: number }>();
    expect(view.pending).toBe(0);
  });
});
