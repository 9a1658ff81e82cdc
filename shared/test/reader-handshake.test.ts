import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ManualTimer,
  SecureChannel,
  acceptTerminal,
  connectToReader,
  createMemoryLinkPair,
  encodeMessage,
  p256Signer,
  verifyReaderCertChain,
  type P256Signer,
  type ReaderHandshakeOptions,
  type ReaderMessage,
  type RecordMessage,
  type TerminalHandshakeOptions,
} from '../src/index';
import {
  NOW,
  der,
  fixedKey,
  makeCert,
  makeWorld,
  secretOf,
  sessionClaims,
  signTicket,
} from './reader-fixtures';

let w: Awaited<ReturnType<typeof makeWorld>>;
beforeAll(async () => {
  w = await makeWorld();
});

const terminalOpts = (over: Partial<TerminalHandshakeOptions> = {}): TerminalHandshakeOptions => ({
  deviceKey: p256Signer(w.deviceSecret),
  sessionTicket: signTicket(w.ticketSecret, sessionClaims(w.deviceJkt)),
  trustedRoots: [w.caDer],
  now: () => NOW,
  expectedSerial: 'SIM-0001',
  ...over,
});
const readerOpts = (over: Partial<ReaderHandshakeOptions> = {}): ReaderHandshakeOptions => ({
  identityKey: p256Signer(w.readerKey.secret),
  certChain: [w.readerDer],
  serial: 'SIM-0001',
  trustedTicketKeys: [w.ticketKey],
  now: () => NOW,
  ...over,
});

async function handshake(t: Partial<TerminalHandshakeOptions> = {}, r: Partial<ReaderHandshakeOptions> = {}) {
  const [tl, rl] = createMemoryLinkPair();
  const [term, reader] = await Promise.all([
    connectToReader(tl, terminalOpts(t)),
    acceptTerminal(rl, readerOpts(r)),
  ]);
  return { term, reader, tl, rl };
}

const code = (r: { ok: boolean; code?: string }) => (r.ok ? 'ok' : r.code);

