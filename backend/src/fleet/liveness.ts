/**
 * Liveness: every terminal has a durable next-due time in the store (set by each accepted
 * attestation to now + its interval). A terminal whose deadline is past by more than the margin
 * (`livenessMarginS`) is `stale`: it gets no ticket and no transaction, and one alert goes out (a
 * `stale` event, an audit entry, a metric). The mark is a compare-and-set in the store, so with several
 * back-end processes exactly one of them alerts; the deadline is in the store, so it holds across a
 * restart.
 *
 * The rule (docs/monitoring.md):
 * - affirming verdict: the deadline moves to now + interval and a stale mark is cleared;
 * - warning verdict: the deadline moves only while the terminal is not stale (a warning never revives
 *   a stale terminal);
 * - contraindicated or no verdict: nothing moves.
 * Staleness is checked where it matters (ticket issuance, transactions) against the deadline itself,
 * so it never waits for the sweeper; the sweeper only makes sure that a silent terminal raises its
 * alert within `livenessSweepS`.
 */
import type { Ctx } from '../server/context';
import type { TerminalRow } from '../store/types';

/** The sweeper of one app: `sweepOnce` is what the timer calls (tests call it directly). */
export interface Liveness {
  /** Marks every terminal overdue by the margin stale (alerting once each); resolves to how many it marked. */
  sweepOnce(): Promise<number>;
  /** Stops the timer; resolves when a sweep in progress has ended. */
  stop(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The liveness sweeper (decorated by buildApp). */
    liveness: Liveness;
  }
}

const SWEEP_BATCH = 200;
/** A sweep handles at most this many batches (the rest waits for the next sweep). */
const SWEEP_BATCHES_MAX = 500;

/** True when the terminal's deadline is past by more than the margin at `now`. */
export function isOverdue(ctx: Pick<Ctx, 'config'>, terminal: TerminalRow, now: number): boolean {
  const due = terminal.nextDueAt ?? null;
  return due !== null && due < now - ctx.config.livenessMarginS * 1000;
}

/**
 * Marks one overdue terminal stale; the process whose compare-and-set wins raises the alert (event,
 * audit, metric). Resolves true when this call marked it.
 */
export async function markStale(ctx: Ctx, terminal: TerminalRow, now: number): Promise<boolean> {
  const cutoff = now - ctx.config.livenessMarginS * 1000;
  if (!(await ctx.store.markStale(terminal.id, now, cutoff))) return false;
  const overdueMs = Math.max(0, now - (terminal.nextDueAt ?? now));
  ctx.metrics.staleMarked.inc();
  ctx.metrics.staleTerminals.inc();
  ctx.fleet.emit({
    type: 'stale',
    at: now,
    merchantId: terminal.merchantId,
    terminalId: terminal.id,
    overdueMs,
  });
  await ctx.audit('liveness', 'terminal.stale', terminal.id, {
    nextDueAt: terminal.nextDueAt ?? null,
    overdueMs,
    marginS: ctx.config.livenessMarginS,
  });
  return true;
}

/**
 * Whether the terminal is stale now: marked, or overdue by the margin (then it is marked here, so the
 * alert does not wait for the sweeper).
 */
export async function checkStale(ctx: Ctx, terminal: TerminalRow, now: number): Promise<boolean> {
  if ((terminal.staleAt ?? null) !== null) return true;
  if (!isOverdue(ctx, terminal, now)) return false;
  await markStale(ctx, terminal, now);
  return true;
}

/**
 * After a verdict on a terminal's evidence (enrollment or attestation): the liveness rule above, the
 * app version the evidence reported (accepted verdicts only), and the `verdict` event. Resolves to
 * whether the terminal is stale after it.
 */
export async function noteVerdict(
  ctx: Ctx,
  terminal: TerminalRow,
  verdict: { readonly tier: string; readonly purpose: string; readonly appVersion: string | undefined },
): Promise<{ readonly stale: boolean }> {
  const now = ctx.clock.now();
  ctx.fleet.emit({
    type: 'verdict',
    at: now,
    merchantId: terminal.merchantId,
    terminalId: terminal.id,
    tier: verdict.tier,
    purpose: verdict.purpose,
  });
  // Written only when it changes (most attestations repeat the last tier): one write less per attestation.
  if (verdict.tier !== terminal.lastTier) await ctx.store.setTerminalLastTier(terminal.id, verdict.tier);
  let stale = await checkStale(ctx, terminal, now);
  const accepted = verdict.tier === 'affirming' || verdict.tier === 'warning';
  if (!accepted) return { stale };
  const nextDueAt = now + terminal.intervalS * 1000;
  if (verdict.tier === 'affirming') {
    await ctx.store.setNextDue(terminal.id, nextDueAt);
    if (stale) {
      ctx.metrics.staleTerminals.dec();
      await ctx.audit('liveness', 'terminal.live', terminal.id, { reason: 'affirming attestation' });
    }
    stale = false;
  } else if (!stale && !(await ctx.store.setNextDue(terminal.id, nextDueAt, { onlyIfLive: true }))) {
    // Another process marked it stale in between: a warning does not revive it.
    stale = true;
  }
  if (verdict.appVersion !== undefined && verdict.appVersion !== terminal.appVersion) {
    await ctx.store.setTerminalAppVersion(terminal.id, verdict.appVersion);
  }
  return { stale };
}

/**
 * Marks every terminal overdue by the margin stale, in batches, oldest deadline first; refreshes the
 * stale gauge from the store (other processes mark terminals too).
 */
export async function sweepOnce(ctx: Ctx): Promise<number> {
  const now = ctx.clock.now();
  const cutoff = now - ctx.config.livenessMarginS * 1000;
  let marked = 0;
  for (let batch = 0; batch < SWEEP_BATCHES_MAX; batch++) {
    const overdue = await ctx.store.listOverdue(cutoff, SWEEP_BATCH);
    for (const terminal of overdue) {
      if (await markStale(ctx, terminal, now)) marked++;
    }
    if (overdue.length < SWEEP_BATCH) break;
  }
  ctx.metrics.staleTerminals.set(await ctx.store.countStale());
  return marked;
}

/**
 * The sweeper: a thin interval timer over `sweepOnce` (never two sweeps at once; a failed sweep is
 * reported through `onError` and the next one tries again). One sweep runs at start, so a back-end
 * restarted after an outage alerts on the terminals that went silent meanwhile.
 */
export function startLiveness(ctx: Ctx, onError: (error: unknown) => void): Liveness {
  let running: Promise<number> | undefined;
  const sweep = (): Promise<number> => {
    running ??= sweepOnce(ctx).finally(() => {
      running = undefined;
    });
    return running;
  };
  const everyS = ctx.config.livenessSweepS;
  const timer =
    everyS === false
      ? undefined
      : setInterval(() => {
          sweep().catch(onError);
        }, everyS * 1000);
  timer?.unref();
  if (timer !== undefined) sweep().catch(onError);
  return {
    sweepOnce: sweep,
    stop: async () => {
      if (timer !== undefined) clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
