/**
 * The reader's firmware core: the transaction state machine, the card slot, the PIN-entry ticket check,
 * the PIN block, tamper and battery. Transport-independent: the link layer (serial or HID, handshake,
 * secure channel) calls these methods with already-authenticated requests and sends back the results
 * and the events.
 *
 *   idle -> start(amount, currency) -> waiting-for-card -> card read (fresh nonce, KSN taken)
 *        -> waiting-for-ticket -> ticket verified -> waiting-for-pin -> PIN block -> done
 *        (a card needing no PIN goes from card read straight to done)
 *   abort() from any state returns to idle and wipes the transaction's keys.
 *
 * Invariants: no PIN block without a PIN-entry ticket verified for this transaction's nonce, this
 * reader's serial and the terminal key proven in the handshake; the PIN key lives in RAM only from
 * card read to PIN block or abort; PIN digits are wiped after use; a tampered reader refuses all.
 */
import { createHmac } from 'node:crypto';
import {
  aesKsnCounter,
  checkPinDigits,
  encodePinBlock,
  encryptCardData,
  err,
  findTestCard,
  maskPan,
  ok,
  parsePan,
  randomBytes,
  toBase64url,
  verifySessionTicket,
  verifyTicket,
  wipe,
  type AesKsn,
  type EncryptedCardData,
  type Result,
  type TestCard,
  type TestCardScheme,
  type TicketPermission,
  type TrustedTicketKey,
} from '@pos/shared';
import type { SimCode } from '../result';
import { latchTamper, persistTamperLatch, type ReaderState } from '../state/store';
import { saveTrust } from '../state/trust';

export const FIRMWARE_VERSION = '0.1.0';
/** Bytes of the reader-issued transaction nonce. */
export const TXN_NONCE_BYTES = 32;
/** Refused tickets after which the reader aborts the transaction. */
export const MAX_TICKET_FAILURES = 3;
/** Below this battery level the reader starts no transaction. */
export const BATTERY_MIN_PERCENT = 5;
/** Largest amount in minor units (a 12-digit EMV amount). */
export const MAX_AMOUNT = 999_999_999_999;

export type TxnState =
  'idle' | 'waiting-for-card' | 'reading-card' | 'waiting-for-ticket' | 'waiting-for-pin' | 'done';

export interface CardReadResult {
  readonly maskedPan: string;
  /** Stable per card and reader (HMAC of the PAN under the reader's token key); not reversible. */
  readonly token: string;
  readonly scheme: TestCardScheme;
  readonly entry: 'chip' | 'contactless';
  readonly cardData: EncryptedCardData;
  readonly ksn: AesKsn;
  readonly nonce: Uint8Array;
  readonly pinRequired: boolean;
  /** The card is past its expiry month: reported, and the reader then takes no ticket and no PIN. */
  readonly expired: boolean;
}

export interface PinBlockResult {
  readonly pinBlock: Uint8Array;
  readonly ksn: AesKsn;
}

/** Events for the link layer and the CLI's JSON lines. Never a PIN, PAN, key or token. */
export type ReaderEvent =
  | { readonly event: 'card'; readonly action: 'inserted' | 'tapped' | 'removed'; readonly card: string }
  | { readonly event: 'state'; readonly state: TxnState; readonly txn?: number }
  | {
      readonly event: 'card-read';
      readonly txn: number;
      readonly maskedPan: string;
      readonly scheme: string;
      readonly pinRequired: boolean;
      readonly expired: boolean;
      readonly ksnCounter: number;
    }
  | { readonly event: 'ticket'; readonly txn: number; readonly accepted: boolean; readonly code?: string }
  | { readonly event: 'pin-block'; readonly txn: number; readonly ksnCounter: number }
  | { readonly event: 'abort'; readonly txn?: number; readonly code: string; readonly detail: string }
  | { readonly event: 'session'; readonly authenticated: boolean }
  | { readonly event: 'renew'; readonly accepted: boolean; readonly code?: string }
  | { readonly event: 'tamper'; readonly reason: string }
  | { readonly event: 'battery'; readonly percent: number }
  | { readonly event: 'fault'; readonly fault: string };

