/**
 * What every route gets: store, keys, clock, config, metrics, the domain entry points, and the two
 * authentication checks (operator API token; terminal device-key proof, DPoP-style).
 */
import { createHash, createPublicKey, randomBytes, verify as nodeVerify, type KeyObject } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { constantTimeEqual, parseBase64url, toBase64url } from '@pos/shared';
import { z } from 'zod';
import type { KeyRing } from '../keys/keyring';
import type { Bus } from '../fleet/bus';
import type { FleetControl } from '../fleet/control';
import type { AuditDraftRow, AuditRow, OperatorRole, Store, TerminalRow } from '../store/types';
import { chainAuditEntry, signAuditCheckpoint, type AcquirerHost, type ReaderStatusVerifier } from './domain';
import { DEFAULT_AUTH_CONFIG, type AuthConfig } from './auth/config';
import { authorize } from './auth/principal';
import { ServiceError } from './http-errors';
import type { Metrics } from './metrics';

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export interface ServiceConfig {
  /** The service's public base URL, without a trailing slash: ticket `iss`, and the base of proof `htu`. */
  readonly issuer: string;
  /** Ticket lifetime, seconds (default 60). */
  readonly ticketLifetimeS: number;
  /** Challenge lifetime, seconds (default 30). */
  readonly challengeTtlS: number;
  /** Periodic attestation interval given to terminals, seconds (default 300). */
  readonly attestationIntervalS: number;
  /** Enrollment code lifetime, seconds (default 24 h). */
  readonly enrollmentCodeTtlS: number;
  /** How old (or how far in the future) a Pos-Proof `iat` may be, seconds (default 30). */
  readonly proofMaxAgeS: number;
  /** A signed audit checkpoint every this many entries (default 1000). */
  readonly auditCheckpointEvery: number;
  /** Requests per minute per client address; false turns the limit off (benchmarks, tests). */
  readonly rateLimitPerMinute: number | false;
  /** The largest request body accepted, bytes (default 64 KiB). */
  readonly bodyLimit: number;
  /**
   * Slow clients: a request's headers must arrive within `headersTimeoutMs` (default 10 s) and the
   * whole request, body included, within `requestTimeoutMs` (default 30 s), or the connection is
   * answered 408 POS_ERR_REQUEST_TIMEOUT and closed (a client trickling bytes cannot hold a socket).
   */
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /**
   * Behind one reverse proxy: the client address (rate limits, login throttling, logs) is the one the
   * proxy appended to X-Forwarded-For (one trusted hop), never an entry the client wrote. Default false.
   */
  readonly trustProxy: boolean;
  /**
   * Development mode (`pos-backend --dev`): with no policy activated, the development policy (dev-2)
   * applies. Default false: with no policy activated, the production policy (prod-1) applies.
   */
  readonly development: boolean;
  /** Operator authentication: sessions, login throttling and lock-out, password hashing (docs/operators.md). */
  readonly auth: AuthConfig;
  /** Liveness: a terminal whose next attestation is this many seconds overdue is stale (default 60). */
  readonly livenessMarginS: number;
  /** Liveness: the sweeper looks for overdue terminals every this many seconds; false: no timer (default 15). */
  readonly livenessSweepS: number | false;
}

export const DEFAULT_CONFIG: Omit<ServiceConfig, 'issuer'> = {
  ticketLifetimeS: 60,
  challengeTtlS: 30,
  attestationIntervalS: 300,
  enrollmentCodeTtlS: 24 * 3600,
  proofMaxAgeS: 30,
  auditCheckpointEvery: 1000,
  rateLimitPerMinute: 600,
  bodyLimit: 64 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  trustProxy: false,
  development: false,
  auth: DEFAULT_AUTH_CONFIG,
  livenessMarginS: 60,
  livenessSweepS: 15,
};

