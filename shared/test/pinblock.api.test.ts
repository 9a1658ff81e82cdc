// Edge cases of the PIN block API: input checks and their order, caller-supplied fill, randomness.
import { describe, expect, it } from 'vitest';
import {
  decipherPinBlock4,
  decodePinBlock,
  decodePinField4,
  encipherPinField4,
  encodePanField4,
  encodePinBlock,
  encodePinField4,
  xor,
  type DecodePinBlockRequest,
  type EncodePinBlockRequest,
  type PinDigits,
} from '../src/index';
import {
  expectCode,
  expectPin,
  hex,
  nibblesOf,
  panBlockOracle,
  panOf,
  pinOf,
  toHex,
} from './pinblock.helpers';

const PAN = panOf('4111111111111111');
const KEY = hex('AF8CB133A78F8DC2D1359F18527593FB');
const FILL = hex('0123456789ABCDEF');

function encodeBlock(req: EncodePinBlockRequest): Uint8Array {
  const r = encodePinBlock(req);
  if (!r.ok) throw new Error(r.code);
  return r.block;
}

describe('unsupported formats', () => {
  it.each([5, -1, 1.5, Number.NaN, '0', '4', null, undefined, {}, [0]])('format %j', (format) => {
    const enc = { format, pin: pinOf('1234'), pan: PAN } as unknown as EncodePinBlockRequest;
    const dec = { format, block: new Uint8Array(8), pan: PAN } as unknown as DecodePinBlockRequest;
    expectCode(encodePinBlock(enc), 'POS_ERR_PINBLOCK_FORMAT_UNSUPPORTED');
    expectCode(decodePinBlock(dec), 'POS_ERR_PINBLOCK_FORMAT_UNSUPPORTED');
  });

  it.each([null, undefined, 0, 'x'])('request %j', (req) => {
    expectCode(
      encodePinBlock(req as unknown as EncodePinBlockRequest),
      'POS_ERR_PINBLOCK_FORMAT_UNSUPPORTED',
    );
    expectCode(
      decodePinBlock(req as unknown as DecodePinBlockRequest),
      'POS_ERR_PINBLOCK_FORMAT_UNSUPPORTED',
    );
  });
});

describe('PIN checks on encode', () => {
  const requests = (pin: PinDigits): EncodePinBlockRequest[] => [
    { format: 0, pin, pan: PAN },
    { format: 1, pin },
    { format: 2, pin },
    { format: 3, pin, pan: PAN },
    { format: 4, pin, pan: PAN, key: KEY },
  ];
  it.each([0, 3, 13, 16])('%i digits: POS_ERR_PIN_LENGTH', (n) => {
    for (const req of requests(new Uint8Array(n) as PinDigits))
      expectCode(encodePinBlock(req), 'POS_ERR_PIN_LENGTH');
    expectCode(encodePinField4(new Uint8Array(n) as PinDigits), 'POS_ERR_PIN_LENGTH');
  });
  it('a digit above 9: POS_ERR_PIN_NOT_NUMERIC', () => {
    const pin = new Uint8Array([1, 2, 10, 4]) as PinDigits;
    for (const req of requests(pin)) expectCode(encodePinBlock(req), 'POS_ERR_PIN_NOT_NUMERIC');
    expectCode(encodePinField4(pin), 'POS_ERR_PIN_NOT_NUMERIC');
  });
  it('encode does not change or keep the PIN buffer', () => {
    const pin = pinOf('987654');
    for (const req of requests(pin)) {
      const r = encodePinBlock(req);
      expect(r.ok).toBe(true);
    }
    expect(Array.from(pin)).toEqual([9, 8, 7, 6, 5, 4]);
  });
});

