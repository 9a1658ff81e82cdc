/**
 * DES and Triple DES (TDEA) block ciphers, written from the tables of FIPS 46-3 so that they can be
 * audited line by line against the standard. Used by TDES DUKPT (ANSI X9.24-1-2009), TDES-CMAC and the
 * ANSI X9.19 retail MAC; nothing else in this project should need DES.
 *
 * Representation: a block or key is handled as an array of bits numbered 1..64 from the most
 * significant bit of the first byte, exactly as FIPS 46-3 numbers them, so every table below is
 * copied verbatim from the standard (1-based). This is slow next to a bit-sliced implementation but
 * fast enough for DUKPT key derivation and PIN/MAC work (a few thousand operations per block).
 *
 * Triple DES is the EDE construction of FIPS 46-3 / NIST SP 800-67: C = E_K3(D_K2(E_K1(P))), keying
 * option 2 (K1 = K3, a 16-byte key K1 ‖ K2) or keying option 1 (a 24-byte key K1 ‖ K2 ‖ K3).
 *
 * Parity bits (bits 8, 16, ..., 64 of each key) are ignored, as PC-1 ignores them; they are not checked.
 *
 * The `*Cipher` factories are the unchecked core: they throw a RangeError on a wrong key or block
 * length, which is a programming error. Code handling input from outside uses the `Result`-returning
 * helpers (`tdesEcbEncrypt`, `tdesCbcEncrypt`, ...).
 */
import { wipe } from '../bytes';
import { err, ok, type Result } from '../result';

export const DES_BLOCK = 8;

// ---------------------------------------------------------------------------------------------------
// FIPS 46-3 tables (all 1-based bit positions, copied from the standard)
// ---------------------------------------------------------------------------------------------------

/** Initial permutation IP (FIPS 46-3, "Enciphering", figure 1 and the IP table). */
const IP = [
  58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40,
  32, 24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61, 53, 45, 37, 29, 21, 13, 5,
  63, 55, 47, 39, 31, 23, 15, 7,
] as const;

/** Inverse initial permutation IP^-1. */
const IP_INV = [
  40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31, 38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13,
  53, 21, 61, 29, 36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27, 34, 2, 42, 10, 50, 18, 58, 26,
  33, 1, 41, 9, 49, 17, 57, 25,
] as const;

/** E bit-selection table: expands the 32-bit R to 48 bits ("The Cipher Function f"). */
const E = [
  32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17, 16, 17, 18, 19, 20, 21,
  20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
] as const;

/** Permutation P applied to the 32 S-box output bits. */
const P = [
  16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22,
  11, 4, 25,
] as const;

/** Selection functions S1..S8: each 4 rows of 16 entries, row from bits 1 and 6, column from bits 2-5. */
const S_BOXES = [
  // S1
  [
    14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3,
    8, 4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6,
    13,
  ],
  // S2
  [
    15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11,
    5, 0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5,
    14, 9,
  ],
  // S3
  [
    10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15,
    1, 13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2,
    12,
  ],
  // S4
  [
    7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14,
    9, 10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2,
    14,
  ],
  // S5
  [
    2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8,
    6, 4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4,
    5, 3,
  ],
  // S6
  [
    12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3,
    8, 9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8,
    13,
  ],
  // S7
  [
    4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8,
    6, 1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3,
    12,
  ],
  // S8
  [
    13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9,
    2, 7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6,
    11,
  ],
] as const;

/** Permuted choice 1: selects the 56 key bits (parity bits dropped) into C0 (first 28) and D0 (last 28). */
const PC1 = [
  57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
  63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
] as const;

/** Permuted choice 2: selects the 48 bits of Kn from CnDn (56 bits). */
const PC2 = [
  14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52, 31, 37, 47,
  55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
] as const;

/** Number of left shifts of C and D before each of the 16 iterations of the key schedule. */
const SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1] as const;

// ---------------------------------------------------------------------------------------------------
// Bit helpers
// ---------------------------------------------------------------------------------------------------

/** Bytes to bits, bit 1 = most significant bit of the first byte (FIPS 46-3 numbering). */
function toBits(bytes: Uint8Array, out: Uint8Array): void {
  for (let i = 0; i < out.length; i++) out[i] = ((bytes[i >>> 3] ?? 0) >>> (7 - (i & 7))) & 1;
}

