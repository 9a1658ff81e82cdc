/**
 * DEVELOPMENT ONLY: a minimal terminal for the simulator's own tests and benchmark: it opens the other
 * end of the line, runs the shared handshake (connectToReader) with a device key and a session ticket,
 * and drives a PIN transaction. The merchant terminal (desktop/) has its own, complete driver.
 */
import {
  connectToReader,
  jwkFromPublicKey,
  jwkThumbprint,
  p256Signer,
  SerialLink,
  toBase64url,
  type PosErrorCode,
  type ReaderLink,
  type ReaderMessage,
  type ReaderSession,
  type Result,
  type TicketClaims,
} from '@pos/shared';
import type { ByteLine } from '../transport/serial';
import { newP256KeyPair } from './am';

export interface DevTerminalOptions {
  /** The terminal's end of the line (serial), or an already framed link (HID, memory). */
  readonly line?: ByteLine;
  readonly link?: ReaderLink;
  readonly caCertificateDer: Uint8Array;
  readonly serial: string;
  readonly signTicket: (claims: Partial<TicketClaims>) => string | Promise<string>;
  readonly timeoutMs?: number;
}

type CardEvent = Extract<ReaderMessage, { t: 'card-inserted' | 'card-tapped' }>;

export class DevTerminal {
  readonly #waiters: { t: string; resolve: (m: ReaderMessage) => void }[] = [];
  /** Unsolicited messages (events) in arrival order. */
  readonly events: ReaderMessage[] = [];

  private constructor(
    readonly session: ReaderSession,
    readonly link: ReaderLink,
    readonly thumbprint: string,
    private readonly opts: DevTerminalOptions,
  ) {
    session.on('message', (m) => {
      if (!('id' in m) || m.id !== 0) return;
      const i = this.#waiters.findIndex((w) => w.t === m.t);
      const w = i >= 0 ? this.#waiters.splice(i, 1)[0] : undefined;
      if (w !== undefined) w.resolve(m);
      else this.events.push(m);
    });
  }

  static async connect(opts: DevTerminalOptions): Promise<Result<{ terminal: DevTerminal }, PosErrorCode>> {
    let link = opts.link;
    if (link === undefined) {
      const line = opts.line;
      if (line === undefined) throw new Error('DevTerminal needs a line or a link');
      const serial = new SerialLink({ write: (b) => line.write(b) });
      line.onData((b) => serial.receive(b));
      link = serial;
    }
    const key = newP256KeyPair();
    const thumbprint = jwkThumbprint(jwkFromPublicKey(key.publicKey));
    const sessionTicket = await opts.signTicket({
      use: 'session',
      cnf: { jkt: thumbprint },
      rsn: opts.serial,
      perm: ['transact'],
    });
    const r = await connectToReader(link, {
      deviceKey: p256Signer(key.secretKey),
      sessionTicket,
      trustedRoots: [opts.caCertificateDer],
      now: () => Math.floor(Date.now() / 1000),
      expectedSerial: opts.serial,
      timeoutMs: opts.timeoutMs ?? 5000,
    });
    if (!r.ok) return r;
    return { ok: true, terminal: new DevTerminal(r.session, link, thumbprint, opts) };
  }

  /** The next event of type `t` (one already received, or the next to arrive). */
  waitFor<T extends ReaderMessage['t']>(t: T, timeoutMs = 5000): Promise<Extract<ReaderMessage, { t: T }>> {
    const i = this.events.findIndex((m) => m.t === t);
    if (i >= 0) return Promise.resolve(this.events.splice(i, 1)[0] as Extract<ReaderMessage, { t: T }>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${t} event within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({
        t,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<ReaderMessage, { t: T }>);
        },
      });
    });
  }

  /** Sends a request and waits for its answer; an `error` answer becomes `ok: false` with its code. */
  request(msg: ReaderMessage & { id: number }): Promise<Result<{ message: ReaderMessage }, PosErrorCode>> {
    return this.session.request(msg, this.opts.timeoutMs ?? 5000);
  }

  newId(): number {
    return this.session.newId();
  }

  /** A PIN-entry ticket for a card event (bound to this terminal, the reader and the nonce). */
  async pinTicket(card: CardEvent, extra: Partial<TicketClaims> = {}): Promise<string> {
    return this.opts.signTicket({
      use: 'pin-entry',
      cnf: { jkt: this.thumbprint },
      rsn: this.opts.serial,
      nonce: toBase64url(card.nonce),
      perm: ['transact', 'pin-entry'],
      ...extra,
    });
  }

  close(): void {
    this.session.close();
  }
}
