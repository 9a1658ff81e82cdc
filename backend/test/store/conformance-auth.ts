/**
 * AuthStore conformance (operators, API tokens, sessions): written against the Store interface only,
 * so every engine runs the same checks (`runAuthConformance('postgres', () => openPostgresStore(...))`).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chainAuditEntry } from '../../src/audit/index';
import {
  StoreError,
  type AuditDraftRow,
  type AuditRow,
  type OperatorRow,
  type SessionRow,
  type Store,
} from '../../src/store/types';

const T0 = 1_800_000_000_000;

function operator(id: string, username: string, over: Partial<OperatorRow> = {}): OperatorRow {
  return {
    id,
    username,
    passwordHash: `scrypt$15$8$1$salt$${id}`,
    role: 'operator',
    merchantId: null,
    createdAt: T0,
    disabledAt: null,
    loginEpoch: 0,
    ...over,
  };
}

/**
 * Migration 8 on either engine: an operator as schema version 7 stored it (with the lock columns the
 * previous release reads and writes), how it reads afterwards, and the columns the table has then:
 * login_epoch added, the two lock columns kept for a process of the previous release during a
 * rolling upgrade. `oldRelease` is that release's insert and what it reads of a row this code inserts.
 */
export const V7_OPERATOR = {
  insert: (table: string): string =>
    `INSERT INTO ${table} (id, username, password_hash, role, merchant_id, created_at, disabled_at, failed_logins, locked_until)
     VALUES ('usr_1', 'alice', 'h', 'admin', NULL, 1, NULL, 3, 99)`,
  row: {
    id: 'usr_1',
    username: 'alice',
    passwordHash: 'h',
    role: 'admin',
    merchantId: null,
    createdAt: 1,
    disabledAt: null,
    loginEpoch: 0,
  } satisfies OperatorRow,
  expectColumns(columns: readonly string[]): void {
    expect(columns).toEqual(expect.arrayContaining(['login_epoch', 'failed_logins', 'locked_until']));
  },
  oldRelease: {
    insert: (table: string): string =>
      `INSERT INTO ${table} (id, username, password_hash, role, merchant_id, created_at, disabled_at, failed_logins, locked_until)
       VALUES ('usr_old', 'olga', 'h', 'operator', NULL, 2, NULL, 0, NULL)`,
    read: (table: string, id: string): string =>
      `SELECT failed_logins, locked_until FROM ${table} WHERE id = '${id}'`,
    /** What the previous release reads of a row this code inserted (its row mapping needs a number). */
    expected: { failed_logins: 0, locked_until: null },
  },
};

function session(id: string, operatorId: string, over: Partial<SessionRow> = {}): SessionRow {
  return {
    id,
    tokenHash: `hash-${id}`,
    csrfHash: `csrf-${id}`,
    operatorId,
    createdAt: T0,
    expiresAt: T0 + 3_600_000,
    revokedAt: null,
    ...over,
  };
}

