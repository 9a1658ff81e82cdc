/**
 * API3:2023 Broken Object Property Level Authorization, against the real back-end over HTTP.
 *
 * Exposure: after a busy history (users, tokens, sessions, failed logins, enrollment codes, halts,
 * card transactions with and without a PIN, key rotation), every GET route of /openapi.json is read by
 * every principal (API token, and a dashboard session for some), and every answer is scanned for keys
 * no caller may read (password and token hashes, private keys, secrets, PANs, PIN blocks, tickets) and
 * for the secret values themselves (passwords, tokens, session and CSRF secrets, enrollment codes, the
 * master key, the card-token key, sealed signing keys, tickets, the PAN, the PIN block).
 *
 * Mass assignment: every route of the document with a JSON body refuses unknown and privileged fields
 * (role, merchantId, tenant, id, createdAt, state, ...) with a 4xx, for the admin and for a merchant
 * user, and nothing is stored; routes with a query schema refuse unknown query fields the same way.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pinTicket, readerOutput } from '../../backend/test/fleet-helpers';
import {
  describeRes,
  openEvents,
  PASSWORD,
  PRINCIPAL_NAMES,
  startSecurityHarness,
  storeState,
  type PrincipalName,
  type Res,
  type SecurityHarness,
} from './harness';
import { documentedOperations, makeFixtures, OPERATOR_REQUESTS, type Fixtures } from './routes';

/** Keys no answer carries, at any depth (compared case-insensitively, without _ and -). */
const FORBIDDEN_KEYS = new Set(
  [
    'password',
    'passwordHash',
    'hash',
    'tokenHash',
    'token',
    'secret',
    'privateKey',
    'encryptedPrivateKey',
    'sealed',
    'd',
    'masterKey',
    'csrf',
    'csrfToken',
    'csrfHash',
    'session',
    'sessionHash',
    'pan',
    'cardNumber',
    'pinBlock',
    'pin',
    'cardData',
    'track2',
    'ticket',
    'jws',
    'evidence',
    'code',
    'codeHash',
    'bdk',
    'ipek',
  ].map((k) => k.toLowerCase()),
);
/**
 * `code` is allowed where it is a result or reason code (transactions, verdict reasons, errors), never
 * an enrollment code: its value must look like one.
 */
const CODE_VALUE = /^(?:POS_ERR_[A-Z0-9_]+|[A-Z][A-Z0-9_]*|\d{2,3})$/;

const norm = (k: string): string => k.toLowerCase().replace(/[_-]/g, '');

/** The paths (a.b[0].c) of forbidden keys in a JSON value. */
function forbiddenKeys(value: unknown, path = '$'): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => forbiddenKeys(v, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const here = `${path}.${k}`;
    const n = norm(k);
    const allowed =
      (n === 'code' && (v === null || (typeof v === 'string' && CODE_VALUE.test(v)))) ||
      // The terminal's current ticket as the dashboard shows it (use and times; its JWS is a `jws` key).
      (n === 'ticket' && (v === null || (typeof v === 'object' && !Array.isArray(v))));
    if (FORBIDDEN_KEYS.has(n) && !allowed) {
      out.push(here);
    }
    out.push(...forbiddenKeys(v, here));
  }
  return out;
}

/** A secret as the answer might spell it: as is, and a byte secret in hex, base64 and base64url. */
function spellings(secret: string | Uint8Array): string[] {
  if (typeof secret === 'string') return [secret];
  const b = Buffer.from(secret);
  return [b.toString('hex'), b.toString('hex').toUpperCase(), b.toString('base64'), b.toString('base64url')];
}

const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex');