export interface Clock {
  /** Milliseconds since the epoch, by the reader's clock. */
  now(): number;
}

export interface StatusBody {
  readonly serial: string;
  readonly firmwareVersion: string;
  /** SHA-256 of the firmware image (hex). */
  readonly firmwareHash: string;
  readonly tampered: boolean;
  /** Counter of the last KSN used (0 before the first, and once wiped). */
  readonly ksnCounter: number;
  readonly battery: number;
  /** Reader clock, seconds since the epoch. */
  readonly time: number;
}

interface Txn {
  readonly id: number;
  readonly amount: number;
  readonly currency: string;
  state: TxnState;
  card?: TestCard;
  entry?: 'chip' | 'contactless';
  ksn?: AesKsn;
  pinKey?: Uint8Array | undefined;
  nonce?: Uint8Array;
  ticketExp?: number;
  ticketFailures: number;
  read?: CardReadResult;
  expired?: boolean;
}

export interface ReaderOptions {
  readonly clock?: Clock;
  readonly firmwareHash: string;
  /** Simulated card read time (ms); a fault can raise it. */
  readonly cardReadMs?: number;
  /** How long the reader waits for a card, a PIN-entry ticket and the PIN (ms; default READER_TIMEOUTS). */
  readonly timeouts?: Partial<ReaderTimeouts>;
  /**
   * Signs the final status (`tamper: true`) with the identity key just before tamper wipes it. The
   * link layer provides it (the shared status format); without it, tamper leaves no signed record.
   */
  readonly signFinalStatus?: (
    privateKey: Uint8Array,
    body: StatusBody,
  ) => { report: Uint8Array; sig: Uint8Array } | undefined;
}

export interface ReaderTimeouts {
  readonly cardMs: number;
  readonly ticketMs: number;
  readonly pinMs: number;
}

/** The reader gives up (aborted, POS_ERR_READER_TIMEOUT) after these, as a real PIN pad does. */
export const READER_TIMEOUTS: ReaderTimeouts = { cardMs: 60_000, ticketMs: 60_000, pinMs: 60_000 };

const TERMINAL_STATES: readonly TxnState[] = ['idle', 'done'];

/** How often a tamper latch that could not be written is written again. */
const LATCH_RETRY_MS = 1000;

export class ReaderFirmware {
  readonly #state: ReaderState;
  readonly #clock: Clock;
  readonly #firmwareHash: string;
  #listeners: ((e: ReaderEvent) => void)[] = [];
  #tampered: boolean;
  #battery = 100;
  #cardReadMs: number;
  #slot: { card: TestCard; entry: 'chip' | 'contactless' } | undefined;
  #txn: Txn | undefined;
  #txnCounter = 0;
  #sessionThumbprint: string | undefined;
  /** What the session's ticket granted (its `perm`): the handshake's, or the last renewal's. */
  #sessionPerm: readonly TicketPermission[] = [];
  /**
   * The `exp` (s) of the session's ticket (the handshake's, or the last renewal's): at or after it the
   * session starts no transaction until a fresh session ticket renews it.
   */
  #sessionExp = 0;
  /** jti of accepted tickets, with their expiry (s), pruned as they expire. */
  readonly #usedJti = new Map<string, number>();
  #readTimer: NodeJS.Timeout | undefined;
  #stepTimer: NodeJS.Timeout | undefined;
  readonly #timeouts: ReaderTimeouts;
  readonly #signFinalStatus: ReaderOptions['signFinalStatus'];
  /** While the tamper latch is not yet on disk: retries writing it. */
  #latchRetry: NodeJS.Timeout | undefined;

  constructor(state: ReaderState, opts: ReaderOptions) {
    this.#state = state;
    this.#tampered = state.tampered;
    this.#clock = opts.clock ?? { now: () => Date.now() };
    this.#firmwareHash = opts.firmwareHash;
    this.#cardReadMs = opts.cardReadMs ?? 0;
    this.#timeouts = { ...READER_TIMEOUTS, ...opts.timeouts };
    this.#signFinalStatus = opts.signFinalStatus;
  }

