/**
 * TDES DUKPT, host side (ANSI X9.24-1-2009, Annex A), with a double-length (16-byte) BDK.
 *
 * - Initial key (IPEK), A.6: left half = TDES_BDK(leftmost 8 bytes of the KSN with its 21 counter bits
 *   cleared); right half = the same under BDK xor C0C0C0C000000000C0C0C0C000000000.
 * - Transaction key, A.2/A.3: starting from the IPEK and the KSN register (rightmost 8 bytes of the KSN,
 *   counter cleared), for each one-bit of the counter from the most significant: set it in the register
 *   and apply the non-reversible key generation process.
 * - Working keys, A.4.1 table A-1 (and the data variants used with it): the transaction key xor a variant
 *   constant; the data keys are then encrypted with themselves, half by half (one-way function).
 */
import type { TdesKsn } from '../brand';
import { wipe, xor } from '../bytes';
import { err, ok, type Result } from '../result';
import { desCipher, tdesCipher } from '../crypto/des';
import { parseTdesKsn, TDES_KSN_LENGTH, tdesCounterOf, tdesInitialKsn } from './ksn';

export type TdesDukptVariant = 'pin' | 'mac-request' | 'mac-response' | 'data-request' | 'data-response';

export const TDES_DUKPT_VARIANTS: readonly TdesDukptVariant[] = Object.freeze([
  'pin',
  'mac-request',
  'mac-response',
  'data-request',
  'data-response',
] as TdesDukptVariant[]);

/** Variant constants xored into the transaction key (one byte FF in each half). */
const VARIANT_BYTE: Readonly<Record<TdesDukptVariant, number>> = {
  pin: 7, //           00000000000000FF 00000000000000FF
  'mac-request': 6, // 000000000000FF00 000000000000FF00
  'mac-response': 4, // 00000000FF000000 00000000FF000000
  'data-request': 5, // 0000000000FF0000 0000000000FF0000
  'data-response': 3, // 000000FF00000000 000000FF00000000
};

const KEY_REGISTER_MASK = Uint8Array.of(
  0xc0,
  0xc0,
  0xc0,
  0xc0,
  0,
  0,
  0,
  0,
  0xc0,
  0xc0,
  0xc0,
  0xc0,
  0,
  0,
  0,
  0,
);

function checkBdk(bdk: Uint8Array): Result {
  if (!(bdk instanceof Uint8Array) || bdk.length !== 16) {
    return err('POS_ERR_KEY_LENGTH', 'a TDES DUKPT BDK must be a double-length TDES key of 16 bytes');
  }
  return ok({});
}

/**
 * Non-reversible key generation process (X9.24-1-2009 A.2): from the 16-byte key register and the 8-byte
 * KSN register, the next 16-byte key. Each half is Crypto Register-1 xor key right half, DES-encrypted
 * under the key's left half, xor the key's right half; the left output half uses the key xor C0C0C0C0...
 */
function nonReversibleKeyGeneration(key: Uint8Array, ksnRegister: Uint8Array): Uint8Array {
  const half = (k: Uint8Array): Uint8Array => {
    const right = k.subarray(8, 16);
    const cipher = desCipher(k.subarray(0, 8));
    const input = xor(ksnRegister, right);
    const encrypted = cipher.encryptBlock(input);
    const out = xor(encrypted, right);
    cipher.wipe();
    wipe(input, encrypted);
    return out;
  };
  const rightHalf = half(key);
  const masked = xor(key, KEY_REGISTER_MASK);
  const leftHalf = half(masked);
  const out = new Uint8Array(16);
  out.set(leftHalf, 0);
  out.set(rightHalf, 8);
  wipe(masked, leftHalf, rightHalf);
  return out;
}

/**
 * The initial key (IPEK) of the device a KSN belongs to. The KSN's counter bits are ignored, so the
 * initial KSN (counter 0) and any transaction KSN of the device give the same key. Takes any 10-byte KSN
 * (a `TdesKsn` or an initial KSN, which `parseTdesKsn` refuses because its counter is 0).
 */
export function tdesDukptIpek(bdk: Uint8Array, ksn: Uint8Array): Result<{ key: Uint8Array }> {
  const bdkChecked = checkBdk(bdk);
  if (!bdkChecked.ok) return bdkChecked;
  if (!(ksn instanceof Uint8Array) || ksn.length !== TDES_KSN_LENGTH) {
    return err('POS_ERR_KSN_INVALID', `a TDES DUKPT KSN must be ${TDES_KSN_LENGTH} bytes`);
  }
  const iksn = tdesInitialKsn(ksn).subarray(0, 8);
  const variantBdk = xor(bdk, KEY_REGISTER_MASK);
  const left = tdesCipher(bdk);
  const right = tdesCipher(variantBdk);
  const key = new Uint8Array(16);
  key.set(left.encryptBlock(iksn), 0);
  key.set(right.encryptBlock(iksn), 8);
  left.wipe();
  right.wipe();
  wipe(variantBdk);
  return ok({ key });
}

/** The transaction key for a KSN, before any variant (X9.24-1-2009 A.2, A.3). */
export function tdesDukptTransactionKey(bdk: Uint8Array, ksn: TdesKsn): Result<{ key: Uint8Array }> {
  const ksnChecked = parseTdesKsn(ksn);
  if (!ksnChecked.ok) return ksnChecked;
  const ipek = tdesDukptIpek(bdk, ksn);
  if (!ipek.ok) return ipek;
  const counter = tdesCounterOf(ksn);
  const ksnRegister = tdesInitialKsn(ksn).slice(2, 10); // rightmost 64 bits, counter cleared
  let key = ipek.key;
  for (let bit = 20; bit >= 0; bit--) {
    if (((counter >>> bit) & 1) === 0) continue;
    // Set the bit in the KSN register (the counter is the low 21 bits: bytes 5..7 of the register).
    const index = 7 - (bit >>> 3);
    ksnRegister[index] = (ksnRegister[index] ?? 0) | (1 << (bit & 7));
    const next = nonReversibleKeyGeneration(key, ksnRegister);
    wipe(key);
    key = next;
  }
  return ok({ key });
}

/**
 * A working key: the transaction key xor the variant constant. For 'data-request' and 'data-response'
 * the variant key K then encrypts itself half by half: TDES_K(K left) ‖ TDES_K(K right).
 */
export function tdesDukptWorkingKey(
  bdk: Uint8Array,
  ksn: TdesKsn,
  variant: TdesDukptVariant,
): Result<{ key: Uint8Array }> {
  if (typeof variant !== 'string' || !Object.prototype.hasOwnProperty.call(VARIANT_BYTE, variant)) {
    return err('POS_ERR_DUKPT_KEY_USAGE_UNKNOWN', 'the TDES DUKPT variant is not one X9.24-1 defines');
  }
  const txn = tdesDukptTransactionKey(bdk, ksn);
  if (!txn.ok) return txn;
  const key = txn.key;
  const at = VARIANT_BYTE[variant];
  key[at] = (key[at] ?? 0) ^ 0xff;
  key[at + 8] = (key[at + 8] ?? 0) ^ 0xff;
  if (variant !== 'data-request' && variant !== 'data-response') return ok({ key });
  const cipher = tdesCipher(key);
  const out = new Uint8Array(16);
  out.set(cipher.encryptBlock(key.subarray(0, 8)), 0);
  out.set(cipher.encryptBlock(key.subarray(8, 16)), 8);
  cipher.wipe();
  wipe(key);
  return ok({ key: out });
}
