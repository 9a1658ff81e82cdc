/**
 * AES DUKPT, host side (ANSI X9.24-3-2017): what an acquirer's HSM computes from the BDK and a KSN.
 *
 * - Initial key: DeriveKey(BDK, usage 8001, the BDK's type, initial key ID)            (6.3, 6.5)
 * - Intermediate ("transaction") key for a counter: from the initial key, one derivation (usage 8000,
 *   the derivation key's type) per one-bit of the counter, most significant first      (6.1, 6.3.1)
 * - Working key: DeriveKey(intermediate key, usage, working key type, full counter)
 *
 * Every function copies what it needs and wipes its intermediate keys; the returned key is the
 * caller's to wipe.
 */
import type { AesKsn } from '../brand';
import { wipe } from '../bytes';
import { err, ok, type Result } from '../result';
import {
  deriveFor,
  deriveKeyTypeForLength,
  intermediateKey,
  isAesDukptKeyType,
  isDukptKeyUsage,
  isNotStronger,
  usageCode,
  USAGE_INITIAL_KEY,
  type AesDukptDeriveKeyType,
  type AesDukptKeyType,
  type DukptKeyUsage,
} from './aes-derive';
import { AES_IKID_LENGTH, aesKsnCounter, parseAesKsn } from './ksn';

/** Checks a BDK or initial key: an AES key of 16, 24 or 32 bytes. */
export function checkAesDerivationKey(
  key: Uint8Array,
  what: string,
): Result<{ type: AesDukptDeriveKeyType }> {
  const type = key instanceof Uint8Array ? deriveKeyTypeForLength(key.length) : undefined;
  if (type === undefined) {
    return err('POS_ERR_KEY_LENGTH', `the ${what} must be an AES key of 16, 24 or 32 bytes`);
  }
  return ok({ type });
}

/** Checks a requested working key against the derivation key's type. */
export function checkWorkingKeyRequest(
  usage: unknown,
  keyType: unknown,
  deriveType: AesDukptDeriveKeyType,
): Result<{ usage: DukptKeyUsage; keyType: AesDukptKeyType }> {
  if (!isDukptKeyUsage(usage)) {
    return err('POS_ERR_DUKPT_KEY_USAGE_UNKNOWN', 'the key usage is not one AES DUKPT defines');
  }
  const type = keyType === undefined ? deriveType : keyType;
  if (!isAesDukptKeyType(type)) {
    return err('POS_ERR_DUKPT_KEY_TYPE_UNKNOWN', 'the working-key type is not one AES DUKPT defines');
  }
  if (!isNotStronger(type, deriveType)) {
    return err(
      'POS_ERR_DUKPT_KEY_TOO_STRONG',
      `a ${type} working key cannot be derived from an ${deriveType} derivation key`,
    );
  }
  return ok({ usage, keyType: type });
}

/** Initial key (IK) for a device: DeriveKey(BDK, usage 8001, BDK's key type, 8-byte initial key ID). */
export function aesDukptInitialKey(bdk: Uint8Array, initialKeyId: Uint8Array): Result<{ key: Uint8Array }> {
  const bdkChecked = checkAesDerivationKey(bdk, 'BDK');
  if (!bdkChecked.ok) return bdkChecked;
  if (!(initialKeyId instanceof Uint8Array) || initialKeyId.length !== AES_IKID_LENGTH) {
    return err('POS_ERR_LENGTH', `the initial key ID must be ${AES_IKID_LENGTH} bytes`);
  }
  const type = bdkChecked.type;
  return ok({ key: deriveFor(bdk, USAGE_INITIAL_KEY, type, initialKeyId, 0) });
}

/**
 * The intermediate derivation key ("transaction key") for a KSN, derived from the BDK through the
 * initial key. It has the BDK's key type.
 */
export function aesDukptDerivationKey(bdk: Uint8Array, ksn: AesKsn): Result<{ key: Uint8Array }> {
  const ksnChecked = parseAesKsn(ksn);
  if (!ksnChecked.ok) return ksnChecked;
  const ik = aesDukptInitialKey(bdk, ksn.subarray(0, AES_IKID_LENGTH));
  if (!ik.ok) return ik;
  const type = deriveKeyTypeForLength(ik.key.length) ?? 'aes128';
  const key = intermediateKey(ik.key, type, ksn, aesKsnCounter(ksn));
  wipe(ik.key);
  return ok({ key });
}

/**
 * A working key for a KSN: the intermediate key for the KSN, then DeriveKey(intermediate key, usage,
 * working key type, full counter). `keyType` defaults to the BDK's own type (aes128/aes192/aes256).
 * POS_ERR_DUKPT_KEY_TOO_STRONG when the working key would be stronger than the BDK.
 */
export function aesDukptWorkingKey(opts: {
  bdk: Uint8Array;
  ksn: AesKsn;
  usage: DukptKeyUsage;
  keyType?: AesDukptKeyType;
}): Result<{ key: Uint8Array }> {
  const bdkChecked = checkAesDerivationKey(opts.bdk, 'BDK');
  if (!bdkChecked.ok) return bdkChecked;
  const request = checkWorkingKeyRequest(opts.usage, opts.keyType, bdkChecked.type);
  if (!request.ok) return request;
  const derivation = aesDukptDerivationKey(opts.bdk, opts.ksn);
  if (!derivation.ok) return derivation;
  const key = deriveFor(
    derivation.key,
    usageCode(request.usage),
    request.keyType,
    opts.ksn,
    aesKsnCounter(opts.ksn),
  );
  wipe(derivation.key);
  return ok({ key });
}
