/**
 * The operator routes of /openapi.json, each with one well-formed request on merchant A's objects
 * (a body that passes the route's schema, so what answers is the route's authentication and
 * authorization, not its validation). Groups that go over every route (API2's CSRF check, API3's
 * response scan, API5's role matrix) take the route list from the served document and their requests
 * from here; a route missing from OPERATOR_REQUESTS fails them.
 */
import { DEFAULT_POLICY } from '../../backend/src/attestation/policy';
import { NON_OPERATOR_API_ROUTES } from '../../backend/test/helpers';
import type { Method, SecurityHarness } from './harness';

/** Objects the requests aim at: merchant A's, and provider-wide ones. */
export interface Fixtures {
  readonly merchantId: string;
  readonly terminalId: string;
  /** A terminal halt on A's terminal that A's own operator ordered (A's side may lift it). */
  readonly haltId: string;
  /** A terminal of A nothing else uses: the decommission route retires it (409 on later calls). */
  readonly retireTerminalId: string;
  readonly referenceId: string;
  /** A stored, inactive policy version. */
  readonly policyVersion: string;
  /** A user and an API token nobody else relies on. */
  readonly spareUserId: string;
  readonly spareTokenId: string;
}

export interface RouteRequest {
  /** The path with its query, if any. */
  readonly path: string;
  readonly body?: unknown;
  /** A stream (Server-Sent Events): open with Accept: text/event-stream, then hang up. */
  readonly stream?: true;
}

let seq = 0;
const next = (): number => ++seq;
const reason = { reason: 'security test' };

export const OPERATOR_REQUESTS: Readonly<Record<string, (f: Fixtures) => RouteRequest>> = {
  'POST /v1/merchants': () => ({ path: '/v1/merchants', body: { name: `Shop ${next()}` } }),
  'GET /v1/merchants': () => ({ path: '/v1/merchants' }),
  'POST /v1/merchants/{merchantId}/enrollment-codes': (f) => ({
    path: `/v1/merchants/${f.merchantId}/enrollment-codes`,
    body: {},
  }),
  'GET /v1/terminals/{terminalId}': (f) => ({ path: `/v1/terminals/${f.terminalId}` }),
  'GET /v1/terminals/{terminalId}/attestations': (f) => ({
    path: `/v1/terminals/${f.terminalId}/attestations`,
  }),
  'GET /v1/terminals/{terminalId}/transactions': (f) => ({
    path: `/v1/terminals/${f.terminalId}/transactions`,
  }),
  'POST /v1/reference-values': () => ({
    path: '/v1/reference-values',
    body: {
      version: `9.9.${next()}`,
      build: 'release',
      codeHashes: ['cd'.repeat(32)],
      allowedShells: ['headless'],
    },
  }),
  'GET /v1/reference-values': () => ({ path: '/v1/reference-values' }),
  'DELETE /v1/reference-values/{id}': (f) => ({ path: `/v1/reference-values/${f.referenceId}` }),
  'POST /v1/policies': () => ({
    path: '/v1/policies',
    body: { policy: { ...DEFAULT_POLICY, version: `sec-policy-${next()}` } },
  }),
  'GET /v1/policies': () => ({ path: '/v1/policies' }),
  'POST /v1/policies/{version}/activate': (f) => ({
    path: `/v1/policies/${f.policyVersion}/activate`,
    body: {},
  }),
  'POST /v1/policies/{version}/shadow': (f) => ({
    path: `/v1/policies/${f.policyVersion}/shadow`,
    body: { enabled: true },
  }),
  'GET /v1/audit': () => ({ path: '/v1/audit' }),
  'GET /v1/audit/verify': () => ({ path: '/v1/audit/verify' }),
  'POST /v1/audit/checkpoints': () => ({ path: '/v1/audit/checkpoints', body: {} }),
  'POST /v1/keys/rotate': () => ({ path: '/v1/keys/rotate', body: {} }),
  'POST /v1/auth/logout': () => ({ path: '/v1/auth/logout', body: {} }),
  'GET /v1/auth/me': () => ({ path: '/v1/auth/me' }),
  'POST /v1/users': () => ({
    path: '/v1/users',
    body: { username: `sec-new-${next()}`, password: 'a brand new password', role: 'auditor' },
  }),
  'GET /v1/users': () => ({ path: '/v1/users' }),
  'POST /v1/users/{userId}/disable': (f) => ({ path: `/v1/users/${f.spareUserId}/disable`, body: {} }),
  'POST /v1/users/{userId}/password': (f) => ({
    path: `/v1/users/${f.spareUserId}/password`,
    body: { password: 'another long password' },
  }),
  'POST /v1/users/{userId}/unlock': (f) => ({ path: `/v1/users/${f.spareUserId}/unlock`, body: {} }),
  'POST /v1/tokens': () => ({
    path: '/v1/tokens',
    body: { label: `sec ${next()}`, role: 'auditor', expiresInS: 3600 },
  }),
  'GET /v1/tokens': () => ({ path: '/v1/tokens' }),
  'DELETE /v1/tokens/{tokenId}': (f) => ({ path: `/v1/tokens/${f.spareTokenId}` }),
  'POST /v1/halts': (f) => ({
    path: '/v1/halts',
    body: { scope: 'terminal', target: f.terminalId, ...reason },
  }),
  'GET /v1/halts': () => ({ path: '/v1/halts?state=all' }),
  'GET /v1/halts/{haltId}': (f) => ({ path: `/v1/halts/${f.haltId}` }),
  'POST /v1/halts/{haltId}/lift': (f) => ({ path: `/v1/halts/${f.haltId}/lift`, body: reason }),
  'POST /v1/terminals/{terminalId}/halt': (f) => ({
    path: `/v1/terminals/${f.terminalId}/halt`,
    body: reason,
  }),
  'POST /v1/terminals/{terminalId}/decommission': (f) => ({
    path: `/v1/terminals/${f.retireTerminalId}/decommission`,
    body: reason,
  }),
  'POST /v1/terminals/{terminalId}/resume': (f) => ({
    path: `/v1/terminals/${f.terminalId}/resume`,
    body: reason,
  }),
  'GET /v1/events': () => ({ path: '/v1/events', stream: true }),
  'GET /v1/terminals': (f) => ({ path: `/v1/terminals?merchant=${f.merchantId}` }),
  'GET /v1/fleet/summary': (f) => ({ path: `/v1/fleet/summary?merchant=${f.merchantId}` }),
};

