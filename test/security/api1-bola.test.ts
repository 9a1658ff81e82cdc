/**
 * API1:2023 Broken Object Level Authorization, against the real back-end over HTTP.
 *
 * Every route of /openapi.json that names an object (a path parameter, or an id-like query or body
 * field) is classified below as a tenant object, a provider-wide object or a terminal route; a new
 * route that names an object fails the coverage test until it is classified. For each tenant route,
 * every principal of one merchant (operator, merchant user, auditor; API token and dashboard session)
 * on the other merchant's object gets 404 (as if absent) when its role holds the permission, 403
 * otherwise, always with a POS_ERR_ code, and the store is unchanged. Lists and the event stream carry
 * no other tenant's objects. A terminal's device key and ticket act for that terminal only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_POLICY } from '../../backend/src/attestation/policy';
import type { Permission } from '../../backend/src/server/context';
import { readerOutput } from '../../backend/test/fleet-helpers';
import { describePg } from '../../backend/test/pg-helpers';
import {
  describeRes,
  openEvents,
  startSecurityHarness,
  storeState,
  type Method,
  type PrincipalName,
  type SecurityHarness,
  type TenantName,
} from './harness';

/** The objects of one merchant that the other merchant's principals aim at. */
interface Objects {
  merchantId: string;
  terminalId: string;
  /** A terminal halt its own operator ordered (one its own side may lift). */
  terminalHalt: string;
  /** A merchant-scope halt the provider ordered. */
  merchantHalt: string;
  /** Its merchant user and that user's API token. */
  userId: string;
  tokenId: string;
}

interface Probe {
  readonly path: string;
  readonly body?: unknown;
}

/** A route on tenant objects: the permission it needs, and the requests aimed at the victim's objects. */
interface TenantRoute {
  readonly kind: 'tenant';
  readonly permission: Permission;
  readonly probes: (v: Objects) => Probe[];
}
/** A route on provider-wide objects: no merchant-scoped principal reaches it (403). */
interface ProviderRoute {
  readonly kind: 'provider';
  readonly probes: (v: Objects, ids: { referenceId: string; policy: string }) => Probe[];
}
/** A terminal route: its object is the terminal the device key proves (tested in its own group). */
interface TerminalRoute {
  readonly kind: 'terminal';
}

const reason = { reason: 'API1 probe' };
/** A stored policy version (the provider-wide object of the policy routes). */
const POLICY = 'api1-policy';

