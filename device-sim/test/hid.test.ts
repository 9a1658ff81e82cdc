/**
 * The simulator over HID reports, in process (no kernel HID device can be made here: no /dev/uhid):
 * the same handshake and PIN transaction as over serial, every report exactly 64 bytes.
 */
import { findTestCard, type AesKsn } from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { DevTerminal } from '../src/dev/terminal';
import { Simulator } from '../src/sim';
import { digits, hostDecodePin, hostDecryptCard, makeTestAm, tempStateDir } from './support';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('reader simulator over in-process HID reports', () => {
  it('handshakes and makes a PIN block the host decrypts', async () => {
    const t = tempStateDir();
    cleanups.push(t.cleanup);
    const am = await makeTestAm();
    const started = await Simulator.start({ stateDir: t.dir, transport: 'hid' });
    if (!started.ok) throw new Error(started.code);
    const sim = started.sim;
    cleanups.push(() => sim.stop());
    expect(sim.ready).toMatchObject({ transport: 'hid', path: null });
    sim.fw.trust(am.jwks);
    const hid = sim.hid;
    const identity = sim.fw.identity;
    if (hid === undefined || identity === undefined) throw new Error('no HID pair');
    const r = await DevTerminal.connect({
      link: hid.host,
      caCertificateDer: identity.caCertificateDer,
      serial: sim.ready.serial,
      signTicket: (c) => am.sign(c),
    });
    if (!r.ok) throw new Error(`${r.code}: ${r.detail}`);
    const term = r.terminal;
    const card = findTestCard('mastercard-debit-pin');
    if (card === undefined) throw new Error('catalogue');

    const started2 = await term.request({ t: 'start', id: term.newId(), amount: 990, currency: 'USD' });
    expect(started2.ok).toBe(true);
    sim.card({ card: card.name, action: 'tap' });
    const ev = await term.waitFor('card-tapped');
    expect(hostDecryptCard(ev.card, ev.card.ksn as AesKsn).pan).toBe(card.pan);
    const ok = await term.request({ t: 'ticket', id: term.newId(), jws: await term.pinTicket(ev) });
    expect(ok.ok).toBe(true);
    const answer = await term.request({ t: 'pin', id: term.newId(), digits: digits(card.pin) });
    if (!answer.ok || answer.message.t !== 'pin-block') throw new Error('no PIN block');
    expect(hostDecodePin(answer.message.block, answer.message.ksn as AesKsn, card.pan)).toBe(card.pin);
    // The certificate chain alone is several reports: continuation packets were exercised.
    expect(hid.reports.toHost).toBeGreaterThan(10);
  });
});
