/**
 * Key storage behind one interface: the terminal's device private key (P-256, 32 bytes) and its
 * configuration (terminal id, back-end URL, paired reader, evidence counter).
 *
 * - Headless: `FileKeyStore`, one JSON file, mode 0600 (refused when looser or not owned by this
 *   user, or when it is a symlink), written atomically (temporary file in the same directory, fsync,
 *   rename, fsync of the directory), schema-parsed on load.
 * - Electron: the same file store given a `SecretSealer` that asks the main process to seal the key
 *   with Electron `safeStorage` (Keychain / DPAPI / libsecret or kwallet), so the key is encrypted at
 *   rest as well (see utility/sealer.ts and main/safe-storage.ts). The sealer is the only
 *   Electron-specific part; no Electron code is here.
 *
 * File format and migration (version 1 throughout): `deviceKey` is the key itself (base64url) when
 * the file has no `sealer` member, or its sealed form when `sealer` names the sealer that made it.
 * - A store without a sealer (headless) reads plain keys and refuses a sealed one
 *   (`POS_ERR_DESKTOP_KEYSTORE_UNSEAL`: only that sealer can read it).
 * - A store with a sealer reads a sealed key of its own sealer, refuses one of another sealer, and
 *   migrates a plain key: it seals it and rewrites the file before giving the key out. When sealing
 *   fails (safeStorage unavailable), the plain key is not used either: the sealer's refusal is the
 *   answer, and the file stays as it was.
 * - `cipher` is the name the member had before the sealer was wired (nothing wrote it but tests); it
 *   is read as `sealer`.
 *
 * The key comes back as a fresh Uint8Array the caller wipes after use.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { err, ok, parseBase64url, toBase64url, wipe, type Result } from '@pos/shared';
import { z } from 'zod';
import type { DesktopCode } from '../result';

export const ReaderConfigSchema = z.union([
  z.strictObject({ transport: z.literal('serial'), path: z.string().min(1).max(4096) }),
  z.strictObject({
    transport: z.enum(['serial', 'hid']),
    vendorId: z.number().int().min(0).max(0xffff),
    productId: z.number().int().min(0).max(0xffff),
  }),
]);
export type ReaderConfig = z.infer<typeof ReaderConfigSchema>;

export const TerminalConfigSchema = z.strictObject({
  /** The back-end's base URL. */
  backendUrl: z.url({ protocol: /^https?$/ }).max(2048),
  /** Assigned at enrollment. */
  terminalId: z.string().min(1).max(128).optional(),
  /** The paired reader's serial (pinned in the handshake). */
  readerSerial: z.string().min(1).max(64).optional(),
  reader: ReaderConfigSchema.optional(),
  /** The last evidence counter used (the next evidence uses a higher one). */
  evidenceCounter: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).default(0),
  /** The reader manufacturer CA roots the handshake trusts (base64url DER). */
  readerCaRoots: z
    .array(
      z
        .string()
        .regex(/^[A-Za-z0-9_-]+$/)
        .max(8192),
    )
    .max(8)
    .optional(),
  /** From enrollment: the merchant, the back-end's ticket keys and the attestation interval. */
  merchantId: z.string().min(1).max(128).optional(),
  jwks: z.strictObject({ keys: z.array(z.record(z.string(), z.unknown())).max(32) }).optional(),
  attestationIntervalS: z.number().int().positive().max(86_400).optional(),
  /** The last verdict the back-end gave (for `pos-terminal status`). */
  lastVerdict: z
    .strictObject({
      tier: z.string().max(32),
      at: z.number().int().nonnegative(),
      halted: z.boolean(),
      reasons: z.array(z.string().max(200)).max(50),
    })
    .optional(),
});
export type TerminalConfig = z.infer<typeof TerminalConfigSchema>;

/**
 * Encrypts the device key at rest (Electron: safeStorage in the main process). Headless: none.
 * Neither method throws or rejects: every failure is a coded result
 * (`POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE` when the protection cannot be used,
 * `POS_ERR_DESKTOP_KEYSTORE_UNSEAL` when a blob does not unseal). `unseal` returns fresh bytes the
 * caller wipes; neither method keeps or logs what it was given.
 */
export interface SecretSealer {
  /** Written into the key file next to the sealed key (`sealer`), e.g. `electron-safestorage`. */
  readonly name: string;
  seal(plain: Uint8Array): Promise<Result<{ sealed: Uint8Array }, DesktopCode>>;
  unseal(sealed: Uint8Array): Promise<Result<{ plain: Uint8Array }, DesktopCode>>;
}

