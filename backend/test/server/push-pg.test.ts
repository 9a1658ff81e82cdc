/**
 * The push connection across two back-end processes' worth of apps on one PostgreSQL schema (each
 * with its own pool, its own LISTEN/NOTIFY bus and instance id): a halt ordered through one reaches a
 * terminal connected to the other, and one device key connected to both is a fleet correlation; a
 * terminal whose connection to one dropped silently and that reconnects to the other is not.
 * Skipped with a printed reason when PostgreSQL is unreachable (pg-helpers; CI fails instead).
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { jwkThumbprint } from '@pos/shared';
import { buildApp } from '../../src/server/app';
import { hashApiToken, newAdminToken } from '../../src/server/context';
import { KeyRing } from '../../src/keys/keyring';
import pg from 'pg';
import { createPostgresBus, type PostgresBus } from '../../src/store/postgres-bus';
import { openPostgresStore } from '../../src/store/postgres';
import { startPushClient, type PushClient } from '../../src/fleet/push-client';
import { CLOSE_DECOMMISSIONED, CLOSE_DUPLICATE, type ServerMessage } from '../../src/fleet/push-protocol';
import type { Store } from '../../src/store/types';
import { PG_URL, describePg, dropSchemas, freshSchemaName } from '../pg-helpers';
import type { FastifyInstance } from 'fastify';
import net, { type AddressInfo } from 'node:net';
import { until } from './fleet-helpers';

const ISSUER = 'http://backend.test';
const schema = freshSchemaName('push');
const master = randomBytes(32);
const adminToken = newAdminToken();
const apps: FastifyInstance[] = [];
const urls: string[] = [];
const clients: PushClient[] = [];
const buses: PostgresBus[] = [];

interface Term {
  readonly id: string;
  readonly key: KeyObject;
}

function proof(t: Term): string {
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg: 'ES256', typ: 'pos-proof+jwt', kid: t.id })}.${b64({
    htm: 'GET',
    htu: `${ISSUER}/v1/push`,
    iat: Math.floor(Date.now() / 1000),
    jti: randomBytes(16).toString('base64url'),
    bh: createHash('sha256').update('').digest('base64url'),
  })}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key: t.key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

async function seedTerminal(store: Store, id: string): Promise<Term> {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const j = pair.publicKey.export({ format: 'jwk' }) as { x: string; y: string };
  const jwk = { kty: 'EC', crv: 'P-256', x: j.x, y: j.y } as const;
  await store.createTerminal({
    id,
    merchantId: 'mer_pg',
    deviceJwk: JSON.stringify(jwk),
    deviceJkt: jwkThumbprint(jwk),
    readerSerial: `RDR-${id}`,
    lastCounter: 0,
    state: 'active',
    stateReason: null,
    intervalS: 300,
    createdAt: Date.now(),
    lastAttestedAt: Date.now(),
  });
  return { id, key: pair.privateKey };
}

function connect(url: string, t: Term): { client: PushClient; got: ServerMessage[]; codes: number[] } {
  const got: ServerMessage[] = [];
  const codes: number[] = [];
  const client = startPushClient({
    url,
    proof: () => proof(t),
    onMessage: (m) => got.push(m),
    onState: (state, detail) => {
      if (state === 'closed') codes.push(detail.code ?? 0);
    },
    reconnect: false,
  });
  clients.push(client);
  return { client, got, codes };
}

const connectedOn = async (app: FastifyInstance): Promise<number> => {
  const body = (await app.inject({ url: '/metrics' })).body;
  return Number(/^pos_push_connections (\d+)/m.exec(body)?.[1] ?? '0');
};

let store1: Store;

describePg('push across two apps on one PostgreSQL', () => {
  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const store = await openPostgresStore({ url: PG_URL, schema });
      if (i === 0) {
        store1 = store;
        await store.createMerchant({ id: 'mer_pg', name: 'PG shop', createdAt: Date.now() });
        await store.createApiToken({
          id: 'tok_admin',
          tokenHash: hashApiToken(adminToken),
          label: 'admin',
          role: 'admin',
          merchantId: null,
          createdBy: null,
          createdAt: Date.now(),
          expiresAt: null,
          revokedAt: null,
        });
      }
      const opened = await KeyRing.open(store, master, Date.now(), { ticketLifetimeS: 60 });
      if (!opened.ok) throw new Error(opened.code);
      const bus = await createPostgresBus({ url: PG_URL, schema });
      const app = await buildApp({
        store,
        keys: opened.ring,
        config: { issuer: ISSUER, rateLimitPerMinute: false, development: true },
        bus,
        instanceId: `instance-${i}`,
        defaultMetrics: false,
      });
      buses.push(bus);
      await app.listen({ port: 0, host: '127.0.0.1' });
      apps.push(app);
      urls.push(`ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1/push`);
    }
  }, 30_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    for (const app of apps) await app.close();
    for (const bus of buses) await bus.close();
    await dropSchemas([schema]);
  }, 30_000);

  it('a fleet halt ordered through app 1 reaches terminals connected to app 1 and app 2; acks are shared', async () => {
    const [app1, app2] = apps as [FastifyInstance, FastifyInstance];
    const a = await seedTerminal(store1, 'ter_pg_a');
    const b = await seedTerminal(store1, 'ter_pg_b');
    const onOne = connect(urls[0] ?? '', a);
    const onTwo = connect(urls[1] ?? '', b);
    await until(
      'both registered',
      async () => (await connectedOn(app1)) === 1 && (await connectedOn(app2)) === 1,
    );
    const res = await app1.inject({
      method: 'POST',
      url: '/v1/halts',
      headers: { authorization: `Bearer ${adminToken}` },
      payload: { scope: 'fleet', reason: 'cross-process' },
    });
    expect(res.statusCode).toBe(201);
    const { haltId } = res.json<{ haltId: string }>();
    await until('both received', () => onOne.got.length === 1 && onTwo.got.length === 1);
    expect(onTwo.got[0]).toMatchObject({ type: 'halt', seq: 1, haltId, reason: 'cross-process' });
    // Operators on either process see both acknowledgements.
    await until('acks stored', async () => {
      const view = (
        await app2.inject({ url: `/v1/halts/${haltId}`, headers: { authorization: `Bearer ${adminToken}` } })
      ).json<{ acknowledged: number }>();
      return view.acknowledged === 2;
    });
    await onOne.client.close();
    await onTwo.client.close();
    await until('released', async () => (await connectedOn(app1)) === 0 && (await connectedOn(app2)) === 0);
  }, 30_000);

  it('a terminal decommissioned through app 1 while connected to app 2 gets the notice there and is closed 4410; app 1 refuses its upgrade', async () => {
    const [app1, app2] = apps as [FastifyInstance, FastifyInstance];
    const t = await seedTerminal(store1, 'ter_pg_retired');
    const onTwo = connect(urls[1] ?? '', t);
    await until('registered on app 2', async () => (await connectedOn(app2)) === 1);
    const res = await app1.inject({
      method: 'POST',
      url: `/v1/terminals/${t.id}/decommission`,
      headers: { authorization: `Bearer ${adminToken}` },
      payload: { reason: 'stolen from the shop' },
    });
    expect(res.statusCode, res.body).toBe(200);
    await until('closed on app 2', () => onTwo.codes.length === 1);
    expect(onTwo.codes[0]).toBe(CLOSE_DECOMMISSIONED);
    expect(onTwo.got).toHaveLength(1);
    expect(onTwo.got[0]).toMatchObject({
      type: 'halt',
      seq: 1,
      reason: 'decommissioned: stolen from the shop',
    });
    expect(onTwo.got[0]?.haltId.startsWith('dcm_')).toBe(true);
    await until('released on app 2', async () => (await connectedOn(app2)) === 0);
    const again = connect(urls[0] ?? '', t);
    await until('refused by app 1', () => again.codes.length === 1);
    expect(again.got).toEqual([]);
    expect(await connectedOn(app1)).toBe(0);
  }, 30_000);

  it('one device key connected to both apps: the second connection is closed 4409 and the terminal halted', async () => {
    const [app1] = apps as [FastifyInstance, FastifyInstance];
    const t = await seedTerminal(store1, 'ter_pg_twice');
    const first = connect(urls[0] ?? '', t);
    await until('first registered', async () => (await connectedOn(app1)) === 1);
    const second = connect(urls[1] ?? '', t);
    await until('second closed', () => second.codes.length === 1);
    expect(second.codes[0]).toBe(CLOSE_DUPLICATE);
    await until('halt on the first', () => first.got.length === 1);
    expect(first.got[0]).toMatchObject({
      type: 'halt',
      reason: 'fleet correlation: device key on two push connections',
    });
    expect((await store1.getTerminal(t.id))?.state).toBe('halted');
    expect(first.client.isOpen()).toBe(true);
  }, 30_000);

  it('a silent drop on app 1 and a reconnect to app 2 within the live window: no halt, the old connection is dropped', async () => {
    const [app1, app2] = apps as [FastifyInstance, FastifyInstance];
    const t = await seedTerminal(store1, 'ter_pg_blip');
    // The terminal reaches app 1 through a TCP proxy that can cut only the terminal's side.
    const port1 = Number(new URL(urls[0] ?? '').port);
    const upstreams: net.Socket[] = [];
    const downstreams: net.Socket[] = [];
    const proxy = net.createServer((down) => {
      const up = net.connect(port1, '127.0.0.1');
      upstreams.push(up);
      downstreams.push(down);
      down.pipe(up);
      up.pipe(down);
      down.on('error', () => undefined);
      up.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve()));
    try {
      const proxied = `ws://127.0.0.1:${(proxy.address() as AddressInfo).port}/v1/push`;
      // Earlier tests may leave connections open: counts are compared with what was there before.
      const before1 = await connectedOn(app1);
      const before2 = await connectedOn(app2);
      const first = connect(proxied, t);
      await until('open', () => first.client.isOpen());
      await until('registered on app 1', async () => (await connectedOn(app1)) === before1 + 1);
      // The network drops silently: the terminal's side is cut, app 1 hears nothing (a NAT timeout).
      for (const u of upstreams) u.unpipe();
      for (const d of downstreams) {
        d.unpipe();
        d.destroy();
      }
      await until('the terminal sees its connection closed', () => first.codes.length === 1);
      const second = connect(urls[1] ?? '', t);
      // App 2 asks app 1 to ping its socket; no pong: app 1 drops it and app 2 takes the terminal.
      await until('registered on app 2', async () => (await connectedOn(app2)) === before2 + 1, 15_000);
      await until('dropped on app 1', async () => (await connectedOn(app1)) === before1);
      expect(second.client.isOpen()).toBe(true);
      expect(second.codes).toEqual([]);
      expect(await store1.getTerminal(t.id)).toMatchObject({ state: 'active' });
      expect(await store1.listHalts({ activeOnly: true, limit: 100 })).not.toContainEqual(
        expect.objectContaining({ target: t.id }),
      );
      // Still reachable: a halt for it through app 1 arrives on app 2's connection.
      const res = await app1.inject({
        method: 'POST',
        url: `/v1/terminals/${t.id}/halt`,
        headers: { authorization: `Bearer ${adminToken}` },
        payload: { reason: 'after the blip' },
      });
      expect(res.statusCode).toBe(200);
      await until('halt on app 2', () => second.got.length === 1);
      expect(second.got[0]).toMatchObject({ type: 'halt', reason: 'after the blip' });
      await second.client.close();
    } finally {
      for (const u of upstreams) u.destroy();
      proxy.close();
    }
  }, 30_000);

  it('after its bus connection is restored, a process re-sends what was written meanwhile to its terminals', async () => {
    const app2 = apps[1] as FastifyInstance;
    const t = await seedTerminal(store1, 'ter_pg_reconnect');
    const onTwo = connect(urls[1] ?? '', t);
    await until('registered on app 2', async () => (await connectedOn(app2)) === 1);
    // Written to the store with no bus message at all: what a NOTIFY lost while the listener was
    // down looks like to the process holding the terminal.
    const at = Date.now();
    const [row] = await store1.createHalt(
      {
        id: 'hlt_pg_reconnect',
        scope: 'terminal',
        target: t.id,
        reason: 'while the bus was down',
        createdBy: 'operator:test',
        createdAt: at,
        liftedAt: null,
        liftedBy: null,
      },
      [t.id],
    );
    expect(row?.seq).toBe(1);
    expect(onTwo.got).toEqual([]);
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      const bus2 = buses[1] as PostgresBus;
      const before = bus2.stats().reconnects;
      const killed = await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
        [`pos-bus ${bus2.channel}`],
      );
      expect(killed.rowCount).toBeGreaterThanOrEqual(1);
      await until('bus 2 reconnected', () => bus2.stats().reconnects > before);
      await until('the halt re-sent on app 2', () => onTwo.got.length === 1);
      expect(onTwo.got[0]).toMatchObject({ type: 'halt', seq: 1, haltId: 'hlt_pg_reconnect' });
    } finally {
      await admin.end();
      await onTwo.client.close();
    }
  }, 30_000);
});
