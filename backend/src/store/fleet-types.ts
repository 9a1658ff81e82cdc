/**
 * Store contract for halts and their delivery (an outbox per terminal), and for the push connections
 * terminals hold. Owned by the halts work; every engine implements it and passes
 * test/store/conformance-fleet.ts.
 */
import type { AuditDraftRow, AuditRow } from './types';

export type HaltScope = 'terminal' | 'merchant' | 'app-version' | 'fleet';

export interface HaltRow {
  readonly id: string;
  readonly scope: HaltScope;
  /** terminal id, merchant id or app version; null for the fleet. */
  readonly target: string | null;
  readonly reason: string;
  /** `operator:<id>`, `policy`, `velocity`, `correlation`, ... */
  readonly createdBy: string;
  readonly createdAt: number;
  readonly liftedAt: number | null;
  readonly liftedBy: string | null;
}

export type OutboxKind = 'halt' | 'resume';

/** One message for one terminal: sequence numbers increase per terminal, from 1. */
export interface OutboxRow {
  readonly terminalId: string;
  readonly seq: number;
  readonly kind: OutboxKind;
  readonly haltId: string;
  readonly reason: string;
  readonly createdAt: number;
  /** First time the message went out on a push connection (for the delivery-latency metric). */
  readonly sentAt: number | null;
  readonly ackedAt: number | null;
}

export interface PushConnectionRow {
  readonly terminalId: string;
  /** Random per connection. */
  readonly connectionId: string;
  /** The back-end process holding it. */
  readonly instanceId: string;
  readonly connectedAt: number;
  /** Refreshed while the connection lives; a row older than the caller's cut-off is dead. */
  readonly seenAt: number;
}

/** One active halt covering a terminal, and whether the terminal has its `halt` outbox row. */
export interface CoveringHalt {
  readonly halt: HaltRow;
  readonly delivered: boolean;
}

export type LiftOutcome =
  | {
      readonly ok: true;
      /** Halts lifted by this call (compare-and-set), newest first. */
      readonly lifted: readonly string[];
      /** Moved from halted to resume-pending, each with a `resume` outbox row (in `rows`). */
      readonly resumed: readonly string[];
      /** Still covered by another active halt's `halt` outbox row: left halted. */
      readonly stillHalted: readonly string[];
      readonly rows: readonly OutboxRow[];
      /** The audit entries appended in the same transaction (empty when none were asked for). */
      readonly audit: readonly AuditRow[];
    }
  | {
      readonly ok: false;
      readonly code: 'halt-unknown' | 'halt-lifted' | 'terminal-unknown' | 'not-halted' | 'still-covered';
    };

/** A successful lift or resume as the audit drafts see it (before its entries exist). */
export type LiftDone = Omit<Extract<LiftOutcome, { ok: true }>, 'audit'>;

export interface ResumeMessage {
  readonly by: string;
  readonly at: number;
  /** The `resume` outbox rows' reason (the operator's). */
  readonly reason: string;
  /** The terminals' state reason once resume-pending. */
  readonly stateReason: string;
}

/**
 * Audit entries appended in the same transaction as a state change, chained as `appendAudit` does
 * (the head is read after the chain is locked, inside that transaction): a crash never leaves the
 * change without its entries, nor entries without the change. A throwing `drafts` or `chain` rolls
 * the whole transaction back.
 */
export interface AuditAppend<T> {
  /** The entries to append, in order, built from the change's result (none: nothing appended). */
  readonly drafts: (result: T) => readonly AuditDraftRow[];
  readonly chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow;
}

/** What `decommissionTerminalAudited` writes. */
export interface DecommissionRequest {
  readonly terminalId: string;
  readonly at: number;
  /** The operator's reason: the terminal's state reason. */
  readonly reason: string;
  /**
   * The id the notice's outbox row carries in place of a halt id (`dcm_...`): the push hub sends it
   * as a `halt` message and then closes the connection (push-protocol.ts `isDecommissionNotice`).
   */
  readonly noticeId: string;
  /** The notice's reason, as the terminal shows it. */
  readonly noticeReason: string;
}

export type DecommissionOutcome =
  | {
      readonly ok: true;
      /** The state the terminal left. */
      readonly previous: 'active' | 'halted' | 'resume-pending';
      /** The one `halt` outbox row of the notice (pushed to an open connection, which is then closed). */
      readonly rows: readonly OutboxRow[];
      readonly audit: readonly AuditRow[];
    }
  | { readonly ok: false; readonly code: 'terminal-unknown' | 'decommissioned' };

export type DecommissionDone = Omit<Extract<DecommissionOutcome, { ok: true }>, 'audit'>;

