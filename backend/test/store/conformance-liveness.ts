/**
 * LivenessStore conformance: next-due deadlines, the stale mark (compare-and-set), the app version and
 * the fleet queries. Written against the Store interface only, so every engine runs the same checks.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store, TerminalRow } from '../../src/store/types';

const T0 = 1_800_000_000_000;

function terminal(id: string, merchantId: string, readerSerial: string): TerminalRow {
  return {
    id,
    merchantId,
    deviceJwk: '{"kty":"EC"}',
    deviceJkt: `jkt-${id}`,
    readerSerial,
    lastCounter: -1,
    state: 'active',
    stateReason: null,
    intervalS: 300,
    createdAt: T0,
    lastAttestedAt: null,
  };
}

export function runLivenessConformance(engine: string, open: () => Promise<Store> | Store): void {
  describe(`LivenessStore conformance: ${engine}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await open();
      await store.createMerchant({ id: 'mer_a', name: 'A', createdAt: T0 });
      await store.createMerchant({ id: 'mer_b', name: 'B', createdAt: T0 });
      await store.createTerminal(terminal('t1', 'mer_a', 'R1'));
      await store.createTerminal(terminal('t2', 'mer_a', 'R2'));
      await store.createTerminal(terminal('t3', 'mer_b', 'R1'));
      await store.createTerminal(terminal('t4', 'mer_b', 'R4'));
    });
    afterEach(async () => {
      await store.close();
    });

    it('a new terminal has no deadline, no stale mark and no app version', async () => {
      expect(await store.getTerminal('t1')).toMatchObject({
        nextDueAt: null,
        staleAt: null,
        appVersion: null,
      });
      expect(await store.listOverdue(T0 + 10 ** 9, 10)).toEqual([]);
      expect(await store.countStale()).toBe(0);
    });

    it('setNextDue records the deadline; listOverdue lists the unstale ones past it, oldest first', async () => {
      await store.setNextDue('t1', T0 + 300);
      await store.setNextDue('t2', T0 + 100);
      await store.setNextDue('t3', T0 + 200);
      expect((await store.getTerminal('t1'))?.nextDueAt).toBe(T0 + 300);
      expect((await store.listOverdue(T0 + 250, 10)).map((t) => t.id)).toEqual(['t2', 't3']);
      expect((await store.listOverdue(T0 + 1000, 2)).map((t) => t.id)).toEqual(['t2', 't3']);
      // Strictly before: a deadline equal to `before` is not overdue.
      expect((await store.listOverdue(T0 + 100, 10)).map((t) => t.id)).toEqual([]);
    });

    it('markStale is a compare-and-set: once, only when still overdue; setNextDue clears it', async () => {
      await store.setNextDue('t1', T0 + 100);
      expect(await store.markStale('t1', T0 + 500, T0 + 50)).toBe(false); // not overdue at that cut-off
      const [a, b] = await Promise.all([
        store.markStale('t1', T0 + 500, T0 + 400),
        store.markStale('t1', T0 + 501, T0 + 400),
      ]);
      expect([a, b].filter(Boolean)).toHaveLength(1);
      expect((await store.getTerminal('t1'))?.staleAt).toBe(a ? T0 + 500 : T0 + 501);
      expect(await store.markStale('t1', T0 + 600, T0 + 400)).toBe(false);
      expect(await store.countStale()).toBe(1);
      expect((await store.listOverdue(T0 + 10_000, 10)).map((t) => t.id)).toEqual([]);
      expect(await store.markStale('unknown', T0, T0 + 10_000)).toBe(false);
      // A terminal with no deadline is never stale.
      expect(await store.markStale('t2', T0, T0 + 10_000)).toBe(false);

      // onlyIfLive: no write on a stale terminal.
      expect(await store.setNextDue('t1', T0 + 1500, { onlyIfLive: true })).toBe(false);
      expect(await store.getTerminal('t1')).toMatchObject({
        nextDueAt: T0 + 100,
        staleAt: T0 + (a ? 500 : 501),
      });
      expect(await store.setNextDue('t1', T0 + 2000)).toBe(true);
      expect(await store.getTerminal('t1')).toMatchObject({ nextDueAt: T0 + 2000, staleAt: null });
      expect(await store.setNextDue('t1', T0 + 2500, { onlyIfLive: true })).toBe(true);
      expect((await store.getTerminal('t1'))?.nextDueAt).toBe(T0 + 2500);
      expect(await store.setNextDue('unknown', T0)).toBe(false);
      expect(await store.countStale()).toBe(0);
    });

    it('setTerminalAppVersion records the version; queries filter by it', async () => {
      await store.setTerminalAppVersion('t1', '1.2.3');
      await store.setTerminalAppVersion('t3', '1.2.3');
      await store.setTerminalAppVersion('t4', '2.0.0');
      expect((await store.getTerminal('t1'))?.appVersion).toBe('1.2.3');
      expect(await store.listTerminalIds({ appVersion: '1.2.3' })).toEqual(['t1', 't3']);
      await store.setTerminalAppVersion('t3', '2.0.0');
      expect(await store.listTerminalIds({ appVersion: '2.0.0' })).toEqual(['t3', 't4']);
    });

    it('listTerminals filters by merchant, state, reader serial and stale, and pages by id', async () => {
      expect((await store.listTerminals({ limit: 10 })).map((t) => t.id)).toEqual(['t1', 't2', 't3', 't4']);
      expect((await store.listTerminals({ merchantId: 'mer_b', limit: 10 })).map((t) => t.id)).toEqual([
        't3',
        't4',
      ]);
      expect((await store.listTerminals({ readerSerial: 'R1', limit: 10 })).map((t) => t.id)).toEqual([
        't1',
        't3',
      ]);
      await store.setTerminalState('t2', 'halted', 'why', T0);
      expect((await store.listTerminals({ state: 'halted', limit: 10 })).map((t) => t.id)).toEqual(['t2']);
      expect(
        (await store.listTerminals({ state: 'active', merchantId: 'mer_a', limit: 10 })).map((t) => t.id),
      ).toEqual(['t1']);
      await store.setNextDue('t4', T0);
      expect(await store.markStale('t4', T0 + 1, T0 + 1)).toBe(true);
      expect((await store.listTerminals({ stale: true, limit: 10 })).map((t) => t.id)).toEqual(['t4']);
      expect((await store.listTerminals({ stale: false, limit: 10 })).map((t) => t.id)).toEqual([
        't1',
        't2',
        't3',
      ]);
      const page1 = await store.listTerminals({ limit: 3 });
      expect(page1.map((t) => t.id)).toEqual(['t1', 't2', 't3']);
      const page2 = await store.listTerminals({ limit: 3, afterId: page1[2]?.id ?? '' });
      expect(page2.map((t) => t.id)).toEqual(['t4']);
      expect(await store.listTerminals({ limit: 0 })).toEqual([]);
      // A value is data, never SQL.
      expect(await store.listTerminals({ merchantId: "mer_a' OR '1'='1", limit: 10 })).toEqual([]);
    });

    it('listTerminalIds and countTerminalsWhere cover every match', async () => {
      expect(await store.listTerminalIds({})).toEqual(['t1', 't2', 't3', 't4']);
      expect(await store.listTerminalIds({ merchantId: 'mer_a' })).toEqual(['t1', 't2']);
      expect(await store.listTerminalIds({ merchantId: 'nobody' })).toEqual([]);
      expect(await store.countTerminalsWhere({})).toBe(4);
      expect(await store.countTerminalsWhere({ merchantId: 'mer_b' })).toBe(2);
      await store.setTerminalState('t3', 'halted', 'why', T0);
      expect(await store.countTerminalsWhere({ merchantId: 'mer_b', state: 'halted' })).toBe(1);
      expect(await store.countTerminalsWhere({ stale: true })).toBe(0);
      await store.setTerminalLastTier('t1', 'warning');
      await store.setTerminalLastTier('t2', 'affirming');
      await store.setTerminalLastTier('t3', 'warning');
      expect((await store.getTerminal('t1'))?.lastTier).toBe('warning');
      expect((await store.getTerminal('t4'))?.lastTier).toBeNull();
      expect(await store.countTerminalsWhere({ lastTier: 'warning' })).toBe(2);
      expect(await store.countTerminalsWhere({ lastTier: 'warning', state: 'active' })).toBe(1);
      expect((await store.listTerminals({ lastTier: 'affirming', limit: 10 })).map((t) => t.id)).toEqual([
        't2',
      ]);
    });
  });
}