export interface KeyStore {
  /** The device key (32 bytes, the caller wipes it), or undefined before enrollment. */
  getDeviceKey(): Promise<Result<{ secretKey: Uint8Array | undefined }, DesktopCode>>;
  putDeviceKey(secretKey: Uint8Array): Promise<Result<object, DesktopCode>>;
  getConfig(): Promise<Result<{ config: TerminalConfig | undefined }, DesktopCode>>;
  putConfig(config: TerminalConfig): Promise<Result<object, DesktopCode>>;
}

const b64 = z
  .string()
  .regex(/^[A-Za-z0-9_-]+$/)
  .max(4096);
const FileSchema = z.strictObject({
  version: z.literal(1),
  /** base64url of the key, or of its sealed form when `sealer` names one. */
  deviceKey: b64.optional(),
  sealer: z.string().min(1).max(64).optional(),
  /** The earlier name of `sealer` (read, never written). */
  cipher: z.string().min(1).max(64).optional(),
  config: TerminalConfigSchema.optional(),
});
type KeyFile = z.infer<typeof FileSchema>;

export const KEY_FILE_MAX = 64 * 1024;

/** A sealer's answer, or undefined when it threw or rejected (a sealer must not, but a bug must not crash the store). */
async function settle<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch {
    return undefined;
  }
}

export interface FileKeyStoreOptions {
  readonly path: string;
  /** Seals the device key at rest (the Electron app); without it the key is stored plain (0600). */
  readonly sealer?: SecretSealer;
}

