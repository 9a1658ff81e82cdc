/**
 * An independent implementation of the parts of ISO 9564-1 format 4 and ANSI X9.24 DUKPT that pos-tools
 * exposes, written straight from the standards' text on top of node:crypto (OpenSSL) rather than
 * @noble/ciphers and our own DES. It shares no code with @pos/shared: the agreement tests compare the
 * two on random inputs, so a mistake would have to be made twice, the same way, to pass.
 */
import { createCipheriv } from 'node:crypto';

function ecb(algorithm: string, key: Uint8Array, data: Uint8Array): Buffer {
  const c = createCipheriv(algorithm, key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

export const aesEcb = (key: Uint8Array, data: Uint8Array): Buffer =>
  ecb(`aes-${key.length * 8}-ecb`, key, data);

/** Single DES as TDES with three equal keys (OpenSSL 3 keeps plain DES in its legacy provider). */
const desEcb = (key8: Uint8Array, data: Uint8Array): Buffer =>
  ecb('des-ede3-ecb', Buffer.concat([key8, key8, key8]), data);
/** Two-key TDES (K1 K2 K1). */
export const tdes2Ecb = (key16: Uint8Array, data: Uint8Array): Buffer => ecb('des-ede-ecb', key16, data);

const xorBuf = (a: Uint8Array, b: Uint8Array): Buffer => Buffer.from(a.map((x, i) => x ^ (b[i] ?? 0)));

// ---- ISO 9564-1:2017 format 4 ----

export function format4PinField(pin: string, random8: Uint8Array): Buffer {
  const nibbles = `4${pin.length.toString(16)}${pin}`.padEnd(16, 'A');
  return Buffer.concat([Buffer.from(nibbles, 'hex'), random8]);
}

export function format4PanField(pan: string): Buffer {
  const m = Math.max(0, pan.length - 12);
  const digits = pan.length < 12 ? pan.padStart(12, '0') : pan;
  return Buffer.from(`${m}${digits}`.padEnd(32, '0'), 'hex');
}

export function format4Encipher(key: Uint8Array, pin: string, pan: string, random8: Uint8Array): Buffer {
  const a = aesEcb(key, format4PinField(pin, random8));
  return aesEcb(key, xorBuf(a, format4PanField(pan)));
}

// ---- ANSI X9.24-3-2017 AES DUKPT, host side ----

export type AesKeyType = 'aes128' | 'aes192' | 'aes256';
const ALGORITHM: Record<AesKeyType, number> = { aes128: 2, aes192: 3, aes256: 4 };
const BITS: Record<AesKeyType, number> = { aes128: 128, aes192: 192, aes256: 256 };
export const USAGE_CODE: Record<string, number> = {
  'key-encryption': 0x0002,
  'pin-encryption': 0x1000,
  'mac-generation': 0x2000,
  'mac-verification': 0x2001,
  'mac-both': 0x2002,
  'data-encryption': 0x3000,
  'data-decryption': 0x3001,
  'data-both': 0x3002,
};

function derivationData(usage: number, type: AesKeyType, tail8: Uint8Array): Buffer {
  const d = Buffer.alloc(16);
  d[0] = 0x01;
  d.writeUInt16BE(usage, 2);
  d.writeUInt16BE(ALGORITHM[type], 4);
  d.writeUInt16BE(BITS[type], 6);
  Buffer.from(tail8).copy(d, 8);
  return d;
}

function deriveKey(derivationKey: Uint8Array, type: AesKeyType, data: Buffer): Buffer {
  const blocks: Buffer[] = [];
  for (let i = 1; i * 128 <= BITS[type] + 127; i++) {
    data[1] = i;
    blocks.push(aesEcb(derivationKey, data));
  }
  return Buffer.concat(blocks).subarray(0, BITS[type] / 8);
}

const typeOfKey = (key: Uint8Array): AesKeyType =>
  key.length === 16 ? 'aes128' : key.length === 24 ? 'aes192' : 'aes256';

export function aesDukptWorkingKey(
  bdk: Uint8Array,
  ksn12: Uint8Array,
  usage: string,
  workingType?: AesKeyType,
): Buffer {
  const bdkType = typeOfKey(bdk);
  const ksn = Buffer.from(ksn12);
  const initialKeyId = ksn.subarray(0, 8);
  const derivationId = ksn.subarray(4, 8);
  const counter = ksn.readUInt32BE(8);
  let key = deriveKey(bdk, bdkType, derivationData(0x8001, bdkType, initialKeyId));
  let partial = 0;
  for (let bit = 31; bit >= 0; bit--) {
    const mask = 2 ** bit;
    if (Math.floor(counter / mask) % 2 === 1) {
      partial += mask;
      const tail = Buffer.alloc(8);
      derivationId.copy(tail, 0);
      tail.writeUInt32BE(partial, 4);
      key = deriveKey(key, bdkType, derivationData(0x8000, bdkType, tail));
    }
  }
  const tail = Buffer.concat([derivationId, ksn.subarray(8, 12)]);
  const code = USAGE_CODE[usage];
  if (code === undefined) throw new Error(`unknown usage ${usage}`);
  return deriveKey(key, workingType ?? bdkType, derivationData(code, workingType ?? bdkType, tail));
}

// ---- ANSI X9.24-1-2009 TDES DUKPT, host side ----

const C0_MASK = Buffer.from('C0C0C0C000000000C0C0C0C000000000', 'hex');

function nonReversibleKeyGeneration(key: Uint8Array, register: Uint8Array): Buffer {
  const half = (k: Uint8Array): Buffer => {
    const left = k.subarray(0, 8);
    const right = k.subarray(8, 16);
    return xorBuf(desEcb(left, xorBuf(register, right)), right);
  };
  return Buffer.concat([half(xorBuf(key, C0_MASK)), half(key)]);
}

export function tdesDukptTransactionKey(bdk: Uint8Array, ksn10: Uint8Array): Buffer {
  const ksn = Buffer.from(ksn10);
  const base = Buffer.from(ksn);
  base[7] = (base[7] ?? 0) & 0xe0;
  base[8] = 0;
  base[9] = 0;
  const top8 = base.subarray(0, 8);
  let key: Uint8Array = Buffer.concat([tdes2Ecb(bdk, top8), tdes2Ecb(xorBuf(bdk, C0_MASK), top8)]);
  const counter = ((ksn[7] ?? 0) & 0x1f) * 65536 + (ksn[8] ?? 0) * 256 + (ksn[9] ?? 0);
  const register = Buffer.from(base.subarray(2, 10));
  for (let bit = 20; bit >= 0; bit--) {
    if ((counter >> bit) & 1) {
      const low = register.readUInt32BE(4) | (1 << bit);
      register.writeUInt32BE(low >>> 0, 4);
      key = nonReversibleKeyGeneration(key, register);
    }
  }
  return Buffer.from(key);
}

const VARIANT: Record<string, string> = {
  'pin-encryption': '00000000000000FF00000000000000FF',
  'mac-generation': '000000000000FF00000000000000FF00',
  'mac-verification': '00000000FF00000000000000FF000000',
  'data-encryption': '0000000000FF00000000000000FF0000',
  'data-decryption': '000000FF00000000000000FF00000000',
};

export function tdesDukptWorkingKey(bdk: Uint8Array, ksn10: Uint8Array, usage: string): Buffer {
  const mask = VARIANT[usage];
  if (mask === undefined) throw new Error(`no TDES variant for ${usage}`);
  const variant = xorBuf(tdesDukptTransactionKey(bdk, ksn10), Buffer.from(mask, 'hex'));
  if (!usage.startsWith('data-')) return variant;
  return Buffer.concat([
    tdes2Ecb(variant, variant.subarray(0, 8)),
    tdes2Ecb(variant, variant.subarray(8, 16)),
  ]);
}