export interface Ctx {
  readonly store: Store;
  readonly keys: KeyRing;
  readonly clock: Clock;
  readonly config: ServiceConfig;
  readonly metrics: Metrics;
  readonly acquirer: AcquirerHost;
  /** Manufacturer CA roots for the reader status (DER certificates). */
  readonly readerCaRoots: readonly Uint8Array[];
  readonly readerStatusVerifier: ReaderStatusVerifier;
  audit(actor: string, action: string, subject: string, data: Record<string, unknown>): Promise<AuditRow>;
  /**
   * After entries were appended along with a state change (in its transaction): signs and stores a
   * checkpoint for each that falls on the checkpoint interval, as `audit` does.
   */
  audited(entries: readonly AuditRow[]): Promise<void>;
  /** Cross-process messages (in-memory for one process; LISTEN/NOTIFY on PostgreSQL). */
  readonly bus: Bus;
  /** This process's random id (push connections name the process holding them). */
  readonly instanceId: string;
  /** Halts (every source) and dashboard events. */
  readonly fleet: FleetControl;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
export function sha256B64url(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('base64url');
}
export function newId(prefix: string): string {
  return `${prefix}_${toBase64url(randomBytes(16))}`;
}

/** An audit draft at `now` (the store appends it in the change's own transaction). */
export function draftAt(
  now: number,
  actor: string,
  action: string,
  subject: string,
  data: Record<string, unknown>,
): AuditDraftRow {
  return { at: new Date(now).toISOString(), actor, action, subject, data };
}

/** Chains a draft after the store's last entry (the `chain` argument of the stores' audited writes). */
export const chainEntry = (prev: AuditRow | undefined, draft: AuditDraftRow): AuditRow =>
  chainAuditEntry(prev, draft);

export function makeAudited(store: Store, keys: KeyRing, every: number): Ctx['audited'] {
  return async (entries) => {
    for (const entry of entries) {
      if (entry.seq % every === 0)
        await store.putCheckpoint(await signAuditCheckpoint(entry, keys.signer(), entry.at));
    }
  };
}

export function makeAudit(store: Store, keys: KeyRing, clock: Clock, every: number): Ctx['audit'] {
  const audited = makeAudited(store, keys, every);
  return async (actor, action, subject, data) => {
    const at = new Date(clock.now()).toISOString();
    const entry = await store.appendAudit({ at, actor, action, subject, data }, chainEntry);
    await audited([entry]);
    return entry;
  };
}

// ---- Operator authentication ----

export const ADMIN_TOKEN_PREFIX = 'pos_admin_';

export function hashApiToken(token: string): string {
  return sha256Hex(token);
}

export function newAdminToken(): string {
  return `${ADMIN_TOKEN_PREFIX}${toBase64url(randomBytes(32))}`;
}

/** What an operator route needs the caller to be allowed to do (the role matrix is in docs/operators.md). */
export type Permission =
  | 'read'
  | 'read-config'
  | 'enroll'
  | 'halt'
  | 'resume'
  | 'manage-merchants'
  | 'manage-releases'
  | 'manage-policies'
  | 'manage-users'
  | 'read-users'
  | 'audit'
  | 'audit-checkpoint'
  | 'keys';

/** An authenticated operator (API token or dashboard session). */
export interface Principal {
  /** Audit actor: `operator:<user id>` or `token:<token id>`. */
  readonly actor: string;
  readonly role: OperatorRole;
  /** null: provider-wide; otherwise the only merchant this principal may see or act on. */
  readonly merchantId: string | null;
}

/** True when the principal may see or act on the merchant's objects. */
export function canReachMerchant(principal: Principal, merchantId: string): boolean {
  return principal.merchantId === null || principal.merchantId === merchantId;
}

/**
 * Authenticates the caller and checks the permission; resolves to the principal, or throws 401
 * POS_ERR_OPERATOR_AUTH / 403 POS_ERR_FORBIDDEN. Object-level checks (`canReachMerchant`) are the
 * route's job: an object of another tenant answers 404, as if it did not exist.
 */
export async function requirePrincipal(
  ctx: Ctx,
  request: FastifyRequest,
  permission: Permission,
): Promise<Principal> {
  return authorize(ctx, request, permission);
}

/**
 * Admin only (fail closed for a route not yet given its permission): resolves to the audit actor, or
 * throws 401 POS_ERR_OPERATOR_AUTH / 403 POS_ERR_FORBIDDEN. Prefer `requirePrincipal`.
 */
export async function requireOperator(ctx: Ctx, request: FastifyRequest): Promise<string> {
  const principal = await authorize(ctx, request, 'manage-users');
  return principal.actor;
}

// ---- Terminal authentication: Pos-Proof (DPoP-style, RFC 9449 ideas) ----

export const PROOF_TYPE = 'pos-proof+jwt';
const ProofHeaderSchema = z.strictObject({
  alg: z.literal('ES256'),
  typ: z.literal(PROOF_TYPE),
  /** The terminal id: whose enrolled device key verifies this proof. */
  kid: z.string().min(1).max(128),
});
const b64urlHash = z.string().regex(/^[A-Za-z0-9_-]{43}$/);
const ProofClaimsSchema = z.strictObject({
  htm: z.string().min(1).max(16),
  htu: z.string().min(1).max(2048),
  iat: z.number().int().nonnegative(),
  jti: z.string().min(16).max(128),
  bh: b64urlHash,
  ath: b64urlHash.optional(),
});
export type ProofClaims = z.infer<typeof ProofClaimsSchema>;
const PROOF_MAX_LENGTH = 4096;

function decodePart(part: string): unknown {
  const b = parseBase64url(part);
  if (!b.ok) return undefined;
  try {
    return JSON.parse(Buffer.from(b.bytes).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

const KEY_CACHE_MAX = 10_000;
const keyCache = new Map<string, KeyObject>();

/** The device key as a node:crypto KeyObject, cached by thumbprint (parsing a JWK costs more than a verify). */
function deviceKeyObject(jkt: string, jwkJson: string): KeyObject {
  const cached = keyCache.get(jkt);
  if (cached !== undefined) return cached;
  const key = createPublicKey({ key: JSON.parse(jwkJson) as Record<string, string>, format: 'jwk' });
  if (keyCache.size >= KEY_CACHE_MAX) {
    const oldest = keyCache.keys().next().value;
    if (oldest !== undefined) keyCache.delete(oldest);
  }
  keyCache.set(jkt, key);
  return key;
}

const sameText = (a: string, b: string): boolean => constantTimeEqual(Buffer.from(a), Buffer.from(b));

/** The raw body bytes the JSON parser kept (empty for a bodiless request). */
export function rawBody(request: FastifyRequest): Buffer {
  return (request as FastifyRequest & { rawBody?: Buffer }).rawBody ?? Buffer.alloc(0);
}

/**
 * Checks the Pos-Proof header of a terminal request: signed by the named terminal's enrolled device
 * key, for this method, URL and body (and ticket when `ticket` is given), fresh, and never seen
 * before. Resolves to the terminal row; throws 401 with a POS_ERR_PROOF_* code otherwise, and 403
 * POS_ERR_TERMINAL_DECOMMISSIONED for a valid proof of a decommissioned terminal.
 */
export async function requireTerminalProof(
  ctx: Ctx,
  request: FastifyRequest,
  ticket?: string,
): Promise<TerminalRow> {
  const proof = request.headers['pos-proof'];
  if (typeof proof !== 'string' || proof.length === 0) throw new ServiceError(401, 'POS_ERR_PROOF_MISSING');
  if (proof.length > PROOF_MAX_LENGTH) throw new ServiceError(401, 'POS_ERR_PROOF_INVALID');
  const parts = proof.split('.');
  if (parts.length !== 3) throw new ServiceError(401, 'POS_ERR_PROOF_INVALID');
  const [h, p, s] = parts as [string, string, string];
  const header = ProofHeaderSchema.safeParse(decodePart(h));
  const claims = ProofClaimsSchema.safeParse(decodePart(p));
  const sig = parseBase64url(s);
  if (!header.success || !claims.success || !sig.ok || sig.bytes.length !== 64) {
    throw new ServiceError(401, 'POS_ERR_PROOF_INVALID');
  }
  const terminal = await ctx.store.getTerminal(header.data.kid);
  if (terminal === undefined) throw new ServiceError(401, 'POS_ERR_PROOF_SIGNATURE');
  let valid: boolean;
  try {
    const key = deviceKeyObject(terminal.deviceJkt, terminal.deviceJwk);
    valid = nodeVerify(
      'sha256',
      Buffer.from(`${h}.${p}`, 'ascii'),
      { key, dsaEncoding: 'ieee-p1363' },
      sig.bytes,
    );
  } catch {
    valid = false;
  }
  if (!valid) throw new ServiceError(401, 'POS_ERR_PROOF_SIGNATURE');
  const c = claims.data;
  const path = request.url.split('?')[0] ?? '';
  const bodyHash = sha256B64url(rawBody(request));
  if (
    c.htm !== request.method ||
    c.htu !== `${ctx.config.issuer}${path}` ||
    !sameText(c.bh, bodyHash) ||
    (ticket !== undefined && (c.ath === undefined || !sameText(c.ath, sha256B64url(ticket))))
  ) {
    throw new ServiceError(401, 'POS_ERR_PROOF_BINDING');
  }
  const now = ctx.clock.now();
  const maxAge = ctx.config.proofMaxAgeS;
  if (Math.abs(now / 1000 - c.iat) > maxAge) throw new ServiceError(401, 'POS_ERR_PROOF_STALE');
  const fresh = await ctx.store.rememberProofJti(`${terminal.id}:${c.jti}`, (c.iat + maxAge + 1) * 1000, now);
  if (!fresh) throw new ServiceError(401, 'POS_ERR_PROOF_REPLAY');
  // Decommissioned for good: the key proved itself, and is refused on every terminal route (challenges
  // are refused by terminal id, the push upgrade answers this before any WebSocket is opened).
  if (terminal.state === 'decommissioned') throw new ServiceError(403, 'POS_ERR_TERMINAL_DECOMMISSIONED');
  return terminal;
}
