/**
 * `npm start` with the browser shell (no --headless): the terminal's core runs behind the shell's
 * loopback server, its URL (with a single-use bootstrap code in the fragment) is `terminal` in the ready line.
 * Over the UI API, as the renderer's browser transport uses it: the secret is required, snapshots
 * stream as server-sent events (shell `browser`, the reader connected, the push open), a sale with a
 * card from the reader simulator and a wrong PIN typed by pad positions is declined. In Chromium,
 * through the real renderer (built by vite into a temporary directory): a sale from amount to
 * Approved, the PIN clicked on the pad (a new layout), then an operator halt shown with its reason and
 * no pad (screenshots in test-results/browser-shell). SIGTERM stops it all.
 *
 * Skipped, with the reason printed, without socat, or on a VM that cannot simulate a physical machine.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Command, Snapshot } from '../../../desktop/src/api/contract';
import { CHROMIUM, HAVE_CHROMIUM, launchChromium } from './chromium';
import {
  admin,
  enterPinByPositions,
  exchangeShellCode,
  HAVE_SOCAT,
  openShellApi,
  padOrResult,
  physicalMachine,
  readerEvents,
  ROOT,
  simulator,
  startShellSystem,
  terminalId,
  waitFor,
  type ShellApi,
  type System,
} from './system';

const machine = physicalMachine();
const skip = !HAVE_SOCAT
  ? 'socat is missing (apt-get install socat)'
  : 'skip' in machine
    ? machine.skip
    : undefined;
if (skip !== undefined) console.log(`browser-shell full-stack tests skipped: ${skip}`);
if (skip === undefined && !HAVE_CHROMIUM)
  console.log(
    `browser-shell full-stack UI test skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`,
  );
const SCREENSHOTS = join(ROOT, 'test-results', 'browser-shell');

describe.skipIf(skip !== undefined)('npm start with the browser shell', () => {
  let sys: System;
  let origin: string;
  let key: string;
  let api: ShellApi | undefined;
  let rendererDir: string | undefined;
  let browser: Browser | undefined;
  /** The UI page of the Chromium test, left open for the halt test. */
  let uiPage: Page | undefined;

  const last = (): Snapshot | undefined => api?.last();
  const invoke = (c: Command): Promise<unknown> => {
    if (api === undefined) throw new Error('the shell did not start');
    return api.invoke(c);
  };

  beforeAll(async () => {
    if (HAVE_CHROMIUM) {
      // The real renderer, built into a directory of this test's own (desktop/dist may be rebuilt by
      // someone else meanwhile); the shell serves it through POS_UI_RENDERER_DIR.
      rendererDir = mkdtempSync(join(tmpdir(), 'pos-fullstack-renderer-'));
      await build({
        configFile: join(ROOT, 'desktop', 'vite.config.ts'),
        logLevel: 'warn',
        build: { outDir: rendererDir, emptyOutDir: true },
      });
    }
    // The renderer build is not this test's business: the shell serves what is there (or the
    // not-built page); the test speaks the UI API.
    const shell = await startShellSystem('prefix' in machine ? machine.prefix : [], {
      env: rendererDir === undefined ? {} : { POS_UI_RENDERER_DIR: rendererDir },
    });
    sys = shell.sys;
    origin = shell.origin;
    // The ready line carries a single-use bootstrap code (review 2, L2): this test is the page that
    // exchanges it; a second exchange is refused. (desktop/test/browser-shell/chromium.test.ts has a
    // browser do the exchange itself.) The event stream is read as the browser transport reads it.
    api = await openShellApi(shell);
    key = api.key;
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await exchangeShellCode(origin, shell.code)).status).toBe(401);
    expect(shell.shellReady.terminal).not.toContain(key);
    expect(api.eventsStatus).toBe(200);
  }, 180_000);

  afterAll(async () => {
    api?.stopEvents();
    await browser?.close();
    await sys?.stop();
    sys?.cleanup();
    if (rendererDir !== undefined) rmSync(rendererDir, { recursive: true, force: true });
  });

  it('puts the shell URL with its secret in the ready line, and the API needs the secret', async () => {
    const page = await fetch(`${origin}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const refused = await fetch(`${origin}/api/snapshot`);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ code: 'POS_ERR_DESKTOP_SHELL_AUTH' });
    await waitFor(
      () => last()?.reader.state === 'connected' && last()?.backend.push === true,
      'the reader connected and the push open',
      60_000,
    );
    expect(last()).toMatchObject({ v: 1, shell: 'browser', enrolled: true, terminalId: terminalId(sys) });
    expect(last()?.backend.link).toBe('up');
    expect(last()?.attestation.tier).not.toBe('unknown');
  });

  /** The layouts of the PIN entries seen so far (a new random one for every entry). */
  const layouts: string[] = [];

  it('a sale over the UI API: a wrong PIN typed by pad positions is declined', async () => {
    expect(await invoke({ cmd: 'sale.start', amountMinor: 1234, currency: 'EUR' })).toEqual({ ok: true });
    await waitFor(() => last()?.sale.cardPrompt === 'insert-or-tap', 'the card prompt');
    expect((await simulator(sys, 'POST', '/card', { card: 'visa-pin', action: 'insert' })).status).toBe(200);
    try {
      await padOrResult(last);
      const s = last();
      // The development policy gives the browser shell a PIN-entry ticket (its devtools, which it
      // cannot see, do not count against it there).
      expect(s?.sale.result).toBeUndefined();
      expect(s?.sale.maskedPan).toMatch(/^\d{6}\*+\d{4}$/);
      expect(s?.sale.cardPrompt).toBe('reading');
      const pad = s?.sale.pad;
      if (pad === undefined) throw new Error('no PIN pad');
      layouts.push(pad.layout.join(''));
      await enterPinByPositions({ invoke, last }, pad.layout, [0, 0, 0, 0]);
      expect(last()?.sale.result).toMatchObject({ status: 'declined' });
      expect(last()?.sale.cardPrompt).toBe('remove');
    } finally {
      await simulator(sys, 'POST', '/card', { action: 'remove' });
    }
    expect(await invoke({ cmd: 'sale.new' })).toEqual({ ok: true });
    await waitFor(() => last()?.sale.state === 'idle', 'idle');
  });

  it.skipIf(!HAVE_CHROMIUM)(
    'in Chromium, the real UI takes a sale from amount to Approved, the PIN typed on its pad',
    async () => {
      mkdirSync(SCREENSHOTS, { recursive: true });
      browser = await launchChromium();
      const page = await browser.newPage({ viewport: { width: 1024, height: 768 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text()))
          errors.push(m.text());
      });
      // The code was spent above: the page gets the secret as a page that exchanged it keeps it.
      await page.addInitScript({
        content: `sessionStorage.setItem('pos-shell-key', ${JSON.stringify(key)});`,
      });
      await page.goto(`${origin}/`);
      await page.getByLabel('Amount').fill('12.34');
      await page.getByRole('button', { name: 'Charge' }).click();
      await waitFor(
        () => last()?.sale.state === 'card' && last()?.sale.amountMinor === 1234,
        'the sale from the UI',
      );
      // The secret left the address bar.
      expect(page.url()).toBe(`${origin}/`);
      await page.screenshot({ path: join(SCREENSHOTS, '1-insert-card.png') });
      expect((await simulator(sys, 'POST', '/card', { card: 'visa-pin', action: 'insert' })).status).toBe(
        200,
      );
      try {
        await padOrResult(last);
        const pad = last()?.sale.pad;
        expect(pad).toBeDefined();
        {
          layouts.push(pad?.layout.join('') ?? '');
          // Two PIN entries, two layouts (equal with probability 1/10!).
          expect(new Set(layouts).size).toBe(layouts.length);
          await page.getByRole('group', { name: 'PIN pad' }).waitFor();
          await page.screenshot({ path: join(SCREENSHOTS, '2-pin-pad.png') });
          for (const d of ['1', '2', '3', '4'])
            await page.getByRole('button', { name: d, exact: true }).click();
          await waitFor(() => last()?.sale.pad?.digits === 4, 'four dots');
          await page.getByRole('button', { name: 'OK', exact: true }).click();
          await waitFor(() => last()?.sale.state === 'result', 'the result', 60_000);
          expect(last()?.sale.result).toEqual({ status: 'approved' });
          await page.getByText('Approved').first().waitFor();
        }
        await page.getByRole('button', { name: 'New sale' }).waitFor();
        await page.screenshot({ path: join(SCREENSHOTS, '3-result.png') });
      } finally {
        await simulator(sys, 'POST', '/card', { action: 'remove' });
      }
      await page.getByRole('button', { name: 'New sale' }).click();
      await waitFor(() => last()?.sale.state === 'idle', 'idle after New sale');
      await page.getByLabel('Amount').waitFor();
      expect(errors).toEqual([]);
      uiPage = page;
    },
  );

  it('an operator halt during PIN entry takes the pad away and shows the reason; no PIN block, no new sale', async () => {
    const blocksBefore = readerEvents(sys).filter((e) => e['event'] === 'pin-block').length;
    expect(await invoke({ cmd: 'sale.start', amountMinor: 500, currency: 'EUR' })).toEqual({ ok: true });
    await waitFor(() => last()?.sale.cardPrompt === 'insert-or-tap', 'the card prompt');
    expect((await simulator(sys, 'POST', '/card', { card: 'visa-pin', action: 'insert' })).status).toBe(200);
    try {
      await waitFor(() => last()?.sale.pad !== undefined, 'the PIN pad', 60_000);
      const pad = last()?.sale.pad;
      for (const d of [1, 2]) await invoke({ cmd: 'pin.key', position: pad?.layout.indexOf(d) ?? 0 });
      await waitFor(() => last()?.sale.pad?.digits === 2, 'two dots');
      if (uiPage !== undefined) await uiPage.getByRole('group', { name: 'PIN pad' }).waitFor();
      const t0 = Date.now();
      const halt = await admin(sys, 'POST', `/v1/terminals/${terminalId(sys)}/halt`, {
        reason: 'incident browser-7',
      });
      expect(halt.status).toBeLessThan(300);
      await waitFor(() => last()?.halt?.reason === 'incident browser-7', 'the halt in the snapshots');
      const core = Date.now() - t0;
      expect(last()?.sale.pad).toBeUndefined();
      expect(last()?.sale.result).toMatchObject({ status: 'halted', code: 'POS_ERR_DESKTOP_TXN_HALTED' });
      if (uiPage !== undefined) {
        // The page: the pad gone, the provider's reason shown (its own snapshot stream).
        await uiPage.getByText('incident browser-7').first().waitFor({ timeout: 30_000 });
        expect(await uiPage.getByRole('group', { name: 'PIN pad' }).count()).toBe(0);
        const page = Date.now() - t0;
        await uiPage.screenshot({ path: join(SCREENSHOTS, '4-halted.png') });
        // Measured, not asserted (the machine is shared): the goal is under a second.
        console.log(
          `browser shell: halt call to pad gone: ${core} ms in the snapshots, ${page} ms on the page`,
        );
      } else console.log(`browser shell: halt call to pad gone: ${core} ms in the snapshots`);
      // The reader aborted its transaction and made no PIN block.
      await waitFor(() => readerEvents(sys).some((e) => e['event'] === 'abort'), 'the reader abort');
      expect(readerEvents(sys).filter((e) => e['event'] === 'pin-block')).toHaveLength(blocksBefore);
    } finally {
      await simulator(sys, 'POST', '/card', { action: 'remove' });
    }
    expect(await invoke({ cmd: 'sale.new' })).toEqual({ ok: true });
    expect(await invoke({ cmd: 'sale.start', amountMinor: 500, currency: 'EUR' })).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_TXN_HALTED',
    });
  });

  it('SIGTERM stops the shell with the rest', async () => {
    api?.stopEvents();
    expect(await sys.stop()).toBe(0);
    await expect(fetch(`${origin}/`, { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
  });
});
