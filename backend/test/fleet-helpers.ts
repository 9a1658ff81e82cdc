/**
 * Helpers for the fleet tests (liveness, correlation, events): a harness on a SQLite file that can be
 * restarted on the same file with the same master key and clock, card transactions, PIN-entry
 * tickets, and an operator token of a given role and merchant.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import {
  aesDukptWorkingKey,
  encodePinBlock,
  encryptCardData,
  hex,
  parseAesKsn,
  parsePan,
  pinDigitsFromText,
  toBase64url,
  toHex,
  unwrap,
  wipe,
} from '@pos/shared';
import { DEV_BDK_HEX, TEST_CARDS } from '@pos/shared/testcards';
import { buildApp, type BuildAppOptions } from '../src/server/app';
import { createMemoryBus, type Bus } from '../src/fleet/bus';
import { newApiToken } from '../src/server/auth/principal';
import { FleetEventSchema, type FleetEvent } from '../src/fleet/events';
import { hashApiToken, newAdminToken, type ServiceConfig } from '../src/server/context';
import { KeyRing } from '../src/keys/keyring';
import { openSqliteStore } from '../src/store/sqlite';
import type { OperatorRole, Store } from '../src/store/types';
import { ISSUER, standInReaderVerifier, type Harness, type SimTerminal } from './helpers';

export interface FileHarness extends Harness {
  /** Every dashboard event this app's bus carried, in order. */
  readonly events: FleetEvent[];
  /** This app's fleet bus. */
  readonly bus: Bus;
  /** Closes the app and builds a new one on the same file, master key, admin token and clock. */
  restart(): Promise<FileHarness>;
  /** A second app (another "process") on the same file, master key, admin token and clock. */
  twin(): Promise<FileHarness>;
}

/** What a restarted or twin app keeps (and what a caller may fix in advance: its secrets and clock). */
export interface Carried {
  masterKey: Uint8Array;
  adminToken: string;
  clock: Harness['clock'];
  cardTokenKey: Uint8Array;
}

/** buildApp options a test may set: the event stream's limits, the metrics scrape token, a logger. */
export type HarnessAppOptions = Pick<BuildAppOptions, 'events' | 'metricsToken' | 'logger'>;

/** The harness's store: a SQLite file (or `:memory:`), or an opener of any other store (PostgreSQL). */
export type HarnessStore = string | { readonly open: () => Promise<Store> };

/**
 * An app on a SQLite file, or on the store `where.open()` makes (the liveness sweeper's timer off
 * unless the config turns it on). With `carried`, its secrets and clock are used and no admin token is
 * stored (it is the caller's, or the first app's). `appOptions` go to buildApp (and to a restart or
 * twin); a buildApp that throws closes the store.
 */
export async function makeFileHarness(
  where: HarnessStore,
  config: Partial<ServiceConfig> = {},
  carried?: Carried,
  appOptions: HarnessAppOptions = {},
): Promise<FileHarness> {
  const masterKey = carried?.masterKey ?? randomBytes(32);
  const cardTokenKey = carried?.cardTokenKey ?? randomBytes(32);
  const clock = carried?.clock ?? {
    t: Date.UTC(2026, 10, 29, 12, 0, 0),
    now(): number {
      return this.t;
    },
  };
  const store = typeof where === 'string' ? openSqliteStore({ path: where }) : await where.open();
  const opened = await KeyRing.open(store, masterKey, clock.now(), {
    ticketLifetimeS: config.ticketLifetimeS ?? 60,
  });
  if (!opened.ok) {
    await store.close();
    throw new Error(`harness: key ring: ${opened.code}`);
  }
  const bus = createMemoryBus();
  const events: FleetEvent[] = [];
  bus.subscribe((m) => {
    if (m.type === 'event') events.push(FleetEventSchema.parse(m.event));
  });
  const app = await buildApp({
    ...appOptions,
    bus,
    store,
    keys: opened.ring,
    clock,
    config: {
      issuer: ISSUER,
      rateLimitPerMinute: false,
      development: true,
      livenessSweepS: false,
      ...config,
    },
    readerStatusVerifier: standInReaderVerifier,
    readerCaRoots: [new Uint8Array([1])],
    cardTokenKey,
    defaultMetrics: false,
  }).catch(async (e: unknown) => {
    await store.close();
    throw e;
  });
  const adminToken = carried?.adminToken ?? newAdminToken();
  if (carried === undefined) {
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
  }
  const next: Carried = { masterKey, adminToken, clock, cardTokenKey };
  const h: FileHarness = {
    events,
    bus,
    app,
    store,
    keys: opened.ring,
    clock,
    adminToken,
    admin: (method, url, body) => inject(app, adminToken, method, url, body),
    close: async () => {
      await app.close();
      await bus.close();
    },
    restart: async () => {
      await h.close();
      return makeFileHarness(where, config, next, appOptions);
    },
    twin: () => makeFileHarness(where, config, next, appOptions),
  };
  return h;
}

