/**
 * ISO 9564-1 format 1: 1 ‖ N ‖ PIN ‖ transaction-unique fill, not bound to the PAN. Use it only where
 * no PAN is available. The fill may be any nibble 0-F, so decode does not check it.
 */
import type { PinDigits } from '../brand';
import { randomBytes, wipe } from '../bytes';
import { ok, type Result } from '../result';
import { buildPinNibbles, checkFill, checkPin, decodePinNibbles, packNibbles, unpackNibbles } from './common';
import { checkBlock8 } from './iso0';

/**
 * `fill` is 8 bytes whose nibbles, high nibble first, supply the fill digits in order (the first
 * 14 - N are used). Without it the fill is random.
 */
export function encodeIso1(pin: unknown, fill: unknown): Result<{ block: Uint8Array }> {
  const c = checkPin(pin);
  if (!c.ok) return c;
  const f = checkFill(fill);
  if (!f.ok) return f;
  const source = f.fill ?? randomBytes(8);
  const fillNibbles = unpackNibbles(source);
  const pinField = buildPinNibbles(1, c.pin, fillNibbles);
  const block = packNibbles(pinField);
  wipe(fillNibbles, pinField);
  if (f.fill === undefined) wipe(source);
  return ok({ block });
}

export function decodeIso1(block: unknown): Result<{ pin: PinDigits }> {
  const b = checkBlock8(block);
  if (!b.ok) return b;
  const pinField = unpackNibbles(b.block);
  const result = decodePinNibbles(pinField, 1, undefined);
  wipe(pinField);
  return result;
}
