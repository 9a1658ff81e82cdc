/**
 * The transaction engine against the real reader firmware: the engine's reader port over a
 * ReaderConnection session to the in-process simulator (a memory link; the transports are tested in
 * hid-driver and serial-pty), PIN-entry tickets signed by a development A&M key, and a fake back-end
 * that decrypts the card data and the PIN block as the acquirer host would. A right PIN is approved,
 * a wrong one declined; a halt during PIN entry aborts the reader's transaction and makes no PIN block.
 */
import {
  aesDukptWorkingKey,
  decodePinBlock,
  decryptCardData,
  DEV_BDK_HEX,
  findTestCard,
  hex,
  parsePan,
  pinDigitsToText,
  wipe,
  type AesKsn,
  type EncryptedCardData,
} from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { ReaderConnection } from '../src/core/reader/connection';
import { SessionReaderPort } from '../src/core/reader/reader-port';
import { TransactionEngine, type BackendPort, type EngineSnapshot } from '../src/core/transaction';
import { memoryReaderDriver, startTrustingSim, testTerminal, until, type Cleanups } from './support';
import { FakePush } from './txn-fakes';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The acquirer host's view: the PAN from the card data, the PIN from the PIN block (tests only). */
function hostPin(card: unknown, block: Uint8Array, ksn: Uint8Array): string {
  const data = card as EncryptedCardData & { ksn: Uint8Array };
  const dk = aesDukptWorkingKey({
    bdk: hex(DEV_BDK_HEX),
    ksn: data.ksn as AesKsn,
    usage: 'data-encryption',
    keyType: 'aes128',
  });
  if (!dk.ok) throw new Error(dk.code);
  const rec = decryptCardData(dk.key, data, data.ksn);
  wipe(dk.key);
  if (!rec.ok) throw new Error(rec.code);
  const pk = aesDukptWorkingKey({
    bdk: hex(DEV_BDK_HEX),
    ksn: ksn as AesKsn,
    usage: 'pin-encryption',
    keyType: 'aes128',
  });
  if (!pk.ok) throw new Error(pk.code);
  const pan = parsePan(rec.card.pan);
  if (!pan.ok) throw new Error(pan.code);
  const pin = decodePinBlock({ format: 4, block, pan: pan.pan, key: pk.key });
  wipe(pk.key);
  if (!pin.ok) throw new Error(pin.code);
  const text = pinDigitsToText(pin.pin);
  wipe(pin.pin);
  return text;
}

async function rig() {
  const term = testTerminal();
  const events: Record<string, unknown>[] = [];
  const { sim, caCertificateDer, serial } = await startTrustingSim(cleanups, term, {
    onEvent: (e) => events.push(e),
  });
  const conn = new ReaderConnection({
    driver: memoryReaderDriver(sim),
    handshake: term.handshake(caCertificateDer, serial),
    heartbeatMs: 0,
  });
  cleanups.push(() => conn.close());
  conn.start();
  await conn.whenConnected();
  const pinsSeen: string[] = [];
  const backend: BackendPort = {
    prePin: ({ nonce }) => {
      const exp = Math.floor(Date.now() / 1000) + 60;
      const jws = term.am.sign({
        use: 'pin-entry',
        cnf: { jkt: term.thumbprint },
        rsn: serial,
        nonce,
        exp,
        perm: ['transact', 'pin-entry'],
      });
      return Promise.resolve({ ok: true, ticket: { jws, exp, nonce } });
    },
    submit: (input) => {
      if (input.pinBlock === undefined) return Promise.resolve({ ok: true, outcome: 'approved' });
      const pin = hostPin(input.card, input.pinBlock.block, input.pinBlock.ksn);
      pinsSeen.push(pin);
      const card = findTestCard('visa-pin');
      return Promise.resolve({ ok: true, outcome: pin === card?.pin ? 'approved' : 'declined' });
    },
  };
  const push = new FakePush();
  const port = new SessionReaderPort(conn);
  cleanups.push(() => port.dispose());
  const engine = new TransactionEngine({ reader: port, backend, push });
  cleanups.push(() => engine.dispose());
  const snaps: EngineSnapshot[] = [];
  engine.onChange((s) => snaps.push(s));
  return { sim, engine, push, events, pinsSeen };
}

async function toPinPad(r: Awaited<ReturnType<typeof rig>>) {
  expect(r.engine.begin()).toEqual({ ok: true });
  expect(r.engine.enterAmount(2500, 'EUR')).toEqual({ ok: true });
  await until(() => r.sim.fw.txnState === 'waiting-for-card', 'the reader waits for a card');
  expect(r.sim.card({ card: 'visa-pin', action: 'insert' })).toEqual({ ok: true });
  await until(() => r.engine.state === 'pin' || r.engine.state === 'result', 'the PIN pad');
  expect(r.engine.snapshot()).toMatchObject({ state: 'pin', padOpen: true, maskedPan: '411111******1111' });
  expect(r.sim.fw.txnState).toBe('waiting-for-pin');
}

const typePin = (engine: TransactionEngine, pin: string) => {
  for (const c of pin) expect(engine.pressDigit(Number(c))).toEqual({ ok: true });
};

describe('transaction engine with the reader simulator', () => {
  it('approves the right PIN and declines a wrong one', async () => {
    const r = await rig();
    const card = findTestCard('visa-pin');
    if (card === undefined) throw new Error('catalogue');
    await toPinPad(r);
    typePin(r.engine, card.pin);
    expect(r.engine.submitPin()).toEqual({ ok: true });
    await until(() => r.engine.state === 'result', 'the result');
    expect(r.engine.snapshot().result).toEqual({ status: 'approved' });
    expect(r.pinsSeen).toEqual([card.pin]);
    expect(r.events.filter((e) => e['event'] === 'pin-block')).toHaveLength(1);
    r.sim.card({ action: 'remove' });
    r.engine.reset();

    await toPinPad(r);
    const wrong = card.pin === '0000' ? '1111' : '0000';
    typePin(r.engine, wrong);
    r.engine.submitPin();
    await until(() => r.engine.state === 'result', 'the result');
    expect(r.engine.snapshot().result).toMatchObject({ status: 'declined' });
    expect(r.pinsSeen).toEqual([card.pin, wrong]);
    expect(JSON.stringify(r.events)).not.toContain(card.pan);
  });

  it('a halt during PIN entry aborts the reader transaction and makes no PIN block', async () => {
    const r = await rig();
    await toPinPad(r);
    typePin(r.engine, '12');
    r.push.doHalt('incident 42');
    expect(r.engine.snapshot()).toMatchObject({
      state: 'result',
      padOpen: false,
      pinLength: 0,
      result: { status: 'halted', code: 'POS_ERR_DESKTOP_TXN_HALTED', detail: 'incident 42' },
    });
    expect(r.engine.pinWiped()).toBe(true);
    await until(() => r.sim.fw.txnState === 'idle', 'the reader aborted its transaction');
    expect(r.pinsSeen).toEqual([]);
    expect(r.events.some((e) => e['event'] === 'pin-block')).toBe(false);
    expect(r.events.some((e) => e['event'] === 'abort')).toBe(true);
    // After the resume the terminal sells again.
    r.push.doResume();
    r.sim.card({ action: 'remove' });
    r.engine.reset();
    await toPinPad(r);
    r.engine.cancel();
  });
});
