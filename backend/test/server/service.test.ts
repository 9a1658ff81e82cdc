import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { KeyRing, open, seal } from '../../src/keys/keyring';
import { buildApp } from '../../src/server/app';
import { REDACT_PATHS } from '../../src/server/logging';
import { openSqliteStore } from '../../src/store/sqlite';
import { makeHarness, seedReferenceValues, SimTerminal } from '../helpers';

describe('service behaviour', () => {
  it('rate limits with the error shape and a Retry-After header', async () => {
    const h = await makeHarness({ rateLimitPerMinute: 3 });
    try {
      const codes: number[] = [];
      let last;
      for (let i = 0; i < 5; i++) {
        last = await h.app.inject({ method: 'GET', url: '/healthz' });
        codes.push(last.statusCode);
      }
      expect(codes).toEqual([200, 200, 200, 429, 429]);
      expect(last?.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_RATE_LIMITED');
      expect(last?.headers['retry-after']).toBeDefined();
    } finally {
      await h.close();
    }
  });

  it('sets security headers on every answer, errors included', async () => {
    const h = await makeHarness();
    try {
      for (const url of ['/healthz', '/v1/nope']) {
        const res = await h.app.inject({ method: 'GET', url });
        expect(res.headers['x-content-type-options']).toBe('nosniff');
        expect(res.headers['content-security-policy']).toBeDefined();
      }
    } finally {
      await h.close();
    }
  });

  it('readyz says not-ready once the store is gone', async () => {
    const h = await makeHarness();
    expect((await h.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    await h.store.close();
    const res = await h.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ store: false, keys: true });
    await h.close();
  });

  it('counts attestations by tier and tickets issued in /metrics', async () => {
    const h = await makeHarness();
    try {
      await seedReferenceValues(h);
      const t = new SimTerminal(h);
      await t.enroll();
      await t.attest();
      const text = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(text).toMatch(/pos_attestations_total\{tier="affirming"\} 2/);
      expect(text).toMatch(/pos_tickets_issued_total\{use="session"\} 2/);
      expect(text).toMatch(
        /pos_http_requests_total\{method="POST",route="\/v1\/attestations",status="200"\} 1/,
      );
    } finally {
      await h.close();
    }
  });

  it('logs no secrets: request headers, tickets, PINs, PANs and tokens are redacted', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done): void {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const logger = pino({ level: 'debug', redact: { paths: [...REDACT_PATHS], censor: '[redacted]' } }, sink);
    const store = openSqliteStore({ path: ':memory:' });
    const opened = await KeyRing.open(store, randomBytes(32), Date.now(), { ticketLifetimeS: 60 });
    if (!opened.ok) throw new Error(opened.code);
    const app = await buildApp({
      store,
      keys: opened.ring,
      config: { issuer: 'http://t' },
      logger,
      defaultMetrics: false,
    });
    await app.inject({
      method: 'POST',
      url: '/v1/transactions',
      headers: {
        authorization: 'PosTicket SECRET-TICKET',
        'pos-proof': 'SECRET-PROOF',
        'content-type': 'application/json',
      },
      payload: JSON.stringify({ pan: '4111111111111111', pin: '1234' }),
    });
    logger.info(
      { ticket: 'SECRET-TICKET', nested: { pinBlock: 'SECRET-PINBLOCK', token: 'pos_admin_SECRET' } },
      'x',
    );
    logger.info(
      { req: { headers: { authorization: 'Bearer pos_admin_SECRET', 'pos-proof': 'SECRET-PROOF' } } },
      'y',
    );
    await app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      headers: { 'content-type': 'application/json', cookie: '__Host-pos_session=SECRET-COOKIE' },
      payload: JSON.stringify({ username: 'someone', password: 'SECRET-PASSWORD-1234' }),
    });
    logger.info(
      {
        password: 'SECRET-PASSWORD',
        login: { csrfToken: 'SECRET-CSRF', newPassword: 'SECRET-NEW' },
        req: { headers: { 'x-csrf-token': 'SECRET-X', cookie: 'SECRET-C' } },
        res: { headers: { 'set-cookie': '__Host-pos_session=SECRET-SET' } },
      },
      'z',
    );
    await app.close();
    const all = lines.join('');
    expect(all.length).toBeGreaterThan(0);
    for (const secret of ['SECRET', '4111111111111111', '1234"']) expect(all).not.toContain(secret);
  });

  it('seals private keys with AES-256-GCM bound to the key id', () => {
    const master = randomBytes(32);
    const sealed = seal(master, Buffer.from('private key bytes'), 'kid-1');
    expect(sealed).not.toContain(Buffer.from('private key bytes').toString('base64url'));
    const opened = open(master, sealed, 'kid-1');
    expect(opened.ok && opened.plain.toString()).toBe('private key bytes');
    expect(open(master, sealed, 'kid-2')).toMatchObject({ ok: false, code: 'POS_ERR_KEY_DECRYPT' });
    expect(open(randomBytes(32), sealed, 'kid-1')).toMatchObject({ ok: false, code: 'POS_ERR_KEY_DECRYPT' });
    expect(open(master, 'a.b', 'kid-1')).toMatchObject({ ok: false });
  });

  it('refuses to open the key ring under another master key', async () => {
    const store = openSqliteStore({ path: ':memory:' });
    const first = await KeyRing.open(store, randomBytes(32), Date.now(), { ticketLifetimeS: 60 });
    expect(first.ok).toBe(true);
    const second = await KeyRing.open(store, randomBytes(32), Date.now(), { ticketLifetimeS: 60 });
    expect(second).toMatchObject({ ok: false, code: 'POS_ERR_MASTER_KEY_INVALID' });
    const rows = await store.listSigningKeys();
    expect(rows[0]?.encryptedPrivateKey.split('.')).toHaveLength(3);
    await store.close();
  });

  it('answers malformed HTTP and oversized headers in the error shape', async () => {
    const h = await makeHarness();
    try {
      await h.app.listen({ port: 0, host: '127.0.0.1' });
      const address = h.app.server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      const raw = (request: string): Promise<string> =>
        new Promise((resolve) => {
          let data = '';
          const socket = connect(port, '127.0.0.1', () => socket.write(request));
          socket.on('data', (c: Buffer) => (data += c.toString('utf8')));
          socket.on('close', () => resolve(data));
        });
      const garbage = await raw('GARBAGE\r\n\r\n');
      expect(garbage).toMatch(/^HTTP\/1\.1 400/);
      expect(garbage).toContain('"code":"POS_ERR_REQUEST_MALFORMED"');
      const big = await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      expect(big).toMatch(/^HTTP\/1\.1 431/);
      expect(big).toContain('"code":"POS_ERR_REQUEST_TOO_LARGE"');
    } finally {
      await h.close();
    }
  });

  it('rate limits by the forwarded client address only when told to trust the proxy', async () => {
    for (const trustProxy of [false, true]) {
      const h = await makeHarness({ rateLimitPerMinute: 2, trustProxy });
      try {
        const codes: number[] = [];
        for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) {
          const res = await h.app.inject({
            method: 'GET',
            url: '/healthz',
            headers: { 'x-forwarded-for': ip },
          });
          codes.push(res.statusCode);
          await h.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-forwarded-for': ip } });
        }
        expect(codes).toEqual(trustProxy ? [200, 200, 200] : [200, 429, 429]);
      } finally {
        await h.close();
      }
    }
  });
});