function fromBits(bits: Uint8Array, out: Uint8Array): void {
  out.fill(0);
  for (let i = 0; i < bits.length; i++) {
    out[i >>> 3] = (out[i >>> 3] ?? 0) | ((bits[i] ?? 0) << (7 - (i & 7)));
  }
}

/** out[i] = input[table[i] - 1]: the permutation/selection notation of FIPS 46-3. */
function permute(input: Uint8Array, table: readonly number[], out: Uint8Array): void {
  for (let i = 0; i < table.length; i++) out[i] = input[(table[i] ?? 1) - 1] ?? 0;
}

function rotateLeft28(half: Uint8Array, n: number): void {
  for (let k = 0; k < n; k++) {
    const first = half[0] ?? 0;
    half.copyWithin(0, 1);
    half[27] = first;
  }
}

// ---------------------------------------------------------------------------------------------------
// Single DES
// ---------------------------------------------------------------------------------------------------

/** The key schedule K1..K16 (FIPS 46-3, "Key Schedule Calculation"). */
function keySchedule(key: Uint8Array): Uint8Array[] {
  const keyBits = new Uint8Array(64);
  const cd = new Uint8Array(56);
  const c = new Uint8Array(28);
  const d = new Uint8Array(28);
  toBits(key, keyBits);
  permute(keyBits, PC1, cd); // C0 = first 28 bits of PC-1(KEY), D0 = last 28
  c.set(cd.subarray(0, 28));
  d.set(cd.subarray(28));
  const subkeys: Uint8Array[] = [];
  for (const shifts of SHIFTS) {
    rotateLeft28(c, shifts); // Cn = LS_n(Cn-1), Dn = LS_n(Dn-1)
    rotateLeft28(d, shifts);
    cd.set(c, 0);
    cd.set(d, 28);
    const kn = new Uint8Array(48);
    permute(cd, PC2, kn); // Kn = PC-2(CnDn)
    subkeys.push(kn);
  }
  wipe(keyBits, cd, c, d);
  return subkeys;
}

/** One 64-bit block through IP, the 16 iterations L' = R, R' = L xor f(R, K) and IP^-1. */
class DesCore {
  private readonly subkeys: Uint8Array[];
  // Scratch registers, kept per instance so that wipe() can clear them.
  private readonly block = new Uint8Array(64);
  private readonly lr = new Uint8Array(64);
  private readonly er = new Uint8Array(48);
  private readonly sOut = new Uint8Array(32);
  private readonly f = new Uint8Array(32);

  constructor(key: Uint8Array) {
    this.subkeys = keySchedule(key);
  }

  /** Processes `input` (8 bytes) into `out` (8 bytes). Decryption uses K16..K1. */
  run(input: Uint8Array, out: Uint8Array, decrypt: boolean): void {
    const { block, lr, er, sOut, f } = this;
    toBits(input, block);
    permute(block, IP, lr); // L0 = lr[0..31], R0 = lr[32..63]
    const l = lr.subarray(0, 32);
    const r = lr.subarray(32, 64);
    for (let round = 0; round < 16; round++) {
      const k = this.subkeys[decrypt ? 15 - round : round];
      if (k === undefined) throw new RangeError('DES: missing subkey');
      // f(R, K): E(R) xor K, then the eight S-boxes, then P.
      permute(r, E, er);
      for (let i = 0; i < 48; i++) er[i] = (er[i] ?? 0) ^ (k[i] ?? 0);
      for (let s = 0; s < 8; s++) {
        const b = er.subarray(s * 6, s * 6 + 6);
        const row = ((b[0] ?? 0) << 1) | (b[5] ?? 0);
        const col = ((b[1] ?? 0) << 3) | ((b[2] ?? 0) << 2) | ((b[3] ?? 0) << 1) | (b[4] ?? 0);
        const v = S_BOXES[s]?.[row * 16 + col] ?? 0;
        for (let j = 0; j < 4; j++) sOut[s * 4 + j] = (v >>> (3 - j)) & 1;
      }
      permute(sOut, P, f);
      // L' = R; R' = L xor f(R, K)
      for (let i = 0; i < 32; i++) {
        const newR = (l[i] ?? 0) ^ (f[i] ?? 0);
        l[i] = r[i] ?? 0;
        r[i] = newR;
      }
    }
    // The preoutput is R16 L16 (the halves are not swapped after the last iteration).
    block.set(r, 0);
    block.set(l, 32);
    permute(block, IP_INV, lr);
    fromBits(lr, out);
  }

