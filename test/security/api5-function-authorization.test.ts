/**
 * API5:2023 Broken Function Level Authorization, against the real back-end over HTTP.
 *
 * MATRIX says, as data, which principals may call each operator route of /openapi.json; a route of
 * the document missing from it (or an entry with no route) fails the coverage test. Every principal
 * calls every route, with its API token and with its dashboard session: allowed means the
 * authorization let it through (no 401/403), refused means 403 POS_ERR_FORBIDDEN with the store
 * unchanged. Checks on the matrix itself pin the policy: an auditor changes nothing, a merchant-scoped
 * principal reaches no provider route, only the admin manages users, tokens, policies, releases, keys.
 * No credential and a terminal's credential (PosTicket + Pos-Proof) reach no operator route; an
 * operator credential reaches no terminal route.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readerOutput } from '../../backend/test/fleet-helpers';
import {
  describeRes,
  openEvents,
  startSecurityHarness,
  storeState,
  type Method,
  type PrincipalName,
  type SecurityHarness,
} from './harness';
import {
  documentedOperations,
  makeFixtures,
  NON_OPERATOR_ROUTES,
  OPERATOR_REQUESTS,
  operatorOperations,
  type Fixtures,
} from './routes';

type Caller = 'admin' | 'operator' | 'auditor' | 'operatorA' | 'merchantA' | 'auditorA';
/** Merchant-scoped callers first: the provider's halts (on B's objects) never get in their way. */
const CALLERS: readonly Caller[] = ['operatorA', 'merchantA', 'auditorA', 'auditor', 'operator', 'admin'];
const SCOPED: ReadonlySet<Caller> = new Set(['operatorA', 'merchantA', 'auditorA']);
const EVERYONE = CALLERS;
const HALTERS: readonly Caller[] = ['admin', 'operator', 'operatorA', 'merchantA'];
const RESUMERS: readonly Caller[] = ['admin', 'operator', 'operatorA'];
const CONFIG_READERS: readonly Caller[] = ['admin', 'operator', 'auditor'];
const AUDIT_READERS: readonly Caller[] = ['admin', 'auditor'];
const ADMIN: readonly Caller[] = ['admin'];

/** Who may call what (docs/operators.md's role table, provider-wide vs merchant-scoped). */
const MATRIX: Readonly<Record<string, readonly Caller[]>> = {
  'POST /v1/merchants': ADMIN,
  'GET /v1/merchants': EVERYONE,
  'POST /v1/merchants/{merchantId}/enrollment-codes': HALTERS,
  'GET /v1/terminals/{terminalId}': EVERYONE,
  'GET /v1/terminals/{terminalId}/attestations': EVERYONE,
  'GET /v1/terminals/{terminalId}/transactions': EVERYONE,
  'POST /v1/reference-values': ADMIN,
  'GET /v1/reference-values': CONFIG_READERS,
  'DELETE /v1/reference-values/{id}': ADMIN,
  'POST /v1/policies': ADMIN,
  'GET /v1/policies': CONFIG_READERS,
  'POST /v1/policies/{version}/activate': ADMIN,
  'POST /v1/policies/{version}/shadow': ADMIN,
  'GET /v1/audit': AUDIT_READERS,
  'GET /v1/audit/verify': AUDIT_READERS,
  'POST /v1/audit/checkpoints': ADMIN,
  'POST /v1/keys/rotate': ADMIN,
  'POST /v1/auth/logout': EVERYONE,
  'GET /v1/auth/me': EVERYONE,
  'POST /v1/users': ADMIN,
  'GET /v1/users': AUDIT_READERS,
  'POST /v1/users/{userId}/disable': ADMIN,
  'POST /v1/users/{userId}/password': ADMIN,
  'POST /v1/users/{userId}/unlock': ADMIN,
  'POST /v1/tokens': ADMIN,
  'GET /v1/tokens': AUDIT_READERS,
  'DELETE /v1/tokens/{tokenId}': ADMIN,
  'POST /v1/halts': HALTERS,
  'GET /v1/halts': EVERYONE,
  'GET /v1/halts/{haltId}': EVERYONE,
  'POST /v1/halts/{haltId}/lift': RESUMERS,
  'POST /v1/terminals/{terminalId}/halt': HALTERS,
  'POST /v1/terminals/{terminalId}/decommission': HALTERS,
  'POST /v1/terminals/{terminalId}/resume': RESUMERS,
  'GET /v1/events': EVERYONE,
  'GET /v1/terminals': EVERYONE,
  'GET /v1/fleet/summary': EVERYONE,
};

