/**
 * The operator dashboard on the demo system (issue 8): `npm start --headless` (scripts/start.mjs in its
 * own process: the back-end, the reader simulator on a socat pseudo-terminal, an enrolled terminal run
 * as `pos-terminal` commands), and the dashboard it serves opened in Debian's Chromium (playwright-core).
 * The operator of the ready line signs in and:
 * - watches the terminal attest live: a sale by `pos-terminal transact` attests, and its verdict
 *   appears in the overview's live feed; finds the terminal in the table and opens it;
 * - halts it (Halt, a Reason, Confirm) while a sale waits for its PIN (that `pos-terminal` holds the
 *   terminal's push connection): the page shows the halt and the terminal's acknowledgement, the
 *   waiting sale ends halted with the operator's reason, and a new sale is refused as halted with no
 *   transaction at the back-end;
 * - resumes it (Resume, a Reason, Confirm): `resume-pending` until the next sale's attestation makes
 *   it `active` again, seen live, and that sale is approved;
 * - verifies the audit chain on the Audit page (the halt and the resume are in it).
 * No page error and no CSP violation. Screenshots of each step: test-results/dashboard-demo/
 * (git-ignored; no secret is on them: the sign-in form is shot empty).
 *
 * The dashboard is built from its sources into a temporary folder (`npm run build -w backend` with
 * another `--outDir`) that the back-end serves through POS_DASHBOARD_DIR: never an old build, and a
 * build running elsewhere meanwhile cannot empty it under the test.
 *
 * Skipped, with the reason printed, without socat or Chromium, or on a VM that cannot simulate a
 * physical machine.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, HAVE_CHROMIUM, launchChromium } from './chromium';
import {
  admin,
  cleanEnv,
  HAVE_SOCAT,
  physicalMachine,
  ROOT,
  runTerminal,
  startSystem,
  terminalId,
  type System,
} from './system';

const machine = physicalMachine();
const skipReason = !HAVE_SOCAT
  ? 'socat is not installed (apt-get install socat)'
  : !HAVE_CHROMIUM
    ? `no Chromium at ${CHROMIUM} (apt-get install chromium)`
    : 'skip' in machine
      ? machine.skip
      : undefined;
if (skipReason !== undefined) console.log(`dashboard demo-system test skipped: ${skipReason}`);
const prefix = 'prefix' in machine ? machine.prefix : [];

const SHOTS = join(ROOT, 'test-results', 'dashboard-demo');
/** A safety net for each wait on the page (never a timed assertion). */
const WAIT = 60_000;

