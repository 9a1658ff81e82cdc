/**
 * Known gap 1 closed: the reader ends what a session may do when its session ticket expires. At or
 * after the ticket's `exp` by the reader's clock (no skew, as for the PIN) the session starts no
 * transaction (POS_ERR_READER_SESSION_EXPIRED) but still answers `get-status`; a `renew` with a fresh
 * session ticket, verified as the handshake's, replaces the session's expiry and grant; a refused
 * renewal leaves both as they were. A transaction started under a live session may finish.
 *
 * Time is the firmware's injected clock: the tests move it, they never wait for it.
 */
import { findTestCard, type TicketClaims } from '@pos/shared';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { ReaderFirmware, type ReaderEvent } from '../src/firmware/reader';
import { openReaderState } from '../src/state/store';
import {
  connectMemoryTerminal,
  digits,
  hostDecodePin,
  makeTerminalKey,
  makeTestAm,
  startHidSim,
  tempStateDir,
  TEST_KID,
  type Cleanups,
  type TestAm,
  type TestTerminalKey,
} from './support';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The reader's clock: real time at the start of the test plus what the test adds. */
function fakeClock(): { now: () => number; advanceS: (s: number) => void; nowS: () => number } {
  const base = Date.now();
  let offset = 0;
  const now = () => base + offset;
  return { now, advanceS: (s) => (offset += s * 1000), nowS: () => Math.floor(now() / 1000) };
}

interface Rig {
  fw: ReaderFirmware;
  am: TestAm;
  terminal: TestTerminalKey;
  clock: ReturnType<typeof fakeClock>;
  events: ReaderEvent[];
  /** A session ticket by the reader's clock: bound to this terminal and reader, live for 60 s. */
  sessionTicket: (extra?: Partial<TicketClaims>) => Promise<string>;
}

async function rig(perm: TicketClaims['perm'] = ['transact']): Promise<Rig> {
  const t = tempStateDir();
  cleanups.push(t.cleanup);
  const opened = await openReaderState(t.dir);
  if (!opened.ok) throw new Error(opened.code);
  const clock = fakeClock();
  const fw = new ReaderFirmware(opened.state, { firmwareHash: 'AB'.repeat(32), clock: { now: clock.now } });
  const am = await makeTestAm();
  expect(fw.trust(am.jwks).ok).toBe(true);
  const terminal = await makeTerminalKey();
  const sessionTicket = (extra: Partial<TicketClaims> = {}) =>
    am.sign({
      use: 'session',
      cnf: { jkt: terminal.thumbprint },
      rsn: fw.serial,
      perm: ['transact'],
      iat: clock.nowS(),
      exp: clock.nowS() + 60,
      ...extra,
    });
  // The session as the link layer opens it: the handshake ticket's grant, expiry and jti.
  expect(
    fw.setSession(terminal.thumbprint, { perm, exp: clock.nowS() + 60, jti: 'handshake-jti-1' }).ok,
  ).toBe(true);
  const events: ReaderEvent[] = [];
  fw.onEvent((e) => events.push(e));
  return { fw, am, terminal, clock, events, sessionTicket };
}

const codeOf = (r: { ok: boolean; code?: string }): string => (r.ok ? 'ok' : (r.code ?? '?'));

