// Property tests for ISO 9564-1 PIN blocks: round trips, rejection of every corruption of the
// control, length, fill and PIN-digit nibbles, no throw on arbitrary input, wrong PAN / wrong key.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decipherPinBlock4,
  decodePinBlock,
  decodePinField4,
  encipherPinField4,
  encodePanField4,
  encodePinBlock,
  PIN_MAX_DIGITS,
  PIN_MIN_DIGITS,
  toHex,
  type DecodePinBlockRequest,
  type EncodePinBlockRequest,
  type Pan,
  type PinBlockFormat,
  type PinDigits,
  type Result,
} from '../src/index';
import {
  caseArb,
  clearField,
  decodeField,
  decodeRequest,
  encodeRequest,
  FORMATS,
  keyArb,
  mustEncode,
  panArb,
  PAN_RANGE,
  samePin,
  type Case,
} from './pinblock.arbitraries';
import { expectCode, isCodedError, nibbleAt, panBlockOracle, withNibble } from './pinblock.helpers';

const RUNS = { numRuns: 300 };

/** Fill nibbles a format rejects on decode (format 1 accepts every nibble, so it has none). */
const BAD_FILL: Readonly<Record<PinBlockFormat, readonly number[]>> = {
  0: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
  1: [],
  2: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
  3: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  4: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15],
};

function expectAll(results: Result[], code: Parameters<typeof expectCode>[1]): void {
  for (const r of results) expectCode(r, code);
}

