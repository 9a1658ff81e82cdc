/**
 * Key rotation across two apps on one PostgreSQL schema (own pools, own LISTEN/NOTIFY buses): a
 * rotation through app 1 is published on the bus and app 2 reloads its key ring (signs with the new
 * key, publishes it, keeps the retired one); without the bus, a ticket naming an unknown key id makes
 * the ring reload, at most once per few seconds. Skipped with a printed reason when PostgreSQL is
 * unreachable (pg-helpers; CI fails instead).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app';
import { hashApiToken, newAdminToken } from '../../src/server/context';
import { KeyRing, UNKNOWN_KID_RELOAD_INTERVAL_MS } from '../../src/keys/keyring';
import { createPostgresBus } from '../../src/store/postgres-bus';
import { openPostgresStore } from '../../src/store/postgres';
import type { Store } from '../../src/store/types';
import { PG_URL, describePg, dropSchemas, freshSchemaName } from '../pg-helpers';
import type { FastifyInstance } from 'fastify';
import { until } from './fleet-helpers';

const ISSUER = 'http://backend.test';
const schema = freshSchemaName('keys');
const master = randomBytes(32);
const adminToken = newAdminToken();
const apps: FastifyInstance[] = [];
const rings: KeyRing[] = [];
const stores: Store[] = [];
const buses: { close(): Promise<void> }[] = [];

const kidsOf = async (app: FastifyInstance): Promise<string[]> =>
  (await app.inject({ url: '/.well-known/jwks.json' }))
    .json<{ keys: { kid: string }[] }>()
    .keys.map((k) => k.kid);

describePg('key rotation across two apps on one PostgreSQL', () => {
  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const store = await openPostgresStore({ url: PG_URL, schema });
      stores.push(store);
      if (i === 0) {
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
      rings.push(opened.ring);
      const bus = await createPostgresBus({ url: PG_URL, schema });
      buses.push(bus);
      apps.push(
        await buildApp({
          store,
          keys: opened.ring,
          config: { issuer: ISSUER, rateLimitPerMinute: false, development: true, livenessSweepS: false },
          bus,
          instanceId: `instance-${i}`,
          defaultMetrics: false,
        }),
      );
    }
  }, 30_000);
  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const bus of buses) await bus.close();
    await dropSchemas([schema]);
  }, 30_000);

  it('a rotation through app 1 reaches app 2 over the bus: new signing key, old one still published', async () => {
    const [app1, app2] = apps as [FastifyInstance, FastifyInstance];
    const [ring1, ring2] = rings as [KeyRing, KeyRing];
    const before = ring2.signer().kid;
    expect(ring1.signer().kid).toBe(before);
    const res = await app1.inject({
      method: 'POST',
      url: '/v1/keys/rotate',
      headers: { authorization: `Bearer ${adminToken}` },
      payload: {},
    });
    expect(res.statusCode).toBe(200);
    const after = ring1.signer().kid;
    expect(after).not.toBe(before);
    await until('app 2 reloaded', () => ring2.signer().kid === after);
    expect(await kidsOf(app2)).toEqual(expect.arrayContaining([before, after]));
    expect(new Set(await kidsOf(app2))).toEqual(new Set(await kidsOf(app1)));
  }, 30_000);

  it('without a bus message: an unknown key id reloads the ring, at most once per interval', async () => {
    const [store1, store2] = stores as [Store, Store];
    // Two rings with no bus: the second learns of a rotation only through the fallback.
    const a = await KeyRing.open(store1, master, Date.now(), { ticketLifetimeS: 60 });
    const b = await KeyRing.open(store2, master, Date.now(), { ticketLifetimeS: 60 });
    if (!a.ok || !b.ok) throw new Error('key ring did not open');
    const now = Date.now();
    const first = (await a.ring.rotate(now)).kid;
    expect(b.ring.signer().kid).not.toBe(first);
    expect(await b.ring.reloadForUnknownKid(first, now)).toBe(true);
    expect(b.ring.signer().kid).toBe(first);
    // A made-up key id: a reload (the interval has passed) that does not find it.
    expect(await b.ring.reloadForUnknownKid('made-up', now + UNKNOWN_KID_RELOAD_INTERVAL_MS)).toBe(false);
    // Within the interval, even a real new key id is not looked up again...
    const second = (await a.ring.rotate(now)).kid;
    expect(await b.ring.reloadForUnknownKid(second, now + UNKNOWN_KID_RELOAD_INTERVAL_MS + 1)).toBe(false);
    expect(b.ring.signer().kid).toBe(first);
    // ...once it has passed, it is.
    expect(await b.ring.reloadForUnknownKid(second, now + 2 * UNKNOWN_KID_RELOAD_INTERVAL_MS)).toBe(true);
    expect(b.ring.signer().kid).toBe(second);
  }, 30_000);
});
