/**
 * State changes and their audit entries in one transaction, on SQLite and PostgreSQL: a halt
 * (createHaltAudited), a lift (liftHaltAndResume), the terminal resume shortcut
 * (resumeTerminalAndLift), an enrollment's terminal row (createTerminalAudited), a policy activation
 * (activatePolicyAudited) and a resume-pending terminal's activation
 * (transitionTerminalStateAudited), and the operator's enrollment codes, reference values and policy
 * versions and shadow mode, merchants (createEnrollmentCodeAudited, putReferenceValuesAudited,
 * deleteReferenceValuesAudited, putPolicyAudited, setPolicyShadowAudited, createMerchantAudited),
 * users, passwords and API tokens (createOperatorAudited, setOperatorPasswordAudited,
 * disableOperatorAudited, createApiTokenAudited, revokeApiTokenAudited), and a terminal's
 * decommissioning (decommissionTerminalAudited).
 * Each is stored
 * with its chained entries, or (when an entry cannot be made) neither is. On PostgreSQL, two pools
 * (two processes) halting and appending concurrently keep one linear chain. The crash fault test
 * (test/test/faults/backend-crash.test.ts) kills the process under load.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { chainAuditEntry } from '../../src/audit/index';
import { openPostgresStore } from '../../src/store/postgres';
import type { AuditDraftRow, AuditRow, HaltRow, Store, TerminalRow } from '../../src/store/types';
import { describePg, dropSchemas, freshSchemaName, PG_URL, storeEngines } from '../pg-helpers';

const T0 = 1_800_000_000_000;
const AT = new Date(T0).toISOString();

const chain = (prev: AuditRow | undefined, d: AuditDraftRow): AuditRow => chainAuditEntry(prev, d);
const failing = (): AuditRow => {
  throw new Error('chain failed');
};
const draft = (action: string, subject: string, data: Record<string, unknown> = {}): AuditDraftRow => ({
  at: AT,
  actor: 'operator:op1',
  action,
  subject,
  data,
});

const terminal = (id: string, state: TerminalRow['state'] = 'active'): TerminalRow => ({
  id,
  merchantId: 'mer_1',
  deviceJwk: '{"kty":"EC"}',
  deviceJkt: `jkt-${id}`,
  readerSerial: `R-${id}`,
  lastCounter: -1,
  state,
  stateReason: null,
  intervalS: 300,
  createdAt: T0,
  lastAttestedAt: null,
});

const haltRow = (id: string, scope: HaltRow['scope'], target: string | null): HaltRow => ({
  id,
  scope,
  target,
  reason: `reason ${id}`,
  createdBy: 'operator:op1',
  createdAt: T0,
  liftedAt: null,
  liftedBy: null,
});

const resume = { by: 'operator:op1', at: T0 + 1, reason: 'fixed', stateReason: 'resumed' };

/** Every entry links to the one before it (seq 1.., prevHash = previous hash, hash recomputed). */
function expectLinear(entries: readonly AuditRow[]): void {
  let prev: AuditRow | undefined;
  for (const e of entries) {
    expect(e).toEqual(chainAuditEntry(prev, e));
    prev = e;
  }
}

const schemas: string[] = [];
afterAll(() => dropSchemas(schemas), 120_000);

const engines = storeEngines('sa', schemas);

