/**
 * The reader connection manager: opens the reader through its driver, runs the secure-channel
 * handshake (shared `connectToReader`, given as `handshake`), and when the reader goes away (the
 * device is lost, or the session ends by itself) reconnects with exponential backoff and jitter.
 *
 * A serial line does not say when the device at its other end dies (a pseudo-terminal or a USB-serial
 * bridge stays open), so while connected the manager also watches liveness: every `heartbeatMs` it
 * asks the reader for its status (`get-status`, no challenge), and a request that goes unanswered, or
 * a message the link could not deliver (`POS_ERR_READER_LINK_TIMEOUT`: no ACK after its retries), is a
 * lost reader.
 *
 * The session lives as long as its session ticket (docs/reader-protocol.md §5.5): `renew(jws)` hands
 * the reader a fresh one (`renew`), and when the reader refuses it, runs a new handshake, whose
 * handshake function takes the terminal's newest ticket. `grant` is what the open session's ticket
 * says (its `exp` and `perm`, read, not verified: the reader verified it).
 *
 * It tells the user: `reader-lost` once when an established connection goes, `reader-back` when it is
 * established again, each with a human sentence; `attempt-failed` for each failed attempt (with the
 * code and the delay before the next). Time and randomness are injected (a `LinkTimer`, `random`), so
 * tests drive the backoff without waiting.
 */
import {
  err,
  ok,
  parseTicket,
  realTimer,
  REQUEST_TIMEOUT_MS,
  type Err,
  type LinkTimer,
  type PosErrorCode,
  type ReaderLink,
  type ReaderSession,
  type Result,
} from '@pos/shared';
import type { DesktopCode } from '../result';
import type { ReaderDevice, ReaderDriver } from './device';

export interface BackoffOptions {
  /** First retry delay (ms). */
  readonly initialMs: number;
  /** Upper bound of a delay (ms). */
  readonly maxMs: number;
  readonly factor: number;
  /** 0..1: each delay is reduced by up to this fraction at random (spreads a fleet's retries). */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 10_000, factor: 2, jitter: 0.3 };

/** The delay before retry number `attempt` (0 = first retry). `random` is in [0, 1). */
export function backoffDelay(attempt: number, o: BackoffOptions, random: number): number {
  const base = Math.min(o.maxMs, o.initialMs * Math.pow(o.factor, Math.max(0, attempt)));
  const j = Math.min(1, Math.max(0, o.jitter));
  return Math.max(0, Math.round(base * (1 - j * Math.min(1, Math.max(0, random)))));
}

/**
 * Runs the handshake over a freshly opened link. `ticket` is the session ticket it presented (compact
 * JWS): the connection keeps what it grants (`grant`) and does not send it again as a renewal.
 */
export type HandshakeFn = (
  link: ReaderLink,
) => Promise<Result<{ session: ReaderSession; ticket?: string }, PosErrorCode>>;

/** What the open session's ticket grants, as the terminal reads it (the reader verified it). */
export interface SessionGrant {
  readonly jws: string;
  /** The ticket's `iat`, seconds since the epoch. */
  readonly iat: number;
  /** The ticket's `exp`, seconds since the epoch: the reader starts no transaction at or after it. */
  readonly exp: number;
  readonly perm: readonly string[];
}

/** The grant of a session ticket, read without verifying it (shape-checked); undefined if unreadable. */
export function readSessionGrant(jws: string): SessionGrant | undefined {
  const parsed = parseTicket(jws);
  if (!parsed.ok || parsed.claims.use !== 'session') return undefined;
  return { jws, iat: parsed.claims.iat, exp: parsed.claims.exp, perm: [...parsed.claims.perm] };
}

/** How a renewal went: by `renew`, by a new handshake, or not needed (no session, or already held). */
export type RenewedVia = 'renew' | 'handshake' | 'none';

