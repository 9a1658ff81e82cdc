/**
 * What the SQLite store's parts share: row value coercion, a statement cache, and the binding that
 * composes the parts (core, auth, fleet, liveness) into one Store object over one connection.
 */
import type Database from 'better-sqlite3';

export { json, num, numOrNull, str, strOrNull, type Row } from './rows';
import { toAudit, type Row } from './rows';
import type { AuditDraftRow, AuditRow } from './types';

/** A prepared-statement cache over one connection (better-sqlite3 statements are reusable). */
export class SqlitePart {
  private readonly stmts = new Map<string, Database.Statement>();
  constructor(protected readonly db: Database.Database) {}

  protected st(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }
  protected get(sql: string, ...params: unknown[]): Row | undefined {
    return this.st(sql).get(...params) as Row | undefined;
  }
  protected all(sql: string, ...params: unknown[]): Row[] {
    return this.st(sql).all(...params) as Row[];
  }
  protected run(sql: string, ...params: unknown[]): number {
    return this.st(sql).run(...params).changes;
  }
  /**
   * Appends one audit entry chained on the current head, inside the caller's transaction (an
   * immediate one holds the write lock, so the head read here is the head the entry links to).
   */
  protected appendAuditEntry(
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): AuditRow {
    const head = this.get('SELECT * FROM audit_entries ORDER BY seq DESC LIMIT 1');
    const entry = chain(head === undefined ? undefined : toAudit(head), draft);
    this.run(
      'INSERT INTO audit_entries (seq, at, actor, action, subject, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      entry.seq,
      entry.at,
      entry.actor,
      entry.action,
      entry.subject,
      JSON.stringify(entry.data),
      entry.prevHash,
      entry.hash,
    );
    return entry;
  }
  /**
   * `write`, then the audit entry chained after it, in one immediate transaction. `write` throws to
   * refuse; one that answers false (nothing changed) commits without an entry, and the answer is
   * undefined.
   */
  protected writeAudited(
    write: () => boolean,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined>;
  protected writeAudited(
    write: () => void,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow>;
  protected writeAudited(
    write: () => unknown,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined> {
    const tx = this.db.transaction((): AuditRow | undefined =>
      write() === false ? undefined : this.appendAuditEntry(draft, chain),
    );
    return Promise.resolve(tx.immediate());
  }
}

/** The methods a part adds (its prototype chain below SqlitePart), bound to it. */
export function bindMethods(instance: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (
    let proto = Object.getPrototypeOf(instance) as object | null;
    proto !== null && proto !== Object.prototype && proto !== SqlitePart.prototype;
    proto = Object.getPrototypeOf(proto) as object | null
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === 'constructor' || name in out) continue;
      const value: unknown = Reflect.get(instance, name);
      if (typeof value === 'function') out[name] = (value as (...a: unknown[]) => unknown).bind(instance);
    }
  }
  return out;
}
