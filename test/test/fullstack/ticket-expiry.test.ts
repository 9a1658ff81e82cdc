/**
 * Ticket expired → no PIN entry, over the whole system (scripts/start.mjs, real processes, a real pty).
 *
 * The back-end runs with the development option `--dev-ticket-lifetime` (here through its variable
 * POS_DEV_TICKET_LIFETIME_S, which npm start passes on): every ticket expires LIFETIME_S seconds after
 * issue instead of 60. A sale whose PIN is typed at once is still approved (short tickets work); a sale
 * whose PIN pad is open when the PIN-entry ticket expires is ended by the halt gate:
 * `POS_ERR_DESKTOP_TXN_TICKET_EXPIRED`, the pad closed, the reader's transaction aborted after it had
 * accepted the ticket, no PIN block, no transaction at the back-end. The option itself is refused
 * without `--dev` and outside 2-60.
 *
 * The reader session expires with its session ticket (known gap 1, docs/reader-protocol.md §5.5): a
 * long-running terminal (`npm start` with the browser shell, its UI core driven over the UI API)
 * whose session ticket has lived its LIFETIME_S without a new attestation holds a reader session the
 * reader would start no transaction in (the simulator's status: its clock at or past the session's
 * `sessionExpiresAt`); the next sale's pre-transaction attestation renews the session (`renew`, no
 * new handshake) and the sale is approved.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  cleanEnv,
  enterPinByPositions,
  eventsNamed,
  fullStackMachine,
  openShellApi,
  padOrResult,
  readerEvents,
  ROOT,
  runTerminal,
  simulator,
  startShellSystem,
  startSystem,
  stopSystem,
  transactionCount,
  waitFor,
  type ShellApi,
  type ShellSystem,
  type System,
  type TerminalRun,
} from './system';

/** Long enough for the pre-PIN attestation and the reader's check under load, short enough to wait. */
const LIFETIME_S = 8;

const { skipReason, prefix } = fullStackMachine();
if (skipReason !== undefined) console.log(`skipping the ticket-expiry full-stack tests: ${skipReason}`);

let sys: System | undefined;
const runs: TerminalRun[] = [];
const get = (): System => {
  if (sys === undefined) throw new Error('the system did not start');
  return sys;
};

describe('pos-backend --dev-ticket-lifetime', () => {
  /** Runs pos-backend on a fresh data directory; resolves with its exit code and stderr. */
  const backend = (
    args: string[],
    env: Record<string, string>,
  ): Promise<{ code: number | null; stderr: string }> => {
    const dir = mkdtempSync(join(tmpdir(), 'pos-lifetime-'));
    const child = spawn(
      process.execPath,
      [join(ROOT, 'backend', 'bin', 'pos-backend.js'), '--data-dir', dir, '--port', '0', ...args],
      { stdio: ['ignore', 'ignore', 'pipe'], env: cleanEnv(env) },
    );
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    return new Promise((res) => {
      child.once('exit', (code) => {
        clearTimeout(timer);
        rmSync(dir, { recursive: true, force: true });
        res({ code, stderr });
      });
    });
  };

  it('is refused without --dev, and outside 2-60 (option or variable)', async () => {
    const cases: [string[], Record<string, string>][] = [
      [['--dev-ticket-lifetime', '5'], {}],
      [[], { POS_DEV_TICKET_LIFETIME_S: '5' }],
      [['--dev', '--dev-ticket-lifetime', '61'], {}],
      [['--dev'], { POS_DEV_TICKET_LIFETIME_S: '1' }],
    ];
    const results = await Promise.all(cases.map(([args, env]) => backend(args, env)));
    for (const r of results) {
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('POS_ERR_CLI_USAGE: --dev-ticket-lifetime');
    }
  }, 60_000);
});

