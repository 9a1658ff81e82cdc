/**
 * Test harness: an app on an in-memory SQLite store with an injected clock, an admin token, and a
 * simulated terminal (device key on node:crypto) that makes evidence and Pos-Proofs.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import {
  encodeReaderStatus,
  err,
  jwkThumbprint,
  ok,
  p256Signer,
  toBase64url,
  type P256Jwk,
  type ReaderStatus,
} from '@pos/shared';
import type { ReaderIdentity } from '@pos/device-sim/state/identity';
import type { ReaderStatusReport, ReaderStatusVerifier } from '../src/server/domain';
import { buildApp } from '../src/server/app';
import { hashApiToken, newAdminToken, type ServiceConfig } from '../src/server/context';
import { KeyRing } from '../src/keys/keyring';
import { openSqliteStore } from '../src/store/sqlite';
import type { Store } from '../src/store/types';

export const ISSUER = 'http://backend.test';
export const CODE_HASH = 'ab'.repeat(32);
export const APP_VERSION = '1.2.3';

const GOOD_SIGNALS = [
  'debugger',
  'inspector',
  'devtools',
  'node-options',
  'run-as-node',
  'suspicious-env',
  'virtual-machine',
  'remote-session',
  'screen-capture-protection',
];

/**
 * A reader-status stand-in (the reader protocol's verifier is not wired yet): the status bytes are
 * JSON of the report and the signature must read "good".
 */
export const standInReaderVerifier: ReaderStatusVerifier = {
  verify(signed) {
    if (Buffer.from(signed.signature).toString('utf8') !== 'good') {
      return err('POS_ERR_READER_STATUS_SIGNATURE', 'stand-in: bad signature');
    }
    return ok({ report: JSON.parse(Buffer.from(signed.status).toString('utf8')) as ReaderStatusReport });
  },
};

/** The stand-in reader numbers its reports like a real one: strictly increasing. */
let readerStatusSeq = 0;
export function readerEvidence(serial: string, now: number, signature = 'good'): Record<string, unknown> {
  const report: ReaderStatusReport = { serial, tampered: false, time: now, seq: ++readerStatusSeq };
  return {
    status: toBase64url(Buffer.from(JSON.stringify(report))),
    signature: toBase64url(Buffer.from(signature)),
    chain: [toBase64url(Buffer.from('cert'))],
  };
}

