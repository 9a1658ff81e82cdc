import { aesKsnCounter, findTestCard, toBase64url, toHex } from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { isExpired, ReaderFirmware, type ReaderEvent } from '../src/firmware/reader';
import { openReaderState } from '../src/state/store';
import { saveTrust } from '../src/state/trust';
import {
  digits,
  hostDecodePin,
  hostDecryptCard,
  makeTerminalKey,
  makeTestAm,
  tempStateDir,
  type TestAm,
  type TestTerminalKey,
  liveExp,
} from './support';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

interface Rig {
  dir: string;
  fw: ReaderFirmware;
  am: TestAm;
  terminal: TestTerminalKey;
  events: ReaderEvent[];
}

async function rig(opts: { dir?: string; am?: TestAm; now?: () => number } = {}): Promise<Rig> {
  let dir = opts.dir;
  if (dir === undefined) {
    const t = tempStateDir();
    cleanups.push(t.cleanup);
    dir = t.dir;
  }
  const am = opts.am ?? (await makeTestAm());
  const opened = await openReaderState(dir);
  if (!opened.ok) throw new Error(opened.code);
  const fw = new ReaderFirmware(opened.state, {
    firmwareHash: 'AB'.repeat(32),
    ...(opts.now === undefined ? {} : { clock: { now: opts.now } }),
  });
  expect(fw.trust(am.jwks).ok).toBe(true);
  const terminal = await makeTerminalKey();
  expect(fw.setSession(terminal.thumbprint, { perm: ['transact'], exp: liveExp(opts.now?.()) }).ok).toBe(
    true,
  );
  const events: ReaderEvent[] = [];
  fw.onEvent((e) => events.push(e));
  return { dir, fw, am, terminal, events };
}

/** Runs start + insert and returns the card read. */
function readCard(r: Rig, card = 'visa-pin') {
  if (r.fw.cardInSlot !== undefined) r.fw.removeCard();
  expect(r.fw.start(1234, 'EUR').ok).toBe(true);
  expect(r.fw.presentCard(card, 'insert').ok).toBe(true);
  const read = r.fw.cardRead();
  if (!read.ok) throw new Error(read.code);
  return read.read;
}

function goodTicket(r: Rig, nonce: Uint8Array, extra: Record<string, unknown> = {}): Promise<string> {
  return r.am.sign({
    cnf: { jkt: r.terminal.thumbprint },
    rsn: r.fw.serial,
    nonce: toBase64url(nonce),
    ...extra,
  });
}

