/**
 * The metrics scrape token (`buildApp({ metricsToken })`, `pos-backend --metrics-token-file`): with one,
 * GET /metrics needs `Authorization: Bearer <token>`, compared in constant time; nothing else opens it
 * (an operator API token or a dashboard session does not) and the token opens nothing else. Without
 * one, /metrics stays public.
 */
import { randomBytes } from 'node:crypto';
import * as crypto from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { REDACT_PATHS } from '../../src/server/logging';
import { ErrorBodySchema } from '../../src/server/http-errors';
import { makeFileHarness, type FileHarness } from '../fleet-helpers';

// timingSafeEqual is watched (and still does its work) to see that the token is compared with it.
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof crypto>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

const TOKEN = randomBytes(32).toString('base64url'); // 43 characters
const harnesses: FileHarness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});

/** An app (the fleet harness on a memory store) with the scrape token, logging into `logLines` if given. */
async function appWith(
  metricsToken: string | undefined,
  logLines?: string[],
): Promise<{ app: FastifyInstance; adminToken: string }> {
  const logger =
    logLines === undefined
      ? undefined
      : pino(
          { level: 'trace', redact: { paths: [...REDACT_PATHS], censor: '[redacted]' } },
          new Writable({
            write(chunk: Buffer, _encoding, done): void {
              logLines.push(chunk.toString('utf8'));
              done();
            },
          }),
        );
  const h = await makeFileHarness(':memory:', {}, undefined, {
    ...(metricsToken === undefined ? {} : { metricsToken }),
    ...(logger === undefined ? {} : { logger }),
  });
  harnesses.push(h);
  return { app: h.app, adminToken: h.adminToken };
}

async function scrape(
  app: FastifyInstance,
  headers: Record<string, string> = {},
  method: 'GET' | 'HEAD' = 'GET',
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const res = await app.inject({ method, url: '/metrics', headers });
  return { status: res.statusCode, body: res.body, headers: res.headers };
}

function expectRefused(res: { status: number; body: string; headers: Record<string, unknown> }): void {
  expect(res.status).toBe(401);
  expect(res.headers['www-authenticate']).toBe('Bearer');
  const body = ErrorBodySchema.parse(JSON.parse(res.body));
  expect(body.error.code).toBe('POS_ERR_METRICS_UNAUTHORIZED');
  expect(res.body).not.toContain('pos_http_requests_total');
  expect(res.body).not.toContain(TOKEN);
}

interface OpenApiDoc {
  paths: Record<string, Record<string, { security?: Record<string, unknown>[] }>>;
  components: { securitySchemes: Record<string, unknown> };
}

describe('GET /metrics without a scrape token', () => {
  it('is public as before, and the OpenAPI document gives it no security', async () => {
    const { app } = await appWith(undefined);
    const res = await scrape(app);
    expect(res.status).toBe(200);
    expect(res.body).toContain('# TYPE pos_http_requests_total counter');
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<OpenApiDoc>();
    expect(doc.paths['/metrics']?.['get']?.security).toBeUndefined();
    expect(doc.components.securitySchemes).not.toHaveProperty('metricsToken');
  });
});

