/**
 * Test helpers for the DUKPT suites: byte helpers, a local ISO 9564 format-4 encipherment (so these tests
 * do not depend on the PIN-block module) and a host-side builder of AES DUKPT device states, which lets a
 * test jump a device to any counter without running the transactions before it.
 */
import { aesEncryptBlocks } from '../src/crypto/aes';
import { hex, toHex, xor } from '../src/bytes';
import { unwrap } from '../src/result';
import type { AesKsn } from '../src/brand';
import { aesDukptDerivationKey, parseAesKsn, type AesDukptDeviceState } from '../src/dukpt';

export { hex, toHex, unwrap };

export const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Right-pads with zero bytes to `length`. */
export function zeroPad(data: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  out.set(data);
  return out;
}

/** ISO 9564-1 format 4 encipherment from a plain PIN field and PAN field: AES(AES(pin) xor pan). */
export function format4Encipher(key: Uint8Array, pinField: Uint8Array, panField: Uint8Array): Uint8Array {
  const a = aesEncryptBlocks(key, pinField);
  return aesEncryptBlocks(key, xor(a, panField));
}

export function counterHex(counter: number): string {
  return counter.toString(16).toUpperCase().padStart(8, '0');
}

/** A parsed AES KSN from an 8-byte IKID (hex) and a counter. Throws if the counter is invalid. */
export function aesKsn(ikidHex: string, counter: number): AesKsn {
  return unwrap(parseAesKsn(hex(ikidHex + counterHex(counter)))).ksn;
}

export function popcount(n: number): number {
  let c = 0;
  for (let v = n >>> 0; v !== 0; v = (v & (v - 1)) >>> 0) c++;
  return c;
}

/**
 * The device state at next counter `counter`, built from the host side: register i is present exactly
 * when i is the lowest one-bit of the counter, or above it where the counter has a zero bit; it holds the
 * intermediate key for (counter with bits i..0 cleared) + 2^i.
 */
export function hostDeviceState(bdkHex: string, ikidHex: string, counter: number): AesDukptDeviceState {
  const bdk = hex(bdkHex);
  const type = bdk.length === 16 ? 'aes128' : bdk.length === 24 ? 'aes192' : 'aes256';
  const low = Math.log2((counter & -counter) >>> 0);
  const registers: (string | null)[] = [];
  for (let i = 0; i < 32; i++) {
    const bitClear = Math.floor(counter / 2 ** i) % 2 === 0;
    if (i === low || (i > low && bitClear)) {
      const base = counter - (counter % 2 ** (i + 1));
      registers.push(toHex(unwrap(aesDukptDerivationKey(bdk, aesKsn(ikidHex, base + 2 ** i))).key));
    } else {
      registers.push(null);
    }
  }
  return { version: 1, initialKeyId: ikidHex, deriveKeyType: type, counter, registers };
}