describe.each(engines)('state changes audited in their transaction (%s)', (_engine, open) => {
  async function withStore(work: (store: Store) => Promise<void>): Promise<void> {
    const store = await open();
    try {
      await store.createMerchant({ id: 'mer_1', name: 'Shop', createdAt: T0 });
      await work(store);
    } finally {
      await store.close();
    }
  }

  it('a halt: stored with its entry (built from the outbox rows), or neither', async () => {
    await withStore(async (store) => {
      for (const id of ['t1', 't2']) await store.createTerminal(terminal(id));
      await store.appendAudit(draft('before', 'x'), chain);
      const out = await store.createHaltAudited(haltRow('h1', 'fleet', null), ['t1', 't2'], {
        drafts: (rows) => [draft('halt.create', 'h1', { terminals: rows.length })],
        chain,
      });
      expect(out.rows.map((r) => r.terminalId)).toEqual(['t1', 't2']);
      expect(out.audit).toHaveLength(1);
      expect(out.audit[0]).toMatchObject({ seq: 2, action: 'halt.create', data: { terminals: 2 } });
      expect((await store.getTerminal('t1'))?.state).toBe('halted');

      // The entry cannot be made: no halt, no state change, no outbox row, no entry.
      await store.createTerminal(terminal('t3'));
      await expect(
        store.createHaltAudited(haltRow('h2', 'terminal', 't3'), ['t3'], {
          drafts: () => [draft('terminal.halt', 't3')],
          chain: failing,
        }),
      ).rejects.toThrow('chain failed');
      expect(await store.getHalt('h2')).toBeUndefined();
      expect((await store.getTerminal('t3'))?.state).toBe('active');
      expect(await store.pendingOutbox('t3')).toEqual([]);
      const audit = await store.listAudit(0, 100);
      expect(audit.map((e) => e.action)).toEqual(['before', 'halt.create']);
      expectLinear(audit);
    });
  });

  it('a lift: lifted and resumed with its entry, or neither', async () => {
    await withStore(async (store) => {
      await store.createTerminal(terminal('t1'));
      await store.createHalt(haltRow('h1', 'terminal', 't1'), ['t1']);
      const refused = await store
        .liftHaltAndResume('h1', resume, {
          drafts: () => [draft('halt.lift', 'h1')],
          chain: failing,
        })
        .then(
          () => 'resolved',
          (e: unknown) => (e instanceof Error ? e.message : 'rejected'),
        );
      expect(refused).toBe('chain failed');
      expect((await store.getHalt('h1'))?.liftedAt).toBeNull();
      expect((await store.getTerminal('t1'))?.state).toBe('halted');
      expect((await store.pendingOutbox('t1')).map((r) => r.kind)).toEqual(['halt']);
      expect(await store.listAudit(0, 100)).toEqual([]);

      const out = await store.liftHaltAndResume('h1', resume, {
        drafts: (done) => [draft('halt.lift', 'h1', { resumed: done.resumed.length })],
        chain,
      });
      expect(out.ok).toBe(true);
      if (!out.ok) return;
      expect(out.resumed).toEqual(['t1']);
      expect(out.audit.map((e) => [e.seq, e.action, e.data['resumed']])).toEqual([[1, 'halt.lift', 1]]);
      expect((await store.getTerminal('t1'))?.state).toBe('resume-pending');
      expect(await store.listAudit(0, 100)).toEqual(out.audit);

      // A refused lift (already lifted) appends nothing.
      const again = await store.liftHaltAndResume('h1', resume, {
        drafts: () => [draft('halt.lift', 'h1')],
        chain,
      });
      expect(again).toEqual({ ok: false, code: 'halt-lifted' });
      expect(await store.listAudit(0, 100)).toHaveLength(1);
    });
  });

  it('the terminal resume: lifts, resume and their entries together, or neither', async () => {
    await withStore(async (store) => {
      await store.createTerminal(terminal('t1'));
      await store.createHalt(haltRow('h1', 'terminal', 't1'), ['t1']);
      const drafts = (done: { readonly lifted: readonly string[] }): AuditDraftRow[] => [
        ...done.lifted.map((id) => draft('halt.lift', id)),
        draft('terminal.resume', 't1', { lifted: [...done.lifted] }),
      ];
      await expect(store.resumeTerminalAndLift('t1', resume, { drafts, chain: failing })).rejects.toThrow(
        'chain failed',
      );
      expect((await store.getHalt('h1'))?.liftedAt).toBeNull();
      expect((await store.getTerminal('t1'))?.state).toBe('halted');
      expect(await store.listAudit(0, 100)).toEqual([]);

      const out = await store.resumeTerminalAndLift('t1', resume, { drafts, chain });
      expect(out.ok).toBe(true);
      if (!out.ok) return;
      expect(out.audit.map((e) => [e.action, e.subject])).toEqual([
        ['halt.lift', 'h1'],
        ['terminal.resume', 't1'],
      ]);
      expect((await store.getHalt('h1'))?.liftedAt).toBe(resume.at);
      expect((await store.getTerminal('t1'))?.state).toBe('resume-pending');
      const audit = await store.listAudit(0, 100);
      expect(audit).toEqual(out.audit);
      expectLinear(audit);
    });
  });

  it('a decommissioning: the state, the notice row and its entry together, or none of them', async () => {
    await withStore(async (store) => {
      await store.createTerminal(terminal('t1'));
      const request = {
        terminalId: 't1',
        at: T0 + 1,
        reason: 'stolen',
        noticeId: 'dcm_1',
        noticeReason: 'decommissioned: stolen',
      };
      await expect(
        store.decommissionTerminalAudited(request, {
          drafts: () => [draft('terminal.decommission', 't1')],
          chain: failing,
        }),
      ).rejects.toThrow('chain failed');
      expect((await store.getTerminal('t1'))?.state).toBe('active');
      expect(await store.pendingOutbox('t1')).toEqual([]);
      expect(await store.listAudit(0, 100)).toEqual([]);
      const out = await store.decommissionTerminalAudited(request, {
        drafts: (done) => [draft('terminal.decommission', 't1', { previousState: done.previous })],
        chain,
      });
      if (!out.ok) throw new Error(out.code);
      expect(out.audit).toHaveLength(1);
      expect(out.audit[0]).toMatchObject({
        seq: 1,
        action: 'terminal.decommission',
        data: { previousState: 'active' },
      });
      expect(await store.listAudit(0, 100)).toEqual(out.audit);
      expect(await store.pendingOutbox('t1')).toEqual(out.rows);
      expect((await store.getTerminal('t1'))?.state).toBe('decommissioned');
    });
  });

  it('an enrollment: the terminal with its entry, or neither (a key in use appends nothing)', async () => {
    await withStore(async (store) => {
      const entry = await store.createTerminalAudited(terminal('t1'), draft('terminal.enroll', 't1'), chain);
      expect(entry).toMatchObject({ seq: 1, action: 'terminal.enroll', subject: 't1' });
      expect((await store.getTerminal('t1'))?.id).toBe('t1');

      await expect(
        store.createTerminalAudited(terminal('t2'), draft('terminal.enroll', 't2'), failing),
      ).rejects.toThrow('chain failed');
      expect(await store.getTerminal('t2')).toBeUndefined();

      const sameKey = { ...terminal('t3'), deviceJkt: 'jkt-t1' };
      await expect(
        store.createTerminalAudited(sameKey, draft('terminal.enroll', 't3'), chain),
      ).rejects.toMatchObject({ code: 'POS_ERR_ENROLLMENT_KEY_IN_USE' });
      expect(await store.getTerminal('t3')).toBeUndefined();
      expect((await store.listAudit(0, 100)).map((e) => e.subject)).toEqual(['t1']);
    });
  });
});

