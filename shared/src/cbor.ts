/**
 * Deterministic CBOR (RFC 8949 section 4.2.1, core deterministic encoding) via cborg. Decoding is
 * strict: definite lengths only, no duplicate map keys, no undefined, NaN or infinities, no tags, no
 * trailing bytes, and the input must be exactly the deterministic encoding of what it decodes to
 * (checked by re-encoding), so one message has one byte string.
 */
import { decode, encode, rfc8949EncodeOptions } from 'cborg';
import { err, ok, type Result } from './result';

/** Default size limit of one CBOR item (bytes). Reader messages use their own, smaller limits. */
export const CBOR_DEFAULT_MAX_BYTES = 64 * 1024;

export function cborEncode(value: unknown): Uint8Array {
  return encode(value, rfc8949EncodeOptions);
}

const DECODE_OPTIONS = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowNaN: false,
  allowInfinity: false,
  allowBigInt: false,
  rejectDuplicateMapKeys: true,
  tags: [],
} as const;

export function cborDecode(bytes: Uint8Array, maxBytes = CBOR_DEFAULT_MAX_BYTES): Result<{ value: unknown }> {
  if (bytes.length > maxBytes)
    return err(
      'POS_ERR_CBOR_TOO_LARGE',
      `the item is ${bytes.length} bytes, over the ${maxBytes}-byte limit`,
    );
  let value: unknown;
  try {
    value = decode(bytes, DECODE_OPTIONS) as unknown;
  } catch {
    return err('POS_ERR_CBOR_INVALID', 'the bytes are not well-formed CBOR of an accepted kind');
  }
  let again: Uint8Array;
  try {
    again = cborEncode(value);
  } catch {
    return err('POS_ERR_CBOR_INVALID', 'the item cannot be re-encoded');
  }
  if (again.length !== bytes.length || again.some((b, i) => b !== bytes[i])) {
    return err('POS_ERR_CBOR_INVALID', 'the item is not in deterministic encoding (RFC 8949 4.2.1)');
  }
  return ok({ value });
}
