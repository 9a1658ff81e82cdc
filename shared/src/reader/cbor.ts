/**
 * Deterministic CBOR for reader messages: the same rules and cborg options as `cborEncode` /
 * `cborDecode` in shared/src/cbor.ts (RFC 8949 4.2.1, strict decode, canonical re-encode check), with
 * one difference that matters for PIN digits: nothing is left behind in cborg's module-level scratch
 * buffer. `cborg.encode` writes small items into a reusable 256-byte chunk that outlives the call, so
 * encoding (or re-encoding, in the determinism check) a `pin` message would leave the digits in memory
 * nobody can wipe. Here every encoding goes into a buffer we own (`encodeInto`), and the scratch is
 * wiped before returning.
 */
import { decode, encodeInto, rfc8949EncodeOptions } from 'cborg';
import { wipe } from '../bytes';
import { PosError, err, ok, type Result } from '../result';

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

/** Encodes deterministically into a fresh array of exactly the encoded length; leaves no copy behind. */
export function encodeNoResidue(value: unknown, maxBytes: number): Uint8Array {
  // Headroom so an item just over the limit is still measured rather than overflowing the scratch.
  const scratch = new Uint8Array(maxBytes + 64);
  try {
    let written: number;
    try {
      written = encodeInto(value, scratch, rfc8949EncodeOptions).written;
    } catch {
      throw new PosError('POS_ERR_READER_MESSAGE_TOO_LARGE', `the message does not fit in ${maxBytes} bytes`);
    }
    if (written > maxBytes)
      throw new PosError('POS_ERR_READER_MESSAGE_TOO_LARGE', `the message is over ${maxBytes} bytes`);
    return scratch.slice(0, written);
  } finally {
    wipe(scratch);
  }
}

/**
 * Strict decode (see shared/src/cbor.ts) whose determinism check re-encodes into a wiped scratch
 * buffer. Byte strings in the result are fresh copies (cborg slices them), not views of `bytes`, so
 * the caller may wipe `bytes` at once.
 */
export function decodeNoResidue(bytes: Uint8Array, maxBytes: number): Result<{ value: unknown }> {
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
  const scratch = new Uint8Array(bytes.length + 1);
  try {
    let written: number;
    try {
      written = encodeInto(value, scratch, rfc8949EncodeOptions).written;
    } catch {
      // Longer than the input (it cannot be the same bytes) or not encodable.
      return err('POS_ERR_CBOR_INVALID', 'the item is not in deterministic encoding (RFC 8949 4.2.1)');
    }
    let same = written === bytes.length;
    for (let i = 0; same && i < written; i++) same = scratch[i] === bytes[i];
    if (!same)
      return err('POS_ERR_CBOR_INVALID', 'the item is not in deterministic encoding (RFC 8949 4.2.1)');
    return ok({ value });
  } finally {
    wipe(scratch);
  }
}
