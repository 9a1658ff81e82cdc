/**
 * DES / TDES (FIPS 46-3) known-answer tests, plus a property test against Node's OpenSSL TDES as an
 * independent oracle (tests may use Node; shared/src may not).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  desDecryptBlock,
  desEncryptBlock,
  tdesCbcDecrypt,
  tdesCbcEncrypt,
  tdesEcbDecrypt,
  tdesEcbEncrypt,
} from '../src/crypto/des';
import dukpt from './vectors/dukpt.json';
import { hex, toHex, unwrap } from './dukpt-helpers';

const code = (r: { ok: boolean; code?: string }) => (r.ok ? 'ok' : r.code);

/** OpenSSL via Node: des-ede (2-key) / des-ede3 (3-key), ECB or CBC, no padding. */
function openssl(
  mode: 'ecb' | 'cbc',
  key: Uint8Array,
  data: Uint8Array,
  decrypt = false,
  iv?: Uint8Array,
): string {
  const name = `${key.length === 16 ? 'des-ede' : 'des-ede3'}-${mode}`;
  const c = decrypt ? createDecipheriv(name, key, iv ?? null) : createCipheriv(name, key, iv ?? null);
  c.setAutoPadding(false);
  return toHex(new Uint8Array([...c.update(data), ...c.final()]));
}

describe('DES known answers (FIPS 46-3)', () => {
  it.each([
    // The worked example of J. Orlin Grabbe, "The DES Algorithm Illustrated".
    ['133457799BBCDFF1', '0123456789ABCDEF', '85E813540F0AB405'],
    // NIST SP 800-17 variable-plaintext known-answer test (key 0101010101010101), first entries.
    ['0101010101010101', '8000000000000000', '95F8A5E5DD31D900'],
    ['0101010101010101', '4000000000000000', 'DD7F121CA5015619'],
    ['0101010101010101', '2000000000000000', '2E8653104F3834EA'],
    ['0101010101010101', '1000000000000000', '4BD388FF6CD81D4F'],
    // NIST SP 800-17 variable-key known-answer test (plaintext 0), first entries.
    ['8001010101010101', '0000000000000000', '95A8D72813DAA94D'],
    ['4001010101010101', '0000000000000000', '0EEC1487DD8C26D5'],
    // A widely published example whose ciphertext is all zero.
    ['0E329232EA6D0D73', '8787878787878787', '0000000000000000'],
    // FIPS 81 ECB example: "Now is the time for all " under 0123456789ABCDEF.
    ['0123456789ABCDEF', '4E6F772069732074', '3FA40E8A984D4815'],
    ['0123456789ABCDEF', '68652074696D6520', '6A271787AB8883F9'],
    ['0123456789ABCDEF', '666F7220616C6C20', '893D51EC4B563B53'],
  ])('key %s plaintext %s -> %s', (key, plain, cipher) => {
    expect(toHex(unwrap(desEncryptBlock(hex(key), hex(plain))).block)).toBe(cipher);
    expect(toHex(unwrap(desDecryptBlock(hex(key), hex(cipher))).block)).toBe(plain);
  });

  it('FIPS 81 CBC example: single DES is TDES with K1 = K2 = K3 (IV 1234567890ABCDEF)', () => {
    const key = hex('0123456789ABCDEF'.repeat(3));
    const plain = hex('4E6F77206973207468652074696D6520666F7220616C6C20');
    const out = unwrap(tdesCbcEncrypt(key, hex('1234567890ABCDEF'), plain)).data;
    expect(toHex(out)).toBe('E5C7CDDE872BF27C43E934008C389C0F683788499A7C05F6');
    expect(toHex(unwrap(tdesCbcDecrypt(key, hex('1234567890ABCDEF'), out)).data)).toBe(toHex(plain));
  });
});

describe('TDES against the TDES DUKPT vectors (no DUKPT code involved)', () => {
  const v = dukpt.tdes;
  it('IPEK left half = TDES-ECB(BDK, leftmost 8 bytes of the initial KSN)', () => {
    const out = unwrap(tdesEcbEncrypt(hex(v.bdk), hex(v.iksn).subarray(0, 8))).data;
    expect(toHex(out)).toBe(v.ik_verify.slice(0, 16));
  });
  it('IPEK right half = TDES-ECB(BDK xor C0C0C0C000000000C0C0C0C000000000, same block)', () => {
    const mask = hex('C0C0C0C000000000C0C0C0C000000000');
    const variant = hex(v.bdk).map((b, i) => b ^ (mask[i] ?? 0));
    const out = unwrap(tdesEcbEncrypt(variant, hex(v.iksn).subarray(0, 8))).data;
    expect(toHex(out)).toBe(v.ik_verify.slice(16));
  });
  it('encrypted_pinblock_verify[0] = TDES-ECB(transaction key xor PIN variant, pinblock)', () => {
    const key = hex(v.txn_key_verify[0] ?? '');
    key[7] = (key[7] ?? 0) ^ 0xff;
    key[15] = (key[15] ?? 0) ^ 0xff;
    expect(toHex(unwrap(tdesEcbEncrypt(key, hex(v.pinblock))).data)).toBe(v.encrypted_pinblock_verify[0]);
  });
});

