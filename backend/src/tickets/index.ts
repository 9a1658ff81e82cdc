/**
 * Tickets: the claims a verdict earns and their ES256 signature. A ticket is a compact JWS, header
 * `{"alg":"ES256","kid":...,"typ":"pos-ticket+jwt"}`, claims per @pos/shared `TicketClaimsSchema`.
 * The signer is an interface (raw r‖s over the signing input), so the key store keeps the private key.
 */
import { createPrivateKey, sign as nodeSign, type KeyObject } from 'node:crypto';
import {
  err,
  ok,
  PosError,
  TICKET_AUDIENCE,
  TICKET_DEFAULT_LIFETIME_S,
  TICKET_TYPE,
  TicketClaimsSchema,
  toBase64url,
  type Result,
  type TicketClaims,
  type TicketPermission,
} from '@pos/shared';
import type { Verdict } from '../attestation/types';

export interface TicketSigner {
  readonly kid: string;
  /** ES256 over the signing input: raw r‖s, 64 bytes. */
  sign(signingInput: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** A signer over a node:crypto P-256 private key (a KeyObject, or a private JWK). */
export function nodeTicketSigner(
  kid: string,
  privateKey: KeyObject | { kty: 'EC'; crv: 'P-256'; x: string; y: string; d: string },
): TicketSigner {
  const key = 'type' in privateKey ? privateKey : createPrivateKey({ key: privateKey, format: 'jwk' });
  return {
    kid,
    sign: (signingInput) =>
      new Uint8Array(nodeSign('sha256', signingInput, { key, dsaEncoding: 'ieee-p1363' })),
  };
}

const encoder = new TextEncoder();
const b64json = (value: unknown): string => toBase64url(encoder.encode(JSON.stringify(value)));

/** Signs schema-valid claims. Invalid claims are a programming error (PosError), not a ticket. */
export async function signTicket(claims: TicketClaims, signer: TicketSigner): Promise<string> {
  const checked = TicketClaimsSchema.safeParse(claims);
  if (!checked.success)
    throw new PosError('POS_ERR_TICKET_CLAIMS_INVALID', 'the ticket claims do not match the schema');
  const header = b64json({ alg: 'ES256', kid: signer.kid, typ: TICKET_TYPE });
  const payload = b64json(checked.data);
  const signature = await signer.sign(encoder.encode(`${header}.${payload}`));
  if (!(signature instanceof Uint8Array) || signature.length !== 64) {
    throw new PosError('POS_ERR_TICKET_SIGNER', 'the ticket signer did not return a 64-byte ES256 signature');
  }
  return `${header}.${payload}.${toBase64url(signature)}`;
}

/** The longest a verdict stays fresh enough for a PIN-entry ticket (ms). */
export const PIN_ENTRY_VERDICT_MAX_AGE_MS = 30_000;
export const TICKET_MAX_LIFETIME_S = 300;

export type TicketRefusalCode = 'POS_ERR_TICKET_REFUSED' | 'POS_ERR_TICKET_CLAIMS_INVALID';

export interface TicketClaimsOptions {
  issuer: string;
  terminalId: string;
  merchantId: string;
  deviceJkt: string;
  readerSerial: string;
  verdict: Verdict;
  use: 'session' | 'pin-entry';
  /** pin-entry: the reader's transaction nonce (base64url). */
  nonce?: string;
  /** Server clock, ms. */
  now: number;
  /** Default 60, at most 300. */
  lifetimeS?: number;
  jti: string;
  /**
   * A session ticket that grants nothing (`perm: []`): it only lets the terminal prove its device key
   * to its reader (the handshake), as a resume-pending terminal needs to, so that its next evidence
   * can carry the reader's signed status. Refused for a PIN-entry ticket.
   */
  handshakeOnly?: boolean;
}

/**
 * The claims of a ticket for a verdict. Refuses any ticket on a halting, contraindicated or `none`
 * verdict; a PIN-entry ticket needs an affirming verdict no older than 30 s, from pre-pin evidence
 * when the verdict says its purpose, and the reader's nonce.
 */
export function ticketClaims(opts: TicketClaimsOptions): Result<{ claims: TicketClaims }, TicketRefusalCode> {
  try {
    return makeClaims(opts);
  } catch {
    return err('POS_ERR_TICKET_REFUSED', 'the ticket claims could not be made');
  }
}

function makeClaims(opts: TicketClaimsOptions): Result<{ claims: TicketClaims }, TicketRefusalCode> {
  const { verdict } = opts;
  if (verdict.halt || verdict.tier === 'contraindicated' || verdict.tier === 'none') {
    return err('POS_ERR_TICKET_REFUSED', `no ticket on a ${verdict.tier} verdict`);
  }
  const lifetime = opts.lifetimeS ?? TICKET_DEFAULT_LIFETIME_S;
  if (!Number.isInteger(lifetime) || lifetime < 1 || lifetime > TICKET_MAX_LIFETIME_S) {
    return err(
      'POS_ERR_TICKET_CLAIMS_INVALID',
      `the ticket lifetime must be 1 to ${TICKET_MAX_LIFETIME_S} s`,
    );
  }
  let perm: TicketPermission[];
  if (opts.use === 'pin-entry' && opts.handshakeOnly === true)
    return err('POS_ERR_TICKET_CLAIMS_INVALID', 'a PIN-entry ticket cannot be handshake-only');
  if (opts.use === 'pin-entry') {
    if (verdict.tier !== 'affirming')
      return err('POS_ERR_TICKET_REFUSED', 'PIN entry needs an affirming verdict');
    if (
      opts.now - verdict.appraisedAt > PIN_ENTRY_VERDICT_MAX_AGE_MS ||
      opts.now < verdict.appraisedAt - 5_000
    ) {
      return err('POS_ERR_TICKET_REFUSED', 'PIN entry needs a fresh verdict');
    }
    if (verdict.purpose !== undefined && verdict.purpose !== 'pre-pin') {
      return err('POS_ERR_TICKET_REFUSED', 'PIN entry needs a verdict on pre-pin evidence');
    }
    if (opts.nonce === undefined)
      return err('POS_ERR_TICKET_REFUSED', 'a PIN-entry ticket needs the reader nonce');
    perm = ['pin-entry'];
  } else {
    if (opts.nonce !== undefined)
      return err('POS_ERR_TICKET_CLAIMS_INVALID', 'only PIN-entry tickets carry a nonce');
    perm = opts.handshakeOnly === true ? [] : ['transact'];
  }
  const iat = Math.floor(opts.now / 1000);
  const claims = {
    iss: opts.issuer,
    sub: opts.terminalId,
    aud: TICKET_AUDIENCE,
    iat,
    exp: iat + lifetime,
    jti: opts.jti,
    cnf: { jkt: opts.deviceJkt },
    rsn: opts.readerSerial,
    mid: opts.merchantId,
    use: opts.use,
    tier: verdict.tier,
    perm,
    ...(opts.nonce === undefined ? {} : { nonce: opts.nonce }),
  };
  const parsed = TicketClaimsSchema.safeParse(claims);
  if (!parsed.success) {
    const where = parsed.error.issues[0]?.path.map(String).join('.') ?? '';
    return err('POS_ERR_TICKET_CLAIMS_INVALID', `the ticket claims are not valid (at ${where})`);
  }
  return ok({ claims: parsed.data });
}
