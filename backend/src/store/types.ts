/**
 * The store interface: everything the service keeps. Every method is async and speaks plain values
 * (numbers are milliseconds since the epoch unless named otherwise, JSON documents are plain objects),
 * so a PostgreSQL implementation can satisfy it without any SQLite assumption leaking upwards. The
 * conformance suite in backend/test/store/conformance.ts runs against any implementation.
 *
 * Single-use and monotonic operations (`consumeEnrollmentCode`, `consumeChallenge`,
 * `advanceTerminalCounter`, `transitionTerminalState`, `consumeTicket`, `advanceKsnCounter`,
 * `advanceReaderStatusSeq`, `rememberProofJti`, `appendAudit`) are atomic: exactly one of two racing
 * callers wins.
 */

/**
 * `resume-pending`: an operator resumed a halted terminal; it gets no ticket until an affirming
 * attestation made after the resume moves it to `active`.
 */
/**
 * `decommissioned` is final: set only by `decommissionTerminalAudited`, never left (no halt, lift or
 * resume writes over it; docs/fleet.md "Decommissioning").
 */
export const TERMINAL_STATES = ['active', 'halted', 'resume-pending', 'decommissioned'] as const;
export type TerminalState = (typeof TERMINAL_STATES)[number];

export interface MerchantRow {
  readonly id: string;
  readonly name: string;
  readonly createdAt: number;
}

export interface TerminalRow {
  readonly id: string;
  readonly merchantId: string;
  /** The device public key as a JWK (JSON text of a P-256 public JWK). */
  readonly deviceJwk: string;
  /** RFC 7638 thumbprint of the device key; unique. */
  readonly deviceJkt: string;
  readonly readerSerial: string;
  /** Highest evidence counter accepted so far; -1 when none. */
  readonly lastCounter: number;
  readonly state: TerminalState;
  readonly stateReason: string | null;
  /** Seconds between periodic attestations. */
  readonly intervalS: number;
  readonly createdAt: number;
  readonly lastAttestedAt: number | null;
  /** When the state last changed through `setTerminalState(..., at)` / `transitionTerminalState`; null before. */
  readonly stateChangedAt?: number | null;
  /** Liveness: the next attestation is due by this time (null until the first one is accepted). */
  readonly nextDueAt?: number | null;
  /** Liveness: when the terminal was marked stale (missed its deadline by the margin); null when live. */
  readonly staleAt?: number | null;
  /** The app version its last accepted evidence reported (halts by app version). */
  readonly appVersion?: string | null;
  /** The tier of its last verdict (null before the first one was recorded). */
  readonly lastTier?: string | null;
}

export interface EnrollmentCodeRow {
  /** SHA-256 (hex) of the code; the code itself is never stored. */
  readonly codeHash: string;
  readonly merchantId: string;
  readonly expiresAt: number;
  readonly createdAt: number;
  readonly createdBy: string;
  readonly usedAt: number | null;
  readonly terminalId: string | null;
}

export interface ChallengeRow {
  /** base64url of the 32 random bytes. */
  readonly value: string;
  /** null: an enrollment challenge. */
  readonly terminalId: string | null;
  readonly expiresAt: number;
  readonly createdAt: number;
  readonly usedAt: number | null;
}

export interface AttestationRow {
  readonly id: string;
  readonly terminalId: string;
  readonly at: number;
  readonly purpose: string;
  readonly counter: number | null;
  readonly tier: string;
  readonly policyVersion: string;
  /** SHA-256 (hex) of the evidence JWS. */
  readonly evidenceHash: string;
  /** The verdict and verifier outcomes, as a JSON document. */
  readonly verdict: Record<string, unknown>;
}

