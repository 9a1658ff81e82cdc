/** SQLite part of the store: operators, scoped API tokens, dashboard sessions (AuthStore). */
import type Database from 'better-sqlite3';
import { num, SqlitePart } from './sqlite-base';
import { toOperator, toSession, toToken } from './rows';
import {
  checkLockoutMax,
  StoreError,
  type ApiTokenRow,
  type AuditDraftRow,
  type AuditRow,
  type AuthStore,
  type LockoutProbe,
  type NewOperatorRow,
  type OperatorRow,
  type SessionRow,
} from './types';

export const SQLITE_AUTH_MIGRATION = `
  ALTER TABLE api_tokens ADD COLUMN merchant_id TEXT;
  ALTER TABLE api_tokens ADD COLUMN created_by TEXT;
  ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
  CREATE TABLE operators (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'auditor', 'merchant')),
    merchant_id TEXT REFERENCES merchants(id),
    created_at INTEGER NOT NULL,
    disabled_at INTEGER,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER
  );
  CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    csrf_hash TEXT NOT NULL,
    operator_id TEXT NOT NULL REFERENCES operators(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
  );
  CREATE INDEX sessions_operator ON sessions(operator_id);
`;

/**
 * Schema version 8: login lock-outs live in the login throttle's velocity keys, derived from the
 * password hash and `login_epoch` (raised by an admin to clear them). The per-account columns
 * failed_logins and locked_until are unused but kept (this code's inserts leave them at their
 * defaults, 0 and NULL, and the row mapping ignores them) so a process of the previous release, which
 * reads and writes them, keeps working on the same store during a rolling upgrade; a later release
 * drops them once no older process runs.
 */
export const SQLITE_LOGIN_EPOCH_MIGRATION = `
  ALTER TABLE operators ADD COLUMN login_epoch INTEGER NOT NULL DEFAULT 0;
`;

/**
 * `loginLockoutStart`: the `max`-th newest attempt of a key in the window (key, after, until,
 * max - 1), read backwards through velocity_key: at most `max` rows, no sort.
 */
export const SQLITE_LOCKOUT_START_SQL =
  'SELECT at FROM velocity_events WHERE key = ? AND at > ? AND at <= ? ORDER BY at DESC LIMIT 1 OFFSET ?';

