/**
 * Store contract for liveness (a durable next-due time per terminal, the stale mark) and the fleet
 * queries the correlation checks, halts and the dashboard need. Owned by the liveness work; every
 * engine implements it and passes test/store/conformance-liveness.ts.
 */
import type { TerminalRow, TerminalState } from './types';

export interface TerminalQuery {
  readonly merchantId?: string;
  readonly state?: TerminalState;
  /** Every state but this one (the halt fan-out and the reader correlation leave decommissioned out). */
  readonly notState?: TerminalState;
  readonly appVersion?: string;
  readonly readerSerial?: string;
  /** The tier of the terminal's last verdict (affirming, warning, contraindicated, none). */
  readonly lastTier?: string;
  /** Only terminals marked stale (true) or not stale (false). */
  readonly stale?: boolean;
  /** Keyset paging: terminals with id greater than this. */
  readonly afterId?: string;
  readonly limit: number;
}

export interface LivenessStore {
  /** By id ascending. */
  listTerminals(query: TerminalQuery): Promise<TerminalRow[]>;
  /** Ids only, every match (halt fan-out over a merchant, an app version or the fleet). */
  listTerminalIds(query: Omit<TerminalQuery, 'afterId' | 'limit'>): Promise<string[]>;
  /** Records the app version the terminal's last accepted evidence reported. */
  setTerminalAppVersion(id: string, version: string): Promise<void>;
  /** Records the tier of the terminal's last verdict (the fleet summary's trusted/warning counts). */
  setTerminalLastTier(id: string, tier: string): Promise<void>;
  /**
   * Sets the time by which the terminal's next attestation is due, and clears the stale mark. With
   * `onlyIfLive`, only when the terminal is not marked stale (a warning verdict extends the deadline of
   * a live terminal but never revives a stale one). Resolves true when it wrote.
   */
  setNextDue(id: string, nextDueAt: number, options?: { readonly onlyIfLive?: boolean }): Promise<boolean>;
  /** Terminals not marked stale whose next-due time is before `before`, oldest deadline first. */
  listOverdue(before: number, limit: number): Promise<TerminalRow[]>;
  /** Compare-and-set: marks stale only when not stale and still overdue at `before`; true when it did. */
  markStale(id: string, at: number, before: number): Promise<boolean>;
  countStale(): Promise<number>;
  /** How many terminals match (the fleet summary: counts by state, stale, per merchant). */
  countTerminalsWhere(query: Omit<TerminalQuery, 'afterId' | 'limit'>): Promise<number>;
}
