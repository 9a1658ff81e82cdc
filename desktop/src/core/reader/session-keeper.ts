/**
 * Every sale starts with a fresh attestation, and keeps the reader session's ticket fresh
 * (docs/reader-protocol.md §5.5): the reader starts no transaction once the session ticket it holds
 * has expired, and a session opened under a handshake-only ticket (`perm: []`) never starts one. So:
 *
 * - `ensureTransact()`, before each `start` (the sale's start): a `pre-transaction` attestation, always,
 *   one per start. Its verdict gates the sale: no `transact` session ticket (halted, contraindicated,
 *   status only) or no answer (back-end unreachable) ends the start with that code, before the reader
 *   is asked for a card. Its session ticket renews the session (the handshake as fallback), so the
 *   sale runs under the ticket of its own attestation; `SessionTickets` holds it as the newest, and the
 *   sale's `POST /v1/transactions` uses it.
 * - `afterAttestation(answer)`: every attestation that brings a session ticket (periodic,
 *   pre-transaction, start-up) is handed to the open reader session (`ReaderConnection.renew`). In
 *   the background a refusal does not end the session (a sale may be running in it): the session
 *   keeps its ticket, and the next sale's `ensureTransact` renews it, with the handshake as fallback.
 *   Never awaited inside the attestation.
 * - `renewExpired()`, when the reader refused a `start` as expired anyway (its clock ahead of ours):
 *   one renewal with a ticket newer than the session's (attesting only if the terminal has none).
 *
 * The terminal never verifies tickets (the reader does); it reads their `exp` and `perm` to decide
 * when to renew.
 */
import { err, ok, type Err, type Result } from '@pos/shared';
import type { AttestAnswer } from '../attest/agent';
import type { DesktopCode } from '../result';
import { readSessionGrant, type ReaderConnection, type RenewedVia } from './connection';

export interface SessionKeeperOptions {
  readonly connection: ReaderConnection;
  /** The newest session ticket the terminal holds (from its last attestation that gave one). */
  readonly latestTicket: () => { readonly jws: string; readonly exp: number } | undefined;
  /** A pre-transaction attestation; a session ticket it brings becomes `latestTicket()`. */
  readonly attest: () => Promise<Result<{ answer: AttestAnswer }, DesktopCode>>;
  /** Wall clock, seconds since the epoch. */
  readonly nowS?: () => number;
  /**
   * The time (s) a held ticket must have left for `renewExpired` to use it without attesting (default
   * 10; at most half the ticket's lifetime).
   */
  readonly marginS?: number;
  /** How long a sale waits for the reader to reconnect after a fallback handshake failed (ms). */
  readonly reconnectTimeoutMs?: number;
}

export const SESSION_RENEW_MARGIN_S = 10;
export const SESSION_RECONNECT_TIMEOUT_MS = 15_000;

export class ReaderSessionKeeper {
  readonly #opts: SessionKeeperOptions;
  readonly #nowS: () => number;
  readonly #marginS: number;
  /** The reader's last refusal of a renewal or of a handshake: why a session did not come back. */
  #lastRefusal: { code: DesktopCode; detail: string } | undefined;

  constructor(opts: SessionKeeperOptions) {
    this.#opts = opts;
    this.#nowS = opts.nowS ?? (() => Math.floor(Date.now() / 1000));
    this.#marginS = opts.marginS ?? SESSION_RENEW_MARGIN_S;
    const note = (e: { code: DesktopCode; detail: string }): void => {
      this.#lastRefusal = { code: e.code, detail: e.detail };
    };
    opts.connection.on('renew-refused', note);
    opts.connection.on('attempt-failed', note);
  }

  /** An attestation answered: a session ticket in it goes to the open reader session. */
  afterAttestation(answer: AttestAnswer): Promise<Result<{ via: RenewedVia }, DesktopCode>> {
    if (answer.ticket === undefined || answer.ticketUse !== 'session')
      return Promise.resolve(ok({ via: 'none' as const }));
    return this.#opts.connection.renew(answer.ticket, { fallback: false });
  }

  /**
   * Before a `start`: a pre-transaction attestation, whose verdict gates the sale and whose session
   * ticket the session then runs under. No reader session: the reader is lost (nothing is attested).
   */
  async ensureTransact(): Promise<Result<object, DesktopCode>> {
    if (this.#opts.connection.session === undefined)
      return err('POS_ERR_DESKTOP_READER_LOST', 'no reader is connected');
    this.#lastRefusal = undefined;
    const fresh = await this.#attestForTransact();
    return fresh.ok ? this.#renewWith(fresh.ticket) : fresh;
  }

  /** The reader refused a `start` as expired: one renewal with a ticket newer than the session's. */
  renewExpired(): Promise<Result<object, DesktopCode>> {
    return this.#renewWithNewer();
  }

  /** The reader's refusal noted since the renewal began (events arrive while it awaits). */
  #refusal(): { code: DesktopCode; detail: string } | undefined {
    return this.#lastRefusal;
  }

