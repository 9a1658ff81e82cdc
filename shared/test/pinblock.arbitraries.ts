// fast-check arbitraries and request builders shared by the PIN block property suites.
import fc from 'fast-check';
import {
  decipherPinBlock4,
  decodePinBlock,
  decodePinField4,
  encipherPinField4,
  encodePinBlock,
  encodePinField4,
  xor,
  type DecodePinBlockRequest,
  type EncodePinBlockRequest,
  type Pan,
  type PinBlockFormat,
  type PinDigits,
  type Result,
} from '../src/index';
import { bytesOfNibbles, panBlockOracle } from './pinblock.helpers';

export const FORMATS: readonly PinBlockFormat[] = [0, 1, 2, 3, 4];

/** PAN lengths each format accepts: 8..19 where the PAN is bound (0, 3; 1 and 2 ignore it), 1..19 for format 4. */
export const PAN_RANGE: Readonly<Record<PinBlockFormat, readonly [number, number]>> = {
  0: [8, 19],
  1: [8, 19],
  2: [8, 19],
  3: [8, 19],
  4: [1, 19],
};

export const digitsArb = (min: number, max: number): fc.Arbitrary<number[]> =>
  fc.array(fc.integer({ min: 0, max: 9 }), { minLength: min, maxLength: max });

export const pinArb: fc.Arbitrary<PinDigits> = digitsArb(4, 12).map((d) => Uint8Array.from(d) as PinDigits);

export const panArb = (min: number, max: number): fc.Arbitrary<Pan> =>
  digitsArb(min, max).map((d) => d.join('') as Pan);

export const keyArb: fc.Arbitrary<Uint8Array> = fc
  .constantFrom(16, 24, 32)
  .chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));

/** A valid caller-supplied fill for the format: 8 bytes, all nibbles A-F for format 3. */
export function fillArb(format: PinBlockFormat): fc.Arbitrary<Uint8Array> {
  if (format === 3) {
    return fc.array(fc.integer({ min: 10, max: 15 }), { minLength: 16, maxLength: 16 }).map(bytesOfNibbles);
  }
  return fc.uint8Array({ minLength: 8, maxLength: 8 });
}

export interface Case {
  readonly format: PinBlockFormat;
  readonly pin: PinDigits;
  readonly pan: Pan;
  readonly key: Uint8Array;
  readonly fill: Uint8Array | undefined;
}

/** A valid encode input for `format`; `fill` is absent half of the time (then the fill is random). */
export function caseArb(format: PinBlockFormat): fc.Arbitrary<Case> {
  const [min, max] = PAN_RANGE[format];
  return fc.record({
    format: fc.constant(format),
    pin: pinArb,
    pan: panArb(min, max),
    key: keyArb,
    fill: fc.option(fillArb(format), { nil: undefined }),
  });
}

export function encodeRequest(c: Case): EncodePinBlockRequest {
  const fill = c.fill === undefined ? {} : { fill: c.fill };
  switch (c.format) {
    case 0:
      return { format: 0, pin: c.pin, pan: c.pan };
    case 1:
      return { format: 1, pin: c.pin, ...fill };
    case 2:
      return { format: 2, pin: c.pin };
    case 3:
      return { format: 3, pin: c.pin, pan: c.pan, ...fill };
    case 4:
      return { format: 4, pin: c.pin, pan: c.pan, key: c.key, ...fill };
  }
}

export function decodeRequest(
  c: Case,
  block: Uint8Array,
  pan: Pan = c.pan,
  key: Uint8Array = c.key,
): DecodePinBlockRequest {
  switch (c.format) {
    case 0:
    case 3:
      return { format: c.format, block, pan };
    case 1:
    case 2:
      return { format: c.format, block };
    case 4:
      return { format: 4, block, pan, key };
  }
}

export function mustEncode(c: Case): Uint8Array {
  const r = encodePinBlock(encodeRequest(c));
  if (!r.ok) throw new Error(`encode failed: ${r.code}`);
  return r.block;
}

/** The 16-nibble PIN field XORed into a clear block: the oracle PAN block for 0 and 3, zeros for 1 and 2. */
function mask(c: Case): Uint8Array {
  return c.format === 0 || c.format === 3 ? panBlockOracle(c.pan) : new Uint8Array(8);
}

/**
 * The clear PIN field of a fresh encoding of `c`: for formats 0-3 the 8-byte block with the PAN
 * block removed, for format 4 the 16-byte plain PIN field.
 */
export function clearField(c: Case): Uint8Array {
  if (c.format === 4) {
    const r = c.fill === undefined ? encodePinField4(c.pin) : encodePinField4(c.pin, c.fill);
    if (!r.ok) throw new Error(`encodePinField4 failed: ${r.code}`);
    return r.pinField;
  }
  return xor(mustEncode(c), mask(c));
}

/**
 * Decodes a (possibly corrupted) clear PIN field along every route the format has: formats 0-3
 * re-apply the PAN block and call decodePinBlock; format 4 calls decodePinField4 on the clear
 * field, and enciphers it to decode through decipherPinBlock4 and decodePinBlock.
 */
export function decodeField(c: Case, field: Uint8Array): Result<{ pin: PinDigits }>[] {
  if (c.format !== 4) return [decodePinBlock(decodeRequest(c, xor(field, mask(c))))];
  const enciphered = encipherPinField4(c.key, field, c.pan);
  if (!enciphered.ok) throw new Error(`encipherPinField4 failed: ${enciphered.code}`);
  return [
    decodePinField4(field),
    decipherPinBlock4(c.key, enciphered.block, c.pan),
    decodePinBlock(decodeRequest(c, enciphered.block)),
  ];
}

export function samePin(r: Result<{ pin: PinDigits }>, pin: PinDigits): boolean {
  return r.ok && r.pin.length === pin.length && r.pin.every((d, i) => d === pin[i]);
}
