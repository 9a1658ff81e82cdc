/**
 * The PostgreSQL store: every conformance suite, plus what only a shared database shows (two pools
 * standing for two back-end processes racing on single-use and monotonic operations, concurrent
 * migrations, a schema newer than the code). One fresh schema per test, dropped at the end.
 * Without a reachable PostgreSQL the suite skips with a printed reason (fails under CI).
 */
import pg from 'pg';
import { afterAll, expect, it, vi } from 'vitest';
import { openPostgresStore, PG_MIGRATIONS, redactUrl } from '../../src/store/postgres';
import {
  migratePostgres,
  PG_LOCKOUT_START_SQL,
  PG_VELOCITY_PURGE_SQL,
} from '../../src/store/postgres-schema';
import { MIGRATIONS } from '../../src/store/sqlite';
import { StoreError, type AuditRow, type Store } from '../../src/store/types';
import { describePg, dropSchemas, freshSchemaName, PG_URL } from '../pg-helpers';
import { runStoreConformance } from './conformance';
import { runAuthConformance, V7_OPERATOR } from './conformance-auth';
import { runFleetConformance } from './conformance-fleet';
import { V10_TERMINALS } from './migration-11';
import { runLivenessConformance } from './conformance-liveness';

const schemas: string[] = [];
afterAll(() => dropSchemas(schemas), 120_000);

function openFresh(): Promise<Store> {
  const schema = freshSchemaName('c');
  schemas.push(schema);
  return openPostgresStore({ url: PG_URL, schema, max: 4 });
}

describePg('PostgreSQL store', () => {
  runStoreConformance('postgres', openFresh);
  runAuthConformance('postgres', openFresh);
  runFleetConformance('postgres', openFresh);
  runLivenessConformance('postgres', openFresh);
});

const T0 = 1_800_000_000_000;

/** Two stores on one schema: two "processes" with their own pools. */
async function twoProcesses(): Promise<[Store, Store]> {
  const schema = freshSchemaName('r');
  schemas.push(schema);
  const a = await openPostgresStore({ url: PG_URL, schema, max: 4 });
  const b = await openPostgresStore({ url: PG_URL, schema, max: 4 });
  await a.createMerchant({ id: 'mer_1', name: 'Shop', createdAt: T0 });
  await a.createTerminal({
    id: 'trm_1',
    merchantId: 'mer_1',
    deviceJwk: '{"kty":"EC"}',
    deviceJkt: 'jkt1',
    readerSerial: 'R1',
    lastCounter: -1,
    state: 'active',
    stateReason: null,
    intervalS: 300,
    createdAt: T0,
    lastAttestedAt: null,
  });
  return [a, b];
}

function chain(prev: AuditRow | undefined, d: Omit<AuditRow, 'seq' | 'prevHash' | 'hash'>): AuditRow {
  const seq = (prev?.seq ?? 0) + 1;
  const prevHash = prev?.hash ?? '0';
  return { ...d, seq, prevHash, hash: `${prevHash}:${seq}` };
}

