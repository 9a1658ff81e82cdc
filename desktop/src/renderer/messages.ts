/**
 * Words for what the snapshot says, for merchants and customers: every status has text (never colour
 * alone) and an icon that only repeats the text (aria-hidden).
 */
import type { Sale, SaleResult, Snapshot } from '../api/contract';

export type Tone = 'ok' | 'busy' | 'warn' | 'bad' | 'none';

export interface StatusText {
  readonly label: string;
  readonly tone: Tone;
}

/** The glyph for a tone; decorative, the text beside it says the same. */
export const TONE_ICON: Readonly<Record<Tone, string>> = {
  ok: '✓',
  busy: '…',
  warn: '!',
  bad: '✕',
  none: '?',
};

export function readerStatus(reader: Snapshot['reader']): StatusText {
  switch (reader.state) {
    case 'connected':
      return {
        label: reader.serial === undefined ? 'connected' : `connected (${reader.serial})`,
        tone: 'ok',
      };
    case 'connecting':
      return { label: 'connecting…', tone: 'busy' };
    case 'disconnected':
      return { label: 'disconnected', tone: 'bad' };
    case 'not-configured':
      return { label: 'not set up', tone: 'bad' };
  }
}

const TIER_LABEL: Readonly<Record<Snapshot['attestation']['tier'], StatusText>> = {
  affirming: { label: 'trusted', tone: 'ok' },
  warning: { label: 'warning', tone: 'warn' },
  contraindicated: { label: 'not trusted', tone: 'bad' },
  none: { label: 'no verdict', tone: 'bad' },
  unknown: { label: 'not checked yet', tone: 'none' },
};

export function tierStatus(tier: Snapshot['attestation']['tier']): StatusText {
  return TIER_LABEL[tier];
}

