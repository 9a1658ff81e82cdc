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
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { SnapshotSchema, type Command, type Snapshot } from '../../../desktop/src/api/contract';
import { CHROMIUM, HAVE_CHROMIUM, launchChromium } from './chromium';
import {
  admin,
  cleanEnv,
  HAVE_SOCAT,
  physicalMachine,
  readerEvents,
  ROOT,
  simulator,
  terminalId,
  waitFor,
  type System,
} from './system';

const START = join(ROOT, 'scripts', 'start.mjs');
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

const ReadySchema = z.object({
  event: z.literal('ready'),
  dataDir: z.string(),
  backend: z.url(),
  terminal: z.string().regex(/^http:\/\/127\.0\.0\.1:\d{1,5}\/#c=[A-Za-z0-9_-]{43}$/),
  simulator: z.object({ control: z.url(), path: z.string() }),
  dashboard: z.object({ url: z.url(), username: z.string(), password: z.string() }),
});

describe.skipIf(skip !== undefined)('npm start with the browser shell', () => {
  let dir: string;
  let child: ChildProcess;
  let sys: System;
  let origin: string;
  let key: string;
  const snaps: Snapshot[] = [];
  let events: AbortController | undefined;
  let stderr = '';
  let rendererDir: string | undefined;
  let browser: Browser | undefined;
  /** The UI page of the Chromium test, left open for the halt test. */
  let uiPage: Page | undefined;

  const last = (): Snapshot | undefined => snaps.at(-1);
  const invoke = async (c: Command): Promise<unknown> => {
    const r = await fetch(`${origin}/api/command`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-pos-shell-key': key },
      body: JSON.stringify(c),
    });
    return r.json();
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pos-fullstack-ui-'));
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
    const prefix = 'prefix' in machine ? machine.prefix : [];
    const argv = [...prefix, process.execPath, START, '--data-dir', dir];
    child = spawn(argv[0] ?? process.execPath, argv.slice(1), {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      // The renderer build is not this test's business: the shell serves what is there (or the
      // not-built page); the test speaks the UI API.
      env: cleanEnv({
        POS_START_SKIP_SETUP: '1',
        POS_START_SKIP_UI_BUILD: '1',
        ...(rendererDir === undefined ? {} : { POS_UI_RENDERER_DIR: rendererDir }),
      }),
    });
    child.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const first = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`npm start exited (${code}): ${stderr.slice(-2000)}`)));
    });
    lines.on('line', () => undefined);
    const ready = ReadySchema.parse(JSON.parse(first));
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    sys = {
      ready: { ...ready, terminal: null },
      dir,
      child,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        return exited;
      },
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
    const u = new URL(ready.terminal);
    origin = u.origin;
    // The ready line carries a single-use bootstrap code (review 2, L2): this test is the page that
    // exchanges it; a second exchange is refused. (desktop/test/browser-shell/chromium.test.ts has a
    // browser do the exchange itself.)
    const code = u.hash.replace(/^#c=/, '');
    const exchange = () =>
      fetch(`${origin}/api/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin },
        body: JSON.stringify({ code }),
      });
    const exchanged = await exchange();
    expect(exchanged.status).toBe(200);
    key = z.object({ key: z.string().regex(/^[A-Za-z0-9_-]{43}$/) }).parse(await exchanged.json()).key;
    expect((await exchange()).status).toBe(401);
    expect(ready.terminal).not.toContain(key);
    // The event stream, read as the browser transport reads it.
    events = new AbortController();
    const res = await fetch(`${origin}/api/events`, {
      headers: { 'x-pos-shell-key': key, accept: 'text/event-stream' },
      signal: events.signal,
    });
    expect(res.status).toBe(200);
    const body = res.body;
    if (body === null) throw new Error('no event stream');
    void (async () => {
      const decoder = new TextDecoder();
      let buf = '';
      try {
        for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          let i = buf.indexOf('\n\n');
          while (i >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = block
              .split('\n')
              .filter((l) => l.startsWith('data: '))
              .map((l) => l.slice(6))
              .join('\n');
            if (block.includes('event: snapshot')) snaps.push(SnapshotSchema.parse(JSON.parse(data)));
            i = buf.indexOf('\n\n');
          }
        }
      } catch {
        // Aborted at the end.
      }
    })();
  }, 180_000);

  afterAll(async () => {
    events?.abort();
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
      await waitFor(
        () => last()?.sale.pad !== undefined || last()?.sale.state === 'result',
        'the PIN pad or a result',
        60_000,
      );
      const s = last();
      // The development policy gives the browser shell a PIN-entry ticket (its devtools, which it
      // cannot see, do not count against it there).
      expect(s?.sale.result).toBeUndefined();
      expect(s?.sale.maskedPan).toMatch(/^\d{6}\*+\d{4}$/);
      expect(s?.sale.cardPrompt).toBe('reading');
      const pad = s?.sale.pad;
      if (pad === undefined) throw new Error('no PIN pad');
      layouts.push(pad.layout.join(''));
      for (const d of [0, 0, 0, 0])
        expect(await invoke({ cmd: 'pin.key', position: pad.layout.indexOf(d) })).toEqual({ ok: true });
      await waitFor(() => last()?.sale.pad?.digits === 4, 'four dots');
      expect(await invoke({ cmd: 'pin.ok' })).toEqual({ ok: true });
      await waitFor(() => last()?.sale.state === 'result', 'the result', 60_000);
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
        await waitFor(
          () => last()?.sale.pad !== undefined || last()?.sale.state === 'result',
          'the PIN pad or a result',
          60_000,
        );
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
    events?.abort();
    expect(await sys.stop()).toBe(0);
    await expect(fetch(`${origin}/`, { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
  });
});
