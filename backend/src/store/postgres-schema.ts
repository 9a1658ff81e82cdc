/**
 * The PostgreSQL schema: versioned migrations mirroring the SQLite ones (store/sqlite*.ts, versions
 * 1-10), so both engines report the same schema version. Times are milliseconds since the epoch in
 * BIGINT columns; JSON documents are TEXT (stored byte for byte, so audit hashes recompute exactly).
 *
 * Differences from SQLite, all internal: `ord BIGSERIAL` columns on attestations, transactions and
 * (since 7) tickets stand in for SQLite's rowid (insertion order as a tie-breaker); `transactions.approved` is BOOLEAN.
 *
 * Migrations run in one transaction under a transaction-scoped advisory lock keyed by the schema
 * name, so two processes starting at once apply each migration once; the version lives in the
 * table `schema_version`.
 */
import type { PoolClient } from 'pg';
import { StoreError } from './types';

/** Index + 1 is the schema version. Never edit one that shipped; append. */
export const PG_MIGRATIONS: readonly string[] = [
  // 1: the core.
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE merchants (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at BIGINT NOT NULL);
  CREATE TABLE terminals (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    device_jwk TEXT NOT NULL,
    device_jkt TEXT NOT NULL UNIQUE,
    reader_serial TEXT NOT NULL,
    last_counter BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'halted')),
    state_reason TEXT,
    interval_s INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    last_attested_at BIGINT
  );
  CREATE INDEX terminals_merchant ON terminals(merchant_id);
  CREATE TABLE enrollment_codes (
    code_hash TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    used_at BIGINT,
    terminal_id TEXT
  );
  CREATE TABLE challenges (
    value TEXT PRIMARY KEY,
    terminal_id TEXT,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT
  );
  CREATE INDEX challenges_expiry ON challenges(expires_at);
  CREATE TABLE attestations (
    ord BIGSERIAL,
    id TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    purpose TEXT NOT NULL,
    counter BIGINT,
    tier TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    evidence_hash TEXT NOT NULL,
    verdict TEXT NOT NULL
  );
  CREATE INDEX attestations_terminal ON attestations(terminal_id, at);
  CREATE TABLE tickets (
    jti TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    use TEXT NOT NULL,
    kid TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
  );
  CREATE INDEX tickets_kid ON tickets(kid, expires_at);
  CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    public_jwk TEXT NOT NULL,
    encrypted_private_key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'retired')),
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    verify_until BIGINT
  );
  CREATE TABLE reference_values (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    build TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
  );
  CREATE TABLE policies (
    version TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('active', 'shadow', 'inactive')),
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
  );
  CREATE TABLE audit_entries (
    seq BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
  );
  CREATE TABLE audit_checkpoints (
    seq BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    at TEXT NOT NULL,
    kid TEXT NOT NULL,
    signature TEXT NOT NULL
  );
  CREATE TABLE transactions (
    ord BIGSERIAL,
    id TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    approved BOOLEAN NOT NULL,
    code TEXT,
    auth_code TEXT,
    card_token TEXT,
    ticket_jti TEXT NOT NULL
  );
  CREATE INDEX transactions_terminal ON transactions(terminal_id, at);
  CREATE TABLE velocity_events (key TEXT NOT NULL, at BIGINT NOT NULL, member TEXT NOT NULL DEFAULT '');
  CREATE INDEX velocity_key ON velocity_events(key, at);
  CREATE TABLE proof_jtis (jti TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
  CREATE INDEX proof_jtis_expiry ON proof_jtis(expires_at);
  CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
  );
  `,
  // 2: KSN replay guard, single-use tickets, resume-pending with the time of the last state change,
  // reader status sequence numbers.
  `
  CREATE TABLE ksn_counters (prefix TEXT PRIMARY KEY, counter BIGINT NOT NULL, updated_at BIGINT NOT NULL);
  ALTER TABLE tickets ADD COLUMN used_at BIGINT;
  CREATE TABLE reader_status_seqs (serial TEXT PRIMARY KEY, seq BIGINT NOT NULL, updated_at BIGINT NOT NULL);
  ALTER TABLE terminals DROP CONSTRAINT terminals_state_check;
  ALTER TABLE terminals ADD CONSTRAINT terminals_state_check CHECK (state IN ('active', 'halted', 'resume-pending'));
  ALTER TABLE terminals ADD COLUMN state_changed_at BIGINT;
  `,
  // 3: operators, scoped API tokens, dashboard sessions (mirrors sqlite-auth.ts).
  `
  ALTER TABLE api_tokens ADD COLUMN merchant_id TEXT;
  ALTER TABLE api_tokens ADD COLUMN created_by TEXT;
  ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
  CREATE TABLE operators (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'auditor', 'merchant')),
    merchant_id TEXT REFERENCES merchants(id),
    created_at BIGINT NOT NULL,
    disabled_at BIGINT,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until BIGINT
  );
  CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    csrf_hash TEXT NOT NULL,
    operator_id TEXT NOT NULL REFERENCES operators(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
  );
  CREATE INDEX sessions_operator ON sessions(operator_id);
  `,
  // 4: halts, the per-terminal outbox, push connections (mirrors sqlite-fleet.ts).
  `
  CREATE TABLE halts (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL CHECK (scope IN ('terminal', 'merchant', 'app-version', 'fleet')),
    target TEXT,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    lifted_at BIGINT,
    lifted_by TEXT
  );
  CREATE INDEX halts_created ON halts(created_at);
  CREATE TABLE outbox (
    terminal_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('halt', 'resume')),
    halt_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    acked_at BIGINT,
    PRIMARY KEY (terminal_id, seq)
  );
  CREATE INDEX outbox_halt ON outbox(halt_id);
  CREATE TABLE push_connections (
    terminal_id TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    connected_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
  );
  `,
  // 5: liveness (next-due time, stale mark) and app version per terminal (mirrors sqlite-liveness.ts).
  `
  ALTER TABLE terminals ADD COLUMN next_due_at BIGINT;
  ALTER TABLE terminals ADD COLUMN stale_at BIGINT;
  ALTER TABLE terminals ADD COLUMN app_version TEXT;
  ALTER TABLE terminals ADD COLUMN last_tier TEXT;
  CREATE INDEX terminals_next_due ON terminals(next_due_at) WHERE stale_at IS NULL;
  CREATE INDEX terminals_reader_serial ON terminals(reader_serial);
  CREATE INDEX terminals_app_version ON terminals(app_version);
  `,
  // 6: the active halts read on every attestation and transaction (mirrors sqlite.ts migration 6).
  `CREATE INDEX IF NOT EXISTS halts_lifted ON halts(lifted_at);`,
  // 7: a terminal's newest ticket (latestTicket; mirrors sqlite.ts migration 7). `ord` stands in for
  // SQLite's rowid: the one recorded last among tickets issued in the same second.
  `
  ALTER TABLE tickets ADD COLUMN IF NOT EXISTS ord BIGSERIAL;
  CREATE INDEX IF NOT EXISTS tickets_terminal ON tickets(terminal_id, issued_at, ord);
  `,
  // 8: an admin clears an operator's login lock-outs (login_epoch; mirrors sqlite.ts migration 8).
  // failed_logins and locked_until stay: unused by this code (its inserts leave them at their
  // defaults, 0 and NULL; the row mapping ignores them), but a process of the previous release on the
  // same schema reads and writes them during a rolling upgrade. A later release drops them, once no
  // older process runs.
  `ALTER TABLE operators ADD COLUMN IF NOT EXISTS login_epoch INTEGER NOT NULL DEFAULT 0;`,
  // 9: the sessions purge deletes by expiry (mirrors sqlite.ts migration 9).
  `CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires_at);`,
  // 10: the velocity purge deletes every event older than the longest window, of any key (mirrors
  // sqlite.ts migration 10).
  `CREATE INDEX IF NOT EXISTS velocity_at ON velocity_events(at);`,
  // 11: the decommissioned terminal state (mirrors sqlite.ts migration 11; here the CHECK is replaced
  // in place: every row, column and index stays). ADD CONSTRAINT checks the existing rows (a scan of
  // terminals inside the migration transaction, writes to terminals wait for it).
  `
  ALTER TABLE terminals DROP CONSTRAINT terminals_state_check;
  ALTER TABLE terminals ADD CONSTRAINT terminals_state_check
    CHECK (state IN ('active', 'halted', 'resume-pending', 'decommissioned'));
  `,
];

/**
 * One batch of the velocity purge: at most `$2` events older than `$1`, found through velocity_at, then
 * deleted by their row addresses (a TID scan; the table has no key of its own).
 */
export const PG_VELOCITY_PURGE_SQL =
  'DELETE FROM velocity_events WHERE ctid = ANY (ARRAY(SELECT ctid FROM velocity_events WHERE at < $1 LIMIT $2))';

/**
 * `loginLockoutStart`: the `$4 + 1`-th newest attempt of key `$1` in ($2, $3], read backwards through
 * velocity_key: at most `$4 + 1` rows, no sort.
 */
export const PG_LOCKOUT_START_SQL =
  'SELECT at FROM velocity_events WHERE key = $1 AND at > $2 AND at <= $3 ORDER BY at DESC LIMIT 1 OFFSET $4';

/** A PostgreSQL schema name we accept: a plain lower-case identifier (no quoting games). */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function quoteIdent(name: string): string {
  if (!SCHEMA_NAME.test(name)) throw new StoreError('POS_ERR_STORE', 'invalid PostgreSQL schema name');
  return `"${name}"`;
}

/**
 * Creates the schema if needed and applies the missing migrations, in one transaction under an
 * advisory lock (two processes starting at once: the second waits, then finds nothing to do).
 * Refuses a schema newer than this code. Resolves to the version.
 */
export async function migratePostgres(
  client: PoolClient,
  schema: string,
  migrations: readonly string[] = PG_MIGRATIONS,
): Promise<number> {
  const ident = quoteIdent(schema);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`pos-backend:migrate:${schema}`]);
    // Only when absent: CREATE SCHEMA checks the CREATE privilege on the database even with IF NOT
    // EXISTS, and a production role may own its schema without holding that privilege.
    const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${ident}`);
    await client.query(`SET LOCAL search_path TO ${ident}`);
    await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const r = await client.query<{ version: number }>('SELECT version FROM schema_version');
    let current = r.rows[0]?.version ?? 0;
    if (r.rows.length === 0) await client.query('INSERT INTO schema_version (version) VALUES (0)');
    if (current > migrations.length) {
      throw new StoreError(
        'POS_ERR_STORE',
        `the store schema (version ${current}) is newer than this service (version ${migrations.length})`,
      );
    }
    for (; current < migrations.length; current++) {
      await client.query(migrations[current] ?? '');
      await client.query('UPDATE schema_version SET version = $1', [current + 1]);
    }
    await client.query('COMMIT');
    return current;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