describe('handshake', () => {
  it('succeeds, authenticates both ends and carries messages both ways', async () => {
    const { term, reader } = await handshake();
    if (!term.ok || !reader.ok) throw new Error(`${code(term)} / ${code(reader)}`);
    expect(term.reader.serial).toBe('SIM-0001');
    expect(term.version).toBe(1);
    expect(reader.terminal.thumbprint).toBe(w.deviceJkt);
    expect(reader.terminal.claims.sub).toBe('term_1');
    expect(term.session.channel.sessionId).toEqual(reader.session.channel.sessionId);

    reader.session.on('message', (m) => {
      if (m.t === 'start') reader.session.send({ t: 'started', id: m.id });
      if (m.t === 'pin') {
        expect([...m.digits]).toEqual([1, 2, 3, 4]);
        m.digits.fill(0);
        reader.session.send({
          t: 'error',
          id: m.id,
          code: 'POS_ERR_READER_TICKET_REQUIRED',
          detail: 'no ticket',
        });
      }
    });
    const started = await term.session.request({
      t: 'start',
      id: term.session.newId(),
      amount: 1250,
      currency: 'EUR',
    });
    expect(started.ok && started.message.t).toBe('started');
    const pin = await term.session.request({
      t: 'pin',
      id: term.session.newId(),
      digits: Uint8Array.of(1, 2, 3, 4),
    });
    expect(code(pin)).toBe('POS_ERR_READER_TICKET_REQUIRED');

    const events: ReaderMessage[] = [];
    term.session.on('message', (m) => events.push(m));
    reader.session.send({ t: 'card-removed', id: 0 });
    await new Promise((r) => setTimeout(r, 0));
    expect(events.map((e) => e.t)).toEqual(['card-removed']);

    const ended: string[] = [];
    reader.session.on('end', (e) => ended.push(e.code));
    term.session.close();
    await new Promise((r) => setTimeout(r, 0));
    expect(ended).toEqual(['POS_ERR_READER_SESSION_CLOSED']);
    expect(term.session.channel.closed).toBe(true);
  });

  it('accepts a chain that includes the root, and a chain through an intermediate CA', async () => {
    const withRoot = await handshake({}, { certChain: [w.readerDer, w.caDer] });
    expect(code(withRoot.term)).toBe('ok');

    const rootKey = await fixedKey(secretOf(40));
    const root = await makeCert(rootKey, undefined, { ca: true, subject: 'CN=Root' });
    const midKey = await fixedKey(secretOf(41));
    const mid = await makeCert(
      midKey,
      { key: rootKey, cert: root },
      { ca: true, pathLength: 0, subject: 'CN=Mid' },
    );
    const leaf = await makeCert(w.readerKey, { key: midKey, cert: mid }, { serial: 'SIM-0001' });
    const r = await handshake({ trustedRoots: [der(root)] }, { certChain: [der(leaf), der(mid)] });
    expect(code(r.term)).toBe('ok');
  });

  describe('terminal refuses the reader', () => {
    it('another CA: POS_ERR_READER_CERT_UNTRUSTED', async () => {
      const otherKey = await fixedKey(secretOf(50));
      const other = await makeCert(otherKey, undefined, { ca: true, subject: 'CN=Other CA' });
      const r = await handshake({ trustedRoots: [der(other)] });
      expect(code(r.term)).toBe('POS_ERR_READER_CERT_UNTRUSTED');
      expect(code(r.reader)).toBe('POS_ERR_READER_CERT_UNTRUSTED');
    });

    it('a CA with the same name but another key: POS_ERR_READER_CERT_SIGNATURE', async () => {
      const fakeKey = await fixedKey(secretOf(51));
      const fake = await makeCert(fakeKey, undefined, { ca: true });
      const r = await handshake({ trustedRoots: [der(fake)] });
      expect(code(r.term)).toBe('POS_ERR_READER_CERT_SIGNATURE');
    });

    it('a malformed chain: POS_ERR_READER_CERT_INVALID', async () => {
      const r = await handshake({}, { certChain: [new Uint8Array(100).fill(0x30)] });
      expect(code(r.term)).toBe('POS_ERR_READER_CERT_INVALID');
      const ca = await handshake({}, { certChain: [w.caDer] });
      expect(code(ca.term)).toBe('POS_ERR_READER_CERT_INVALID');
    });

    it('an expired or not yet valid certificate: POS_ERR_READER_CERT_EXPIRED', async () => {
      const old = await makeCert(w.readerKey, { key: w.caKey, cert: w.ca }, { notAfter: NOW - 60 });
      expect(code((await handshake({}, { certChain: [der(old)] })).term)).toBe('POS_ERR_READER_CERT_EXPIRED');
      const future = await makeCert(w.readerKey, { key: w.caKey, cert: w.ca }, { notBefore: NOW + 3600 });
      expect(code((await handshake({}, { certChain: [der(future)] })).term)).toBe(
        'POS_ERR_READER_CERT_EXPIRED',
      );
      expect(code((await handshake({ now: () => NOW + 20 * 365 * 86_400 })).term)).toBe(
        'POS_ERR_READER_CERT_EXPIRED',
      );
    });

    it('no paired serial: refused, never "any genuine reader" (L3)', async () => {
      for (const expectedSerial of [undefined, '']) {
        const opts = { ...terminalOpts(), expectedSerial } as unknown as TerminalHandshakeOptions;
        expect(code((await handshake(opts)).term)).toBe('POS_ERR_READER_SERIAL_MISMATCH');
      }
      const { expectedSerial: _pinned, ...unpinned } = terminalOpts();
      // @ts-expect-error -- expectedSerial is required: a terminal always pins the reader it paired with.
      const typed: TerminalHandshakeOptions = unpinned;
      const [tl, rl] = createMemoryLinkPair();
      const [term] = await Promise.all([connectToReader(tl, typed), acceptTerminal(rl, readerOpts())]);
      expect(code(term)).toBe('POS_ERR_READER_SERIAL_MISMATCH');
    });

    it('another reader serial: POS_ERR_READER_SERIAL_MISMATCH', async () => {
      expect(code((await handshake({ expectedSerial: 'SIM-0002' })).term)).toBe(
        'POS_ERR_READER_SERIAL_MISMATCH',
      );
    });

    it('a reader key that is not the certified one: POS_ERR_READER_SIGNATURE', async () => {
      const r = await handshake({}, { identityKey: p256Signer(secretOf(60)) });
      expect(code(r.term)).toBe('POS_ERR_READER_SIGNATURE');
      expect(code(r.reader)).toBe('POS_ERR_READER_SIGNATURE');
    });
  });

  describe('reader refuses the terminal', () => {
    const cases: [string, () => Partial<TerminalHandshakeOptions>, string][] = [
      [
        'a ticket for another reader',
        () => ({
          sessionTicket: signTicket(w.ticketSecret, sessionClaims(w.deviceJkt, { rsn: 'SIM-0002' })),
        }),
        'POS_ERR_TICKET_READER_MISMATCH',
      ],
      [
        'a ticket for another key',
        () => ({ sessionTicket: signTicket(w.ticketSecret, sessionClaims('A'.repeat(43))) }),
        'POS_ERR_TICKET_KEY_MISMATCH',
      ],
      [
        'an expired ticket',
        () => ({
          sessionTicket: signTicket(
            w.ticketSecret,
            sessionClaims(w.deviceJkt, { iat: NOW - 200, exp: NOW - 100 }),
          ),
        }),
        'POS_ERR_TICKET_EXPIRED',
      ],
      [
        'a forged ticket (right kid, wrong key)',
        () => ({ sessionTicket: signTicket(secretOf(70), sessionClaims(w.deviceJkt)) }),
        'POS_ERR_TICKET_SIGNATURE',
      ],
      [
        'a ticket under an unknown key id',
        () => ({ sessionTicket: signTicket(w.ticketSecret, sessionClaims(w.deviceJkt), 'am-9') }),
        'POS_ERR_TICKET_KEY_UNKNOWN',
      ],
      [
        'a PIN-entry ticket in place of a session ticket',
        () => ({
          sessionTicket: signTicket(
            w.ticketSecret,
            sessionClaims(w.deviceJkt, { use: 'pin-entry', nonce: 'AAAAAAAAAAAAAAAAAAAAAA' }),
          ),
        }),
        'POS_ERR_TICKET_USE',
      ],
      ['garbage in place of a ticket', () => ({ sessionTicket: 'not.a.ticket' }), 'POS_ERR_TICKET_MALFORMED'],
      [
        'a device-key signature by another key',
        (): Partial<TerminalHandshakeOptions> => {
          const other = p256Signer(secretOf(80));
          const lying: P256Signer = { publicKey: w.devicePublic, sign: (m) => other.sign(m) };
          return { deviceKey: lying };
        },
        'POS_ERR_READER_TERMINAL_SIGNATURE',
      ],
    ];
    it.each(cases)('%s', async (_name, over, expected) => {
      const r = await handshake(over());
      expect(code(r.reader)).toBe(expected);
      // The reader tells the terminal why, so it can show the code.
      expect(code(r.term)).toBe(expected);
    });
  });

  it('no common version: POS_ERR_READER_VERSION at both ends', async () => {
    const r = await handshake({ versions: [7] });
    expect(code(r.reader)).toBe('POS_ERR_READER_VERSION');
    expect(code(r.term)).toBe('POS_ERR_READER_VERSION');
  });

  it('times out on the injected timer: POS_ERR_READER_HANDSHAKE_TIMEOUT', async () => {
    const [tl] = createMemoryLinkPair(); // nobody answers
    const timer = new ManualTimer();
    const p = connectToReader(tl, { ...terminalOpts(), timer, timeoutMs: 1000 });
    timer.advance(1000);
    expect(code(await p)).toBe('POS_ERR_READER_HANDSHAKE_TIMEOUT');
  });

  it('a request unanswered times out on the injected timer; a closed link ends the session', async () => {
    const timer = new ManualTimer();
    const { term, rl } = await handshake({ timer } as Partial<TerminalHandshakeOptions>);
    if (!term.ok) throw new Error(term.code);
    const pending = term.session.request({ t: 'get-status', id: term.session.newId() }, 2000);
    await new Promise((r) => setTimeout(r, 0));
    timer.advance(2000);
    const r = await pending;
    expect(r.ok ? 'ok' : r.code).toBe('POS_ERR_READER_TIMEOUT');
    const ends: string[] = [];
    term.session.on('end', (e) => ends.push(e.code));
    const waiting = term.session.request({ t: 'get-status', id: term.session.newId() });
    rl.close();
    const w2 = await waiting;
    expect(w2.ok ? 'ok' : w2.code).toBe('POS_ERR_READER_SESSION_CLOSED');
    expect(ends).toEqual(['POS_ERR_READER_LINK_CLOSED']);
  });

  it('a message in the clear after the handshake ends the session', async () => {
    const { term, reader, rl } = await handshake();
    if (!term.ok || !reader.ok) throw new Error('handshake failed');
    const ends: string[] = [];
    term.session.on('end', (e) => ends.push(e.code));
    rl.send(encodeMessage({ t: 'card-removed', id: 0 }));
    await new Promise((r) => setTimeout(r, 0));
    expect(ends).toEqual(['POS_ERR_READER_UNEXPECTED']);
    expect(code(term.session.send({ t: 'abort', id: 5 }))).toBe('POS_ERR_READER_SESSION_CLOSED');
  });
});

