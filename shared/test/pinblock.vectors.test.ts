// Every vector of vectors/pinblock.json as its own test case (see vectors/README.md, pinblock.json).
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
} from '../src/index';
import {
  bytesOfNibbles,
  codeOfKind,
  expectCode,
  expectPin,
  hex,
  nibblesOf,
  panBlockOracle,
  panOf,
  pinOf,
  toHex,
} from './pinblock.helpers';
import vectors from './vectors/pinblock.json';

const f4 = vectors.format4;

describe('format 4 pin_field_encode', () => {
  it.each(f4.pin_field_encode)('#%# PIN field prefix, PIN of $pin.length digits', (v) => {
    const r = encodePinField4(pinOf(v.pin));
    if (!r.ok) return expect.fail(r.code);
    expect(r.pinField.length).toBe(16);
    // Only the first half is fixed; the second half is 8 random bytes.
    expect(toHex(r.pinField.subarray(0, 8))).toBe(v.pin_field_prefix);
  });
});

describe('format 4 pin_field_decode', () => {
  it.each(f4.pin_field_decode)('#%# decodes the PIN field', (v) => {
    expectPin(decodePinField4(hex(v.pin_field)), v.pin);
  });
});

describe('format 4 pin_field_decode_errors', () => {
  it.each(f4.pin_field_decode_errors)('#%# rejects with $error', (v) => {
    expectCode(decodePinField4(hex(v.pin_field)), codeOfKind(v.error));
  });
});

describe('format 4 pan_field', () => {
  it.each(f4.pan_field)('#%# PAN field, PAN of $pan.length digits', (v) => {
    const r = encodePanField4(panOf(v.pan));
    if (!r.ok) return expect.fail(r.code);
    expect(toHex(r.panField)).toBe(v.pan_field);
  });
});

describe('format 4 encipher', () => {
  it.each(f4.encipher)('$id: encode, encipher and decipher back', (v) => {
    const key = hex(v.key);
    expect(key.length * 8).toBe(v.key_bits);
    const pinField = hex(v.pin_field);
    const pan = panOf(v.pan);
    const fill = pinField.slice(8);

    const field = encodePinField4(pinOf(v.pin), fill);
    if (!field.ok) return expect.fail(field.code);
    expect(toHex(field.pinField)).toBe(v.pin_field);

    if (v.pan_field !== undefined) {
      const panField = encodePanField4(pan);
      if (!panField.ok) return expect.fail(panField.code);
      expect(toHex(panField.panField)).toBe(v.pan_field);
    }

    const enciphered = encipherPinField4(key, pinField, pan);
    if (!enciphered.ok) return expect.fail(enciphered.code);
    expect(toHex(enciphered.block)).toBe(v.pin_block);

    const encoded = encodePinBlock({ format: 4, pin: pinOf(v.pin), pan, key, fill });
    if (!encoded.ok) return expect.fail(encoded.code);
    expect(toHex(encoded.block)).toBe(v.pin_block);

    const deciphered = decipherPinBlock4(key, hex(v.pin_block), pan);
    expectPin(deciphered, v.pin);
    if (deciphered.ok) expect(toHex(deciphered.pinField)).toBe(v.pin_field);
    expectPin(decodePinBlock({ format: 4, block: hex(v.pin_block), pan, key }), v.pin);
  });
});

describe('format 4 decipher', () => {
  it.each(f4.decipher)('$id: deciphers to the PIN and PIN field', (v) => {
    const key = hex(v.key);
    expect(key.length * 8).toBe(v.key_bits);
    const pan = panOf(v.pan);
    const deciphered = decipherPinBlock4(key, hex(v.pin_block), pan);
    expectPin(deciphered, v.pin);
    if (deciphered.ok) expect(toHex(deciphered.pinField)).toBe(v.pin_field);
    expectPin(decodePinBlock({ format: 4, block: hex(v.pin_block), pan, key }), v.pin);
    // And back: the deciphered PIN field enciphers to the same block.
    const again = encipherPinField4(key, hex(v.pin_field), pan);
    if (!again.ok) return expect.fail(again.code);
    expect(toHex(again.block)).toBe(v.pin_block);
  });
});

describe('format 4 decipher_errors', () => {
  it.each(f4.decipher_errors)('#%# rejects with $error', (v) => {
    const key = hex(v.key);
    expect(key.length * 8).toBe(v.key_bits);
    const pan = panOf(v.pan);
    const code = codeOfKind(v.error);
    expectCode(decipherPinBlock4(key, hex(v.pin_block), pan), code);
    expectCode(decodePinBlock({ format: 4, block: hex(v.pin_block), pan, key }), code);
  });
});

