/**
 * Keeps the reader session's ticket fresh (docs/reader-protocol.md §5.5): the reader starts no
 * transaction once the session ticket it holds has expired, and a session opened under a
 * handshake-only ticket (`perm: []`) never starts one. So:
 *
 * - `afterAttestation(answer)`: every attestation that brings a session ticket (periodic,
 *   pre-transaction, start-up) is handed to the open reader session (`ReaderConnection.renew`). In
 *   the background a refusal does not end the session (a sale may be running in it): the session
 *   keeps its ticket, and the next `ensureTransact` renews it, with the handshake as fallback, once it
 *   is at its end. Never awaited inside the attestation.
 * - `ensureTransact()`, before each `start`: if the session's ticket does not grant `transact` or has
 *   less than `marginS` left (or half its lifetime, for tickets shorter than twice that), the session
 *   is renewed with the terminal's newest ticket, or, when that one is no better, with the ticket of
 *   a pre-transaction attestation run now. A session that is fine costs nothing: no extra
 *   attestation.
 * - `renewExpired()`, when the reader refused a `start` as expired anyway (its clock ahead of ours):
 *   one renewal with a ticket newer than the session's (attesting only if the terminal has none).
 *
 * The terminal never verifies tickets (the reader does); it reads their `exp` and `perm` to decide
 * when to renew.
 */
import { err, ok, type Result } from '@pos/shared';
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
  /** A session ticket with less time left than this (s) is renewed before a `start` (default 10). */
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

  /** Before a `start`: the session grants `transact` with time left, or is renewed so that it does. */
  async ensureTransact(): Promise<Result<object, DesktopCode>> {
    const conn = this.#opts.connection;
    if (conn.session === undefined) return ok({}); // the start itself reports the lost reader
    const g = conn.grant;
    // A handshake that did not say which ticket it presented: the reader decides (renewExpired).
    if (g === undefined) return ok({});
    if (g.perm.includes('transact') && g.exp - this.#margin(g) > this.#nowS()) return ok({});
    return this.#renewWithNewer();
  }

  /** The reader refused a `start` as expired: one renewal with a ticket newer than the session's. */
  renewExpired(): Promise<Result<object, DesktopCode>> {
    return this.#renewWithNewer();
  }

  /** The time a ticket must have left to be used for a sale: `marginS`, at most half its lifetime. */
  #margin(t: { iat: number; exp: number }): number {
    return Math.max(0, Math.min(this.#marginS, Math.floor((t.exp - t.iat) / 2)));
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
    const conn = this.#opts.connection;
    const held = conn.grant?.jws;
    this.#lastRefusal = undefined;
    const usable = (t: { jws: string; exp: number } | undefined): t is { jws: string; exp: number } => {
      if (t === undefined || t.jws === held) return false;
      const g = readSessionGrant(t.jws);
      return g !== undefined && g.perm.includes('transact') && t.exp - this.#margin(g) > this.#nowS();
    };
    let ticket = this.#opts.latestTicket();
    if (!usable(ticket)) {
      const r = await this.#opts.attest();
      if (!r.ok) return r;
      const a = r.answer;
      const fresh =
        a.ticket !== undefined && a.ticketUse === 'session' && a.ticketExpiresAt !== undefined
          ? { jws: a.ticket, exp: a.ticketExpiresAt }
          : undefined;
      if (fresh === undefined || !(readSessionGrant(fresh.jws)?.perm.includes('transact') ?? false)) {
        const reasons = (a.reasons ?? []).length > 0 ? `: ${(a.reasons ?? []).join(', ')}` : '';
        return err(
          a.halted === true ? 'POS_ERR_DESKTOP_TXN_HALTED' : 'POS_ERR_DESKTOP_BACKEND_NO_TICKET',
          a.halted === true
            ? `the terminal is halted (verdict ${a.verdict}${reasons})`
            : `the back-end grants no transaction yet (verdict ${a.verdict}${reasons}): the reader session cannot start one`,
        );
      }
      ticket = fresh;
    }
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
