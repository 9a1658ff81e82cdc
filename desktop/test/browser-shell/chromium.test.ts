/**
 * The renderer's browser transport (src/renderer/transport/browser.ts) in real Chromium, through the
 * browser shell's server, against the UI core over the engine's port fakes: the secret moves from the
 * fragment to sessionStorage, commands go through, snapshots stream, a PIN is entered by positions and
 * reaches the reader as the right digits; a tab without the secret and a page of another origin get
 * nothing from the core. Skipped, with the reason printed, when /usr/bin/chromium is missing.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Command, CommandResult, Snapshot } from '../../src/api/contract';
import { createCoreWith } from '../../src/app/core';
import { startBrowserShell, type BrowserShell } from '../../src/browser-shell/server';
import { TransactionEngine } from '../../src/core/transaction/engine';
import { tempDir } from '../support';
import { Rig, settle } from '../txn-fakes';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM)
  console.log(`browser-shell Chromium tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`);

const here = dirname(fileURLToPath(import.meta.url));
const TRANSPORT = resolve(here, '../../src/renderer/transport/browser.ts');

interface PageState {
  snaps: Snapshot[];
}

describe.skipIf(!HAVE_CHROMIUM)('browser transport in Chromium', () => {
  let tmp: { dir: string; cleanup: () => void };
  let browser: Browser;
  let shell: BrowserShell;
  let other: Server;
  let otherOrigin: string;
  /** The secret the first page got for the URL's bootstrap code. */
  let pageKey = '';
  const rig = new Rig();
  let engine: TransactionEngine | undefined;
  let core: Awaited<ReturnType<typeof createCoreWith>>;

  beforeAll(async () => {
    tmp = tempDir('pos-shell-chromium-');
    const renderer = join(tmp.dir, 'renderer');
    mkdirSync(join(renderer, 'assets'), { recursive: true });
    // The test page: the real transport, exposed on window for the test to drive.
    const entry = join(tmp.dir, 'entry.ts');
    writeFileSync(
      entry,
      [
        `import { createBrowserApi } from ${JSON.stringify(TRANSPORT)};`,
        'const w = window as any;',
        'w.snaps = [];',
        'w.api = createBrowserApi({ reconnectMs: { initial: 100, max: 500 } });',
        'w.unsubscribe = w.api.subscribe((s: unknown) => w.snaps.push(s));',
      ].join('\n'),
    );
    await build({
      entryPoints: [entry],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      outfile: join(renderer, 'assets', 'test.js'),
      logLevel: 'warning',
    });
    writeFileSync(
      join(renderer, 'index.html'),
      '<!doctype html><html><head><meta charset="utf-8"><title>shell test</title>' +
        '<script type="module" src="/assets/test.js"></script></head><body>test</body></html>',
    );
    core = await createCoreWith(
      {
        start: () => {
          engine = new TransactionEngine({
            reader: rig.reader,
            backend: rig.backend,
            push: rig.push,
            clock: rig.clock,
          });
          return Promise.resolve({
            ok: true,
            running: {
              terminalId: 'term_chromium',
              backendUrl: 'http://127.0.0.1:9',
              engine,
              currentHalt: () => rig.push.current(),
              attestNow: () => Promise.resolve({ ok: true }),
              close: () => Promise.resolve(),
            },
          });
        },
        enroll: () => Promise.resolve({ ok: true }),
      },
      { shellKind: 'browser', clock: rig.clock },
    );
    shell = await startBrowserShell({ core, rendererDir: renderer });
    // Another origin on loopback (another port): a page there must not reach the core.
    other = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>other</title><p>other</p>');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
    otherOrigin = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await shell?.close();
    await core?.close();
    await new Promise<void>((r) => (other === undefined ? r() : other.close(() => r())));
    tmp?.cleanup();
  });

  const invoke = (page: Page, c: Command): Promise<CommandResult> =>
    page.evaluate(
      (cmd) =>
        (globalThis as unknown as { api: { invoke: (c: unknown) => Promise<CommandResult> } }).api.invoke(
          cmd,
        ),
      c,
    );
  const snaps = (page: Page): Promise<Snapshot[]> =>
    page.evaluate(() => (globalThis as unknown as PageState).snaps);
  const waitSnap = async (page: Page, what: string, pred: (s: Snapshot) => boolean): Promise<Snapshot> => {
    for (let i = 0; i < 500; i++) {
      const s = (await snaps(page)).at(-1);
      if (s !== undefined && pred(s)) return s;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`gave up waiting for: ${what}`);
  };

  it("exchanges the fragment's single-use code for the secret, streams snapshots, and enters a PIN by positions", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // (Console errors are not collected: Chromium logs every 4xx answer, and the test provokes some.)
    await page.goto(shell.url);
    const first = await waitSnap(page, 'the first snapshot', () => true);
    expect(first).toMatchObject({ v: 1, shell: 'browser', enrolled: true, terminalId: 'term_chromium' });
    // The fragment is gone from the address bar; the key is in this tab's sessionStorage.
    expect(page.url()).toBe(`${shell.origin}/`);
    const stored = await page.evaluate(() =>
      (
        globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }
      ).sessionStorage.getItem('pos-shell-key'),
    );
    const code = new URL(shell.url).hash.slice(3);
    expect(stored).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(stored).not.toBe(code);
    pageKey = stored ?? '';
    expect(shell.url).not.toContain(pageKey);
    // The code was spent by the page: the URL as the history keeps it opens nothing now (review 2, L2).
    const again = await fetch(`${shell.origin}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: shell.origin },
      body: JSON.stringify({ code }),
    });
    expect(again.status).toBe(401);

    expect(await invoke(page, { cmd: 'sale.start', amountMinor: 1234, currency: 'EUR' })).toEqual({
      ok: true,
    });
    await waitSnap(page, 'the card prompt', (s) => s.sale.cardPrompt === 'insert-or-tap');
    rig.answer('start', true);
    await settle();
    rig.presentCard();
    rig.answer('prePin', true);
    await settle();
    rig.answer('ticket', true);
    await settle();
    const withPad = await waitSnap(page, 'the PIN pad', (s) => s.sale.pad !== undefined);
    const layout = withPad.sale.pad?.layout ?? [];
    for (const d of [4, 3, 2, 1]) {
      expect(await invoke(page, { cmd: 'pin.key', position: layout.indexOf(d) })).toEqual({ ok: true });
    }
    await waitSnap(page, 'four dots', (s) => s.sale.pad?.digits === 4);
    expect(await invoke(page, { cmd: 'pin.ok' })).toEqual({ ok: true });
    expect(rig.pinRequests.at(-1)?.sent).toEqual([4, 3, 2, 1]);
    rig.answer('pin', true);
    await settle();
    rig.answer('submit', true);
    await settle();
    await waitSnap(page, 'approved', (s) => s.sale.result?.status === 'approved');
    // Seqs only increase; a refused command comes back as a result, not an exception.
    const all = await snaps(page);
    for (let i = 1; i < all.length; i++) expect(all[i]?.seq).toBeGreaterThan(all[i - 1]?.seq ?? -1);
    expect(await invoke(page, { cmd: 'pin.ok' })).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_TXN_STATE',
    });
    expect(await invoke(page, { cmd: 'pin.key', position: 42 } as unknown as Command)).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_API_INVALID',
    });
    expect(await invoke(page, { cmd: 'sale.new' })).toEqual({ ok: true });

    // A reload keeps working (the key is in sessionStorage) and shows the current state.
    await page.reload();
    await waitSnap(page, 'idle after reload', (s) => s.sale.state === 'idle');
    expect(await invoke(page, { cmd: 'sale.start', amountMinor: 500, currency: 'EUR' })).toEqual({
      ok: true,
    });
    await waitSnap(page, 'the second sale', (s) => s.sale.amountMinor === 500);
    expect(await invoke(page, { cmd: 'sale.cancel' })).toEqual({ ok: true });
    expect(errors).toEqual([]);
    await ctx.close();
  });

  it('a tab without the secret gets no snapshot and its commands are refused', async () => {
    // a tab with no fragment, and a new tab opening the printed URL again (its code spent: history)
    for (const url of [`${shell.origin}/`, shell.url]) {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      await page.goto(url);
      const r = await invoke(page, { cmd: 'sale.new' });
      expect(r).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_SHELL_AUTH' });
      await new Promise((res) => setTimeout(res, 300));
      expect(await snaps(page)).toEqual([]);
      expect(page.url()).toBe(`${shell.origin}/`);
      await ctx.close();
    }
  });

  it('a page of another origin cannot reach the core, even knowing the secret', async () => {
    const before = rig.pending.length + rig.pinRequests.length;
    const key = pageKey;
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(otherOrigin);
    const outcome = await page.evaluate(
      async ({ origin, key }) => {
        const out: string[] = [];
        try {
          const r = await fetch(`${origin}/api/command`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'X-Pos-Shell-Key': key },
            body: JSON.stringify({ cmd: 'sale.start', amountMinor: 100, currency: 'EUR' }),
          });
          out.push(`cors:${r.status}`);
        } catch {
          out.push('cors:blocked');
        }
        try {
          const r = await fetch(`${origin}/api/command`, {
            method: 'POST',
            mode: 'no-cors',
            headers: { 'content-type': 'text/plain' },
            body: JSON.stringify({ cmd: 'sale.start', amountMinor: 100, currency: 'EUR' }),
          });
          out.push(`no-cors:${r.type}`);
        } catch {
          out.push('no-cors:blocked');
        }
        return out;
      },
      { origin: shell.origin, key },
    );
    expect(outcome[0]).toBe('cors:blocked');
    expect(outcome[1]).toMatch(/^no-cors:(opaque|blocked)$/);
    // Nothing reached the engine: still idle after the earlier cancel's result, no new reader start.
    expect(rig.pending.length + rig.pinRequests.length).toBe(before);
    await ctx.close();
  });
});
