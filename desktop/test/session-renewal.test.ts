/**
 * Every sale starts with a pre-transaction attestation, and the terminal keeps its reader session's
 * ticket fresh (docs/reader-protocol.md §5.5): a session ticket from an attestation goes to the open
 * session as a `renew`; a refused renewal falls back to a new handshake with the newest ticket; before
 * each sale's `start` exactly one pre-transaction attestation runs, its verdict gates the sale (no
 * ticket: the sale ends before the card is read, with its code), its ticket renews the session and is
 * the one the sale submits with; a `start` the reader refuses as expired gets one renewal and one
 * retry, then a clear error.
 *
 * The real ReaderConnection, SessionReaderPort, ReaderSessionKeeper and TransactionEngine against the
 * in-process reader simulator over a memory link. The reader's clock is injected (the tests move it);
 * attestations are a fake that signs session tickets with a development A&M key.
 */
import { connectToReader, p256Signer, type Result, type TicketClaims } from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import type { AttestAnswer, AttestationAgent } from '../src/core/attest/agent';
import type { BackendClient } from '../src/core/backend/client';
import { HttpBackendPort } from '../src/core/backend/ports';
import { ReaderConnection, readSessionGrant } from '../src/core/reader/connection';
import { SessionReaderPort } from '../src/core/reader/reader-port';
import { ReaderSessionKeeper, SessionTickets } from '../src/core/reader/session-keeper';
import type { DesktopCode } from '../src/core/result';
import { TransactionEngine, type BackendPort } from '../src/core/transaction';
import { memoryReaderDriver, startTrustingSim, testTerminal, until, type Cleanups } from './support';
import { FakePush } from './txn-fakes';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An affirming attestation's answer carrying a session ticket. */
const sessionAnswer = (t: { jws: string; exp: number }): AttestAnswer => ({
  verdict: 'affirming',
  ticket: t.jws,
  ticketUse: 'session',
  ticketExpiresAt: t.exp,
});

interface RigOptions {
  /** `perm` of the first session ticket (the handshake's). */
  readonly perm?: TicketClaims['perm'];
  /** Lifetime of the first session ticket (s; default 60). */
  readonly lifetimeS?: number;
  /** What the fake attestation answers (default: a fresh transact session ticket by the reader's clock). */
  readonly attestAnswer?: () => AttestAnswer;
  /** The attestation fails (the back-end unreachable) instead of answering. */
  readonly attestError?: { readonly code: DesktopCode; readonly detail: string };
  /** The terminal's clock: the reader's (default), or the real one (the reader's may run ahead). */
  readonly terminalClock?: 'reader' | 'real';
  /** Each reader event, as it happens (after it is recorded). */
  readonly onReaderEvent?: (e: Record<string, unknown>, rig: { advanceReaderS: (s: number) => void }) => void;
}

