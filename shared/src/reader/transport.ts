/**
 * The transport contract shared by the serial and HID links: one `ReaderLink` carries whole messages
 * (encoded bytes) in order, or reports why it could not. The message layer (messages.ts), handshake
 * and secure channel sit on top of any `ReaderLink`, so both transports behave the same to them.
 *
 * Time is injected (`LinkTimer`) so the links are state machines that tests drive without real time.
 */
import type { PosErrorCode } from '../errors';
import type { Err } from '../result';

/** A timer the links use for retries and timeouts. `realTimer` in production, `ManualTimer` in tests. */
export interface LinkTimer {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The host's timer functions: both Node and browsers have them; shared/ has no types for either. */
interface HostTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  performance?: { now(): number };
}
const host = globalThis as unknown as HostTimers;

/** The platform's timers (Node and browsers both have them). */
export const realTimer: LinkTimer = {
  now: () => (host.performance === undefined ? Date.now() : host.performance.now()),
  setTimeout: (fn, ms) => host.setTimeout(fn, ms),
  clearTimeout: (h) => host.clearTimeout(h),
};

/** Runs `fn` on a later microtask. */
export const later = (fn: () => void): void => {
  void Promise.resolve().then(fn);
};

/** A timer that moves only when told to: `advance(ms)` runs every callback that falls due, in order. */
export class ManualTimer implements LinkTimer {
  private time = 0;
  private nextId = 1;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { at: this.time + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    if (typeof handle === 'number') this.pending.delete(handle);
  }
  /** Number of timers still pending. */
  get size(): number {
    return this.pending.size;
  }
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      let best: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.pending)
        if (e[1].at <= until && (best === undefined || e[1].at < best[1].at)) best = e;
      if (best === undefined) break;
      this.pending.delete(best[0]);
      this.time = best[1].at;
      best[1].fn();
    }
    this.time = until;
  }
}

/** A link failure or a frame it dropped. `fatal` errors close the link. */
export interface LinkError extends Err<PosErrorCode> {
  readonly fatal: boolean;
}

export interface LinkEvents {
  /** One whole message, in order. The array is the receiver's to keep (or wipe). */
  message: (bytes: Uint8Array) => void;
  /**
   * A message could not be delivered (retries used up, HID sequence error, ...) or input was dropped
   * (a corrupted frame). Non-fatal errors leave the link usable.
   */
  error: (e: LinkError) => void;
  /** The link closed (by `close()` or a fatal error). Sent once. */
  close: () => void;
}

/** A message transport: serial (COBS frames) or HID (64-byte reports), or in-memory for tests. */
export interface ReaderLink {
  /**
   * Queues one encoded message. Refusals that are known at once come back as `ok: false`
   * (`POS_ERR_READER_LINK_CLOSED`, `..._LINK_BUSY`, `..._MESSAGE_TOO_LARGE`); a later delivery failure
   * is an `error` event.
   */
  send(message: Uint8Array): { ok: true } | LinkError;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<E extends keyof LinkEvents>(event: E, handler: LinkEvents[E]): () => void;
  /** Closes the link and drops anything queued. Idempotent. */
  close(): void;
  readonly closed: boolean;
}

/** A minimal typed event hub the links share (no Node `events` in shared/). */
export class LinkEmitter {
  private readonly handlers: { [E in keyof LinkEvents]: Set<LinkEvents[E]> } = {
    message: new Set(),
    error: new Set(),
    close: new Set(),
  };
  on<E extends keyof LinkEvents>(event: E, handler: LinkEvents[E]): () => void {
    const set = this.handlers[event] as Set<LinkEvents[E]>;
    set.add(handler);
    return () => set.delete(handler);
  }
  emitMessage(bytes: Uint8Array): void {
    for (const h of [...this.handlers.message]) h(bytes);
  }
  emitError(e: LinkError): void {
    for (const h of [...this.handlers.error]) h(e);
  }
  emitClose(): void {
    for (const h of [...this.handlers.close]) h();
  }
}

export function linkError(code: PosErrorCode, detail: string, fatal = false): LinkError {
  return { ok: false, code, detail, fatal };
}

class MemoryLink implements ReaderLink {
  peer: MemoryLink | undefined;
  private readonly emitter = new LinkEmitter();
  private isClosed = false;
  get closed(): boolean {
    return this.isClosed;
  }
  send(message: Uint8Array): { ok: true } | LinkError {
    if (this.isClosed) return linkError('POS_ERR_READER_LINK_CLOSED', 'the link is closed');
    const copy = message.slice();
    const peer = this.peer;
    later(() => peer?.deliver(copy));
    return { ok: true };
  }
  deliver(bytes: Uint8Array): void {
    if (!this.isClosed) this.emitter.emitMessage(bytes);
  }
  on<E extends keyof LinkEvents>(event: E, handler: LinkEvents[E]): () => void {
    return this.emitter.on(event, handler);
  }
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.emitter.emitClose();
    const peer = this.peer;
    later(() => peer?.close());
  }
}

/**
 * Two in-process links joined back to back: what one sends, the other receives (on a later
 * microtask, in order); closing one closes the other. For tests of everything above the framing.
 */
export function createMemoryLinkPair(): [ReaderLink, ReaderLink] {
  const a = new MemoryLink();
  const b = new MemoryLink();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
