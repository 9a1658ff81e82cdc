/** SQLite part of the store: operators, scoped API tokens, dashboard sessions (AuthStore). */
import type Database from 'better-sqlite3';
import { num, numOrNull, SqlitePart, str, strOrNull, type Row } from './sqlite-base';
import {
  StoreError,
  type ApiTokenRow,
  type AuthStore,
  type OperatorRole,
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

const toToken = (r: Row): ApiTokenRow => ({
  id: str(r['id']),
  tokenHash: str(r['token_hash']),
  label: str(r['label']),
  role: str(r['role']) as OperatorRole,
  merchantId: strOrNull(r['merchant_id']),
  createdBy: strOrNull(r['created_by']),
  createdAt: num(r['created_at']),
  expiresAt: numOrNull(r['expires_at']),
  revokedAt: numOrNull(r['revoked_at']),
});

const notYet = (what: string): never => {
  throw new StoreError('POS_ERR_STORE', `${what}: not implemented yet`);
};

export class SqliteAuthStore extends SqlitePart implements AuthStore {
  constructor(db: Database.Database) {
    super(db);
  }

  createOperator(_row: OperatorRow): Promise<void> {
    return notYet('createOperator');
  }
  getOperator(_id: string): Promise<OperatorRow | undefined> {
    return notYet('getOperator');
  }
  findOperatorByUsername(_username: string): Promise<OperatorRow | undefined> {
    return notYet('findOperatorByUsername');
  }
  listOperators(): Promise<OperatorRow[]> {
    return notYet('listOperators');
  }
  registerLoginFailure(
    _id: string,
    _now: number,
    _max: number,
    _lockMs: number,
  ): Promise<OperatorRow | undefined> {
    return notYet('registerLoginFailure');
  }
  resetLoginFailures(_id: string): Promise<void> {
    return notYet('resetLoginFailures');
  }
  setOperatorPassword(_id: string, _hash: string): Promise<boolean> {
    return notYet('setOperatorPassword');
  }
  disableOperator(_id: string, _at: number): Promise<boolean> {
    return notYet('disableOperator');
  }

  createApiToken(row: ApiTokenRow): Promise<void> {
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
    return Promise.resolve();
  }
  findApiToken(tokenHash: string): Promise<ApiTokenRow | undefined> {
    const r = this.get('SELECT * FROM api_tokens WHERE token_hash = ?', tokenHash);
    return Promise.resolve(r === undefined ? undefined : toToken(r));
  }
  listApiTokens(): Promise<ApiTokenRow[]> {
    return Promise.resolve(this.all('SELECT * FROM api_tokens ORDER BY created_at, id').map(toToken));
  }
  revokeApiToken(id: string, at: number): Promise<boolean> {
    return Promise.resolve(
      this.run('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', at, id) === 1,
    );
  }

  createSession(_row: SessionRow): Promise<void> {
    return notYet('createSession');
  }
  findSession(_tokenHash: string): Promise<SessionRow | undefined> {
    return notYet('findSession');
  }
  revokeSession(_id: string, _at: number): Promise<boolean> {
    return notYet('revokeSession');
  }
  revokeOperatorSessions(_operatorId: string, _at: number): Promise<number> {
    return notYet('revokeOperatorSessions');
  }
}
