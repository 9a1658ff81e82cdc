/**
 * API9:2023 Improper Inventory Management: the running back-end serves exactly what its inventory
 * says. Every route Fastify has is in /openapi.json and every operation there is a route, except a
 * listed few, each with its reason; every API route is versioned (/v1); the docs name every route;
 * no debug or test route exists, and development mode adds none.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSecurityHarness, type SecurityHarness } from './harness';

interface RouteKey {
  readonly method: string;
  readonly url: string;
}
const key = (r: RouteKey): string => `${r.method} ${r.url}`;

/**
 * The router's routes, from Fastify's printRoutes tree (every line "<prefix>── <segment> (METHODS)",
 * four characters of indentation per level). Each one found is checked with hasRoute, so a parse
 * error fails the test instead of hiding a route.
 */
function routerRoutes(app: FastifyInstance): RouteKey[] {
  const out: RouteKey[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line.replace(/\u00a0/g, ' '));
    if (m === null) continue;
    const depth = (m[1] ?? '').length / 4;
    stack.length = depth;
    stack.push(m[2] ?? '');
    const url = stack.join('');
    for (const method of (m[3] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      out.push({ method, url });
    }
  }
  return out;
}

/** The documentation UI's and the dashboard's static pages (not API routes; reasons below). */
const PAGES = /^\/(docs|dashboard)(\/|\*|$)/;

/** OpenAPI paths use {param}; the router :param. */
const fromOpenApi = (path: string): string => path.replace(/\{([^}]+)\}/g, ':$1');

/** Infrastructure routes outside /v1, each with why it is unversioned. */
const UNVERSIONED: Readonly<Record<string, string>> = {
  '/healthz': 'liveness probe (orchestrators)',
  '/readyz': 'readiness probe (orchestrators)',
  '/metrics': 'Prometheus scrape endpoint',
  '/openapi.json': 'the inventory itself',
  '/.well-known/jwks.json': 'RFC 8615 well-known location of the ticket-signing keys',
};

/** Routes the router has that the OpenAPI document leaves out, each with its reason. */
const NOT_IN_OPENAPI: readonly { readonly match: RegExp; readonly reason: string }[] = [
  { match: /^HEAD /, reason: "Fastify's HEAD mirror of a GET route (headers only); checked to have its GET" },
  { match: /^GET \/docs(\/|\*|$)/, reason: 'the browsable API documentation (swagger-ui) of this document' },
  {
    match: /^GET \/dashboard(\/|\*|$)/,
    reason: 'the operator dashboard: static files, not an API (docs/dashboard.md)',
  },
  {
    match: /^GET \/v1\/push$/,
    reason: '@fastify/websocket hides WebSocket routes from OpenAPI; the protocol is in docs/fleet.md',
  },
];

const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url));