describe('certificate verifier', () => {
  it('never throws on mutated certificates', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 255 }), (at, b) => {
        const c = w.readerDer.slice();
        c[at % c.length] = b;
        const r = verifyReaderCertChain([c], [w.caDer], { now: NOW });
        if (r.ok) expect(c).toEqual(w.readerDer); // only a no-op mutation may still verify
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), (bytes) => {
        expect(verifyReaderCertChain([bytes], [w.caDer], { now: NOW }).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

/** Two channel ends with fixed keys. */
function channelPair(limit?: number) {
  const k = (n: number, len: number) => new Uint8Array(len).fill(n);
  const t = new SecureChannel(
    'terminal',
    { sendKey: k(1, 32), sendIv: k(2, 12), receiveKey: k(3, 32), receiveIv: k(4, 12) },
    k(9, 16),
    limit,
  );
  const r = new SecureChannel(
    'reader',
    { sendKey: k(3, 32), sendIv: k(4, 12), receiveKey: k(1, 32), receiveIv: k(2, 12) },
    k(9, 16),
    limit,
  );
  return { t, r };
}
const seal = (c: SecureChannel, m: ReaderMessage): RecordMessage => {
  const s = c.seal(m);
  if (!s.ok) throw new Error(s.code);
  return s.record;
};

describe('secure channel', () => {
  it('delivers in order and ends on a replayed record', () => {
    const { t, r } = channelPair();
    const a = seal(t, { t: 'abort', id: 1 });
    expect(code(r.open(a))).toBe('ok');
    expect(code(r.open(a))).toBe('POS_ERR_READER_RECORD_REPLAY');
    expect(r.closed).toBe(true);
    expect(code(r.open(seal(t, { t: 'abort', id: 2 })))).toBe('POS_ERR_READER_SESSION_CLOSED');
  });

  it('ends on a reordered or lost record', () => {
    const { t, r } = channelPair();
    seal(t, { t: 'abort', id: 1 });
    expect(code(r.open(seal(t, { t: 'abort', id: 2 })))).toBe('POS_ERR_READER_RECORD_ORDER');
  });

  it('ends on any single-bit change of the ciphertext, a changed counter, or truncation', () => {
    fc.assert(
      fc.property(fc.nat(), (bit) => {
        const { t, r } = channelPair();
        const rec = seal(t, { t: 'pin', id: 3, digits: Uint8Array.of(1, 2, 3, 4) });
        const ct = rec.ct.slice();
        ct[(bit >> 3) % ct.length]! ^= 1 << (bit & 7);
        expect(code(r.open({ ...rec, ct }))).toBe('POS_ERR_READER_RECORD_AUTH');
        expect(r.closed).toBe(true);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 17, max: 60 }), (len) => {
        const { t, r } = channelPair();
        const rec = seal(t, { t: 'get-status', id: 3 });
        if (len >= rec.ct.length) return;
        expect(code(r.open({ ...rec, ct: rec.ct.subarray(0, len) }))).toBe('POS_ERR_READER_RECORD_AUTH');
      }),
    );
  });

  it('refuses a record reflected back to its sender', () => {
    const { t } = channelPair();
    const rec = seal(t, { t: 'abort', id: 1 });
    const { t: t2 } = channelPair();
    expect(code(t2.open(rec))).toBe('POS_ERR_READER_RECORD_AUTH');
  });

  it('refuses messages a side may not send, and never wraps the counter', () => {
    const { t, r } = channelPair(2);
    expect(code(t.seal({ t: 'pin-block', id: 1, block: new Uint8Array(16), ksn: new Uint8Array(12) }))).toBe(
      'POS_ERR_READER_UNEXPECTED',
    );
    expect(code(t.seal({ t: 'hello', id: 1, epk: w.devicePublic, nonce: new Uint8Array(32) }))).toBe(
      'POS_ERR_READER_UNEXPECTED',
    );
    r.open(seal(t, { t: 'abort', id: 1 }));
    r.open(seal(t, { t: 'abort', id: 2 }));
    expect(code(t.seal({ t: 'abort', id: 3 }))).toBe('POS_ERR_READER_RECORD_LIMIT');
    expect(t.closed).toBe(true);
  });
});