describe('PAN rules', () => {
  it.each(['12345678', '1234567890123456789'])('formats 0 and 3 accept the PAN "%s"', (text) => {
    for (const format of [0, 3] as const) {
      const pan = panOf(text);
      const block = encodeBlock({ format, pin: pinOf('1234'), pan });
      expectPin(decodePinBlock({ format, block, pan }), '1234');
    }
  });
  it.each(['', '1', '1234567', '12345678901234567890'])('formats 0 and 3 reject the PAN "%s"', (text) => {
    for (const format of [0, 3] as const) {
      const pan = panOf(text);
      expectCode(encodePinBlock({ format, pin: pinOf('1234'), pan }), 'POS_ERR_PAN_LENGTH');
      expectCode(decodePinBlock({ format, block: new Uint8Array(8), pan }), 'POS_ERR_PAN_LENGTH');
    }
  });
  it('format 0 PAN block with an 8-digit PAN: 7 digits, left-padded', () => {
    const block = encodeBlock({ format: 0, pin: pinOf('1234'), pan: panOf('12345674') });
    expect(toHex(panBlockOracle('12345674'))).toBe('0000000001234567');
    expect(toHex(xor(block, hex('041234FFFFFFFFFF')))).toBe('0000000001234567');
  });
  it('format 0: only the 12 digits before the check digit bind the block', () => {
    const a = encodeBlock({ format: 0, pin: pinOf('1234'), pan: panOf('9999991234567890123') });
    const b = encodeBlock({ format: 0, pin: pinOf('1234'), pan: panOf('1111111234567890127') });
    expect(toHex(a)).toBe(toHex(b));
  });
  it.each(['1', '12', '123456789012', '1234567890123456789'])('format 4 accepts the PAN "%s"', (text) => {
    const pan = panOf(text);
    const block = encodeBlock({ format: 4, pin: pinOf('1234'), pan, key: KEY });
    expectPin(decodePinBlock({ format: 4, block, pan, key: KEY }), '1234');
  });
  it.each(['', '12345678901234567890'])('format 4 rejects the PAN "%s"', (text) => {
    const pan = panOf(text);
    expectCode(encodePinBlock({ format: 4, pin: pinOf('1234'), pan, key: KEY }), 'POS_ERR_PAN_LENGTH');
    expectCode(encodePanField4(pan), 'POS_ERR_PAN_LENGTH');
    expectCode(decodePinBlock({ format: 4, block: new Uint8Array(16), pan, key: KEY }), 'POS_ERR_PAN_LENGTH');
  });
  it.each(['41111111x1111111', ' 4111111111111111', '4111-1111-1111-1111'])(
    'rejects the non-numeric PAN "%s"',
    (text) => {
      const pan = panOf(text);
      for (const format of [0, 3] as const) {
        expectCode(encodePinBlock({ format, pin: pinOf('1234'), pan }), 'POS_ERR_PAN_NOT_NUMERIC');
        expectCode(decodePinBlock({ format, block: new Uint8Array(8), pan }), 'POS_ERR_PAN_NOT_NUMERIC');
      }
      expectCode(encodePanField4(pan), 'POS_ERR_PAN_NOT_NUMERIC');
      expectCode(
        decodePinBlock({ format: 4, block: new Uint8Array(16), pan, key: KEY }),
        'POS_ERR_PAN_NOT_NUMERIC',
      );
    },
  );
  it('formats 1 and 2 ignore the PAN', () => {
    const one = encodeBlock({ format: 2, pin: pinOf('1234') });
    expect(toHex(one)).toBe('241234FFFFFFFFFF');
  });
  it('format 4 PAN field does not check Luhn', () => {
    const r = encodePanField4(panOf('4111111111111112'));
    expect(r.ok).toBe(true);
  });
});

describe('key checks (format 4)', () => {
  it.each([0, 8, 15, 17, 23, 25, 31, 33, 64])('%i-byte key: POS_ERR_KEY_LENGTH', (n) => {
    const key = new Uint8Array(n);
    const field = new Uint8Array(16);
    expectCode(encodePinBlock({ format: 4, pin: pinOf('1234'), pan: PAN, key }), 'POS_ERR_KEY_LENGTH');
    expectCode(decodePinBlock({ format: 4, block: new Uint8Array(16), pan: PAN, key }), 'POS_ERR_KEY_LENGTH');
    expectCode(encipherPinField4(key, field, PAN), 'POS_ERR_KEY_LENGTH');
    expectCode(decipherPinBlock4(key, field, PAN), 'POS_ERR_KEY_LENGTH');
  });
  it.each([16, 24, 32])('%i-byte key round trips', (n) => {
    const key = new Uint8Array(n).fill(7);
    const block = encodeBlock({ format: 4, pin: pinOf('55555'), pan: PAN, key });
    expectPin(decodePinBlock({ format: 4, block, pan: PAN, key }), '55555');
  });
});

