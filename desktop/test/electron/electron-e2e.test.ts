/**
 * The real Electron app, end to end, where an Electron binary is installed (node_modules/electron's
 * download ran) and the renderer is built: launched with Playwright's Electron driver, it checks what
 * the mocked tests cannot — the page gets exactly `window.posTerminal`, no Node, no navigation, the
 * CSP in force. Skipped with the reason printed where there is no binary (as on this repository's
 * build machines).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { _electron, type ElectronApplication, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildElectron, DESKTOP_DIR } from '../../scripts/build-electron';
import { findElectronBinary } from '../../scripts/electron-binary';

const binary = findElectronBinary();
const rendererBuilt = existsSync(join(DESKTOP_DIR, 'dist', 'renderer', 'index.html'));
const skipWhy = !binary.found
  ? `no Electron binary: ${binary.why}`
  : !rendererBuilt
    ? 'the renderer is not built (npm run build -w desktop)'
    : undefined;
if (skipWhy !== undefined) console.log(`electron end-to-end skipped: ${skipWhy}`);

describe.skipIf(skipWhy !== undefined)('Electron app end to end', () => {
  let app: ElectronApplication;
  let page: Page;
  let userData: string;

  beforeAll(async () => {
    if (!binary.found) return;
    const { appDir } = await buildElectron();
    userData = mkdtempSync(join(tmpdir(), 'pos-electron-e2e-'));
    app = await _electron.launch({
      executablePath: binary.executable,
      // The staged app directory (its package.json names the main bundle), run unpackaged.
      args: [appDir, `--user-data-dir=${userData}`],
      timeout: 60_000,
    });
    page = await app.firstWindow();
    await page.waitForLoadState('domcontentloaded');
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    if (userData !== undefined) rmSync(userData, { recursive: true, force: true });
  });

  it('the UI comes from app://terminal and sees exactly the API, no Node', async () => {
    expect(page.url()).toBe('app://terminal/index.html');
    const seen = await page.evaluate(() => {
      const g = globalThis as unknown as Record<string, unknown>;
      const api = g['posTerminal'] as Record<string, unknown> | undefined;
      return {
        keys: api === undefined ? [] : Object.keys(api).sort(),
        require: typeof g['require'],
        process: typeof g['process'],
        ipc: typeof g['ipcRenderer'],
      };
    });
    expect(seen).toEqual({
      keys: ['invoke', 'subscribe', 'version'],
      require: 'undefined',
      process: 'undefined',
      ipc: 'undefined',
    });
  });

  it('a bad command is refused before IPC; navigation away does not happen', async () => {
    const r = await page.evaluate(() =>
      (globalThis as unknown as { posTerminal: { invoke(c: unknown): Promise<unknown> } }).posTerminal.invoke(
        {
          cmd: 'pin.key',
          digit: 1,
        },
      ),
    );
    expect(r).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_API_INVALID' });
    await page.evaluate(() => {
      (globalThis as unknown as { location: { href: string } }).location.href = 'https://example.com/';
    });
    await new Promise((res) => setTimeout(res, 500));
    expect(page.url()).toBe('app://terminal/index.html');
  });

  it('the window is content-protected (macOS, Windows)', async () => {
    const protectedNow = await app.evaluate(({ BrowserWindow }) =>
      BrowserWindow.getAllWindows()[0]?.isContentProtected(),
    );
    if (process.platform !== 'linux') expect(protectedNow).toBe(true);
    else expect(typeof protectedNow).toBe('boolean');
  });
});
