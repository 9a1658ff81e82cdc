/**
 * The terminal keeps its reader session's ticket fresh (docs/reader-protocol.md §5.5): a session
 * ticket from an attestation goes to the open session as a `renew`; a refused renewal falls back to a
 * new handshake with the newest ticket; before a sale a session at its end (or status only) is renewed
 * with a pre-transaction attestation's ticket, and a fine one costs no attestation; a `start` the
 * reader refuses as expired gets one renewal and one retry, then a clear error.
 *
 * The real ReaderConnection, SessionReaderPort, ReaderSessionKeeper and TransactionEngine against the
 * in-process reader simulator over a memory link. The reader's clock is injected (the tests move it);
 * attestations are a fake that signs session tickets with a development A&M key.
 */
import { connectToReader, createMemoryLinkPair, ok, p256Signer, type TicketClaims } from '@pos/shared';
import { Simulator } from '@pos/device-sim/sim';
import { afterEach, describe, expect, it } from 'vitest';
import type { AttestAnswer } from '../src/core/attest/agent';
import { ReaderConnection, readSessionGrant } from '../src/core/reader/connection';
import { LostSignal, type ReaderDevice, type ReaderDriver } from '../src/core/reader/device';
import { SessionReaderPort } from '../src/core/reader/reader-port';
import { ReaderSessionKeeper } from '../src/core/reader/session-keeper';
import { TransactionEngine, type BackendPort } from '../src/core/transaction';
import { tempDir, testTerminal, until } from './support';
import { FakePush } from './txn-fakes';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface RigOptions {
  /** `perm` of the first session ticket (the handshake's). */
  readonly perm?: TicketClaims['perm'];
  /** Lifetime of the first session ticket (s; default 60). */
  readonly lifetimeS?: number;
  /** What the fake attestation answers (default: a fresh transact session ticket by the reader's clock). */
  readonly attestAnswer?: () => AttestAnswer;
  /** The terminal's clock: the reader's (default), or the real one (the reader's may run ahead). */
  readonly terminalClock?: 'reader' | 'real';
}