  get serial(): string {
    return this.#state.serial;
  }
  get tampered(): boolean {
    return this.#tampered;
  }
  get identity(): ReaderState['identity'] {
    return this.#tampered ? undefined : this.#state.identity;
  }
  get trustedKeys(): ReaderState['trustedKeys'] {
    return this.#state.trustedKeys;
  }
  get txnState(): TxnState {
    return this.#txn?.state ?? 'idle';
  }
  get sessionThumbprint(): string | undefined {
    return this.#sessionThumbprint;
  }
  /** The expiry (s) of the open session's ticket; undefined without a session. */
  get sessionExpiry(): number | undefined {
    return this.#sessionThumbprint === undefined ? undefined : this.#sessionExp;
  }
  /** Once tampered: the status it signed with `tamper: true` just before wiping its key (base64url). */
  get finalStatus(): ReaderState['finalStatus'] {
    return this.#state.finalStatus;
  }

  get cardInSlot(): string | undefined {
    return this.#slot?.card.name;
  }

  onEvent(listener: (e: ReaderEvent) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  #emit(e: ReaderEvent): void {
    for (const l of this.#listeners) l(e);
  }

  #refuseIfTampered(): Result<object, SimCode> {
    return this.#tampered
      ? err('POS_ERR_READER_TAMPERED', 'the reader is tampered and refuses every operation')
      : ok({});
  }

