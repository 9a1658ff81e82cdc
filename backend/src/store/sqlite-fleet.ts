/** SQLite part of the store: halts, the per-terminal outbox, push connections (FleetStore). */
import type Database from 'better-sqlite3';
import { coalesce } from './batch';
import { num, SqlitePart, str } from './sqlite-base';
import { toHalt, toOutbox, toPushConnection } from './rows';
import type {
  AuditAppend,
  AuditRow,
  CoveringHalt,
  DecommissionDone,
  DecommissionOutcome,
  DecommissionRequest,
  FleetStore,
  HaltRow,
  LiftDone,
  LiftOutcome,
  OutboxKind,
  OutboxRow,
  PushConnectionRow,
  ResumeMessage,
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

interface OutboxKey {
  readonly terminalId: string;
  readonly seq: number;
  readonly at: number;
}

interface OutboxMessage {
  readonly kind: OutboxKind;
  readonly haltId: string;
  readonly reason: string;
  readonly createdAt: number;
}

export class SqliteFleetStore extends SqlitePart implements FleetStore {
  constructor(db: Database.Database) {
    super(db);
  }

  /**
   * Appends one row per terminal inside the caller's transaction (seq = the terminal's last + 1), in
   * one statement over a JSON array of ids (a fleet halt writes thousands). Rows come back in the
   * order of the (de-duplicated) ids.
   */
  private appendRows(terminalIds: readonly string[], m: OutboxMessage): OutboxRow[] {
    const ids = [...new Set(terminalIds)];
    if (ids.length === 0) return [];
    const rows = this.all(
      `INSERT INTO outbox (terminal_id, seq, kind, halt_id, reason, created_at)
       SELECT j.value, COALESCE((SELECT MAX(o.seq) FROM outbox o WHERE o.terminal_id = j.value), 0) + 1, ?, ?, ?, ?
       FROM (SELECT DISTINCT value FROM json_each(?)) j
       RETURNING *`,
      m.kind,
      m.haltId,
      m.reason,
      m.createdAt,
      JSON.stringify(ids),
    ).map(toOutbox);
    const byId = new Map(rows.map((r) => [r.terminalId, r]));
    return ids.map((id) => byId.get(id)).filter((r): r is OutboxRow => r !== undefined);
  }

  createHalt(halt: HaltRow, terminalIds: readonly string[]): Promise<OutboxRow[]> {
    return Promise.resolve(this.db.transaction(() => this.writeHalt(halt, terminalIds)).immediate());
  }
  createHaltAudited(
    halt: HaltRow,
    terminalIds: readonly string[],
    audit: AuditAppend<readonly OutboxRow[]>,
  ): Promise<{ readonly rows: OutboxRow[]; readonly audit: readonly AuditRow[] }> {
    const tx = this.db.transaction(() => {
      const rows = this.writeHalt(halt, terminalIds);
      return { rows, audit: this.appendAudits(audit, rows) };
    });
    return Promise.resolve(tx.immediate());
  }
  /** The entries `audit` builds from `result`, appended inside the caller's transaction. */
  private appendAudits<T>(audit: AuditAppend<T> | undefined, result: T): AuditRow[] {
    if (audit === undefined) return [];
    return audit.drafts(result).map((d) => this.appendAuditEntry(d, audit.chain));
  }
  /** createHalt's writes, inside the caller's transaction. */
  private writeHalt(halt: HaltRow, terminalIds: readonly string[]): OutboxRow[] {
    this.run(
      `INSERT INTO halts (id, scope, target, reason, created_by, created_at, lifted_at, lifted_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      halt.id,
      halt.scope,
      halt.target,
      halt.reason,
      halt.createdBy,
      halt.createdAt,
      halt.liftedAt,
      halt.liftedBy,
    );
    if (terminalIds.length > 0)
      this.run(
        `UPDATE terminals SET state = 'halted', state_reason = ?, state_changed_at = ?
           WHERE id IN (SELECT value FROM json_each(?)) AND state NOT IN ('halted', 'decommissioned')`,
        halt.reason,
        halt.createdAt,
        JSON.stringify([...new Set(terminalIds)]),
      );
    return this.appendRows(terminalIds, {
      kind: 'halt',
      haltId: halt.id,
      reason: halt.reason,
      createdAt: halt.createdAt,
    });
  }

  decommissionTerminalAudited(
    request: DecommissionRequest,
    audit: AuditAppend<DecommissionDone>,
  ): Promise<DecommissionOutcome> {
    const tx = this.db.transaction((): DecommissionOutcome => {
      const t = this.get('SELECT state FROM terminals WHERE id = ?', request.terminalId);
      if (t === undefined) return { ok: false, code: 'terminal-unknown' };
      const previous = str(t['state']);
      if (previous !== 'active' && previous !== 'halted' && previous !== 'resume-pending')
        return { ok: false, code: 'decommissioned' };
      this.run(
        `UPDATE terminals SET state = 'decommissioned', state_reason = ?, state_changed_at = ?,
           next_due_at = NULL, stale_at = NULL WHERE id = ?`,
        request.reason,
        request.at,
        request.terminalId,
      );
      const rows = this.appendRows([request.terminalId], {
        kind: 'halt',
        haltId: request.noticeId,
        reason: request.noticeReason,
        createdAt: request.at,
      });
      const done: DecommissionDone = { ok: true, previous, rows };
      return { ...done, audit: this.appendAudits(audit, done) };
    });
    return Promise.resolve(tx.immediate());
  }

  getHalt(id: string): Promise<HaltRow | undefined> {
    const r = this.get('SELECT * FROM halts WHERE id = ?', id);
    return Promise.resolve(r === undefined ? undefined : toHalt(r));
  }

  listHalts(options: { readonly activeOnly: boolean; readonly limit: number }): Promise<HaltRow[]> {
    const rows = options.activeOnly
      ? this.all(
          'SELECT * FROM halts WHERE lifted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT ?',
          options.limit,
        )
      : this.all('SELECT * FROM halts ORDER BY created_at DESC, id DESC LIMIT ?', options.limit);
    return Promise.resolve(rows.map(toHalt));
  }

  liftHalt(id: string, by: string, at: number): Promise<boolean> {
    return Promise.resolve(
      this.run(
        'UPDATE halts SET lifted_at = ?, lifted_by = ? WHERE id = ? AND lifted_at IS NULL',
        at,
        by,
        id,
      ) === 1,
    );
  }

  /** Of `ids`, those with a `halt` row of an active halt (other than `except`). Inside the caller's transaction. */
  private coveredByActive(ids: readonly string[], except: readonly string[]): Set<string> {
    if (ids.length === 0) return new Set();
    return new Set(
      this.all(
        `SELECT DISTINCT o.terminal_id AS id FROM outbox o JOIN halts h ON h.id = o.halt_id
         WHERE o.terminal_id IN (SELECT value FROM json_each(?)) AND o.kind = 'halt'
           AND h.lifted_at IS NULL AND h.id NOT IN (SELECT value FROM json_each(?))`,
        JSON.stringify(ids),
        JSON.stringify(except),
      ).map((r) => str(r['id'])),
    );
  }

  /** halted -> resume-pending for `ids` still halted; resolves to those moved. Inside the caller's transaction. */
  private resumeRows(ids: readonly string[], m: ResumeMessage): string[] {
    if (ids.length === 0) return [];
    const moved = new Set(
      this.all(
        `UPDATE terminals SET state = 'resume-pending', state_reason = ?, state_changed_at = ?
         WHERE id IN (SELECT value FROM json_each(?)) AND state = 'halted' RETURNING id`,
        m.stateReason,
        m.at,
        JSON.stringify(ids),
      ).map((r) => str(r['id'])),
    );
    return ids.filter((id) => moved.has(id));
  }

  liftHaltAndResume(haltId: string, m: ResumeMessage, audit?: AuditAppend<LiftDone>): Promise<LiftOutcome> {
    const tx = this.db.transaction((): LiftOutcome => {
      if (this.get('SELECT id FROM halts WHERE id = ?', haltId) === undefined)
        return { ok: false, code: 'halt-unknown' };
      if (
        this.run(
          'UPDATE halts SET lifted_at = ?, lifted_by = ? WHERE id = ? AND lifted_at IS NULL',
          m.at,
          m.by,
          haltId,
        ) !== 1
      )
        return { ok: false, code: 'halt-lifted' };
      const mine = this.all(
        `SELECT DISTINCT o.terminal_id AS id FROM outbox o JOIN terminals t ON t.id = o.terminal_id
         WHERE o.halt_id = ? AND o.kind = 'halt' AND t.state <> 'decommissioned' ORDER BY o.terminal_id`,
        haltId,
      ).map((r) => str(r['id']));
      const covered = this.coveredByActive(mine, [haltId]);
      const stillHalted = mine.filter((id) => covered.has(id));
      const resumed = this.resumeRows(
        mine.filter((id) => !covered.has(id)),
        m,
      );
      const rows = this.appendRows(resumed, { kind: 'resume', haltId, reason: m.reason, createdAt: m.at });
      const done: LiftDone = { ok: true, lifted: [haltId], resumed, stillHalted, rows };
      return { ...done, audit: this.appendAudits(audit, done) };
    });
    return Promise.resolve(tx.immediate());
  }

  resumeTerminalAndLift(
    terminalId: string,
    m: ResumeMessage,
    audit?: AuditAppend<LiftDone>,
  ): Promise<LiftOutcome> {
    const tx = this.db.transaction((): LiftOutcome => {
      const t = this.get('SELECT state FROM terminals WHERE id = ?', terminalId);
      if (t === undefined) return { ok: false, code: 'terminal-unknown' };
      if (str(t['state']) !== 'halted') return { ok: false, code: 'not-halted' };
      const own = this.all(
        `SELECT id FROM halts WHERE lifted_at IS NULL AND scope = 'terminal' AND target = ?
         ORDER BY created_at DESC, id DESC`,
        terminalId,
      ).map((r) => str(r['id']));
      if (this.coveredByActive([terminalId], own).size > 0) return { ok: false, code: 'still-covered' };
      const lifted = own.filter(
        (id) =>
          this.run(
            'UPDATE halts SET lifted_at = ?, lifted_by = ? WHERE id = ? AND lifted_at IS NULL',
            m.at,
            m.by,
            id,
          ) === 1,
      );
      const resumed = this.resumeRows([terminalId], m);
      if (resumed.length === 0) return { ok: false, code: 'not-halted' };
      const notice = lifted[0];
      const rows =
        notice === undefined
          ? []
          : this.appendRows(resumed, { kind: 'resume', haltId: notice, reason: m.reason, createdAt: m.at });
      const done: LiftDone = { ok: true, lifted, resumed, stillHalted: [], rows };
      return { ...done, audit: this.appendAudits(audit, done) };
    });
    return Promise.resolve(tx.immediate());
  }

  activeHaltsCovering(terminal: {
    readonly id: string;
    readonly merchantId: string;
    readonly appVersions: readonly string[];
  }): Promise<CoveringHalt[]> {
    const rows = this.all(
      `SELECT h.*, EXISTS (SELECT 1 FROM outbox o WHERE o.terminal_id = ? AND o.halt_id = h.id AND o.kind = 'halt')
         AS delivered
       FROM halts h
       WHERE h.lifted_at IS NULL AND (h.scope = 'fleet' OR (h.scope = 'terminal' AND h.target = ?)
         OR (h.scope = 'merchant' AND h.target = ?)
         OR (h.scope = 'app-version' AND h.target IN (SELECT value FROM json_each(?))))
       ORDER BY h.created_at DESC, h.id DESC`,
      terminal.id,
      terminal.id,
      terminal.merchantId,
      JSON.stringify(terminal.appVersions),
    );
    return Promise.resolve(rows.map((r) => ({ halt: toHalt(r), delivered: num(r['delivered']) === 1 })));
  }

  appendOutbox(terminalIds: readonly string[], message: OutboxMessage): Promise<OutboxRow[]> {
    const tx = this.db.transaction((): OutboxRow[] => this.appendRows(terminalIds, message));
    return Promise.resolve(tx.immediate());
  }

  listHaltDeliveries(haltId: string): Promise<OutboxRow[]> {
    return Promise.resolve(
      this.all('SELECT * FROM outbox WHERE halt_id = ? ORDER BY terminal_id, seq', haltId).map(toOutbox),
    );
  }

  pendingOutbox(terminalId: string): Promise<OutboxRow[]> {
    return Promise.resolve(
      this.all(
        'SELECT * FROM outbox WHERE terminal_id = ? AND acked_at IS NULL ORDER BY seq',
        terminalId,
      ).map(toOutbox),
    );
  }

  /** `sentAt` of every message of one turn of the event loop: one transaction (one commit), not one each. */
  private readonly sentBatch = coalesce((items: readonly OutboxKey[]): void[] =>
    this.db.transaction((): void[] =>
      items.map((i) => {
        this.run(
          'UPDATE outbox SET sent_at = ? WHERE terminal_id = ? AND seq = ? AND sent_at IS NULL',
          i.at,
          i.terminalId,
          i.seq,
        );
      }),
    )(),
  );

  markOutboxSent(terminalId: string, seq: number, at: number): Promise<void> {
    return this.sentBatch({ terminalId, seq, at });
  }

  /** Acknowledgements of one turn of the event loop: one transaction; each call still gets its own answer. */
  private readonly ackBatch = coalesce((items: readonly OutboxKey[]): (OutboxRow | undefined)[] =>
    this.db.transaction((): (OutboxRow | undefined)[] =>
      items.map((i) => {
        const r = this.get(
          'UPDATE outbox SET acked_at = ? WHERE terminal_id = ? AND seq = ? AND acked_at IS NULL RETURNING *',
          i.at,
          i.terminalId,
          i.seq,
        );
        return r === undefined ? undefined : toOutbox(r);
      }),
    )(),
  );

  ackOutbox(terminalId: string, seq: number, at: number): Promise<OutboxRow | undefined> {
    return this.ackBatch({ terminalId, seq, at });
  }

  claimPushConnection(
    row: PushConnectionRow,
    liveAfter: number,
  ): Promise<{ readonly ok: true } | { readonly ok: false; readonly existing: PushConnectionRow }> {
    const tx = this.db.transaction(
      (): { readonly ok: true } | { readonly ok: false; readonly existing: PushConnectionRow } => {
        const existing = this.get('SELECT * FROM push_connections WHERE terminal_id = ?', row.terminalId);
        if (existing !== undefined && num(existing['seen_at']) >= liveAfter) {
          return { ok: false, existing: toPushConnection(existing) };
        }
        this.run(
          `INSERT INTO push_connections (terminal_id, connection_id, instance_id, connected_at, seen_at)
           VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (terminal_id) DO UPDATE SET connection_id = excluded.connection_id,
             instance_id = excluded.instance_id, connected_at = excluded.connected_at, seen_at = excluded.seen_at`,
          row.terminalId,
          row.connectionId,
          row.instanceId,
          row.connectedAt,
          row.seenAt,
        );
        return { ok: true };
      },
    );
    return Promise.resolve(tx.immediate());
  }

  touchPushConnection(terminalId: string, connectionId: string, at: number): Promise<void> {
    this.run(
      'UPDATE push_connections SET seen_at = MAX(seen_at, ?) WHERE terminal_id = ? AND connection_id = ?',
      at,
      terminalId,
      connectionId,
    );
    return Promise.resolve();
  }

  releasePushConnection(terminalId: string, connectionId: string): Promise<void> {
    this.run(
      'DELETE FROM push_connections WHERE terminal_id = ? AND connection_id = ?',
      terminalId,
      connectionId,
    );
    return Promise.resolve();
  }
}
