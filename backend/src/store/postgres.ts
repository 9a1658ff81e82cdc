/**
 * The PostgreSQL store (node-postgres Pool), for one or more back-end processes sharing a database.
 * Implements the whole Store (core, auth, fleet, liveness); passes the same conformance suites as
 * SQLite (backend/test/store/). Schema and migrations: store/postgres-schema.ts.
 *
 * Atomicity across processes (docs/postgres.md):
 * - single-use / monotonic operations are one statement: `UPDATE ... WHERE <still unused / lower>
 *   RETURNING` or `INSERT ... ON CONFLICT DO UPDATE ... WHERE excluded.x > x` (row locks; the loser
 *   re-evaluates the WHERE on the committed row and changes nothing);
 * - consumeChallenge locks the row (`SELECT ... FOR UPDATE` in the same statement) so the loser sees
 *   the winner's use time;
 * - appendAudit runs in a transaction holding `pg_advisory_xact_lock` on the schema's audit key, so
 *   appends from every process are serialized and the hash chain stays linear; a state change audited
 *   in its own transaction (halt, lift, resume, enrollment, step-by-step verdict) takes that lock
 *   after its own row locks, in the same transaction;
 * - halts and outbox appends lock the terminals' rows (`FOR UPDATE`, in id order) before allocating
 *   per-terminal sequence numbers, and retry on a unique violation.
 */
import pg from 'pg';
import type { PoolClient, QueryResultRow } from 'pg';
import {
  migratePostgres,
  PG_LOCKOUT_START_SQL,
  PG_MIGRATIONS,
  PG_VELOCITY_PURGE_SQL,
  quoteIdent,
  SCHEMA_NAME,
} from './postgres-schema';
import { coalesce } from './batch';
import {
  num,
  str,
  toAttestation,
  toAudit,
  toChallenge,
  toCode,
  toHalt,
  toIssuedTicket,
  toKey,
  toOperator,
  toOutbox,
  toPolicy,
  toPushConnection,
  toSession,
  toTerminal,
  toTicket,
  toToken,
  toTransaction,
  type Row as PgRow,
} from './rows';
import {
  checkLockoutMax,
  checkVelocityPurge,
  StoreError,
  VELOCITY_PURGE_BATCH,
  type ApiTokenRow,
  type CoveringHalt,
  type DecommissionDone,
  type DecommissionOutcome,
  type DecommissionRequest,
  type LockoutProbe,
  type AuditAppend,
  type LiftDone,
  type LiftOutcome,
  type ResumeMessage,
  type AttestationOutcomeRow,
  type AttestationRow,
  type AuditDraftRow,
  type AuditRow,
  type ChallengeRow,
  type CheckpointRow,
  type EnrollmentCodeRow,
  type HaltRow,
  type IssuedTicketRow,
  type MerchantRow,
  type NewOperatorRow,
  type OperatorRow,
  type OutboxKind,
  type OutboxRow,
  type PolicyRow,
  type PushConnectionRow,
  type ReferenceValuesRow,
  type SessionRow,
  type SigningKeyRow,
  type Store,
  type TerminalQuery,
  type TerminalRow,
  type TerminalState,
  type TicketRow,
  type TransactionRow,
} from './types';

export interface PostgresStoreOptions {
  /** postgres:// or postgresql:// connection URL. */
  readonly url: string;
  /** The PostgreSQL schema holding the tables (created if absent); default `public`. */
  readonly schema?: string;
  /** Pool size (default 10). */
  readonly max?: number;
  /** Called with a redacted message when an idle pooled connection fails (default: ignored). */
  readonly onError?: (message: string) => void;
}

/** The URL with any password (and user info) replaced, for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    u.search = '';
    return u.toString();
  } catch {
    return '<unparseable URL>';
  }
}

/** Accepts only postgres:// and postgresql:// URLs with a host; returns a coded message otherwise. */
export function checkPostgresUrl(url: string): { ok: true } | { ok: false; detail: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { ok: false, detail: 'the database URL does not parse' };
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:')
    return { ok: false, detail: 'the database URL must start with postgres:// or postgresql://' };
  if (u.hostname === '') return { ok: false, detail: 'the database URL has no host' };
  return { ok: true };
}

function pgCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string'
    ? e.code
    : undefined;
}
const UNIQUE_VIOLATION = '23505';
const SERIALIZATION_FAILURE = '40001';
const DEADLOCK = '40P01';

