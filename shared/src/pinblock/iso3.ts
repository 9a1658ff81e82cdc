/**
 * ISO 9564-1 format 3: format 0 with control nibble 3 and random fill digits A-F.
 */
import type { PinDigits } from '../brand';
import { wipe } from '../bytes';
import { err, ok, type Result } from '../result';
import { checkFill, checkPan, checkPin, FILL_A_TO_F, randomNibblesAtoF, unpackNibbles } from './common';
import { decodePanBound, PAN_BOUND_MAX_DIGITS, PAN_BOUND_MIN_DIGITS, panBoundBlock } from './iso0';

/**
 * `fill` is 8 bytes whose nibbles, high nibble first, supply the fill digits in order; each of the
 * first 14 - N must be A-F. Without it the fill is uniformly random A-F.
 */
export function encodeIso3(pin: unknown, pan: unknown, fill: unknown): Result<{ block: Uint8Array }> {
  const c = checkPin(pin);
  if (!c.ok) return c;
  const p = checkPan(pan, PAN_BOUND_MIN_DIGITS, PAN_BOUND_MAX_DIGITS);
  if (!p.ok) return p;
  const f = checkFill(fill);
  if (!f.ok) return f;
  const used = 14 - c.pin.length;
  let fillNibbles: Uint8Array;
  if (f.fill === undefined) {
    fillNibbles = randomNibblesAtoF(used);
  } else {
    fillNibbles = unpackNibbles(f.fill);
    for (let i = 0; i < used; i++) {
      if ((fillNibbles[i] ?? 0) < 0x0a) {
        wipe(fillNibbles);
        return err('POS_ERR_PINBLOCK_FILL_INVALID', 'every used fill digit of format 3 must be A to F');
      }
    }
  }
  const block = panBoundBlock(3, c.pin, p.pan, fillNibbles);
  wipe(fillNibbles);
  return ok({ block });
}

export function decodeIso3(block: unknown, pan: unknown): Result<{ pin: PinDigits }> {
  return decodePanBound(3, block, pan, FILL_A_TO_F);
}
