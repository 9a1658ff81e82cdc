/**
 * Reader simulator -> back-end acquirer host: what the reader makes (PIN block, KSN, DUKPT-encrypted
 * card data) is what the acquirer simulation decrypts and judges against the same test-card catalogue.
 * Runs the simulator in process over HID reports (no pseudo-terminal needed).
 */
import { createAcquirerHost, developmentBdks, MemoryVelocityStore } from '@pos/backend/acquirer/index';
import { devAm } from '@pos/device-sim/dev/am';
import { DevTerminal } from '@pos/device-sim/dev/terminal';
import { Simulator } from '@pos/device-sim/sim';
import { findTestCard, type EncryptedCardData } from '@pos/shared';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('reader simulator and acquirer host agree', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pos-reader-acq-'));
  const am = devAm('acq-test-am');
  let sim: Simulator;
  let term: DevTerminal;
  const acquirer = createAcquirerHost({ bdks: developmentBdks(), velocity: new MemoryVelocityStore() });

  beforeAll(async () => {
    const started = await Simulator.start({ stateDir: join(dir, 'state'), transport: 'hid' });
    if (!started.ok) throw new Error(started.code);
    sim = started.sim;
    sim.fw.trust(am.jwks);
    const identity = sim.fw.identity;
    if (sim.hid === undefined || identity === undefined) throw new Error('no HID pair');
    const r = await DevTerminal.connect({
      link: sim.hid.host,
      caCertificateDer: identity.caCertificateDer,
      serial: sim.ready.serial,
      signTicket: (c) => am.sign(c),
    });
    if (!r.ok) throw new Error(`${r.code}: ${r.detail}`);
    term = r.terminal;
  });
  afterAll(async () => {
    term.close();
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** One transaction at the reader; `pin` undefined for a card without online PIN. */
  async function transact(cardName: string, pin?: string) {
    const ok = await term.request({ t: 'start', id: term.newId(), amount: 1234, currency: 'EUR' });
    if (!ok.ok) throw new Error(ok.code);
    expect(sim.card({ card: cardName, action: 'insert' })).toEqual({ ok: true });
    const ev = await term.waitFor('card-inserted');
    let pinBlock: Uint8Array | undefined;
    if (pin !== undefined) {
      expect((await term.request({ t: 'ticket', id: term.newId(), jws: await term.pinTicket(ev) })).ok).toBe(
        true,
      );
      const digits = new Uint8Array(pin.length);
      for (let i = 0; i < pin.length; i++) digits[i] = pin.charCodeAt(i) - 0x30;
      const answer = await term.request({ t: 'pin', id: term.newId(), digits });
      if (!answer.ok || answer.message.t !== 'pin-block') throw new Error('no PIN block');
      expect([...answer.message.ksn]).toEqual([...ev.card.ksn]);
      pinBlock = answer.message.block;
    }
    sim.card({ action: 'remove' });
    await term.waitFor('card-removed');
    const cardData: EncryptedCardData = { iv: ev.card.iv, ct: ev.card.ct };
    return acquirer.authorize({
      terminalId: 'terminal-acq-test',
      amount: 1234,
      currency: 'EUR',
      ksn: ev.card.ksn,
      cardData,
      ...(pinBlock === undefined ? {} : { pinBlock }),
      now: Date.now(),
    });
  }

  it('approves the right PIN, declines a wrong one and the issuer-declined card', async () => {
    const visa = findTestCard('visa-pin');
    const mc = findTestCard('mastercard-pin');
    const declined = findTestCard('visa-declined');
    if (visa === undefined || mc === undefined || declined === undefined) throw new Error('catalogue');
    expect(await transact(visa.name, visa.pin)).toMatchObject({ approved: true });
    expect(await transact(mc.name, mc.pin)).toMatchObject({ approved: true });
    expect(await transact(mc.name, '0000')).toMatchObject({ approved: false, code: 'POS_ERR_ACQ_PIN_WRONG' });
    expect(await transact(declined.name, declined.pin)).toMatchObject({
      approved: false,
      code: 'POS_ERR_ACQ_DECLINED',
    });
    expect(await transact('visa-no-pin')).toMatchObject({ approved: true });
  });
});
