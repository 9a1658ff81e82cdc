/**
 * The login throttle's store keys: the username only as an HMAC tag under a subkey of the master key
 * (a password typed into the username field must not sit in the store as a digest anyone can test
 * guesses against), the same in every process with the same master key, other keys under another.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/keys/keyring';
import { loginIpKey, loginThrottleKeys, throttleEpoch } from '../../src/server/auth/throttle';
import { openSqliteStore } from '../../src/store/sqlite';
import type { Store } from '../../src/store/types';
import { makeHarness } from '../helpers';

const NAME = 'correct horse battery staple';

/** A key ring of `master` on its own store: what another process with that master key holds. */
async function ringOf(master: Uint8Array): Promise<{ ring: KeyRing; store: Store }> {
  const store = openSqliteStore({ path: ':memory:' });
  const opened = await KeyRing.open(store, master, Date.UTC(2026, 10, 29), { ticketLifetimeS: 60 });
  if (!opened.ok) throw new Error(opened.code);
  return { ring: opened.ring, store };
}

/** Every plain SHA-256 of the name the old keys used (hex), whole and as the old 32-character tag. */
function plainDigests(name: string): string[] {
  const digests = [name, `login-name:${name}`].map((m) => createHash('sha256').update(m).digest('hex'));
  return [...digests, ...digests.map((d) => d.slice(0, 32)), ...digests.map((d) => d.slice(0, 16))];
}

function keysFor(ring: KeyRing): string[] {
  const k = loginThrottleKeys(ring);
  return [k.pair('203.0.113.9', NAME, 'none'), k.user(NAME, 'none'), k.known('203.0.113.9', NAME)];
}

describe('login throttle keys', () => {
  it('hold no plain SHA-256 of the username, nor the username', async () => {
    const { ring, store } = await ringOf(randomBytes(32));
    try {
      for (const key of keysFor(ring)) {
        expect(key).not.toContain(NAME);
        for (const digest of plainDigests(NAME)) expect(key).not.toContain(digest);
      }
    } finally {
      await store.close();
    }
  });

  it('are the same for one username in one process and in another with the same master key; other under another master key', async () => {
    const master = randomBytes(32);
    const a = await ringOf(master);
    const b = await ringOf(Buffer.from(master));
    const other = await ringOf(randomBytes(32));
    try {
      const keys = keysFor(a.ring);
      expect(keysFor(a.ring)).toEqual(keys);
      expect(keysFor(b.ring)).toEqual(keys);
      const others = keysFor(other.ring);
      for (let i = 0; i < keys.length; i++) expect(others[i]).not.toBe(keys[i]);
      // Different usernames, different keys; the address and epoch stay readable (no secret in them).
      const k = loginThrottleKeys(a.ring);
      expect(k.user('alice', 'none')).not.toBe(k.user('alicf', 'none'));
      expect(k.pair('203.0.113.9', 'alice', 'e1')).toMatch(
        /^auth:login:pair:203\.0\.113\.9\|e1\|[0-9a-f]{32}$/,
      );
      expect(loginIpKey('203.0.113.9')).toBe('auth:login:ip:203.0.113.9');
    } finally {
      await Promise.all([a.store.close(), b.store.close(), other.store.close()]);
    }
  });

  it('a refused login is counted under the HMAC key of the service, not under the plain digest', async () => {
    const h = await makeHarness();
    try {
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { username: NAME, password: 'not-the-password' },
      });
      expect(res.statusCode).toBe(401);
      const now = h.clock.now();
      const key = loginThrottleKeys(h.keys).user(NAME, throttleEpoch(undefined));
      expect(await h.store.velocityCount(key, now, 60_000)).toBe(1);
      const oldTag = createHash('sha256').update(`login-name:${NAME}`).digest('hex').slice(0, 32);
      expect(await h.store.velocityCount(`auth:login:user:none|${oldTag}`, now, 60_000)).toBe(0);
    } finally {
      await h.close();
    }
  });
});
