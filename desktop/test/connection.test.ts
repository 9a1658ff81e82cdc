/**
 * The reader connection manager with a fake driver and a manual timer: the backoff schedule (with and
 * without jitter), the events the user sees, and that close() stops retrying.
 */
import { err, ManualTimer, ok, type ReaderLink, type ReaderSession } from '@pos/shared';
import { describe, expect, it } from 'vitest';
import { LostSignal, type ReaderDevice, type ReaderDriver } from '../src/core/reader/device';
import { backoffDelay, DEFAULT_BACKOFF, ReaderConnection } from '../src/core/reader/connection';

class FakeDevice implements ReaderDevice {
  readonly kind = 'serial' as const;
  readonly where = '/dev/fake';
  readonly lost = new LostSignal();
  closed = false;
  constructor(readonly link: ReaderLink) {}
  onLost(cb: (d: string) => void): () => void {
    return this.lost.on(cb);
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/** A driver whose reader is present or not, as the test says. */
function fakeDriver() {
  const state = { present: false, opens: 0, devices: [] as FakeDevice[] };
  const driver: ReaderDriver = {
    kind: 'serial',
    open: () => {
      state.opens++;
      if (!state.present) return Promise.resolve(err('POS_ERR_DESKTOP_READER_NOT_FOUND', 'no reader'));
      const linkErrors = new Set<(e: { code: string }) => void>();
      const link = {
        on: (_e: string, h: (e: { code: string }) => void) => {
          linkErrors.add(h);
          return () => linkErrors.delete(h);
        },
        emitError: (code: string) => {
          for (const h of [...linkErrors]) h({ code });
        },
      };
      const d = new FakeDevice(link as unknown as ReaderLink);
      state.devices.push(d);
      return Promise.resolve(ok({ device: d }));
    },
  };
  return { driver, state };
}

/** A session stand-in: the manager only subscribes to `end` and calls `close`. */
function fakeSession() {
  const ends = new Set<(r: { ok: false; code: string; detail: string }) => void>();
  const s = {
    closed: false,
    probes: 0,
    answer: { ok: true } as { ok: true } | { ok: false; code: string; detail: string },
    newId: () => 99,
    request: () => {
      s.probes++;
      return Promise.resolve(s.answer.ok ? { ok: true, message: { t: 'status' } } : s.answer);
    },
    on: (_e: 'end', h: (r: { ok: false; code: string; detail: string }) => void) => {
      ends.add(h);
      return () => ends.delete(h);
    },
    close: () => {
      s.closed = true;
    },
    end: (code: string) => {
      for (const h of [...ends]) h({ ok: false, code, detail: 'ended' });
    },
  };
  return s;
}

const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap, and jitter only shortens it', () => {
    const o = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, o, 0))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelay(2, o, 0.999999)).toBe(200);
    expect(backoffDelay(2, o, 0.5)).toBe(300);
    for (let a = 0; a < 20; a++)
      for (const r of [0, 0.3, 0.99]) {
        const d = backoffDelay(a, DEFAULT_BACKOFF, r);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(DEFAULT_BACKOFF.maxMs);
      }
  });
});

