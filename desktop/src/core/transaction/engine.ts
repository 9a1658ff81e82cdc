/**
 * The transaction engine: one sale, as a state machine
 *
 *   idle → amount → card → attest (pre-PIN attestation, PIN-entry ticket to the reader) → pin
 *        → pin-block → submit → result
 *
 * with a timeout in each state, cancel from every state before submit, and a `POS_ERR_DESKTOP_TXN_*`
 * code for every way it can fail (the port's own code, when there is one, is kept as `cause`).
 *
 * The halt gate: the PIN pad is open, and a digit is taken, only while a valid PIN-entry ticket is
 * held (issued for this card's reader nonce, accepted by the reader, not expired by the wall clock)
 * and no halt is in force. A halt (push) ends any sale before submit; a ticket that expires ends it
 * during attest and PIN entry. Either way: the pad is closed, the digits wiped, the reader told to
 * abort, and the result says why. The gate is checked again right before the digits leave for the
 * reader, so a PIN block is never requested without a valid ticket and with a halt in force.
 *
 * PIN digits live in a fixed-size buffer (`PinBuffer`), wiped on every exit path; the copy handed to
 * the reader is wiped when the reader answers. Nothing here logs; snapshots carry the digit count only.
 *
 * Port answers come back asynchronously; each is tied to the step that asked for it, and an answer
 * for an earlier step (after a cancel, a halt, a timeout) is dropped (a late PIN block is wiped).
 */
import { SALE_STATES } from '../../api/contract';
import { MAX_AMOUNT_MINOR, wipe, type Result } from '@pos/shared';
import type { DesktopErrorCode } from '../../errors';
import type { DesktopCode } from '../result';
import { PIN_MIN, PinBuffer } from './pin-buffer';
import {
  systemClock,
  type BackendPort,
  type CardPresented,
  type EngineClock,
  type HaltInfo,
  type PinTicket,
  type PushPort,
  type ReaderPort,
} from './ports';

/** The engine's states are the UI API's sale states (one list, desktop/src/api/contract.ts). */
export const TXN_STATES = SALE_STATES;
export type TxnState = (typeof TXN_STATES)[number];

/** The states with a timeout, and the code when it runs out. */
export const TIMEOUT_CODES = {
  amount: 'POS_ERR_DESKTOP_TXN_TIMEOUT_AMOUNT',
  card: 'POS_ERR_DESKTOP_TXN_TIMEOUT_CARD',
  attest: 'POS_ERR_DESKTOP_TXN_TIMEOUT_ATTEST',
  pin: 'POS_ERR_DESKTOP_TXN_TIMEOUT_PIN',
  'pin-block': 'POS_ERR_DESKTOP_TXN_TIMEOUT_PIN_BLOCK',
  submit: 'POS_ERR_DESKTOP_TXN_TIMEOUT_SUBMIT',
} as const satisfies Partial<Record<TxnState, DesktopErrorCode>>;
export type TimedState = keyof typeof TIMEOUT_CODES;

export const DEFAULT_TIMEOUTS: Readonly<Record<TimedState, number>> = {
  amount: 120_000,
  card: 60_000,
  attest: 15_000,
  pin: 60_000,
  'pin-block': 10_000,
  submit: 30_000,
};

export interface TxnResult {
  readonly status: 'approved' | 'declined' | 'halted' | 'error';
  /** Set for every outcome but approved. */
  readonly code?: DesktopCode;
  /** The port's own code behind it (reader, back-end), when there is one. */
  readonly cause?: DesktopCode;
  /** One sentence for the merchant (a halt: the operator's reason). */
  readonly detail?: string;
}

export interface EngineSnapshot {
  readonly state: TxnState;
  readonly amountMinor?: number;
  readonly currency?: string;
  readonly maskedPan?: string;
  readonly padOpen: boolean;
  /** How many digits are typed (the display shows dots); never the digits. */
  readonly pinLength: number;
  readonly halted?: HaltInfo;
  readonly result?: TxnResult;
}

export interface EngineOptions {
  readonly reader: ReaderPort;
  readonly backend: BackendPort;
  readonly push: PushPort;
  readonly clock?: EngineClock;
  readonly timeouts?: Partial<Record<TimedState, number>>;
}