  wipe(): void {
    wipe(...this.subkeys, this.block, this.lr, this.er, this.sOut, this.f);
  }
}

// ---------------------------------------------------------------------------------------------------
// Unchecked cipher objects (for code that has already validated lengths)
// ---------------------------------------------------------------------------------------------------

/** A 64-bit block cipher with its key schedule expanded. Call wipe() when done. */
export interface BlockCipher64 {
  /** Encrypts one 8-byte block into a new array. */
  encryptBlock(block: Uint8Array): Uint8Array;
  /** Decrypts one 8-byte block into a new array. */
  decryptBlock(block: Uint8Array): Uint8Array;
  /** Overwrites the expanded key schedule and scratch registers. */
  wipe(): void;
}

function checkBlock(block: Uint8Array): void {
  if (block.length !== DES_BLOCK) throw new RangeError('DES: a block is 8 bytes');
}

/** Single DES under an 8-byte key. Throws RangeError on a wrong length (programming error). */
export function desCipher(key: Uint8Array): BlockCipher64 {
  if (key.length !== 8) throw new RangeError('DES: the key is 8 bytes');
  const core = new DesCore(key);
  return {
    encryptBlock(block) {
      checkBlock(block);
      const out = new Uint8Array(DES_BLOCK);
      core.run(block, out, false);
      return out;
    },
    decryptBlock(block) {
      checkBlock(block);
      const out = new Uint8Array(DES_BLOCK);
      core.run(block, out, true);
      return out;
    },
    wipe: () => core.wipe(),
  };
}

/** TDES key lengths: 16 bytes (keying option 2, K1 ‖ K2, K3 = K1) or 24 bytes (option 1). */
export function isTdesKeyLength(length: number): boolean {
  return length === 16 || length === 24;
}

/**
 * Triple DES (EDE) under a 16- or 24-byte key: encrypt = E_K3(D_K2(E_K1(x))), decrypt =
 * D_K1(E_K2(D_K3(x))). Throws RangeError on a wrong length (programming error).
 */
