/**
 * The transaction engine with fake ports: the happy path, each failure with its code, the timeouts,
 * cancel, and the halt gate (halt and ticket expiry during PIN entry close the pad, wipe the digits
 * and abort the reader; no PIN block without a valid ticket and no halt).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_TIMEOUTS, TransactionEngine, type TxnState } from '../src/core/transaction';
import { Rig, settle } from './txn-fakes';

function setup(timeouts = {}) {
  const rig = new Rig();
  const engine = new TransactionEngine({
    reader: rig.reader,
    backend: rig.backend,
    push: rig.push,
    clock: rig.clock,
    timeouts,
  });
  const pad: boolean[] = [];
  engine.onPad((o) => pad.push(o));
  const states: TxnState[] = [];
  engine.onChange((s) => {
    if (states.at(-1) !== s.state) states.push(s.state);
  });
  return { rig, engine, pad, states };
}

/** Drives a sale to an open PIN pad (ticket valid for `expInS` seconds). */
async function toPin(s: ReturnType<typeof setup>, expInS = 60): Promise<void> {
  const { rig, engine } = s;
  expect(engine.begin()).toEqual({ ok: true });
  expect(engine.enterAmount(1234, 'EUR')).toEqual({ ok: true });
  rig.answer('start', true);
  await settle();
  rig.presentCard();
  expect(engine.state).toBe('attest');
  rig.answer('prePin', true, { expInS });
  await settle();
  rig.answer('ticket', true);
  await settle();
  expect(engine.state).toBe('pin');
  expect(engine.snapshot().padOpen).toBe(true);
}

const type = (engine: TransactionEngine, pin: string) => {
  for (const c of pin) expect(engine.pressDigit(Number(c))).toEqual({ ok: true });
};

