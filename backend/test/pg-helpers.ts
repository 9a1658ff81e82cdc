/**
 * PostgreSQL for tests: the database at DATABASE_URL (default the local trust-auth one), a fresh schema
 * per test file or test, dropped afterwards. When PostgreSQL is unreachable the suites skip with a
 * printed reason, except under CI (process.env.CI set), where they fail instead: CI must not skip
 * PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe } from 'vitest';
import { openPostgresStore, redactUrl } from '../src/store/postgres';
import { openSqliteStore } from '../src/store/sqlite';
import type { Store } from '../src/store/types';

export const PG_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

async function probe(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (e) {
    return e instanceof Error ? (e.message.split('\n')[0] ?? 'error') : 'error';
  } finally {
    await client.end().catch(() => undefined);
  }
}

const unreachable = await probe();
/** True when the suites run against PostgreSQL (reachable, or CI, where an unreachable one fails them). */
export const PG_AVAILABLE = unreachable === undefined || process.env['CI'] !== undefined;
if (unreachable !== undefined) {
  if (process.env['CI'] !== undefined) {
    console.error(
      `PostgreSQL at ${redactUrl(PG_URL)} unreachable (${unreachable}): CI is set, so the PostgreSQL suites fail instead of skipping`,
    );
  } else {
    console.warn(
      `PostgreSQL at ${redactUrl(PG_URL)} unreachable: skipping the PostgreSQL store suite (${unreachable}; set DATABASE_URL; under CI this fails instead)`,
    );
  }
}

/** `describe` when PostgreSQL runs the suite, `describe.skip` otherwise (the reason was printed above). */
export const describePg = describe.skipIf(!PG_AVAILABLE);

/** A unique schema name for one test or file. */
export function freshSchemaName(prefix = 't'): string {
  return `pos_${prefix}_${randomBytes(6).toString('hex')}`;
}

/** Drops schemas (CASCADE); ignores an unreachable database. */
export async function dropSchemas(names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  const client = new pg.Client({ connectionString: PG_URL });
  client.on('error', () => undefined);
  try {
    await client.connect();
    // Ten schemas per statement: a suite leaves a few hundred, and one statement each took longer
    // than the hook's timeout on a loaded machine (the rest were then left behind). Ten schemas of
    // about 25 tables each stay well inside PostgreSQL's lock table.
    const valid = names.filter((name) => /^[a-z_][a-z0-9_]{0,62}$/.test(name));
    for (let i = 0; i < valid.length; i += 10) {
      const batch = valid.slice(i, i + 10).map((name) => `"${name}"`);
      await client.query(`DROP SCHEMA IF EXISTS ${batch.join(', ')} CASCADE`);
    }
  } catch {
    // nothing to drop on an unreachable database
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The engines a store test runs on, for `describe.each`: SQLite in memory, and PostgreSQL (when it
 * runs the suites) in a fresh schema per store, its name pushed to `schemas` for `dropSchemas`.
 */
export function storeEngines(
  prefix: string,
  schemas: string[],
): [engine: string, open: () => Promise<Store> | Store][] {
  const engines: [string, () => Promise<Store> | Store][] = [
    ['sqlite', () => openSqliteStore({ path: ':memory:' })],
  ];
  if (PG_AVAILABLE) {
    engines.push([
      'postgres',
      () => {
        const schema = freshSchemaName(prefix);
        schemas.push(schema);
        return openPostgresStore({ url: PG_URL, schema, max: 2 });
      },
    ]);
  }
  return engines;
}
