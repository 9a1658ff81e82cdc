/**
 * The velocity purge's cutoff (the longest window of the running configuration, plus a margin) and
 * its periodic run (never rejects, logs a code and never a key, never doubled).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_VELOCITY_RULES,
  MAX_VELOCITY_WINDOW_MS,
  type VelocityRules,
} from '../../src/acquirer/velocity';
import { DEFAULT_AUTH_CONFIG, type AuthConfig } from '../../src/server/auth/config';
import { throttleKeysUnder } from '../../src/server/auth/throttle';
import { openSqliteStore } from '../../src/store/sqlite';
import type { Store } from '../../src/store/types';
import {
  AUTH_VELOCITY_WINDOWS,
  purgeExpiredVelocityEvents,
  velocityPurgeCutoff,
  velocityWindowsMs,
  VELOCITY_RETENTION_MARGIN_MS,
  type PurgeLog,
} from '../../src/store/velocity';
import { makeHarness } from '../helpers';

const NOW = 1_800_000_000_000;
const DAY = 24 * 3600 * 1000;
const defaults = { auth: DEFAULT_AUTH_CONFIG, rules: DEFAULT_VELOCITY_RULES };
/** Login throttle keys under some key (which one does not matter to the purge). */
const throttle = throttleKeysUnder(new Uint8Array(32).fill(7));

describe('velocityPurgeCutoff', () => {
  it('with the defaults keeps 30 days (known addresses) and the margin', () => {
    expect(DEFAULT_AUTH_CONFIG.knownAddressS).toBe(30 * 24 * 3600);
    expect(velocityPurgeCutoff(NOW, defaults)).toBe(NOW - 30 * DAY - VELOCITY_RETENTION_MARGIN_MS);
  });

  it('takes the longest window of the running configuration, whichever it is', () => {
    const shortAuth: AuthConfig = {
      ...DEFAULT_AUTH_CONFIG,
      knownAddressS: 3600,
      lockoutS: 600,
      loginWindowS: 60,
    };
    // An acquirer rule's window.
    expect(velocityPurgeCutoff(NOW, { auth: shortAuth, rules: DEFAULT_VELOCITY_RULES })).toBe(
      NOW - DEFAULT_VELOCITY_RULES.wrongPin.windowMs - VELOCITY_RETENTION_MARGIN_MS,
    );
    // The lock-out window.
    const longLockout = { ...shortAuth, lockoutS: 2 * 24 * 3600 };
    expect(velocityPurgeCutoff(NOW, { auth: longLockout, rules: DEFAULT_VELOCITY_RULES })).toBe(
      NOW - 2 * DAY - VELOCITY_RETENTION_MARGIN_MS,
    );
    // The per-address window.
    const longIp = { ...shortAuth, loginWindowS: 3 * 24 * 3600 };
    expect(velocityPurgeCutoff(NOW, { auth: longIp, rules: DEFAULT_VELOCITY_RULES })).toBe(
      NOW - 3 * DAY - VELOCITY_RETENTION_MARGIN_MS,
    );
    // A known-address window longer than any rule.
    const longKnown = { ...DEFAULT_AUTH_CONFIG, knownAddressS: 90 * 24 * 3600 };
    expect(velocityPurgeCutoff(NOW, { auth: longKnown, rules: DEFAULT_VELOCITY_RULES })).toBe(
      NOW - 90 * DAY - VELOCITY_RETENTION_MARGIN_MS,
    );
  });

  it('reads the acquirer rules as data: a rule it does not name is covered too', () => {
    const rules = {
      ...DEFAULT_VELOCITY_RULES,
      someNewRule: { windowMs: 45 * DAY, haltAt: 3 },
    } as VelocityRules;
    expect(velocityPurgeCutoff(NOW, { auth: DEFAULT_AUTH_CONFIG, rules })).toBe(
      NOW - 45 * DAY - VELOCITY_RETENTION_MARGIN_MS,
    );
  });

  it('with an acquirer whose rules it cannot see, keeps the longest window a rule may have', () => {
    const shortAuth = { ...DEFAULT_AUTH_CONFIG, knownAddressS: 3600 };
    expect(velocityPurgeCutoff(NOW, { auth: shortAuth, rules: undefined })).toBe(
      NOW - MAX_VELOCITY_WINDOW_MS - VELOCITY_RETENTION_MARGIN_MS,
    );
  });

  it('never lets go of an event some window still counts', () => {
    const before = velocityPurgeCutoff(NOW, defaults);
    expect(before).toBeDefined();
    // An event counts at NOW while at > NOW - window; the purge deletes at < before.
    for (const w of velocityWindowsMs(defaults)) expect(before).toBeLessThanOrEqual(NOW - w);
  });

  it('purges nothing when a window or the time is not a finite, non-negative number', () => {
    for (const auth of [
      { ...DEFAULT_AUTH_CONFIG, knownAddressS: Number.NaN },
      { ...DEFAULT_AUTH_CONFIG, lockoutS: Number.POSITIVE_INFINITY },
      { ...DEFAULT_AUTH_CONFIG, loginWindowS: -1 },
    ]) {
      expect(velocityPurgeCutoff(NOW, { auth, rules: DEFAULT_VELOCITY_RULES })).toBeUndefined();
    }
    expect(velocityPurgeCutoff(Number.NaN, defaults)).toBeUndefined();
  });

  it("every seconds setting of AuthConfig is either one of the throttle's windows or reviewed as none", () => {
    // A new `...S` setting must be added to AUTH_VELOCITY_WINDOWS (if it is a window over velocity
    // events) or here (if not), so the purge cannot silently cut a new window short.
    const notVelocity = ['sessionTtlS', 'maxTokenLifetimeS'];
    const seconds = Object.keys(DEFAULT_AUTH_CONFIG).filter((k) => k.endsWith('S'));
    expect([...seconds].sort()).toEqual([...AUTH_VELOCITY_WINDOWS, ...notVelocity].sort());
  });
});