export interface ReaderConnectionOptions {
  readonly driver: ReaderDriver;
  readonly handshake: HandshakeFn;
  readonly backoff?: Partial<BackoffOptions>;
  readonly timer?: LinkTimer;
  readonly random?: () => number;
  /** Liveness probe interval while connected (ms); 0 turns it off. */
  readonly heartbeatMs?: number;
  /** How long the probe waits for the answer (ms). */
  readonly heartbeatTimeoutMs?: number;
  /** How long a `renew` waits for the answer (ms). */
  readonly requestTimeoutMs?: number;
}

export const DEFAULT_HEARTBEAT_MS = 2000;
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 3000;

export type ReaderConnectionState = 'idle' | 'connecting' | 'connected' | 'waiting' | 'closed';

export interface ReaderConnectionEvents {
  connected: (e: { session: ReaderSession; device: ReaderDevice }) => void;
  'reader-lost': (e: { code: DesktopCode; message: string }) => void;
  'reader-back': (e: { message: string }) => void;
  'attempt-failed': (e: { code: DesktopCode; detail: string; retryInMs: number; attempt: number }) => void;
  /** A renewal the reader refused (or did not answer); with the fallback, a new handshake follows. */
  'renew-refused': (e: { code: DesktopCode; detail: string }) => void;
}

