/**
 * Small secret files of `pos-backend` (the master key, the metrics scrape token): read once through
 * one descriptor, so what is checked is what is read.
 *
 * A check by path and a read by path again leave a gap in which the file can be swapped: for a FIFO
 * (start-up hangs on the read) or for a larger file (read whole, past the size limit). Here the path is
 * opened once (symbolic links followed: Kubernetes mounts secrets as links), without blocking on a FIFO
 * or a device, and the checks (`fstat`: a regular file, not over the limit) and the read (at most one
 * byte past the limit) are on that descriptor. Errors name the reason, never the contents.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

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
