/**
 * A sale that ends (cancel, halt, ticket expiry) tells the reader to abort; when the link fails while
 * that abort is being sent, the reader port reports the reader lost from inside `abort()`. The sale
 * keeps the result it ended with: before, the report re-entered the engine's finish and replaced it
 * with `POS_ERR_DESKTOP_TXN_READER` (a cancelled sale shown as a reader failure, a halt without the
 * operator's reason). Found by test/test/faults/reader-link.test.ts (the link cut at `abort`).
 */
import { describe, expect, it } from 'vitest';
import { TransactionEngine } from '../src/core/transaction';
import { Rig, settle } from './txn-fakes';

function setup() {
  const rig = new Rig();
  // The reader port's abort, over a link that fails as the abort goes out: the reader is lost at once.
  const reader = {
    ...rig.reader,
    abort: () => {
      rig.readerAborts('POS_ERR_DESKTOP_READER_LOST');
      return rig.reader.abort();
    },
  };
  const engine = new TransactionEngine({ reader, backend: rig.backend, push: rig.push, clock: rig.clock });
  return { rig, engine };
}

async function toPin({ rig, engine }: ReturnType<typeof setup>): Promise<void> {
  expect(engine.begin()).toEqual({ ok: true });
  expect(engine.enterAmount(1234, 'EUR')).toEqual({ ok: true });
  rig.answer('start', true);
  await settle();
  rig.presentCard();
  rig.answer('prePin', true);
  await settle();
  rig.answer('ticket', true);
  await settle();
  expect(engine.state).toBe('pin');
  expect(engine.pressDigit(1)).toEqual({ ok: true });
}

describe('the reader lost while the engine aborts it', () => {
  it('a cancelled sale stays cancelled', async () => {
    const s = setup();
    await toPin(s);
    expect(s.engine.cancel()).toEqual({ ok: true });
    expect(s.engine.snapshot()).toMatchObject({
      state: 'result',
      padOpen: false,
      pinLength: 0,
      result: { status: 'error', code: 'POS_ERR_DESKTOP_TXN_CANCELLED' },
    });
    expect(s.engine.pinWiped()).toBe(true);
    expect(s.rig.aborts).toBe(1);
  });

  it('a halted sale stays halted, with the operator reason', async () => {
    const s = setup();
    await toPin(s);
    s.rig.push.doHalt('incident 7');
    expect(s.engine.snapshot()).toMatchObject({
      state: 'result',
      result: { status: 'halted', code: 'POS_ERR_DESKTOP_TXN_HALTED', detail: 'incident 7' },
    });
    expect(s.engine.pinWiped()).toBe(true);
    expect(s.rig.aborts).toBe(1);
  });

  it('a reader that is lost later, outside the abort, still ends a sale in progress', async () => {
    const s = setup();
    await toPin(s);
    s.rig.readerAborts('POS_ERR_DESKTOP_READER_LOST');
    expect(s.engine.snapshot().result).toMatchObject({
      status: 'error',
      code: 'POS_ERR_DESKTOP_TXN_READER',
      cause: 'POS_ERR_DESKTOP_READER_LOST',
    });
  });
});