describe('decode check order: block length, PAN, key, then the PIN field', () => {
  it('block length comes before the PAN', () => {
    for (const format of [0, 3] as const) {
      expectCode(
        decodePinBlock({ format, block: new Uint8Array(7), pan: panOf('1') }),
        'POS_ERR_PINBLOCK_BLOCK_LENGTH',
      );
    }
    expectCode(
      decodePinBlock({ format: 4, block: new Uint8Array(15), pan: panOf(''), key: new Uint8Array(1) }),
      'POS_ERR_PINBLOCK_BLOCK_LENGTH',
    );
  });
  it('PAN comes before the key', () => {
    expectCode(
      decodePinBlock({ format: 4, block: new Uint8Array(16), pan: panOf(''), key: new Uint8Array(1) }),
      'POS_ERR_PAN_LENGTH',
    );
  });
  it('key comes before the PIN field', () => {
    expectCode(
      decodePinBlock({ format: 4, block: new Uint8Array(16), pan: PAN, key: new Uint8Array(1) }),
      'POS_ERR_KEY_LENGTH',
    );
  });
  it.each([0, 1, 7, 9, 15, 16, 17, 32])(
    '%i-byte block: POS_ERR_PINBLOCK_BLOCK_LENGTH where the format expects another',
    (n) => {
      const block = new Uint8Array(n);
      if (n !== 8) {
        expectCode(decodePinBlock({ format: 0, block, pan: PAN }), 'POS_ERR_PINBLOCK_BLOCK_LENGTH');
        expectCode(decodePinBlock({ format: 1, block }), 'POS_ERR_PINBLOCK_BLOCK_LENGTH');
        expectCode(decodePinBlock({ format: 2, block }), 'POS_ERR_PINBLOCK_BLOCK_LENGTH');
        expectCode(decodePinBlock({ format: 3, block, pan: PAN }), 'POS_ERR_PINBLOCK_BLOCK_LENGTH');
      }
      if (n !== 16) {
        expectCode(decodePinBlock({ format: 4, block, pan: PAN, key: KEY }), 'POS_ERR_PINBLOCK_BLOCK_LENGTH');
        expectCode(decodePinField4(block), 'POS_ERR_PINBLOCK_BLOCK_LENGTH');
        expectCode(encipherPinField4(KEY, block, PAN), 'POS_ERR_PINBLOCK_BLOCK_LENGTH');
        expectCode(decipherPinBlock4(KEY, block, PAN), 'POS_ERR_PINBLOCK_BLOCK_LENGTH');
      }
    },
  );
  it('control field comes before PIN length, fill and digits', () => {
    expectCode(
      decodePinBlock({ format: 2, block: hex('1FFFFFFFFFFFFFFF') }),
      'POS_ERR_PINBLOCK_CONTROL_FIELD',
    );
  });
  it('PIN length comes before fill and digits', () => {
    expectCode(decodePinBlock({ format: 2, block: hex('2DAAAAAAAAAAAAAA') }), 'POS_ERR_PINBLOCK_PIN_LENGTH');
  });
  it('fill comes before digits', () => {
    expectCode(decodePinBlock({ format: 2, block: hex('24ABCDFFFFFFFFF0') }), 'POS_ERR_PINBLOCK_FILLER');
    expectCode(
      decodePinBlock({ format: 2, block: hex('24ABCDFFFFFFFFFF') }),
      'POS_ERR_PINBLOCK_PIN_NOT_NUMERIC',
    );
  });
  it('format 1 accepts any fill nibble; format 3 only A-F', () => {
    expectPin(decodePinBlock({ format: 1, block: hex('1412340123456789') }), '1234');
    const clear3 = hex('341234ABCDEFABC9');
    const block3 = xor(clear3, panBlockOracle(PAN));
    expectCode(decodePinBlock({ format: 3, block: block3, pan: PAN }), 'POS_ERR_PINBLOCK_FILLER');
  });
});

