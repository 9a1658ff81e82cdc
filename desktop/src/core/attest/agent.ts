/**
 * The attestation agent: makes, signs and sends evidence, and keeps the schedule.
 *
 * - When: `start()` attests once (`startup`), then every interval the back-end sets
 *   (`attestationIntervalS` of its answer; until it says, `defaultIntervalMs`); `beforeTransaction()`
 *   (`pre-transaction`) and `prePin(nonce)` (`pre-pin`, bound to the reader's transaction nonce) on
 *   demand. A failed periodic attempt is retried at the next interval; attempts never overlap (one at
 *   a time, in call order).
 * - What: a fresh challenge from the back-end, every collector (`collectAll`), the reader's signed
 *   status made for that challenge when a reader is connected, the claims (`evidenceClaims`), signed
 *   with the device key (shared `signEvidence`), the key wiped after signing.
 * - The counter: strictly increasing per terminal (the back-end refuses an equal or lower one as a
 *   replay), so the next value is written to the key store before the evidence is signed: a crash
 *   between the two wastes a number, never reuses one.
 *
 * The back-end transport (challenge, submit) is a port: the HTTP client implements it; tests use fakes.
 */
import { signEvidence, wipe, type EvidencePurpose, type ReaderEvidence, type Result } from '@pos/shared';
import type { KeyStore } from '../keys/store';
import type { DesktopCode } from '../result';
import type { EngineClock } from '../transaction/ports';
import { evidenceClaims, type Collected } from './evidence';

export interface AttestAnswer {
  /** The back-end's verdict tier (`affirming`, `warning`, `contraindicated`, `none`). */
  readonly verdict: string;
  readonly halted?: boolean;
  /** When to attest next, seconds (the back-end's `attestationIntervalS`). */
  readonly intervalS?: number;
  /** The ticket, when the verdict allows one: PIN entry for pre-pin, otherwise a session ticket. */
  readonly ticket?: string;
  readonly ticketUse?: 'session' | 'pin-entry';
  /** The ticket's expiry, seconds since the epoch. */
  readonly ticketExpiresAt?: number;
  /** The verdict's reason codes (for a status display; never evidence). */
  readonly reasons?: readonly string[];
  /** The same reasons as the back-end words them for a merchant (same order as `reasons`). */
  readonly reasonTexts?: readonly string[];
}

export interface AttestTransport {
  challenge(): Promise<Result<{ challenge: string }, DesktopCode>>;
  submit(input: { evidence: string; nonce?: string }): Promise<Result<{ answer: AttestAnswer }, DesktopCode>>;
}

export interface AttestationAgentOptions {
  readonly transport: AttestTransport;
  readonly keyStore: KeyStore;
  readonly collect: () => Promise<Collected>;
  /** The reader's signed status for this challenge, or undefined when no reader is connected. */
  readonly readerStatus?: (challenge: string) => Promise<ReaderEvidence | undefined>;
  readonly clock: EngineClock;
  readonly defaultIntervalMs?: number;
  /** Each finished attempt (for status displays and logs: purpose, ok, code, verdict; no evidence). */
  readonly onAttempt?: (e: {
    purpose: EvidencePurpose;
    ok: boolean;
    code?: DesktopCode;
    verdict?: string;
  }) => void;
}

export const DEFAULT_INTERVAL_MS = 300_000;

export class AttestationAgent {
  #queue: Promise<unknown> = Promise.resolve();
  #timer: unknown;
  #intervalMs: number;
  #stopped = false;

  constructor(private readonly opts: AttestationAgentOptions) {
    this.#intervalMs = opts.defaultIntervalMs ?? DEFAULT_INTERVAL_MS;
  }

  get intervalMs(): number {
    return this.#intervalMs;
  }

  /** Attests at start, then keeps the periodic schedule until `stop()`. */
  async start(): Promise<Result<{ answer: AttestAnswer }, DesktopCode>> {
    const r = await this.attest('startup');
    this.#schedule();
    return r;
  }

  stop(): void {
    this.#stopped = true;
    this.opts.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  beforeTransaction(): Promise<Result<{ answer: AttestAnswer }, DesktopCode>> {
    return this.attest('pre-transaction');
  }

  prePin(nonce: string): Promise<Result<{ answer: AttestAnswer }, DesktopCode>> {
    return this.attest('pre-pin', nonce);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.opts.clock.clearTimeout(this.#timer);
    this.#timer = this.opts.clock.setTimeout(() => {
      this.#timer = undefined;
      void this.attest('periodic').finally(() => this.#schedule());
    }, this.#intervalMs);
  }

  /** One attempt, after any attempt already running. */
  attest(purpose: EvidencePurpose, nonce?: string): Promise<Result<{ answer: AttestAnswer }, DesktopCode>> {
    const run = (): Promise<Result<{ answer: AttestAnswer }, DesktopCode>> =>
      this.#attest(purpose, nonce).then((r) => {
        this.opts.onAttempt?.({
          purpose,
          ok: r.ok,
          ...(r.ok ? { verdict: r.answer.verdict } : { code: r.code }),
        });
        return r;
      });
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #attest(
    purpose: EvidencePurpose,
    nonce?: string,
  ): Promise<Result<{ answer: AttestAnswer }, DesktopCode>> {
    const { keyStore, transport } = this.opts;
    const cfg = await keyStore.getConfig();
    if (!cfg.ok) return cfg;
    const config = cfg.config;
    if (config?.terminalId === undefined)
      return { ok: false, code: 'POS_ERR_DESKTOP_NOT_ENROLLED', detail: 'the terminal is not enrolled' };
    const ch = await transport.challenge();
    if (!ch.ok) return ch;
    const [collected, reader] = await Promise.all([
      this.opts.collect(),
      this.opts.readerStatus?.(ch.challenge).catch(() => undefined) ?? Promise.resolve(undefined),
    ]);
    // Reserve the counter before signing: never reused, even across a crash.
    const counter = config.evidenceCounter + 1;
    const saved = await keyStore.putConfig({ ...config, evidenceCounter: counter });
    if (!saved.ok) return saved;
    const claims = evidenceClaims(collected, {
      iss: config.terminalId,
      challenge: ch.challenge,
      counter,
      purpose,
      ...(nonce === undefined ? {} : { nonce }),
      ...(reader === undefined ? {} : { reader }),
      nowMs: this.opts.clock.now(),
    });
    if (!claims.ok) return claims;
    const key = await keyStore.getDeviceKey();
    if (!key.ok) return key;
    if (key.secretKey === undefined)
      return { ok: false, code: 'POS_ERR_DESKTOP_NOT_ENROLLED', detail: 'no device key is stored' };
    const signed = signEvidence(claims.claims, key.secretKey);
    wipe(key.secretKey);
    if (!signed.ok) return signed;
    const sent = await transport.submit({ evidence: signed.jws, ...(nonce === undefined ? {} : { nonce }) });
    if (!sent.ok) return sent;
    const s = sent.answer.intervalS;
    if (s !== undefined && Number.isFinite(s) && s > 0)
      this.#intervalMs = Math.max(5_000, Math.round(s * 1000));
    return sent;
  }
}
