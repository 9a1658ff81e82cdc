/**
 * What the transaction engine talks to, as interfaces: the reader (over the secure session), the
 * back-end (pre-PIN attestation + PIN-entry ticket, transaction submit) and the push connection
 * (halt / resume). Production adapters wrap the shared `ReaderSession` and the back-end HTTP and
 * WebSocket clients; tests use fakes.
 */
import type { Result } from '@pos/shared';
import type { DesktopCode } from '../result';

/** A card the reader read, as its card event reports it (the clear PAN is only inside `card`). */
export interface CardPresented {
  /** The reader's transaction nonce, base64url: a PIN-entry ticket must carry it. */
  readonly nonce: string;
  readonly pinRequired: boolean;
  /** Masked PAN (first 6, last 4), for the display. */
  readonly maskedPan: string;
  readonly scheme: string;
  /** The encrypted card data, passed through to the back-end untouched. */
  readonly card: unknown;
}

export interface ReaderPort {
  /** Starts a reader transaction (`start`): the reader then waits for a card. */
  start(amountMinor: number, currency: string): Promise<Result<object, DesktopCode>>;
  /** Card events of the current reader transaction. Returns the unsubscribe. */
  onCard(cb: (card: CardPresented) => void): () => void;
  /** The reader ended the transaction by itself (card removed, tamper, its own timeout) or went away. */
  onAborted(cb: (e: { code: DesktopCode; detail: string }) => void): () => void;
  /** Gives the reader the PIN-entry ticket (`ticket`); ok once it answered `ticket-ok`. */
  sendTicket(jws: string): Promise<Result<object, DesktopCode>>;
  /**
   * Sends the PIN digits (`pin`) and returns the PIN block. The port copies the digits into the
   * message and wipes what it holds once the message is sealed; the engine wipes its copy too.
   */
  pinBlock(digits: Uint8Array): Promise<Result<{ block: Uint8Array; ksn: Uint8Array }, DesktopCode>>;
  /** Tells the reader to abort the transaction (`abort`). Never throws. */
  abort(): Promise<void>;
}

export interface PinTicket {
  /** The compact JWS, for the reader and the transaction request. Never logged. */
  readonly jws: string;
  /** Expiry, seconds since the epoch (the ticket's `exp`). */
  readonly exp: number;
  /** The reader nonce it is bound to (base64url). */
  readonly nonce: string;
}

export interface SubmitInput {
  readonly amountMinor: number;
  readonly currency: string;
  readonly card: unknown;
  readonly ticket?: PinTicket;
  readonly pinBlock?: { readonly block: Uint8Array; readonly ksn: Uint8Array };
}

export interface BackendPort {
  /** Pre-PIN attestation bound to the reader nonce; on an allowing verdict, the PIN-entry ticket. */
  prePin(input: { readonly nonce: string }): Promise<Result<{ ticket: PinTicket }, DesktopCode>>;
  /** The transaction; the acquirer's answer. */
  submit(
    input: SubmitInput,
  ): Promise<Result<{ outcome: 'approved' | 'declined'; code?: DesktopCode }, DesktopCode>>;
}

export interface HaltInfo {
  readonly haltId: string;
  /** The operator's reason, shown to the merchant. */
  readonly reason: string;
}

export interface PushPort {
  /** The halt in force now (at start), if any. */
  current(): HaltInfo | undefined;
  onHalt(cb: (h: HaltInfo) => void): () => void;
  onResume(cb: () => void): () => void;
}

/** The wall clock (ms since the epoch) for ticket expiry, and timers for the per-state timeouts. */
export interface EngineClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: EngineClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
