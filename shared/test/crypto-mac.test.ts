/**
 * AES-CMAC (cmac.json: RFC 4493 and NIST examples), TDES-CMAC (NIST SP 800-38B TDEA examples) and the
 * ANSI X9.19 retail MAC (ISO/IEC 9797-1 MAC algorithm 3), with the constant-time verify helpers.
 * The DUKPT-derived MAC vectors are in dukpt-tdes.test.ts and dukpt-aes.test.ts.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  aesCmac,
  aesCmacVerify,
  retailMac,
  retailMacVerify,
  tdesCmac,
  tdesCmacVerify,
} from '../src/crypto/mac';
import cmacVectors from './vectors/cmac.json';
import { hex, toHex, unwrap } from './dukpt-helpers';

const code = (r: { ok: boolean; code?: string }) => (r.ok ? 'ok' : r.code);

describe('AES-CMAC: cmac.json', () => {
  it.each(cmacVectors.vectors.map((v) => [v.id, v] as const))('%s', (_id, v) => {
    const message = hex(v.message);
    expect(message.length).toBe(v.message_length);
    expect(toHex(unwrap(aesCmac(hex(v.key), message)).mac)).toBe(v.mac);
    expect(unwrap(aesCmacVerify(hex(v.key), message, hex(v.mac))).valid).toBe(true);
  });
});

describe('AES-CMAC with AES-192 and AES-256 keys (NIST CSRC AES-CMAC examples, checked with OpenSSL 3)', () => {
  const m16 = '6BC1BEE22E409F96E93D7E117393172A';
  it.each([
    [
      'AES-192, empty',
      '8E73B0F7DA0E6452C810F32B809079E562F8EAD2522C6B7B',
      '',
      'D17DDF46ADAACDE531CAC483DE7A9367',
    ],
    [
      'AES-256, empty',
      '603DEB1015CA71BE2B73AEF0857D77811F352C073B6108D72D9810A30914DFF4',
      '',
      '028962F61B7BF89EFC6B551F4667D983',
    ],
    [
      'AES-256, 16 bytes',
      '603DEB1015CA71BE2B73AEF0857D77811F352C073B6108D72D9810A30914DFF4',
      m16,
      '28A7023F452E8F82BD4BF28D8C37C35C',
    ],
  ])('%s', (_name, key, message, mac) => {
    expect(toHex(unwrap(aesCmac(hex(key), hex(message))).mac)).toBe(mac);
  });
});

describe('TDES-CMAC (NIST SP 800-38B TDEA examples, checked with OpenSSL 3)', () => {
  const messages = [
    '',
    '6BC1BEE22E409F96',
    '6BC1BEE22E409F96E93D7E117393172AAE2D8A57',
    '6BC1BEE22E409F96E93D7E117393172AAE2D8A571E03AC9C9EB76FAC45AF8E51',
  ];
  const threeKey = '8AA83BF8CBDA10620BC1BF19FBB6CD58BC313D4A371CA8B5';
  const twoKey = '4CF15134A2850DD58A3D10BA80570D38';
  it.each([
    ['3-key, 0 bytes', threeKey, messages[0], 'B7A688E122FFAF95'],
    ['3-key, 8 bytes', threeKey, messages[1], '8E8F293136283797'],
    ['3-key, 20 bytes', threeKey, messages[2], '743DDBE0CE2DC2ED'],
    ['3-key, 32 bytes', threeKey, messages[3], '33E6B1092400EAE5'],
    ['2-key, 0 bytes', twoKey, messages[0], 'BD2EBF9A3BA00361'],
    ['2-key, 8 bytes', twoKey, messages[1], '4FF2AB813C53CE83'],
    ['2-key, 20 bytes', twoKey, messages[2], '62DD1B471902BD4E'],
    ['2-key, 32 bytes', twoKey, messages[3], '31B1E431DABC4EB8'],
  ])('%s', (_name, key, message, mac) => {
    expect(toHex(unwrap(tdesCmac(hex(key), hex(message ?? ''))).mac)).toBe(mac);
    expect(unwrap(tdesCmacVerify(hex(key), hex(message ?? ''), hex(mac))).valid).toBe(true);
  });

  it('property: a 2-key TDES key gives the same CMAC as the 3-key K1 K2 K1', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ maxLength: 40 }),
        (k, m) => {
          const k3 = new Uint8Array([...k, ...k.subarray(0, 8)]);
          expect(toHex(unwrap(tdesCmac(k, m)).mac)).toBe(toHex(unwrap(tdesCmac(k3, m)).mac));
        },
      ),
      { numRuns: 100 },
    );
  });
});

/** Retail MAC oracle from OpenSSL: single-DES CBC under K (as des-ede with K ‖ K), then D_K' and E_K. */
function retailMacOracle(key: Uint8Array, message: Uint8Array): string {
  const k = key.subarray(0, 8);
  const kp = key.subarray(8, 16);
  const padded = new Uint8Array(Math.max(8, Math.ceil(message.length / 8) * 8));
  padded.set(message);
  const cbc = createCipheriv('des-ede-cbc', new Uint8Array([...k, ...k]), new Uint8Array(8));
  cbc.setAutoPadding(false);
  const chained = new Uint8Array([...cbc.update(padded), ...cbc.final()]);
  const last = chained.subarray(chained.length - 8);
  const dec = createDecipheriv('des-ede-ecb', new Uint8Array([...kp, ...kp]), null);
  dec.setAutoPadding(false);
  const inner = new Uint8Array([...dec.update(last), ...dec.final()]);
  const enc = createCipheriv('des-ede-ecb', new Uint8Array([...k, ...k]), null);
  enc.setAutoPadding(false);
  return toHex(new Uint8Array([...enc.update(inner), ...enc.final()]));
}

