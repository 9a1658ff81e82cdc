/**
 * Login hardening (security review issue 5, findings 4, 5, 8, 12, 13): attempts are reserved before the
 * password check (a concurrent burst cannot outrun the lock-out), the client address is the proxy's
 * hop and an IPv6 /64, the lock-out is per (username, address) with an account-wide budget that a
 * known address passes, unknown users cost the same store calls, a disabled user's tokens end.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_AUTH_CONFIG, type AuthConfig } from '../../src/server/auth/config';
import { hashPassword } from '../../src/server/auth/passwords';
import type { Store } from '../../src/store/types';
import { makeHarness, type Harness } from '../helpers';

const PASSWORD = 'correct horse battery staple';
const AUTH: AuthConfig = {
  ...DEFAULT_AUTH_CONFIG,
  scryptN: 1024,
  maxLoginFailures: 3,
  lockoutS: 600,
  loginAttemptsPerIp: 10,
  maxLoginAttemptsPerUser: 8,
};

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function harness(over: Partial<AuthConfig> = {}, trustProxy = false): Promise<Harness> {
  h = await makeHarness({ auth: { ...AUTH, ...over }, trustProxy });
  return h;
}

async function addUser(
  hh: Harness,
  username: string,
  role: 'admin' | 'operator' = 'operator',
): Promise<string> {
  const res = await hh.admin('POST', '/v1/users', { username, password: PASSWORD, role });
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ userId: string }>().userId;
}

function login(
  hh: Harness,
  username: string,
  password: string,
  ip = '10.0.0.1',
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return hh.app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { username, password },
    remoteAddress: ip,
    headers,
  });
}

describe('lock-out under concurrency (#4)', () => {
  it('a concurrent burst of wrong guesses and the right password: the right one past the limit is refused', async () => {
    const hh = await harness({ loginAttemptsPerIp: 1000, maxLoginAttemptsPerUser: 1000 });
    await addUser(hh, 'alice');
    const guesses = Array.from({ length: 30 }, (_, i) => `wrong password number ${i}`);
    guesses.push(PASSWORD);
    const res = await Promise.all(guesses.map((p) => login(hh, 'alice', p)));
    const codes = res.map((r) => r.statusCode);
    expect(codes.filter((c) => c === 200)).toEqual([]);
    expect(codes.every((c) => c === 401)).toBe(true);
    // The right password still fails from this address until the lock-out has passed.
    expect((await login(hh, 'alice', PASSWORD)).statusCode).toBe(401);
    hh.clock.t += AUTH.lockoutS * 1000 + 1;
    expect((await login(hh, 'alice', PASSWORD)).statusCode).toBe(200);
  });
});

describe('client address (#5)', () => {
  it('behind a proxy, the address is the hop the proxy appended: a forged left-most X-Forwarded-For gets no new bucket', async () => {
    const hh = await harness({}, true);
    await addUser(hh, 'alice');
    const codes: number[] = [];
    for (let i = 0; i < 30; i++) {
      const forged = `198.18.${i}.${i + 1}`;
      const r = await login(hh, `user${i}`, 'whatever password', '10.9.9.9', {
        'x-forwarded-for': `${forged}, 203.0.113.7`,
      });
      codes.push(r.statusCode);
    }
    expect(codes.slice(0, AUTH.loginAttemptsPerIp).every((c) => c === 401)).toBe(true);
    expect(codes.slice(AUTH.loginAttemptsPerIp).every((c) => c === 429)).toBe(true);
    // Another client behind the same proxy is not affected.
    const other = await login(hh, 'alice', PASSWORD, '10.9.9.9', { 'x-forwarded-for': '203.0.113.8' });
    expect(other.statusCode).toBe(200);
    const audit = await hh.store.listAudit(0, 1000);
    expect(audit.find((a) => a.action === 'auth.login.rate-limited')?.actor).toBe('ip:203.0.113.7');
  });

  it('IPv6 addresses share a bucket per /64 (and an IPv4-mapped address is its IPv4 address)', async () => {
    const hh = await harness();
    await addUser(hh, 'alice');
    for (let i = 0; i < AUTH.loginAttemptsPerIp; i++) {
      const r = await login(
        hh,
        `user${i}`,
        'whatever password',
        `2001:db8:1:2:${(i + 1).toString(16)}::${i + 7}`,
      );
      expect(r.statusCode).toBe(401);
    }
    expect((await login(hh, 'alice', PASSWORD, '2001:db8:1:2:ffff:ffff:ffff:ffff')).statusCode).toBe(429);
    expect((await login(hh, 'alice', PASSWORD, '2001:db8:1:3::1')).statusCode).toBe(200);
    for (let i = 0; i < AUTH.loginAttemptsPerIp; i++)
      await login(hh, `v${i}`, 'whatever password', '192.0.2.5');
    expect((await login(hh, 'alice', PASSWORD, '::ffff:192.0.2.5')).statusCode).toBe(429);
  });

  it('a username has an attempt budget across addresses: many addresses cannot keep guessing', async () => {
    const hh = await harness();
    await addUser(hh, 'alice');
    for (let i = 0; i < AUTH.maxLoginAttemptsPerUser; i++) {
      expect((await login(hh, 'alice', `wrong password ${i}`, `198.51.100.${i + 1}`)).statusCode).toBe(401);
    }
    // The right password from a new address is refused while the budget is spent.
    expect((await login(hh, 'alice', PASSWORD, '198.51.100.200')).statusCode).toBe(401);
    const audit = await hh.store.listAudit(0, 1000);
    expect(audit.some((a) => a.action === 'auth.lockout' && a.data['scope'] === 'account')).toBe(true);
    hh.clock.t += AUTH.lockoutS * 1000 + 1;
    expect((await login(hh, 'alice', PASSWORD, '198.51.100.200')).statusCode).toBe(200);
  });
});

describe('lock-out is not a cheap denial of service (#8)', () => {
  it('failures from one address lock that address out, not the user on another address', async () => {
    const hh = await harness();
    await addUser(hh, 'alice');
    for (let i = 0; i < AUTH.maxLoginFailures; i++) {
      expect((await login(hh, 'alice', 'wrong password', '192.0.2.66')).statusCode).toBe(401);
    }
    expect((await login(hh, 'alice', PASSWORD, '192.0.2.66')).statusCode).toBe(401);
    expect((await login(hh, 'alice', PASSWORD, '192.0.2.10')).statusCode).toBe(200);
    const audit = await hh.store.listAudit(0, 1000);
    expect(audit.some((a) => a.action === 'auth.lockout' && a.data['scope'] === 'address')).toBe(true);
  });

  it('an account-wide lock (many addresses) does not stop a known address; a password reset lifts it', async () => {
    const hh = await harness();
    const id = await addUser(hh, 'alice');
    expect((await login(hh, 'alice', PASSWORD, '192.0.2.10')).statusCode).toBe(200);
    // An attacker spends the account budget from many addresses, at most maxLoginFailures each.
    for (let i = 0; i < AUTH.maxLoginAttemptsPerUser + 4; i++) {
      await login(hh, 'alice', 'wrong password', `198.51.100.${(i % 4) + 1}`);
    }
    expect((await login(hh, 'alice', PASSWORD, '203.0.113.50')).statusCode).toBe(401);
    const listed = async (): Promise<unknown> =>
      (await hh.admin('GET', '/v1/users'))
        .json<{ users: { username: string; loginLocked: boolean }[] }>()
        .users.find((u) => u.username === 'alice')?.loginLocked;
    expect(await listed()).toBe(true);
    // The operator's usual address still gets in.
    expect((await login(hh, 'alice', PASSWORD, '192.0.2.10')).statusCode).toBe(200);
    // Break glass: an admin sets the password; the account-wide lock is lifted.
    const pw = await hh.admin('POST', `/v1/users/${id}/password`, { password: 'another long password' });
    expect(pw.statusCode, pw.body).toBe(200);
    expect((await login(hh, 'alice', 'another long password', '203.0.113.50')).statusCode).toBe(200);
    expect(await listed()).toBe(false);
  });
});

describe('an admin sees and clears sign-in lock-outs', () => {
  type Listed = { userId: string; loginLocked: boolean; lockedUntil: number | null };
  const listed = async (hh: Harness, id: string): Promise<Listed | undefined> =>
    (await hh.admin('GET', '/v1/users')).json<{ users: Listed[] }>().users.find((u) => u.userId === id);

  it('GET /v1/users says until when the account-wide budget is spent (if no further attempt is made)', async () => {
    const hh = await harness();
    const id = await addUser(hh, 'alice');
    const start = hh.clock.now();
    // One attempt a second from distinct addresses (no per-address lock-out): budget minus one.
    for (let i = 0; i < AUTH.maxLoginAttemptsPerUser - 1; i++) {
      hh.clock.t = start + i * 1000;
      expect((await login(hh, 'alice', 'wrong password', `198.51.100.${i + 1}`)).statusCode).toBe(401);
    }
    expect(await listed(hh, id)).toMatchObject({ loginLocked: false, lockedUntil: null });
    // The last attempt of the budget: the next one from a new address is refused, right password or not.
    hh.clock.t = start + 20_000;
    await login(hh, 'alice', 'wrong password', '198.51.100.99');
    const window = AUTH.lockoutS * 1000;
    expect(await listed(hh, id)).toEqual(
      expect.objectContaining({ loginLocked: true, lockedUntil: start + window }),
    );
    hh.clock.t = start + window - 1;
    expect((await login(hh, 'alice', PASSWORD, '203.0.113.7')).statusCode).toBe(401);
    // That refused attempt counts too: the lock now ends when the second-oldest attempt leaves the window.
    expect((await listed(hh, id))?.lockedUntil).toBe(start + 1000 + window);
    hh.clock.t = start + 1000 + window;
    expect(await listed(hh, id)).toMatchObject({ loginLocked: false, lockedUntil: null });
    expect((await login(hh, 'alice', PASSWORD, '203.0.113.7')).statusCode).toBe(200);
  });

  it('POST /v1/users/:userId/unlock lifts the account-wide and the per-address lock-outs, audited; the password stays', async () => {
    const hh = await harness();
    const id = await addUser(hh, 'alice');
    // Alice mistypes from her address until it is locked out, and others spend the account budget.
    for (let i = 0; i < AUTH.maxLoginFailures; i++) await login(hh, 'alice', 'wrong password', '192.0.2.10');
    for (let i = 0; i < AUTH.maxLoginAttemptsPerUser; i++) {
      await login(hh, 'alice', 'wrong password', `198.51.100.${(i % 4) + 1}`);
    }
    expect((await login(hh, 'alice', PASSWORD, '192.0.2.10')).statusCode).toBe(401);
    expect((await login(hh, 'alice', PASSWORD, '203.0.113.50')).statusCode).toBe(401);
    const before = await listed(hh, id);
    expect(before?.loginLocked).toBe(true);

    const res = await hh.admin('POST', `/v1/users/${id}/unlock`, {});
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ userId: id, unlocked: true, wasLockedUntil: before?.lockedUntil });
    expect(await listed(hh, id)).toMatchObject({ loginLocked: false, lockedUntil: null });
    // Her own address and a new one get in again, with the same password.
    expect((await login(hh, 'alice', PASSWORD, '192.0.2.10')).statusCode).toBe(200);
    expect((await login(hh, 'alice', PASSWORD, '203.0.113.50')).statusCode).toBe(200);
    const audit = await hh.store.listAudit(0, 10_000);
    expect(audit.filter((a) => a.action === 'user.unlock')).toEqual([
      expect.objectContaining({
        actor: expect.stringMatching(/^token:/) as unknown,
        subject: `operator:${id}`,
        data: { wasLockedUntil: before?.lockedUntil },
      }),
    ]);
    // The count starts over: the per-address limit applies afresh after the unlock.
    for (let i = 0; i < AUTH.maxLoginFailures; i++) await login(hh, 'alice', 'wrong password', '192.0.2.11');
    expect((await login(hh, 'alice', PASSWORD, '192.0.2.11')).statusCode).toBe(401);
  });

  it('unlocking an unknown user is 404 POS_ERR_USER_UNKNOWN and appends nothing', async () => {
    const hh = await harness();
    const n = (await hh.store.listAudit(0, 10_000)).length;
    const res = await hh.admin('POST', '/v1/users/usr_absent/unlock', {});
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: { code: 'POS_ERR_USER_UNKNOWN' } });
    expect(await hh.store.listAudit(0, 10_000)).toHaveLength(n);
  });
});

describe('unknown users look like known ones (#12)', () => {
  function record(store: Store, calls: string[]): void {
    const s = store as unknown as Record<string, unknown>;
    // Every method, own or inherited (the SQLite store keeps its methods on a prototype).
    const names: string[] = [];
    for (const name in s) names.push(name);
    for (const name of names) {
      const f = s[name];
      if (typeof f !== 'function' || name === 'listAudit') continue;
      s[name] = (...args: unknown[]): unknown => {
        calls.push(name);
        return (f as (...a: unknown[]) => unknown).apply(store, args);
      };
    }
  }

  it('an unknown user and a known user with a wrong password make the same store calls', async () => {
    const hh = await harness();
    await addUser(hh, 'alice');
    await login(hh, 'warmup-unknown', 'whatever password', '192.0.2.1');
    const known: string[] = [];
    const unknown: string[] = [];
    const calls: string[] = [];
    record(hh.store, calls);
    expect((await login(hh, 'alice', 'wrong password', '192.0.2.2')).statusCode).toBe(401);
    known.push(...calls.splice(0));
    expect((await login(hh, 'nobody', 'wrong password', '192.0.2.3')).statusCode).toBe(401);
    unknown.push(...calls.splice(0));
    expect(known.length).toBeGreaterThan(2);
    expect(unknown).toEqual(known);
  });

  it('a hash made with another cost is rehashed with the configured cost on a successful login', async () => {
    const hh = await harness();
    const id = await addUser(hh, 'alice');
    expect(await hh.store.setOperatorPassword(id, await hashPassword(PASSWORD, 512))).toBe(true);
    expect((await login(hh, 'alice', PASSWORD)).statusCode).toBe(200);
    expect((await hh.store.getOperator(id))?.passwordHash).toMatch(/^scrypt\$1024\$8\$1\$/);
    expect((await login(hh, 'alice', PASSWORD)).statusCode).toBe(200);
  });
});

describe('disabling a user ends the tokens they made (#13)', () => {
  it('tokens created by the user, and tokens created with those, are revoked; others keep working', async () => {
    const hh = await harness();
    const id = await addUser(hh, 'boss', 'admin');
    const res = await login(hh, 'boss', PASSWORD);
    const cookie = String(res.headers['set-cookie']).split(';')[0] ?? '';
    const csrf = res.json<{ csrfToken: string }>().csrfToken;
    const made = await hh.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { cookie, 'x-csrf-token': csrf },
      payload: { label: 'ci', role: 'admin', expiresInS: 3600 },
    });
    expect(made.statusCode, made.body).toBe(201);
    const token = made.json<{ token: string }>().token;
    const child = await hh.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { authorization: `Bearer ${token}` },
      payload: { label: 'child', role: 'auditor', expiresInS: 3600 },
    });
    expect(child.statusCode, child.body).toBe(201);
    const childToken = child.json<{ token: string }>().token;
    const other = await hh.admin('POST', '/v1/tokens', { label: 'other', role: 'auditor', expiresInS: 3600 });
    const otherToken = other.json<{ token: string }>().token;
    const me = (t: string): Promise<LightMyRequestResponse> =>
      hh.app.inject({ method: 'GET', url: '/v1/auth/me', headers: { authorization: `Bearer ${t}` } });
    expect((await me(token)).statusCode).toBe(200);
    const dis = await hh.admin('POST', `/v1/users/${id}/disable`, {});
    expect(dis.statusCode, dis.body).toBe(200);
    expect(dis.json()).toMatchObject({ disabled: true, sessionsEnded: 1, tokensRevoked: 2 });
    expect((await me(token)).statusCode).toBe(401);
    expect((await me(childToken)).statusCode).toBe(401);
    expect((await me(otherToken)).statusCode).toBe(200);
    const audit = await hh.store.listAudit(0, 1000);
    expect(audit.find((a) => a.action === 'user.disable')?.data['tokensRevoked']).toBe(2);
  });

  it('a token created while its creator is being disabled is taken back (the disable listed the tokens first)', async () => {
    const hh = await harness();
    const id = await addUser(hh, 'boss', 'admin');
    const res = await login(hh, 'boss', PASSWORD);
    const cookie = String(res.headers['set-cookie']).split(';')[0] ?? '';
    const csrf = res.json<{ csrfToken: string }>().csrfToken;
    // The disable runs after the request authenticated, just before the token row is stored.
    const store = hh.store as unknown as { createApiTokenAudited: Store['createApiTokenAudited'] };
    const real = hh.store.createApiTokenAudited.bind(hh.store);
    let disabled: LightMyRequestResponse | undefined;
    store.createApiTokenAudited = async (row, draft, chain) => {
      if (row.label === 'racy') disabled = await hh.admin('POST', `/v1/users/${id}/disable`, {});
      return real(row, draft, chain);
    };
    const made = await hh.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { cookie, 'x-csrf-token': csrf },
      payload: { label: 'racy', role: 'admin', expiresInS: 3600 },
    });
    expect(disabled?.json()).toMatchObject({ disabled: true, tokensRevoked: 0 });
    expect(made.statusCode).toBe(401);
    const row = (await hh.store.listApiTokens()).find((t) => t.label === 'racy');
    expect(row?.revokedAt).not.toBeNull();
    expect(row?.createdBy).toBe(`operator:${id}`);
    // Its creation and its taking back are both audited.
    const audit = (await hh.store.listAudit(0, 1000)).filter((a) => a.subject === row?.id);
    expect(audit.map((a) => a.action)).toEqual(['token.create', 'token.revoke']);
  });
});
