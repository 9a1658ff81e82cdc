/**
 * The A&M ticket-signing keys the reader trusts: a JWKS (RFC 7517) of P-256 public keys, each with a
 * `kid`. Stored as `trust.json` in the state directory; replaced as a whole by `pos-reader-sim trust`.
 */
import { err, ok, publicKeyFromJwk, type P256Jwk, type Result, type TrustedTicketKey } from '@pos/shared';
import { z } from 'zod';
import type { SimCode } from '../result';
import { readJson, writeJsonAtomic } from './files';

export const TRUST_FILE = 'trust.json';
/** More keys than any rotation needs: the limit keeps a hostile JWKS small. */
export const TRUST_MAX_KEYS = 16;

export const JwksSchema = z.object({
  keys: z
    .array(z.object({ kid: z.string().min(1).max(128) }).loose())
    .min(1)
    .max(TRUST_MAX_KEYS),
});

const TrustFileSchema = z.strictObject({
  version: z.literal(1),
  jwks: JwksSchema,
});

/** Parses a JWKS into trusted keys. Keys that are not P-256 public keys make the whole set invalid. */
export function parseJwks(
  value: unknown,
): Result<{ keys: TrustedTicketKey[]; jwks: { keys: P256Jwk[] } }, SimCode> {
  const parsed = JwksSchema.safeParse(value);
  if (!parsed.success) {
    return err(
      'POS_ERR_SIM_TRUST_INVALID',
      `a JWKS has "keys": 1 to ${TRUST_MAX_KEYS} keys, each with a kid`,
    );
  }
  const keys: TrustedTicketKey[] = [];
  const jwks: P256Jwk[] = [];
  for (const k of parsed.data.keys) {
    if ('d' in k)
      return err('POS_ERR_SIM_TRUST_INVALID', 'the JWKS holds a private key; give public keys only');
    const pub = publicKeyFromJwk(k);
    if (!pub.ok)
      return err('POS_ERR_SIM_TRUST_INVALID', `key ${k.kid.slice(0, 40)} is not a P-256 public key`);
    if (keys.some((x) => x.kid === k.kid)) return err('POS_ERR_SIM_TRUST_INVALID', 'two keys share a kid');
    keys.push({ kid: k.kid, publicKey: pub.publicKey });
    jwks.push({ kty: 'EC', crv: 'P-256', x: pub.jwk.x, y: pub.jwk.y, kid: k.kid });
  }
  return ok({ keys, jwks: { keys: jwks } });
}

/** The trusted keys in the state directory (an empty list when none were given yet). */
export function loadTrust(dir: string): Result<{ keys: TrustedTicketKey[] }, SimCode> {
  const file = readJson(dir, TRUST_FILE, TrustFileSchema);
  if (!file.ok) return file;
  if (file.value === undefined) return ok({ keys: [] });
  const parsed = parseJwks(file.value.jwks);
  if (!parsed.ok) return err('POS_ERR_SIM_STATE_CORRUPT', `${TRUST_FILE} holds an invalid JWKS`);
  return ok({ keys: parsed.keys });
}

/** Replaces the trusted keys with a JWKS (checked first). */
export function saveTrust(dir: string, jwksValue: unknown): Result<{ keys: TrustedTicketKey[] }, SimCode> {
  const parsed = parseJwks(jwksValue);
  if (!parsed.ok) return parsed;
  const written = writeJsonAtomic(dir, TRUST_FILE, { version: 1, jwks: parsed.jwks });
  if (!written.ok) return written;
  return ok({ keys: parsed.keys });
}
