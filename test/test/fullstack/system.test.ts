/**
 * The whole system as `npm start` runs it (scripts/start.mjs on a temporary data directory): the
 * back-end (SQLite, development mode), the reader simulator on a socat pseudo-terminal, an operator
 * account, an enrolled terminal; then `pos-terminal transact` processes against it. A sale with the
 * right PIN is approved, a wrong PIN declined, and an operator halt while the sale waits for its PIN
 * ends it as halted with no PIN block made (none at the reader, no transaction at the back-end). A
 * second start on the same directory reuses it; SIGTERM stops every part.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  admin,
  fullStackMachine,
  readerEvents,
  runTerminal,
  startSystem,
  stopSystem,
  storedTransactions,
  terminalId,
  transactionCount,
  type System,
} from './system';

const { skipReason, prefix } = fullStackMachine();
if (skipReason !== undefined) console.log(`skipping the full-stack tests: ${skipReason}`);

let sys: System | undefined;
const get = (): System => {
  if (sys === undefined) throw new Error('the system did not start');
  return sys;
};

describe.skipIf(skipReason !== undefined)('the whole system (npm start, pos-terminal)', () => {
  beforeAll(async () => {
    sys = await startSystem();
  }, 90_000);
  afterAll(async () => {
    await stopSystem(sys, []);
  });

  it('starts: the ready line, an enrolled terminal, a running back-end', async () => {
    const s = get();
    expect(s.ready.dataDir).toBe(s.dir);
    expect(s.ready.terminal).toBeNull();
    expect((await fetch(`${s.ready.backend}/healthz`)).status).toBe(200);
    expect(terminalId(s)).toMatch(/^trm_/);
    // The operator dashboard is served by the back-end (its not-built page when the build was skipped).
    expect(s.ready.dashboard.url).toBe(`${s.ready.backend}/dashboard/`);
    const dash = await fetch(s.ready.dashboard.url);
    expect([200, 503]).toContain(dash.status);
    expect(dash.headers.get('content-type')).toContain('text/html');
  });

  it('approves a sale with the right PIN and declines a wrong one', async () => {
    const s = get();
    const dir = join(s.dir, 'terminal');
    const ok = await runTerminal(prefix, [
      'transact',
      '--data-dir',
      dir,
      '--amount',
      '12.34',
      '--card',
      'visa-pin',
      '--pin',
      '1234',
    ]).result;
    expect(ok.line).toEqual({ status: 'approved', code: null });
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain('--pin is for tests and development only');
    expect(ok.stderr).not.toContain('1234');
    const bad = await runTerminal(prefix, [
      'transact',
      '--data-dir',
      dir,
      '--amount',
      '5.00',
      '--card',
      'visa-pin',
      '--pin',
      '9999',
    ]).result;
    expect(bad.line['status']).toBe('declined');
    expect(bad.code).toBe(1);
    const txns = await storedTransactions(s);
    expect(txns).toHaveLength(2);
    expect(readerEvents(s).filter((e) => e['event'] === 'pin-block')).toHaveLength(2);
    expect(JSON.stringify(txns)).not.toContain('4111111111111111');
  }, 60_000);

  it('an operator halt while the sale waits for the PIN ends it as halted, with no PIN block', async () => {
    const s = get();
    const before = await transactionCount(s);
    const blocksBefore = readerEvents(s).filter((e) => e['event'] === 'pin-block').length;
    const run = runTerminal(prefix, [
      'transact',
      '--data-dir',
      join(s.dir, 'terminal'),
      '--amount',
      '20.00',
      '--card',
      'visa-pin',
    ]);
    await run.stderrHas('enter the PIN');
    const halt = await admin(s, 'POST', `/v1/terminals/${terminalId(s)}/halt`, { reason: 'incident 7' });
    expect(halt.status).toBeLessThan(300);
    const out = await run.result;
    expect(out.line).toMatchObject({
      status: 'halted',
      code: 'POS_ERR_DESKTOP_TXN_HALTED',
      detail: 'incident 7',
    });
    expect(out.code).toBe(1);
    // No PIN block at the reader, which aborted its transaction; no transaction at the back-end.
    const events = readerEvents(s);
    expect(events.filter((e) => e['event'] === 'pin-block')).toHaveLength(blocksBefore);
    expect(events.some((e) => e['event'] === 'abort')).toBe(true);
    expect(await storedTransactions(s)).toHaveLength(before);
    // The back-end holds the terminal halted, and the terminal's status says so.
    const t = await admin(s, 'GET', `/v1/terminals/${terminalId(s)}`);
    expect(JSON.stringify(t.json)).toContain('"halted"');
    const st = await runTerminal([], ['status', '--json', '--data-dir', join(s.dir, 'terminal')]).result;
    expect(st.code).toBe(0);
    expect(st.line).toMatchObject({ enrolled: true, halted: true, backend: s.ready.backend });
  }, 60_000);

  it('stops every part on SIGTERM, and a second start reuses the data directory', async () => {
    const s = get();
    const id = terminalId(s);
    expect(await s.stop()).toBe(0);
    await expect(fetch(`${s.ready.backend}/healthz`)).rejects.toThrow();
    await expect(fetch(`${s.ready.simulator.control}/status`)).rejects.toThrow();
    expect(existsSync(join(s.dir, 'reader.pty'))).toBe(false);
    // Again on the same directory: same back-end address, same terminal, no new enrollment.
    const second = await startSystem(s.dir);
    sys = second;
    expect(second.ready.backend).toBe(s.ready.backend);
    expect(second.ready.dashboard).toEqual(s.ready.dashboard);
    expect(terminalId(second)).toBe(id);
    const terminals = await admin(second, 'GET', `/v1/terminals/${id}`);
    expect(terminals.status).toBe(200);
  }, 60_000);
});
