/**
 * Message authentication codes used with DUKPT keys:
 *
 * - AES-CMAC (NIST SP 800-38B, RFC 4493), from @noble/ciphers.
 * - TDES-CMAC: the same CMAC construction over the 64-bit TDES block (SP 800-38B, R_64 = 0x1B),
 *   written here because @noble/ciphers has no DES.
 * - The ANSI X9.19 "retail MAC" = ISO/IEC 9797-1 MAC algorithm 3 with padding method 1 (zero
 *   padding): single-DES CBC-MAC under K, and the final block decrypted under K' and re-encrypted under K.
 *
 * Each `*Mac` function returns the full tag unless `truncate` (in bytes) asks for its leftmost bytes.
 * Each `*Verify` function compares in constant time (for the tag length) and returns `valid`; a wrong key
 * or tag length is an error, a wrong tag is `valid: false`.
 */
import { cmac } from '@noble/ciphers/aes.js';
import { constantTimeEqual, wipe } from '../bytes';
import { err, ok, type Result } from '../result';
import { AES_BLOCK, isAesKeyLength } from './aes';
import { DES_BLOCK, desCipher, isTdesKeyLength, tdesCipher, type BlockCipher64 } from './des';

/** The shortest tag these helpers produce or accept: 32 bits (ISO/IEC 9797-1 and X9.19 allow it). */
export const MAC_MIN_BYTES = 4;

export interface MacOptions {
  /** Keep only the leftmost `truncate` bytes of the tag (4 up to the cipher's block length). */
  readonly truncate?: number;
}

function truncateTag(
  tag: Uint8Array,
  blockLen: number,
  options: MacOptions | undefined,
): Result<{ mac: Uint8Array }> {
  const length = options?.truncate ?? blockLen;
  if (!Number.isInteger(length) || length < MAC_MIN_BYTES || length > blockLen) {
    wipe(tag);
    return err('POS_ERR_LENGTH', `a MAC must be ${MAC_MIN_BYTES} to ${blockLen} bytes, asked for ${length}`);
  }
  return ok({ mac: tag.slice(0, length) });
}

function verifyTag(
  compute: (options: MacOptions) => Result<{ mac: Uint8Array }>,
  mac: Uint8Array,
): Result<{ valid: boolean }> {
  const computed = compute({ truncate: mac.length });
  if (!computed.ok) return computed;
  return ok({ valid: constantTimeEqual(computed.mac, mac) });
}

// ---------------------------------------------------------------------------------------------------
// AES-CMAC
// ---------------------------------------------------------------------------------------------------

/** AES-CMAC (RFC 4493 for AES-128; SP 800-38B for AES-192/256) of `message` under `key`. */
export function aesCmac(
  key: Uint8Array,
  message: Uint8Array,
  options?: MacOptions,
): Result<{ mac: Uint8Array }> {
  if (!isAesKeyLength(key.length)) {
    return err('POS_ERR_KEY_LENGTH', `an AES key must be 16, 24 or 32 bytes, got ${key.length}`);
  }
  return truncateTag(cmac(message, key), AES_BLOCK, options);
}

/** Checks an AES-CMAC tag of 4 to 16 bytes (compared with the leftmost bytes of the full tag). */
export function aesCmacVerify(
  key: Uint8Array,
  message: Uint8Array,
  mac: Uint8Array,
): Result<{ valid: boolean }> {
  return verifyTag((options) => aesCmac(key, message, options), mac);
}

// ---------------------------------------------------------------------------------------------------
// TDES-CMAC (SP 800-38B with b = 64)
// ---------------------------------------------------------------------------------------------------

/** Doubling in GF(2^64) as in SP 800-38B 6.1: shift left one bit, XOR R_64 = 0^59 11011 on carry. */
function dbl64(block: Uint8Array): Uint8Array {
  const out = new Uint8Array(DES_BLOCK);
  let carry = 0;
  for (let i = DES_BLOCK - 1; i >= 0; i--) {
    const b = block[i] ?? 0;
    out[i] = ((b << 1) | carry) & 0xff;
    carry = b >>> 7;
  }
  if (carry) out[DES_BLOCK - 1] = (out[DES_BLOCK - 1] ?? 0) ^ 0x1b;
  return out;
}