describe('API3:2023 Broken Object Property Level Authorization: no answer carries what its caller may not read', () => {
  let sec: SecurityHarness;
  let fixtures: Fixtures;
  /** The terminal of merchant A that made the card transactions. */
  let payer = '';
  /** name -> value of every secret made during the set-up. */
  const secrets = new Map<string, string | Uint8Array>();

  beforeAll(async () => {
    sec = await startSecurityHarness();
    fixtures = await makeFixtures(sec);
    // The fixtures halt A's first terminal: transactions come from a second one.
    const a = await sec.enroll('A');
    payer = a.id;
    secrets.set('password', PASSWORD);
    secrets.set('master key', sec.masterKey);
    secrets.set('card-token key', sec.cardTokenKey);
    secrets.set('admin token', sec.h.adminToken);
    secrets.set('admin token hash', sha256Hex(sec.h.adminToken));
    for (const name of PRINCIPAL_NAMES) {
      const p = sec.principals[name];
      secrets.set(`${name} token`, p.token);
      secrets.set(`${name} token hash`, sha256Hex(p.token));
      const cookieValue = p.session.cookie.split('=')[1] ?? '';
      secrets.set(`${name} session`, cookieValue);
      secrets.set(`${name} session hash`, sha256Hex(cookieValue));
      secrets.set(`${name} csrf`, p.session.csrf);
      secrets.set(`${name} csrf hash`, sha256Hex(p.session.csrf));
    }
    // A password change, failed logins, a new token (shown once), an enrollment code (shown once).
    const newPassword = 'a changed password for API3';
    secrets.set('changed password', newPassword);
    expect(
      (
        await sec.request('POST', `/v1/users/${sec.principals.operatorB.userId}/password`, {
          as: 'admin',
          body: { password: newPassword },
        })
      ).status,
    ).toBe(200);
    for (const password of ['wrong password one', 'wrong password two']) {
      secrets.set(password, password);
      await sec.request('POST', '/v1/auth/login', {
        body: { username: sec.principals.merchantA.username, password },
      });
    }
    const token = await sec.request('POST', '/v1/tokens', {
      as: 'admin',
      body: { label: 'api3', role: 'operator', expiresInS: 3600 },
    });
    secrets.set('new token', (token.json as { token: string }).token);
    const code = await sec.request('POST', `/v1/merchants/${sec.tenants.A.merchantId}/enrollment-codes`, {
      as: 'operatorA',
      body: {},
    });
    const enrollmentCode = (code.json as { code: string }).code;
    secrets.set('enrollment code', enrollmentCode);
    secrets.set('enrollment code hash', sha256Hex(enrollmentCode));
    // Card transactions: without a PIN, and with one under a PIN-entry ticket.
    const ticket = await sec.ticket(a);
    secrets.set('session ticket', ticket);
    secrets.set('session ticket signature', ticket.split('.')[2] ?? '');
    const plain = readerOutput('visa-no-pin', undefined);
    const t1 = await sec.terminal(a, 'POST', '/v1/transactions', plain, { ticket });
    expect(t1.status, describeRes(t1)).toBe(200);
    const withPin = readerOutput('visa-pin', '1234');
    const pin = await pinTicket(a);
    const t2 = await sec.terminal(a, 'POST', '/v1/transactions', withPin, { ticket: pin });
    expect(t2.status, describeRes(t2)).toBe(200);
    secrets.set('PIN-entry ticket', pin);
    secrets.set('PIN block', String(withPin['pinBlock']));
    secrets.set('card data', (withPin['cardData'] as { ct: string }).ct);
    secrets.set('PAN (visa-pin)', '4111111111111111');
    // The transaction answers themselves carry no PAN or PIN block.
    for (const res of [t1, t2]) {
      expect(forbiddenKeys(res.json)).toEqual([]);
      expect(res.text).not.toContain('4111111111111111');
      expect(res.text).not.toContain(String(withPin['pinBlock']));
    }
    // Key rotation: a retired key beside the active one; their sealed private keys are secrets.
    expect((await sec.request('POST', '/v1/keys/rotate', { as: 'admin', body: {} })).status).toBe(200);
    for (const k of await sec.h.store.listSigningKeys()) {
      secrets.set(`sealed key ${k.kid}`, k.encryptedPrivateKey);
      for (const part of k.encryptedPrivateKey.split('.'))
        if (part.length >= 16) secrets.set(`sealed part ${k.kid}`, part);
    }
    for (const u of await sec.h.store.listOperators())
      secrets.set(`password hash of ${u.username}`, u.passwordHash);
  });
  afterAll(async () => {
    await sec.close();
  });

  function scan(label: string, res: Res): void {
    // The OpenAPI document names request and response fields (password, token, ...): values only.
    if (res.json !== undefined && !label.endsWith('GET /openapi.json'))
      expect(forbiddenKeys(res.json), `${label}: forbidden keys`).toEqual([]);
    for (const [name, secret] of secrets) {
      for (const s of spellings(secret).filter((x) => x.length >= 8))
        expect(res.text.includes(s), `${label}: carries the ${name}`).toBe(false);
    }
    expect(res.text, `${label}: a JWS (ticket or evidence)`).not.toMatch(/eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/);
    expect(res.text, `${label}: a PEM private key`).not.toMatch(/PRIVATE KEY/);
    expect(res.text, `${label}: a password hash`).not.toMatch(/scrypt\$/);
    expect(res.text, `${label}: an operator secret`).not.toMatch(
      /pos_(?:admin|operator|auditor|merchant|sess|csrf)_[A-Za-z0-9_-]{43}/,
    );
  }

  it('every GET of /openapi.json, read by every principal (token) and by sessions: no forbidden key or secret value', async () => {
    const gets = (await documentedOperations(sec)).filter(
      (o) => o.method === 'GET' && o.key !== 'GET /v1/events',
    );
    expect(gets.length).toBeGreaterThan(15);
    let ok = 0;
    const callers: { as?: PrincipalName; via?: 'session' }[] = [
      {},
      ...PRINCIPAL_NAMES.map((as) => ({ as })),
      { as: 'admin', via: 'session' },
      { as: 'merchantA', via: 'session' },
      { as: 'auditor', via: 'session' },
    ];
    for (const op of gets) {
      const make = OPERATOR_REQUESTS[op.key];
      const path = make === undefined ? op.path : make(fixtures).path;
      expect(path, `${op.key}: no request in routes.ts`).not.toContain('{');
      for (const caller of callers) {
        const res = await sec.request('GET', path, caller);
        if (res.status === 200) ok += 1;
        scan(`${caller.as ?? 'anonymous'} ${caller.via ?? ''} GET ${path}`, res);
      }
    }
    // Most reads succeed (the scan looked at real data, not only at refusals).
    expect(ok).toBeGreaterThan(100);
  });

  it('the data scanned holds the objects: transactions, audit entries, users, tokens, keys', async () => {
    const tx = await sec.request('GET', `/v1/terminals/${payer}/transactions`, {
      as: 'admin',
    });
    expect((tx.json as { transactions: unknown[] }).transactions.length).toBeGreaterThanOrEqual(2);
    const audit = await sec.request('GET', '/v1/audit', { as: 'auditor' });
    expect(audit.text).toContain('token.create');
    expect(audit.text).toContain('enrollment-code.create');
    const users = await sec.request('GET', '/v1/users', { as: 'auditor' });
    expect((users.json as { users: unknown[] }).users.length).toBeGreaterThanOrEqual(PRINCIPAL_NAMES.length);
    const jwks = await sec.request('GET', '/.well-known/jwks.json');
    expect((jwks.json as { keys: unknown[] }).keys.length).toBeGreaterThanOrEqual(2);
  });

  it('the event stream carries no forbidden key or secret', async () => {
    const stream = await openEvents(sec, 'admin');
    try {
      await stream.until((t) => t.includes(': connected'));
      const ticket = await sec.ticket(sec.tenants.B.terminal);
      secrets.set('stream ticket', ticket);
      const res = await sec.terminal('B', 'POST', '/v1/transactions', readerOutput('visa-pin', '1234'), {
        ticket: await pinTicket(sec.tenants.B.terminal),
      });
      expect(res.status).toBe(200);
      await sec.request('POST', `/v1/terminals/${sec.tenants.B.terminalId}/halt`, {
        as: 'admin',
        body: { reason: 'api3 stream' },
      });
      const text = await stream.until((t) => t.includes('halt'));
      for (const line of text.split('\n').filter((l) => l.startsWith('data: '))) {
        expect(forbiddenKeys(JSON.parse(line.slice(6)) as unknown), line).toEqual([]);
      }
      scan('event stream', { status: 200, headers: new Headers(), text, json: undefined, code: undefined });
    } finally {
      stream.close();
    }
  });
});