  /** Whether the reader is (or gets) connected within the reconnect timeout. */
  async #reconnected(): Promise<boolean> {
    const conn = this.#opts.connection;
    if (conn.session !== undefined) return true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      conn.whenConnected(),
      new Promise<void>((res) => {
        timer = setTimeout(res, this.#opts.reconnectTimeoutMs ?? SESSION_RECONNECT_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    return conn.session !== undefined;
  }

  /**
   * Renews the open session with a `transact` ticket other than the one it holds: the newest held
   * if it has `marginS` left, else one from an attestation run now (any time left will do).
   */
  async #renewWithNewer(): Promise<Result<object, DesktopCode>> {
    const held = this.#opts.connection.grant?.jws;
    this.#lastRefusal = undefined;
    const latest = this.#opts.latestTicket();
    if (latest !== undefined && latest.jws !== held) {
      const g = readSessionGrant(latest.jws);
      if (g !== undefined && g.perm.includes('transact') && hasTimeLeft(latest, this.#nowS(), this.#marginS))
        return this.#renewWith(latest);
    }
    const fresh = await this.#attestForTransact();
    return fresh.ok ? this.#renewWith(fresh.ticket) : fresh;
  }

  /** A pre-transaction attestation's `transact` session ticket, or why there is none. */
  async #attestForTransact(): Promise<Result<{ ticket: HeldTicket }, DesktopCode>> {
    const r = await this.#opts.attest();
    if (!r.ok) return r;
    const a = r.answer;
    const fresh = sessionTicketOf(a);
    if (fresh === undefined || !(readSessionGrant(fresh.jws)?.perm.includes('transact') ?? false))
      return noTicket(a, 'the back-end grants no transaction yet', 'the reader session cannot start one');
    return ok({ ticket: fresh });
  }

  /** Renews the open session with `ticket` (the handshake as fallback) and checks it may transact. */
  async #renewWith(ticket: HeldTicket): Promise<Result<object, DesktopCode>> {
    const conn = this.#opts.connection;
    // The attestation's own hook may already have renewed the session with it: then there is nothing
    // left to send (`renew` runs after it and finds the ticket held).
    const renewed = await conn.renew(ticket.jws);
    // A refused renewal re-opened the session; if that attempt failed, the connection retries with
    // backoff (with the newest ticket): wait for it a while.
    if ((!renewed.ok || conn.session === undefined) && !(await this.#reconnected())) {
      const why = this.#refusal();
      return why === undefined
        ? renewed.ok
          ? err('POS_ERR_DESKTOP_READER_LOST', 'the reader did not reconnect in time')
          : renewed
        : err(why.code, `the reader did not take the fresh session ticket (${why.detail})`);
    }
    const g = conn.grant;
    if (g !== undefined && !g.perm.includes('transact'))
      return err(
        'POS_ERR_DESKTOP_BACKEND_NO_TICKET',
        'the reader session is status only (the session ticket does not grant transact)',
      );
    return ok({});
  }
}

/** A session ticket as the terminal holds it: the JWS and its `exp` (seconds since the epoch). */
export interface HeldTicket {
  readonly jws: string;
  readonly exp: number;
}

/** The session ticket an attestation answer brings, if it brings one. */
export function sessionTicketOf(a: AttestAnswer): HeldTicket | undefined {
  return a.ticket !== undefined && a.ticketUse === 'session' && a.ticketExpiresAt !== undefined
    ? { jws: a.ticket, exp: a.ticketExpiresAt }
    : undefined;
}

/**
 * Whether a ticket has more than `marginS` left at `nowS` (at most half its lifetime when its `iat`
 * can be read, so that a short-lived ticket is usable in its first half).
 */
export function hasTimeLeft(t: HeldTicket, nowS: number, marginS = SESSION_RENEW_MARGIN_S): boolean {
  const g = readSessionGrant(t.jws);
  const margin = g === undefined ? marginS : Math.max(0, Math.min(marginS, Math.floor((g.exp - g.iat) / 2)));
  return t.exp - margin > nowS;
}

/** The error for an answer without the ticket a step needs: halted, or why not (verdict, reasons). */
export function noTicket(a: AttestAnswer, what: string, consequence?: string): Err<DesktopCode> {
  const reasons = (a.reasons ?? []).length > 0 ? `: ${(a.reasons ?? []).join(', ')}` : '';
  return a.halted === true
    ? err('POS_ERR_DESKTOP_TXN_HALTED', `the terminal is halted (verdict ${a.verdict}${reasons})`)
    : err(
        'POS_ERR_DESKTOP_BACKEND_NO_TICKET',
        `${what} (verdict ${a.verdict}${reasons})${consequence === undefined ? '' : `: ${consequence}`}`,
      );
}

/**
 * The terminal's newest session ticket (from its last attestation that brought one), for the reader
 * handshake and a sale's `POST /v1/transactions`. `current()` gives it while it has time left
 * (`hasTimeLeft`); otherwise it runs a pre-transaction attestation. A sale's own pre-transaction
 * attestation (`ReaderSessionKeeper.ensureTransact`) makes its ticket the newest, so the sale submits
 * with it (or with a newer one), and a short-lived ticket is not attested for again right after.
 */
export class SessionTickets {
  #held: HeldTicket | undefined;
  readonly #nowS: () => number;

  constructor(
    private readonly opts: {
      readonly attest: () => Promise<Result<{ answer: AttestAnswer }, DesktopCode>>;
      readonly nowS?: () => number;
      readonly marginS?: number;
    },
  ) {
    this.#nowS = opts.nowS ?? (() => Math.floor(Date.now() / 1000));
  }

  /** Keeps the session ticket an answer brings; whether it brought one. */
  remember(a: AttestAnswer): boolean {
    const t = sessionTicketOf(a);
    if (t !== undefined) this.#held = t;
    return t !== undefined;
  }

  /** The newest session ticket held, whatever its time left. */
  latest(): HeldTicket | undefined {
    return this.#held;
  }

  /** The newest session ticket while it has time left, else a pre-transaction attestation's. */
  async current(): Promise<Result<{ jws: string }, DesktopCode>> {
    const held = this.#held;
    if (held !== undefined && hasTimeLeft(held, this.#nowS(), this.opts.marginS))
      return ok({ jws: held.jws });
    const r = await this.opts.attest();
    if (!r.ok) return r;
    const t = sessionTicketOf(r.answer);
    if (t === undefined) return noTicket(r.answer, 'no session ticket');
    this.#held = t;
    return ok({ jws: t.jws });
  }
}
