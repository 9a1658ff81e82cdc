/**
 * The reader's application layer on the link: messages that arrived inside the secure channel go to
 * the firmware, its answers and events go back as messages (docs/reader-protocol.md, "Messages").
 * The handshake and the channel (shared/src/reader) authenticate the terminal first; this layer only
 * sees a session once the terminal's device key is proven, and tells the firmware its thumbprint.
 *
 * Nothing here logs or returns a PIN, PAN or key: PIN digits go straight to the firmware, which wipes
 * them; refusals carry a code and a sentence.
 */
import type { ReaderMessage, TicketPermission } from '@pos/shared';
import type { ReaderEvent, ReaderFirmware, StatusBody } from '../firmware/reader';

/** Signs a status report: the shared status format once a session exists. */
export type StatusSigner = (
  body: StatusBody,
  challenge: Uint8Array | undefined,
) =>
  | { report: Uint8Array; sig: Uint8Array }
  | undefined
  | Promise<{ report: Uint8Array; sig: Uint8Array } | undefined>;

/** What a session can do: send a message inside the channel, end the session. */
export interface SessionPort {
  send(msg: ReaderMessage): void;
  close(code?: string): void;
}

const DETAIL_MAX = 200;

/** The message schemas type byte strings as ArrayBuffer-backed; ours are, so no copy is made. */
function ab(u: Uint8Array): Uint8Array<ArrayBuffer> {
  return u.buffer instanceof ArrayBuffer ? (u as Uint8Array<ArrayBuffer>) : new Uint8Array(u);
}
const CODE_RE = /^POS_ERR_[A-Z0-9]+(?:_[A-Z0-9]+)*$/;

function errorMessage(id: number, code: string, detail: string): ReaderMessage {
  return {
    t: 'error',
    id,
    code: CODE_RE.test(code) && code.length <= 64 ? code : 'POS_ERR_READER_STATE',
    detail: detail.slice(0, DETAIL_MAX),
  };
}

export class ReaderService {
  #session: SessionPort | undefined;
  readonly #unsubscribe: () => void;

  constructor(
    private readonly fw: ReaderFirmware,
    private readonly signStatus: StatusSigner,
  ) {
    this.#unsubscribe = fw.onEvent((e) => this.#onFirmwareEvent(e));
  }

  get sessionOpen(): boolean {
    return this.#session !== undefined;
  }