describe('GET /metrics with a scrape token', () => {
  it('refuses a request without Authorization: 401, the error shape, POS_ERR_METRICS_UNAUTHORIZED, WWW-Authenticate: Bearer (HEAD too)', async () => {
    const { app } = await appWith(TOKEN);
    expectRefused(await scrape(app));
    const head = await scrape(app, {}, 'HEAD');
    expect(head.status).toBe(401);
    expect(head.headers['www-authenticate']).toBe('Bearer');
  });

  it('refuses a wrong token: another token, a prefix, a longer one, another case, another scheme, no scheme', async () => {
    const { app } = await appWith(TOKEN);
    const wrong = [
      `Bearer ${randomBytes(32).toString('base64url')}`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.toUpperCase() === TOKEN ? TOKEN.toLowerCase() : TOKEN.toUpperCase()}`,
      `Bearer ${TOKEN} ${TOKEN}`,
      `Basic ${Buffer.from(`metrics:${TOKEN}`).toString('base64')}`,
      `PosTicket ${TOKEN}`,
      TOKEN,
      'Bearer ',
    ];
    for (const authorization of wrong) expectRefused(await scrape(app, { authorization }));
  });

  it('answers the right token with the metrics (the scheme in any case)', async () => {
    const { app } = await appWith(TOKEN);
    for (const authorization of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER ${TOKEN}`]) {
      const res = await scrape(app, { authorization });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.body).toContain('# TYPE pos_http_requests_total counter');
    }
    // The refusals are counted like any answer: a scrape sees them.
    await scrape(app);
    const after = await scrape(app, { authorization: `Bearer ${TOKEN}` });
    expect(after.body).toMatch(/pos_http_requests_total\{method="GET",route="\/metrics",status="401"\} 1/);
  });

  it('compares the token in constant time: timingSafeEqual over two SHA-256 digests, once per request, right or wrong, whatever the length', async () => {
    const { app } = await appWith(TOKEN);
    const spy = vi.mocked(crypto.timingSafeEqual);
    for (const [authorization, status] of [
      [`Bearer ${TOKEN}`, 200],
      [`Bearer ${TOKEN.slice(0, -1)}x`, 401],
      ['Bearer short', 401],
      [`Bearer ${'y'.repeat(900)}`, 401],
      [undefined, 401],
    ] as const) {
      spy.mockClear();
      const res = await scrape(app, authorization === undefined ? {} : { authorization });
      expect(res.status).toBe(status);
      expect(spy).toHaveBeenCalledTimes(1);
      const [a, b] = spy.mock.calls[0] ?? [];
      expect(Buffer.isBuffer(a) && a.length).toBe(32);
      expect(Buffer.isBuffer(b) && b.length).toBe(32);
    }
  });

  it('is not opened by an operator API token or a dashboard session, and the scrape token opens no operator route', async () => {
    const { app, adminToken } = await appWith(TOKEN);
    expectRefused(await scrape(app, { authorization: `Bearer ${adminToken}` }));

    const created = await app.inject({
      method: 'POST',
      url: '/v1/users',
      headers: { authorization: `Bearer ${adminToken}` },
      payload: { username: 'metrics-admin', password: 'a long enough password', role: 'admin' },
    });
    expect(created.statusCode).toBe(201);
    const login = await app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { username: 'metrics-admin', password: 'a long enough password' },
    });
    expect(login.statusCode).toBe(200);
    const cookie = String(login.headers['set-cookie']).split(';')[0] ?? '';
    expect(cookie).toMatch(/^__Host-pos_session=/);
    expect((await app.inject({ method: 'GET', url: '/v1/auth/me', headers: { cookie } })).statusCode).toBe(
      200,
    );
    expectRefused(await scrape(app, { cookie }));

    const withScrapeToken = await app.inject({
      method: 'GET',
      url: '/v1/merchants',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(withScrapeToken.statusCode).toBe(401);
    expect(withScrapeToken.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_OPERATOR_AUTH');
  });

  it('shows the route as needing the metricsToken scheme in the OpenAPI document, and no other route', async () => {
    const { app } = await appWith(TOKEN);
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<OpenApiDoc>();
    expect(doc.paths['/metrics']?.['get']?.security).toEqual([{ metricsToken: [] }]);
    expect(doc.components.securitySchemes['metricsToken']).toMatchObject({ type: 'http', scheme: 'bearer' });
    const others = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.values(ops)
        .filter((op) => (op.security ?? []).some((s) => 'metricsToken' in s))
        .map(() => path),
    );
    expect(others).toEqual(['/metrics']);
    // The documents stay public (they describe the API, they hold no data).
    expect((await app.inject({ method: 'GET', url: '/openapi.json' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/docs/' })).statusCode).toBe(200);
  });

  it('never writes the token to the log, right or wrong', async () => {
    const lines: string[] = [];
    const { app } = await appWith(TOKEN, lines);
    await scrape(app, { authorization: `Bearer ${TOKEN}` });
    await scrape(app, { authorization: `Bearer ${TOKEN}x` });
    await scrape(app);
    const log = lines.join('');
    expect(log).toContain('POS_ERR_METRICS_UNAUTHORIZED');
    expect(log).not.toContain(TOKEN);
  });

  it('buildApp refuses a token that is not 32-1024 visible ASCII characters', async () => {
    for (const bad of ['too-short', `${TOKEN} ${TOKEN}`, `${TOKEN}\n`, 'é'.repeat(40), 'x'.repeat(1025)]) {
      await expect(appWith(bad)).rejects.toThrow();
    }
  });
});
