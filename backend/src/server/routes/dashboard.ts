/**
 * The operator dashboard's static files (`GET /dashboard/*`): the React app Vite builds from
 * backend/dashboard into backend/dist/dashboard (`npm run build -w backend`). The files are public
 * (the app itself holds no data: every read and change goes through the operator API with the
 * session cookie and its CSRF token). Every answer carries a strict Content-Security-Policy the
 * built app satisfies (no inline script or style, connections to this origin only). When the app has
 * not been built, the page says so and how to build it. Left out of the OpenAPI document (not an
 * API). docs/dashboard.md.
 */
import { existsSync, statSync } from 'node:fs';
import { join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ServiceError } from '../http-errors';

/** Where `npm run build -w backend` writes the dashboard. */
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL('../../../dist/dashboard/', import.meta.url));

/** The dashboard's Content-Security-Policy: scripts, styles and connections from this origin only. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

export interface DashboardOptions {
  /** The built dashboard (default: $POS_DASHBOARD_DIR, else backend/dist/dashboard). */
  readonly root?: string;
}

const NOT_BUILT = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Dashboard not built</title></head>
<body>
<h1>The operator dashboard is not built</h1>
<p>This back-end serves the dashboard from <code>backend/dist/dashboard</code>, which does not exist yet.
Build it from the repository root, then reload this page (no restart needed):</p>
<pre>npm run build -w backend</pre>
<p>The API itself works without it: <a href="/docs">/docs</a>, <a href="/openapi.json">/openapi.json</a>.</p>
</body>
</html>
`;

function security(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', DASHBOARD_CSP)
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer');
}

export async function dashboardRoutes(app: FastifyInstance, options: DashboardOptions): Promise<void> {
  const fromEnv = process.env['POS_DASHBOARD_DIR'];
  const root = normalize(
    options.root ?? (fromEnv === undefined || fromEnv === '' ? DEFAULT_DASHBOARD_DIR : fromEnv),
  );
  // sendFile only: the routes below decide what is served.
  await app.register(fastifyStatic, { serve: false, root });

  const schema = { hide: true };

  app.get('/dashboard', { schema }, async (_request, reply) => security(reply).redirect('/dashboard/', 302));

  app.get<{ Params: { '*': string } }>('/dashboard/*', { schema }, async (request, reply) => {
    security(reply);
    if (!existsSync(join(root, 'index.html'))) {
      return reply
        .code(503)
        .header('cache-control', 'no-store')
        .type('text/html; charset=utf-8')
        .send(NOT_BUILT);
    }
    const wanted = request.params['*'];
    // The app routes by the URL's fragment (#/terminals/...): every path that is not a file is the app.
    const file = normalize(join(root, wanted));
    const inside = file.startsWith(root.endsWith(sep) ? root : root + sep);
    const isFile = inside && wanted !== '' && existsSync(file) && statSync(file).isFile();
    if (!isFile) {
      if (wanted.startsWith('assets/')) throw new ServiceError(404, 'POS_ERR_NOT_FOUND');
      return reply.header('cache-control', 'no-cache').sendFile('index.html', root, { cacheControl: false });
    }
    // Vite names assets by content hash: they never change under one name.
    const immutable = wanted.startsWith('assets/');
    return reply
      .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .sendFile(wanted, root, { cacheControl: false });
  });
}