describe('TransactionEngine', () => {
  it('approves a sale: amount, card, pre-PIN ticket, PIN, PIN block, submit; the digits are wiped', async () => {
    const s = setup();
    await toPin(s);
    type(s.engine, '1234');
    expect(s.engine.snapshot()).toMatchObject({ pinLength: 4, padOpen: true, maskedPan: '411111******1111' });
    expect(JSON.stringify(s.engine.snapshot())).not.toMatch(/1,2,3,4|"digits"/);
    expect(s.engine.submitPin()).toEqual({ ok: true });
    expect(s.engine.pinWiped()).toBe(true);
    expect(s.rig.pinRequests).toHaveLength(1);
    expect(s.rig.pinRequests[0]).toMatchObject({ sent: [1, 2, 3, 4], gateOk: true });
    s.rig.answer('pin', true);
    await settle();
    expect(s.rig.pinRequests[0]?.digits.every((d) => d === 0)).toBe(true);
    expect(s.engine.state).toBe('submit');
    expect(s.rig.submits[0]).toMatchObject({
      amountMinor: 1234,
      currency: 'EUR',
      ticket: { jws: 'ticket-1' },
    });
    expect(s.rig.submits[0]?.pinBlock?.block).toHaveLength(16);
    s.rig.answer('submit', true);
    await settle();
    expect(s.engine.snapshot().result).toEqual({ status: 'approved' });
    expect(s.states).toEqual(['amount', 'card', 'attest', 'pin', 'pin-block', 'submit', 'result']);
    expect(s.pad).toEqual([true, false]);
    expect(s.rig.aborts).toBe(0);
    expect(s.engine.reset()).toEqual({ ok: true });
    expect(s.engine.state).toBe('idle');
  });

  it('reports a decline and a back-end failure with their codes', async () => {
    const s = setup();
    await toPin(s);
    type(s.engine, '9999');
    s.engine.submitPin();
    s.rig.answer('pin', true);
    await settle();
    s.rig.answer('submit', true, { declined: true });
    await settle();
    expect(s.engine.snapshot().result).toMatchObject({
      status: 'declined',
      code: 'POS_ERR_DESKTOP_TXN_DECLINED',
    });
    s.engine.reset();
    await toPin(s);
    type(s.engine, '1234');
    s.engine.submitPin();
    s.rig.answer('pin', true);
    await settle();
    s.rig.answer('submit', false);
    await settle();
    expect(s.engine.snapshot().result).toEqual({
      status: 'error',
      code: 'POS_ERR_DESKTOP_TXN_BACKEND',
      cause: 'POS_ERR_UNAVAILABLE',
      detail: 'down',
    });
  });

  it('a halt during PIN entry closes the pad, wipes the digits, aborts the reader, makes no PIN block', async () => {
    const s = setup();
    await toPin(s);
    type(s.engine, '12');
    s.rig.push.doHalt('fraud investigation');
    expect(s.engine.snapshot()).toMatchObject({
      state: 'result',
      padOpen: false,
      pinLength: 0,
      result: { status: 'halted', code: 'POS_ERR_DESKTOP_TXN_HALTED', detail: 'fraud investigation' },
    });
    expect(s.engine.pinWiped()).toBe(true);
    expect(s.pad).toEqual([true, false]);
    expect(s.rig.aborts).toBe(1);
    expect(s.engine.pressDigit(3)).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_TXN_STATE' });
    expect(s.engine.submitPin()).toMatchObject({ ok: false });
    expect(s.rig.pinRequests).toHaveLength(0);
    // No new sale while halted; after the resume, yes.
    s.engine.reset();
    expect(s.engine.begin()).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_TXN_HALTED' });
    s.rig.push.doResume();
    expect(s.engine.begin()).toEqual({ ok: true });
  });

  it('a halt before PIN entry ends the sale; a halted engine at start takes no sale', async () => {
    for (const at of ['amount', 'card', 'attest'] as const) {
      const s = setup();
      s.engine.begin();
      if (at !== 'amount') {
        s.engine.enterAmount(100, 'USD');
        s.rig.answer('start', true);
        await settle();
      }
      if (at === 'attest') s.rig.presentCard();
      expect(s.engine.state).toBe(at);
      s.rig.push.doHalt('stop');
      expect(s.engine.snapshot().result).toMatchObject({ status: 'halted' });
      expect(s.rig.aborts).toBe(at === 'amount' ? 0 : 1);
      // A ticket arriving after the halt opens nothing.
      s.rig.answer('prePin', true);
      await settle();
      expect(s.rig.pending.some((p) => p.kind === 'ticket')).toBe(false);
      expect(s.pad).toEqual([]);
    }
    const rig = new Rig();
    rig.push.halt = { haltId: 'h1', reason: 'halted at start' };
    const e = new TransactionEngine({
      reader: rig.reader,
      backend: rig.backend,
      push: rig.push,
      clock: rig.clock,
    });
    expect(e.begin()).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_TXN_HALTED',
      detail: 'halted at start',
    });
  });

  it('a ticket that expires during PIN entry ends the sale the same way', async () => {
    const s = setup();
    await toPin(s, 20);
    type(s.engine, '123');
    s.rig.clock.advance(19_999);
    expect(s.engine.state).toBe('pin');
    s.rig.clock.advance(1);
    expect(s.engine.snapshot()).toMatchObject({
      state: 'result',
      padOpen: false,
      result: { status: 'error', code: 'POS_ERR_DESKTOP_TXN_TICKET_EXPIRED' },
    });
    expect(s.engine.pinWiped()).toBe(true);
    expect(s.rig.aborts).toBe(1);
    expect(s.rig.pinRequests).toHaveLength(0);
  });

  it('refuses a ticket already expired, bound to another nonce, or refused by the reader', async () => {
    const cases = [
      [{ expInS: 0 }, true, 'POS_ERR_DESKTOP_TXN_TICKET_EXPIRED'],
      [{ wrongNonce: true }, true, 'POS_ERR_DESKTOP_TXN_TICKET_MISSING'],
      [{}, false, 'POS_ERR_DESKTOP_TXN_READER'],
    ] as const;
    for (const [extra, readerOk, code] of cases) {
      const s = setup();
      s.engine.begin();
      s.engine.enterAmount(100, 'EUR');
      s.rig.answer('start', true);
      await settle();
      s.rig.presentCard();
      s.rig.answer('prePin', true, extra);
      await settle();
      s.rig.answer('ticket', readerOk);
      await settle();
      expect(s.engine.snapshot().result).toMatchObject({ status: 'error', code });
      expect(s.pad).toEqual([]);
    }
    const s = setup();
    s.engine.begin();
    s.engine.enterAmount(100, 'EUR');
    s.rig.presentCard();
    s.rig.answer('prePin', false);
    await settle();
    expect(s.engine.snapshot().result).toMatchObject({
      code: 'POS_ERR_DESKTOP_TXN_ATTEST_REFUSED',
      cause: 'POS_ERR_TERMINAL_HALTED',
    });
  });

  it('times out in each state with its own code, wiping what it held', async () => {
    const expectTimeout = async (
      state: TxnState,
      code: string,
      drive: (s: ReturnType<typeof setup>) => Promise<void>,
    ) => {
      const s = setup();
      await drive(s);
      expect(s.engine.state).toBe(state);
      const ms = DEFAULT_TIMEOUTS[state as keyof typeof DEFAULT_TIMEOUTS];
      s.rig.clock.advance(ms - 1);
      expect(s.engine.state).toBe(state);
      s.rig.clock.advance(1);
      expect(s.engine.snapshot().result).toMatchObject({ status: 'error', code });
      expect(s.engine.pinWiped()).toBe(true);
      return s;
    };
    await expectTimeout('amount', 'POS_ERR_DESKTOP_TXN_TIMEOUT_AMOUNT', (s) =>
      Promise.resolve(void s.engine.begin()),
    );
    await expectTimeout('card', 'POS_ERR_DESKTOP_TXN_TIMEOUT_CARD', (s) => {
      s.engine.begin();
      s.engine.enterAmount(5, 'EUR');
      return Promise.resolve();
    });
    await expectTimeout('attest', 'POS_ERR_DESKTOP_TXN_TIMEOUT_ATTEST', (s) => {
      s.engine.begin();
      s.engine.enterAmount(5, 'EUR');
      s.rig.presentCard();
      return Promise.resolve();
    });
    await expectTimeout('pin', 'POS_ERR_DESKTOP_TXN_TIMEOUT_PIN', async (s) => {
      await toPin(s, 3600);
      type(s.engine, '12');
    });
    const pb = await expectTimeout('pin-block', 'POS_ERR_DESKTOP_TXN_TIMEOUT_PIN_BLOCK', async (s) => {
      await toPin(s, 3600);
      type(s.engine, '123456');
      s.engine.submitPin();
    });
    // The digits handed to the reader are wiped when the sale ends, even before the reader answers;
    // a PIN block arriving afterwards is dropped and wiped.
    expect(pb.rig.pinRequests[0]?.digits.every((d) => d === 0)).toBe(true);
    pb.rig.answer('pin', true);
    await settle();
    expect(pb.engine.state).toBe('result');
    expect(pb.rig.submits).toHaveLength(0);
    await expectTimeout('submit', 'POS_ERR_DESKTOP_TXN_TIMEOUT_SUBMIT', async (s) => {
      await toPin(s, 3600);
      type(s.engine, '1234');
      s.engine.submitPin();
      s.rig.answer('pin', true);
      await settle();
    });
  });

  it('cancels from every state before submit, not after', async () => {
    for (const at of ['amount', 'card', 'attest', 'pin', 'pin-block'] as const) {
      const s = setup();
      if (at === 'pin' || at === 'pin-block') {
        await toPin(s);
        type(s.engine, '4321');
        if (at === 'pin-block') s.engine.submitPin();
      } else {
        s.engine.begin();
        if (at !== 'amount') s.engine.enterAmount(5, 'EUR');
        if (at === 'attest') s.rig.presentCard();
      }
      expect(s.engine.state).toBe(at);
      expect(s.engine.cancel()).toEqual({ ok: true });
      expect(s.engine.snapshot().result).toMatchObject({
        status: 'error',
        code: 'POS_ERR_DESKTOP_TXN_CANCELLED',
      });
      expect(s.engine.pinWiped()).toBe(true);
      expect(s.rig.pinRequests.every((r) => r.digits.every((d) => d === 0))).toBe(true);
      expect(s.rig.aborts).toBe(at === 'amount' ? 0 : 1);
    }
    const s = setup();
    expect(s.engine.cancel()).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_TXN_STATE' });
    await toPin(s);
    type(s.engine, '1234');
    s.engine.submitPin();
    s.rig.answer('pin', true);
    await settle();
    expect(s.engine.cancel()).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_TXN_STATE' });
    // A halt while submitted: the back-end decides (it refuses a halted terminal's transaction).
    s.rig.push.doHalt();
    expect(s.engine.state).toBe('submit');
  });

  it('ends the sale when the reader aborts by itself, without telling it to abort again', async () => {
    const s = setup();
    await toPin(s);
    type(s.engine, '12');
    s.rig.readerAborts('POS_ERR_READER_CARD_REMOVED');
    expect(s.engine.snapshot().result).toMatchObject({
      status: 'error',
      code: 'POS_ERR_DESKTOP_TXN_READER',
      cause: 'POS_ERR_READER_CARD_REMOVED',
    });
    expect(s.engine.pinWiped()).toBe(true);
    expect(s.rig.aborts).toBe(0);
  });

  it('submits a card that needs no PIN without ticket or PIN block', () => {
    const s = setup();
    s.engine.begin();
    s.engine.enterAmount(500, 'EUR');
    s.rig.presentCard(false);
    expect(s.engine.state).toBe('submit');
    expect(s.rig.submits[0]).toEqual({ amountMinor: 500, currency: 'EUR', card: { opaque: true } });
  });

  it('turns a port that throws or rejects into a failure result, never an unhandled rejection', async () => {
    const s = setup();
    s.rig.reader.start = () => Promise.reject(new Error('boom'));
    s.rig.reader.abort = () => {
      throw new Error('boom');
    };
    s.engine.begin();
    s.engine.enterAmount(100, 'EUR');
    await settle();
    expect(s.engine.snapshot().result).toMatchObject({ status: 'error', code: 'POS_ERR_DESKTOP_TXN_READER' });
    s.engine.reset();
    s.rig.reader.start = () => Promise.resolve({ ok: true });
    s.rig.backend.prePin = () => {
      throw new Error('boom');
    };
    s.engine.begin();
    s.engine.enterAmount(100, 'EUR');
    s.rig.presentCard();
    await settle();
    expect(s.engine.snapshot().result).toMatchObject({ code: 'POS_ERR_DESKTOP_TXN_ATTEST_REFUSED' });
    expect(s.engine.pinWiped()).toBe(true);
  });

  it('validates its input', async () => {
    const s = setup();
    expect(s.engine.enterAmount(5, 'EUR')).toMatchObject({ code: 'POS_ERR_DESKTOP_TXN_STATE' });
    s.engine.begin();
    expect(s.engine.begin()).toMatchObject({ code: 'POS_ERR_DESKTOP_TXN_BUSY' });
    for (const [a, c] of [
      [0, 'EUR'],
      [1.5, 'EUR'],
      [-1, 'EUR'],
      [1e15, 'EUR'],
      [5, 'eur'],
      [5, 'EURO'],
    ] as const)
      expect(s.engine.enterAmount(a, c)).toMatchObject({ code: 'POS_ERR_DESKTOP_TXN_AMOUNT' });
    expect(s.engine.pressDigit(1)).toMatchObject({ code: 'POS_ERR_DESKTOP_TXN_STATE' });
    s.engine.cancel();
    s.engine.reset();
    await toPin(s);
    type(s.engine, '123');
    expect(s.engine.submitPin()).toMatchObject({ code: 'POS_ERR_DESKTOP_TXN_PIN_LENGTH' });
    expect(s.engine.state).toBe('pin');
    expect(s.engine.pressDigit(10)).toMatchObject({ code: 'POS_ERR_DESKTOP_TXN_PIN_LENGTH' });
    type(s.engine, '456789012');
    expect(s.engine.pressDigit(3)).toMatchObject({ code: 'POS_ERR_DESKTOP_TXN_PIN_LENGTH' });
    expect(s.engine.snapshot().pinLength).toBe(12);
    s.engine.backspace();
    expect(s.engine.snapshot().pinLength).toBe(11);
    s.engine.submitPin();
    expect(s.rig.pinRequests[0]?.sent).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
  });
});
