/**
 * The dashboard's client of the operator API: same origin, the session cookie (HttpOnly, set by the
 * back-end at sign-in) goes by itself, and every change carries `X-CSRF-Token`. Every answer is parsed
 * with a zod schema before the UI sees it; an error answer becomes an ApiError with its POS_ERR code.
 */
import { z } from 'zod';

const CSRF_KEY = 'pos.dashboard.csrf';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const ErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/** The CSRF token of this tab's session (sessionStorage: gone when the tab closes). */
export function csrfToken(): string | null {
  return sessionStorage.getItem(CSRF_KEY);
}

export function setCsrfToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(CSRF_KEY);
  else sessionStorage.setItem(CSRF_KEY, token);
}

let onUnauthorized: () => void = () => undefined;
/** Called on any 401 from an authenticated call (the session ended). */
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

type Method = 'GET' | 'POST' | 'DELETE';

async function errorOf(res: Response): Promise<ApiError> {
  let code = `HTTP_${res.status}`;
  let message = res.statusText;
  try {
    const parsed = ErrorBody.safeParse(await res.json());
    if (parsed.success) ({ code, message } = parsed.data.error);
  } catch {
    // not JSON: keep the status
  }
  return new ApiError(res.status, code, message);
}

async function send(method: Method, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') {
    headers['content-type'] = 'application/json';
    const csrf = csrfToken();
    if (csrf !== null) headers['x-csrf-token'] = csrf;
  }
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    ...(method === 'GET' ? {} : { body: JSON.stringify(body ?? {}) }),
  });
  if (!res.ok) {
    const error = await errorOf(res);
    if (res.status === 401 && path !== '/v1/auth/login') onUnauthorized();
    throw error;
  }
  return res;
}

export async function call<T>(
  schema: z.ZodType<T>,
  method: Method,
  path: string,
  body?: unknown,
): Promise<T> {
  const res = await send(method, path, body);
  const parsed = schema.safeParse(await res.json());
  if (!parsed.success)
    throw new ApiError(res.status, 'DASHBOARD_BAD_ANSWER', `unexpected answer from ${path}`);
  return parsed.data;
}

/** A GET whose body is text (the audit export). */
export async function getText(path: string): Promise<string> {
  return (await send('GET', path)).text();
}

export function q(params: Record<string, string | number | undefined>): string {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') s.set(k, String(v));
  const text = s.toString();
  return text === '' ? '' : `?${text}`;
}

export const enc = encodeURIComponent;

// ---- schemas of the answers the dashboard reads (backend/src/server/routes/*) ----

export const Role = z.enum(['admin', 'operator', 'auditor', 'merchant']);
export type Role = z.infer<typeof Role>;

export const LoginOut = z.object({
  csrfToken: z.string(),
  expiresAt: z.number(),
  user: z.object({ userId: z.string(), username: z.string(), role: Role, merchantId: z.string().nullable() }),
});

export const MeOut = z.object({
  actor: z.string(),
  via: z.enum(['token', 'session']),
  role: Role,
  merchantId: z.string().nullable(),
  username: z.string().optional(),
  expiresAt: z.number().nullable(),
  permissions: z.array(z.string()),
});
export type Me = z.infer<typeof MeOut>;

export const SummaryOut = z.object({
  merchantId: z.string().nullable(),
  at: z.number(),
  terminals: z.object({
    total: z.number(),
    trusted: z.number(),
    warning: z.number(),
    halted: z.number(),
    resumePending: z.number(),
    /** Retired for good (absent from a back-end older than decommissioning). */
    decommissioned: z.number().optional(),
    stale: z.number(),
    other: z.number(),
  }),
});
export type Summary = z.infer<typeof SummaryOut>;