describe('format 0 vectors', () => {
  it.each(vectors.format0.vectors)('#%# encode and decode ($pin.length-digit PIN)', (v) => {
    const pan = panOf(v.pan);
    const encoded = encodePinBlock({ format: 0, pin: pinOf(v.pin), pan });
    if (!encoded.ok) return expect.fail(encoded.code);
    expect(toHex(encoded.block)).toBe(v.pin_block);
    expectPin(decodePinBlock({ format: 0, block: hex(v.pin_block), pan }), v.pin);
    if (v.pan_block !== undefined) {
      expect(toHex(panBlockOracle(v.pan))).toBe(v.pan_block);
      // The clear PIN field of format 0 is the format 2 block with control 0, so
      // format 0 block XOR that field is the PAN block the source publishes.
      const f2 = encodePinBlock({ format: 2, pin: pinOf(v.pin) });
      if (!f2.ok) return expect.fail(f2.code);
      const field = f2.block.slice();
      field[0] = (field[0] ?? 0) & 0x0f;
      expect(toHex(xor(encoded.block, field))).toBe(v.pan_block);
    }
  });
});

describe('format 0 decode_errors', () => {
  it.each(vectors.format0.decode_errors)('#%# rejects with $error', (v) => {
    expectCode(
      decodePinBlock({ format: 0, block: hex(v.pin_block), pan: panOf(v.pan) }),
      codeOfKind(v.error),
    );
  });
});

describe('format 1 vectors', () => {
  it.each(vectors.format1.vectors)('#%# encode with the nonce as fill, and decode', (v) => {
    // openemv takes the fill digits from its nonce least significant byte first: nonce
    // 9A33C56F87A9CBED gives fill digits EDCBA9876... Our `fill` is read in order (high nibble of
    // the first byte first), so the equivalent `fill` is the nonce with its bytes reversed.
    const fill = hex(v.nonce).reverse();
    const encoded = encodePinBlock({ format: 1, pin: pinOf(v.pin), fill });
    if (!encoded.ok) return expect.fail(encoded.code);
    expect(toHex(encoded.block)).toBe(v.pin_block);
    expectPin(decodePinBlock({ format: 1, block: hex(v.pin_block) }), v.pin);
  });
});

describe('format 2 vectors', () => {
  it.each(vectors.format2.vectors)('#%# encode and decode ($pin.length-digit PIN)', (v) => {
    const encoded = encodePinBlock({ format: 2, pin: pinOf(v.pin) });
    if (!encoded.ok) return expect.fail(encoded.code);
    expect(toHex(encoded.block)).toBe(v.pin_block);
    expectPin(decodePinBlock({ format: 2, block: hex(v.pin_block) }), v.pin);
  });
});

describe('format 3 decode_vectors', () => {
  it.each(vectors.format3.decode_vectors)('#%# decode, and encode ($pin.length-digit PIN)', (v) => {
    const pan = panOf(v.pan);
    expectPin(decodePinBlock({ format: 3, block: hex(v.pin_block), pan }), v.pin);

    // Random fill: only the first 2 + N nibbles of the clear field are fixed; the rest must be A-F.
    const n = v.pin.length;
    const encoded = encodePinBlock({ format: 3, pin: pinOf(v.pin), pan });
    if (!encoded.ok) return expect.fail(encoded.code);
    const clear = nibblesOf(xor(encoded.block, panBlockOracle(v.pan)));
    const expectedClear = nibblesOf(xor(hex(v.pin_block), panBlockOracle(v.pan)));
    expect(clear.slice(0, 2 + n)).toEqual([3, n, ...Array.from(v.pin, Number)]);
    expect(clear.slice(0, 2 + n)).toEqual(expectedClear.slice(0, 2 + n));
    for (const x of clear.slice(2 + n)) expect(x).toBeGreaterThanOrEqual(0x0a);

    // With the vector's own fill digits as `fill`, encode reproduces the vector exactly.
    const fillNibbles = [...expectedClear.slice(2 + n), ...new Array<number>(2 + n).fill(0x0a)];
    const exact = encodePinBlock({ format: 3, pin: pinOf(v.pin), pan, fill: bytesOfNibbles(fillNibbles) });
    if (!exact.ok) return expect.fail(exact.code);
    expect(toHex(exact.block)).toBe(v.pin_block);
  });
});
