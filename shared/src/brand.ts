/**
 * Branded types: values that share a representation but must never be mixed (a KSN is not a key, a
 * PAN is not a terminal id). A brand is added only by the parser that checked the value.
 */
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Primary account number: 1 to 19 decimal digits, as a string. Treat as secret: never log it. */
export type Pan = Brand<string, 'Pan'>;
/** PIN digits, one byte per digit (0-9), 4 to 12 of them. A byte buffer so it can be wiped. */
export type PinDigits = Brand<Uint8Array, 'PinDigits'>;
/** AES DUKPT key serial number: 8-byte initial key id and 4-byte transaction counter. */
export type AesKsn = Brand<Uint8Array, 'AesKsn'>;
/** TDES DUKPT key serial number: 10 bytes, the low 21 bits are the transaction counter. */
export type TdesKsn = Brand<Uint8Array, 'TdesKsn'>;
/** Secret key bytes. */
export type KeyBytes = Brand<Uint8Array, 'KeyBytes'>;
/** A single-use random value (challenge, transaction nonce). */
export type Nonce = Brand<Uint8Array, 'Nonce'>;
export type TerminalId = Brand<string, 'TerminalId'>;
export type MerchantId = Brand<string, 'MerchantId'>;
export type TenantId = Brand<string, 'TenantId'>;
export type ReaderSerial = Brand<string, 'ReaderSerial'>;
