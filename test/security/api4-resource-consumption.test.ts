/**
 * API4:2023 Unrestricted Resource Consumption, against the real back-end on a loopback socket: body
 * size limits on every route that takes a body, query limits, rate limits (the global per-address
 * limiter and the login throttle) with Retry-After, slow clients cut off by the server's deadlines,
 * one push connection per terminal, and the push connection's frame size limit.
 */
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_AUTH_CONFIG } from '../../backend/src/server/auth/config';
import { DEFAULT_CONFIG } from '../../backend/src/server/context';
import { CLOSE_DUPLICATE, PUSH_MAX_FRAME } from '../../backend/src/fleet/push-protocol';
import { describeRes, startSecurityHarness, type Method, type SecurityHarness } from './harness';

interface Route {
  readonly method: Method;
  readonly path: string;
}

/** The routes of the OpenAPI document, path parameters filled with a plausible id. */
async function documentedRoutes(sec: SecurityHarness): Promise<Route[]> {
  const doc = (await sec.request('GET', '/openapi.json')).json as { paths: Record<string, object> };
  const out: Route[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const m of Object.keys(ops)) {
      out.push({ method: m.toUpperCase() as Method, path: path.replace(/\{[^}]+\}/g, 'x1') });
    }
  }
  return out;
}

/** Sends raw bytes on a new socket; resolves to everything the server wrote once it closed the socket. */
function rawExchange(sec: SecurityHarness, write: (socket: Socket) => void): Promise<string> {
  const url = new URL(sec.base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    let data = '';
    socket.on('data', (d: Buffer) => (data += d.toString('utf8')));
    socket.on('error', reject);
    socket.on('close', () => resolve(data));
    socket.on('connect', () => write(socket));
  });
}

