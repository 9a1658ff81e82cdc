/**
 * Back-end down → no PIN entry, over the whole system (scripts/start.mjs, real processes, a real pty).
 *
 * The terminal runs in its own network namespace whose only way to the back-end is a proxy the test
 * holds (system.ts, `startBackendLink`): the back-end itself keeps running (npm start stops everything
 * when a child dies), but for the terminal it is gone, every connection cut and every new one refused.
 *
 * - Down before the sale: `transact` cannot get a session ticket, so it never even opens a session
 *   with the reader; it ends `POS_ERR_DESKTOP_BACKEND_UNREACHABLE`.
 * - Down while the sale waits for the card: the card is read, the pre-PIN attestation cannot reach the
 *   back-end, the sale ends `POS_ERR_DESKTOP_TXN_ATTEST_REFUSED` (cause `_BACKEND_UNREACHABLE`) before
 *   any PIN pad: no ticket at the reader, no PIN block, the reader's transaction aborted.
 * - Back again: the next sale is approved.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  admin,
  canIsolateNetwork,
  HAVE_SOCAT,
  physicalMachine,
  readerEvents,
  simulator,
  startBackendLink,
  startSystem,
  terminalId,
  waitFor,
  type BackendLink,
  type System,
  type TerminalRun,
} from './system';

const machine = physicalMachine();
const net = canIsolateNetwork();
const skipReason = !HAVE_SOCAT
  ? 'socat is not installed (apt-get install socat)'
  : 'skip' in machine
    ? machine.skip
    : !net.ok
      ? net.skip
      : undefined;
if (skipReason !== undefined) console.log(`skipping the back-end-down full-stack tests: ${skipReason}`);

let sys: System | undefined;
let link: BackendLink | undefined;
const runs: TerminalRun[] = [];
const get = (): { s: System; l: BackendLink } => {
  if (sys === undefined || link === undefined) throw new Error('the system did not start');
  return { s: sys, l: link };
};

/** `pos-terminal` behind the test's link to the back-end (and on a VM, as a physical machine). */
const terminal = (args: string[]): TerminalRun => {
  const { s, l } = get();
  const run = l.run('prefix' in machine ? machine.prefix : [], [
    ...args,
    '--data-dir',
    join(s.dir, 'terminal'),
  ]);
  runs.push(run);
  return run;
};

const transactions = async (s: System): Promise<number> => {
  const r = await admin(s, 'GET', `/v1/terminals/${terminalId(s)}/transactions`);
  expect(r.status).toBe(200);
  return ((r.json as { transactions?: unknown[] }).transactions ?? []).length;
};

const eventsSince = (s: System, from: number): Record<string, unknown>[] => readerEvents(s).slice(from);
const named = (events: Record<string, unknown>[], name: string): Record<string, unknown>[] =>
  events.filter((e) => e['event'] === name);

describe.skipIf(skipReason !== undefined)('back-end down: no PIN entry (npm start, pos-terminal)', () => {
  beforeAll(async () => {
    sys = await startSystem();
    link = await startBackendLink(sys);
  }, 90_000);
  afterAll(async () => {
    for (const r of runs) r.kill();
    await link?.close();
    if (sys === undefined) return;
    await sys.stop();
    sys.cleanup();
  });

  it('down before the sale: no session with the reader, BACKEND_UNREACHABLE, nothing at the back-end', async () => {
    const { s, l } = get();
    const before = await transactions(s);
    const from = readerEvents(s).length;
    const sent = l.requests().length;
    await l.down();
    const out = await terminal(['transact', '--amount', '3.00']).result;
    await l.up();
    expect(out.line).toMatchObject({ status: 'error', code: 'POS_ERR_DESKTOP_BACKEND_UNREACHABLE' });
    expect(out.code).toBe(1);
    expect(out.stderr).not.toContain('enter the PIN');
    // The reader never saw a session (the handshake needs a ticket from the back-end), so no card
    // was asked for and no PIN block made.
    const events = eventsSince(s, from);
    expect(named(events, 'session')).toHaveLength(0);
    expect(named(events, 'pin-block')).toHaveLength(0);
    // The proxy really cut it off (it let nothing through), and the back-end saw no sale.
    expect(l.requests().slice(sent)).toHaveLength(0);
    expect(await transactions(s)).toBe(before);
  }, 60_000);

  it('down while the sale waits for the card: ATTEST_REFUSED (unreachable) before any PIN pad; no ticket, no PIN block, the reader aborted', async () => {
    const { s, l } = get();
    const before = await transactions(s);
    const from = readerEvents(s).length;
    const sent = l.requests().length;
    const run = terminal(['transact', '--amount', '4.00']);
    await run.stderrHas('insert or tap a card');
    // The reader is connected through a session made with a back-end ticket: the link was up, and
    // the session's attestation went through it.
    expect(named(eventsSince(s, from), 'session').length).toBeGreaterThan(0);
    expect(
      l
        .requests()
        .slice(sent)
        .some((r) => r.method === 'POST' && r.path === '/v1/attestations'),
    ).toBe(true);
    await l.down();
    const inserted = await simulator(s, 'POST', '/card', { card: 'visa-pin', action: 'insert' });
    expect(inserted.status).toBe(200);
    const out = await run.result;
    await l.up();
    await simulator(s, 'POST', '/card', { action: 'remove' });
    expect(out.line).toMatchObject({
      status: 'error',
      code: 'POS_ERR_DESKTOP_TXN_ATTEST_REFUSED',
      cause: 'POS_ERR_DESKTOP_BACKEND_UNREACHABLE',
    });
    expect(out.code).toBe(1);
    expect(out.stderr).not.toContain('enter the PIN');
    // The card was read, then the terminal aborted the reader's transaction; the reader got no
    // PIN-entry ticket and made no PIN block.
    await waitFor(() => named(eventsSince(s, from), 'abort').length > 0, "the reader's abort");
    const events = eventsSince(s, from);
    expect(named(events, 'card-read')).toHaveLength(1);
    expect(named(events, 'ticket')).toHaveLength(0);
    expect(named(events, 'pin-block')).toHaveLength(0);
    // No pre-PIN evidence reached the back-end, and it holds no transaction.
    const prePin = l
      .requests()
      .slice(sent)
      .filter((r) => r.path === '/v1/attestations' && r.body.includes('"nonce"'));
    expect(prePin).toHaveLength(0);
    expect(await transactions(s)).toBe(before);
  }, 60_000);

  it('back again: the next sale is approved', async () => {
    const { s, l } = get();
    await l.up();
    const before = await transactions(s);
    const from = readerEvents(s).length;
    const run = terminal(['transact', '--amount', '5.00', '--pin', '1234']);
    await run.stderrHas('insert or tap a card');
    expect((await simulator(s, 'POST', '/card', { card: 'visa-pin', action: 'insert' })).status).toBe(200);
    const out = await run.result;
    await simulator(s, 'POST', '/card', { action: 'remove' });
    expect(out.line).toEqual({ status: 'approved', code: null });
    expect(named(eventsSince(s, from), 'pin-block')).toHaveLength(1);
    expect(await transactions(s)).toBe(before + 1);
  }, 60_000);
});