/** "12 s ago", "3 min ago", "2 h ago"; a time slightly ahead (clock skew) reads "just now". */
export function formatAge(at: number, now: number): string {
  const s = Math.floor((now - at) / 1000);
  if (s < 1) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

export function backendStatus(link: Snapshot['backend']['link']): StatusText {
  switch (link) {
    case 'up':
      return { label: 'reachable', tone: 'ok' };
    case 'down':
      return { label: 'unreachable', tone: 'bad' };
    case 'unknown':
      return { label: 'not contacted yet', tone: 'none' };
  }
}

export function pushStatus(push: boolean): StatusText {
  return push ? { label: 'connected', tone: 'ok' } : { label: 'not connected', tone: 'warn' };
}

/** What the merchant reads while a sale is under way (states other than idle, pin pad and result). */
export function progressText(sale: Sale): { title: string; hint: string } {
  switch (sale.state) {
    case 'idle':
    case 'amount':
      return { title: 'Starting the sale…', hint: 'The card reader is getting ready.' };
    case 'card':
      switch (sale.cardPrompt) {
        case 'reading':
          return { title: 'Reading the card…', hint: 'Keep the card in the reader or on it until asked.' };
        case 'remove':
          return { title: 'Remove the card', hint: 'Take the card out of the reader.' };
        case 'insert-or-tap':
        case undefined:
          return {
            title: 'Insert or tap the card',
            hint: 'The customer inserts the card or taps it on the reader.',
          };
      }
      break;
    case 'attest':
      return {
        title: 'Checking this terminal…',
        hint: 'The payment provider checks the terminal before the PIN is entered.',
      };
    case 'pin':
      return { title: 'Opening the PIN pad…', hint: 'The customer will enter the PIN on this screen.' };
    case 'pin-block':
      return {
        title: 'Securing the PIN…',
        hint: 'The card reader encrypts the PIN. Do not remove the card.',
      };
    case 'submit':
      return {
        title: 'Waiting for approval…',
        hint: 'The payment is with the card issuer. Do not remove the card.',
      };
    case 'result':
      return { title: 'Done', hint: '' };
  }
}

/** The states in which the engine accepts `sale.cancel` (before the sale is submitted). */
export function canCancel(state: Sale['state']): boolean {
  return (
    state === 'amount' || state === 'card' || state === 'attest' || state === 'pin' || state === 'pin-block'
  );
}

/** What the merchant reads once the provider has decommissioned (retired) this terminal for good. */
export const DECOMMISSIONED_TEXT =
  'Your payment provider has decommissioned this terminal for good: it takes no more card payments.';

/**
 * The provider's decommission notice arrives as a halt whose reason starts `decommissioned: `
 * (docs/fleet.md "Decommissioning"); resolves the operator's reason, or undefined for any other halt.
 */
export function decommissionReason(haltReason: string): string | undefined {
  const prefix = 'decommissioned: ';
  return haltReason.startsWith(prefix) ? haltReason.slice(prefix.length) : undefined;
}

/** The sale failed because the back-end refused a decommissioned terminal (its detail says so). */
function saysDecommissioned(detail: string | undefined): boolean {
  return detail !== undefined && detail.startsWith('this terminal was decommissioned');
}

const REASONS: Readonly<Record<string, string>> = {
  POS_ERR_DESKTOP_TXN_CANCELLED: 'The sale was cancelled.',
  POS_ERR_DESKTOP_TXN_DECLINED: 'The card issuer declined the payment.',
  POS_ERR_DESKTOP_TXN_HALTED: 'The payment provider has halted PIN entry on this terminal.',
  POS_ERR_DESKTOP_TXN_TIMEOUT_AMOUNT: 'The sale timed out before it started.',
  POS_ERR_DESKTOP_TXN_TIMEOUT_CARD: 'No card was presented in time.',
  POS_ERR_DESKTOP_TXN_TIMEOUT_ATTEST: 'The terminal check took too long.',
  POS_ERR_DESKTOP_TXN_TIMEOUT_PIN: 'The PIN was not entered in time.',
  POS_ERR_DESKTOP_TXN_TIMEOUT_PIN_BLOCK: 'The card reader did not finish securing the PIN in time.',
  POS_ERR_DESKTOP_TXN_TIMEOUT_SUBMIT: 'No answer came from the payment back-end in time.',
  POS_ERR_DESKTOP_TXN_READER: 'The card reader reported a problem.',
  POS_ERR_DESKTOP_TXN_ATTEST_REFUSED:
    'The payment provider did not accept the terminal check, so no PIN could be entered.',
  POS_ERR_DESKTOP_TXN_BACKEND: 'The payment back-end could not be reached or refused the payment.',
  POS_ERR_DESKTOP_TXN_TICKET_EXPIRED: 'The permission to enter a PIN ran out.',
  POS_ERR_DESKTOP_TXN_TICKET_MISSING: 'The payment provider gave no permission to enter a PIN.',
  POS_ERR_DESKTOP_TXN_PIN_LENGTH: 'A PIN has 4 to 12 digits.',
  POS_ERR_DESKTOP_TXN_BUSY: 'A sale is already running; finish or cancel it first.',
  POS_ERR_DESKTOP_TXN_STATE: 'That cannot be done at this step of the sale.',
  POS_ERR_DESKTOP_API_UNAVAILABLE: 'The terminal core is not running.',
  POS_ERR_DESKTOP_API_INVALID: 'The terminal core refused the request as not valid.',
  POS_ERR_TERMINAL_DECOMMISSIONED: DECOMMISSIONED_TEXT,
};

/** A sentence for a coded failure: a known code's own words, else the core's detail, else a generic one. */
export function reasonFor(code: string | undefined, detail?: string): string {
  // A sale refused because the terminal was decommissioned (the back-end's code is the cause, the
  // detail its words, core/backend/http.ts): that, not the step that failed, is what the merchant needs.
  if (saysDecommissioned(detail)) return DECOMMISSIONED_TEXT;
  if (code !== undefined) {
    const known = REASONS[code];
    if (known !== undefined) return known;
  }
  if (detail !== undefined && detail.trim() !== '') return sentence(detail);
  return 'The sale could not be completed.';
}

/** The core's detail as a sentence (capital first letter, closing full stop). */
export function sentence(text: string): string {
  const t = text.trim();
  if (t === '') return t;
  const first = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?…]$/.test(first) ? first : `${first}.`;
}

export function resultTitle(result: SaleResult): string {
  switch (result.status) {
    case 'approved':
      return 'Approved';
    case 'declined':
      return 'Declined';
    case 'halted':
      return 'Halted';
    case 'error':
      return result.code === 'POS_ERR_DESKTOP_TXN_CANCELLED' ? 'Cancelled' : 'Not completed';
  }
}