describe('ANSI X9.19 retail MAC (ISO/IEC 9797-1 MAC algorithm 3, padding method 1)', () => {
  it('property: matches the algorithm built from OpenSSL DES, for messages of 0..40 bytes', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ maxLength: 40 }),
        (k, m) => {
          expect(toHex(unwrap(retailMac(k, m)).mac)).toBe(retailMacOracle(k, m));
        },
      ),
      { numRuns: 150 },
    );
  });
  it('truncate keeps the leftmost bytes', () => {
    const k = hex('0123456789ABCDEFFEDCBA9876543210');
    const m = hex('0102030405');
    const full = unwrap(retailMac(k, m)).mac;
    expect(toHex(unwrap(retailMac(k, m, { truncate: 4 })).mac)).toBe(toHex(full.subarray(0, 4)));
    expect(toHex(unwrap(retailMac(k, m, { truncate: 6 })).mac)).toBe(toHex(full.subarray(0, 6)));
  });
  it('an empty message is one zero block (padding method 1)', () => {
    const k = hex('0123456789ABCDEFFEDCBA9876543210');
    expect(toHex(unwrap(retailMac(k, new Uint8Array(0))).mac)).toBe(
      toHex(unwrap(retailMac(k, new Uint8Array(8))).mac),
    );
  });
});

describe('MAC verify helpers and input checks', () => {
  const aesKey = hex('2B7E151628AED2A6ABF7158809CF4F3C');
  const tdesKey = hex('0123456789ABCDEFFEDCBA9876543210');
  const message = hex('6BC1BEE22E409F96E93D7E117393172A');

  it('verify accepts the right tag, its truncations, and refuses a tag with one bit flipped', () => {
    for (const [mac, verify, key] of [
      [aesCmac, aesCmacVerify, aesKey],
      [tdesCmac, tdesCmacVerify, tdesKey],
      [retailMac, retailMacVerify, tdesKey],
    ] as const) {
      const tag = unwrap(mac(key, message)).mac;
      expect(unwrap(verify(key, message, tag)).valid).toBe(true);
      expect(unwrap(verify(key, message, tag.slice(0, 4))).valid).toBe(true);
      const bad = tag.slice();
      bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 1;
      expect(unwrap(verify(key, message, bad)).valid).toBe(false);
      expect(unwrap(verify(key, hex('00'), tag)).valid).toBe(false);
    }
  });
  it('refuses wrong key lengths with POS_ERR_KEY_LENGTH', () => {
    expect(code(aesCmac(new Uint8Array(15), message))).toBe('POS_ERR_KEY_LENGTH');
    expect(code(tdesCmac(new Uint8Array(8), message))).toBe('POS_ERR_KEY_LENGTH');
    expect(code(retailMac(new Uint8Array(24), message))).toBe('POS_ERR_KEY_LENGTH');
    expect(code(aesCmacVerify(new Uint8Array(0), message, new Uint8Array(16)))).toBe('POS_ERR_KEY_LENGTH');
  });
  it('refuses tag lengths outside 4..block with POS_ERR_LENGTH', () => {
    expect(code(aesCmac(aesKey, message, { truncate: 3 }))).toBe('POS_ERR_LENGTH');
    expect(code(aesCmac(aesKey, message, { truncate: 17 }))).toBe('POS_ERR_LENGTH');
    expect(code(tdesCmac(tdesKey, message, { truncate: 9 }))).toBe('POS_ERR_LENGTH');
    expect(code(retailMac(tdesKey, message, { truncate: 4.5 }))).toBe('POS_ERR_LENGTH');
    expect(code(retailMacVerify(tdesKey, message, new Uint8Array(2)))).toBe('POS_ERR_LENGTH');
    expect(code(aesCmacVerify(aesKey, message, new Uint8Array(20)))).toBe('POS_ERR_LENGTH');
  });
});
