/**
 * Review 2, M1: the reader keeps what the handshake's session ticket granted. A session opened under
 * a ticket without `transact` (the back-end's handshake-only ticket, `perm: []`) gets the reader's
 * status but cannot start a transaction (POS_ERR_TICKET_PERMISSION); a `transact` ticket can.
 */
import { type TicketPermission } from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { ReaderFirmware } from '../src/firmware/reader';
import { openReaderState } from '../src/state/store';
import {
  connectMemoryTerminal,
  liveExp,
  makeTerminalKey,
  makeTestAm,
  startHidSim,
  tempStateDir,
  type Cleanups,
} from './support';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function connect(perm: TicketPermission[]) {
  const am = await makeTestAm();
  const sim = await startHidSim(cleanups, am);
  // the session ticket (use 'session') carries only `perm`; PIN-entry tickets keep theirs
  const { term } = await connectMemoryTerminal(sim, (c) => am.sign(c.use === 'session' ? { ...c, perm } : c));
  cleanups.push(() => term.close());
  return { sim, term };
}

describe('session ticket permissions at the reader', () => {
  it('a handshake-only session (perm []) gets signed status but cannot start a transaction', async () => {
    const { sim, term } = await connect([]);
    expect(sim.host.sessionOpen).toBe(true);
    const status = await term.request({ t: 'get-status', id: term.newId() });
    expect(status.ok).toBe(true);
    if (status.ok) expect(status.message.t).toBe('status');
    const start = await term.request({ t: 'start', id: term.newId(), amount: 500, currency: 'EUR' });
    expect(start).toMatchObject({ ok: false, code: 'POS_ERR_TICKET_PERMISSION' });
    expect(sim.fw.txnState).toBe('idle');
    // a card presented now is not read for anyone
    sim.card({ card: 'visa-pin', action: 'insert' });
    expect(sim.fw.txnState).toBe('idle');
    // the session stays open for status
    expect((await term.request({ t: 'get-status', id: term.newId() })).ok).toBe(true);
  });

  it('a transact session starts a transaction', async () => {
    const { sim, term } = await connect(['transact']);
    const start = await term.request({ t: 'start', id: term.newId(), amount: 500, currency: 'EUR' });
    expect(start.ok).toBe(true);
    expect(sim.fw.txnState).toBe('waiting-for-card');
  });

  it('firmware: the grant is per session (a new session replaces it; the end of a session clears it)', async () => {
    const t = tempStateDir();
    cleanups.push(t.cleanup);
    const opened = await openReaderState(t.dir);
    if (!opened.ok) throw new Error(opened.code);
    const fw = new ReaderFirmware(opened.state, { firmwareHash: 'AB'.repeat(32) });
    const k = await makeTerminalKey();
    expect(fw.setSession(k.thumbprint, { perm: [], exp: liveExp() }).ok).toBe(true);
    expect(fw.start(100, 'EUR')).toMatchObject({ ok: false, code: 'POS_ERR_TICKET_PERMISSION' });
    expect(fw.status().serial).toBe(opened.state.serial);
    fw.endSession();
    expect(fw.setSession(k.thumbprint, { perm: ['transact'], exp: liveExp() }).ok).toBe(true);
    expect(fw.start(100, 'EUR').ok).toBe(true);
    expect(fw.abort().ok).toBe(true);
    fw.endSession();
    expect(fw.start(100, 'EUR')).toMatchObject({ ok: false, code: 'POS_ERR_SIM_NO_SESSION' });
    expect(fw.setSession(k.thumbprint, { perm: [], exp: liveExp() }).ok).toBe(true);
    expect(fw.start(100, 'EUR')).toMatchObject({ ok: false, code: 'POS_ERR_TICKET_PERMISSION' });
  });
});