describe('reader firmware: a PIN transaction', () => {
  it('reads the card, checks the ticket and makes a PIN block the host decrypts to the PIN', async () => {
    const r = await rig();
    const card = findTestCard('mastercard-pin');
    if (card === undefined) throw new Error('catalogue');
    const read = readCard(r, card.name);
    expect(read.pinRequired).toBe(true);
    expect(read.nonce.length).toBeGreaterThanOrEqual(16);
    expect(read.maskedPan).toBe('555555******4444');
    expect(read.token).toMatch(/^tok_[A-Za-z0-9_-]{24}$/);
    expect(hostDecryptCard(read.cardData, read.ksn)).toEqual({ pan: card.pan, exp: card.expiry, psn: 1 });
    expect(r.fw.txnState).toBe('waiting-for-ticket');

    expect(r.fw.submitTicket(await goodTicket(r, read.nonce)).ok).toBe(true);
    const pin = digits(card.pin);
    const block = r.fw.submitPin(pin);
    if (!block.ok) throw new Error(block.code);
    expect([...pin].every((d) => d === 0)).toBe(true);
    expect(toHex(block.ksn)).toBe(toHex(read.ksn));
    expect(hostDecodePin(block.pinBlock, block.ksn, card.pan)).toBe(card.pin);
    expect(r.fw.txnState).toBe('done');

    // Events never carry the PAN, the PIN or keys.
    const text = JSON.stringify(r.events);
    expect(text).not.toContain(card.pan);
    expect(text).toContain('"event":"pin-block"');
  });

  it('gives the same token for the same card and a fresh nonce and KSN each transaction', async () => {
    const r = await rig();
    const a = readCard(r);
    r.fw.abort();
    const b = readCard(r);
    expect(a.token).toBe(b.token);
    expect(toHex(a.nonce)).not.toBe(toHex(b.nonce));
    expect(aesKsnCounter(b.ksn)).toBeGreaterThan(aesKsnCounter(a.ksn));
  });

  it('needs no ticket and takes no PIN for a card without online PIN', async () => {
    const r = await rig();
    const read = readCard(r, 'visa-no-pin');
    expect(read.pinRequired).toBe(false);
    expect(r.fw.txnState).toBe('done');
    const res = r.fw.submitPin(digits('1234'));
    expect(res.ok ? 'ok' : res.code).toBe('POS_ERR_READER_PIN_NOT_REQUIRED');
  });

  it('reports an expired card and takes no ticket and no PIN for it', async () => {
    const r = await rig();
    const read = readCard(r, 'visa-expired');
    expect(read.expired).toBe(true);
    expect(r.fw.txnState).toBe('done');
    const t = r.fw.submitTicket(await goodTicket(r, read.nonce));
    expect(t.ok ? 'ok' : t.code).toBe('POS_ERR_READER_CARD_EXPIRED');
    const p = r.fw.submitPin(digits('1234'));
    expect(p.ok ? 'ok' : p.code).toBe('POS_ERR_READER_CARD_EXPIRED');
    expect(isExpired('2001', Date.UTC(2026, 0, 1))).toBe(true);
    expect(isExpired('2601', Date.UTC(2026, 0, 31))).toBe(false);
  });

  it('aborts when the chip card is removed, and wipes the transaction', async () => {
    const r = await rig();
    const read = readCard(r);
    expect(r.fw.removeCard().ok).toBe(true);
    expect(r.fw.txnState).toBe('idle');
    const t = r.fw.submitTicket(await goodTicket(r, read.nonce));
    expect(t.ok ? 'ok' : t.code).toBe('POS_ERR_READER_STATE');
  });

  it('reads a tapped card that arrives while waiting, and the card leaves the field', async () => {
    const r = await rig();
    expect(r.fw.start(500, '978').ok).toBe(true);
    expect(r.fw.presentCard('visa-pin', 'tap').ok).toBe(true);
    expect(r.fw.cardRead().ok).toBe(true);
    expect(r.fw.cardInSlot).toBeUndefined();
  });

  it('refuses bad start requests and a second transaction', async () => {
    const r = await rig();
    for (const [amount, currency] of [
      [-1, 'EUR'],
      [1.5, 'EUR'],
      [1e13, 'EUR'],
      [1, 'euro'],
    ] as const) {
      const s = r.fw.start(amount, currency);
      expect(s.ok ? 'ok' : s.code).toBe('POS_ERR_SIM_BAD_REQUEST');
    }
    expect(r.fw.start(1, 'EUR').ok).toBe(true);
    const again = r.fw.start(1, 'EUR');
    expect(again.ok ? 'ok' : again.code).toBe('POS_ERR_READER_STATE');
  });

  it('reads slowly under the slow-card fault, and an abort during the read cancels it', async () => {
    const r = await rig();
    r.fw.setCardReadMs(40);
    expect(r.fw.start(100, 'EUR').ok).toBe(true);
    expect(r.fw.presentCard('visa-pin', 'insert').ok).toBe(true);
    expect(r.fw.txnState).toBe('reading-card');
    expect(r.fw.cardRead().ok).toBe(false);
    await new Promise((res) => setTimeout(res, 120));
    expect(r.fw.txnState).toBe('waiting-for-ticket');
    r.fw.removeCard();
    expect(r.fw.start(100, 'EUR').ok).toBe(true);
    r.fw.presentCard('visa-pin', 'insert');
    r.fw.abort();
    await new Promise((res) => setTimeout(res, 120));
    expect(r.fw.txnState).toBe('idle');
    expect(r.events.filter((e) => e.event === 'card-read')).toHaveLength(1);
  });

  it('gives up waiting for a card, a ticket or a PIN with POS_ERR_READER_TIMEOUT', async () => {
    const t = tempStateDir();
    cleanups.push(t.cleanup);
    const opened = await openReaderState(t.dir);
    if (!opened.ok) throw new Error(opened.code);
    const fw = new ReaderFirmware(opened.state, {
      firmwareHash: '00'.repeat(32),
      timeouts: { cardMs: 20, ticketMs: 20, pinMs: 20 },
    });
    const am = await makeTestAm();
    fw.trust(am.jwks);
    const terminal = await makeTerminalKey();
    fw.setSession(terminal.thumbprint, { perm: ['transact'], exp: liveExp() });
    const aborts: string[] = [];
    fw.onEvent((e) => {
      if (e.event === 'abort') aborts.push(e.code);
    });
    const wait = () => new Promise((res) => setTimeout(res, 80));
    fw.start(1, 'EUR');
    await wait();
    expect(fw.txnState).toBe('idle');
    fw.start(1, 'EUR');
    fw.presentCard('visa-pin', 'insert');
    await wait();
    expect(fw.txnState).toBe('idle');
    fw.removeCard();
    fw.start(1, 'EUR');
    fw.presentCard('visa-pin', 'insert');
    const read = fw.cardRead();
    if (!read.ok) throw new Error(read.code);
    const jws = await am.sign({
      cnf: { jkt: terminal.thumbprint },
      rsn: fw.serial,
      nonce: toBase64url(read.read.nonce),
    });
    expect(fw.submitTicket(jws).ok).toBe(true);
    await wait();
    expect(fw.txnState).toBe('idle');
    expect(aborts).toEqual(['POS_ERR_READER_TIMEOUT', 'POS_ERR_READER_TIMEOUT', 'POS_ERR_READER_TIMEOUT']);
    // A finished transaction does not time out.
    fw.removeCard();
    fw.start(1, 'EUR');
    fw.presentCard('visa-no-pin', 'insert');
    await wait();
    expect(fw.txnState).toBe('done');
  });

  it('refuses a low battery', async () => {
    const r = await rig();
    r.fw.setBattery(2);
    const s = r.fw.start(1, 'EUR');
    expect(s.ok ? 'ok' : s.code).toBe('POS_ERR_SIM_BATTERY_LOW');
    expect(r.fw.status().battery).toBe(2);
  });

  it('refuses everything without an authenticated session', async () => {
    const r = await rig();
    r.fw.endSession();
    const s = r.fw.start(1, 'EUR');
    expect(s.ok ? 'ok' : s.code).toBe('POS_ERR_SIM_NO_SESSION');
  });

  it('aborts the transaction when the session ends', async () => {
    const r = await rig();
    readCard(r);
    r.fw.endSession();
    expect(r.fw.txnState).toBe('idle');
  });
});

