/**
 * The engine's `PushPort` over the back-end's push connection (docs/fleet.md): `halt` and `resume`
 * messages from `GET /v1/push`, through the back-end package's terminal-side client
 * (`startPushClient`: a fresh Pos-Proof per attempt, reconnect with backoff, each seq handed on once,
 * every copy acknowledged).
 *
 * A message is applied before it is acknowledged: the client hands it to `onMessage` (which runs the
 * engine's halt handling synchronously: pad closed, digits wiped, reader abort sent) and only then
 * sends the ack. The back-end lifts a halt with `resume` only when no other halt still covers the
 * terminal, so one `resume` clears the halt in force, and the message with the highest seq is the
 * terminal's state: one with a lower seq than the newest applied (an older halt's resume arriving
 * late) is ignored here, and still acknowledged by the client.
 */
import { startPushClient, type PushClient } from '@pos/backend/fleet/push-client';
import type { ServerMessage } from '@pos/backend/fleet/push-protocol';
import type { HaltInfo, PushPort } from '../transaction/ports';

export class PushHaltPort implements PushPort {
  #halt: HaltInfo | undefined;
  /** Seq of the newest message applied (0: none yet). */
  #seq = 0;
  readonly #haltCbs = new Set<(h: HaltInfo) => void>();
  readonly #resumeCbs = new Set<() => void>();

  /** `initial`: a halt known at start (e.g. from the last status), until a resume says otherwise. */
  constructor(initial?: HaltInfo) {
    this.#halt = initial;
  }

  current(): HaltInfo | undefined {
    return this.#halt;
  }

  onHalt(cb: (h: HaltInfo) => void): () => void {
    this.#haltCbs.add(cb);
    return () => this.#haltCbs.delete(cb);
  }

  onResume(cb: () => void): () => void {
    this.#resumeCbs.add(cb);
    return () => this.#resumeCbs.delete(cb);
  }

  /** Applies one push message (already schema-parsed by the client); an older one than the newest is ignored. */
  handle(m: ServerMessage): void {
    if (m.seq <= this.#seq) return;
    this.#seq = m.seq;
    if (m.type === 'halt') {
      const h = { haltId: m.haltId, reason: m.reason };
      this.#halt = h;
      for (const cb of [...this.#haltCbs]) cb(h);
    } else {
      this.#halt = undefined;
      for (const cb of [...this.#resumeCbs]) cb();
    }
  }
}

export interface HaltPushOptions {
  /** `ws(s)://host:port/v1/push`. */
  readonly url: string;
  /** A fresh Pos-Proof for `GET /v1/push` (device key). */
  proof(): string | Promise<string>;
  readonly port: PushHaltPort;
  onState?(state: 'open' | 'closed' | 'refused', detail: { code?: number; status?: number }): void;
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
}

/** Connects the push client to the port; `close()` on the result stops it. */
export function startHaltPush(opts: HaltPushOptions): PushClient {
  return startPushClient({
    url: opts.url,
    proof: () => opts.proof(),
    autoAck: true,
    onMessage: (m) => opts.port.handle(m),
    onState: (state, detail) => opts.onState?.(state, detail),
    ...(opts.backoff === undefined ? {} : { backoff: opts.backoff }),
  });
}
