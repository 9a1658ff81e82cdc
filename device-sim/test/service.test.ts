/**
 * The reader's application layer: every message it sends passes the shared message schemas (it goes
 * through encodeMessage/decodeMessage here), and the PIN flow works message by message.
 */
import { decodeMessage, encodeMessage, findTestCard, type ReaderMessage } from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { ReaderFirmware } from '../src/firmware/reader';
import { ReaderService } from '../src/link/service';
import { openReaderState } from '../src/state/store';
import {
  digits,
  hostDecodePin,
  hostDecryptCard,
  liveExp,
  makeTerminalKey,
  makeTestAm,
  tempStateDir,
} from './support';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function setup() {
  const t = tempStateDir();
  cleanups.push(t.cleanup);
  const opened = await openReaderState(t.dir);
  if (!opened.ok) throw new Error(opened.code);
  const fw = new ReaderFirmware(opened.state, { firmwareHash: '00'.repeat(32) });
  const am = await makeTestAm();
  fw.trust(am.jwks);
  const svc = new ReaderService(fw, () => ({ report: new Uint8Array([0xa0]), sig: new Uint8Array(64) }));
  const out: ReaderMessage[] = [];
  let closed = false;
  const terminal = await makeTerminalKey();
  const opened2 = svc.openSession(
    {
      send: (m) => {
        const decoded = decodeMessage(encodeMessage(m));
        if (!decoded.ok) throw new Error(decoded.code);
        out.push(decoded.message);
      },
      close: () => {
        closed = true;
      },
    },
    terminal.thumbprint,
    { perm: ['transact'], exp: liveExp() },
  );
  expect(opened2.ok).toBe(true);
  const send = (m: ReaderMessage): ReaderMessage[] => {
    const from = out.length;
    void svc.handle(m);
    return out.slice(from);
  };
  return { fw, svc, am, terminal, out, send, isClosed: () => closed };
}

describe('reader service (messages in the channel)', () => {
  it('runs start -> card event -> ticket -> pin -> pin-block', async () => {
    const s = await setup();
    const card = findTestCard('visa-pin');
    if (card === undefined) throw new Error('catalogue');
    expect(s.send({ t: 'start', id: 1, amount: 1500, currency: 'EUR' })).toEqual([{ t: 'started', id: 1 }]);
    const from = s.out.length;
    s.fw.presentCard(card.name, 'insert');
    const ev = s.out.slice(from);
    expect(ev.map((m) => m.t)).toEqual(['card-inserted']);
    const cardEvent = ev[0];
    if (cardEvent?.t !== 'card-inserted') throw new Error('no card event');
    expect(cardEvent.pan).toBe('411111******1111');
    expect(hostDecryptCard(cardEvent.card, cardEvent.card.ksn as never).pan).toBe(card.pan);

    const refused = s.send({ t: 'pin', id: 2, digits: digits('1234') });
    expect(refused).toEqual([
      expect.objectContaining({ t: 'error', id: 2, code: 'POS_ERR_READER_TICKET_REQUIRED' }),
    ]);

    const jws = await s.am.sign({
      cnf: { jkt: s.terminal.thumbprint },
      rsn: s.fw.serial,
      nonce: Buffer.from(cardEvent.nonce).toString('base64url'),
    });
    expect(s.send({ t: 'ticket', id: 3, jws })).toEqual([{ t: 'ticket-ok', id: 3 }]);
    const pin = digits(card.pin);
    const [block] = s.send({ t: 'pin', id: 4, digits: pin });
    if (block?.t !== 'pin-block') throw new Error(`no pin block: ${JSON.stringify(block)}`);
    expect(hostDecodePin(block.block, block.ksn as never, card.pan)).toBe(card.pin);
  });

  it('answers a start with a card already in the slot before sending the card event', async () => {
    const s = await setup();
    s.fw.presentCard('mastercard-pin', 'insert');
    const msgs = s.send({ t: 'start', id: 9, amount: 1, currency: 'GBP' });
    expect(msgs.map((m) => m.t)).toEqual(['started', 'card-inserted']);
  });

  it('answers abort with its id and sends reader-initiated aborts with a code', async () => {
    const s = await setup();
    s.send({ t: 'start', id: 1, amount: 1, currency: 'EUR' });
    s.fw.presentCard('visa-pin', 'insert');
    expect(s.send({ t: 'abort', id: 2 })).toEqual([{ t: 'aborted', id: 2 }]);
    s.send({ t: 'start', id: 3, amount: 1, currency: 'EUR' });
    const from = s.out.length;
    s.fw.removeCard();
    expect(s.out.slice(from)).toEqual([
      { t: 'card-removed', id: 0 },
      { t: 'aborted', id: 0, code: 'POS_ERR_READER_CARD_REMOVED' },
    ]);
  });

  it('reports tamper and ends the session', async () => {
    const s = await setup();
    const from = s.out.length;
    s.fw.tamper('test');
    expect(s.out.slice(from)).toEqual([{ t: 'tamper', id: 0 }]);
    expect(s.isClosed()).toBe(true);
    expect(s.svc.sessionOpen).toBe(false);
  });

  it('refuses handshake messages inside the channel', async () => {
    const s = await setup();
    const r = s.send({ t: 'offer', id: 5, versions: [1] });
    expect(r).toEqual([expect.objectContaining({ t: 'error', id: 5, code: 'POS_ERR_READER_UNEXPECTED' })]);
  });
});