/** Routes of the document that take no operator credential (public, terminal, login). */
export const NON_OPERATOR_ROUTES: ReadonlySet<string> = new Set(NON_OPERATOR_API_ROUTES);

export interface DocOperation {
  readonly key: string;
  readonly method: Method;
  readonly path: string;
  /** Its security schemes (empty: public). */
  readonly security: readonly string[];
  /** Its JSON body schema, as served. */
  readonly bodySchema: Record<string, unknown> | undefined;
}

interface RawOperation {
  security?: Record<string, unknown>[];
  requestBody?: { content?: Record<string, { schema?: Record<string, unknown> }> };
}

/** Every operation of the served /openapi.json. */
export async function documentedOperations(sec: SecurityHarness): Promise<DocOperation[]> {
  const res = await sec.request('GET', '/openapi.json');
  if (res.status !== 200) throw new Error(`openapi.json: ${res.status}`);
  const doc = res.json as { paths: Record<string, Record<string, RawOperation>> };
  const out: DocOperation[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(ops)) {
      const method = m.toUpperCase() as Method;
      out.push({
        key: `${method} ${path}`,
        method,
        path,
        security: (op.security ?? []).flatMap((s) => Object.keys(s)),
        bodySchema: op.requestBody?.content?.['application/json']?.schema,
      });
    }
  }
  return out;
}

/** Operations that take an operator credential (token or session), per the document. */
export async function operatorOperations(sec: SecurityHarness): Promise<DocOperation[]> {
  return (await documentedOperations(sec)).filter(
    (o) => o.security.includes('operatorToken') || o.security.includes('sessionCookie'),
  );
}

/**
 * Creates the fixtures on merchant A: a terminal halt by A's operator (so `sec.tenants.A.terminal` is
 * halted afterwards: enroll another for tickets), a spare terminal of A to decommission, a reference-values id, an
 * inactive policy, a spare user and a spare token.
 */
export async function makeFixtures(sec: SecurityHarness): Promise<Fixtures> {
  const a = sec.tenants.A;
  const halt = await sec.request('POST', '/v1/halts', {
    as: 'operatorA',
    body: { scope: 'terminal', target: a.terminalId, reason: 'fixture' },
  });
  const refs = await sec.request('GET', '/v1/reference-values', { as: 'admin' });
  const policyVersion = `sec-fixture-${next()}`;
  const policy = await sec.request('POST', '/v1/policies', {
    as: 'admin',
    body: { policy: { ...DEFAULT_POLICY, version: policyVersion } },
  });
  const user = await sec.request('POST', '/v1/users', {
    as: 'admin',
    body: { username: `sec-spare-${next()}`, password: 'a spare user password', role: 'operator' },
  });
  const token = await sec.request('POST', '/v1/tokens', {
    as: 'admin',
    body: { label: 'spare', role: 'auditor', expiresInS: 3600 },
  });
  const f = {
    merchantId: a.merchantId,
    terminalId: a.terminalId,
    haltId: (halt.json as { haltId?: string }).haltId,
    retireTerminalId: (await sec.enroll('A')).id,
    referenceId: (refs.json as { referenceValues?: { id: string }[] }).referenceValues?.[0]?.id,
    policyVersion: policy.status === 201 ? policyVersion : undefined,
    spareUserId: (user.json as { userId?: string }).userId,
    spareTokenId: (token.json as { tokenId?: string }).tokenId,
  };
  for (const [k, v] of Object.entries(f)) if (v === undefined) throw new Error(`fixtures: no ${k}`);
  return f as Fixtures;
}