describe('reader firmware: no PIN block without a valid ticket', () => {
  it('refuses a PIN before any ticket', async () => {
    const r = await rig();
    readCard(r);
    const res = r.fw.submitPin(digits('1234'));
    expect(res.ok ? 'ok' : res.code).toBe('POS_ERR_READER_TICKET_REQUIRED');
  });

  const cases: [string, (r: Rig, nonce: Uint8Array) => Promise<string>, string][] = [
    [
      'forged (signed by an untrusted key under a trusted kid)',
      async (r, nonce) => {
        const other = await makeTestAm(r.am.kid);
        return other.sign({
          cnf: { jkt: r.terminal.thumbprint },
          rsn: r.fw.serial,
          nonce: toBase64url(nonce),
        });
      },
      'POS_ERR_TICKET_SIGNATURE',
    ],
    [
      'signed under an unknown kid',
      (r, nonce) =>
        r.am.sign(
          { cnf: { jkt: r.terminal.thumbprint }, rsn: r.fw.serial, nonce: toBase64url(nonce) },
          { kid: 'other' },
        ),
      'POS_ERR_TICKET_KEY_UNKNOWN',
    ],
    [
      'expired',
      (r, nonce) => {
        const now = Math.floor(Date.now() / 1000);
        return goodTicket(r, nonce, { iat: now - 120, exp: now - 60 });
      },
      'POS_ERR_TICKET_EXPIRED',
    ],
    [
      'bound to another terminal key',
      async (r, nonce) => goodTicket(r, nonce, { cnf: { jkt: (await makeTerminalKey()).thumbprint } }),
      'POS_ERR_TICKET_KEY_MISMATCH',
    ],
    [
      'bound to another reader',
      (r, nonce) => goodTicket(r, nonce, { rsn: 'PRS-0000000000' }),
      'POS_ERR_TICKET_READER_MISMATCH',
    ],
    [
      'bound to another transaction nonce',
      (r) => goodTicket(r, new Uint8Array(32).fill(7)),
      'POS_ERR_TICKET_NONCE_MISMATCH',
    ],
    ['a session ticket', (r, nonce) => goodTicket(r, nonce, { use: 'session' }), 'POS_ERR_TICKET_USE'],
    [
      'with a warning verdict',
      (r, nonce) => goodTicket(r, nonce, { tier: 'warning' }),
      'POS_ERR_TICKET_TIER',
    ],
    [
      'without the pin-entry permission',
      (r, nonce) => goodTicket(r, nonce, { perm: ['transact'] }),
      'POS_ERR_TICKET_PERMISSION',
    ],
    ['not a JWS at all', () => Promise.resolve('not-a-ticket'), 'POS_ERR_TICKET_MALFORMED'],
  ];

  it.each(cases)('refuses a ticket %s with its code, and makes no PIN block', async (_name, make, code) => {
    const r = await rig();
    const read = readCard(r);
    const res = r.fw.submitTicket(await make(r, read.nonce));
    expect(res.ok ? 'ok' : res.code).toBe(code);
    expect(r.fw.txnState).toBe('waiting-for-ticket');
    const pin = r.fw.submitPin(digits('1234'));
    expect(pin.ok ? 'ok' : pin.code).toBe('POS_ERR_READER_TICKET_REQUIRED');
  });

  it('refuses a ticket replayed in a later transaction', async () => {
    const r = await rig();
    const first = readCard(r);
    const ticket = await goodTicket(r, first.nonce);
    expect(r.fw.submitTicket(ticket).ok).toBe(true);
    expect(r.fw.submitPin(digits('1234')).ok).toBe(true);
    readCard(r);
    const replay = r.fw.submitTicket(ticket);
    expect(replay.ok ? 'ok' : replay.code).toBe('POS_ERR_TICKET_NONCE_MISMATCH');
  });

  it('aborts the transaction after three refused tickets', async () => {
    const r = await rig();
    readCard(r);
    for (let i = 0; i < 3; i++) r.fw.submitTicket('x.y.z');
    expect(r.fw.txnState).toBe('idle');
  });

  it('refuses every ticket when it trusts no key', async () => {
    const t = tempStateDir();
    cleanups.push(t.cleanup);
    const opened = await openReaderState(t.dir);
    if (!opened.ok) throw new Error(opened.code);
    const fw = new ReaderFirmware(opened.state, { firmwareHash: '00'.repeat(32) });
    const terminal = await makeTerminalKey();
    fw.setSession(terminal.thumbprint, { perm: ['transact'], exp: liveExp() });
    fw.start(1, 'EUR');
    fw.presentCard('visa-pin', 'insert');
    const res = fw.submitTicket('a.b.c');
    expect(res.ok ? 'ok' : res.code).toBe('POS_ERR_SIM_NO_TRUSTED_KEYS');
  });

  it('refuses the PIN when the ticket expired before it arrived (reader clock)', async () => {
    let now = Date.now();
    const r = await rig({ now: () => now });
    const read = readCard(r);
    expect(r.fw.submitTicket(await goodTicket(r, read.nonce)).ok).toBe(true);
    now += 120_000;
    const res = r.fw.submitPin(digits('1234'));
    expect(res.ok ? 'ok' : res.code).toBe('POS_ERR_TICKET_EXPIRED');
    expect(r.fw.txnState).toBe('idle');
  });
});

