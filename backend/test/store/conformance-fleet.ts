/**
 * FleetStore conformance (halts, the per-terminal outbox, push connections), written against the
 * Store interface only: every engine runs `runFleetConformance(engine, open)`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chainAuditEntry } from '../../src/audit/index';
import type { AuditAppend, DecommissionDone, HaltRow, Store, TerminalRow } from '../../src/store/types';

const T0 = 1_800_000_000_000;

function terminal(id: string, merchantId = 'mer_f'): TerminalRow {
  return {
    id,
    merchantId,
    deviceJwk: '{"kty":"EC"}',
    deviceJkt: `jkt-${id}`,
    readerSerial: `R-${id}`,
    lastCounter: -1,
    state: 'active',
    stateReason: null,
    intervalS: 300,
    createdAt: T0,
    lastAttestedAt: null,
  };
}

function halt(id: string, at = T0, extra: Partial<HaltRow> = {}): HaltRow {
  return {
    id,
    scope: 'fleet',
    target: null,
    reason: `reason ${id}`,
    createdBy: 'operator:op1',
    createdAt: at,
    liftedAt: null,
    liftedBy: null,
    ...extra,
  };
}

export function runFleetConformance(engine: string, open: () => Promise<Store> | Store): void {
  describe(`FleetStore conformance: ${engine}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await open();
      await store.createMerchant({ id: 'mer_f', name: 'Fleet shop', createdAt: T0 });
      for (const id of ['t1', 't2', 't3']) await store.createTerminal(terminal(id));
    });
    afterEach(async () => {
      await store.close();
    });

    it('createHalt stores the halt, halts the terminals and writes one outbox row each, seq from 1', async () => {
      await store.setTerminalState('t3', 'resume-pending', 'resumed', T0 - 5);
      const rows = await store.createHalt(halt('h1', T0), ['t1', 't3']);
      expect(rows.map((r) => [r.terminalId, r.seq, r.kind, r.haltId])).toEqual([
        ['t1', 1, 'halt', 'h1'],
        ['t3', 1, 'halt', 'h1'],
      ]);
      expect(rows.every((r) => r.sentAt === null && r.ackedAt === null && r.createdAt === T0)).toBe(true);
      expect(await store.getHalt('h1')).toEqual(halt('h1', T0));
      expect(await store.getHalt('nope')).toBeUndefined();
      for (const id of ['t1', 't3']) {
        expect(await store.getTerminal(id)).toMatchObject({
          state: 'halted',
          stateReason: 'reason h1',
          stateChangedAt: T0,
        });
      }
      expect((await store.getTerminal('t2'))?.state).toBe('active');
    });

    it('a terminal already halted keeps its reason but still gets the message', async () => {
      await store.setTerminalState('t1', 'halted', 'first', T0 - 10);
      const rows = await store.createHalt(halt('h1', T0), ['t1']);
      expect(rows).toHaveLength(1);
      expect(await store.getTerminal('t1')).toMatchObject({ state: 'halted', stateReason: 'first' });
    });

    it('outbox seq per terminal increases strictly from 1 across halts and resume notices', async () => {
      await store.createHalt(halt('h1', T0), ['t1', 't2']);
      await store.createHalt(halt('h2', T0 + 1), ['t1']);
      const resumes = await store.appendOutbox(['t1', 't2'], {
        kind: 'resume',
        haltId: 'h1',
        reason: 'lifted',
        createdAt: T0 + 2,
      });
      expect(resumes.map((r) => [r.terminalId, r.seq, r.kind])).toEqual([
        ['t1', 3, 'resume'],
        ['t2', 2, 'resume'],
      ]);
      const pending = await store.pendingOutbox('t1');
      expect(pending.map((r) => r.seq)).toEqual([1, 2, 3]);
      expect(pending.map((r) => r.haltId)).toEqual(['h1', 'h2', 'h1']);
      expect(await store.pendingOutbox('t3')).toEqual([]);
    });

    it('concurrent appends never reuse a seq', async () => {
      const msg = (i: number) => ({
        kind: 'resume' as const,
        haltId: `h${i}`,
        reason: 'r',
        createdAt: T0 + i,
      });
      await Promise.all(Array.from({ length: 10 }, (_, i) => store.appendOutbox(['t1'], msg(i))));
      const seqs = (await store.pendingOutbox('t1')).map((r) => r.seq);
      expect(seqs).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    });

    it('createHalt is atomic: a duplicate halt id writes nothing', async () => {
      await store.createHalt(halt('h1', T0), ['t1']);
      await expect(store.createHalt(halt('h1', T0 + 1), ['t2'])).rejects.toBeDefined();
      expect((await store.getTerminal('t2'))?.state).toBe('active');
      expect(await store.pendingOutbox('t2')).toEqual([]);
      expect(await store.listHaltDeliveries('h1')).toHaveLength(1);
    });

    it('sent is set once; ack acknowledges once; acknowledged rows leave the pending list', async () => {
      await store.createHalt(halt('h1', T0), ['t1', 't2']);
      await store.markOutboxSent('t1', 1, T0 + 5);
      await store.markOutboxSent('t1', 1, T0 + 9);
      const first = await store.ackOutbox('t1', 1, T0 + 7);
      expect(first).toMatchObject({
        terminalId: 't1',
        seq: 1,
        haltId: 'h1',
        sentAt: T0 + 5,
        ackedAt: T0 + 7,
      });
      expect(await store.ackOutbox('t1', 1, T0 + 8)).toBeUndefined();
      expect(await store.ackOutbox('t1', 99, T0 + 8)).toBeUndefined();
      expect(await store.ackOutbox('t3', 1, T0 + 8)).toBeUndefined();
      expect(await store.pendingOutbox('t1')).toEqual([]);
      const deliveries = await store.listHaltDeliveries('h1');
      expect(deliveries.map((d) => [d.terminalId, d.seq, d.sentAt, d.ackedAt])).toEqual([
        ['t1', 1, T0 + 5, T0 + 7],
        ['t2', 1, null, null],
      ]);
      expect(await store.listHaltDeliveries('nope')).toEqual([]);
    });

    it('pending messages survive a reconnect (they are in the store, not the connection)', async () => {
      await store.createHalt(halt('h1', T0), ['t1']);
      await store.markOutboxSent('t1', 1, T0 + 1);
      expect(await store.claimPushConnection(conn('t1', 'c1', T0 + 1), T0)).toEqual({ ok: true });
      await store.releasePushConnection('t1', 'c1');
      expect(await store.claimPushConnection(conn('t1', 'c2', T0 + 2), T0)).toEqual({ ok: true });
      expect((await store.pendingOutbox('t1')).map((r) => [r.seq, r.sentAt])).toEqual([[1, T0 + 1]]);
    });

    it('listHalts: newest first, active only, limit; liftHalt is compare-and-set', async () => {
      await store.createHalt(halt('h1', T0), []);
      await store.createHalt(halt('h2', T0 + 1, { scope: 'merchant', target: 'mer_f' }), []);
      await store.createHalt(halt('h3', T0 + 2, { scope: 'terminal', target: 't1' }), []);
      expect((await store.listHalts({ activeOnly: false, limit: 10 })).map((h) => h.id)).toEqual([
        'h3',
        'h2',
        'h1',
      ]);
      expect((await store.listHalts({ activeOnly: false, limit: 2 })).map((h) => h.id)).toEqual(['h3', 'h2']);
      expect(await store.liftHalt('h2', 'operator:op2', T0 + 10)).toBe(true);
      expect(await store.liftHalt('h2', 'operator:op3', T0 + 11)).toBe(false);
      expect(await store.liftHalt('nope', 'operator:op3', T0 + 11)).toBe(false);
      expect(await store.getHalt('h2')).toMatchObject({
        scope: 'merchant',
        target: 'mer_f',
        liftedAt: T0 + 10,
        liftedBy: 'operator:op2',
      });
      expect((await store.listHalts({ activeOnly: true, limit: 10 })).map((h) => h.id)).toEqual(['h3', 'h1']);
    });

    const resumeMsg = (at: number) => ({
      by: 'operator:op2',
      at,
      reason: 'false alarm',
      stateReason: 'resumed: awaiting an affirming attestation',
    });

    it('liftHaltAndResume: lifts, resumes only terminals no other active halt has a halt row for', async () => {
      await store.createHalt(halt('h1', T0, { scope: 'merchant', target: 'mer_f' }), ['t1', 't2']);
      await store.createHalt(halt('h2', T0 + 1, { scope: 'terminal', target: 't2' }), ['t2']);
      const out = await store.liftHaltAndResume('h1', resumeMsg(T0 + 2));
      expect(out).toMatchObject({ ok: true, lifted: ['h1'], resumed: ['t1'], stillHalted: ['t2'] });
      if (!out.ok) return;
      expect(out.rows.map((r) => [r.terminalId, r.seq, r.kind, r.haltId, r.reason])).toEqual([
        ['t1', 2, 'resume', 'h1', 'false alarm'],
      ]);
      expect(await store.getTerminal('t1')).toMatchObject({
        state: 'resume-pending',
        stateChangedAt: T0 + 2,
      });
      expect((await store.getTerminal('t2'))?.state).toBe('halted');
      expect((await store.getHalt('h1'))?.liftedBy).toBe('operator:op2');
      expect(await store.liftHaltAndResume('h1', resumeMsg(T0 + 3))).toEqual({
        ok: false,
        code: 'halt-lifted',
      });
      expect(await store.liftHaltAndResume('nope', resumeMsg(T0 + 3))).toEqual({
        ok: false,
        code: 'halt-unknown',
      });
      // the other halt lifted: t2 resumes now
      expect(await store.liftHaltAndResume('h2', resumeMsg(T0 + 4))).toMatchObject({
        ok: true,
        resumed: ['t2'],
        stillHalted: [],
      });
    });

    it('resumeTerminalAndLift: refuses under another halt, lifts own terminal halts, one resume row', async () => {
      await store.createHalt(halt('h1', T0, { scope: 'terminal', target: 't1' }), ['t1']);
      await store.createHalt(halt('h2', T0 + 1, { scope: 'terminal', target: 't1' }), ['t1']);
      await store.createHalt(halt('h3', T0 + 2, { scope: 'merchant', target: 'mer_f' }), ['t1']);
      expect(await store.resumeTerminalAndLift('t1', resumeMsg(T0 + 3))).toEqual({
        ok: false,
        code: 'still-covered',
      });
      // nothing was lifted by the refusal
      expect((await store.getHalt('h1'))?.liftedAt).toBeNull();
      expect(await store.liftHaltAndResume('h3', resumeMsg(T0 + 4))).toMatchObject({ ok: true, resumed: [] });
      const out = await store.resumeTerminalAndLift('t1', resumeMsg(T0 + 5));
      expect(out).toMatchObject({ ok: true, lifted: ['h2', 'h1'], resumed: ['t1'] });
      if (!out.ok) return;
      expect(out.rows.map((r) => [r.seq, r.kind, r.haltId])).toEqual([[4, 'resume', 'h2']]);
      expect((await store.getTerminal('t1'))?.state).toBe('resume-pending');
      expect(await store.resumeTerminalAndLift('t1', resumeMsg(T0 + 6))).toEqual({
        ok: false,
        code: 'not-halted',
      });
      expect(await store.resumeTerminalAndLift('t9', resumeMsg(T0 + 6))).toEqual({
        ok: false,
        code: 'terminal-unknown',
      });
    });

    it("activeHaltsCovering: by scope and version, active only, with the terminal's halt row", async () => {
      await store.createMerchant({ id: 'mer_g', name: 'Other', createdAt: T0 });
      await store.createHalt(halt('hf', T0), []);
      await store.createHalt(halt('hm', T0 + 1, { scope: 'merchant', target: 'mer_f' }), ['t1']);
      await store.createHalt(halt('hmg', T0 + 2, { scope: 'merchant', target: 'mer_g' }), []);
      await store.createHalt(halt('hv', T0 + 3, { scope: 'app-version', target: '9.9.9' }), []);
      await store.createHalt(halt('ht', T0 + 4, { scope: 'terminal', target: 't2' }), ['t2']);
      const of = async (id: string, versions: string[]) =>
        (await store.activeHaltsCovering({ id, merchantId: 'mer_f', appVersions: versions })).map((c) => [
          c.halt.id,
          c.delivered,
        ]);
      expect(await of('t1', [])).toEqual([
        ['hm', true],
        ['hf', false],
      ]);
      expect(await of('t1', ['1.0.0', '9.9.9'])).toEqual([
        ['hv', false],
        ['hm', true],
        ['hf', false],
      ]);
      expect(await of('t2', [])).toEqual([
        ['ht', true],
        ['hm', false],
        ['hf', false],
      ]);
      await store.liftHalt('hf', 'x', T0 + 5);
      await store.liftHalt('hm', 'x', T0 + 5);
      expect(await of('t1', ['1.0.0'])).toEqual([]);
    });

    it('claim: a live connection blocks a second one; a dead one is replaced; touch and release', async () => {
      expect(await store.claimPushConnection(conn('t1', 'c1', T0), T0 - 100)).toEqual({ ok: true });
      const second = await store.claimPushConnection(conn('t1', 'c2', T0 + 10, 'i2'), T0 - 100);
      expect(second).toEqual({ ok: false, existing: conn('t1', 'c1', T0) });
      // Another terminal is independent.
      expect(await store.claimPushConnection(conn('t2', 'c3', T0), T0 - 100)).toEqual({ ok: true });
      // Touch keeps c1 alive past a later cut-off; touching with the wrong connection id does nothing.
      await store.touchPushConnection('t1', 'c1', T0 + 50);
      await store.touchPushConnection('t1', 'c2', T0 + 500);
      const blocked = await store.claimPushConnection(conn('t1', 'c2', T0 + 60), T0 + 40);
      expect(blocked).toMatchObject({ ok: false, existing: { connectionId: 'c1', seenAt: T0 + 50 } });
      // Past the cut-off c1 is dead: the claim replaces it.
      expect(await store.claimPushConnection(conn('t1', 'c2', T0 + 200, 'i2'), T0 + 100)).toEqual({
        ok: true,
      });
      // Releasing a connection that no longer holds the row leaves the holder in place.
      await store.releasePushConnection('t1', 'c1');
      expect(await store.claimPushConnection(conn('t1', 'c4', T0 + 201), T0 + 100)).toMatchObject({
        ok: false,
        existing: { connectionId: 'c2', instanceId: 'i2' },
      });
      await store.releasePushConnection('t1', 'c2');
      expect(await store.claimPushConnection(conn('t1', 'c4', T0 + 202), T0 + 100)).toEqual({ ok: true });
    });

    describe('decommissionTerminalAudited', () => {
      const audit: AuditAppend<DecommissionDone> = {
        drafts: (done) => [
          {
            at: new Date(T0).toISOString(),
            actor: 'operator:op1',
            action: 'terminal.decommission',
            subject: 't1',
            data: { previousState: done.previous },
          },
        ],
        chain: (prev, draft) => chainAuditEntry(prev, draft),
      };
      const request = (terminalId: string, noticeId = 'dcm_1') => ({
        terminalId,
        at: T0 + 10,
        reason: 'stolen PC',
        noticeId,
        noticeReason: 'decommissioned: stolen PC',
      });

      it('retires the terminal for good, clears its liveness, writes one notice row and the entry', async () => {
        await store.setNextDue('t1', T0 + 100);
        expect(await store.markStale('t1', T0 + 200, T0 + 300)).toBe(true);
        await store.createHalt(halt('h0', T0), ['t1']);
        const out = await store.decommissionTerminalAudited(request('t1'), audit);
        if (!out.ok) throw new Error(out.code);
        expect(out.previous).toBe('halted');
        expect(out.rows.map((r) => [r.terminalId, r.seq, r.kind, r.haltId, r.reason, r.createdAt])).toEqual([
          ['t1', 2, 'halt', 'dcm_1', 'decommissioned: stolen PC', T0 + 10],
        ]);
        expect(out.audit.map((e) => [e.seq, e.action, e.data])).toEqual([
          [1, 'terminal.decommission', { previousState: 'halted' }],
        ]);
        expect(await store.listAudit(0, 10)).toEqual(out.audit);
        const t = await store.getTerminal('t1');
        expect(t).toMatchObject({
          state: 'decommissioned',
          stateReason: 'stolen PC',
          stateChangedAt: T0 + 10,
          nextDueAt: null,
          staleAt: null,
        });
        expect((await store.listOverdue(T0 + 10_000, 10)).map((r) => r.id)).not.toContain('t1');
        expect(await store.listHaltDeliveries('dcm_1')).toEqual(out.rows);
      });

      it('refuses an unknown or already decommissioned terminal and writes nothing', async () => {
        expect(await store.decommissionTerminalAudited(request('nope'), audit)).toEqual({
          ok: false,
          code: 'terminal-unknown',
        });
        expect((await store.decommissionTerminalAudited(request('t1'), audit)).ok).toBe(true);
        expect(await store.decommissionTerminalAudited(request('t1', 'dcm_2'), audit)).toEqual({
          ok: false,
          code: 'decommissioned',
        });
        expect(await store.listHaltDeliveries('dcm_2')).toEqual([]);
        expect(await store.listAudit(0, 10)).toHaveLength(1);
      });

      it('is final: no halt, lift or resume changes the state; queries can leave it out', async () => {
        await store.createHalt(halt('h1', T0, { scope: 'terminal', target: 't1' }), ['t1']);
        expect((await store.decommissionTerminalAudited(request('t1'), audit)).ok).toBe(true);
        // A fleet halt made later does not halt it.
        await store.createHalt(halt('h2', T0 + 20), ['t1', 't2']);
        expect((await store.getTerminal('t1'))?.state).toBe('decommissioned');
        expect((await store.getTerminal('t2'))?.state).toBe('halted');
        // Lifting the halt that covered it resumes nobody decommissioned.
        const lifted = await store.liftHaltAndResume('h1', {
          by: 'operator:op1',
          at: T0 + 30,
          reason: 'lifted',
          stateReason: 'resumed',
        });
        expect(lifted).toMatchObject({ ok: true, resumed: [], stillHalted: [] });
        expect(
          await store.resumeTerminalAndLift('t1', {
            by: 'operator:op1',
            at: T0 + 40,
            reason: 'r',
            stateReason: 'resumed',
          }),
        ).toEqual({ ok: false, code: 'not-halted' });
        expect((await store.getTerminal('t1'))?.state).toBe('decommissioned');
        expect(await store.listTerminalIds({ notState: 'decommissioned' })).toEqual(['t2', 't3']);
        expect(await store.countTerminalsWhere({ notState: 'decommissioned' })).toBe(2);
        expect((await store.listTerminals({ state: 'decommissioned', limit: 10 })).map((t) => t.id)).toEqual([
          't1',
        ]);
        expect(
          (await store.listTerminals({ readerSerial: 'R-t1', notState: 'decommissioned', limit: 10 })).length,
        ).toBe(0);
      });
    });

    it('two racing claims: exactly one wins', async () => {
      const results = await Promise.all([
        store.claimPushConnection(conn('t1', 'a', T0), T0 - 100),
        store.claimPushConnection(conn('t1', 'b', T0), T0 - 100),
      ]);
      expect(results.filter((r) => r.ok)).toHaveLength(1);
    });
  });
}

function conn(terminalId: string, connectionId: string, at: number, instanceId = 'i1') {
  return { terminalId, connectionId, instanceId, connectedAt: at, seenAt: at };
}
