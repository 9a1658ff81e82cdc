/**
 * ISO 9564-1 format 0 (and the PAN binding it shares with format 3): the PIN field
 * C ‖ N ‖ PIN ‖ fill is XORed with the PAN field 0000 ‖ the 12 rightmost PAN digits excluding the
 * check digit (left-padded with zeros when the PAN is shorter). Format 0 fills with F.
 */
import type { Pan, PinDigits } from '../brand';
import { wipe } from '../bytes';
import { err, ok, type Result } from '../result';
import {
  BLOCK8,
  buildPinNibbles,
  checkPan,
  checkPin,
  decodePinNibbles,
  FILL_F,
  fillF,
  isBytes,
  packNibbles,
  panBlockNibbles,
  unpackNibbles,
  xorNibbles,
  type FillRule,
} from './common';

/** Formats 0 and 3 take a PAN of 8 to 19 digits (ISO/IEC 7812). */
export const PAN_BOUND_MIN_DIGITS = 8;
export const PAN_BOUND_MAX_DIGITS = 19;

/** Checks the byte length of an 8-byte clear PIN block from outside. */
export function checkBlock8(block: unknown): Result<{ block: Uint8Array }> {
  if (!isBytes(block)) return err('POS_ERR_PINBLOCK_BLOCK_LENGTH', `the PIN block must be ${BLOCK8} bytes`);
  if (block.length !== BLOCK8) {
    return err('POS_ERR_PINBLOCK_BLOCK_LENGTH', `the PIN block must be ${BLOCK8} bytes, got ${block.length}`);
  }
  return ok({ block });
}

/** C ‖ N ‖ PIN ‖ fill, XOR the PAN block, packed into 8 bytes. Inputs must already be checked. */
export function panBoundBlock(control: number, pin: PinDigits, pan: Pan, fill: Uint8Array): Uint8Array {
  const pinField = buildPinNibbles(control, pin, fill);
  const panField = panBlockNibbles(pan);
  const mixed = xorNibbles(pinField, panField);
  const block = packNibbles(mixed);
  wipe(pinField, panField, mixed);
  return block;
}

/** Decodes a PAN-bound clear block (formats 0 and 3): block length, PAN, then the PIN field checks. */
export function decodePanBound(
  control: number,
  block: unknown,
  pan: unknown,
  fillRule: FillRule,
): Result<{ pin: PinDigits }> {
  const b = checkBlock8(block);
  if (!b.ok) return b;
  const p = checkPan(pan, PAN_BOUND_MIN_DIGITS, PAN_BOUND_MAX_DIGITS);
  if (!p.ok) return p;
  const blockNibbles = unpackNibbles(b.block);
  const panField = panBlockNibbles(p.pan);
  const pinField = xorNibbles(blockNibbles, panField);
  const result = decodePinNibbles(pinField, control, fillRule);
  wipe(blockNibbles, panField, pinField);
  return result;
}

export function encodeIso0(pin: unknown, pan: unknown): Result<{ block: Uint8Array }> {
  const c = checkPin(pin);
  if (!c.ok) return c;
  const p = checkPan(pan, PAN_BOUND_MIN_DIGITS, PAN_BOUND_MAX_DIGITS);
  if (!p.ok) return p;
  return ok({ block: panBoundBlock(0, c.pin, p.pan, fillF()) });
}

export function decodeIso0(block: unknown, pan: unknown): Result<{ pin: PinDigits }> {
  return decodePanBound(0, block, pan, FILL_F);
}