describe.each(engines)('policy activation and terminal activation audited (%s)', (_engine, open) => {
  it('a policy activation with its entry, or neither; an unknown version writes nothing', async () => {
    const store = await open();
    try {
      for (const [version, role] of [
        ['p1', 'active'],
        ['p2', 'inactive'],
      ] as const)
        await store.putPolicy({ version, document: {}, role, createdAt: T0, createdBy: 'op' });
      const role = async (v: string): Promise<string | undefined> => (await store.getPolicy(v))?.role;
      await expect(
        store.activatePolicyAudited('p2', draft('policy.activate', 'p2'), failing),
      ).rejects.toThrow('chain failed');
      expect([await role('p1'), await role('p2')]).toEqual(['active', 'inactive']);
      expect(
        await store.activatePolicyAudited('nope', draft('policy.activate', 'nope'), chain),
      ).toBeUndefined();
      const entry = await store.activatePolicyAudited('p2', draft('policy.activate', 'p2'), chain);
      expect(entry).toMatchObject({ seq: 1, action: 'policy.activate', subject: 'p2' });
      expect([await role('p1'), await role('p2')]).toEqual(['inactive', 'active']);
      expect(await store.listAudit(0, 100)).toEqual([entry]);
    } finally {
      await store.close();
    }
  });

  it('resume-pending to active with its entry, or neither; a terminal not in that state writes nothing', async () => {
    const store = await open();
    try {
      await store.createMerchant({ id: 'mer_1', name: 'Shop', createdAt: T0 });
      await store.createTerminal(terminal('t1', 'resume-pending'));
      const activate = (c: typeof chain) =>
        store.transitionTerminalStateAudited(
          't1',
          'resume-pending',
          'active',
          null,
          T0 + 5,
          draft('terminal.activate', 't1'),
          c,
        );
      await expect(activate(failing)).rejects.toThrow('chain failed');
      expect((await store.getTerminal('t1'))?.state).toBe('resume-pending');
      const entry = await activate(chain);
      expect(entry).toMatchObject({ seq: 1, action: 'terminal.activate' });
      expect((await store.getTerminal('t1'))?.state).toBe('active');
      expect(await activate(chain)).toBeUndefined();
      expect(await store.listAudit(0, 100)).toEqual([entry]);
    } finally {
      await store.close();
    }
  });
});

