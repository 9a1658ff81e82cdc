/**
 * API2:2023 Broken Authentication, against the real back-end over HTTP: operator API tokens (unknown,
 * expired, revoked, another role's prefix), dashboard sessions (cookie attributes, CSRF on every unsafe
 * route of /openapi.json, expiry, logout), login (no user enumeration, lock-out, per-address rate
 * limit), and terminal tickets (expired, forged: wrong key, alg none, HS256 keyed with the public key,
 * embedded key, altered claims; replayed; another terminal's; and a ticket presented by a caller that
 * cannot prove its cnf key).
 */
import { createHmac, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jwkThumbprint, toBase64url } from '@pos/shared';
import { DEFAULT_AUTH_CONFIG } from '../../backend/src/server/auth/config';
import { pinTicket, readerOutput } from '../../backend/test/fleet-helpers';
import {
  describeRes,
  PASSWORD,
  SimTerminal,
  startSecurityHarness,
  storeState,
  type Res,
  type SecurityHarness,
} from './harness';
import { makeFixtures, OPERATOR_REQUESTS, operatorOperations, type Fixtures } from './routes';

const b64json = (o: unknown): string => toBase64url(Buffer.from(JSON.stringify(o), 'utf8'));
const decode = (part: string | undefined): Record<string, unknown> =>
  JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

describe('API2:2023 Broken Authentication: operator API tokens', () => {
  let sec: SecurityHarness;
  beforeAll(async () => {
    sec = await startSecurityHarness();
  });
  afterAll(async () => {
    await sec.close();
  });

  const me = (authorization: string): Promise<Res> =>
    sec.request('GET', '/v1/auth/me', { headers: { authorization } });

  it('no, malformed, unknown and re-prefixed tokens: 401 POS_ERR_OPERATOR_AUTH', async () => {
    const real = sec.principals.auditor.token;
    const secret = real.slice('pos_auditor_'.length);
    for (const authorization of [
      '',
      'Bearer',
      `Bearer ${'x'.repeat(40)}`,
      `Bearer pos_admin_${'A'.repeat(43)}`,
      // The auditor's secret under the admin prefix: the whole token is what is hashed.
      `Bearer pos_admin_${secret}`,
      `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`,
      `bearer ${real}`,
      `Bearer ${real}x`,
    ]) {
      const res = await me(authorization);
      expect(res.status, authorization).toBe(401);
      expect(res.code, authorization).toBe('POS_ERR_OPERATOR_AUTH');
    }
    expect((await me(`Bearer ${real}`)).status).toBe(200);
    // Nothing but the Authorization header carries a token.
    for (const path of [`/v1/auth/me?token=${real}`, `/v1/auth/me?access_token=${real}`]) {
      expect((await sec.request('GET', path)).status).toBe(401);
    }
    expect((await sec.request('GET', '/v1/auth/me', { headers: { 'x-api-key': real } })).status).toBe(401);
  });

  it('an expired token is refused from its expiry on', async () => {
    const created = await sec.request('POST', '/v1/tokens', {
      as: 'admin',
      body: { label: 'short', role: 'operator', expiresInS: 60 },
    });
    const { token } = created.json as { token: string };
    expect((await me(`Bearer ${token}`)).status).toBe(200);
    const t0 = sec.h.clock.t;
    try {
      sec.h.clock.t += 59_999;
      expect((await me(`Bearer ${token}`)).status).toBe(200);
      sec.h.clock.t += 1;
      const res = await me(`Bearer ${token}`);
      expect(res.status).toBe(401);
      expect(res.code).toBe('POS_ERR_OPERATOR_AUTH');
      // A write with it changes nothing.
      const before = await storeState(sec);
      const w = await sec.request('POST', '/v1/halts', {
        headers: { authorization: `Bearer ${token}` },
        body: { scope: 'fleet', reason: 'expired token' },
      });
      expect(w.status).toBe(401);
      expect(await storeState(sec)).toBe(before);
    } finally {
      sec.h.clock.t = t0;
    }
  });

  it('a revoked token is refused at once; the other tokens keep working', async () => {
    const created = await sec.request('POST', '/v1/tokens', {
      as: 'admin',
      body: { label: 'to revoke', role: 'operator', expiresInS: 3600 },
    });
    const { token, tokenId } = created.json as { token: string; tokenId: string };
    expect((await me(`Bearer ${token}`)).status).toBe(200);
    const del = await sec.request('DELETE', `/v1/tokens/${tokenId}`, { as: 'admin' });
    expect(del.status, describeRes(del)).toBe(200);
    const res = await me(`Bearer ${token}`);
    expect(res.status).toBe(401);
    expect(res.code).toBe('POS_ERR_OPERATOR_AUTH');
    expect((await sec.request('GET', '/v1/auth/me', { as: 'operator' })).status).toBe(200);
  });

  it("a terminal's credentials are no operator credential, and an operator token is no ticket", async () => {
    const ticket = await sec.ticket('A');
    for (const authorization of [`Bearer ${ticket}`, `PosTicket ${ticket}`]) {
      expect((await me(authorization)).status, authorization).toBe(401);
    }
    const res = await sec.terminal('A', 'POST', '/v1/transactions', readerOutput('visa-no-pin', undefined), {
      headers: { authorization: `PosTicket ${sec.principals.admin.token}` },
    });
    expect(res.status).toBe(401);
    expect(res.code).toMatch(/^POS_ERR_(TICKET|PROOF)_/);
  });
});

