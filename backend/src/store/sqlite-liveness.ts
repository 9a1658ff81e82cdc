/** SQLite part of the store: liveness deadlines, the stale mark, fleet queries (LivenessStore). */
import type Database from 'better-sqlite3';
import { SqlitePart, num, str } from './sqlite-base';
import { toTerminal } from './rows';
import type { LivenessStore, TerminalQuery, TerminalRow } from './types';

export const SQLITE_LIVENESS_MIGRATION = `
  ALTER TABLE terminals ADD COLUMN next_due_at INTEGER;
  ALTER TABLE terminals ADD COLUMN stale_at INTEGER;
  ALTER TABLE terminals ADD COLUMN app_version TEXT;
  ALTER TABLE terminals ADD COLUMN last_tier TEXT;
  CREATE INDEX terminals_next_due ON terminals(next_due_at) WHERE stale_at IS NULL;
  CREATE INDEX terminals_reader_serial ON terminals(reader_serial);
  CREATE INDEX terminals_app_version ON terminals(app_version);
`;

/** The WHERE clause and parameters of a query's filters (every value bound, never interpolated). */
function filters(query: Omit<TerminalQuery, 'limit'>): { where: string; params: unknown[] } {
  const clauses: string[] = [];
  const params: unknown[] = [];
  if (query.merchantId !== undefined) {
    clauses.push('merchant_id = ?');
    params.push(query.merchantId);
  }
  if (query.state !== undefined) {
    clauses.push('state = ?');
    params.push(query.state);
  }
  if (query.notState !== undefined) {
    clauses.push('state <> ?');
    params.push(query.notState);
  }
  if (query.appVersion !== undefined) {
    clauses.push('app_version = ?');
    params.push(query.appVersion);
  }
  if (query.lastTier !== undefined) {
    clauses.push('last_tier = ?');
    params.push(query.lastTier);
  }
  if (query.readerSerial !== undefined) {
    clauses.push('reader_serial = ?');
    params.push(query.readerSerial);
  }
  if (query.stale !== undefined) clauses.push(query.stale ? 'stale_at IS NOT NULL' : 'stale_at IS NULL');
  if (query.afterId !== undefined) {
    clauses.push('id > ?');
    params.push(query.afterId);
  }
  return { where: clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`, params };
}

export class SqliteLivenessStore extends SqlitePart implements LivenessStore {
  constructor(db: Database.Database) {
    super(db);
  }
  listTerminals(query: TerminalQuery): Promise<TerminalRow[]> {
    const { where, params } = filters(query);
    const limit = Math.max(0, Math.floor(query.limit));
    return Promise.resolve(
      this.all(`SELECT * FROM terminals ${where} ORDER BY id LIMIT ?`, ...params, limit).map(toTerminal),
    );
  }
  listTerminalIds(query: Omit<TerminalQuery, 'afterId' | 'limit'>): Promise<string[]> {
    const { where, params } = filters(query);
    return Promise.resolve(
      this.all(`SELECT id FROM terminals ${where} ORDER BY id`, ...params).map((r) => str(r['id'])),
    );
  }
  setTerminalAppVersion(id: string, version: string): Promise<void> {
    this.run('UPDATE terminals SET app_version = ? WHERE id = ?', version, id);
    return Promise.resolve();
  }
  setTerminalLastTier(id: string, tier: string): Promise<void> {
    this.run('UPDATE terminals SET last_tier = ? WHERE id = ?', tier, id);
    return Promise.resolve();
  }
  setNextDue(id: string, nextDueAt: number, options?: { readonly onlyIfLive?: boolean }): Promise<boolean> {
    const sql =
      options?.onlyIfLive === true
        ? 'UPDATE terminals SET next_due_at = ? WHERE id = ? AND stale_at IS NULL'
        : 'UPDATE terminals SET next_due_at = ?, stale_at = NULL WHERE id = ?';
    return Promise.resolve(this.run(sql, nextDueAt, id) === 1);
  }
  listOverdue(before: number, limit: number): Promise<TerminalRow[]> {
    return Promise.resolve(
      this.all(
        'SELECT * FROM terminals WHERE stale_at IS NULL AND next_due_at < ? ORDER BY next_due_at, id LIMIT ?',
        before,
        Math.max(0, Math.floor(limit)),
      ).map(toTerminal),
    );
  }
  markStale(id: string, at: number, before: number): Promise<boolean> {
    return Promise.resolve(
      this.run(
        'UPDATE terminals SET stale_at = ? WHERE id = ? AND stale_at IS NULL AND next_due_at < ?',
        at,
        id,
        before,
      ) === 1,
    );
  }
  countTerminalsWhere(query: Omit<TerminalQuery, 'afterId' | 'limit'>): Promise<number> {
    const { where, params } = filters(query);
    return Promise.resolve(num(this.get(`SELECT COUNT(*) AS n FROM terminals ${where}`, ...params)?.['n']));
  }
  countStale(): Promise<number> {
    return Promise.resolve(
      num(this.get('SELECT COUNT(*) AS n FROM terminals WHERE stale_at IS NOT NULL')?.['n']),
    );
  }
}
