/**
 * The LISTEN/NOTIFY bus against the real PostgreSQL: two buses on one channel (two processes) see
 * each other's messages, each local subscriber gets a message exactly once, a malformed payload is
 * dropped and counted, and a lost LISTEN connection comes back.
 */
import pg from 'pg';
import { expect, it, vi } from 'vitest';
import type { BusMessage } from '../../src/fleet/bus';
import { createPostgresBus, MAX_BUS_PAYLOAD_BYTES, type PostgresBus } from '../../src/store/postgres-bus';
import { describePg, freshSchemaName, PG_URL } from '../pg-helpers';

function collect(bus: PostgresBus): BusMessage[] {
  const got: BusMessage[] = [];
  bus.subscribe((m) => got.push(m));
  return got;
}
const outbox = (haltId: string): BusMessage => ({ type: 'outbox', haltId });

async function rawNotify(channel: string, payload: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query('SELECT pg_notify($1, $2)', [channel, payload]);
  await c.end();
}

describePg('PostgreSQL bus (LISTEN/NOTIFY)', () => {
  it('two buses on one channel see each other; each subscriber gets each message exactly once', async () => {
    const channel = freshSchemaName('bus');
    const a = await createPostgresBus({ url: PG_URL, channel });
    const b = await createPostgresBus({ url: PG_URL, channel });
    try {
      const gotA = collect(a);
      const gotB = collect(b);
      await a.publish(outbox('h1'));
      await b.publish(outbox('h2'));
      await a.publish(outbox('h3'));
      // h3 after h1 from the same connection: once B has h3 and A has h2, every echo has arrived too
      // (NOTIFY order is per sending session, and A's own echo of h1 precedes h3's).
      await vi.waitFor(() => {
        expect(gotB.map((m) => (m.type === 'outbox' ? m.haltId : ''))).toContain('h3');
        expect(gotA.map((m) => (m.type === 'outbox' ? m.haltId : ''))).toContain('h2');
      });
      await a.publish(outbox('barrier'));
      await vi.waitFor(() => expect(a.stats().received + b.stats().received).toBeGreaterThanOrEqual(3));
      await vi.waitFor(() =>
        expect(gotB.some((m) => m.type === 'outbox' && m.haltId === 'barrier')).toBe(true),
      );
      const ids = (got: BusMessage[]): string[] =>
        got.map((m) => (m.type === 'outbox' ? m.haltId : '')).sort();
      expect(ids(gotA)).toEqual(['barrier', 'h1', 'h2', 'h3']);
      expect(ids(gotB)).toEqual(['barrier', 'h1', 'h2', 'h3']);
      expect(a.stats()).toMatchObject({ published: 3, received: 1, dropped: 0 });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('drops malformed payloads (not JSON, wrong shape, unknown type), counts them, keeps working', async () => {
    const channel = freshSchemaName('bus');
    const warnings: string[] = [];
    const a = await createPostgresBus({ url: PG_URL, channel, onWarning: (m) => warnings.push(m) });
    const b = await createPostgresBus({ url: PG_URL, channel });
    try {
      const gotA = collect(a);
      await rawNotify(channel, 'not json {');
      await rawNotify(channel, JSON.stringify({ v: 1, from: 'x', msg: { type: 'outbox' } }));
      await rawNotify(channel, JSON.stringify({ v: 1, from: 'x', msg: { type: 'nope', haltId: 'h' } }));
      await rawNotify(channel, JSON.stringify({ type: 'outbox', haltId: 'h' }));
      await b.publish(outbox('ok'));
      await vi.waitFor(() => expect(gotA).toEqual([outbox('ok')]));
      expect(a.stats().dropped).toBe(4);
      expect(warnings.filter((w) => w.includes('malformed'))).toHaveLength(4);
      expect(warnings.join(' ')).not.toContain('not json');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refuses to publish a message over the NOTIFY payload limit', async () => {
    const channel = freshSchemaName('bus');
    const a = await createPostgresBus({ url: PG_URL, channel });
    try {
      const big: BusMessage = { type: 'event', event: { blob: 'x'.repeat(MAX_BUS_PAYLOAD_BYTES) } };
      await expect(a.publish(big)).rejects.toMatchObject({ code: 'POS_ERR_STORE' });
    } finally {
      await a.close();
    }
  });

  it('reconnects after its LISTEN connection is killed and receives again', async () => {
    const channel = freshSchemaName('bus');
    const a = await createPostgresBus({ url: PG_URL, channel });
    const b = await createPostgresBus({ url: PG_URL, channel });
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      const gotA = collect(a);
      const killed = await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
        [`pos-bus ${channel}`],
      );
      expect(killed.rowCount).toBe(2);
      await vi.waitFor(() => expect(a.stats().reconnects).toBeGreaterThanOrEqual(1), { timeout: 15_000 });
      await vi.waitFor(() => expect(b.stats().reconnects).toBeGreaterThanOrEqual(1), { timeout: 15_000 });
      await b.publish(outbox('after'));
      await vi.waitFor(() => expect(gotA).toEqual([outbox('after')]));
    } finally {
      await admin.end();
      await a.close();
      await b.close();
    }
  });

  it('rejects at start when PostgreSQL is unreachable, and a URL of another scheme', async () => {
    await expect(createPostgresBus({ url: 'postgres://postgres@127.0.0.1:1/test' })).rejects.toBeInstanceOf(
      Error,
    );
    await expect(createPostgresBus({ url: 'http://127.0.0.1/x' })).rejects.toMatchObject({
      code: 'POS_ERR_STORE',
    });
  });
});
