/**
 * Card data as the reader hands it to the terminal: encrypted and authenticated under the AES DUKPT
 * data-encryption key (usage 3000, AES-128) of the transaction's KSN, so only the acquirer's host,
 * which holds the BDK, reads the PAN, and nobody can alter it or move it to another KSN unnoticed.
 * The terminal sees a masked PAN and a token, never the clear PAN.
 *
 * Plain record: deterministic CBOR map `{ "pan": text, "exp": "YYMM", "psn"?: uint }`. Encryption:
 * AES-GCM (NIST SP 800-38D) with a random 12-byte IV (nonce), the 12-byte KSN as additional
 * authenticated data, and a 16-byte tag appended to the ciphertext. Wire form: `{ iv, ct }` (both
 * bytes, `ct` = ciphertext || tag) next to the KSN.
 */
import { gcm } from '@noble/ciphers/aes.js';
import { z } from 'zod';
import { randomBytes, wipe } from './bytes';
import { cborDecode, cborEncodeSecret } from './cbor';
import { err, ok, PosError, type Result } from './result';

export const CardRecordSchema = z.strictObject({
  pan: z.string().regex(/^[0-9]{12,19}$/),
  exp: z.string().regex(/^[0-9]{2}(0[1-9]|1[0-2])$/),
  psn: z.number().int().min(0).max(99).optional(),
});
export type CardRecord = z.infer<typeof CardRecordSchema>;

export interface EncryptedCardData {
  /** The AES-GCM IV (nonce), 12 random bytes, never reused under one key. */
  readonly iv: Uint8Array;
  /** Ciphertext followed by the 16-byte GCM tag. */
  readonly ct: Uint8Array;
}

/** AES-GCM IV (nonce) size. */
export const CARD_DATA_IV_BYTES = 12;
/** AES-GCM tag size, at the end of `ct`. */
export const CARD_DATA_TAG_BYTES = 16;
/** The most ciphertext (tag included) accepted: a card record is well under 64 bytes. */
export const CARD_DATA_MAX_BYTES = 256;
/** The AES DUKPT KSN the card data is bound to (additional authenticated data). */
const KSN_BYTES = 12;

/**
 * Encrypts a card record under the data key of `ksn`, bound to that KSN. `iv` is for test vectors
 * only: a fixed IV under one key would break GCM.
 */
export function encryptCardData(
  dataKey: Uint8Array,
  card: CardRecord,
  ksn: Uint8Array,
  iv: Uint8Array = randomBytes(CARD_DATA_IV_BYTES),
): EncryptedCardData {
  if (ksn.length !== KSN_BYTES || iv.length !== CARD_DATA_IV_BYTES) {
    throw new PosError('POS_ERR_CARD_DATA_INVALID', 'the KSN must be 12 bytes and the IV 12 bytes');
  }
  const plain = cborEncodeSecret(card, CARD_DATA_MAX_BYTES - CARD_DATA_TAG_BYTES);
  try {
    const ct = gcm(dataKey, iv, ksn).encrypt(plain);
    return { iv, ct };
  } finally {
    wipe(plain);
  }
}

/**
 * Decrypts card data made by `encryptCardData` under the data key of `ksn`. Any change to the IV,
 * the ciphertext, the tag or the KSN, or another key, is refused (`POS_ERR_CARD_DATA_INVALID`); so
 * is a record that authenticates but does not have the expected fields.
 */
export function decryptCardData(
  dataKey: Uint8Array,
  data: EncryptedCardData,
  ksn: Uint8Array,
): Result<{ card: CardRecord }> {
  if (
    data.iv.length !== CARD_DATA_IV_BYTES ||
    data.ct.length <= CARD_DATA_TAG_BYTES ||
    data.ct.length > CARD_DATA_MAX_BYTES ||
    ksn.length !== KSN_BYTES
  ) {
    return err('POS_ERR_CARD_DATA_INVALID', 'the encrypted card data or its KSN has the wrong size');
  }
  if (dataKey.length !== 16 && dataKey.length !== 24 && dataKey.length !== 32) {
    return err('POS_ERR_KEY_LENGTH', 'the data key must be an AES key');
  }
  let plain: Uint8Array;
  try {
    plain = gcm(dataKey, data.iv, ksn).decrypt(data.ct);
  } catch {
    return err('POS_ERR_CARD_DATA_INVALID', 'the card data does not authenticate under this key and KSN');
  }
  try {
    const decoded = cborDecode(plain, CARD_DATA_MAX_BYTES);
    if (!decoded.ok) return err('POS_ERR_CARD_DATA_INVALID', 'the card record is not deterministic CBOR');
    const card = CardRecordSchema.safeParse(decoded.value);
    if (!card.success)
      return err('POS_ERR_CARD_DATA_INVALID', 'the card record does not have the expected fields');
    return ok({ card: card.data });
  } finally {
    wipe(plain);
  }
}

/** The masked PAN a terminal may show: first 6 and last 4 digits (PCI DSS 3.4), the rest `*`. */
export function maskPan(pan: string): string {
  if (pan.length < 13) return `${'*'.repeat(Math.max(0, pan.length - 4))}${pan.slice(-4)}`;
  return `${pan.slice(0, 6)}${'*'.repeat(pan.length - 10)}${pan.slice(-4)}`;
}
