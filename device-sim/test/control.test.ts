/** The control API (schemas, codes, loopback) and the line faults, in process. */
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startControlServer, type CardAction, type ControlTarget } from '../src/cli/control';
import { FaultSchema, FaultyLine, type Fault } from '../src/transport/faults';
import type { ByteLine } from '../src/transport/serial';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function fakeTarget() {
  const calls: unknown[] = [];
  const target: ControlTarget = {
    status: () => ({ serial: 'PRS-0000000001', tampered: false }),
    card: (a: CardAction) => {
      calls.push(a);
      return a.action === 'insert' && a.card === 'nope'
        ? { ok: false, code: 'POS_ERR_SIM_CARD_UNKNOWN', detail: 'no such card' }
        : a.action === 'remove'
          ? { ok: false, code: 'POS_ERR_READER_STATE', detail: 'the slot is empty' }
          : { ok: true };
    },
    tamper: (reason) => {
      calls.push({ tamper: reason });
      return { ok: true };
    },
    fault: (f: Fault) => {
      calls.push(f);
      return { ok: true };
    },
  };
  return { target, calls };
}

async function server() {
  const t = fakeTarget();
  const s = await startControlServer(t.target, '127.0.0.1', 0);
  cleanups.push(() => s.close());
  const post = async (path: string, body: string) => {
    const res = await fetch(`${s.url}${path}`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return { ...t, url: s.url, post };
}

describe('control API', () => {
  it('serves GET /status on loopback', async () => {
    const s = await server();
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${s.url}/status`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ serial: 'PRS-0000000001', tampered: false });
  });

  it('takes card, tamper and fault requests that fit their schemas', async () => {
    const s = await server();
    expect(await s.post('/card', '{"card":"visa-pin","action":"insert"}')).toEqual({
      status: 200,
      body: { ok: true },
    });
    expect(await s.post('/tamper', '')).toEqual({ status: 200, body: { ok: true } });
    expect(await s.post('/fault', '{"fault":"drop","rate":0.5}')).toEqual({
      status: 200,
      body: { ok: true },
    });
    expect(s.calls).toEqual([
      { card: 'visa-pin', action: 'insert' },
      { tamper: 'control API' },
      { fault: 'drop', rate: 0.5, direction: 'both' },
    ]);
  });

  it('answers bad input with 4xx and a code', async () => {
    const s = await server();
    const cases: [string, string, number, string][] = [
      ['/card', '{not json', 400, 'POS_ERR_SIM_CONTROL_BODY'],
      ['/card', '{"card":"visa-pin","action":"swipe"}', 400, 'POS_ERR_SIM_CONTROL_BODY'],
      [
        '/card',
        '{"card":"visa-pin","action":"insert","pan":"4111111111111111"}',
        400,
        'POS_ERR_SIM_CONTROL_BODY',
      ],
      ['/card', '{"action":"insert"}', 400, 'POS_ERR_SIM_CONTROL_BODY'],
      ['/card', '{"card":"nope","action":"insert"}', 400, 'POS_ERR_SIM_CARD_UNKNOWN'],
      ['/card', '{"action":"remove"}', 409, 'POS_ERR_READER_STATE'],
      ['/fault', '{"fault":"drop","rate":2}', 400, 'POS_ERR_SIM_CONTROL_BODY'],
      ['/fault', '{"fault":"meteor"}', 400, 'POS_ERR_SIM_CONTROL_BODY'],
      ['/nowhere', '{}', 404, 'POS_ERR_SIM_CONTROL_NOT_FOUND'],
      ['/card', 'x'.repeat(20_000), 400, 'POS_ERR_SIM_CONTROL_BODY'],
    ];
    for (const [path, body, status, code] of cases) {
      const r = await s.post(path, body);
      expect({
        path,
        status: r.status,
        code: (r.body['error'] as { code?: string } | undefined)?.code,
      }).toEqual({
        path,
        status,
        code,
      });
    }
    const get = await fetch(`${s.url}/card`);
    expect(get.status).toBe(405);
  });

  it('refuses what a web page could send: an Origin, a foreign Host, a POST that is not JSON (L8)', async () => {
    const s = await server();
    const own = new URL(s.url).host;
    const tamper = '{"reason":"from a web page"}';
    const json = { 'content-type': 'application/json' };
    const cases: [string, string, Record<string, string>, string | undefined, number, string][] = [
      // A page's fetch or form carries its Origin (cross-origin, and every POST).
      [
        'POST',
        '/tamper',
        { ...json, origin: 'https://evil.example' },
        tamper,
        403,
        'POS_ERR_SIM_CONTROL_ORIGIN',
      ],
      ['POST', '/tamper', { ...json, origin: 'null' }, tamper, 403, 'POS_ERR_SIM_CONTROL_ORIGIN'],
      ['POST', '/tamper', { ...json, origin: `http://${own}` }, tamper, 403, 'POS_ERR_SIM_CONTROL_ORIGIN'],
      ['GET', '/status', { origin: 'https://evil.example' }, undefined, 403, 'POS_ERR_SIM_CONTROL_ORIGIN'],
      // DNS rebinding: the page's own name resolves to 127.0.0.1, so the Host is that name.
      [
        'POST',
        '/tamper',
        { ...json, host: `evil.example:${new URL(s.url).port}` },
        tamper,
        403,
        'POS_ERR_SIM_CONTROL_HOST',
      ],
      ['GET', '/status', { host: 'evil.example' }, undefined, 403, 'POS_ERR_SIM_CONTROL_HOST'],
      [
        'GET',
        '/status',
        { host: `localhost:${new URL(s.url).port}` },
        undefined,
        403,
        'POS_ERR_SIM_CONTROL_HOST',
      ],
      ['GET', '/status', { host: '127.0.0.1:1' }, undefined, 403, 'POS_ERR_SIM_CONTROL_HOST'],
      // The content types a page may POST without a CORS preflight.
      ['POST', '/tamper', { 'content-type': 'text/plain' }, tamper, 415, 'POS_ERR_SIM_CONTROL_CONTENT_TYPE'],
      [
        'POST',
        '/tamper',
        { 'content-type': 'application/x-www-form-urlencoded' },
        'reason=x',
        415,
        'POS_ERR_SIM_CONTROL_CONTENT_TYPE',
      ],
      [
        'POST',
        '/tamper',
        { 'content-type': 'multipart/form-data; boundary=x' },
        tamper,
        415,
        'POS_ERR_SIM_CONTROL_CONTENT_TYPE',
      ],
      ['POST', '/card', {}, '{"card":"visa-pin","action":"insert"}', 415, 'POS_ERR_SIM_CONTROL_CONTENT_TYPE'],
    ];
    for (const [method, path, headers, body, status, code] of cases) {
      const r = await rawRequest(s.url, method, path, headers, body);
      expect({ path, headers, status: r.status, code: r.code }).toEqual({ path, headers, status, code });
    }
    expect(s.calls).toEqual([]);
    // What a developer's client sends still works: its own Host, JSON (with a charset too), no Origin.
    const ok = await rawRequest(
      s.url,
      'POST',
      '/tamper',
      { 'content-type': 'Application/JSON; charset=utf-8' },
      '{}',
    );
    expect(ok.status).toBe(200);
    expect((await rawRequest(s.url, 'GET', '/status', {}, undefined)).status).toBe(200);
    expect(s.calls).toEqual([{ tamper: 'control API' }]);
  });
});

/** An HTTP request with exactly these headers (fetch would not let a test set Host). */
function rawRequest(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: string | undefined,
): Promise<{ status: number; code: string | undefined }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, method, path, headers: { host: url.host, ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { code?: string } };
          resolve({ status: res.statusCode ?? 0, code: json.error?.code });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function memoryLine(): ByteLine & { sent: Uint8Array[]; feed(b: Uint8Array): void } {
  const cbs = new Set<(b: Uint8Array) => void>();
  const sent: Uint8Array[] = [];
  return {
    sent,
    feed: (b) => {
      for (const cb of cbs) cb(b);
    },
    write: (b) => sent.push(b.slice()),
    onData: (cb) => {
      cbs.add(cb);
      return () => cbs.delete(cb);
    },
    onClose: () => () => undefined,
    close: () => Promise.resolve(),
    closed: false,
  };
}

describe('line faults', () => {
  it('drops and corrupts bytes with the given rates and directions', () => {
    const inner = memoryLine();
    const line = new FaultyLine(inner, () => 0); // random() = 0: every rate > 0 triggers, bit 0 flips
    const got: Uint8Array[] = [];
    line.onData((b) => got.push(b));
    line.apply(FaultSchema.parse({ fault: 'corrupt', rate: 1, direction: 'out' }));
    line.write(Uint8Array.of(0x10, 0x20));
    expect([...(inner.sent[0] ?? [])]).toEqual([0x11, 0x21]);
    inner.feed(Uint8Array.of(0x10));
    expect([...(got[0] ?? [])]).toEqual([0x10]);
    line.apply(FaultSchema.parse({ fault: 'drop', rate: 1, direction: 'in' }));
    inner.feed(Uint8Array.of(1, 2, 3));
    expect(got).toHaveLength(1);
    line.apply({ fault: 'clear' });
    line.write(Uint8Array.of(7));
    expect([...(inner.sent[1] ?? [])]).toEqual([7]);
  });

  it('loses everything while disconnected and says so', () => {
    const inner = memoryLine();
    const line = new FaultyLine(inner);
    let told = 0;
    line.apply({ fault: 'disconnect', ms: 60_000 }, () => told++);
    line.write(Uint8Array.of(1));
    expect(inner.sent).toHaveLength(0);
    expect(told).toBe(1);
  });

  it('holds bytes during a stall and releases them in order', async () => {
    const inner = memoryLine();
    const line = new FaultyLine(inner);
    line.apply({ fault: 'stall', ms: 30 });
    line.write(Uint8Array.of(1));
    line.write(Uint8Array.of(2));
    expect(inner.sent).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 80));
    expect(inner.sent.map((b) => b[0])).toEqual([1, 2]);
  });
});
