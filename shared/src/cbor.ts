/**
 * Deterministic CBOR (RFC 8949 section 4.2.1, core deterministic encoding) via cborg. Decoding is
 * strict: definite lengths only, no duplicate map keys, no undefined, NaN or infinities, no tags, no
 * trailing bytes, and the input must be exactly the deterministic encoding of what it decodes to
 * (checked by re-encoding), so one message has one byte string.
 *
 * Secrets: `cborg.encode` writes small items into a module-level 256-byte chunk that outlives the
 * call, where nobody can wipe them. `cborEncodeSecret` and the re-encode check in `cborDecode` write
 * into buffers this module owns and wipes, so a PIN or PAN leaves no copy behind. `cborEncode` is for
 * values that are not secret (audit entries, hashes' inputs) and is cheaper.
 */
import { decode, encode, encodeInto, rfc8949EncodeOptions } from 'cborg';
import { wipe } from './bytes';
import { PosError, err, ok, type Result } from './result';

/** Default size limit of one CBOR item (bytes). Reader messages use their own, smaller limits. */
export const CBOR_DEFAULT_MAX_BYTES = 64 * 1024;

/** Deterministic encoding of a value that holds no secret. */
export function cborEncode(value: unknown): Uint8Array {
  return encode(value, rfc8949EncodeOptions);
}

/**
 * Deterministic encoding that leaves no copy of the value anywhere but the returned array (which the
 * caller wipes). Throws `PosError` POS_ERR_CBOR_TOO_LARGE when the encoding exceeds `maxBytes`.
 */
export function cborEncodeSecret(value: unknown, maxBytes: number): Uint8Array {
  // Headroom so an item just over the limit is measured rather than overflowing the scratch.
  const scratch = new Uint8Array(maxBytes + 64);
  try {
    let written: number;
    try {
      written = encodeInto(value, scratch, rfc8949EncodeOptions).written;
    } catch {
      throw new PosError('POS_ERR_CBOR_TOO_LARGE', `the item does not fit in ${maxBytes} bytes`);
    }
    if (written > maxBytes)
      throw new PosError('POS_ERR_CBOR_TOO_LARGE', `the item is over ${maxBytes} bytes`);
    return scratch.slice(0, written);
  } finally {
    wipe(scratch);
  }
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
  // Re-encode into a scratch buffer we own and wipe (the value may hold a secret). One byte longer
  // than the input, so a longer encoding is caught rather than truncated.
  const scratch = new Uint8Array(bytes.length + 1);
  try {
    let written: number;
    try {
      written = encodeInto(value, scratch, rfc8949EncodeOptions).written;
    } catch {
      return err('POS_ERR_CBOR_INVALID', 'the item is not in deterministic encoding (RFC 8949 4.2.1)');
    }
    let same = written === bytes.length;
    for (let i = 0; same && i < written; i++) same = scratch[i] === bytes[i];
    if (!same)
      return err('POS_ERR_CBOR_INVALID', 'the item is not in deterministic encoding (RFC 8949 4.2.1)');
  } finally {
    wipe(scratch);
  }
  return ok({ value });
}
