/**
 * Card data as the reader hands it to the terminal: encrypted under the AES DUKPT data-encryption key
 * (usage 3000, AES-128) of the transaction's KSN, so only the acquirer's host, which holds the BDK,
 * reads the PAN. The terminal sees a masked PAN and a token, never the clear PAN.
 *
 * Plain record: deterministic CBOR map `{ "pan": text, "exp": "YYMM", "psn"?: uint }`, padded with
 * ISO/IEC 9797-1 padding method 2 (0x80 then zeros) to a whole number of blocks, AES-CBC with a random
 * 16-byte IV. Wire form: `{ iv, ct }` (both bytes) next to the KSN.
 */
import { z } from 'zod';
import { randomBytes, wipe } from './bytes';
import { cborDecode, cborEncodeSecret } from './cbor';
import { aesCbcDecrypt, aesCbcEncrypt } from './crypto/aes';
import { err, ok, type Result } from './result';

export const CardRecordSchema = z.strictObject({
  pan: z.string().regex(/^[0-9]{12,19}$/),
  exp: z.string().regex(/^[0-9]{2}(0[1-9]|1[0-2])$/),
  psn: z.number().int().min(0).max(99).optional(),
});
export type CardRecord = z.infer<typeof CardRecordSchema>;

export interface EncryptedCardData {
  readonly iv: Uint8Array;
  readonly ct: Uint8Array;
}

/** The most ciphertext accepted: a card record is well under 64 bytes. */
export const CARD_DATA_MAX_BYTES = 256;

export function encryptCardData(
  dataKey: Uint8Array,
  card: CardRecord,
  iv: Uint8Array = randomBytes(16),
): EncryptedCardData {
  const plain = cborEncodeSecret(card, CARD_DATA_MAX_BYTES);
  const padded = new Uint8Array((Math.floor(plain.length / 16) + 1) * 16);
  padded.set(plain);
  padded[plain.length] = 0x80;
  const ct = aesCbcEncrypt(dataKey, iv, padded);
  wipe(plain, padded);
  return { iv, ct };
}

export function decryptCardData(dataKey: Uint8Array, data: EncryptedCardData): Result<{ card: CardRecord }> {
  if (
    data.iv.length !== 16 ||
    data.ct.length === 0 ||
    data.ct.length % 16 !== 0 ||
    data.ct.length > CARD_DATA_MAX_BYTES
  ) {
    return err('POS_ERR_CARD_DATA_INVALID', 'the encrypted card data has the wrong size');
  }
  if (dataKey.length !== 16 && dataKey.length !== 24 && dataKey.length !== 32) {
    return err('POS_ERR_KEY_LENGTH', 'the data key must be an AES key');
  }
  const padded = aesCbcDecrypt(dataKey, data.iv, data.ct);
  try {
    let end = padded.length - 1;
    while (end >= 0 && padded[end] === 0) end--;
    if (end < 0 || padded[end] !== 0x80)
      return err('POS_ERR_CARD_DATA_INVALID', 'the card data does not decrypt under this key');
    const decoded = cborDecode(padded.subarray(0, end), CARD_DATA_MAX_BYTES);
    if (!decoded.ok) return err('POS_ERR_CARD_DATA_INVALID', 'the card data does not decrypt under this key');
    const card = CardRecordSchema.safeParse(decoded.value);
    if (!card.success)
      return err('POS_ERR_CARD_DATA_INVALID', 'the card record does not have the expected fields');
    return ok({ card: card.data });
  } finally {
    wipe(padded);
  }
}

/** The masked PAN a terminal may show: first 6 and last 4 digits (PCI DSS 3.4), the rest `*`. */
export function maskPan(pan: string): string {
  if (pan.length < 13) return `${'*'.repeat(Math.max(0, pan.length - 4))}${pan.slice(-4)}`;
  return `${pan.slice(0, 6)}${'*'.repeat(pan.length - 10)}${pan.slice(-4)}`;
}
