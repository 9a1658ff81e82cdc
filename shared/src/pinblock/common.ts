/**
 * Internal helpers shared by the ISO 9564-1 PIN block formats: nibble packing, runtime checks of
 * inputs that arrive from outside (the brands say "checked", but decode inputs come off the wire),
 * and the common layout of the first 16 nibbles of every format: C ‖ N ‖ PIN ‖ fill.
 *
 * Nothing here throws on any input, and no error detail contains a PIN, a PAN or key bytes.
 */
import type { Pan, PinDigits } from '../brand';
import { randomBytes, wipe } from '../bytes';
import { checkPinDigits, parsePan, PIN_MAX_DIGITS, PIN_MIN_DIGITS } from '../card';
import { err, ok, type Result } from '../result';

/** Nibbles in the first half of every PIN block: 8 bytes. */
export const PIN_NIBBLES = 16;
/** Byte length of a clear PIN block of formats 0-3 and of the fill/random inputs. */
export const BLOCK8 = 8;
/** Byte length of a format 4 PIN field, PAN field and PIN block. */
export const BLOCK16 = 16;

/** A Uint8Array, also one from another realm (iframe, worker, Electron context bridge). */
export function isBytes(value: unknown): value is Uint8Array {
  return (
    value instanceof Uint8Array || (ArrayBuffer.isView(value) && value.constructor.name === 'Uint8Array')
  );
}

/** Upper-case hex digit of one nibble, for error details about control and length nibbles. */
export function nibbleHex(n: number): string {
  return (n & 0x0f).toString(16).toUpperCase();
}

/** One nibble per byte, high nibble first. */
export function unpackNibbles(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length * 2);
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] ?? 0;
    out[2 * i] = b >> 4;
    out[2 * i + 1] = b & 0x0f;
  }
  return out;
}

/** Packs an even number of nibbles (one per byte) into bytes, high nibble first. */
export function packNibbles(nibbles: Uint8Array): Uint8Array {
  const out = new Uint8Array(nibbles.length >> 1);
  for (let i = 0; i < out.length; i++) {
    out[i] = (((nibbles[2 * i] ?? 0) & 0x0f) << 4) | ((nibbles[2 * i + 1] ?? 0) & 0x0f);
  }
  return out;
}

/** Runtime check of PIN digits (4 to 12 bytes of value 0-9). */
export function checkPin(pin: unknown): Result<{ pin: PinDigits }> {
  if (!isBytes(pin)) return err('POS_ERR_PIN_LENGTH', 'the PIN must be a byte array of 4 to 12 digits');
  return checkPinDigits(pin);
}

/** Runtime check of a PAN of `min`..`max` decimal digits. Luhn is not checked. */
export function checkPan(pan: unknown, min: number, max: number): Result<{ pan: Pan }> {
  if (typeof pan !== 'string') return err('POS_ERR_PAN_NOT_NUMERIC', 'the PAN must be a string of digits');
  return parsePan(pan, min, max);
}

/** The 8-byte caller-supplied fill or random input: absent (use random) or exactly 8 bytes. */
export function checkFill(fill: unknown): Result<{ fill: Uint8Array | undefined }> {
  if (fill === undefined) return ok({ fill: undefined });
  if (!isBytes(fill) || fill.length !== BLOCK8) {
    return err('POS_ERR_PINBLOCK_FILL_INVALID', `the fill must be ${BLOCK8} bytes`);
  }
  return ok({ fill });
}

/**
 * Writes C ‖ N ‖ PIN into the first 2 + N of 16 nibbles and `fill` (nibbles, 14 - N of them used,
 * in order) into the rest. The PIN must already be checked.
 */
export function buildPinNibbles(control: number, pin: PinDigits, fill: Uint8Array): Uint8Array {
  const nibbles = new Uint8Array(PIN_NIBBLES);
  nibbles[0] = control;
  nibbles[1] = pin.length;
  nibbles.set(pin, 2);
  for (let i = 2 + pin.length, j = 0; i < PIN_NIBBLES; i++, j++) nibbles[i] = (fill[j] ?? 0) & 0x0f;
  return nibbles;
}