describe('API2:2023 Broken Authentication: dashboard sessions', () => {
  let sec: SecurityHarness;
  let fixtures: Fixtures;
  beforeAll(async () => {
    sec = await startSecurityHarness();
    fixtures = await makeFixtures(sec);
  });
  afterAll(async () => {
    await sec.close();
  });

  it('the session cookie is __Host-, HttpOnly, Secure, SameSite=Strict, Path=/, no Domain; the login answer is not cached', async () => {
    const res = await sec.request('POST', '/v1/auth/login', {
      body: { username: sec.principals.operator.username, password: PASSWORD },
    });
    expect(res.status).toBe(200);
    const setCookie = res.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^__Host-pos_session=pos_sess_[A-Za-z0-9_-]{43};/);
    const attrs = setCookie.split(';').map((a) => a.trim().toLowerCase());
    expect(attrs).toEqual(expect.arrayContaining(['httponly', 'secure', 'samesite=strict', 'path=/']));
    expect(attrs.some((a) => a.startsWith('domain'))).toBe(false);
    // The session secret is only in the cookie, never in the JSON body a script could read.
    const value = setCookie.split(';')[0]?.split('=')[1] ?? '';
    expect(res.text).not.toContain(value);
  });

  it('every unsafe operator route of /openapi.json refuses a cookie without its own CSRF token (403 POS_ERR_CSRF), changing nothing', async () => {
    const unsafe = (await operatorOperations(sec)).filter((o) => o.method !== 'GET');
    expect(unsafe.length).toBeGreaterThan(15);
    const admin = sec.principals.admin.session;
    const other = sec.principals.operator.session;
    for (const op of unsafe) {
      const make = OPERATOR_REQUESTS[op.key];
      expect(make, `${op.key}: no request in routes.ts`).toBeDefined();
      if (make === undefined) continue;
      const { path, body } = make(fixtures);
      for (const [label, csrf] of [
        ['no CSRF token', undefined],
        ['a forged CSRF token', `pos_csrf_${'A'.repeat(43)}`],
        ["another session's CSRF token", other.csrf],
        ['the session cookie value as CSRF token', admin.cookie.split('=')[1] ?? ''],
      ] as const) {
        const before = await storeState(sec);
        const res = await sec.request(op.method, path, {
          body,
          headers: { cookie: admin.cookie, ...(csrf === undefined ? {} : { 'x-csrf-token': csrf }) },
        });
        expect(res.status, `${op.key} with ${label}: ${describeRes(res)}`).toBe(403);
        expect(res.code, `${op.key} with ${label}`).toBe('POS_ERR_CSRF');
        expect(await storeState(sec), `${op.key} with ${label}`).toBe(before);
      }
    }
    // The same session with its own CSRF token may write (the cookie itself is good).
    const ok = await sec.request('POST', '/v1/merchants', {
      body: { name: 'csrf control' },
      headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf },
    });
    expect(ok.status).toBe(201);
  });

  it('a forged or altered session cookie is refused', async () => {
    const real = sec.principals.auditor.session.cookie;
    for (const cookie of [
      `__Host-pos_session=pos_sess_${'A'.repeat(43)}`,
      `${real}x`,
      real.replace('__Host-pos_session', 'pos_session'),
      `${real.slice(0, -1)}${real.endsWith('A') ? 'B' : 'A'}`,
    ]) {
      const res = await sec.request('GET', '/v1/auth/me', { headers: { cookie } });
      expect(res.status, cookie.slice(0, 30)).toBe(401);
      expect(res.code).toBe('POS_ERR_OPERATOR_AUTH');
    }
    expect((await sec.request('GET', '/v1/auth/me', { headers: { cookie: real } })).status).toBe(200);
  });

  it('a session ends at its expiry and at logout', async () => {
    const s = await sec.login('auditorA');
    const meWith = (cookie: string): Promise<Res> =>
      sec.request('GET', '/v1/auth/me', { headers: { cookie } });
    expect((await meWith(s.cookie)).status).toBe(200);
    const t0 = sec.h.clock.t;
    try {
      sec.h.clock.t += DEFAULT_AUTH_CONFIG.sessionTtlS * 1000;
      const expired = await meWith(s.cookie);
      expect(expired.status).toBe(401);
      expect(expired.code).toBe('POS_ERR_OPERATOR_AUTH');
    } finally {
      sec.h.clock.t = t0;
    }
    const s2 = await sec.login('auditorA');
    const out = await sec.request('POST', '/v1/auth/logout', {
      headers: { cookie: s2.cookie, 'x-csrf-token': s2.csrf },
      body: {},
    });
    expect(out.status, describeRes(out)).toBe(200);
    expect((await meWith(s2.cookie)).status).toBe(401);
  });
});

