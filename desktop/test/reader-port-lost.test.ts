/**
 * A lost reader reaches the engine as one code, `POS_ERR_DESKTOP_READER_LOST`, whichever of the
 * connection's detectors noticed first (the device gone, the link's undelivered frame, an unanswered
 * liveness probe, the session ended); the detail names the detector's own code. Found by the full-stack
 * reader-unplug test (test/test/fullstack/reader-and-app.test.ts): an unplugged reader ended the sale
 * with cause `POS_ERR_READER_LINK_TIMEOUT` or `POS_ERR_READER_TIMEOUT` depending on timing.
 */
import { err, ManualTimer, ok, type ReaderLink, type ReaderSession } from '@pos/shared';
import { describe, expect, it } from 'vitest';
import { ReaderConnection } from '../src/core/reader/connection';
import { LostSignal, type ReaderDevice, type ReaderDriver } from '../src/core/reader/device';
import { SessionReaderPort } from '../src/core/reader/reader-port';

type Reason = { ok: false; code: string; detail: string };

function fakeReader() {
  const linkErrors = new Set<(e: { code: string }) => void>();
  const lost = new LostSignal();
  const device: ReaderDevice = {
    kind: 'serial',
    where: '/dev/fake',
    closed: false,
    link: {
      on: (_e: string, h: (e: { code: string }) => void) => {
        linkErrors.add(h);
        return () => linkErrors.delete(h);
      },
    } as unknown as ReaderLink,
    onLost: (cb) => lost.on(cb),
    close: () => Promise.resolve(),
  };
  const ends = new Set<(r: Reason) => void>();
  const session = {
    answer: { ok: true } as { ok: true } | Reason,
    newId: () => 1,
    request: () =>
      Promise.resolve(session.answer.ok ? { ok: true, message: { t: 'status' } } : session.answer),
    on: (e: string, h: (r: Reason) => void) => {
      if (e !== 'end') return () => undefined;
      ends.add(h);
      return () => ends.delete(h);
    },
    close: () => undefined,
  };
  return {
    device,
    session,
    linkError: (code: string) => {
      for (const h of [...linkErrors]) h({ code });
    },
    unplug: (detail: string) => lost.fire(detail),
    end: (code: string) => {
      for (const h of [...ends]) h({ ok: false, code, detail: 'ended' });
    },
  };
}

const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

async function connected(heartbeatMs = 0) {
  const timer = new ManualTimer();
  const readers: ReturnType<typeof fakeReader>[] = [];
  const driver: ReaderDriver = {
    kind: 'serial',
    open: () => {
      const r = fakeReader();
      readers.push(r);
      return Promise.resolve(ok({ device: r.device }));
    },
  };
  const conn = new ReaderConnection({
    driver,
    handshake: () => {
      const r = readers.at(-1);
      return Promise.resolve(
        r === undefined
          ? err('POS_ERR_DESKTOP_READER_NOT_FOUND', 'none')
          : { ok: true as const, session: r.session as unknown as ReaderSession },
      );
    },
    backoff: { initialMs: 10, jitter: 0 },
    timer,
    heartbeatMs,
  });
  const port = new SessionReaderPort(conn);
  const aborted: { code: string; detail: string }[] = [];
  port.onAborted((e) => aborted.push(e));
  conn.start();
  await turns();
  expect(conn.state).toBe('connected');
  const current = (): ReturnType<typeof fakeReader> => {
    const r = readers.at(-1);
    if (r === undefined) throw new Error('no reader');
    return r;
  };
  const reconnect = async (): Promise<void> => {
    timer.advance(10);
    await turns();
    expect(conn.state).toBe('connected');
  };
  return { conn, port, aborted, timer, current, reconnect };
}

describe('SessionReaderPort: a lost reader', () => {
  it('is POS_ERR_DESKTOP_READER_LOST for every way the connection notices it, the detector named in the detail', async () => {
    const c = await connected();
    c.current().unplug('the serial port closed');
    expect(c.aborted.at(-1)).toEqual({
      code: 'POS_ERR_DESKTOP_READER_LOST',
      detail: 'The card reader was disconnected (the serial port closed). Reconnecting…',
    });
    await c.reconnect();
    c.current().linkError('POS_ERR_READER_LINK_TIMEOUT');
    expect(c.aborted.at(-1)?.code).toBe('POS_ERR_DESKTOP_READER_LOST');
    expect(c.aborted.at(-1)?.detail).toContain('(POS_ERR_READER_LINK_TIMEOUT)');
    await c.reconnect();
    c.current().end('POS_ERR_READER_CHANNEL');
    expect(c.aborted.at(-1)?.code).toBe('POS_ERR_DESKTOP_READER_LOST');
    expect(c.aborted.at(-1)?.detail).toContain('(POS_ERR_READER_CHANNEL)');
    expect(c.aborted).toHaveLength(3);
    c.port.dispose();
    await c.conn.close();
  });

  it('an unanswered liveness probe too', async () => {
    const c = await connected(1000);
    c.current().session.answer = { ok: false, code: 'POS_ERR_READER_TIMEOUT', detail: 'no answer' };
    c.timer.advance(1000);
    await turns();
    expect(c.aborted).toEqual([
      {
        code: 'POS_ERR_DESKTOP_READER_LOST',
        detail:
          'The card reader was disconnected (the reader stopped answering). Reconnecting… (POS_ERR_READER_TIMEOUT)',
      },
    ]);
    c.port.dispose();
    await c.conn.close();
    expect(c.timer.size).toBe(0);
  });
});
