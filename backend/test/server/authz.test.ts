/**
 * Object-level authorization, route by route. The list of routes comes from the app itself, so a new
 * route that is neither in PUBLIC nor in ROUTES fails this file until someone decides who may call it.
 * For every operator route: no credential and a terminal's credential are 401; each role is allowed or
 * 403; a principal of merchant A on merchant B's objects gets 404 (as if absent), or 403 when its role
 * lacks the permission anyway; an auditor changes nothing.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_AUTH_CONFIG } from '../../src/server/auth/config';
import { hashPassword } from '../../src/server/auth/passwords';
import { newApiToken, sha256Hex } from '../../src/server/auth/principal';
import type { OperatorRole } from '../../src/store/types';
import {
  makeHarness,
  NON_OPERATOR_API_ROUTES,
  seedReferenceValues,
  SimTerminal,
  type Harness,
} from '../helpers';
import { enrollInto } from './fleet-helpers';

type Method = 'GET' | 'POST' | 'DELETE';

/** Routes that take no operator credential: public, terminal (Pos-Proof / PosTicket) and login. */
const PUBLIC = new Set([
  ...NON_OPERATOR_API_ROUTES,
  // The terminals' push connection (WebSocket upgrade, authenticated by a Pos-Proof: fleet/push.ts).
  'GET /v1/push',
  // The dashboard's static files (routes/dashboard.ts): the app holds no data, the API checks each call.
  'GET /dashboard',
  'GET /dashboard*', // GET /dashboard/*, as routesOf reads find-my-way's tree
]);

/** Parses `app.printRoutes({ commonPrefix: false })` into `METHOD /path` keys (HEAD left out). */
function routesOf(tree: string): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (m === null) continue;
    const depth = (m[1] ?? '').length / 4;
    stack.length = depth;
    const path = `${stack.join('')}${m[2] ?? ''}`;
    stack.push(m[2] ?? '');
    for (const method of (m[3] ?? '').split(', ').filter((x) => x !== '' && x !== 'HEAD')) {
      out.push(`${method} ${path}`);
    }
  }
  return out;
}

interface Ids {
  merchantA: string;
  merchantB: string;
  terminalA: string;
  terminalB: string;
  haltA: string;
  haltB: string;
  /** A terminal halt on A ordered by A's own operator: the one A's principals may lift. */
  haltLiftA: string;
  /** A terminal of A that the decommission route retires (the first allowed caller; 409 after). */
  retireA: string;
  spareUser: string;
  spareToken: string;
}

interface RouteSpec {
  /** The roles allowed (a merchant-scoped principal also needs `providerWide` false). */
  readonly roles: readonly OperatorRole[];
  /** Provider-wide objects: a principal limited to one merchant is refused (403) whatever its role. */
  readonly providerWide: boolean;
  /** The request, on merchant A's objects (or B's when `other`); undefined `other`: not tenant-bound. */
  readonly request: (ids: Ids, other: boolean) => { url: string; body?: Record<string, unknown> };
  readonly tenant?: true;
  /** A stream (Server-Sent Events): an allowed caller is checked over a real connection, then hung up. */
  readonly stream?: true;
}

const ALL: readonly OperatorRole[] = ['admin', 'operator', 'auditor', 'merchant'];
let seq = 0;
const reason = { reason: 'authz test' };

