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
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanEnv,
  eventsNamed,
  fullStackMachine,
  readerEvents,
  ROOT,
  runTerminal,
  startSystem,
  stopSystem,
  transactionCount,
  waitFor,
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
