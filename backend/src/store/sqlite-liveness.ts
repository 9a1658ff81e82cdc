/** SQLite part of the store: liveness deadlines, the stale mark, fleet queries (LivenessStore). */
import type Database from 'better-sqlite3';
import { SqlitePart } from './sqlite-base';
import { StoreError, type LivenessStore, type TerminalQuery, type TerminalRow } from './types';

export const SQLITE_LIVENESS_MIGRATION = `
  ALTER TABLE terminals ADD COLUMN next_due_at INTEGER;
  ALTER TABLE terminals ADD COLUMN stale_at INTEGER;
  ALTER TABLE terminals ADD COLUMN app_version TEXT;
  CREATE INDEX terminals_next_due ON terminals(next_due_at) WHERE stale_at IS NULL;
  CREATE INDEX terminals_reader_serial ON terminals(reader_serial);
  CREATE INDEX terminals_app_version ON terminals(app_version);
`;

const notYet = (what: string): never => {
  throw new StoreError('POS_ERR_STORE', `${what}: not implemented yet`);
};

export class SqliteLivenessStore extends SqlitePart implements LivenessStore {
  constructor(db: Database.Database) {
    super(db);
  }
  listTerminals(_query: TerminalQuery): Promise<TerminalRow[]> {
    return notYet('listTerminals');
  }
  listTerminalIds(_query: Omit<TerminalQuery, 'afterId' | 'limit'>): Promise<string[]> {
    return notYet('listTerminalIds');
  }
  setTerminalAppVersion(_id: string, _version: string): Promise<void> {
    return notYet('setTerminalAppVersion');
  }
  setNextDue(_id: string, _nextDueAt: number): Promise<void> {
    return notYet('setNextDue');
  }
  listOverdue(_before: number, _limit: number): Promise<TerminalRow[]> {
    return notYet('listOverdue');
  }
  markStale(_id: string, _at: number, _before: number): Promise<boolean> {
    return notYet('markStale');
  }
  countStale(): Promise<number> {
    return notYet('countStale');
  }
}