const ROUTES: Readonly<Record<string, RouteSpec>> = {
  'POST /v1/merchants': {
    roles: ['admin'],
    providerWide: true,
    request: () => ({ url: '/v1/merchants', body: { name: 'New shop' } }),
  },
  'GET /v1/merchants': { roles: ALL, providerWide: false, request: () => ({ url: '/v1/merchants' }) },
  'POST /v1/merchants/:merchantId/enrollment-codes': {
    roles: ['admin', 'operator', 'merchant'],
    providerWide: false,
    tenant: true,
    request: (ids, other) => ({
      url: `/v1/merchants/${other ? ids.merchantB : ids.merchantA}/enrollment-codes`,
      body: {},
    }),
  },
  'GET /v1/terminals/:terminalId': {
    roles: ALL,
    providerWide: false,
    tenant: true,
    request: (ids, other) => ({ url: `/v1/terminals/${other ? ids.terminalB : ids.terminalA}` }),
  },
  'GET /v1/terminals/:terminalId/attestations': {
    roles: ALL,
    providerWide: false,
    tenant: true,
    request: (ids, other) => ({ url: `/v1/terminals/${other ? ids.terminalB : ids.terminalA}/attestations` }),
  },
  'GET /v1/terminals/:terminalId/transactions': {
    roles: ALL,
    providerWide: false,
    tenant: true,
    request: (ids, other) => ({ url: `/v1/terminals/${other ? ids.terminalB : ids.terminalA}/transactions` }),
  },
  'POST /v1/terminals/:terminalId/halt': {
    roles: ['admin', 'operator', 'merchant'],
    providerWide: false,
    tenant: true,
    request: (ids, other) => ({
      url: `/v1/terminals/${other ? ids.terminalB : ids.terminalA}/halt`,
      body: reason,
    }),
  },
  'POST /v1/terminals/:terminalId/decommission': {
    roles: ['admin', 'operator', 'merchant'],
    providerWide: false,
    tenant: true,
    request: (ids, other) => ({
      url: `/v1/terminals/${other ? ids.terminalB : ids.retireA}/decommission`,
      body: reason,
    }),
  },
  'POST /v1/terminals/:terminalId/resume': {
    roles: ['admin', 'operator'],
    providerWide: false,
    tenant: true,
    request: (ids, other) => ({
      url: `/v1/terminals/${other ? ids.terminalB : ids.terminalA}/resume`,
      body: reason,
    }),
  },
  'POST /v1/halts': {
    roles: ['admin', 'operator', 'merchant'],
    providerWide: false,
    tenant: true,
    request: (ids, other) => ({
      url: '/v1/halts',
      body: { scope: 'terminal', target: other ? ids.terminalB : ids.terminalA, ...reason },
    }),
  },
  'GET /v1/halts': { roles: ALL, providerWide: false, request: () => ({ url: '/v1/halts' }) },
  // Fleet queries and the event stream (routes/monitoring.ts; the stream's content is tested in events.test.ts).
  'GET /v1/events': { roles: ALL, providerWide: false, stream: true, request: () => ({ url: '/v1/events' }) },
  'GET /v1/terminals': {
    roles: ALL,
    providerWide: false,
    tenant: true,
    request: (ids, other) => ({ url: `/v1/terminals?merchant=${other ? ids.merchantB : ids.merchantA}` }),
  },
  'GET /v1/fleet/summary': {
    roles: ALL,
    providerWide: false,
    tenant: true,
    request: (ids, other) => ({ url: `/v1/fleet/summary?merchant=${other ? ids.merchantB : ids.merchantA}` }),
  },
  'GET /v1/halts/:haltId': {
    roles: ALL,
    providerWide: false,
    tenant: true,
    request: (ids, other) => ({ url: `/v1/halts/${other ? ids.haltB : ids.haltA}` }),
  },
  'POST /v1/halts/:haltId/lift': {
    roles: ['admin', 'operator'],
    providerWide: false,
    tenant: true,
    request: (ids, other) => ({ url: `/v1/halts/${other ? ids.haltB : ids.haltLiftA}/lift`, body: reason }),
  },
  'POST /v1/reference-values': {
    roles: ['admin'],
    providerWide: true,
    request: () => ({
      url: '/v1/reference-values',
      body: {
        version: '9.9.9',
        build: 'release',
        codeHashes: ['cd'.repeat(32)],
        allowedShells: ['headless'],
      },
    }),
  },
  'GET /v1/reference-values': {
    roles: ['admin', 'operator', 'auditor'],
    providerWide: true,
    request: () => ({ url: '/v1/reference-values' }),
  },
  'DELETE /v1/reference-values/:id': {
    roles: ['admin'],
    providerWide: true,
    request: () => ({ url: '/v1/reference-values/ref_absent' }),
  },
  'POST /v1/policies': {
    roles: ['admin'],
    providerWide: true,
    request: () => ({ url: '/v1/policies', body: { policy: { version: `p-${++seq}` } } }),
  },
  'GET /v1/policies': {
    roles: ['admin', 'operator', 'auditor'],
    providerWide: true,
    request: () => ({ url: '/v1/policies' }),
  },
  'POST /v1/policies/:version/activate': {
    roles: ['admin'],
    providerWide: true,
    request: () => ({ url: '/v1/policies/absent/activate', body: {} }),
  },
  'POST /v1/policies/:version/shadow': {
    roles: ['admin'],
    providerWide: true,
    request: () => ({ url: '/v1/policies/absent/shadow', body: { enabled: true } }),
  },
  'GET /v1/audit': { roles: ['admin', 'auditor'], providerWide: true, request: () => ({ url: '/v1/audit' }) },
  'GET /v1/audit/verify': {
    roles: ['admin', 'auditor'],
    providerWide: true,
    request: () => ({ url: '/v1/audit/verify' }),
  },
  'POST /v1/audit/checkpoints': {
    roles: ['admin'],
    providerWide: true,
    request: () => ({ url: '/v1/audit/checkpoints', body: {} }),
  },
  'POST /v1/keys/rotate': {
    roles: ['admin'],
    providerWide: true,
    request: () => ({ url: '/v1/keys/rotate', body: {} }),
  },
  'POST /v1/auth/logout': {
    roles: ALL,
    providerWide: false,
    request: () => ({ url: '/v1/auth/logout', body: {} }),
  },
  'GET /v1/auth/me': { roles: ALL, providerWide: false, request: () => ({ url: '/v1/auth/me' }) },
  'POST /v1/users': {
    roles: ['admin'],
    providerWide: true,
    request: () => ({
      url: '/v1/users',
      body: { username: `user${++seq}`, password: 'correct horse battery', role: 'auditor' },
    }),
  },
  'GET /v1/users': { roles: ['admin', 'auditor'], providerWide: true, request: () => ({ url: '/v1/users' }) },
  'POST /v1/users/:userId/disable': {
    roles: ['admin'],
    providerWide: true,
    request: (ids) => ({ url: `/v1/users/${ids.spareUser}/disable`, body: {} }),
  },
  'POST /v1/users/:userId/password': {
    roles: ['admin'],
    providerWide: true,
    request: (ids) => ({
      url: `/v1/users/${ids.spareUser}/password`,
      body: { password: 'another long password' },
    }),
  },
  'POST /v1/users/:userId/unlock': {
    roles: ['admin'],
    providerWide: true,
    request: (ids) => ({ url: `/v1/users/${ids.spareUser}/unlock`, body: {} }),
  },
  'POST /v1/tokens': {
    roles: ['admin'],
    providerWide: true,
    request: () => ({ url: '/v1/tokens', body: { label: 'ci', role: 'auditor', expiresInS: 3600 } }),
  },
  'GET /v1/tokens': {
    roles: ['admin', 'auditor'],
    providerWide: true,
    request: () => ({ url: '/v1/tokens' }),
  },
  'DELETE /v1/tokens/:tokenId': {
    roles: ['admin'],
    providerWide: true,
    request: (ids) => ({ url: `/v1/tokens/${ids.spareToken}` }),
  },
};