/** Which fill nibbles a format accepts on decode, and how to say it went wrong. */
export interface FillRule {
  readonly accepts: (nibble: number) => boolean;
  readonly detail: string;
}

/**
 * Decodes the first 16 nibbles of a clear PIN block or PIN field, checking in psec's order:
 * control nibble, PIN length nibble (4..12), fill nibbles (unless `fillRule` is undefined), then
 * that every PIN digit is 0-9. Returns a fresh PIN buffer that the caller owns.
 */
export function decodePinNibbles(
  nibbles: Uint8Array,
  control: number,
  fillRule: FillRule | undefined,
): Result<{ pin: PinDigits }> {
  const c = nibbles[0] ?? 0;
  if (c !== control) {
    return err('POS_ERR_PINBLOCK_CONTROL_FIELD', `control nibble is ${nibbleHex(c)}, expected ${control}`);
  }
  const n = nibbles[1] ?? 0;
  if (n < PIN_MIN_DIGITS || n > PIN_MAX_DIGITS) {
    return err(
      'POS_ERR_PINBLOCK_PIN_LENGTH',
      `PIN length nibble is ${nibbleHex(n)}, must be ${PIN_MIN_DIGITS} to ${PIN_MAX_DIGITS}`,
    );
  }
  if (fillRule !== undefined) {
    for (let i = 2 + n; i < PIN_NIBBLES; i++) {
      if (!fillRule.accepts(nibbles[i] ?? 0)) return err('POS_ERR_PINBLOCK_FILLER', fillRule.detail);
    }
  }
  for (let i = 2; i < 2 + n; i++) {
    if ((nibbles[i] ?? 0) > 9)
      return err('POS_ERR_PINBLOCK_PIN_NOT_NUMERIC', 'a PIN digit in the block is not 0-9');
  }
  return ok({ pin: nibbles.slice(2, 2 + n) as PinDigits });
}

/** Format 0 and 2 fill: every fill nibble is F. */
export const FILL_F: FillRule = {
  accepts: (x) => x === 0x0f,
  detail: 'the fill digits are not all F',
};

/** Format 3 fill: every fill nibble is A to F. */
export const FILL_A_TO_F: FillRule = {
  accepts: (x) => x >= 0x0a && x <= 0x0f,
  detail: 'a fill digit is not A to F',
};

/** Format 4 fill: every fill nibble of the first half is A. */
export const FILL_A: FillRule = {
  accepts: (x) => x === 0x0a,
  detail: 'the fill digits are not all A',
};

/** 14 nibbles of F, for formats 0 and 2. */
export function fillF(): Uint8Array {
  return new Uint8Array(PIN_NIBBLES - 2).fill(0x0f);
}

/**
 * `count` uniformly random nibbles A-F by rejection sampling: a random nibble is kept only if it is
 * already A-F (6 of 16 values), so no value is favoured.
 */
export function randomNibblesAtoF(count: number): Uint8Array {
  const out = new Uint8Array(count);
  let filled = 0;
  while (filled < count) {
    const pool = randomBytes(BLOCK16);
    const nibbles = unpackNibbles(pool);
    for (const x of nibbles) {
      if (filled >= count) break;
      if (x >= 0x0a) out[filled++] = x;
    }
    wipe(pool, nibbles);
  }
  return out;
}

/**
 * The format 0/3 PAN block as 16 nibbles: 0000 ‖ the 12 rightmost PAN digits excluding the check
 * digit, left-padded with zeros. The PAN must already be checked to be 2..19 decimal digits.
 */
export function panBlockNibbles(pan: Pan): Uint8Array {
  const nibbles = new Uint8Array(PIN_NIBBLES);
  const body = pan.slice(0, -1).slice(-12);
  const start = PIN_NIBBLES - body.length;
  for (let i = 0; i < body.length; i++) nibbles[start + i] = body.charCodeAt(i) - 0x30;
  return nibbles;
}

/** XOR of two nibble arrays of the same length, into a new array. */
export function xorNibbles(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < out.length; i++) out[i] = ((a[i] ?? 0) ^ (b[i] ?? 0)) & 0x0f;
  return out;
}
