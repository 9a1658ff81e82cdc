/**
 * The acquirer host's VelocityStore on the service's Store: counters live in the store, so they
 * survive restarts and (with PostgreSQL) are shared between processes.
 */
import type { VelocityStore } from '../server/domain';
import type { Store } from './types';

export function storeVelocity(store: Store): VelocityStore {
  const k = (counter: string, key: string): string => `${counter}:${key}`;
  return {
    hit: (counter, key, now, windowMs) => store.velocityHit(k(counter, key), now, windowMs),
    count: (counter, key, now, windowMs) => store.velocityCount(k(counter, key), now, windowMs),
    reset: (counter, key) => store.velocityReset(k(counter, key)),
    addDistinct: (counter, key, member, now, windowMs) =>
      store.velocityDistinct(k(counter, key), member, now, windowMs),
  };
}