export function inject(
  app: FastifyInstance,
  token: string,
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  body?: unknown,
): Promise<LightMyRequestResponse> {
  return app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}` },
    ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
  });
}

/** Creates an API token of `role` (scoped to `merchantId`, or provider-wide) straight in the store. */
export async function operatorToken(
  h: Harness,
  role: OperatorRole,
  merchantId: string | null,
): Promise<string> {
  const token = newApiToken(role);
  await h.store.createApiToken({
    id: `tok_${toBase64url(randomBytes(6))}`,
    tokenHash: hashApiToken(token),
    label: `test ${role}`,
    role,
    merchantId,
    createdBy: null,
    createdAt: h.clock.now(),
    expiresAt: null,
    revokedAt: null,
  });
  return token;
}

let ksnCounter = 1;
/** What a reader hands over: KSN, card data under the DUKPT data key and (with `pin`) a format 4 PIN block. */
export function readerOutput(cardName: string, pin: string | undefined): Record<string, unknown> {
  const card = TEST_CARDS.find((c) => c.name === cardName);
  if (card === undefined) throw new Error(cardName);
  const ksnBytes = hex(`1234567890123456${(ksnCounter++).toString(16).padStart(8, '0')}`);
  const ksn = unwrap(parseAesKsn(ksnBytes)).ksn;
  const bdk = hex(DEV_BDK_HEX);
  const dataKey = unwrap(aesDukptWorkingKey({ bdk, ksn, usage: 'data-encryption', keyType: 'aes128' })).key;
  const cardData = encryptCardData(dataKey, { pan: card.pan, exp: card.expiry }, ksn);
  wipe(dataKey);
  const body: Record<string, unknown> = {
    amount: 1250,
    currency: 'EUR',
    ksn: toHex(ksnBytes),
    cardData: { iv: toBase64url(cardData.iv), ct: toBase64url(cardData.ct) },
  };
  if (pin !== undefined) {
    const pinKey = unwrap(aesDukptWorkingKey({ bdk, ksn, usage: 'pin-encryption', keyType: 'aes128' })).key;
    const digits = unwrap(pinDigitsFromText(pin)).pin;
    const block = unwrap(
      encodePinBlock({ format: 4, pin: digits, pan: unwrap(parsePan(card.pan)).pan, key: pinKey }),
    ).block;
    wipe(pinKey, digits);
    body['pinBlock'] = toHex(block);
  }
  return body;
}

/** A session ticket from a periodic attestation (throws when none is issued). */
export async function sessionTicket(t: SimTerminal): Promise<string> {
  const res = await t.attest('periodic');
  const jws = res.json<{ ticket?: { jws: string } }>().ticket?.jws;
  if (jws === undefined) throw new Error(`no ticket: ${res.body}`);
  return jws;
}

let nonceCounter = 0;
/** A PIN-entry ticket: pre-PIN evidence bound to a fresh reader nonce (throws when none is issued). */
export async function pinTicket(t: SimTerminal): Promise<string> {
  const nonce = toBase64url(Buffer.from(`fleet-nonce-${String(++nonceCounter).padStart(8, '0')}`));
  const res = await t.attest('pre-pin', { nonce }, { nonce });
  const jws = res.json<{ ticket?: { jws: string } }>().ticket?.jws;
  if (jws === undefined) throw new Error(`no PIN-entry ticket: ${res.body}`);
  return jws;
}

export async function transact(
  h: Harness,
  t: SimTerminal,
  body: Record<string, unknown>,
  ticket: string,
): Promise<LightMyRequestResponse> {
  const payload = JSON.stringify(body);
  return h.app.inject({
    method: 'POST',
    url: '/v1/transactions',
    headers: {
      'content-type': 'application/json',
      authorization: `PosTicket ${ticket}`,
      'pos-proof': t.proof('POST', '/v1/transactions', payload, { ticket }),
    },
    payload,
  });
}

/** Audit entries with this action, oldest first. */
export async function auditOf(
  h: Harness,
  action: string,
): Promise<{ subject: string; data: Record<string, unknown> }[]> {
  return (await h.store.listAudit(0, 10_000)).filter((e) => e.action === action);
}
