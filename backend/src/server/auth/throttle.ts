import { createHash } from 'node:crypto';

/**
 * Store keys of login throttling (velocity events). The username (lower-cased) appears only as a
 * SHA-256 digest: a "username" may be a password typed into the wrong field, and must not be stored.
 * The address is a bucket from address.ts (never contains `|`), so the keys cannot collide.
 */

const nameTag = (username: string): string =>
  createHash('sha256').update(`login-name:${username}`).digest('hex').slice(0, 32);

/** Attempts from any address (per-address rate limit, across accounts). */
export const loginIpKey = (address: string): string => `auth:login:ip:${address}`;
/**
 * Attempts for one username from one address (the per-address lock-out), reset by a success. `epoch`
 * (`throttleEpoch`) changes with the stored password hash and the operator's `loginEpoch`, so setting
 * a password (API or CLI) or an admin clearing the lock-outs (`POST /v1/users/:userId/unlock`) starts
 * every lock-out of the account over.
 */
export const loginPairKey = (address: string, username: string, epoch: string): string =>
  `auth:login:pair:${address}|${epoch}|${nameTag(username)}`;
/** Attempts for one username from every address (the account-wide budget); `epoch` as above. */
export const loginUserKey = (username: string, epoch: string): string =>
  `auth:login:user:${epoch}|${nameTag(username)}`;
/** Successful logins for one username from one address (a known address). */
export const loginKnownKey = (address: string, username: string): string =>
  `auth:login:ok:${address}|${nameTag(username)}`;

/**
 * A short digest of the stored password hash and the login epoch (`none` for an unknown user): changes
 * when the password is set or the lock-outs are cleared. Epoch 0 digests the hash alone (the keys of
 * schema versions before 8, so an upgrade does not clear a lock-out in progress).
 */
export function throttleEpoch(
  user: { readonly passwordHash: string; readonly loginEpoch: number } | undefined,
): string {
  if (user === undefined) return 'none';
  const material = user.loginEpoch === 0 ? user.passwordHash : `${user.passwordHash}\n${user.loginEpoch}`;
  return createHash('sha256').update(material).digest('hex').slice(0, 16);
}
