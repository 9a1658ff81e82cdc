/**
 * Review 2, M1: the reader keeps what the handshake's session ticket granted. A session opened under
 * a ticket without `transact` (the back-end's handshake-only ticket, `perm: []`) gets the reader's
 * status but cannot start a transaction (POS_ERR_TICKET_PERMISSION); a `transact` ticket can.
 */
import { createMemoryLinkPair, type TicketPermission } from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { DevTerminal } from '../src/dev/terminal';
import { ReaderFirmware } from '../src/firmware/reader';
import { Simulator } from '../src/sim';
import { openReaderState } from '../src/state/store';
import { liveExp, makeTerminalKey, makeTestAm, tempStateDir } from './support';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function connect(perm: TicketPermission[]) {
  const t = tempStateDir();
  cleanups.push(t.cleanup);
  const am = await makeTestAm();
  const started = await Simulator.start({ stateDir: t.dir, transport: 'hid' });
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
    // the session ticket (use 'session') carries only `perm`; PIN-entry tickets keep theirs
    signTicket: (c) => am.sign(c.use === 'session' ? { ...c, perm } : c),
  });
  if (!r.ok) throw new Error(`${r.code}: ${r.detail}`);
  cleanups.push(() => r.terminal.close());
  return { sim, term: r.terminal };
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