export interface FleetStore {
  /**
   * Decommissions a terminal for good, in ONE transaction with its audit entries: the terminal (locked
   * first, as `createHalt` locks it) moves to `decommissioned` (state reason, state change time), its
   * liveness deadline and stale mark are cleared (no deadline is expected of it again), and one `halt`
   * outbox row carrying `noticeId` is appended. Refuses, writing nothing, an unknown terminal
   * (`terminal-unknown`) and one already decommissioned (`decommissioned`).
   */
  decommissionTerminalAudited(
    request: DecommissionRequest,
    audit: AuditAppend<DecommissionDone>,
  ): Promise<DecommissionOutcome>;
  /**
   * In one transaction: stores the halt, sets every listed terminal that is not already halted to
   * `halted` (reason = halt reason, state change time = halt time), and appends one `halt` outbox
   * message per listed terminal. Resolves to the outbox rows written.
   */
  createHalt(halt: HaltRow, terminalIds: readonly string[]): Promise<OutboxRow[]>;
  /**
   * `createHalt` and its audit entries (built from the outbox rows written) in ONE transaction. On
   * PostgreSQL the halt statement runs first (terminal row locks), then the audit chain's lock, head
   * read and insert, so the chain lock is held only for the append. Resolves to the rows and entries.
   */
  createHaltAudited(
    halt: HaltRow,
    terminalIds: readonly string[],
    audit: AuditAppend<readonly OutboxRow[]>,
  ): Promise<{ readonly rows: OutboxRow[]; readonly audit: readonly AuditRow[] }>;
  getHalt(id: string): Promise<HaltRow | undefined>;
  /** Newest first. `activeOnly`: not lifted. */
  listHalts(options: { readonly activeOnly: boolean; readonly limit: number }): Promise<HaltRow[]>;
  /** Marks the halt lifted (compare-and-set: false when unknown or already lifted). */
  liftHalt(id: string, by: string, at: number): Promise<boolean>;
  /**
   * Lifts one halt and resumes its terminals in ONE transaction serialized with `createHalt` (the
   * terminals' rows are locked first on PostgreSQL; one immediate transaction on SQLite): each
   * terminal with a `halt` row of this halt moves from halted to resume-pending, with a `resume` row
   * named after it, only when no other active halt has a `halt` row for it. So a halt stored
   * concurrently either is seen (the terminal stays halted) or comes after (and halts it again).
   * `audit`: entries built from the outcome, appended in the same transaction (only when ok).
   */
  liftHaltAndResume(
    haltId: string,
    message: ResumeMessage,
    audit?: AuditAppend<LiftDone>,
  ): Promise<LiftOutcome>;
  /**
   * The terminal resume shortcut, in one such transaction: refuses (`still-covered`, nothing written)
   * when an active halt other than the terminal's own terminal-scope halts has a `halt` row for it,
   * `not-halted` unless it is halted; otherwise lifts its active terminal-scope halts, moves it to
   * resume-pending and writes one `resume` row named after the newest lifted halt (none if none).
   * `audit`: as for `liftHaltAndResume`.
   */
  resumeTerminalAndLift(
    terminalId: string,
    message: ResumeMessage,
    audit?: AuditAppend<LiftDone>,
  ): Promise<LiftOutcome>;
  /**
   * Active halts covering a terminal by scope (fleet; merchant; terminal; app version equal to one of
   * `appVersions`), each with whether the terminal has its `halt` outbox row. One query.
   */
  activeHaltsCovering(terminal: {
    readonly id: string;
    readonly merchantId: string;
    readonly appVersions: readonly string[];
  }): Promise<CoveringHalt[]>;
  /** Appends one message per terminal (for `resume` notices); resolves to the rows written. */
  appendOutbox(
    terminalIds: readonly string[],
    message: {
      readonly kind: OutboxKind;
      readonly haltId: string;
      readonly reason: string;
      readonly createdAt: number;
    },
  ): Promise<OutboxRow[]>;
  /** Every outbox row of one halt (one query, for fan-out and for the operator's acknowledgement view). */
  listHaltDeliveries(haltId: string): Promise<OutboxRow[]>;
  /** Unacknowledged messages of a terminal, by seq. */
  pendingOutbox(terminalId: string): Promise<OutboxRow[]>;
  /** Sets sentAt where it is null; idempotent. */
  markOutboxSent(terminalId: string, seq: number, at: number): Promise<void>;
  /** Acknowledges one message; resolves to the row when this call acknowledged it, undefined otherwise. */
  ackOutbox(terminalId: string, seq: number, at: number): Promise<OutboxRow | undefined>;

  /**
   * Registers a push connection. When the terminal already has one whose `seenAt` is at or after
   * `liveAfter`, nothing is written and that row is returned as `existing` (one device key on two
   * connections); a dead row is replaced.
   */
  claimPushConnection(
    row: PushConnectionRow,
    liveAfter: number,
  ): Promise<{ readonly ok: true } | { readonly ok: false; readonly existing: PushConnectionRow }>;
  touchPushConnection(terminalId: string, connectionId: string, at: number): Promise<void>;
  releasePushConnection(terminalId: string, connectionId: string): Promise<void>;
}
