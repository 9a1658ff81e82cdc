/**
 * The embedded store: SQLite through better-sqlite3, WAL mode, versioned migrations. better-sqlite3 is
 * synchronous; each method does its work in one statement or one transaction and resolves, so the
 * async interface holds without threads. Single-use operations are single UPDATE ... WHERE statements
 * or transactions, so they are atomic even with several connections on one file.
 */
import Database from 'better-sqlite3';
import {
  checkVelocityPurge,
  StoreError,
  VELOCITY_PURGE_BATCH,
  type AttestationOutcomeRow,
  type AttestationRow,
  type AuditDraftRow,
  type AuditRow,
  type ChallengeRow,
  type CheckpointRow,
  type EnrollmentCodeRow,
  type IssuedTicketRow,
  type MerchantRow,
  type PolicyRow,
  type ReferenceValuesRow,
  type SigningKeyRow,
  type CoreStore,
  type Store,
  type TerminalRow,
  type TerminalState,
  type TicketRow,
  type TransactionRow,
} from './types';
import { storeFault, type StoreFault } from './faults';
import { SqliteAuthStore, SQLITE_AUTH_MIGRATION, SQLITE_LOGIN_EPOCH_MIGRATION } from './sqlite-auth';
import { bindMethods, json, SqlitePart, num, str } from './sqlite-base';
import {
  toAttestation,
  toAudit,
  toChallenge,
  toCode,
  toIssuedTicket,
  toKey,
  toPolicy,
  toTerminal,
  toTicket,
  toTransaction,
} from './rows';
import { SqliteFleetStore, SQLITE_FLEET_MIGRATION } from './sqlite-fleet';
import { SqliteLivenessStore, SQLITE_LIVENESS_MIGRATION } from './sqlite-liveness';

