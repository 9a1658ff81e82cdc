/**
 * DUKPT: AES DUKPT (ANSI X9.24-3-2017), host and device side, and TDES DUKPT (ANSI X9.24-1-2009), host
 * side. See docs/crypto.md for the standards, the code tables and the device-state contract.
 */
export {
  AES_DUKPT_KEY_TYPES,
  DUKPT_KEY_USAGES,
  type AesDukptKeyType,
  type DukptKeyUsage,
} from './aes-derive';
export { aesDukptDerivationKey, aesDukptInitialKey, aesDukptWorkingKey } from './aes';
export { AesDukptDevice, type AesDukptDeviceState } from './aes-device';
export { aesKsnCounter, nextAesKsn, nextTdesKsn, parseAesKsn, parseTdesKsn, tdesKsnCounter } from './ksn';
export {
  TDES_DUKPT_VARIANTS,
  tdesDukptIpek,
  tdesDukptTransactionKey,
  tdesDukptWorkingKey,
  type TdesDukptVariant,
} from './tdes';
