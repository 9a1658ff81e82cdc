/**
 * Key serial numbers (KSNs) of AES DUKPT (ANSI X9.24-3-2017) and TDES DUKPT (ANSI X9.24-1-2009): parsing,
 * the transaction counter and the rule for the next counter.
 *
 * AES: 12 bytes = initial key ID (8: BDK ID 4 ‖ derivation ID 4) ‖ 32-bit big-endian counter. A device
 * uses only counters with at most 16 one-bits; the largest is 0xFFFF0000 (every larger 32-bit value has
 * at least 17 one-bits).
 *
 * TDES: 10 bytes; the rightmost 21 bits are the counter, the 59 bits to their left identify the device
 * and its BDK. A device uses only counters with at most 10 one-bits; the largest is 0x1FF800 (every
 * larger 21-bit value has at least 11 one-bits).
 *
 * In both schemes counter 0 belongs to the initial key itself and is never a transaction counter.
 */
import type { AesKsn, TdesKsn } from '../brand';
import { err, ok, type Result } from '../result';

export const AES_KSN_LENGTH = 12;
export const AES_IKID_LENGTH = 8;
/** Largest AES DUKPT counter: the largest 32-bit value with 16 one-bits. */
export const AES_KSN_MAX_COUNTER = 0xffff0000;
/** Most one-bits an AES DUKPT counter may have (X9.24-3-2017 calls it MAX_WORK). */
export const AES_KSN_MAX_ONE_BITS = 16;

export const TDES_KSN_LENGTH = 10;
/** Largest TDES DUKPT counter: the largest 21-bit value with 10 one-bits. */
export const TDES_KSN_MAX_COUNTER = 0x1ff800;
export const TDES_KSN_MAX_ONE_BITS = 10;
const TDES_COUNTER_MASK = 0x1fffff;

/** Number of one-bits of a non-negative integer below 2^32. */
export function oneBits(n: number): number {
  let count = 0;
  for (let v = n >>> 0; v !== 0; v = (v & (v - 1)) >>> 0) count++;
  return count;
}

/** The lowest set bit of a non-zero integer below 2^32, as a value (e.g. 0x100), not an index. */
export function lowestSetBit(n: number): number {
  return (n & -n) >>> 0;
}

/** Index (0..31) of the lowest set bit of a non-zero integer below 2^32. */
export function lowestSetBitIndex(n: number): number {
  return 31 - Math.clz32(lowestSetBit(n));
}

export function isValidAesCounter(counter: number): boolean {
  return (
    Number.isInteger(counter) &&
    counter >= 1 &&
    counter <= AES_KSN_MAX_COUNTER &&
    oneBits(counter) <= AES_KSN_MAX_ONE_BITS
  );
}

export function isValidTdesCounter(counter: number): boolean {
  return (
    Number.isInteger(counter) &&
    counter >= 1 &&
    counter <= TDES_KSN_MAX_COUNTER &&
    oneBits(counter) <= TDES_KSN_MAX_ONE_BITS
  );
}

function readAesCounter(bytes: Uint8Array): number {
  return (
    (((bytes[8] ?? 0) << 24) | ((bytes[9] ?? 0) << 16) | ((bytes[10] ?? 0) << 8) | (bytes[11] ?? 0)) >>> 0
  );
}

function readTdesCounter(bytes: Uint8Array): number {
  return (((bytes[7] ?? 0) & 0x1f) << 16) | ((bytes[8] ?? 0) << 8) | (bytes[9] ?? 0);
}

/** Builds an AES KSN from an initial key ID and a counter the caller has already validated. */
export function makeAesKsn(initialKeyId: Uint8Array, counter: number): AesKsn {
  const ksn = new Uint8Array(AES_KSN_LENGTH);
  ksn.set(initialKeyId.subarray(0, AES_IKID_LENGTH));
  ksn[8] = (counter >>> 24) & 0xff;
  ksn[9] = (counter >>> 16) & 0xff;
  ksn[10] = (counter >>> 8) & 0xff;
  ksn[11] = counter & 0xff;
  return ksn as AesKsn;
}

function withTdesCounter(ksn: Uint8Array, counter: number): TdesKsn {
  const out = ksn.slice();
  out[7] = ((out[7] ?? 0) & 0xe0) | ((counter >>> 16) & 0x1f);
  out[8] = (counter >>> 8) & 0xff;
  out[9] = counter & 0xff;
  return out as TdesKsn;
}

