/**
 * The Store conformance suite: written against the interface only, so every engine runs the same
 * checks (`runStoreConformance('postgres', () => openPostgresStore(...))` in the next issue).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError, type AuditRow, type Store, type TerminalRow } from '../../src/store/types';

const T0 = 1_800_000_000_000;

function terminal(id: string, jkt: string, merchantId = 'mer_1'): TerminalRow {
  return {
    id,
    merchantId,
    deviceJwk: '{"kty":"EC"}',
    deviceJkt: jkt,
    readerSerial: 'R1',
    lastCounter: -1,
    state: 'active',
    stateReason: null,
    intervalS: 300,
    createdAt: T0,
    lastAttestedAt: null,
  };
}

function chain(prev: AuditRow | undefined, d: Omit<AuditRow, 'seq' | 'prevHash' | 'hash'>): AuditRow {
  const seq = (prev?.seq ?? 0) + 1;
  const prevHash = prev?.hash ?? '0';
  return { ...d, seq, prevHash, hash: `${prevHash}:${seq}` };
}

export function runStoreConformance(engine: string, open: () => Promise<Store> | Store): void {
  describe(`Store conformance: ${engine}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await open();
      await store.createMerchant({ id: 'mer_1', name: 'Shop', createdAt: T0 });
    });
    afterEach(async () => {
      await store.close();
    });

    it('answers ping and reports a schema version', async () => {
      expect(await store.ping()).toBe(true);
      expect(await store.schemaVersion()).toBeGreaterThanOrEqual(1);
    });

    it('meta: initMeta sets once, setMeta overwrites', async () => {
      expect(await store.initMeta('k', 'a')).toBe(true);
      expect(await store.initMeta('k', 'b')).toBe(false);
      expect(await store.getMeta('k')).toBe('a');
      await store.setMeta('k', 'c');
      expect(await store.getMeta('k')).toBe('c');
      expect(await store.getMeta('absent')).toBeUndefined();
    });

    it('enrollment codes are single use and expire', async () => {
      await store.createEnrollmentCode({
        codeHash: 'h1',
        merchantId: 'mer_1',
        expiresAt: T0 + 1000,
        createdAt: T0,
        createdBy: 'op',
      });
      await store.createEnrollmentCode({
        codeHash: 'h2',
        merchantId: 'mer_1',
        expiresAt: T0 + 1000,
        createdAt: T0,
        createdBy: 'op',
      });
      const [a, b] = await Promise.all([
        store.consumeEnrollmentCode('h1', T0, 't1'),
        store.consumeEnrollmentCode('h1', T0, 't2'),
      ]);
      expect([a, b].filter((x) => x !== undefined)).toHaveLength(1);
      expect(await store.consumeEnrollmentCode('h2', T0 + 1000, 't3')).toBeUndefined();
      expect(await store.consumeEnrollmentCode('nope', T0, 't4')).toBeUndefined();
    });

    it('terminals: unique device key, monotonic counter, halt flag', async () => {
      await store.createTerminal(terminal('t1', 'jkt1'));
      await expect(store.createTerminal(terminal('t2', 'jkt1'))).rejects.toSatisfy(
        (e: unknown) => e instanceof StoreError && e.code === 'POS_ERR_ENROLLMENT_KEY_IN_USE',
      );
      expect(await store.advanceTerminalCounter('t1', 5, T0)).toBe(true);
      expect(await store.advanceTerminalCounter('t1', 5, T0)).toBe(false);
      expect(await store.advanceTerminalCounter('t1', 4, T0)).toBe(false);
      expect(await store.advanceTerminalCounter('t1', 6, T0 + 1)).toBe(true);
      expect((await store.getTerminal('t1'))?.lastCounter).toBe(6);
      expect(await store.setTerminalState('t1', 'halted', 'why')).toBe(true);
      expect(await store.getTerminal('t1')).toMatchObject({ state: 'halted', stateReason: 'why' });
      expect(await store.setTerminalState('nope', 'halted', null)).toBe(false);
      expect(await store.countTerminals()).toBe(1);
    });

    it('terminal state: compare-and-set transitions record when the state changed', async () => {
      await store.createTerminal(terminal('t1', 'jkt1'));
      expect(await store.setTerminalState('t1', 'halted', 'why', T0 + 5)).toBe(true);
      expect(await store.getTerminal('t1')).toMatchObject({ state: 'halted', stateChangedAt: T0 + 5 });
      expect(await store.transitionTerminalState('t1', 'active', 'halted', null, T0 + 6)).toBe(false);
      const racing = await Promise.all([
        store.transitionTerminalState('t1', 'halted', 'resume-pending', 'resumed', T0 + 7),
        store.transitionTerminalState('t1', 'halted', 'resume-pending', 'resumed', T0 + 7),
      ]);
      expect(racing.filter(Boolean)).toHaveLength(1);
      expect(await store.getTerminal('t1')).toMatchObject({
        state: 'resume-pending',
        stateReason: 'resumed',
        stateChangedAt: T0 + 7,
      });
      expect(await store.transitionTerminalState('t1', 'resume-pending', 'active', null, T0 + 8)).toBe(true);
      expect(await store.getTerminal('t1')).toMatchObject({ state: 'active', stateChangedAt: T0 + 8 });
      expect(await store.transitionTerminalState('nope', 'active', 'halted', null, T0)).toBe(false);
    });

    it('tickets: consumed once, only by their terminal and use, only before they expire', async () => {
      const ticket = (jti: string, use = 'pin-entry'): Parameters<Store['recordTicket']>[0] => ({
        jti,
        terminalId: 't1',
        use,
        kid: 'k1',
        issuedAt: T0,
        expiresAt: T0 + 60_000,
      });
      await store.recordTicket(ticket('j1'));
      await store.recordTicket(ticket('j2'));
      await store.recordTicket(ticket('j3', 'session'));
      expect(await store.consumeTicket('j1', 't2', 'pin-entry', T0)).toBe(false);
      expect(await store.consumeTicket('j3', 't1', 'pin-entry', T0)).toBe(false);
      const racing = await Promise.all([
        store.consumeTicket('j1', 't1', 'pin-entry', T0 + 1),
        store.consumeTicket('j1', 't1', 'pin-entry', T0 + 1),
      ]);
      expect(racing.filter(Boolean)).toHaveLength(1);
      expect(await store.consumeTicket('j1', 't1', 'pin-entry', T0 + 2)).toBe(false);
      expect(await store.consumeTicket('j2', 't1', 'pin-entry', T0 + 60_000)).toBe(false);
      expect(await store.consumeTicket('unknown', 't1', 'pin-entry', T0)).toBe(false);
    });

    it('latestTicket: the newest ticket issued to a terminal, with its used time; null when none', async () => {
      const ticket = (
        jti: string,
        terminalId: string,
        issuedAt: number,
        use = 'session',
        expiresAt = issuedAt + 60_000,
      ): Parameters<Store['recordTicket']>[0] => ({ jti, terminalId, use, kid: 'k1', issuedAt, expiresAt });
      expect(await store.latestTicket('t1')).toBeNull();
      await store.recordTicket(ticket('j-old', 't1', T0));
      await store.recordTicket(ticket('j-new', 't1', T0 + 10_000, 'pin-entry'));
      await store.recordTicket(ticket('j-other', 't2', T0 + 20_000));
      // By issue time, not by the order of recording.
      await store.recordTicket(ticket('j-older', 't1', T0 - 5_000));
      expect(await store.latestTicket('t1')).toEqual({
        jti: 'j-new',
        terminalId: 't1',
        use: 'pin-entry',
        kid: 'k1',
        issuedAt: T0 + 10_000,
        expiresAt: T0 + 70_000,
        usedAt: null,
      });
      expect((await store.latestTicket('t2'))?.jti).toBe('j-other');
      expect(await store.latestTicket('t3')).toBeNull();
      // Used: the time it was consumed.
      expect(await store.consumeTicket('j-new', 't1', 'pin-entry', T0 + 10_500)).toBe(true);
      expect(await store.latestTicket('t1')).toMatchObject({ jti: 'j-new', usedAt: T0 + 10_500 });
      // Issued in the same second (a session ticket, then a PIN-entry one): the one recorded last,
      // whatever its jti or expiry.
      await store.recordTicket(ticket('zz', 't1', T0 + 30_000, 'session', T0 + 90_000));
      await store.recordTicket(ticket('mm', 't1', T0 + 30_000, 'session', T0 + 90_000));
      await store.recordTicket(ticket('aa', 't1', T0 + 30_000, 'pin-entry', T0 + 60_000));
      expect(await store.latestTicket('t1')).toMatchObject({ jti: 'aa', use: 'pin-entry', usedAt: null });
      await store.recordTicket(ticket('bb', 't1', T0 + 30_000, 'session', T0 + 90_000));
      expect((await store.latestTicket('t1'))?.jti).toBe('bb');
    });

    it('KSN counters: strictly increasing per prefix, atomically', async () => {
      const p1 = '1234567890123456';
      const p2 = '1234567890123457';
      expect(await store.advanceKsnCounter(p1, 5, T0)).toBe(true);
      expect(await store.advanceKsnCounter(p1, 5, T0)).toBe(false);
      expect(await store.advanceKsnCounter(p1, 4, T0)).toBe(false);
      expect(await store.advanceKsnCounter(p2, 1, T0)).toBe(true);
      const racing = await Promise.all([
        store.advanceKsnCounter(p1, 9, T0 + 1),
        store.advanceKsnCounter(p1, 9, T0 + 1),
      ]);
      expect(racing.filter(Boolean)).toHaveLength(1);
      expect(await store.advanceKsnCounter(p1, 8, T0 + 2)).toBe(false);
      expect(await store.advanceKsnCounter(p1, 10, T0 + 2)).toBe(true);
      expect(await store.advanceKsnCounter(p1, 0xffffffff, T0 + 3)).toBe(true);
    });

    it('reader status sequence numbers: strictly increasing per reader', async () => {
      expect(await store.advanceReaderStatusSeq('R1', 0, T0)).toBe(true);
      expect(await store.advanceReaderStatusSeq('R1', 0, T0)).toBe(false);
      expect(await store.advanceReaderStatusSeq('R2', 0, T0)).toBe(true);
      expect(await store.advanceReaderStatusSeq('R1', 3, T0)).toBe(true);
      expect(await store.advanceReaderStatusSeq('R1', 2, T0)).toBe(false);
    });

    it('challenges: consume returns the pre-use row once, then the first use time', async () => {
      await store.createChallenge({ value: 'c1', terminalId: 't1', expiresAt: T0 + 30_000, createdAt: T0 });
      const first = await store.consumeChallenge('c1', T0 + 1);
      expect(first).toMatchObject({ value: 'c1', terminalId: 't1', usedAt: null });
      expect((await store.consumeChallenge('c1', T0 + 2))?.usedAt).toBe(T0 + 1);
      expect(await store.consumeChallenge('unknown', T0)).toBeUndefined();
      expect(await store.purgeChallenges(T0 + 60_000)).toBe(1);
    });

    it('signing keys: put, list, retire, delete', async () => {
      await store.putSigningKey({
        kid: 'k1',
        publicJwk: '{}',
        encryptedPrivateKey: 'x',
        state: 'active',
        createdAt: T0,
        retiredAt: null,
        verifyUntil: null,
      });
      await store.retireSigningKey('k1', T0 + 1, T0 + 100);
      expect(await store.listSigningKeys()).toMatchObject([
        { kid: 'k1', state: 'retired', verifyUntil: T0 + 100, encryptedPrivateKey: '' },
      ]);
      await store.recordTicket({
        jti: 'j1',
        terminalId: 't1',
        use: 'session',
        kid: 'k1',
        issuedAt: T0,
        expiresAt: T0 + 60_000,
      });
      expect(await store.lastTicketExpiry('k1')).toBe(T0 + 60_000);
      expect(await store.lastTicketExpiry('k2')).toBeUndefined();
      expect(await store.getTicket('j1')).toMatchObject({ kid: 'k1' });
      await store.deleteSigningKey('k1');
      expect(await store.listSigningKeys()).toEqual([]);
    });

    it('policies: immutable versions, one active, shadow never on the active one', async () => {
      await store.putPolicy({
        version: 'p1',
        document: { a: 1 },
        role: 'inactive',
        createdAt: T0,
        createdBy: 'op',
      });
      await store.putPolicy({
        version: 'p2',
        document: { a: 2 },
        role: 'inactive',
        createdAt: T0 + 1,
        createdBy: 'op',
      });
      await expect(
        store.putPolicy({ version: 'p1', document: {}, role: 'inactive', createdAt: T0, createdBy: 'op' }),
      ).rejects.toSatisfy((e: unknown) => e instanceof StoreError && e.code === 'POS_ERR_POLICY_EXISTS');
      expect(await store.activatePolicy('p1')).toBe(true);
      expect(await store.activatePolicy('p2')).toBe(true);
      expect(await store.setPolicyShadow('p2', true)).toBe(false);
      expect(await store.setPolicyShadow('p1', true)).toBe(true);
      const roles = Object.fromEntries((await store.listPolicies()).map((p) => [p.version, p.role]));
      expect(roles).toEqual({ p1: 'shadow', p2: 'active' });
      expect((await store.getPolicy('p2'))?.document).toEqual({ a: 2 });
      expect(await store.activatePolicy('nope')).toBe(false);
    });

    it('reference values round-trip', async () => {
      await store.putReferenceValues({
        id: 'r1',
        version: '1.0.0',
        build: 'release',
        document: { codeHashes: ['aa'] },
        createdAt: T0,
        createdBy: 'op',
      });
      expect(await store.listReferenceValues()).toMatchObject([
        { id: 'r1', document: { codeHashes: ['aa'] } },
      ]);
      expect(await store.deleteReferenceValues('r1')).toBe(true);
      expect(await store.deleteReferenceValues('r1')).toBe(false);
    });

    it('audit: appends chain on the current head, in order, even when concurrent', async () => {
      const draft = (i: number): Omit<AuditRow, 'seq' | 'prevHash' | 'hash'> => ({
        at: 'now',
        actor: 'a',
        action: `x${i}`,
        subject: 's',
        data: { i },
      });
      await Promise.all([0, 1, 2, 3, 4].map((i) => store.appendAudit(draft(i), chain)));
      const rows = await store.listAudit(0, 100);
      expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
      for (let i = 1; i < rows.length; i++) expect(rows[i]?.prevHash).toBe(rows[i - 1]?.hash);
      expect((await store.auditHead())?.seq).toBe(5);
      expect(await store.listAudit(3, 1)).toHaveLength(1);
      await store.putCheckpoint({ seq: 5, hash: 'h', at: 'now', kid: 'k', signature: 's' });
      expect(await store.listCheckpoints()).toHaveLength(1);
    });

    it('useChallenge records a first use atomically; later and racing uses see the first', async () => {
      const row = { value: 'mac-1', terminalId: null, expiresAt: T0 + 30_000, createdAt: T0 };
      const [a, b] = await Promise.all([store.useChallenge(row, T0 + 1), store.useChallenge(row, T0 + 2)]);
      const used = [a, b].map((r) => r.usedAt);
      expect(used.filter((u) => u === null)).toHaveLength(1);
      expect(used.filter((u) => u !== null)).toHaveLength(1);
      expect(await store.useChallenge(row, T0 + 3)).toMatchObject({ value: 'mac-1', terminalId: null });
      expect((await store.useChallenge(row, T0 + 3)).usedAt).toBe(used.find((u) => u !== null));
      // The same record as consumeChallenge sees: used once.
      expect((await store.consumeChallenge('mac-1', T0 + 4))?.usedAt).not.toBeNull();
      // A stored, unused challenge (issued by an earlier version) is used once through either method.
      await store.createChallenge({
        value: 'stored-1',
        terminalId: null,
        expiresAt: T0 + 30_000,
        createdAt: T0,
      });
      const first = await store.useChallenge({ ...row, value: 'stored-1' }, T0 + 5);
      expect(first.usedAt).toBeNull();
      expect((await store.consumeChallenge('stored-1', T0 + 6))?.usedAt).toBe(T0 + 5);
    });

    it('recordAttestationOutcome: all writes in one transaction, or none when a condition fails', async () => {
      await store.createTerminal(terminal('t1', 'jkt1'));
      await store.createTerminal(terminal('t2', 'jkt2'));
      await store.appendAudit({ at: 'now', actor: 'a', action: 'first', subject: 's', data: {} }, chain);
      const outcome = (id: string, counter: number, terminalId = 't1') => ({
        terminalId,
        counter,
        at: T0 + counter,
        nextDueAt: T0 + 300_000 + counter,
        lastTier: 'affirming',
        attestation: {
          id,
          terminalId,
          at: T0 + counter,
          purpose: 'periodic',
          counter,
          tier: 'affirming',
          policyVersion: 'p',
          evidenceHash: 'h',
          verdict: { tier: 'affirming' },
        },
        audit: {
          at: 'now',
          actor: 'system',
          action: 'attestation.verdict',
          subject: terminalId,
          data: { id },
        },
        ticket: {
          jti: `j-${id}`,
          terminalId,
          use: 'session',
          kid: 'k',
          issuedAt: T0,
          expiresAt: T0 + 60_000,
        },
      });
      const ok = await store.recordAttestationOutcome(outcome('a1', 5), chain);
      expect(ok).toMatchObject({ ok: true, audit: { seq: 2, action: 'attestation.verdict', subject: 't1' } });
      expect(await store.getTerminal('t1')).toMatchObject({
        lastCounter: 5,
        lastAttestedAt: T0 + 5,
        nextDueAt: T0 + 300_005,
        lastTier: 'affirming',
      });
      expect((await store.listAttestations('t1', 10)).map((a) => a.id)).toEqual(['a1']);
      expect(await store.getTicket('j-a1')).toMatchObject({ terminalId: 't1', use: 'session' });
      expect((await store.auditHead())?.seq).toBe(2);
      // A counter at or below the stored one: nothing written.
      expect(await store.recordAttestationOutcome(outcome('a2', 5), chain)).toEqual({ ok: false });
      expect(await store.recordAttestationOutcome(outcome('a3', 4), chain)).toEqual({ ok: false });
      // A halted terminal, a stale one: nothing written.
      expect(await store.setTerminalState('t1', 'halted', 'why')).toBe(true);
      expect(await store.recordAttestationOutcome(outcome('a4', 6), chain)).toEqual({ ok: false });
      expect(await store.setTerminalState('t1', 'active', null)).toBe(true);
      expect(await store.markStale('t1', T0 + 10, T0 + 400_000)).toBe(true);
      expect(await store.recordAttestationOutcome(outcome('a5', 7), chain)).toEqual({ ok: false });
      expect(await store.getTerminal('t1')).toMatchObject({ lastCounter: 5, lastAttestedAt: T0 + 5 });
      expect((await store.listAttestations('t1', 10)).map((a) => a.id)).toEqual(['a1']);
      for (const jti of ['j-a2', 'j-a3', 'j-a4', 'j-a5']) expect(await store.getTicket(jti)).toBeUndefined();
      expect((await store.auditHead())?.seq).toBe(2);
      // A failing write (a ticket id already recorded) rolls the counter and the rows back.
      await expect(
        store.recordAttestationOutcome({ ...outcome('a6', 1, 't2'), ticket: outcome('a1', 1).ticket }, chain),
      ).rejects.toBeDefined();
      expect(await store.getTerminal('t2')).toMatchObject({ lastCounter: -1, lastAttestedAt: null });
      expect(await store.listAttestations('t2', 10)).toEqual([]);
      expect((await store.auditHead())?.seq).toBe(2);
      // Two racing outcomes with the same counter: exactly one wins; the audit chain stays linked.
      const raced = await Promise.all([
        store.recordAttestationOutcome(outcome('b1', 3, 't2'), chain),
        store.recordAttestationOutcome(outcome('b2', 3, 't2'), chain),
      ]);
      expect(raced.filter((r) => r.ok)).toHaveLength(1);
      const rows = await store.listAudit(0, 100);
      expect(rows.map((r) => r.seq)).toEqual([1, 2, 3]);
      for (let i = 1; i < rows.length; i++) expect(rows[i]?.prevHash).toBe(rows[i - 1]?.hash);
    });

    it('attestations and transactions are recorded and listed newest first', async () => {
      for (let i = 0; i < 3; i++) {
        await store.recordAttestation({
          id: `a${i}`,
          terminalId: 't1',
          at: T0 + i,
          purpose: 'periodic',
          counter: i,
          tier: 'affirming',
          policyVersion: 'p',
          evidenceHash: 'e',
          verdict: { i },
        });
        await store.recordTransaction({
          id: `x${i}`,
          terminalId: 't1',
          merchantId: 'mer_1',
          at: T0 + i,
          amount: 100,
          currency: 'EUR',
          approved: i % 2 === 0,
          code: null,
          authCode: null,
          cardToken: 'tok',
          ticketJti: 'j',
        });
      }
      expect((await store.listAttestations('t1', 2)).map((a) => a.id)).toEqual(['a2', 'a1']);
      expect(await store.countAttestations()).toBe(3);
      expect((await store.listTransactions('t1', 5)).map((x) => x.approved)).toEqual([true, false, true]);
    });

    it('velocity counters count within the window', async () => {
      expect(await store.velocityHit('k', T0, 60_000)).toBe(1);
      expect(await store.velocityHit('k', T0 + 1000, 60_000)).toBe(2);
      expect(await store.velocityHit('k', T0 + 61_500, 60_000)).toBe(1);
      expect(await store.velocityCount('k', T0 + 61_600, 60_000)).toBe(1);
      await store.velocityReset('k');
      expect(await store.velocityCount('k', T0 + 61_600, 60_000)).toBe(0);
      expect(await store.velocityDistinct('card', 't1', T0, 60_000)).toBe(1);
      expect(await store.velocityDistinct('card', 't1', T0 + 1, 60_000)).toBe(1);
      expect(await store.velocityDistinct('card', 't2', T0 + 2, 60_000)).toBe(2);
    });

    it('the velocity purge deletes the events of every key recorded before the cutoff and keeps the rest', async () => {
      // Keys of every user of the table, none of them hit again: the per-key pruning would keep them all.
      await store.velocityHit('auth:login:user:e1|n1', T0, 900_000);
      await store.velocityHit('auth:login:user:e1|n1', T0 + 10, 900_000);
      await store.velocityHit('auth:login:pair:203.0.113.9|none|n2', T0 + 20, 900_000);
      await store.velocityHit('terminal-rate:t1', T0 + 5, 60_000);
      await store.velocityHit('terminal-rate:t1', T0 + 100, 60_000);
      await store.velocityHit('auth:login:ok:203.0.113.9|n1', T0 + 50, 2_592_000_000);
      await store.velocityDistinct('card-terminals:ct_1', 't1', T0 + 1, 3_600_000);
      await store.velocityDistinct('card-terminals:ct_1', 't2', T0 + 200, 3_600_000);
      const all = (key: string): Promise<number> => store.velocityCount(key, T0 + 1000, 10_000);
      // Strictly before: the event at the cutoff itself (T0 + 50) stays.
      expect(await store.purgeVelocityEvents(T0 + 50)).toBe(5);
      expect(await all('auth:login:user:e1|n1')).toBe(0);
      expect(await all('auth:login:pair:203.0.113.9|none|n2')).toBe(0);
      expect(await all('terminal-rate:t1')).toBe(1);
      expect(await all('auth:login:ok:203.0.113.9|n1')).toBe(1);
      expect(await all('card-terminals:ct_1')).toBe(1);
      // The set lost t1 only: t2 and a new member count.
      expect(await store.velocityDistinct('card-terminals:ct_1', 't3', T0 + 300, 3_600_000)).toBe(2);
      expect(await store.purgeVelocityEvents(T0 + 50)).toBe(0);
      expect(await store.purgeVelocityEvents(T0 + 10_000)).toBe(4);
      expect(await all('terminal-rate:t1')).toBe(0);
      expect(await all('auth:login:ok:203.0.113.9|n1')).toBe(0);
    });

    it('the velocity purge works through a backlog in batches and counts every row once', async () => {
      for (let i = 0; i < 7; i++) await store.velocityHit(`auth:login:user:e|n${i % 3}`, T0 + i, 60_000);
      await store.velocityHit('auth:login:user:e|n0', T0 + 100, 60_000);
      await store.velocityHit('auth:login:ip:198.51.100.7', T0 + 100, 60_000);
      // Batches of 2: three full ones and a last one of 1.
      expect(await store.purgeVelocityEvents(T0 + 100, 2)).toBe(7);
      expect(await store.velocityCount('auth:login:user:e|n0', T0 + 100, 60_000)).toBe(1);
      expect(await store.velocityCount('auth:login:user:e|n1', T0 + 100, 60_000)).toBe(0);
      expect(await store.velocityCount('auth:login:ip:198.51.100.7', T0 + 100, 60_000)).toBe(1);
      // A batch exactly as large as what is left, then an empty one.
      expect(await store.purgeVelocityEvents(T0 + 101, 2)).toBe(2);
      expect(await store.purgeVelocityEvents(T0 + 101, 2)).toBe(0);
    });

    it('a velocity purge with a cutoff or batch size that is not an integer deletes nothing and rejects', async () => {
      await store.velocityHit('k', T0, 60_000);
      for (const [before, batch] of [
        [Number.NaN, 10],
        [Number.POSITIVE_INFINITY, 10],
        [T0 + 0.5, 10],
        [2 ** 60, 10],
        [T0 + 1, 0],
        [T0 + 1, 1.5],
        [T0 + 1, 1_000_000],
      ] as const) {
        await expect(store.purgeVelocityEvents(before, batch)).rejects.toMatchObject({
          name: 'StoreError',
          code: 'POS_ERR_STORE',
        });
      }
      expect(await store.velocityCount('k', T0, 60_000)).toBe(1);
    });

    it('proof jtis are remembered once until they expire', async () => {
      expect(await store.rememberProofJti('j', T0 + 1000, T0)).toBe(true);
      expect(await store.rememberProofJti('j', T0 + 1000, T0 + 10)).toBe(false);
      expect(await store.rememberProofJti('j', T0 + 5000, T0 + 2000)).toBe(true);
    });

    it('api tokens: find by hash, revoke', async () => {
      await store.createApiToken({
        id: 'tok1',
        tokenHash: 'th',
        label: 'l',
        role: 'admin',
        merchantId: null,
        createdBy: null,
        createdAt: T0,
        expiresAt: null,
        revokedAt: null,
      });
      expect(await store.findApiToken('th')).toMatchObject({ id: 'tok1', revokedAt: null });
      expect(await store.revokeApiToken('tok1', T0 + 1)).toBe(true);
      expect(await store.revokeApiToken('tok1', T0 + 2)).toBe(false);
      expect((await store.findApiToken('th'))?.revokedAt).toBe(T0 + 1);
      expect(await store.listApiTokens()).toHaveLength(1);
    });

    it('close makes ping false', async () => {
      await store.close();
      expect(await store.ping()).toBe(false);
    });
  });
}
