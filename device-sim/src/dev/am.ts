/**
 * DEVELOPMENT ONLY: a stand-in for the A&M back-end's ticket signer, for the benchmark, demos and
 * tests that run the simulator without a back-end. Signs compact JWS ES256 tickets in the shared
 * ticket format with a fresh P-256 key (node:crypto), and gives its public JWKS to trust.
 */
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import {
  parseBase64url,
  TICKET_AUDIENCE,
  TICKET_TYPE,
  toBase64url,
  type P256Jwk,
  type TicketClaims,
} from '@pos/shared';

export interface DevAm {
  readonly kid: string;
  readonly jwks: { keys: P256Jwk[] };
  /** Signs a ticket; every claim has a valid default (a 60 s pin-entry ticket). */
  sign(claims: Partial<TicketClaims>): string;
}

export function devAm(kid = 'dev-am-1'): DevAm {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const pub: P256Jwk = {
    kty: 'EC',
    crv: 'P-256',
    x: jwk.x ?? '',
    y: jwk.y ?? '',
    kid,
    alg: 'ES256',
    use: 'sig',
  };
  return {
    kid,
    jwks: { keys: [pub] },
    sign: (claims) => signTicketJws(privateKey, kid, claims),
  };
}

function signTicketJws(key: KeyObject, kid: string, claims: Partial<TicketClaims>): string {
  const now = Math.floor(Date.now() / 1000);
  const full = {
    iss: 'urn:pos:am:dev',
    sub: 'terminal-dev',
    aud: TICKET_AUDIENCE,
    iat: now,
    exp: now + 60,
    jti: randomUUID(),
    cnf: { jkt: 'A'.repeat(43) },
    rsn: 'unknown',
    mid: 'merchant-dev',
    use: 'pin-entry' as const,
    tier: 'affirming' as const,
    perm: ['transact', 'pin-entry'] as ('transact' | 'pin-entry')[],
    ...claims,
  };
  const enc = (v: unknown): string => toBase64url(new TextEncoder().encode(JSON.stringify(v)));
  const input = `${enc({ alg: 'ES256', kid, typ: TICKET_TYPE })}.${enc(full)}`;
  const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${toBase64url(new Uint8Array(sig))}`;
}

/** A fresh P-256 key pair as the raw 32-byte secret and the uncompressed public key (65 bytes). */
export function newP256KeyPair(): { secretKey: Uint8Array; publicKey: Uint8Array } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  const d = parseBase64url(jwk.d ?? '');
  const x = parseBase64url(jwk.x ?? '');
  const y = parseBase64url(jwk.y ?? '');
  if (!d.ok || !x.ok || !y.ok) throw new Error('node:crypto returned a malformed JWK');
  const publicKey = new Uint8Array(65);
  publicKey[0] = 4;
  publicKey.set(x.bytes, 1);
  publicKey.set(y.bytes, 33);
  return { secretKey: d.bytes, publicKey };
}
