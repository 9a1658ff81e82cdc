/**
 * The reader unplugged mid-sale, and the app's code changed, over the whole system (scripts/start.mjs,
 * real processes, a real socat pseudo-terminal). One system for both (each start costs seconds); the
 * code-hash case comes last because it halts the terminal.
 *
 * The reader unplugged → a clear error, and recovery when it returns. The simulator's `disconnect`
 * fault (docs/reader-simulator.md) drops the reader off the line for a while: bytes lost both ways, its
 * session ended, its transaction aborted, as a pulled USB cable does. (Killing the simulator or socat
 * instead would make npm start stop the whole system.)
 * - Unplugged while the PIN pad is open: the terminal's liveness probe notices, says on stderr that
 *   the reader was disconnected, and the sale ends `POS_ERR_DESKTOP_TXN_READER` (cause
 *   `POS_ERR_DESKTOP_READER_LOST`); no PIN block, no transaction at the back-end.
 * - A new sale started while the reader is still away connects once it returns (reconnect with
 *   backoff) and is approved.
 *
 * Evidence with a changed code hash → contraindicated and halted. The headless terminal's code hash
 * covers its app directory (desktop/src; docs/terminal.md, the collectors). The test runs `pos-terminal`
 * from a copy of the app with one byte added to one source file (system.ts, `copyApp`): nothing in the
 * terminal is told, it measures and reports honestly, and the back-end, whose reference values hold
 * this build's hash (npm start registers it), answers `contraindicated` with `POS_ERR_ATTEST_CODE_HASH`
 * and halts the terminal. No session with the reader, no PIN entry, no PIN block; the operator API
 * shows the halted terminal and the verdict. The unchanged app sells before (the baseline) and gets
 * nothing while the terminal is halted; after an operator resume its next sale makes it active again
 * (the last test).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  admin,
  appendOneByte,
  copyApp,
  eventsNamed,
  fullStackMachine,
  readerEvents,
  runTerminal,
  simulator,
  startSystem,
  stopSystem,
  terminalId,
  transactionCount,
  waitFor,
  type RunOptions,
  type System,
  type TerminalRun,
} from './system';

/** How long the reader stays unplugged: past the end of the first sale, so the next one must wait. */
const AWAY_MS = 8000;

const { skipReason, prefix } = fullStackMachine();
if (skipReason !== undefined)
  console.log(`skipping the reader and code-hash full-stack tests: ${skipReason}`);

let sys: System | undefined;
let copy: { bin: string; cleanup: () => void } | undefined;
const runs: TerminalRun[] = [];
const get = (): System => {
  if (sys === undefined) throw new Error('the system did not start');
  return sys;
};

const pinBlocks = (s: System): number => readerEvents(s).filter((e) => e['event'] === 'pin-block').length;
const state = async (s: System): Promise<string> => {
  const t = await admin(s, 'GET', `/v1/terminals/${terminalId(s)}`);
  expect(t.status).toBe(200);
  return z.object({ state: z.string() }).parse(t.json).state;
};

const Attestations = z.object({
  attestations: z.array(
    z.object({
      tier: z.string(),
      purpose: z.string(),
      verdict: z.object({ reasons: z.array(z.object({ code: z.string() })) }).loose(),
    }),
  ),
});