/** Provider administration: users, tokens, policies, releases, keys, merchants, the audit checkpoint. */
const ADMINISTRATION = Object.keys(MATRIX).filter(
  (k) =>
    !k.startsWith('GET ') &&
    /^\S+ \/v1\/(?:users|tokens|policies|reference-values|keys|merchants$|audit)/.test(k),
);

const methodOf = (key: string): Method => key.split(' ')[0] as Method;

describe('API5:2023 Broken Function Level Authorization', () => {
  let sec: SecurityHarness;
  /** Requests on merchant A's objects (merchant-scoped callers) and on B's (provider-wide callers). */
  let onA: Fixtures;
  let onB: Fixtures;
  let ticketB: string;

  beforeAll(async () => {
    sec = await startSecurityHarness();
    ticketB = await sec.ticket('B');
    onA = await makeFixtures(sec);
    const haltB = await sec.request('POST', '/v1/halts', {
      as: 'operatorB',
      body: { scope: 'terminal', target: sec.tenants.B.terminalId, reason: 'fixture' },
    });
    onB = {
      ...onA,
      merchantId: sec.tenants.B.merchantId,
      terminalId: sec.tenants.B.terminalId,
      haltId: (haltB.json as { haltId: string }).haltId,
      retireTerminalId: (await sec.enroll('B')).id,
    };
  });
  afterAll(async () => {
    await sec.close();
  });

  it('the matrix covers every operator route of /openapi.json, and every other route is a known public or terminal one', async () => {
    const ops = await documentedOperations(sec);
    const operator = (await operatorOperations(sec)).map((o) => o.key);
    expect(operator.length).toBeGreaterThan(30);
    expect(
      operator.filter((k) => !(k in MATRIX)),
      'operator routes missing from the matrix',
    ).toEqual([]);
    expect(
      Object.keys(MATRIX).filter((k) => !operator.includes(k)),
      'matrix entries with no route',
    ).toEqual([]);
    expect(
      ops.map((o) => o.key).filter((k) => !operator.includes(k) && !NON_OPERATOR_ROUTES.has(k)),
      'routes that are neither operator routes nor known public/terminal ones',
    ).toEqual([]);
  });

  it('the matrix holds the policy: an auditor changes nothing, a merchant-scoped principal administers nothing, administration is the admin’s', () => {
    const writes = Object.keys(MATRIX).filter((k) => methodOf(k) !== 'GET' && k !== 'POST /v1/auth/logout');
    expect(writes.length).toBeGreaterThan(15);
    for (const k of writes) {
      expect(MATRIX[k], k).not.toContain('auditor');
      expect(MATRIX[k], k).not.toContain('auditorA');
    }
    expect(ADMINISTRATION.length).toBeGreaterThanOrEqual(12);
    for (const k of ADMINISTRATION) expect(MATRIX[k], k).toEqual(['admin']);
    for (const k of [
      'GET /v1/users',
      'GET /v1/tokens',
      'GET /v1/audit',
      'GET /v1/policies',
      'GET /v1/reference-values',
    ]) {
      for (const c of SCOPED) expect(MATRIX[k], k).not.toContain(c);
    }
  });

  for (const via of ['token', 'session'] as const) {
    it(`every caller on every operator route (${via}): allowed as the matrix says, otherwise 403 with nothing changed`, async () => {
      let allowedSeen = 0;
      let refusedSeen = 0;
      for (const [key, allowed] of Object.entries(MATRIX)) {
        const make = OPERATOR_REQUESTS[key];
        if (make === undefined) throw new Error(`${key}: no request in routes.ts`);
        for (const caller of CALLERS) {
          // Logging out with the session would end the session the rest of this test uses.
          if (key === 'POST /v1/auth/logout' && via === 'session') continue;
          const { path, body, stream } = make(SCOPED.has(caller) ? onA : onB);
          const label = `${caller} (${via}) ${key}`;
          if (allowed.includes(caller)) {
            allowedSeen += 1;
            if (stream === true) {
              const events = await openEvents(sec, caller, via);
              events.close();
              expect(events.status, label).toBe(200);
              continue;
            }
            const res = await sec.request(methodOf(key), path, { as: caller, via, body });
            expect([401, 403], `${label}: ${describeRes(res)}`).not.toContain(res.status);
            expect(res.status, `${label}: ${describeRes(res)}`).toBeLessThan(500);
          } else {
            refusedSeen += 1;
            const before = await storeState(sec);
            const res = await sec.request(methodOf(key), path, { as: caller, via, body });
            expect(res.status, `${label}: ${describeRes(res)}`).toBe(403);
            expect(res.code, label).toBe('POS_ERR_FORBIDDEN');
            expect(await storeState(sec), label).toBe(before);
          }
        }
      }
      expect(allowedSeen).toBeGreaterThan(80);
      expect(refusedSeen).toBeGreaterThan(60);
    });
  }

  it("merchant-scoped principals order no fleet or app-version halt, and cannot lift or resume past the provider's halt on their own merchant", async () => {
    const a = sec.tenants.A;
    const t = await sec.enroll('A');
    const provider = await sec.request('POST', '/v1/halts', {
      as: 'operator',
      body: { scope: 'terminal', target: t.id, reason: 'provider halt' },
    });
    expect(provider.status).toBe(201);
    const providerHalt = (provider.json as { haltId: string }).haltId;
    const onMerchant = await sec.request('POST', '/v1/halts', {
      as: 'admin',
      body: { scope: 'merchant', target: a.merchantId, reason: 'provider halt on the merchant' },
    });
    expect(onMerchant.status).toBe(201);
    const merchantHalt = (onMerchant.json as { haltId: string }).haltId;
    const before = await storeState(sec);
    const attempts: [PrincipalName, string, unknown][] = [
      ['operatorA', '/v1/halts', { scope: 'fleet', reason: 'x' }],
      ['merchantA', '/v1/halts', { scope: 'fleet', reason: 'x' }],
      ['operatorA', '/v1/halts', { scope: 'app-version', target: '1.2.3', reason: 'x' }],
      ['merchantA', '/v1/halts', { scope: 'app-version', target: '1.2.3', reason: 'x' }],
      ['operatorA', `/v1/halts/${providerHalt}/lift`, { reason: 'x' }],
      ['operatorA', `/v1/halts/${merchantHalt}/lift`, { reason: 'x' }],
      ['operatorA', `/v1/terminals/${t.id}/resume`, { reason: 'x' }],
    ];
    for (const [as, path, body] of attempts) {
      for (const via of ['token', 'session'] as const) {
        const res = await sec.request('POST', path, { as, via, body });
        expect(res.status, `${as} (${via}) POST ${path}: ${describeRes(res)}`).toBe(403);
        expect(res.code).toBe('POS_ERR_FORBIDDEN');
      }
    }
    expect(await storeState(sec)).toBe(before);
    // The provider may.
    const lifted = await sec.request('POST', `/v1/halts/${providerHalt}/lift`, {
      as: 'operator',
      body: { reason: 'x' },
    });
    expect(lifted.status, describeRes(lifted)).toBe(200);
  });

  it('no credential, and a terminal credential (PosTicket + Pos-Proof, or Pos-Proof alone), reach no operator route: 401', async () => {
    const b = sec.tenants.B.terminal;
    for (const key of Object.keys(MATRIX)) {
      const make = OPERATOR_REQUESTS[key];
      if (make === undefined) throw new Error(key);
      const { path, body } = make(onB);
      const method = methodOf(key);
      const before = await storeState(sec);
      const anonymous = await sec.request(method, path, { body });
      expect(anonymous.status, `anonymous ${key}`).toBe(401);
      expect(anonymous.code, `anonymous ${key}`).toBe('POS_ERR_OPERATOR_AUTH');
      const withTicket = await sec.terminal(b, method, path, body, { ticket: ticketB });
      expect(withTicket.status, `ticket ${key}: ${describeRes(withTicket)}`).toBe(401);
      const proofOnly = await sec.terminal(b, method, path, body);
      expect(proofOnly.status, `proof ${key}: ${describeRes(proofOnly)}`).toBe(401);
      expect(await storeState(sec), key).toBe(before);
    }
  });

  it('an operator credential reaches no terminal route (attestations, transactions, push): 401', async () => {
    const body = readerOutput('visa-no-pin', undefined);
    const tx = async (): Promise<number> =>
      (await sec.h.store.listTransactions(sec.tenants.B.terminalId, 1000)).length;
    const before = await tx();
    for (const as of ['admin', 'operatorA'] as PrincipalName[]) {
      for (const via of ['token', 'session'] as const) {
        const att = await sec.request('POST', '/v1/attestations', { as, via, body: { evidence: 'x.y.z' } });
        expect(att.status, `${as} attestations`).toBe(401);
        const t = await sec.request('POST', '/v1/transactions', { as, via, body });
        expect(t.status, `${as} transactions`).toBe(401);
      }
    }
    // The push connection (a WebSocket upgrade, not in the document) with the admin's token.
    const push = await new Promise<number>((resolve, reject) => {
      const req = request(`${sec.base}/v1/push`, {
        headers: {
          authorization: `Bearer ${sec.principals.admin.token}`,
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        },
      });
      req.on('upgrade', (_res, socket) => {
        socket.destroy();
        resolve(101);
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(push).toBe(401);
    expect(await tx()).toBe(before);
  });
});