/** Versioned migrations: index + 1 is the schema version. Never edit one that shipped; append. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE merchants (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL);
  CREATE TABLE terminals (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    device_jwk TEXT NOT NULL,
    device_jkt TEXT NOT NULL UNIQUE,
    reader_serial TEXT NOT NULL,
    last_counter INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'halted')),
    state_reason TEXT,
    interval_s INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_attested_at INTEGER
  );
  CREATE INDEX terminals_merchant ON terminals(merchant_id);
  CREATE TABLE enrollment_codes (
    code_hash TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    used_at INTEGER,
    terminal_id TEXT
  );
  CREATE TABLE challenges (
    value TEXT PRIMARY KEY,
    terminal_id TEXT,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    used_at INTEGER
  );
  CREATE INDEX challenges_expiry ON challenges(expires_at);
  CREATE TABLE attestations (
    id TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    counter INTEGER,
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
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX tickets_kid ON tickets(kid, expires_at);
  CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    public_jwk TEXT NOT NULL,
    encrypted_private_key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'retired')),
    created_at INTEGER NOT NULL,
    retired_at INTEGER,
    verify_until INTEGER
  );
  CREATE TABLE reference_values (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    build TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
  );
  CREATE TABLE policies (
    version TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('active', 'shadow', 'inactive')),
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
  );
  CREATE TABLE audit_entries (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
  );
  CREATE TABLE audit_checkpoints (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    at TEXT NOT NULL,
    kid TEXT NOT NULL,
    signature TEXT NOT NULL
  );
  CREATE TABLE transactions (
    id TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    approved INTEGER NOT NULL,
    code TEXT,
    auth_code TEXT,
    card_token TEXT,
    ticket_jti TEXT NOT NULL
  );
  CREATE INDEX transactions_terminal ON transactions(terminal_id, at);
  CREATE TABLE velocity_events (key TEXT NOT NULL, at INTEGER NOT NULL, member TEXT NOT NULL DEFAULT '');
  CREATE INDEX velocity_key ON velocity_events(key, at);
  CREATE TABLE proof_jtis (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
  CREATE INDEX proof_jtis_expiry ON proof_jtis(expires_at);
  CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
  );
  `,
  // 2: KSN replay guard (highest counter per BDK ID + derivation ID), single-use tickets, the
  // resume-pending terminal state with the time of the last state change, reader status sequence numbers.
  `
  CREATE TABLE ksn_counters (prefix TEXT PRIMARY KEY, counter INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  ALTER TABLE tickets ADD COLUMN used_at INTEGER;
  CREATE TABLE reader_status_seqs (serial TEXT PRIMARY KEY, seq INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  CREATE TABLE terminals_v2 (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    device_jwk TEXT NOT NULL,
    device_jkt TEXT NOT NULL UNIQUE,
    reader_serial TEXT NOT NULL,
    last_counter INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'halted', 'resume-pending')),
    state_reason TEXT,
    interval_s INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_attested_at INTEGER,
    state_changed_at INTEGER
  );
  INSERT INTO terminals_v2 (id, merchant_id, device_jwk, device_jkt, reader_serial, last_counter, state, state_reason,
    interval_s, created_at, last_attested_at, state_changed_at)
    SELECT id, merchant_id, device_jwk, device_jkt, reader_serial, last_counter, state, state_reason,
      interval_s, created_at, last_attested_at, NULL FROM terminals;
  DROP TABLE terminals;
  ALTER TABLE terminals_v2 RENAME TO terminals;
  CREATE INDEX terminals_merchant ON terminals(merchant_id);
  `,
  // 3: operators, scoped API tokens, dashboard sessions (sqlite-auth.ts).
  SQLITE_AUTH_MIGRATION,
  // 4: halts, the per-terminal outbox, push connections (sqlite-fleet.ts).
  SQLITE_FLEET_MIGRATION,
  // 5: liveness (next-due time, stale mark) and app version per terminal (sqlite-liveness.ts).
  SQLITE_LIVENESS_MIGRATION,
  // 6: active halts are read on every attestation and transaction (activeHaltsCovering) among every
  // halt ever made: an index on lifted_at finds the few active ones.
  `CREATE INDEX IF NOT EXISTS halts_lifted ON halts(lifted_at);`,
  // 7: a terminal's newest ticket (latestTicket, the dashboard's terminal page) among every ticket
  // ever issued: an index on the terminal and issue time (and, implicitly, rowid) finds it without a
  // scan or a sort.
  `CREATE INDEX IF NOT EXISTS tickets_terminal ON tickets(terminal_id, issued_at);`,
  // 8: an admin clears an operator's login lock-outs (operators.login_epoch); the unused per-account
  // lock columns stay for the previous release during a rolling upgrade (sqlite-auth.ts).
  SQLITE_LOGIN_EPOCH_MIGRATION,
  // 9: the sessions purge (purgeSessions, once a minute) deletes by expiry: an index on expires_at
  // finds the expired rows without a scan of every session.
  `CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires_at);`,
  // 10: the velocity purge (purgeVelocityEvents, once a minute) deletes every event older than the
  // longest window, of any key: an index on at finds them without a scan of every event.
  `CREATE INDEX IF NOT EXISTS velocity_at ON velocity_events(at);`,
  // 11: the decommissioned terminal state (docs/fleet.md "Decommissioning"). SQLite cannot change a
  // CHECK constraint: the table is rebuilt as migration 2 did, every row and column kept, and its
  // four indexes made again (the UNIQUE on device_jkt and the primary key come with the table).
  `
  CREATE TABLE terminals_v11 (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    device_jwk TEXT NOT NULL,
    device_jkt TEXT NOT NULL UNIQUE,
    reader_serial TEXT NOT NULL,
    last_counter INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'halted', 'resume-pending', 'decommissioned')),
    state_reason TEXT,
    interval_s INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_attested_at INTEGER,
    state_changed_at INTEGER,
    next_due_at INTEGER,
    stale_at INTEGER,
    app_version TEXT,
    last_tier TEXT
  );
  INSERT INTO terminals_v11 (id, merchant_id, device_jwk, device_jkt, reader_serial, last_counter, state,
    state_reason, interval_s, created_at, last_attested_at, state_changed_at, next_due_at, stale_at,
    app_version, last_tier)
    SELECT id, merchant_id, device_jwk, device_jkt, reader_serial, last_counter, state, state_reason,
      interval_s, created_at, last_attested_at, state_changed_at, next_due_at, stale_at, app_version,
      last_tier FROM terminals;
  DROP TABLE terminals;
  ALTER TABLE terminals_v11 RENAME TO terminals;
  CREATE INDEX terminals_merchant ON terminals(merchant_id);
  CREATE INDEX terminals_next_due ON terminals(next_due_at) WHERE stale_at IS NULL;
  CREATE INDEX terminals_reader_serial ON terminals(reader_serial);
  CREATE INDEX terminals_app_version ON terminals(app_version);
  `,
];

/**
 * One batch of the velocity purge: at most `?2` events older than `?1`, found through velocity_at
 * (the subquery reads the index only; the rowids then delete by primary key).
 */
