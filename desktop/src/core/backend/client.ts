/**
 * The back-end HTTP client (docs/backend.md): challenges, enrollment, attestations with a Pos-Proof,
 * transactions with `Authorization: PosTicket` and a proof bound to the ticket. Every answer is parsed
 * with a zod schema; every failure is a coded result (requestJson). The device key is read from the
 * key store for each proof and wiped right after signing.
 */
import { wipe, type P256Jwk, type Result } from '@pos/shared';
import { z } from 'zod';
import { isAllowedBackendUrl } from '../../api/contract';
import type { KeyStore } from '../keys/store';
import type { DesktopCode } from '../result';
import { requestJson, type FetchFn } from './http';
import { signProof } from './proof';

const TierSchema = z.enum(['affirming', 'warning', 'contraindicated', 'none']);
export const VerdictSchema = z.object({
  tier: TierSchema,
  reasons: z.array(z.object({ code: z.string().max(200), text: z.string().max(2000) })).max(100),
  policyVersion: z.string().max(200),
});
export const TicketOutSchema = z.object({
  jws: z.string().min(1).max(8192),
  use: z.enum(['session', 'pin-entry']),
  expiresAt: z.number().int().positive(),
});
export const JwksSchema = z.object({
  keys: z.array(z.record(z.string(), z.unknown())).max(32),
});
export const ChallengeOutSchema = z.object({ challenge: z.string().min(16).max(128), expiresAt: z.number() });
export const EnrollOutSchema = z.object({
  terminalId: z.string().min(1).max(128),
  merchantId: z.string().min(1).max(128),
  jwks: JwksSchema,
  attestationIntervalS: z.number().int().positive(),
  verdict: VerdictSchema,
  ticket: TicketOutSchema.optional(),
});
export const AttestOutSchema = z.object({
  verdict: VerdictSchema,
  ticket: TicketOutSchema.optional(),
  halted: z.boolean(),
  nextAttestationAt: z.number().int(),
  attestationIntervalS: z.number().int().positive(),
});
export const TransactionOutSchema = z.object({
  transactionId: z.string().min(1).max(128),
  approved: z.boolean(),
  authCode: z.string().max(64).optional(),
  code: z.string().max(200).optional(),
  reason: z.string().max(2000).optional(),
  halted: z.boolean(),
});

export type Verdict = z.infer<typeof VerdictSchema>;
export type TicketOut = z.infer<typeof TicketOutSchema>;
export type EnrollOut = z.infer<typeof EnrollOutSchema>;
export type AttestOut = z.infer<typeof AttestOutSchema>;
export type TransactionOut = z.infer<typeof TransactionOutSchema>;

export interface TransactionRequest {
  readonly amount: number;
  readonly currency: string;
  /** Hex of the 12-byte AES DUKPT KSN. */
  readonly ksn: string;
  readonly cardData: { readonly iv: string; readonly ct: string };
  /** Hex of the 16-byte format 4 PIN block. */
  readonly pinBlock?: string;
}

export interface BackendClientOptions {
  /** The back-end's base URL, which is also its issuer (`htu` = base + path). */
  readonly baseUrl: string;
  readonly keyStore: KeyStore;
  readonly timeoutMs?: number;
  readonly fetch?: FetchFn;
  readonly now?: () => number;
}

export class BackendClient {
  readonly baseUrl: string;
  readonly #opts: BackendClientOptions;

  constructor(opts: BackendClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.#opts = opts;
  }

