/**
 * The reader's AES DUKPT device state with a write-ahead KSN: before the keys of a KSN are handed to
 * anyone, the advanced state (whose next counter is past that KSN) is on disk. A crash at any point
 * therefore loses at most an unused KSN, and a KSN is never used twice, across restarts and crashes.
 *
 * Key loading (development convention shared with the back-end's acquirer simulation): BDK =
 * DEV_BDK_HEX, initial key ID = DEV_BDK_ID_HEX (4 bytes) || a random 4-byte derivation id. The
 * initial key is derived, loaded into the device, and wiped with the BDK copy: only the device state
 * (future-key registers and counter) is ever stored.
 */
import {
  AesDukptDevice,
  aesDukptInitialKey,
  aesKsnCounter,
  concatBytes,
  DEV_BDK_HEX,
  DEV_BDK_ID_HEX,
  err,
  hex,
  ok,
  randomBytes,
  wipe,
  type AesDukptDeviceState,
  type AesKsn,
  type Result,
} from '@pos/shared';
import { z } from 'zod';
import type { SimCode } from '../result';
import { readJson, shredFile, writeJsonAtomic } from './files';

export const DUKPT_FILE = 'dukpt.json';

const DukptFileSchema = z.strictObject({
  version: z.literal(1),
  /** Validated in full by AesDukptDevice.restore. */
  device: z.unknown(),
  /** The counter of the last KSN taken (0 before the first); reported in the signed status. */
  lastCounter: z.number().int().min(0).max(0xffff_ffff).optional(),
});

/** Test hook: runs after the advanced state is on disk and before the keys are used. */
export interface DukptHooks {
  afterPersist?: (ksn: AesKsn) => void;
}

export interface TransactionKeys {
  readonly ksn: AesKsn;
  /** AES-128 PIN-encryption key (usage 1000). Secret: the caller wipes it. */
  readonly pinKey: Uint8Array;
  /** AES-128 data-encryption key (usage 3000). Secret: the caller wipes it. */
  readonly dataKey: Uint8Array;
}

export class DukptStore {
  #device: AesDukptDevice | undefined;
  #broken = false;
  #lastCounter: number;

  private constructor(
    private readonly dir: string,
    device: AesDukptDevice,
    private readonly hooks: DukptHooks,
    lastCounter = 0,
  ) {
    this.#device = device;
    this.#lastCounter = lastCounter;
  }

  /** The counter of the last KSN taken (0 before the first). */
  get lastCounter(): number {
    return this.#lastCounter;
  }

  /** Loads the device state; `store: undefined` when none was stored yet. */
  static load(dir: string, hooks: DukptHooks = {}): Result<{ store: DukptStore | undefined }, SimCode> {
    const file = readJson(dir, DUKPT_FILE, DukptFileSchema);
    if (!file.ok) return file;
    if (file.value === undefined) return ok({ store: undefined });
    const restored = AesDukptDevice.restore(file.value.device);
    if (!restored.ok) {
      return err('POS_ERR_SIM_STATE_CORRUPT', `${DUKPT_FILE} holds no valid DUKPT device state`);
    }
    return ok({ store: new DukptStore(dir, restored.device, hooks, file.value.lastCounter ?? 0) });
  }

  /** Loads the development BDK's initial key for a fresh derivation id and persists the device state. */
  static create(
    dir: string,
    hooks: DukptHooks = {},
    derivationId: Uint8Array = randomBytes(4),
  ): Result<{ store: DukptStore }, SimCode> {
    const bdk = hex(DEV_BDK_HEX);
    const ikid = concatBytes(hex(DEV_BDK_ID_HEX), derivationId);
    const ik = aesDukptInitialKey(bdk, ikid);
    wipe(bdk);
    if (!ik.ok) return ik;
    const loaded = AesDukptDevice.load(ik.key, ikid);
    wipe(ik.key);
    if (!loaded.ok) return loaded;
    const written = writeJsonAtomic(dir, DUKPT_FILE, { version: 1, device: loaded.device.exportState() });
    if (!written.ok) return written;
    return ok({ store: new DukptStore(dir, loaded.device, hooks) });
  }

  /** The KSN the next transaction will use, or undefined when exhausted or wiped. */
  get nextKsn(): AesKsn | undefined {
    return this.#device?.currentKsn;
  }

  /** The counter of the next KSN (0 when none). */
  get nextCounter(): number {
    const ksn = this.nextKsn;
    return ksn === undefined ? 0 : aesKsnCounter(ksn);
  }

  /**
   * Takes the next KSN: advances the device, persists the advanced state (write-ahead), and only then
   * returns the KSN's PIN and data keys. If the state cannot be written, the keys are wiped and the
   * store refuses every later transaction (the in-memory state is ahead of the disk).
   */
  nextTransaction(): Result<TransactionKeys, SimCode> {
    const device = this.#device;
    if (device === undefined || this.#broken) {
      return err('POS_ERR_SIM_STATE_DIR', 'the DUKPT state is not usable (wiped or failed to persist)');
    }
    const r = device.nextTransaction([
      { usage: 'pin-encryption', keyType: 'aes128' },
      { usage: 'data-encryption', keyType: 'aes128' },
    ]);
    if (!r.ok) return r;
    const [pinKey, dataKey] = r.keys;
    const state: AesDukptDeviceState = device.exportState();
    const lastCounter = aesKsnCounter(r.ksn);
    const written = writeJsonAtomic(this.dir, DUKPT_FILE, { version: 1, device: state, lastCounter });
    if (!written.ok || pinKey === undefined || dataKey === undefined) {
      wipe(...r.keys);
      this.#broken = true;
      return written.ok ? err('POS_ERR_SIM_INTERNAL', 'the DUKPT device returned no keys') : written;
    }
    this.#lastCounter = lastCounter;
    this.hooks.afterPersist?.(r.ksn);
    return ok({ ksn: r.ksn, pinKey, dataKey });
  }

  /** Tamper response, first half: wipes the registers in memory (the file is shredded after the latch). */
  wipeMemory(): void {
    this.#device?.wipe();
    this.#device = undefined;
  }

  /** Wipes the registers in memory and shreds the file. */
  wipe(): void {
    this.wipeMemory();
    shredFile(this.dir, DUKPT_FILE);
  }
}
