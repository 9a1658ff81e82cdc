import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { MIGRATIONS, openSqliteStore, SQLITE_VELOCITY_PURGE_SQL } from '../../src/store/sqlite';
import { SQLITE_LOCKOUT_START_SQL } from '../../src/store/sqlite-auth';
import { StoreError } from '../../src/store/types';
import { runStoreConformance } from './conformance';
import { runAuthConformance, V7_OPERATOR } from './conformance-auth';
import { runFleetConformance } from './conformance-fleet';
import { V10_TERMINALS } from './migration-11';
import { runLivenessConformance } from './conformance-liveness';

const dir = mkdtempSync(join(tmpdir(), 'pos-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

// Every conformance suite, on both SQLite forms (the same suites run on PostgreSQL: postgres.test.ts).
const memory = (): ReturnType<typeof openSqliteStore> => openSqliteStore({ path: ':memory:' });
const file = (): ReturnType<typeof openSqliteStore> => openSqliteStore({ path: join(dir, `s${n++}.sqlite`) });
for (const [engine, open] of [
  ['sqlite :memory:', memory],
  ['sqlite file (WAL)', file],
] as const) {
  runStoreConformance(engine, open);
  runAuthConformance(engine, open);
  runFleetConformance(engine, open);
  runLivenessConformance(engine, open);
}

/** The details of SQLite's query plan for `sql` (bound to `params`) on a new store at the current version. */
async function planOf(sql: string, ...params: readonly (string | number)[]): Promise<string[]> {
  const path = join(dir, `plan${n++}.sqlite`);
  await openSqliteStore({ path }).close();
  const raw = new Database(path, { readonly: true });
  try {
    return (raw.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map(
      (p) => p.detail,
    );
  } finally {
    raw.close();
  }
}

describe('SQLite specifics', () => {
  it('uses WAL and records the schema version; reopening migrates nothing twice', async () => {
    const path = join(dir, 'wal.sqlite');
    const s = openSqliteStore({ path });
    expect(await s.schemaVersion()).toBe(MIGRATIONS.length);
    await s.close();
    const raw = new Database(path);
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();
    const again = openSqliteStore({ path });
    expect(await again.schemaVersion()).toBe(MIGRATIONS.length);
    await again.close();
  });

  it('migration 2 keeps the terminals of a version-1 store and allows resume-pending', async () => {
    const path = join(dir, 'v1.sqlite');
    const raw = new Database(path);
    raw.exec(MIGRATIONS[0] ?? '');
    raw.pragma('user_version = 1');
    raw.exec(
      "INSERT INTO merchants VALUES ('mer_1', 'Shop', 1); INSERT INTO terminals VALUES ('t1', 'mer_1', '{}', 'jkt', 'R1', 7, 'halted', 'why', 300, 1, 2)",
    );
    raw.close();
    const s = openSqliteStore({ path });
    expect(await s.getTerminal('t1')).toMatchObject({
      lastCounter: 7,
      state: 'halted',
      stateChangedAt: null,
    });
    expect(await s.transitionTerminalState('t1', 'halted', 'resume-pending', null, 3)).toBe(true);
    await s.close();
  });

  it("a terminal's newest ticket is found through the tickets_terminal index (migration 7), not a scan", async () => {
    const plan = await planOf(
      'SELECT * FROM tickets WHERE terminal_id = ? ORDER BY issued_at DESC, rowid DESC LIMIT 1',
      't1',
    );
    expect(plan.join('; ')).toContain('USING INDEX tickets_terminal');
  });

  it('the sessions purge finds expired sessions through the sessions_expires index (migration 9), not a scan', async () => {
    const plan = await planOf('DELETE FROM sessions WHERE expires_at < ?', 1);
    expect(plan.join('; ')).toMatch(/SEARCH sessions USING (COVERING )?INDEX sessions_expires/);
  });

  it('each batch of the velocity purge finds old events through the velocity_at index (migration 10), not a scan', async () => {
    const plan = await planOf(SQLITE_VELOCITY_PURGE_SQL, 1, 10);
    expect(plan.join('; ')).toMatch(/SEARCH velocity_events USING (COVERING )?INDEX velocity_at \(at<\?\)/);
    expect(plan.filter((d) => d.startsWith('SCAN'))).toEqual([]);
  });

  it("a lock-out's start is read through velocity_key in order (at most max rows), not a scan or a sort", async () => {
    const plan = await planOf(SQLITE_LOCKOUT_START_SQL, 'auth:login:user:x', 0, 10, 4);
    expect(plan.join('; ')).toMatch(
      /SEARCH velocity_events USING (COVERING )?INDEX velocity_key \(key=\? AND at>\? AND at<\?\)/,
    );
    expect(plan.filter((d) => d.startsWith('SCAN') || d.includes('TEMP B-TREE'))).toEqual([]);
  });

  it('migration 10 keeps the velocity events of a version-9 store, and the purge then deletes the old ones', async () => {
    const path = join(dir, 'v9.sqlite');
    const raw = new Database(path);
    for (const sql of MIGRATIONS.slice(0, 9)) raw.exec(sql);
    raw.pragma('user_version = 9');
    raw.exec(
      "INSERT INTO velocity_events (key, at, member) VALUES ('auth:login:user:x|n', 1000, ''), ('card-terminals:ct', 2000, 't1'), ('terminal-rate:t1', 5000, '')",
    );
    raw.close();
    const s = openSqliteStore({ path });
    expect(await s.schemaVersion()).toBe(MIGRATIONS.length);
    expect(await s.velocityCount('card-terminals:ct', 5000, 10_000)).toBe(1);
    expect(await s.purgeVelocityEvents(3000)).toBe(2);
    expect(await s.velocityCount('terminal-rate:t1', 5000, 10_000)).toBe(1);
    await s.close();
  });

  it('migration 8 keeps the operators of a version-7 store at login epoch 0 and keeps the lock columns the previous release uses (rolling upgrade)', async () => {
    const path = join(dir, 'v7.sqlite');
    const raw = new Database(path);
    for (const sql of MIGRATIONS.slice(0, 7)) raw.exec(sql);
    raw.pragma('user_version = 7');
    raw.exec(V7_OPERATOR.insert('operators'));
    raw.close();
    const s = openSqliteStore({ path });
    expect(await s.getOperator(V7_OPERATOR.row.id)).toEqual(V7_OPERATOR.row);
    await s.createOperator({ ...V7_OPERATOR.row, id: 'usr_new', username: 'nina' });
    // A process of the previous release on the migrated store: reads a row this code inserted,
    // inserts its own, which this code reads.
    const old = new Database(path);
    V7_OPERATOR.expectColumns((old.pragma('table_info(operators)') as { name: string }[]).map((c) => c.name));
    expect(old.prepare(V7_OPERATOR.oldRelease.read('operators', 'usr_new')).all()).toEqual([
      V7_OPERATOR.oldRelease.expected,
    ]);
    old.exec(V7_OPERATOR.oldRelease.insert('operators'));
    old.close();
    expect(await s.getOperator('usr_old')).toMatchObject({ username: 'olga', loginEpoch: 0 });
    await s.close();
  });

  it('migration 11 rebuilds the terminals of a version-10 store with every row, column and index kept, and allows decommissioned', async () => {
    const path = join(dir, 'v10.sqlite');
    const raw = new Database(path);
    for (const sql of MIGRATIONS.slice(0, 10)) raw.exec(sql);
    raw.pragma('user_version = 10');
    raw.exec(V10_TERMINALS.insert(''));
    const indexesOf = (db: Database.Database): unknown[] =>
      db
        .prepare(
          "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'terminals' ORDER BY name",
        )
        .all();
    const before = indexesOf(raw);
    raw.close();
    const s = openSqliteStore({ path });
    expect(await s.schemaVersion()).toBe(MIGRATIONS.length);
    expect(await s.listTerminals({ limit: 10 })).toEqual(V10_TERMINALS.rows);
    expect(await s.setTerminalState('t2', 'decommissioned', 'closed shop', 20)).toBe(true);
    await expect(s.setTerminalState('t1', 'bogus' as never, null)).rejects.toThrow(/CHECK/);
    await s.close();
    const after = new Database(path);
    expect(indexesOf(after)).toEqual(before);
    expect(after.pragma('foreign_key_check')).toEqual([]);
    expect(after.pragma('integrity_check', { simple: true })).toBe('ok');
    after.close();
  });

  it('refuses a store whose schema is newer than the service', () => {
    const path = join(dir, 'newer.sqlite');
    const raw = new Database(path);
    raw.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    raw.close();
    expect(() => openSqliteStore({ path })).toThrow(StoreError);
  });
});