describe('TDES properties (OpenSSL as oracle)', () => {
  const key = fc.oneof(
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
    fc.uint8Array({ minLength: 24, maxLength: 24 }),
  );
  const blocks = fc
    .integer({ min: 1, max: 4 })
    .chain((n) => fc.uint8Array({ minLength: 8 * n, maxLength: 8 * n }));
  const iv = fc.uint8Array({ minLength: 8, maxLength: 8 });

  it('property: TDES-ECB (2-key and 3-key) matches OpenSSL both ways', () => {
    fc.assert(
      fc.property(key, blocks, (k, data) => {
        const enc = unwrap(tdesEcbEncrypt(k, data)).data;
        expect(toHex(enc)).toBe(openssl('ecb', k, data));
        expect(toHex(unwrap(tdesEcbDecrypt(k, enc)).data)).toBe(toHex(data));
        expect(toHex(unwrap(tdesEcbDecrypt(k, data)).data)).toBe(openssl('ecb', k, data, true));
      }),
      { numRuns: 150 },
    );
  });

  it('property: TDES-CBC matches OpenSSL both ways', () => {
    fc.assert(
      fc.property(key, iv, blocks, (k, i, data) => {
        const enc = unwrap(tdesCbcEncrypt(k, i, data)).data;
        expect(toHex(enc)).toBe(openssl('cbc', k, data, false, i));
        expect(toHex(unwrap(tdesCbcDecrypt(k, i, enc)).data)).toBe(toHex(data));
      }),
      { numRuns: 100 },
    );
  });

  it('property: single DES = TDES with three equal keys, and decrypt inverts encrypt', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        (k, b) => {
          const single = unwrap(desEncryptBlock(k, b)).block;
          const triple = unwrap(tdesEcbEncrypt(new Uint8Array([...k, ...k, ...k]), b)).data;
          expect(toHex(single)).toBe(toHex(triple));
          expect(toHex(unwrap(desDecryptBlock(k, single)).block)).toBe(toHex(b));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('parity bits are ignored (flipping bit 8 of every key byte changes nothing)', () => {
    const k = hex('133457799BBCDFF1');
    const flipped = k.map((b) => b ^ 1);
    const b = hex('0123456789ABCDEF');
    expect(toHex(unwrap(desEncryptBlock(flipped, b)).block)).toBe('85E813540F0AB405');
  });
});

describe('TDES input checks', () => {
  it('refuses keys that are not 16 or 24 bytes (and DES keys that are not 8)', () => {
    expect(code(tdesEcbEncrypt(new Uint8Array(8), new Uint8Array(8)))).toBe('POS_ERR_KEY_LENGTH');
    expect(code(tdesEcbDecrypt(new Uint8Array(32), new Uint8Array(8)))).toBe('POS_ERR_KEY_LENGTH');
    expect(code(tdesCbcEncrypt(new Uint8Array(15), new Uint8Array(8), new Uint8Array(8)))).toBe(
      'POS_ERR_KEY_LENGTH',
    );
    expect(code(desEncryptBlock(new Uint8Array(16), new Uint8Array(8)))).toBe('POS_ERR_KEY_LENGTH');
    expect(code(desDecryptBlock(new Uint8Array(7), new Uint8Array(8)))).toBe('POS_ERR_KEY_LENGTH');
  });
  it('refuses data that is not whole 8-byte blocks and IVs that are not 8 bytes', () => {
    expect(code(tdesEcbEncrypt(new Uint8Array(16), new Uint8Array(7)))).toBe('POS_ERR_DATA_LENGTH');
    expect(code(tdesCbcDecrypt(new Uint8Array(16), new Uint8Array(8), new Uint8Array(9)))).toBe(
      'POS_ERR_DATA_LENGTH',
    );
    expect(code(desEncryptBlock(new Uint8Array(8), new Uint8Array(16)))).toBe('POS_ERR_DATA_LENGTH');
    expect(code(tdesCbcEncrypt(new Uint8Array(16), new Uint8Array(16), new Uint8Array(8)))).toBe(
      'POS_ERR_LENGTH',
    );
  });
  it('empty data is zero blocks', () => {
    expect(unwrap(tdesEcbEncrypt(new Uint8Array(16), new Uint8Array(0))).data.length).toBe(0);
  });
});
