/**
 * Store faults become coded 503s (never POS_ERR_INTERNAL): the database unreachable or going away
 * (PostgreSQL stopping or restarting), its disk full, or the store not writable. Other errors stay
 * internal errors. The fault tests (test/test/faults/) drive the same through real processes.
 */
import { describe, expect, it } from 'vitest';
import { BACKEND_ERRORS } from '../../src/errors';
import { mapError } from '../../src/server/http-errors';
import { storeFault } from '../../src/store/faults';

const coded = (code: string, message = 'x'): Error => Object.assign(new Error(message), { code });

describe('store faults', () => {
  it.each([
    [coded('SQLITE_FULL'), 'POS_ERR_STORE_FULL'],
    [coded('ENOSPC'), 'POS_ERR_STORE_FULL'],
    [coded('53100'), 'POS_ERR_STORE_FULL'],
    [coded('SQLITE_READONLY'), 'POS_ERR_STORE_READ_ONLY'],
    [coded('SQLITE_READONLY_DBMOVED'), 'POS_ERR_STORE_READ_ONLY'],
    [coded('EROFS'), 'POS_ERR_STORE_READ_ONLY'],
    [coded('25006'), 'POS_ERR_STORE_READ_ONLY'],
    [coded('57P01'), 'POS_ERR_UNAVAILABLE'],
    [coded('57P03'), 'POS_ERR_UNAVAILABLE'],
    [coded('08006'), 'POS_ERR_UNAVAILABLE'],
    [coded('ECONNREFUSED'), 'POS_ERR_UNAVAILABLE'],
    [new Error('Connection terminated unexpectedly'), 'POS_ERR_UNAVAILABLE'],
    [new Error('Client has encountered a connection error and is not queryable'), 'POS_ERR_UNAVAILABLE'],
    [Object.assign(new Error('tagged'), { storeFault: 'read-only' }), 'POS_ERR_STORE_READ_ONLY'],
  ])('%s -> 503 %s, the code’s own message', (error, code) => {
    const mapped = mapError(error);
    expect(mapped).toMatchObject({ status: 503, code });
    expect(mapped.message).toBe(BACKEND_ERRORS[code as keyof typeof BACKEND_ERRORS]);
  });

  it.each([new Error('boom'), coded('SQLITE_CONSTRAINT'), coded('23505'), coded('SQLITE_IOERR_WRITE')])(
    '%s stays an internal error',
    (error) => {
      expect(mapError(error)).toMatchObject({ status: 500, code: 'POS_ERR_INTERNAL' });
    },
  );

  it('an I/O error on a SQLite file whose file system is writable is not called read-only', () => {
    expect(storeFault(coded('SQLITE_IOERR_WRITE'), '/nonexistent/dir/backend.sqlite')).toBeUndefined();
  });
});
