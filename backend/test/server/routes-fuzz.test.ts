/**
 * Every route answers malformed, oversized and wrong-typed requests with a 4xx in the one error
 * shape, never a 5xx: a fast-check property over all routes of the OpenAPI document, via app.inject.
 */
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHarness, seedReferenceValues, SimTerminal, type Harness } from '../helpers';

let h: Harness;
let routes: { method: 'GET' | 'POST' | 'DELETE'; url: string }[];
let terminal: SimTerminal;

beforeAll(async () => {
  h = await makeHarness();
  terminal = new SimTerminal(h);
  const doc = h.app.swagger() as { paths: Record<string, Record<string, unknown>> };
  routes = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) {
      const m = method.toUpperCase();
      if (m === 'GET' || m === 'POST' || m === 'DELETE')
        routes.push({ method: m, url: path.replace(/\{[^}]+\}/g, 'x1') });
    }
  }
});
afterAll(async () => {
  await h.close();
});

function expectClientError(res: LightMyRequestResponse, what: string): void {
  if (res.statusCode >= 500) throw new Error(`${what} -> ${res.statusCode} ${res.body}`);
  if (res.statusCode >= 400) {
    const body = res.json<{ error: { code: string; message: string; requestId: string } }>();
    expect(body.error.code).toMatch(/^POS_ERR_[A-Z0-9_]+$/);
    expect(typeof body.error.message).toBe('string');
    expect(body.error.requestId.length).toBeGreaterThan(0);
    expect(Object.keys(body)).toEqual(['error']);
  }
}

const authHeaders = fc.constantFrom<Record<string, string>>(
  {},
  { authorization: 'Bearer nonsense' },
  { authorization: 'PosTicket a.b.c', 'pos-proof': 'x.y.z' },
  { 'pos-proof': 'eyJhbGciOiJFUzI1NiJ9.e30.AAAA' },
);

describe('every route refuses bad input with a 4xx', () => {
  it('finds the routes', () => {
    expect(routes.length).toBeGreaterThan(15);
  });

  it('arbitrary JSON bodies, with and without credentials', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1000 }),
        fc.jsonValue({ maxDepth: 3 }),
        fc.boolean(),
        authHeaders,
        async (i, body, admin, extra) => {
          const r = routes[i % routes.length];
          if (r === undefined) return;
          const headers: Record<string, string> = { 'content-type': 'application/json', ...extra };
          if (admin) headers['authorization'] = `Bearer ${h.adminToken}`;
          const res = await h.app.inject({
            method: r.method,
            url: r.url,
            headers,
            ...(r.method === 'GET' ? {} : { payload: JSON.stringify(body) }),
          });
          expectClientError(res, `${r.method} ${r.url}`);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('wrong-typed fields in otherwise plausible bodies', async () => {
    const field = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.string()),
      fc.object(),
    );
    const body = fc.record(
      {
        evidence: field,
        nonce: field,
        code: field,
        deviceJwk: field,
        readerSerial: field,
        terminalId: field,
        amount: field,
        currency: field,
        ksn: field,
        cardData: field,
        pinBlock: field,
        name: field,
        reason: field,
        policy: field,
        enabled: field,
        version: field,
        build: field,
        codeHashes: field,
        allowedShells: field,
        ttlS: field,
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 1000 }), body, fc.boolean(), async (i, b, admin) => {
        const r = routes[i % routes.length];
        if (r === undefined || r.method === 'GET') return;
        const res = await h.app.inject({
          method: r.method,
          url: r.url,
          headers: {
            'content-type': 'application/json',
            ...(admin ? { authorization: `Bearer ${h.adminToken}` } : {}),
          },
          payload: JSON.stringify(b),
        });
        expectClientError(res, `${r.method} ${r.url}`);
      }),
      { numRuns: 300 },
    );
  });

  it('malformed JSON, wrong content types and oversized bodies', async () => {
    const garbage = fc.oneof(
      fc.string(),
      fc.constant('{"a":'),
      fc.constant('{"__proto__":{"x":1}}'),
      fc.constant('{"constructor":{"prototype":{}}}'),
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('latin1')),
    );
    const contentType = fc.constantFrom(
      'application/json',
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/octet-stream',
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 1000 }), garbage, contentType, async (i, payload, ct) => {
        const r = routes[i % routes.length];
        if (r === undefined || r.method === 'GET') return;
        const res = await h.app.inject({
          method: r.method,
          url: r.url,
          headers: { 'content-type': ct, authorization: `Bearer ${h.adminToken}` },
          payload,
        });
        expectClientError(res, `${r.method} ${r.url}`);
      }),
      { numRuns: 300 },
    );
    for (const r of routes.filter((x) => x.method === 'POST')) {
      const res = await h.app.inject({
        method: r.method,
        url: r.url,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${h.adminToken}` },
        payload: JSON.stringify({ evidence: 'x'.repeat(200 * 1024) }),
      });
      expect(res.statusCode, `${r.method} ${r.url}`).toBe(413);
      expect(res.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_REQUEST_TOO_LARGE');
    }
  });

  it('unknown routes and methods get the error shape', async () => {
    for (const [method, url] of [
      ['GET', '/v1/nope'],
      ['PUT', '/v1/attestations'],
      ['GET', '/v2/attestations'],
    ] as const) {
      const res = await h.app.inject({ method, url });
      expect(res.statusCode).toBe(404);
      expect(res.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_NOT_FOUND');
    }
  });

  it('unknown fields are refused', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/challenges', payload: { extra: 1 } });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_REQUEST_INVALID');
    const m = await h.admin('POST', '/v1/merchants', { name: 'x', admin: true });
    expect(m.statusCode).toBe(400);
  });

  it('serves the OpenAPI document and the docs page', async () => {
    const doc = await h.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(doc.statusCode).toBe(200);
    expect(doc.json<{ openapi: string }>().openapi).toMatch(/^3\./);
    const page = await h.app.inject({ method: 'GET', url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
  });

  it('keeps the terminal simulator usable after the fuzzing (no state corruption)', async () => {
    await seedReferenceValues(h);
    expect((await terminal.enroll()).statusCode).toBe(201);
    expect((await terminal.attest()).statusCode).toBe(200);
  });
});
