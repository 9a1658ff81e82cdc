/**
 * ISO 9564-1 PIN blocks, formats 0, 1, 2, 3 (8-byte clear blocks) and 4 (16-byte AES-enciphered).
 *
 * Every function returns a Result and none throws, whatever bytes or format number it is given.
 * Error details never contain the PIN, the PAN or key bytes. Returned blocks, PIN fields and PINs
 * are the caller's to wipe.
 */
import type { Pan, PinDigits } from '../brand';
import { err, type Result } from '../result';
import { decodeIso0, encodeIso0 } from './iso0';
import { decodeIso1, encodeIso1 } from './iso1';
import { decodeIso2, encodeIso2 } from './iso2';
import { decodeIso3, encodeIso3 } from './iso3';
import { decodeIso4, encodeIso4 } from './iso4';

export {
  decipherPinBlock4,
  decodePinField4,
  encipherPinField4,
  encodePanField4,
  encodePinField4,
} from './iso4';

export type PinBlockFormat = 0 | 1 | 2 | 3 | 4;

export type EncodePinBlockRequest =
  | { format: 0; pin: PinDigits; pan: Pan }
  /** fill: 8 bytes; its nibbles, in order, supply the fill digits (the first 14 - N). Default random. */
  | { format: 1; pin: PinDigits; fill?: Uint8Array }
  | { format: 2; pin: PinDigits }
  /** fill: 8 bytes, nibbles in order; each used nibble must be A-F. Default uniformly random A-F. */
  | { format: 3; pin: PinDigits; pan: Pan; fill?: Uint8Array }
  /** fill: the 8 random bytes of the PIN field's second half. Default random. */
  | { format: 4; pin: PinDigits; pan: Pan; key: Uint8Array; fill?: Uint8Array };

export type DecodePinBlockRequest =
  | { format: 0 | 3; block: Uint8Array; pan: Pan }
  | { format: 1 | 2; block: Uint8Array }
  | { format: 4; block: Uint8Array; pan: Pan; key: Uint8Array };

function unsupported(): Result<never> {
  return err('POS_ERR_PINBLOCK_FORMAT_UNSUPPORTED', 'the PIN block format must be 0, 1, 2, 3 or 4');
}

function isRequest(value: unknown): value is { readonly format: unknown } {
  return typeof value === 'object' && value !== null;
}

/** Formats 0-3: an 8-byte clear PIN block. Format 4: a 16-byte enciphered PIN block. */
export function encodePinBlock(req: EncodePinBlockRequest): Result<{ block: Uint8Array }> {
  if (!isRequest(req)) return unsupported();
  switch (req.format) {
    case 0:
      return encodeIso0(req.pin, req.pan);
    case 1:
      return encodeIso1(req.pin, req.fill);
    case 2:
      return encodeIso2(req.pin);
    case 3:
      return encodeIso3(req.pin, req.pan, req.fill);
    case 4:
      return encodeIso4(req.pin, req.pan, req.key, req.fill);
    default:
      return unsupported();
  }
}

/**
 * Decodes a PIN block. Checks, in order: block length, PAN, key length, then control nibble, PIN
 * length nibble, fill digits (not for format 1), numeric PIN digits.
 */
export function decodePinBlock(req: DecodePinBlockRequest): Result<{ pin: PinDigits }> {
  if (!isRequest(req)) return unsupported();
  switch (req.format) {
    case 0:
      return decodeIso0(req.block, req.pan);
    case 1:
      return decodeIso1(req.block);
    case 2:
      return decodeIso2(req.block);
    case 3:
      return decodeIso3(req.block, req.pan);
    case 4:
      return decodeIso4(req.block, req.pan, req.key);
    default:
      return unsupported();
  }
}