describe.skipIf(skipReason !== undefined)('ticket expired: no PIN entry (npm start, pos-terminal)', () => {
  beforeAll(async () => {
    sys = await startSystem(undefined, { env: { POS_DEV_TICKET_LIFETIME_S: String(LIFETIME_S) } });
  }, 90_000);
  afterAll(async () => {
    await stopSystem(sys, runs);
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

  it('the back-end says it issues short tickets, and a PIN typed at once is approved', async () => {
    const s = get();
    const log = readFileSync(join(s.dir, 'logs', 'backend.log'), 'utf8');
    expect(log).toContain(`tickets expire ${LIFETIME_S} s after issue`);
    const out = await transact(s, ['--amount', '1.00', '--pin', '1234']).result;
    expect(out.line).toEqual({ status: 'approved', code: null });
    expect(await transactionCount(s)).toBe(1);
  }, 60_000);

  it('a PIN-entry ticket that expires while the pad is open: TICKET_EXPIRED, pad closed, reader aborted, no PIN block', async () => {
    const s = get();
    const before = await transactionCount(s);
    const from = readerEvents(s).length;
    const run = transact(s, ['--amount', '2.00']);
    // The pad opened: the reader had accepted the PIN-entry ticket.
    await run.stderrHas('enter the PIN');
    const out = await run.result;
    expect(out.line).toMatchObject({ status: 'error', code: 'POS_ERR_DESKTOP_TXN_TICKET_EXPIRED' });
    expect(out.code).toBe(1);
    await waitFor(() => eventsNamed(readerEvents(s).slice(from), 'abort').length > 0, "the reader's abort");
    const events = readerEvents(s).slice(from);
    expect(eventsNamed(events, 'ticket')).toEqual([expect.objectContaining({ accepted: true })]);
    expect(eventsNamed(events, 'pin-block')).toHaveLength(0);
    expect(await transactionCount(s)).toBe(before);
  }, 90_000);
});

const ReaderStatus = z.object({
  time: z.number(),
  transaction: z.string(),
  session: z.boolean(),
  sessionExpiresAt: z.number().nullable(),
});

describe.skipIf(skipReason !== undefined)(
  'the reader session ends with its session ticket and is renewed (npm start, browser shell)',
  () => {
    // `npm start` with the browser shell (as browser-shell.test.ts starts it): the UI core is one
    // long-running terminal process, driven over its UI API.
    let shell: ShellSystem | undefined;
    let api: ShellApi | undefined;
    beforeAll(async () => {
      shell = await startShellSystem(prefix, { env: { POS_DEV_TICKET_LIFETIME_S: String(LIFETIME_S) } });
      api = await openShellApi(shell);
    }, 180_000);
    afterAll(async () => {
      api?.stopEvents();
      await stopSystem(shell?.sys, []);
    }, 60_000);

    it('past its lifetime the session starts no transaction at the reader; the next sale renews it and is approved', async () => {
      if (shell === undefined || api === undefined) throw new Error('the system did not start');
      const { sys } = shell;
      const { invoke, last } = api;
      const status = async () => ReaderStatus.parse((await simulator(sys, 'GET', '/status')).json);
      await waitFor(
        async () => last()?.reader.state === 'connected' && (await status()).session,
        'the reader session',
        90_000,
      );
      // No attestation after the terminal's start-up ones (the periodic one is minutes away): the
      // reader's own clock passes the session ticket's exp, and the reader would refuse a start now
      // (POS_ERR_READER_SESSION_EXPIRED).
      let expired: z.infer<typeof ReaderStatus> | undefined;
      await waitFor(
        async () => {
          const st = await status();
          if (st.session && st.sessionExpiresAt !== null && st.time >= st.sessionExpiresAt) expired = st;
          return expired !== undefined;
        },
        "the session ticket's expiry",
        60_000,
      );
      const exp = expired?.sessionExpiresAt;
      if (exp === undefined || exp === null) throw new Error('no session expiry');
      const sessionsBefore = eventsNamed(readerEvents(sys), 'session').length;
      const renewsBefore = eventsNamed(readerEvents(sys), 'renew').length;

      // A sale: its pre-transaction attestation brings a fresh session ticket, which renews the session.
      expect(await invoke({ cmd: 'sale.start', amountMinor: 4321, currency: 'EUR' })).toEqual({ ok: true });
      await waitFor(
        async () => (await status()).transaction === 'waiting-for-card' || last()?.sale.state === 'result',
        'the reader waiting for a card',
        60_000,
      );
      expect(last()?.sale.result).toBeUndefined();
      const renewed = await status();
      expect(renewed.session).toBe(true);
      expect(renewed.sessionExpiresAt).toBeGreaterThan(exp);
      expect(renewed.sessionExpiresAt ?? 0).toBeGreaterThan(renewed.time);
      const renews = eventsNamed(readerEvents(sys), 'renew').slice(renewsBefore);
      expect(renews.length).toBeGreaterThan(0);
      expect(renews.every((e) => e['accepted'] === true)).toBe(true);
      // Renewed in the session, not by a new handshake.
      expect(eventsNamed(readerEvents(sys), 'session').length).toBe(sessionsBefore);

      expect((await simulator(sys, 'POST', '/card', { card: 'visa-pin', action: 'insert' })).status).toBe(
        200,
      );
      try {
        await padOrResult(last);
        const pad = last()?.sale.pad;
        if (pad === undefined) throw new Error(`no PIN pad: ${JSON.stringify(last()?.sale.result)}`);
        await enterPinByPositions(api, pad.layout, [1, 2, 3, 4]);
        expect(last()?.sale.result).toEqual({ status: 'approved' });
      } finally {
        await simulator(sys, 'POST', '/card', { action: 'remove' });
      }
    }, 240_000);
  },
);