describe.skipIf(skipReason !== undefined)('the reader and the app (npm start, pos-terminal)', () => {
  beforeAll(async () => {
    sys = await startSystem();
    copy = copyApp((src) => appendOneByte(join(src, 'core', 'result.ts')));
  }, 90_000);
  afterAll(async () => {
    copy?.cleanup();
    await stopSystem(sys, runs, { clearFault: true });
  });

  const transact = (s: System, args: string[], opts: RunOptions = {}): TerminalRun => {
    const run = runTerminal(
      prefix,
      ['transact', '--data-dir', join(s.dir, 'terminal'), '--card', 'visa-pin', ...args],
      opts,
    );
    runs.push(run);
    return run;
  };

  describe('the reader unplugged mid-sale', () => {
    it('unplugged while the PIN pad is open: the user is told, the sale ends READER (reader lost), no PIN block; a next sale waits for the reader and is approved', async () => {
      const s = get();
      const before = await transactionCount(s);
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
      expect(eventsNamed(events, 'fault')).toHaveLength(1);
      expect(eventsNamed(events, 'pin-block')).toHaveLength(0);
      expect(await transactionCount(s)).toBe(before);

      // The reader is still away (AWAY_MS outlasts the loss's detection): the next sale's terminal
      // retries the reader with backoff until it is back, then sells.
      const sessions = eventsNamed(readerEvents(s), 'session').length;
      const second = transact(s, ['--amount', '10.00', '--pin', '1234']);
      const again = await second.result;
      expect(again.line).toEqual({ status: 'approved', code: null });
      await waitFor(
        () => eventsNamed(readerEvents(s).slice(from), 'pin-block').length === 1,
        'the PIN block',
      );
      events = readerEvents(s).slice(from);
      // The reader aborted the first sale's transaction itself (its line went), made one PIN block: the
      // second sale's, in a new session.
      expect(eventsNamed(events, 'abort').length).toBeGreaterThan(0);
      expect(eventsNamed(readerEvents(s), 'session').length).toBeGreaterThan(sessions);
      expect(await transactionCount(s)).toBe(before + 1);
    }, 120_000);
  });

  describe('a changed code hash', () => {
    it('the unchanged app sells (the baseline)', async () => {
      const s = get();
      const out = await transact(s, ['--amount', '12.00', '--pin', '1234']).result;
      expect(out.line).toEqual({ status: 'approved', code: null });
      expect(await state(s)).toBe('active');
    }, 60_000);

    it('the app with one byte changed: contraindicated (CODE_HASH) and halted, no PIN entry, no PIN block', async () => {
      const s = get();
      const bin = copy?.bin;
      if (bin === undefined) throw new Error('no copy');
      const before = await transactionCount(s);
      const blocks = pinBlocks(s);
      const out = await transact(s, ['--amount', '13.00', '--pin', '1234'], { bin }).result;
      expect(out.line).toMatchObject({ status: 'halted', code: 'POS_ERR_DESKTOP_TXN_HALTED' });
      // The merchant is told why: the verdict and its reasons.
      expect(String(out.line['detail'])).toContain('contraindicated');
      expect(String(out.line['detail'])).toContain('POS_ERR_ATTEST_CODE_HASH');
      expect(out.code).toBe(1);
      expect(out.stderr).not.toContain('enter the PIN');
      expect(pinBlocks(s)).toBe(blocks);
      expect(await transactionCount(s)).toBe(before);
      // The operator API: the terminal is halted, its newest verdict contraindicated for the code hash.
      expect(await state(s)).toBe('halted');
      const a = await admin(s, 'GET', `/v1/terminals/${terminalId(s)}/attestations?limit=1`);
      expect(a.status).toBe(200);
      const newest = Attestations.parse(a.json).attestations[0];
      expect(newest?.tier).toBe('contraindicated');
      expect(newest?.verdict.reasons.map((r) => r.code)).toContain('POS_ERR_ATTEST_CODE_HASH');
      // The terminal's own status says so too.
      const st = await runTerminal([], ['status', '--json', '--data-dir', join(s.dir, 'terminal')]).result;
      expect(st.line).toMatchObject({ halted: true, lastVerdict: { tier: 'contraindicated' } });
      expect(JSON.stringify(st.line)).toContain('POS_ERR_ATTEST_CODE_HASH');
    }, 60_000);

    it('the unchanged app gets nothing while halted', async () => {
      const s = get();
      const blocks = pinBlocks(s);
      const refused = await transact(s, ['--amount', '14.00', '--pin', '1234']).result;
      expect(refused.line).toMatchObject({ status: 'halted', code: 'POS_ERR_DESKTOP_TXN_HALTED' });
      expect(refused.stderr).not.toContain('enter the PIN');
      expect(pinBlocks(s)).toBe(blocks);
      expect(await state(s)).toBe('halted');
    }, 60_000);

    /**
     * After an operator resume the terminal is resume-pending: no PIN-entry ticket and no transaction
     * until an affirming verdict on evidence made after the resume. A terminal that holds no reader
     * session (a new `pos-terminal` process) gets a handshake-only session ticket (`perm: []`) for its
     * first attestation, opens its reader session, and its pre-PIN evidence then carries the reader's
     * signed status: affirming, active again, and the sale goes through.
     */
    it('after an operator resume: resume-pending, then the next sale makes it active and is approved', async () => {
      const s = get();
      const blocks = pinBlocks(s);
      const resumed = await admin(s, 'POST', `/v1/terminals/${terminalId(s)}/resume`, {
        reason: 'reinstalled the approved build',
      });
      expect(resumed.status).toBe(200);
      expect(resumed.json).toMatchObject({ state: 'resume-pending' });
      expect(await state(s)).toBe('resume-pending');
      const out = await transact(s, ['--amount', '15.00', '--pin', '1234']).result;
      expect(out.line).toEqual({ status: 'approved', code: null });
      expect(pinBlocks(s)).toBe(blocks + 1);
      expect(await state(s)).toBe('active');
    }, 60_000);
  });
});