describe('API3:2023 Broken Object Property Level Authorization: mass assignment', () => {
  let sec: SecurityHarness;
  let fixtures: Fixtures;
  beforeAll(async () => {
    sec = await startSecurityHarness();
    fixtures = await makeFixtures(sec);
  });
  afterAll(async () => {
    await sec.close();
  });

  /** Privileged or unknown fields a caller might slip in. */
  const extras = (merchantB: string): [string, unknown][] => [
    ['role', 'admin'],
    ['merchantId', merchantB],
    ['tenant', merchantB],
    ['id', 'attacker-chosen-id'],
    ['createdAt', 0],
    ['createdBy', 'operator:nobody'],
    ['state', 'active'],
    ['tier', 'affirming'],
    ['approved', true],
    ['permissions', ['keys']],
    ['isAdmin', true],
    ['__proto__', { role: 'admin' }],
    ['constructor', { prototype: { role: 'admin' } }],
  ];

  it('every operator route with a JSON body refuses unknown and privileged fields (4xx), for the admin and for a merchant user; nothing stored', async () => {
    const ops = (await documentedOperations(sec)).filter(
      (o) =>
        o.bodySchema !== undefined &&
        (o.security.includes('operatorToken') || o.security.includes('sessionCookie')),
    );
    expect(ops.length).toBeGreaterThan(15);
    for (const op of ops) {
      const make = OPERATOR_REQUESTS[op.key];
      expect(make, `${op.key}: no request in routes.ts`).toBeDefined();
      if (make === undefined) continue;
      const { path, body } = make(fixtures);
      const declared = new Set(
        Object.keys((op.bodySchema?.['properties'] as Record<string, unknown> | undefined) ?? {}),
      );
      for (const [field, value] of extras(sec.tenants.B.merchantId)) {
        if (declared.has(field)) continue;
        for (const as of ['admin', 'merchantA'] as const) {
          const before = await storeState(sec);
          // Written as text so that `__proto__` is a member of the JSON, not the literal's prototype.
          const base = (body ?? {}) as Record<string, unknown>;
          const sep = Object.keys(base).length === 0 ? '' : ',';
          const sent = `{${JSON.stringify(base).slice(1, -1)}${sep}${JSON.stringify(field)}:${JSON.stringify(value)}}`;
          const res = await sec.request(op.method, path, { as, body: sent });
          const label = `${as} ${op.key} + ${field}: ${describeRes(res)}`;
          expect(res.status, label).toBeGreaterThanOrEqual(400);
          expect(res.status, label).toBeLessThan(500);
          expect(res.code, label).toMatch(/^POS_ERR_/);
          expect(await storeState(sec), label).toBe(before);
        }
      }
    }
  });

  it('declared fields cannot reach past the caller: a merchant user names another merchant, the admin an admin with a merchant', async () => {
    const before = await storeState(sec);
    const b = sec.tenants.B;
    const cases: [PrincipalName, string, unknown][] = [
      ['merchantA', '/v1/halts', { scope: 'merchant', target: b.merchantId, reason: 'x' }],
      ['operatorA', '/v1/halts', { scope: 'terminal', target: b.terminalId, reason: 'x' }],
      [
        'admin',
        '/v1/users',
        { username: 'api3-admin-b', password: 'an admin password', role: 'admin', merchantId: b.merchantId },
      ],
      ['admin', '/v1/tokens', { label: 'x', role: 'admin', merchantId: b.merchantId, expiresInS: 3600 }],
      ['admin', '/v1/tokens', { label: 'x', role: 'merchant', expiresInS: 3600 }],
    ];
    for (const [as, path, body] of cases) {
      const res = await sec.request('POST', path, { as, body });
      expect(res.status, `${as} POST ${path}: ${describeRes(res)}`).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
    }
    expect(await storeState(sec)).toBe(before);
  });

  it('terminal routes refuse unknown and privileged fields: enrollment into another merchant, a chosen verdict, an approved flag', async () => {
    // The fixtures halt A's first terminal: a second one.
    const a = await sec.enroll('A');
    const ticket = await sec.ticket(a);
    const before = await storeState(sec);
    const counts = async (): Promise<string> =>
      JSON.stringify([
        await sec.h.store.countTerminals(),
        await sec.h.store.countAttestations(),
        await sec.h.store.listTransactions(a.id, 1000),
      ]);
    const countsBefore = await counts();
    const challenge = await sec.request('POST', '/v1/challenges', {
      body: { terminalId: a.id, merchantId: 'x' },
    });
    expect(challenge.status, describeRes(challenge)).toBe(400);
    const c = await sec.request('POST', '/v1/challenges', { body: { terminalId: a.id } });
    const evidence = a.evidence((c.json as { challenge: string }).challenge, 'periodic');
    for (const extra of [
      { tier: 'affirming' },
      { terminalId: sec.tenants.B.terminalId },
      { merchantId: sec.tenants.B.merchantId },
    ]) {
      const res = await sec.terminal(a, 'POST', '/v1/attestations', { evidence, ...extra });
      expect(res.status, describeRes(res)).toBe(400);
      expect(res.json).not.toHaveProperty('ticket');
    }
    for (const extra of [
      { approved: true },
      { merchantId: sec.tenants.B.merchantId },
      { terminalId: sec.tenants.B.terminalId },
    ]) {
      const res = await sec.terminal(
        a,
        'POST',
        '/v1/transactions',
        { ...readerOutput('visa-declined', undefined), ...extra },
        { ticket },
      );
      expect(res.status, describeRes(res)).toBe(400);
    }
    const code = await sec.request('POST', `/v1/merchants/${sec.tenants.A.merchantId}/enrollment-codes`, {
      as: 'admin',
      body: {},
    });
    const enroll = await sec.request('POST', '/v1/enrollments', {
      body: {
        code: (code.json as { code: string }).code,
        deviceJwk: a.jwk,
        readerSerial: 'RDR-API3',
        evidence: 'x.y.z',
        merchantId: sec.tenants.B.merchantId,
      },
    });
    expect(enroll.status, describeRes(enroll)).toBe(400);
    const login = await sec.request('POST', '/v1/auth/login', {
      body: { username: sec.principals.merchantA.username, password: PASSWORD, role: 'admin' },
    });
    expect(login.status).toBe(400);
    expect(login.headers.get('set-cookie')).toBeNull();
    expect(await counts()).toBe(countsBefore);
    // Only the enrollment code was stored (audited); nothing else moved.
    const halts = (state: string): unknown => (JSON.parse(state) as { halts: unknown }).halts;
    expect(halts(await storeState(sec))).toEqual(halts(before));
  });

  it('routes with a query schema refuse unknown query fields', async () => {
    const ops = (await documentedOperations(sec)).filter((o) => o.method === 'GET');
    const raw = await sec.request('GET', '/openapi.json');
    const paths = (raw.json as { paths: Record<string, Record<string, { parameters?: { in: string }[] }>> })
      .paths;
    let checked = 0;
    for (const op of ops) {
      const params = paths[op.path]?.['get']?.parameters ?? [];
      if (!params.some((p) => p.in === 'query')) continue;
      const make = OPERATOR_REQUESTS[op.key];
      const path = make === undefined ? op.path : make(fixtures).path;
      const sep = path.includes('?') ? '&' : '?';
      const res = await sec.request('GET', `${path}${sep}merchantId=${sec.tenants.B.merchantId}&role=admin`, {
        as: 'merchantA',
      });
      expect(res.status, `${op.key}: ${describeRes(res)}`).toBe(400);
      checked += 1;
    }
    expect(checked).toBeGreaterThanOrEqual(4);
  });
});
