/**
 * The browser shell: the terminal UI served on loopback by the headless core, for any browser on the
 * same computer (docs/terminal.md, "Browser shell").
 *
 * - Listens on a loopback address only (127.0.0.1 by default; another loopback host is refused), on
 *   a given or a random port.
 * - Static: the built renderer (a directory holding index.html, e.g. desktop/dist/renderer), or a
 *   plain page saying the UI is not built and how to build it. Files are served only from inside that
 *   directory (no `..`, no symlinks, no dotfiles), with a strict CSP and security headers.
 * - The UI API (desktop/src/api/contract.ts):
 *     POST /api/command   a JSON Command (≤ 4 KiB) → its CommandResult (200), or a refusal
 *     GET  /api/events    server-sent events: `event: snapshot` with each whole snapshot as data
 *     GET  /api/snapshot  the current snapshot
 *     POST /api/session   `{"code": BOOTSTRAP}` → `{"key": SECRET}`, once per launch (no secret needed)
 *   Every other API request carries this launch's secret (32 random bytes) in the `X-Pos-Shell-Key`
 *   header. The URL the person opens carries only a single-use bootstrap code in its fragment
 *   (`#c=...`, never sent to a server, never in a log or a Referer): the page exchanges it once (POST,
 *   with this origin's `Origin` and `Host`) for the secret and keeps the secret in sessionStorage
 *   (scoped to this origin, port included — unlike a cookie, which any other port of 127.0.0.1 would
 *   receive). A second exchange of the code is refused, so the URL left in the browser's history or
 *   autocomplete, or printed in a log, opens nothing (review 2, L2). The header also makes every
 *   cross-origin API call need a CORS preflight, which is refused. The secret and the code are
 *   compared in constant time (SHA-256 of both sides).
 * - DNS rebinding and cross-site requests: the Host header must name this listener
 *   (`127.0.0.1:PORT` or `localhost:PORT`); an Origin header, when sent, must be this origin; a
 *   `Sec-Fetch-Site` other than `same-origin` or `none` is refused. All refusals answer
 *   `POS_ERR_DESKTOP_SHELL_AUTH`.
 * - Never a 5xx for anything a client sends: bad JSON, a body that is not a Command (400
 *   `POS_ERR_DESKTOP_API_INVALID`), too large (413), not JSON (415), unknown path (404), method (405).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { lstat, readFile, realpath } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, sep } from 'node:path';
import { toBase64url } from '@pos/shared';
import { z } from 'zod';
import { parseCommand, type Snapshot, type TerminalCore } from '../api/contract';

export const SHELL_KEY_HEADER = 'x-pos-shell-key';
export const MAX_BODY_BYTES = 4096;
export const DEFAULT_MAX_EVENT_CLIENTS = 16;
export const DEFAULT_HEARTBEAT_MS = 15_000;

export interface BrowserShellOptions {
  readonly core: TerminalCore;
  /** The built renderer (holds index.html); missing or without index.html: the "not built" page. */
  readonly rendererDir?: string;
  /** A loopback address or `localhost`; default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: a free port. */
  readonly port?: number;
  /** This launch's secret; default 32 random bytes. */
  readonly secret?: Uint8Array;
  /** This launch's single-use bootstrap code (in the URL); default 32 random bytes. */
  readonly bootstrapCode?: Uint8Array;
  readonly maxEventClients?: number;
  readonly heartbeatMs?: number;
}

export interface BrowserShell {
  /** The URL for the person: the origin with the single-use bootstrap code in the fragment (`#c=...`). */
  readonly url: string;
  /** `http://127.0.0.1:PORT`. */
  readonly origin: string;
  readonly port: number;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|::1|\[::1\])$/;

/** Content-Security-Policy of every answer: the page's own scripts, styles and API only. */
export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'permissions-policy':
    'camera=(), microphone=(), geolocation=(), usb=(), serial=(), hid=(), bluetooth=(), payment=(), display-capture=(), clipboard-read=()',
};

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.txt': 'text/plain; charset=utf-8',
};

