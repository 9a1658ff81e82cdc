/**
 * ISO 9564-1:2017 format 4 (9.4): a 16-byte PIN block for AES.
 *
 * - Plain PIN field: 4 ‖ N ‖ PIN ‖ A fill to 16 nibbles ‖ 8 random bytes.
 * - Plain PAN field: M ‖ PAN ‖ 0 padding to 32 nibbles, where M = max(0, PAN length - 12) and a PAN
 *   shorter than 12 digits is right-justified in 12 digits with leading zeros. PAN of 1 to 19 digits,
 *   check digit included, Luhn not checked.
 * - Encipherment: A = AES_K(PIN field), B = A XOR PAN field, PIN block = AES_K(B). Decipherment runs
 *   the same steps backwards.
 */
import type { Pan, PinDigits } from '../brand';
import { concatBytes, randomBytes, wipe, xor } from '../bytes';
import { PAN_MAX_DIGITS } from '../card';
import { aesDecryptBlocks, aesEncryptBlocks, isAesKeyLength } from '../crypto/aes';
import { err, ok, type Result } from '../result';
import {
  BLOCK16,
  BLOCK8,
  buildPinNibbles,
  checkFill,
  checkPan,
  checkPin,
  decodePinNibbles,
  FILL_A,
  isBytes,
  packNibbles,
  unpackNibbles,
} from './common';

const PAN4_MIN_DIGITS = 1;
const PAN4_PIN_AREA = 12;

/** Checks an AES key from outside: 16, 24 or 32 bytes. */
export function checkAesKey(key: unknown): Result<{ key: Uint8Array }> {
  if (!isBytes(key)) return err('POS_ERR_KEY_LENGTH', 'the AES key must be 16, 24 or 32 bytes');
  if (!isAesKeyLength(key.length)) {
    return err('POS_ERR_KEY_LENGTH', `the AES key must be 16, 24 or 32 bytes, got ${key.length}`);
  }
  return ok({ key });
}

function checkBlock16(block: unknown, what: string): Result<{ block: Uint8Array }> {
  if (!isBytes(block)) return err('POS_ERR_PINBLOCK_BLOCK_LENGTH', `the ${what} must be ${BLOCK16} bytes`);
  if (block.length !== BLOCK16) {
    return err('POS_ERR_PINBLOCK_BLOCK_LENGTH', `the ${what} must be ${BLOCK16} bytes, got ${block.length}`);
  }
  return ok({ block });
}

function checkPan4(pan: unknown): Result<{ pan: Pan }> {
  return checkPan(pan, PAN4_MIN_DIGITS, PAN_MAX_DIGITS);
}

/**
 * The plain PIN field: 4 ‖ N ‖ PIN ‖ A fill (8 bytes), then `fill` (8 bytes) or 8 random bytes.
 * The returned field is the caller's to wipe.
 */
export function encodePinField4(pin: PinDigits, fill?: Uint8Array): Result<{ pinField: Uint8Array }> {
  const c = checkPin(pin);
  if (!c.ok) return c;
  const f = checkFill(fill);
  if (!f.ok) return f;
  const nibbles = buildPinNibbles(4, c.pin, new Uint8Array(14).fill(0x0a));
  const firstHalf = packNibbles(nibbles);
  const random = f.fill ?? randomBytes(BLOCK8);
  const pinField = concatBytes(firstHalf, random);
  wipe(nibbles, firstHalf);
  if (f.fill === undefined) wipe(random);
  return ok({ pinField });
}

/**
 * The PIN from a plain PIN field. Checks the length (16 bytes), then control nibble, PIN length,
 * A fill and numeric PIN. The random second half is not checked.
 */
export function decodePinField4(pinField: Uint8Array): Result<{ pin: PinDigits }> {
  const b = checkBlock16(pinField, 'PIN field');
  if (!b.ok) return b;
  const nibbles = unpackNibbles(b.block.subarray(0, BLOCK8));
  const result = decodePinNibbles(nibbles, 4, FILL_A);
  wipe(nibbles);
  return result;
}

