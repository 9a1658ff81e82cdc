/**
 * ISO 9564-1 format 2: 2 ‖ N ‖ PIN ‖ F fill, not bound to the PAN. Deterministic; meant for an
 * offline PIN sent to the chip card (ICC).
 */
import type { PinDigits } from '../brand';
import { wipe } from '../bytes';
import { ok, type Result } from '../result';
import {
  buildPinNibbles,
  checkPin,
  decodePinNibbles,
  FILL_F,
  fillF,
  packNibbles,
  unpackNibbles,
} from './common';
import { checkBlock8 } from './iso0';

export function encodeIso2(pin: unknown): Result<{ block: Uint8Array }> {
  const c = checkPin(pin);
  if (!c.ok) return c;
  const pinField = buildPinNibbles(2, c.pin, fillF());
  const block = packNibbles(pinField);
  wipe(pinField);
  return ok({ block });
}

export function decodeIso2(block: unknown): Result<{ pin: PinDigits }> {
  const b = checkBlock8(block);
  if (!b.ok) return b;
  const pinField = unpackNibbles(b.block);
  const result = decodePinNibbles(pinField, 2, FILL_F);
  wipe(pinField);
  return result;
}
