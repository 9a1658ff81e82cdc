/**
 * The reader's non-volatile memory: a directory (0700) of small files (0600), each written atomically
 * (temp file, fsync, rename, fsync of the directory) and each parsed with a schema when read. A file
 * that does not parse is a coded error, never a crash and never silently replaced.
 */
import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { err, ok, type Result } from '@pos/shared';
import type { z } from 'zod';
import type { SimCode } from '../result';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;

/** Creates the directory (0700) if needed and checks that it is a directory the reader can use. */
export function ensureDir(dir: string): Result<object, SimCode> {
  try {
    mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    const st = statSync(dir);
    if (!st.isDirectory()) return err('POS_ERR_SIM_STATE_DIR', 'the state path is not a directory');
    if ((st.mode & 0o077) !== 0) chmodSync(dir, DIR_MODE);
    return ok({});
  } catch (e) {
    return err('POS_ERR_SIM_STATE_DIR', `the state directory cannot be created (${errnoOf(e)})`);
  }
}

export function errnoOf(e: unknown): string {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : 'error';
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes `data` to `dir/name` so that after a crash the file holds either the old or the new content,
 * never a mix: temp file (0600) -> write -> fsync -> rename -> fsync(dir).
 */
export function writeFileAtomic(
  dir: string,
  name: string,
  data: string | Uint8Array,
): Result<object, SimCode> {
  const target = join(dir, name);
  const temp = join(dir, `.${name}.${process.pid}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'w', FILE_MODE);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    chmodSync(temp, FILE_MODE);
    renameSync(temp, target);
    fsyncDir(dir);
    return ok({});
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // nothing to clean up
    }
    return err('POS_ERR_SIM_STATE_DIR', `cannot write ${name} (${errnoOf(e)})`);
  }
}

export function writeJsonAtomic(dir: string, name: string, value: unknown): Result<object, SimCode> {
  return writeFileAtomic(dir, name, `${JSON.stringify(value, null, 2)}\n`);
}

/** Reads a text file; `undefined` when it does not exist. */
export function readText(dir: string, name: string): Result<{ text: string | undefined }, SimCode> {
  try {
    return ok({ text: readFileSync(join(dir, name), 'utf8') });
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return ok({ text: undefined });
    return err('POS_ERR_SIM_STATE_DIR', `cannot read ${name} (${errnoOf(e)})`);
  }
}

/** Reads and schema-checks a JSON file; `undefined` when it does not exist. */
export function readJson<S extends z.ZodType>(
  dir: string,
  name: string,
  schema: S,
): Result<{ value: z.infer<S> | undefined }, SimCode> {
  const text = readText(dir, name);
  if (!text.ok) return text;
  if (text.text === undefined) return ok({ value: undefined });
  let json: unknown;
  try {
    json = JSON.parse(text.text) as unknown;
  } catch {
    return err('POS_ERR_SIM_STATE_CORRUPT', `${name} is not JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const where = parsed.error.issues[0]?.path.join('.') ?? '';
    return err(
      'POS_ERR_SIM_STATE_CORRUPT',
      `${name} does not match its schema${where ? ` (at ${where})` : ''}`,
    );
  }
  return ok({ value: parsed.data });
}

/** Overwrites a file with zeros, syncs, then removes it (best effort on a journaling file system). */
export function shredFile(dir: string, name: string): void {
  const path = join(dir, name);
  try {
    const size = statSync(path).size;
    const fd = openSync(path, 'r+');
    try {
      writeSync(fd, new Uint8Array(size), 0, size, 0);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    unlinkSync(path);
    fsyncDir(dir);
  } catch {
    // already gone
  }
}
