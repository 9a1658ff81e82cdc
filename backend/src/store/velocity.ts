/**
 * The acquirer host's VelocityStore on the service's Store: counters live in the store, so they
 * survive restarts and (with PostgreSQL) are shared between processes.
 *
 * And the store's velocity purge: the per-key calls prune a key only when it is hit again, so the
 * keys never hit again (mistyped or random usernames, an old password's or login epoch's throttle
 * keys, a card or terminal not seen since) would stay forever. The periodic purge deletes every event
 * older than the longest window any reader of the table uses, plus a margin.
 */
import type { VelocityStore } from '../server/domain';
import type { AuthConfig } from '../server/auth/config';
import { MAX_VELOCITY_WINDOW_MS, velocityRuleWindowsMs, type VelocityRules } from '../acquirer/velocity';
import type { BackendErrorCode } from '../errors';
import { faultOf, type StoreFault } from './faults';
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

/**
 * The login throttle's windows (seconds, `AuthConfig`) over velocity events: `loginWindowS` (per
 * address, `auth:login:ip:`), `lockoutS` (per username and address, per account: `auth:login:pair:`,
 * `auth:login:user:`, and `loginLockoutStart` behind the users API's lockedUntil), `knownAddressS`
 * (known addresses, `auth:login:ok:`; 30 days by default). Any other `...S` setting of AuthConfig is
 * not a window over velocity events (a unit test makes a new one choose).
 */
export const AUTH_VELOCITY_WINDOWS = [
  'loginWindowS',
  'lockoutS',
  'knownAddressS',
] as const satisfies readonly (keyof AuthConfig)[];

/**
 * Kept beyond the longest window: clock skew between processes sharing a store, and a window being
 * read while the purge runs, never see an event they still count vanish. A day costs about 3% more
 * rows with the 30-day known-address window.
 */
export const VELOCITY_RETENTION_MARGIN_MS = 24 * 3600 * 1000;

/** Where the windows of the running service come from. */
export interface VelocityWindowSources {
  /** The login throttle's settings (`ServiceConfig.auth`). */
  readonly auth: AuthConfig;
  /**
   * The acquirer host's velocity rules. Undefined when the service was given an acquirer whose rules
   * it cannot see: then the longest window a rule may have (`MAX_VELOCITY_WINDOW_MS`, 30 days).
   */
  readonly rules: VelocityRules | undefined;
}

/** Every window (ms) over the velocity events, of every user of the table. */
export function velocityWindowsMs(sources: VelocityWindowSources): number[] {
  return [
    ...AUTH_VELOCITY_WINDOWS.map((name) => sources.auth[name] * 1000),
    ...(sources.rules === undefined ? [MAX_VELOCITY_WINDOW_MS] : velocityRuleWindowsMs(sources.rules)),
  ];
}

/**
 * The purge's cutoff at `now`: `now - max(windows) - VELOCITY_RETENTION_MARGIN_MS`, an integer.
 * Every event it lets go is outside every window (an event counts while `at > now - windowMs`).
 * Undefined (purge nothing) when `now` or a window is not a finite number, or a window is negative.
 */
export function velocityPurgeCutoff(now: number, sources: VelocityWindowSources): number | undefined {
  const windows = velocityWindowsMs(sources);
  if (!Number.isFinite(now) || !windows.every((w) => Number.isFinite(w) && w >= 0)) return undefined;
  const before = Math.floor(now - Math.max(...windows) - VELOCITY_RETENTION_MARGIN_MS);
  return Number.isSafeInteger(before) ? before : undefined;
}

/** The log the purge writes to (a pino or Fastify logger). */
export interface PurgeLog {
  debug(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

const FAULT_CODES: Readonly<Record<StoreFault, BackendErrorCode>> = {
  unavailable: 'POS_ERR_UNAVAILABLE',
  full: 'POS_ERR_STORE_FULL',
  'read-only': 'POS_ERR_STORE_READ_ONLY',
};

const running = new WeakSet<Store>();

/**
 * One run of the periodic velocity purge (the service runs it once a minute, with the sessions
 * purge). Never rejects: a failure is one warning with a code (and the store fault, if any), never
 * the error itself, whose text could quote a key (keys hold card tokens and username digests); the
 * next run tries again. A run still going when the next is due is not doubled (that one does
 * nothing). Resolves the number of events deleted, or undefined when none was attempted or it failed.
 */
export async function purgeExpiredVelocityEvents(
  store: Store,
  now: number,
  sources: VelocityWindowSources,
  log: PurgeLog,
): Promise<number | undefined> {
  const before = velocityPurgeCutoff(now, sources);
  if (before === undefined) {
    log.warn(
      { code: 'POS_ERR_INTERNAL', task: 'velocity-purge' },
      'velocity purge skipped: a window of the running configuration is not a finite, non-negative number',
    );
    return undefined;
  }
  if (running.has(store)) return undefined;
  running.add(store);
  try {
    const purged = await store.purgeVelocityEvents(before);
    if (purged > 0) log.debug({ task: 'velocity-purge', purged }, 'velocity events purged');
    return purged;
  } catch (e) {
    const fault = faultOf(e);
    const code: BackendErrorCode = fault === undefined ? 'POS_ERR_STORE' : FAULT_CODES[fault];
    log.warn(
      { code, ...(fault === undefined ? {} : { fault }), task: 'velocity-purge' },
      'velocity purge failed; the next run tries again',
    );
    return undefined;
  } finally {
    running.delete(store);
  }
}