function recordingLog(): PurgeLog & { lines: { level: string; fields: object; message: string }[] } {
  const lines: { level: string; fields: object; message: string }[] = [];
  return {
    lines,
    debug: (fields, message) => lines.push({ level: 'debug', fields, message }),
    warn: (fields, message) => lines.push({ level: 'warn', fields, message }),
  };
}

describe('purgeExpiredVelocityEvents', () => {
  it('on a store: forgets the old login throttle and acquirer keys, keeps what a window still counts', async () => {
    const store = openSqliteStore({ path: ':memory:' });
    try {
      const known = DEFAULT_AUTH_CONFIG.knownAddressS * 1000;
      const lock = DEFAULT_AUTH_CONFIG.lockoutS * 1000;
      const recentKnown = throttle.known('203.0.113.9', 'alice');
      const oldKnown = throttle.known('203.0.113.10', 'alice');
      const sprayed = throttle.user('no-such-user', 'none');
      const oldEpoch = throttle.pair('203.0.113.9', 'alice', 'epoch-before-unlock');
      await store.velocityHit(recentKnown, NOW - 29 * DAY, known);
      await store.velocityHit(oldKnown, NOW - 32 * DAY, known);
      await store.velocityHit(sprayed, NOW - 40 * DAY, lock);
      await store.velocityHit(oldEpoch, NOW - 31 * DAY - 1, lock);
      await store.velocityHit('terminal-rate:t1', NOW - 60 * DAY, 60_000);
      await store.velocityHit('terminal-rate:t2', NOW - 1000, 60_000);
      const log = recordingLog();
      expect(await purgeExpiredVelocityEvents(store, NOW, defaults, log)).toBe(4);
      // Known-address evidence survives its 30 days.
      expect(await store.velocityCount(recentKnown, NOW, known)).toBe(1);
      expect(await store.velocityCount('terminal-rate:t2', NOW, 60_000)).toBe(1);
      for (const key of [oldKnown, sprayed, oldEpoch, 'terminal-rate:t1']) {
        expect(await store.velocityCount(key, NOW, 100 * DAY)).toBe(0);
      }
      expect(log.lines).toEqual([
        { level: 'debug', fields: { task: 'velocity-purge', purged: 4 }, message: 'velocity events purged' },
      ]);
      // Nothing more to do: no line.
      expect(await purgeExpiredVelocityEvents(store, NOW, defaults, log)).toBe(0);
      expect(log.lines).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  it('a failure resolves, and is one warning with a code, without the error or any key', async () => {
    const key = throttle.known('203.0.113.9', 'alice');
    const full = Object.assign(new Error(`disk full while deleting ${key} ct_secretcardtoken`), {
      code: 'SQLITE_FULL',
    });
    const other = new Error(`constraint failed on ${key} ct_secretcardtoken`);
    for (const [error, fields] of [
      [full, { code: 'POS_ERR_STORE_FULL', fault: 'full', task: 'velocity-purge' }],
      [other, { code: 'POS_ERR_STORE', task: 'velocity-purge' }],
    ] as const) {
      const store = { purgeVelocityEvents: vi.fn(() => Promise.reject(error)) } as unknown as Store;
      const log = recordingLog();
      await expect(purgeExpiredVelocityEvents(store, NOW, defaults, log)).resolves.toBeUndefined();
      expect(log.lines).toEqual([
        { level: 'warn', fields, message: 'velocity purge failed; the next run tries again' },
      ]);
      expect(JSON.stringify(log.lines)).not.toMatch(/alice|secret|203\.0\.113|auth:login/);
    }
  });

  it('a configuration it cannot compute a cutoff from purges nothing and says so with a code', async () => {
    const purge = vi.fn(() => Promise.resolve(0));
    const store = { purgeVelocityEvents: purge } as unknown as Store;
    const log = recordingLog();
    const auth = { ...DEFAULT_AUTH_CONFIG, knownAddressS: Number.NaN };
    expect(await purgeExpiredVelocityEvents(store, NOW, { auth, rules: undefined }, log)).toBeUndefined();
    expect(purge).not.toHaveBeenCalled();
    expect(log.lines).toMatchObject([{ level: 'warn', fields: { code: 'POS_ERR_INTERNAL' } }]);
  });

  it('a run still going when the next is due is not doubled', async () => {
    let finish: (n: number) => void = () => undefined;
    const purge = vi.fn(
      () =>
        new Promise<number>((resolve) => {
          finish = resolve;
        }),
    );
    const store = { purgeVelocityEvents: purge } as unknown as Store;
    const log = recordingLog();
    const first = purgeExpiredVelocityEvents(store, NOW, defaults, log);
    expect(await purgeExpiredVelocityEvents(store, NOW + 60_000, defaults, log)).toBeUndefined();
    expect(purge).toHaveBeenCalledTimes(1);
    finish(3);
    expect(await first).toBe(3);
    // Once it is done, the next run runs.
    const third = purgeExpiredVelocityEvents(store, NOW + 120_000, defaults, log);
    finish(0);
    expect(await third).toBe(0);
    expect(purge).toHaveBeenCalledTimes(2);
  });
});

describe('the service', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('purges old velocity events once a minute, with the sessions purge', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const h = await makeHarness();
    try {
      const now = h.clock.now();
      const known = DEFAULT_AUTH_CONFIG.knownAddressS * 1000;
      const sprayed = throttle.user('mistyped-name', 'none');
      const recentKnown = throttle.known('203.0.113.9', 'alice');
      await h.store.velocityHit(sprayed, now - 40 * DAY, 900_000);
      await h.store.velocityHit('card-terminals:ct_1', now - 32 * DAY, 3_600_000);
      await h.store.velocityHit(recentKnown, now - 29 * DAY, known);
      vi.advanceTimersByTime(59_999);
      expect(await h.store.velocityCount(sprayed, now, 100 * DAY)).toBe(1);
      vi.advanceTimersByTime(1);
      // The SQLite purge's first batch runs in the timer's turn; let its promise settle.
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(await h.store.velocityCount(sprayed, now, 100 * DAY)).toBe(0);
      expect(await h.store.velocityCount('card-terminals:ct_1', now, 100 * DAY)).toBe(0);
      expect(await h.store.velocityCount(recentKnown, now, known)).toBe(1);
      // Counted in /metrics: the two events deleted; the next run, with nothing to delete, adds none.
      const scrape = async (): Promise<string | undefined> =>
        /^pos_velocity_events_purged_total (\d+)$/m.exec((await h.app.inject({ url: '/metrics' })).body)?.[1];
      expect(await scrape()).toBe('2');
      vi.advanceTimersByTime(60_000);
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(await scrape()).toBe('2');
    } finally {
      await h.close();
    }
  });
});
