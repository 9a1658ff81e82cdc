/** The same handshake and channel over both transports: serial (COBS frames) and HID (64-byte reports). */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  HID_BROADCAST_CID,
  HID_COMMANDS,
  acceptTerminal,
  connectToReader,
  createHidLinkPair,
  createSerialLinkPair,
  fragmentHid,
  p256Signer,
  type ReaderLink,
} from '../src/index';
import { NOW, makeWorld, sessionClaims, signTicket } from './reader-fixtures';

let w: Awaited<ReturnType<typeof makeWorld>>;
beforeAll(async () => {
  w = await makeWorld();
});

async function run(terminalLink: ReaderLink, readerLink: ReaderLink) {
  const [term, reader] = await Promise.all([
    connectToReader(terminalLink, {
      deviceKey: p256Signer(w.deviceSecret),
      sessionTicket: signTicket(w.ticketSecret, sessionClaims(w.deviceJkt)),
      trustedRoots: [w.caDer],
      now: () => NOW,
      expectedSerial: 'SIM-0001',
    }),
    acceptTerminal(readerLink, {
      identityKey: p256Signer(w.readerKey.secret),
      certChain: [w.readerDer, w.caDer],
      serial: 'SIM-0001',
      trustedTicketKeys: [w.ticketKey],
      now: () => NOW,
    }),
  ]);
  if (!term.ok || !reader.ok)
    throw new Error(`${term.ok ? 'ok' : term.code} / ${reader.ok ? 'ok' : reader.code}`);
  reader.session.on('message', (m) => {
    if (m.t === 'get-status')
      reader.session.send({ t: 'error', id: m.id, code: 'POS_ERR_READER_STATE', detail: 'test' });
  });
  const r = await term.session.request({ t: 'get-status', id: term.session.newId() });
  expect(r.ok ? 'ok' : r.code).toBe('POS_ERR_READER_STATE');
  return { term, reader };
}

describe('one message layer over both transports', () => {
  it('serial: the handshake (4 KiB of certificates) and a request over COBS frames', async () => {
    const [t, r] = createSerialLinkPair();
    await run(t, r);
    t.close();
    r.close();
  });

  it('HID: the handshake and a request over 64-byte reports, despite a stray INIT', async () => {
    const [host, device] = createHidLinkPair();
    const { term } = await run(host, device);
    // Another program allocates a channel: the session goes on.
    for (const rep of fragmentHid(
      HID_BROADCAST_CID,
      HID_COMMANDS.init,
      Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8),
    ))
      device.receiveReport(rep);
    await new Promise((res) => setTimeout(res, 0));
    const again = await term.session.request({ t: 'get-status', id: term.session.newId() });
    expect(again.ok ? 'ok' : again.code).toBe('POS_ERR_READER_STATE');
    host.close();
    device.close();
  });
});