  /** The status body (unsigned; the link layer signs it with the identity key in the shared format). */
  status(): StatusBody {
    return {
      serial: this.#state.serial,
      firmwareVersion: FIRMWARE_VERSION,
      firmwareHash: this.#firmwareHash,
      tampered: this.#tampered,
      ksnCounter: this.#tampered ? 0 : (this.#state.dukpt?.lastCounter ?? 0),
      battery: this.#battery,
      time: Math.floor(this.#clock.now() / 1000),
    };
  }

  // ---- session (set by the link layer after the handshake) ----

  /**
   * A terminal proved its device key in the handshake: tickets must be bound (cnf.jkt) to it. `grant`
   * is what the handshake's session ticket allowed (its `perm`), its expiry `exp` (s) and its `jti`:
   * the session keeps the grant until a renewal replaces it; a session opened under a ticket without
   * `transact` (the handshake-only ticket of a resume-pending terminal) may get status but never start
   * a transaction (review 2, M1), and once the ticket has expired the session starts no transaction
   * until `renewSession` (known gap 1; docs/reader-protocol.md §5.5).
   */
  setSession(
    terminalKeyThumbprint: string,
    grant: { perm: readonly TicketPermission[]; exp: number; jti?: string },
  ): Result<object, SimCode> {
    const t = this.#refuseIfTampered();
    if (!t.ok) return t;
    this.#sessionThumbprint = terminalKeyThumbprint;
    this.#sessionPerm = [...grant.perm];
    this.#sessionExp = grant.exp;
    // The handshake's ticket may open another session (a reconnect), but it renews none.
    if (grant.jti !== undefined) this.#noteJti(grant.jti, grant.exp);
    this.#emit({ event: 'session', authenticated: true });
    return ok({});
  }

  /**
   * A fresh session ticket for the open session (`renew`): verified exactly as the handshake's
   * (`verifySessionTicket`: ES256 by a trusted A&M key, `use` session, `cnf.jkt` = the session's
   * terminal key, `rsn` = this reader, not expired by the reader's clock with the same 5 s skew) and its
   * `jti` never seen at this reader before. On success it replaces the session's expiry and grant
   * (`perm`); a transaction in progress is not touched. On failure the session keeps what it had and
   * the answer carries the failed check's code.
   */
  renewSession(jws: string): Result<{ exp: number; perm: readonly TicketPermission[] }, SimCode> {
    const s = this.#needSession();
    if (!s.ok) return s;
    const refused = (code: SimCode, detail: string): Result<never, SimCode> => {
      this.#emit({ event: 'renew', accepted: false, code });
      return err(code, detail);
    };
    if (this.#state.trustedKeys.length === 0)
      return refused('POS_ERR_SIM_NO_TRUSTED_KEYS', 'the reader trusts no A&M ticket key');
    const nowS = Math.floor(this.#clock.now() / 1000);
    const verified = verifySessionTicket(jws, {
      trustedTicketKeys: this.#state.trustedKeys,
      serial: this.#state.serial,
      thumbprint: this.#sessionThumbprint ?? '',
      now: nowS,
    });
    if (!verified.ok) return refused(verified.code, verified.detail);
    if (this.#usedJti.has(verified.claims.jti))
      return refused('POS_ERR_SIM_TICKET_REPLAYED', 'the ticket was already used at this reader');
    this.#noteJti(verified.claims.jti, verified.claims.exp);
    this.#sessionExp = verified.claims.exp;
    this.#sessionPerm = [...verified.claims.perm];
    this.#emit({ event: 'renew', accepted: true });
    return ok({ exp: verified.claims.exp, perm: this.#sessionPerm });
  }

  /** Remembers a ticket's jti (refused if seen again), pruning those long expired. */
  #noteJti(jti: string, exp: number): void {
    const nowS = Math.floor(this.#clock.now() / 1000);
    for (const [j, e] of this.#usedJti) if (e < nowS - 300) this.#usedJti.delete(j);
    this.#usedJti.set(jti, exp);
  }

  /** The secure channel ended: a transaction in progress is aborted. */
  endSession(): void {
    if (this.#sessionThumbprint === undefined) return;
    this.#sessionThumbprint = undefined;
    this.#sessionPerm = [];
    this.#sessionExp = 0;
    if (this.#txn !== undefined && !TERMINAL_STATES.includes(this.#txn.state)) {
      this.#abortTxn('POS_ERR_SIM_NO_SESSION', 'the secure channel ended');
    }
    this.#emit({ event: 'session', authenticated: false });
  }

  #needSession(): Result<object, SimCode> {
    const t = this.#refuseIfTampered();
    if (!t.ok) return t;
    if (this.#sessionThumbprint === undefined) {
      return err('POS_ERR_SIM_NO_SESSION', 'no terminal is authenticated: run the handshake first');
    }
    return ok({});
  }

  // ---- transaction ----

  /**
   * Starts a transaction. Reads the card at once if one is already in the slot. Refused once the
   * session's ticket has expired by the reader's clock (`exp <= now`, RFC 7519; no skew, as for the
   * PIN: the 5 s allowance was used when the ticket was verified): a transaction already started may
   * finish, a new one needs a renewal first (`renewSession`) or a new handshake.
   */
  start(amount: number, currency: string): Result<{ txn: number }, SimCode> {
    const s = this.#needSession();
    if (!s.ok) return s;
    if (this.#sessionExp <= Math.floor(this.#clock.now() / 1000)) {
      return err(
        'POS_ERR_READER_SESSION_EXPIRED',
        "the session's ticket has expired: present a fresh session ticket (renew, or a new handshake)",
      );
    }
    if (!this.#sessionPerm.includes('transact')) {
      return err(
        'POS_ERR_TICKET_PERMISSION',
        'the session ticket does not grant transact: status only; run the handshake again with a transact ticket',
      );
    }
    if (!Number.isInteger(amount) || amount < 0 || amount > MAX_AMOUNT) {
      return err('POS_ERR_SIM_BAD_REQUEST', 'amount must be a whole number of minor units, 0 to 12 digits');
    }
    if (!/^[0-9]{3}$|^[A-Z]{3}$/.test(currency)) {
      return err('POS_ERR_SIM_BAD_REQUEST', 'currency must be an ISO 4217 code (3 letters or 3 digits)');
    }
    if (this.#txn !== undefined && !TERMINAL_STATES.includes(this.#txn.state)) {
      return err('POS_ERR_READER_STATE', `a transaction is in progress (${this.#txn.state})`);
    }
    if (this.#battery < BATTERY_MIN_PERCENT) {
      return err('POS_ERR_SIM_BATTERY_LOW', `the battery is at ${this.#battery}%`);
    }
    this.#txnCounter++;
    this.#txn = { id: this.#txnCounter, amount, currency, state: 'waiting-for-card', ticketFailures: 0 };
    this.#emit({ event: 'state', state: 'waiting-for-card', txn: this.#txnCounter });
    this.#armStep(this.#txn, this.#timeouts.cardMs, 'no card was presented in time');
    if (this.#slot !== undefined) this.#beginRead();
    return ok({ txn: this.#txnCounter });
  }

  /** The result of the card read of the current transaction, once there is one. */
  cardRead(): Result<{ read: CardReadResult }, SimCode> {
    const t = this.#refuseIfTampered();
    if (!t.ok) return t;
    const read = this.#txn?.read;
    if (read === undefined) return err('POS_ERR_READER_STATE', 'no card has been read in this transaction');
    return ok({ read });
  }

  /** Card slot (control API, keyboard, tests). */
  presentCard(name: string, action: 'insert' | 'tap'): Result<object, SimCode> {
    const t = this.#refuseIfTampered();
    if (!t.ok) return t;
    const card = findTestCard(name);
    if (card === undefined) return err('POS_ERR_SIM_CARD_UNKNOWN', 'no test card has that name');
    if (this.#slot !== undefined) return err('POS_ERR_READER_STATE', 'a card is already in the slot');
    this.#slot = { card, entry: action === 'tap' ? 'contactless' : 'chip' };
    this.#emit({ event: 'card', action: action === 'tap' ? 'tapped' : 'inserted', card: card.name });
    if (this.#txn?.state === 'waiting-for-card') this.#beginRead();
    else if (action === 'tap') {
      // A tap with no transaction waiting: the card leaves the field at once.
      this.#slot = undefined;
    }
    return ok({});
  }

  removeCard(): Result<object, SimCode> {
    if (this.#slot === undefined) return err('POS_ERR_READER_STATE', 'the slot is empty');
    const name = this.#slot.card.name;
    this.#slot = undefined;
    this.#emit({ event: 'card', action: 'removed', card: name });
    const txn = this.#txn;
    if (
      txn !== undefined &&
      txn.entry === 'chip' &&
      (txn.state === 'reading-card' || txn.state === 'waiting-for-ticket' || txn.state === 'waiting-for-pin')
    ) {
      this.#abortTxn('POS_ERR_READER_CARD_REMOVED', 'the card was removed before the transaction finished');
    }
    return ok({});
  }

  #beginRead(): void {
    const txn = this.#txn;
    const slot = this.#slot;
    if (txn === undefined || slot === undefined) return;
    txn.state = 'reading-card';
    txn.card = slot.card;
    txn.entry = slot.entry;
    this.#emit({ event: 'state', state: 'reading-card', txn: txn.id });
    if (slot.entry === 'contactless') this.#slot = undefined;
    if (this.#cardReadMs <= 0) {
      this.#finishRead(txn);
      return;
    }
    this.#readTimer = setTimeout(() => {
      this.#readTimer = undefined;
      this.#finishRead(txn);
    }, this.#cardReadMs);
  }

  #finishRead(txn: Txn): void {
    if (this.#txn !== txn || txn.state !== 'reading-card' || txn.card === undefined) return;
    const card = txn.card;
    const expired = isExpired(card.expiry, this.#clock.now());
    const dukpt = this.#state.dukpt;
    const tokenKey = this.#state.tokenKey;
    if (dukpt === undefined || tokenKey === undefined) {
      this.#abortTxn('POS_ERR_READER_TAMPERED', 'the reader has no keys');
      return;
    }
    // Write-ahead: the advanced DUKPT state is on disk before these keys are used.
    const keys = dukpt.nextTransaction();
    if (!keys.ok) {
      this.#abortTxn(keys.code, keys.detail);
      return;
    }
    // AES-GCM bound to the KSN: the card data cannot be altered or moved to another transaction.
    const cardData = encryptCardData(
      keys.dataKey,
      {
        pan: card.pan,
        exp: card.expiry,
        ...(card.psn === undefined ? {} : { psn: card.psn }),
      },
      keys.ksn,
    );
    wipe(keys.dataKey);
    const nonce = randomBytes(TXN_NONCE_BYTES);
    const token = `tok_${toBase64url(createHmac('sha256', tokenKey).update(card.pan).digest().subarray(0, 18))}`;
    const read: CardReadResult = {
      maskedPan: maskPan(card.pan),
      token,
      scheme: card.scheme,
      entry: txn.entry ?? 'chip',
      cardData,
      ksn: keys.ksn,
      nonce,
      pinRequired: card.onlinePin,
      expired,
    };
    txn.ksn = keys.ksn;
    txn.nonce = nonce;
    txn.read = read;
    txn.expired = expired;
    if (card.onlinePin && !expired) {
      txn.pinKey = keys.pinKey;
      txn.state = 'waiting-for-ticket';
      this.#armStep(txn, this.#timeouts.ticketMs, 'no PIN-entry ticket came in time');
    } else {
      wipe(keys.pinKey);
      txn.state = 'done';
      this.#clearStep();
    }
    const counter = aesKsnCounter(keys.ksn);
    this.#emit({
      event: 'card-read',
      txn: txn.id,
      maskedPan: read.maskedPan,
      scheme: card.scheme,
      pinRequired: card.onlinePin,
      expired,
      ksnCounter: counter,
    });
    this.#emit({ event: 'state', state: txn.state, txn: txn.id });
  }

  /**
   * Checks a PIN-entry ticket for the current transaction: ES256 by a trusted A&M key, not expired by
   * the reader's clock, use `pin-entry`, bound to the session's terminal key, this reader's serial and
   * this transaction's nonce, never seen before (jti). Refused with the failed check's code.
   */
  submitTicket(jws: string): Result<object, SimCode> {
    const s = this.#needSession();
    if (!s.ok) return s;
    const txn = this.#txn;
    if (txn?.state === 'done' && txn.expired === true) {
      return err('POS_ERR_READER_CARD_EXPIRED', 'the card has expired');
    }
    if (txn?.state === 'done' && txn.card?.onlinePin === false) {
      return err('POS_ERR_READER_PIN_NOT_REQUIRED', 'the card does not ask for an online PIN');
    }
    if (txn?.state !== 'waiting-for-ticket' || txn.nonce === undefined) {
      return err('POS_ERR_READER_STATE', 'no transaction is waiting for a PIN-entry ticket');
    }
    const refused = (code: SimCode, detail: string): Result<object, SimCode> => {
      txn.ticketFailures++;
      this.#emit({ event: 'ticket', txn: txn.id, accepted: false, code });
      if (txn.ticketFailures >= MAX_TICKET_FAILURES) {
        this.#abortTxn(code, `${MAX_TICKET_FAILURES} tickets refused: ${detail}`);
      }
      return err(code, detail);
    };
    if (this.#state.trustedKeys.length === 0) {
      return refused('POS_ERR_SIM_NO_TRUSTED_KEYS', 'the reader trusts no A&M ticket key');
    }
    const nowS = Math.floor(this.#clock.now() / 1000);
    const verified = verifyTicket(jws, this.#state.trustedKeys, {
      now: nowS,
      use: 'pin-entry',
      readerSerial: this.#state.serial,
      deviceKeyThumbprint: this.#sessionThumbprint ?? '',
      nonce: toBase64url(txn.nonce),
      permission: 'pin-entry',
    });
    if (!verified.ok) return refused(verified.code, verified.detail);
    if (this.#usedJti.has(verified.claims.jti)) {
      return refused('POS_ERR_SIM_TICKET_REPLAYED', 'the ticket was already used at this reader');
    }
    this.#noteJti(verified.claims.jti, verified.claims.exp);
    txn.ticketExp = verified.claims.exp;
    txn.state = 'waiting-for-pin';
    this.#armStep(txn, this.#timeouts.pinMs, 'no PIN came in time');
    this.#emit({ event: 'ticket', txn: txn.id, accepted: true });
    this.#emit({ event: 'state', state: 'waiting-for-pin', txn: txn.id });
    return ok({});
  }

  /**
   * Takes the PIN digits (one byte per digit, from the secure channel), makes the ISO 9564-1 format 4
   * PIN block under the transaction's DUKPT PIN key, and wipes the digits and the key. The digits
   * buffer is wiped whatever the outcome.
   */
  submitPin(digits: Uint8Array): Result<PinBlockResult, SimCode> {
    try {
      const s = this.#needSession();
      if (!s.ok) return s;
      const txn = this.#txn;
      if (txn?.state === 'waiting-for-ticket') {
        return err(
          'POS_ERR_READER_TICKET_REQUIRED',
          'the reader makes no PIN block without an accepted PIN-entry ticket',
        );
      }
      if (txn?.state === 'done' && txn.expired === true) {
        return err('POS_ERR_READER_CARD_EXPIRED', 'the card has expired');
      }
      if (txn?.state === 'done' && txn.card?.onlinePin === false) {
        return err('POS_ERR_READER_PIN_NOT_REQUIRED', 'the card does not ask for an online PIN');
      }
      if (
        txn?.state !== 'waiting-for-pin' ||
        txn.pinKey === undefined ||
        txn.card === undefined ||
        txn.ksn === undefined
      ) {
        return err(
          'POS_ERR_READER_STATE',
          'no verified PIN-entry ticket for a transaction waiting for a PIN',
        );
      }
      // No PIN at or after the ticket's `exp` (RFC 7519: not accepted on or after it). The clock skew
      // was allowed once, when the ticket was verified; it is not allowed a second time here.
      const nowS = Math.floor(this.#clock.now() / 1000);
      if (txn.ticketExp === undefined || txn.ticketExp <= nowS) {
        this.#abortTxn('POS_ERR_TICKET_EXPIRED', 'the PIN-entry ticket expired before the PIN arrived');
        return err('POS_ERR_TICKET_EXPIRED', 'the PIN-entry ticket expired before the PIN arrived');
      }
      const pin = checkPinDigits(digits);
      if (!pin.ok) return pin;
      const pan = parsePan(txn.card.pan);
      if (!pan.ok) return pan;
      const block = encodePinBlock({ format: 4, pin: pin.pin, pan: pan.pan, key: txn.pinKey });
      wipe(txn.pinKey);
      txn.pinKey = undefined;
      if (!block.ok) {
        this.#abortTxn(block.code, block.detail);
        return block;
      }
      txn.state = 'done';
      this.#clearStep();
      const counter = aesKsnCounter(txn.ksn);
      this.#emit({ event: 'pin-block', txn: txn.id, ksnCounter: counter });
      this.#emit({ event: 'state', state: 'done', txn: txn.id });
      return ok({ pinBlock: block.block, ksn: txn.ksn });
    } finally {
      wipe(digits);
    }
  }

  /** Aborts the transaction in progress (if any): keys wiped, back to idle. */
  abort(code: SimCode = 'POS_ERR_READER_STATE', detail = 'aborted by the terminal'): Result<object, SimCode> {
    if (this.#txn === undefined || this.#txn.state === 'idle') return ok({});
    this.#abortTxn(code, detail);
    return ok({});
  }

  /** Arms the timeout of the step `txn` is in now; it fires only if the transaction is still there. */
  #armStep(txn: Txn, ms: number, detail: string): void {
    this.#clearStep();
    const state = txn.state;
    this.#stepTimer = setTimeout(() => {
      this.#stepTimer = undefined;
      // A slow card read counts towards the wait for a card.
      const same = txn.state === state || (state === 'waiting-for-card' && txn.state === 'reading-card');
      if (this.#txn === txn && same) this.#abortTxn('POS_ERR_READER_TIMEOUT', detail);
    }, ms);
    this.#stepTimer.unref();
  }

  #clearStep(): void {
    if (this.#stepTimer !== undefined) clearTimeout(this.#stepTimer);
    this.#stepTimer = undefined;
  }

  #abortTxn(code: SimCode, detail: string): void {
    this.#clearStep();
    const txn = this.#txn;
    if (this.#readTimer !== undefined) clearTimeout(this.#readTimer);
    this.#readTimer = undefined;
    if (txn === undefined) return;
    wipe(txn.pinKey, txn.nonce);
    txn.pinKey = undefined;
    const wasActive = !TERMINAL_STATES.includes(txn.state);
    txn.state = 'idle';
    this.#txn = undefined;
    if (wasActive) this.#emit({ event: 'abort', txn: txn.id, code, detail });
    this.#emit({ event: 'state', state: 'idle', txn: txn.id });
  }

  // ---- trust, tamper, battery, faults ----

  /** Replaces the trusted A&M keys with a JWKS (persisted). */
  trust(jwks: unknown): Result<{ keys: number }, SimCode> {
    const t = this.#refuseIfTampered();
    if (!t.ok) return t;
    const saved = saveTrust(this.#state.dir, jwks);
    if (!saved.ok) return saved;
    this.#state.trustedKeys = saved.keys;
    return ok({ keys: saved.keys.length });
  }

  /**
   * DEVELOPMENT (`--demo`): trusts one more A&M key until the process ends, without writing trust.json,
   * so a demo never changes which keys the reader trusts on its next start.
   */
  trustUntilExit(key: TrustedTicketKey): void {
    if (this.#tampered) return;
    this.#state.trustedKeys = [...this.#state.trustedKeys.filter((k) => k.kid !== key.kid), key];
  }

  /** Tamper: latched (persisted first), wipes the keys, ends the session, refuses everything after. */
  tamper(reason = 'tamper switch'): Result<object, SimCode> {
    if (this.#tampered) return ok({});
    this.#abortTxn('POS_ERR_READER_TAMPERED', 'the reader was tampered');
    // Last words: a status signed with `tamper: true` while the identity key still exists.
    const identity = this.#state.identity;
    const final =
      identity === undefined || this.#signFinalStatus === undefined
        ? undefined
        : this.#signFinalStatus(identity.privateKey, { ...this.status(), tampered: true });
    // The in-memory latch holds from here on, whatever happens on disk.
    this.#tampered = true;
    const latched = latchTamper(
      this.#state,
      reason,
      final === undefined ? undefined : { report: toBase64url(final.report), sig: toBase64url(final.sig) },
      new Date(this.#clock.now()),
    );
    this.#sessionThumbprint = undefined;
    this.#sessionPerm = [];
    this.#sessionExp = 0;
    this.#emit({ event: 'tamper', reason });
    if (!latched.ok) this.#scheduleLatchRetry();
    return latched;
  }

  /** Whether tamper is latched in memory but not yet on disk (the key files are kept until it is). */
  get tamperLatchPending(): boolean {
    return this.#state.pendingLatch !== undefined;
  }

  /**
   * Writes a pending tamper latch (then shreds the key files). Runs by itself every second until it
   * succeeds; tests call it directly.
   */
  retryTamperLatch(): Result<object, SimCode> {
    const r = persistTamperLatch(this.#state);
    if (r.ok && this.#latchRetry !== undefined) {
      clearInterval(this.#latchRetry);
      this.#latchRetry = undefined;
    }
    return r;
  }

  #scheduleLatchRetry(): void {
    if (this.#latchRetry !== undefined) return;
    this.#latchRetry = setInterval(() => this.retryTamperLatch(), LATCH_RETRY_MS);
    this.#latchRetry.unref();
  }

  setBattery(percent: number): void {
    this.#battery = Math.max(0, Math.min(100, Math.round(percent)));
    this.#emit({ event: 'battery', percent: this.#battery });
  }

  setCardReadMs(ms: number): void {
    this.#cardReadMs = Math.max(0, ms);
  }

  /** Wipes the transaction's keys; for shutdown. */
  shutdown(): void {
    this.#abortTxn('POS_ERR_READER_ABORTED', 'the reader is shutting down');
    if (this.#latchRetry !== undefined) {
      this.retryTamperLatch();
      clearInterval(this.#latchRetry);
      this.#latchRetry = undefined;
    }
  }
}

/** Whether a YYMM expiry is before the month of `nowMs` (a card is valid through its expiry month). */
export function isExpired(yymm: string, nowMs: number): boolean {
  const yy = Number(yymm.slice(0, 2));
  const mm = Number(yymm.slice(2, 4));
  const now = new Date(nowMs);
  const year = 2000 + yy;
  const cur = now.getUTCFullYear() * 12 + now.getUTCMonth();
  return year * 12 + (mm - 1) < cur;
}
