/**
 * The behaviour every VelocityStore must have, as a reusable suite: the in-memory store runs it here,
 * and a store-backed implementation (SQLite, PostgreSQL) can run it too:
 * `velocityStoreConformance('sqlite', () => adapterOver(store))`.
 */
import { describe, expect, it } from 'vitest';
import type { VelocityStore } from '../../src/acquirer/index';

export function velocityStoreConformance(
  name: string,
  make: () => VelocityStore | Promise<VelocityStore>,
): void {
  describe(`VelocityStore conformance: ${name}`, () => {
    it('hit counts events in (now - window, now], this one included', async () => {
      const s = await make();
      expect(await s.hit('c', 'k', 1000, 100)).toBe(1);
      expect(await s.hit('c', 'k', 1050, 100)).toBe(2);
      expect(await s.hit('c', 'k', 1100, 100)).toBe(2); // 1000 is no longer inside (1000, 1100]
      expect(await s.count('c', 'k', 1100, 100)).toBe(2);
      expect(await s.count('c', 'k', 1151, 100)).toBe(1);
      expect(await s.count('c', 'k', 1300, 100)).toBe(0);
    });
    it('count does not record', async () => {
      const s = await make();
      expect(await s.count('c', 'k', 1000, 100)).toBe(0);
      expect(await s.count('c', 'k', 1000, 100)).toBe(0);
      expect(await s.hit('c', 'k', 1000, 100)).toBe(1);
    });
    it('keys and counters are independent', async () => {
      const s = await make();
      await s.hit('c', 'a', 1000, 100);
      await s.hit('c', 'a', 1001, 100);
      await s.hit('d', 'a', 1001, 100);
      expect(await s.count('c', 'a', 1001, 100)).toBe(2);
      expect(await s.count('c', 'b', 1001, 100)).toBe(0);
      expect(await s.count('d', 'a', 1001, 100)).toBe(1);
    });
    it('reset forgets one key of one counter only', async () => {
      const s = await make();
      await s.hit('c', 'a', 1000, 100);
      await s.hit('c', 'b', 1000, 100);
      await s.reset('c', 'a');
      expect(await s.count('c', 'a', 1000, 100)).toBe(0);
      expect(await s.count('c', 'b', 1000, 100)).toBe(1);
      expect(await s.hit('c', 'a', 1001, 100)).toBe(1);
    });
    it('addDistinct counts distinct members seen in the window', async () => {
      const s = await make();
      expect(await s.addDistinct('d', 'card', 't1', 0, 100)).toBe(1);
      expect(await s.addDistinct('d', 'card', 't1', 10, 100)).toBe(1);
      expect(await s.addDistinct('d', 'card', 't2', 20, 100)).toBe(2);
      // t1 last seen at 10: outside (15, 115]; t2 (20) inside; t3 new.
      expect(await s.addDistinct('d', 'card', 't3', 115, 100)).toBe(2);
      expect(await s.addDistinct('d', 'other', 't1', 115, 100)).toBe(1);
    });
    it('a member seen again stays in the window from its last sighting', async () => {
      const s = await make();
      await s.addDistinct('d', 'card', 't1', 0, 100);
      await s.addDistinct('d', 'card', 't2', 50, 100);
      await s.addDistinct('d', 'card', 't1', 90, 100);
      expect(await s.addDistinct('d', 'card', 't1', 160, 100)).toBe(1); // t2 (50) expired, t1 refreshed
    });
  });
}
