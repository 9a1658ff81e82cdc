/** KSN parsing and advance rules for AES DUKPT (16 one-bits, max 0xFFFF0000) and TDES DUKPT (10, 0x1FF800). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  aesKsnCounter,
  nextAesKsn,
  nextTdesKsn,
  parseAesKsn,
  parseTdesKsn,
  tdesKsnCounter,
  type AesDukptKeyType,
  AES_DUKPT_KEY_TYPES,
  DUKPT_KEY_USAGES,
} from '../src/dukpt';
import { counterHex, hex, popcount, toHex, unwrap } from './dukpt-helpers';

const IKID = '1234567890123456';
const code = (r: { ok: boolean; code?: string }) => (r.ok ? 'ok' : r.code);
const aesKsnBytes = (counter: number) => hex(IKID + counterHex(counter));
const tdesKsnBytes = (counter: number) => {
  const bytes = hex('FFFF9876543210E00000');
  bytes[7] = ((bytes[7] ?? 0) & 0xe0) | (counter >>> 16);
  bytes[8] = (counter >>> 8) & 0xff;
  bytes[9] = counter & 0xff;
  return bytes;
};

/** A random counter with 1..maxBits one-bits among the low `width` bits. */
const counterArb = (width: number, maxBits: number) =>
  fc
    .uniqueArray(fc.integer({ min: 0, max: width - 1 }), { minLength: 1, maxLength: maxBits })
    .map((bits) => bits.reduce((acc, b) => acc + 2 ** b, 0));

describe('AES KSN', () => {
  it('parseAesKsn refuses a KSN that is not 12 bytes', () => {
    expect(code(parseAesKsn(new Uint8Array(11)))).toBe('POS_ERR_KSN_INVALID');
    expect(code(parseAesKsn(new Uint8Array(10)))).toBe('POS_ERR_KSN_INVALID');
  });
  it('counter 0 is POS_ERR_KSN_COUNTER_INVALID', () => {
    expect(code(parseAesKsn(aesKsnBytes(0)))).toBe('POS_ERR_KSN_COUNTER_INVALID');
  });
  it('a counter with 17 one-bits is POS_ERR_KSN_COUNTER_INVALID (the supplement lists 0001FFFF)', () => {
    expect(code(parseAesKsn(aesKsnBytes(0x0001ffff)))).toBe('POS_ERR_KSN_COUNTER_INVALID');
  });
  it('0xFFFF0000 is the largest valid counter: every larger 32-bit value has more than 16 one-bits', () => {
    expect(aesKsnCounter(unwrap(parseAesKsn(aesKsnBytes(0xffff0000))).ksn)).toBe(0xffff0000);
    for (let c = 0xffff0001; c <= 0xffffffff; c++) {
      if (popcount(c) <= 16) throw new Error(`counter ${counterHex(c)} has at most 16 one-bits`);
    }
    expect(code(parseAesKsn(aesKsnBytes(0xffffffff)))).toBe('POS_ERR_KSN_COUNTER_INVALID');
  });
  it('parseAesKsn copies its input', () => {
    const bytes = aesKsnBytes(1);
    const ksn = unwrap(parseAesKsn(bytes)).ksn;
    bytes[11] = 9;
    expect(aesKsnCounter(ksn)).toBe(1);
  });
  it('nextAesKsn after 0xFFFF0000 is POS_ERR_KSN_EXHAUSTED', () => {
    expect(code(nextAesKsn(unwrap(parseAesKsn(aesKsnBytes(0xffff0000))).ksn))).toBe('POS_ERR_KSN_EXHAUSTED');
  });
  it('property: nextAesKsn is strictly increasing, keeps the IKID, never yields more than 16 one-bits and skips only invalid counters', () => {
    fc.assert(
      fc.property(counterArb(32, 16), (counter) => {
        fc.pre(counter <= 0xffff0000 && counter !== 0xffff0000);
        const ksn = unwrap(parseAesKsn(aesKsnBytes(counter))).ksn;
        const next = unwrap(nextAesKsn(ksn)).ksn;
        const n = aesKsnCounter(next);
        expect(toHex(next).slice(0, 16)).toBe(IKID);
        expect(n).toBeGreaterThan(counter);
        expect(popcount(n)).toBeLessThanOrEqual(16);
        // Every counter skipped has more than 16 one-bits (checked on up to 2000 of them).
        const step = Math.max(1, Math.floor((n - counter - 1) / 2000));
        for (let c = counter + 1; c < n; c += step) expect(popcount(c)).toBeGreaterThan(16);
        if (n - counter > 1) expect(popcount(n - 1)).toBeGreaterThan(16);
      }),
      { numRuns: 300 },
    );
  });
  it('exports the eight key usages and eight key types', () => {
    expect([...DUKPT_KEY_USAGES]).toEqual([
      'key-encryption',
      'pin-encryption',
      'mac-generation',
      'mac-verification',
      'mac-both',
      'data-encryption',
      'data-decryption',
      'data-both',
    ]);
    expect([...AES_DUKPT_KEY_TYPES]).toEqual<AesDukptKeyType[]>([
      'tdes2',
      'tdes3',
      'aes128',
      'aes192',
      'aes256',
      'hmac128',
      'hmac192',
      'hmac256',
    ]);
  });
});