function isUniqueViolation(e: unknown): boolean {
  return (
    typeof e === 'object' &&
    e !== null &&
    'code' in e &&
    (e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
  );
}

export class SqliteAuthStore extends SqlitePart implements AuthStore {
  constructor(db: Database.Database) {
    super(db);
  }

  createOperator(row: NewOperatorRow): Promise<void> {
    try {
      this.insertOperator(row);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    return Promise.resolve();
  }
  createOperatorAudited(
    row: NewOperatorRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited(() => this.insertOperator(row), draft, chain);
  }
  private insertOperator(row: NewOperatorRow): void {
    try {
      this.run(
        `INSERT INTO operators (id, username, password_hash, role, merchant_id, created_at, disabled_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        row.id,
        row.username,
        row.passwordHash,
        row.role,
        row.merchantId,
        row.createdAt,
        row.disabledAt,
      );
    } catch (e) {
      if (isUniqueViolation(e)) throw new StoreError('POS_ERR_OPERATOR_EXISTS', 'username taken');
      throw e;
    }
  }
  getOperator(id: string): Promise<OperatorRow | undefined> {
    const r = this.get('SELECT * FROM operators WHERE id = ?', id);
    return Promise.resolve(r === undefined ? undefined : toOperator(r));
  }
  findOperatorByUsername(username: string): Promise<OperatorRow | undefined> {
    const r = this.get('SELECT * FROM operators WHERE username = ?', username);
    return Promise.resolve(r === undefined ? undefined : toOperator(r));
  }
  listOperators(): Promise<OperatorRow[]> {
    return Promise.resolve(this.all('SELECT * FROM operators ORDER BY created_at, id').map(toOperator));
  }
  hitLoginAttempt(key: string, now: number, windowMs: number): Promise<number> {
    // One connection, synchronous statements in one transaction: no other call interleaves.
    const hit = this.db.transaction((): number => {
      this.run('DELETE FROM velocity_events WHERE key = ? AND at <= ?', key, now - windowMs);
      this.run("INSERT INTO velocity_events (key, at, member) VALUES (?, ?, '')", key, now);
      return num(
        this.get('SELECT COUNT(*) AS n FROM velocity_events WHERE key = ? AND at > ?', key, now - windowMs)?.[
          'n'
        ],
      );
    });
    return Promise.resolve(hit());
  }
  loginLockoutStart(key: string, now: number, windowMs: number, max: number): Promise<number | undefined> {
    checkLockoutMax(max);
    return Promise.resolve(this.lockoutStart(key, now, windowMs, max));
  }
  private lockoutStart(key: string, now: number, windowMs: number, max: number): number | undefined {
    const r = this.get(SQLITE_LOCKOUT_START_SQL, key, now - windowMs, now, max - 1);
    return r === undefined ? undefined : num(r['at']);
  }
  clearLoginLockoutsAudited(
    id: string,
    lockout: LockoutProbe,
    draft: (wasLockedUntil: number | null) => AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<
    | { readonly loginEpoch: number; readonly wasLockedUntil: number | null; readonly audit: AuditRow }
    | undefined
  > {
    checkLockoutMax(lockout.max);
    // An immediate transaction: no other write (a password set, another unlock) between the read of
    // the operator and the epoch raised.
    const tx = this.db.transaction(() => {
      const row = this.get('SELECT * FROM operators WHERE id = ?', id);
      if (row === undefined) return undefined;
      const { now, windowMs, max } = lockout;
      const start = this.lockoutStart(lockout.key(toOperator(row)), now, windowMs, max);
      const wasLockedUntil = start === undefined ? null : start + windowMs;
      this.run('UPDATE operators SET login_epoch = login_epoch + 1 WHERE id = ?', id);
      const loginEpoch = num(this.get('SELECT login_epoch FROM operators WHERE id = ?', id)?.['login_epoch']);
      return { loginEpoch, wasLockedUntil, audit: this.appendAuditEntry(draft(wasLockedUntil), chain) };
    });
    return Promise.resolve(tx.immediate());
  }
  setOperatorPasswordAudited(
    id: string,
    passwordHash: string,
    at: number,
    draft: (sessionsEnded: number) => AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<{ readonly sessionsEnded: number; readonly audit: AuditRow } | undefined> {
    const tx = this.db.transaction((): { sessionsEnded: number; audit: AuditRow } | undefined => {
      if (this.run('UPDATE operators SET password_hash = ? WHERE id = ?', passwordHash, id) !== 1)
        return undefined;
      const sessionsEnded = this.run(
        'UPDATE sessions SET revoked_at = ? WHERE operator_id = ? AND revoked_at IS NULL',
        at,
        id,
      );
      return { sessionsEnded, audit: this.appendAuditEntry(draft(sessionsEnded), chain) };
    });
    return Promise.resolve(tx.immediate());
  }
  setOperatorPassword(id: string, passwordHash: string): Promise<boolean> {
    return Promise.resolve(
      this.run('UPDATE operators SET password_hash = ? WHERE id = ?', passwordHash, id) === 1,
    );
  }
  disableOperatorAudited(
    id: string,
    at: number,
    tokenIds: readonly string[],
    draft: (done: { readonly sessionsEnded: number; readonly tokensRevoked: number }) => AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<
    { readonly sessionsEnded: number; readonly tokensRevoked: number; readonly audit: AuditRow } | undefined
  > {
    const tx = this.db.transaction(() => {
      if (this.get('SELECT id FROM operators WHERE id = ?', id) === undefined) return undefined;
      this.run('UPDATE operators SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL', at, id);
      const done = {
        sessionsEnded: this.run(
          'UPDATE sessions SET revoked_at = ? WHERE operator_id = ? AND revoked_at IS NULL',
          at,
          id,
        ),
        tokensRevoked: this.run(
          'UPDATE api_tokens SET revoked_at = ? WHERE id IN (SELECT value FROM json_each(?)) AND revoked_at IS NULL',
          at,
          JSON.stringify([...tokenIds]),
        ),
      };
      return { ...done, audit: this.appendAuditEntry(draft(done), chain) };
    });
    return Promise.resolve(tx.immediate());
  }
  disableOperator(id: string, at: number): Promise<boolean> {
    return Promise.resolve(
      this.run('UPDATE operators SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL', at, id) === 1,
    );
  }

  createApiToken(row: ApiTokenRow): Promise<void> {
    this.insertApiToken(row);
    return Promise.resolve();
  }
  createApiTokenAudited(
    row: ApiTokenRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow> {
    return this.writeAudited(() => this.insertApiToken(row), draft, chain);
  }
  private insertApiToken(row: ApiTokenRow): void {
    this.run(
      `INSERT INTO api_tokens (id, token_hash, label, role, merchant_id, created_by, created_at, expires_at, revoked_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      row.id,
      row.tokenHash,
      row.label,
      row.role,
      row.merchantId,
      row.createdBy,
      row.createdAt,
      row.expiresAt,
      row.revokedAt,
    );
  }
  findApiToken(tokenHash: string): Promise<ApiTokenRow | undefined> {
    const r = this.get('SELECT * FROM api_tokens WHERE token_hash = ?', tokenHash);
    return Promise.resolve(r === undefined ? undefined : toToken(r));
  }
  listApiTokens(): Promise<ApiTokenRow[]> {
    return Promise.resolve(this.all('SELECT * FROM api_tokens ORDER BY created_at, id').map(toToken));
  }
  revokeApiToken(id: string, at: number): Promise<boolean> {
    return Promise.resolve(this.revokeTokenRow(id, at));
  }
  revokeApiTokenAudited(
    id: string,
    at: number,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined> {
    return this.writeAudited(() => this.revokeTokenRow(id, at), draft, chain);
  }
  private revokeTokenRow(id: string, at: number): boolean {
    return this.run('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', at, id) === 1;
  }

  createSession(row: SessionRow): Promise<void> {
    this.run(
      `INSERT INTO sessions (id, token_hash, csrf_hash, operator_id, created_at, expires_at, revoked_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      row.id,
      row.tokenHash,
      row.csrfHash,
      row.operatorId,
      row.createdAt,
      row.expiresAt,
      row.revokedAt,
    );
    return Promise.resolve();
  }
  findSession(tokenHash: string): Promise<SessionRow | undefined> {
    const r = this.get('SELECT * FROM sessions WHERE token_hash = ?', tokenHash);
    return Promise.resolve(r === undefined ? undefined : toSession(r));
  }
  revokeSession(id: string, at: number): Promise<boolean> {
    return Promise.resolve(
      this.run('UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', at, id) === 1,
    );
  }
  revokeOperatorSessions(operatorId: string, at: number): Promise<number> {
    return Promise.resolve(
      this.run(
        'UPDATE sessions SET revoked_at = ? WHERE operator_id = ? AND revoked_at IS NULL',
        at,
        operatorId,
      ),
    );
  }
  purgeSessions(before: number): Promise<number> {
    return Promise.resolve(this.run('DELETE FROM sessions WHERE expires_at < ?', before));
  }
}