function statusLine(raw: string): string {
  return raw.split('\r\n')[0] ?? '';
}
function errorCode(raw: string): string | undefined {
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

describe('API4:2023 Unrestricted Resource Consumption: body and query limits', () => {
  let sec: SecurityHarness;
  let routes: Route[];
  beforeAll(async () => {
    sec = await startSecurityHarness();
    routes = await documentedRoutes(sec);
  });
  afterAll(async () => {
    await sec.close();
  });

  it('every route that takes a body answers an oversized one 413 POS_ERR_REQUEST_TOO_LARGE, never 5xx', async () => {
    const withBody = routes.filter((r) => r.method !== 'GET');
    expect(withBody.length).toBeGreaterThan(20);
    // Larger than the largest route limit (evidence, 80 KiB) and the service default (64 KiB).
    const big = JSON.stringify({ evidence: 'x'.repeat(256 * 1024) });
    for (const r of withBody) {
      for (const as of [undefined, 'admin'] as const) {
        const res = await sec.request(r.method, r.path, { body: big, ...(as === undefined ? {} : { as }) });
        expect(res.status, `${r.method} ${r.path} as ${as ?? 'nobody'}: ${describeRes(res)}`).toBe(413);
        expect(res.code).toBe('POS_ERR_REQUEST_TOO_LARGE');
      }
    }
  });

  it('a chunked body (no Content-Length) is cut off at the limit too', async () => {
    const chunk = `${'x'.repeat(16 * 1024)}`;
    const raw = await rawExchange(sec, (socket) => {
      socket.write(
        'POST /v1/challenges HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n' +
          'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
      );
      const size = Buffer.byteLength(chunk).toString(16);
      // 8 KiB is the challenge route's limit: 64 KiB in 16 KiB chunks passes it.
      for (let i = 0; i < 4; i++) socket.write(`${size}\r\n${chunk}\r\n`);
      socket.end('0\r\n\r\n');
    });
    expect(statusLine(raw)).toMatch(/^HTTP\/1\.1 413 /);
    expect(errorCode(raw)).toBe('POS_ERR_REQUEST_TOO_LARGE');
  });

  it('headers larger than the server accepts: 431 in the error shape', async () => {
    const res = await sec.request('GET', '/healthz', { headers: { 'x-padding': 'p'.repeat(32 * 1024) } });
    expect(res.status).toBe(431);
    expect(res.code).toBe('POS_ERR_REQUEST_TOO_LARGE');
  });

  it('page sizes are capped (limit above 500 refused) on every paged list', async () => {
    const paged = [
      '/v1/terminals',
      '/v1/halts',
      `/v1/terminals/${sec.tenants.A.terminalId}/attestations`,
      `/v1/terminals/${sec.tenants.A.terminalId}/transactions`,
    ];
    for (const path of paged) {
      const ok = await sec.request('GET', `${path}?limit=500`, { as: 'admin' });
      expect(ok.status, `${path}?limit=500: ${describeRes(ok)}`).toBe(200);
      for (const limit of ['501', '1000000', '-1', '0', '1e9']) {
        const res = await sec.request('GET', `${path}?limit=${limit}`, { as: 'admin' });
        expect(res.status, `${path}?limit=${limit}: ${describeRes(res)}`).toBe(400);
        expect(res.code).toBe('POS_ERR_REQUEST_INVALID');
      }
    }
  });

  it('long strings in queries and path parameters are refused with a 4xx', async () => {
    const long = 'a'.repeat(4096);
    for (const path of [
      `/v1/terminals?appVersion=${long}`,
      `/v1/terminals?merchant=${long}`,
      `/v1/terminals?after=${long}`,
      `/v1/fleet/summary?merchant=${long}`,
      `/v1/audit?after=${'9'.repeat(400)}`,
      `/v1/terminals/${long}`,
      `/v1/halts/${long}`,
      '/v1/terminals/%E0%A4%A',
    ]) {
      const res = await sec.request('GET', path, { as: 'admin' });
      expect(res.status, `${path.slice(0, 40)}: ${describeRes(res)}`).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(`${path.slice(0, 30)} ${res.status} ${res.code ?? res.text.slice(0, 100)}`).toMatch(/ POS_ERR_/);
      // The error names no part of the request (a path parameter over the router's limit once came
      // back whole in the router's own error body).
      expect(res.text).not.toContain(long.slice(0, 256));
    }
    // Unknown query parameters are refused, not ignored (no hidden switches).
    const extra = await sec.request('GET', '/v1/terminals?limit=5&debug=1', { as: 'admin' });
    expect(extra.status).toBe(400);
  });
});

describe('API4:2023 Unrestricted Resource Consumption: rate limits', () => {
  // The harness's own set-up (users, tokens, logins, enrollments) comes from 127.0.0.1; each test
  // below speaks as another client address (X-Forwarded-For, one trusted proxy hop), so it has a
  // bucket of its own.
  const LIMIT = 60;
  const LOGIN_PER_IP = 12;
  let sec: SecurityHarness;
  beforeAll(async () => {
    sec = await startSecurityHarness({
      config: {
        rateLimitPerMinute: LIMIT,
        trustProxy: true,
        auth: {
          ...DEFAULT_AUTH_CONFIG,
          scryptN: 1024,
          loginAttemptsPerIp: LOGIN_PER_IP,
          maxLoginAttemptsPerUser: 1_000_000,
        },
      },
    });
  });
  afterAll(async () => {
    await sec.close();
  });

  let nextAddress = 10;
  const newClient = (): Record<string, string> => ({ 'x-forwarded-for': `203.0.113.${nextAddress++}` });

  /** Sends `send` until a 429; returns how many were answered otherwise and the 429. */
  async function exhaust(
    send: (headers: Record<string, string>) => Promise<Awaited<ReturnType<SecurityHarness['request']>>>,
    headers: Record<string, string>,
    max: number,
  ): Promise<{ before: number; limited: Awaited<ReturnType<SecurityHarness['request']>> | undefined }> {
    for (let i = 0; i < max; i++) {
      const res = await send(headers);
      expect(res.status, describeRes(res)).toBeLessThan(500);
      if (res.status === 429) return { before: i, limited: res };
    }
    return { before: max, limited: undefined };
  }

  function expectLimited(
    what: string,
    r: Awaited<ReturnType<typeof exhaust>>,
    code: string,
    allowed: number,
  ): void {
    expect(r.limited, `${what}: never rate limited`).toBeDefined();
    expect(r.before, what).toBe(allowed);
    expect(r.limited?.code).toBe(code);
    const retryAfter = Number(r.limited?.headers.get('retry-after'));
    expect(retryAfter, `${what}: Retry-After`).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(3600);
  }

  it('attestation: a client flooding POST /v1/attestations gets 429 POS_ERR_RATE_LIMITED with Retry-After', async () => {
    const client = newClient();
    const t = sec.tenants.A.terminal;
    const r = await exhaust(
      (headers) => sec.terminal(t, 'POST', '/v1/attestations', { evidence: 'a.b.c' }, { headers }),
      client,
      LIMIT + 5,
    );
    expectLimited('attestations', r, 'POS_ERR_RATE_LIMITED', LIMIT);
  });

  it('enrollment: challenges and enrollments share the limit', async () => {
    const client = newClient();
    let i = 0;
    const r = await exhaust(
      (headers) =>
        i++ % 2 === 0
          ? sec.request('POST', '/v1/challenges', { body: {}, headers })
          : sec.request('POST', '/v1/enrollments', {
              body: {
                code: `pos_enr_${'A'.repeat(22)}`,
                deviceJwk: sec.tenants.A.terminal.jwk,
                readerSerial: 'RDR-flood',
                evidence: 'a.b.c',
              },
              headers,
            }),
      client,
      LIMIT + 5,
    );
    expectLimited('enrollment', r, 'POS_ERR_RATE_LIMITED', LIMIT);
  });

  it('transactions: a client flooding POST /v1/transactions gets 429 with Retry-After', async () => {
    const client = newClient();
    const r = await exhaust(
      (headers) =>
        sec.terminal(
          'B',
          'POST',
          '/v1/transactions',
          {
            amount: 1,
            currency: 'EUR',
            ksn: '0'.repeat(24),
            cardData: { iv: 'A'.repeat(16), ct: 'A'.repeat(22) },
          },
          { ticket: 'a.b.c', headers },
        ),
      client,
      LIMIT + 5,
    );
    expectLimited('transactions', r, 'POS_ERR_RATE_LIMITED', LIMIT);
  });

  it('login: the per-address login throttle answers 429 POS_ERR_LOGIN_RATE_LIMITED with Retry-After, before the global limit', async () => {
    const client = newClient();
    const r = await exhaust(
      (headers) =>
        sec.request('POST', '/v1/auth/login', {
          body: { username: sec.principals.operatorA.username, password: 'wrong password guess' },
          headers,
        }),
      client,
      LIMIT,
    );
    expectLimited('login', r, 'POS_ERR_LOGIN_RATE_LIMITED', LOGIN_PER_IP);
    // The right password from that address is refused too while the window lasts.
    const right = await sec.request('POST', '/v1/auth/login', {
      body: { username: sec.principals.operatorA.username, password: 'security harness password' },
      headers: client,
    });
    expect(right.status).toBe(429);
    // Another address is not affected.
    const other = await sec.request('POST', '/v1/auth/login', {
      body: { username: sec.principals.operatorA.username, password: 'security harness password' },
      headers: newClient(),
    });
    expect(other.status, describeRes(other)).toBe(200);
  });

  it('the global limiter covers login as well (an address past the throttle still counts)', async () => {
    const client = newClient();
    const r = await exhaust(
      (headers) => sec.request('POST', '/v1/auth/login', { body: { username: 'x', password: 'y' }, headers }),
      client,
      LIMIT + 5,
    );
    // The throttle answers first; then the global limiter, with its own code.
    expect(r.limited?.code).toBe('POS_ERR_LOGIN_RATE_LIMITED');
    let last = r.limited;
    for (let i = r.before + 1; i <= LIMIT; i++) {
      last = await sec.request('POST', '/v1/auth/login', {
        body: { username: 'x', password: 'y' },
        headers: client,
      });
    }
    expect(last?.status).toBe(429);
    expect(last?.code).toBe('POS_ERR_RATE_LIMITED');
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('the limiter is on by default (600 per minute per address)', () => {
    expect(DEFAULT_CONFIG.rateLimitPerMinute).toBe(600);
    expect(DEFAULT_AUTH_CONFIG.loginAttemptsPerIp).toBeGreaterThan(0);
    expect(DEFAULT_AUTH_CONFIG.loginAttemptsPerIp).toBeLessThanOrEqual(100);
  });
});

describe('API4:2023 Unrestricted Resource Consumption: slow clients', () => {
  let sec: SecurityHarness;
  beforeAll(async () => {
    sec = await startSecurityHarness({ config: { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 } });
  });
  afterAll(async () => {
    await sec.close();
  });

  it('the default deadlines are configured on the real server (headers 10 s, whole request 30 s)', async () => {
    const plain = await startSecurityHarness();
    try {
      expect(plain.h.app.server.headersTimeout).toBe(DEFAULT_CONFIG.headersTimeoutMs);
      expect(plain.h.app.server.requestTimeout).toBe(DEFAULT_CONFIG.requestTimeoutMs);
      expect(DEFAULT_CONFIG.headersTimeoutMs).toBeGreaterThan(0);
      expect(DEFAULT_CONFIG.headersTimeoutMs).toBeLessThanOrEqual(DEFAULT_CONFIG.requestTimeoutMs);
      expect(DEFAULT_CONFIG.requestTimeoutMs).toBeGreaterThan(0);
      expect(DEFAULT_CONFIG.requestTimeoutMs).toBeLessThanOrEqual(60_000);
      expect(plain.h.app.server.keepAliveTimeout).toBeGreaterThan(0);
    } finally {
      await plain.close();
    }
  });

  it('slowloris: headers sent a byte at a time are cut off (408 POS_ERR_REQUEST_TIMEOUT, socket closed)', async () => {
    const head = 'GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: ';
    let timer: NodeJS.Timeout | undefined;
    const raw = await rawExchange(sec, (socket) => {
      socket.write(head);
      // One byte every 100 ms, forever: only the server can end this.
      timer = setInterval(() => {
        if (!socket.destroyed && socket.writable) socket.write('x');
      }, 100);
      socket.on('close', () => clearInterval(timer));
    });
    clearInterval(timer);
    expect(statusLine(raw)).toBe('HTTP/1.1 408 Request Timeout');
    expect(errorCode(raw)).toBe('POS_ERR_REQUEST_TIMEOUT');
  });

  it('a client that sends its headers and withholds the body is cut off', async () => {
    const raw = await rawExchange(sec, (socket) => {
      socket.write(
        'POST /v1/challenges HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{',
      );
    });
    expect(statusLine(raw)).toBe('HTTP/1.1 408 Request Timeout');
    expect(errorCode(raw)).toBe('POS_ERR_REQUEST_TIMEOUT');
  });

  it('a client trickling its body a byte at a time is cut off', async () => {
    let timer: NodeJS.Timeout | undefined;
    const raw = await rawExchange(sec, (socket) => {
      socket.write(
        'POST /v1/challenges HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{',
      );
      timer = setInterval(() => {
        if (!socket.destroyed && socket.writable) socket.write(' ');
      }, 100);
      socket.on('close', () => clearInterval(timer));
    });
    clearInterval(timer);
    expect(statusLine(raw)).toBe('HTTP/1.1 408 Request Timeout');
  });

  it('the server keeps serving prompt clients afterwards', async () => {
    expect((await sec.request('GET', '/healthz')).status).toBe(200);
    expect((await sec.request('POST', '/v1/challenges', { body: {} })).status).toBe(201);
  });
});

describe('API4:2023 Unrestricted Resource Consumption: push connections', () => {
  let sec: SecurityHarness;
  let url: string;
  const sockets: WebSocket[] = [];
  beforeAll(async () => {
    sec = await startSecurityHarness();
    url = `${sec.base.replace(/^http/, 'ws')}/v1/push`;
  });
  afterAll(async () => {
    for (const s of sockets) s.terminate();
    await sec.close();
  });

  function open(headers: Record<string, string>): Promise<{ ws: WebSocket } | { status: number }> {
    return new Promise((resolve) => {
      const ws = new WebSocket(url, { headers });
      sockets.push(ws);
      ws.on('error', () => undefined);
      ws.on('open', () => resolve({ ws }));
      ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0 }));
    });
  }
  const closed = (ws: WebSocket): Promise<number> =>
    new Promise((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) resolve(-1);
      ws.on('close', (code) => resolve(code));
    });
  async function connections(): Promise<number> {
    const m = /pos_push_connections (\d+)/.exec((await sec.request('GET', '/metrics')).text);
    return Number(m?.[1] ?? -1);
  }
  async function until(label: string, check: () => Promise<boolean>): Promise<void> {
    for (let i = 0; i < 2000; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`never: ${label}`);
  }

  it('no upgrade without a device-key proof', async () => {
    expect(await open({})).toEqual({ status: 401 });
    expect(await open({ 'pos-proof': 'x.y.z' })).toEqual({ status: 401 });
    expect(await connections()).toBe(0);
  });

  it('a frame larger than the limit closes the connection (1009); the server keeps serving', async () => {
    const t = sec.tenants.B.terminal;
    const r = await open({ 'pos-proof': t.proof('GET', '/v1/push', '') });
    if (!('ws' in r)) throw new Error(`refused: ${r.status}`);
    const done = closed(r.ws);
    r.ws.send('x'.repeat(PUSH_MAX_FRAME + 1));
    expect(await done).toBe(1009);
    await until('released', async () => (await connections()) === 0);
    expect((await sec.request('GET', '/healthz')).status).toBe(200);
  });

  it('one connection per terminal: a second one is closed 4409 and the terminal halted', async () => {
    const t = sec.tenants.A.terminal;
    const first = await open({ 'pos-proof': t.proof('GET', '/v1/push', '') });
    if (!('ws' in first)) throw new Error(`refused: ${first.status}`);
    await until('first registered', async () => (await connections()) === 1);
    const second = await open({ 'pos-proof': t.proof('GET', '/v1/push', '') });
    if (!('ws' in second)) throw new Error(`refused: ${second.status}`);
    expect(await closed(second.ws)).toBe(CLOSE_DUPLICATE);
    expect(await connections()).toBe(1);
    await until('halted', async () => (await sec.h.store.getTerminal(t.id))?.state === 'halted');
    first.ws.terminate();
  });
});