describe.each(engines)('operator writes audited in their transaction (%s)', (_engine, open) => {
  it('enrollment code, reference values (create, delete), policy, shadow mode, merchant: each with its entry, or neither', async () => {
    const store = await open();
    try {
      await store.createMerchant({ id: 'mer_1', name: 'Shop', createdAt: T0 });
      const code = (h: string) => ({
        codeHash: h,
        merchantId: 'mer_1',
        expiresAt: T0 + 60_000,
        createdAt: T0,
        createdBy: 'op',
      });
      await expect(
        store.createEnrollmentCodeAudited(code('c1'), draft('enrollment-code.create', 'mer_1'), failing),
      ).rejects.toThrow('chain failed');
      expect(await store.consumeEnrollmentCode('c1', T0 + 1, 'tx')).toBeUndefined();
      await store.createEnrollmentCodeAudited(code('c2'), draft('enrollment-code.create', 'mer_1'), chain);
      expect((await store.consumeEnrollmentCode('c2', T0 + 1, 'tx'))?.merchantId).toBe('mer_1');

      const ref = {
        id: 'ref_1',
        version: '1.0.0',
        build: 'release' as const,
        document: { version: '1.0.0' },
        createdAt: T0,
        createdBy: 'op',
      };
      await expect(
        store.putReferenceValuesAudited(ref, draft('reference-values.create', 'ref_1'), failing),
      ).rejects.toThrow('chain failed');
      expect(await store.listReferenceValues()).toEqual([]);
      await store.putReferenceValuesAudited(ref, draft('reference-values.create', 'ref_1'), chain);
      await expect(
        store.deleteReferenceValuesAudited('ref_1', draft('reference-values.delete', 'ref_1'), failing),
      ).rejects.toThrow('chain failed');
      expect((await store.listReferenceValues()).map((r) => r.id)).toEqual(['ref_1']);
      expect(
        await store.deleteReferenceValuesAudited('ref_1', draft('reference-values.delete', 'ref_1'), chain),
      ).toMatchObject({ action: 'reference-values.delete' });
      expect(
        await store.deleteReferenceValuesAudited('ref_1', draft('reference-values.delete', 'ref_1'), chain),
      ).toBeUndefined();
      expect(await store.listReferenceValues()).toEqual([]);

      const policy = {
        version: 'p1',
        document: {},
        role: 'inactive' as const,
        createdAt: T0,
        createdBy: 'op',
      };
      await expect(store.putPolicyAudited(policy, draft('policy.create', 'p1'), failing)).rejects.toThrow(
        'chain failed',
      );
      expect(await store.getPolicy('p1')).toBeUndefined();
      await store.putPolicyAudited(policy, draft('policy.create', 'p1'), chain);
      await expect(store.putPolicyAudited(policy, draft('policy.create', 'p1'), chain)).rejects.toMatchObject(
        {
          code: 'POS_ERR_POLICY_EXISTS',
        },
      );
      await expect(
        store.setPolicyShadowAudited('p1', true, draft('policy.shadow', 'p1'), failing),
      ).rejects.toThrow('chain failed');
      expect((await store.getPolicy('p1'))?.role).toBe('inactive');
      expect(
        await store.setPolicyShadowAudited('p1', true, draft('policy.shadow', 'p1'), chain),
      ).toMatchObject({
        action: 'policy.shadow',
      });
      expect((await store.getPolicy('p1'))?.role).toBe('shadow');
      expect(
        await store.setPolicyShadowAudited('nope', true, draft('policy.shadow', 'nope'), chain),
      ).toBeUndefined();

      await expect(
        store.createMerchantAudited(
          { id: 'mer_2', name: 'B', createdAt: T0 },
          draft('merchant.create', 'mer_2'),
          failing,
        ),
      ).rejects.toThrow('chain failed');
      expect(await store.getMerchant('mer_2')).toBeUndefined();
      await store.createMerchantAudited(
        { id: 'mer_2', name: 'B', createdAt: T0 },
        draft('merchant.create', 'mer_2'),
        chain,
      );
      expect((await store.getMerchant('mer_2'))?.name).toBe('B');
      const audit = await store.listAudit(0, 100);
      expect(audit.map((e) => e.action)).toEqual([
        'enrollment-code.create',
        'reference-values.create',
        'reference-values.delete',
        'policy.create',
        'policy.shadow',
        'merchant.create',
      ]);
      expectLinear(audit);
    } finally {
      await store.close();
    }
  });
});

