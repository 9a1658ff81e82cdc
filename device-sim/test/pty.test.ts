/**
 * The simulator over a real pseudo-terminal (socat) with serialport at both ends: the handshake, a
 * PIN transaction whose PIN block and card data the host decrypts, the KSN across a restart, ticket
 * refusals, tamper, garbage on the line, disconnect and reconnect.
 */
import { randomBytes } from 'node:crypto';
import {
  aesKsnCounter,
  findTestCard,
  verifyReaderStatus,
  type AesKsn,
  type ReaderMessage,
} from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { DevTerminal } from '../src/dev/terminal';
import { Simulator } from '../src/sim';
import { makePtyPair, SerialLine, socatAvailable } from '../src/transport/serial';
import { digits, hostDecodePin, hostDecryptCard, makeTestAm, tempStateDir, type TestAm } from './support';

const HAVE_SOCAT = socatAvailable();
if (!HAVE_SOCAT)
  console.log('skipping the pseudo-terminal tests: /usr/bin/socat is not installed (apt-get install socat)');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Rig {
  sim: Simulator;
  am: TestAm;
  dir: string;
  events: Record<string, unknown>[];
  connect(): Promise<{ term: DevTerminal; line: SerialLine }>;
}

async function rig(opts: { dir?: string; am?: TestAm } = {}): Promise<Rig> {
  let dir = opts.dir;
  if (dir === undefined) {
    const t = tempStateDir();
    cleanups.push(t.cleanup);
    dir = t.dir;
  }
  const am = opts.am ?? (await makeTestAm());
  const events: Record<string, unknown>[] = [];
  const started = await Simulator.start({ stateDir: dir, onEvent: (e) => events.push(e) });
  if (!started.ok) throw new Error(`${started.code}: ${started.detail}`);
  const sim = started.sim;
  cleanups.push(() => sim.stop());
  expect(sim.fw.trust(am.jwks).ok).toBe(true);
  const identity = sim.fw.identity;
  let current: SerialLine | undefined;
  const connect = async () => {
    const path = sim.ready.path;
    if (path === null || identity === undefined) throw new Error('no pty');
    // A serial port is opened by one process at a time: the terminal reconnects on a fresh open.
    await current?.close();
    const opened = await SerialLine.open({ path });
    if (!opened.ok) throw new Error(opened.code);
    const line = opened.line;
    current = line;
    cleanups.push(() => line.close());
    const r = await DevTerminal.connect({
      line,
      caCertificateDer: identity.caCertificateDer,
      serial: sim.ready.serial,
      signTicket: (claims) => am.sign(claims),
    });
    if (!r.ok) throw new Error(`${r.code}: ${r.detail}`);
    return { term: r.terminal, line };
  };
  return { sim, am, dir, events, connect };
}

async function ask(term: DevTerminal, msg: ReaderMessage & { id: number }): Promise<ReaderMessage> {
  const r = await term.request(msg);
  if (!r.ok) return { t: 'error', id: msg.id, code: r.code, detail: r.detail };
  return r.message;
}

async function cardIn(r: Rig, term: DevTerminal, card: string) {
  expect(await ask(term, { t: 'start', id: term.newId(), amount: 2500, currency: 'EUR' })).toMatchObject({
    t: 'started',
  });
  expect(r.sim.card({ card, action: 'insert' })).toEqual({ ok: true });
  return term.waitFor('card-inserted');
}

async function pinTransaction(r: Rig, term: DevTerminal, cardName: string) {
  const card = findTestCard(cardName);
  if (card === undefined) throw new Error('catalogue');
  const ev = await cardIn(r, term, cardName);
  expect(await ask(term, { t: 'ticket', id: term.newId(), jws: await term.pinTicket(ev) })).toMatchObject({
    t: 'ticket-ok',
  });
  const answer = await ask(term, { t: 'pin', id: term.newId(), digits: digits(card.pin) });
  if (answer.t !== 'pin-block') throw new Error(`no PIN block: ${JSON.stringify(answer)}`);
  r.sim.card({ action: 'remove' });
  await term.waitFor('card-removed');
  return { ev, card, block: answer.block, ksn: answer.ksn as AesKsn };
}

