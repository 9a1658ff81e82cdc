/**
 * Dashboard login and API tokens: password checks, lock-out, per-address rate limit, the session
 * cookie's attributes, CSRF, session expiry and logout, expired and revoked tokens, user management.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_AUTH_CONFIG } from '../../src/server/auth/config';
import { dummyHash, hashPassword, verifyPassword } from '../../src/server/auth/passwords';
import { makeHarness, type Harness } from '../helpers';

const PASSWORD = 'correct horse battery staple';
const AUTH = {
  ...DEFAULT_AUTH_CONFIG,
  scryptN: 1024,
  maxLoginFailures: 3,
  lockoutS: 600,
  loginAttemptsPerIp: 10,
};

let h: Harness;
beforeEach(async () => {
  h = await makeHarness({ auth: AUTH });
});
afterEach(async () => {
  await h.close();
});

const code = (res: LightMyRequestResponse): string => res.json<{ error: { code: string } }>().error.code;

async function addUser(
  username: string,
  role: 'admin' | 'operator' | 'auditor' | 'merchant' = 'operator',
  merchantId?: string,
): Promise<string> {
  const res = await h.admin('POST', '/v1/users', {
    username,
    password: PASSWORD,
    role,
    ...(merchantId === undefined ? {} : { merchantId }),
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ userId: string }>().userId;
}

function login(username: string, password: string, ip = '10.0.0.1'): Promise<LightMyRequestResponse> {
  return h.app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { username, password },
    remoteAddress: ip,
  });
}

interface Session {
  cookie: string;
  csrf: string;
  setCookie: string;
}

async function session(username: string): Promise<Session> {
  const res = await login(username, PASSWORD);
  expect(res.statusCode, res.body).toBe(200);
  const setCookie = String(res.headers['set-cookie']);
  const cookie = setCookie.split(';')[0] ?? '';
  return { cookie, csrf: res.json<{ csrfToken: string }>().csrfToken, setCookie };
}

async function auditActions(): Promise<{ action: string; data: Record<string, unknown>; subject: string }[]> {
  return (await h.store.listAudit(0, 10_000)).map((e) => ({
    action: e.action,
    data: e.data,
    subject: e.subject,
  }));
}

describe('password hashes', () => {
  it('scrypt with its parameters in the hash; wrong password, altered or malformed hash: false', async () => {
    const hash = await hashPassword(PASSWORD, 1024);
    expect(hash).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(await verifyPassword(PASSWORD, hash)).toBe(true);
    expect(await verifyPassword(`${PASSWORD}!`, hash)).toBe(false);
    expect(await verifyPassword(PASSWORD, hash.replace('$1024$', '$2048$'))).toBe(false);
    expect(await verifyPassword(PASSWORD, 'plain')).toBe(false);
    expect(await verifyPassword(PASSWORD, hash.replace('$1024$', '$1000$'))).toBe(false);
    expect(await hashPassword(PASSWORD, 1024)).not.toBe(hash);
    expect(await verifyPassword(PASSWORD, await dummyHash(1024))).toBe(false);
  });
});

describe('login', () => {
  it('sets a __Host- session cookie (HttpOnly, Secure, SameSite=Strict, Path=/) and returns a CSRF token', async () => {
    const id = await addUser('alice');
    const res = await login('Alice', PASSWORD);
    expect(res.statusCode).toBe(200);
    const body = res.json<{ csrfToken: string; expiresAt: number; user: { userId: string; role: string } }>();
    expect(body.user).toMatchObject({ userId: id, role: 'operator' });
    expect(body.csrfToken).toMatch(/^pos_csrf_[A-Za-z0-9_-]{43}$/);
    expect(body.expiresAt).toBe(h.clock.now() + AUTH.sessionTtlS * 1000);
    const setCookie = String(res.headers['set-cookie']);
    expect(setCookie).toMatch(/^__Host-pos_session=pos_sess_[A-Za-z0-9_-]{43};/);
    const attrs = setCookie.split(';').map((a) => a.trim());
    expect(attrs).toEqual(
      expect.arrayContaining([
        'Path=/',
        'HttpOnly',
        'Secure',
        'SameSite=Strict',
        `Max-Age=${AUTH.sessionTtlS}`,
      ]),
    );
    expect(attrs.some((a) => a.startsWith('Domain'))).toBe(false);
    // The session is stored hashed: neither the cookie value nor the CSRF token is in the store or the audit.
    const value = setCookie.split(';')[0]?.split('=')[1] ?? '';
    expect(JSON.stringify(await h.store.listAudit(0, 1000))).not.toContain(value);
    expect(JSON.stringify(await h.store.listAudit(0, 1000))).not.toContain(body.csrfToken);
    expect(JSON.stringify(await h.store.listAudit(0, 1000))).not.toContain(PASSWORD);
    const me = await h.app.inject({
      method: 'GET',
      url: '/v1/auth/me',
      headers: { cookie: setCookie.split(';')[0] ?? '' },
    });
    expect(me.json()).toMatchObject({
      via: 'session',
      role: 'operator',
      username: 'alice',
      merchantId: null,
    });
  });

  it('a wrong password and an unknown user get the same 401, and are audited without the password', async () => {
    await addUser('alice');
    const wrong = await login('alice', 'not the password at all');
    const unknown = await login('nobody', PASSWORD);
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(code(wrong)).toBe('POS_ERR_LOGIN_FAILED');
    expect(wrong.json<{ error: { message: string } }>().error.message).toBe(
      unknown.json<{ error: { message: string } }>().error.message,
    );
    expect(wrong.headers['set-cookie']).toBeUndefined();
    const audit = await auditActions();
    expect(audit.filter((a) => a.action === 'auth.login.failed').map((a) => a.data['reason'])).toEqual([
      'password',
      'unknown-user',
    ]);
    expect(JSON.stringify(audit)).not.toContain('not the password at all');
  });

  it('locks the account for this address after N failures (even the right password), audited; lifted after the lock-out', async () => {
    const id = await addUser('alice');
    for (let i = 0; i < AUTH.maxLoginFailures; i++) {
      expect((await login('alice', 'wrong password number')).statusCode).toBe(401);
    }
    const locked = await login('alice', PASSWORD);
    expect(locked.statusCode).toBe(401);
    expect(code(locked)).toBe('POS_ERR_LOGIN_FAILED');
    const audit = await auditActions();
    expect(audit.filter((a) => a.action === 'auth.lockout')).toEqual([
      expect.objectContaining({ subject: `operator:${id}` }),
    ]);
    expect(audit.some((a) => a.action === 'auth.login.failed' && a.data['reason'] === 'locked')).toBe(true);
    h.clock.t += AUTH.lockoutS * 1000;
    expect((await login('alice', PASSWORD)).statusCode).toBe(200);
  });

  it('a success resets the failure count', async () => {
    await addUser('alice');
    await login('alice', 'wrong password number');
    await login('alice', 'wrong password number');
    expect((await login('alice', PASSWORD)).statusCode).toBe(200);
    await login('alice', 'wrong password number');
    await login('alice', 'wrong password number');
    expect((await login('alice', PASSWORD)).statusCode).toBe(200);
  });

  it('rate limits login attempts per client address (429), audited once; another address is not affected', async () => {
    await addUser('alice');
    for (let i = 0; i < AUTH.loginAttemptsPerIp; i++) {
      expect((await login(`user${i}`, 'whatever password', '10.0.0.9')).statusCode).toBe(401);
    }
    const limited = await login('alice', PASSWORD, '10.0.0.9');
    expect(limited.statusCode).toBe(429);
    expect(code(limited)).toBe('POS_ERR_LOGIN_RATE_LIMITED');
    expect((await login('alice', PASSWORD, '10.0.0.9')).statusCode).toBe(429);
    expect((await login('alice', PASSWORD, '10.0.0.10')).statusCode).toBe(200);
    expect((await auditActions()).filter((a) => a.action === 'auth.login.rate-limited')).toHaveLength(1);
    h.clock.t += AUTH.loginWindowS * 1000 + 1;
    expect((await login('alice', PASSWORD, '10.0.0.9')).statusCode).toBe(200);
  });

  it('a disabled user cannot log in and their sessions end', async () => {
    const id = await addUser('alice');
    const s = await session('alice');
    const dis = await h.admin('POST', `/v1/users/${id}/disable`, {});
    expect(dis.json()).toMatchObject({ disabled: true, sessionsEnded: 1 });
    expect(
      (await h.app.inject({ method: 'GET', url: '/v1/auth/me', headers: { cookie: s.cookie } })).statusCode,
    ).toBe(401);
    expect((await login('alice', PASSWORD)).statusCode).toBe(401);
  });
});

describe('sessions and CSRF', () => {
  it('an unsafe method with the cookie needs the CSRF token of this session (missing or wrong: 403)', async () => {
    await addUser('boss', 'admin');
    await addUser('other', 'admin');
    const s = await session('boss');
    const other = await session('other');
    const post = (headers: Record<string, string>): Promise<LightMyRequestResponse> =>
      h.app.inject({ method: 'POST', url: '/v1/merchants', payload: { name: 'Shop' }, headers });
    const missing = await post({ cookie: s.cookie });
    expect(missing.statusCode).toBe(403);
    expect(code(missing)).toBe('POS_ERR_CSRF');
    expect((await post({ cookie: s.cookie, 'x-csrf-token': `pos_csrf_${'A'.repeat(43)}` })).statusCode).toBe(
      403,
    );
    // Another session's token does not do: the token is bound to its session.
    expect((await post({ cookie: s.cookie, 'x-csrf-token': other.csrf })).statusCode).toBe(403);
    expect((await h.store.listMerchants()).length).toBe(0);
    expect((await post({ cookie: s.cookie, 'x-csrf-token': s.csrf })).statusCode).toBe(201);
    // A safe method needs no CSRF token.
    expect(
      (await h.app.inject({ method: 'GET', url: '/v1/merchants', headers: { cookie: s.cookie } })).statusCode,
    ).toBe(200);
  });

  it('login takes JSON only (a cross-site form cannot post it); an Authorization header wins over the cookie', async () => {
    await addUser('alice');
    for (const [type, payload] of [
      ['text/plain', JSON.stringify({ username: 'alice', password: PASSWORD })],
      ['application/x-www-form-urlencoded', `username=alice&password=${encodeURIComponent(PASSWORD)}`],
    ] as const) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        headers: { 'content-type': type },
        payload,
      });
      // text/plain is parsed as a string (400 from the schema), a form is an unknown type (415): no session.
      expect(res.statusCode).toBe(type === 'text/plain' ? 400 : 415);
      expect(res.headers['set-cookie']).toBeUndefined();
    }
    const s = await session('alice');
    const res = await h.app.inject({
      method: 'GET',
      url: '/v1/auth/me',
      headers: { cookie: s.cookie, authorization: `Bearer pos_admin_${'A'.repeat(43)}` },
    });
    expect(res.statusCode).toBe(401);
  });

  it('a session user gets their role: an auditor session may read the audit and create nothing', async () => {
    await addUser('carol', 'auditor');
    const s = await session('carol');
    const headers = { cookie: s.cookie, 'x-csrf-token': s.csrf };
    expect((await h.app.inject({ method: 'GET', url: '/v1/audit/verify', headers })).statusCode).toBe(200);
    const res = await h.app.inject({ method: 'POST', url: '/v1/merchants', payload: { name: 'x' }, headers });
    expect(res.statusCode).toBe(403);
    expect(code(res)).toBe('POS_ERR_FORBIDDEN');
  });

  it('a session expires; logout ends it and clears the cookie; a forged cookie is refused', async () => {
    await addUser('alice');
    const me = (cookie: string): Promise<LightMyRequestResponse> =>
      h.app.inject({ method: 'GET', url: '/v1/auth/me', headers: { cookie } });
    const s = await session('alice');
    expect((await me(s.cookie)).statusCode).toBe(200);
    expect((await me(`__Host-pos_session=pos_sess_${'A'.repeat(43)}`)).statusCode).toBe(401);
    h.clock.t += AUTH.sessionTtlS * 1000;
    expect((await me(s.cookie)).statusCode).toBe(401);

    const s2 = await session('alice');
    const noCsrf = await h.app.inject({
      method: 'POST',
      url: '/v1/auth/logout',
      payload: {},
      headers: { cookie: s2.cookie },
    });
    expect(noCsrf.statusCode).toBe(403);
    const out = await h.app.inject({
      method: 'POST',
      url: '/v1/auth/logout',
      payload: {},
      headers: { cookie: s2.cookie, 'x-csrf-token': s2.csrf },
    });
    expect(out.statusCode).toBe(200);
    expect(String(out.headers['set-cookie'])).toMatch(/^__Host-pos_session=; Path=\/; Max-Age=0;/);
    expect((await me(s2.cookie)).statusCode).toBe(401);
    expect((await auditActions()).filter((a) => a.action === 'auth.logout')).toHaveLength(1);
  });

  it('a password change ends the sessions and lifts a lock-out', async () => {
    const id = await addUser('alice');
    const s = await session('alice');
    for (let i = 0; i < AUTH.maxLoginFailures; i++) await login('alice', 'wrong password number');
    const set = await h.admin('POST', `/v1/users/${id}/password`, { password: 'a brand new password' });
    expect(set.json()).toMatchObject({ sessionsEnded: 1 });
    expect(
      (await h.app.inject({ method: 'GET', url: '/v1/auth/me', headers: { cookie: s.cookie } })).statusCode,
    ).toBe(401);
    expect((await login('alice', PASSWORD)).statusCode).toBe(401);
    expect((await login('alice', 'a brand new password')).statusCode).toBe(200);
  });
});

describe('API tokens', () => {
  async function token(
    body: Record<string, unknown>,
  ): Promise<{ tokenId: string; token: string; expiresAt: number }> {
    const res = await h.admin('POST', '/v1/tokens', body);
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  }
  const me = (t: string): Promise<LightMyRequestResponse> =>
    h.app.inject({ method: 'GET', url: '/v1/auth/me', headers: { authorization: `Bearer ${t}` } });

  it('shown once, stored hashed, listed without it; expires; revoked; both audited without the token', async () => {
    const t = await token({ label: 'ci', role: 'auditor', expiresInS: 600 });
    expect(t.token).toMatch(/^pos_auditor_[A-Za-z0-9_-]{43}$/);
    expect(t.expiresAt).toBe(h.clock.now() + 600_000);
    expect((await me(t.token)).json()).toMatchObject({
      via: 'token',
      role: 'auditor',
      actor: `token:${t.tokenId}`,
    });
    const list = await h.admin('GET', '/v1/tokens');
    expect(list.body).not.toContain(t.token);
    expect(list.json<{ tokens: { tokenId: string }[] }>().tokens.map((x) => x.tokenId)).toContain(t.tokenId);
    expect(JSON.stringify(await h.store.listApiTokens())).not.toContain(t.token);

    h.clock.t += 600_000;
    expect((await me(t.token)).statusCode).toBe(401);

    const u = await token({ label: 'ops', role: 'operator', expiresInS: 600 });
    expect((await me(u.token)).statusCode).toBe(200);
    expect((await h.admin('DELETE', `/v1/tokens/${u.tokenId}`)).statusCode).toBe(200);
    expect((await me(u.token)).statusCode).toBe(401);
    expect((await h.admin('DELETE', '/v1/tokens/tok_absent')).statusCode).toBe(404);
    const audit = await auditActions();
    expect(audit.filter((a) => a.action === 'token.create')).toHaveLength(2);
    expect(audit.filter((a) => a.action === 'token.revoke')).toHaveLength(1);
    expect(JSON.stringify(audit)).not.toContain(u.token);
  });

  it('the first-start admin token (no expiry) keeps working; a malformed or PosTicket header is 401', async () => {
    expect((await me(h.adminToken)).json()).toMatchObject({ role: 'admin', expiresAt: null });
    for (const authorization of [
      `Bearer ${h.adminToken}x`,
      `PosTicket ${h.adminToken}`,
      'Bearer ',
      h.adminToken,
    ]) {
      const res = await h.app.inject({ method: 'GET', url: '/v1/auth/me', headers: { authorization } });
      expect(res.statusCode).toBe(401);
    }
  });

  it('scopes: a merchant token names an existing merchant, an admin is provider-wide; lifetime is bounded', async () => {
    const m = (await h.admin('POST', '/v1/merchants', { name: 'A' })).json<{ merchantId: string }>()
      .merchantId;
    for (const body of [
      { label: 'x', role: 'merchant', expiresInS: 600 },
      { label: 'x', role: 'admin', merchantId: m, expiresInS: 600 },
      { label: 'x', role: 'operator', merchantId: 'mer_absent', expiresInS: 600 },
    ]) {
      const res = await h.admin('POST', '/v1/tokens', body);
      expect(res.statusCode).toBe(400);
      expect(code(res)).toBe('POS_ERR_USER_SCOPE_INVALID');
    }
    const tooLong = await h.admin('POST', '/v1/tokens', {
      label: 'x',
      role: 'operator',
      expiresInS: AUTH.maxTokenLifetimeS + 1,
    });
    expect(tooLong.statusCode).toBe(400);
    const ok = await token({ label: 'shop', role: 'merchant', merchantId: m, expiresInS: 600 });
    expect((await me(ok.token)).json()).toMatchObject({ role: 'merchant', merchantId: m });
  });
});

describe('users', () => {
  it('password policy: at least 12 characters; usernames are unique (case-insensitive); audited without the password', async () => {
    const short = await h.admin('POST', '/v1/users', {
      username: 'bob',
      password: 'short pass',
      role: 'operator',
    });
    expect(short.statusCode).toBe(400);
    expect(code(short)).toBe('POS_ERR_PASSWORD_POLICY');
    await addUser('bob');
    const dup = await h.admin('POST', '/v1/users', { username: 'BOB', password: PASSWORD, role: 'operator' });
    expect(dup.statusCode).toBe(409);
    expect(code(dup)).toBe('POS_ERR_OPERATOR_EXISTS');
    const list = await h.admin('GET', '/v1/users');
    expect(list.json<{ users: { username: string }[] }>().users.map((u) => u.username)).toEqual(['bob']);
    expect(list.body).not.toContain('scrypt');
    const audit = await auditActions();
    expect(audit.filter((a) => a.action === 'user.create')).toHaveLength(1);
    expect(JSON.stringify(audit)).not.toContain(PASSWORD);
    expect((await h.admin('POST', '/v1/users/usr_absent/disable', {})).statusCode).toBe(404);
    expect((await h.admin('POST', '/v1/users/usr_absent/password', { password: PASSWORD })).statusCode).toBe(
      404,
    );
  });

  it("a merchant user sees only its merchant's terminals list and may create its enrollment codes", async () => {
    const a = (await h.admin('POST', '/v1/merchants', { name: 'A' })).json<{ merchantId: string }>()
      .merchantId;
    const b = (await h.admin('POST', '/v1/merchants', { name: 'B' })).json<{ merchantId: string }>()
      .merchantId;
    await addUser('shop-a', 'merchant', a);
    const s = await session('shop-a');
    const headers = { cookie: s.cookie, 'x-csrf-token': s.csrf };
    const own = await h.app.inject({
      method: 'POST',
      url: `/v1/merchants/${a}/enrollment-codes`,
      payload: {},
      headers,
    });
    expect(own.statusCode).toBe(201);
    const other = await h.app.inject({
      method: 'POST',
      url: `/v1/merchants/${b}/enrollment-codes`,
      payload: {},
      headers,
    });
    expect(other.statusCode).toBe(404);
    expect(code(other)).toBe('POS_ERR_MERCHANT_UNKNOWN');
    const listed = await h.app.inject({ method: 'GET', url: '/v1/merchants', headers });
    expect(listed.json<{ merchants: { merchantId: string }[] }>().merchants.map((m) => m.merchantId)).toEqual(
      [a],
    );
  });
});
