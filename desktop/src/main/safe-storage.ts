/**
 * Main's side of the key store's sealer: seals and unseals the terminal's device key with Electron
 * `safeStorage` when the core (in its utility process) asks (`seal` / `sealed` in
 * utility/protocol.ts). Pure over an injected `SafeStorageLike`, so it is tested under plain Node;
 * app.ts gives it Electron's `safeStorage`. See docs/electron.md, "Device key sealed with safeStorage".
 *
 * - Only the key store's own blob: `seal` takes exactly a 32-byte key and seals it with a purpose
 *   prefix (`pos-terminal:device-key:v1:`); `unseal` gives back only a blob that unseals to that prefix
 *   and a 32-byte key. Main is not a general encryption or decryption oracle for the utility process
 *   (safeStorage's one key also protects other secrets of the app's user).
 * - Refused (`POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE`) when `isEncryptionAvailable()` is false.
 *   On Linux, a `basic_text` backend (no keyring: the "encryption" key is a constant in Chromium's
 *   source) or `unknown` protects nothing: refused in a packaged (release) build; in a development
 *   build allowed with a warning in the log (development builds are reported as such in the evidence,
 *   and a production policy refuses them anyway).
 * - Never logs the data or an error's message; the log gets the operation and code.
 */
import type { SealAnswer, SealOp } from '../utility/protocol';

/** The part of Electron's `safeStorage` used here. */
export interface SafeStorageLike {
  isEncryptionAvailable(): boolean;
  encryptString(plainText: string): Buffer;
  decryptString(encrypted: Buffer): string;
  /** Linux only. */
  getSelectedStorageBackend?(): string;
}

export interface SealPolicy {
  readonly platform: NodeJS.Platform;
  /** A packaged (release) build refuses Linux's unprotected backends; a development build warns. */
  readonly packaged: boolean;
  readonly log: (line: string) => void;
}

export const DEVICE_KEY_PURPOSE = 'pos-terminal:device-key:v1:';
const KEY_BYTES = 32;
const SEALED_MAX_BYTES = 6144;
const UNPROTECTED_LINUX_BACKENDS: ReadonlySet<string> = new Set(['basic_text', 'unknown']);

type Protection = { ok: true; warning?: string } | { ok: false; detail: string };

/** Whether safeStorage protects the key on this machine (and the warning a development build logs). */
export function keyProtection(ss: SafeStorageLike, policy: Omit<SealPolicy, 'log'>): Protection {
  let available: boolean;
  try {
    available = ss.isEncryptionAvailable();
  } catch {
    available = false;
  }
  if (!available)
    return {
      ok: false,
      detail: 'Electron safeStorage is not available on this machine (no OS key protection)',
    };
  if (policy.platform !== 'linux') return { ok: true };
  let backend: string;
  try {
    backend = ss.getSelectedStorageBackend?.() ?? 'unknown';
  } catch {
    backend = 'unknown';
  }
  if (!UNPROTECTED_LINUX_BACKENDS.has(backend)) return { ok: true };
  const why = `safeStorage uses the '${backend}' backend (no keyring such as GNOME Keyring or KWallet is unlocked), which does not protect the key`;
  return policy.packaged
    ? { ok: false, detail: `${why}; a release build refuses it` }
    : { ok: true, warning: `${why}; allowed in this development build only` };
}

const unavailable = (detail: string): SealAnswer => ({
  ok: false,
  code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
  detail,
});
const unseal = (detail: string): SealAnswer => ({
  ok: false,
  code: 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL',
  detail,
});

/** Standard base64 that round-trips (Buffer.from ignores junk; this does not). */
function decode(data: string): Buffer | undefined {
  const b = Buffer.from(data, 'base64');
  return b.toString('base64') === data ? b : undefined;
}

/** Answers one seal request from the core. Never throws. */
export function answerSeal(ss: SafeStorageLike, policy: SealPolicy, op: SealOp, data: string): SealAnswer {
  const p = keyProtection(ss, policy);
  if (!p.ok) {
    policy.log(`keys: ${op} refused: ${p.detail}`);
    return unavailable(p.detail);
  }
  const bytes = decode(data);
  if (bytes === undefined)
    return op === 'seal' ? unavailable('not a device key') : unseal('not a sealed key');
  try {
    if (op === 'seal') {
      if (bytes.length !== KEY_BYTES) return unavailable('only a 32-byte device key is sealed');
      const sealed = ss.encryptString(`${DEVICE_KEY_PURPOSE}${bytes.toString('base64')}`);
      return { ok: true, data: sealed.toString('base64') };
    }
    if (bytes.length === 0 || bytes.length > SEALED_MAX_BYTES)
      return unseal('the sealed key has a wrong size');
    let text: string;
    try {
      text = ss.decryptString(bytes);
    } catch {
      policy.log('keys: unseal refused: the blob does not decrypt');
      return unseal('the sealed device key does not decrypt with this user’s OS key protection');
    }
    if (!text.startsWith(DEVICE_KEY_PURPOSE))
      return unseal('the blob is not a device key sealed by this app');
    const key = decode(text.slice(DEVICE_KEY_PURPOSE.length));
    if (key?.length !== KEY_BYTES) {
      key?.fill(0);
      return unseal('the blob is not a device key sealed by this app');
    }
    const out = key.toString('base64');
    key.fill(0);
    return { ok: true, data: out };
  } catch {
    policy.log(`keys: ${op} failed in safeStorage`);
    return unavailable(`Electron safeStorage failed to ${op} the key`);
  } finally {
    bytes.fill(0);
  }
}

/** The bridge's seal handler: `answerSeal` with the development warning logged once, not per use. */
export function createSealHandler(
  ss: SafeStorageLike,
  policy: SealPolicy,
): (op: SealOp, data: string) => SealAnswer {
  let warned = false;
  return (op, data) => {
    const p = keyProtection(ss, policy);
    if (p.ok && p.warning !== undefined && !warned) {
      warned = true;
      policy.log(`keys: warning: ${p.warning}`);
    }
    return answerSeal(ss, policy, op, data);
  };
}
