import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_MESSAGE_BYTES,
  MESSAGE_INFO,
  PosError,
  READER_MESSAGE_TYPES,
  cborDecode,
  cborEncode,
  decodeMessage,
  encodeMessage,
  hex,
  toHex,
} from '../src/index';
import { arbMessage } from './reader-arbitraries';

const codeOf = (bytes: Uint8Array): string => {
  const r = decodeMessage(bytes);
  return r.ok ? 'ok' : r.code;
};

describe('reader messages', () => {
  it('every message round-trips, and decodes to one byte string (deterministic)', () => {
    fc.assert(
      fc.property(arbMessage, (msg) => {
        const bytes = encodeMessage(msg);
        expect(bytes.length).toBeLessThanOrEqual(MESSAGE_INFO[msg.t].maxBytes);
        const back = decodeMessage(bytes);
        if (!back.ok) throw new Error(`${msg.t}: ${back.code} ${back.detail}`);
        expect(back.message).toEqual(msg);
        expect(toHex(encodeMessage(back.message))).toBe(toHex(bytes));
        // The reader codec agrees with shared's deterministic CBOR byte for byte.
        expect(toHex(cborEncode(msg))).toBe(toHex(bytes));
      }),
      { numRuns: 1000 },
    );
  });

  it('covers every message type in the arbitraries', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(arbMessage, (m) => {
        seen.add(m.t);
      }),
      { numRuns: 3000 },
    );
    expect([...seen].sort()).toEqual([...READER_MESSAGE_TYPES].sort());
  });

  it('never throws on arbitrary bytes, and refuses them with a reader code', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (bytes) => {
        const r = decodeMessage(bytes);
        if (!r.ok) expect(r.code).toMatch(/^POS_ERR_READER_MESSAGE_(MALFORMED|UNKNOWN|TOO_LARGE)$/);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on arbitrary CBOR values, nor on mutations of valid messages', () => {
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.integer(),
        fc.string(),
        fc.boolean(),
        fc.constant(null),
        fc.uint8Array({ maxLength: 40 }),
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(fc.constantFrom('t', 'id', 'digits', 'n', 'ct', 'x'), tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    fc.assert(
      fc.property(value, fc.constantFrom(...READER_MESSAGE_TYPES), (v, t) => {
        decodeMessage(cborEncode(v));
        if (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array))
          decodeMessage(cborEncode({ ...v, t }));
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(arbMessage, fc.nat(), fc.integer({ min: 0, max: 255 }), (msg, at, b) => {
        const bytes = encodeMessage(msg);
        bytes[at % bytes.length] = b;
        decodeMessage(bytes);
        decodeMessage(bytes.subarray(0, at % bytes.length));
      }),
      { numRuns: 1000 },
    );
  });

  it('a "__proto__" key is an unknown key, not a prototype', () => {
    // {t: "abort", id: 1, "__proto__": {t: "pin"}} and {id: 1, "__proto__": {t: "abort"}}
    expect(codeOf(hex('A361746561626F727462696401695F5F70726F746F5F5FA161746370696E'))).toBe(
      'POS_ERR_READER_MESSAGE_MALFORMED',
    );
    expect(codeOf(hex('A262696401695F5F70726F746F5F5FA161746561626F7274'))).toBe(
      'POS_ERR_READER_MESSAGE_MALFORMED',
    );
  });

  it('refuses an unknown type with POS_ERR_READER_MESSAGE_UNKNOWN', () => {
    expect(codeOf(cborEncode({ t: 'reboot', id: 1 }))).toBe('POS_ERR_READER_MESSAGE_UNKNOWN');
    expect(codeOf(cborEncode({ t: 'toString', id: 1 }))).toBe('POS_ERR_READER_MESSAGE_UNKNOWN');
    expect(codeOf(cborEncode({ t: '__proto__', id: 1 }))).toBe('POS_ERR_READER_MESSAGE_UNKNOWN');
  });

  it('refuses oversized messages with POS_ERR_READER_MESSAGE_TOO_LARGE, before and after decoding', () => {
    expect(codeOf(new Uint8Array(MAX_MESSAGE_BYTES + 1))).toBe('POS_ERR_READER_MESSAGE_TOO_LARGE');
    // A well-formed `started` padded past its type's limit (256 bytes) with an extra field.
    expect(codeOf(cborEncode({ t: 'started', id: 1, pad: new Uint8Array(300) }))).toBe(
      'POS_ERR_READER_MESSAGE_TOO_LARGE',
    );
    expect(() => encodeMessage({ t: 'error', id: 1, code: 'POS_ERR_X', detail: 'x'.repeat(600) })).toThrow(
      PosError,
    );
  });

  it('refuses non-deterministic encodings, extra keys, wrong shapes and wrong ids', () => {
    const good = encodeMessage({ t: 'abort', id: 1 });
    expect(toHex(good)).toBe('A261746561626F727462696401');
    expect(codeOf(good)).toBe('ok');
    // The same map with the id in a longer head (18 01), and with its keys in the wrong order.
    expect(codeOf(hex('A261746561626F72746269641801'))).toBe('POS_ERR_READER_MESSAGE_MALFORMED');
    expect(codeOf(hex('A2626964016174656162' + '6F7274'))).toBe('POS_ERR_READER_MESSAGE_MALFORMED');
    // Indefinite-length map, trailing byte, duplicate key.
    expect(codeOf(hex('BF61746561626F727462696401FF'))).toBe('POS_ERR_READER_MESSAGE_MALFORMED');
    expect(codeOf(hex('A261746561626F72746269640100'))).toBe('POS_ERR_READER_MESSAGE_MALFORMED');
    expect(codeOf(hex('A261746561626F7274617465616' + '26F7274'))).toBe('POS_ERR_READER_MESSAGE_MALFORMED');
    expect(codeOf(cborEncode({ t: 'abort', id: 1, extra: 1 }))).toBe('POS_ERR_READER_MESSAGE_MALFORMED');
    expect(codeOf(cborEncode({ t: 'abort', id: 0 }))).toBe('POS_ERR_READER_MESSAGE_MALFORMED');
    expect(codeOf(cborEncode({ t: 'tamper', id: 3 }))).toBe('POS_ERR_READER_MESSAGE_MALFORMED');
    expect(codeOf(cborEncode([1, 2]))).toBe('POS_ERR_READER_MESSAGE_MALFORMED');
    expect(codeOf(cborEncode({ id: 1 }))).toBe('POS_ERR_READER_MESSAGE_MALFORMED');
    expect(codeOf(new Uint8Array(0))).toBe('POS_ERR_READER_MESSAGE_MALFORMED');
    expect(codeOf(cborEncode({ t: 'pin', id: 1, digits: Uint8Array.of(1, 2, 3, 10) }))).toBe(
      'POS_ERR_READER_MESSAGE_MALFORMED',
    );
    expect(codeOf(cborEncode({ t: 'pin', id: 1, digits: '1234' }))).toBe('POS_ERR_READER_MESSAGE_MALFORMED');
    expect(codeOf(cborEncode({ t: 'start', id: 1, amount: 100, currency: 'eur' }))).toBe(
      'POS_ERR_READER_MESSAGE_MALFORMED',
    );
    expect(cborDecode(good).ok).toBe(true);
  });

  it('PIN digits: decoded into a fresh array (the input can be wiped), refused ones are wiped', () => {
    const digits = Uint8Array.of(1, 2, 3, 4);
    const bytes = encodeMessage({ t: 'pin', id: 7, digits });
    const r = decodeMessage(bytes);
    if (!r.ok || r.message.t !== 'pin') throw new Error('pin did not decode');
    bytes.fill(0);
    expect([...r.message.digits]).toEqual([1, 2, 3, 4]);
    expect(r.message.digits.buffer).not.toBe(bytes.buffer);
  });
});
