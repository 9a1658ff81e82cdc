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

  it('decrypts under the same key to the same record', () => {
    fc.assert(
      fc.property(card, key, (c, k) => {
        expect(decryptCardData(k, encryptCardData(k, c))).toEqual({ ok: true, card: c });
      }),
      { numRuns: 200 },
    );
  });

  it('refuses another key, a changed ciphertext and bad sizes without throwing', () => {
    fc.assert(
      fc.property(card, key, key, fc.nat(), (c, k1, k2, i) => {
        fc.pre(toHex(k1) !== toHex(k2));
        const enc = encryptCardData(k1, c);
        const other = decryptCardData(k2, enc);
        expect(other.ok && other.card.pan === c.pan).toBe(false);
        const ct = enc.ct.slice();
        ct[i % ct.length] = (ct[i % ct.length] ?? 0) ^ 0x01;
        const tampered = decryptCardData(k1, { iv: enc.iv, ct });
        expect(tampered.ok && tampered.card.pan === c.pan && tampered.card.exp === c.exp).toBe(false);
      }),
      { numRuns: 200 },
    );
    expect(
      decryptCardData(new Uint8Array(16), { iv: new Uint8Array(8), ct: new Uint8Array(16) }),
    ).toMatchObject({ code: 'POS_ERR_CARD_DATA_INVALID' });
    expect(
      decryptCardData(new Uint8Array(16), { iv: new Uint8Array(16), ct: new Uint8Array(15) }),
    ).toMatchObject({ code: 'POS_ERR_CARD_DATA_INVALID' });
  });

  it('masks a PAN to its first six and last four digits', () => {
    expect(maskPan('4111111111111111')).toBe('411111******1111');
    expect(maskPan('4761739001010010')).toBe('476173******0010');
  });
});
