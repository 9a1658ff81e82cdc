import { createHash, createHmac } from 'node:crypto';
import type { KeyRing } from '../../keys/keyring';

/**
 * Store keys of login throttling (velocity events). The username (lower-cased) appears only as an
 * HMAC-SHA-256 tag under a key derived from the master key: a "username" may be a password typed into
 * the wrong field, and the keys stay in the store for about a month (the velocity purge's cutoff), so
 * a copy of the store must not let anyone test guesses against them (an unsalted digest would). The
 * same master key gives the same keys in every process (they share the counts); another master key
 * gives other keys. The address is a bucket from address.ts (never contains `|`), so the keys cannot
 * collide.
 */
export interface LoginThrottleKeys {
  /**
   * Attempts for one username from one address (the per-address lock-out), reset by a success. `epoch`
   * (`throttleEpoch`) changes with the stored password hash and the operator's `loginEpoch`, so setting
   * a password (API or CLI) or an admin clearing the lock-outs (`POST /v1/users/:userId/unlock`) starts
   * every lock-out of the account over.
   */
  pair(address: string, username: string, epoch: string): string;
  /** Attempts for one username from every address (the account-wide budget); `epoch` as above. */
  user(username: string, epoch: string): string;
  /** Successful logins for one username from one address (a known address). */
  known(address: string, username: string): string;
}

/** Attempts from any address (per-address rate limit, across accounts): no username in it. */
export const loginIpKey = (address: string): string => `auth:login:ip:${address}`;

/** The keys whose username tags `mac` makes (HMAC-SHA-256 of `login-name:<username>`, hex). */
function throttleKeysWith(mac: (text: string) => Buffer): LoginThrottleKeys {
  const nameTag = (username: string): string => mac(`login-name:${username}`).toString('hex').slice(0, 32);
  return {
    pair: (address, username, epoch) => `auth:login:pair:${address}|${epoch}|${nameTag(username)}`,
    user: (username, epoch) => `auth:login:user:${epoch}|${nameTag(username)}`,
    known: (address, username) => `auth:login:ok:${address}|${nameTag(username)}`,
  };
}

/** The keys under an HMAC key given as bytes (tests; the service uses `loginThrottleKeys`). */
export function throttleKeysUnder(key: Uint8Array): LoginThrottleKeys {
  return throttleKeysWith((text) => createHmac('sha256', key).update(text).digest());
}

const derived = new WeakMap<object, LoginThrottleKeys>();

/**
 * The login throttle's keys of this master key: username tags under the key ring's login-throttle
 * subkey (`deriveSubkey(master, 'login-throttle v1')`, keys/keyring.ts), which nothing else uses.
 */
export function loginThrottleKeys(ring: Pick<KeyRing, 'loginThrottleMac'>): LoginThrottleKeys {
  let keys = derived.get(ring);
  if (keys === undefined) {
    keys = throttleKeysWith((text) => ring.loginThrottleMac(Buffer.from(text, 'utf8')));
    derived.set(ring, keys);
  }
  return keys;
}

/**
 * A short digest of the stored password hash and the login epoch (`none` for an unknown user): changes
 * when the password is set or the lock-outs are cleared. Epoch 0 digests the hash alone. (The stored
 * hash is salted scrypt output, so its digest gives nothing to guess against.)
 */
export function throttleEpoch(
  user: { readonly passwordHash: string; readonly loginEpoch: number } | undefined,
): string {
  if (user === undefined) return 'none';
  const material = user.loginEpoch === 0 ? user.passwordHash : `${user.passwordHash}\n${user.loginEpoch}`;
  return createHash('sha256').update(material).digest('hex').slice(0, 16);
}
