/**
 * A handshake and a secure channel run over a `ReaderLink`: what the terminal's reader driver and the
 * simulator's firmware loop use. `connectToReader` (terminal) and `acceptTerminal` (reader) run the
 * handshake and give a `ReaderSession`; the session seals what you `send`, opens every record that
 * arrives and ends on the first error (replay, reorder, tamper, a message in the clear, link closed).
 */
import type { PosErrorCode } from '../errors';
import { PosError, err, ok, type Err, type Result } from '../result';
import type { SecureChannel } from './channel';
import {
  ReaderHandshake,
  TerminalHandshake,
  type HandshakeStep,
  type ReaderHandshakeOptions,
  type ReaderIdentity,
  type TerminalHandshakeOptions,
  type TerminalIdentity,
} from './handshake';
import { MESSAGE_INFO, decodeMessage, encodeMessage, type ReaderMessage } from './messages';
import { realTimer, type LinkError, type LinkTimer, type ReaderLink } from './transport';

/** How long a handshake may take before `POS_ERR_READER_HANDSHAKE_TIMEOUT`. */
export const HANDSHAKE_TIMEOUT_MS = 5000;
/** How long `request()` waits for the answer by default. */
export const REQUEST_TIMEOUT_MS = 5000;

export interface SessionEvents {
  /** A message from the peer, opened and schema-checked. `pin.digits` is the receiver's to wipe. */
  message: (msg: ReaderMessage) => void;
  /** The session ended: the reason (`POS_ERR_READER_SESSION_CLOSED` for an orderly close). Once. */
  end: (reason: Err<PosErrorCode>) => void;
}

/** An established session over a link. */
export class ReaderSession {
  private readonly handlers = {
    message: new Set<SessionEvents['message']>(),
    end: new Set<SessionEvents['end']>(),
  };
  private readonly waiting = new Map<number, (r: Result<{ message: ReaderMessage }, PosErrorCode>) => void>();
  private nextRequestId = 16;
  private endReason: Err<PosErrorCode> | undefined;
  private readonly unsubscribe: (() => void)[];

  /**
   * `attach: false` when the caller feeds incoming bytes through `deliver` itself (the handshake
   * runners do, so that no message between the handshake and the session is lost or reordered).
   */
  constructor(
    readonly channel: SecureChannel,
    private readonly link: ReaderLink,
    private readonly timer: LinkTimer = realTimer,
    attach = true,
  ) {
    this.unsubscribe = attach
      ? [
          link.on('message', (bytes) => this.deliver(bytes)),
          link.on('error', (e) => this.linkError(e)),
          link.on('close', () => this.linkClosed()),
        ]
      : [];
  }

  /** The link reported an error (only for `attach: false`). Fatal ones end the session. */
  linkError(e: LinkError): void {
    if (e.fatal) this.finish(err(e.code, e.detail));
  }

  /** The link closed (only for `attach: false`). */
  linkClosed(): void {
    this.finish(err('POS_ERR_READER_LINK_CLOSED', 'the link closed'));
  }

  get ended(): Err<PosErrorCode> | undefined {
    return this.endReason;
  }

  on<E extends keyof SessionEvents>(event: E, handler: SessionEvents[E]): () => void {
    const set = this.handlers[event] as Set<SessionEvents[E]>;
    set.add(handler);
    return () => set.delete(handler);
  }

  /** A fresh request id (1..2^32-1, never reused in this session). */
  newId(): number {
    const id = this.nextRequestId;
    this.nextRequestId = id >= 0xffff_fffe ? 16 : id + 1;
    return id;
  }

  /** Seals and sends one message. */
  send(msg: ReaderMessage): Result<object, PosErrorCode> {
    if (this.endReason !== undefined) return err('POS_ERR_READER_SESSION_CLOSED', 'the session has ended');
    const sealed = this.channel.seal(msg);
    if (!sealed.ok) {
      if (this.channel.closed) this.finish(sealed);
      return sealed;
    }
    const sent = this.link.send(sealed.bytes);
    if (!sent.ok) return err(sent.code, sent.detail);
    return ok({});
  }

