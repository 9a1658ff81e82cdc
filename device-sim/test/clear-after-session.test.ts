/**
 * reader-protocol.md 4.2: once the session is open, a message in the clear (anything but a new
 * `offer`) ends the session and aborts the transaction in progress (L2).
 */
import { createMemoryLinkPair, encodeMessage, type ReaderMessage } from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { DevTerminal } from '../src/dev/terminal';
import { Simulator } from '../src/sim';
import { makeTestAm, tempStateDir } from './support';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('a message in the clear after the handshake', () => {
  it.each<ReaderMessage>([
    { t: 'start', id: 40, amount: 1, currency: 'EUR' },
    { t: 'get-status', id: 41 },
    { t: 'error', id: 0, code: 'POS_ERR_X', detail: 'x' },
    { t: 'abort', id: 42 },
  ])('ends the session and aborts the transaction ($t)', async (clear) => {
    const t = tempStateDir();
    cleanups.push(t.cleanup);
    const am = await makeTestAm();
    const events: Record<string, unknown>[] = [];
    const waiters: (() => void)[] = [];
    const started = await Simulator.start({
      stateDir: t.dir,
      transport: 'hid',
      onEvent: (e) => {
        events.push(e);
        for (const w of waiters.splice(0)) w();
      },
    });
    if (!started.ok) throw new Error(started.code);
    const sim = started.sim;
    cleanups.push(() => sim.stop());
    sim.fw.trust(am.jwks);
    const identity = sim.fw.identity;
    if (identity === undefined) throw new Error('no identity');
    const [terminalEnd, readerEnd] = createMemoryLinkPair();
    sim.attachLink(readerEnd);
    const r = await DevTerminal.connect({
      link: terminalEnd,
      caCertificateDer: identity.caCertificateDer,
      serial: sim.ready.serial,
      signTicket: (c) => am.sign(c),
    });
    if (!r.ok) throw new Error(`${r.code}: ${r.detail}`);
    const term = r.terminal;
    expect((await term.request({ t: 'start', id: term.newId(), amount: 500, currency: 'EUR' })).ok).toBe(
      true,
    );
    expect(sim.host.sessionOpen).toBe(true);
    expect(sim.fw.txnState).toBe('waiting-for-card');

    const closed = (): boolean => events.some((e) => e['event'] === 'session' && e['open'] === false);
    terminalEnd.send(encodeMessage(clear));
    while (!closed()) await new Promise<void>((res) => waiters.push(res));

    expect(events.find((e) => e['event'] === 'session' && e['open'] === false)).toMatchObject({
      code: 'POS_ERR_READER_UNEXPECTED',
    });
    expect(sim.host.sessionOpen).toBe(false);
    expect(sim.fw.txnState).toBe('idle');
    // The terminal's channel is gone: a request through it is not answered as before.
    sim.card({ card: 'visa-pin', action: 'insert' });
    expect(sim.fw.txnState).toBe('idle');
  });
});
