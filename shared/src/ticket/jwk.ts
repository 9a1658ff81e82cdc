/**
 * P-256 public keys as JWK (RFC 7517/7518) and their RFC 7638 thumbprints, which bind a ticket to a
 * terminal's device key (`cnf.jkt`, RFC 7800).
 */
import { p256 } from '@noble/curves/nist.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { z } from 'zod';
import { concatBytes, parseBase64url, toBase64url } from '../bytes';
import { err, ok, type Result } from '../result';

export const P256JwkSchema = z.object({
  kty: z.literal('EC'),
  crv: z.literal('P-256'),
  x: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  y: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  kid: z.string().min(1).max(128).optional(),
  alg: z.literal('ES256').optional(),
  use: z.literal('sig').optional(),
});
export type P256Jwk = z.infer<typeof P256JwkSchema>;

/** A P-256 public key as JWK, from its uncompressed (65-byte) or compressed (33-byte) SEC1 form. */
export function jwkFromPublicKey(publicKey: Uint8Array, kid?: string): P256Jwk {
  const raw = p256.Point.fromBytes(publicKey).toBytes(false);
  return {
    kty: 'EC',
    crv: 'P-256',
    x: toBase64url(raw.subarray(1, 33)),
    y: toBase64url(raw.subarray(33, 65)),
    ...(kid === undefined ? {} : { kid }),
  };
}

/** The uncompressed SEC1 public key of a JWK, after checking that the point is on the curve. */
export function publicKeyFromJwk(jwk: unknown): Result<{ publicKey: Uint8Array; jwk: P256Jwk }> {
  const parsed = P256JwkSchema.safeParse(jwk);
  if (!parsed.success) return err('POS_ERR_JWK_INVALID', 'the key is not a P-256 EC public JWK');
  const x = parseBase64url(parsed.data.x);
  const y = parseBase64url(parsed.data.y);
  if (!x.ok || !y.ok || x.bytes.length !== 32 || y.bytes.length !== 32) {
    return err('POS_ERR_JWK_INVALID', 'x and y must be 32-byte base64url values');
  }
  const publicKey = concatBytes(Uint8Array.of(0x04), x.bytes, y.bytes);
  try {
    p256.Point.fromBytes(publicKey).assertValidity();
  } catch {
    return err('POS_ERR_JWK_INVALID', 'the point is not on the P-256 curve');
  }
  return ok({ publicKey, jwk: parsed.data });
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url) of a P-256 key: members crv, kty, x, y in that order. */
export function jwkThumbprint(jwk: Pick<P256Jwk, 'crv' | 'kty' | 'x' | 'y'>): string {
  const canonical = `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`;
  return toBase64url(sha256(utf8ToBytes(canonical)));
}