describe.skipIf(skipReason !== undefined)('the dashboard on the demo system (npm start, Chromium)', () => {
  let dashboardDir: string | undefined;
  let sys: System | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;
  let id = '';
  const pageErrors: string[] = [];

  const get = (): { s: System; p: Page } => {
    if (sys === undefined || page === undefined) throw new Error('the system or the page did not start');
    return { s: sys, p: page };
  };
  const shot = async (p: Page, name: string): Promise<void> => {
    await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  const sale = (pin?: string) =>
    runTerminal(prefix, [
      'transact',
      '--data-dir',
      join(get().s.dir, 'terminal'),
      '--amount',
      '12.34',
      '--card',
      'visa-pin',
      ...(pin === undefined ? [] : ['--pin', pin]),
    ]);
  const transactions = async (s: System): Promise<number> => {
    const r = await admin(s, 'GET', `/v1/terminals/${id}/transactions`);
    expect(r.status).toBe(200);
    return ((r.json as { transactions?: unknown[] }).transactions ?? []).length;
  };

  beforeAll(async () => {
    dashboardDir = mkdtempSync(join(tmpdir(), 'pos-dashboard-demo-'));
    // As a production build (vitest sets NODE_ENV=test, which would bundle React's development build).
    const built = spawnSync(
      'npm',
      ['run', 'build', '-w', 'backend', '--silent', '--', '--outDir', dashboardDir, '--emptyOutDir'],
      { cwd: ROOT, encoding: 'utf8', env: cleanEnv({ NODE_ENV: 'production' }) },
    );
    if (built.status !== 0) throw new Error(`the dashboard did not build: ${built.stderr.slice(-2000)}`);
    expect(existsSync(join(dashboardDir, 'index.html'))).toBe(true);
    mkdirSync(SHOTS, { recursive: true });
    sys = await startSystem(undefined, { env: { POS_DASHBOARD_DIR: dashboardDir } });
    id = terminalId(sys);
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) pageErrors.push(m.text());
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await sys?.stop();
    sys?.cleanup();
    if (dashboardDir !== undefined) rmSync(dashboardDir, { recursive: true, force: true });
  });

  it('the operator signs in with the ready line, watches the terminal attest live and opens it', async () => {
    const { s, p } = get();
    await p.goto(s.ready.dashboard.url);
    await p.getByRole('button', { name: 'Sign in' }).waitFor();
    await shot(p, '1-sign-in');
    await p.getByLabel('Username').fill(s.ready.dashboard.username);
    await p.getByLabel('Password').fill(s.ready.dashboard.password);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('heading', { name: 'Fleet overview' }).waitFor();
    await p.locator('header .live.on').waitFor();
    const verdicts = p.getByRole('list', { name: 'Live events' }).getByText(`${id}: affirming verdict`);
    expect(await verdicts.count()).toBe(0);

    // A sale makes the terminal attest; its verdict arrives on the open page by the event stream.
    const run = await sale('1234').result;
    expect(run.line).toEqual({ status: 'approved', code: null });
    await verdicts.first().waitFor();
    await shot(p, '2-overview-live-verdict');

    // Find it in the table and open it.
    await p.getByRole('link', { name: 'Terminals', exact: true }).click();
    await p.getByLabel('Search').fill(id);
    const row = p.getByRole('row').filter({ hasText: id });
    await row.waitFor();
    expect(await row.textContent()).toContain('affirming');
    await row.getByRole('link', { name: id }).click();
    await p.getByRole('heading', { name: `Terminal ${id}` }).waitFor();
    await p
      .getByTestId('terminal-state')
      .filter({ hasText: /^active/ })
      .waitFor();
    await p.getByRole('cell', { name: 'affirming' }).first().waitFor();
    await shot(p, '3-terminal');
  }, 180_000);

  it('a halt with a reason is acknowledged by the terminal, ends its waiting sale, and a new sale is refused', async () => {
    const { s, p } = get();
    const before = await transactions(s);
    // A sale waiting for its PIN: this `pos-terminal` holds the terminal's push connection.
    const waiting = sale();
    try {
      await waiting.stderrHas('enter the PIN');
      await p.getByRole('button', { name: 'Halt', exact: true }).click();
      const confirm = p.getByRole('button', { name: 'Confirm' });
      expect(await confirm.isDisabled()).toBe(true);
      await p.getByLabel('Reason').fill('demo: suspected skimmer, ticket 8');
      await confirm.click();
      await p
        .getByTestId('terminal-state')
        .filter({ hasText: 'halted — demo: suspected skimmer, ticket 8' })
        .waitFor();
      // The outcome stays on the page though Halt gave way to Resume.
      await p
        .getByRole('status')
        .filter({ hasText: /^Halted \(hlt_[\w-]+\)\./ })
        .waitFor();
      await p
        .getByTestId('delivery-summary')
        .filter({ hasText: 'Acknowledged by 1 of 1 terminal.' })
        .first()
        .waitFor();
      await shot(p, '4-halted-acknowledged');
      const out = await waiting.result;
      expect(out.line).toMatchObject({
        status: 'halted',
        code: 'POS_ERR_DESKTOP_TXN_HALTED',
        detail: 'demo: suspected skimmer, ticket 8',
      });
      expect(out.code).toBe(1);
    } finally {
      waiting.kill();
    }

    // A new sale: refused as halted (no ticket), nothing reaches the acquirer.
    const refused = await sale('1234').result;
    expect(refused.line).toMatchObject({ status: 'halted', code: 'POS_ERR_DESKTOP_TXN_HALTED' });
    expect(refused.code).toBe(1);
    expect(await transactions(s)).toBe(before);
    await p
      .getByTestId('terminal-state')
      .filter({ hasText: /^halted/ })
      .waitFor();
  }, 180_000);

  it('resumed with a reason, the terminal is resume-pending until it attests again, then a sale is approved', async () => {
    const { s, p } = get();
    const before = await transactions(s);
    await p.getByRole('button', { name: 'Resume', exact: true }).click();
    await p.getByLabel('Reason').fill('demo: inspected, all clear');
    await p.getByRole('button', { name: 'Confirm' }).click();
    await p
      .getByTestId('terminal-state')
      .filter({ hasText: /^resume-pending/ })
      .waitFor();
    await p
      .locator('section.halt')
      .filter({ hasText: 'demo: suspected skimmer, ticket 8' })
      .getByText('lifted', { exact: true })
      .waitFor();
    await shot(p, '5-resume-pending');

    // The next sale attests (affirming): the terminal is active again, seen live, and the sale approved.
    const run = await sale('1234').result;
    expect(run.line).toEqual({ status: 'approved', code: null });
    expect(run.code).toBe(0);
    await p
      .getByTestId('terminal-state')
      .filter({ hasText: /^active/ })
      .waitFor();
    expect(await transactions(s)).toBe(before + 1);
    // That sale's push connection got the resume notice, which the terminal acknowledged: both
    // messages of the (lifted) halt are acknowledged, counted per kind for the one terminal.
    await p
      .locator('section.halt')
      .filter({ hasText: 'demo: suspected skimmer, ticket 8' })
      .getByTestId('delivery-summary')
      .filter({ hasText: /^Halt acknowledged by 1 of 1 terminal; resume acknowledged by 1 of 1 terminal\.$/ })
      .waitFor();
    await shot(p, '6-resumed-active');
  }, 180_000);

  it('the Audit page verifies the chain, with the halt and the resume in it', async () => {
    const { p } = get();
    await p.getByRole('link', { name: 'Audit', exact: true }).click();
    await p.getByRole('heading', { name: 'Audit log' }).waitFor();
    await p.getByRole('button', { name: 'Verify chain' }).click();
    const verified = p.getByTestId('audit-verify');
    await verified.waitFor();
    expect(await verified.textContent()).toMatch(/^Chain valid: \d+ entries/);
    await p.getByRole('cell', { name: 'terminal.halt', exact: true }).first().waitFor();
    await p.getByRole('cell', { name: 'terminal.resume', exact: true }).first().waitFor();
    await shot(p, '7-audit-verified');
  }, 120_000);

  it('no page error and no Content-Security-Policy violation', () => {
    expect(pageErrors).toEqual([]);
  });
});
