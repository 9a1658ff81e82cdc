/**
 * Who is calling an operator route, and may they: an API token (`Authorization: Bearer pos_<role>_...`)
 * or a dashboard session (the `__Host-pos_session` cookie, with the session's CSRF token in the
 * `X-CSRF-Token` header on every unsafe method). A terminal's Pos-Proof or PosTicket never
 * authenticates here. The role matrix is ROLE_PERMISSIONS (docs/operators.md).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { OperatorRole } from '../../store/types';
import type { Ctx, Permission, Principal } from '../context';
import { ServiceError } from '../http-errors';

export const SESSION_COOKIE = '__Host-pos_session';
export const CSRF_HEADER = 'x-csrf-token';
export const SESSION_PREFIX = 'pos_sess_';
export const CSRF_PREFIX = 'pos_csrf_';
export const ROLES: readonly OperatorRole[] = ['admin', 'operator', 'auditor', 'merchant'];

const BEARER_RE = /^Bearer (pos_(?:admin|operator|auditor|merchant)_[A-Za-z0-9_-]{43})$/;
const SESSION_RE = /^pos_sess_[A-Za-z0-9_-]{43}$/;
const CSRF_RE = /^pos_csrf_[A-Za-z0-9_-]{43}$/;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Every permission, with what each role holds. */
export const ALL_PERMISSIONS: readonly Permission[] = [
  'read',
  'read-config',
  'enroll',
  'halt',
  'resume',
  'manage-merchants',
  'manage-releases',
  'manage-policies',
  'manage-users',
  'read-users',
  'audit',
  'audit-checkpoint',
  'keys',
];

export const ROLE_PERMISSIONS: Readonly<Record<OperatorRole, ReadonlySet<Permission>>> = {
  admin: new Set(ALL_PERMISSIONS),
  operator: new Set<Permission>(['read', 'read-config', 'enroll', 'halt', 'resume']),
  auditor: new Set<Permission>(['read', 'read-config', 'audit', 'read-users']),
  merchant: new Set<Permission>(['read', 'enroll', 'halt']),
};

/**
 * Permissions over provider-wide objects (policies, releases, keys, audit, users, merchants): a
 * principal limited to one merchant never holds them, whatever its role.
 */
export const PROVIDER_WIDE: ReadonlySet<Permission> = new Set<Permission>([
  'read-config',
  'manage-merchants',
  'manage-releases',
  'manage-policies',
  'manage-users',
  'read-users',
  'audit',
  'audit-checkpoint',
  'keys',
]);

export function hasPermission(principal: Principal, permission: Permission): boolean {
  if (!ROLE_PERMISSIONS[principal.role].has(permission)) return false;
  return principal.merchantId === null || !PROVIDER_WIDE.has(permission);
}

export function sha256Hex(data: string): string {
  return createHash('sha256').update(data).digest('hex');
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

export function newSecret(prefix: string): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

export function newApiToken(role: OperatorRole): string {
  return newSecret(`pos_${role}_`);
}

/** The value of a cookie in the request's Cookie header, or undefined. */
export function readCookie(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (typeof header !== 'string' || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

export interface Authenticated {
  readonly principal: Principal;
  readonly via: 'token' | 'session';
  /** For a session: its id, the user's id and name, and when it ends. */
  readonly session?: {
    readonly id: string;
    readonly operatorId: string;
    readonly username: string;
    readonly expiresAt: number;
  };
  /** For a token: when it ends (null: never). */
  readonly tokenExpiresAt?: number | null;
}

const unauthenticated = (): ServiceError => new ServiceError(401, 'POS_ERR_OPERATOR_AUTH');

/**
 * Authenticates the caller: a Bearer API token when an Authorization header is present (anything else
 * in it, PosTicket included, is a 401), otherwise the session cookie (unsafe methods also need the
 * session's CSRF token: 403 POS_ERR_CSRF). Throws 401 POS_ERR_OPERATOR_AUTH otherwise.
 */
export async function authenticate(ctx: Ctx, request: FastifyRequest): Promise<Authenticated> {
  const now = ctx.clock.now();
  const header = request.headers.authorization;
  if (header !== undefined) {
    const m = typeof header === 'string' ? BEARER_RE.exec(header) : null;
    if (m?.[1] === undefined) throw unauthenticated();
    const hash = sha256Hex(m[1]);
    const row = await ctx.store.findApiToken(hash);
    if (
      row === undefined ||
      !sameHex(row.tokenHash, hash) ||
      row.revokedAt !== null ||
      (row.expiresAt !== null && now >= row.expiresAt) ||
      !ROLES.includes(row.role) ||
      (row.role === 'merchant' && row.merchantId === null)
    ) {
      throw unauthenticated();
    }
    return {
      principal: { actor: `token:${row.id}`, role: row.role, merchantId: row.merchantId },
      via: 'token',
      tokenExpiresAt: row.expiresAt,
    };
  }
  const cookie = readCookie(request, SESSION_COOKIE);
  if (cookie === undefined || !SESSION_RE.test(cookie)) throw unauthenticated();
  const hash = sha256Hex(cookie);
  const session = await ctx.store.findSession(hash);
  if (
    session === undefined ||
    !sameHex(session.tokenHash, hash) ||
    session.revokedAt !== null ||
    now >= session.expiresAt
  ) {
    throw unauthenticated();
  }
  const user = await ctx.store.getOperator(session.operatorId);
  if (
    user === undefined ||
    user.disabledAt !== null ||
    (user.role === 'merchant' && user.merchantId === null)
  ) {
    throw unauthenticated();
  }
  if (!SAFE_METHODS.has(request.method)) {
    const csrf = request.headers[CSRF_HEADER];
    if (typeof csrf !== 'string' || !CSRF_RE.test(csrf) || !sameHex(sha256Hex(csrf), session.csrfHash)) {
      throw new ServiceError(403, 'POS_ERR_CSRF');
    }
  }
  return {
    principal: { actor: `operator:${user.id}`, role: user.role, merchantId: user.merchantId },
    via: 'session',
    session: { id: session.id, operatorId: user.id, username: user.username, expiresAt: session.expiresAt },
  };
}

/** Authenticates, then checks the permission (403 POS_ERR_FORBIDDEN when the role or the scope lacks it). */
export async function authorize(
  ctx: Ctx,
  request: FastifyRequest,
  permission: Permission,
): Promise<Principal> {
  const { principal } = await authenticate(ctx, request);
  if (!hasPermission(principal, permission)) throw new ServiceError(403, 'POS_ERR_FORBIDDEN');
  return principal;
}