export const SQLITE_VELOCITY_PURGE_SQL =
  'DELETE FROM velocity_events WHERE rowid IN (SELECT rowid FROM velocity_events WHERE at < ? LIMIT ?)';

function isUniqueViolation(e: unknown): boolean {
  return (
    typeof e === 'object' &&
    e !== null &&
    'code' in e &&
    typeof e.code === 'string' &&
    (e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
  );
}

export interface SqliteStoreOptions {
  /** A file path, or ':memory:' for tests. */
  readonly path: string;
}

/** Opens (creating if needed) and migrates a SQLite store. */
export function openSqliteStore(options: SqliteStoreOptions): Store {
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  // Checkpoint the WAL into the database every 10,000 pages (about 40 MB) instead of SQLite's 1,000.
  // Every attestation rewrites the same few B-tree tail pages in several commits; a longer WAL copies
  // each of those pages once per checkpoint, and syncs (a blocking fsync) ten times less often.
  // Durability across a process crash is unchanged (committed frames are in the WAL file); on power
  // loss, as before with synchronous = NORMAL, the commits since the last checkpoint's sync may be
  // lost, and that window is now up to 10,000 pages of writes instead of 1,000.
  db.pragma('wal_autocheckpoint = 10000');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  const base = Object.assign(
    Object.create(null) as object,
    bindMethods(new SqliteAuthStore(db)),
    bindMethods(new SqliteFleetStore(db)),
    bindMethods(new SqliteLivenessStore(db)),
    // Last: the core owns engine, ping, close.
    bindMethods(new SqliteStore(db)),
    { engine: 'sqlite' },
  ) as Store;
  // A full disk or a store that cannot be written: remembered from the error that showed it, so
  // /readyz says so until a write succeeds again (ping then tries a one-row write, see below).
  let fault: StoreFault | undefined;
  const noteFault = (e: unknown): void => {
    const f = options.path === ':memory:' ? storeFault(e) : storeFault(e, options.path);
    if (f === undefined) return;
    fault = f;
    if (typeof e === 'object' && e !== null) Object.assign(e, { storeFault: f });
  };
  const store: Store = Object.assign(Object.create(base) as Store, {
    lastFault: (): StoreFault | undefined => fault,
    ping: async (): Promise<boolean> => {
      if (fault !== undefined) {
        try {
          db.prepare(
            "INSERT INTO meta (key, value) VALUES ('write_probe', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
          ).run(String(Date.now()));
          fault = undefined;
        } catch (e) {
          noteFault(e);
          return false;
        }
      }
      return base.ping();
    },
  });
  return rejectingSyncThrows(store, noteFault);
}

/** better-sqlite3 throws synchronously; the interface promises rejections. */
function rejectingSyncThrows(store: Store, noteFault: (e: unknown) => void): Store {
  return new Proxy(store, {
    get(target, prop, receiver): unknown {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        try {
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        } catch (e) {
          noteFault(e);
          return Promise.reject(e instanceof Error ? e : new Error(String(e)));
        }
      };
    },
  });
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new StoreError(
      'POS_ERR_STORE',
      `the store schema (version ${current}) is newer than this service (version ${MIGRATIONS.length})`,
    );
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    const sql = MIGRATIONS[v] ?? '';
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

class SqliteStore extends SqlitePart implements CoreStore {
  readonly engine = 'sqlite';
  private closed = false;
  constructor(db: Database.Database) {
    super(db);
  }

  ping(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    try {
      return Promise.resolve(this.get('SELECT 1 AS one')?.['one'] === 1);
    } catch {
      return Promise.resolve(false);
    }
  }
  schemaVersion(): Promise<number> {
    return Promise.resolve(this.db.pragma('user_version', { simple: true }) as number);
  }
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.db.close();
    }
    return Promise.resolve();
  }

  getMeta(key: string): Promise<string | undefined> {
    const r = this.get('SELECT value FROM meta WHERE key = ?', key);
    return Promise.resolve(r === undefined ? undefined : str(r['value']));
  }
  initMeta(key: string, value: string): Promise<boolean> {
    return Promise.resolve(
      this.run('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)', key, value) === 1,
    );
  }
  setMeta(key: string, value: string): Promise<void> {
    this.run(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      key,
      value,
    );
    return Promise.resolve();
  }

  createMerchant(row: MerchantRow): Promise<void> {
    this.insertMerchant(row);
    return Promise.resolve();
  }
  createMerchantAudited(
    row: MerchantRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited(() => this.insertMerchant(row), draft, chain);
  }
  private insertMerchant(row: MerchantRow): void {
    this.run(
      'INSERT INTO merchants (id, name, created_at) VALUES (?, ?, ?)',
      row.id,
      row.name,
      row.createdAt,
    );
  }
  listMerchants(): Promise<MerchantRow[]> {
    return Promise.resolve(
      this.all('SELECT * FROM merchants ORDER BY id').map((r) => ({
        id: str(r['id']),
        name: str(r['name']),
        createdAt: num(r['created_at']),
      })),
    );
  }
  getMerchant(id: string): Promise<MerchantRow | undefined> {
    const r = this.get('SELECT * FROM merchants WHERE id = ?', id);
    return Promise.resolve(
      r === undefined
        ? undefined
        : { id: str(r['id']), name: str(r['name']), createdAt: num(r['created_at']) },
    );
  }

  createEnrollmentCode(row: Omit<EnrollmentCodeRow, 'usedAt' | 'terminalId'>): Promise<void> {
    this.insertEnrollmentCode(row);
    return Promise.resolve();
  }
  createEnrollmentCodeAudited(
    row: Omit<EnrollmentCodeRow, 'usedAt' | 'terminalId'>,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited(() => this.insertEnrollmentCode(row), draft, chain);
  }
  private insertEnrollmentCode(row: Omit<EnrollmentCodeRow, 'usedAt' | 'terminalId'>): void {
    this.run(
      'INSERT INTO enrollment_codes (code_hash, merchant_id, expires_at, created_at, created_by) VALUES (?, ?, ?, ?, ?)',
      row.codeHash,
      row.merchantId,
      row.expiresAt,
      row.createdAt,
      row.createdBy,
    );
  }
  consumeEnrollmentCode(
    codeHash: string,
    now: number,
    terminalId: string,
  ): Promise<EnrollmentCodeRow | undefined> {
    const changed = this.run(
      'UPDATE enrollment_codes SET used_at = ?, terminal_id = ? WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?',
      now,
      terminalId,
      codeHash,
      now,
    );
    if (changed !== 1) return Promise.resolve(undefined);
    const r = this.get('SELECT * FROM enrollment_codes WHERE code_hash = ?', codeHash);
    return Promise.resolve(r === undefined ? undefined : toCode(r));
  }

  createTerminal(row: TerminalRow): Promise<void> {
    this.insertTerminal(row);
    return Promise.resolve();
  }
  createTerminalAudited(
    row: TerminalRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited(() => this.insertTerminal(row), draft, chain);
  }
  private insertTerminal(row: TerminalRow): void {
    try {
      this.run(
        `INSERT INTO terminals (id, merchant_id, device_jwk, device_jkt, reader_serial, last_counter, state, state_reason,
           interval_s, created_at, last_attested_at, state_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
      );
    } catch (e) {
      if (isUniqueViolation(e))
        throw new StoreError('POS_ERR_ENROLLMENT_KEY_IN_USE', 'device key already enrolled');
      throw e;
    }
  }
  getTerminal(id: string): Promise<TerminalRow | undefined> {
    const r = this.get('SELECT * FROM terminals WHERE id = ?', id);
    return Promise.resolve(r === undefined ? undefined : toTerminal(r));
  }
  countTerminals(): Promise<number> {
    return Promise.resolve(num(this.get('SELECT COUNT(*) AS n FROM terminals')?.['n']));
  }
  advanceTerminalCounter(id: string, counter: number, at: number): Promise<boolean> {
    return Promise.resolve(
      this.run(
        'UPDATE terminals SET last_counter = ?, last_attested_at = ? WHERE id = ? AND last_counter < ?',
        counter,
        at,
        id,
        counter,
      ) === 1,
    );
  }
  setTerminalState(id: string, state: TerminalState, reason: string | null, at?: number): Promise<boolean> {
    return Promise.resolve(
      this.run(
        'UPDATE terminals SET state = ?, state_reason = ?, state_changed_at = COALESCE(?, state_changed_at) WHERE id = ?',
        state,
        reason,
        at ?? null,
        id,
      ) === 1,
    );
  }
  transitionTerminalState(
    id: string,
    from: TerminalState,
    to: TerminalState,
    reason: string | null,
    at: number,
  ): Promise<boolean> {
    return Promise.resolve(this.transitionRow(id, from, to, reason, at));
  }
  transitionTerminalStateAudited(
    id: string,
    from: TerminalState,
    to: TerminalState,
    reason: string | null,
    at: number,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined> {
    return this.writeAudited(() => this.transitionRow(id, from, to, reason, at), draft, chain);
  }
  private transitionRow(
    id: string,
    from: TerminalState,
    to: TerminalState,
    reason: string | null,
    at: number,
  ): boolean {
    return (
      this.run(
        'UPDATE terminals SET state = ?, state_reason = ?, state_changed_at = ? WHERE id = ? AND state = ?',
        to,
        reason,
        at,
        id,
        from,
      ) === 1
    );
  }

  createChallenge(row: Omit<ChallengeRow, 'usedAt'>): Promise<void> {
    this.run(
      'INSERT INTO challenges (value, terminal_id, expires_at, created_at) VALUES (?, ?, ?, ?)',
      row.value,
      row.terminalId,
      row.expiresAt,
      row.createdAt,
    );
    return Promise.resolve();
  }
  consumeChallenge(value: string, now: number): Promise<ChallengeRow | undefined> {
    const tx = this.db.transaction((): ChallengeRow | undefined => {
      const r = this.get('SELECT * FROM challenges WHERE value = ?', value);
      if (r === undefined) return undefined;
      const before = toChallenge(r);
      if (before.usedAt === null) this.run('UPDATE challenges SET used_at = ? WHERE value = ?', now, value);
      return before;
    });
    return Promise.resolve(tx.immediate());
  }
  useChallenge(row: Omit<ChallengeRow, 'usedAt'>, now: number): Promise<ChallengeRow> {
    const tx = this.db.transaction((): ChallengeRow => {
      const inserted = this.run(
        'INSERT INTO challenges (value, terminal_id, expires_at, created_at, used_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (value) DO NOTHING',
        row.value,
        row.terminalId,
        row.expiresAt,
        row.createdAt,
        now,
      );
      if (inserted === 1) return { ...row, usedAt: null };
      const r = this.get('SELECT * FROM challenges WHERE value = ?', row.value);
      if (r === undefined) throw new StoreError('POS_ERR_STORE', 'a used challenge vanished');
      const before = toChallenge(r);
      if (before.usedAt === null)
        this.run('UPDATE challenges SET used_at = ? WHERE value = ?', now, row.value);
      return before;
    });
    return Promise.resolve(tx.immediate());
  }
  purgeChallenges(before: number): Promise<number> {
    return Promise.resolve(this.run('DELETE FROM challenges WHERE expires_at < ?', before));
  }

  recordAttestationOutcome(
    outcome: AttestationOutcomeRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<{ readonly ok: true; readonly audit: AuditRow } | { readonly ok: false }> {
    const tx = this.db.transaction(
      (): { readonly ok: true; readonly audit: AuditRow } | { readonly ok: false } => {
        const changed = this.run(
          `UPDATE terminals SET last_counter = ?, last_attested_at = ?, next_due_at = ?, last_tier = ?
         WHERE id = ? AND last_counter < ? AND state = 'active' AND stale_at IS NULL`,
          outcome.counter,
          outcome.at,
          outcome.nextDueAt,
          outcome.lastTier,
          outcome.terminalId,
          outcome.counter,
        );
        if (changed !== 1) return { ok: false };
        this.insertAttestation(outcome.attestation);
        const entry = this.appendAuditEntry(outcome.audit, chain);
        if (outcome.ticket !== null) this.insertTicket(outcome.ticket);
        return { ok: true, audit: entry };
      },
    );
    return Promise.resolve(tx.immediate());
  }
  recordAttestationAudited(
    row: AttestationRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited(() => this.insertAttestation(row), draft, chain);
  }
  private insertAttestation(row: AttestationRow): void {
    this.run(
      `INSERT INTO attestations (id, terminal_id, at, purpose, counter, tier, policy_version, evidence_hash, verdict)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      row.id,
      row.terminalId,
      row.at,
      row.purpose,
      row.counter,
      row.tier,
      row.policyVersion,
      row.evidenceHash,
      JSON.stringify(row.verdict),
    );
  }
  private insertTicket(row: TicketRow): void {
    this.run(
      'INSERT INTO tickets (jti, terminal_id, use, kid, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      row.jti,
      row.terminalId,
      row.use,
      row.kid,
      row.issuedAt,
      row.expiresAt,
    );
  }

  recordAttestation(row: AttestationRow): Promise<void> {
    this.run(
      `INSERT INTO attestations (id, terminal_id, at, purpose, counter, tier, policy_version, evidence_hash, verdict)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      row.id,
      row.terminalId,
      row.at,
      row.purpose,
      row.counter,
      row.tier,
      row.policyVersion,
      row.evidenceHash,
      JSON.stringify(row.verdict),
    );
    return Promise.resolve();
  }
  listAttestations(terminalId: string, limit: number): Promise<AttestationRow[]> {
    return Promise.resolve(
      this.all(
        'SELECT * FROM attestations WHERE terminal_id = ? ORDER BY at DESC, rowid DESC LIMIT ?',
        terminalId,
        limit,
      ).map(toAttestation),
    );
  }
  countAttestations(): Promise<number> {
    return Promise.resolve(num(this.get('SELECT COUNT(*) AS n FROM attestations')?.['n']));
  }

  recordTicket(row: TicketRow): Promise<void> {
    this.run(
      'INSERT INTO tickets (jti, terminal_id, use, kid, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      row.jti,
      row.terminalId,
      row.use,
      row.kid,
      row.issuedAt,
      row.expiresAt,
    );
    return Promise.resolve();
  }
  getTicket(jti: string): Promise<TicketRow | undefined> {
    const r = this.get('SELECT * FROM tickets WHERE jti = ?', jti);
    return Promise.resolve(r === undefined ? undefined : toTicket(r));
  }
  latestTicket(terminalId: string): Promise<IssuedTicketRow | null> {
    const r = this.get(
      // rowid: the one recorded last among tickets issued in the same second (the index holds it).
      'SELECT * FROM tickets WHERE terminal_id = ? ORDER BY issued_at DESC, rowid DESC LIMIT 1',
      terminalId,
    );
    return Promise.resolve(r === undefined ? null : toIssuedTicket(r));
  }
  consumeTicket(jti: string, terminalId: string, use: string, now: number): Promise<boolean> {
    return Promise.resolve(
      this.run(
        'UPDATE tickets SET used_at = ? WHERE jti = ? AND terminal_id = ? AND use = ? AND used_at IS NULL AND expires_at > ?',
        now,
        jti,
        terminalId,
        use,
        now,
      ) === 1,
    );
  }
  lastTicketExpiry(kid: string): Promise<number | undefined> {
    const r = this.get('SELECT MAX(expires_at) AS m FROM tickets WHERE kid = ?', kid);
    const m = r?.['m'];
    return Promise.resolve(m === null || m === undefined ? undefined : num(m));
  }

  putSigningKey(row: SigningKeyRow): Promise<void> {
    this.run(
      `INSERT INTO signing_keys (kid, public_jwk, encrypted_private_key, state, created_at, retired_at, verify_until)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      row.kid,
      row.publicJwk,
      row.encryptedPrivateKey,
      row.state,
      row.createdAt,
      row.retiredAt,
      row.verifyUntil,
    );
    return Promise.resolve();
  }
  listSigningKeys(): Promise<SigningKeyRow[]> {
    return Promise.resolve(this.all('SELECT * FROM signing_keys ORDER BY created_at, kid').map(toKey));
  }
  retireSigningKey(kid: string, retiredAt: number, verifyUntil: number): Promise<void> {
    this.run(
      "UPDATE signing_keys SET state = 'retired', retired_at = ?, verify_until = ?, encrypted_private_key = '' WHERE kid = ?",
      retiredAt,
      verifyUntil,
      kid,
    );
    return Promise.resolve();
  }
  deleteSigningKey(kid: string): Promise<void> {
    this.run('DELETE FROM signing_keys WHERE kid = ?', kid);
    return Promise.resolve();
  }

  putReferenceValues(row: ReferenceValuesRow): Promise<void> {
    this.insertReferenceValues(row);
    return Promise.resolve();
  }
  putReferenceValuesAudited(
    row: ReferenceValuesRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited(() => this.insertReferenceValues(row), draft, chain);
  }
  private insertReferenceValues(row: ReferenceValuesRow): void {
    this.run(
      'INSERT INTO reference_values (id, version, build, document, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)',
      row.id,
      row.version,
      row.build,
      JSON.stringify(row.document),
      row.createdAt,
      row.createdBy,
    );
  }
  listReferenceValues(): Promise<ReferenceValuesRow[]> {
    return Promise.resolve(
      this.all('SELECT * FROM reference_values ORDER BY created_at, id').map((r) => ({
        id: str(r['id']),
        version: str(r['version']),
        build: str(r['build']) as ReferenceValuesRow['build'],
        document: json(r['document']),
        createdAt: num(r['created_at']),
        createdBy: str(r['created_by']),
      })),
    );
  }
  deleteReferenceValues(id: string): Promise<boolean> {
    return Promise.resolve(this.deleteReferenceValuesRow(id));
  }
  deleteReferenceValuesAudited(
    id: string,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined> {
    return this.writeAudited(() => this.deleteReferenceValuesRow(id), draft, chain);
  }
  private deleteReferenceValuesRow(id: string): boolean {
    return this.run('DELETE FROM reference_values WHERE id = ?', id) === 1;
  }

  putPolicy(row: PolicyRow): Promise<void> {
    this.insertPolicy(row);
    return Promise.resolve();
  }
  putPolicyAudited(
    row: PolicyRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited(() => this.insertPolicy(row), draft, chain);
  }
  private insertPolicy(row: PolicyRow): void {
    try {
      this.run(
        'INSERT INTO policies (version, document, role, created_at, created_by) VALUES (?, ?, ?, ?, ?)',
        row.version,
        JSON.stringify(row.document),
        row.role,
        row.createdAt,
        row.createdBy,
      );
    } catch (e) {
      if (isUniqueViolation(e)) throw new StoreError('POS_ERR_POLICY_EXISTS', 'policy version exists');
      throw e;
    }
  }
  getPolicy(version: string): Promise<PolicyRow | undefined> {
    const r = this.get('SELECT * FROM policies WHERE version = ?', version);
    return Promise.resolve(r === undefined ? undefined : toPolicy(r));
  }
  listPolicies(): Promise<PolicyRow[]> {
    return Promise.resolve(this.all('SELECT * FROM policies ORDER BY created_at, version').map(toPolicy));
  }
  activatePolicy(version: string): Promise<boolean> {
    return Promise.resolve(this.db.transaction(() => this.switchPolicy(version)).immediate());
  }
  activatePolicyAudited(
    version: string,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined> {
    return this.writeAudited(() => this.switchPolicy(version), draft, chain);
  }
  /** Makes `version` the one active policy, inside the caller's transaction; false when unknown. */
  private switchPolicy(version: string): boolean {
    if (this.get('SELECT 1 FROM policies WHERE version = ?', version) === undefined) return false;
    this.run("UPDATE policies SET role = 'inactive' WHERE role = 'active'");
    this.run("UPDATE policies SET role = 'active' WHERE version = ?", version);
    return true;
  }
  setPolicyShadow(version: string, shadow: boolean): Promise<boolean> {
    return Promise.resolve(this.shadowRow(version, shadow));
  }
  setPolicyShadowAudited(
    version: string,
    shadow: boolean,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined> {
    return this.writeAudited(() => this.shadowRow(version, shadow), draft, chain);
  }
  private shadowRow(version: string, shadow: boolean): boolean {
    return (
      this.run(
        "UPDATE policies SET role = ? WHERE version = ? AND role <> 'active'",
        shadow ? 'shadow' : 'inactive',
        version,
      ) === 1
    );
  }

  appendAudit(
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    const tx = this.db.transaction((): AuditRow => this.appendAuditEntry(draft, chain));
    return Promise.resolve(tx.immediate());
  }
  auditHead(): Promise<AuditRow | undefined> {
    const r = this.get('SELECT * FROM audit_entries ORDER BY seq DESC LIMIT 1');
    return Promise.resolve(r === undefined ? undefined : toAudit(r));
  }
  listAudit(afterSeq: number, limit: number): Promise<AuditRow[]> {
    return Promise.resolve(
      this.all('SELECT * FROM audit_entries WHERE seq > ? ORDER BY seq LIMIT ?', afterSeq, limit).map(
        toAudit,
      ),
    );
  }
  putCheckpoint(row: CheckpointRow): Promise<void> {
    this.run(
      'INSERT OR REPLACE INTO audit_checkpoints (seq, hash, at, kid, signature) VALUES (?, ?, ?, ?, ?)',
      row.seq,
      row.hash,
      row.at,
      row.kid,
      row.signature,
    );
    return Promise.resolve();
  }
  listCheckpoints(): Promise<CheckpointRow[]> {
    return Promise.resolve(
      this.all('SELECT * FROM audit_checkpoints ORDER BY seq').map((r) => ({
        seq: num(r['seq']),
        hash: str(r['hash']),
        at: str(r['at']),
        kid: str(r['kid']),
        signature: str(r['signature']),
      })),
    );
  }

  recordTransaction(row: TransactionRow): Promise<void> {
    this.run(
      `INSERT INTO transactions (id, terminal_id, merchant_id, at, amount, currency, approved, code, auth_code, card_token, ticket_jti)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      row.id,
      row.terminalId,
      row.merchantId,
      row.at,
      row.amount,
      row.currency,
      row.approved ? 1 : 0,
      row.code,
      row.authCode,
      row.cardToken,
      row.ticketJti,
    );
    return Promise.resolve();
  }
  listTransactions(terminalId: string, limit: number): Promise<TransactionRow[]> {
    return Promise.resolve(
      this.all(
        'SELECT * FROM transactions WHERE terminal_id = ? ORDER BY at DESC, rowid DESC LIMIT ?',
        terminalId,
        limit,
      ).map(toTransaction),
    );
  }

  velocityHit(key: string, now: number, windowMs: number): Promise<number> {
    const tx = this.db.transaction((): number => {
      this.run('DELETE FROM velocity_events WHERE key = ? AND at <= ?', key, now - windowMs);
      this.run("INSERT INTO velocity_events (key, at, member) VALUES (?, ?, '')", key, now);
      return num(
        this.get('SELECT COUNT(*) AS n FROM velocity_events WHERE key = ? AND at > ?', key, now - windowMs)?.[
          'n'
        ],
      );
    });
    return Promise.resolve(tx.immediate());
  }
  velocityCount(key: string, now: number, windowMs: number): Promise<number> {
    return Promise.resolve(
      num(
        this.get('SELECT COUNT(*) AS n FROM velocity_events WHERE key = ? AND at > ?', key, now - windowMs)?.[
          'n'
        ],
      ),
    );
  }
  velocityReset(key: string): Promise<void> {
    this.run('DELETE FROM velocity_events WHERE key = ?', key);
    return Promise.resolve();
  }
  velocityDistinct(key: string, member: string, now: number, windowMs: number): Promise<number> {
    const tx = this.db.transaction((): number => {
      this.run('DELETE FROM velocity_events WHERE key = ? AND at <= ?', key, now - windowMs);
      this.run('INSERT INTO velocity_events (key, at, member) VALUES (?, ?, ?)', key, now, member);
      return num(
        this.get(
          'SELECT COUNT(DISTINCT member) AS n FROM velocity_events WHERE key = ? AND at > ?',
          key,
          now - windowMs,
        )?.['n'],
      );
    });
    return Promise.resolve(tx.immediate());
  }

  purgeVelocityEvents(before: number, batchSize: number = VELOCITY_PURGE_BATCH): Promise<number> {
    checkVelocityPurge(before, batchSize);
    const batch = (): number => this.run(SQLITE_VELOCITY_PURGE_SQL, before, batchSize);
    // The first batch runs now (a failure is a synchronous throw, noted as a store fault by the
    // wrapper); each further one after a turn of the event loop, so requests (and their writes) run
    // between batches instead of waiting for a large backlog to go.
    const first = batch();
    if (first < batchSize) return Promise.resolve(first);
    const rest = async (): Promise<number> => {
      let total = first;
      for (;;) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        const n = batch();
        total += n;
        if (n < batchSize) return total;
      }
    };
    return rest();
  }

  advanceKsnCounter(prefix: string, counter: number, at: number): Promise<boolean> {
    // One statement: insert the first counter of a prefix, or raise it only when strictly higher.
    return Promise.resolve(
      this.run(
        `INSERT INTO ksn_counters (prefix, counter, updated_at) VALUES (?, ?, ?)
         ON CONFLICT(prefix) DO UPDATE SET counter = excluded.counter, updated_at = excluded.updated_at
         WHERE excluded.counter > ksn_counters.counter`,
        prefix,
        counter,
        at,
      ) === 1,
    );
  }
  advanceReaderStatusSeq(serial: string, seq: number, at: number): Promise<boolean> {
    return Promise.resolve(
      this.run(
        `INSERT INTO reader_status_seqs (serial, seq, updated_at) VALUES (?, ?, ?)
         ON CONFLICT(serial) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at
         WHERE excluded.seq > reader_status_seqs.seq`,
        serial,
        seq,
        at,
      ) === 1,
    );
  }

  rememberProofJti(jti: string, expiresAt: number, now: number): Promise<boolean> {
    const tx = this.db.transaction((): boolean => {
      this.run('DELETE FROM proof_jtis WHERE expires_at < ?', now);
      return (
        this.run('INSERT OR IGNORE INTO proof_jtis (jti, expires_at) VALUES (?, ?)', jti, expiresAt) === 1
      );
    });
    return Promise.resolve(tx.immediate());
  }
}
