// Test helpers for the PIN block suites (not a test file itself).
import { expect } from 'vitest';
import {
  hex,
  pinDigitsFromText,
  pinDigitsToText,
  SHARED_ERRORS,
  toHex,
  unwrap,
  type Pan,
  type PinDigits,
  type Result,
  type SharedErrorCode,
} from '../src/index';

/** The `error` kinds of pinblock.json and the codes they map to. */
export const ERROR_KIND_CODES: Readonly<Record<string, SharedErrorCode>> = {
  control_field: 'POS_ERR_PINBLOCK_CONTROL_FIELD',
  pin_length: 'POS_ERR_PINBLOCK_PIN_LENGTH',
  filler: 'POS_ERR_PINBLOCK_FILLER',
  pin_not_numeric: 'POS_ERR_PINBLOCK_PIN_NOT_NUMERIC',
  block_length: 'POS_ERR_PINBLOCK_BLOCK_LENGTH',
  pan_length: 'POS_ERR_PAN_LENGTH',
};

export function codeOfKind(kind: string): SharedErrorCode {
  const code = ERROR_KIND_CODES[kind];
  if (code === undefined) throw new Error(`unknown error kind ${kind}`);
  return code;
}

export function pinOf(text: string): PinDigits {
  return unwrap(pinDigitsFromText(text)).pin;
}

/**
 * A PAN as it arrives from outside. Deliberately not parsed: the PIN block code must re-check it,
 * and some vectors carry PANs that are out of range on purpose.
 */
export function panOf(text: string): Pan {
  return text as Pan;
}

export { hex, toHex };

export function pinText(pin: Uint8Array): string {
  return pinDigitsToText(pin as PinDigits);
}

export function expectPin(result: Result<{ pin: PinDigits }>, expected: string): void {
  if (!result.ok) expect.fail(`expected ok, got ${result.code}: ${result.detail}`);
  expect(pinText(result.pin)).toBe(expected);
}

export function expectCode(result: Result, code: SharedErrorCode): void {
  if (result.ok) expect.fail(`expected ${code}, got ok`);
  expect(result.code).toBe(code);
}

export function isCodedError(result: Result): boolean {
  return result.ok || (typeof result.code === 'string' && Object.hasOwn(SHARED_ERRORS, result.code));
}

/** One nibble per element, high nibble first. */
export function nibblesOf(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (const b of bytes) out.push(b >> 4, b & 0x0f);
  return out;
}

export function bytesOfNibbles(nibbles: readonly number[]): Uint8Array {
  const out = new Uint8Array(nibbles.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = ((nibbles[2 * i] ?? 0) << 4) | (nibbles[2 * i + 1] ?? 0);
  return out;
}

/** Copy of `bytes` with nibble `index` (high nibble first) set to `value`. */
export function withNibble(bytes: Uint8Array, index: number, value: number): Uint8Array {
  const out = bytes.slice();
  const i = index >> 1;
  const b = out[i] ?? 0;
  out[i] = index % 2 === 0 ? ((value & 0x0f) << 4) | (b & 0x0f) : (b & 0xf0) | (value & 0x0f);
  return out;
}

export function nibbleAt(bytes: Uint8Array, index: number): number {
  const b = bytes[index >> 1] ?? 0;
  return index % 2 === 0 ? b >> 4 : b & 0x0f;
}

/**
 * Test oracle for the format 0/3 PAN block, written independently of the library: 0000 ‖ the 12
 * rightmost PAN digits excluding the check digit, left-padded with zeros.
 */
export function panBlockOracle(pan: string): Uint8Array {
  return hex(`0000${pan.slice(0, -1).slice(-12).padStart(12, '0')}`);
}