export class FileKeyStore implements KeyStore {
  /** Read-modify-write updates run one at a time (no lost update between two puts). */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: FileKeyStoreOptions) {}

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Reads and checks the file: undefined when it does not exist. */
  async #load(): Promise<Result<{ file: KeyFile | undefined }, DesktopCode>> {
    const path = this.opts.path;
    let st;
    try {
      st = await lstat(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return ok({ file: undefined });
      return err('POS_ERR_DESKTOP_KEYSTORE_IO', 'the key file cannot be examined');
    }
    if (!st.isFile())
      return err('POS_ERR_DESKTOP_KEYSTORE_PERMISSIONS', 'the key file is not a regular file');
    if (process.platform !== 'win32') {
      if ((st.mode & 0o077) !== 0)
        return err(
          'POS_ERR_DESKTOP_KEYSTORE_PERMISSIONS',
          `the key file has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}; it must be 0600`,
        );
      const uid = process.getuid?.();
      if (uid !== undefined && st.uid !== uid)
        return err('POS_ERR_DESKTOP_KEYSTORE_PERMISSIONS', 'the key file belongs to another user');
    }
    if (st.size > KEY_FILE_MAX) return err('POS_ERR_DESKTOP_KEYSTORE_CORRUPT', 'the key file is too large');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      return err('POS_ERR_DESKTOP_KEYSTORE_IO', 'the key file cannot be read');
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return err('POS_ERR_DESKTOP_KEYSTORE_CORRUPT', 'the key file is not JSON');
    }
    const parsed = FileSchema.safeParse(json);
    if (!parsed.success) {
      const where = parsed.error.issues[0]?.path.map(String).join('.') ?? '';
      return err(
        'POS_ERR_DESKTOP_KEYSTORE_CORRUPT',
        `the key file does not have the expected shape (${where})`,
      );
    }
    return ok({ file: parsed.data });
  }

  /** Writes the whole file atomically: temp file (0600, exclusive), fsync, rename, fsync the directory. */
  async #save(file: KeyFile): Promise<Result<object, DesktopCode>> {
    const path = this.opts.path;
    const dir = dirname(path);
    const tmp = join(dir, `.${randomBytes(8).toString('hex')}.tmp`);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(file)}\n`, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    } catch {
      await unlink(tmp).catch(() => undefined);
      return err('POS_ERR_DESKTOP_KEYSTORE_IO', 'the key file cannot be written');
    }
    try {
      const d = await open(dir, constants.O_RDONLY);
      await d.sync().finally(() => d.close());
    } catch {
      // Some platforms cannot fsync a directory; the rename is done either way.
    }
    return ok({});
  }

  getDeviceKey(): Promise<Result<{ secretKey: Uint8Array | undefined }, DesktopCode>> {
    // Serialized with the writes: a migration (plain key sealed and written back) is a write.
    return this.#serial(() => this.#getDeviceKey());
  }

  async #getDeviceKey(): Promise<Result<{ secretKey: Uint8Array | undefined }, DesktopCode>> {
    const l = await this.#load();
    if (!l.ok) return l;
    const f = l.file;
    if (f?.deviceKey === undefined) return ok({ secretKey: undefined });
    const raw = parseBase64url(f.deviceKey);
    if (!raw.ok) return err('POS_ERR_DESKTOP_KEYSTORE_CORRUPT', 'the device key is not base64url');
    const sealer = this.opts.sealer;
    const sealedBy = f.sealer ?? f.cipher;
    let key: Uint8Array;
    if (sealedBy === undefined) {
      key = raw.bytes;
    } else if (sealer === undefined || sealer.name !== sealedBy) {
      wipe(raw.bytes);
      return err(
        'POS_ERR_DESKTOP_KEYSTORE_UNSEAL',
        sealer === undefined
          ? `the device key is sealed (${sealedBy}); only the app that sealed it can read it`
          : `the device key was sealed by ${sealedBy}, not by ${sealer.name}`,
      );
    } else {
      const u = await settle(() => sealer.unseal(raw.bytes));
      wipe(raw.bytes);
      if (u === undefined) return err('POS_ERR_DESKTOP_KEYSTORE_UNSEAL', 'the device key cannot be unsealed');
      if (!u.ok) return u;
      key = u.plain;
    }
    if (key.length !== 32) {
      wipe(key);
      return err('POS_ERR_DESKTOP_KEYSTORE_CORRUPT', 'the device key is not 32 bytes');
    }
    if (sealedBy === undefined && sealer !== undefined) {
      // Migration: a plain key read by a store that seals is sealed and written back before use.
      const w = await this.#writeKey(l.file, key);
      if (!w.ok) {
        wipe(key);
        return w;
      }
    }
    return ok({ secretKey: key });
  }

  putDeviceKey(secretKey: Uint8Array): Promise<Result<object, DesktopCode>> {
    return this.#serial(() => this.#putDeviceKey(secretKey));
  }

  async #putDeviceKey(secretKey: Uint8Array): Promise<Result<object, DesktopCode>> {
    if (secretKey.length !== 32) return err('POS_ERR_KEY_LENGTH', 'a P-256 device key is 32 bytes');
    const l = await this.#load();
    if (!l.ok) return l;
    return this.#writeKey(l.file, secretKey);
  }

  /** Writes the key (sealed when the store has a sealer) into the file as loaded. */
  async #writeKey(current: KeyFile | undefined, secretKey: Uint8Array): Promise<Result<object, DesktopCode>> {
    const sealer = this.opts.sealer;
    let stored: string;
    if (sealer === undefined) {
      stored = toBase64url(secretKey);
    } else {
      const s = await settle(() => sealer.seal(secretKey));
      if (s === undefined)
        return err('POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE', 'the device key cannot be sealed');
      if (!s.ok) return s;
      stored = toBase64url(s.sealed);
      wipe(s.sealed);
    }
    const { cipher: _old, sealer: _sealer, ...rest } = current ?? { version: 1 as const };
    const file: KeyFile = {
      ...rest,
      deviceKey: stored,
      ...(sealer === undefined ? {} : { sealer: sealer.name }),
    };
    return this.#save(file);
  }

  async getConfig(): Promise<Result<{ config: TerminalConfig | undefined }, DesktopCode>> {
    const l = await this.#load();
    if (!l.ok) return l;
    return ok({ config: l.file?.config });
  }

  putConfig(config: TerminalConfig): Promise<Result<object, DesktopCode>> {
    return this.#serial(() => this.#putConfig(config));
  }

  /**
   * Read-modify-write of the configuration in one step of the update queue: `change` sees the stored
   * configuration as it is now (never a stale copy), so a status write cannot carry an old evidence
   * counter back over a newer one. Nothing is written when there is no configuration yet.
   */
  updateConfig(change: (c: TerminalConfig) => TerminalConfig): Promise<Result<object, DesktopCode>> {
    return this.#serial(async () => {
      const l = await this.#load();
      if (!l.ok) return l;
      const current = l.file?.config;
      if (current === undefined) return ok({});
      return this.#putConfig(change(current));
    });
  }

  async #putConfig(config: TerminalConfig): Promise<Result<object, DesktopCode>> {
    const checked = TerminalConfigSchema.safeParse(config);
    if (!checked.success)
      return err('POS_ERR_DESKTOP_KEYSTORE_CORRUPT', 'the configuration does not have the expected shape');
    const l = await this.#load();
    if (!l.ok) return l;
    return this.#save({ ...(l.file ?? { version: 1 }), config: checked.data });
  }
}
