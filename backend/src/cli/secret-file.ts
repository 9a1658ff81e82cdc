/**
 * Small secret files of `pos-backend` (the master key, the metrics scrape token): read once through
 * one descriptor, so what is checked is what is read.
 *
 * A check by path and a read by path again leave a gap in which the file can be swapped: for a FIFO
 * (start-up hangs on the read) or for a larger file (read whole, past the size limit). Here the path is
 * opened once (symbolic links followed: Kubernetes mounts secrets as links), without blocking on a FIFO
 * or a device, and the checks (`fstat`: a regular file, not over the limit) and the read (at most one
 * byte past the limit) are on that descriptor. Errors name the reason, never the contents.
 *
 * A new secret file (writeNewSecretFile) is created 0600 and never over an existing file, written,
 * synced with its directory entry, and removed again when any step fails: a failed attempt leaves
 * nothing behind to block the next one.
 */
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';

/** Permission bits that let users other than the owner at the file (group or world, any of rwx). */
const OTHERS_BITS = 0o077;

export type SecretFileRead =
  | {
      readonly ok: true;
      readonly text: string;
      /** The permission bits (`mode & 0o777`). */
      readonly mode: number;
    }
  | {
      readonly ok: false;
      readonly code: 'unreadable' | 'not-regular' | 'too-large';
      /** Completes "the ... file ...": "cannot be read (ENOENT)", "is not a regular file", ... */
      readonly detail: string;
    };

function errnoOf(e: unknown): string {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : 'error';
}

/**
 * Reads a secret file of at most `maxBytes` bytes (UTF-8). Never throws; the result never carries the
 * contents in an error.
 */
export function readSmallSecretFile(path: string, maxBytes: number): SecretFileRead {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO with no writer (or a device) returns at once instead of waiting; a
    // regular file reads the same. O_NOCTTY: a terminal named here never becomes the controlling one.
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0));
  } catch (e) {
    return { ok: false, code: 'unreadable', detail: `cannot be read (${errnoOf(e)})` };
  }
  const buffer = Buffer.alloc(maxBytes + 1);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { ok: false, code: 'not-regular', detail: 'is not a regular file' };
    if (stat.size > maxBytes)
      return { ok: false, code: 'too-large', detail: `is larger than ${maxBytes} bytes` };
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length === buffer.length) break;
    }
    // Grown since fstat: the limit holds for what is read, not only for what fstat said.
    if (length > maxBytes)
      return { ok: false, code: 'too-large', detail: `is larger than ${maxBytes} bytes` };
    return { ok: true, text: buffer.toString('utf8', 0, length), mode: stat.mode & 0o777 };
  } catch (e) {
    return { ok: false, code: 'unreadable', detail: `cannot be read (${errnoOf(e)})` };
  } finally {
    buffer.fill(0);
    try {
      closeSync(fd);
    } catch {
      // Nothing more to do with a descriptor that does not close.
    }
  }
}

/** Whether users other than the owner have any permission bit on the file (the caller warns). */
export function othersMayAccess(mode: number): boolean {
  return (mode & OTHERS_BITS) !== 0;
}

/** The warning for a secret file with group or world permission bits; `name` is "the ... file". */
export function sharedSecretFileWarning(name: string, path: string): string {
  return `WARNING: ${name} may be read by other users (group or world permission bits): chmod 600 ${path}.`;
}

/** The file system calls writeNewSecretFile makes (node:fs; tests replace one to make it fail). */
export interface SecretFileWriteOps {
  readonly openSync: (path: string, flags: string | number, mode?: number) => number;
  readonly writeSync: (fd: number, buffer: Buffer, offset: number, length: number) => number;
  readonly fsyncSync: (fd: number) => void;
  readonly closeSync: (fd: number) => void;
  readonly unlinkSync: (path: string) => void;
}

export const NODE_WRITE_OPS: SecretFileWriteOps = {
  openSync: (path, flags, mode) => openSync(path, flags, mode),
  writeSync: (fd, buffer, offset, length) => writeSync(fd, buffer, offset, length),
  fsyncSync,
  closeSync,
  unlinkSync,
};

/** errno values of fsync on a directory where the file system cannot sync one (nothing to do). */
const DIR_SYNC_UNSUPPORTED = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP']);

/** Makes a new directory entry durable: fsync of the directory (POSIX; Windows cannot open one). */
function syncDirectory(dir: string, ops: SecretFileWriteOps): void {
  if (process.platform === 'win32') return;
  const fd = ops.openSync(dir, constants.O_RDONLY);
  try {
    ops.fsyncSync(fd);
  } catch (e) {
    if (!DIR_SYNC_UNSUPPORTED.has(errnoOf(e))) throw e;
  } finally {
    ops.closeSync(fd);
  }
}

/**
 * Writes `text` to a new file at `path`: created with `wx` and mode 0600 (never over an existing file:
 * `EEXIST`), written whole, fsync'd, closed, and its directory fsync'd. On any failure after the file
 * was created it is unlinked, so no partial file is left. Never throws; `errno` is the failing call's
 * code (never the text).
 */
export function writeNewSecretFile(
  path: string,
  text: string,
  ops: SecretFileWriteOps = NODE_WRITE_OPS,
): { readonly ok: true } | { readonly ok: false; readonly errno: string } {
  let fd: number;
  try {
    fd = ops.openSync(path, 'wx', 0o600);
  } catch (e) {
    // Not created here (EEXIST: someone else's file): nothing to remove.
    return { ok: false, errno: errnoOf(e) };
  }
  const data = Buffer.from(text, 'utf8');
  let open = true;
  try {
    for (let offset = 0; offset < data.length;) {
      const n = ops.writeSync(fd, data, offset, data.length - offset);
      if (n <= 0) throw Object.assign(new Error('no progress writing'), { code: 'EIO' });
      offset += n;
    }
    ops.fsyncSync(fd);
    open = false;
    ops.closeSync(fd);
    syncDirectory(dirname(path), ops);
    return { ok: true };
  } catch (e) {
    if (open)
      try {
        ops.closeSync(fd);
      } catch {
        // Closing is best effort here: the file is removed next.
      }
    try {
      ops.unlinkSync(path);
    } catch {
      // Already gone, or the directory refuses: the error below is what counts.
    }
    return { ok: false, errno: errnoOf(e) };
  } finally {
    data.fill(0);
  }
}