  /**
   * Sends a request and waits for the message that answers it (same id): its response, an `error`
   * or an `aborted`. An `error` answer comes back as `ok: false` with the reader's code.
   */
  request(
    msg: ReaderMessage & { id: number },
    timeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<Result<{ message: ReaderMessage }, PosErrorCode>> {
    return new Promise((resolve) => {
      const sent = this.send(msg);
      if (!sent.ok) {
        resolve(sent);
        return;
      }
      const handle = this.timer.setTimeout(() => {
        this.waiting.delete(msg.id);
        resolve(err('POS_ERR_READER_TIMEOUT', `no answer to ${msg.t} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(msg.id, (r) => {
        this.timer.clearTimeout(handle);
        resolve(r);
      });
    });
  }

  /** Sends `close`, ends the session (wiping its keys) and closes the link. */
  close(code?: PosErrorCode): void {
    if (this.endReason !== undefined) return;
    this.send({ t: 'close', id: 0, ...(code === undefined ? {} : { code }) });
    this.finish(err('POS_ERR_READER_SESSION_CLOSED', 'the session was closed by this end'));
    this.link.close();
  }

  /** Feeds one message's bytes from the link (only for `attach: false`). */
  deliver(bytes: Uint8Array): void {
    if (this.endReason !== undefined) return;
    const decoded = decodeMessage(bytes);
    if (!decoded.ok) {
      this.finish(decoded);
      return;
    }
    if (decoded.message.t !== 'rec') {
      this.finish(
        err(
          'POS_ERR_READER_UNEXPECTED',
          `a ${decoded.message.t} message came in the clear after the handshake`,
        ),
      );
      return;
    }
    const opened = this.channel.open(decoded.message);
    if (!opened.ok) {
      this.finish(opened);
      return;
    }
    const m = opened.message;
    if (m.t === 'rec') return; // channel.open refuses records inside records; this narrows the type
    if (m.t === 'close') {
      this.finish(
        err(
          'POS_ERR_READER_SESSION_CLOSED',
          `the peer closed the session${m.code === undefined ? '' : ` (${m.code})`}`,
        ),
      );
      return;
    }
    const waiter = m.id === 0 ? undefined : this.waiting.get(m.id);
    if (waiter !== undefined && MESSAGE_INFO[m.t].kind === 'response') {
      this.waiting.delete(m.id);
      waiter(m.t === 'error' ? err(m.code as PosErrorCode, m.detail) : ok({ message: m }));
    }
    for (const h of [...this.handlers.message]) h(m);
  }

  private finish(reason: Err<PosErrorCode>): void {
    if (this.endReason !== undefined) return;
    this.endReason = reason;
    this.channel.close(reason.code, reason.detail);
    for (const u of this.unsubscribe) u();
    for (const [, w] of this.waiting)
      w(err('POS_ERR_READER_SESSION_CLOSED', `the session ended (${reason.code})`));
    this.waiting.clear();
    for (const h of [...this.handlers.end]) h(reason);
  }
}

/** Drives a handshake state machine over a link until it is done, failed or timed out. */
function drive<D>(
  link: ReaderLink,
  first: readonly ReaderMessage[],
  step: (msg: ReaderMessage) => Promise<HandshakeStep<D>>,
  makeSession: (d: D) => ReaderSession,
  timer: LinkTimer,
  timeoutMs: number,
): Promise<Result<D & { session: ReaderSession }, PosErrorCode>> {
  return new Promise((resolve) => {
    let settled = false;
    let session: ReaderSession | undefined;
    let chain: Promise<void> = Promise.resolve();
    // One queue for everything the link reports, in order; a throwing handler does not stall it.
    const enqueue = (fn: () => void | Promise<void>) => {
      chain = chain.then(fn).then(undefined, () => undefined);
    };
    const subs: (() => void)[] = [];
    const unsubscribe = () => {
      for (const u of subs.splice(0)) u();
    };
    const settle = (r: Result<D & { session: ReaderSession }, PosErrorCode>) => {
      if (settled) return;
      settled = true;
      timer.clearTimeout(handle);
      if (!r.ok) unsubscribe();
      resolve(r);
    };
    const sendAll = (msgs: readonly ReaderMessage[]) => {
      for (const m of msgs) link.send(encodeMessage(m));
    };
    const handle = timer.setTimeout(
      () => settle(err('POS_ERR_READER_HANDSHAKE_TIMEOUT', `the handshake took over ${timeoutMs} ms`)),
      timeoutMs,
    );
    subs.push(
      link.on('message', (bytes) => {
        enqueue(async () => {
          // After the handshake the same subscription feeds the session, in arrival order.
          if (session !== undefined) {
            session.deliver(bytes);
            return;
          }
          if (settled) return;
          const decoded = decodeMessage(bytes);
          if (!decoded.ok) {
            settle(decoded);
            return;
          }
          let s: HandshakeStep<D>;
          try {
            s = await step(decoded.message);
          } catch (e) {
            // A signer that throws, or a broken contract: fail closed with the code if there is one.
            settle(
              e instanceof PosError
                ? err(e.code, e.detail)
                : err('POS_ERR_READER_UNEXPECTED', 'the handshake could not continue'),
            );
            return;
          }
          sendAll(s.send);
          if (s.status === 'failed') settle(s.error);
          else if (s.status === 'done') {
            const made = makeSession(s);
            session = made;
            made.on('end', unsubscribe);
            settle(ok({ ...s, session: made }));
          }
        });
      }),
      // Errors and close go through the same chain, so the session sees them after earlier messages.
      link.on('error', (e) => {
        enqueue(() => {
          if (session !== undefined) session.linkError(e);
          else if (e.fatal) settle(err(e.code, e.detail));
        });
      }),
      link.on('close', () => {
        enqueue(() => {
          if (session !== undefined) session.linkClosed();
          else settle(err('POS_ERR_READER_LINK_CLOSED', 'the link closed during the handshake'));
        });
      }),
    );
    sendAll(first);
  });
}

export interface RunOptions {
  readonly timer?: LinkTimer;
  readonly timeoutMs?: number;
}

/**
 * Terminal side: runs the handshake over `link` and returns the session and the verified reader
 * identity. Failures carry the code of the check that failed (certificate, signature, the reader's own
 * refusal such as a `POS_ERR_TICKET_*`, timeout).
 */
export async function connectToReader(
  link: ReaderLink,
  opts: TerminalHandshakeOptions & RunOptions,
): Promise<Result<{ session: ReaderSession; reader: ReaderIdentity; version: number }, PosErrorCode>> {
  const hs = new TerminalHandshake(opts);
  const timer = opts.timer ?? realTimer;
  const r = await drive(
    link,
    [hs.start()],
    (m) => hs.receive(m),
    (d) => new ReaderSession(d.channel, link, timer, false),
    timer,
    opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS,
  );
  if (!r.ok) return r;
  return ok({ session: r.session, reader: r.reader, version: r.version });
}

/**
 * Reader side: answers one handshake on `link` and returns the session and the terminal identity (its
 * device key and verified session ticket). On failure the terminal has been sent an `error` with the
 * code; the caller may call again for the next attempt. A long-running reader that must take a new
 * `offer` at any moment (a terminal that restarted mid-session) drives `ReaderHandshake` and
 * `SecureChannel` itself from one link subscription, as device-sim's link host does.
 */
export async function acceptTerminal(
  link: ReaderLink,
  opts: ReaderHandshakeOptions & RunOptions,
): Promise<Result<{ session: ReaderSession; terminal: TerminalIdentity; version: number }, PosErrorCode>> {
  const hs = new ReaderHandshake(opts);
  const timer = opts.timer ?? realTimer;
  const r = await drive(
    link,
    [],
    (m) => hs.receive(m),
    (d) => new ReaderSession(d.channel, link, timer, false),
    timer,
    opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS,
  );
  if (!r.ok) return r;
  return ok({ session: r.session, terminal: r.terminal, version: r.version });
}
