/**
 * AES primitives used by PIN blocks and DUKPT: single blocks (ECB without padding) and CBC without
 * padding, from @noble/ciphers. Callers check key lengths first and get POS_ERR_KEY_LENGTH.
 */
import { cbc, ecb } from '@noble/ciphers/aes.js';

export const AES_BLOCK = 16;

export function isAesKeyLength(length: number): boolean {
  return length === 16 || length === 24 || length === 32;
}

/** AES-encrypts whole 16-byte blocks under `key` (ECB, no padding). */
export function aesEncryptBlocks(key: Uint8Array, data: Uint8Array): Uint8Array {
  return ecb(key, { disablePadding: true }).encrypt(data);
}

/** AES-decrypts whole 16-byte blocks under `key` (ECB, no padding). */
export function aesDecryptBlocks(key: Uint8Array, data: Uint8Array): Uint8Array {
  return ecb(key, { disablePadding: true }).decrypt(data);
}

export function aesCbcEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  return cbc(key, iv, { disablePadding: true }).encrypt(data);
}

export function aesCbcDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  return cbc(key, iv, { disablePadding: true }).decrypt(data);
}
