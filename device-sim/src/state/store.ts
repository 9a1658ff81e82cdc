/**
 * The whole of the reader's non-volatile state, opened in one call: identity (key + certificate),
 * trusted A&M keys, DUKPT device state, token key and the tamper latch.
 *
 * A tampered reader's directory keeps only `tamper.json` (with its serial) and the public certificates:
 * the identity key, the DUKPT state and the token key are shredded.
 */
import { readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { err, ok, parseHex, randomBytes, toHex, wipe, type Result, type TrustedTicketKey } from '@pos/shared';
import { z } from 'zod';
import type { SimCode } from '../result';
import { DukptStore, type DukptHooks } from './dukpt';
import { DUKPT_FILE } from './dukpt';
import { ensureDir, errnoOf, readJson, shredFile, writeJsonAtomic } from './files';
import {
  createIdentity,
  IDENTITY_FILE,
  loadIdentity,
  READER_CERT_FILE,
  type ReaderIdentity,
} from './identity';
import { STATUS_SEQ_FILE } from './status-seq';
import { loadTrust } from './trust';

export const TAMPER_FILE = 'tamper.json';
export const DEVICE_FILE = 'device.json';

export function defaultStateDir(): string {
  return join(homedir(), '.pos-reader-sim');
}

const b64url = z.string().regex(/^[A-Za-z0-9_-]*$/);

/** A signed status report as stored (base64url): public, no secret in it. */
export const StoredStatusSchema = z.strictObject({
  report: b64url.max(1024),
  sig: b64url.length(86),
});
export type StoredStatus = z.infer<typeof StoredStatusSchema>;

const TamperFileSchema = z.strictObject({
  version: z.literal(1),
  tampered: z.literal(true),
  serial: z.string().min(1).max(64),
  at: z.string().max(64),
  reason: z.string().max(200),
  /** The status the reader signed with `tamper: true` just before it wiped its identity key. */
  finalStatus: StoredStatusSchema.optional(),
});

const DeviceFileSchema = z.strictObject({
  version: z.literal(1),
  /** Key of the PAN tokens the reader gives the terminal (HMAC-SHA-256). Secret. */
  tokenKey: z.string().regex(/^[0-9A-F]{64}$/),
});

export interface ReaderState {
  readonly dir: string;
  readonly serial: string;
  readonly tampered: boolean;
  /** Undefined once tampered. */
  readonly identity: ReaderIdentity | undefined;
  readonly dukpt: DukptStore | undefined;
  readonly tokenKey: Uint8Array | undefined;
  trustedKeys: TrustedTicketKey[];
  /** Once tampered: the last status the reader signed (with `tamper: true`), if it could. */
  finalStatus: StoredStatus | undefined;
  /** True when this call created the identity (first start or init). */
  readonly created: boolean;
  /** Tampered in memory, latch not yet on disk: written (then the keys shredded) by persistTamperLatch. */
  pendingLatch?: z.infer<typeof TamperFileSchema> | undefined;
}

export interface OpenOptions {
  /**
   * Create a brand-new reader when the directory holds no trace of one (first start, `init`).
   * Default true. A directory with any piece of a reader is never completed into a new one.
   */
  readonly create?: boolean;
  readonly dukptHooks?: DukptHooks;
}

/**
 * The files that exist only once a reader was made in the directory. Any of them present means
 * "a reader lived here": the directory is then opened as that reader or refused, never re-created.
 * `manufacturer-ca/` and `trust.json` are provisioning (copied in before the first start), not remnants.
 */
export const READER_REMNANT_FILES: readonly string[] = [
  TAMPER_FILE,
  IDENTITY_FILE,
  READER_CERT_FILE,
  DUKPT_FILE,
  DEVICE_FILE,
  STATUS_SEQ_FILE,
];

/** The pieces a working (untampered) reader needs; status-seq.json appears with the first status. */
const REQUIRED_FILES: readonly string[] = [IDENTITY_FILE, READER_CERT_FILE, DUKPT_FILE, DEVICE_FILE];

/**
 * Which reader files are in `dir` (also a temporary file of an interrupted atomic write of one).
 * A directory that does not exist has none.
 */
function listRemnants(dir: string): Result<{ present: Set<string>; names: Set<string> }, SimCode> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return ok({ present: new Set(), names: new Set() });
    return err('POS_ERR_SIM_STATE_DIR', `the state directory cannot be listed (${errnoOf(e)})`);
  }
  const present = new Set<string>();
  for (const name of names) {
    for (const r of READER_REMNANT_FILES) {
      if (name === r || (name.startsWith(`.${r}.`) && name.endsWith('.tmp'))) present.add(r);
    }
  }
  return ok({ present, names: new Set(names) });
}

/**
 * Opens the state directory; creates a new reader only in a directory with no trace of one. Every
 * file is schema-checked. A directory with some pieces of a reader and not others (a deleted
 * tamper latch, a lost key file) is `POS_ERR_SIM_STATE_INCOMPLETE`: it is never turned into a new,
 * untampered reader.
 */