describe.skipIf(!HAVE_SOCAT)('reader simulator over a pseudo-terminal', () => {
  it('handshakes, then makes a PIN block and card data the host decrypts', async () => {
    const r = await rig();
    expect(r.sim.ready).toMatchObject({ event: 'ready', transport: 'serial' });
    expect(r.sim.ready.path).toMatch(/^\/dev\/pts\/\d+$/);
    const { term } = await connect(r);
    const { ev, card, block, ksn } = await pinTransaction(r, term, 'visa-pin');
    expect(ev.pan).toBe('411111******1111');
    expect(hostDecryptCard(ev.card, ev.card.ksn as AesKsn)).toMatchObject({
      pan: card.pan,
      exp: card.expiry,
    });
    expect(hostDecodePin(block, ksn, card.pan)).toBe(card.pin);
    // The events the CLI prints never carry the PAN.
    expect(JSON.stringify(r.events)).not.toContain(card.pan);

    // The signed status verifies against the manufacturer CA and reports the KSN just used.
    const status = await signedStatus(r, term);
    expect(status).toMatchObject({
      serial: r.sim.ready.serial,
      tamper: false,
      ksnCounter: aesKsnCounter(ksn),
      battery: 100,
    });
  });

  it('advances the KSN and keeps identity and KSN across a restart', async () => {
    const t = tempStateDir();
    cleanups.push(t.cleanup);
    const am = await makeTestAm();
    const r1 = await rig({ dir: t.dir, am });
    const { term: t1 } = await connect(r1);
    const a = await pinTransaction(r1, t1, 'visa-pin');
    const b = await pinTransaction(r1, t1, 'mastercard-pin');
    expect(aesKsnCounter(b.ksn)).toBeGreaterThan(aesKsnCounter(a.ksn));
    const serial = r1.sim.ready.serial;

    const seq1 = (await signedStatus(r1, t1)).seq;
    await r1.sim.stop();

    const r2 = await rig({ dir: t.dir, am });
    expect(r2.sim.ready.serial).toBe(serial);
    const { term: t2 } = await connect(r2);
    expect((await signedStatus(r2, t2)).seq).toBeGreaterThan(seq1);
    const c = await pinTransaction(r2, t2, 'visa-pin');
    expect(aesKsnCounter(c.ksn)).toBeGreaterThan(aesKsnCounter(b.ksn));
    expect(hostDecodePin(c.block, c.ksn, c.card.pan)).toBe(c.card.pin);
  });

  it('refuses forged, expired, wrongly bound and replayed tickets, and makes no PIN block', async () => {
    const r = await rig();
    const { term } = await connect(r);
    const ev = await cardIn(r, term, 'visa-pin');
    const forger = await makeTestAm(r.am.kid);
    const now = Math.floor(Date.now() / 1000);
    const bad: [string, string][] = [
      [
        await forger.sign({
          cnf: { jkt: term.thumbprint },
          rsn: r.sim.ready.serial,
          nonce: Buffer.from(ev.nonce).toString('base64url'),
        }),
        'POS_ERR_TICKET_SIGNATURE',
      ],
      [await term.pinTicket(ev, { iat: now - 200, exp: now - 100 }), 'POS_ERR_TICKET_EXPIRED'],
      [await term.pinTicket(ev, { cnf: { jkt: 'B'.repeat(43) } }), 'POS_ERR_TICKET_KEY_MISMATCH'],
    ];
    for (const [jws, code] of bad) {
      expect(await ask(term, { t: 'ticket', id: term.newId(), jws })).toMatchObject({ t: 'error', code });
    }
    // Three refusals abort the transaction; a PIN now gets no block.
    await term.waitFor('aborted');
    const pin = await ask(term, { t: 'pin', id: term.newId(), digits: digits('1234') });
    expect(pin).toMatchObject({ t: 'error' });
    // A good ticket of one transaction is refused in the next (nonce binding: no replay).
    r.sim.card({ action: 'remove' });
    const ev2 = await cardIn(r, term, 'visa-pin');
    const good = await term.pinTicket(ev2);
    expect(await ask(term, { t: 'ticket', id: term.newId(), jws: good })).toMatchObject({ t: 'ticket-ok' });
    expect(await ask(term, { t: 'pin', id: term.newId(), digits: digits('1234') })).toMatchObject({
      t: 'pin-block',
    });
    r.sim.card({ action: 'remove' });
    await cardIn(r, term, 'visa-pin');
    expect(await ask(term, { t: 'ticket', id: term.newId(), jws: good })).toMatchObject({
      t: 'error',
      code: 'POS_ERR_TICKET_NONCE_MISMATCH',
    });
    expect(await ask(term, { t: 'pin', id: term.newId(), digits: digits('1234') })).toMatchObject({
      t: 'error',
      code: 'POS_ERR_READER_TICKET_REQUIRED',
    });
  });

  it('latches tamper: the session ends, handshakes are refused, also after a restart', async () => {
    const t = tempStateDir();
    cleanups.push(t.cleanup);
    const am = await makeTestAm();
    const r = await rig({ dir: t.dir, am });
    const { term } = await connect(r);
    const identity = r.sim.fw.identity;
    if (identity === undefined) throw new Error('no identity');
    const chain = [identity.certificateDer.slice()];
    const roots = [identity.caCertificateDer.slice()];
    const used = (await pinTransaction(r, term, 'visa-pin')).ksn;
    await cardIn(r, term, 'visa-pin');
    expect(r.sim.tamper('test')).toEqual({ ok: true });
    await term.waitFor('tamper');
    await expect(connect(r)).rejects.toThrow('POS_ERR_READER_TAMPERED');
    expect(r.sim.status()).toMatchObject({ tampered: true, ksnCounter: 0 });
    expect([...identity.privateKey].every((b) => b === 0)).toBe(true);
    await r.sim.stop();
    const again = await Simulator.start({ stateDir: t.dir });
    if (!again.ok) throw new Error(again.code);
    cleanups.push(() => again.sim.stop());
    expect(again.sim.ready.tampered).toBe(true);
    expect(again.sim.fw.identity).toBeUndefined();
    // Its last words: a status signed with `tamper: true` before the key was wiped, which verifies.
    const final = again.sim.status()['finalStatus'] as { report: string; sig: string } | undefined;
    if (final === undefined) throw new Error('no final status');
    const v = verifyReaderStatus(
      { report: Buffer.from(final.report, 'base64url'), sig: Buffer.from(final.sig, 'base64url') },
      chain,
      roots,
      { now: Math.floor(Date.now() / 1000), maxAgeS: 60, expectedSerial: again.sim.ready.serial },
    );
    if (!v.ok) throw new Error(v.code);
    expect(v.status).toMatchObject({ tamper: true, ksnCounter: aesKsnCounter(used) + 1 });
  });

  it('survives a thousand random garbage bursts, and the link works afterwards', async () => {
    const r = await rig();
    const { term, line } = await connect(r);
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 1000; i++) {
      line.write(randomBytes(1 + (i % 97)));
      // Let the terminal's serialport hand the noise to the pty as it goes: with ~48 KiB queued at
      // once its writer can stall on a full pty buffer (a test-side effect, not the reader's).
      if (i % 10 === 9) await line.drain();
    }
    // "Afterwards": once the reader has read the noise (its refusals stop growing).
    let seen = -1;
    while (seen !== r.events.length) {
      seen = r.events.length;
      await new Promise((res) => setTimeout(res, 150));
    }
    // The session survives the noise: the reader drops what fails COBS/CRC and resynchronises at the
    // next frame delimiter.
    const first = await pinTransaction(r, term, 'visa-pin');
    expect(hostDecodePin(first.block, first.ksn, first.card.pan)).toBe(first.card.pin);
    expect(r.events.some((e) => e['event'] === 'refused')).toBe(true);
    // And a fresh handshake works too.
    term.close();
    const { term: t2 } = await connect(r);
    const { card, block, ksn } = await pinTransaction(r, t2, 'amex-pin');
    expect(hostDecodePin(block, ksn, card.pan)).toBe(card.pin);
    // No unbounded growth: the frame decoder holds at most one frame.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('works through delay, stall and slow-card faults, and refuses to start on a low battery', async () => {
    const r = await rig();
    const { term } = await connect(r);
    expect(r.sim.applyFault({ fault: 'delay', ms: 20 })).toEqual({ ok: true });
    expect(r.sim.applyFault({ fault: 'slow-card', ms: 100 })).toEqual({ ok: true });
    const a = await pinTransaction(r, term, 'visa-pin');
    expect(hostDecodePin(a.block, a.ksn, a.card.pan)).toBe(a.card.pin);
    expect(r.sim.applyFault({ fault: 'clear' })).toEqual({ ok: true });
    // A stall shorter than the ACK timeout: bytes are held, then released; nothing is lost.
    expect(r.sim.applyFault({ fault: 'stall', ms: 200 })).toEqual({ ok: true });
    const b = await pinTransaction(r, term, 'mastercard-pin');
    expect(hostDecodePin(b.block, b.ksn, b.card.pan)).toBe(b.card.pin);
    expect(r.sim.applyFault({ fault: 'battery', percent: 3 })).toEqual({ ok: true });
    expect(await ask(term, { t: 'start', id: term.newId(), amount: 1, currency: 'EUR' })).toMatchObject({
      t: 'error',
      code: 'POS_ERR_SIM_BATTERY_LOW',
    });
    expect((await signedStatus(r, term)).battery).toBe(3);
  });

  it('serves an explicit serial path it is given', async () => {
    const pair = await makePtyPair();
    if (!pair.ok) throw new Error(pair.code);
    cleanups.push(() => pair.pair.stop());
    const t = tempStateDir();
    cleanups.push(t.cleanup);
    const am = await makeTestAm();
    const started = await Simulator.start({ stateDir: t.dir, serialPath: pair.pair.readerPath });
    if (!started.ok) throw new Error(started.code);
    const sim = started.sim;
    cleanups.push(() => sim.stop());
    expect(sim.ready.path).toBe(pair.pair.readerPath);
    sim.fw.trust(am.jwks);
    const identity = sim.fw.identity;
    if (identity === undefined) throw new Error('no identity');
    const opened = await SerialLine.open({ path: pair.pair.terminalPath });
    if (!opened.ok) throw new Error(opened.code);
    const line = opened.line;
    cleanups.push(() => line.close());
    const r = await DevTerminal.connect({
      line,
      caCertificateDer: identity.caCertificateDer,
      serial: sim.ready.serial,
      signTicket: (c) => am.sign(c),
    });
    if (!r.ok) throw new Error(`${r.code}: ${r.detail}`);
    expect(await ask(r.terminal, { t: 'get-status', id: r.terminal.newId() })).toMatchObject({ t: 'status' });
  });

  it('drops the session on a disconnect and works again after reconnecting', async () => {
    const r = await rig();
    const { term } = await connect(r);
    await cardIn(r, term, 'visa-pin');
    expect(r.sim.applyFault({ fault: 'disconnect', ms: 200 })).toEqual({ ok: true });
    expect(r.sim.fw.txnState).toBe('idle');
    await new Promise((res) => setTimeout(res, 400));
    r.sim.card({ action: 'remove' });
    const { term: t2 } = await connect(r);
    const { card, block, ksn } = await pinTransaction(r, t2, 'mastercard-pin');
    expect(hostDecodePin(block, ksn, card.pan)).toBe(card.pin);
  });
});

async function signedStatus(r: Rig, term: DevTerminal) {
  const challenge = new Uint8Array(randomBytes(16));
  const answer = await ask(term, { t: 'get-status', id: term.newId(), challenge });
  if (answer.t !== 'status') throw new Error(`no status: ${JSON.stringify(answer)}`);
  const identity = r.sim.fw.identity;
  if (identity === undefined) throw new Error('no identity');
  const v = verifyReaderStatus(answer, [identity.certificateDer], [identity.caCertificateDer], {
    now: Math.floor(Date.now() / 1000),
    maxAgeS: 60,
    expectedSerial: r.sim.ready.serial,
    expectedChallenge: challenge,
  });
  if (!v.ok) throw new Error(`${v.code}: ${v.detail}`);
  return v.status;
}

function connect(r: Rig) {
  return r.connect();
}