/**
 * Opens a pool on `url`, migrates the schema, and resolves to the Store. Rejects with StoreError
 * POS_ERR_STORE (schema newer than this code, bad schema name) or the connection's error when the
 * database is unreachable (the CLI reports that without the URL's password).
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const schema = options.schema ?? 'public';
  if (!SCHEMA_NAME.test(schema)) throw new StoreError('POS_ERR_STORE', 'invalid PostgreSQL schema name');
  const checked = checkPostgresUrl(options.url);
  if (!checked.ok) throw new StoreError('POS_ERR_STORE', checked.detail);
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    options: `-c search_path=${quoteIdent(schema)}`,
    connectionTimeoutMillis: 10_000,
    application_name: `pos-backend ${schema}`,
  });
  // An idle client that loses its connection emits 'error' on the pool: never crash the process.
  pool.on('error', (e) => options.onError?.(`PostgreSQL pool: ${pgCode(e) ?? e.message}`));
  try {
    const client = await pool.connect();
    const onError = (): void => undefined; // the migration's statement rejects with it
    client.on('error', onError);
    try {
      await migratePostgres(client, schema);
    } finally {
      client.removeListener('error', onError);
      client.release();
    }
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw e;
  }
  return new PostgresStore(pool, schema);
}

class PostgresStore implements Store {
  readonly engine = 'postgres';
  private closed = false;
  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {}

  private async rows(sql: string, params: readonly unknown[] = []): Promise<PgRow[]> {
    const r = await this.pool.query<QueryResultRow>(sql, [...params]);
    return r.rows;
  }
  private async one(sql: string, params: readonly unknown[] = []): Promise<PgRow | undefined> {
    return (await this.rows(sql, params))[0];
  }
  private async count(sql: string, params: readonly unknown[] = []): Promise<number> {
    return (await this.pool.query(sql, [...params])).rowCount ?? 0;
  }
  /** Runs `work` in a transaction; retries on serialization failures, deadlocks and (optionally) unique violations. */
  private async tx<T>(
    work: (c: PoolClient) => Promise<T>,
    options: { readonly retryUnique?: boolean } = {},
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.pool.connect();
      // A checked-out client has no pool listener: a connection the server ends between two
      // statements (PostgreSQL stopping, crashing) emits 'error', which would crash the process.
      // The statement in progress, or the next one, rejects with it instead.
      let lost: Error | undefined;
      const onError = (e: Error): void => {
        lost = e;
      };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const out = await work(client);
        await client.query('COMMIT');
        return out;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        const code = pgCode(e);
        const retriable =
          code === SERIALIZATION_FAILURE ||
          code === DEADLOCK ||
          (options.retryUnique === true && code === UNIQUE_VIOLATION);
        if (!retriable || attempt >= 20) throw e;
      } finally {
        client.removeListener('error', onError);
        // A broken connection is discarded, not returned to the pool.
        client.release(lost);
      }
    }
  }

  async ping(): Promise<boolean> {
    if (this.closed) return false;
    try {
      return (await this.one('SELECT 1 AS one'))?.['one'] === 1;
    } catch {
      return false;
    }
  }
  async schemaVersion(): Promise<number> {
    return num((await this.one('SELECT version FROM schema_version'))?.['version'] ?? 0);
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  async getMeta(key: string): Promise<string | undefined> {
    const r = await this.one('SELECT value FROM meta WHERE key = $1', [key]);
    return r === undefined ? undefined : str(r['value']);
  }
  async initMeta(key: string, value: string): Promise<boolean> {
    return (
      (await this.count('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [
        key,
        value,
      ])) === 1
    );
  }
  async setMeta(key: string, value: string): Promise<void> {
    await this.pool.query(
      'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      [key, value],
    );
  }

  async createMerchant(row: MerchantRow): Promise<void> {
    await this.insertMerchant(this.pool, row);
  }
  async createMerchantAudited(
    row: MerchantRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited((c) => this.insertMerchant(c, row), draft, chain);
  }
  private async insertMerchant(q: PoolClient | pg.Pool, row: MerchantRow): Promise<void> {
    await q.query('INSERT INTO merchants (id, name, created_at) VALUES ($1, $2, $3)', [
      row.id,
      row.name,
      row.createdAt,
    ]);
  }
  async getMerchant(id: string): Promise<MerchantRow | undefined> {
    const r = await this.one('SELECT * FROM merchants WHERE id = $1', [id]);
    return r === undefined
      ? undefined
      : { id: str(r['id']), name: str(r['name']), createdAt: num(r['created_at']) };
  }
  async listMerchants(): Promise<MerchantRow[]> {
    return (await this.rows('SELECT * FROM merchants ORDER BY id')).map((r) => ({
      id: str(r['id']),
      name: str(r['name']),
      createdAt: num(r['created_at']),
    }));
  }

  async createEnrollmentCode(row: Omit<EnrollmentCodeRow, 'usedAt' | 'terminalId'>): Promise<void> {
    await this.insertEnrollmentCode(this.pool, row);
  }
  async createEnrollmentCodeAudited(
    row: Omit<EnrollmentCodeRow, 'usedAt' | 'terminalId'>,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited((c) => this.insertEnrollmentCode(c, row), draft, chain);
  }
  private async insertEnrollmentCode(
    q: PoolClient | pg.Pool,
    row: Omit<EnrollmentCodeRow, 'usedAt' | 'terminalId'>,
  ): Promise<void> {
    await q.query(
      'INSERT INTO enrollment_codes (code_hash, merchant_id, expires_at, created_at, created_by) VALUES ($1, $2, $3, $4, $5)',
      [row.codeHash, row.merchantId, row.expiresAt, row.createdAt, row.createdBy],
    );
  }
  async consumeEnrollmentCode(
    codeHash: string,
    now: number,
    terminalId: string,
  ): Promise<EnrollmentCodeRow | undefined> {
    const r = await this.one(
      `UPDATE enrollment_codes SET used_at = $1, terminal_id = $2
       WHERE code_hash = $3 AND used_at IS NULL AND expires_at > $1 RETURNING *`,
      [now, terminalId, codeHash],
    );
    return r === undefined ? undefined : toCode(r);
  }

  async createTerminal(row: TerminalRow): Promise<void> {
    await this.insertTerminal(this.pool, row);
  }
  async createTerminalAudited(
    row: TerminalRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited((c) => this.insertTerminal(c, row), draft, chain);
  }
  private async insertTerminal(q: PoolClient | pg.Pool, row: TerminalRow): Promise<void> {
    try {
      await q.query(
        `INSERT INTO terminals (id, merchant_id, device_jwk, device_jkt, reader_serial, last_counter, state, state_reason,
           interval_s, created_at, last_attested_at, state_changed_at, next_due_at, stale_at, app_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
        [
          row.id,
          row.merchantId,
          row.deviceJwk,
          row.deviceJkt,
          row.readerSerial,
          row.lastCounter,
          row.state,
          row.stateReason,
          row.intervalS,
          row.createdAt,
          row.lastAttestedAt,
          row.stateChangedAt ?? null,
          row.nextDueAt ?? null,
          row.staleAt ?? null,
          row.appVersion ?? null,
        ],
      );
    } catch (e) {
      if (pgCode(e) === UNIQUE_VIOLATION)
        throw new StoreError('POS_ERR_ENROLLMENT_KEY_IN_USE', 'device key already enrolled');
      throw e;
    }
  }
  async getTerminal(id: string): Promise<TerminalRow | undefined> {
    const r = await this.one('SELECT * FROM terminals WHERE id = $1', [id]);
    return r === undefined ? undefined : toTerminal(r);
  }
  async countTerminals(): Promise<number> {
    return num((await this.one('SELECT COUNT(*) AS n FROM terminals'))?.['n']);
  }
  async advanceTerminalCounter(id: string, counter: number, at: number): Promise<boolean> {
    return (
      (await this.count(
        'UPDATE terminals SET last_counter = $1, last_attested_at = $2 WHERE id = $3 AND last_counter < $1',
        [counter, at, id],
      )) === 1
    );
  }
  async setTerminalState(
    id: string,
    state: TerminalState,
    reason: string | null,
    at?: number,
  ): Promise<boolean> {
    return (
      (await this.count(
        'UPDATE terminals SET state = $1, state_reason = $2, state_changed_at = COALESCE($3, state_changed_at) WHERE id = $4',
        [state, reason, at ?? null, id],
      )) === 1
    );
  }
  async transitionTerminalState(
    id: string,
    from: TerminalState,
    to: TerminalState,
    reason: string | null,
    at: number,
  ): Promise<boolean> {
    return this.transitionRow(this.pool, id, from, to, reason, at);
  }
  async transitionTerminalStateAudited(
    id: string,
    from: TerminalState,
    to: TerminalState,
    reason: string | null,
    at: number,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined> {
    return this.writeAudited((c) => this.transitionRow(c, id, from, to, reason, at), draft, chain);
  }
  private async transitionRow(
    q: PoolClient | pg.Pool,
    id: string,
    from: TerminalState,
    to: TerminalState,
    reason: string | null,
    at: number,
  ): Promise<boolean> {
    const r = await q.query(
      'UPDATE terminals SET state = $1, state_reason = $2, state_changed_at = $3 WHERE id = $4 AND state = $5',
      [to, reason, at, id, from],
    );
    return r.rowCount === 1;
  }

  async createChallenge(row: Omit<ChallengeRow, 'usedAt'>): Promise<void> {
    await this.pool.query(
      'INSERT INTO challenges (value, terminal_id, expires_at, created_at) VALUES ($1, $2, $3, $4)',
      [row.value, row.terminalId, row.expiresAt, row.createdAt],
    );
  }
  async consumeChallenge(value: string, now: number): Promise<ChallengeRow | undefined> {
    // The CTE locks the row; a racing caller waits, then reads the committed row (used_at set) as
    // its "before", and the COALESCE keeps the first use's time.
    const r = await this.one(
      `WITH prev AS (SELECT * FROM challenges WHERE value = $1 FOR UPDATE)
       UPDATE challenges c SET used_at = COALESCE(c.used_at, $2) FROM prev WHERE c.value = prev.value
       RETURNING prev.*`,
      [value, now],
    );
    return r === undefined ? undefined : toChallenge(r);
  }
  async useChallenge(row: Omit<ChallengeRow, 'usedAt'>, now: number): Promise<ChallengeRow> {
    // A racing insert of the same value waits for the first to commit, then does nothing and reads
    // the committed row (used) through consumeChallenge.
    const inserted = await this.one(
      `INSERT INTO challenges (value, terminal_id, expires_at, created_at, used_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (value) DO NOTHING RETURNING value`,
      [row.value, row.terminalId, row.expiresAt, row.createdAt, now],
    );
    if (inserted !== undefined) return { ...row, usedAt: null };
    const before = await this.consumeChallenge(row.value, now);
    if (before === undefined) throw new StoreError('POS_ERR_STORE', 'a used challenge vanished');
    return before;
  }
  async purgeChallenges(before: number): Promise<number> {
    return this.count('DELETE FROM challenges WHERE expires_at < $1', [before]);
  }

  async recordAttestationOutcome(
    outcome: AttestationOutcomeRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<{ readonly ok: true; readonly audit: AuditRow } | { readonly ok: false }> {
    return this.tx(
      async (c): Promise<{ readonly ok: true; readonly audit: AuditRow } | { readonly ok: false }> => {
        const changed = await c.query(
          `UPDATE terminals SET last_counter = $1, last_attested_at = $2, next_due_at = $3, last_tier = $4
         WHERE id = $5 AND last_counter < $1 AND state = 'active' AND stale_at IS NULL`,
          [outcome.counter, outcome.at, outcome.nextDueAt, outcome.lastTier, outcome.terminalId],
        );
        if (changed.rowCount !== 1) return { ok: false };
        await this.insertAttestation(c, outcome.attestation);
        const t = outcome.ticket;
        if (t !== null) {
          await c.query(
            'INSERT INTO tickets (jti, terminal_id, use, kid, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)',
            [t.jti, t.terminalId, t.use, t.kid, t.issuedAt, t.expiresAt],
          );
        }
        // The audit lock last, so it is held for the shortest time (as in appendAudit).
        const entry = await this.chainAudit(c, outcome.audit, chain);
        return { ok: true, audit: entry };
      },
    );
  }
  async recordAttestationAudited(
    row: AttestationRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited((c) => this.insertAttestation(c, row), draft, chain);
  }
  private async insertAttestation(c: PoolClient | pg.Pool, row: AttestationRow): Promise<void> {
    await c.query(
      `INSERT INTO attestations (id, terminal_id, at, purpose, counter, tier, policy_version, evidence_hash, verdict)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        row.id,
        row.terminalId,
        row.at,
        row.purpose,
        row.counter,
        row.tier,
        row.policyVersion,
        row.evidenceHash,
        JSON.stringify(row.verdict),
      ],
    );
  }
  async recordAttestation(row: AttestationRow): Promise<void> {
    await this.insertAttestation(this.pool, row);
  }
  async listAttestations(terminalId: string, limit: number): Promise<AttestationRow[]> {
    return (
      await this.rows(
        'SELECT * FROM attestations WHERE terminal_id = $1 ORDER BY at DESC, ord DESC LIMIT $2',
        [terminalId, limit],
      )
    ).map(toAttestation);
  }
  async countAttestations(): Promise<number> {
    return num((await this.one('SELECT COUNT(*) AS n FROM attestations'))?.['n']);
  }

  async recordTicket(row: TicketRow): Promise<void> {
    await this.pool.query(
      'INSERT INTO tickets (jti, terminal_id, use, kid, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)',
      [row.jti, row.terminalId, row.use, row.kid, row.issuedAt, row.expiresAt],
    );
  }
  async getTicket(jti: string): Promise<TicketRow | undefined> {
    const r = await this.one('SELECT * FROM tickets WHERE jti = $1', [jti]);
    return r === undefined ? undefined : toTicket(r);
  }
  async latestTicket(terminalId: string): Promise<IssuedTicketRow | null> {
    // ord (migration 7): the one recorded last among tickets issued in the same second, as SQLite's rowid.
    const r = await this.one(
      'SELECT * FROM tickets WHERE terminal_id = $1 ORDER BY issued_at DESC, ord DESC LIMIT 1',
      [terminalId],
    );
    return r === undefined ? null : toIssuedTicket(r);
  }
  async consumeTicket(jti: string, terminalId: string, use: string, now: number): Promise<boolean> {
    return (
      (await this.count(
        `UPDATE tickets SET used_at = $1
         WHERE jti = $2 AND terminal_id = $3 AND use = $4 AND used_at IS NULL AND expires_at > $1`,
        [now, jti, terminalId, use],
      )) === 1
    );
  }
  async lastTicketExpiry(kid: string): Promise<number | undefined> {
    const m = (await this.one('SELECT MAX(expires_at) AS m FROM tickets WHERE kid = $1', [kid]))?.['m'];
    return m === null || m === undefined ? undefined : num(m);
  }

  async putSigningKey(row: SigningKeyRow): Promise<void> {
    await this.pool.query(
      `INSERT INTO signing_keys (kid, public_jwk, encrypted_private_key, state, created_at, retired_at, verify_until)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        row.kid,
        row.publicJwk,
        row.encryptedPrivateKey,
        row.state,
        row.createdAt,
        row.retiredAt,
        row.verifyUntil,
      ],
    );
  }
  async listSigningKeys(): Promise<SigningKeyRow[]> {
    return (await this.rows('SELECT * FROM signing_keys ORDER BY created_at, kid')).map(toKey);
  }
  async retireSigningKey(kid: string, retiredAt: number, verifyUntil: number): Promise<void> {
    await this.pool.query(
      "UPDATE signing_keys SET state = 'retired', retired_at = $1, verify_until = $2, encrypted_private_key = '' WHERE kid = $3",
      [retiredAt, verifyUntil, kid],
    );
  }
  async deleteSigningKey(kid: string): Promise<void> {
    await this.pool.query('DELETE FROM signing_keys WHERE kid = $1', [kid]);
  }

  async putReferenceValues(row: ReferenceValuesRow): Promise<void> {
    await this.insertReferenceValues(this.pool, row);
  }
  async putReferenceValuesAudited(
    row: ReferenceValuesRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited((c) => this.insertReferenceValues(c, row), draft, chain);
  }
  private async insertReferenceValues(q: PoolClient | pg.Pool, row: ReferenceValuesRow): Promise<void> {
    await q.query(
      'INSERT INTO reference_values (id, version, build, document, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)',
      [row.id, row.version, row.build, JSON.stringify(row.document), row.createdAt, row.createdBy],
    );
  }
  async listReferenceValues(): Promise<ReferenceValuesRow[]> {
    return (await this.rows('SELECT * FROM reference_values ORDER BY created_at, id')).map((r) => ({
      id: str(r['id']),
      version: str(r['version']),
      build: str(r['build']) as ReferenceValuesRow['build'],
      document: JSON.parse(str(r['document'])) as Record<string, unknown>,
      createdAt: num(r['created_at']),
      createdBy: str(r['created_by']),
    }));
  }
  async deleteReferenceValues(id: string): Promise<boolean> {
    return (await this.count('DELETE FROM reference_values WHERE id = $1', [id])) === 1;
  }
  async deleteReferenceValuesAudited(
    id: string,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined> {
    return this.writeAudited(
      async (c) => (await c.query('DELETE FROM reference_values WHERE id = $1', [id])).rowCount === 1,
      draft,
      chain,
    );
  }

  async putPolicy(row: PolicyRow): Promise<void> {
    await this.insertPolicy(this.pool, row);
  }
  async putPolicyAudited(
    row: PolicyRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited((c) => this.insertPolicy(c, row), draft, chain);
  }
  private async insertPolicy(q: PoolClient | pg.Pool, row: PolicyRow): Promise<void> {
    try {
      await q.query(
        'INSERT INTO policies (version, document, role, created_at, created_by) VALUES ($1, $2, $3, $4, $5)',
        [row.version, JSON.stringify(row.document), row.role, row.createdAt, row.createdBy],
      );
    } catch (e) {
      if (pgCode(e) === UNIQUE_VIOLATION)
        throw new StoreError('POS_ERR_POLICY_EXISTS', 'policy version exists');
      throw e;
    }
  }
  async getPolicy(version: string): Promise<PolicyRow | undefined> {
    const r = await this.one('SELECT * FROM policies WHERE version = $1', [version]);
    return r === undefined ? undefined : toPolicy(r);
  }
  async listPolicies(): Promise<PolicyRow[]> {
    return (await this.rows('SELECT * FROM policies ORDER BY created_at, version')).map(toPolicy);
  }
  async activatePolicy(version: string): Promise<boolean> {
    return this.tx((c) => this.switchPolicy(c, version));
  }
  async activatePolicyAudited(
    version: string,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined> {
    // The policy lock, then the audit lock (nothing takes them the other way round).
    return this.writeAudited((c) => this.switchPolicy(c, version), draft, chain);
  }
  /** Makes `version` the one active policy inside `c`'s transaction; false when unknown. */
  private async switchPolicy(c: PoolClient, version: string): Promise<boolean> {
    // One activation at a time across processes: exactly one active policy stays true.
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`pos-backend:policy:${this.schema}`]);
    if ((await c.query('SELECT 1 FROM policies WHERE version = $1', [version])).rowCount === 0) return false;
    await c.query("UPDATE policies SET role = 'inactive' WHERE role = 'active'");
    await c.query("UPDATE policies SET role = 'active' WHERE version = $1", [version]);
    return true;
  }
  async setPolicyShadow(version: string, shadow: boolean): Promise<boolean> {
    return this.shadowRow(this.pool, version, shadow);
  }
  async setPolicyShadowAudited(
    version: string,
    shadow: boolean,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined> {
    return this.writeAudited((c) => this.shadowRow(c, version, shadow), draft, chain);
  }
  private async shadowRow(q: PoolClient | pg.Pool, version: string, shadow: boolean): Promise<boolean> {
    const r = await q.query("UPDATE policies SET role = $1 WHERE version = $2 AND role <> 'active'", [
      shadow ? 'shadow' : 'inactive',
      version,
    ]);
    return r.rowCount === 1;
  }

  async appendAudit(
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.tx((c) => this.chainAudit(c, draft, chain));
  }
  /**
   * `write`, then the audit entry chained after it, in one transaction. `write` throws to refuse; one
   * that answers false (nothing changed) commits without an entry, and the answer is undefined.
   */
  private writeAudited(
    write: (c: PoolClient) => Promise<boolean>,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined>;
  private writeAudited(
    write: (c: PoolClient) => Promise<void>,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow>;
  private writeAudited(
    write: (c: PoolClient) => Promise<unknown>,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined> {
    return this.tx(async (c) => ((await write(c)) === false ? undefined : this.chainAudit(c, draft, chain)));
  }
  /** Appends one audit entry inside the caller's transaction (see `chainAudits`). */
  private async chainAudit(
    c: PoolClient,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    const [entry] = await this.chainAudits(c, [draft], chain);
    if (entry === undefined) throw new StoreError('POS_ERR_STORE', 'audit entry not appended');
    return entry;
  }
  /**
   * Appends audit entries inside the caller's transaction. The advisory lock serializes appends from
   * every process on this schema: the head read after it is the head the first entry links to. Two
   * round trips: the lock and the head read as two statements of one simple query (the read takes
   * its own snapshot, once the lock is held), then every entry in one INSERT.
   */
  private async chainAudits(
    c: PoolClient,
    drafts: readonly AuditDraftRow[],
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow[]> {
    if (drafts.length === 0) return [];
    const results: unknown = await c.query(
      `SELECT pg_advisory_xact_lock(hashtext(${c.escapeLiteral(`pos-backend:audit:${this.schema}`)}));
       SELECT * FROM audit_entries ORDER BY seq DESC LIMIT 1`,
    );
    const read: unknown = Array.isArray(results) ? results[1] : undefined;
    if (typeof read !== 'object' || read === null || !('rows' in read) || !Array.isArray(read.rows))
      throw new StoreError('POS_ERR_STORE', 'audit head not read');
    const head = read.rows[0] as QueryResultRow | undefined;
    let prev = head === undefined ? undefined : toAudit(head);
    const entries: AuditRow[] = [];
    for (const draft of drafts) {
      prev = chain(prev, draft);
      entries.push(prev);
    }
    await c.query(
      `INSERT INTO audit_entries (seq, at, actor, action, subject, data, prev_hash, hash)
       SELECT seq, at, actor, action, subject, data, prev_hash, hash FROM json_to_recordset($1::json)
         AS x(seq bigint, at text, actor text, action text, subject text, data text, prev_hash text, hash text)`,
      [
        JSON.stringify(
          entries.map((e) => ({
            seq: e.seq,
            at: e.at,
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            data: JSON.stringify(e.data),
            prev_hash: e.prevHash,
            hash: e.hash,
          })),
        ),
      ],
    );
    return entries;
  }
  async auditHead(): Promise<AuditRow | undefined> {
    const r = await this.one('SELECT * FROM audit_entries ORDER BY seq DESC LIMIT 1');
    return r === undefined ? undefined : toAudit(r);
  }
  async listAudit(afterSeq: number, limit: number): Promise<AuditRow[]> {
    return (
      await this.rows('SELECT * FROM audit_entries WHERE seq > $1 ORDER BY seq LIMIT $2', [afterSeq, limit])
    ).map(toAudit);
  }
  async putCheckpoint(row: CheckpointRow): Promise<void> {
    await this.pool.query(
      `INSERT INTO audit_checkpoints (seq, hash, at, kid, signature) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (seq) DO UPDATE SET hash = excluded.hash, at = excluded.at, kid = excluded.kid, signature = excluded.signature`,
      [row.seq, row.hash, row.at, row.kid, row.signature],
    );
  }
  async listCheckpoints(): Promise<CheckpointRow[]> {
    return (await this.rows('SELECT * FROM audit_checkpoints ORDER BY seq')).map((r) => ({
      seq: num(r['seq']),
      hash: str(r['hash']),
      at: str(r['at']),
      kid: str(r['kid']),
      signature: str(r['signature']),
    }));
  }

  async recordTransaction(row: TransactionRow): Promise<void> {
    await this.pool.query(
      `INSERT INTO transactions (id, terminal_id, merchant_id, at, amount, currency, approved, code, auth_code, card_token, ticket_jti)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        row.id,
        row.terminalId,
        row.merchantId,
        row.at,
        row.amount,
        row.currency,
        row.approved,
        row.code,
        row.authCode,
        row.cardToken,
        row.ticketJti,
      ],
    );
  }
  async listTransactions(terminalId: string, limit: number): Promise<TransactionRow[]> {
    return (
      await this.rows(
        'SELECT * FROM transactions WHERE terminal_id = $1 ORDER BY at DESC, ord DESC LIMIT $2',
        [terminalId, limit],
      )
    ).map(toTransaction);
  }

  async velocityHit(key: string, now: number, windowMs: number): Promise<number> {
    return this.tx(async (c) => {
      // Serialize hits on one key (READ COMMITTED alone lets concurrent hits each count only themselves).
      await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`velocity:${key}`]);
      await c.query('DELETE FROM velocity_events WHERE key = $1 AND at <= $2', [key, now - windowMs]);
      await c.query("INSERT INTO velocity_events (key, at, member) VALUES ($1, $2, '')", [key, now]);
      const r = await c.query<QueryResultRow>(
        'SELECT COUNT(*) AS n FROM velocity_events WHERE key = $1 AND at > $2',
        [key, now - windowMs],
      );
      return num(r.rows[0]?.['n']);
    });
  }
  async velocityCount(key: string, now: number, windowMs: number): Promise<number> {
    return num(
      (
        await this.one('SELECT COUNT(*) AS n FROM velocity_events WHERE key = $1 AND at > $2', [
          key,
          now - windowMs,
        ])
      )?.['n'],
    );
  }
  async velocityReset(key: string): Promise<void> {
    await this.pool.query('DELETE FROM velocity_events WHERE key = $1', [key]);
  }
  async velocityDistinct(key: string, member: string, now: number, windowMs: number): Promise<number> {
    return this.tx(async (c) => {
      // Serialize hits on one key (READ COMMITTED alone lets concurrent hits each count only themselves).
      await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`velocity:${key}`]);
      await c.query('DELETE FROM velocity_events WHERE key = $1 AND at <= $2', [key, now - windowMs]);
      await c.query('INSERT INTO velocity_events (key, at, member) VALUES ($1, $2, $3)', [key, now, member]);
      const r = await c.query<QueryResultRow>(
        'SELECT COUNT(DISTINCT member) AS n FROM velocity_events WHERE key = $1 AND at > $2',
        [key, now - windowMs],
      );
      return num(r.rows[0]?.['n']);
    });
  }

  async purgeVelocityEvents(before: number, batchSize: number = VELOCITY_PURGE_BATCH): Promise<number> {
    checkVelocityPurge(before, batchSize);
    // Each batch is one statement in its own transaction; no lock on the keys: every event it deletes
    // is outside every window, so a concurrent hit on the same key counts the same with or without it.
    let total = 0;
    for (;;) {
      const n = await this.count(PG_VELOCITY_PURGE_SQL, [before, batchSize]);
      total += n;
      if (n < batchSize) return total;
    }
  }

  async advanceKsnCounter(prefix: string, counter: number, at: number): Promise<boolean> {
    return (
      (await this.count(
        `INSERT INTO ksn_counters (prefix, counter, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (prefix) DO UPDATE SET counter = excluded.counter, updated_at = excluded.updated_at
         WHERE excluded.counter > ksn_counters.counter`,
        [prefix, counter, at],
      )) === 1
    );
  }
  async advanceReaderStatusSeq(serial: string, seq: number, at: number): Promise<boolean> {
    return (
      (await this.count(
        `INSERT INTO reader_status_seqs (serial, seq, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (serial) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at
         WHERE excluded.seq > reader_status_seqs.seq`,
        [serial, seq, at],
      )) === 1
    );
  }
  async rememberProofJti(jti: string, expiresAt: number, now: number): Promise<boolean> {
    await this.pool.query('DELETE FROM proof_jtis WHERE expires_at < $1', [now]);
    return (
      (await this.count(
        'INSERT INTO proof_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING',
        [jti, expiresAt],
      )) === 1
    );
  }

  // ---- AuthStore ----

  async createOperator(row: NewOperatorRow): Promise<void> {
    await this.insertOperator(this.pool, row);
  }
  async createOperatorAudited(
    row: NewOperatorRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited((c) => this.insertOperator(c, row), draft, chain);
  }
  private async insertOperator(q: PoolClient | pg.Pool, row: NewOperatorRow): Promise<void> {
    try {
      await q.query(
        `INSERT INTO operators (id, username, password_hash, role, merchant_id, created_at, disabled_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [row.id, row.username, row.passwordHash, row.role, row.merchantId, row.createdAt, row.disabledAt],
      );
    } catch (e) {
      if (pgCode(e) === UNIQUE_VIOLATION) throw new StoreError('POS_ERR_OPERATOR_EXISTS', 'username taken');
      throw e;
    }
  }
  async getOperator(id: string): Promise<OperatorRow | undefined> {
    const r = await this.one('SELECT * FROM operators WHERE id = $1', [id]);
    return r === undefined ? undefined : toOperator(r);
  }
  async findOperatorByUsername(username: string): Promise<OperatorRow | undefined> {
    const r = await this.one('SELECT * FROM operators WHERE username = $1', [username]);
    return r === undefined ? undefined : toOperator(r);
  }
  async listOperators(): Promise<OperatorRow[]> {
    return (await this.rows('SELECT * FROM operators ORDER BY created_at, id')).map(toOperator);
  }
  async hitLoginAttempt(key: string, now: number, windowMs: number): Promise<number> {
    return this.tx(async (c) => {
      // A transaction-scoped advisory lock per key serializes concurrent hits (READ COMMITTED alone
      // would let two hits each count only themselves).
      await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`login:${key}`]);
      await c.query('DELETE FROM velocity_events WHERE key = $1 AND at <= $2', [key, now - windowMs]);
      await c.query("INSERT INTO velocity_events (key, at, member) VALUES ($1, $2, '')", [key, now]);
      const r = await c.query<QueryResultRow>(
        'SELECT COUNT(*) AS n FROM velocity_events WHERE key = $1 AND at > $2',
        [key, now - windowMs],
      );
      return num(r.rows[0]?.['n']);
    });
  }
  async loginLockoutStart(
    key: string,
    now: number,
    windowMs: number,
    max: number,
  ): Promise<number | undefined> {
    checkLockoutMax(max);
    const r = await this.one(PG_LOCKOUT_START_SQL, [key, now - windowMs, now, max - 1]);
    return r === undefined ? undefined : num(r['at']);
  }
  async clearLoginLockoutsAudited(
    id: string,
    lockout: LockoutProbe,
    draft: (wasLockedUntil: number | null) => AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<
    | { readonly loginEpoch: number; readonly wasLockedUntil: number | null; readonly audit: AuditRow }
    | undefined
  > {
    checkLockoutMax(lockout.max);
    return this.tx(async (c) => {
      // The operator's row locked: a concurrent password set or unlock waits until this one commits.
      const op = (await c.query<QueryResultRow>('SELECT * FROM operators WHERE id = $1 FOR UPDATE', [id]))
        .rows[0];
      if (op === undefined) return undefined;
      const { now, windowMs, max } = lockout;
      const start = (
        await c.query<QueryResultRow>(PG_LOCKOUT_START_SQL, [
          lockout.key(toOperator(op)),
          now - windowMs,
          now,
          max - 1,
        ])
      ).rows[0];
      const wasLockedUntil = start === undefined ? null : num(start['at']) + windowMs;
      const r = await c.query<QueryResultRow>(
        'UPDATE operators SET login_epoch = login_epoch + 1 WHERE id = $1 RETURNING login_epoch',
        [id],
      );
      return {
        loginEpoch: num(r.rows[0]?.['login_epoch']),
        wasLockedUntil,
        audit: await this.chainAudit(c, draft(wasLockedUntil), chain),
      };
    });
  }
  async setOperatorPasswordAudited(
    id: string,
    passwordHash: string,
    at: number,
    draft: (sessionsEnded: number) => AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<{ readonly sessionsEnded: number; readonly audit: AuditRow } | undefined> {
    return this.tx(async (c) => {
      const set = await c.query('UPDATE operators SET password_hash = $1 WHERE id = $2', [passwordHash, id]);
      if (set.rowCount !== 1) return undefined;
      const ended = await c.query(
        'UPDATE sessions SET revoked_at = $1 WHERE operator_id = $2 AND revoked_at IS NULL',
        [at, id],
      );
      const sessionsEnded = ended.rowCount ?? 0;
      return { sessionsEnded, audit: await this.chainAudit(c, draft(sessionsEnded), chain) };
    });
  }
  async setOperatorPassword(id: string, passwordHash: string): Promise<boolean> {
    return (
      (await this.count('UPDATE operators SET password_hash = $1 WHERE id = $2', [passwordHash, id])) === 1
    );
  }
  async disableOperatorAudited(
    id: string,
    at: number,
    tokenIds: readonly string[],
    draft: (done: { readonly sessionsEnded: number; readonly tokensRevoked: number }) => AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<
    { readonly sessionsEnded: number; readonly tokensRevoked: number; readonly audit: AuditRow } | undefined
  > {
    return this.tx(async (c) => {
      const user = await c.query('SELECT id FROM operators WHERE id = $1 FOR UPDATE', [id]);
      if (user.rowCount !== 1) return undefined;
      await c.query('UPDATE operators SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL', [at, id]);
      const sessions = await c.query(
        'UPDATE sessions SET revoked_at = $1 WHERE operator_id = $2 AND revoked_at IS NULL',
        [at, id],
      );
      const tokens = await c.query(
        'UPDATE api_tokens SET revoked_at = $1 WHERE id = ANY($2::text[]) AND revoked_at IS NULL',
        [at, [...tokenIds]],
      );
      const done = { sessionsEnded: sessions.rowCount ?? 0, tokensRevoked: tokens.rowCount ?? 0 };
      return { ...done, audit: await this.chainAudit(c, draft(done), chain) };
    });
  }
  async disableOperator(id: string, at: number): Promise<boolean> {
    return (
      (await this.count('UPDATE operators SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL', [
        at,
        id,
      ])) === 1
    );
  }

  async createApiToken(row: ApiTokenRow): Promise<void> {
    await this.insertApiToken(this.pool, row);
  }
  async createApiTokenAudited(
    row: ApiTokenRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited((c) => this.insertApiToken(c, row), draft, chain);
  }
  private async insertApiToken(q: PoolClient | pg.Pool, row: ApiTokenRow): Promise<void> {
    await q.query(
      `INSERT INTO api_tokens (id, token_hash, label, role, merchant_id, created_by, created_at, expires_at, revoked_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        row.id,
        row.tokenHash,
        row.label,
        row.role,
        row.merchantId,
        row.createdBy,
        row.createdAt,
        row.expiresAt,
        row.revokedAt,
      ],
    );
  }
  async findApiToken(tokenHash: string): Promise<ApiTokenRow | undefined> {
    const r = await this.one('SELECT * FROM api_tokens WHERE token_hash = $1', [tokenHash]);
    return r === undefined ? undefined : toToken(r);
  }
  async listApiTokens(): Promise<ApiTokenRow[]> {
    return (await this.rows('SELECT * FROM api_tokens ORDER BY created_at, id')).map(toToken);
  }
  async revokeApiToken(id: string, at: number): Promise<boolean> {
    return (
      (await this.count('UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [
        at,
        id,
      ])) === 1
    );
  }
  async revokeApiTokenAudited(
    id: string,
    at: number,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined> {
    return this.writeAudited(
      async (c) =>
        (
          await c.query('UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [
            at,
            id,
          ])
        ).rowCount === 1,
      draft,
      chain,
    );
  }

  async createSession(row: SessionRow): Promise<void> {
    await this.pool.query(
      `INSERT INTO sessions (id, token_hash, csrf_hash, operator_id, created_at, expires_at, revoked_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [row.id, row.tokenHash, row.csrfHash, row.operatorId, row.createdAt, row.expiresAt, row.revokedAt],
    );
  }
  async findSession(tokenHash: string): Promise<SessionRow | undefined> {
    const r = await this.one('SELECT * FROM sessions WHERE token_hash = $1', [tokenHash]);
    return r === undefined ? undefined : toSession(r);
  }
  async revokeSession(id: string, at: number): Promise<boolean> {
    return (
      (await this.count('UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [
        at,
        id,
      ])) === 1
    );
  }
  async revokeOperatorSessions(operatorId: string, at: number): Promise<number> {
    return this.count('UPDATE sessions SET revoked_at = $1 WHERE operator_id = $2 AND revoked_at IS NULL', [
      at,
      operatorId,
    ]);
  }
  async purgeSessions(before: number): Promise<number> {
    return this.count('DELETE FROM sessions WHERE expires_at < $1', [before]);
  }

  // ---- FleetStore ----

  /** Appends one message per terminal inside `c`'s transaction (terminal rows already locked). */
  private async insertOutbox(
    c: PoolClient,
    terminalIds: readonly string[],
    m: {
      readonly kind: OutboxKind;
      readonly haltId: string;
      readonly reason: string;
      readonly createdAt: number;
    },
  ): Promise<OutboxRow[]> {
    if (terminalIds.length === 0) return [];
    const r = await c.query<QueryResultRow>(
      `INSERT INTO outbox (terminal_id, seq, kind, halt_id, reason, created_at)
       SELECT t.id, COALESCE((SELECT MAX(o.seq) FROM outbox o WHERE o.terminal_id = t.id), 0) + 1, $2, $3, $4, $5
       FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n) ORDER BY t.n
       RETURNING *`,
      [[...terminalIds], m.kind, m.haltId, m.reason, m.createdAt],
    );
    const byId = new Map(r.rows.map((row) => [str(row['terminal_id']), toOutbox(row)]));
    return terminalIds.flatMap((id) => {
      const row = byId.get(id);
      return row === undefined ? [] : [row];
    });
  }
  /** Locks the listed terminals' rows in id order (the per-terminal outbox sequence is allocated under it). */
  private async lockTerminals(c: PoolClient, terminalIds: readonly string[]): Promise<void> {
    if (terminalIds.length === 0) return;
    await c.query('SELECT id FROM terminals WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE', [
      [...terminalIds],
    ]);
  }
  private static unique(ids: readonly string[]): string[] {
    return [...new Set(ids)];
  }

  async decommissionTerminalAudited(
    request: DecommissionRequest,
    audit: AuditAppend<DecommissionDone>,
  ): Promise<DecommissionOutcome> {
    return this.tx(
      async (c): Promise<DecommissionOutcome> => {
        // The terminal row first, as the halt statement locks it: a concurrent halt waits and then
        // leaves a decommissioned terminal as it is; a concurrent outbox append waits or retries.
        const t = await c.query<QueryResultRow>('SELECT state FROM terminals WHERE id = $1 FOR UPDATE', [
          request.terminalId,
        ]);
        const row = t.rows[0];
        if (row === undefined) return { ok: false, code: 'terminal-unknown' };
        const previous = str(row['state']);
        if (previous !== 'active' && previous !== 'halted' && previous !== 'resume-pending')
          return { ok: false, code: 'decommissioned' };
        await c.query(
          `UPDATE terminals SET state = 'decommissioned', state_reason = $1, state_changed_at = $2,
             next_due_at = NULL, stale_at = NULL WHERE id = $3`,
          [request.reason, request.at, request.terminalId],
        );
        const rows = await this.insertOutbox(c, [request.terminalId], {
          kind: 'halt',
          haltId: request.noticeId,
          reason: request.noticeReason,
          createdAt: request.at,
        });
        const done: DecommissionDone = { ok: true, previous, rows };
        return { ...done, audit: await this.chainAudits(c, audit.drafts(done), audit.chain) };
      },
      { retryUnique: true },
    );
  }

  /** The halt statement alone, in its own transaction; re-run whole on a seq collision. */
  async createHalt(halt: HaltRow, terminalIds: readonly string[]): Promise<OutboxRow[]> {
    const ids = PostgresStore.unique(terminalIds);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.haltStatement(this.pool, halt, ids);
      } catch (e) {
        const code = pgCode(e);
        const seqRace =
          code === UNIQUE_VIOLATION &&
          typeof e === 'object' &&
          e !== null &&
          'constraint' in e &&
          e.constraint === 'outbox_pkey';
        if (!(seqRace || code === SERIALIZATION_FAILURE || code === DEADLOCK) || attempt >= 20) throw e;
      }
    }
  }
  /**
   * The halt statement, then the audit append, in one transaction: BEGIN, the statement, the chain's
   * lock and head read (one round trip), the entries' INSERT, COMMIT. The terminal rows are locked
   * before the chain (as an attestation's outcome does), and the chain lock is held only for the
   * append. A seq collision re-runs the whole transaction.
   */
  async createHaltAudited(
    halt: HaltRow,
    terminalIds: readonly string[],
    audit: AuditAppend<readonly OutboxRow[]>,
  ): Promise<{ readonly rows: OutboxRow[]; readonly audit: readonly AuditRow[] }> {
    const ids = PostgresStore.unique(terminalIds);
    return this.tx(
      async (c) => {
        const rows = await this.haltStatement(c, halt, ids);
        return { rows, audit: await this.chainAudits(c, audit.drafts(rows), audit.chain) };
      },
      { retryUnique: true },
    );
  }
  /**
   * One statement, so one round trip: lock the listed terminals (in id order, so concurrent halts do
   * not deadlock), store the halt, halt the terminals not already halted, and write one outbox row
   * each. The seqs are read in the statement's snapshot: a concurrent append to the same terminal that
   * commits while this one waits for the lock makes this insert collide on the outbox key, and the
   * caller runs it again (nothing half-written).
   */
  private async haltStatement(
    q: PoolClient | pg.Pool,
    halt: HaltRow,
    ids: readonly string[],
  ): Promise<OutboxRow[]> {
    const r = await q.query<QueryResultRow>(
      `WITH ids AS (
         SELECT json_array_elements_text($1::json) AS id
       ), locked AS (
         SELECT id FROM terminals WHERE id IN (SELECT id FROM ids) ORDER BY id FOR UPDATE
       ), h AS (
         INSERT INTO halts (id, scope, target, reason, created_by, created_at, lifted_at, lifted_by)
         VALUES ($2, $3, $4, $5, $6, $7, $8, $9)
       ), u AS (
         UPDATE terminals t SET state = 'halted', state_reason = $5, state_changed_at = $7
         FROM locked l WHERE t.id = l.id AND t.state NOT IN ('halted', 'decommissioned')
       )
       INSERT INTO outbox (terminal_id, seq, kind, halt_id, reason, created_at)
       SELECT x.id, COALESCE((SELECT MAX(o.seq) FROM outbox o WHERE o.terminal_id = x.id), 0) + 1,
              'halt', $2, $5, $7
       FROM ids AS x
       WHERE (SELECT COUNT(*) FROM locked) >= 0
       RETURNING *`,
      [
        // One JSON document: node-postgres serialises text arrays element by element, slowly.
        JSON.stringify(ids),
        halt.id,
        halt.scope,
        halt.target,
        halt.reason,
        halt.createdBy,
        halt.createdAt,
        halt.liftedAt,
        halt.liftedBy,
      ],
    );
    const byId = new Map(r.rows.map((row) => [str(row['terminal_id']), toOutbox(row)]));
    return ids.flatMap((id) => {
      const row = byId.get(id);
      return row === undefined ? [] : [row];
    });
  }
  async getHalt(id: string): Promise<HaltRow | undefined> {
    const r = await this.one('SELECT * FROM halts WHERE id = $1', [id]);
    return r === undefined ? undefined : toHalt(r);
  }
  async listHalts(options: { readonly activeOnly: boolean; readonly limit: number }): Promise<HaltRow[]> {
    return (
      await this.rows(
        `SELECT * FROM halts ${options.activeOnly ? 'WHERE lifted_at IS NULL' : ''}
         ORDER BY created_at DESC, id DESC LIMIT $1`,
        [options.limit],
      )
    ).map(toHalt);
  }
  async liftHalt(id: string, by: string, at: number): Promise<boolean> {
    return (
      (await this.count(
        'UPDATE halts SET lifted_at = $1, lifted_by = $2 WHERE id = $3 AND lifted_at IS NULL',
        [at, by, id],
      )) === 1
    );
  }
  /** A lift's outcome with the entries `audit` builds from it, appended inside `c`'s transaction. */
  private async withAudit(
    c: PoolClient,
    done: LiftDone,
    audit: AuditAppend<LiftDone> | undefined,
  ): Promise<LiftOutcome> {
    return {
      ...done,
      audit: audit === undefined ? [] : await this.chainAudits(c, audit.drafts(done), audit.chain),
    };
  }
  /** Of `ids`, those with a `halt` row of an active halt (other than `except`), inside `c`'s transaction. */
  private async coveredByActive(
    c: PoolClient,
    ids: readonly string[],
    except: readonly string[],
  ): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const r = await c.query<QueryResultRow>(
      `SELECT DISTINCT o.terminal_id AS id FROM outbox o JOIN halts h ON h.id = o.halt_id
       WHERE o.terminal_id = ANY($1::text[]) AND o.kind = 'halt' AND h.lifted_at IS NULL
         AND NOT (h.id = ANY($2::text[]))`,
      [[...ids], [...except]],
    );
    return new Set(r.rows.map((row) => str(row['id'])));
  }
  /** halted -> resume-pending for `ids` still halted (rows locked), inside `c`'s transaction. */
  private async resumeRows(c: PoolClient, ids: readonly string[], m: ResumeMessage): Promise<string[]> {
    if (ids.length === 0) return [];
    const r = await c.query<QueryResultRow>(
      `UPDATE terminals SET state = 'resume-pending', state_reason = $2, state_changed_at = $3
       WHERE id = ANY($1::text[]) AND state = 'halted' RETURNING id`,
      [[...ids], m.stateReason, m.at],
    );
    const moved = new Set(r.rows.map((row) => str(row['id'])));
    return ids.filter((id) => moved.has(id));
  }
  /**
   * Lock the halt's terminals (as createHalt does, id order), then lift, decide coverage and move them
   * in the same transaction: a createHalt on any of them either committed before (its rows are seen:
   * still halted) or waits for this one (and halts them again after).
   */
  async liftHaltAndResume(
    haltId: string,
    m: ResumeMessage,
    audit?: AuditAppend<LiftDone>,
  ): Promise<LiftOutcome> {
    return this.tx(
      async (c): Promise<LiftOutcome> => {
        const pre = await c.query<QueryResultRow>(
          `SELECT DISTINCT o.terminal_id AS id FROM outbox o JOIN terminals t ON t.id = o.terminal_id
           WHERE o.halt_id = $1 AND o.kind = 'halt' AND t.state <> 'decommissioned' ORDER BY 1`,
          [haltId],
        );
        const mine = pre.rows.map((row) => str(row['id']));
        await this.lockTerminals(c, mine);
        const h = await c.query<QueryResultRow>('SELECT lifted_at FROM halts WHERE id = $1 FOR UPDATE', [
          haltId,
        ]);
        const first = h.rows[0];
        if (first === undefined) return { ok: false, code: 'halt-unknown' };
        if (first['lifted_at'] !== null) return { ok: false, code: 'halt-lifted' };
        await c.query('UPDATE halts SET lifted_at = $1, lifted_by = $2 WHERE id = $3', [m.at, m.by, haltId]);
        const covered = await this.coveredByActive(c, mine, [haltId]);
        const stillHalted = mine.filter((id) => covered.has(id));
        const resumed = await this.resumeRows(
          c,
          mine.filter((id) => !covered.has(id)),
          m,
        );
        const rows = await this.insertOutbox(c, resumed, {
          kind: 'resume',
          haltId,
          reason: m.reason,
          createdAt: m.at,
        });
        return this.withAudit(c, { ok: true, lifted: [haltId], resumed, stillHalted, rows }, audit);
      },
      { retryUnique: true },
    );
  }
  async resumeTerminalAndLift(
    terminalId: string,
    m: ResumeMessage,
    audit?: AuditAppend<LiftDone>,
  ): Promise<LiftOutcome> {
    return this.tx(
      async (c): Promise<LiftOutcome> => {
        const t = await c.query<QueryResultRow>('SELECT state FROM terminals WHERE id = $1 FOR UPDATE', [
          terminalId,
        ]);
        const row = t.rows[0];
        if (row === undefined) return { ok: false, code: 'terminal-unknown' };
        if (row['state'] !== 'halted') return { ok: false, code: 'not-halted' };
        const own = (
          await c.query<QueryResultRow>(
            `SELECT id FROM halts WHERE lifted_at IS NULL AND scope = 'terminal' AND target = $1
             ORDER BY created_at DESC, id DESC FOR UPDATE`,
            [terminalId],
          )
        ).rows.map((r) => str(r['id']));
        if ((await this.coveredByActive(c, [terminalId], own)).size > 0)
          return { ok: false, code: 'still-covered' };
        const lifted: string[] = [];
        for (const id of own) {
          const u = await c.query(
            'UPDATE halts SET lifted_at = $1, lifted_by = $2 WHERE id = $3 AND lifted_at IS NULL',
            [m.at, m.by, id],
          );
          if ((u.rowCount ?? 0) === 1) lifted.push(id);
        }
        const resumed = await this.resumeRows(c, [terminalId], m);
        if (resumed.length === 0) return { ok: false, code: 'not-halted' };
        const notice = lifted[0];
        const rows =
          notice === undefined
            ? []
            : await this.insertOutbox(c, resumed, {
                kind: 'resume',
                haltId: notice,
                reason: m.reason,
                createdAt: m.at,
              });
        return this.withAudit(c, { ok: true, lifted, resumed, stillHalted: [], rows }, audit);
      },
      { retryUnique: true },
    );
  }
  async activeHaltsCovering(terminal: {
    readonly id: string;
    readonly merchantId: string;
    readonly appVersions: readonly string[];
  }): Promise<CoveringHalt[]> {
    const rows = await this.rows(
      `SELECT h.*, EXISTS (SELECT 1 FROM outbox o WHERE o.terminal_id = $1 AND o.halt_id = h.id AND o.kind = 'halt')
         AS delivered
       FROM halts h
       WHERE h.lifted_at IS NULL AND (h.scope = 'fleet' OR (h.scope = 'terminal' AND h.target = $1)
         OR (h.scope = 'merchant' AND h.target = $2) OR (h.scope = 'app-version' AND h.target = ANY($3::text[])))
       ORDER BY h.created_at DESC, h.id DESC`,
      [terminal.id, terminal.merchantId, [...terminal.appVersions]],
    );
    return rows.map((r) => ({ halt: toHalt(r), delivered: r['delivered'] === true }));
  }
  async appendOutbox(
    terminalIds: readonly string[],
    message: {
      readonly kind: OutboxKind;
      readonly haltId: string;
      readonly reason: string;
      readonly createdAt: number;
    },
  ): Promise<OutboxRow[]> {
    const ids = PostgresStore.unique(terminalIds);
    // Terminals that exist are locked, so racing appends wait; an id with no terminal row can still
    // race, and a duplicate (terminal, seq) then retries the whole transaction.
    return this.tx(
      async (c) => {
        await this.lockTerminals(c, ids);
        return this.insertOutbox(c, ids, message);
      },
      { retryUnique: true },
    );
  }
  async listHaltDeliveries(haltId: string): Promise<OutboxRow[]> {
    return (
      await this.rows('SELECT * FROM outbox WHERE halt_id = $1 ORDER BY terminal_id, seq', [haltId])
    ).map(toOutbox);
  }
  async pendingOutbox(terminalId: string): Promise<OutboxRow[]> {
    return (
      await this.rows('SELECT * FROM outbox WHERE terminal_id = $1 AND acked_at IS NULL ORDER BY seq', [
        terminalId,
      ])
    ).map(toOutbox);
  }
  /** `sentAt` of every message of one turn of the event loop: one UPDATE (a fan-out marks thousands). */
  private readonly sentBatch = coalesce(
    async (items: readonly { terminalId: string; seq: number; at: number }[]): Promise<void[]> => {
      await this.pool.query(
        `UPDATE outbox o SET sent_at = u.at
         FROM json_to_recordset($1::json) AS u(t text, s bigint, at bigint)
         WHERE o.terminal_id = u.t AND o.seq = u.s AND o.sent_at IS NULL`,
        // One JSON document: node-postgres serialises text arrays element by element, slowly.
        [JSON.stringify(items.map((i) => ({ t: i.terminalId, s: i.seq, at: i.at })))],
      );
      return items.map(() => undefined);
    },
  );
  async markOutboxSent(terminalId: string, seq: number, at: number): Promise<void> {
    await this.sentBatch({ terminalId, seq, at });
  }
  /**
   * Acknowledgements of one turn of the event loop: one UPDATE ... RETURNING; each caller gets the row
   * only when its call acknowledged it (a duplicate in the same batch gets undefined, like a late one).
   */
  private readonly ackBatch = coalesce(
    async (
      items: readonly { terminalId: string; seq: number; at: number }[],
    ): Promise<(OutboxRow | undefined)[]> => {
      const r = await this.pool.query<QueryResultRow>(
        `UPDATE outbox o SET acked_at = u.at
         FROM (SELECT DISTINCT ON (t, s) t, s, at
               FROM json_to_recordset($1::json) AS x(t text, s bigint, at bigint) ORDER BY t, s, at) AS u
         WHERE o.terminal_id = u.t AND o.seq = u.s AND o.acked_at IS NULL
         RETURNING o.*`,
        [JSON.stringify(items.map((i) => ({ t: i.terminalId, s: i.seq, at: i.at })))],
      );
      const byKey = new Map(r.rows.map((row) => [`${str(row['terminal_id'])}\u0000${num(row['seq'])}`, row]));
      return items.map((i) => {
        const key = `${i.terminalId}\u0000${i.seq}`;
        const row = byKey.get(key);
        if (row === undefined) return undefined;
        byKey.delete(key);
        return toOutbox(row);
      });
    },
  );
  async ackOutbox(terminalId: string, seq: number, at: number): Promise<OutboxRow | undefined> {
    return this.ackBatch({ terminalId, seq, at });
  }
  async claimPushConnection(
    row: PushConnectionRow,
    liveAfter: number,
  ): Promise<{ readonly ok: true } | { readonly ok: false; readonly existing: PushConnectionRow }> {
    for (let attempt = 0; ; attempt++) {
      // Insert, or replace a dead row; a live row stays (the conflict's WHERE is false).
      const won = await this.count(
        `INSERT INTO push_connections (terminal_id, connection_id, instance_id, connected_at, seen_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (terminal_id) DO UPDATE SET connection_id = excluded.connection_id,
           instance_id = excluded.instance_id, connected_at = excluded.connected_at, seen_at = excluded.seen_at
         WHERE push_connections.seen_at < $6`,
        [row.terminalId, row.connectionId, row.instanceId, row.connectedAt, row.seenAt, liveAfter],
      );
      if (won === 1) return { ok: true };
      const existing = await this.one('SELECT * FROM push_connections WHERE terminal_id = $1', [
        row.terminalId,
      ]);
      if (existing !== undefined) return { ok: false, existing: toPushConnection(existing) };
      // Released between the two statements: try again.
      if (attempt >= 5) throw new StoreError('POS_ERR_STORE', 'push connection claim did not settle');
    }
  }
  async touchPushConnection(terminalId: string, connectionId: string, at: number): Promise<void> {
    await this.pool.query(
      'UPDATE push_connections SET seen_at = GREATEST(seen_at, $1) WHERE terminal_id = $2 AND connection_id = $3',
      [at, terminalId, connectionId],
    );
  }
  async releasePushConnection(terminalId: string, connectionId: string): Promise<void> {
    await this.pool.query('DELETE FROM push_connections WHERE terminal_id = $1 AND connection_id = $2', [
      terminalId,
      connectionId,
    ]);
  }

  // ---- LivenessStore ----

  private static where(query: Omit<TerminalQuery, 'afterId' | 'limit'> & { readonly afterId?: string }): {
    sql: string;
    params: unknown[];
  } {
    const clauses: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, value: unknown): void => {
      params.push(value);
      clauses.push(clause.replace('?', `$${params.length}`));
    };
    if (query.merchantId !== undefined) add('merchant_id = ?', query.merchantId);
    if (query.state !== undefined) add('state = ?', query.state);
    if (query.notState !== undefined) add('state <> ?', query.notState);
    if (query.appVersion !== undefined) add('app_version = ?', query.appVersion);
    if (query.readerSerial !== undefined) add('reader_serial = ?', query.readerSerial);
    if (query.lastTier !== undefined) add('last_tier = ?', query.lastTier);
    if (query.stale !== undefined) clauses.push(query.stale ? 'stale_at IS NOT NULL' : 'stale_at IS NULL');
    if (query.afterId !== undefined) add('id > ?', query.afterId);
    return { sql: clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`, params };
  }
  async listTerminals(query: TerminalQuery): Promise<TerminalRow[]> {
    const w = PostgresStore.where(query);
    return (
      await this.rows(`SELECT * FROM terminals ${w.sql} ORDER BY id LIMIT $${w.params.length + 1}`, [
        ...w.params,
        Math.max(0, Math.floor(query.limit)),
      ])
    ).map(toTerminal);
  }
  async listTerminalIds(query: Omit<TerminalQuery, 'afterId' | 'limit'>): Promise<string[]> {
    const w = PostgresStore.where(query);
    return (await this.rows(`SELECT id FROM terminals ${w.sql} ORDER BY id`, w.params)).map((r) =>
      str(r['id']),
    );
  }
  async setTerminalAppVersion(id: string, version: string): Promise<void> {
    await this.pool.query('UPDATE terminals SET app_version = $1 WHERE id = $2', [version, id]);
  }
  async setTerminalLastTier(id: string, tier: string): Promise<void> {
    await this.pool.query('UPDATE terminals SET last_tier = $1 WHERE id = $2', [tier, id]);
  }
  async setNextDue(
    id: string,
    nextDueAt: number,
    options?: { readonly onlyIfLive?: boolean },
  ): Promise<boolean> {
    const sql =
      options?.onlyIfLive === true
        ? 'UPDATE terminals SET next_due_at = $1 WHERE id = $2 AND stale_at IS NULL'
        : 'UPDATE terminals SET next_due_at = $1, stale_at = NULL WHERE id = $2';
    return (await this.count(sql, [nextDueAt, id])) === 1;
  }
  async listOverdue(before: number, limit: number): Promise<TerminalRow[]> {
    return (
      await this.rows(
        `SELECT * FROM terminals WHERE stale_at IS NULL AND next_due_at IS NOT NULL AND next_due_at < $1
         ORDER BY next_due_at, id LIMIT $2`,
        [before, Math.max(0, Math.floor(limit))],
      )
    ).map(toTerminal);
  }
  async markStale(id: string, at: number, before: number): Promise<boolean> {
    return (
      (await this.count(
        'UPDATE terminals SET stale_at = $1 WHERE id = $2 AND stale_at IS NULL AND next_due_at < $3',
        [at, id, before],
      )) === 1
    );
  }
  async countTerminalsWhere(query: Omit<TerminalQuery, 'afterId' | 'limit'>): Promise<number> {
    const w = PostgresStore.where(query);
    return num((await this.one(`SELECT COUNT(*) AS n FROM terminals ${w.sql}`, w.params))?.['n']);
  }
  async countStale(): Promise<number> {
    return num((await this.one('SELECT COUNT(*) AS n FROM terminals WHERE stale_at IS NOT NULL'))?.['n']);
  }
}

export { PG_MIGRATIONS };