const OBJECT_ROUTES: Readonly<Record<string, TenantRoute | ProviderRoute | TerminalRoute>> = {
  'POST /v1/merchants/{merchantId}/enrollment-codes': {
    kind: 'tenant',
    permission: 'enroll',
    probes: (v) => [{ path: `/v1/merchants/${v.merchantId}/enrollment-codes`, body: {} }],
  },
  'GET /v1/terminals/{terminalId}': {
    kind: 'tenant',
    permission: 'read',
    probes: (v) => [{ path: `/v1/terminals/${v.terminalId}` }],
  },
  'GET /v1/terminals/{terminalId}/attestations': {
    kind: 'tenant',
    permission: 'read',
    probes: (v) => [{ path: `/v1/terminals/${v.terminalId}/attestations` }],
  },
  'GET /v1/terminals/{terminalId}/transactions': {
    kind: 'tenant',
    permission: 'read',
    probes: (v) => [{ path: `/v1/terminals/${v.terminalId}/transactions` }],
  },
  'POST /v1/terminals/{terminalId}/halt': {
    kind: 'tenant',
    permission: 'halt',
    probes: (v) => [{ path: `/v1/terminals/${v.terminalId}/halt`, body: reason }],
  },
  'POST /v1/terminals/{terminalId}/decommission': {
    kind: 'tenant',
    permission: 'halt',
    probes: (v) => [{ path: `/v1/terminals/${v.terminalId}/decommission`, body: reason }],
  },
  'POST /v1/terminals/{terminalId}/resume': {
    kind: 'tenant',
    permission: 'resume',
    probes: (v) => [{ path: `/v1/terminals/${v.terminalId}/resume`, body: reason }],
  },
  'POST /v1/halts': {
    kind: 'tenant',
    permission: 'halt',
    probes: (v) => [
      { path: '/v1/halts', body: { scope: 'terminal', target: v.terminalId, ...reason } },
      { path: '/v1/halts', body: { scope: 'merchant', target: v.merchantId, ...reason } },
    ],
  },
  'GET /v1/halts/{haltId}': {
    kind: 'tenant',
    permission: 'read',
    probes: (v) => [{ path: `/v1/halts/${v.terminalHalt}` }, { path: `/v1/halts/${v.merchantHalt}` }],
  },
  'POST /v1/halts/{haltId}/lift': {
    kind: 'tenant',
    permission: 'resume',
    probes: (v) => [
      { path: `/v1/halts/${v.terminalHalt}/lift`, body: reason },
      { path: `/v1/halts/${v.merchantHalt}/lift`, body: reason },
    ],
  },
  'GET /v1/terminals': {
    kind: 'tenant',
    permission: 'read',
    probes: (v) => [{ path: `/v1/terminals?merchant=${v.merchantId}` }],
  },
  'GET /v1/fleet/summary': {
    kind: 'tenant',
    permission: 'read',
    probes: (v) => [{ path: `/v1/fleet/summary?merchant=${v.merchantId}` }],
  },
  'DELETE /v1/reference-values/{id}': {
    kind: 'provider',
    probes: (_v, ids) => [{ path: `/v1/reference-values/${ids.referenceId}` }],
  },
  'POST /v1/policies/{version}/shadow': {
    kind: 'provider',
    probes: (_v, ids) => [{ path: `/v1/policies/${ids.policy}/shadow`, body: { enabled: true } }],
  },
  'POST /v1/policies/{version}/activate': {
    kind: 'provider',
    probes: (_v, ids) => [{ path: `/v1/policies/${ids.policy}/activate`, body: {} }],
  },
  'POST /v1/users': {
    kind: 'provider',
    probes: (v) => [
      {
        path: '/v1/users',
        body: {
          username: 'api1-intruder',
          password: 'an intruder password',
          role: 'merchant',
          merchantId: v.merchantId,
        },
      },
    ],
  },
  'POST /v1/users/{userId}/disable': {
    kind: 'provider',
    probes: (v) => [{ path: `/v1/users/${v.userId}/disable`, body: {} }],
  },
  'POST /v1/users/{userId}/password': {
    kind: 'provider',
    probes: (v) => [
      { path: `/v1/users/${v.userId}/password`, body: { password: 'a password set by another tenant' } },
    ],
  },
  'POST /v1/users/{userId}/unlock': {
    kind: 'provider',
    probes: (v) => [{ path: `/v1/users/${v.userId}/unlock`, body: {} }],
  },
  'POST /v1/tokens': {
    kind: 'provider',
    probes: (v) => [
      {
        path: '/v1/tokens',
        body: { label: 'api1', role: 'merchant', merchantId: v.merchantId, expiresInS: 3600 },
      },
    ],
  },
  'DELETE /v1/tokens/{tokenId}': {
    kind: 'provider',
    probes: (v) => [{ path: `/v1/tokens/${v.tokenId}` }],
  },
  'POST /v1/challenges': { kind: 'terminal' },
};

const ATTACKERS: Readonly<Record<TenantName, readonly PrincipalName[]>> = {
  A: ['operatorA', 'merchantA', 'auditorA'],
  B: ['operatorB', 'merchantB', 'auditorB'],
};

/** Query and body fields that name an existing object. */
const ID_FIELD = /(?:Id|^merchant|^target)$/;

interface OpenApiOperation {
  parameters?: { in: string; name: string }[];
  requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> };
}

/** `METHOD /path` of every operation that names an object, from the served OpenAPI document. */
async function objectRoutesOf(sec: SecurityHarness): Promise<{ all: string[]; naming: string[] }> {
  const res = await sec.request('GET', '/openapi.json');
  expect(res.status).toBe(200);
  const doc = res.json as { paths: Record<string, Record<string, OpenApiOperation>> };
  const all: string[] = [];
  const naming: string[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const key = `${method.toUpperCase()} ${path}`;
      all.push(key);
      const fields = [
        ...(op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
        ...Object.keys(op.requestBody?.content?.['application/json']?.schema?.properties ?? {}),
      ];
      if (path.includes('{') || fields.some((f) => ID_FIELD.test(f))) naming.push(key);
    }
  }
  return { all, naming };
}

