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
 * changes with the stored password hash (`passwordEpoch`), so setting a password, over the API or the
 * CLI, starts every lock-out of the account over.
 */
export const loginPairKey = (address: string, username: string, epoch: string): string =>
  `auth:login:pair:${address}|${epoch}|${nameTag(username)}`;
/** Attempts for one username from every address (the account-wide budget); `epoch` as above. */
export const loginUserKey = (username: string, epoch: string): string =>
  `auth:login:user:${epoch}|${nameTag(username)}`;
/** Successful logins for one username from one address (a known address). */
export const loginKnownKey = (address: string, username: string): string =>
  `auth:login:ok:${address}|${nameTag(username)}`;

/** A short digest of the stored password hash (`none` for an unknown user): changes when the password is set. */
export const passwordEpoch = (passwordHash: string | undefined): string =>
  passwordHash === undefined ? 'none' : createHash('sha256').update(passwordHash).digest('hex').slice(0, 16);
