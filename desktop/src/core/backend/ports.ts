/**
 * The back-end client behind the core's ports: the attestation agent's `AttestTransport` and the
 * transaction engine's `BackendPort`.
 *
 * - `HttpAttestTransport`: challenge for the enrolled terminal, evidence to `/v1/attestations`; the
 *   answer keeps the verdict, the halt flag, the interval and the ticket (its use and expiry). Every
 *   answer is also handed to `onAnswer` (the status file).
 * - `HttpBackendPort`: `prePin({nonce})` runs the agent's pre-PIN attestation (bound to the reader's
 *   transaction nonce) and answers the PIN-entry ticket only when the back-end gave one of that use;
 *   `submit` turns the reader's encrypted card data and PIN block into the transaction request (KSN
 *   and PIN block hex, card data base64url), sends it with the PIN-entry ticket (or, without a PIN,
 *   the latest session ticket) and maps the acquirer's answer.
 */
import { toBase64url, toHex, type Result } from '@pos/shared';
import { z } from 'zod';
import type { AttestAnswer, AttestationAgent, AttestTransport } from '../attest/agent';
import type { KeyStore } from '../keys/store';
import type { DesktopCode } from '../result';
import type { BackendPort, PinTicket, SubmitInput } from '../transaction/ports';
import type { AttestOut, BackendClient } from './client';

export function attestAnswer(a: AttestOut): AttestAnswer {
  return {
    verdict: a.verdict.tier,
    halted: a.halted,
    intervalS: a.attestationIntervalS,
    reasons: a.verdict.reasons.map((r) => r.code),
    reasonTexts: a.verdict.reasons.map((r) => r.text),
    ...(a.ticket === undefined
      ? {}
      : { ticket: a.ticket.jws, ticketUse: a.ticket.use, ticketExpiresAt: a.ticket.expiresAt }),
  };
}

export class HttpAttestTransport implements AttestTransport {
  constructor(
    private readonly client: BackendClient,
    private readonly keyStore: KeyStore,
    /** Each answer, before submit returns (so a status write finishes inside the agent's attempt). */
    private readonly onAnswer?: (a: AttestAnswer) => void | Promise<void>,
  ) {}

  async challenge(): Promise<Result<{ challenge: string }, DesktopCode>> {
    const cfg = await this.keyStore.getConfig();
    if (!cfg.ok) return cfg;
    const id = cfg.config?.terminalId;
    if (id === undefined)
      return { ok: false, code: 'POS_ERR_DESKTOP_NOT_ENROLLED', detail: 'the terminal is not enrolled' };
    return this.client.challenge(id);
  }

  async submit(input: {
    evidence: string;
    nonce?: string;
  }): Promise<Result<{ answer: AttestAnswer }, DesktopCode>> {
    const r = await this.client.attest(input);
    if (!r.ok) return r;
    const answer = attestAnswer(r.answer);
    await this.onAnswer?.(answer);
    return { ok: true, answer };
  }
}

/** The reader's encrypted card data as its card event carries it (bytes). */
const CardWire = z.object({
  ksn: z.instanceof(Uint8Array).refine((b) => b.length === 12),
  iv: z.instanceof(Uint8Array).refine((b) => b.length === 12),
  ct: z.instanceof(Uint8Array).refine((b) => b.length >= 17 && b.length <= 256),
});

/** A session ticket, for a sale without PIN. */
export interface SessionTicketSource {
  sessionTicket(): Promise<Result<{ jws: string }, DesktopCode>>;
}

export class HttpBackendPort implements BackendPort {
  constructor(
    private readonly client: BackendClient,
    private readonly agent: AttestationAgent,
    private readonly session: SessionTicketSource,
  ) {}

  async prePin(input: { readonly nonce: string }): Promise<Result<{ ticket: PinTicket }, DesktopCode>> {
    const r = await this.agent.prePin(input.nonce);
    if (!r.ok) return r;
    const a = r.answer;
    if (a.ticket === undefined || a.ticketUse !== 'pin-entry' || a.ticketExpiresAt === undefined) {
      const reasons = (a.reasons ?? []).length > 0 ? `: ${(a.reasons ?? []).join(', ')}` : '';
      const why =
        a.halted === true
          ? `the terminal is halted, verdict ${a.verdict}${reasons}`
          : `verdict ${a.verdict}${reasons}`;
      return { ok: false, code: 'POS_ERR_DESKTOP_BACKEND_NO_TICKET', detail: `no PIN-entry ticket (${why})` };
    }
    return { ok: true, ticket: { jws: a.ticket, exp: a.ticketExpiresAt, nonce: input.nonce } };
  }

  async submit(
    input: SubmitInput,
  ): Promise<Result<{ outcome: 'approved' | 'declined'; code?: DesktopCode }, DesktopCode>> {
    const card = CardWire.safeParse(input.card);
    if (!card.success)
      return {
        ok: false,
        code: 'POS_ERR_DESKTOP_TXN_READER',
        detail: 'the card data from the reader is malformed',
      };
    let ticket: string;
    if (input.pinBlock !== undefined) {
      if (input.ticket === undefined)
        return {
          ok: false,
          code: 'POS_ERR_DESKTOP_TXN_TICKET_MISSING',
          detail: 'a PIN block without a ticket',
        };
      ticket = input.ticket.jws;
    } else {
      const s = await this.session.sessionTicket();
      if (!s.ok) return s;
      ticket = s.jws;
    }
    const r = await this.client.transact(
      {
        amount: input.amountMinor,
        currency: input.currency,
        ksn: toHex(input.pinBlock?.ksn ?? card.data.ksn),
        cardData: { iv: toBase64url(card.data.iv), ct: toBase64url(card.data.ct) },
        ...(input.pinBlock === undefined ? {} : { pinBlock: toHex(input.pinBlock.block) }),
      },
      ticket,
    );
    if (!r.ok) return r;
    if (r.out.approved) return { ok: true, outcome: 'approved' };
    const code = r.out.code;
    return code !== undefined && /^POS_ERR_[A-Z0-9_]+$/.test(code)
      ? { ok: true, outcome: 'declined', code: code as DesktopCode }
      : { ok: true, outcome: 'declined' };
  }
}
