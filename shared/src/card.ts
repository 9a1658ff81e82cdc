/**
 * Parsers for the card-holder values that enter PIN-block code: the PAN and the PIN digits.
 * Neither value ever appears in an error detail.
 */
import type { Pan, PinDigits } from './brand';
import { err, ok, type Result } from './result';

export const PIN_MIN_DIGITS = 4;
export const PIN_MAX_DIGITS = 12;
export const PAN_MAX_DIGITS = 19;

const DIGITS_RE = /^[0-9]*$/;

/** Checks a PAN of `min`..`max` decimal digits (ISO/IEC 7812 allows up to 19). Luhn is not checked. */
export function parsePan(text: string, min = 1, max = PAN_MAX_DIGITS): Result<{ pan: Pan }> {
  if (!DIGITS_RE.test(text)) return err('POS_ERR_PAN_NOT_NUMERIC', 'the PAN may contain only the digits 0-9');
  if (text.length < min || text.length > max) {
    return err('POS_ERR_PAN_LENGTH', `the PAN must have ${min} to ${max} digits, got ${text.length}`);
  }
  return ok({ pan: text as Pan });
}

/** Checks PIN digits held one byte per digit (values 0-9), 4 to 12 of them. Does not copy. */
export function checkPinDigits(digits: Uint8Array): Result<{ pin: PinDigits }> {
  if (digits.length < PIN_MIN_DIGITS || digits.length > PIN_MAX_DIGITS) {
    return err(
      'POS_ERR_PIN_LENGTH',
      `a PIN must have ${PIN_MIN_DIGITS} to ${PIN_MAX_DIGITS} digits, got ${digits.length}`,
    );
  }
  for (const d of digits) {
    if (d > 9) return err('POS_ERR_PIN_NOT_NUMERIC', 'a PIN may contain only the digits 0-9');
  }
  return ok({ pin: digits as PinDigits });
}

/**
 * PIN digits from text. Only for developer tools and tests: a terminal never holds a PIN in a string.
 * The returned buffer is the caller's to wipe.
 */
export function pinDigitsFromText(text: string): Result<{ pin: PinDigits }> {
  if (!DIGITS_RE.test(text)) return err('POS_ERR_PIN_NOT_NUMERIC', 'a PIN may contain only the digits 0-9');
  const digits = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) digits[i] = text.charCodeAt(i) - 0x30;
  const checked = checkPinDigits(digits);
  if (!checked.ok) digits.fill(0);
  return checked;
}

/** PIN digits as text. Only for developer tools and tests. */
export function pinDigitsToText(pin: PinDigits): string {
  let s = '';
  for (const d of pin) s += String.fromCharCode(0x30 + d);
  return s;
}