/**
 * Checks a 12-byte AES DUKPT KSN and returns a copy branded `AesKsn`. The counter must be 1..0xFFFF0000
 * with at most 16 one-bits (POS_ERR_KSN_COUNTER_INVALID otherwise).
 */
export function parseAesKsn(bytes: Uint8Array): Result<{ ksn: AesKsn }> {
  if (!(bytes instanceof Uint8Array) || bytes.length !== AES_KSN_LENGTH) {
    return err('POS_ERR_KSN_INVALID', `an AES DUKPT KSN must be ${AES_KSN_LENGTH} bytes`);
  }
  const counter = readAesCounter(bytes);
  if (!isValidAesCounter(counter)) {
    return err(
      'POS_ERR_KSN_COUNTER_INVALID',
      `AES DUKPT counter ${counter.toString(16).toUpperCase()} is zero or has more than 16 one-bits`,
    );
  }
  return ok({ ksn: bytes.slice() as AesKsn });
}

/**
 * Checks a 10-byte TDES DUKPT KSN and returns a copy branded `TdesKsn`. The 21-bit counter must be
 * 1..0x1FF800 with at most 10 one-bits (POS_ERR_KSN_COUNTER_INVALID otherwise).
 */
export function parseTdesKsn(bytes: Uint8Array): Result<{ ksn: TdesKsn }> {
  if (!(bytes instanceof Uint8Array) || bytes.length !== TDES_KSN_LENGTH) {
    return err('POS_ERR_KSN_INVALID', `a TDES DUKPT KSN must be ${TDES_KSN_LENGTH} bytes`);
  }
  const counter = readTdesCounter(bytes);
  if (!isValidTdesCounter(counter)) {
    return err(
      'POS_ERR_KSN_COUNTER_INVALID',
      `TDES DUKPT counter ${counter.toString(16).toUpperCase()} is zero or has more than 10 one-bits`,
    );
  }
  return ok({ ksn: bytes.slice() as TdesKsn });
}

/** The 32-bit transaction counter of an AES KSN. */
export function aesKsnCounter(ksn: AesKsn): number {
  return readAesCounter(ksn);
}

/** The 21-bit transaction counter of a TDES KSN. */
export function tdesKsnCounter(ksn: TdesKsn): number {
  return readTdesCounter(ksn);
}

/**
 * The next counter a device uses after `counter`: counter + 1, and while that has more than `maxOneBits`
 * one-bits, add its lowest set bit (which clears a run of ones without skipping a valid counter).
 * Returns undefined past `max`.
 */
function nextCounter(counter: number, maxOneBits: number, max: number): number | undefined {
  if (counter >= max) return undefined;
  let next = counter + 1;
  while (oneBits(next) > maxOneBits) next += lowestSetBit(next);
  return next <= max ? next : undefined;
}

/** The next AES KSN a device uses (X9.24-3-2017), or POS_ERR_KSN_EXHAUSTED after 0xFFFF0000. */
export function nextAesKsn(ksn: AesKsn): Result<{ ksn: AesKsn }> {
  const checked = parseAesKsn(ksn);
  if (!checked.ok) return checked;
  const next = nextCounter(readAesCounter(ksn), AES_KSN_MAX_ONE_BITS, AES_KSN_MAX_COUNTER);
  if (next === undefined) return err('POS_ERR_KSN_EXHAUSTED', 'the AES DUKPT counter is at its maximum');
  return ok({ ksn: makeAesKsn(ksn, next) });
}

/** The next TDES KSN a device uses (X9.24-1-2009), or POS_ERR_KSN_EXHAUSTED after 0x1FF800. */
export function nextTdesKsn(ksn: TdesKsn): Result<{ ksn: TdesKsn }> {
  const checked = parseTdesKsn(ksn);
  if (!checked.ok) return checked;
  const next = nextCounter(readTdesCounter(ksn), TDES_KSN_MAX_ONE_BITS, TDES_KSN_MAX_COUNTER);
  if (next === undefined) return err('POS_ERR_KSN_EXHAUSTED', 'the TDES DUKPT counter is at its maximum');
  return ok({ ksn: withTdesCounter(ksn, next & TDES_COUNTER_MASK) });
}

/** The TDES KSN with its 21 counter bits cleared (the initial KSN of the device). */
export function tdesInitialKsn(ksn: Uint8Array): Uint8Array {
  return withTdesCounter(ksn, 0);
}

/** Reads the 21-bit counter of any 10-byte TDES KSN (no validation). */
export function tdesCounterOf(ksn: Uint8Array): number {
  return readTdesCounter(ksn);
}