describe('API2:2023 Broken Authentication: login', () => {
  const AUTH = {
    ...DEFAULT_AUTH_CONFIG,
    scryptN: 1024,
    maxLoginFailures: 3,
    lockoutS: 600,
    loginAttemptsPerIp: 12,
  };
  let sec: SecurityHarness;
  beforeAll(async () => {
    sec = await startSecurityHarness({ config: { auth: AUTH } });
    // The harness's own logins used this address's budget: start a fresh window.
    sec.h.clock.t += AUTH.loginWindowS * 1000 + 1000;
  });
  afterAll(async () => {
    await sec.close();
  });

  const login = (username: string, password: string): Promise<Res> =>
    sec.request('POST', '/v1/auth/login', { body: { username, password } });
  /** The answer without its per-request id: what a caller could compare. */
  const shape = (res: Res): string =>
    JSON.stringify({
      status: res.status,
      body: { ...(res.json as { error: Record<string, unknown> }).error, requestId: undefined },
      cookie: res.headers.get('set-cookie'),
    });

  it('an unknown user, a wrong password and a disabled user get the same answer', async () => {
    const disabled = await sec.request('POST', `/v1/users/${sec.principals.auditorB.userId}/disable`, {
      as: 'admin',
      body: {},
    });
    expect(disabled.status).toBe(200);
    const unknown = await login('nobody-at-all', PASSWORD);
    const wrong = await login(sec.principals.operatorA.username, 'not the right password');
    const off = await login(sec.principals.auditorB.username, PASSWORD);
    expect(unknown.status).toBe(401);
    expect(unknown.code).toBe('POS_ERR_LOGIN_FAILED');
    expect(shape(wrong)).toBe(shape(unknown));
    expect(shape(off)).toBe(shape(unknown));
  });

  it('locks a user out (from this address) after repeated failures, even with the right password, with the same answer; lifted after the lock-out', async () => {
    const user = sec.principals.merchantA.username;
    for (let i = 0; i < AUTH.maxLoginFailures; i++) {
      expect((await login(user, `wrong password ${i}`)).status).toBe(401);
    }
    const locked = await login(user, PASSWORD);
    expect(locked.status).toBe(401);
    expect(shape(locked)).toBe(shape(await login('nobody-at-all', PASSWORD)));
    // Another user from this address is not locked.
    expect((await login(sec.principals.merchantB.username, PASSWORD)).status).toBe(200);
    const t0 = sec.h.clock.t;
    sec.h.clock.t += AUTH.lockoutS * 1000 + 1000;
    try {
      expect((await login(user, PASSWORD)).status).toBe(200);
    } finally {
      sec.h.clock.t = t0 + AUTH.lockoutS * 1000 + 1000;
    }
  });

  it('rate limits login attempts per client address (429 POS_ERR_LOGIN_RATE_LIMITED), the right password included', async () => {
    sec.h.clock.t += AUTH.loginWindowS * 1000 + 1000;
    for (let i = 0; i < AUTH.loginAttemptsPerIp; i++) {
      expect((await login(`guess-${i}`, 'some password guess')).status).toBe(401);
    }
    const limited = await login(sec.principals.operatorB.username, PASSWORD);
    expect(limited.status).toBe(429);
    expect(limited.code).toBe('POS_ERR_LOGIN_RATE_LIMITED');
    expect(limited.headers.get('set-cookie')).toBeNull();
    sec.h.clock.t += AUTH.loginWindowS * 1000 + 1000;
    expect((await login(sec.principals.operatorB.username, PASSWORD)).status).toBe(200);
  });
});