/** CMAC with a 64-bit block cipher (SP 800-38B 6.1 subkeys, 6.2 MAC generation). Returns the full tag. */
function cmac64(cipher: BlockCipher64, message: Uint8Array): Uint8Array {
  // Subkeys: L = CIPH_K(0^64); K1 = dbl(L); K2 = dbl(K1).
  const l = cipher.encryptBlock(new Uint8Array(DES_BLOCK));
  const k1 = dbl64(l);
  const k2 = dbl64(k1);
  // n = number of blocks (at least 1); the last block is complete only if the message is non-empty and
  // a multiple of the block length.
  const n = Math.max(1, Math.ceil(message.length / DES_BLOCK));
  const lastComplete = message.length > 0 && message.length % DES_BLOCK === 0;
  const last = new Uint8Array(DES_BLOCK);
  const tail = message.subarray((n - 1) * DES_BLOCK);
  last.set(tail);
  if (lastComplete) {
    for (let i = 0; i < DES_BLOCK; i++) last[i] = (last[i] ?? 0) ^ (k1[i] ?? 0);
  } else {
    last[tail.length] = 0x80; // padding 10^j
    for (let i = 0; i < DES_BLOCK; i++) last[i] = (last[i] ?? 0) ^ (k2[i] ?? 0);
  }
  // C_i = CIPH_K(C_{i-1} xor M_i), C_0 = 0^64; T = C_n.
  let c: Uint8Array = new Uint8Array(DES_BLOCK);
  for (let b = 0; b < n; b++) {
    const m = b === n - 1 ? last : message.subarray(b * DES_BLOCK, (b + 1) * DES_BLOCK);
    for (let i = 0; i < DES_BLOCK; i++) c[i] = (c[i] ?? 0) ^ (m[i] ?? 0);
    const next = cipher.encryptBlock(c);
    wipe(c);
    c = next;
  }
  wipe(l, k1, k2, last);
  return c;
}

/** TDES-CMAC (SP 800-38B over TDEA, 16- or 24-byte key) of `message`. The full tag is 8 bytes. */
export function tdesCmac(
  key: Uint8Array,
  message: Uint8Array,
  options?: MacOptions,
): Result<{ mac: Uint8Array }> {
  if (!isTdesKeyLength(key.length)) {
    return err('POS_ERR_KEY_LENGTH', `a TDES key must be 16 or 24 bytes, got ${key.length}`);
  }
  const cipher = tdesCipher(key);
  const tag = cmac64(cipher, message);
  cipher.wipe();
  return truncateTag(tag, DES_BLOCK, options);
}

/** Checks a TDES-CMAC tag of 4 to 8 bytes. */
export function tdesCmacVerify(
  key: Uint8Array,
  message: Uint8Array,
  mac: Uint8Array,
): Result<{ valid: boolean }> {
  return verifyTag((options) => tdesCmac(key, message, options), mac);
}

// ---------------------------------------------------------------------------------------------------
// ANSI X9.19 retail MAC = ISO/IEC 9797-1 MAC algorithm 3, padding method 1
// ---------------------------------------------------------------------------------------------------

/**
 * ANSI X9.19 retail MAC of `message` under a 16-byte key K ‖ K' (ISO/IEC 9797-1 MAC algorithm 3 with
 * padding method 1: zero bits up to a whole number of blocks; an empty message becomes one zero block).
 * H_1 = DES_K(D_1), H_i = DES_K(D_i xor H_{i-1}); output = DES_K(DES^-1_K'(H_q)). The full MAC is 8
 * bytes; X9.19 commonly transmits the leftmost 4 (`truncate: 4`).
 */
export function retailMac(
  key: Uint8Array,
  message: Uint8Array,
  options?: MacOptions,
): Result<{ mac: Uint8Array }> {
  if (key.length !== 16) {
    return err('POS_ERR_KEY_LENGTH', `a retail MAC key must be 16 bytes (K and K'), got ${key.length}`);
  }
  const k = desCipher(key.subarray(0, 8));
  const kPrime = desCipher(key.subarray(8, 16));
  const q = Math.max(1, Math.ceil(message.length / DES_BLOCK));
  let h: Uint8Array = new Uint8Array(DES_BLOCK);
  for (let b = 0; b < q; b++) {
    const block = message.subarray(b * DES_BLOCK, (b + 1) * DES_BLOCK); // a short last block is zero-padded
    for (let i = 0; i < block.length; i++) h[i] = (h[i] ?? 0) ^ (block[i] ?? 0);
    const next = k.encryptBlock(h);
    wipe(h);
    h = next;
  }
  // Output transformation 3: G = DES_K(DES^-1_K'(H_q)).
  const inner = kPrime.decryptBlock(h);
  const tag = k.encryptBlock(inner);
  wipe(h, inner);
  k.wipe();
  kPrime.wipe();
  return truncateTag(tag, DES_BLOCK, options);
}

/** Checks a retail MAC of 4 to 8 bytes. */
export function retailMacVerify(
  key: Uint8Array,
  message: Uint8Array,
  mac: Uint8Array,
): Result<{ valid: boolean }> {
  return verifyTag((options) => retailMac(key, message, options), mac);
}
