/**
 * The simulator's control API on loopback (node:http): what a developer or a test does to the reader
 * from outside the protocol: put a card in, tamper with it, inject faults, read its status.
 *
 *   GET  /status                                   -> the reader's status and the simulator's state
 *   POST /card   {"card":NAME,"action":"insert"|"tap"} or {"action":"remove"}
 *   POST /tamper {"reason"?: text}
 *   POST /fault  a Fault (see transport/faults.ts)
 *
 * Bodies are JSON parsed with a schema; a bad request is 400 with `{"error":{"code","detail"}}`, a
 * request the reader refuses in its state is 409 with the reader's code. Nothing here returns a PIN,
 * a PAN or a key.
 *
 * A web page must not be able to drive the reader (a page can send requests to loopback): every
 * request with an `Origin` header is refused (403 POS_ERR_SIM_CONTROL_ORIGIN: browsers send one on
 * cross-origin and on every POST), so is one whose `Host` is not the exact loopback address:port the
 * API listens on (403 POS_ERR_SIM_CONTROL_HOST: DNS rebinding makes a page's own name point at
 * 127.0.0.1), and a POST whose Content-Type is not application/json (415
 * POS_ERR_SIM_CONTROL_CONTENT_TYPE: the types a page may send without a preflight are all others).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { FaultSchema, type Fault } from '../transport/faults';

export const CardActionSchema = z.union([
  z.strictObject({ card: z.string().min(1).max(64), action: z.enum(['insert', 'tap']) }),
  z.strictObject({ card: z.string().min(1).max(64).optional(), action: z.literal('remove') }),
]);
export type CardAction = z.infer<typeof CardActionSchema>;
export const TamperSchema = z.strictObject({ reason: z.string().max(200).optional() });

const MAX_BODY = 16 * 1024;

export type ControlResult =
  { ok: true; body?: Record<string, unknown> } | { ok: false; code: string; detail: string };

/** What the control API drives: implemented by the simulator. */
export interface ControlTarget {
  status(): Record<string, unknown>;
  card(action: CardAction): ControlResult;
  tamper(reason: string): ControlResult;
  fault(fault: Fault): ControlResult;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

function fail(res: ServerResponse, status: number, code: string, detail: string): void {
  send(res, status, { error: { code, detail } });
}

function readBody(
  req: IncomingMessage,
): Promise<{ ok: true; value: unknown } | { ok: false; detail: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > MAX_BODY) {
        done = true;
        resolve({ ok: false, detail: `the body is over ${MAX_BODY} bytes` });
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') {
        resolve({ ok: true, value: {} });
        return;
      }
      try {
        resolve({ ok: true, value: JSON.parse(text) as unknown });
      } catch {
        resolve({ ok: false, detail: 'the body is not JSON' });
      }
    });
    req.on('error', () => {
      if (!done) resolve({ ok: false, detail: 'the body could not be read' });
      done = true;
    });
  });
}

function answer(res: ServerResponse, r: ControlResult): void {
  if (r.ok) send(res, 200, { ok: true, ...(r.body ?? {}) });
  else fail(res, r.code === 'POS_ERR_SIM_CARD_UNKNOWN' ? 400 : 409, r.code, r.detail);
}

/** The request's media type (lower case, without parameters), or undefined without a Content-Type. */
function mediaType(req: IncomingMessage): string | undefined {
  const ct = req.headers['content-type'];
  return ct === undefined ? undefined : (ct.split(';')[0] ?? '').trim().toLowerCase();
}

/** Refuses requests a web page could make (see the module comment); true when it answered. */
function refusedFromBrowser(req: IncomingMessage, res: ServerResponse, ownHost: string): boolean {
  if (req.headers.origin !== undefined) {
    fail(
      res,
      403,
      'POS_ERR_SIM_CONTROL_ORIGIN',
      'requests from a web page (with an Origin header) are refused',
    );
    return true;
  }
  const host = req.headers.host?.toLowerCase();
  if (host !== ownHost) {
    fail(res, 403, 'POS_ERR_SIM_CONTROL_HOST', `the Host header must be ${ownHost}`);
    return true;
  }
  if ((req.method ?? 'GET') === 'POST' && mediaType(req) !== 'application/json') {
    fail(res, 415, 'POS_ERR_SIM_CONTROL_CONTENT_TYPE', 'a POST body must be Content-Type: application/json');
    return true;
  }
  return false;
}

async function route(
  target: ControlTarget,
  req: IncomingMessage,
  res: ServerResponse,
  ownHost: string,
): Promise<void> {
  if (refusedFromBrowser(req, res, ownHost)) {
    req.resume();
    return;
  }
  const path = (req.url ?? '/').split('?')[0];
  const method = req.method ?? 'GET';
  if (path === '/status') {
    if (method !== 'GET') return fail(res, 405, 'POS_ERR_SIM_CONTROL_NOT_FOUND', 'use GET /status');
    return send(res, 200, target.status());
  }
  const routes: Record<string, z.ZodType> = {
    '/card': CardActionSchema,
    '/tamper': TamperSchema,
    '/fault': FaultSchema,
  };
  const schema = path === undefined ? undefined : routes[path];
  if (schema === undefined) return fail(res, 404, 'POS_ERR_SIM_CONTROL_NOT_FOUND', 'no such endpoint');
  if (method !== 'POST') return fail(res, 405, 'POS_ERR_SIM_CONTROL_NOT_FOUND', `use POST ${path}`);
  const body = await readBody(req);
  if (!body.ok) return fail(res, 400, 'POS_ERR_SIM_CONTROL_BODY', body.detail);
  const parsed = schema.safeParse(body.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') ?? '';
    return fail(
      res,
      400,
      'POS_ERR_SIM_CONTROL_BODY',
      `the body does not fit ${path}${where === '' ? '' : ` (at ${where})`}`,
    );
  }
  if (path === '/card') return answer(res, target.card(parsed.data as CardAction));
  if (path === '/tamper')
    return answer(res, target.tamper((parsed.data as z.infer<typeof TamperSchema>).reason ?? 'control API'));
  return answer(res, target.fault(parsed.data as Fault));
}

export interface ControlServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Listens on `host:port` (port 0: any free port). Only loopback hosts are accepted by the CLI. */
export function startControlServer(
  target: ControlTarget,
  host: string,
  port: number,
): Promise<ControlServer> {
  // The exact `Host` a legitimate client sends (the address and port printed in the ready line).
  let ownHost = '';
  const server: Server = createServer((req, res) => {
    route(target, req, res, ownHost).catch(() =>
      fail(res, 500, 'POS_ERR_SIM_INTERNAL', 'the request failed'),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address() as AddressInfo;
      const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      ownHost = `${shownHost}:${addr.port}`.toLowerCase();
      resolve({
        url: `http://${shownHost}:${addr.port}`,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
