/**
 * TDES-ECB for formats 0-3 PIN blocks under a TDES key (as TDES DUKPT readers send them). The key and
 * block lengths were checked by the caller, so a failure here is a bug.
 */
import { tdesEcbDecrypt, tdesEcbEncrypt, PosError } from '@pos/shared';

export function tdesEncryptEcb(key: Uint8Array, block: Uint8Array): Uint8Array {
  const r = tdesEcbEncrypt(key, block);
  if (!r.ok) throw new PosError(r.code, r.detail);
  return r.data;
}

export function tdesDecryptEcb(key: Uint8Array, block: Uint8Array): Uint8Array {
  const r = tdesEcbDecrypt(key, block);
  if (!r.ok) throw new PosError(r.code, r.detail);
  return r.data;
}
