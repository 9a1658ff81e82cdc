/**
 * The browser shell's server over real HTTP on loopback: the secret, Host / Origin / Sec-Fetch-Site,
 * schema refusals, static files, server-sent events, and no 5xx for anything a client sends (fuzzed).
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnapshotSchema, type Snapshot } from '../../src/api/contract';
import { CSP, NOT_BUILT_PAGE, startBrowserShell, type BrowserShell } from '../../src/browser-shell/server';
import { tempDir, until } from '../support';
import { codeOf, exchange, FakeCore, keyFromUrl, raw, snapshotEventSplitter } from './helpers';

const INDEX = '<!doctype html><title>UI</title><script type="module" src="/assets/app.js"></script>';

let shell: BrowserShell;
let core: FakeCore;
let key: string;
let code: string;
let tmp: { dir: string; cleanup: () => void };

beforeAll(async () => {
  tmp = tempDir('pos-shell-test-');
  const renderer = join(tmp.dir, 'renderer');
  mkdirSync(join(renderer, 'assets'), { recursive: true });
  writeFileSync(join(renderer, 'index.html'), INDEX);
  writeFileSync(join(renderer, 'assets', 'app.js'), 'console.log("ui");\n');
  writeFileSync(join(renderer, '.env'), 'SECRET=1\n');
  writeFileSync(join(tmp.dir, 'outside.txt'), 'outside\n');
  symlinkSync(join(tmp.dir, 'outside.txt'), join(renderer, 'assets', 'link.txt'));
  // A symlinked directory (review 2, L3): lstat of the last component alone would follow it.
  mkdirSync(join(tmp.dir, 'outdir'));
  writeFileSync(join(tmp.dir, 'outdir', 'a.txt'), 'outside dir\n');
  symlinkSync(join(tmp.dir, 'outdir'), join(renderer, 'linkdir'));
  core = new FakeCore();
  shell = await startBrowserShell({ core, rendererDir: renderer });
  code = codeOf(shell.url);
  key = await keyFromUrl(shell.port, shell.url);
});

afterAll(async () => {
  await shell.close();
  tmp.cleanup();
});

const api = (headers: Record<string, string> = {}) => ({ 'x-pos-shell-key': key, ...headers });
const post = (body: string, headers: Record<string, string> = {}) =>
  raw(shell.port, {
    method: 'POST',
    path: '/api/command',
    headers: api({ 'content-type': 'application/json', ...headers }),
    body,
  });

describe('browser shell server', () => {
  it('prints a loopback URL with a single-use 32-byte bootstrap code in the fragment, not the secret', () => {
    const u = new URL(shell.url);
    expect(u.hostname).toBe('127.0.0.1');
    expect(u.pathname).toBe('/');
    expect(u.hash).toMatch(/^#c=[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(code, 'base64url')).toHaveLength(32);
    expect(Buffer.from(key, 'base64url')).toHaveLength(32);
    expect(shell.url).not.toContain(key);
    expect(shell.origin).toBe(`http://127.0.0.1:${shell.port}`);
  });

  it('exchanges the bootstrap code once (review 2, L2): a second exchange and the code as a key are refused', async () => {
    // beforeAll spent the code: the URL left in a browser history opens nothing now
    const again = await exchange(shell.port, code);
    expect(again.status).toBe(401);
    expect(JSON.parse(again.body)).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_SHELL_AUTH' });
    expect(again.body).not.toContain(key);
    const asKey = await raw(shell.port, { path: '/api/snapshot', headers: { 'x-pos-shell-key': code } });
    expect(asKey.status).toBe(401);
    // a fresh shell: wrong code, no Origin, another Origin, GET, not JSON: refused and the right code
    // still works once afterwards (a wrong guess does not spend it); then never again
    const s = await startBrowserShell({ core: new FakeCore() });
    try {
      const c = codeOf(s.url);
      expect((await exchange(s.port, `${c.slice(0, -1)}${c.endsWith('A') ? 'B' : 'A'}`)).status).toBe(401);
      const noOrigin = await raw(s.port, {
        method: 'POST',
        path: '/api/session',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code: c }),
      });
      expect(noOrigin.status).toBe(403);
      expect((await exchange(s.port, c, { origin: 'http://127.0.0.1:1' })).status).toBe(403);
      expect((await exchange(s.port, c, { host: 'evil.example:80' })).status).toBe(403);
      expect((await raw(s.port, { path: '/api/session' })).status).toBe(405);
      expect((await exchange(s.port, c, { 'content-type': 'text/plain' })).status).toBe(415);
      const first = await exchange(s.port, c);
      expect(first.status).toBe(200);
      const k = (JSON.parse(first.body) as { key: string }).key;
      expect(first.headers['cache-control']).toBe('no-store');
      expect((await raw(s.port, { path: '/api/snapshot', headers: { 'x-pos-shell-key': k } })).status).toBe(
        200,
      );
      expect((await exchange(s.port, c)).status).toBe(401);
    } finally {
      await s.close();
    }
  });

  it('serves the renderer with a strict CSP and security headers', async () => {
    const r = await raw(shell.port, { path: '/' });
    expect(r.status).toBe(200);
    expect(r.body).toBe(INDEX);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.headers['content-security-policy']).toBe(CSP);
    expect(CSP).toContain("script-src 'self'");
    expect(CSP).toContain("frame-ancestors 'none'");
    expect(CSP).not.toContain('unsafe');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    const js = await raw(shell.port, { path: '/assets/app.js' });
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
  });

  it('serves nothing outside the renderer directory, no dotfiles, no symlinks', async () => {
    for (const path of [
      '/../outside.txt',
      '/assets/../../outside.txt',
      '/%2e%2e/outside.txt',
      '/assets/%2e%2e%2f%2e%2e%2foutside.txt',
      '/.env',
      '/assets/link.txt',
      '/linkdir/a.txt',
      '/assets/app.js%00.html',
      '/%E0%A4%A',
      '/nothing.js',
    ]) {
      const r = await raw(shell.port, { path });
      expect(r.status, path).toBe(404);
      expect(r.body).not.toContain('outside');
      expect(r.body).not.toContain('SECRET');
    }
  });

  it("refuses the API without this launch's secret, or with another", async () => {
    for (const headers of [
      {},
      { 'x-pos-shell-key': '' },
      { 'x-pos-shell-key': `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}` },
    ]) {
      const r = await raw(shell.port, { path: '/api/snapshot', headers });
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body)).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_SHELL_AUTH' });
      expect(r.body).not.toContain(key);
    }
    const ok = await raw(shell.port, { path: '/api/snapshot', headers: api() });
    expect(ok.status).toBe(200);
    expect(SnapshotSchema.safeParse(JSON.parse(ok.body)).success).toBe(true);
    expect(ok.headers['cache-control']).toBe('no-store');
  });

  it('refuses another Host (DNS rebinding), another Origin, a cross-site fetch', async () => {
    for (const headers of [
      api({ host: 'evil.example' }),
      api({ host: `evil.example:${shell.port}` }),
      api({ host: `127.0.0.1:${shell.port + 1}` }),
      api({ origin: 'http://evil.example' }),
      api({ origin: `http://127.0.0.1:${shell.port + 1}` }),
      api({ origin: 'null' }),
      api({ 'sec-fetch-site': 'cross-site' }),
      api({ 'sec-fetch-site': 'same-site' }),
    ]) {
      const r = await raw(shell.port, { path: '/api/snapshot', headers });
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(JSON.parse(r.body)).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_SHELL_AUTH' });
    }
    // Static files too: a rebinding page gets no UI either.
    expect((await raw(shell.port, { path: '/', headers: { host: 'evil.example' } })).status).toBe(403);
    // The same origin passes, under either loopback name.
    for (const headers of [
      api({ origin: shell.origin, 'sec-fetch-site': 'same-origin' }),
      api({ host: `localhost:${shell.port}`, origin: `http://localhost:${shell.port}` }),
    ])
      expect((await raw(shell.port, { path: '/api/snapshot', headers })).status).toBe(200);
  });

  it('runs a command and answers its result', async () => {
    const r = await post(JSON.stringify({ cmd: 'sale.start', amountMinor: 1234, currency: 'EUR' }));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ ok: true });
    expect(core.commands.at(-1)).toEqual({ cmd: 'sale.start', amountMinor: 1234, currency: 'EUR' });
    const refused = await post(JSON.stringify({ cmd: 'sale.cancel' }));
    expect(refused.status).toBe(200);
    expect(JSON.parse(refused.body)).toEqual({
      ok: false,
      code: 'POS_ERR_DESKTOP_TXN_STATE',
      detail: 'no sale to cancel',
    });
  });

  it('refuses what is not a command, with the contract’s code', async () => {
    const n = core.commands.length;
    const cases: [string, Record<string, string>, number][] = [
      ['not json', {}, 400],
      ['{"cmd":"pin.key","position":10}', {}, 400],
      ['{"cmd":"pin.key","position":1,"digit":3}', {}, 400],
      ['{"cmd":"sale.start","amountMinor":1,"currency":"EUR"}', { 'content-type': 'text/plain' }, 415],
      ['{"cmd":"pin.ok"}', { 'content-type': 'application/x-www-form-urlencoded' }, 415],
      [JSON.stringify({ cmd: 'pin.ok', pad: 'x'.repeat(5000) }), {}, 413],
    ];
    for (const [body, headers, status] of cases) {
      const r = await post(body, headers);
      expect(r.status, body.slice(0, 40)).toBe(status);
      expect(JSON.parse(r.body)).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_API_INVALID' });
    }
    expect(core.commands.length).toBe(n);
    expect((await raw(shell.port, { path: '/api/command', headers: api() })).status).toBe(405);
    expect((await raw(shell.port, { path: '/api/nope', headers: api() })).status).toBe(404);
    expect((await raw(shell.port, { method: 'DELETE', path: '/' })).status).toBe(405);
  });

  it('delivers snapshots as server-sent events', async () => {
    const got: Snapshot[] = [];
    const req = request({
      host: '127.0.0.1',
      port: shell.port,
      path: '/api/events',
      headers: api({ accept: 'text/event-stream' }),
    });
    let contentType = '';
    req.on('response', (res) => {
      contentType = res.headers['content-type'] ?? '';
      const events = snapshotEventSplitter();
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        for (const data of events.push(c)) got.push(JSON.parse(data) as Snapshot);
      });
    });
    req.end();
    await until(() => got.length >= 1, 'the first snapshot');
    expect(contentType).toMatch(/^text\/event-stream/);
    core.emit({ halt: { reason: 'Halted by the provider' } });
    await until(() => got.some((s) => s.halt !== undefined), 'the halt snapshot');
    for (const s of got) expect(SnapshotSchema.safeParse(s).success).toBe(true);
    expect(got.at(-1)?.halt?.reason).toBe('Halted by the provider');
    const subs = core.subs.size;
    req.destroy();
    await until(() => core.subs.size === subs - 1, 'the stream to unsubscribe');
  });

  it('never answers a 5xx to anything a client sends (fuzz)', async () => {
    const n = core.commands.length;
    const body = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.anything({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'undefined'),
      fc.record({ cmd: fc.string({ maxLength: 12 }), position: fc.anything() }).map((v) => JSON.stringify(v)),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
    );
    await fc.assert(
      fc.asyncProperty(
        body,
        fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', ''),
        fc.constantFrom(
          '/api/command',
          '/api/events',
          '/api/snapshot',
          '/api/x',
          '/',
          '/assets/app.js',
          '/%zz',
        ),
        fc.constantFrom('POST', 'GET', 'PUT', 'HEAD'),
        fc.boolean(),
        async (b, type, path, method, withKey) => {
          if (path === '/api/events' && method === 'GET' && withKey) return; // a stream: tested above
          const r = await raw(shell.port, {
            method,
            path,
            headers: {
              ...(withKey ? { 'x-pos-shell-key': key } : {}),
              ...(type ? { 'content-type': type } : {}),
            },
            body: b,
          });
          expect(r.status).toBeGreaterThanOrEqual(200);
          expect(r.status).toBeLessThan(500);
          if (path.startsWith('/api/') && method !== 'HEAD') {
            const parsed = JSON.parse(r.body) as { ok?: boolean; code?: string };
            if (r.status !== 200) expect(parsed.code).toMatch(/^POS_ERR_DESKTOP_/);
          }
        },
      ),
      { numRuns: 250 },
    );
    // Only well-formed commands reached the core.
    for (const c of core.commands.slice(n)) expect(typeof (c as { cmd: unknown }).cmd).toBe('string');
  });

  it('serves a page saying how to build the UI when the renderer is not built', async () => {
    const t = tempDir('pos-shell-empty-');
    const s = await startBrowserShell({ core: new FakeCore(), rendererDir: join(t.dir, 'missing') });
    try {
      const r = await raw(s.port, { path: '/' });
      expect(r.status).toBe(200);
      expect(r.body).toBe(NOT_BUILT_PAGE);
      expect(r.body).toContain('npm run build -w desktop');
      expect(r.headers['content-security-policy']).toBe(CSP);
      expect((await raw(s.port, { path: '/assets/app.js' })).status).toBe(404);
    } finally {
      await s.close();
      t.cleanup();
    }
  });

  it('listens on loopback only', async () => {
    await expect(startBrowserShell({ core: new FakeCore(), host: '0.0.0.0' })).rejects.toThrow(/loopback/);
    await expect(startBrowserShell({ core: new FakeCore(), host: '192.168.1.5' })).rejects.toThrow(
      /loopback/,
    );
  });
});