export interface Harness {
  app: FastifyInstance;
  store: Store;
  keys: KeyRing;
  clock: { t: number; now(): number };
  adminToken: string;
  admin(method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function makeHarness(
  config: Partial<ServiceConfig> = {},
  reader: { readerCaRoots: readonly Uint8Array[] } | undefined = undefined,
): Promise<Harness> {
  const store = openSqliteStore({ path: ':memory:' });
  const clock = {
    t: Date.UTC(2026, 10, 29, 12, 0, 0),
    now(): number {
      return this.t;
    },
  };
  const ticketLifetimeS = config.ticketLifetimeS ?? 60;
  const opened = await KeyRing.open(store, randomBytes(32), clock.now(), { ticketLifetimeS });
  if (!opened.ok) throw new Error(opened.code);
  const keys = opened.ring;
  const app = await buildApp({
    store,
    keys,
    clock,
    // Development mode explicitly (dev-2 when no policy is activated); H2 tests pass development: false.
    config: { issuer: ISSUER, rateLimitPerMinute: false, development: true, ...config },
    // Without `reader`: a stand-in reader verifier; with it: the real one over the given CA roots.
    ...(reader === undefined
      ? { readerStatusVerifier: standInReaderVerifier, readerCaRoots: [new Uint8Array([1])] }
      : { readerCaRoots: reader.readerCaRoots }),
    defaultMetrics: false,
  });
  const adminToken = newAdminToken();
  await store.createApiToken({
    id: 'tok_admin',
    tokenHash: hashApiToken(adminToken),
    label: 'test admin',
    role: 'admin',
    merchantId: null,
    createdBy: null,
    createdAt: clock.now(),
    expiresAt: null,
    revokedAt: null,
  });
  const h: Harness = {
    app,
    store,
    keys,
    clock,
    adminToken,
    admin: (method, url, body) =>
      app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${adminToken}` },
        ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
      }),
    close: () => app.close(),
  };
  return h;
}

/** Reference values matching the simulated terminal's evidence. */
export async function seedReferenceValues(h: Harness): Promise<void> {
  const res = await h.admin('POST', '/v1/reference-values', {
    version: APP_VERSION,
    build: 'release',
    codeHashes: [CODE_HASH],
    allowedShells: ['headless', 'electron'],
  });
  if (res.statusCode !== 201) throw new Error(`reference values: ${res.body}`);
}

const b64json = (o: unknown): string => toBase64url(Buffer.from(JSON.stringify(o), 'utf8'));
const sha256b64 = (data: string | Buffer): string => createHash('sha256').update(data).digest('base64url');

let simReaderSerials = 0;

export class SimTerminal {
  readonly privateKey: KeyObject;
  readonly jwk: P256Jwk;
  readonly jkt: string;
  id = '';
  counter = 0;
  /** Unique per simulated terminal: one reader serial on two terminals is a correlation finding. */
  readerSerial = `RDR-${String(++simReaderSerials).padStart(4, '0')}`;
  /** The signed reader status the evidence carries (default: the stand-in's). */
  readerStatus: (now: number) => Record<string, unknown> = (now) => readerEvidence(this.readerSerial, now);

  constructor(private readonly h: Harness) {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = pair.privateKey;
    const j = pair.publicKey.export({ format: 'jwk' }) as { x: string; y: string };
    this.jwk = { kty: 'EC', crv: 'P-256', x: j.x, y: j.y };
    this.jkt = jwkThumbprint(this.jwk);
  }

  signJws(header: Record<string, unknown>, payload: unknown): string {
    const input = `${b64json(header)}.${b64json(payload)}`;
    const sig = sign('sha256', Buffer.from(input), { key: this.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${toBase64url(sig)}`;
  }

  claims(challenge: string, purpose: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    this.counter += 1;
    return {
      iss: purpose === 'enrollment' ? 'enrolling' : this.id,
      iat: Math.floor(this.h.clock.now() / 1000),
      challenge,
      counter: this.counter,
      purpose,
      app: { version: APP_VERSION, build: 'release', codeHash: CODE_HASH },
      shell: 'headless',
      measurements: GOOD_SIGNALS.map((name) => ({ name, status: 'ok', method: 'test' })),
      reader: this.readerStatus(this.h.clock.now()),
      time: this.h.clock.now(),
      ...extra,
    };
  }

  evidence(challenge: string, purpose: string, extra: Record<string, unknown> = {}): string {
    const header: Record<string, unknown> = { alg: 'ES256', typ: 'pos-evidence+jwt' };
    if (purpose === 'enrollment') header['jwk'] = this.jwk;
    return this.signJws(header, this.claims(challenge, purpose, extra));
  }

  proof(
    method: string,
    path: string,
    body: string,
    opts: { ticket?: string; kid?: string; iat?: number; jti?: string } = {},
  ): string {
    return this.signJws(
      { alg: 'ES256', typ: 'pos-proof+jwt', kid: opts.kid ?? this.id },
      {
        htm: method,
        htu: `${ISSUER}${path}`,
        iat: opts.iat ?? Math.floor(this.h.clock.now() / 1000),
        jti: opts.jti ?? toBase64url(randomBytes(16)),
        bh: sha256b64(Buffer.from(body, 'utf8')),
        ...(opts.ticket === undefined ? {} : { ath: sha256b64(opts.ticket) }),
      },
    );
  }

  async challenge(forEnrollment = false): Promise<string> {
    const res = await this.h.app.inject({
      method: 'POST',
      url: '/v1/challenges',
      payload: forEnrollment ? {} : { terminalId: this.id },
    });
    if (res.statusCode !== 201) throw new Error(`challenge: ${res.body}`);
    return res.json<{ challenge: string }>().challenge;
  }

  /** Creates a merchant and a code, then enrolls. Returns the enrollment response. */
  async enroll(): Promise<LightMyRequestResponse> {
    const m = await this.h.admin('POST', '/v1/merchants', { name: 'Corner shop' });
    const merchantId = m.json<{ merchantId: string }>().merchantId;
    const c = await this.h.admin('POST', `/v1/merchants/${merchantId}/enrollment-codes`, {});
    const code = c.json<{ code: string }>().code;
    const challenge = await this.challenge(true);
    const res = await this.h.app.inject({
      method: 'POST',
      url: '/v1/enrollments',
      payload: {
        code,
        deviceJwk: this.jwk,
        readerSerial: this.readerSerial,
        evidence: this.evidence(challenge, 'enrollment'),
      },
    });
    if (res.statusCode === 201) this.id = res.json<{ terminalId: string }>().terminalId;
    return res;
  }

  /** Sends evidence (already made) to /v1/attestations with a fresh proof. */
  async submit(
    evidence: string,
    extra: Record<string, unknown> = {},
    proofOpts: { kid?: string } = {},
  ): Promise<LightMyRequestResponse> {
    const body = JSON.stringify({ evidence, ...extra });
    return this.h.app.inject({
      method: 'POST',
      url: '/v1/attestations',
      headers: {
        'content-type': 'application/json',
        'pos-proof': this.proof('POST', '/v1/attestations', body, proofOpts),
      },
      payload: body,
    });
  }

  async attest(
    purpose = 'periodic',
    extra: Record<string, unknown> = {},
    body: Record<string, unknown> = {},
  ): Promise<LightMyRequestResponse> {
    const challenge = await this.challenge();
    return this.submit(this.evidence(challenge, purpose, extra), body);
  }

  /**
   * POST /v1/transactions under `ticket` with a well-formed but unusable body: for the checks that come
   * before the body is read (terminal state, halts, ticket); its status and error code.
   */
  async transact(ticket: string): Promise<{ status: number; code: string | undefined }> {
    const payload = JSON.stringify({
      amount: 100,
      currency: 'EUR',
      ksn: '1234567890123456000000AA',
      cardData: { iv: 'AAAAAAAAAAAAAAAA', ct: 'A'.repeat(22) },
    });
    const res = await this.h.app.inject({
      method: 'POST',
      url: '/v1/transactions',
      headers: {
        'content-type': 'application/json',
        authorization: `PosTicket ${ticket}`,
        'pos-proof': this.proof('POST', '/v1/transactions', payload, { ticket }),
      },
      payload,
    });
    return { status: res.statusCode, code: res.json<{ error?: { code: string } }>().error?.code };
  }
}

/**
 * The harness's shape over real HTTP (a `pos-backend` process): `inject` is a fetch to `base()`, so the
 * simulated terminals above speak to a real process (the URL may change, e.g. across a restart).
 * `store` and `keys` are not there (the process owns them); the clock is the wall clock. A request
 * that gets no answer (connection refused or reset) rejects, as fetch does.
 */
export function httpHarness(base: () => string, adminToken: string): Harness {
  const app = {
    async inject(req: {
      method: string;
      url: string;
      headers?: Record<string, string>;
      payload?: unknown;
    }): Promise<LightMyRequestResponse> {
      const body =
        req.payload === undefined
          ? undefined
          : typeof req.payload === 'string'
            ? req.payload
            : JSON.stringify(req.payload);
      const res = await fetch(`${base()}${req.url}`, {
        method: req.method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(req.headers ?? {}),
        },
        ...(body === undefined ? {} : { body }),
      });
      const text = await res.text();
      return {
        statusCode: res.status,
        headers: Object.fromEntries(res.headers),
        body: text,
        json: () => JSON.parse(text) as unknown,
      } as unknown as LightMyRequestResponse;
    },
  } as unknown as FastifyInstance;
  return {
    app,
    adminToken,
    clock: {
      t: 0,
      now: () => Date.now(),
    },
    store: undefined as never,
    keys: undefined as never,
    admin: (method, url, body) =>
      app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${adminToken}` },
        ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
      }),
    close: () => Promise.resolve(),
  };
}

/**
 * A reader status record as a genuine reader makes it for `identity` at `now` (ms) with sequence
 * number `seq`; `over` replaces fields (a tampered reader, another serial, a challenge...).
 */
export function realReaderStatus(
  identity: Pick<ReaderIdentity, 'serial'>,
  now: number,
  seq: number,
  over: Partial<ReaderStatus> = {},
): ReaderStatus {
  return {
    v: 1,
    serial: identity.serial,
    fw: '1.0.0',
    fwHash: new Uint8Array(32).fill(0xab),
    tamper: false,
    ksnCounter: 7,
    battery: 90,
    time: Math.floor(now / 1000),
    seq,
    ...over,
  };
}

/**
 * A status (a record, encoded as the reader encodes it, or raw bytes) signed as the reader signs it
 * with `who`'s key, with `who`'s certificate as chain: the `reader` member of attestation evidence.
 */
export function signReaderStatus(
  status: ReaderStatus | Uint8Array,
  who: Pick<ReaderIdentity, 'privateKey' | 'certificateDer'>,
): Record<string, unknown> {
  const bytes = status instanceof Uint8Array ? status : encodeReaderStatus(status);
  return {
    status: toBase64url(bytes),
    signature: toBase64url(p256Signer(who.privateKey).sign(bytes) as Uint8Array),
    chain: [toBase64url(who.certificateDer)],
  };
}

/**
 * Gives `t` a real reader: `identity`'s serial (a reader identity from device-sim's createIdentity,
 * under its development manufacturer CA), and status reports signed with its key, numbered strictly
 * increasing as a real reader numbers them; `over` replaces fields of every report.
 */
export function useRealReader(
  t: SimTerminal,
  identity: ReaderIdentity,
  over: Partial<ReaderStatus> = {},
): void {
  t.readerSerial = identity.serial;
  let seq = 0;
  t.readerStatus = (now) => signReaderStatus(realReaderStatus(identity, now, ++seq, over), identity);
}

/**
 * Routes of the OpenAPI document that take no operator credential: public, terminal (Pos-Proof /
 * PosTicket) and login. The authorization tests (server/authz.test.ts, test/security) classify every
 * other route of the document.
 */
export const NON_OPERATOR_API_ROUTES: readonly string[] = [
  'GET /healthz',
  'GET /readyz',
  'GET /metrics',
  'GET /openapi.json',
  'GET /.well-known/jwks.json',
  'POST /v1/challenges',
  'POST /v1/enrollments',
  'POST /v1/attestations',
  'POST /v1/transactions',
  'POST /v1/auth/login',
];
