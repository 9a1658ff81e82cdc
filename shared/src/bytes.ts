/**
 * Byte helpers. The codecs come from well-kept libraries (@noble/hashes, @noble/ciphers, @scure/base);
 * this module adds strict, result-returning parsers for untrusted text and the few helpers that must
 * be small and auditable (wipe, xor).
 */
import { equalBytes } from '@noble/ciphers/utils.js';
import { bytesToHex, concatBytes, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { base64urlnopad } from '@scure/base';
import { err, ok, type Result } from './result';

export { concatBytes, randomBytes };

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

/** Upper-case hex, the convention of payment standards and of pos-tools' output. */
export function toHex(bytes: Uint8Array): string {
  return bytesToHex(bytes).toUpperCase();
}

/**
 * Parses hex from outside (CLI argument, file, message). Accepts either case; refuses odd length and
 * non-hex characters. `length` (in bytes) may be one number or a list of allowed lengths.
 */
export function parseHex(
  text: string,
  length?: number | readonly number[],
  what = 'value',
): Result<{ bytes: Uint8Array }> {
  if (!HEX_RE.test(text)) return err('POS_ERR_HEX_INVALID', `${what} must be an even number of hex digits`);
  const bytes = hexToBytes(text);
  if (length !== undefined) {
    const allowed = typeof length === 'number' ? [length] : length;
    if (!allowed.includes(bytes.length)) {
      return err(
        'POS_ERR_LENGTH',
        `${what} must be ${allowed.map((n) => `${n}`).join(' or ')} bytes, got ${bytes.length}`,
      );
    }
  }
  return ok({ bytes });
}

/** Hex for values known to be valid (constants, test data). Throws on bad input. */
export function hex(text: string): Uint8Array {
  return hexToBytes(text);
}

export function toBase64url(bytes: Uint8Array): string {
  return base64urlnopad.encode(bytes);
}

export function parseBase64url(text: string, what = 'value'): Result<{ bytes: Uint8Array }> {
  try {
    return ok({ bytes: base64urlnopad.decode(text) });
  } catch {
    return err('POS_ERR_BASE64URL_INVALID', `${what} is not unpadded base64url`);
  }
}

/**
 * Compares two byte strings in time that depends only on their lengths, never on where they differ.
 * Use for MACs, tags, tokens and any other secret.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return equalBytes(a, b);
}

/** Overwrites secret bytes with zeros. Call as soon as a PIN, key or clear block is no longer needed. */
export function wipe(...buffers: (Uint8Array | undefined)[]): void {
  for (const b of buffers) b?.fill(0);
}

/** a XOR b into a new array. Both must have the same length. */
export function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== b.length) throw new RangeError('xor: lengths differ');
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}
