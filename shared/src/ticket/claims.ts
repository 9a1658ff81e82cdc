/**
 * The claims of a back-end ticket: the contract between the A&M back-end (which signs), the terminal
 * (which carries) and the reader (which enforces). A ticket is a compact JWS (RFC 7515) signed ES256,
 * header `{"alg":"ES256","kid":...,"typ":"pos-ticket+jwt"}`.
 *
 * - A **session** ticket follows an attestation that allows the terminal to work: the reader accepts
 *   it in the secure-channel handshake as proof of the terminal's device key, and the back-end's
 *   transaction API requires one.
 * - A **pin-entry** ticket follows the pre-PIN attestation of one transaction: it is issued only on an
 *   `affirming` verdict and carries the reader's transaction nonce. The reader makes no PIN block
 *   without one.
 */
import { z } from 'zod';

export const TICKET_TYPE = 'pos-ticket+jwt';
/** Every ticket's audience: the terminals' readers, which enforce it (the back-end accepts its own too). */
export const TICKET_AUDIENCE = 'urn:pos:reader';
/** The default lifetime of a ticket, in seconds. */
export const TICKET_DEFAULT_LIFETIME_S = 60;

export const TRUST_TIERS = ['affirming', 'warning', 'contraindicated', 'none'] as const;
export type TrustTier = (typeof TRUST_TIERS)[number];

export const TICKET_USES = ['session', 'pin-entry'] as const;
export type TicketUse = (typeof TICKET_USES)[number];

export const TICKET_PERMISSIONS = ['transact', 'pin-entry'] as const;
export type TicketPermission = (typeof TICKET_PERMISSIONS)[number];

const b64url = z.string().regex(/^[A-Za-z0-9_-]+$/);
const seconds = z
  .number()
  .int()
  .nonnegative()
  .max(2 ** 40);

export const TicketHeaderSchema = z.strictObject({
  alg: z.literal('ES256'),
  kid: z.string().min(1).max(128),
  typ: z.literal(TICKET_TYPE),
});
export type TicketHeader = z.infer<typeof TicketHeaderSchema>;

export const TicketClaimsSchema = z.strictObject({
  /** The back-end that issued it. */
  iss: z.string().min(1).max(256),
  /** The terminal id. */
  sub: z.string().min(1).max(128),
  aud: z.literal(TICKET_AUDIENCE),
  iat: seconds,
  exp: seconds,
  /** Unique id, for audit and replay tracking. */
  jti: z.string().min(8).max(128),
  /** RFC 7800 confirmation: the RFC 7638 thumbprint of the terminal's device key. */
  cnf: z.strictObject({ jkt: b64url.length(43) }),
  /** The serial of the reader paired with the terminal. */
  rsn: z.string().min(1).max(64),
  /** The merchant the terminal belongs to. */
  mid: z.string().min(1).max(128),
  use: z.enum(TICKET_USES),
  /** The verdict's trust tier at issue time. */
  tier: z.enum(TRUST_TIERS),
  perm: z.array(z.enum(TICKET_PERMISSIONS)).max(TICKET_PERMISSIONS.length),
  /** pin-entry only: the reader-issued transaction nonce, base64url. */
  nonce: b64url.min(16).max(128).optional(),
});
export type TicketClaims = z.infer<typeof TicketClaimsSchema>;
