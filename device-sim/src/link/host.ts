/**
 * The reader's protocol stack above a message link (serial or HID): the handshake in the clear, then
 * the secure channel, whose messages go to the ReaderService. Every input is decoded and checked by
 * the shared protocol code; nothing a terminal sends can crash the reader: a malformed message gets
 * an `error`, a bad record ends the session (the channel's rule), a new `offer` starts a new session.
 */
import {
  decodeMessage,
  encodeMessage,
  handshakeRequired,
  p256Signer,
  ReaderHandshake,
  type ReaderLink,
  type ReaderMessage,
  type SecureChannel,
} from '@pos/shared';
import type { ReaderFirmware } from '../firmware/reader';
import type { ReaderService } from './service';

export interface LinkHostEvents {
  /** Session opened (terminal id from its session ticket) or closed (with the reason's code). */
  onSession?: (e: { open: true; terminal: string } | { open: false; code: string }) => void;
  /** A message or frame the reader refused (code only: never the bytes). */
  onRefused?: (code: string) => void;
  /**
   * A terminal starts a handshake: the transport may replace the link (serial: a fresh link, so that
   * no frame of the previous session is retransmitted into the new one) by calling `attach`.
   */
  onOffer?: () => void;
}

export class ReaderLinkHost {
  #link: ReaderLink | undefined;
  #unsubs: (() => void)[] = [];
  #handshake: ReaderHandshake | undefined;
  #channel: SecureChannel | undefined;
  #queue: Promise<void> = Promise.resolve();
  #messages = 0;