describe('reader firmware: PIN at the ticket expiry (L1)', () => {
  it('takes the PIN in the last second before exp and refuses it at exp (injected clock)', async () => {
    const t0 = Date.UTC(2027, 0, 15, 8, 0, 0);
    let now = t0;
    const r = await rig({ now: () => now });
    const exp = Math.floor(t0 / 1000) + 30;
    const ticket = (nonce: Uint8Array) =>
      goodTicket(r, nonce, { iat: Math.floor(t0 / 1000) - 1, exp, jti: `jti-${now}-${Math.random()}` });

    // 999 ms before exp: accepted.
    now = t0;
    let read = readCard(r);
    expect(r.fw.submitTicket(await ticket(read.nonce)).ok).toBe(true);
    now = exp * 1000 - 1;
    expect(r.fw.submitPin(digits('1234')).ok).toBe(true);

    // At exp exactly, and just after: refused, and the transaction is aborted.
    for (const at of [exp * 1000, exp * 1000 + 1, (exp + 4) * 1000]) {
      now = t0;
      read = readCard(r);
      expect(r.fw.submitTicket(await ticket(read.nonce)).ok).toBe(true);
      now = at;
      const res = r.fw.submitPin(digits('1234'));
      expect({ at: at - exp * 1000, code: res.ok ? 'ok' : res.code }).toEqual({
        at: at - exp * 1000,
        code: 'POS_ERR_TICKET_EXPIRED',
      });
      expect(r.fw.txnState).toBe('idle');
    }
  });
});