async function rig(o: RigOptions = {}) {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const term = testTerminal();
  const base = Date.now();
  let readerOffsetMs = 0;
  const readerNowS = () => Math.floor((base + readerOffsetMs) / 1000);
  const events: Record<string, unknown>[] = [];
  const started = await Simulator.start({
    stateDir: t.dir,
    transport: 'hid',
    clock: { now: () => base + readerOffsetMs },
    onEvent: (e) => events.push(e),
  });
  if (!started.ok) throw new Error(started.code);
  const sim = started.sim;
  cleanups.push(() => sim.stop());
  expect(sim.fw.trust(term.am.jwks).ok).toBe(true);
  const identity = sim.fw.identity;
  if (identity === undefined) throw new Error('no identity');
  const serial = sim.ready.serial;

  /** A session ticket for this terminal and reader, issued now by the reader's clock. */
  const sessionTicket = (extra: Partial<TicketClaims> = {}): { jws: string; exp: number } => {
    const iat = readerNowS();
    const exp = extra.exp ?? iat + 60;
    return {
      jws: term.am.sign({
        use: 'session',
        cnf: { jkt: term.thumbprint },
        rsn: serial,
        perm: ['transact'],
        iat,
        ...extra,
        exp,
      }),
      exp,
    };
  };
  // The terminal's newest session ticket (what its attestations gave it): the handshake presents it.
  let latest = sessionTicket({
    perm: o.perm ?? ['transact'],
    ...(o.lifetimeS === undefined ? {} : { exp: readerNowS() + o.lifetimeS }),
  });
  let handshakes = 0;
  const driver: ReaderDriver = {
    kind: 'serial',
    open: () => {
      const [a, b] = createMemoryLinkPair();
      sim.attachLink(b);
      const lost = new LostSignal();
      const device: ReaderDevice = {
        kind: 'serial',
        where: 'memory',
        link: a,
        onLost: (cb) => lost.on(cb),
        close: () => {
          a.close();
          return Promise.resolve();
        },
        get closed() {
          return a.closed;
        },
      };
      return Promise.resolve(ok({ device }));
    },
  };
  const conn = new ReaderConnection({
    driver,
    heartbeatMs: 0,
    backoff: { initialMs: 20, maxMs: 40, jitter: 0 },
    handshake: async (link) => {
      handshakes++;
      const ticket = latest.jws;
      const r = await connectToReader(link, {
        deviceKey: p256Signer(term.secretKey),
        sessionTicket: ticket,
        trustedRoots: [identity.caCertificateDer],
        now: () => Math.floor(Date.now() / 1000),
        expectedSerial: serial,
        timeoutMs: 5000,
      });
      return r.ok ? { ok: true, session: r.session, ticket } : r;
    },
  });
  cleanups.push(() => conn.close());
  const refusals: string[] = [];
  conn.on('renew-refused', (e) => refusals.push(e.code));

  let attestations = 0;
  const answer = (): AttestAnswer => {
    if (o.attestAnswer !== undefined) return o.attestAnswer();
    const s = sessionTicket();
    return { verdict: 'affirming', ticket: s.jws, ticketUse: 'session', ticketExpiresAt: s.exp };
  };
  const keeper = new ReaderSessionKeeper({
    connection: conn,
    latestTicket: () => latest,
    // As the headless terminal: the answer's session ticket is kept, then handed to the keeper.
    attest: () => {
      attestations++;
      const a = answer();
      if (a.ticket !== undefined && a.ticketUse === 'session' && a.ticketExpiresAt !== undefined) {
        latest = { jws: a.ticket, exp: a.ticketExpiresAt };
        void keeper.afterAttestation(a);
      }
      return Promise.resolve({ ok: true, answer: a });
    },
    nowS: o.terminalClock === 'real' ? () => Math.floor(Date.now() / 1000) : readerNowS,
    reconnectTimeoutMs: 200,
  });
  conn.start();
  await conn.whenConnected();

  const backend: BackendPort = {
    prePin: () => Promise.resolve({ ok: false, code: 'POS_ERR_DESKTOP_BACKEND_NO_TICKET', detail: 'n/a' }),
    submit: () => Promise.resolve({ ok: true, outcome: 'approved' }),
  };
  const port = new SessionReaderPort(
    conn,
    undefined,
    () => keeper.ensureTransact(),
    () => keeper.renewExpired(),
  );
  cleanups.push(() => port.dispose());
  const engine = new TransactionEngine({ reader: port, backend, push: new FakePush() });
  cleanups.push(() => engine.dispose());

  return {
    sim,
    conn,
    keeper,
    engine,
    events,
    refusals,
    sessionTicket,
    setLatest: (t: { jws: string; exp: number }) => (latest = t),
    advanceReaderS: (s: number) => (readerOffsetMs += s * 1000),
    readerNowS,
    counts: () => ({ handshakes, attestations }),
  };
}

type Rig = Awaited<ReturnType<typeof rig>>;

/** Begins a sale and waits for it to reach the reader (waiting for a card) or to end. */
async function saleToCard(r: Rig): Promise<void> {
  expect(r.engine.begin()).toEqual({ ok: true });
  expect(r.engine.enterAmount(700, 'EUR')).toEqual({ ok: true });
  await until(
    () => r.sim.fw.txnState === 'waiting-for-card' || r.engine.state === 'result',
    'the reader waiting for a card, or the sale ended',
  );
}

const renewEvents = (r: Rig) => r.events.filter((e) => e['event'] === 'renew');

