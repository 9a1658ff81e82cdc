/**
 * Store contract for operators, their API tokens and dashboard sessions (tenants: provider-wide
 * users have `merchantId` null; merchant-scoped users name their merchant). Owned by the
 * operators-and-tenants work; every engine implements it and passes test/store/conformance-auth.ts.
 */
import type { AuditDraftRow, AuditRow } from './types';

/** admin: everything; operator: acts on terminals; auditor: reads everything, changes nothing; merchant: its own terminals. */
export type OperatorRole = 'admin' | 'operator' | 'auditor' | 'merchant';

export interface OperatorRow {
  readonly id: string;
  /** Unique, case-sensitive as stored (the API lower-cases before storing). */
  readonly username: string;
  /** `scrypt$N$r$p$salt$hash` (base64url parts); never returned by the API. */
  readonly passwordHash: string;
  readonly role: OperatorRole;
  /** null: provider-wide; otherwise the merchant this user is limited to (always set for role merchant). */
  readonly merchantId: string | null;
  readonly createdAt: number;
  readonly disabledAt: number | null;
  /**
   * Starts over with every login lock-out of the account (column login_epoch): the throttle's keys
   * are derived from it and the password hash (server/auth/throttle.ts), so raising it
   * (`clearLoginLockoutsAudited`) or setting a password makes every attempt count of the account
   * start over. 0 for a new user.
   */
  readonly loginEpoch: number;
}

/**
 * A new operator: every field but `loginEpoch`, which starts at 0 (login lock-outs live in the login
 * throttle's velocity keys). The old columns failed_logins and locked_until are unused and left at
 * their defaults; they stay in the schema for the previous release during a rolling upgrade.
 */
export type NewOperatorRow = Omit<OperatorRow, 'loginEpoch'>;

/** The account-wide lock-out `clearLoginLockoutsAudited` reads: the operator's throttle key, the window and budget. */
export interface LockoutProbe {
  readonly key: (operator: OperatorRow) => string;
  readonly now: number;
  readonly windowMs: number;
  readonly max: number;
}

export interface ApiTokenRow {
  readonly id: string;
  /** SHA-256 (hex) of the token; the token itself is never stored. */
  readonly tokenHash: string;
  readonly label: string;
  readonly role: OperatorRole;
  /** null: provider-wide; otherwise the one merchant this token may reach. */
  readonly merchantId: string | null;
  /** The user who created it (null for the first-start admin token and CLI tokens). */
  readonly createdBy: string | null;
  readonly createdAt: number;
  /** null: does not expire (only the first-start admin token; rotate it with `pos-backend token rotate`). */
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
}

export interface SessionRow {
  readonly id: string;
  /** SHA-256 (hex) of the session cookie value. */
  readonly tokenHash: string;
  /** SHA-256 (hex) of the CSRF token bound to this session. */
  readonly csrfHash: string;
  readonly operatorId: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly revokedAt: number | null;
}