interface Who {
  readonly name: string;
  readonly role: OperatorRole;
  readonly merchant: 'A' | null;
  /** A dashboard session (cookie + CSRF token, a fresh login per request) instead of an API token. */
  readonly via?: 'session';
  token: string;
}

const PRINCIPALS: Who[] = [
  { name: 'admin', role: 'admin', merchant: null, token: '' },
  { name: 'operator', role: 'operator', merchant: null, token: '' },
  { name: 'auditor', role: 'auditor', merchant: null, token: '' },
  { name: 'merchant of A', role: 'merchant', merchant: 'A', token: '' },
  { name: 'operator of A', role: 'operator', merchant: 'A', token: '' },
  { name: 'auditor of A', role: 'auditor', merchant: 'A', token: '' },
  { name: 'auditor (session)', role: 'auditor', merchant: null, token: '', via: 'session' },
  { name: 'merchant of A (session)', role: 'merchant', merchant: 'A', token: '', via: 'session' },
];
const SESSION_PASSWORD = 'a session user password';

let h: Harness;
let ids: Ids;
let simA: SimTerminal;
let ticketA: string;
let base: string;

function methodOf(key: string): Method {
  return key.split(' ')[0] as Method;
}

function call(
  method: Method,
  url: string,
  body: Record<string, unknown> | undefined,
  headers: Record<string, string>,
): Promise<LightMyRequestResponse> {
  return h.app.inject({
    method,
    url,
    headers,
    ...(body === undefined ? {} : { payload: body }),
  });
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/** The principal's credential headers: its API token, or a fresh session's cookie and CSRF token. */
async function credentials(who: Who): Promise<Record<string, string>> {
  if (who.via !== 'session') return bearer(who.token);
  const res = await h.app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { username: who.token, password: SESSION_PASSWORD },
  });
  if (res.statusCode !== 200) throw new Error(`login: ${res.body}`);
  return {
    cookie: String(res.headers['set-cookie']).split(';')[0] ?? '',
    'x-csrf-token': res.json<{ csrfToken: string }>().csrfToken,
  };
}