/** The plain PAN field: M ‖ PAN ‖ 0 padding (16 bytes). The PAN has 1 to 19 digits; Luhn is not checked. */
export function encodePanField4(pan: Pan): Result<{ panField: Uint8Array }> {
  const p = checkPan4(pan);
  if (!p.ok) return p;
  return ok({ panField: panField4(p.pan) });
}

function panField4(pan: Pan): Uint8Array {
  const nibbles = new Uint8Array(2 * BLOCK16);
  const len = pan.length;
  nibbles[0] = Math.max(0, len - PAN4_PIN_AREA);
  const start = 1 + Math.max(0, PAN4_PIN_AREA - len);
  for (let i = 0; i < len; i++) nibbles[start + i] = pan.charCodeAt(i) - 0x30;
  const field = packNibbles(nibbles);
  wipe(nibbles);
  return field;
}

/**
 * Enciphers a 16-byte plain PIN field under an AES key, bound to the PAN. The PIN field's content
 * is not checked here (decipherPinBlock4 checks it). Checks: PIN field length, PAN, key length.
 */
export function encipherPinField4(
  key: Uint8Array,
  pinField: Uint8Array,
  pan: Pan,
): Result<{ block: Uint8Array }> {
  return encipher(key, pinField, pan);
}

/**
 * Deciphers a format 4 PIN block and decodes its PIN field. Checks, in order: block length, PAN,
 * key length, then control nibble, PIN length, A fill, numeric PIN. The returned `pinField` (the
 * plain PIN field) and `pin` are the caller's to wipe.
 */
export function decipherPinBlock4(
  key: Uint8Array,
  block: Uint8Array,
  pan: Pan,
): Result<{ pin: PinDigits; pinField: Uint8Array }> {
  return decipher(key, block, pan);
}

function encipher(key: unknown, pinField: unknown, pan: unknown): Result<{ block: Uint8Array }> {
  const b = checkBlock16(pinField, 'PIN field');
  if (!b.ok) return b;
  const p = checkPan4(pan);
  if (!p.ok) return p;
  const k = checkAesKey(key);
  if (!k.ok) return k;
  const panField = panField4(p.pan);
  const a = aesEncryptBlocks(k.key, b.block);
  const intermediate = xor(a, panField);
  const block = aesEncryptBlocks(k.key, intermediate);
  wipe(panField, a, intermediate);
  return ok({ block });
}

function decipher(
  key: unknown,
  block: unknown,
  pan: unknown,
): Result<{ pin: PinDigits; pinField: Uint8Array }> {
  const b = checkBlock16(block, 'PIN block');
  if (!b.ok) return b;
  const p = checkPan4(pan);
  if (!p.ok) return p;
  const k = checkAesKey(key);
  if (!k.ok) return k;
  const panField = panField4(p.pan);
  const intermediate = aesDecryptBlocks(k.key, b.block);
  const a = xor(intermediate, panField);
  const pinField = aesDecryptBlocks(k.key, a);
  wipe(panField, intermediate, a);
  const decoded = decodePinField4(pinField);
  if (!decoded.ok) {
    wipe(pinField);
    return decoded;
  }
  return ok({ pin: decoded.pin, pinField });
}

/** Format 4 encode from untrusted input. Checks, in order: PIN, PAN, key length, fill. */
export function encodeIso4(
  pin: unknown,
  pan: unknown,
  key: unknown,
  fill: unknown,
): Result<{ block: Uint8Array }> {
  const c = checkPin(pin);
  if (!c.ok) return c;
  const p = checkPan4(pan);
  if (!p.ok) return p;
  const k = checkAesKey(key);
  if (!k.ok) return k;
  const f = checkFill(fill);
  if (!f.ok) return f;
  const field = encodePinField4(c.pin, f.fill);
  if (!field.ok) return field;
  const enciphered = encipher(k.key, field.pinField, p.pan);
  wipe(field.pinField);
  return enciphered;
}

/** Format 4 decode from untrusted input: decipherPinBlock4 without the plain PIN field. */
export function decodeIso4(block: unknown, pan: unknown, key: unknown): Result<{ pin: PinDigits }> {
  const deciphered = decipher(key, block, pan);
  if (!deciphered.ok) return deciphered;
  wipe(deciphered.pinField);
  return ok({ pin: deciphered.pin });
}
