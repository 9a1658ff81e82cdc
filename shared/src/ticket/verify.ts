/**
 * Verifies a back-end ticket with @noble/curves: small enough for a reader's firmware, the same code
 * in the terminal and in the browser. Every check has its own code; nothing throws.
 */
import { p256 } from '@noble/curves/nist.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { constantTimeEqual } from '../bytes';
import { jwsHeaderAlg, splitCompactJws } from '../jws';
import { err, ok, type Result } from '../result';
import {
  TICKET_AUDIENCE,
  TicketClaimsSchema,
  TicketHeaderSchema,
  type TicketClaims,
  type TicketHeader,
  type TicketPermission,
  type TicketUse,
} from './claims';

/** A ticket-signing key the verifier trusts: the back-end's JWKS, as uncompressed P-256 points. */
export interface TrustedTicketKey {
  readonly kid: string;
  readonly publicKey: Uint8Array;
}

export interface TicketExpectations {
  /** Verifier's clock, in seconds since the epoch. */
  readonly now: number;
  readonly use: TicketUse;
  readonly issuer?: string;
  readonly readerSerial?: string;
  /** RFC 7638 thumbprint of the key the presenter proved it holds. */
  readonly deviceKeyThumbprint?: string;
  /** pin-entry: the nonce the reader issued for this transaction (base64url). */
  readonly nonce?: string;
  readonly permission?: TicketPermission;
  /** Allowed clock difference, seconds (default 5). */
  readonly clockSkewS?: number;
  /** Longest lifetime accepted, seconds (default 300). */
  readonly maxLifetimeS?: number;
}

/** Size limit: a ticket is a few hundred bytes; anything far larger is refused before parsing. */
export const TICKET_MAX_LENGTH = 4096;

/** Splits and schema-checks a compact JWS ticket without verifying it. */
export function parseTicket(
  jws: string,
): Result<{ header: TicketHeader; claims: TicketClaims; signingInput: Uint8Array; signature: Uint8Array }> {
  if (typeof jws !== 'string' || jws.length > TICKET_MAX_LENGTH) {
    return err('POS_ERR_TICKET_MALFORMED', 'the ticket is not a string of acceptable size');
  }
  const parts = splitCompactJws(jws);
  if (parts === undefined) return err('POS_ERR_TICKET_MALFORMED', 'a ticket has three dot-separated parts');
  const header = TicketHeaderSchema.safeParse(parts.header);
  if (!header.success) {
    const alg = jwsHeaderAlg(parts.header);
    if (alg !== undefined && alg !== 'ES256')
      return err('POS_ERR_TICKET_ALGORITHM', 'only ES256 tickets are accepted');
    return err('POS_ERR_TICKET_MALFORMED', 'the ticket header is not {alg, kid, typ}');
  }
  const claims = TicketClaimsSchema.safeParse(parts.payload);
  if (!claims.success)
    return err('POS_ERR_TICKET_MALFORMED', 'the ticket claims do not have the expected shape');
  if (parts.signature === undefined) {
    return err('POS_ERR_TICKET_MALFORMED', 'an ES256 signature is 64 bytes of base64url');
  }
  return ok({
    header: header.data,
    claims: claims.data,
    signingInput: parts.signingInput,
    signature: parts.signature,
  });
}

const sameText = (a: string, b: string): boolean => constantTimeEqual(utf8ToBytes(a), utf8ToBytes(b));

/** Verifies signature, time, audience, kind and every binding the caller asks for. */
export function verifyTicket(
  jws: string,
  keys: readonly TrustedTicketKey[],
  expect: TicketExpectations,
): Result<{ claims: TicketClaims; kid: string }> {
  const parsed = parseTicket(jws);
  if (!parsed.ok) return parsed;
  const { header, claims } = parsed;
  const key = keys.find((k) => k.kid === header.kid);
  if (key === undefined) return err('POS_ERR_TICKET_KEY_UNKNOWN', 'the ticket key id is not trusted');
  let valid: boolean;
  try {
    valid = p256.verify(parsed.signature, parsed.signingInput, key.publicKey, { prehash: true, lowS: false });
  } catch {
    valid = false;
  }
  if (!valid) return err('POS_ERR_TICKET_SIGNATURE', 'the ticket signature does not verify');

  const skew = expect.clockSkewS ?? 5;
  if (claims.exp <= expect.now - skew) return err('POS_ERR_TICKET_EXPIRED', 'the ticket has expired');
  if (claims.iat > expect.now + skew)
    return err('POS_ERR_TICKET_NOT_YET_VALID', 'the ticket was issued in the future');
  if (claims.exp <= claims.iat || claims.exp - claims.iat > (expect.maxLifetimeS ?? 300)) {
    return err('POS_ERR_TICKET_LIFETIME', 'the ticket lifetime is not acceptable');
  }
  if (expect.issuer !== undefined && claims.iss !== expect.issuer)
    return err('POS_ERR_TICKET_ISSUER', 'the ticket is from another issuer');
  if (claims.aud !== TICKET_AUDIENCE)
    return err('POS_ERR_TICKET_AUDIENCE', 'the ticket is for another audience');
  if (claims.use !== expect.use) return err('POS_ERR_TICKET_USE', `a ${expect.use} ticket is needed`);
  if (expect.permission !== undefined && !claims.perm.includes(expect.permission)) {
    return err('POS_ERR_TICKET_PERMISSION', `the ticket does not grant ${expect.permission}`);
  }
  if (claims.use === 'pin-entry' && claims.tier !== 'affirming') {
    return err('POS_ERR_TICKET_TIER', 'PIN entry needs an affirming verdict');
  }
  if (claims.tier === 'contraindicated' || claims.tier === 'none') {
    return err('POS_ERR_TICKET_TIER', 'the verdict does not allow this terminal to work');
  }
  if (expect.readerSerial !== undefined && claims.rsn !== expect.readerSerial) {
    return err('POS_ERR_TICKET_READER_MISMATCH', 'the ticket is bound to another reader');
  }
  if (expect.deviceKeyThumbprint !== undefined && !sameText(claims.cnf.jkt, expect.deviceKeyThumbprint)) {
    return err('POS_ERR_TICKET_KEY_MISMATCH', 'the ticket is bound to another terminal key');
  }
  if (claims.use === 'pin-entry') {
    if (expect.nonce === undefined || claims.nonce === undefined || !sameText(claims.nonce, expect.nonce)) {
      return err('POS_ERR_TICKET_NONCE_MISMATCH', 'the ticket is bound to another transaction');
    }
  }
  return ok({ claims, kid: header.kid });
}
