/**
 * reader-protocol.md 4.2: once the session is open, a message in the clear (anything but a new
 * `offer`) ends the session and aborts the transaction in progress (L2).
 */
import { encodeMessage, type ReaderMessage } from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { connectMemoryTerminal, makeTestAm, startHidSim, type Cleanups } from './support';

const cleanups: Cleanups = [];
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
    const am = await makeTestAm();
    const events: Record<string, unknown>[] = [];
    const waiters: (() => void)[] = [];
    const sim = await startHidSim(cleanups, am, {
      onEvent: (e) => {
        events.push(e);
        for (const w of waiters.splice(0)) w();
      },
    });
    const { term, terminalEnd } = await connectMemoryTerminal(sim, (c) => am.sign(c));
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