describe.each(engines)('users and tokens audited in their transaction (%s)', (_engine, open) => {
  it('a user, a token and its revocation each with its entry, or neither; a username taken appends nothing', async () => {
    const store = await open();
    try {
      const user = {
        id: 'usr_1',
        username: 'alice',
        passwordHash: 'x',
        role: 'operator' as const,
        merchantId: null,
        createdAt: T0,
        disabledAt: null,
      };
      await expect(
        store.createOperatorAudited(user, draft('user.create', 'operator:usr_1'), failing),
      ).rejects.toThrow('chain failed');
      expect(await store.getOperator('usr_1')).toBeUndefined();
      await store.createOperatorAudited(user, draft('user.create', 'operator:usr_1'), chain);
      await expect(
        store.createOperatorAudited({ ...user, id: 'usr_2' }, draft('user.create', 'operator:usr_2'), chain),
      ).rejects.toMatchObject({ code: 'POS_ERR_OPERATOR_EXISTS' });
      const token = {
        id: 'tok_1',
        tokenHash: 'h1',
        label: 'ci',
        role: 'operator' as const,
        merchantId: null,
        createdBy: 'operator:usr_1',
        createdAt: T0,
        expiresAt: T0 + 60_000,
        revokedAt: null,
      };
      await expect(
        store.createApiTokenAudited(token, draft('token.create', 'tok_1'), failing),
      ).rejects.toThrow('chain failed');
      expect(await store.findApiToken('h1')).toBeUndefined();
      await store.createApiTokenAudited(token, draft('token.create', 'tok_1'), chain);
      expect((await store.findApiToken('h1'))?.id).toBe('tok_1');
      await expect(
        store.revokeApiTokenAudited('tok_1', T0 + 1, draft('token.revoke', 'tok_1'), failing),
      ).rejects.toThrow('chain failed');
      expect((await store.findApiToken('h1'))?.revokedAt).toBeNull();
      expect(
        await store.revokeApiTokenAudited('tok_1', T0 + 1, draft('token.revoke', 'tok_1'), chain),
      ).toMatchObject({
        action: 'token.revoke',
      });
      expect((await store.findApiToken('h1'))?.revokedAt).toBe(T0 + 1);
      expect(
        await store.revokeApiTokenAudited('tok_1', T0 + 2, draft('token.revoke', 'tok_1'), chain),
      ).toBeUndefined();
      // A new password: hash, sessions ended and the entry, or none of them.
      await store.createOperator({ ...user, id: 'usr_3', username: 'bob' });
      await store.createSession({
        id: 'ses_1',
        tokenHash: 'sh1',
        csrfHash: 'ch1',
        operatorId: 'usr_3',
        createdAt: T0,
        expiresAt: T0 + 60_000,
        revokedAt: null,
      });
      const password = (c: typeof chain) =>
        store.setOperatorPasswordAudited(
          'usr_3',
          'new-hash',
          T0 + 3,
          (n) => draft('user.password', 'operator:usr_3', { n }),
          c,
        );
      await expect(password(failing)).rejects.toThrow('chain failed');
      expect(await store.getOperator('usr_3')).toMatchObject({ passwordHash: 'x' });
      expect((await store.findSession('sh1'))?.revokedAt).toBeNull();
      const done = await password(chain);
      expect(done?.sessionsEnded).toBe(1);
      expect(done?.audit).toMatchObject({ action: 'user.password', data: { n: 1 } });
      expect(await store.getOperator('usr_3')).toMatchObject({ passwordHash: 'new-hash' });
      expect((await store.findSession('sh1'))?.revokedAt).toBe(T0 + 3);
      expect(
        await store.setOperatorPasswordAudited(
          'usr_9',
          'h',
          T0,
          () => draft('user.password', 'operator:usr_9'),
          chain,
        ),
      ).toBeUndefined();
      // Clearing the login lock-outs: the epoch raised and the entry, or neither.
      const unlock = (c: typeof chain) =>
        store.clearLoginLockoutsAudited(
          'usr_3',
          { key: (op) => `auth:login:user:${op.loginEpoch}`, now: T0, windowMs: 60_000, max: 5 },
          () => draft('user.unlock', 'operator:usr_3'),
          c,
        );
      await expect(unlock(failing)).rejects.toThrow('chain failed');
      expect((await store.getOperator('usr_3'))?.loginEpoch).toBe(0);
      expect(await unlock(chain)).toMatchObject({ loginEpoch: 1, audit: { action: 'user.unlock' } });
      expect((await store.getOperator('usr_3'))?.loginEpoch).toBe(1);
      // Disabling: user, sessions, listed tokens and the entry, or none of them.
      await store.createSession({
        id: 'ses_2',
        tokenHash: 'sh2',
        csrfHash: 'ch2',
        operatorId: 'usr_3',
        createdAt: T0,
        expiresAt: T0 + 60_000,
        revokedAt: null,
      });
      await store.createApiToken({ ...token, id: 'tok_2', tokenHash: 'h2', createdBy: 'operator:usr_3' });
      const disable = (c: typeof chain) =>
        store.disableOperatorAudited(
          'usr_3',
          T0 + 4,
          ['tok_2'],
          (d) => draft('user.disable', 'operator:usr_3', { ...d }),
          c,
        );
      await expect(disable(failing)).rejects.toThrow('chain failed');
      expect((await store.getOperator('usr_3'))?.disabledAt).toBeNull();
      expect((await store.findSession('sh2'))?.revokedAt).toBeNull();
      expect((await store.findApiToken('h2'))?.revokedAt).toBeNull();
      const off = await disable(chain);
      expect(off).toMatchObject({
        sessionsEnded: 1,
        tokensRevoked: 1,
        audit: { data: { sessionsEnded: 1, tokensRevoked: 1 } },
      });
      expect((await store.getOperator('usr_3'))?.disabledAt).toBe(T0 + 4);
      expect((await store.findApiToken('h2'))?.revokedAt).toBe(T0 + 4);
      expect(
        await store.disableOperatorAudited(
          'usr_9',
          T0,
          [],
          () => draft('user.disable', 'operator:usr_9'),
          chain,
        ),
      ).toBeUndefined();
      const audit = await store.listAudit(0, 100);
      expect(audit.map((e) => e.action)).toEqual([
        'user.create',
        'token.create',
        'token.revoke',
        'user.password',
        'user.unlock',
        'user.disable',
      ]);
      expectLinear(audit);
    } finally {
      await store.close();
    }
  });
});

