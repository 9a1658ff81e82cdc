/**
 * The OWASP API groups' harness: the real back-end (buildApp through backend/test/fleet-helpers.ts's
 * makeFileHarness, over a SQLite file in a fresh temporary data directory or over PostgreSQL in a
 * fresh schema) listening on a real loopback socket, and a cast spoken to over real HTTP (fetch):
 *
 * - principals (PRINCIPALS): the provider's admin, operator and auditor, and for each of merchants A
 *   and B an operator, a merchant user and an auditor, each created through the API (POST /v1/users,
 *   POST /v1/tokens) with an API token and a logged-in dashboard session (cookie + CSRF token);
 * - per merchant an enrolled simulated terminal (backend/test/helpers.ts's SimTerminal, enrolled by
 *   backend/test/server/fleet-helpers.ts's enrollInto) that attests over HTTP for session tickets.
 *
 * `request(method, path, { as, via, body, headers })` sends an operator-style request; `terminal(...)`
 * a terminal's (Pos-Proof, optionally a PosTicket). The clock is injected (`sec.h.clock.t`) so expiry
 * can be tested without waiting. Teardown: `close()` (closes the app, removes the data directory).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_AUTH_CONFIG } from '../../backend/src/server/auth/config';
import { hashApiToken, newAdminToken, type ServiceConfig } from '../../backend/src/server/context';
import type { OperatorRole } from '../../backend/src/store/types';
import type { FleetEvent } from '../../backend/src/fleet/events';
import { openPostgresStore } from '../../backend/src/store/postgres';
import { makeFileHarness } from '../../backend/test/fleet-helpers';
import { seedReferenceValues, SimTerminal, type Harness } from '../../backend/test/helpers';
import { enrollInto } from '../../backend/test/server/fleet-helpers';

export { SimTerminal };

/** The back-end under the harness (backend/test/helpers.ts's Harness, and the fleet events its bus carried). */
export type Backend = Harness & { readonly events: readonly FleetEvent[] };

export type Method = 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH' | 'HEAD' | 'OPTIONS';
export type TenantName = 'A' | 'B';
export type PrincipalName =
  | 'admin'
  | 'operator'
  | 'auditor'
  | 'operatorA'
  | 'merchantA'
  | 'auditorA'
  | 'operatorB'
  | 'merchantB'
  | 'auditorB';

/** Who is who: role and merchant (null: provider-wide). */
export const PRINCIPALS: Readonly<Record<PrincipalName, { role: OperatorRole; tenant: TenantName | null }>> =
  {
    admin: { role: 'admin', tenant: null },
    operator: { role: 'operator', tenant: null },
    auditor: { role: 'auditor', tenant: null },
    operatorA: { role: 'operator', tenant: 'A' },
    merchantA: { role: 'merchant', tenant: 'A' },
    auditorA: { role: 'auditor', tenant: 'A' },
    operatorB: { role: 'operator', tenant: 'B' },
    merchantB: { role: 'merchant', tenant: 'B' },
    auditorB: { role: 'auditor', tenant: 'B' },
  };
export const PRINCIPAL_NAMES = Object.keys(PRINCIPALS) as PrincipalName[];

/** Every principal's dashboard password (12+ characters, as the password policy wants). */
export const PASSWORD = 'security harness password';

export interface Session {
  /** `__Host-pos_session=...`, ready for a Cookie header. */
  readonly cookie: string;
  readonly csrf: string;
  /** The whole Set-Cookie header of the login. */
  readonly setCookie: string;
}

export interface Principal {
  readonly name: PrincipalName;
  readonly role: OperatorRole;
  readonly tenant: TenantName | null;
  readonly merchantId: string | null;
  readonly username: string;
  readonly userId: string;
  readonly tokenId: string;
  readonly token: string;
  readonly session: Session;
}

export interface Tenant {
  readonly merchantId: string;
  readonly terminalId: string;
  readonly terminal: SimTerminal;
}

