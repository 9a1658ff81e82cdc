/**
 * DEVELOPMENT ONLY: `pos-reader-sim --demo`. A built-in terminal and A&M stand-in talk to the reader
 * over its in-process HID link, so a developer with no terminal can press `i` and watch the whole
 * reader side of a PIN transaction: card read (masked PAN, encrypted card data, nonce), PIN-entry
 * ticket checked, the card's test PIN sent through the secure channel, the PIN block returned and
 * checked host-side with the development BDK. Events never show the PIN, the PAN or a key: the host
 * check says only whether the PIN block decrypts to the card's test PIN.
 */
import {
  aesDukptWorkingKey,
  constantTimeEqual,
  decodePinBlock,
  DEV_BDK_HEX,
  findTestCard,
  hex,
  parsePan,
  pinDigitsFromText,
  publicKeyFromJwk,
  wipe,
  type AesKsn,
  type ReaderMessage,
  type TestCard,
} from '@pos/shared';
import { devAm } from '../dev/am';
import { DevTerminal } from '../dev/terminal';
import type { Simulator } from '../sim';

type Emit = (e: Record<string, unknown>) => void;

/** Whether the PIN block decrypts (development BDK, its KSN) to the card's test PIN. */
function hostCheck(block: Uint8Array, ksn: AesKsn, card: TestCard): boolean {
  const key = aesDukptWorkingKey({ bdk: hex(DEV_BDK_HEX), ksn, usage: 'pin-encryption', keyType: 'aes128' });
  const pan = parsePan(card.pan);
  if (!key.ok || !pan.ok) return false;
  const pin = decodePinBlock({ format: 4, block, pan: pan.pan, key: key.key });
  wipe(key.key);
  if (!pin.ok) return false;
  const expected = pinDigitsFromText(card.pin);
  const same = expected.ok && constantTimeEqual(pin.pin, expected.pin);
  wipe(pin.pin, expected.ok ? expected.pin : undefined);
  return same;
}

export interface Demo {
  stop(): void;
}

/** Starts the demo terminal on `sim` (which must run the HID transport). */
export async function startDemo(
  sim: Simulator,
  emit: Emit,
): Promise<Demo | { code: string; detail: string }> {
  const hid = sim.hid;
  const identity = sim.fw.identity;
  if (hid === undefined || identity === undefined) {
    return {
      code: 'POS_ERR_SIM_BAD_REQUEST',
      detail: 'the demo needs an untampered reader on the HID transport',
    };
  }
  const am = devAm('demo-am');
  const jwk = am.jwks.keys[0];
  const pub = publicKeyFromJwk(jwk);
  if (!pub.ok || jwk === undefined)
    return { code: 'POS_ERR_SIM_INTERNAL', detail: 'the demo key is not valid' };
  sim.fw.trustUntilExit({ kid: am.kid, publicKey: pub.publicKey });
  const connected = await DevTerminal.connect({
    link: hid.host,
    caCertificateDer: identity.caCertificateDer,
    serial: sim.ready.serial,
    signTicket: (c) => am.sign(c),
  });
  if (!connected.ok) return { code: connected.code, detail: connected.detail };
  const term = connected.terminal;
  let stopped = false;
  let lastCard: TestCard | undefined;
  let waitingForRemoval = false;
  const say = (step: string, extra: Record<string, unknown> = {}): void =>
    emit({ event: 'demo', step, ...extra });
  const unsubscribeCard = sim.fw.onEvent((e) => {
    if (e.event === 'card' && e.action !== 'removed') lastCard = findTestCard(e.card);
  });

  const ask = async (msg: ReaderMessage & { id: number }): Promise<ReaderMessage | undefined> => {
    const r = await term.request(msg);
    if (!r.ok) {
      say('refused', { request: msg.t, code: r.code });
      return undefined;
    }
    return r.message;
  };

  const nextTransaction = async (): Promise<void> => {
    if (stopped) return;
    waitingForRemoval = false;
    const started = await ask({ t: 'start', id: term.newId(), amount: 1000, currency: 'EUR' });
    if (started !== undefined) say('transaction started (10.00 EUR): press i to insert or p to tap a card');
  };

  const onCard = async (m: Extract<ReaderMessage, { t: 'card-inserted' | 'card-tapped' }>): Promise<void> => {
    const card = lastCard;
    say('card read', { pan: m.pan, scheme: m.scheme, pinRequired: m.pinRequired, expired: m.expired });
    const finish = async (): Promise<void> => {
      if (m.t === 'card-tapped') await nextTransaction();
      else {
        waitingForRemoval = true;
        say('done: press r to remove the card');
      }
    };
    if (m.expired || !m.pinRequired || card === undefined) {
      say(m.expired ? 'the card is expired: no PIN' : 'the card needs no PIN');
      await finish();
      return;
    }
    const ok = await ask({ t: 'ticket', id: term.newId(), jws: await term.pinTicket(m) });
    if (ok === undefined) return;
    say('PIN-entry ticket accepted; sending the test PIN through the secure channel');
    const digits = pinDigitsFromText(card.pin);
    if (!digits.ok) return;
    const answer = await ask({ t: 'pin', id: term.newId(), digits: new Uint8Array(digits.pin) });
    wipe(digits.pin);
    if (answer?.t !== 'pin-block') return;
    const ksn = answer.ksn as AesKsn;
    say('PIN block returned', {
      ksnCounter: new DataView(ksn.buffer, ksn.byteOffset + 8, 4).getUint32(0),
      hostCheck: hostCheck(answer.block, ksn, card)
        ? 'decrypts to the card PIN'
        : 'DOES NOT decrypt to the card PIN',
    });
    await finish();
  };

  const unsubscribe = term.session.on('message', (m) => {
    term.events.length = 0; // the demo reacts to events here; nothing waits on the queue
    if (stopped) return;
    if (m.t === 'card-inserted' || m.t === 'card-tapped') void onCard(m);
    else if (m.t === 'card-removed' && waitingForRemoval) void nextTransaction();
    else if (m.t === 'aborted' && m.id === 0) {
      say('aborted by the reader', { code: m.code ?? null });
      void nextTransaction();
    }
  });
  term.session.on('end', (reason) => {
    if (!stopped) say('session ended', { code: reason.code });
  });
  await nextTransaction();
  return {
    stop: () => {
      stopped = true;
      unsubscribe();
      unsubscribeCard();
      term.close();
    },
  };
}
