/**
 * The merchant's amount as typed → minor units, without floating point: the text is split into its
 * whole and decimal digits and each part is read as an integer. Two decimals (the contract's amounts
 * and `formatAmount` are in hundredths). A comma is taken as the decimal mark when it is the only
 * separator ("12,34"); "1,234" has three decimals and is refused rather than guessed at.
 */
import { MAX_AMOUNT_MINOR } from '../api/contract';

export type AmountParse = { ok: true; minor: number } | { ok: false; message: string };

const MAX_WHOLE_DIGITS = String(Math.floor(MAX_AMOUNT_MINOR / 100)).length;

export function parseAmount(text: string): AmountParse {
  const t = text.trim();
  if (t === '') return { ok: false, message: 'Enter an amount, like 12.34.' };
  const m = /^(\d+)(?:[.,](\d*))?$/.exec(t);
  if (m === null) return { ok: false, message: 'Use digits and one decimal point, like 12.34.' };
  const whole = (m[1] ?? '').replace(/^0+(?=\d)/, '');
  const decimals = m[2] ?? '';
  if (decimals.length > 2) return { ok: false, message: 'An amount has at most 2 decimals.' };
  const max = `The most one sale can be is ${Math.floor(MAX_AMOUNT_MINOR / 100)}.${String(MAX_AMOUNT_MINOR % 100).padStart(2, '0')}.`;
  // Length first: a long digit string would not be exact as a number.
  if (whole.length > MAX_WHOLE_DIGITS) return { ok: false, message: max };
  const minor = Number.parseInt(whole, 10) * 100 + Number.parseInt(decimals.padEnd(2, '0'), 10);
  if (!Number.isSafeInteger(minor))
    return { ok: false, message: 'Use digits and one decimal point, like 12.34.' };
  if (minor === 0) return { ok: false, message: 'The amount must be more than zero.' };
  if (minor > MAX_AMOUNT_MINOR) return { ok: false, message: max };
  return { ok: true, minor };
}

/** The currencies the amount form offers; the first is the default. */
export const CURRENCIES = ['EUR', 'GBP', 'USD', 'CHF'] as const;