describe('reader firmware: tamper', () => {
  it('latches, wipes keys, refuses everything, survives a restart and shows in the status', async () => {
    const r = await rig();
    readCard(r);
    expect(r.fw.tamper('test').ok).toBe(true);
    expect(r.fw.txnState).toBe('idle');
    expect(r.fw.status()).toMatchObject({ tampered: true, ksnCounter: 0 });
    expect(r.fw.identity).toBeUndefined();
    for (const res of [
      r.fw.start(1, 'EUR'),
      r.fw.presentCard('visa-pin', 'insert'),
      r.fw.setSession('x', { perm: ['transact'], exp: liveExp() }),
      r.fw.trust(r.am.jwks),
    ]) {
      expect(res.ok ? 'ok' : res.code).toBe('POS_ERR_READER_TAMPERED');
    }
    const reopened = await openReaderState(r.dir);
    if (!reopened.ok) throw new Error(reopened.code);
    expect(reopened.state.tampered).toBe(true);
    expect(reopened.state.identity).toBeUndefined();
    expect(reopened.state.dukpt).toBeUndefined();
    expect(reopened.state.serial).toBe(r.fw.serial);
  });
});

describe('trusted keys', () => {
  it('refuses a JWKS that is not P-256 public keys with kids', async () => {
    const t = tempStateDir();
    cleanups.push(t.cleanup);
    const am = await makeTestAm();
    const key = am.jwks.keys[0] ?? {};
    for (const bad of [
      {},
      { keys: [] },
      { keys: [{ ...key, kid: undefined }] },
      { keys: [{ ...key, d: 'x' }] },
      { keys: [key, key] },
      { keys: [{ ...key, x: 'AAAA' }] },
    ]) {
      const res = saveTrust(t.dir, bad);
      expect(res.ok ? 'ok' : res.code).toBe('POS_ERR_SIM_TRUST_INVALID');
    }
  });
});