  /**
   * The handshake finished: `thumbprint` is the RFC 7638 thumbprint of the terminal's device key,
   * `grant` what its session ticket allowed (`perm`; without `transact` the session is status only),
   * until when (`exp`, s) and its `jti` (a renewal may not present it again).
   */
  openSession(
    port: SessionPort,
    terminalKeyThumbprint: string,
    grant: { perm: readonly TicketPermission[]; exp: number; jti?: string },
  ): { ok: true } | { ok: false; code: string } {
    if (this.#session !== undefined) this.closeSession();
    const set = this.fw.setSession(terminalKeyThumbprint, grant);
    if (!set.ok) return set;
    this.#session = port;
    return { ok: true };
  }

  /** The channel ended (close, error, disconnect): the firmware aborts what was in progress. */
  closeSession(): void {
    if (this.#session === undefined) return;
    this.#session = undefined;
    this.fw.endSession();
  }

  dispose(): void {
    this.closeSession();
    this.#unsubscribe();
  }

  /** One message from inside the channel. Handshake messages never reach this layer. */
  async handle(msg: ReaderMessage): Promise<void> {
    const port = this.#session;
    if (port === undefined) {
      if (msg.t === 'pin') msg.digits.fill(0);
      return;
    }
    if (msg.t === 'get-status') {
      const signed = await this.signStatus(this.fw.status(), msg.challenge);
      port.send(
        signed === undefined
          ? errorMessage(msg.id, 'POS_ERR_READER_TAMPERED', 'the reader has no key to sign its status')
          : { t: 'status', id: msg.id, report: ab(signed.report), sig: ab(signed.sig) },
      );
      return;
    }
    // The answer goes before any event the request caused (a card already in the slot, an abort).
    const pending: ReaderEvent[] = [];
    this.#pending = pending;
    try {
      const answer = this.#answer(msg);
      if (answer !== undefined) port.send(answer);
    } finally {
      this.#pending = undefined;
    }
    for (const e of pending) {
      if (msg.t === 'abort' && e.event === 'abort') continue; // `aborted` with the request's id says it
      this.#onFirmwareEvent(e);
    }
  }

  #answer(msg: ReaderMessage): ReaderMessage | undefined {
    switch (msg.t) {
      case 'get-status':
        return undefined; // answered in handle()
      case 'start': {
        const r = this.fw.start(msg.amount, msg.currency);
        return r.ok ? { t: 'started', id: msg.id } : errorMessage(msg.id, r.code, r.detail);
      }
      case 'ticket': {
        const r = this.fw.submitTicket(msg.jws);
        return r.ok ? { t: 'ticket-ok', id: msg.id } : errorMessage(msg.id, r.code, r.detail);
      }
      case 'renew': {
        const r = this.fw.renewSession(msg.jws);
        return r.ok ? { t: 'renewed', id: msg.id, exp: r.exp } : errorMessage(msg.id, r.code, r.detail);
      }
      case 'pin': {
        const r = this.fw.submitPin(msg.digits);
        return r.ok
          ? { t: 'pin-block', id: msg.id, block: ab(r.pinBlock), ksn: ab(r.ksn) }
          : errorMessage(msg.id, r.code, r.detail);
      }
      case 'abort':
        this.fw.abort();
        return { t: 'aborted', id: msg.id };
      case 'close': {
        const port = this.#session;
        this.closeSession();
        port?.close();
        return undefined;
      }
      case 'error':
        return undefined;
      case 'offer':
      case 'accept':
      case 'hello':
      case 'reader-hello':
      case 'terminal-auth':
      case 'rec':
      case 'finished':
      case 'status':
      case 'started':
      case 'card-inserted':
      case 'card-tapped':
      case 'card-removed':
      case 'ticket-ok':
      case 'renewed':
      case 'pin-block':
      case 'aborted':
      case 'tamper':
        return errorMessage(
          'id' in msg ? msg.id : 0,
          'POS_ERR_READER_UNEXPECTED',
          `the reader does not take a ${msg.t} message in the channel`,
        );
    }
  }

  #pending: ReaderEvent[] | undefined;

  #onFirmwareEvent(e: ReaderEvent): void {
    if (this.#pending !== undefined) {
      this.#pending.push(e);
      return;
    }
    const port = this.#session;
    if (port === undefined) return;
    switch (e.event) {
      case 'card-read': {
        const read = this.fw.cardRead();
        if (!read.ok) return;
        const r = read.read;
        const fields = {
          id: 0 as const,
          pan: r.maskedPan,
          token: r.token,
          scheme: r.scheme,
          pinRequired: r.pinRequired,
          expired: r.expired,
          nonce: ab(r.nonce),
          card: { ksn: ab(r.ksn), iv: ab(r.cardData.iv), ct: ab(r.cardData.ct) },
        };
        port.send(
          r.entry === 'contactless' ? { t: 'card-tapped', ...fields } : { t: 'card-inserted', ...fields },
        );
        return;
      }
      case 'card':
        if (e.action === 'removed') port.send({ t: 'card-removed', id: 0 });
        return;
      case 'abort':
        port.send({ t: 'aborted', id: 0, code: e.code });
        return;
      case 'tamper':
        port.send({ t: 'tamper', id: 0 });
        this.closeSession();
        port.close('POS_ERR_READER_TAMPERED');
        return;
      case 'state':
      case 'ticket':
      case 'pin-block':
      case 'session':
      case 'renew':
      case 'battery':
      case 'fault':
        return;
    }
  }
}