export interface AuthStore {
  /** Rejects with StoreError POS_ERR_OPERATOR_EXISTS when the username is taken. */
  createOperator(row: NewOperatorRow): Promise<void>;
  /** `createOperator` and its audit entry in one transaction (rejects as it does, nothing written). */
  createOperatorAudited(
    row: NewOperatorRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow>;
  getOperator(id: string): Promise<OperatorRow | undefined>;
  findOperatorByUsername(username: string): Promise<OperatorRow | undefined>;
  listOperators(): Promise<OperatorRow[]>;
  /**
   * Login throttling: records one attempt under `key` at `now` and resolves to the attempts in
   * (now - windowMs, now], this one included. Serialized per key: concurrent calls get distinct counts
   * (a burst cannot all read the same count), on every engine. Stored with the velocity events, so
   * `velocityCount`, `velocityReset` and `loginLockoutStart` read and clear the same key.
   */
  hitLoginAttempt(key: string, now: number, windowMs: number): Promise<number>;
  /**
   * When the lock-out of a budget of `max` attempts under `key` started: the time of the `max`-th
   * newest attempt recorded in (now - windowMs, now] (the oldest of the last `max`), or undefined when
   * there are fewer than `max`. Reads at most `max` rows through the index on (key, at), however many
   * attempts the key holds (refused ones are recorded too, so a client can grow a key without bound).
   * `max` must be a positive safe integer, else it rejects with StoreError POS_ERR_STORE.
   */
  loginLockoutStart(key: string, now: number, windowMs: number, max: number): Promise<number | undefined>;
  /**
   * Clears every login lock-out of an operator (account-wide and per address) in one transaction with
   * its audit entry: reads the operator (locked against concurrent changes where the engine can), reads
   * when its account-wide lock-out ends (`lockout`: the `loginLockoutStart` of `lockout.key(operator)`
   * plus the window, null when not locked), raises `loginEpoch` by one, so every throttle key of the
   * account is new, and appends the entry `draft` builds from that end. Resolves the new epoch, the
   * end and the entry, or undefined for an unknown operator (nothing written). `lockout.max` as in
   * `loginLockoutStart`.
   */
  clearLoginLockoutsAudited(
    id: string,
    lockout: LockoutProbe,
    draft: (wasLockedUntil: number | null) => AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<
    | { readonly loginEpoch: number; readonly wasLockedUntil: number | null; readonly audit: AuditRow }
    | undefined
  >;
  setOperatorPassword(id: string, passwordHash: string): Promise<boolean>;
  /**
   * A new password in one transaction with its consequences and its audit entry: the hash (which
   * starts every login lock-out of the account over), every open session ended, and the entry
   * `draft` builds from the number of sessions ended. Resolves that and the entry, or undefined for
   * an unknown operator (nothing written).
   */
  setOperatorPasswordAudited(
    id: string,
    passwordHash: string,
    at: number,
    draft: (sessionsEnded: number) => AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<{ readonly sessionsEnded: number; readonly audit: AuditRow } | undefined>;
  disableOperator(id: string, at: number): Promise<boolean>;
  /**
   * Disabling a user in one transaction with its consequences and its audit entry: the user disabled
   * (kept as it was when already disabled), every open session ended, the listed API tokens revoked
   * (those still unrevoked), and the entry `draft` builds from the counts. Resolves the counts and the
   * entry, or undefined for an unknown operator (nothing written).
   */
  disableOperatorAudited(
    id: string,
    at: number,
    tokenIds: readonly string[],
    draft: (done: { readonly sessionsEnded: number; readonly tokensRevoked: number }) => AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<
    { readonly sessionsEnded: number; readonly tokensRevoked: number; readonly audit: AuditRow } | undefined
  >;

  createApiToken(row: ApiTokenRow): Promise<void>;
  /** `createApiToken` and its audit entry in one transaction. Resolves the entry. */
  createApiTokenAudited(
    row: ApiTokenRow,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow>;
  findApiToken(tokenHash: string): Promise<ApiTokenRow | undefined>;
  listApiTokens(): Promise<ApiTokenRow[]>;
  revokeApiToken(id: string, at: number): Promise<boolean>;
  /**
   * `revokeApiToken` and its audit entry in one transaction. Resolves the entry, or undefined when
   * this call revoked nothing (unknown or already revoked: nothing written).
   */
  revokeApiTokenAudited(
    id: string,
    at: number,
    draft: AuditDraftRow,
    chain: (prev: AuditRow | undefined, draft: AuditDraftRow) => AuditRow,
  ): Promise<AuditRow | undefined>;

  createSession(row: SessionRow): Promise<void>;
  findSession(tokenHash: string): Promise<SessionRow | undefined>;
  revokeSession(id: string, at: number): Promise<boolean>;
  /** Revokes every session of a user (password change, disable); returns how many. */
  revokeOperatorSessions(operatorId: string, at: number): Promise<number>;
  /**
   * Deletes the sessions that expired before `before`, revoked or not (an expired session authenticates
   * nothing, stored or not); returns how many.
   */
  purgeSessions(before: number): Promise<number>;
}
