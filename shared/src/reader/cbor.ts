/**
 * Deterministic CBOR for reader messages: `cborEncodeSecret` / `cborDecode` from shared/src/cbor.ts
 * (RFC 8949 4.2.1, strict decode, canonical re-encode check, no copy left in cborg's module-level
 * scratch buffer, which matters for PIN digits), with the reader protocol's error code for a message
 * over its size limit.
 */
import { cborDecode, cborEncodeSecret } from '../cbor';
import { PosError, type Result } from '../result';

/** Encodes deterministically into a fresh array of exactly the encoded length; leaves no copy behind. */
export function encodeNoResidue(value: unknown, maxBytes: number): Uint8Array {
  try {
    return cborEncodeSecret(value, maxBytes);
  } catch (e) {
    if (e instanceof PosError && e.code === 'POS_ERR_CBOR_TOO_LARGE') {
      throw new PosError('POS_ERR_READER_MESSAGE_TOO_LARGE', `the message does not fit in ${maxBytes} bytes`);
    }
    throw e;
  }
}

/**
 * Strict decode (see shared/src/cbor.ts) whose determinism check re-encodes into a wiped scratch
 * buffer. Byte strings in the result are fresh copies (cborg slices them), not views of `bytes`, so
 * the caller may wipe `bytes` at once.
 */
export function decodeNoResidue(bytes: Uint8Array, maxBytes: number): Result<{ value: unknown }> {
  return cborDecode(bytes, maxBytes);
}