describe.each(FORMATS)('format %i', (format) => {
  it('round trip: decode(encode(pin)) is the PIN', () => {
    fc.assert(
      fc.property(caseArb(format), (c) => {
        const block = mustEncode(c);
        expect(block.length).toBe(format === 4 ? 16 : 8);
        const decoded = decodePinBlock(decodeRequest(c, block));
        expect(samePin(decoded, c.pin)).toBe(true);
        if (decoded.ok) expect(decoded.pin).not.toBe(c.pin);
      }),
      RUNS,
    );
  });

  it('rejects every other value of the control nibble with POS_ERR_PINBLOCK_CONTROL_FIELD', () => {
    fc.assert(
      fc.property(caseArb(format), (c) => {
        const field = clearField(c);
        for (let v = 0; v < 16; v++) {
          if (v === format) continue;
          expectAll(decodeField(c, withNibble(field, 0, v)), 'POS_ERR_PINBLOCK_CONTROL_FIELD');
        }
      }),
      { numRuns: 100 },
    );
  });

  it('rejects every other value of the PIN length nibble', () => {
    fc.assert(
      fc.property(caseArb(format), (c) => {
        const field = clearField(c);
        const n = c.pin.length;
        for (let v = 0; v < 16; v++) {
          if (v === n) continue;
          const results = decodeField(c, withNibble(field, 1, v));
          if (v < PIN_MIN_DIGITS || v > PIN_MAX_DIGITS) {
            expectAll(results, 'POS_ERR_PINBLOCK_PIN_LENGTH');
          } else if (format === 1) {
            // Format 1 does not check its fill, so a shorter length, or a longer one over fill
            // digits that happen to be 0-9, decodes: but never to the original PIN.
            for (const r of results) expect(samePin(r, c.pin)).toBe(false);
          } else if (v < n) {
            // PIN digits now sit where fill is expected.
            expectAll(results, 'POS_ERR_PINBLOCK_FILLER');
          } else {
            // Fill digits (F, A-F or A) now sit where PIN digits are expected.
            expectAll(results, 'POS_ERR_PINBLOCK_PIN_NOT_NUMERIC');
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  const bad = BAD_FILL[format];
  if (bad.length > 0) {
    it('rejects a fill nibble the format does not allow with POS_ERR_PINBLOCK_FILLER', () => {
      fc.assert(
        fc.property(caseArb(format), fc.nat(), fc.constantFrom(...bad), (c, at, v) => {
          const n = c.pin.length;
          const index = 2 + n + (at % (14 - n));
          const field = clearField(c);
          expectAll(decodeField(c, withNibble(field, index, v)), 'POS_ERR_PINBLOCK_FILLER');
        }),
        RUNS,
      );
    });

    it('rejects every disallowed value at every fill position', () => {
      fc.assert(
        fc.property(caseArb(format), (c) => {
          const field = clearField(c);
          for (let i = 2 + c.pin.length; i < 16; i++) {
            for (const v of bad)
              expectAll(decodeField(c, withNibble(field, i, v)), 'POS_ERR_PINBLOCK_FILLER');
          }
        }),
        { numRuns: 20 },
      );
    });
  }

  it('rejects a PIN digit of A-F with POS_ERR_PINBLOCK_PIN_NOT_NUMERIC', () => {
    fc.assert(
      fc.property(caseArb(format), fc.nat(), fc.integer({ min: 10, max: 15 }), (c, at, v) => {
        const index = 2 + (at % c.pin.length);
        const field = clearField(c);
        expect(nibbleAt(field, index)).toBe(c.pin[index - 2]);
        expectAll(decodeField(c, withNibble(field, index, v)), 'POS_ERR_PINBLOCK_PIN_NOT_NUMERIC');
      }),
      RUNS,
    );
  });

  it('decode never throws on arbitrary bytes, PANs and keys: ok or a coded error', () => {
    const blockArb = fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.uint8Array({ minLength: 8, maxLength: 8 }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
    );
    const panAnyArb = fc.oneof(panArb(0, 25), fc.string({ maxLength: 25 }), panArb(...PAN_RANGE[format]));
    const keyAnyArb = fc.oneof(keyArb, fc.uint8Array({ maxLength: 40 }));
    fc.assert(
      fc.property(blockArb, panAnyArb, keyAnyArb, (block, pan, key) => {
        const req = { format, block, pan: pan as Pan, key } as DecodePinBlockRequest;
        const r = decodePinBlock(req);
        expect(isCodedError(r)).toBe(true);
        if (r.ok) {
          expect(r.pin.length).toBeGreaterThanOrEqual(PIN_MIN_DIGITS);
          expect(r.pin.length).toBeLessThanOrEqual(PIN_MAX_DIGITS);
          for (const d of r.pin) expect(d).toBeLessThanOrEqual(9);
        }
        if (format === 4) {
          expect(isCodedError(decodePinField4(block))).toBe(true);
          expect(isCodedError(decipherPinBlock4(key, block, pan as Pan))).toBe(true);
          expect(isCodedError(encipherPinField4(key, block, pan as Pan))).toBe(true);
          expect(isCodedError(encodePanField4(pan as Pan))).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('wrong PAN or wrong key never yields the original PIN', () => {
  it('format 0: a PAN with another PAN block', () => {
    fc.assert(
      fc.property(caseArb(0), panArb(8, 19), (c, pan2) => {
        fc.pre(toHex(panBlockOracle(pan2)) !== toHex(panBlockOracle(c.pan)));
        const r = decodePinBlock(decodeRequest(c, mustEncode(c), pan2));
        // Any difference lands on a fill F (filler error) or on a PIN digit (other or non-numeric digit).
        expect(samePin(r, c.pin)).toBe(false);
      }),
      RUNS,
    );
  });

  it('format 3: a PAN whose PAN block differs under a PIN digit', () => {
    // A difference that lands only on fill digits can turn A-F into other A-F digits, so format 3
    // cannot always detect a wrong PAN; one that touches a PIN digit always changes the PIN.
    fc.assert(
      fc.property(caseArb(3), panArb(8, 19), (c, pan2) => {
        const a = panBlockOracle(c.pan);
        const b = panBlockOracle(pan2);
        let touchesPin = false;
        for (let i = 2; i < 2 + c.pin.length; i++) touchesPin ||= nibbleAt(a, i) !== nibbleAt(b, i);
        fc.pre(touchesPin);
        const r = decodePinBlock(decodeRequest(c, mustEncode(c), pan2));
        expect(samePin(r, c.pin)).toBe(false);
      }),
      RUNS,
    );
  });

  it('format 4: another key', () => {
    fc.assert(
      fc.property(caseArb(4), keyArb, (c, key2) => {
        fc.pre(toHex(key2) !== toHex(c.key));
        const r = decodePinBlock(decodeRequest(c, mustEncode(c), c.pan, key2));
        expect(samePin(r, c.pin)).toBe(false);
      }),
      RUNS,
    );
  });

  it('format 4: a PAN with another PAN field', () => {
    fc.assert(
      fc.property(caseArb(4), panArb(1, 19), (c, pan2) => {
        const f1 = encodePanField4(c.pan);
        const f2 = encodePanField4(pan2);
        fc.pre(f1.ok && f2.ok && toHex(f1.panField) !== toHex(f2.panField));
        const r = decodePinBlock(decodeRequest(c, mustEncode(c), pan2));
        expect(samePin(r, c.pin)).toBe(false);
      }),
      RUNS,
    );
  });
});

describe('untrusted requests', () => {
  it('any value as a request: never throws, always ok or a coded error', () => {
    const fieldArb = fc.oneof(fc.anything(), fc.uint8Array({ maxLength: 20 }), fc.string({ maxLength: 20 }));
    const reqArb = fc.oneof(
      fc.anything(),
      fc.record({
        format: fc.oneof(fc.constantFrom(0, 1, 2, 3, 4), fc.anything()),
        pin: fieldArb,
        pan: fieldArb,
        key: fieldArb,
        fill: fieldArb,
        block: fieldArb,
      }),
    );
    fc.assert(
      fc.property(reqArb, (req) => {
        expect(isCodedError(encodePinBlock(req as EncodePinBlockRequest))).toBe(true);
        expect(isCodedError(decodePinBlock(req as DecodePinBlockRequest))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('a format outside 0-4 is POS_ERR_PINBLOCK_FORMAT_UNSUPPORTED', () => {
    const formatArb = fc.anything().filter((f) => !(f === 0 || f === 1 || f === 2 || f === 3 || f === 4));
    fc.assert(
      fc.property(formatArb, (format) => {
        const enc = { format, pin: new Uint8Array([1, 2, 3, 4]), pan: '4111111111111111' };
        const dec = { format, block: new Uint8Array(8), pan: '4111111111111111' };
        expectCode(
          encodePinBlock(enc as unknown as EncodePinBlockRequest),
          'POS_ERR_PINBLOCK_FORMAT_UNSUPPORTED',
        );
        expectCode(
          decodePinBlock(dec as unknown as DecodePinBlockRequest),
          'POS_ERR_PINBLOCK_FORMAT_UNSUPPORTED',
        );
      }),
      RUNS,
    );
  });
});

describe('error details', () => {
  /** Every error the PIN block code produces for one card holder's values. */
  function errorsFor(c: Case): Result[] {
    const out: Result[] = [];
    const field = clearField(c);
    const n = c.pin.length;
    out.push(...decodeField(c, withNibble(field, 0, (c.format + 1) % 16)));
    out.push(...decodeField(c, withNibble(field, 1, 3)));
    out.push(...decodeField(c, withNibble(field, 1, 13)));
    out.push(...decodeField(c, withNibble(field, 2, 0x0c)));
    if (c.format !== 1) out.push(...decodeField(c, withNibble(field, 2 + n, 5)));
    const block = mustEncode(c);
    out.push(decodePinBlock(decodeRequest(c, block.subarray(1))));
    const longPan = `${c.pan}${'0'.repeat(20 - c.pan.length)}` as Pan;
    const textPan = `${c.pan}X` as Pan;
    const longPin = Uint8Array.from({ length: PIN_MAX_DIGITS + 1 }, (_, i) => c.pin[i] ?? 0) as PinDigits;
    const badPin = Uint8Array.from(c.pin, (d, i) => (i === 0 ? 10 : d)) as PinDigits;
    const shortKey = c.key.subarray(1);
    if (c.format === 0 || c.format === 3 || c.format === 4) {
      out.push(decodePinBlock(decodeRequest(c, block, longPan)));
      out.push(decodePinBlock(decodeRequest(c, block, textPan)));
      out.push(encodePinBlock(encodeRequest({ ...c, pan: longPan })));
    }
    if (c.format === 4) {
      out.push(decodePinBlock(decodeRequest(c, block, c.pan, shortKey)));
      out.push(encodePinBlock(encodeRequest({ ...c, key: shortKey })));
    }
    out.push(encodePinBlock(encodeRequest({ ...c, pin: longPin })));
    out.push(encodePinBlock(encodeRequest({ ...c, pin: badPin })));
    if (c.format === 1 || c.format === 3 || c.format === 4) {
      out.push(encodePinBlock(encodeRequest({ ...c, fill: new Uint8Array(7) })));
    }
    if (c.format === 3) out.push(encodePinBlock(encodeRequest({ ...c, fill: new Uint8Array(8) })));
    return out;
  }

  it.each(FORMATS)('format %i: no detail contains the PIN, the PAN or the key', (format) => {
    fc.assert(
      fc.property(caseArb(format), (c) => {
        const pinText = Array.from(c.pin, String).join('');
        const keyHex = toHex(c.key);
        const errors = errorsFor(c);
        expect(errors.length).toBeGreaterThanOrEqual(format === 4 ? 20 : 8);
        for (const e of errors) {
          if (e.ok) return expect.fail('expected an error');
          expect(isCodedError(e)).toBe(true);
          expect(e.detail).not.toContain(pinText);
          if (c.pan.length >= 4) expect(e.detail).not.toContain(c.pan);
          expect(e.detail.toUpperCase()).not.toContain(keyHex);
          // No run of 4 digits at all: nothing PIN- or PAN-like.
          expect(e.detail).not.toMatch(/[0-9]{4}/);
        }
      }),
      { numRuns: 200 },
    );
  });
});