export interface Res {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The parsed JSON body (undefined when not JSON). */
  readonly json: unknown;
  /** `error.code` of an error body. */
  readonly code: string | undefined;
}

export interface RequestOptions {
  /** The caller (default: anonymous, no credential). */
  readonly as?: PrincipalName;
  /** Its API token (default) or its dashboard session (cookie, and the CSRF token on unsafe methods). */
  readonly via?: 'token' | 'session';
  /** Sent as JSON (a string is sent as is, with content-type application/json unless headers say else). */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface TerminalOptions {
  /** A session ticket: `Authorization: PosTicket <ticket>` and the proof's `ath`. */
  readonly ticket?: string;
  /** The proof's `kid` (default: the terminal's id). */
  readonly kid?: string;
  /** Sign with this terminal instead (a terminal that cannot prove the ticket's cnf key). */
  readonly signer?: SimTerminal;
  /** No Pos-Proof header at all. */
  readonly noProof?: boolean;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface SecurityHarness {
  /** The backend test harness under it: app, store, keys, clock, adminToken, events. */
  readonly h: Backend;
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
  readonly dataDir: string;
  /** The key ring's master key and the card-token HMAC key: secrets no response may carry. */
  readonly masterKey: Uint8Array;
  readonly cardTokenKey: Uint8Array;
  readonly principals: Readonly<Record<PrincipalName, Principal>>;
  readonly tenants: Readonly<Record<TenantName, Tenant>>;
  request(method: Method, path: string, opts?: RequestOptions): Promise<Res>;
  /** A terminal's request: a fresh Pos-Proof over method, path and body (and the ticket, if any). */
  terminal(
    tenant: TenantName | SimTerminal,
    method: Method,
    path: string,
    body: unknown,
    opts?: TerminalOptions,
  ): Promise<Res>;
  /** A periodic attestation over HTTP; resolves to the session ticket (throws when none is issued). */
  ticket(tenant: TenantName | SimTerminal): Promise<string>;
  /** Logs a principal in again (a new session). */
  login(name: PrincipalName): Promise<Session>;
  /** Enrolls one more simulated terminal into the tenant's merchant. */
  enroll(tenant: TenantName): Promise<SimTerminal>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /**
   * The store: a SQLite file (default), or PostgreSQL at DATABASE_URL in a fresh schema dropped on
   * close (guard the group with backend/test/pg-helpers.ts's describePg / PG_AVAILABLE).
   */
  readonly store?: 'sqlite' | 'postgres';
  /** Service configuration over the harness's (cheap scrypt, login throttling effectively off, no rate limit). */
  readonly config?: Partial<ServiceConfig>;
}

async function parse(res: Response): Promise<Res> {
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    json = undefined;
  }
  const error = (json as { error?: { code?: unknown } } | undefined)?.error;
  const code = typeof error?.code === 'string' ? error.code : undefined;
  return { status: res.status, headers: res.headers, text, json, code };
}

function must<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`harness: ${what}`);
  return value;
}

