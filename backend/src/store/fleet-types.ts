/**
 * Store contract for halts and their delivery (an outbox per terminal), and for the push connections
 * terminals hold. Owned by the halts work; every engine implements it and passes
 * test/store/conformance-fleet.ts.
 */

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

export interface FleetStore {
  /**
   * In one transaction: stores the halt, sets every listed terminal that is not already halted to
   * `halted` (reason = halt reason, state change time = halt time), and appends one `halt` outbox
   * message per listed terminal. Resolves to the outbox rows written.
   */
  createHalt(halt: HaltRow, terminalIds: readonly string[]): Promise<OutboxRow[]>;
  getHalt(id: string): Promise<HaltRow | undefined>;
  /** Newest first. `activeOnly`: not lifted. */
  listHalts(options: { readonly activeOnly: boolean; readonly limit: number }): Promise<HaltRow[]>;
  /** Marks the halt lifted (compare-and-set: false when unknown or already lifted). */
  liftHalt(id: string, by: string, at: number): Promise<boolean>;
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