describe('ReaderConnection', () => {
  it('retries on the backoff schedule, says when the reader goes and comes back, stops on close', async () => {
    const timer = new ManualTimer();
    const { driver, state } = fakeDriver();
    const sessions: ReturnType<typeof fakeSession>[] = [];
    const conn = new ReaderConnection({
      driver,
      handshake: () => {
        const s = fakeSession();
        sessions.push(s);
        return Promise.resolve({ ok: true, session: s as unknown as ReaderSession });
      },
      backoff: { initialMs: 100, maxMs: 400, factor: 2, jitter: 0 },
      timer,
      random: () => 0,
      heartbeatMs: 0,
    });
    const seen: string[] = [];
    const retries: number[] = [];
    conn.on('attempt-failed', (e) => retries.push(e.retryInMs));
    conn.on('reader-lost', (e) => seen.push(`lost ${e.code} ${e.message}`));
    conn.on('reader-back', (e) => seen.push(`back ${e.message}`));
    conn.on('connected', () => seen.push('connected'));

    conn.start();
    await turns();
    expect(state.opens).toBe(1);
    expect(conn.state).toBe('waiting');
    timer.advance(99);
    await turns();
    expect(state.opens).toBe(1);
    timer.advance(1);
    await turns();
    expect(state.opens).toBe(2);
    timer.advance(200);
    await turns();
    timer.advance(400);
    await turns();
    timer.advance(400);
    await turns();
    expect(retries).toEqual([100, 200, 400, 400, 400]);
    expect(seen).toEqual([]); // never connected yet: failed attempts, not a lost reader

    state.present = true;
    timer.advance(400);
    await turns();
    expect(conn.state).toBe('connected');
    expect(seen).toEqual(['connected']);

    // Unplugged: one reader-lost, and the retry schedule starts again from the initial delay.
    state.present = false;
    state.devices[0]?.lost.fire('the serial port closed');
    expect(conn.state).toBe('waiting');
    expect(state.devices[0]?.closed).toBe(true);
    expect(sessions[0]?.closed).toBe(true);
    expect(seen[1]).toBe(
      'lost POS_ERR_DESKTOP_READER_LOST The card reader was disconnected (the serial port closed). Reconnecting…',
    );
    expect(retries.at(-1)).toBe(100);
    timer.advance(100);
    await turns();
    state.present = true;
    timer.advance(200);
    await turns();
    expect(conn.state).toBe('connected');
    expect(seen.slice(2)).toEqual(['back The card reader is connected again.', 'connected']);

    // The session ending by itself (a protocol failure) is handled like a loss: reopen afresh.
    sessions[1]?.end('POS_ERR_READER_CHANNEL_REPLAY');
    expect(seen.at(-1)).toMatch(/^lost POS_ERR_READER_CHANNEL_REPLAY /);
    expect(state.devices[1]?.closed).toBe(true);
    timer.advance(100);
    await turns();
    expect(conn.state).toBe('connected');

    await conn.close();
    expect(conn.state).toBe('closed');
    expect(state.devices[2]?.closed).toBe(true);
    const opens = state.opens;
    timer.advance(100_000);
    await turns();
    expect(state.opens).toBe(opens);
    expect(timer.size).toBe(0);
  });

  it('probes liveness while connected: an unanswered probe or an unacknowledged frame is a lost reader', async () => {
    const timer = new ManualTimer();
    const { driver, state } = fakeDriver();
    state.present = true;
    const sessions: ReturnType<typeof fakeSession>[] = [];
    const conn = new ReaderConnection({
      driver,
      handshake: () => {
        const s = fakeSession();
        sessions.push(s);
        return Promise.resolve({ ok: true, session: s as unknown as ReaderSession });
      },
      backoff: { initialMs: 100, jitter: 0 },
      timer,
      heartbeatMs: 1000,
    });
    const lost: string[] = [];
    conn.on('reader-lost', (e) => lost.push(e.code));
    conn.start();
    await turns();
    expect(conn.state).toBe('connected');
    timer.advance(999);
    await turns();
    expect(sessions[0]?.probes).toBe(0);
    timer.advance(1);
    await turns();
    timer.advance(1000);
    await turns();
    expect(sessions[0]?.probes).toBe(2);
    expect(lost).toEqual([]);
    const s0 = sessions[0];
    if (s0 === undefined) throw new Error('no session');
    s0.answer = { ok: false, code: 'POS_ERR_READER_TIMEOUT', detail: 'no answer' };
    timer.advance(1000);
    await turns();
    expect(lost).toEqual(['POS_ERR_READER_TIMEOUT']);
    timer.advance(100);
    await turns();
    expect(conn.state).toBe('connected');
    // The link could not deliver a frame (no ACK after its retries): lost at once.
    const dev = state.devices[1] as unknown as { link: { emitError(c: string): void } };
    dev.link.emitError('POS_ERR_READER_LINK_BUSY');
    expect(conn.state).toBe('connected');
    dev.link.emitError('POS_ERR_READER_LINK_TIMEOUT');
    expect(lost).toEqual(['POS_ERR_READER_TIMEOUT', 'POS_ERR_READER_LINK_TIMEOUT']);
    await conn.close();
    expect(timer.size).toBe(0);
  });

  it('closes a device whose handshake failed, and retries', async () => {
    const timer = new ManualTimer();
    const { driver, state } = fakeDriver();
    state.present = true;
    const conn = new ReaderConnection({
      driver,
      handshake: () => Promise.resolve(err('POS_ERR_READER_CERT_INVALID', 'bad chain')),
      backoff: { initialMs: 50, jitter: 0 },
      timer,
    });
    const codes: string[] = [];
    conn.on('attempt-failed', (e) => codes.push(e.code));
    conn.start();
    await turns();
    expect(codes).toEqual(['POS_ERR_READER_CERT_INVALID']);
    expect(state.devices[0]?.closed).toBe(true);
    timer.advance(50);
    await turns();
    expect(codes).toHaveLength(2);
    await conn.close();
  });
  it('reopen(): a new handshake on a new device at once, without a reader-lost notice (review 2, M1)', async () => {
    const timer = new ManualTimer();
    const { driver, state } = fakeDriver();
    state.present = true;
    const sessions: ReturnType<typeof fakeSession>[] = [];
    const conn = new ReaderConnection({
      driver,
      handshake: () => {
        const s = fakeSession();
        sessions.push(s);
        return Promise.resolve({ ok: true, session: s as unknown as ReaderSession });
      },
      timer,
      heartbeatMs: 0,
    });
    const seen: string[] = [];
    conn.on('reader-lost', () => seen.push('lost'));
    conn.on('reader-back', () => seen.push('back'));
    conn.on('connected', () => seen.push('connected'));
    await conn.reopen(); // not connected yet: nothing to do
    expect(state.opens).toBe(0);
    conn.start();
    await conn.whenConnected();
    expect(sessions).toHaveLength(1);
    await conn.reopen();
    expect(sessions).toHaveLength(2);
    expect(sessions[0]?.closed).toBe(true);
    expect(state.devices[0]?.closed).toBe(true);
    expect(conn.state).toBe('connected');
    expect(conn.session).toBe(sessions[1]);
    expect(seen).toEqual(['connected', 'connected']);
    // the old session ending later is not a lost reader
    sessions[0]?.end('POS_ERR_READER_SESSION_CLOSED');
    expect(conn.state).toBe('connected');
    await conn.close();
    expect(timer.size).toBe(0);
  });
});
