import { gcm } from '@noble/ciphers/aes.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cborDecode,
  cborEncode,
  cborEncodeSecret,
  decryptCardData,
  encryptCardData,
  hex,
  maskPan,
  toHex,
  type CardRecord,
} from '../src/index';

describe('deterministic CBOR', () => {
  it('round-trips JSON-like values and encodes each one way', () => {
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.integer(),
        fc.string(),
        fc.boolean(),
        fc.constant(null),
        fc.uint8Array({ maxLength: 20 }),
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(fc.string({ maxLength: 6 }), tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    fc.assert(
      fc.property(value, (v) => {
        const bytes = cborEncode(v);
        const back = cborDecode(bytes);
        expect(back.ok).toBe(true);
        if (back.ok) expect(toHex(cborEncode(back.value))).toBe(toHex(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('encodes secrets (into wiped buffers of its own) to the same bytes, within a size limit', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string({ maxLength: 8 }),
          fc.oneof(fc.string(), fc.uint8Array({ maxLength: 30 }), fc.integer()),
        ),
        (v) => {
          expect(toHex(cborEncodeSecret(v, 4096))).toBe(toHex(cborEncode(v)));
        },
      ),
      { numRuns: 200 },
    );
    expect(() => cborEncodeSecret({ pan: '4111111111111111' }, 8)).toThrow(/POS_ERR_CBOR_TOO_LARGE/);
  });

  it('sorts map keys by their encoded bytes (RFC 8949 4.2.1)', () => {
    // "b" encodes as 61 62 and "aa" as 62 61 61: bytewise, "b" comes first.
    expect(toHex(cborEncode({ aa: 2, b: 1 }))).toBe('A261620162616102');
  });

  it.each([
    ['non-minimal integer', '1817'],
    ['indefinite-length array', '9F01FF'],
    ['duplicate map key', 'A2616101616102'],
    ['keys out of order', 'A262616102616201'],
    ['trailing bytes', '0101'],
    ['a tag', 'C11A514B67B0'],
    ['undefined', 'F7'],
    ['NaN', 'F97E00'],
    ['truncated', '6261'],
  ])('refuses %s', (_name, h) => {
    expect(cborDecode(hex(h))).toMatchObject({ ok: false, code: 'POS_ERR_CBOR_INVALID' });
  });

  it('refuses oversized input before parsing, and never throws on junk', () => {
    expect(cborDecode(new Uint8Array(100), 50)).toMatchObject({ ok: false, code: 'POS_ERR_CBOR_TOO_LARGE' });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(typeof cborDecode(bytes).ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });
});

describe('encrypted card data', () => {
  const card = fc.record({
    pan: fc.array(fc.constantFrom(...'0123456789'), { minLength: 12, maxLength: 19 }).map((d) => d.join('')),
    exp: fc
      .tuple(fc.integer({ min: 0, max: 99 }), fc.integer({ min: 1, max: 12 }))
      .map(([y, m]) => `${String(y).padStart(2, '0')}${String(m).padStart(2, '0')}`),
  }) as fc.Arbitrary<CardRecord>;
  const key = fc.constantFrom(16, 24, 32).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));

  const ksnArb = fc.uint8Array({ minLength: 12, maxLength: 12 });

  it('decrypts under the same key and KSN to the same record', () => {
    fc.assert(
      fc.property(card, key, ksnArb, (c, k, ksn) => {
        const enc = encryptCardData(k, c, ksn);
        expect(enc.iv.length).toBe(12);
        expect(decryptCardData(k, enc, ksn)).toEqual({ ok: true, card: c });
      }),
      { numRuns: 200 },
    );
  });

  it('refuses any change: another key, another KSN, a flipped bit of the IV, ciphertext or tag', () => {
    fc.assert(
      fc.property(
        card,
        key,
        key,
        ksnArb,
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        (c, k1, k2, ksn, i, bit) => {
          fc.pre(toHex(k1) !== toHex(k2));
          const enc = encryptCardData(k1, c, ksn);
          const refused = { ok: false, code: 'POS_ERR_CARD_DATA_INVALID' };
          expect(decryptCardData(k2, enc, ksn)).toMatchObject(refused);
          const ksn2 = ksn.slice();
          ksn2[i % 12] = (ksn2[i % 12] ?? 0) ^ (1 << bit);
          expect(decryptCardData(k1, enc, ksn2)).toMatchObject(refused);
          const ct = enc.ct.slice();
          ct[i % ct.length] = (ct[i % ct.length] ?? 0) ^ (1 << bit);
          expect(decryptCardData(k1, { iv: enc.iv, ct }, ksn)).toMatchObject(refused);
          const iv = enc.iv.slice();
          iv[i % 12] = (iv[i % 12] ?? 0) ^ (1 << bit);
          expect(decryptCardData(k1, { iv, ct: enc.ct }, ksn)).toMatchObject(refused);
          expect(
            decryptCardData(k1, { iv: enc.iv, ct: enc.ct.subarray(0, enc.ct.length - 1) }, ksn),
          ).toMatchObject(refused);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses bad sizes and junk without throwing', () => {
    const k = new Uint8Array(16);
    const ksn = new Uint8Array(12);
    for (const [iv, ct, n] of [
      [8, 32, 12],
      [16, 32, 12],
      [12, 16, 12],
      [12, 257, 12],
      [12, 32, 10],
    ] as const) {
      expect(
        decryptCardData(k, { iv: new Uint8Array(iv), ct: new Uint8Array(ct) }, ksn.subarray(0, n)),
      ).toMatchObject({ code: 'POS_ERR_CARD_DATA_INVALID' });
    }
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.uint8Array({ maxLength: 300 }),
        (iv, ct) => {
          expect(decryptCardData(k, { iv, ct }, ksn).ok).toBe(false);
        },
      ),
    );
  });

  it('is AES-GCM with the KSN as additional authenticated data (reproducible from its parts)', () => {
    const k = hex('00112233445566778899AABBCCDDEEFF');
    const ksn = hex('123456789012345600000001');
    const iv = hex('000102030405060708090A0B');
    const c: CardRecord = { pan: '4111111111111111', exp: '3012' };
    const enc = encryptCardData(k, c, ksn, iv);
    const plain = cborEncode(c);
    expect(toHex(enc.ct)).toBe(toHex(gcm(k, iv, ksn).encrypt(plain)));
    expect(enc.ct.length).toBe(plain.length + 16);
    // Under no AAD (or another) it does not authenticate.
    expect(() => gcm(k, iv).decrypt(enc.ct)).toThrow();
  });

  it('masks a PAN to its first six and last four digits', () => {
    expect(maskPan('4111111111111111')).toBe('411111******1111');
    expect(maskPan('4761739001010010')).toBe('476173******0010');
  });
});