describe('caller-supplied fill', () => {
  it.each([0, 7, 9, 16])('%i bytes: POS_ERR_PINBLOCK_FILL_INVALID', (n) => {
    const fill = new Uint8Array(n).fill(0xaa);
    expectCode(encodePinBlock({ format: 1, pin: pinOf('1234'), fill }), 'POS_ERR_PINBLOCK_FILL_INVALID');
    expectCode(
      encodePinBlock({ format: 3, pin: pinOf('1234'), pan: PAN, fill }),
      'POS_ERR_PINBLOCK_FILL_INVALID',
    );
    expectCode(
      encodePinBlock({ format: 4, pin: pinOf('1234'), pan: PAN, key: KEY, fill }),
      'POS_ERR_PINBLOCK_FILL_INVALID',
    );
    expectCode(encodePinField4(pinOf('1234'), fill), 'POS_ERR_PINBLOCK_FILL_INVALID');
  });
  it('format 1 takes the fill nibbles in order, the first 14 - N', () => {
    expect(toHex(encodeBlock({ format: 1, pin: pinOf('1234'), fill: FILL }))).toBe('1412340123456789');
    expect(toHex(encodeBlock({ format: 1, pin: pinOf('123456789012'), fill: FILL }))).toBe(
      '1C12345678901201',
    );
  });
  it('format 3 rejects a used fill nibble outside A-F', () => {
    const fill = hex('ABCDEFABC9FFFFFF');
    expectCode(
      encodePinBlock({ format: 3, pin: pinOf('1234'), pan: PAN, fill }),
      'POS_ERR_PINBLOCK_FILL_INVALID',
    );
  });
  it('format 3 ignores unused fill nibbles', () => {
    // A 12-digit PIN uses only the first 2 fill nibbles.
    const fill = hex('AB00000000000000');
    const block = encodeBlock({ format: 3, pin: pinOf('123456789012'), pan: PAN, fill });
    expect(toHex(xor(block, panBlockOracle(PAN)))).toBe('3C123456789012AB');
  });
  it('format 4 puts the fill in the PIN field second half', () => {
    const r = encodePinField4(pinOf('1234'), FILL);
    if (!r.ok) return expect.fail(r.code);
    expect(toHex(r.pinField)).toBe('441234AAAAAAAAAA0123456789ABCDEF');
  });
  it('the caller fill buffer is not changed', () => {
    const fill = FILL.slice();
    encodeBlock({ format: 1, pin: pinOf('1234'), fill });
    encodeBlock({ format: 4, pin: pinOf('1234'), pan: PAN, key: KEY, fill });
    expect(toHex(fill)).toBe(toHex(FILL));
  });
});

describe('random fill', () => {
  it('format 1 and format 4 fill differ between encodings', () => {
    const a1 = encodeBlock({ format: 1, pin: pinOf('1234') });
    const b1 = encodeBlock({ format: 1, pin: pinOf('1234') });
    expect(toHex(a1)).not.toBe(toHex(b1));
    const a4 = encodeBlock({ format: 4, pin: pinOf('1234'), pan: PAN, key: KEY });
    const b4 = encodeBlock({ format: 4, pin: pinOf('1234'), pan: PAN, key: KEY });
    expect(toHex(a4)).not.toBe(toHex(b4));
  });

  it('format 3 fill digits are A-F and roughly uniform', () => {
    const counts = new Map<number, number>();
    const runs = 2000;
    for (let i = 0; i < runs; i++) {
      const block = encodeBlock({ format: 3, pin: pinOf('1234'), pan: PAN });
      const fill = nibblesOf(xor(block, panBlockOracle(PAN))).slice(6);
      for (const x of fill) counts.set(x, (counts.get(x) ?? 0) + 1);
    }
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([10, 11, 12, 13, 14, 15]);
    // 20,000 digits, 3,333 expected per value, standard deviation about 53: allow about 6 sigma.
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan(3000);
      expect(n).toBeLessThan(3670);
    }
  });
});

describe('outputs', () => {
  it('decipherPinBlock4 returns a PIN and PIN field the caller owns', () => {
    const block = encodeBlock({ format: 4, pin: pinOf('1234'), pan: PAN, key: KEY, fill: FILL });
    const r = decipherPinBlock4(KEY, block, PAN);
    if (!r.ok) return expect.fail(r.code);
    expect(toHex(r.pinField)).toBe('441234AAAAAAAAAA0123456789ABCDEF');
    expect(Array.from(r.pin)).toEqual([1, 2, 3, 4]);
  });
});