export interface TicketRow {
  readonly jti: string;
  readonly terminalId: string;
  readonly use: string;
  readonly kid: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

/** A recorded ticket as `latestTicket` reads it: the row and whether it was used. */
export interface IssuedTicketRow extends TicketRow {
  /** When `consumeTicket` used it (single-use PIN-entry tickets); null while unused. */
  readonly usedAt: number | null;
}

export type SigningKeyState = 'active' | 'retired';

export interface SigningKeyRow {
  readonly kid: string;
  /** Public JWK as JSON text. */
  readonly publicJwk: string;
  /** The PKCS#8 private key, AES-256-GCM encrypted under the master key (base64url iv.ct.tag). */
  readonly encryptedPrivateKey: string;
  readonly state: SigningKeyState;
  readonly createdAt: number;
  readonly retiredAt: number | null;
  /** A retired key stays published until this time (its last ticket's expiry plus skew). */
  readonly verifyUntil: number | null;
}

export interface ReferenceValuesRow {
  readonly id: string;
  readonly version: string;
  readonly build: 'release' | 'development';
  /** The reference-values document (ReferenceValues) as JSON. */
  readonly document: Record<string, unknown>;
  readonly createdAt: number;
  readonly createdBy: string;
}

export type PolicyRole = 'active' | 'shadow' | 'inactive';

export interface PolicyRow {
  readonly version: string;
  readonly document: Record<string, unknown>;
  readonly role: PolicyRole;
  readonly createdAt: number;
  readonly createdBy: string;
}

export interface AuditRow {
  readonly seq: number;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly subject: string;
  readonly data: Record<string, unknown>;
  readonly prevHash: string;
  readonly hash: string;
}

export interface AuditDraftRow {
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly subject: string;
  readonly data: Record<string, unknown>;
}

/**
 * Everything an ordinary attestation writes, for `recordAttestationOutcome` (one transaction).
 */
export interface AttestationOutcomeRow {
  readonly terminalId: string;
  /** The evidence counter: stored only when strictly above the terminal's (compare-and-set). */
  readonly counter: number;
  readonly at: number;
  /** Liveness: the next attestation is due by then (the terminal is live; its stale mark stays clear). */
  readonly nextDueAt: number;
  /** The verdict tier, stored as the terminal's last tier. */
  readonly lastTier: string;
  readonly attestation: AttestationRow;
  readonly audit: AuditDraftRow;
  /** The ticket issued with the verdict, if any. */
  readonly ticket: TicketRow | null;
}

export interface CheckpointRow {
  readonly seq: number;
  readonly hash: string;
  readonly at: string;
  readonly kid: string;
  readonly signature: string;
}

export interface TransactionRow {
  readonly id: string;
  readonly terminalId: string;
  readonly merchantId: string;
  readonly at: number;
  readonly amount: number;
  readonly currency: string;
  readonly approved: boolean;
  readonly code: string | null;
  readonly authCode: string | null;
  /** A token of the card (never the PAN). */
  readonly cardToken: string | null;
  readonly ticketJti: string;
}

import type { AuthStore } from './auth-types';
import type { StoreFault } from './faults';
import type { FleetStore } from './fleet-types';
import type { LivenessStore } from './liveness-types';

export type * from './auth-types';
export type * from './fleet-types';
export type * from './liveness-types';

/** Everything the service keeps: the core below plus operators (auth-types), halts (fleet-types), liveness. */
export interface Store extends CoreStore, AuthStore, FleetStore, LivenessStore {}

export interface CoreStore {
  /** Engine name, for /readyz and logs. */
  readonly engine: string;
  /** Cheap round trip: resolves true when the store answers (and, after a write fault, can be written). */
  ping(): Promise<boolean>;
  /** The write fault last seen (disk full, read-only) until a write succeeds again; SQLite only. */
  lastFault?(): StoreFault | undefined;
  /** The schema version after migrations. */
  schemaVersion(): Promise<number>;
  close(): Promise<void>;

  getMeta(key: string): Promise<string | undefined>;
  /** Sets a value only when the key is absent; resolves true when it set it. */
  initMeta(key: string, value: string): Promise<boolean>;
  setMeta(key: string, value: string): Promise<void>;

