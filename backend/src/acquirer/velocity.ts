/**
 * Velocity: counters with time windows, behind an interface so the service's store keeps them (and a
 * PostgreSQL store can too). Three rules, each able to warn or halt:
 * - wrong PIN tries per card (card token) in a window;
 * - transactions per terminal per minute;
 * - one card tried on many terminals (distinct terminals per card token in a window).
 */
import { z } from 'zod';

export interface VelocityStore {
  /**
   * Records one event for `key` under `counter` at `now` and returns how many events of that key
   * fall in (now - windowMs, now], this one included.
   */
  hit(counter: string, key: string, now: number, windowMs: number): number | Promise<number>;
  /** How many events of `key` fall in (now - windowMs, now], without recording one. */
  count(counter: string, key: string, now: number, windowMs: number): number | Promise<number>;
  /** Forgets every event of `key` under `counter` (a right PIN clears the wrong-PIN count). */
  reset(counter: string, key: string): void | Promise<void>;
  /**
   * Records that `member` was seen for `key` at `now` and returns how many distinct members were seen
   * for `key` in (now - windowMs, now], this one included.
   */
  addDistinct(
    counter: string,
    key: string,
    member: string,
    now: number,
    windowMs: number,
  ): number | Promise<number>;
}

/** Counter names the acquirer host uses (stable: a store may persist them). */
export const VELOCITY_COUNTERS = {
  wrongPin: 'wrong-pin',
  terminalRate: 'terminal-rate',
  cardTerminals: 'card-terminals',
} as const;

/** The longest window a rule may have (30 days): the velocity purge keeps events at least this long. */
export const MAX_VELOCITY_WINDOW_MS = 30 * 24 * 3600 * 1000;

const ThresholdSchema = z
  .strictObject({
    windowMs: z.number().int().min(1000).max(MAX_VELOCITY_WINDOW_MS),
    /** Warn when the count reaches this. */
    warnAt: z.number().int().min(1).max(1_000_000).optional(),
    /** Halt (decline; the service halts the terminal or blocks the card) when the count reaches this. */
    haltAt: z.number().int().min(1).max(1_000_000).optional(),
  })
  .refine((t) => t.warnAt === undefined || t.haltAt === undefined || t.warnAt <= t.haltAt, {
    message: 'warnAt must not exceed haltAt',
  });
export type VelocityThreshold = z.infer<typeof ThresholdSchema>;

export const VelocityRulesSchema = z.strictObject({
  /** Wrong PIN tries per card. */
  wrongPin: ThresholdSchema,
  /** Transactions per terminal (window: a minute). */
  terminalRate: ThresholdSchema,
  /** Distinct terminals one card was tried on. */
  cardTerminals: ThresholdSchema,
});
export type VelocityRules = z.infer<typeof VelocityRulesSchema>;

export const DEFAULT_VELOCITY_RULES: VelocityRules = {
  wrongPin: { windowMs: 24 * 3600 * 1000, warnAt: 2, haltAt: 3 },
  terminalRate: { windowMs: 60 * 1000, warnAt: 20, haltAt: 60 },
  cardTerminals: { windowMs: 3600 * 1000, warnAt: 2, haltAt: 4 },
};

/** Every rule's window, ms (read from the rules as data: a rule added to the schema is included). */
export function velocityRuleWindowsMs(rules: VelocityRules): number[] {
  return Object.values(rules).map((t: VelocityThreshold) => t.windowMs);
}

export type VelocityAction = { action: 'warn' | 'halt'; rule: keyof VelocityRules; count: number };

export function judge(
  rule: keyof VelocityRules,
  t: VelocityThreshold,
  count: number,
): VelocityAction | undefined {
  if (t.haltAt !== undefined && count >= t.haltAt) return { action: 'halt', rule, count };
  if (t.warnAt !== undefined && count >= t.warnAt) return { action: 'warn', rule, count };
  return undefined;
}

/** In-memory VelocityStore for tests and a single process; the service mirrors it on its store. */
export class MemoryVelocityStore implements VelocityStore {
  private readonly events = new Map<string, number[]>();
  private readonly members = new Map<string, Map<string, number>>();

  private static id(counter: string, key: string): string {
    return `${counter}\u0000${key}`;
  }

  hit(counter: string, key: string, now: number, windowMs: number): number {
    const id = MemoryVelocityStore.id(counter, key);
    const list = (this.events.get(id) ?? []).filter((t) => t > now - windowMs);
    list.push(now);
    this.events.set(id, list);
    return list.length;
  }

  count(counter: string, key: string, now: number, windowMs: number): number {
    const list = this.events.get(MemoryVelocityStore.id(counter, key)) ?? [];
    return list.filter((t) => t > now - windowMs && t <= now).length;
  }

  reset(counter: string, key: string): void {
    const id = MemoryVelocityStore.id(counter, key);
    this.events.delete(id);
    this.members.delete(id);
  }

  addDistinct(counter: string, key: string, member: string, now: number, windowMs: number): number {
    const id = MemoryVelocityStore.id(counter, key);
    const seen = this.members.get(id) ?? new Map<string, number>();
    seen.set(member, now);
    for (const [m, t] of seen) if (t <= now - windowMs) seen.delete(m);
    this.members.set(id, seen);
    return seen.size;
  }
}
