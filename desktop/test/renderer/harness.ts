/**
 * Test harness for the terminal UI in real Chromium (playwright-core): builds the production renderer
 * bundle (desktop/vite.config.ts, into a temporary directory), serves it on loopback and opens it with
 * a fake `window.posTerminal` installed before the page's scripts run, the way the Electron preload
 * exposes the real one. The page therefore runs the shipped code, transport choice included, with no
 * test hook in it. The fake records every command and lets the test push snapshots.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { build } from 'vite';
import { SnapshotSchema, UI_API_VERSION, type CommandResult, type Snapshot } from '../../src/api/contract';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);

const here = dirname(fileURLToPath(import.meta.url));
const desktopDir = resolve(here, '../..');
export const SCREENSHOT_DIR = resolve(desktopDir, '../test-results/renderer');

export interface UiHarness {
  readonly browser: Browser;
  readonly baseUrl: string;
  close(): Promise<void>;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

function serve(root: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const file = normalize(join(root, path === '/' ? 'index.html' : decodeURIComponent(path)));
    if (!file.startsWith(root + sep) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

/** Builds the production renderer, serves it and launches Chromium. */
export async function startUi(): Promise<UiHarness> {
  const outDir = mkdtempSync(join(tmpdir(), 'pos-renderer-'));
  await build({
    configFile: join(desktopDir, 'vite.config.ts'),
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true },
  });
  const server = await serve(outDir);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const { port } = server.address() as AddressInfo;
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  return {
    browser,
    baseUrl: `http://127.0.0.1:${port}/`,
    async close() {
      await browser.close();
      await new Promise<void>((ok) => server.close(() => ok()));
      rmSync(outDir, { recursive: true, force: true });
    },
  };
}

/** What the fake keeps in the page (`globalThis.__fake`). */
export interface FakeState {
  commands: unknown[];
  results: CommandResult[];
  cspViolations: string[];
}

/**
 * Runs in the page before its scripts (serialized by playwright): the fake TerminalApi as the preload
 * would expose it, plus a recorder of CSP violations.
 */
function installFake(version: number): void {
  const g = globalThis as unknown as Record<string, unknown>;
  const subscribers = new Set<(s: unknown) => void>();
  const state = { commands: [] as unknown[], results: [] as unknown[], cspViolations: [] as string[] };
  let current: unknown;
  g['posTerminal'] = Object.freeze({
    version,
    invoke(command: unknown): Promise<unknown> {
      state.commands.push(JSON.parse(JSON.stringify(command)));
      return Promise.resolve(state.results.shift() ?? { ok: true });
    },
    subscribe(cb: (s: unknown) => void): () => void {
      subscribers.add(cb);
      if (current !== undefined) cb(current);
      return () => subscribers.delete(cb);
    },
  });
  g['__fake'] = {
    state,
    push(s: unknown) {
      current = s;
      for (const cb of subscribers) cb(s);
    },
  };
  (
    g['document'] as {
      addEventListener(
        t: string,
        f: (e: {
          violatedDirective: string;
          blockedURI: string;
          sourceFile: string;
          lineNumber: number;
        }) => void,
      ): void;
    }
  ).addEventListener('securitypolicyviolation', (e) =>
    state.cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`),
  );
}

export interface UiPage {
  readonly page: Page;
  readonly errors: string[];
  /** Pushes a snapshot (validated against the contract first; `seq` is filled in, increasing). */
  push(s: Snapshot): Promise<void>;
  /** Pushes anything, unvalidated (to see the UI drop it). */
  pushRaw(s: unknown): Promise<void>;
  commands(): Promise<unknown[]>;
  /** Waits until at least `n` commands were sent; returns them all. */
  waitForCommands(n: number): Promise<unknown[]>;
  /** The results the next commands answer (otherwise `{ ok: true }`). */
  queueResults(...results: CommandResult[]): Promise<void>;
  cspViolations(): Promise<string[]>;
  /** True when the page scrolls sideways. */
  scrollsSideways(): Promise<boolean>;
  screenshot(name: string): Promise<void>;
  /** True when the element has keyboard focus. */
  hasFocus(locator: Locator): Promise<boolean>;
  close(): Promise<void>;
}

let seq = 0;

export async function openUi(
  h: UiHarness,
  opts: { apiVersion?: number; preload?: boolean } = {},
): Promise<UiPage> {
  const context = await h.browser.newContext({ viewport: { width: 1024, height: 768 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  if (opts.preload !== false) await page.addInitScript(installFake, opts.apiVersion ?? UI_API_VERSION);
  await page.goto(h.baseUrl);
  const fake = 'globalThis.__fake';
  const ui: UiPage = {
    page,
    errors,
    async push(s) {
      const snapshot = SnapshotSchema.parse({ ...s, seq: ++seq });
      await page.evaluate(`${fake}.push(${JSON.stringify(snapshot)})`);
    },
    async pushRaw(s) {
      await page.evaluate(`${fake}.push(${JSON.stringify(s)})`);
    },
    async commands() {
      return page.evaluate<unknown[]>(`${fake}.state.commands`);
    },
    async waitForCommands(n) {
      await page.waitForFunction(`${fake}.state.commands.length >= ${n}`);
      return ui.commands();
    },
    async queueResults(...results) {
      await page.evaluate(`${fake}.state.results.push(...${JSON.stringify(results)})`);
    },
    async cspViolations() {
      return page.evaluate<string[]>(`${fake}.state.cspViolations`);
    },
    async scrollsSideways() {
      return page.evaluate<boolean>(
        'document.documentElement.scrollWidth > document.documentElement.clientWidth',
      );
    },
    async hasFocus(locator) {
      // Typed structurally: this file has no DOM types.
      return locator.evaluate(
        (el: { ownerDocument: { activeElement: unknown } }) => el === el.ownerDocument.activeElement,
      );
    },
    async screenshot(name) {
      await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`) });
    },
    async close() {
      await context.close();
    },
  };
  return ui;
}

/** A snapshot of an enrolled, healthy, idle terminal; `over` replaces top-level parts. */
export function snap(over: Partial<Snapshot> = {}): Snapshot {
  return {
    v: UI_API_VERSION,
    shell: 'electron',
    seq: 0,
    enrolled: true,
    terminalId: 'term-0001',
    reader: { state: 'connected', serial: 'SIM-0001' },
    backend: { link: 'up', push: true, url: 'http://127.0.0.1:8443' },
    attestation: { tier: 'affirming', at: Date.now() - 12_000, reasons: [] },
    sale: { state: 'idle' },
    ...over,
  };
}