  createMerchant(row: MerchantRow): Promise<void>;
  /** `createMerchant` and its audit entry in one transaction. Resolves the entry. */
  createMerchantAudited(
    row: MerchantRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow>;
  getMerchant(id: string): Promise<MerchantRow | undefined>;
  /** By id ascending. */
  listMerchants(): Promise<MerchantRow[]>;

  createEnrollmentCode(row: Omit<EnrollmentCodeRow, 'usedAt' | 'terminalId'>): Promise<void>;
  /** `createEnrollmentCode` and its audit entry in one transaction. Resolves the entry. */
  createEnrollmentCodeAudited(
    row: Omit<EnrollmentCodeRow, 'usedAt' | 'terminalId'>,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow>;
  /** Marks an unexpired, unused code used by `terminalId`; undefined when unknown, used or expired. */
  consumeEnrollmentCode(
    codeHash: string,
    now: number,
    terminalId: string,
  ): Promise<EnrollmentCodeRow | undefined>;

  /** Fails (rejects with code POS_ERR_ENROLLMENT_KEY_IN_USE) when the device key is already enrolled. */
  createTerminal(row: TerminalRow): Promise<void>;
  /**
   * `createTerminal` and its audit entry (chained as `appendAudit` does) in one transaction: a crash
   * never leaves an enrolled terminal without its entry. Rejects as `createTerminal` does (nothing
   * written). Resolves the entry.
   */
  createTerminalAudited(
    row: TerminalRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow>;
  getTerminal(id: string): Promise<TerminalRow | undefined>;
  countTerminals(): Promise<number>;
  /** Sets lastCounter when `counter` is above the stored one; resolves false otherwise (replay, race). */
  advanceTerminalCounter(id: string, counter: number, at: number): Promise<boolean>;
  /** Sets the state (and, when `at` is given, the time of the change); false for an unknown terminal. */
  setTerminalState(id: string, state: TerminalState, reason: string | null, at?: number): Promise<boolean>;
  /** Compare-and-set: moves the terminal from `from` to `to` only when it is in `from`; false otherwise. */
  transitionTerminalState(
    id: string,
    from: TerminalState,
    to: TerminalState,
    reason: string | null,
    at: number,
  ): Promise<boolean>;
  /**
   * `transitionTerminalState` and, when it moved the terminal, its audit entry (chained as
   * `appendAudit` does) in one transaction. Resolves the entry, or undefined (not in `from`: nothing
   * written).
   */
  transitionTerminalStateAudited(
    id: string,
    from: TerminalState,
    to: TerminalState,
    reason: string | null,
    at: number,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined>;

  createChallenge(row: Omit<ChallengeRow, 'usedAt'>): Promise<void>;
  /**
   * Marks a challenge used and returns the row as it was before (`usedAt` null on first use, the first
   * use's time on any later call). undefined when the store never issued it.
   */
  consumeChallenge(value: string, now: number): Promise<ChallengeRow | undefined>;
  /**
   * Records the use of a challenge the service issued without storing it (a MAC'd challenge, whose
   * value carries its terminal and time): atomically inserts it as used at `now`, and returns the row
   * as it was before, like `consumeChallenge` (`usedAt` null on the first use, the first use's time on
   * any later call, from any process).
   */
  useChallenge(row: Omit<ChallengeRow, 'usedAt'>, now: number): Promise<ChallengeRow>;
  /** Deletes challenges that expired before `before`; returns how many. */
  purgeChallenges(before: number): Promise<number>;

  recordAttestation(row: AttestationRow): Promise<void>;
  /**
   * A verdict and its audit entry (chained as `appendAudit` does) in one transaction: a crash never
   * leaves a stored verdict without its entry. Resolves the entry.
   */
  recordAttestationAudited(
    row: AttestationRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow>;
  /**
   * The writes of an ordinary attestation in one transaction, all or nothing: the counter
   * compare-and-set (with last attested time), next due time and last tier of a terminal that is
   * `active` and not marked stale, the attestation row, the audit entry (chained as `appendAudit`
   * does) and the ticket row. When the terminal's counter is not below `counter`, or the terminal is
   * not active, or it is marked stale, nothing is written and it resolves `{ ok: false }`: the caller
   * then takes the step-by-step path, which tells those cases apart.
   */
  recordAttestationOutcome(
    outcome: AttestationOutcomeRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<{ readonly ok: true; readonly audit: AuditRow } | { readonly ok: false }>;
  listAttestations(terminalId: string, limit: number): Promise<AttestationRow[]>;
  countAttestations(): Promise<number>;

  recordTicket(row: TicketRow): Promise<void>;
  getTicket(jti: string): Promise<TicketRow | undefined>;
  /**
   * Marks a recorded ticket used, atomically: true only for the first call on a ticket issued to
   * `terminalId` for `use` that has not expired at `now`; false for unknown, used, expired or another
   * terminal's or use's ticket.
   */
  consumeTicket(jti: string, terminalId: string, use: string, now: number): Promise<boolean>;
  /** The latest expiry of any ticket signed with `kid`, or undefined. */
  lastTicketExpiry(kid: string): Promise<number | undefined>;
  /**
   * The newest ticket recorded for `terminalId` (its current one, for the dashboard): the latest
   * `issuedAt` (whole seconds: a ticket's `iat`); among tickets issued in the same second, the one
   * recorded last. null when the terminal never got a ticket.
   */
  latestTicket(terminalId: string): Promise<IssuedTicketRow | null>;

  putSigningKey(row: SigningKeyRow): Promise<void>;
  listSigningKeys(): Promise<SigningKeyRow[]>;
  /** Retires a key and erases its sealed private key (a retired key only verifies). */
  retireSigningKey(kid: string, retiredAt: number, verifyUntil: number): Promise<void>;
  deleteSigningKey(kid: string): Promise<void>;

  putReferenceValues(row: ReferenceValuesRow): Promise<void>;
  /** `putReferenceValues` and its audit entry in one transaction. Resolves the entry. */
  putReferenceValuesAudited(
    row: ReferenceValuesRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow>;
  listReferenceValues(): Promise<ReferenceValuesRow[]>;
  deleteReferenceValues(id: string): Promise<boolean>;
  /**
   * `deleteReferenceValues` and its audit entry in one transaction. Resolves the entry, or undefined
   * when there was nothing to delete (nothing written).
   */
  deleteReferenceValuesAudited(
    id: string,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined>;

  /** Rejects (POS_ERR_POLICY_EXISTS) when the version exists: policy versions are immutable. */
  putPolicy(row: PolicyRow): Promise<void>;
  /** `putPolicy` and its audit entry in one transaction (rejects as `putPolicy` does, nothing written). */
  putPolicyAudited(
    row: PolicyRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow>;
  getPolicy(version: string): Promise<PolicyRow | undefined>;
  listPolicies(): Promise<PolicyRow[]>;
  /** Makes `version` the one active policy (the previous active one becomes inactive). */
  activatePolicy(version: string): Promise<boolean>;
  /**
   * `activatePolicy` and its audit entry in one transaction. Resolves the entry, or undefined for an
   * unknown version (nothing written).
   */
  activatePolicyAudited(
    version: string,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined>;
  /** Sets or clears shadow mode of `version` (never on the active one). */
  setPolicyShadow(version: string, shadow: boolean): Promise<boolean>;
  /**
   * `setPolicyShadow` and its audit entry in one transaction. Resolves the entry, or undefined when
   * nothing changed (unknown or active version: nothing written).
   */
  setPolicyShadowAudited(
    version: string,
    shadow: boolean,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined>;

  /** Appends atomically: `chain` gets the current head and returns the new entry. */
  appendAudit(
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow>;
  auditHead(): Promise<AuditRow | undefined>;
  listAudit(afterSeq: number, limit: number): Promise<AuditRow[]>;
  putCheckpoint(row: CheckpointRow): Promise<void>;
  listCheckpoints(): Promise<CheckpointRow[]>;

  recordTransaction(row: TransactionRow): Promise<void>;
  listTransactions(terminalId: string, limit: number): Promise<TransactionRow[]>;

  /** Adds one event under `key` at `now`; returns the number of events of that key in (now - windowMs, now]. */
  velocityHit(key: string, now: number, windowMs: number): Promise<number>;
  /** The number of events of `key` in (now - windowMs, now], without adding one. */
  velocityCount(key: string, now: number, windowMs: number): Promise<number>;
  /** Forgets every event of `key`. */
  velocityReset(key: string): Promise<void>;
  /** Adds `member` to the set under `key`; returns the number of distinct members seen in the window. */
  velocityDistinct(key: string, member: string, now: number, windowMs: number): Promise<number>;
  /**
   * Store maintenance: deletes every velocity event (of any key) recorded before `before` (`at <
   * before`) and resolves the number deleted. The per-key calls above only prune a key when it is hit
   * again; this removes the keys never hit again (login throttle keys of mistyped or random usernames,
   * of an old password or login epoch, acquirer keys of a card or terminal not seen since). In batches
   * of `batchSize` rows (default `VELOCITY_PURGE_BATCH`), each its own short transaction, so a large
   * backlog never holds the write lock for long. `before` must be a safe integer and `batchSize` an
   * integer in 1..100,000, else it rejects with StoreError POS_ERR_STORE and deletes nothing. The
   * caller picks `before` past every window a reader uses (`velocityPurgeCutoff`, store/velocity.ts).
   */
  purgeVelocityEvents(before: number, batchSize?: number): Promise<number>;

  /**
   * KSN replay guard: raises the highest counter seen for `prefix` (BDK ID + derivation ID, the first
   * 8 bytes of an AES DUKPT KSN, hex) to `counter`, atomically; false when `counter` is at or below it.
   */
  advanceKsnCounter(prefix: string, counter: number, at: number): Promise<boolean>;
  /** Raises the last status `seq` seen from reader `serial`, atomically; false when `seq` is at or below it. */
  advanceReaderStatusSeq(serial: string, seq: number, at: number): Promise<boolean>;

  /** Remembers a proof jti until `expiresAt`; resolves false when it was already remembered (replay). */
  rememberProofJti(jti: string, expiresAt: number, now: number): Promise<boolean>;
}

/** Rows `purgeVelocityEvents` deletes per statement by default. */
export const VELOCITY_PURGE_BATCH = 5000;

/** Checks `purgeVelocityEvents`'s arguments: a bad cutoff must delete nothing, not everything. */
export function checkVelocityPurge(before: number, batchSize: number): void {
  if (!Number.isSafeInteger(before)) {
    throw new StoreError('POS_ERR_STORE', 'the velocity purge cutoff is not a safe integer (ms)');
  }
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) {
    throw new StoreError('POS_ERR_STORE', 'the velocity purge batch size is not an integer in 1..100000');
  }
}

/** Checks `loginLockoutStart`'s `max`: OFFSET max - 1 needs a positive integer. */
export function checkLockoutMax(max: number): void {
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new StoreError('POS_ERR_STORE', 'the lock-out attempt budget is not a positive integer');
  }
}

/** A store operation that failed for a reason the caller should report with its code. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code:
      'POS_ERR_STORE' | 'POS_ERR_ENROLLMENT_KEY_IN_USE' | 'POS_ERR_POLICY_EXISTS' | 'POS_ERR_OPERATOR_EXISTS',
    message: string,
  ) {
    super(message);
  }
}