describe('API2:2023 Broken Authentication: terminal tickets and proofs', () => {
  let sec: SecurityHarness;
  let a: SimTerminal;
  let ticket: string;
  beforeAll(async () => {
    sec = await startSecurityHarness();
    a = sec.tenants.A.terminal;
    ticket = await sec.ticket(a);
  });
  afterAll(async () => {
    await sec.close();
  });

  const body = (): Record<string, unknown> => readerOutput('visa-no-pin', undefined);
  const transactions = async (): Promise<number> =>
    (await sec.h.store.listTransactions(a.id, 10_000)).length +
    (await sec.h.store.listTransactions(sec.tenants.B.terminalId, 10_000)).length;

  /** Presents `forged` as A's ticket under a valid proof of A's device key; expects a 401 ticket error. */
  async function refusedTicket(label: string, forged: string, code = /^POS_ERR_TICKET_/): Promise<void> {
    const before = await transactions();
    const res = await sec.terminal(a, 'POST', '/v1/transactions', body(), { ticket: forged });
    expect(res.status, `${label}: ${describeRes(res)}`).toBe(401);
    expect(res.code, label).toMatch(code);
    expect(await transactions(), label).toBe(before);
  }

  it('control: the ticket under a proof of its cnf key is accepted', async () => {
    const res = await sec.terminal(a, 'POST', '/v1/transactions', body(), { ticket });
    expect(res.status, describeRes(res)).toBe(200);
  });

  it('an expired ticket is refused', async () => {
    const t0 = sec.h.clock.t;
    try {
      const exp = decode(ticket.split('.')[1])['exp'] as number;
      // The verifier allows 5 s of clock skew (shared/src/ticket/verify.ts): expired from exp + 5 s.
      sec.h.clock.t = (exp + 4) * 1000;
      const late = await sec.terminal(a, 'POST', '/v1/transactions', body(), { ticket });
      expect(late.status, describeRes(late)).toBe(200);
      sec.h.clock.t = (exp + 5) * 1000;
      await refusedTicket('expired', ticket, /^POS_ERR_TICKET_EXPIRED$/);
    } finally {
      sec.h.clock.t = t0;
    }
  });

  it('forged tickets are refused: wrong key, alg none, HS256 keyed with the public key, an embedded key, altered claims', async () => {
    const [h64, p64, s64] = ticket.split('.') as [string, string, string];
    const header = decode(h64);
    const payload = decode(p64);
    const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const es256 = (hdr: Record<string, unknown>, pl: Record<string, unknown>): string => {
      const input = `${b64json(hdr)}.${b64json(pl)}`;
      const sig = sign('sha256', Buffer.from(input), { key: attacker.privateKey, dsaEncoding: 'ieee-p1363' });
      return `${input}.${toBase64url(sig)}`;
    };
    const hs256 = (key: Buffer | string): string => {
      const input = `${b64json({ ...header, alg: 'HS256' })}.${p64}`;
      return `${input}.${toBase64url(createHmac('sha256', key).update(input).digest())}`;
    };
    const jwks = (await sec.request('GET', '/.well-known/jwks.json')).json as {
      keys: { kid: string; x: string; y: string; crv: string; kty: string }[];
    };
    const serverJwk = jwks.keys.find((k) => k.kid === header['kid']);
    if (serverJwk === undefined) throw new Error("the ticket's key is not in the JWKS");
    const pub = createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: serverJwk.x, y: serverJwk.y },
      format: 'jwk',
    });
    const raw = Buffer.concat([
      Buffer.from([4]),
      Buffer.from(serverJwk.x, 'base64url'),
      Buffer.from(serverJwk.y, 'base64url'),
    ]);
    const attackerJwk = attacker.publicKey.export({ format: 'jwk' }) as {
      kty: 'EC';
      crv: 'P-256';
      x: string;
      y: string;
    };
    const forged: Record<string, string> = {
      'signed with another key': es256(header, payload),
      'alg none, no signature': `${b64json({ ...header, alg: 'none' })}.${p64}.`,
      'alg none, the original signature': `${b64json({ ...header, alg: 'none' })}.${p64}.${s64}`,
      'HS256 keyed with the JWKS entry': hs256(JSON.stringify(serverJwk)),
      'HS256 keyed with the PEM public key': hs256(pub.export({ format: 'pem', type: 'spki' }).toString()),
      'HS256 keyed with the DER public key': hs256(pub.export({ format: 'der', type: 'spki' })),
      'HS256 keyed with the raw public point': hs256(raw),
      'an embedded jwk of the attacker': es256(
        { ...header, jwk: attackerJwk, kid: jwkThumbprint({ ...attackerJwk }) },
        payload,
      ),
      'exp extended, original signature': `${h64}.${b64json({ ...payload, exp: (payload['exp'] as number) + 3600 })}.${s64}`,
      'use changed to pin-entry, original signature': `${h64}.${b64json({ ...payload, use: 'pin-entry' })}.${s64}`,
      'tier and permissions changed, original signature': `${h64}.${b64json({ ...payload, perm: ['transact', 'pin-entry'] })}.${s64}`,
      'signature truncated': `${h64}.${p64}.${s64.slice(0, -4)}`,
    };
    for (const [label, jws] of Object.entries(forged)) await refusedTicket(label, jws);
    // A ticket whose cnf names the attacker's key, presented with the attacker's proof naming A.
    const stolen = es256(header, { ...payload, cnf: { jkt: jwkThumbprint(attackerJwk) } });
    const res = await sec.terminal(a, 'POST', '/v1/transactions', body(), {
      ticket: stolen,
      signer: new SimTerminal(sec.h),
    });
    expect(res.status).toBe(401);
  });

  it("a caller that cannot prove the ticket's cnf key is refused: no proof, another key, another ticket's ath, replayed or stale proof", async () => {
    const before = await transactions();
    const other = new SimTerminal(sec.h);
    const b = sec.tenants.B.terminal;
    const ticketB = await sec.ticket(b);
    const payload = JSON.stringify(body());
    const replayed = a.proof('POST', '/v1/transactions', payload, { ticket });
    const first = await sec.terminal(a, 'POST', '/v1/transactions', payload, {
      ticket,
      headers: { 'pos-proof': replayed },
    });
    expect(first.status, describeRes(first)).toBe(200);
    const after = await transactions();
    const cases: Record<string, Promise<Res>> = {
      'no proof': sec.terminal(a, 'POST', '/v1/transactions', body(), { ticket, noProof: true }),
      "an unenrolled key's proof naming A": sec.terminal(a, 'POST', '/v1/transactions', body(), {
        ticket,
        signer: other,
      }),
      "terminal B's proof naming A": sec.terminal(a, 'POST', '/v1/transactions', body(), {
        ticket,
        signer: b,
      }),
      "terminal B's own proof with A's ticket": sec.terminal(b, 'POST', '/v1/transactions', body(), {
        ticket,
      }),
      "A's proof with B's ticket": sec.terminal(a, 'POST', '/v1/transactions', body(), { ticket: ticketB }),
      'a proof bound to another ticket (ath)': sec.terminal(a, 'POST', '/v1/transactions', body(), {
        ticket,
        headers: {
          'pos-proof': a.proof('POST', '/v1/transactions', JSON.stringify(body()), { ticket: ticketB }),
        },
      }),
      'a proof without ath': sec.terminal(a, 'POST', '/v1/transactions', payload, {
        ticket,
        headers: { 'pos-proof': a.proof('POST', '/v1/transactions', payload) },
      }),
      'a proof of another body': sec.terminal(a, 'POST', '/v1/transactions', body(), {
        ticket,
        headers: { 'pos-proof': a.proof('POST', '/v1/transactions', JSON.stringify(body()), { ticket }) },
      }),
      'a proof of another route': sec.terminal(a, 'POST', '/v1/transactions', payload, {
        ticket,
        headers: { 'pos-proof': a.proof('POST', '/v1/attestations', payload, { ticket }) },
      }),
      'a replayed proof': sec.terminal(a, 'POST', '/v1/transactions', payload, {
        ticket,
        headers: { 'pos-proof': replayed },
      }),
      'a stale proof': sec.terminal(a, 'POST', '/v1/transactions', payload, {
        ticket,
        headers: {
          'pos-proof': a.proof('POST', '/v1/transactions', payload, {
            ticket,
            iat: Math.floor(sec.h.clock.now() / 1000) - 3600,
          }),
        },
      }),
    };
    for (const [label, pending] of Object.entries(cases)) {
      const res = await pending;
      expect(res.status, `${label}: ${describeRes(res)}`).toBe(401);
      expect(res.code, label).toMatch(/^POS_ERR_(PROOF|TICKET)_/);
    }
    expect(before + 1).toBe(after);
    expect(await transactions()).toBe(after);
  });

  it('a replayed attestation (same evidence and challenge) gets no second ticket; an enrollment code enrolls once', async () => {
    const t = await sec.enroll('B');
    const c = await sec.request('POST', '/v1/challenges', { body: { terminalId: t.id } });
    const evidence = t.evidence((c.json as { challenge: string }).challenge, 'periodic');
    const first = await sec.terminal(t, 'POST', '/v1/attestations', { evidence });
    expect(first.json, describeRes(first)).toHaveProperty('ticket');
    const again = await sec.terminal(t, 'POST', '/v1/attestations', { evidence });
    expect(again.json, describeRes(again)).not.toHaveProperty('ticket');
    // One enrollment code, two devices: the second is refused and no terminal is added.
    const code = await sec.request('POST', `/v1/merchants/${sec.tenants.B.merchantId}/enrollment-codes`, {
      as: 'admin',
      body: {},
    });
    const enroll = async (): Promise<Res> => {
      const device = new SimTerminal(sec.h);
      const ch = await sec.request('POST', '/v1/challenges', { body: {} });
      return sec.request('POST', '/v1/enrollments', {
        body: {
          code: (code.json as { code: string }).code,
          deviceJwk: device.jwk,
          readerSerial: device.readerSerial,
          evidence: device.evidence((ch.json as { challenge: string }).challenge, 'enrollment'),
        },
      });
    };
    expect((await enroll()).status).toBe(201);
    const terminals = await sec.h.store.countTerminals();
    const second = await enroll();
    expect(second.status, describeRes(second)).toBeGreaterThanOrEqual(400);
    expect(second.status).toBeLessThan(500);
    expect(second.code).toMatch(/^POS_ERR_/);
    expect(await sec.h.store.countTerminals()).toBe(terminals);
  });

  it('a PIN-entry ticket is single use: replayed, it is refused (POS_ERR_TICKET_USED)', async () => {
    const pin = await pinTicket(a);
    const first = await sec.terminal(a, 'POST', '/v1/transactions', readerOutput('visa-pin', '1234'), {
      ticket: pin,
    });
    expect(first.status, describeRes(first)).toBe(200);
    const before = await transactions();
    const again = await sec.terminal(a, 'POST', '/v1/transactions', readerOutput('visa-pin', '1234'), {
      ticket: pin,
    });
    expect(again.status).toBe(401);
    expect(again.code).toBe('POS_ERR_TICKET_USED');
    expect(await transactions()).toBe(before);
  });
});
