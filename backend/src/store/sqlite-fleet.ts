/** SQLite part of the store: halts, the per-terminal outbox, push connections (FleetStore). */
import type Database from 'better-sqlite3';
import { SqlitePart } from './sqlite-base';
import {
  StoreError,
  type FleetStore,
  type HaltRow,
  type OutboxKind,
  type OutboxRow,
  type PushConnectionRow,
} from './types';

export const SQLITE_FLEET_MIGRATION = `
  CREATE TABLE halts (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL CHECK (scope IN ('terminal', 'merchant', 'app-version', 'fleet')),
    target TEXT,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    lifted_at INTEGER,
    lifted_by TEXT
  );
  CREATE INDEX halts_created ON halts(created_at);
  CREATE TABLE outbox (
    terminal_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('halt', 'resume')),
    halt_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    sent_at INTEGER,
    acked_at INTEGER,
    PRIMARY KEY (terminal_id, seq)
  );
  CREATE INDEX outbox_halt ON outbox(halt_id);
  CREATE TABLE push_connections (
    terminal_id TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    connected_at INTEGER NOT NULL,
    seen_at INTEGER NOT NULL
  );
`;

const notYet = (what: string): never => {
  throw new StoreError('POS_ERR_STORE', `${what}: not implemented yet`);
};

export class SqliteFleetStore extends SqlitePart implements FleetStore {
  constructor(db: Database.Database) {
    super(db);
  }
  createHalt(_halt: HaltRow, _terminalIds: readonly string[]): Promise<OutboxRow[]> {
    return notYet('createHalt');
  }
  getHalt(_id: string): Promise<HaltRow | undefined> {
    return notYet('getHalt');
  }
  listHalts(_options: { readonly activeOnly: boolean; readonly limit: number }): Promise<HaltRow[]> {
    return notYet('listHalts');
  }
  liftHalt(_id: string, _by: string, _at: number): Promise<boolean> {
    return notYet('liftHalt');
  }
  appendOutbox(
    _terminalIds: readonly string[],
    _message: {
      readonly kind: OutboxKind;
      readonly haltId: string;
      readonly reason: string;
      readonly createdAt: number;
    },
  ): Promise<OutboxRow[]> {
    return notYet('appendOutbox');
  }
  listHaltDeliveries(_haltId: string): Promise<OutboxRow[]> {
    return notYet('listHaltDeliveries');
  }
  pendingOutbox(_terminalId: string): Promise<OutboxRow[]> {
    return notYet('pendingOutbox');
  }
  markOutboxSent(_terminalId: string, _seq: number, _at: number): Promise<void> {
    return notYet('markOutboxSent');
  }
  ackOutbox(_terminalId: string, _seq: number, _at: number): Promise<OutboxRow | undefined> {
    return notYet('ackOutbox');
  }
  claimPushConnection(
    _row: PushConnectionRow,
    _liveAfter: number,
  ): Promise<{ readonly ok: true } | { readonly ok: false; readonly existing: PushConnectionRow }> {
    return notYet('claimPushConnection');
  }
  touchPushConnection(_terminalId: string, _connectionId: string, _at: number): Promise<void> {
    return notYet('touchPushConnection');
  }
  releasePushConnection(_terminalId: string, _connectionId: string): Promise<void> {
    return notYet('releasePushConnection');
  }
}