describe('reader firmware: the session ends with its session ticket', () => {
  it('one second before exp a transaction starts; at exp it is refused with SESSION_EXPIRED, status still given', async () => {
    const r = await rig();
    r.clock.advanceS(59);
    expect(codeOf(r.fw.start(100, 'EUR'))).toBe('ok');
    expect(r.fw.abort().ok).toBe(true);
    r.clock.advanceS(1); // now == exp: not accepted on or after exp (RFC 7519)
    const refused = r.fw.start(100, 'EUR');
    expect(refused).toMatchObject({ ok: false, code: 'POS_ERR_READER_SESSION_EXPIRED' });
    if (!refused.ok) expect(refused.detail).toContain('present a fresh session ticket');
    expect(r.fw.txnState).toBe('idle');
    // A card in the slot is not read for an expired session.
    expect(r.fw.presentCard('visa-pin', 'insert').ok).toBe(true);
    expect(r.fw.txnState).toBe('idle');
    expect(r.events.some((e) => e.event === 'card-read')).toBe(false);
    // The status the terminal needs to attest (and so to get a fresh ticket) is still there.
    expect(r.fw.status()).toMatchObject({ serial: r.fw.serial, tampered: false, time: r.clock.nowS() });
  });

  it('a renewal with a fresh session ticket restores the session (new expiry, start allowed)', async () => {
    const r = await rig();
    r.clock.advanceS(61);
    expect(codeOf(r.fw.start(100, 'EUR'))).toBe('POS_ERR_READER_SESSION_EXPIRED');
    const fresh = await r.sessionTicket();
    const renewed = r.fw.renewSession(fresh);
    expect(renewed).toEqual({ ok: true, exp: r.clock.nowS() + 60, perm: ['transact'] });
    expect(r.fw.sessionExpiry).toBe(r.clock.nowS() + 60);
    expect(codeOf(r.fw.start(100, 'EUR'))).toBe('ok');
    expect(r.events).toContainEqual({ event: 'renew', accepted: true });
  });

  it('a renewal upgrades a handshake-only session (perm []) to transact without a new handshake', async () => {
    const r = await rig([]);
    expect(codeOf(r.fw.start(100, 'EUR'))).toBe('POS_ERR_TICKET_PERMISSION');
    expect(r.fw.renewSession(await r.sessionTicket({ perm: ['transact'] })).ok).toBe(true);
    expect(codeOf(r.fw.start(100, 'EUR'))).toBe('ok');
    // and the reverse: a renewal under a handshake-only ticket takes `transact` away again
    expect(r.fw.abort().ok).toBe(true);
    expect(r.fw.renewSession(await r.sessionTicket({ perm: [] })).ok).toBe(true);
    expect(codeOf(r.fw.start(100, 'EUR'))).toBe('POS_ERR_TICKET_PERMISSION');
  });

  it('refuses a renewal with the failed check’s code, and the session keeps its expiry and grant', async () => {
    const r = await rig();
    const other = await makeTerminalKey();
    const otherAm = await makeTestAm(TEST_KID); // same key id, another key: the signature fails
    const used = await r.sessionTicket();
    expect(r.fw.renewSession(used).ok).toBe(true);
    const exp = r.fw.sessionExpiry;
    r.clock.advanceS(1);
    const cases: [string, string][] = [
      ['wrong terminal key', await r.sessionTicket({ cnf: { jkt: other.thumbprint } })],
      ['wrong reader serial', await r.sessionTicket({ rsn: 'SIM-OTHER' })],
      ['expired', await r.sessionTicket({ iat: r.clock.nowS() - 70, exp: r.clock.nowS() - 10 })],
      ['replayed jti', used],
      ["the handshake's own ticket", await r.sessionTicket({ jti: 'handshake-jti-1' })],
      ['not of session use', await r.sessionTicket({ use: 'pin-entry', nonce: 'A'.repeat(43) })],
      [
        'bad signature',
        await otherAm.sign({
          use: 'session',
          cnf: { jkt: r.terminal.thumbprint },
          rsn: r.fw.serial,
          iat: r.clock.nowS(),
          exp: r.clock.nowS() + 60,
        }),
      ],
      [
        'unknown key id',
        await r.am.sign(
          { use: 'session', cnf: { jkt: r.terminal.thumbprint }, rsn: r.fw.serial },
          { kid: 'nope' },
        ),
      ],
      ['contraindicated tier', await r.sessionTicket({ tier: 'contraindicated' })],
      ['not a JWS', 'a.b.c'],
    ];
    const codes = Object.fromEntries(cases.map(([name, jws]) => [name, codeOf(r.fw.renewSession(jws))]));
    expect(codes).toEqual({
      'wrong terminal key': 'POS_ERR_TICKET_KEY_MISMATCH',
      'wrong reader serial': 'POS_ERR_TICKET_READER_MISMATCH',
      expired: 'POS_ERR_TICKET_EXPIRED',
      'replayed jti': 'POS_ERR_SIM_TICKET_REPLAYED',
      "the handshake's own ticket": 'POS_ERR_SIM_TICKET_REPLAYED',
      'not of session use': 'POS_ERR_TICKET_USE',
      'bad signature': 'POS_ERR_TICKET_SIGNATURE',
      'unknown key id': 'POS_ERR_TICKET_KEY_UNKNOWN',
      'contraindicated tier': 'POS_ERR_TICKET_TIER',
      'not a JWS': 'POS_ERR_TICKET_MALFORMED',
    });
    expect(r.fw.sessionExpiry).toBe(exp);
    expect(r.events.filter((e) => e.event === 'renew' && !e.accepted)).toHaveLength(cases.length);
    // Still the old session: live until its own exp, then refused; a refused renewal changed nothing.
    expect(codeOf(r.fw.start(100, 'EUR'))).toBe('ok');
    expect(r.fw.abort().ok).toBe(true);
    r.clock.advanceS(60);
    expect(codeOf(r.fw.start(100, 'EUR'))).toBe('POS_ERR_READER_SESSION_EXPIRED');
    expect(codeOf(r.fw.renewSession(await r.sessionTicket({ rsn: 'SIM-OTHER' })))).toBe(
      'POS_ERR_TICKET_READER_MISMATCH',
    );
    expect(codeOf(r.fw.start(100, 'EUR'))).toBe('POS_ERR_READER_SESSION_EXPIRED');
  });

  it('property: any other text as a renewal ticket is refused with a code and changes nothing', async () => {
    const r = await rig([]);
    const exp = r.fw.sessionExpiry;
    const good = await r.sessionTicket();
    const [h, p, sig] = good.split('.') as [string, string, string];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.string({ maxLength: 80 }).map((x) => `${h}.${p}.${x}`),
          fc.string({ maxLength: 80 }).map((x) => `${h}.${x}.${sig}`),
          // a character of the claims changed (not their last: base64url may leave its low bits unused)
          fc
            .integer({ min: h.length + 1, max: h.length + p.length - 1 })
            .map((i) => good.slice(0, i) + (good[i] === 'A' ? 'B' : 'A') + good.slice(i + 1)),
        ),
        (jws) => {
          fc.pre(jws !== good);
          const res = r.fw.renewSession(jws);
          expect(res.ok).toBe(false);
          if (!res.ok) expect(res.code).toMatch(/^POS_ERR_(TICKET|SIM)_[A-Z_]+$/);
          expect(r.fw.sessionExpiry).toBe(exp);
          expect(codeOf(r.fw.start(100, 'EUR'))).toBe('POS_ERR_TICKET_PERMISSION');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses a renewal without a session, and once the session has ended', async () => {
    const r = await rig();
    const ticket = await r.sessionTicket();
    r.fw.endSession();
    expect(codeOf(r.fw.renewSession(ticket))).toBe('POS_ERR_SIM_NO_SESSION');
    expect(r.fw.sessionExpiry).toBeUndefined();
  });

  it('a transaction started before the session expired finishes with its own PIN-entry ticket', async () => {
    const r = await rig();
    expect(codeOf(r.fw.start(1234, 'EUR'))).toBe('ok');
    expect(r.fw.presentCard('visa-pin', 'insert').ok).toBe(true);
    const read = r.fw.cardRead();
    if (!read.ok) throw new Error(read.code);
    r.clock.advanceS(90); // the session's ticket is 30 s past its exp
    const pinTicket = await r.am.sign({
      use: 'pin-entry',
      cnf: { jkt: r.terminal.thumbprint },
      rsn: r.fw.serial,
      nonce: Buffer.from(read.read.nonce).toString('base64url'),
      iat: r.clock.nowS(),
      exp: r.clock.nowS() + 60,
    });
    expect(codeOf(r.fw.submitTicket(pinTicket))).toBe('ok');
    const card = findTestCard('visa-pin');
    if (card === undefined) throw new Error('catalogue');
    const block = r.fw.submitPin(digits(card.pin));
    if (!block.ok) throw new Error(`${block.code}: ${block.detail}`);
    expect(hostDecodePin(block.pinBlock, block.ksn, card.pan)).toBe(card.pin);
    // ... and the next one is refused until the session is renewed.
    r.fw.removeCard();
    expect(codeOf(r.fw.start(1234, 'EUR'))).toBe('POS_ERR_READER_SESSION_EXPIRED');
  });
});