type Code = DesktopCode;
type Ok = Result<object, Code>;
const OK: Ok = { ok: true };
const refuse = (code: DesktopErrorCode, detail: string): Ok => ({ ok: false, code, detail });

/** A port call that rejects or throws (it should answer a Result) becomes a failure result. */
async function safe<T extends object>(
  call: () => Promise<Result<T, Code>>,
  code: DesktopErrorCode,
): Promise<Result<T, Code>> {
  try {
    return await call();
  } catch {
    return { ok: false, code, detail: 'the port failed unexpectedly' };
  }
}

const READER_STATES: ReadonlySet<TxnState> = new Set(['card', 'attest', 'pin', 'pin-block']);
const ABORTABLE: ReadonlySet<TxnState> = new Set(['amount', 'card', 'attest', 'pin', 'pin-block']);

export class TransactionEngine {
  readonly #reader: ReaderPort;
  readonly #backend: BackendPort;
  readonly #clock: EngineClock;
  readonly #timeouts: Record<TimedState, number>;
  readonly #pin = new PinBuffer();
  readonly #unsubscribe: (() => void)[];
  readonly #changeCbs = new Set<(s: EngineSnapshot) => void>();
  readonly #padCbs = new Set<(open: boolean) => void>();

  #state: TxnState = 'idle';
  /** Bumped on every transition: port answers for an older step are dropped. */
  #step = 0;
  #stateTimer: unknown;
  #ticketTimer: unknown;
  #halt: HaltInfo | undefined;
  #amount: { minor: number; currency: string } | undefined;
  #card: CardPresented | undefined;
  #ticket: PinTicket | undefined;
  #ticketAccepted = false;
  #readerStarted = false;
  #padOpen = false;
  #pinBlock: { block: Uint8Array; ksn: Uint8Array } | undefined;
  /** The digits handed to the reader, until it answers (wiped then, or when the sale ends first). */
  #inFlightDigits: Uint8Array | undefined;
  #result: TxnResult | undefined;
  /** Inside the reader's `abort()` call of `#finish`. */
  #aborting = false;