describePg('audited halts from two processes (PostgreSQL)', () => {
  it('concurrent halts, lifts and plain appends from two pools keep one linear chain', async () => {
    const schema = freshSchemaName('sac');
    schemas.push(schema);
    const a = await openPostgresStore({ url: PG_URL, schema, max: 4 });
    const b = await openPostgresStore({ url: PG_URL, schema, max: 4 });
    try {
      await a.createMerchant({ id: 'mer_1', name: 'Shop', createdAt: T0 });
      const ids = Array.from({ length: 8 }, (_, i) => `t${i}`);
      for (const id of ids) await a.createTerminal(terminal(id));
      const ROUNDS = 12;
      const work: Promise<unknown>[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const [first, second] = r % 2 === 0 ? [a, b] : [b, a];
        work.push(
          first.createHaltAudited(haltRow(`hf${r}`, 'fleet', null), ids, {
            drafts: (rows) => [draft('halt.create', `hf${r}`, { terminals: rows.length })],
            chain,
          }),
          second.createHaltAudited(haltRow(`ht${r}`, 'terminal', `t${r % 8}`), [`t${r % 8}`], {
            drafts: () => [draft('terminal.halt', `t${r % 8}`)],
            chain,
          }),
          second.appendAudit(draft('plain', `p${r}`), chain),
        );
      }
      await Promise.all(work);
      const lifts = await Promise.all(
        Array.from({ length: ROUNDS }, (_, r) =>
          (r % 2 === 0 ? a : b).liftHaltAndResume(`hf${r}`, resume, {
            drafts: () => [draft('halt.lift', `hf${r}`)],
            chain,
          }),
        ),
      );
      expect(lifts.every((l) => l.ok)).toBe(true);
      const audit = await a.listAudit(0, 1000);
      expect(audit).toHaveLength(ROUNDS * 4);
      expectLinear(audit);
      // Every halt stored has its entry.
      const halts = await a.listHalts({ activeOnly: false, limit: 1000 });
      expect(halts).toHaveLength(ROUNDS * 2);
      const audited = new Set(audit.map((e) => `${e.action}:${e.subject}`));
      for (const h of halts)
        expect(
          audited.has(h.scope === 'fleet' ? `halt.create:${h.id}` : `terminal.halt:${h.target ?? ''}`),
        ).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
