/**
 * AES DUKPT key derivation (ANSI X9.24-3-2017 section 6.3): the key usage and key type codes, the
 * 16-byte derivation data and the derivation function shared by the host side (aes.ts) and the device
 * side (aes-device.ts).
 *
 * Derivation data (16 bytes):
 *   version 01 ‖ key block counter (01, 02 ...) ‖ key usage (2) ‖ algorithm (2) ‖ key length in bits (2)
 *   ‖ 8 bytes of KSN data: the initial key ID for usage 8001 (initial key); otherwise the derivation ID
 *   (rightmost 4 bytes of the initial key ID) ‖ the 32-bit counter.
 * Derived key = leftmost L bits of AES_K(data with block counter 1) ‖ AES_K(data with block counter 2) ...
 */
import { wipe } from '../bytes';
import { AES_BLOCK, aesEncryptBlocks } from '../crypto/aes';

export type DukptKeyUsage =
  | 'key-encryption'
  | 'pin-encryption'
  | 'mac-generation'
  | 'mac-verification'
  | 'mac-both'
  | 'data-encryption'
  | 'data-decryption'
  | 'data-both';

export type AesDukptKeyType =
  'tdes2' | 'tdes3' | 'aes128' | 'aes192' | 'aes256' | 'hmac128' | 'hmac192' | 'hmac256';

/** The key types a derivation key (BDK, initial key, intermediate key) may have: AES only (6.3.1). */
export type AesDukptDeriveKeyType = 'aes128' | 'aes192' | 'aes256';

/** Key usage indicators of the derivation data (X9.24-3-2017 6.3.2, tables 2 and 3). */
const USAGE_CODES: Readonly<Record<DukptKeyUsage, number>> = {
  'key-encryption': 0x0002,
  'pin-encryption': 0x1000,
  'mac-generation': 0x2000,
  'mac-verification': 0x2001,
  'mac-both': 0x2002,
  'data-encryption': 0x3000,
  'data-decryption': 0x3001,
  'data-both': 0x3002,
};
/** Usage 8000: intermediate derivation key. */
export const USAGE_KEY_DERIVATION = 0x8000;
/** Usage 8001: initial key derived from the BDK. */
export const USAGE_INITIAL_KEY = 0x8001;

interface KeyTypeInfo {
  /** Algorithm indicator of the derivation data (X9.24-3-2017 6.3.2). */
  readonly algorithm: number;
  /** Key length in bits, written into the derivation data and used to size the key. */
  readonly bits: number;
  /**
   * Security strength in bits, for the rule that a working key is never stronger than the key it is
   * derived from (X9.24-3-2017 6.1.3). Figures from NIST SP 800-57 Part 1: two-key TDEA 80 (at most),
   * three-key TDEA 112, AES-n n. HMAC cannot be stronger than its key (an exhaustive search of an n-bit
   * key costs 2^n whatever the hash), and with a hash of at least 256 bits (SHA-256) it is not weaker
   * for n <= 256, so an n-bit HMAC key ranks with AES-n. Hence
   * tdes2 < tdes3 < aes128 = hmac128 < aes192 = hmac192 < aes256 = hmac256.
   */
  readonly strength: number;
}

/**
 * Algorithm indicators: 0000 2TDEA, 0001 3TDEA, 0002 AES-128, 0003 AES-192, 0004 AES-256, 0005 HMAC.
 * All three HMAC key types use algorithm 0005 and differ only in the length field (0080, 00C0, 0100),
 * as in the openemv/dukpt and moov-io/dukpt implementations of X9.24-3-2017.
 */
const KEY_TYPES: Readonly<Record<AesDukptKeyType, KeyTypeInfo>> = {
  tdes2: { algorithm: 0x0000, bits: 128, strength: 80 },
  tdes3: { algorithm: 0x0001, bits: 192, strength: 112 },
  aes128: { algorithm: 0x0002, bits: 128, strength: 128 },
  aes192: { algorithm: 0x0003, bits: 192, strength: 192 },
  aes256: { algorithm: 0x0004, bits: 256, strength: 256 },
  hmac128: { algorithm: 0x0005, bits: 128, strength: 128 },
  hmac192: { algorithm: 0x0005, bits: 192, strength: 192 },
  hmac256: { algorithm: 0x0005, bits: 256, strength: 256 },
};

export const DUKPT_KEY_USAGES: readonly DukptKeyUsage[] = Object.freeze(
  Object.keys(USAGE_CODES) as DukptKeyUsage[],
);
export const AES_DUKPT_KEY_TYPES: readonly AesDukptKeyType[] = Object.freeze(
  Object.keys(KEY_TYPES) as AesDukptKeyType[],
);

export function isDukptKeyUsage(value: unknown): value is DukptKeyUsage {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(USAGE_CODES, value);
}

