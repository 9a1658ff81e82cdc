/**
 * The transaction engine's `ReaderPort` over the live reader session of a `ReaderConnection`: `start`,
 * `ticket`, `pin` and `abort` requests (shared `ReaderSession.request`: the reader's `error` answer
 * comes back with its code), card events as `CardPresented`, and the reader's own `aborted` / `tamper`
 * events and a lost reader as `onAborted`. A lost reader is always `POS_ERR_DESKTOP_READER_LOST`, however
 * the connection noticed (device gone, link timeout, unanswered probe, session ended): the detail says
 * which, so a sale's cause does not depend on which detector fired first.
 *
 * The PIN digits are copied into the `pin` message, which the session seals synchronously; the copy is
 * wiped as soon as the request is sent.
 */
import { toBase64url, wipe, type ReaderMessage, type ReaderSession, type Result } from '@pos/shared';
import type { DesktopCode } from '../result';
import type { CardPresented, ReaderPort } from '../transaction/ports';
import type { ReaderConnection } from './connection';

export const READER_REQUEST_TIMEOUT_MS = 5000;

export class SessionReaderPort implements ReaderPort {
  readonly #cardCbs = new Set<(c: CardPresented) => void>();
  readonly #abortedCbs = new Set<(e: { code: DesktopCode; detail: string }) => void>();
  readonly #unsubscribe: (() => void)[] = [];
  #offSession: (() => void) | undefined;

  constructor(
    private readonly conn: ReaderConnection,
    private readonly timeoutMs = READER_REQUEST_TIMEOUT_MS,
    /**
     * Runs before each `start`: the terminal makes sure its reader session may transact and has time
     * left (a session opened under a handshake-only ticket, or whose ticket is at its end, is renewed
     * with a fresh `transact` ticket; docs/reader-protocol.md §5.5). A failure ends the start with its
     * code.
     */
    private readonly beforeStart?: () => Promise<Result<object, DesktopCode>>,
    /**
     * When the reader refuses a `start` because the session's ticket has expired by its clock
     * (`POS_ERR_READER_SESSION_EXPIRED`): renews the session with a newer ticket (or re-opens it), once;
     * the `start` is then sent again, and a second refusal ends it with the code.
     */
    private readonly renewExpired?: () => Promise<Result<object, DesktopCode>>,
  ) {
    this.#unsubscribe.push(
      conn.on('connected', (e) => this.#attach(e.session)),
      conn.on('reader-lost', (e) =>
        this.#aborted(
          'POS_ERR_DESKTOP_READER_LOST',
          e.code === 'POS_ERR_DESKTOP_READER_LOST' ? e.message : `${e.message} (${e.code})`,
        ),
      ),
    );
    const s = conn.session;
    if (s !== undefined) this.#attach(s);
  }

  #attach(session: ReaderSession): void {
    this.#offSession?.();
    this.#offSession = session.on('message', (m) => this.#event(m));
  }

  #event(m: ReaderMessage): void {
    if (!('id' in m) || m.id !== 0) return;
    if (m.t === 'card-inserted' || m.t === 'card-tapped') {
      const card: CardPresented = {
        nonce: toBase64url(m.nonce),
        pinRequired: m.pinRequired,
        maskedPan: m.pan,
        scheme: m.scheme,
        card: m.card,
      };
      for (const cb of [...this.#cardCbs]) cb(card);
    } else if (m.t === 'aborted') {
      this.#aborted(
        m.code !== undefined && m.code.startsWith('POS_ERR_')
          ? (m.code as DesktopCode)
          : 'POS_ERR_DESKTOP_TXN_READER',
        'the reader ended the transaction',
      );
    } else if (m.t === 'tamper') {
      this.#aborted('POS_ERR_READER_TAMPERED', 'the reader reports tampering');
    }
  }

  #aborted(code: DesktopCode, detail: string): void {
    for (const cb of [...this.#abortedCbs]) cb({ code, detail });
  }

  #session(): ReaderSession | undefined {
    return this.conn.session;
  }

  async #ask(
    make: (id: number) => ReaderMessage & { id: number },
    expect: ReaderMessage['t'],
    after?: () => void,
  ): Promise<Result<{ message: ReaderMessage }, DesktopCode>> {
    const s = this.#session();
    if (s === undefined) {
      after?.();
      return { ok: false, code: 'POS_ERR_DESKTOP_READER_LOST', detail: 'no reader is connected' };
    }
    const pending = s.request(make(s.newId()), this.timeoutMs);
    after?.();
    const r = await pending;
    if (!r.ok) return r;
    if (r.message.t !== expect)
      return { ok: false, code: 'POS_ERR_DESKTOP_TXN_READER', detail: `the reader answered ${r.message.t}` };
    return r;
  }

  async start(amountMinor: number, currency: string): Promise<Result<object, DesktopCode>> {
    if (this.beforeStart !== undefined) {
      const ready = await this.beforeStart();
      if (!ready.ok) return ready;
    }
    const send = () => this.#ask((id) => ({ t: 'start', id, amount: amountMinor, currency }), 'started');
    const r = await send();
    if (r.ok) return { ok: true };
    if (r.code !== 'POS_ERR_READER_SESSION_EXPIRED' || this.renewExpired === undefined) return r;
    const renewed = await this.renewExpired();
    if (!renewed.ok)
      return {
        ok: false,
        code: 'POS_ERR_READER_SESSION_EXPIRED',
        detail: `the reader's session has expired and could not be renewed (${renewed.code}: ${renewed.detail})`,
      };
    const again = await send();
    if (again.ok) return { ok: true };
    return again.code === 'POS_ERR_READER_SESSION_EXPIRED'
      ? {
          ok: false,
          code: again.code,
          detail:
            "the reader still finds its session expired after a renewal: check the reader's and this computer's clocks",
        }
      : again;
  }

  onCard(cb: (card: CardPresented) => void): () => void {
    this.#cardCbs.add(cb);
    return () => this.#cardCbs.delete(cb);
  }

  onAborted(cb: (e: { code: DesktopCode; detail: string }) => void): () => void {
    this.#abortedCbs.add(cb);
    return () => this.#abortedCbs.delete(cb);
  }

  async sendTicket(jws: string): Promise<Result<object, DesktopCode>> {
    const r = await this.#ask((id) => ({ t: 'ticket', id, jws }), 'ticket-ok');
    return r.ok ? { ok: true } : r;
  }

  async pinBlock(digits: Uint8Array): Promise<Result<{ block: Uint8Array; ksn: Uint8Array }, DesktopCode>> {
    const copy = digits.slice();
    const r = await this.#ask(
      (id) => ({ t: 'pin', id, digits: copy }),
      'pin-block',
      () => wipe(copy),
    );
    if (!r.ok) return r;
    const m = r.message;
    return m.t === 'pin-block'
      ? { ok: true, block: m.block, ksn: m.ksn }
      : { ok: false, code: 'POS_ERR_DESKTOP_TXN_READER', detail: 'no PIN block' };
  }

  async abort(): Promise<void> {
    try {
      await this.#ask((id) => ({ t: 'abort', id }), 'aborted');
    } catch {
      // Never throws: the sale is over either way.
    }
  }

  dispose(): void {
    this.#offSession?.();
    for (const u of this.#unsubscribe.splice(0)) u();
  }
}
