/**
 * Serving the dashboard: the built app under /dashboard/ with a strict CSP, the SPA fallback, cache
 * headers, no path traversal, the not-built page, and the routes left out of the OpenAPI document.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import helmet from '@fastify/helmet';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendError, ServiceError } from '../../src/server/http-errors';
import { DASHBOARD_CSP, dashboardRoutes } from '../../src/server/routes/dashboard';
import { makeHarness, type Harness } from '../helpers';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A bare app with the service's helmet, error and not-found handlers, and the dashboard on `root`. */
async function appOn(root: string): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.setErrorHandler((error, request, reply) => sendError(request, reply, error));
  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, new ServiceError(404, 'POS_ERR_NOT_FOUND')),
  );
  await app.register(helmet, { global: true });
  await app.register(dashboardRoutes, { root });
  await app.ready();
  return app;
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pos-dashboard-'));
  dirs.push(d);
  return d;
}

describe('a built dashboard', () => {
  let app: FastifyInstance;
  let root: string;
  beforeAll(async () => {
    root = tempDir();
    mkdirSync(join(root, 'assets'));
    writeFileSync(
      join(root, 'index.html'),
      '<!doctype html><script type="module" src="/dashboard/assets/index-abc.js"></script>',
    );
    writeFileSync(join(root, 'assets', 'index-abc.js'), 'console.log(1)');
    writeFileSync(join(tmpdir(), 'pos-dashboard-secret.txt'), 'outside');
    app = await appOn(root);
  });
  afterAll(() => app.close());

  it('redirects /dashboard to /dashboard/', async () => {
    const res = await app.inject({ method: 'GET', url: '/dashboard' });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/dashboard/');
  });

  it('serves index.html with the strict CSP (no inline script or style, this origin only)', async () => {
    const res = await app.inject({ method: 'GET', url: '/dashboard/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('/dashboard/assets/index-abc.js');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toBe(DASHBOARD_CSP);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('serves hashed assets as immutable, with the CSP', async () => {
    const res = await app.inject({ method: 'GET', url: '/dashboard/assets/index-abc.js' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('console.log(1)');
    expect(res.headers['cache-control']).toContain('immutable');
    expect(res.headers['content-security-policy']).toBe(DASHBOARD_CSP);
  });

  it('answers a missing asset 404 in the service error shape, and any other path with the app', async () => {
    const missing = await app.inject({ method: 'GET', url: '/dashboard/assets/nope.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_NOT_FOUND');
    const deep = await app.inject({ method: 'GET', url: '/dashboard/terminals/trm_1' });
    expect(deep.statusCode).toBe(200);
    expect(deep.body).toContain('index-abc.js');
  });

  it('never serves a file outside its folder', async () => {
    for (const url of [
      '/dashboard/../pos-dashboard-secret.txt',
      '/dashboard/%2e%2e/pos-dashboard-secret.txt',
      '/dashboard/assets/%2e%2e/%2e%2e/pos-dashboard-secret.txt',
    ]) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.body, url).not.toContain('outside');
    }
  });
});

describe('a dashboard not built yet', () => {
  it('says so, and how to build it, with the CSP', async () => {
    const app = await appOn(join(tempDir(), 'absent'));
    try {
      const res = await app.inject({ method: 'GET', url: '/dashboard/' });
      expect(res.statusCode).toBe(503);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.body).toContain('npm run build -w backend');
      expect(res.body).not.toContain('<script');
      expect(res.headers['content-security-policy']).toBe(DASHBOARD_CSP);
    } finally {
      await app.close();
    }
  });
});

describe('in the service', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await makeHarness();
  });
  afterAll(() => h.close());

  it('serves /dashboard/ (built or the not-built page) with the CSP', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/dashboard/' });
    expect([200, 503]).toContain(res.statusCode);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['content-security-policy']).toBe(DASHBOARD_CSP);
  });

  it('leaves the dashboard out of the OpenAPI document', async () => {
    const doc = await h.app.inject({ method: 'GET', url: '/openapi.json' });
    const paths = Object.keys(doc.json<{ paths: Record<string, unknown> }>().paths);
    expect(paths.length).toBeGreaterThan(20);
    expect(paths.filter((p) => p.startsWith('/dashboard'))).toEqual([]);
  });

  it('keeps the API CSP of the other routes (helmet)', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.headers['content-security-policy']).not.toBe(DASHBOARD_CSP);
  });
});