async function rig(o: RigOptions = {}) {
  const term = testTerminal();
  const base = Date.now();
  let readerOffsetMs = 0;
  const readerNowS = () => Math.floor((base + readerOffsetMs) / 1000);
  const advanceReaderS = (s: number) => (readerOffsetMs += s * 1000);
  const events: Record<string, unknown>[] = [];
  /** The order of attestations and the reader's starts: `attest:<purpose>`, `start`. */
  const order: string[] = [];
  const { sim, caCertificateDer, serial } = await startTrustingSim(cleanups, term, {
    clock: { now: () => base + readerOffsetMs },
    onEvent: (e) => {
      events.push(e);
      if (e['event'] === 'state' && e['state'] === 'waiting-for-card') order.push('start');
      o.onReaderEvent?.(e, { advanceReaderS });
    },
  });

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
  const terminalNowS = o.terminalClock === 'real' ? () => Math.floor(Date.now() / 1000) : readerNowS;
  let attestations = 0;
  const answer = (): AttestAnswer => {
    if (o.attestAnswer !== undefined) return o.attestAnswer();
    return sessionAnswer(sessionTicket());
  };
  const hook: { keeper?: ReaderSessionKeeper } = {};
  // As the headless terminal: a pre-transaction attestation; its answer's session ticket is kept,
  // then handed to the keeper.
  const attest = (): Promise<Result<{ answer: AttestAnswer }, DesktopCode>> => {
    attestations++;
    order.push('attest:pre-transaction');
    if (o.attestError !== undefined) return Promise.resolve({ ok: false, ...o.attestError });
    const a = answer();
    if (tickets.remember(a)) void hook.keeper?.afterAttestation(a);
    return Promise.resolve({ ok: true, answer: a });
  };
  // The terminal's newest session ticket (what its attestations gave it): the handshake presents it.
  const tickets = new SessionTickets({ attest, nowS: terminalNowS });
  const hold = (t: { jws: string; exp: number }) => tickets.remember(sessionAnswer(t));
  hold(
    sessionTicket({
      perm: o.perm ?? ['transact'],
      ...(o.lifetimeS === undefined ? {} : { exp: readerNowS() + o.lifetimeS }),
    }),
  );
  let handshakes = 0;
  const conn = new ReaderConnection({
    driver: memoryReaderDriver(sim),
    heartbeatMs: 0,
    backoff: { initialMs: 20, maxMs: 40, jitter: 0 },
    handshake: async (link) => {
      handshakes++;
      const ticket = tickets.latest()?.jws ?? '';
      const r = await connectToReader(link, {
        deviceKey: p256Signer(term.secretKey),
        sessionTicket: ticket,
        trustedRoots: [caCertificateDer],
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

  const keeper = new ReaderSessionKeeper({
    connection: conn,
    latestTicket: () => tickets.latest(),
    attest,
    nowS: terminalNowS,
    reconnectTimeoutMs: 200,
  });
  hook.keeper = keeper;
  conn.start();
  await conn.whenConnected();

  // The production back-end port over a fake HTTP client: `POST /v1/transactions` records the
  // ticket it is sent with (the session ticket, for a sale without PIN) and approves.
  const submitted: string[] = [];
  const client = {
    transact: (_input: unknown, ticket: string) => {
      submitted.push(ticket);
      return Promise.resolve({ ok: true as const, out: { approved: true } });
    },
  };
  const backend: BackendPort = new HttpBackendPort(
    client as unknown as BackendClient,
    {
      prePin: () => Promise.resolve({ ok: false, code: 'POS_ERR_DESKTOP_BACKEND_NO_TICKET', detail: 'n/a' }),
    } as unknown as AttestationAgent,
    // As the headless terminal's `sessionTicket()`.
    { sessionTicket: () => tickets.current() },
  );
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
    order,
    refusals,
    submitted,
    tickets,
    sessionTicket,
    setLatest: hold,
    advanceReaderS,
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

/**
 * Begins a sale and waits for its end: a reader error (POS_ERR_DESKTOP_TXN_READER) with `cause`
 * (asserted). Resolves with the result.
 */
async function saleEndsWithReaderError(r: Rig, cause: string) {
  await saleToCard(r);
  await until(() => r.engine.state === 'result', 'the sale ended');
  const result = r.engine.snapshot().result;
  expect(result).toMatchObject({ status: 'error', code: 'POS_ERR_DESKTOP_TXN_READER', cause });
  return result;
}

/**
 * The reader's clock jumps 10 s right after the first renewal it accepts (as `onReaderEvent`):
 * a sale's ticket with 5 s left runs out between its renewal and the start.
 */
function jumpAfterFirstRenewal(): {
  jumped: () => boolean;
  onReaderEvent: NonNullable<RigOptions['onReaderEvent']>;
} {
  let jumped = false;
  return {
    jumped: () => jumped,
    onReaderEvent: (e, rg) => {
      if (e['event'] === 'renew' && e['accepted'] === true && !jumped) {
        jumped = true;
        rg.advanceReaderS(10);
      }
    },
  };
}

describe('reader session renewal (terminal core)', () => {
  it('a session ticket from an attestation is sent to the open session as renew; the held one is not resent', async () => {
    const r = await rig();
    const first = r.conn.grant;
    expect(first).toBeDefined();
    r.advanceReaderS(5);
    const next = r.sessionTicket();
    const renewed = await r.keeper.afterAttestation(sessionAnswer(next));
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
    const renewed = await r.keeper.afterAttestation(sessionAnswer(next));
    expect(renewed).toMatchObject({ ok: false, code: 'POS_ERR_SIM_TICKET_REPLAYED' });
    expect(r.refusals).toEqual(['POS_ERR_SIM_TICKET_REPLAYED']);
    expect(r.counts().handshakes).toBe(1);
    expect(r.conn.session).toBeDefined();
    expect(r.conn.grant).toEqual(before);
    expect(r.sim.fw.sessionExpiry).toBe(exp);
  });

  it('every sale makes exactly one pre-transaction attestation before its start, and submits with its ticket', async () => {
    const r = await rig();
    for (const sale of [1, 2]) {
      const before = r.order.length;
      await saleToCard(r);
      expect(r.sim.fw.txnState).toBe('waiting-for-card');
      // One attestation, then the reader's start: the session runs under that attestation's ticket.
      expect(r.order.slice(before)).toEqual(['attest:pre-transaction', 'start']);
      const own = r.tickets.latest();
      expect(r.conn.grant?.jws).toBe(own?.jws);
      expect(r.sim.fw.sessionExpiry).toBe(own?.exp);
      expect(r.sim.fw.presentCard('visa-no-pin', 'insert').ok).toBe(true);
      await until(() => r.engine.state === 'result', 'the sale approved');
      expect(r.engine.snapshot().result).toEqual({ status: 'approved' });
      // POST /v1/transactions carried this sale's own ticket, and no attestation ran after the start.
      expect(r.submitted).toHaveLength(sale);
      expect(r.submitted.at(-1)).toBe(own?.jws);
      expect(r.order.slice(before)).toEqual(['attest:pre-transaction', 'start']);
      expect(r.sim.fw.removeCard().ok).toBe(true);
      expect(r.engine.reset()).toEqual({ ok: true });
    }
    expect(r.counts()).toEqual({ handshakes: 1, attestations: 2 });
    expect(r.submitted[0]).not.toBe(r.submitted[1]);
    // Each sale's ticket renewed the session (the second sale's too, though the first one's had time left).
    expect(renewEvents(r)).toEqual([
      { event: 'renew', accepted: true },
      { event: 'renew', accepted: true },
    ]);
  });

  it('a short-lived ticket (8 s) from the sale start is not attested for again at the submit', async () => {
    const r = await rig({ lifetimeS: 8 });
    await saleToCard(r);
    expect(r.counts()).toEqual({ handshakes: 1, attestations: 1 });
    const own = r.tickets.latest();
    r.advanceReaderS(3); // 5 s left: over half of 8 s, so the ticket still has time left
    expect(r.sim.fw.presentCard('visa-no-pin', 'insert').ok).toBe(true);
    await until(() => r.engine.state === 'result', 'the sale approved');
    expect(r.engine.snapshot().result).toEqual({ status: 'approved' });
    expect(r.submitted).toEqual([own?.jws]);
    expect(r.counts()).toEqual({ handshakes: 1, attestations: 1 });
  });

  it("a sale whose card comes after its ticket ran out submits with a fresh attestation's ticket", async () => {
    const r = await rig();
    await saleToCard(r);
    const own = r.tickets.latest();
    r.advanceReaderS(55); // 5 s left: under the 10 s margin
    expect(r.sim.fw.presentCard('visa-no-pin', 'insert').ok).toBe(true);
    await until(() => r.engine.state === 'result', 'the sale approved');
    expect(r.engine.snapshot().result).toEqual({ status: 'approved' });
    expect(r.counts().attestations).toBe(2);
    expect(r.submitted).toHaveLength(1);
    expect(r.submitted[0]).not.toBe(own?.jws);
    expect(r.submitted[0]).toBe(r.tickets.latest()?.jws);
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
    const { jumped, onReaderEvent } = jumpAfterFirstRenewal();
    const r = await rig({
      // The sale's own ticket has 5 s left by the reader's clock when the reader takes it; right
      // after the renewal the reader's clock jumps past it, so the reader refuses the start as expired.
      attestAnswer: () => sessionAnswer(r.sessionTicket({ exp: r.readerNowS() + (jumped() ? 60 : 5) })),
      terminalClock: 'real',
      onReaderEvent,
    });
    await saleToCard(r);
    expect(r.sim.fw.txnState).toBe('waiting-for-card');
    expect(r.engine.state).toBe('card');
    // The sale's attestation, then renewExpired's (the terminal held no newer ticket than the session's).
    expect(r.counts()).toEqual({ handshakes: 1, attestations: 2 });
    expect(r.order).toEqual(['attest:pre-transaction', 'attest:pre-transaction', 'start']);
    expect(renewEvents(r)).toEqual([
      { event: 'renew', accepted: true },
      { event: 'renew', accepted: true },
    ]);
  });

  it('a start refused as expired whose renewal gets no ticket ends the sale with a clear error', async () => {
    const { jumped, onReaderEvent } = jumpAfterFirstRenewal();
    const r = await rig({
      attestAnswer: () =>
        jumped()
          ? { verdict: 'contraindicated', halted: true, reasons: ['halt'] }
          : sessionAnswer(r.sessionTicket({ exp: r.readerNowS() + 5 })),
      terminalClock: 'real',
      onReaderEvent,
    });
    const result = await saleEndsWithReaderError(r, 'POS_ERR_READER_SESSION_EXPIRED');
    expect(result?.detail).toContain('could not be renewed');
    expect(result?.detail).toContain('POS_ERR_DESKTOP_TXN_HALTED');
    expect(r.counts().attestations).toBe(2);
    expect(r.order).not.toContain('start');
    expect(r.sim.fw.txnState).toBe('idle');
  });

  it('an expired ticket the reader takes neither as renewal nor at a handshake ends the sale before the card is read', async () => {
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
    stale.current = sessionAnswer(old);
    r.advanceReaderS(120);
    const result = await saleEndsWithReaderError(r, 'POS_ERR_TICKET_EXPIRED');
    expect(result?.detail).toContain('did not take the fresh session ticket');
    expect(result?.detail).toContain('expired');
    expect(r.counts().attestations).toBe(1);
    expect(r.sim.fw.txnState).toBe('idle');
    expect(r.order).not.toContain('start');
    expect(r.refusals.length).toBeGreaterThan(0);
    expect(new Set(r.refusals)).toEqual(new Set(['POS_ERR_TICKET_EXPIRED']));
  });

  it.each([
    [
      'halted',
      { verdict: 'contraindicated', halted: true, reasons: ['halt'] },
      'POS_ERR_DESKTOP_TXN_HALTED',
      'the terminal is halted (verdict contraindicated: halt)',
    ],
    [
      'contraindicated, not halted',
      { verdict: 'contraindicated', reasons: ['POS_ERR_ATTEST_CODE_HASH'] },
      'POS_ERR_DESKTOP_BACKEND_NO_TICKET',
      'verdict contraindicated: POS_ERR_ATTEST_CODE_HASH',
    ],
  ] as const)(
    'a %s pre-transaction answer ends the sale before the start, on a session with time left',
    async (_what, a, cause, detail) => {
      const r = await rig({ attestAnswer: () => ({ ...a, reasons: [...a.reasons] }) });
      // The session's ticket has most of its minute left: the sale still attests, and is refused.
      const result = await saleEndsWithReaderError(r, cause);
      expect(result?.detail).toContain(detail);
      expect(r.order).toEqual(['attest:pre-transaction']);
      expect(r.sim.fw.txnState).toBe('idle');
      expect(r.events.filter((e) => e['event'] === 'card-read')).toEqual([]);
      expect(renewEvents(r)).toEqual([]);
      expect(r.submitted).toEqual([]);
    },
  );

  it('a back-end that cannot be reached at the sale start ends the sale before the start', async () => {
    const r = await rig({
      attestError: { code: 'POS_ERR_DESKTOP_BACKEND_UNREACHABLE', detail: 'connection refused' },
    });
    await saleEndsWithReaderError(r, 'POS_ERR_DESKTOP_BACKEND_UNREACHABLE');
    expect(r.order).toEqual(['attest:pre-transaction']);
    expect(r.sim.fw.txnState).toBe('idle');
  });

  it('without a reader session the sale ends as the reader lost, and nothing is attested', async () => {
    const r = await rig();
    await r.conn.close();
    await saleEndsWithReaderError(r, 'POS_ERR_DESKTOP_READER_LOST');
    expect(r.counts().attestations).toBe(0);
  });
});