describe('reader link: renew and an expired session over the secure channel', () => {
  async function connect() {
    const am = await makeTestAm();
    const clock = fakeClock();
    const sim = await startHidSim(cleanups, am, { clock: { now: clock.now } });
    const { term } = await connectMemoryTerminal(sim, (c) =>
      am.sign({ ...c, iat: clock.nowS(), exp: clock.nowS() + 60 }),
    );
    cleanups.push(() => term.close());
    const fresh = (extra: Partial<TicketClaims> = {}) =>
      am.sign({
        use: 'session',
        cnf: { jkt: term.thumbprint },
        rsn: sim.ready.serial,
        perm: ['transact'],
        iat: clock.nowS(),
        exp: clock.nowS() + 60,
        ...extra,
      });
    return { sim, term, clock, fresh };
  }

  it('expired: start refused with the code, get-status answered; renew → renewed { exp }; start works', async () => {
    const { sim, term, clock, fresh } = await connect();
    clock.advanceS(60);
    const start = await term.request({ t: 'start', id: term.newId(), amount: 500, currency: 'EUR' });
    expect(start).toMatchObject({ ok: false, code: 'POS_ERR_READER_SESSION_EXPIRED' });
    const status = await term.request({ t: 'get-status', id: term.newId(), challenge: new Uint8Array([7]) });
    expect(status.ok && status.message.t).toBe('status');
    const renewed = await term.request({ t: 'renew', id: term.newId(), jws: await fresh() });
    expect(renewed.ok && renewed.message).toMatchObject({ t: 'renewed', exp: clock.nowS() + 60 });
    // the control API shows the open session's expiry
    expect(sim.status()).toMatchObject({ session: true, sessionExpiresAt: clock.nowS() + 60 });
    const again = await term.request({ t: 'start', id: term.newId(), amount: 500, currency: 'EUR' });
    expect(again.ok && again.message.t).toBe('started');
    expect(sim.fw.txnState).toBe('waiting-for-card');
  });

  it('a refused renew is an error with the code; the session stays open and unchanged', async () => {
    const { sim, term, clock, fresh } = await connect();
    const exp = sim.fw.sessionExpiry;
    const refused = await term.request({
      t: 'renew',
      id: term.newId(),
      jws: await fresh({ rsn: 'SIM-OTHER' }),
    });
    expect(refused).toMatchObject({ ok: false, code: 'POS_ERR_TICKET_READER_MISMATCH' });
    expect(sim.host.sessionOpen).toBe(true);
    expect(sim.fw.sessionExpiry).toBe(exp);
    const start = await term.request({ t: 'start', id: term.newId(), amount: 500, currency: 'EUR' });
    expect(start.ok).toBe(true);
    expect((await term.request({ t: 'abort', id: term.newId() })).ok).toBe(true);
    clock.advanceS(60);
    const late = await term.request({ t: 'start', id: term.newId(), amount: 500, currency: 'EUR' });
    expect(late).toMatchObject({ ok: false, code: 'POS_ERR_READER_SESSION_EXPIRED' });
  });
});
