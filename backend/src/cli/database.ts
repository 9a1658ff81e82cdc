/**
 * Which database `pos-backend` uses: SQLite in the data directory (default), or PostgreSQL when
 * `--database-url postgres://...` or the DATABASE_URL environment variable is given (the flag wins).
 * `--database-schema NAME` (or DATABASE_SCHEMA) picks the PostgreSQL schema (default `public`): every
 * process sharing one database must use the same schema. On PostgreSQL the fleet bus is
 * LISTEN/NOTIFY on that schema's channel (store/postgres-bus.ts); on SQLite it is in-memory.
 *
 * Errors are coded lines without the URL's password (`redactUrl`).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { z } from 'zod';
import type { Bus } from '../fleet/bus';
import { checkPostgresUrl, openPostgresStore, redactUrl } from '../store/postgres';
import { storeFault } from '../store/faults';
import { createPostgresBus } from '../store/postgres-bus';
import { SCHEMA_NAME } from '../store/postgres-schema';
import { openSqliteStore } from '../store/sqlite';
import { StoreError, type Store } from '../store/types';

export type DatabaseChoice =
  | { readonly engine: 'sqlite'; readonly path: string }
  | {
      readonly engine: 'postgres';
      readonly url: string;
      readonly schema: string;
      /** Connections in the store's pool (env DATABASE_POOL_MAX, 1-200, default 10). */
      readonly poolMax: number;
    };

const UrlSchema = z.string().min(1).max(4096);

/** The database the options and environment name; a coded message when they are malformed. */
export function chooseDatabase(
  options: { readonly 'database-url'?: string | undefined; readonly 'database-schema'?: string | undefined },
  env: NodeJS.ProcessEnv,
  dataDir: string,
  storeFile: string,
): DatabaseChoice | string {
  const rawUrl = options['database-url'] ?? (env['DATABASE_URL'] === '' ? undefined : env['DATABASE_URL']);
  const rawSchema =
    options['database-schema'] ?? (env['DATABASE_SCHEMA'] === '' ? undefined : env['DATABASE_SCHEMA']);
  if (rawUrl === undefined) {
    if (rawSchema !== undefined)
      return 'POS_ERR_CLI_USAGE: --database-schema needs --database-url (or DATABASE_URL)';
    return { engine: 'sqlite', path: join(dataDir, storeFile) };
  }
  const url = UrlSchema.safeParse(rawUrl);
  if (!url.success) return 'POS_ERR_CLI_USAGE: the database URL is empty or too long';
  const checked = checkPostgresUrl(url.data);
  if (!checked.ok) return `POS_ERR_CLI_USAGE: ${checked.detail}`;
  const schema = rawSchema ?? 'public';
  if (!SCHEMA_NAME.test(schema))
    return 'POS_ERR_CLI_USAGE: --database-schema must be a lower-case identifier (a-z, 0-9, _; at most 63)';
  const rawMax = env['DATABASE_POOL_MAX'];
  const poolMax = rawMax === undefined || rawMax === '' ? 10 : Number(rawMax);
  if (!/^[0-9]{1,3}$/.test(rawMax ?? '10') || !Number.isInteger(poolMax) || poolMax < 1 || poolMax > 200)
    return 'POS_ERR_CLI_USAGE: DATABASE_POOL_MAX must be an integer 1-200';
  return { engine: 'postgres', url: url.data, schema, poolMax };
}

/** For logs: the engine and where, never a password. */
export function describeDatabase(choice: DatabaseChoice): string {
  return choice.engine === 'sqlite'
    ? `sqlite ${choice.path}`
    : `postgres ${redactUrl(choice.url)} schema ${choice.schema}`;
}

/** A pooled connection lost while idle: one JSON line on stderr (pino's shape and level), no URL. */
function warnOnStderr(message: string): void {
  process.stderr.write(`${JSON.stringify({ level: 40, time: Date.now(), event: 'store', msg: message })}\n`);
}

/** Opens and migrates the store; a coded message (no stack, no password) when it cannot. */
export async function openDatabase(
  choice: DatabaseChoice,
  dataDir: string,
  onWarning: (message: string) => void = warnOnStderr,
): Promise<Store | string> {
  if (choice.engine === 'sqlite') {
    try {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      return openSqliteStore({ path: choice.path });
    } catch (e) {
      if (e instanceof StoreError) return `POS_ERR_STORE: ${e.message}`;
      const fault = storeFault(e, choice.path);
      if (fault === 'read-only') return 'POS_ERR_STORE_READ_ONLY: the SQLite store cannot be written';
      if (fault === 'full') return 'POS_ERR_STORE_FULL: the SQLite store cannot be opened: its disk is full';
      return 'POS_ERR_STORE: the SQLite store cannot be opened';
    }
  }
  try {
    return await openPostgresStore({
      url: choice.url,
      schema: choice.schema,
      max: choice.poolMax,
      onError: onWarning,
    });
  } catch (e) {
    if (e instanceof StoreError) return `${e.code}: ${e.message}`;
    return unreachable(choice, e);
  }
}

/** The LISTEN/NOTIFY bus for PostgreSQL; undefined for SQLite (the app's in-memory bus). */
export async function openBus(
  choice: DatabaseChoice,
  onWarning: (message: string) => void,
): Promise<Bus | undefined | string> {
  if (choice.engine === 'sqlite') return undefined;
  try {
    return await createPostgresBus({ url: choice.url, schema: choice.schema, onWarning });
  } catch (e) {
    if (e instanceof StoreError) return `${e.code}: ${e.message}`;
    return unreachable(choice, e);
  }
}

function unreachable(choice: DatabaseChoice & { engine: 'postgres' }, e: unknown): string {
  // The driver's code (ECONNREFUSED, 28P01, 3D000, ...) says why without echoing the URL.
  const code =
    typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : 'error';
  return `POS_ERR_UNAVAILABLE: PostgreSQL at ${redactUrl(choice.url)} is unreachable or refused the connection (${code})`;
}

/**
 * Runs `work` while holding a session advisory lock of the PostgreSQL schema (nothing to hold on
 * SQLite): processes starting at once on a new database take turns, so the first creates the
 * ticket-signing key and the others load it instead of each creating their own.
 */
export async function withStartupLock<T>(choice: DatabaseChoice, work: () => Promise<T>): Promise<T> {
  if (choice.engine === 'sqlite') return work();
  const client = new pg.Client({ connectionString: choice.url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  const key = `pos-backend:startup:${choice.schema}`;
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [key]);
    return await work();
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [key]).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