export const TerminalState = z.enum(['active', 'halted', 'resume-pending', 'decommissioned']);
export const TerminalRow = z.object({
  terminalId: z.string(),
  merchantId: z.string(),
  readerSerial: z.string(),
  state: TerminalState,
  stateReason: z.string().nullable(),
  appVersion: z.string().nullable(),
  lastTier: z.string().nullable(),
  lastAttestedAt: z.number().nullable(),
  nextDueAt: z.number().nullable(),
  stale: z.boolean(),
  staleAt: z.number().nullable(),
  attestationIntervalS: z.number(),
  createdAt: z.number(),
});
export type TerminalRow = z.infer<typeof TerminalRow>;
export const TerminalsOut = z.object({ terminals: z.array(TerminalRow), next: z.string().nullable() });

export const TerminalOut = z.object({
  terminalId: z.string(),
  merchantId: z.string(),
  deviceJkt: z.string(),
  readerSerial: z.string(),
  state: TerminalState,
  stateReason: z.string().nullable(),
  lastCounter: z.number(),
  attestationIntervalS: z.number(),
  lastAttestedAt: z.number().nullable(),
  /** The newest ticket issued to the terminal (times and use only), or null when it never got one. */
  ticket: z
    .object({
      use: z.string(),
      issuedAt: z.number(),
      expiresAt: z.number(),
      expired: z.boolean(),
      used: z.boolean(),
    })
    .nullable(),
});
export type TerminalDetail = z.infer<typeof TerminalOut>;
export type TerminalTicket = NonNullable<TerminalDetail['ticket']>;

const Reason = z.object({ code: z.string(), text: z.string().optional() });
const Shadow = z.object({ policyVersion: z.string(), tier: z.string(), halt: z.boolean().optional() });
export const VerdictDoc = z
  .object({
    tier: z.string().optional(),
    halt: z.boolean().optional(),
    reasons: z.array(Reason).optional(),
    shadow: z.array(Shadow).optional(),
    passed: z.array(z.string()).optional(),
    outcomes: z
      .array(
        z.looseObject({
          verifier: z.string().optional(),
          status: z.string().optional(),
          code: z.string().optional(),
          detail: z.string().optional(),
        }),
      )
      .optional(),
  })
  .loose();
export const AttestationsOut = z.object({
  attestations: z.array(
    z.object({
      id: z.string(),
      at: z.number(),
      purpose: z.string(),
      counter: z.number().nullable(),
      tier: z.string(),
      policyVersion: z.string(),
      verdict: z.record(z.string(), z.unknown()),
    }),
  ),
});
export type Attestation = z.infer<typeof AttestationsOut>['attestations'][number];

export const TransactionsOut = z.object({
  transactions: z.array(
    z.object({
      id: z.string(),
      at: z.number(),
      amount: z.number(),
      currency: z.string(),
      approved: z.boolean(),
      code: z.string().nullable(),
      authCode: z.string().nullable(),
      cardToken: z.string().nullable(),
    }),
  ),
});

export const Scope = z.enum(['terminal', 'merchant', 'app-version', 'fleet']);
export type Scope = z.infer<typeof Scope>;
export const HaltRow = z.object({
  haltId: z.string(),
  scope: Scope,
  target: z.string().nullable(),
  reason: z.string(),
  createdBy: z.string(),
  createdAt: z.number(),
  liftedAt: z.number().nullable(),
  liftedBy: z.string().nullable(),
});
export type HaltRow = z.infer<typeof HaltRow>;
export const HaltsOut = z.object({ halts: z.array(HaltRow) });
export const HaltDetailOut = HaltRow.extend({
  deliveries: z.array(
    z.object({
      terminalId: z.string(),
      seq: z.number(),
      kind: z.enum(['halt', 'resume']),
      createdAt: z.number(),
      sentAt: z.number().nullable(),
      ackedAt: z.number().nullable(),
    }),
  ),
  acknowledged: z.number(),
  pending: z.number(),
});
export type HaltDetail = z.infer<typeof HaltDetailOut>;
export const HaltCreated = z.object({ haltId: z.string(), terminals: z.number() });
export const TerminalHalted = z.object({
  terminalId: z.string(),
  state: z.enum(['halted', 'resume-pending']),
  haltId: z.string().optional(),
});
export const TerminalDecommissioned = z.object({
  terminalId: z.string(),
  state: z.literal('decommissioned'),
  previousState: z.enum(['active', 'halted', 'resume-pending']),
});
export const Lifted = z.object({ haltId: z.string(), resumed: z.number(), stillHalted: z.number() });

