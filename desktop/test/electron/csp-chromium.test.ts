/**
 * The shipped renderer under the Electron shell's own CSP and headers, in Debian's Chromium: the
 * production bundle (vite, into a temporary directory) is served by the app:// handler's `serveApp`
 * (on loopback: Chromium cannot open app:// without Electron, and `'self'` means the same there),
 * with a fake `window.posTerminal` as the preload would expose it. The PIN pad renders with no CSP
 * violation and no page error, and the page cannot reach the network. Skipped with the reason printed
 * where /usr/bin/chromium is missing.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleElectron } from '../../scripts/build-electron';
import { IPC } from '../../src/main/channels';
import { serveApp, type AppFiles } from '../../src/main/app-protocol';
import { CONTENT_SECURITY_POLICY } from '../../src/main/security';
import { CHROMIUM, hasChromium, openUi, snap, type UiHarness } from '../renderer/harness';

if (!hasChromium) console.log(`electron CSP test skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

const desktopDir = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

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

describe.skipIf(!hasChromium)('the renderer under the Electron CSP (Chromium)', () => {
  let outDir: string;
  let server: Server;
  let browser: Browser;
  let h: UiHarness;

  beforeAll(async () => {
    outDir = mkdtempSync(join(tmpdir(), 'pos-electron-csp-'));
    await build({
      configFile: join(desktopDir, 'vite.config.ts'),
      logLevel: 'warn',
      build: { outDir, emptyOutDir: true },
    });
    server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      void serveApp({ url: `app://terminal${path}`, method: req.method ?? 'GET' }, outDir, files).then(
        (r) => {
          res.writeHead(r.status, r.headers);
          res.end(r.body ?? undefined);
        },
      );
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    const { port } = server.address() as AddressInfo;
    h = { browser, baseUrl: `http://127.0.0.1:${port}/`, close: () => Promise.resolve() };
  }, 180_000);

  /** The bundled preload, run as Electron runs it: CommonJS with `require('electron')` only. */
  function preloadScript(bundle: string): string {
    return `(() => {
      const listeners = {};
      const sent = [];
      globalThis.__ipc = { sent, snapshot: null, emit(ch, v) { for (const l of listeners[ch] || []) l({}, v); } };
      const ipcRenderer = {
        invoke(ch, ...args) {
          sent.push([ch, ...args]);
          return Promise.resolve(ch === ${JSON.stringify(IPC.snapshot)} ? globalThis.__ipc.snapshot : { ok: true });
        },
        on(ch, l) { (listeners[ch] = listeners[ch] || []).push(l); },
      };
      const electron = {
        contextBridge: { exposeInMainWorld(k, v) { Object.defineProperty(globalThis, k, { value: Object.freeze(v) }); } },
        ipcRenderer,
      };
      const module = { exports: {} };
      const require = (m) => { if (m === 'electron') return electron; throw new Error('the preload required ' + m); };
      (function (require, module, exports) {\n${bundle}\n})(require, module, module.exports);
    })();`;
  }

  it('the bundled preload drives the real UI: snapshots in, pad positions out, a bad command never sent', async () => {
    const bundleDir = mkdtempSync(join(tmpdir(), 'pos-electron-preload-'));
    try {
      const dir = await bundleElectron(desktopDir, bundleDir);
      const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.addInitScript({ content: preloadScript(readFileSync(join(dir, 'preload.cjs'), 'utf8')) });
      await page.goto(h.baseUrl);
      const layout = [3, 1, 4, 0, 5, 9, 2, 6, 8, 7];
      const pad = snap({
        seq: 7,
        sale: {
          state: 'pin',
          amountMinor: 500,
          currency: 'EUR',
          pad: { layout, digits: 0, deadline: Date.now() + 30_000 },
        },
      });
      await page.evaluate(
        `globalThis.__ipc.emit(${JSON.stringify(IPC.snapshotEvent)}, ${JSON.stringify(pad)})`,
      );
      await page.getByRole('button', { name: '9', exact: true }).click();
      const sent = await page.evaluate<unknown[][]>('globalThis.__ipc.sent');
      expect(sent).toContainEqual([IPC.invoke, { cmd: 'pin.key', position: layout.indexOf(9) }]);
      expect(JSON.stringify(sent)).not.toMatch(/"digit"/);
      const refused = await page.evaluate(
        "globalThis.posTerminal.invoke({ cmd: 'pin.key', digit: 9 }).then((r) => [r, globalThis.__ipc.sent.length])",
      );
      expect(refused).toEqual([
        expect.objectContaining({ ok: false, code: 'POS_ERR_DESKTOP_API_INVALID' }),
        sent.length,
      ]);
      expect(errors).toEqual([]);
      await context.close();
    } finally {
      rmSync(bundleDir, { recursive: true, force: true });
    }
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((ok) => (server === undefined ? ok() : server.close(() => ok())));
    if (outDir !== undefined) rmSync(outDir, { recursive: true, force: true });
  });

  it('the page is served with the CSP and renders the PIN pad with no violation and no error', async () => {
    const ui = await openUi(h);
    try {
      const index = await fetch(h.baseUrl);
      expect(index.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
      await ui.push(
        snap({
          sale: {
            state: 'pin',
            amountMinor: 1234,
            currency: 'EUR',
            maskedPan: '411111******1111',
            pad: { layout: [3, 1, 4, 0, 5, 9, 2, 6, 8, 7], digits: 0, deadline: Date.now() + 30_000 },
          },
        }),
      );
      for (const d of ['0', '5', '9']) await ui.page.getByRole('button', { name: d, exact: true }).waitFor();
      expect(await ui.cspViolations()).toEqual([]);
      expect(ui.errors).toEqual([]);
    } finally {
      await ui.close();
    }
  });

  it('the page cannot reach the network (connect-src none)', async () => {
    const ui = await openUi(h);
    try {
      const blocked = await ui.page.evaluate(async () => {
        const out: string[] = [];
        try {
          await fetch('http://127.0.0.1:9/');
          out.push('fetch allowed');
        } catch {
          out.push('fetch blocked');
        }
        return out;
      });
      expect(blocked).toEqual(['fetch blocked']);
      const v = await ui.cspViolations();
      expect(v.some((s) => s.startsWith('connect-src'))).toBe(true);
    } finally {
      await ui.close();
    }
  });
});