  #now(): number {
    return this.#opts.now?.() ?? Date.now();
  }

  /**
   * Refused before anything is sent or signed: plain http to a host that is not loopback (DESIGN
   * trust model 5). Enrollment checks the URL it is given; this also covers a stored configuration
   * edited afterwards, for every request and the push connection's proof.
   */
  #insecure(): { ok: false; code: DesktopCode; detail: string } | undefined {
    if (isAllowedBackendUrl(this.baseUrl)) return undefined;
    return {
      ok: false,
      code: 'POS_ERR_DESKTOP_BACKEND_INSECURE',
      detail: 'the back-end URL is not https, nor http to a loopback host',
    };
  }

  #req<S extends z.ZodType>(
    method: 'GET' | 'POST',
    path: string,
    schema: S,
    body?: string,
    headers?: Record<string, string>,
  ): Promise<Result<{ status: number; body: z.infer<S> }, DesktopCode>> {
    const insecure = this.#insecure();
    if (insecure !== undefined) return Promise.resolve(insecure);
    return requestJson(
      {
        method,
        url: this.baseUrl + path,
        ...(body === undefined ? {} : { body }),
        ...(headers === undefined ? {} : { headers }),
        ...(this.#opts.timeoutMs === undefined ? {} : { timeoutMs: this.#opts.timeoutMs }),
      },
      schema,
      this.#opts.fetch,
    );
  }

  /** A Pos-Proof for `method path` with this body (and ticket), signed with the stored device key. */
  async proof(
    method: string,
    path: string,
    body: string,
    ticket?: string,
  ): Promise<Result<{ proof: string }, DesktopCode>> {
    const insecure = this.#insecure();
    if (insecure !== undefined) return insecure;
    const cfg = await this.#opts.keyStore.getConfig();
    if (!cfg.ok) return cfg;
    const terminalId = cfg.config?.terminalId;
    if (terminalId === undefined)
      return { ok: false, code: 'POS_ERR_DESKTOP_NOT_ENROLLED', detail: 'the terminal is not enrolled' };
    const key = await this.#opts.keyStore.getDeviceKey();
    if (!key.ok) return key;
    if (key.secretKey === undefined)
      return { ok: false, code: 'POS_ERR_DESKTOP_NOT_ENROLLED', detail: 'no device key is stored' };
    try {
      const proof = signProof(key.secretKey, {
        terminalId,
        method,
        htu: this.baseUrl + path,
        body,
        ...(ticket === undefined ? {} : { ticket }),
        nowMs: this.#now(),
      });
      return { ok: true, proof };
    } finally {
      wipe(key.secretKey);
    }
  }

  /** `POST /v1/challenges`: for this terminal, or (no id) for enrollment. */
  async challenge(terminalId?: string): Promise<Result<{ challenge: string }, DesktopCode>> {
    const r = await this.#req(
      'POST',
      '/v1/challenges',
      ChallengeOutSchema,
      JSON.stringify(terminalId === undefined ? {} : { terminalId }),
    );
    return r.ok ? { ok: true, challenge: r.body.challenge } : r;
  }

  /** `POST /v1/enrollments` (no proof: the evidence is signed by the key being enrolled). */
  async enroll(input: {
    code: string;
    deviceJwk: P256Jwk;
    readerSerial: string;
    evidence: string;
  }): Promise<Result<{ enrolled: EnrollOut }, DesktopCode>> {
    const r = await this.#req('POST', '/v1/enrollments', EnrollOutSchema, JSON.stringify(input));
    return r.ok ? { ok: true, enrolled: r.body } : r;
  }

  /** `POST /v1/attestations` with a Pos-Proof. */
  async attest(input: {
    evidence: string;
    nonce?: string;
  }): Promise<Result<{ answer: AttestOut }, DesktopCode>> {
    const body = JSON.stringify(input);
    const p = await this.proof('POST', '/v1/attestations', body);
    if (!p.ok) return p;
    const r = await this.#req('POST', '/v1/attestations', AttestOutSchema, body, { 'pos-proof': p.proof });
    return r.ok ? { ok: true, answer: r.body } : r;
  }

  /** `POST /v1/transactions` with the ticket and a proof bound to it. */
  async transact(
    input: TransactionRequest,
    ticket: string,
  ): Promise<Result<{ out: TransactionOut }, DesktopCode>> {
    const body = JSON.stringify(input);
    const p = await this.proof('POST', '/v1/transactions', body, ticket);
    if (!p.ok) return p;
    const r = await this.#req('POST', '/v1/transactions', TransactionOutSchema, body, {
      'pos-proof': p.proof,
      authorization: `PosTicket ${ticket}`,
    });
    return r.ok ? { ok: true, out: r.body } : r;
  }

  /** The push connection's URL (`ws(s)://…/v1/push`). */
  pushUrl(): string {
    return this.baseUrl.replace(/^http/, 'ws') + '/v1/push';
  }

  /** A fresh proof for the push upgrade (`GET /v1/push`, empty body); throws when none can be made. */
  async pushProof(): Promise<string> {
    const p = await this.proof('GET', '/v1/push', '');
    if (!p.ok) throw new Error(p.code);
    return p.proof;
  }
}