export async function openReaderState(
  dir: string,
  opts: OpenOptions = {},
): Promise<Result<{ state: ReaderState }, SimCode>> {
  const create = opts.create ?? true;
  const listed = listRemnants(dir);
  if (!listed.ok) return listed;
  const fresh = listed.present.size === 0;
  if (fresh && !create) return err('POS_ERR_SIM_STATE_MISSING', 'the state directory has no reader yet');
  if (fresh) {
    const made = ensureDir(dir);
    if (!made.ok) return made;
  }

  const tamper = readJson(dir, TAMPER_FILE, TamperFileSchema);
  if (!tamper.ok) return tamper;
  const trust = loadTrust(dir);
  if (!trust.ok) return trust;
  if (tamper.value !== undefined) {
    return ok({
      state: {
        dir,
        serial: tamper.value.serial,
        tampered: true,
        identity: undefined,
        dukpt: undefined,
        tokenKey: undefined,
        trustedKeys: trust.keys,
        finalStatus: tamper.value.finalStatus,
        created: false,
      },
    });
  }

  if (!fresh) {
    const missing = REQUIRED_FILES.filter((f) => !listed.names.has(f));
    if (missing.length > 0) {
      return err(
        'POS_ERR_SIM_STATE_INCOMPLETE',
        `the state directory holds part of a reader but not ${missing.join(', ')}; it is not re-created as a new reader (restore the files or use a fresh directory)`,
      );
    }
  }

  const created = fresh;
  let identity: ReaderIdentity;
  if (fresh) {
    const made = await createIdentity(dir);
    if (!made.ok) return made;
    identity = made.identity;
  } else {
    const loaded = await loadIdentity(dir);
    if (!loaded.ok) return loaded;
    if (loaded.identity === undefined) {
      return err('POS_ERR_SIM_STATE_INCOMPLETE', `${IDENTITY_FILE} disappeared while it was opened`);
    }
    identity = loaded.identity;
  }

  let dukpt: DukptStore;
  if (fresh) {
    const made = DukptStore.create(dir, opts.dukptHooks);
    if (!made.ok) return made;
    dukpt = made.store;
  } else {
    const dukptLoaded = DukptStore.load(dir, opts.dukptHooks);
    if (!dukptLoaded.ok) return dukptLoaded;
    if (dukptLoaded.store === undefined) {
      return err('POS_ERR_SIM_STATE_INCOMPLETE', `${DUKPT_FILE} disappeared while it was opened`);
    }
    dukpt = dukptLoaded.store;
  }

  const device = readJson(dir, DEVICE_FILE, DeviceFileSchema);
  if (!device.ok) return device;
  let tokenKey: Uint8Array;
  if (device.value === undefined) {
    if (!fresh) return err('POS_ERR_SIM_STATE_INCOMPLETE', `${DEVICE_FILE} disappeared while it was opened`);
    tokenKey = randomBytes(32);
    const w = writeJsonAtomic(dir, DEVICE_FILE, { version: 1, tokenKey: toHex(tokenKey) });
    if (!w.ok) return w;
  } else {
    const parsed = parseHex(device.value.tokenKey, 32);
    if (!parsed.ok) return err('POS_ERR_SIM_STATE_CORRUPT', `${DEVICE_FILE} has a bad token key`);
    tokenKey = parsed.bytes;
  }

  return ok({
    state: {
      dir,
      serial: identity.serial,
      tampered: false,
      identity,
      dukpt,
      tokenKey,
      trustedKeys: trust.keys,
      finalStatus: undefined,
      created,
    },
  });
}

/**
 * The tamper response. The latch (`tamper.json`) is written first; only once it is on disk are the
 * identity key, the DUKPT state and the token key shredded there, so no crash or failed write can
 * leave a reader without keys and without a latch (which would then look like a fresh directory).
 * The keys are wiped in memory at once either way. If the latch cannot be written, the result is
 * `POS_ERR_SIM_TAMPER_NOT_DURABLE`: the caller keeps its in-memory latch (refusing everything) and
 * calls `persistTamperLatch` again until it succeeds.
 */
export function latchTamper(
  state: ReaderState,
  reason: string,
  finalStatus?: StoredStatus,
  at: Date = new Date(),
): Result<object, SimCode> {
  state.finalStatus = finalStatus;
  state.pendingLatch = {
    version: 1,
    tampered: true,
    serial: state.serial,
    at: at.toISOString(),
    reason: reason.slice(0, 200),
    ...(finalStatus === undefined ? {} : { finalStatus }),
  };
  state.dukpt?.wipeMemory();
  if (state.identity !== undefined) wipe(state.identity.privateKey);
  wipe(state.tokenKey);
  return persistTamperLatch(state);
}

/**
 * Writes the pending tamper latch and, once it is durable, shreds the key files. Idempotent: with no
 * latch pending it does nothing.
 */
export function persistTamperLatch(state: ReaderState): Result<object, SimCode> {
  const latch = state.pendingLatch;
  if (latch === undefined) return ok({});
  const written = writeJsonAtomic(state.dir, TAMPER_FILE, latch);
  if (!written.ok) {
    return err(
      'POS_ERR_SIM_TAMPER_NOT_DURABLE',
      `the tamper latch cannot be written yet (${written.detail}); the reader refuses everything and retries`,
    );
  }
  state.pendingLatch = undefined;
  shredFile(state.dir, DUKPT_FILE);
  shredFile(state.dir, IDENTITY_FILE);
  shredFile(state.dir, DEVICE_FILE);
  return ok({});
}