export function tdesCipher(key: Uint8Array): BlockCipher64 {
  if (!isTdesKeyLength(key.length)) throw new RangeError('TDES: the key is 16 or 24 bytes');
  const k1 = new DesCore(key.subarray(0, 8));
  const k2 = new DesCore(key.subarray(8, 16));
  const k3 = key.length === 24 ? new DesCore(key.subarray(16, 24)) : k1;
  return {
    encryptBlock(block) {
      checkBlock(block);
      const out = new Uint8Array(DES_BLOCK);
      k1.run(block, out, false);
      k2.run(out, out, true);
      k3.run(out, out, false);
      return out;
    },
    decryptBlock(block) {
      checkBlock(block);
      const out = new Uint8Array(DES_BLOCK);
      k3.run(block, out, true);
      k2.run(out, out, false);
      k1.run(out, out, true);
      return out;
    },
    wipe() {
      k1.wipe();
      k2.wipe();
      k3.wipe();
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Result-returning helpers for input from outside (no padding: data must be whole blocks)
// ---------------------------------------------------------------------------------------------------

function checkTdesInput(key: Uint8Array, data: Uint8Array): Result {
  if (!isTdesKeyLength(key.length)) {
    return err('POS_ERR_KEY_LENGTH', `a TDES key must be 16 or 24 bytes, got ${key.length}`);
  }
  if (data.length % DES_BLOCK !== 0) {
    return err('POS_ERR_DATA_LENGTH', `TDES data must be a multiple of 8 bytes, got ${data.length}`);
  }
  return ok({});
}

function checkIv(iv: Uint8Array): Result {
  if (iv.length !== DES_BLOCK) return err('POS_ERR_LENGTH', `a TDES IV must be 8 bytes, got ${iv.length}`);
  return ok({});
}

function ecb(cipher: BlockCipher64, data: Uint8Array, decrypt: boolean): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let off = 0; off < data.length; off += DES_BLOCK) {
    const block = data.subarray(off, off + DES_BLOCK);
    out.set(decrypt ? cipher.decryptBlock(block) : cipher.encryptBlock(block), off);
  }
  return out;
}

/** Single-DES encryption of one 8-byte block (FIPS 46-3). For known-answer tests and legacy interop. */
export function desEncryptBlock(key: Uint8Array, block: Uint8Array): Result<{ block: Uint8Array }> {
  if (key.length !== 8) return err('POS_ERR_KEY_LENGTH', `a DES key must be 8 bytes, got ${key.length}`);
  if (block.length !== DES_BLOCK) return err('POS_ERR_DATA_LENGTH', 'a DES block must be 8 bytes');
  const cipher = desCipher(key);
  const out = cipher.encryptBlock(block);
  cipher.wipe();
  return ok({ block: out });
}

/** Single-DES decryption of one 8-byte block. */
export function desDecryptBlock(key: Uint8Array, block: Uint8Array): Result<{ block: Uint8Array }> {
  if (key.length !== 8) return err('POS_ERR_KEY_LENGTH', `a DES key must be 8 bytes, got ${key.length}`);
  if (block.length !== DES_BLOCK) return err('POS_ERR_DATA_LENGTH', 'a DES block must be 8 bytes');
  const cipher = desCipher(key);
  const out = cipher.decryptBlock(block);
  cipher.wipe();
  return ok({ block: out });
}

/** TDES-ECB encryption of whole 8-byte blocks, no padding. */
export function tdesEcbEncrypt(key: Uint8Array, data: Uint8Array): Result<{ data: Uint8Array }> {
  const checked = checkTdesInput(key, data);
  if (!checked.ok) return checked;
  const cipher = tdesCipher(key);
  const out = ecb(cipher, data, false);
  cipher.wipe();
  return ok({ data: out });
}

/** TDES-ECB decryption of whole 8-byte blocks, no padding. */
export function tdesEcbDecrypt(key: Uint8Array, data: Uint8Array): Result<{ data: Uint8Array }> {
  const checked = checkTdesInput(key, data);
  if (!checked.ok) return checked;
  const cipher = tdesCipher(key);
  const out = ecb(cipher, data, true);
  cipher.wipe();
  return ok({ data: out });
}

/** TDES-CBC encryption (NIST SP 800-38A 6.2) of whole 8-byte blocks, no padding. */
export function tdesCbcEncrypt(
  key: Uint8Array,
  iv: Uint8Array,
  data: Uint8Array,
): Result<{ data: Uint8Array }> {
  const checked = checkTdesInput(key, data);
  if (!checked.ok) return checked;
  const ivChecked = checkIv(iv);
  if (!ivChecked.ok) return ivChecked;
  const cipher = tdesCipher(key);
  const out = new Uint8Array(data.length);
  const chain = iv.slice();
  for (let off = 0; off < data.length; off += DES_BLOCK) {
    for (let i = 0; i < DES_BLOCK; i++) chain[i] = (chain[i] ?? 0) ^ (data[off + i] ?? 0);
    chain.set(cipher.encryptBlock(chain));
    out.set(chain, off);
  }
  cipher.wipe();
  return ok({ data: out });
}

/** TDES-CBC decryption of whole 8-byte blocks, no padding. */
export function tdesCbcDecrypt(
  key: Uint8Array,
  iv: Uint8Array,
  data: Uint8Array,
): Result<{ data: Uint8Array }> {
  const checked = checkTdesInput(key, data);
  if (!checked.ok) return checked;
  const ivChecked = checkIv(iv);
  if (!ivChecked.ok) return ivChecked;
  const cipher = tdesCipher(key);
  const out = new Uint8Array(data.length);
  let previous = iv.slice();
  for (let off = 0; off < data.length; off += DES_BLOCK) {
    const block = data.slice(off, off + DES_BLOCK);
    const plain = cipher.decryptBlock(block);
    for (let i = 0; i < DES_BLOCK; i++) out[off + i] = (plain[i] ?? 0) ^ (previous[i] ?? 0);
    wipe(plain);
    previous = block;
  }
  cipher.wipe();
  return ok({ data: out });
}