function allowed(spec: RouteSpec, who: Who): boolean {
  return spec.roles.includes(who.role) && (who.merchant === null || !spec.providerWide);
}

beforeAll(async () => {
  // Cheap password hashes and no login rate limit: session principals log in afresh for every request.
  h = await makeHarness({ auth: { ...DEFAULT_AUTH_CONFIG, scryptN: 1024, loginAttemptsPerIp: 1_000_000 } });
  await seedReferenceValues(h);
  simA = new SimTerminal(h);
  const simB = new SimTerminal(h);
  expect((await simA.enroll()).statusCode).toBe(201);
  expect((await simB.enroll()).statusCode).toBe(201);
  const attested = await simA.attest();
  const jws = attested.json<{ ticket?: { jws: string } }>().ticket?.jws;
  if (jws === undefined) throw new Error(`no ticket: ${attested.body}`);
  ticketA = jws;
  const tA = await h.store.getTerminal(simA.id);
  const tB = await h.store.getTerminal(simB.id);
  if (tA === undefined || tB === undefined) throw new Error('terminals');
  const haltA = await h.admin('POST', '/v1/halts', { scope: 'terminal', target: tA.id, reason: 'setup' });
  const haltB = await h.admin('POST', '/v1/halts', { scope: 'terminal', target: tB.id, reason: 'setup' });
  const user = await h.admin('POST', '/v1/users', {
    username: 'spare',
    password: 'a spare password',
    role: 'operator',
  });
  const token = await h.admin('POST', '/v1/tokens', { label: 'spare', role: 'auditor', expiresInS: 3600 });
  ids = {
    merchantA: tA.merchantId,
    merchantB: tB.merchantId,
    terminalA: tA.id,
    terminalB: tB.id,
    haltA: haltA.json<{ haltId: string }>().haltId,
    haltB: haltB.json<{ haltId: string }>().haltId,
    haltLiftA: '',
    retireA: (await enrollInto(h, tA.merchantId)).t.id,
    spareUser: user.json<{ userId: string }>().userId,
    spareToken: token.json<{ tokenId: string }>().tokenId,
  };
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  const address = h.app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  base = `http://127.0.0.1:${address.port}`;
  for (const [i, who] of PRINCIPALS.entries()) {
    if (who.via === 'session') {
      await h.store.createOperator({
        id: `usr_p${i}`,
        username: `session-user-${i}`,
        passwordHash: await hashPassword(SESSION_PASSWORD, 1024),
        role: who.role,
        merchantId: who.merchant === 'A' ? ids.merchantA : null,
        createdAt: h.clock.now(),
        disabledAt: null,
      });
      who.token = `session-user-${i}`;
      continue;
    }
    who.token = newApiToken(who.role);
    await h.store.createApiToken({
      id: `tok_p${i}`,
      tokenHash: sha256Hex(who.token),
      label: who.name,
      role: who.role,
      merchantId: who.merchant === 'A' ? ids.merchantA : null,
      createdBy: null,
      createdAt: h.clock.now(),
      expiresAt: h.clock.now() + 3_600_000,
      revokedAt: null,
    });
  }
  // A provider's halt on A is not A's to lift (docs/fleet.md): the lift route's A-side object is a
  // halt A's own operator ordered.
  const opA = PRINCIPALS.find((w) => w.name === 'operator of A' && w.via !== 'session');
  const own = await call(
    'POST',
    '/v1/halts',
    { scope: 'terminal', target: ids.terminalA, reason: 'own' },
    bearer(opA?.token ?? ''),
  );
  if (own.statusCode !== 201) throw new Error(`own halt: ${own.body}`);
  ids.haltLiftA = own.json<{ haltId: string }>().haltId;
});
afterAll(async () => {
  await h.close();
});