  constructor(
    private readonly fw: ReaderFirmware,
    private readonly service: ReaderService,
    private readonly events: LinkHostEvents = {},
    /** The reader's clock, seconds since the epoch. */
    private readonly nowS: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  /** Messages received (decoded or not) since start; for benchmarks. */
  get messagesReceived(): number {
    return this.#messages;
  }

  /** The link being served. */
  get currentLink(): ReaderLink | undefined {
    return this.#link;
  }

  get sessionOpen(): boolean {
    return this.#channel !== undefined && !this.#channel.closed;
  }

  /** Serves one link (replacing any previous one). */
  attach(link: ReaderLink): void {
    this.detach();
    this.#link = link;
    this.#unsubs.push(
      link.on('message', (bytes) => {
        // A bug in the stack must not stop the reader serving: the message is dropped with a code.
        // A message still queued when its link is replaced is dropped unread: answering it would put
        // the old link's traffic on the new one (a stray `error` in the middle of the next handshake).
        this.#queue = this.#queue
          .then(async () => {
            if (this.#link === link) await this.#onBytes(bytes);
            else bytes.fill(0);
          })
          .catch(() => this.#refused('POS_ERR_SIM_INTERNAL'));
      }),
      link.on('error', (e) => this.#refused(e.code)),
      link.on('close', () => this.#endSession('POS_ERR_READER_LINK_CLOSED')),
    );
  }

  /** Stops serving the current link and ends its session (the link itself is the caller's). */
  detach(): void {
    for (const u of this.#unsubs) u();
    this.#unsubs = [];
    this.#endSession('POS_ERR_READER_LINK_CLOSED');
    this.#link = undefined;
  }

  /** Ends the session, e.g. on a disconnect: the firmware aborts what was in progress. */
  endSession(code = 'POS_ERR_READER_SESSION_CLOSED'): void {
    this.#endSession(code);
  }

  #refused(code: string): void {
    this.events.onRefused?.(code);
  }

  #sendClear(msg: ReaderMessage): void {
    const link = this.#link;
    if (link === undefined || link.closed) return;
    try {
      link.send(encodeMessage(msg));
    } catch {
      this.#refused('POS_ERR_SIM_INTERNAL');
    }
  }

  #endSession(code: string): void {
    this.#handshake = undefined;
    const ch = this.#channel;
    this.#channel = undefined;
    if (ch !== undefined) {
      ch.close();
      this.service.closeSession();
      this.events.onSession?.({ open: false, code });
    }
  }

  async #onBytes(bytes: Uint8Array): Promise<void> {
    this.#messages++;
    const decoded = decodeMessage(bytes);
    bytes.fill(0);
    if (!decoded.ok) {
      this.#refused(decoded.code);
      this.#sendClear({ t: 'error', id: 0, code: decoded.code, detail: decoded.detail.slice(0, 200) });
      return;
    }
    const msg = decoded.message;
    // PIN digits are taken only inside the channel; one sent in the clear is wiped and refused.
    if (msg.t === 'pin') msg.digits.fill(0);
    if (msg.t === 'rec') {
      await this.#onRecord(msg);
      return;
    }
    if (this.#channel !== undefined && msg.t !== 'offer') {
      // reader-protocol.md 4.2: once the session is open, anything in the clear (but a new `offer`,
      // which replaces the session below) ends it: the channel is closed and the transaction aborted.
      this.#endSession('POS_ERR_READER_UNEXPECTED');
      this.#refused('POS_ERR_READER_UNEXPECTED');
      if (msg.t !== 'error') {
        this.#sendClear({
          t: 'error',
          id: 'id' in msg ? msg.id : 0,
          code: 'POS_ERR_READER_UNEXPECTED',
          detail: 'a message in the clear after the handshake ends the session',
        });
      }
      return;
    }
    if (msg.t === 'offer') {
      // A new handshake replaces any session (the terminal reconnected or restarted).
      this.#endSession('POS_ERR_READER_SESSION_CLOSED');
      this.events.onOffer?.();
      const identity = this.fw.identity;
      if (this.fw.tampered || identity === undefined) {
        this.#sendClear({
          t: 'error',
          id: msg.id,
          code: 'POS_ERR_READER_TAMPERED',
          detail: 'the reader is tampered',
        });
        return;
      }
      this.#handshake = new ReaderHandshake({
        identityKey: p256Signer(identity.privateKey),
        certChain: [identity.certificateDer],
        serial: identity.serial,
        trustedTicketKeys: this.fw.trustedKeys,
        now: this.nowS,
      });
    }
    const hs = this.#handshake;
    if (hs === undefined || msg.t === 'close') {
      if (msg.t !== 'error' && msg.t !== 'close') {
        this.#refused('POS_ERR_READER_UNEXPECTED');
        this.#sendClear(handshakeRequired('id' in msg ? msg.id : 0));
      }
      return;
    }
    const step = await hs.receive(msg);
    if (this.#handshake !== hs) return; // replaced by a newer offer meanwhile
    for (const m of step.send) this.#sendClear(m);
    if (step.status === 'failed') {
      this.#handshake = undefined;
      this.#refused(step.error.code);
      return;
    }
    if (step.status === 'done') {
      this.#handshake = undefined;
      const channel = step.channel;
      this.#channel = channel;
      const opened = this.service.openSession(
        {
          send: (m) => {
            if (this.#channel !== channel) return;
            const sealed = channel.seal(m);
            if (sealed.ok) this.#link?.send(sealed.bytes);
          },
          close: () => {
            if (this.#channel === channel) this.#endSession('POS_ERR_READER_SESSION_CLOSED');
          },
        },
        step.terminal.thumbprint,
        {
          perm: step.terminal.claims.perm,
          exp: step.terminal.claims.exp,
          jti: step.terminal.claims.jti,
        },
      );
      if (!opened.ok) {
        channel.close();
        this.#channel = undefined;
        this.#refused(opened.code);
        return;
      }
      this.events.onSession?.({ open: true, terminal: step.terminal.claims.sub });
    }
  }

  async #onRecord(rec: Extract<ReaderMessage, { t: 'rec' }>): Promise<void> {
    const channel = this.#channel;
    if (channel === undefined) {
      this.#refused('POS_ERR_READER_SESSION_CLOSED');
      this.#sendClear({
        t: 'error',
        id: 0,
        code: 'POS_ERR_READER_SESSION_CLOSED',
        detail: 'no session is open',
      });
      return;
    }
    const opened = channel.open(rec);
    if (!opened.ok) {
      this.#refused(opened.code);
      this.#sendClear({ t: 'error', id: 0, code: opened.code, detail: opened.detail.slice(0, 200) });
      this.#endSession(opened.code);
      return;
    }
    await this.service.handle(opened.message);
  }
}