describePg('PostgreSQL store: two processes racing', () => {
  it('a challenge is consumed once across both pools; every loser sees the first use time', async () => {
    const [a, b] = await twoProcesses();
    try {
      await a.createChallenge({ value: 'ch1', terminalId: 'trm_1', expiresAt: T0 + 60_000, createdAt: T0 });
      const results = await Promise.all(
        Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? a : b).consumeChallenge('ch1', T0 + 1 + i)),
      );
      const firstUses = results.filter((r) => r !== undefined && r.usedAt === null);
      expect(firstUses).toHaveLength(1);
      const usedAt = (await a.consumeChallenge('ch1', T0 + 999))?.usedAt;
      expect(typeof usedAt).toBe('number');
      // every loser saw the winner's time, not its own
      for (const r of results) if (r?.usedAt !== null) expect(r?.usedAt).toBe(usedAt);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('the evidence counter advances once per value and ends at the maximum', async () => {
    const [a, b] = await twoProcesses();
    try {
      const same = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).advanceTerminalCounter('trm_1', 5, T0)),
      );
      expect(same.filter(Boolean)).toHaveLength(1);
      const counters = [9, 7, 12, 6, 11, 8, 10];
      await Promise.all(counters.map((c, i) => (i % 2 === 0 ? a : b).advanceTerminalCounter('trm_1', c, T0)));
      expect((await b.getTerminal('trm_1'))?.lastCounter).toBe(12);
      expect(await a.advanceTerminalCounter('trm_1', 12, T0)).toBe(false);
      expect(await b.advanceTerminalCounter('trm_1', 11, T0)).toBe(false);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a ticket is consumed once across both pools', async () => {
    const [a, b] = await twoProcesses();
    try {
      await a.recordTicket({
        jti: 'j1',
        terminalId: 'trm_1',
        use: 'pin',
        kid: 'k1',
        issuedAt: T0,
        expiresAt: T0 + 60_000,
      });
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          (i % 2 === 0 ? a : b).consumeTicket('j1', 'trm_1', 'pin', T0 + i),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('KSN counters and proof jtis: one winner across both pools', async () => {
    const [a, b] = await twoProcesses();
    try {
      const ksn = await Promise.all(
        Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).advanceKsnCounter('p', 3, T0)),
      );
      expect(ksn.filter(Boolean)).toHaveLength(1);
      const jti = await Promise.all(
        Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).rememberProofJti('x', T0 + 1000, T0)),
      );
      expect(jti.filter(Boolean)).toHaveLength(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('velocity hits from both pools each get their own count (a velocity rule sees every event)', async () => {
    const [a, b] = await twoProcesses();
    try {
      const counts = await Promise.all(
        Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b).velocityHit('v:card', T0, 60_000)),
      );
      expect([...counts].sort((x, y) => x - y)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      const distinct = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 === 0 ? a : b).velocityDistinct('v:terminals', `t${i}`, T0, 60_000),
        ),
      );
      expect([...distinct].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('audit appends from both pools form one unbroken chain', async () => {
    const [a, b] = await twoProcesses();
    try {
      const n = 30;
      await Promise.all(
        Array.from({ length: n }, (_, i) =>
          (i % 2 === 0 ? a : b).appendAudit(
            { at: new Date(T0).toISOString(), actor: 'op', action: 'x', subject: `s${i}`, data: { i } },
            chain,
          ),
        ),
      );
      const rows = await a.listAudit(0, 1000);
      expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      let prev = '0';
      for (const r of rows) {
        expect(r.prevHash).toBe(prev);
        expect(r.hash).toBe(`${prev}:${r.seq}`);
        prev = r.hash;
      }
      expect(new Set(rows.map((r) => r.subject)).size).toBe(n);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('concurrent halts on one terminal from both pools get distinct outbox sequence numbers', async () => {
    const [a, b] = await twoProcesses();
    try {
      const halt = (id: string) => ({
        id,
        scope: 'terminal' as const,
        target: 'trm_1',
        reason: 'r',
        createdBy: 'op',
        createdAt: T0,
        liftedAt: null,
        liftedBy: null,
      });
      await Promise.all(
        Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).createHalt(halt(`h${i}`), ['trm_1'])),
      );
      expect((await a.pendingOutbox('trm_1')).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]);
      expect((await b.getTerminal('trm_1'))?.state).toBe('halted');
    } finally {
      await a.close();
      await b.close();
    }
  });
});

/**
 * A fresh schema at an older version (the first `version` migrations), holding the rows `seed`
 * inserts (it is given the quoted schema name); resolves to the schema's name.
 */
async function schemaAtVersion(version: number, seed: (sql: string) => string): Promise<string> {
  const schema = freshSchemaName('v');
  schemas.push(schema);
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
  const client = await pool.connect();
  try {
    expect(await migratePostgres(client, schema, PG_MIGRATIONS.slice(0, version))).toBe(version);
    await client.query(seed(`"${schema}"`));
  } finally {
    client.release();
    await pool.end();
  }
  return schema;
}

/** A fresh schema at the current version, empty; resolves to its name. */
async function migratedSchema(): Promise<string> {
  const schema = freshSchemaName('i');
  schemas.push(schema);
  await (await openPostgresStore({ url: PG_URL, schema, max: 1 })).close();
  return schema;
}

/**
 * The plan PostgreSQL makes for `sql` (its `$n` bound to `params`) in `schema`, with sequential scans
 * priced out (so the planner takes an index whenever there is one): it uses `index` and scans no table
 * sequentially. Resolves to the plan's text for further checks.
 */
async function expectPlanUses(
  schema: string,
  sql: string,
  params: readonly (string | number)[],
  index: string,
): Promise<string> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query('SET enable_seqscan = off');
    await client.query(`SET search_path TO "${schema}"`);
    const bound = sql.replace(/\$(\d+)/g, (_, n: string) => {
      const v = params[Number(n) - 1];
      if (v === undefined) throw new Error(`no parameter $${n}`);
      return typeof v === 'number' ? String(v) : client.escapeLiteral(v);
    });
    const plan = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${bound}`);
    const text = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(text).toContain(index);
    expect(text).not.toContain('Seq Scan');
    return text;
  } finally {
    await client.end();
  }
}

describePg('PostgreSQL store: migrations and opening', () => {
  it('two processes migrating one new schema at once both open it at the current version', async () => {
    const schema = freshSchemaName('m');
    schemas.push(schema);
    const [a, b] = await Promise.all([
      openPostgresStore({ url: PG_URL, schema, max: 2 }),
      openPostgresStore({ url: PG_URL, schema, max: 2 }),
    ]);
    expect(await a.schemaVersion()).toBe(PG_MIGRATIONS.length);
    expect(await b.schemaVersion()).toBe(PG_MIGRATIONS.length);
    expect(a.engine).toBe('postgres');
    await a.close();
    await b.close();
    // Reopening migrates nothing twice.
    const again = await openPostgresStore({ url: PG_URL, schema, max: 2 });
    expect(await again.schemaVersion()).toBe(PG_MIGRATIONS.length);
    await again.close();
  });

  it("migration 7 numbers a version-6 schema's tickets; the newest of a terminal is found", async () => {
    const schema = await schemaAtVersion(
      6,
      (q) =>
        `INSERT INTO ${q}.tickets (jti, terminal_id, use, kid, issued_at, expires_at)
         VALUES ('j2', 't1', 'session', 'k', 1000, 61000), ('j1', 't1', 'pin-entry', 'k', 1000, 61000),
                ('j0', 't1', 'session', 'k', 0, 60000)`,
    );
    const s = await openPostgresStore({ url: PG_URL, schema, max: 1 });
    try {
      expect(await s.schemaVersion()).toBe(PG_MIGRATIONS.length);
      expect(await s.latestTicket('t1')).toMatchObject({ jti: 'j1', use: 'pin-entry', usedAt: null });
      await s.recordTicket({
        jti: 'j3',
        terminalId: 't1',
        use: 'session',
        kid: 'k',
        issuedAt: 1000,
        expiresAt: 61000,
      });
      expect((await s.latestTicket('t1'))?.jti).toBe('j3');
    } finally {
      await s.close();
    }
  });

  it('migration 11 keeps the terminals, columns and indexes of a version-10 schema and allows decommissioned', async () => {
    const schema = await schemaAtVersion(10, (q) => V10_TERMINALS.insert(`${q}.`));
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    const indexes = async (): Promise<{ indexname: string; indexdef: string }[]> =>
      (
        await admin.query<{ indexname: string; indexdef: string }>(
          'SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname',
          [schema, 'terminals'],
        )
      ).rows;
    const before = await indexes();
    const s = await openPostgresStore({ url: PG_URL, schema, max: 1 });
    try {
      expect(await s.schemaVersion()).toBe(PG_MIGRATIONS.length);
      expect(await s.listTerminals({ limit: 10 })).toEqual(V10_TERMINALS.rows);
      expect(await indexes()).toEqual(before);
      expect(await s.setTerminalState('t2', 'decommissioned', 'closed shop', 20)).toBe(true);
      await expect(s.setTerminalState('t1', 'bogus' as never, null)).rejects.toThrow(/terminals_state_check/);
    } finally {
      await s.close();
      await admin.end();
    }
  });

  it('migration 8 keeps the operators of a version-7 schema at login epoch 0 and keeps the lock columns the previous release uses (rolling upgrade)', async () => {
    const schema = await schemaAtVersion(7, (q) => V7_OPERATOR.insert(`${q}.operators`));
    const s = await openPostgresStore({ url: PG_URL, schema, max: 1 });
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      expect(await s.schemaVersion()).toBe(PG_MIGRATIONS.length);
      expect(await s.getOperator(V7_OPERATOR.row.id)).toEqual(V7_OPERATOR.row);
      const cols = await admin.query<{ column_name: string }>(
        'SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2',
        [schema, 'operators'],
      );
      V7_OPERATOR.expectColumns(cols.rows.map((r) => r.column_name));
      // A process of the previous release on the migrated schema: reads a row this code inserted,
      // inserts its own, which this code reads.
      await s.createOperator({ ...V7_OPERATOR.row, id: 'usr_new', username: 'nina' });
      const old = await admin.query(V7_OPERATOR.oldRelease.read(`"${schema}".operators`, 'usr_new'));
      expect(old.rows).toEqual([V7_OPERATOR.oldRelease.expected]);
      await admin.query(V7_OPERATOR.oldRelease.insert(`"${schema}".operators`));
      expect(await s.getOperator('usr_old')).toMatchObject({ username: 'olga', loginEpoch: 0 });
    } finally {
      await admin.end();
      await s.close();
    }
  });

  it('the sessions purge can find expired sessions through the sessions_expires index (migration 9)', async () => {
    await expectPlanUses(
      await migratedSchema(),
      'DELETE FROM sessions WHERE expires_at < $1',
      [1],
      'sessions_expires',
    );
  });

  it('each batch of the velocity purge can find old events through the velocity_at index (migration 10)', async () => {
    const text = await expectPlanUses(await migratedSchema(), PG_VELOCITY_PURGE_SQL, [1, 10], 'velocity_at');
    expect(text).toContain('Tid Scan on velocity_events');
  });

  it("a lock-out's start is read backwards through velocity_key, at most max rows, without a sort", async () => {
    const text = await expectPlanUses(
      await migratedSchema(),
      PG_LOCKOUT_START_SQL,
      ['auth:login:user:x', 0, 10, 4],
      'velocity_key',
    );
    expect(text).toMatch(/Limit[\s\S]*Index (Only )?Scan Backward using velocity_key/);
    expect(text).not.toContain('Sort');
  });

  it('migration 10 keeps the velocity events of a version-9 schema, and the purge then deletes the old ones', async () => {
    const schema = await schemaAtVersion(
      9,
      (q) =>
        `INSERT INTO ${q}.velocity_events (key, at, member) VALUES ('auth:login:user:x|n', 1000, ''),
         ('card-terminals:ct', 2000, 't1'), ('terminal-rate:t1', 5000, '')`,
    );
    const s = await openPostgresStore({ url: PG_URL, schema, max: 1 });
    try {
      expect(await s.schemaVersion()).toBe(PG_MIGRATIONS.length);
      expect(await s.velocityCount('card-terminals:ct', 5000, 10_000)).toBe(1);
      expect(await s.purgeVelocityEvents(3000)).toBe(2);
      expect(await s.velocityCount('terminal-rate:t1', 5000, 10_000)).toBe(1);
    } finally {
      await s.close();
    }
  });

  it('refuses a schema newer than the code with StoreError POS_ERR_STORE', async () => {
    const schema = freshSchemaName('n');
    schemas.push(schema);
    const s = await openPostgresStore({ url: PG_URL, schema, max: 1 });
    await s.close();
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`UPDATE "${schema}".schema_version SET version = $1`, [PG_MIGRATIONS.length + 1]);
    await client.end();
    const err = await openPostgresStore({ url: PG_URL, schema, max: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe('POS_ERR_STORE');
  });

  it('refuses an invalid schema name and a non-PostgreSQL URL', async () => {
    await expect(openPostgresStore({ url: PG_URL, schema: 'x"; DROP TABLE y; --' })).rejects.toMatchObject({
      code: 'POS_ERR_STORE',
    });
    await expect(openPostgresStore({ url: 'mysql://h/db' })).rejects.toMatchObject({ code: 'POS_ERR_STORE' });
  });

  it('a pooled connection killed while idle is reported, not thrown, and the pool carries on', async () => {
    const schema = freshSchemaName('k');
    schemas.push(schema);
    const errors: string[] = [];
    const s = await openPostgresStore({ url: PG_URL, schema, max: 2, onError: (m) => errors.push(m) });
    try {
      expect(await s.ping()).toBe(true);
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      const killed = await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
        [`pos-backend ${schema}`],
      );
      await admin.end();
      expect(killed.rowCount).toBeGreaterThanOrEqual(1);
      await vi.waitFor(() => expect(errors.length).toBeGreaterThanOrEqual(1));
      expect(errors.join(' ')).not.toContain(PG_URL);
      expect(await s.ping()).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('opens a schema the role owns without the CREATE privilege on the database', async () => {
    const schema = freshSchemaName('o');
    const role = `${schema}_role`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE "${role}" LOGIN`);
      await admin.query(`CREATE SCHEMA "${schema}" AUTHORIZATION "${role}"`);
      const url = new URL(PG_URL);
      url.username = role;
      url.password = '';
      const s = await openPostgresStore({ url: url.toString(), schema, max: 1 });
      expect(await s.schemaVersion()).toBe(PG_MIGRATIONS.length);
      await s.close();
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.query(`DROP ROLE IF EXISTS "${role}"`);
      await admin.end();
    }
  });

  it('ping is false after close', async () => {
    const s = await openFresh();
    expect(await s.ping()).toBe(true);
    await s.close();
    expect(await s.ping()).toBe(false);
  });
});

it('redactUrl hides the password and query of a database URL', () => {
  const out = redactUrl('postgres://alice:s3cret@db.example:5432/pos?sslmode=require&password=x');
  expect(out).not.toContain('s3cret');
  expect(out).not.toContain('password=x');
  expect(out).toContain('alice');
  expect(out).toContain('db.example:5432/pos');
  expect(redactUrl('not a url')).toBe('<unparseable URL>');
});

it('PostgreSQL has one migration per SQLite migration (both engines report the same schema version)', () => {
  expect(PG_MIGRATIONS).toHaveLength(MIGRATIONS.length);
});