/**
 * The operator-route group, on a store engine: tenant filtering happens partly in the store's queries
 * (terminal lists, counts), so it runs on SQLite and on PostgreSQL.
 */
function operatorRoutes(store: 'sqlite' | 'postgres'): void {
  let sec: SecurityHarness;
  const objects = {} as Record<TenantName, Objects>;
  let referenceId = '';
  const permissions = new Map<PrincipalName, Set<string>>();

  beforeAll(async () => {
    sec = await startSecurityHarness({ store });
    for (const t of ['A', 'B'] as const) {
      const own = await sec.request('POST', '/v1/halts', {
        as: `operator${t}`,
        body: { scope: 'terminal', target: sec.tenants[t].terminalId, reason: 'own halt' },
      });
      const provider = await sec.request('POST', '/v1/halts', {
        as: 'admin',
        body: { scope: 'merchant', target: sec.tenants[t].merchantId, reason: 'provider halt' },
      });
      expect(own.status, own.text).toBe(201);
      expect(provider.status, provider.text).toBe(201);
      const merchant = sec.principals[`merchant${t}`];
      objects[t] = {
        merchantId: sec.tenants[t].merchantId,
        terminalId: sec.tenants[t].terminalId,
        terminalHalt: (own.json as { haltId: string }).haltId,
        merchantHalt: (provider.json as { haltId: string }).haltId,
        userId: merchant.userId,
        tokenId: merchant.tokenId,
      };
    }
    const refs = await sec.request('GET', '/v1/reference-values', { as: 'admin' });
    referenceId = (refs.json as { referenceValues: { id: string }[] }).referenceValues[0]?.id ?? '';
    expect(referenceId).not.toBe('');
    const policy = await sec.request('POST', '/v1/policies', {
      as: 'admin',
      body: { policy: { ...DEFAULT_POLICY, version: POLICY } },
    });
    expect(policy.status, policy.text).toBe(201);
    for (const name of [...ATTACKERS.A, ...ATTACKERS.B]) {
      const me = await sec.request('GET', '/v1/auth/me', { as: name });
      permissions.set(name, new Set((me.json as { permissions: string[] }).permissions));
    }
  });
  afterAll(async () => {
    await sec.close();
  });

  it('every route of /openapi.json that names an object is classified, and the table names no absent route', async () => {
    const { all, naming } = await objectRoutesOf(sec);
    expect(naming.length).toBeGreaterThan(15);
    const unclassified = naming.filter((r) => !(r in OBJECT_ROUTES));
    expect(unclassified, 'routes naming an object, unclassified in api1-bola.test.ts').toEqual([]);
    expect(
      Object.keys(OBJECT_ROUTES).filter((r) => !all.includes(r)),
      'table entries with no route',
    ).toEqual([]);
  });

  for (const [attacker, victim] of [
    ['A', 'B'],
    ['B', 'A'],
  ] as const) {
    describe(`merchant ${attacker}'s principals on merchant ${victim}'s objects`, () => {
      for (const [key, spec] of Object.entries(OBJECT_ROUTES)) {
        if (spec.kind === 'terminal') continue;
        const method = key.split(' ')[0] as Method;
        it(`${key}: ${spec.kind === 'tenant' ? '404 as if absent (403 without the permission)' : '403'}, store unchanged`, async () => {
          const v = objects[victim];
          const probes =
            spec.kind === 'tenant' ? spec.probes(v) : spec.probes(v, { referenceId, policy: POLICY });
          for (const name of ATTACKERS[attacker]) {
            for (const via of ['token', 'session'] as const) {
              for (const probe of probes) {
                const before = await storeState(sec);
                const res = await sec.request(method, probe.path, { as: name, via, body: probe.body });
                const label = `${name} (${via}) ${method} ${probe.path}: ${describeRes(res)}`;
                const may = spec.kind === 'tenant' && (permissions.get(name)?.has(spec.permission) ?? false);
                expect(res.status, label).toBe(may ? 404 : 403);
                expect(res.code, label).toMatch(may ? /^POS_ERR_[A-Z_]+_UNKNOWN$/ : /^POS_ERR_FORBIDDEN$/);
                for (const id of Object.values(v)) expect(res.text, label).not.toContain(id);
                expect(await storeState(sec), label).toBe(before);
              }
            }
          }
        });
      }
    });
  }

  it("lists and summaries carry none of the other merchant's objects (every GET of /openapi.json, every role of A)", async () => {
    const { all } = await objectRoutesOf(sec);
    const gets = all.filter((r) => r.startsWith('GET ') && !r.includes('{') && r !== 'GET /v1/events');
    expect(gets.length).toBeGreaterThan(10);
    const b = objects.B;
    const secrets = [
      ...(Object.values(b) as string[]),
      sec.principals.merchantB.username,
      sec.principals.operatorB.username,
    ];
    let seen = 0;
    for (const key of gets) {
      const path = key.slice(4);
      for (const name of ATTACKERS.A) {
        const res = await sec.request('GET', path, { as: name });
        if (res.status === 200) seen += 1;
        for (const s of secrets) expect(res.text, `${name} GET ${path}`).not.toContain(s);
      }
    }
    expect(seen).toBeGreaterThan(10);
    // The same lists do show B's objects to a provider-wide principal: the ids are the right ones to look for.
    const all1 = await sec.request('GET', '/v1/halts?state=all', { as: 'operator' });
    expect(all1.text).toContain(b.terminalHalt);
    const terminals = await sec.request('GET', '/v1/terminals', { as: 'auditor' });
    expect(terminals.text).toContain(b.terminalId);
  });

  it("the event stream of merchant A's operator carries none of merchant B's events", async () => {
    const stream = await openEvents(sec, 'operatorA');
    try {
      expect(stream.status).toBe(200);
      // Connected first, so the events below are delivered to this stream.
      await stream.until((t) => t.includes(': connected'));
      // B's event is published before A's: had it been forwarded, it would arrive first.
      const hb = await sec.request('POST', `/v1/terminals/${objects.B.terminalId}/halt`, {
        as: 'admin',
        body: reason,
      });
      const ha = await sec.request('POST', `/v1/terminals/${objects.A.terminalId}/halt`, {
        as: 'admin',
        body: reason,
      });
      expect([hb.status, ha.status]).toEqual([200, 200]);
      const text = await stream.until((t) => t.includes(objects.A.terminalId));
      expect(text).not.toContain(objects.B.terminalId);
      expect(text).not.toContain(objects.B.merchantId);
    } finally {
      stream.close();
    }
  });

  it('the probes are well-formed: the provider admin reaches every one of them', async () => {
    for (const [key, spec] of Object.entries(OBJECT_ROUTES)) {
      if (spec.kind === 'terminal') continue;
      const method = key.split(' ')[0] as Method;
      const probes =
        spec.kind === 'tenant'
          ? spec.probes(objects.B)
          : spec.probes(objects.B, { referenceId, policy: POLICY });
      for (const probe of probes) {
        const res = await sec.request(method, probe.path, { as: 'admin', body: probe.body });
        // 409: an earlier probe of this loop already lifted the halt (resume lifts its terminal halts).
        expect([200, 201, 409], `${key} ${probe.path}: ${describeRes(res)}`).toContain(res.status);
      }
    }
  });
}

