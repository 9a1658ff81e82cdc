import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAppPath, serveApp, type AppFiles } from '../../src/main/app-protocol';
import { CONTENT_SECURITY_POLICY } from '../../src/main/security';

const files: AppFiles = {
  async readFile(path) {
    try {
      return (await stat(path)).isFile() ? new Uint8Array(await readFile(path)) : undefined;
    } catch {
      return undefined;
    }
  },
  async realpath(path) {
    try {
      return await realpath(path);
    } catch {
      return undefined;
    }
  },
};

let root: string;
let renderer: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'pos-app-protocol-'));
  renderer = join(root, 'renderer');
  mkdirSync(join(renderer, 'assets'), { recursive: true });
  writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(renderer, 'assets', 'index-abc.js'), 'console.log(1)');
  writeFileSync(join(renderer, 'assets', 'index-abc.css'), 'body{}');
  writeFileSync(join(renderer, 'assets', 'data.bin'), 'x');
  writeFileSync(join(renderer, '.env'), 'SECRET=1');
  writeFileSync(join(root, 'secret.js'), 'outside');
  symlinkSync(join(root, 'secret.js'), join(renderer, 'assets', 'link.js'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('resolveAppPath', () => {
  it('maps app://terminal paths under the renderer directory with their type', () => {
    const r = resolveAppPath('app://terminal/assets/index-abc.js', '/r');
    expect(r).toEqual({ ok: true, path: '/r/assets/index-abc.js', mime: 'text/javascript; charset=utf-8' });
    expect(resolveAppPath('app://terminal/', '/r')).toMatchObject({ ok: true, path: '/r/index.html' });
    expect(resolveAppPath('app://terminal', '/r')).toMatchObject({ ok: true, path: '/r/index.html' });
    expect(resolveAppPath('app://terminal/index.html?x=1#y', '/r')).toMatchObject({ ok: true });
  });
  it.each([
    ['app://terminal/assets/%2e%2e%2f..%2fsecret.js', 403],
    ['app://terminal/..%2fsecret.js', 403],
    ['app://terminal/..%5csecret.js', 403],
    ['app://terminal/assets%5c..%5c..%5csecret.js', 403],
    ['app://terminal/index.html%00.js', 403],
    ['app://terminal/.env', 403],
    ['app://terminal/assets//index-abc.js', 403],
    ['app://terminal/assets/', 404],
    ['app://terminal/assets/data.bin', 404],
    ['app://terminal/%E0%A4%A', 400],
    ['app://other/index.html', 400],
    ['app://terminal:8080/index.html', 400],
    ['app://u:p@terminal/index.html', 400],
    ['file:///etc/passwd', 400],
    ['https://terminal/index.html', 400],
  ])('refuses %s (%i)', (url, status) => {
    const r = resolveAppPath(url, '/r');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.status).toBe(status);
  });
  it.each([
    'app://terminal/../secret.js',
    'app://terminal/%2e%2e/secret.js',
    'app://terminal/a/%2E./../../secret.js',
  ])('dot segments are removed by the URL parser before the path is read: %s stays inside', (url) => {
    expect(resolveAppPath(url, '/r')).toMatchObject({ ok: true, path: '/r/secret.js' });
  });
  it('never leaves the directory, whatever the path (sampled)', () => {
    const parts = ['..', '.', '%2e', '%2E%2e', 'a', 'index.html', '', '%2f', '\\', 'x.js', '..%2f', '%252e'];
    for (let i = 0; i < 2000; i++) {
      const n = 1 + (i % 5);
      const segs = Array.from(
        { length: n },
        (_, j) => parts[(i * 7 + j * 13 + ((i >> j) & 3)) % parts.length],
      );
      const r = resolveAppPath(`app://terminal/${segs.join('/')}`, '/r/renderer');
      if (r.ok) expect(r.path.startsWith('/r/renderer/')).toBe(true);
    }
  });
});

describe('serveApp', () => {
  it('serves a file with its type and the security headers', async () => {
    const r = await serveApp({ url: 'app://terminal/assets/index-abc.css', method: 'GET' }, renderer, files);
    expect(r.status).toBe(200);
    expect(r.headers['Content-Type']).toBe('text/css; charset=utf-8');
    expect(r.headers['Content-Security-Policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(r.headers['X-Content-Type-Options']).toBe('nosniff');
    expect(new TextDecoder().decode(r.body ?? new Uint8Array())).toBe('body{}');
    const index = await serveApp({ url: 'app://terminal/', method: 'GET' }, renderer, files);
    expect(index.headers['Content-Type']).toBe('text/html; charset=utf-8');
  });
  it('HEAD has no body; other methods are refused', async () => {
    const h = await serveApp({ url: 'app://terminal/index.html', method: 'HEAD' }, renderer, files);
    expect(h.status).toBe(200);
    expect(h.body).toBeNull();
    const p = await serveApp({ url: 'app://terminal/index.html', method: 'POST' }, renderer, files);
    expect(p.status).toBe(405);
    expect(p.headers['Content-Security-Policy']).toBe(CONTENT_SECURITY_POLICY);
  });
  it('refuses a symlink that leads out of the directory, a missing file and a traversal', async () => {
    expect(
      (await serveApp({ url: 'app://terminal/assets/link.js', method: 'GET' }, renderer, files)).status,
    ).toBe(403);
    expect((await serveApp({ url: 'app://terminal/nope.js', method: 'GET' }, renderer, files)).status).toBe(
      404,
    );
    const t = await serveApp({ url: 'app://terminal/%2e%2e/secret.js', method: 'GET' }, renderer, files);
    expect(t.status).toBe(404);
    expect(new TextDecoder().decode(t.body ?? new Uint8Array())).not.toContain('outside');
  });
});
