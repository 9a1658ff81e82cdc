/**
 * The whole of the reader's non-volatile state, opened in one call: identity (key + certificate),
 * trusted A&M keys, DUKPT device state, token key and the tamper latch.
 *
 * A tampered reader's directory keeps only `tamper.json` (with its serial) and the public certificates:
 * the identity key, the DUKPT state and the token key are shredded.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { err, ok, parseHex, randomBytes, toHex, wipe, type Result, type TrustedTicketKey } from '@pos/shared';
import { z } from 'zod';
import type { SimCode } from '../result';
import { DukptStore, type DukptHooks } from './dukpt';
import { ensureDir, readJson, shredFile, writeJsonAtomic } from './files';
import { createIdentity, IDENTITY_FILE, loadIdentity, type ReaderIdentity } from './identity';
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
}

export interface OpenOptions {
  /** Create what is missing (first start, `init`). Default true. */
  readonly create?: boolean;
  readonly dukptHooks?: DukptHooks;
}

/** Opens (and on first use creates) the state directory. Every file is schema-checked. */
export async function openReaderState(
  dir: string,
  opts: OpenOptions = {},
): Promise<Result<{ state: ReaderState }, SimCode>> {
  const create = opts.create ?? true;
  const made = create ? ensureDir(dir) : ok({});
  if (!made.ok) return made;

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

  let created = false;
  const loaded = await loadIdentity(dir);
  if (!loaded.ok) return loaded;
  let identity = loaded.identity;
  if (identity === undefined) {
    if (!create) return err('POS_ERR_SIM_STATE_MISSING', 'the state directory has no reader identity');
    const made = await createIdentity(dir);
    if (!made.ok) return made;
    identity = made.identity;
    created = true;
  }

  const dukptLoaded = DukptStore.load(dir, opts.dukptHooks);
  if (!dukptLoaded.ok) return dukptLoaded;
  let dukpt = dukptLoaded.store;
  if (dukpt === undefined) {
    if (!create) return err('POS_ERR_SIM_STATE_MISSING', 'the state directory has no DUKPT state');
    const made = DukptStore.create(dir, opts.dukptHooks);
    if (!made.ok) return made;
    dukpt = made.store;
  }

  const device = readJson(dir, DEVICE_FILE, DeviceFileSchema);
  if (!device.ok) return device;
  let tokenKey: Uint8Array;
  if (device.value === undefined) {
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
 * The tamper response: latch first (so a crash half-way still leaves a tampered reader), then shred
 * the identity key, the DUKPT state and the token key, and wipe them in memory.
 */
export function latchTamper(
  state: ReaderState,
  reason: string,
  finalStatus?: StoredStatus,
): Result<object, SimCode> {
  state.finalStatus = finalStatus;
  const latched = writeJsonAtomic(state.dir, TAMPER_FILE, {
    version: 1,
    tampered: true,
    serial: state.serial,
    at: new Date().toISOString(),
    reason: reason.slice(0, 200),
    ...(finalStatus === undefined ? {} : { finalStatus }),
  });
  state.dukpt?.wipe();
  shredFile(state.dir, IDENTITY_FILE);
  shredFile(state.dir, DEVICE_FILE);
  if (state.identity !== undefined) wipe(state.identity.privateKey);
  wipe(state.tokenKey);
  return latched;
}