export function runAuthConformance(engine: string, open: () => Promise<Store> | Store): void {
  describe(`AuthStore conformance: ${engine}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await open();
      await store.createMerchant({ id: 'mer_a', name: 'A', createdAt: T0 });
    });
    afterEach(async () => {
      await store.close();
    });

    it('creates operators, finds them by id and username, refuses a taken username', async () => {
      await store.createOperator(operator('op_1', 'alice'));
      await store.createOperator(operator('op_2', 'bob', { role: 'merchant', merchantId: 'mer_a' }));
      expect(await store.getOperator('op_1')).toEqual(operator('op_1', 'alice'));
      expect(await store.findOperatorByUsername('bob')).toEqual(
        operator('op_2', 'bob', { role: 'merchant', merchantId: 'mer_a' }),
      );
      expect(await store.findOperatorByUsername('Alice')).toBeUndefined();
      expect(await store.getOperator('absent')).toBeUndefined();
      const dup = store.createOperator(operator('op_3', 'alice'));
      await expect(dup).rejects.toBeInstanceOf(StoreError);
      await expect(dup).rejects.toMatchObject({ code: 'POS_ERR_OPERATOR_EXISTS' });
      expect((await store.listOperators()).map((o) => o.id)).toEqual(['op_1', 'op_2']);
    });

    it('login attempt hits: concurrent hits on one key get distinct counts; the window slides; reset clears', async () => {
      const counts = await Promise.all(
        Array.from({ length: 12 }, () => store.hitLoginAttempt('auth:login:pair:x|alice', T0, 60_000)),
      );
      expect([...counts].sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      expect(await store.hitLoginAttempt('auth:login:pair:y|alice', T0, 60_000)).toBe(1);
      expect(await store.velocityCount('auth:login:pair:x|alice', T0, 60_000)).toBe(12);
      expect(await store.hitLoginAttempt('auth:login:pair:x|alice', T0 + 60_000, 60_000)).toBe(1);
      await store.velocityReset('auth:login:pair:x|alice');
      expect(await store.velocityCount('auth:login:pair:x|alice', T0 + 60_000, 60_000)).toBe(0);
    });

    it('lock-out start: the max-th newest attempt in the window, of that key only; undefined with fewer', async () => {
      for (const at of [T0 + 30, T0, T0 + 10, T0 + 10])
        await store.hitLoginAttempt('auth:login:user:a', at, 60_000);
      await store.hitLoginAttempt('auth:login:user:b', T0 + 5, 60_000);
      const start = (now: number, max: number): Promise<number | undefined> =>
        store.loginLockoutStart('auth:login:user:a', now, 60_000, max);
      expect(await Promise.all([1, 2, 3, 4, 5].map((max) => start(T0 + 30, max)))).toEqual([
        T0 + 30,
        T0 + 10,
        T0 + 10,
        T0,
        undefined,
      ]);
      // (now - window, now]: T0 has left the window at T0 + 60 000; nothing after now counts.
      expect(await Promise.all([3, 4].map((max) => start(T0 + 60_000, max)))).toEqual([T0 + 10, undefined]);
      expect(await Promise.all([1, 3, 4].map((max) => start(T0 + 20, max)))).toEqual([
        T0 + 10,
        T0,
        undefined,
      ]);
      expect(await store.loginLockoutStart('auth:login:user:none', T0, 60_000, 1)).toBeUndefined();
      for (const max of [0, -1, 1.5, Number.NaN]) {
        await expect(start(T0 + 30, max)).rejects.toMatchObject({
          name: 'StoreError',
          code: 'POS_ERR_STORE',
        });
      }
    });

    it('lock-out start of a key sprayed with 10,000 attempts: one time, the right one', async () => {
      const key = 'auth:login:user:sprayed';
      const hourMs = 3_600_000;
      for (let i = 0; i < 10_000; i += 50) {
        await Promise.all(
          Array.from({ length: 50 }, (_, j) => store.hitLoginAttempt(key, T0 + i + j, hourMs)),
        );
      }
      // One number back (the store reads at most `max` rows: the query-plan tests of each engine).
      expect(await store.loginLockoutStart(key, T0 + 9_999, hourMs, 5)).toBe(T0 + 9_995);
      expect(await store.loginLockoutStart(key, T0 + 9_999, hourMs, 10_000)).toBe(T0);
      expect(await store.loginLockoutStart(key, T0 + 9_999, hourMs, 10_001)).toBeUndefined();
      expect(await store.loginLockoutStart(key, T0 + 9_999, 100, 5)).toBe(T0 + 9_995);
      expect(await store.loginLockoutStart(key, T0 + 9_999, 3, 5)).toBeUndefined();
    }, 120_000);

    it('clearing login lock-outs reads the lock-out of the operator as stored, raises the epoch, with its audit entry; an unknown operator writes nothing', async () => {
      await store.createOperator(operator('op_1', 'alice'));
      const chain = (prev: AuditRow | undefined, d: AuditDraftRow): AuditRow => chainAuditEntry(prev, d);
      const draft = (wasLockedUntil: number | null): AuditDraftRow => ({
        at: new Date(T0).toISOString(),
        actor: 'operator:op_9',
        action: 'user.unlock',
        subject: 'operator:op_1',
        data: { wasLockedUntil },
      });
      // The throttle key of an operator at its epoch: three attempts under epoch 0, none under 1.
      const keyOf = (op: OperatorRow): string => `auth:login:user:${op.loginEpoch}|${op.username}`;
      for (const at of [T0 + 1, T0 + 2, T0 + 3])
        await store.hitLoginAttempt(`auth:login:user:0|alice`, at, 60_000);
      const probe = { key: keyOf, now: T0 + 10, windowMs: 60_000, max: 2 };
      const first = await store.clearLoginLockoutsAudited('op_1', probe, draft, chain);
      expect(first).toMatchObject({ loginEpoch: 1, wasLockedUntil: T0 + 2 + 60_000 });
      expect(first?.audit).toMatchObject({
        action: 'user.unlock',
        subject: 'operator:op_1',
        data: { wasLockedUntil: T0 + 2 + 60_000 },
      });
      const second = await store.clearLoginLockoutsAudited('op_1', probe, draft, chain);
      expect(second).toMatchObject({
        loginEpoch: 2,
        wasLockedUntil: null,
        audit: { data: { wasLockedUntil: null } },
      });
      expect(await store.getOperator('op_1')).toEqual(operator('op_1', 'alice', { loginEpoch: 2 }));
      expect(await store.clearLoginLockoutsAudited('absent', probe, draft, chain)).toBeUndefined();
      await expect(
        store.clearLoginLockoutsAudited('op_1', { ...probe, max: 0 }, draft, chain),
      ).rejects.toMatchObject({
        code: 'POS_ERR_STORE',
      });
      const audit = await store.listAudit(0, 10);
      expect(audit.map((a) => a.action)).toEqual(['user.unlock', 'user.unlock']);
      expect((await store.getOperator('op_1'))?.loginEpoch).toBe(2);
    });

    it('sets a password and disables once', async () => {
      await store.createOperator(operator('op_1', 'alice'));
      expect(await store.setOperatorPassword('op_1', 'new-hash')).toBe(true);
      expect(await store.setOperatorPassword('absent', 'x')).toBe(false);
      expect((await store.getOperator('op_1'))?.passwordHash).toBe('new-hash');
      expect(await store.disableOperator('op_1', T0 + 5)).toBe(true);
      expect(await store.disableOperator('op_1', T0 + 6)).toBe(false);
      expect((await store.getOperator('op_1'))?.disabledAt).toBe(T0 + 5);
    });

    it('API tokens: created with scope and expiry, found by hash, revoked once', async () => {
      const row = {
        id: 'tok_1',
        tokenHash: 'h1',
        label: 'ci',
        role: 'merchant' as const,
        merchantId: 'mer_a',
        createdBy: 'op_1',
        createdAt: T0,
        expiresAt: T0 + 1000,
        revokedAt: null,
      };
      await store.createApiToken(row);
      await store.createApiToken({ ...row, id: 'tok_2', tokenHash: 'h2', merchantId: null, expiresAt: null });
      expect(await store.findApiToken('h1')).toEqual(row);
      expect(await store.findApiToken('absent')).toBeUndefined();
      expect((await store.listApiTokens()).map((t) => t.id)).toEqual(['tok_1', 'tok_2']);
      expect(await store.revokeApiToken('tok_1', T0 + 1)).toBe(true);
      expect(await store.revokeApiToken('tok_1', T0 + 2)).toBe(false);
      expect((await store.findApiToken('h1'))?.revokedAt).toBe(T0 + 1);
      expect(await store.revokeApiToken('absent', T0)).toBe(false);
    });

    it('sessions: found by hash, revoked one by one or all of a user', async () => {
      await store.createOperator(operator('op_1', 'alice'));
      await store.createOperator(operator('op_2', 'bob'));
      await store.createSession(session('s1', 'op_1'));
      await store.createSession(session('s2', 'op_1'));
      await store.createSession(session('s3', 'op_2'));
      expect(await store.findSession('hash-s1')).toEqual(session('s1', 'op_1'));
      expect(await store.findSession('absent')).toBeUndefined();
      expect(await store.revokeSession('s1', T0 + 1)).toBe(true);
      expect(await store.revokeSession('s1', T0 + 2)).toBe(false);
      expect(await store.revokeOperatorSessions('op_1', T0 + 3)).toBe(1);
      expect((await store.findSession('hash-s2'))?.revokedAt).toBe(T0 + 3);
      expect((await store.findSession('hash-s3'))?.revokedAt).toBeNull();
    });

    it('purges the sessions expired before a time, revoked or not, and keeps the others', async () => {
      await store.createOperator(operator('op_1', 'alice'));
      await store.createSession(session('old', 'op_1', { expiresAt: T0 + 10 }));
      await store.createSession(session('old-revoked', 'op_1', { expiresAt: T0 + 20, revokedAt: T0 + 5 }));
      await store.createSession(session('edge', 'op_1', { expiresAt: T0 + 30 }));
      await store.createSession(session('live-revoked', 'op_1', { expiresAt: T0 + 40, revokedAt: T0 + 5 }));
      await store.createSession(session('live', 'op_1', { expiresAt: T0 + 50 }));
      expect(await store.purgeSessions(T0 + 30)).toBe(2);
      expect(await store.findSession('hash-old')).toBeUndefined();
      expect(await store.findSession('hash-old-revoked')).toBeUndefined();
      // Expiring exactly at `before` is not "expired before" it.
      expect(await store.findSession('hash-edge')).toEqual(session('edge', 'op_1', { expiresAt: T0 + 30 }));
      expect((await store.findSession('hash-live-revoked'))?.revokedAt).toBe(T0 + 5);
      expect(await store.findSession('hash-live')).toBeDefined();
      expect(await store.purgeSessions(T0 + 30)).toBe(0);
      expect(await store.purgeSessions(T0 + 51)).toBe(3);
    });
  });
}