describe('reader session renewal (terminal core)', () => {
  it('a session ticket from an attestation is sent to the open session as renew; the held one is not resent', async () => {
    const r = await rig();
    const first = r.conn.grant;
    expect(first).toBeDefined();
    r.advanceReaderS(5);
    const next = r.sessionTicket();
    const renewed = await r.keeper.afterAttestation({
      verdict: 'affirming',
      ticket: next.jws,
      ticketUse: 'session',
      ticketExpiresAt: next.exp,
    });
    expect(renewed).toEqual({ ok: true, via: 'renew' });
    expect(r.sim.fw.sessionExpiry).toBe(next.exp);
    expect(r.conn.grant).toEqual(readSessionGrant(next.jws));
    expect(renewEvents(r)).toEqual([{ event: 'renew', accepted: true }]);
    // the same ticket again, or a PIN-entry ticket: nothing is sent
    expect(
      await r.keeper.afterAttestation({ verdict: 'affirming', ticket: next.jws, ticketUse: 'session' }),
    ).toEqual({ ok: true, via: 'none' });
    expect(
      await r.keeper.afterAttestation({ verdict: 'affirming', ticket: 'x.y.z', ticketUse: 'pin-entry' }),
    ).toEqual({ ok: true, via: 'none' });
    expect(renewEvents(r)).toHaveLength(1);
    expect(r.counts().handshakes).toBe(1);
  });

  it('a renewal the reader refuses falls back to a new handshake with the newest ticket', async () => {
    const r = await rig();
    const next = r.sessionTicket();
    // The reader has seen this ticket's jti already (used once at it): it refuses it as a renewal,
    // but a handshake may present it.
    expect(r.sim.fw.renewSession(next.jws).ok).toBe(true);
    r.setLatest(next);
    const renewed = await r.conn.renew(next.jws);
    expect(renewed).toEqual({ ok: true, via: 'handshake' });
    expect(r.refusals).toEqual(['POS_ERR_SIM_TICKET_REPLAYED']);
    expect(r.counts().handshakes).toBe(2);
    expect(r.conn.grant?.jws).toBe(next.jws);
    expect(r.sim.fw.sessionExpiry).toBe(next.exp);
  });

  it('a renewal refused in the background leaves the session as it is (a sale may be using it)', async () => {
    const r = await rig();
    const before = r.conn.grant;
    const next = r.sessionTicket();
    expect(r.sim.fw.renewSession(next.jws).ok).toBe(true); // its jti is spent at the reader
    const exp = r.sim.fw.sessionExpiry;
    const renewed = await r.keeper.afterAttestation({
      verdict: 'affirming',
      ticket: next.jws,
      ticketUse: 'session',
      ticketExpiresAt: next.exp,
    });
    expect(renewed).toMatchObject({ ok: false, code: 'POS_ERR_SIM_TICKET_REPLAYED' });
    expect(r.refusals).toEqual(['POS_ERR_SIM_TICKET_REPLAYED']);
    expect(r.counts().handshakes).toBe(1);
    expect(r.conn.session).toBeDefined();
    expect(r.conn.grant).toEqual(before);
    expect(r.sim.fw.sessionExpiry).toBe(exp);
  });

  it('a sale on a fine session costs no attestation and no renewal', async () => {
    const r = await rig();
    await saleToCard(r);
    expect(r.sim.fw.txnState).toBe('waiting-for-card');
    expect(r.counts()).toEqual({ handshakes: 1, attestations: 0 });
    expect(renewEvents(r)).toEqual([]);
  });

  it('a short-lived ticket (8 s) counts as at its end only in its second half', async () => {
    const r = await rig({ lifetimeS: 8 });
    r.advanceReaderS(3);
    await saleToCard(r);
    expect(r.counts()).toEqual({ handshakes: 1, attestations: 0 });
    expect(r.sim.fw.abort().ok).toBe(true);
    await until(() => r.engine.state === 'result', 'the sale ended by the reader');
    expect(r.engine.reset()).toEqual({ ok: true });
    r.advanceReaderS(2); // 3 s left: under half of 8 s
    await saleToCard(r);
    expect(r.sim.fw.txnState).toBe('waiting-for-card');
    expect(r.counts()).toEqual({ handshakes: 1, attestations: 1 });
  });

  it('a session at its end is renewed before the start by the pre-transaction attestation', async () => {
    const r = await rig();
    r.advanceReaderS(55); // 5 s left: under the 10 s margin
    await saleToCard(r);
    expect(r.sim.fw.txnState).toBe('waiting-for-card');
    expect(r.counts()).toEqual({ handshakes: 1, attestations: 1 });
    expect(renewEvents(r)).toEqual([{ event: 'renew', accepted: true }]);
    expect(r.sim.fw.sessionExpiry).toBe(r.readerNowS() + 60);
  });

  it('a handshake-only session (perm []) is upgraded by a renewal, without a new handshake', async () => {
    const r = await rig({ perm: [] });
    expect(r.conn.grant?.perm).toEqual([]);
    await saleToCard(r);
    expect(r.sim.fw.txnState).toBe('waiting-for-card');
    expect(r.counts()).toEqual({ handshakes: 1, attestations: 1 });
    expect(r.conn.grant?.perm).toEqual(['transact']);
  });

  it("a start refused as expired (the reader's clock ahead) gets one renewal and one retry", async () => {
    const r = await rig();
    // The terminal still counts the session as live (its own clock), the reader does not.
    const terminalNow = Math.floor(Date.now() / 1000);
    r.advanceReaderS(65);
    const keeper = new ReaderSessionKeeper({
      connection: r.conn,
      latestTicket: () => undefined,
      attest: () => Promise.resolve({ ok: false, code: 'POS_ERR_X', detail: 'unused' }),
      nowS: () => terminalNow,
    });
    expect(await keeper.ensureTransact()).toEqual({ ok: true }); // by the terminal's clock all is well
    await saleToCard(r);
    expect(r.sim.fw.txnState).toBe('waiting-for-card');
    expect(r.counts().attestations).toBe(1);
    expect(renewEvents(r)).toEqual([{ event: 'renew', accepted: true }]);
  });

  it('an expired session that cannot be renewed ends the sale with a clear error', async () => {
    const stale = { current: undefined as AttestAnswer | undefined };
    const r = await rig({
      terminalClock: 'real',
      attestAnswer: () => {
        if (stale.current === undefined) throw new Error('set first');
        return stale.current;
      },
    });
    // The back-end's ticket is already over by the reader's clock: renewal and handshake both refuse it.
    const old = r.sessionTicket({ jti: 'old-ticket-0001' });
    stale.current = { verdict: 'affirming', ticket: old.jws, ticketUse: 'session', ticketExpiresAt: old.exp };
    r.advanceReaderS(120);
    await saleToCard(r);
    await until(() => r.engine.state === 'result', 'the sale ended');
    const result = r.engine.snapshot().result;
    expect(result).toMatchObject({
      status: 'error',
      code: 'POS_ERR_DESKTOP_TXN_READER',
      cause: 'POS_ERR_READER_SESSION_EXPIRED',
    });
    expect(result?.detail).toContain('could not be renewed');
    expect(result?.detail).toContain('POS_ERR_TICKET_EXPIRED');
    expect(r.counts().attestations).toBe(1);
    expect(r.sim.fw.txnState).toBe('idle');
    expect(r.refusals.length).toBeGreaterThan(0);
    expect(new Set(r.refusals)).toEqual(new Set(['POS_ERR_TICKET_EXPIRED']));
  });

  it('a halted terminal (no session ticket from the attestation) is told so before the start', async () => {
    const r = await rig({
      attestAnswer: () => ({ verdict: 'contraindicated', halted: true, reasons: ['halt'] }),
    });
    r.advanceReaderS(60);
    await saleToCard(r);
    await until(() => r.engine.state === 'result', 'the sale ended');
    expect(r.engine.snapshot().result).toMatchObject({
      status: 'error',
      code: 'POS_ERR_DESKTOP_TXN_READER',
      cause: 'POS_ERR_DESKTOP_TXN_HALTED',
    });
    expect(r.sim.fw.txnState).toBe('idle');
    expect(renewEvents(r)).toEqual([]);
  });
});
