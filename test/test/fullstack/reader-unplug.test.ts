/**
 * The reader unplugged mid-sale → a clear error, and recovery when it returns, over the whole system
 * (scripts/start.mjs, real processes, a real socat pseudo-terminal).
 *
 * The simulator's `disconnect` fault (docs/reader-simulator.md) drops the reader off the line for a
 * while: bytes lost both ways, its session ended, its transaction aborted, as a pulled USB cable does.
 * (Killing the simulator or socat instead would make npm start stop the whole system.)
 *
 * - Unplugged while the PIN pad is open: the terminal's liveness probe notices, says on stderr that
 *   the reader was disconnected, and the sale ends `POS_ERR_DESKTOP_TXN_READER` (cause
 *   `POS_ERR_DESKTOP_READER_LOST`); no PIN block, no transaction at the back-end.
 * - A new sale started while the reader is still away connects once it returns (reconnect with
 *   backoff) and is approved.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  admin,
  HAVE_SOCAT,
  physicalMachine,
  readerEvents,
  runTerminal,
  simulator,
  startSystem,
  terminalId,
  waitFor,
  type System,
  type TerminalRun,
} from './system';

/** How long the reader stays unplugged: past the end of the first sale, so the next one must wait. */
const AWAY_MS = 8000;

const machine = physicalMachine();
const skipReason = !HAVE_SOCAT
  ? 'socat is not installed (apt-get install socat)'
  : 'skip' in machine
    ? machine.skip
    : undefined;
if (skipReason !== undefined) console.log(`skipping the reader-unplug full-stack tests: ${skipReason}`);
const prefix = 'prefix' in machine ? machine.prefix : [];

let sys: System | undefined;
const runs: TerminalRun[] = [];
const get = (): System => {
  if (sys === undefined) throw new Error('the system did not start');
  return sys;
};

const transactions = async (s: System): Promise<number> => {
  const r = await admin(s, 'GET', `/v1/terminals/${terminalId(s)}/transactions`);
  expect(r.status).toBe(200);
  return ((r.json as { transactions?: unknown[] }).transactions ?? []).length;
};
const named = (events: Record<string, unknown>[], name: string): Record<string, unknown>[] =>
  events.filter((e) => e['event'] === name);

describe.skipIf(skipReason !== undefined)('the reader unplugged mid-sale (npm start, pos-terminal)', () => {
  beforeAll(async () => {
    sys = await startSystem();
  }, 90_000);
  afterAll(async () => {
    for (const r of runs) r.kill();
    if (sys === undefined) return;
    await simulator(sys, 'POST', '/fault', { fault: 'clear' }).catch(() => undefined);
    await sys.stop();
    sys.cleanup();
  });

  const transact = (s: System, args: string[]): TerminalRun => {
    const run = runTerminal(prefix, [
      'transact',
      '--data-dir',
      join(s.dir, 'terminal'),
      '--card',
      'visa-pin',
      ...args,
    ]);
    runs.push(run);
    return run;
  };

  it('unplugged while the PIN pad is open: the user is told, the sale ends READER (reader lost), no PIN block; a next sale waits for the reader and is approved', async () => {
    const s = get();
    const before = await transactions(s);
    const from = readerEvents(s).length;
    const first = transact(s, ['--amount', '9.00']);
    await first.stderrHas('enter the PIN');
    const fault = await simulator(s, 'POST', '/fault', { fault: 'disconnect', ms: AWAY_MS });
    expect(fault.status).toBe(200);
    const out = await first.result;
    expect(out.line).toMatchObject({
      status: 'error',
      code: 'POS_ERR_DESKTOP_TXN_READER',
      cause: 'POS_ERR_DESKTOP_READER_LOST',
    });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('The card reader was disconnected');
    let events = readerEvents(s).slice(from);
    expect(named(events, 'fault')).toHaveLength(1);
    expect(named(events, 'pin-block')).toHaveLength(0);
    expect(await transactions(s)).toBe(before);

    // The reader is still away (AWAY_MS outlasts the loss's detection): the next sale's terminal
    // retries the reader with backoff until it is back, then sells.
    const sessions = named(readerEvents(s), 'session').length;
    const second = transact(s, ['--amount', '10.00', '--pin', '1234']);
    const again = await second.result;
    expect(again.line).toEqual({ status: 'approved', code: null });
    await waitFor(() => named(readerEvents(s).slice(from), 'pin-block').length === 1, 'the PIN block');
    events = readerEvents(s).slice(from);
    // The reader aborted the first sale's transaction itself (its line went), made one PIN block: the
    // second sale's, in a new session.
    expect(named(events, 'abort').length).toBeGreaterThan(0);
    expect(named(readerEvents(s), 'session').length).toBeGreaterThan(sessions);
    expect(await transactions(s)).toBe(before + 1);
  }, 120_000);
});
