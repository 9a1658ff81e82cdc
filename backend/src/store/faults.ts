/**
 * Store faults a caller can do nothing about but wait: the database is unreachable, its disk is full,
 * or it cannot be written. Recognised from the driver's error (better-sqlite3 and node-postgres codes,
 * Node's errno codes) so the HTTP layer answers a coded 503 instead of an internal error, and /readyz
 * can say so. Nothing here reads the error's message text beyond node-postgres's own fixed phrases.
 */
import { accessSync, constants } from 'node:fs';

export type StoreFault = 'unavailable' | 'full' | 'read-only';

function codeOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string'
    ? e.code
    : undefined;
}

/** node-postgres's messages for a connection that ended under a query (they carry no code). */
const PG_CONNECTION_LOST =
  /^(Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect)/;

const UNAVAILABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);

/** The fault a store error was tagged with (the SQLite store tags what it throws), else classified here. */
export function faultOf(e: unknown): StoreFault | undefined {
  if (typeof e === 'object' && e !== null && 'storeFault' in e) {
    const f = e.storeFault;
    if (f === 'unavailable' || f === 'full' || f === 'read-only') return f;
  }
  return storeFault(e);
}

/**
 * The fault `e` reports, or undefined for any other error. `sqlitePath` (the SQLite file) tells a
 * read-only file system apart from another I/O error: SQLite reports a write refused by the kernel
 * (EROFS) as SQLITE_IOERR_*.
 */
export function storeFault(e: unknown, sqlitePath?: string): StoreFault | undefined {
  const code = codeOf(e);
  if (code === undefined) {
    return e instanceof Error && PG_CONNECTION_LOST.test(e.message) ? 'unavailable' : undefined;
  }
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === '53100') return 'full';
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === '25006') return 'read-only';
  if (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_CANTOPEN') {
    return sqlitePath !== undefined && !writable(sqlitePath) ? 'read-only' : undefined;
  }
  // PostgreSQL: connection exceptions (class 08), shutting down / crashed / starting (57P01-57P03).
  if (/^08[0-9A-Z]{3}$/.test(code) || code === '57P01' || code === '57P02' || code === '57P03')
    return 'unavailable';
  if (UNAVAILABLE_ERRNO.has(code)) return 'unavailable';
  return undefined;
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch (e) {
    return codeOf(e) !== 'EROFS' && codeOf(e) !== 'EACCES';
  }
}