/** The status of a stream route over a real connection (the stream never ends by itself: hang up). */
async function streamStatus(url: string, headers: Record<string, string>): Promise<number> {
  const abort = new AbortController();
  try {
    const res = await fetch(`${base}${url}`, {
      headers: { accept: 'text/event-stream', ...headers },
      signal: abort.signal,
    });
    return res.status;
  } finally {
    abort.abort();
  }
}

describe('the authorization table covers every route', () => {
  it('every route of the app is either public or in the table, and the table names no absent route', () => {
    const routes = routesOf(h.app.printRoutes({ commonPrefix: false })).filter((r) => !r.includes(' /docs'));
    expect(routes.length).toBeGreaterThan(30);
    const unclassified = routes.filter((r) => !PUBLIC.has(r) && !(r in ROUTES));
    expect(unclassified, 'routes missing from the authorization table').toEqual([]);
    const stale = Object.keys(ROUTES).filter((r) => !routes.includes(r));
    expect(stale, 'table entries with no route').toEqual([]);
  });
});

describe.each(Object.entries(ROUTES))('%s', (key, spec) => {
  const method = methodOf(key);

  it('no credential: 401', async () => {
    const { url, body } = spec.request(ids, false);
    const res = await call(method, url, body, {});
    expect(res.statusCode).toBe(401);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_OPERATOR_AUTH');
  });

  it("a terminal's credential (PosTicket + Pos-Proof, or Pos-Proof alone): 401", async () => {
    const { url, body } = spec.request(ids, false);
    const raw = body === undefined ? '' : JSON.stringify(body);
    const withTicket = await call(method, url, body, {
      authorization: `PosTicket ${ticketA}`,
      'pos-proof': simA.proof(method, url, raw, { ticket: ticketA }),
    });
    expect(withTicket.statusCode).toBe(401);
    const proofOnly = await call(method, url, body, { 'pos-proof': simA.proof(method, url, raw) });
    expect(proofOnly.statusCode).toBe(401);
  });

  it.each(PRINCIPALS.map((w) => [w.name, w] as const))('%s: allowed or 403', async (_name, who) => {
    const { url, body } = spec.request(ids, false);
    if (spec.stream === true && allowed(spec, who)) {
      expect(await streamStatus(url, await credentials(who))).toBe(200);
      return;
    }
    const res = await call(method, url, body, await credentials(who));
    if (allowed(spec, who)) {
      expect([401, 403, 500]).not.toContain(res.statusCode);
    } else {
      expect(res.statusCode).toBe(403);
      expect(res.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_FORBIDDEN');
    }
  });

  if (spec.tenant === true) {
    it.each(PRINCIPALS.filter((w) => w.merchant === 'A').map((w) => [w.name, w] as const))(
      "%s on merchant B's object: 404 (or 403 when the role may not anyway)",
      async (_name, who) => {
        const { url, body } = spec.request(ids, true);
        const res = await call(method, url, body, await credentials(who));
        expect(res.statusCode).toBe(allowed(spec, who) ? 404 : 403);
      },
    );
  }
});

describe('terminal routes take no operator credential', () => {
  it('the push connection refuses an admin token', async () => {
    const res = await call('GET', '/v1/push', undefined, {
      ...bearer(PRINCIPALS[0]?.token ?? ''),
      connection: 'upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    });
    expect(res.statusCode).toBe(401);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_PROOF_MISSING');
  });
});

describe('tenants', () => {
  it("a merchant's principals list only their own merchant", async () => {
    for (const who of PRINCIPALS.filter((w) => w.merchant === 'A')) {
      const res = await call('GET', '/v1/merchants', undefined, await credentials(who));
      expect(res.json<{ merchants: { merchantId: string }[] }>().merchants.map((m) => m.merchantId)).toEqual([
        ids.merchantA,
      ]);
    }
    const all = await call('GET', '/v1/merchants', undefined, bearer(PRINCIPALS[1]?.token ?? ''));
    const listed = all.json<{ merchants: { merchantId: string }[] }>().merchants.map((m) => m.merchantId);
    expect(listed).toEqual(expect.arrayContaining([ids.merchantA, ids.merchantB]));
  });

  it("an operator of merchant A cannot halt merchant B's terminal, which stays as it was", async () => {
    await h.admin('POST', `/v1/halts/${ids.haltB}/lift`, reason);
    const before = await h.store.getTerminal(ids.terminalB);
    const opA = PRINCIPALS.find((w) => w.name === 'operator of A');
    const res = await call('POST', `/v1/terminals/${ids.terminalB}/halt`, reason, bearer(opA?.token ?? ''));
    expect(res.statusCode).toBe(404);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_TERMINAL_UNKNOWN');
    expect((await h.store.getTerminal(ids.terminalB))?.state).toBe(before?.state);
    expect(before?.state).not.toBe('halted');
  });
});

describe('an auditor changes nothing', () => {
  it.each(PRINCIPALS.filter((w) => w.role === 'auditor').map((w) => [w.name, w] as const))(
    '%s: every unsafe route answers 403 and the audit chain does not grow',
    async (_name, auditor) => {
      const unsafe = Object.entries(ROUTES).filter(
        ([k]) => methodOf(k) !== 'GET' && k !== 'POST /v1/auth/logout',
      );
      expect(unsafe.length).toBeGreaterThan(15);
      const headers = await credentials(auditor);
      const head = (await h.store.auditHead())?.seq;
      const tokens = (await h.store.listApiTokens()).length;
      const users = (await h.store.listOperators()).length;
      for (const [key, spec] of unsafe) {
        const { url, body } = spec.request(ids, false);
        const res = await call(methodOf(key), url, body, headers);
        expect(res.statusCode, key).toBe(403);
        expect(res.json<{ error: { code: string } }>().error.code, key).toBe('POS_ERR_FORBIDDEN');
      }
      expect((await h.store.auditHead())?.seq).toBe(head);
      expect((await h.store.listApiTokens()).length).toBe(tokens);
      expect((await h.store.listOperators()).length).toBe(users);
    },
  );
});