export async function startSecurityHarness(options: HarnessOptions = {}): Promise<SecurityHarness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pos-security-'));
  const config: Partial<ServiceConfig> = {
    auth: {
      ...DEFAULT_AUTH_CONFIG,
      scryptN: 1024,
      loginAttemptsPerIp: 1_000_000,
      maxLoginAttemptsPerUser: 1_000_000,
    },
    ...options.config,
  };
  // Master key, card-token key and admin token made here (not by makeFileHarness) so tests can look for them.
  const masterKey = randomBytes(32);
  const cardTokenKey = randomBytes(32);
  const adminToken = newAdminToken();
  const clock = {
    t: Date.UTC(2026, 10, 29, 12, 0, 0),
    now(): number {
      return this.t;
    },
  };
  const carried = { masterKey, cardTokenKey, adminToken, clock };
  // backend/test/pg-helpers.ts probes the database when imported: only when PostgreSQL is asked for.
  const pgh = options.store === 'postgres' ? await import('../../backend/test/pg-helpers') : undefined;
  const schema = pgh?.freshSchemaName('sec');
  const h: Backend = await makeFileHarness(
    pgh === undefined || schema === undefined
      ? join(dataDir, 'backend.sqlite')
      : { open: () => openPostgresStore({ url: pgh.PG_URL, schema }) },
    config,
    carried,
  );
  const cleanup = async (): Promise<void> => {
    await h.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (schema !== undefined) await pgh?.dropSchemas([schema]);
  };
  try {
    await h.store.createApiToken({
      id: 'tok_admin',
      tokenHash: hashApiToken(adminToken),
      label: 'security harness admin',
      role: 'admin',
      merchantId: null,
      createdBy: null,
      createdAt: clock.now(),
      expiresAt: null,
      revokedAt: null,
    });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const address = h.app.server.address();
    if (address === null || typeof address === 'string') throw new Error('harness: no port');
    const base = `http://127.0.0.1:${address.port}`;

    const send = async (
      method: Method,
      path: string,
      headers: Record<string, string>,
      body: unknown,
    ): Promise<Res> => {
      const init: RequestInit = { method, headers: { ...headers }, redirect: 'manual' };
      if (body !== undefined) {
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
        const lower = Object.keys(headers).map((k) => k.toLowerCase());
        if (!lower.includes('content-type'))
          (init.headers as Record<string, string>)['content-type'] = 'application/json';
      }
      return parse(await fetch(`${base}${path}`, init));
    };
    const adminCall = async (method: Method, path: string, body?: unknown): Promise<Res> =>
      send(method, path, { authorization: `Bearer ${h.adminToken}` }, body);

    const login = async (username: string): Promise<Session> => {
      const res = await send('POST', '/v1/auth/login', {}, { username, password: PASSWORD });
      if (res.status !== 200) throw new Error(`harness: login ${username}: ${res.text}`);
      const setCookie = must(res.headers.get('set-cookie') ?? undefined, 'no session cookie');
      const csrf = must((res.json as { csrfToken?: string }).csrfToken, 'no CSRF token');
      return { cookie: must(setCookie.split(';')[0], 'cookie'), csrf, setCookie };
    };

    await seedReferenceValues(h);
    const tenants = {} as Record<TenantName, Tenant>;
    for (const name of ['A', 'B'] as const) {
      const m = await adminCall('POST', '/v1/merchants', { name: `Merchant ${name}` });
      const merchantId = must((m.json as { merchantId?: string }).merchantId, `merchant ${name}: ${m.text}`);
      const { t } = await enrollInto(h, merchantId);
      tenants[name] = { merchantId, terminalId: t.id, terminal: t };
    }

    const principals = {} as Record<PrincipalName, Principal>;
    for (const name of PRINCIPAL_NAMES) {
      const { role, tenant } = PRINCIPALS[name];
      const merchantId = tenant === null ? null : tenants[tenant].merchantId;
      const username = `sec-${name.toLowerCase()}`;
      const u = await adminCall('POST', '/v1/users', { username, password: PASSWORD, role, merchantId });
      const userId = must((u.json as { userId?: string }).userId, `user ${name}: ${u.text}`);
      const t = await adminCall('POST', '/v1/tokens', {
        label: name,
        role,
        merchantId,
        expiresInS: 30 * 24 * 3600,
      });
      const tok = t.json as { tokenId?: string; token?: string };
      principals[name] = {
        name,
        role,
        tenant,
        merchantId,
        username,
        userId,
        tokenId: must(tok.tokenId, `token ${name}: ${t.text}`),
        token: must(tok.token, `token ${name}`),
        session: await login(username),
      };
    }

    const terminalOf = (x: TenantName | SimTerminal): SimTerminal =>
      typeof x === 'string' ? tenants[x].terminal : x;

    const sec: SecurityHarness = {
      h,
      base,
      masterKey,
      cardTokenKey,
      dataDir,
      principals,
      tenants,
      async request(method, path, opts = {}) {
        const headers: Record<string, string> = {};
        if (opts.as !== undefined) {
          const p = principals[opts.as];
          if (opts.via === 'session') {
            headers['cookie'] = p.session.cookie;
            if (method !== 'GET') headers['x-csrf-token'] = p.session.csrf;
          } else {
            headers['authorization'] = `Bearer ${p.token}`;
          }
        }
        return send(method, path, { ...headers, ...opts.headers }, opts.body);
      },
      async terminal(x, method, path, body, opts = {}) {
        const t = terminalOf(x);
        const raw = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
        const headers: Record<string, string> = {};
        if (opts.ticket !== undefined) headers['authorization'] = `PosTicket ${opts.ticket}`;
        if (opts.noProof !== true) {
          headers['pos-proof'] = (opts.signer ?? t).proof(method, path, raw, {
            kid: opts.kid ?? t.id,
            ...(opts.ticket === undefined ? {} : { ticket: opts.ticket }),
          });
        }
        return send(method, path, { ...headers, ...opts.headers }, body === undefined ? undefined : raw);
      },
      async ticket(x) {
        const t = terminalOf(x);
        const c = await send('POST', '/v1/challenges', {}, { terminalId: t.id });
        const challenge = must((c.json as { challenge?: string }).challenge, `challenge: ${c.text}`);
        const res = await sec.terminal(t, 'POST', '/v1/attestations', {
          evidence: t.evidence(challenge, 'periodic'),
        });
        return must((res.json as { ticket?: { jws?: string } }).ticket?.jws, `no ticket: ${res.text}`);
      },
      login: (name) => login(principals[name].username),
      async enroll(tenant) {
        return (await enrollInto(h, tenants[tenant].merchantId)).t;
      },
      close: cleanup,
    };
    return sec;
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** `error.code` of a parsed response, for messages. */
export function describeRes(res: Res): string {
  return `${res.status} ${res.code ?? res.text.slice(0, 200)}`;
}

/**
 * What a refused request must not change, as one comparable string: the audit head (every change is
 * audited), halts, terminals, merchants, users, API tokens, reference values, policies.
 */
export async function storeState(sec: SecurityHarness): Promise<string> {
  const st = sec.h.store;
  return JSON.stringify({
    audit: (await st.auditHead())?.seq ?? 0,
    halts: await st.listHalts({ activeOnly: false, limit: 10_000 }),
    terminals: await Promise.all(
      [sec.tenants.A.terminalId, sec.tenants.B.terminalId].map((id) => st.getTerminal(id)),
    ),
    merchants: await st.listMerchants(),
    users: await st.listOperators(),
    tokens: await st.listApiTokens(),
    referenceValues: await st.listReferenceValues(),
    policies: await st.listPolicies(),
  });
}

export interface EventStream {
  readonly status: number;
  /** Everything received so far. */
  text(): string;
  /** Reads until `done(text)` holds (rejects when the stream ends first); resolves to the text. */
  until(done: (text: string) => boolean): Promise<string>;
  close(): void;
}

/** Opens GET /v1/events (Server-Sent Events) as a principal over a real connection. */
export async function openEvents(
  sec: SecurityHarness,
  as: PrincipalName,
  via: 'token' | 'session' = 'token',
): Promise<EventStream> {
  const abort = new AbortController();
  const p = sec.principals[as];
  const credential: Record<string, string> =
    via === 'token' ? { authorization: `Bearer ${p.token}` } : { cookie: p.session.cookie };
  const res = await fetch(`${sec.base}/v1/events`, {
    headers: { accept: 'text/event-stream', ...credential },
    signal: abort.signal,
  });
  const reader = (res.body as ReadableStream<Uint8Array> | null)?.getReader();
  const decoder = new TextDecoder();
  let text = '';
  return {
    status: res.status,
    text: () => text,
    async until(done) {
      if (reader === undefined) throw new Error('harness: no event stream body');
      while (!done(text)) {
        const chunk = await reader.read();
        if (chunk.done) throw new Error(`harness: event stream ended: ${text}`);
        text += decoder.decode(chunk.value, { stream: true });
      }
      return text;
    },
    close: () => abort.abort(),
  };
}