describe('TDES KSN', () => {
  it('parseTdesKsn refuses a KSN that is not 10 bytes', () => {
    expect(code(parseTdesKsn(new Uint8Array(12)))).toBe('POS_ERR_KSN_INVALID');
  });
  it('counter 0 and counters with 11 one-bits are POS_ERR_KSN_COUNTER_INVALID', () => {
    expect(code(parseTdesKsn(tdesKsnBytes(0)))).toBe('POS_ERR_KSN_COUNTER_INVALID');
    expect(code(parseTdesKsn(tdesKsnBytes(0x7ff)))).toBe('POS_ERR_KSN_COUNTER_INVALID');
  });
  it('0x1FF800 is the largest valid counter: every larger 21-bit value has more than 10 one-bits', () => {
    expect(tdesKsnCounter(unwrap(parseTdesKsn(tdesKsnBytes(0x1ff800))).ksn)).toBe(0x1ff800);
    for (let c = 0x1ff801; c <= 0x1fffff; c++) expect(popcount(c)).toBeGreaterThan(10);
  });
  it('nextTdesKsn after 0x1FF800 is POS_ERR_KSN_EXHAUSTED', () => {
    expect(code(nextTdesKsn(unwrap(parseTdesKsn(tdesKsnBytes(0x1ff800))).ksn))).toBe('POS_ERR_KSN_EXHAUSTED');
  });
  it('nextTdesKsn keeps the device bits above the counter', () => {
    const ksn = unwrap(parseTdesKsn(tdesKsnBytes(0x0ffc00))).ksn;
    expect(toHex(unwrap(nextTdesKsn(ksn)).ksn)).toBe('FFFF9876543210F00000');
  });
  it('property: nextTdesKsn is strictly increasing, never yields more than 10 one-bits and skips only invalid counters', () => {
    fc.assert(
      fc.property(counterArb(21, 10), (counter) => {
        fc.pre(counter < 0x1ff800);
        const ksn = unwrap(parseTdesKsn(tdesKsnBytes(counter))).ksn;
        const next = unwrap(nextTdesKsn(ksn)).ksn;
        const n = tdesKsnCounter(next);
        expect(toHex(next).slice(0, 13)).toBe('FFFF9876543210E00000'.slice(0, 13));
        expect(n).toBeGreaterThan(counter);
        expect(popcount(n)).toBeLessThanOrEqual(10);
        for (let c = counter + 1; c < n; c++) expect(popcount(c)).toBeGreaterThan(10);
      }),
      { numRuns: 300 },
    );
  });
});