export const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Terminal UI not built</title></head>
<body><main>
<h1>The terminal UI is not built</h1>
<p>The browser shell is running, but the renderer has not been built yet.</p>
<p>Build it with <code>npm run build -w desktop</code> (from the project's root), then restart the terminal
(<code>npm start</code>, or <code>node desktop/bin/pos-terminal-ui.js</code>) and open the new URL it prints.</p>
</main></body></html>
`;

type Refusal = { status: number; code: string; detail: string };

/** The body of `POST /api/session`. */
const SessionExchangeSchema = z.strictObject({ code: z.string().min(1).max(256) });

function sha256(b: Uint8Array | string): Buffer {
  return createHash('sha256').update(b).digest();
}

export async function startBrowserShell(opts: BrowserShellOptions): Promise<BrowserShell> {
  const host = opts.host ?? '127.0.0.1';
  if (!LOOPBACK.test(host)) throw new Error('the browser shell listens on a loopback address only');
  const secret = opts.secret ?? randomBytes(32);
  if (secret.length < 16) throw new Error('the browser shell secret is at least 16 bytes');
  const secretText = toBase64url(secret);
  const secretHash = sha256(secretText);
  const bootstrap = opts.bootstrapCode ?? randomBytes(32);
  if (bootstrap.length < 16) throw new Error('the browser shell bootstrap code is at least 16 bytes');
  const bootstrapText = toBase64url(bootstrap);
  const bootstrapHash = sha256(bootstrapText);
  let bootstrapUsed = false;
  const maxClients = opts.maxEventClients ?? DEFAULT_MAX_EVENT_CLIENTS;
  const heartbeatMs = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const core = opts.core;

  const rendererRoot = await (async () => {
    if (opts.rendererDir === undefined) return undefined;
    try {
      const dir = await realpath(opts.rendererDir);
      const index = await lstat(join(dir, 'index.html'));
      return index.isFile() ? dir : undefined;
    } catch {
      return undefined;
    }
  })();

  let allowedHosts: ReadonlySet<string> = new Set();
  let allowedOrigins: ReadonlySet<string> = new Set();
  const streams = new Set<ServerResponse>();

  const send = (
    res: ServerResponse,
    status: number,
    body: string | Uint8Array,
    type: string,
    extra: Record<string, string> = {},
  ): void => {
    if (res.headersSent) {
      res.end();
      return;
    }
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'content-type': type,
      'content-length': String(typeof body === 'string' ? Buffer.byteLength(body) : body.length),
      ...extra,
    });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, value: unknown, extra?: Record<string, string>): void =>
    send(res, status, JSON.stringify(value), 'application/json; charset=utf-8', {
      'cache-control': 'no-store',
      ...extra,
    });
  const refuse = (res: ServerResponse, r: Refusal, extra?: Record<string, string>): void =>
    json(res, r.status, { ok: false, code: r.code, detail: r.detail }, extra);
  const authRefusal = (detail: string, status = 403): Refusal => ({
    status,
    code: 'POS_ERR_DESKTOP_SHELL_AUTH',
    detail,
  });

  /** Host, Origin and Sec-Fetch-Site: this listener, this origin, same-origin. */
  function checkOrigin(req: IncomingMessage): Refusal | undefined {
    const h = req.headers.host;
    if (h === undefined || !allowedHosts.has(h.toLowerCase()))
      return authRefusal('the Host header does not name this terminal');
    const origin = req.headers.origin;
    if (origin !== undefined && !allowedOrigins.has(origin.toLowerCase()))
      return authRefusal('the request comes from another origin');
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none')
      return authRefusal('the request comes from another site');
    return undefined;
  }

  function checkSecret(req: IncomingMessage): Refusal | undefined {
    const given = req.headers[SHELL_KEY_HEADER];
    if (typeof given !== 'string' || given.length === 0 || given.length > 256)
      return authRefusal("the request lacks this launch's secret", 401);
    return timingSafeEqual(sha256(given), secretHash)
      ? undefined
      : authRefusal("the request lacks this launch's secret", 401);
  }

  function readBody(req: IncomingMessage): Promise<{ ok: true; text: string } | { ok: false; r: Refusal }> {
    return new Promise((resolve) => {
      const len = req.headers['content-length'];
      if (len !== undefined && (!/^\d{1,10}$/.test(len) || Number(len) > MAX_BODY_BYTES)) {
        resolve({
          ok: false,
          r: { status: 413, code: 'POS_ERR_DESKTOP_API_INVALID', detail: 'the body is too large' },
        });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      req.on('data', (c: Buffer) => {
        if (done) return;
        size += c.length;
        if (size > MAX_BODY_BYTES) {
          done = true;
          resolve({
            ok: false,
            r: { status: 413, code: 'POS_ERR_DESKTOP_API_INVALID', detail: 'the body is too large' },
          });
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => {
        if (done) return;
        done = true;
        resolve({ ok: true, text: Buffer.concat(chunks).toString('utf8') });
      });
      req.on('error', () => {
        if (done) return;
        done = true;
        resolve({
          ok: false,
          r: { status: 400, code: 'POS_ERR_DESKTOP_API_INVALID', detail: 'the body could not be read' },
        });
      });
    });
  }

  /**
   * The request's JSON body (content type and size checked), or a refusal already sent. `json` is
   * `undefined` and `valid` false when the body is not JSON: the caller decides what that means.
   */
  async function jsonBody(
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<{ ok: true; json: unknown; valid: boolean } | { ok: false }> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') {
      req.resume();
      refuse(
        res,
        { status: 415, code: 'POS_ERR_DESKTOP_API_INVALID', detail: 'the body must be application/json' },
        { connection: 'close' },
      );
      return { ok: false };
    }
    const body = await readBody(req);
    if (!body.ok) {
      refuse(res, body.r, { connection: 'close' });
      req.resume();
      return { ok: false };
    }
    try {
      return { ok: true, json: JSON.parse(body.text) as unknown, valid: true };
    } catch {
      return { ok: true, json: undefined, valid: false };
    }
  }

  /**
   * `POST /api/session {"code"}`: the URL's bootstrap code for this launch's secret, once. The request
   * must carry this origin's `Origin` (a page of this origin; checkOrigin has matched it) and a JSON
   * body; a wrong code, or the right one a second time, is refused (401).
   */
  async function session(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.headers.origin === undefined) {
      req.resume();
      refuse(res, authRefusal('the exchange needs the page origin'));
      return;
    }
    const body = await jsonBody(req, res);
    if (!body.ok) return;
    const exchange = SessionExchangeSchema.safeParse(body.json);
    const right = exchange.success && timingSafeEqual(sha256(exchange.data.code), bootstrapHash);
    if (!right || bootstrapUsed) {
      refuse(res, authRefusal('the bootstrap code is not valid or was used already', 401));
      return;
    }
    bootstrapUsed = true;
    json(res, 200, { key: secretText });
  }

  async function command(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await jsonBody(req, res);
    if (!body.ok) return;
    if (!body.valid) {
      refuse(res, { status: 400, code: 'POS_ERR_DESKTOP_API_INVALID', detail: 'the body is not JSON' });
      return;
    }
    const parsed = parseCommand(body.json);
    if (!parsed.ok) {
      refuse(res, { status: 400, code: parsed.code, detail: parsed.detail });
      return;
    }
    json(res, 200, await core.handle(parsed.command));
  }

  function events(req: IncomingMessage, res: ServerResponse): void {
    if (streams.size >= maxClients) {
      refuse(res, {
        status: 429,
        code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
        detail: 'too many open event streams',
      });
      return;
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    streams.add(res);
    const write = (s: Snapshot): void => {
      res.write(`id: ${s.seq}\nevent: snapshot\ndata: ${JSON.stringify(s)}\n\n`);
    };
    const unsubscribe = core.subscribe(write);
    const beat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs);
    beat.unref();
    const end = (): void => {
      clearInterval(beat);
      unsubscribe();
      streams.delete(res);
    };
    req.on('close', end);
    res.on('close', end);
    res.on('error', end);
  }

  function snapshotNow(res: ServerResponse): void {
    let latest: Snapshot | undefined;
    core.subscribe((s) => (latest ??= s))();
    if (latest === undefined) {
      refuse(res, { status: 409, code: 'POS_ERR_DESKTOP_API_UNAVAILABLE', detail: 'no snapshot yet' });
      return;
    }
    json(res, 200, latest);
  }

  async function staticFile(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const head = req.method === 'HEAD';
    const reply = (status: number, body: string | Uint8Array, type: string): void => {
      if (!head) {
        send(res, status, body, type, { 'cache-control': 'no-cache' });
        return;
      }
      res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'cache-control': 'no-cache' });
      res.end();
    };
    const notFound = (): void => reply(404, 'not found\n', 'text/plain; charset=utf-8');
    if (rendererRoot === undefined) {
      if (path === '/' || path === '/index.html') reply(200, NOT_BUILT_PAGE, TYPES['.html'] ?? '');
      else notFound();
      return;
    }
    let rel: string;
    try {
      rel = decodeURIComponent(path === '/' ? '/index.html' : path);
    } catch {
      notFound();
      return;
    }
    const parts = rel.split('/').slice(1);
    if (
      parts.length === 0 ||
      parts.length > 16 ||
      parts.some((p) => p === '' || p.startsWith('.') || p.includes('\\') || p.includes('\0'))
    ) {
      notFound();
      return;
    }
    const file = join(rendererRoot, ...parts);
    if (!file.startsWith(rendererRoot + sep)) {
      notFound();
      return;
    }
    const type = TYPES[extname(file).toLowerCase()];
    if (type === undefined) {
      notFound();
      return;
    }
    try {
      const st = await lstat(file);
      if (!st.isFile() || st.size > 50 * 1024 * 1024) {
        notFound();
        return;
      }
      // lstat sees only the last component: a symlinked directory on the way would lead out of the
      // root. The real path must still be under the (realpath'd) renderer root (review 2, L3).
      const real = await realpath(file);
      if (!real.startsWith(rendererRoot + sep)) {
        notFound();
        return;
      }
      reply(200, await readFile(real), type);
    } catch {
      notFound();
    }
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const originRefusal = checkOrigin(req);
    if (originRefusal !== undefined) {
      req.resume();
      refuse(res, originRefusal);
      return;
    }
    const rawUrl = req.url ?? '/';
    if (!rawUrl.startsWith('/') || rawUrl.startsWith('//') || rawUrl.length > 2048) {
      req.resume();
      refuse(res, { status: 400, code: 'POS_ERR_DESKTOP_API_INVALID', detail: 'bad request target' });
      return;
    }
    const path = rawUrl.split('?')[0] ?? '/';
    const method = req.method ?? 'GET';
    if (path === '/api/session') {
      if (method !== 'POST') {
        req.resume();
        refuse(
          res,
          { status: 405, code: 'POS_ERR_DESKTOP_API_INVALID', detail: 'use POST' },
          { allow: 'POST' },
        );
        return;
      }
      await session(req, res);
      return;
    }
    if (path === '/api' || path.startsWith('/api/')) {
      const secretRefusal = checkSecret(req);
      if (secretRefusal !== undefined) {
        req.resume();
        refuse(res, secretRefusal);
        return;
      }
      const want = path === '/api/command' ? 'POST' : 'GET';
      if (path !== '/api/command' && path !== '/api/events' && path !== '/api/snapshot') {
        req.resume();
        refuse(res, { status: 404, code: 'POS_ERR_DESKTOP_API_INVALID', detail: 'no such API path' });
        return;
      }
      if (method !== want) {
        req.resume();
        refuse(
          res,
          { status: 405, code: 'POS_ERR_DESKTOP_API_INVALID', detail: `use ${want}` },
          { allow: want },
        );
        return;
      }
      if (path === '/api/command') await command(req, res);
      else if (path === '/api/events') events(req, res);
      else snapshotNow(res);
      return;
    }
    req.resume();
    if (method !== 'GET' && method !== 'HEAD') {
      send(res, 405, 'method not allowed\n', 'text/plain; charset=utf-8', { allow: 'GET, HEAD' });
      return;
    }
    await staticFile(req, res, path);
  }

  const server: Server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => {
    route(req, res).catch(() => {
      // A bug of ours, not the client's input: still answer, and keep serving.
      if (!res.headersSent)
        refuse(res, {
          status: 500,
          code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
          detail: 'the browser shell failed',
        });
      else res.end();
    });
  });
  server.keepAliveTimeout = 5000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const hosts = [`${hostPart}:${port}`];
  if (hostPart === '127.0.0.1' || hostPart === 'localhost')
    hosts.push(`localhost:${port}`, `127.0.0.1:${port}`);
  allowedHosts = new Set(hosts);
  allowedOrigins = new Set(hosts.map((h) => `http://${h}`));
  const origin = `http://${hostPart}:${port}`;

  return {
    url: `${origin}/#c=${bootstrapText}`,
    origin,
    port,
    close: async () => {
      for (const s of streams) s.end();
      streams.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