describe('API9:2023 Improper Inventory Management', () => {
  let sec: SecurityHarness;
  let prod: SecurityHarness;
  let routes: RouteKey[];
  let documented: RouteKey[];
  beforeAll(async () => {
    sec = await startSecurityHarness();
    // The harness runs in development mode; the same service in production mode.
    prod = await startSecurityHarness({ config: { development: false } });
    routes = routerRoutes(sec.h.app);
    const doc = (await sec.request('GET', '/openapi.json')).json as { paths: Record<string, object> };
    documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => ({ method: m.toUpperCase(), url: fromOpenApi(path) })),
    );
  });
  afterAll(async () => {
    await sec.close();
    await prod.close();
  });

  it('reads the router completely (every route found exists; the known ones are found)', () => {
    expect(routes.length).toBeGreaterThan(60);
    for (const r of routes) {
      // The two static page trees (plugins' wildcards) print in a shape hasRoute does not take back.
      if (PAGES.test(r.url)) continue;
      expect(sec.h.app.hasRoute({ method: r.method, url: r.url }), key(r)).toBe(true);
    }
    const keys = routes.map(key);
    for (const k of [
      'POST /v1/attestations',
      'GET /v1/terminals/:terminalId',
      'GET /v1/push',
      'GET /dashboard',
    ])
      expect(keys).toContain(k);
    expect(sec.h.app.hasRoute({ method: 'GET', url: '/dashboard/*' })).toBe(true);
  });

  it('every OpenAPI operation is a route the server has', () => {
    expect(documented.length).toBeGreaterThan(40);
    const keys = new Set(routes.map(key));
    for (const d of documented) expect(keys.has(key(d)), `${key(d)} is documented but not served`).toBe(true);
  });

  it('every route is in the OpenAPI document, except the listed few with their reasons', () => {
    const documentedKeys = new Set(documented.map(key));
    const undocumented = routes.map(key).filter((k) => !documentedKeys.has(k));
    const unexplained = undocumented.filter((k) => !NOT_IN_OPENAPI.some((e) => e.match.test(k)));
    expect(unexplained, 'routes served but neither documented nor listed with a reason').toEqual([]);
    // Every exception is still needed (the list does not grow stale).
    for (const e of NOT_IN_OPENAPI)
      expect(
        undocumented.some((k) => e.match.test(k)),
        e.reason,
      ).toBe(true);
    // A HEAD route only mirrors a GET.
    const keys = new Set(routes.map(key));
    for (const r of routes.filter((x) => x.method === 'HEAD'))
      expect(keys.has(`GET ${r.url}`), r.url).toBe(true);
  });

  it('the undocumented WebSocket route is in the docs, with its proof', () => {
    const fleet = readFileSync(join(DOCS, 'fleet.md'), 'utf8');
    expect(fleet).toContain('`GET /v1/push`');
    expect(fleet).toMatch(/Pos-Proof/);
  });

  it('every API route is under /v1; unversioned ones are the listed infrastructure', () => {
    for (const r of routes) {
      if (PAGES.test(r.url)) continue;
      if (r.url.startsWith('/v1/')) continue;
      expect(UNVERSIONED[r.url], `${key(r)} is neither under /v1 nor listed`).toBeDefined();
    }
    for (const path of Object.keys(UNVERSIONED))
      expect(
        routes.some((r) => r.url === path),
        path,
      ).toBe(true);
  });

  it('other versions and unversioned API paths do not exist', async () => {
    for (const path of [
      '/v2/attestations',
      '/v0/merchants',
      '/attestations',
      '/api/v1/merchants',
      '/v1.1/terminals',
    ]) {
      const res = await sec.request('GET', path, { as: 'admin' });
      expect(res.status, path).toBe(404);
      expect(res.code).toBe('POS_ERR_NOT_FOUND');
    }
  });

  it('the docs name every documented operation (docs/*.md)', () => {
    const text = readdirSync(DOCS)
      .filter((f) => f.endsWith('.md'))
      .map((f) => readFileSync(join(DOCS, f), 'utf8'))
      .join('\n')
      .replace(/:[A-Za-z]+/g, ':x')
      .replace(/\{[A-Za-z]+\}/g, ':x');
    const missing = documented
      .filter((d) => d.url.startsWith('/v1/'))
      .filter((d) => !text.includes(`${d.method} ${d.url.replace(/:[A-Za-z]+/g, ':x')}`));
    expect(missing.map(key), 'operations no doc names').toEqual([]);
  });

  it('no debug, test or internal routes; development mode adds none', () => {
    const suspicious =
      /^(_.*|debug|tests?|internal|dev|eval|shell|exec|seed|reset|dump|trace|env|config|phpinfo|status|info)$/i;
    for (const r of routes) {
      for (const segment of r.url.split('/')) {
        expect(suspicious.test(segment), `${key(r)} looks like a debug route`).toBe(false);
      }
    }
    expect(routerRoutes(prod.h.app).map(key).sort()).toEqual(routes.map(key).sort());
  });

  it('TRACE and other unlisted methods are not served', async () => {
    for (const method of ['TRACE', 'PATCH', 'PUT', 'OPTIONS']) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          `${sec.base}/v1/merchants`,
          { method, headers: { authorization: `Bearer ${sec.principals.admin.token}` } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(status, method).toBe(404);
    }
  });
});