  constructor(opts: EngineOptions) {
    this.#reader = opts.reader;
    this.#backend = opts.backend;
    this.#clock = opts.clock ?? systemClock;
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.#halt = opts.push.current();
    this.#unsubscribe = [
      opts.push.onHalt((h) => this.#onHalt(h)),
      opts.push.onResume(() => {
        this.#halt = undefined;
        this.#emit();
      }),
      this.#reader.onCard((c) => this.#onCard(c)),
      this.#reader.onAborted((e) => {
        if (READER_STATES.has(this.#state))
          this.#finish(
            { status: 'error', code: 'POS_ERR_DESKTOP_TXN_READER', cause: e.code, detail: e.detail },
            false,
          );
      }),
    ];
  }

  // ---- observation -----------------------------------------------------------------------------

  get state(): TxnState {
    return this.#state;
  }

  snapshot(): EngineSnapshot {
    return {
      state: this.#state,
      ...(this.#amount === undefined
        ? {}
        : { amountMinor: this.#amount.minor, currency: this.#amount.currency }),
      ...(this.#card === undefined ? {} : { maskedPan: this.#card.maskedPan }),
      padOpen: this.#padOpen,
      pinLength: this.#pin.length,
      ...(this.#halt === undefined ? {} : { halted: this.#halt }),
      ...(this.#result === undefined ? {} : { result: this.#result }),
    };
  }

  /** Test hook: the engine's own digit buffer is all zero and empty. */
  pinWiped(): boolean {
    return this.#pin.isWiped();
  }

  onChange(cb: (s: EngineSnapshot) => void): () => void {
    this.#changeCbs.add(cb);
    return () => this.#changeCbs.delete(cb);
  }

  /** The PIN pad opens (true) and closes (false). */
  onPad(cb: (open: boolean) => void): () => void {
    this.#padCbs.add(cb);
    return () => this.#padCbs.delete(cb);
  }

  #emit(): void {
    const s = this.snapshot();
    for (const cb of [...this.#changeCbs]) cb(s);
  }

  // ---- the gate --------------------------------------------------------------------------------

  /** A valid PIN-entry ticket is held and no halt is in force. */
  #gateOpen(): boolean {
    const t = this.#ticket;
    return (
      this.#halt === undefined &&
      t !== undefined &&
      this.#ticketAccepted &&
      this.#card !== undefined &&
      t.nonce === this.#card.nonce &&
      this.#clock.now() < t.exp * 1000
    );
  }

  /** Ends the sale because the gate closed: the halt, or the ticket's expiry. */
  #gateClosed(): void {
    if (this.#halt !== undefined)
      this.#finish({ status: 'halted', code: 'POS_ERR_DESKTOP_TXN_HALTED', detail: this.#halt.reason });
    else if (this.#ticket !== undefined && this.#clock.now() >= this.#ticket.exp * 1000)
      this.#finish({
        status: 'error',
        code: 'POS_ERR_DESKTOP_TXN_TICKET_EXPIRED',
        detail: 'the PIN-entry ticket expired',
      });
    else
      this.#finish({
        status: 'error',
        code: 'POS_ERR_DESKTOP_TXN_TICKET_MISSING',
        detail: 'no valid PIN-entry ticket is held',
      });
  }

  // ---- transitions -----------------------------------------------------------------------------

  #enter(state: TxnState): number {
    this.#state = state;
    const step = ++this.#step;
    this.#clock.clearTimeout(this.#stateTimer);
    this.#stateTimer = undefined;
    if (state in TIMEOUT_CODES) {
      const s = state as TimedState;
      this.#stateTimer = this.#clock.setTimeout(() => {
        if (this.#step !== step) return;
        this.#finish({ status: 'error', code: TIMEOUT_CODES[s], detail: `timed out in ${s}` });
      }, this.#timeouts[s]);
    }
    this.#emit();
    return step;
  }

  #setPad(open: boolean): void {
    if (this.#padOpen === open) return;
    this.#padOpen = open;
    for (const cb of [...this.#padCbs]) cb(open);
  }

  /** Every way a sale ends goes through here: pad closed, digits wiped, reader aborted if needed. */
  #finish(result: TxnResult, abortReader = true): void {
    // The reader port may report the reader lost from inside `abort()` (the link failed while the
    // abort was being sent): the sale already has its result (cancelled, halted, ...), which stays.
    if (this.#aborting) return;
    const wasReader = this.#readerStarted && READER_STATES.has(this.#state);
    this.#pin.wipe();
    wipe(this.#inFlightDigits);
    this.#inFlightDigits = undefined;
    this.#setPad(false);
    this.#clock.clearTimeout(this.#ticketTimer);
    this.#ticketTimer = undefined;
    if (this.#pinBlock !== undefined) wipe(this.#pinBlock.block, this.#pinBlock.ksn);
    this.#pinBlock = undefined;
    this.#ticket = undefined;
    this.#ticketAccepted = false;
    this.#readerStarted = false;
    this.#result = result;
    if (wasReader && abortReader) {
      this.#aborting = true;
      try {
        void this.#reader.abort().catch(() => undefined);
      } catch {
        // The sale is over either way; a reader port that throws must not stop the wipe above.
      } finally {
        this.#aborting = false;
      }
    }
    this.#enter('result');
  }

  // ---- inputs ----------------------------------------------------------------------------------

  /** Starts a sale: the amount is asked for next. */
  begin(): Ok {
    if (this.#state !== 'idle') return refuse('POS_ERR_DESKTOP_TXN_BUSY', 'a transaction is already running');
    if (this.#halt !== undefined) return refuse('POS_ERR_DESKTOP_TXN_HALTED', this.#halt.reason);
    this.#result = undefined;
    this.#amount = undefined;
    this.#card = undefined;
    this.#enter('amount');
    return OK;
  }

  enterAmount(minor: number, currency: string): Ok {
    if (this.#state !== 'amount') return refuse('POS_ERR_DESKTOP_TXN_STATE', 'no amount is expected now');
    if (!Number.isInteger(minor) || minor < 1 || minor > MAX_AMOUNT_MINOR || !/^[A-Z]{3}$/.test(currency))
      return refuse('POS_ERR_DESKTOP_TXN_AMOUNT', 'the amount or currency is not valid');
    if (this.#halt !== undefined) {
      this.#gateClosed();
      return refuse('POS_ERR_DESKTOP_TXN_HALTED', this.#halt?.reason ?? 'halted');
    }
    this.#amount = { minor, currency };
    const step = this.#enter('card');
    this.#readerStarted = true;
    void safe(() => this.#reader.start(minor, currency), 'POS_ERR_DESKTOP_TXN_READER').then((r) => {
      if (this.#step !== step || r.ok) return;
      this.#finish({ status: 'error', code: 'POS_ERR_DESKTOP_TXN_READER', cause: r.code, detail: r.detail });
    });
    return OK;
  }

  #onCard(card: CardPresented): void {
    if (this.#state === 'attest' || this.#state === 'pin' || this.#state === 'pin-block') {
      // The reader started over with another card (and another nonce): what this sale holds (its
      // ticket, the open pad) no longer matches the reader. End it rather than carry on.
      this.#finish({
        status: 'error',
        code: 'POS_ERR_DESKTOP_TXN_READER',
        detail: 'the reader reported another card during the sale',
      });
      return;
    }
    if (this.#state !== 'card') return;
    this.#card = card;
    if (!card.pinRequired) {
      this.#submit();
      return;
    }
    const step = this.#enter('attest');
    void safe(() => this.#backend.prePin({ nonce: card.nonce }), 'POS_ERR_DESKTOP_TXN_ATTEST_REFUSED').then(
      (r) => {
        if (this.#step !== step) return;
        if (!r.ok) {
          this.#finish({
            status: 'error',
            code: 'POS_ERR_DESKTOP_TXN_ATTEST_REFUSED',
            cause: r.code,
            detail: r.detail,
          });
          return;
        }
        this.#onTicket(r.ticket, step);
      },
    );
  }

  #onTicket(ticket: PinTicket, step: number): void {
    if (ticket.nonce !== this.#card?.nonce) {
      this.#finish({
        status: 'error',
        code: 'POS_ERR_DESKTOP_TXN_TICKET_MISSING',
        detail: "the ticket is not bound to this card's reader nonce",
      });
      return;
    }
    this.#ticket = ticket;
    const left = ticket.exp * 1000 - this.#clock.now();
    if (this.#halt !== undefined || left <= 0) {
      this.#gateClosed();
      return;
    }
    this.#ticketTimer = this.#clock.setTimeout(() => {
      this.#ticketTimer = undefined;
      if (this.#state === 'attest' || this.#state === 'pin') this.#gateClosed();
    }, left);
    void safe(() => this.#reader.sendTicket(ticket.jws), 'POS_ERR_DESKTOP_TXN_READER').then((r) => {
      if (this.#step !== step) return;
      if (!r.ok) {
        this.#finish({
          status: 'error',
          code: 'POS_ERR_DESKTOP_TXN_READER',
          cause: r.code,
          detail: r.detail,
        });
        return;
      }
      this.#ticketAccepted = true;
      if (!this.#gateOpen()) {
        this.#gateClosed();
        return;
      }
      this.#enter('pin');
      this.#setPad(true);
      this.#emit();
    });
  }

  /** One PIN digit (0..9), only while the pad is open and the gate is open. */
  pressDigit(d: number): Ok {
    if (this.#state !== 'pin' || !this.#padOpen)
      return refuse('POS_ERR_DESKTOP_TXN_STATE', 'the PIN pad is closed');
    if (!this.#gateOpen()) {
      this.#gateClosed();
      return refuse('POS_ERR_DESKTOP_TXN_STATE', 'the PIN pad was closed');
    }
    if (!this.#pin.push(d)) return refuse('POS_ERR_DESKTOP_TXN_PIN_LENGTH', 'a PIN is 4 to 12 digits');
    this.#emit();
    return OK;
  }

  backspace(): Ok {
    if (this.#state !== 'pin' || !this.#padOpen)
      return refuse('POS_ERR_DESKTOP_TXN_STATE', 'the PIN pad is closed');
    this.#pin.pop();
    this.#emit();
    return OK;
  }

  /** The PIN is complete: the gate is checked once more, then the digits go to the reader. */
  submitPin(): Ok {
    if (this.#state !== 'pin' || !this.#padOpen)
      return refuse('POS_ERR_DESKTOP_TXN_STATE', 'the PIN pad is closed');
    if (this.#pin.length < PIN_MIN)
      return refuse('POS_ERR_DESKTOP_TXN_PIN_LENGTH', 'a PIN is 4 to 12 digits');
    if (!this.#gateOpen()) {
      this.#gateClosed();
      return refuse('POS_ERR_DESKTOP_TXN_STATE', 'the PIN pad was closed');
    }
    const digits = this.#pin.take();
    this.#inFlightDigits = digits;
    this.#setPad(false);
    const step = this.#enter('pin-block');
    let answer: Promise<Result<{ block: Uint8Array; ksn: Uint8Array }, Code>>;
    try {
      answer = this.#reader.pinBlock(digits);
    } catch {
      answer = Promise.resolve({
        ok: false,
        code: 'POS_ERR_DESKTOP_TXN_READER',
        detail: 'the reader port failed',
      });
    }
    void answer
      .catch(() => ({
        ok: false as const,
        code: 'POS_ERR_DESKTOP_TXN_READER' as const,
        detail: 'the reader port failed',
      }))
      .then((r) => {
        wipe(digits);
        if (this.#inFlightDigits === digits) this.#inFlightDigits = undefined;
        if (this.#step !== step) {
          if (r.ok) wipe(r.block, r.ksn);
          return;
        }
        if (!r.ok) {
          this.#finish({
            status: 'error',
            code: 'POS_ERR_DESKTOP_TXN_READER',
            cause: r.code,
            detail: r.detail,
          });
          return;
        }
        this.#pinBlock = { block: r.block, ksn: r.ksn };
        this.#submit();
      });
    return OK;
  }

  #submit(): void {
    const amount = this.#amount;
    const card = this.#card;
    if (amount === undefined || card === undefined) {
      this.#finish({ status: 'error', code: 'POS_ERR_DESKTOP_TXN_STATE', detail: 'nothing to submit' });
      return;
    }
    const ticket = this.#ticket;
    const pinBlock = this.#pinBlock;
    this.#clock.clearTimeout(this.#ticketTimer);
    this.#ticketTimer = undefined;
    const step = this.#enter('submit');
    void this.#backend
      .submit({
        amountMinor: amount.minor,
        currency: amount.currency,
        card: card.card,
        ...(ticket === undefined ? {} : { ticket }),
        ...(pinBlock === undefined ? {} : { pinBlock }),
      })
      .catch(() => ({
        ok: false as const,
        code: 'POS_ERR_DESKTOP_TXN_BACKEND' as const,
        detail: 'the back-end port failed',
      }))
      .then((r) => {
        if (this.#step !== step) return;
        this.#readerStarted = false;
        if (!r.ok)
          this.#finish({
            status: 'error',
            code: 'POS_ERR_DESKTOP_TXN_BACKEND',
            cause: r.code,
            detail: r.detail,
          });
        else if (r.outcome === 'approved') this.#finish({ status: 'approved' });
        else
          this.#finish({
            status: 'declined',
            code: r.code ?? 'POS_ERR_DESKTOP_TXN_DECLINED',
            detail: 'the card issuer declined',
          });
      });
  }

  #onHalt(h: HaltInfo): void {
    this.#halt = h;
    if (ABORTABLE.has(this.#state)) this.#gateClosed();
    else this.#emit();
  }

  /**
   * Cancels the sale in any state before submit. Once submitted, the back-end's answer is the result
   * (the money may have moved; undoing it is a reversal, not a cancel).
   */
  cancel(): Ok {
    if (!ABORTABLE.has(this.#state))
      return refuse(
        'POS_ERR_DESKTOP_TXN_STATE',
        this.#state === 'submit' ? 'the sale is already submitted' : 'no sale to cancel',
      );
    this.#finish({ status: 'error', code: 'POS_ERR_DESKTOP_TXN_CANCELLED', detail: 'cancelled' });
    return OK;
  }

  /** From a result back to idle. */
  reset(): Ok {
    if (this.#state !== 'result') return refuse('POS_ERR_DESKTOP_TXN_STATE', 'the sale has not ended');
    this.#amount = undefined;
    this.#card = undefined;
    this.#result = undefined;
    this.#enter('idle');
    return OK;
  }

  /** Ends any sale (as cancelled) and unsubscribes from the ports. */
  dispose(): void {
    if (ABORTABLE.has(this.#state)) this.cancel();
    this.#pin.wipe();
    this.#clock.clearTimeout(this.#stateTimer);
    this.#clock.clearTimeout(this.#ticketTimer);
    for (const u of this.#unsubscribe.splice(0)) u();
  }
}
