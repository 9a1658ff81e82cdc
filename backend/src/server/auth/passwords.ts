/**
 * Password hashes: scrypt (node:crypto), stored as `scrypt$N$r$p$salt$hash` (salt 16 bytes, hash 32
 * bytes, both base64url). Verification uses the parameters stored with the hash and compares in
 * constant time; an unknown user is checked against a dummy hash so the answer takes as long.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
const KEY_LEN = 32;
const SALT_LEN = 16;
/** The largest N accepted from a stored hash (bounds the memory a stored row can make us spend). */
const MAX_N = 2 ** 20;
export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 1024;

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(
      password.normalize('NFC'),
      salt,
      KEY_LEN,
      { N: n, r, p, maxmem: 256 * n * r * p + 1024 * 1024 },
      (error, key) => {
        if (error === null) resolve(key);
        else reject(error);
      },
    );
  });
}

export async function hashPassword(password: string, n: number): Promise<string> {
  const salt = randomBytes(SALT_LEN);
  const key = await derive(password, salt, n, SCRYPT_R, SCRYPT_P);
  return `scrypt$${n}$${SCRYPT_R}$${SCRYPT_P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

interface Parsed {
  readonly n: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly key: Buffer;
}

function parseHash(stored: string): Parsed | undefined {
  const m = /^scrypt\$(\d{1,8})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9_-]{16,64})\$([A-Za-z0-9_-]{43})$/.exec(
    stored,
  );
  if (m === null) return undefined;
  const n = Number(m[1]);
  const r = Number(m[2]);
  const p = Number(m[3]);
  if (n < 2 || n > MAX_N || (n & (n - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16) return undefined;
  return { n, r, p, salt: Buffer.from(m[4] ?? '', 'base64url'), key: Buffer.from(m[5] ?? '', 'base64url') };
}

/** True when `password` matches `stored`; false for a wrong password or a malformed hash (never throws). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (parsed === undefined) return false;
  try {
    const key = await derive(password, parsed.salt, parsed.n, parsed.r, parsed.p);
    return key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
  } catch {
    return false;
  }
}

/** True when `stored` is a well-formed hash made with cost `n` and this module's r and p. */
export function hashHasCost(stored: string, n: number): boolean {
  const parsed = parseHash(stored);
  return parsed !== undefined && parsed.n === n && parsed.r === SCRYPT_R && parsed.p === SCRYPT_P;
}

const dummies = new Map<number, Promise<string>>();
/** A hash of a random password with cost `n`, made once per process: what an unknown user is checked against. */
export function dummyHash(n: number): Promise<string> {
  let d = dummies.get(n);
  if (d === undefined) {
    d = hashPassword(randomBytes(16).toString('base64url'), n);
    dummies.set(n, d);
  }
  return d;
}

/** The password policy: at least 12 characters (code points), at most 1024. */
export function passwordPolicyError(password: string): string | undefined {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) return `a password has at least ${MIN_PASSWORD_LENGTH} characters`;
  if (length > MAX_PASSWORD_LENGTH) return `a password has at most ${MAX_PASSWORD_LENGTH} characters`;
  return undefined;
}