export const MerchantsOut = z.object({
  merchants: z.array(z.object({ merchantId: z.string(), name: z.string(), createdAt: z.number() })),
});
export type Merchant = z.infer<typeof MerchantsOut>['merchants'][number];
export const MerchantCreated = z.object({ merchantId: z.string() });
export const CodeOut = z.object({ code: z.string(), expiresAt: z.number() });

export const ReferenceValuesOut = z.object({
  referenceValues: z.array(
    z.object({ id: z.string(), createdAt: z.number(), document: z.record(z.string(), z.unknown()) }),
  ),
});
export const Created = z.object({ id: z.string() });
export const Deleted = z.object({ deleted: z.literal(true) });

export const PoliciesOut = z.object({
  policies: z.array(
    z.object({
      version: z.string(),
      role: z.enum(['active', 'shadow', 'inactive']),
      createdAt: z.number(),
      policy: z.record(z.string(), z.unknown()),
    }),
  ),
});
export type Policy = z.infer<typeof PoliciesOut>['policies'][number];
export const PolicyCreated = z.object({ version: z.string() });
export const PolicyRole = z.object({ version: z.string(), role: z.enum(['active', 'shadow', 'inactive']) });

export const AuditRow = z.object({
  seq: z.number(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  subject: z.string(),
  data: z.record(z.string(), z.unknown()),
  prevHash: z.string(),
  hash: z.string(),
});
export type AuditRow = z.infer<typeof AuditRow>;
export const AuditVerifyOut = z.object({
  valid: z.boolean(),
  count: z.number().optional(),
  head: z.string().optional(),
  checkpoints: z.number(),
  code: z.string().optional(),
  detail: z.string().optional(),
});
export type AuditVerify = z.infer<typeof AuditVerifyOut>;
export const CheckpointOut = z.object({ seq: z.number(), hash: z.string(), kid: z.string() });

/** A live event (GET /v1/events): the fields every event has, the rest kept as sent. */
export const FleetEvent = z.looseObject({
  type: z.string(),
  at: z.number(),
  merchantId: z.string().nullable(),
  terminalId: z.string().optional(),
  haltId: z.string().optional(),
  tier: z.string().optional(),
  purpose: z.string().optional(),
  scope: z.string().optional(),
  target: z.string().nullable().optional(),
  reason: z.string().optional(),
  terminals: z.number().optional(),
  kind: z.string().optional(),
  connected: z.boolean().optional(),
  latencyMs: z.number().optional(),
});
export type FleetEvent = z.infer<typeof FleetEvent>;
export const LoggedOut = z.object({ loggedOut: z.literal(true) });

export const UsersOut = z.object({
  users: z.array(
    z.object({
      userId: z.string(),
      username: z.string(),
      role: Role,
      merchantId: z.string().nullable(),
      createdAt: z.number(),
      disabledAt: z.number().nullable(),
      loginLocked: z.boolean(),
      lockedUntil: z.number().nullable(),
    }),
  ),
});
export const UserCreated = z.object({ userId: z.string() });
export const UserDisabled = z.object({
  userId: z.string(),
  disabled: z.literal(true),
  sessionsEnded: z.number(),
  tokensRevoked: z.number(),
});
export const PasswordSet = z.object({ userId: z.string(), sessionsEnded: z.number() });
export const UserUnlocked = z.object({
  userId: z.string(),
  unlocked: z.literal(true),
  wasLockedUntil: z.number().nullable(),
});
export const TokensOut = z.object({
  tokens: z.array(
    z.object({
      tokenId: z.string(),
      label: z.string(),
      role: Role,
      merchantId: z.string().nullable(),
      createdBy: z.string().nullable(),
      createdAt: z.number(),
      expiresAt: z.number().nullable(),
      revokedAt: z.number().nullable(),
    }),
  ),
});
export const TokenCreated = z.object({ tokenId: z.string(), token: z.string(), expiresAt: z.number() });
export const TokenRevoked = z.object({ tokenId: z.string(), revoked: z.literal(true) });