export function isAesDukptKeyType(value: unknown): value is AesDukptKeyType {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(KEY_TYPES, value);
}

export function usageCode(usage: DukptKeyUsage): number {
  return USAGE_CODES[usage];
}

export function keyTypeInfo(type: AesDukptKeyType): KeyTypeInfo {
  return KEY_TYPES[type];
}

/** Key length in bytes of a key type. */
export function keyTypeLength(type: AesDukptKeyType): number {
  return KEY_TYPES[type].bits / 8;
}

/** The derivation key type that goes with an AES key length (16, 24, 32), or undefined. */
export function deriveKeyTypeForLength(length: number): AesDukptDeriveKeyType | undefined {
  if (length === 16) return 'aes128';
  if (length === 24) return 'aes192';
  if (length === 32) return 'aes256';
  return undefined;
}

/** True when a working key of type `working` may be derived from a key of type `derivation`. */
export function isNotStronger(working: AesDukptKeyType, derivation: AesDukptDeriveKeyType): boolean {
  return KEY_TYPES[working].strength <= KEY_TYPES[derivation].strength;
}

/**
 * Test hook: the number of AES block encryptions the DUKPT derivation function has performed. Lets a
 * test check the work a device does per transaction without timing anything. Not part of the public API.
 */
export const aesDukptBlockCounter = { count: 0 };

/**
 * "Create Derivation Data" (X9.24-3-2017 6.3.3). `ksnData` is the initial key ID (usage 8001) or,
 * for every other usage, the derivation ID (bytes 4..7 of the initial key ID) followed by `counter`.
 */
export function derivationData(
  usage: number,
  type: AesDukptKeyType,
  initialKeyId: Uint8Array,
  counter: number,
): Uint8Array {
  const { algorithm, bits } = KEY_TYPES[type];
  const data = new Uint8Array(AES_BLOCK);
  data[0] = 0x01; // version
  data[1] = 0x01; // key block counter, incremented per block in deriveKey
  data[2] = usage >>> 8;
  data[3] = usage & 0xff;
  data[4] = algorithm >>> 8;
  data[5] = algorithm & 0xff;
  data[6] = bits >>> 8;
  data[7] = bits & 0xff;
  if (usage === USAGE_INITIAL_KEY) {
    data.set(initialKeyId.subarray(0, 8), 8);
  } else {
    data.set(initialKeyId.subarray(4, 8), 8);
    data[12] = (counter >>> 24) & 0xff;
    data[13] = (counter >>> 16) & 0xff;
    data[14] = (counter >>> 8) & 0xff;
    data[15] = counter & 0xff;
  }
  return data;
}

/**
 * "Derive Key" (X9.24-3-2017 6.3.1): as many AES-ECB encryptions of the derivation data under `key`
 * as the derived key needs, the block counter (byte 1) running 1, 2, ...; keeps the leftmost bits.
 * The caller has checked that `key` is an AES key. Wipes `data` and the intermediate output.
 */
export function deriveKey(key: Uint8Array, data: Uint8Array, type: AesDukptKeyType): Uint8Array {
  const length = keyTypeLength(type);
  const blocks = Math.ceil(length / AES_BLOCK);
  const material = new Uint8Array(blocks * AES_BLOCK);
  for (let i = 0; i < blocks; i++) {
    data[1] = i + 1;
    const block = aesEncryptBlocks(key, data);
    aesDukptBlockCounter.count++;
    material.set(block, i * AES_BLOCK);
    wipe(block);
  }
  const out = material.slice(0, length);
  wipe(material, data);
  return out;
}

/** Derives a key of `type` and `usage` for `counter` from `key` (builds the data, then derives). */
export function deriveFor(
  key: Uint8Array,
  usage: number,
  type: AesDukptKeyType,
  initialKeyId: Uint8Array,
  counter: number,
): Uint8Array {
  return deriveKey(key, derivationData(usage, type, initialKeyId, counter), type);
}

/**
 * The intermediate derivation key for `counter`, walked down from the initial key: for each one-bit of
 * the counter from the most significant, set it in a working counter and derive (usage 8000, the
 * derivation key's own type) from the previous key (X9.24-3-2017 6.1, host side). Does not modify or
 * wipe `initialKey`; the result is a new array.
 */
export function intermediateKey(
  initialKey: Uint8Array,
  type: AesDukptDeriveKeyType,
  initialKeyId: Uint8Array,
  counter: number,
): Uint8Array {
  let key: Uint8Array = initialKey.slice();
  let working = 0;
  for (let bit = 31; bit >= 0; bit--) {
    const mask = 2 ** bit;
    if (Math.floor(counter / mask) % 2 === 0) continue;
    working += mask;
    const next = deriveFor(key, USAGE_KEY_DERIVATION, type, initialKeyId, working);
    wipe(key);
    key = next;
  }
  return key;
}