export class ReaderConnection {
  readonly #opts: ReaderConnectionOptions;
  readonly #backoff: BackoffOptions;
  readonly #timer: LinkTimer;
  readonly #random: () => number;
  readonly #handlers: { [E in keyof ReaderConnectionEvents]: Set<ReaderConnectionEvents[E]> } = {
    connected: new Set(),
    'reader-lost': new Set(),
    'reader-back': new Set(),
    'attempt-failed': new Set(),
    'renew-refused': new Set(),
  };
  #state: ReaderConnectionState = 'idle';
  #attempt = 0;
  #retryTimer: unknown;
  #device: ReaderDevice | undefined;
  #session: ReaderSession | undefined;
  #grant: SessionGrant | undefined;
  /** Renewals run one at a time, in call order. */
  #renewals: Promise<unknown> = Promise.resolve();
  #wasConnected = false;
  #lostSinceConnected = false;
  #unsubscribe: (() => void)[] = [];
  #heartbeatTimer: unknown;

  constructor(opts: ReaderConnectionOptions) {
    this.#opts = opts;
    this.#backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.#timer = opts.timer ?? realTimer;
    this.#random = opts.random ?? Math.random;
  }

  get state(): ReaderConnectionState {
    return this.#state;
  }
  /** The established session, while connected. */
  get session(): ReaderSession | undefined {
    return this.#state === 'connected' ? this.#session : undefined;
  }
  get device(): ReaderDevice | undefined {
    return this.#state === 'connected' ? this.#device : undefined;
  }
  /** What the open session's ticket grants (undefined when not connected or not known). */
  get grant(): SessionGrant | undefined {
    return this.#state === 'connected' ? this.#grant : undefined;
  }

  on<E extends keyof ReaderConnectionEvents>(event: E, handler: ReaderConnectionEvents[E]): () => void {
    const set = this.#handlers[event] as Set<ReaderConnectionEvents[E]>;
    set.add(handler);
    return () => set.delete(handler);
  }

  #emit<E extends keyof ReaderConnectionEvents>(
    event: E,
    arg: Parameters<ReaderConnectionEvents[E]>[0],
  ): void {
    for (const h of [...this.#handlers[event]]) (h as (a: typeof arg) => void)(arg);
  }

  /** Starts connecting (and keeps the reader connected until `close()`). */
  start(): void {
    if (this.#state !== 'idle') return;
    void this.#attemptConnect();
  }

  /** Resolves with the session once connected (at once when already connected). */
  whenConnected(): Promise<ReaderSession> {
    const s = this.session;
    if (s !== undefined) return Promise.resolve(s);
    return new Promise((resolve) => {
      const off = this.on('connected', (e) => {
        off();
        resolve(e.session);
      });
    });
  }

  async #attemptConnect(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'connecting';
    let opened: Awaited<ReturnType<ReaderDriver['open']>>;
    try {
      opened = await this.#opts.driver.open();
    } catch {
      opened = {
        ok: false,
        code: 'POS_ERR_DESKTOP_READER_OPEN',
        detail: 'the reader driver failed unexpectedly',
      };
    }
    if (this.#state !== 'connecting') {
      if (opened.ok) await opened.device.close();
      return;
    }
    if (!opened.ok) {
      this.#scheduleRetry(opened);
      return;
    }
    const device = opened.device;
    let hs: Result<{ session: ReaderSession; ticket?: string }, PosErrorCode>;
    try {
      hs = await this.#opts.handshake(device.link);
    } catch {
      hs = { ok: false, code: 'POS_ERR_DESKTOP_READER_OPEN', detail: 'the handshake failed unexpectedly' };
    }
    if (this.#state !== 'connecting') {
      if (hs.ok) hs.session.close();
      await device.close();
      return;
    }
    if (!hs.ok) {
      await device.close();
      this.#scheduleRetry(hs);
      return;
    }
    this.#connected(device, hs.session, hs.ticket);
  }

  #connected(device: ReaderDevice, session: ReaderSession, ticket: string | undefined): void {
    this.#device = device;
    this.#session = session;
    this.#grant = ticket === undefined ? undefined : readSessionGrant(ticket);
    this.#state = 'connected';
    this.#attempt = 0;
    this.#unsubscribe = [
      device.onLost((detail) => this.#lost('POS_ERR_DESKTOP_READER_LOST', detail)),
      session.on('end', (reason) => this.#lost(reason.code, reason.detail)),
      device.link.on('error', (e) => {
        if (e.code === 'POS_ERR_READER_LINK_TIMEOUT') this.#lost(e.code, 'the reader stopped answering');
      }),
    ];
    this.#scheduleHeartbeat(session);
    if (this.#wasConnected && this.#lostSinceConnected)
      this.#emit('reader-back', { message: 'The card reader is connected again.' });
    this.#wasConnected = true;
    this.#lostSinceConnected = false;
    this.#emit('connected', { session, device });
  }

  #scheduleHeartbeat(session: ReaderSession): void {
    const every = this.#opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    if (every <= 0) return;
    this.#heartbeatTimer = this.#timer.setTimeout(() => {
      this.#heartbeatTimer = undefined;
      if (this.#session !== session || this.#state !== 'connected') return;
      void session
        .request(
          { t: 'get-status', id: session.newId() },
          this.#opts.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
        )
        .then((r) => {
          if (this.#session !== session) return;
          if (r.ok) this.#scheduleHeartbeat(session);
          else this.#lost(r.code, 'the reader stopped answering');
        });
    }, every);
  }

  #lost(code: DesktopCode, detail: string): void {
    if (this.#state !== 'connected') return;
    if (this.#heartbeatTimer !== undefined) this.#timer.clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
    for (const u of this.#unsubscribe.splice(0)) u();
    const device = this.#device;
    const session = this.#session;
    this.#device = undefined;
    this.#session = undefined;
    this.#grant = undefined;
    this.#state = 'waiting';
    this.#lostSinceConnected = true;
    session?.close();
    void device?.close();
    this.#emit('reader-lost', {
      code,
      message: `The card reader was disconnected (${detail}). Reconnecting…`,
    });
    this.#scheduleRetry({ ok: false, code, detail });
  }

  #scheduleRetry(failure: Err<DesktopCode>): void {
    if (this.#state === 'closed') return;
    this.#state = 'waiting';
    const delay = backoffDelay(this.#attempt, this.#backoff, this.#random());
    this.#emit('attempt-failed', {
      code: failure.code,
      detail: failure.detail,
      retryInMs: delay,
      attempt: this.#attempt,
    });
    this.#attempt++;
    this.#retryTimer = this.#timer.setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#attemptConnect();
    }, delay);
  }

  /**
   * Ends the established session and runs the handshake again at once, without a `reader-lost`
   * notice (the reader is not lost): the fallback of a renewal the reader refused, so that the
   * session runs under the ticket the terminal holds now (docs/reader-protocol.md §5.5). Resolves when
   * the new attempt has finished (connected, or waiting for its retry with backoff as usual).
   */
  async reopen(): Promise<void> {
    if (this.#state !== 'connected') return;
    if (this.#heartbeatTimer !== undefined) this.#timer.clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
    for (const u of this.#unsubscribe.splice(0)) u();
    const device = this.#device;
    const session = this.#session;
    this.#device = undefined;
    this.#session = undefined;
    this.#grant = undefined;
    this.#state = 'waiting';
    session?.close();
    await device?.close();
    await this.#attemptConnect();
  }

  /**
   * Hands a fresh session ticket to the open session (`renew`, docs/reader-protocol.md §5.5). On
   * `renewed` the session runs under it (its `exp` and `perm`: `grant`). If the reader refuses it (or
   * does not answer in time), the session is re-opened with a new handshake (`reopen()`), whose
   * handshake function presents the terminal's newest session ticket; the answer is then that
   * attempt's outcome. Without an open session, or with the ticket the session already holds, there is
   * nothing to send (`via: 'none'`): the next handshake takes the newest ticket anyway. One renewal at
   * a time, in call order. `fallback: false` leaves a refused session as it is (the refusal is the
   * answer): a renewal in the background must not end a session a sale may be using.
   */
  renew(jws: string, opts: { fallback?: boolean } = {}): Promise<Result<{ via: RenewedVia }, DesktopCode>> {
    const run = (): Promise<Result<{ via: RenewedVia }, DesktopCode>> =>
      this.#renew(jws, opts.fallback ?? true);
    const next = this.#renewals.then(run, run);
    this.#renewals = next.catch(() => undefined);
    return next;
  }

  async #renew(jws: string, fallback: boolean): Promise<Result<{ via: RenewedVia }, DesktopCode>> {
    const session = this.session;
    if (session === undefined || this.#grant?.jws === jws) return ok({ via: 'none' as const });
    const r = await session.request(
      { t: 'renew', id: session.newId(), jws },
      this.#opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
    );
    if (this.#session !== session || this.#state !== 'connected')
      return err('POS_ERR_DESKTOP_READER_LOST', 'the reader session ended during the renewal');
    if (r.ok && r.message.t === 'renewed') {
      this.#grant = readSessionGrant(jws) ?? { jws, iat: 0, exp: r.message.exp, perm: [] };
      return ok({ via: 'renew' as const });
    }
    const refused = r.ok
      ? { code: 'POS_ERR_DESKTOP_TXN_READER' as DesktopCode, detail: `the reader answered ${r.message.t}` }
      : { code: r.code, detail: r.detail };
    this.#emit('renew-refused', refused);
    if (!fallback) return err(refused.code, `the reader refused the session renewal (${refused.detail})`);
    await this.reopen();
    if (this.session === undefined)
      return err(
        refused.code,
        `the reader refused the session renewal (${refused.detail}) and the new handshake has not succeeded yet`,
      );
    return ok({ via: 'handshake' as const });
  }

  /** Stops reconnecting and closes the session and the device. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    if (this.#retryTimer !== undefined) this.#timer.clearTimeout(this.#retryTimer);
    if (this.#heartbeatTimer !== undefined) this.#timer.clearTimeout(this.#heartbeatTimer);
    for (const u of this.#unsubscribe.splice(0)) u();
    this.#session?.close();
    this.#session = undefined;
    this.#grant = undefined;
    const d = this.#device;
    this.#device = undefined;
    await d?.close();
  }
}