describe('API1:2023 Broken Object Level Authorization: operator routes (SQLite)', () =>
  operatorRoutes('sqlite'));
// PostgreSQL: skipped with a printed reason when unreachable outside CI (backend/test/pg-helpers.ts).
describePg('API1:2023 Broken Object Level Authorization: operator routes (PostgreSQL)', () =>
  operatorRoutes('postgres'),
);

describe("API1:2023 Broken Object Level Authorization: a terminal's device key and ticket act for that terminal only", () => {
  let sec: SecurityHarness;
  beforeAll(async () => {
    sec = await startSecurityHarness();
  });
  afterAll(async () => {
    await sec.close();
  });

  const terminalState = async (...ids: string[]): Promise<string> =>
    JSON.stringify({
      state: await storeState(sec),
      terminals: await Promise.all(ids.map((id) => sec.h.store.getTerminal(id))),
      attestations: await Promise.all(ids.map((id) => sec.h.store.listAttestations(id, 1000))),
      transactions: await Promise.all(ids.map((id) => sec.h.store.listTransactions(id, 1000))),
    });

  it("terminal A's device key cannot attest as terminal B (proof kid B, evidence iss B, B's challenge); B is untouched", async () => {
    // A terminal of merchant A of its own: an attempt may (rightly) halt the attacker.
    const a = await sec.enroll('A');
    const b = sec.tenants.B.terminal;
    const victim = async (): Promise<string> =>
      JSON.stringify({
        terminal: await sec.h.store.getTerminal(b.id),
        attestations: await sec.h.store.listAttestations(b.id, 1000),
        halts: (await sec.h.store.listHalts({ activeOnly: false, limit: 10_000 })).filter(
          (x) => x.target === b.id || x.target === sec.tenants.B.merchantId,
        ),
      });
    const before = await victim();
    const challenge = async (terminalId: string): Promise<string> => {
      const c = await sec.request('POST', '/v1/challenges', { body: { terminalId } });
      return (c.json as { challenge: string }).challenge;
    };
    const forged = (c: string): string =>
      a.signJws({ alg: 'ES256', typ: 'pos-evidence+jwt' }, { ...a.claims(c, 'periodic'), iss: b.id });
    const attempts = {
      "A's evidence, A's key signing a proof that names B": await sec.terminal(
        a,
        'POST',
        '/v1/attestations',
        { evidence: a.evidence(await challenge(a.id), 'periodic') },
        { kid: b.id },
      ),
      "evidence claiming B on B's challenge, A's key, proof naming B": await sec.terminal(
        a,
        'POST',
        '/v1/attestations',
        { evidence: forged(await challenge(b.id)) },
        { kid: b.id },
      ),
      "evidence claiming B on B's challenge, under A's own proof": await sec.terminal(
        a,
        'POST',
        '/v1/attestations',
        {
          evidence: forged(await challenge(b.id)),
        },
      ),
    };
    for (const [label, res] of Object.entries(attempts)) {
      // Refused outright (4xx), or appraised as A's and contraindicated: never a ticket.
      const refused = res.status >= 400 && res.status < 500 && /^POS_ERR_/.test(res.code ?? '');
      const contraindicated =
        res.status === 200 &&
        (res.json as { verdict?: { tier?: string } }).verdict?.tier === 'contraindicated';
      expect(refused || contraindicated, `${label}: ${describeRes(res)}`).toBe(true);
      expect(res.json, label).not.toHaveProperty('ticket');
    }
    expect(await victim()).toBe(before);
    // B itself still attests and gets its ticket.
    expect(await sec.ticket(b)).toMatch(/^ey/);
  });

  it("terminal B's ticket is refused under terminal A's device key, and A's ticket under B's", async () => {
    const a = await sec.enroll('A');
    const b = await sec.enroll('B');
    const ticketA = await sec.ticket(a);
    const ticketB = await sec.ticket(b);
    const before = await terminalState(a.id, b.id);
    const body = (): Record<string, unknown> => readerOutput('visa-no-pin', undefined);
    const attempts = {
      "B's ticket, A's proof naming A": await sec.terminal(a, 'POST', '/v1/transactions', body(), {
        ticket: ticketB,
      }),
      "B's ticket, A's key signing a proof that names B": await sec.terminal(
        a,
        'POST',
        '/v1/transactions',
        body(),
        {
          ticket: ticketB,
          kid: b.id,
        },
      ),
      "A's ticket, B's proof naming B": await sec.terminal(b, 'POST', '/v1/transactions', body(), {
        ticket: ticketA,
      }),
      "A's ticket, B's key signing a proof that names A": await sec.terminal(
        b,
        'POST',
        '/v1/transactions',
        body(),
        {
          ticket: ticketA,
          kid: a.id,
        },
      ),
    };
    for (const [label, res] of Object.entries(attempts)) {
      expect(res.status, `${label}: ${describeRes(res)}`).toBe(401);
      expect(res.code, label).toMatch(/^POS_ERR_/);
    }
    expect(await terminalState(a.id, b.id)).toBe(before);
    // Control: each ticket works for its own terminal.
    for (const [t, ticket] of [
      [a, ticketA],
      [b, ticketB],
    ] as const) {
      const own = await sec.terminal(t, 'POST', '/v1/transactions', body(), { ticket });
      expect(own.status, describeRes(own)).toBe(200);
    }
  });
});
