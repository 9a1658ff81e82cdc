/**
 * The dashboard in Debian's Chromium (playwright-core) against a real back-end listening on
 * 127.0.0.1 (in-process, SQLite in memory) with a terminal enrolled and holding its push connection:
 * an operator signs in (the __Host- session cookie is kept over http://127.0.0.1, a secure context
 * in Chromium), sees the terminal attest live, halts it with a reason, sees the halt acknowledged and
 * the terminal refused a ticket, resumes it (each outcome staying on the page after the control that
 * produced it is gone; the halt's delivery counted per terminal and message kind); an auditor sees no control that changes anything and
 * verifies the audit chain. No page breaks the CSP. Screenshots: test-results/dashboard/.
 * Skipped, with the reason printed, when /usr/bin/chromium is missing.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { time } from '../../dashboard/src/format';
import { startPushClient, type PushClient } from '../../src/fleet/push-client';
import { DEFAULT_AUTH_CONFIG } from '../../src/server/auth/config';
import { loginThrottleKeys, throttleEpoch } from '../../src/server/auth/throttle';
import { DEFAULT_POLICY } from '../../src/server/domain';
import { readerOutput, sessionTicket, transact } from '../fleet-helpers';
import { makeHarness, seedReferenceValues, SimTerminal, type Harness } from '../helpers';
import { enrollInto, newMerchant, until } from '../server/fleet-helpers';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.log(`dashboard browser tests skipped: ${CHROMIUM} is missing (Debian: apt-get install chromium)`);
}

const here = dirname(fileURLToPath(import.meta.url));
const SHOTS = join(here, '..', '..', '..', 'test-results', 'dashboard');
const WAIT = 20_000;
const PASSWORD = {
  admin: 'admin-password-00001',
  operator: 'operator-password-0001',
  auditor: 'auditor-password-0001',
  merchant: 'merchant-password-0001',
};
/** The development policy with headless terminals contraindicated (the simulated terminal is headless). */
const STRICT_POLICY = {
  ...DEFAULT_POLICY,
  version: 'strict-2',
  rules: [
    ...DEFAULT_POLICY.rules,
    {
      id: 'no-headless',
      when: { shell: ['headless'] },
      effect: 'contraindicate',
      category: 'configuration',
      reason: { code: 'HEADLESS_REFUSED', text: 'Headless terminals may not work.' },
    },
  ],
};

describe.skipIf(!haveChromium)('the dashboard in Chromium', () => {
  let h: Harness;
  let base: string;
  let browser: Browser;
  let terminal: SimTerminal;
  let merchantId: string;
  let dashboardDir: string;
  let push: PushClient;
  const cspViolations: string[] = [];

  beforeAll(async () => {
    // Build the dashboard from its sources (what `npm run build -w backend` does), so the test never
    // runs against an old build; into a folder of its own (POS_DASHBOARD_DIR), so a build running
    // elsewhere at the same time cannot empty it under this test.
    // Vitest sets NODE_ENV=test, which would bundle React's development build: build as production.
    dashboardDir = mkdtempSync(join(tmpdir(), 'pos-dashboard-build-'));
    const { build } = await import('vite');
    const nodeEnv = process.env['NODE_ENV'];
    process.env['NODE_ENV'] = 'production';
    try {
      await build({
        configFile: join(here, '..', '..', 'dashboard', 'vite.config.mjs'),
        logLevel: 'warn',
        build: { outDir: dashboardDir, emptyOutDir: true },
      });
    } finally {
      if (nodeEnv === undefined) delete process.env['NODE_ENV'];
      else process.env['NODE_ENV'] = nodeEnv;
    }
    expect(existsSync(join(dashboardDir, 'index.html'))).toBe(true);
    process.env['POS_DASHBOARD_DIR'] = dashboardDir;
    mkdirSync(SHOTS, { recursive: true });

    h = await makeHarness();
    await seedReferenceValues(h);
    merchantId = await newMerchant(h, 'Corner shop');
    terminal = (await enrollInto(h, merchantId)).t;
    expect((await terminal.attest()).statusCode).toBe(200);
    for (const role of ['admin', 'operator', 'auditor'] as const) {
      const res = await h.admin('POST', '/v1/users', {
        username: `${role}1`,
        password: PASSWORD[role],
        role,
      });
      expect(res.statusCode, res.body).toBe(201);
    }
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = h.app.server.address() as AddressInfo;
    base = `http://127.0.0.1:${port}`;
    // The terminal holds its push connection and acknowledges what it receives.
    push = startPushClient({
      url: `ws://127.0.0.1:${port}/v1/push`,
      proof: () => terminal.proof('GET', '/v1/push', ''),
    });
    await until('push connection open', () => push.isOpen(), WAIT);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await push?.close();
    await h?.close();
    delete process.env['POS_DASHBOARD_DIR'];
    if (dashboardDir !== undefined) rmSync(dashboardDir, { recursive: true, force: true });
  });

  async function signIn(role: keyof typeof PASSWORD): Promise<Page> {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    await page.goto(`${base}/dashboard/`);
    await page.getByLabel('Username').fill(`${role}1`);
    await page.getByLabel('Password').fill(PASSWORD[role]);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Fleet overview' }).waitFor({ timeout: WAIT });
    return page;
  }

  it('an operator signs in, watches the terminal attest, halts it with a reason, sees the acknowledgement, resumes it', async () => {
    const page = await signIn('operator');
    // The session cookie: __Host- prefix, Secure and HttpOnly, kept by Chromium over http://127.0.0.1.
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === '__Host-pos_session');
    expect(session?.secure).toBe(true);
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe('Strict');

    await page.getByTestId('count-trusted').filter({ hasText: /^1$/ }).waitFor({ timeout: WAIT });
    await page.locator('header .live.on').waitFor({ timeout: WAIT });
    // A live attestation shows up in the event feed.
    expect((await terminal.attest()).statusCode).toBe(200);
    const feed = page.getByRole('list', { name: 'Live events' });
    await feed.getByText(`${terminal.id}: affirming verdict`).first().waitFor({ timeout: WAIT });
    await page.screenshot({ path: join(SHOTS, 'overview.png'), fullPage: true });

    // Find the terminal in the table and open it.
    await page.getByRole('link', { name: 'Terminals', exact: true }).click();
    await page.getByLabel('Search').fill(terminal.readerSerial);
    const row = page.getByRole('row').filter({ hasText: terminal.id });
    await row.waitFor({ timeout: WAIT });
    expect(await row.textContent()).toContain('trusted');
    expect(await row.textContent()).toContain('1.2.3');
    await page.screenshot({ path: join(SHOTS, 'terminals.png'), fullPage: true });
    await row.getByRole('link', { name: terminal.id }).click();
    await page.getByRole('heading', { name: `Terminal ${terminal.id}` }).waitFor({ timeout: WAIT });
    // Its current ticket (from the live attestation): the expiry time, how far ahead, use and issue time.
    const current = await h.store.latestTicket(terminal.id);
    if (current === null) throw new Error('the attested terminal has no recorded ticket');
    const expiry = page.getByTestId('ticket-expiry');
    await expiry.filter({ hasText: time(current.expiresAt) }).waitFor({ timeout: WAIT });
    expect(await expiry.textContent()).toMatch(
      new RegExp(
        `^${time(current.expiresAt)} \\(in (\\d+ s|1 min)\\) · session ticket issued ${time(current.issuedAt)}$`,
      ),
    );

    // A ticket the terminal holds from before the halt.
    const ticket = await sessionTicket(terminal);

    // Halt, with a reason and a confirmation.
    await page.getByRole('button', { name: 'Halt' }).click();
    expect(await page.getByRole('button', { name: 'Confirm' }).isDisabled()).toBe(true);
    await page.getByLabel('Reason').fill('suspected tampering, ticket 42');
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByTestId('terminal-state').filter({ hasText: 'halted' }).waitFor({ timeout: WAIT });
    // The state changed (Halt gave way to Resume); the outcome stays on the page, naming the halt.
    await page.getByRole('button', { name: 'Resume', exact: true }).waitFor({ timeout: WAIT });
    expect(await page.getByRole('button', { name: 'Halt', exact: true }).count()).toBe(0);
    const active = (await h.admin('GET', '/v1/halts')).json<{
      halts: { haltId: string; scope: string; target: string | null }[];
    }>();
    const terminalHalt = active.halts.find((x) => x.scope === 'terminal' && x.target === terminal.id);
    if (terminalHalt === undefined) throw new Error('the terminal halt is not stored');
    const outcome = page.getByRole('status').filter({ hasText: `Halted (${terminalHalt.haltId}).` });
    await outcome.waitFor({ timeout: WAIT });
    await page
      .getByTestId('delivery-summary')
      .filter({ hasText: 'Acknowledged by 1 of 1 terminal.' })
      .first()
      .waitFor({ timeout: WAIT });
    // Still there after the page re-read the terminal and the halt's acknowledgement.
    expect(await outcome.isVisible()).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'terminal-halted.png'), fullPage: true });
    // The halted terminal's sale is refused, even with the ticket it got before the halt, and it gets
    // no new ticket.
    const sale = await transact(h, terminal, readerOutput('visa-no-pin', undefined), ticket);
    expect(sale.statusCode).toBe(403);
    expect(sale.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_TERMINAL_HALTED');
    const refused = await terminal.attest();
    expect(refused.json<{ halted: boolean; ticket?: string }>()).toMatchObject({ halted: true });
    expect(refused.json<{ ticket?: string }>().ticket).toBeUndefined();

    // Resume: resume-pending, then active after a fresh affirming attestation (seen live).
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByLabel('Reason').fill('inspected, all clear');
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByTestId('terminal-state').filter({ hasText: 'resume-pending' }).waitFor({ timeout: WAIT });
    // Resume is gone (resume-pending shows neither control); its outcome replaced the halt's.
    await page
      .getByRole('status')
      .filter({ hasText: 'Now resume-pending: waiting for a fresh affirming attestation.' })
      .waitFor({ timeout: WAIT });
    expect(await page.getByRole('button', { name: 'Resume', exact: true }).count()).toBe(0);
    expect(await outcome.count()).toBe(0);
    // The lifted halt's delivery: its halt and its resume notice to the one terminal, counted apart
    // (one terminal, not two).
    const lifted = page
      .locator('section.halt')
      .filter({ hasText: terminalHalt.haltId })
      .getByTestId('delivery-summary');
    await lifted
      .filter({
        hasText: /^Halt acknowledged by 1 of 1 terminal; resume acknowledged by 1 of 1 terminal\.$/,
      })
      .waitFor({ timeout: WAIT });
    await page.screenshot({ path: join(SHOTS, 'terminal-resume-pending.png'), fullPage: true });
    expect((await terminal.attest()).statusCode).toBe(200);
    await page
      .getByTestId('terminal-state')
      .filter({ hasText: /^active/ })
      .waitFor({ timeout: WAIT });
    await page.screenshot({ path: join(SHOTS, 'terminal-resumed.png'), fullPage: true });

    // Past the current ticket's expiry by the server's clock: the page (its clock set from the fleet
    // summary on the overview) says how long ago the ticket expired.
    const last = await h.store.latestTicket(terminal.id);
    if (last === null) throw new Error('the resumed terminal has no recorded ticket');
    h.clock.t = last.expiresAt + 61_000;
    await page.getByRole('link', { name: 'Overview', exact: true }).click();
    await page.getByTestId('count-trusted').filter({ hasText: /^1$/ }).waitFor({ timeout: WAIT });
    await page.goto(`${base}/dashboard/#/terminals/${terminal.id}`);
    await page
      .getByTestId('ticket-expiry')
      .filter({ hasText: new RegExp(`^${time(last.expiresAt)} \\(expired [12] min ago\\)`) })
      .waitFor({ timeout: WAIT });
    await page.screenshot({ path: join(SHOTS, 'terminal-ticket-expired.png'), fullPage: true });

    // Sign out: back to the sign-in form, and the session is gone on the server too.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor({ timeout: WAIT });
    const me = await page.evaluate(async () => (await fetch('/v1/auth/me')).status);
    expect(me).toBe(401);
    await page.context().close();
  }, 180_000);

  it('an auditor sees no control that changes anything, and verifies the audit chain', async () => {
    const page = await signIn('auditor');
    await page.goto(`${base}/dashboard/#/terminals/${terminal.id}`);
    await page.getByRole('heading', { name: `Terminal ${terminal.id}` }).waitFor({ timeout: WAIT });
    await page.getByText('Verdicts and evidence').waitFor({ timeout: WAIT });
    await page.screenshot({ path: join(SHOTS, 'auditor-terminal.png'), fullPage: true });
    for (const name of ['Halt', 'Resume', 'Decommission', 'Confirm']) {
      expect(await page.getByRole('button', { name, exact: true }).count(), name).toBe(0);
    }
    await page.getByRole('link', { name: 'Halts', exact: true }).click();
    await page.getByRole('heading', { name: 'Halts', exact: true }).waitFor({ timeout: WAIT });
    await page.getByText('show lifted halts too').click();
    await page.getByText('suspected tampering, ticket 42').first().waitFor({ timeout: WAIT });
    expect(await page.getByRole('button', { name: 'Halt', exact: true }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Resume', exact: true }).count()).toBe(0);
    await page.getByRole('link', { name: 'Policies', exact: true }).click();
    await page.getByRole('heading', { name: 'Policies' }).waitFor({ timeout: WAIT });
    expect(await page.getByRole('button', { name: 'Upload' }).count()).toBe(0);
    await page.getByRole('link', { name: 'Enrollment', exact: true }).click();
    await page.getByRole('heading', { name: 'Merchants and enrollment' }).waitFor({ timeout: WAIT });
    expect(await page.getByRole('button', { name: 'Create enrollment code' }).count()).toBe(0);

    await page.getByRole('link', { name: 'Audit', exact: true }).click();
    await page.getByRole('button', { name: 'Verify chain' }).click();
    await page.getByTestId('audit-verify').filter({ hasText: 'Chain valid' }).waitFor({ timeout: WAIT });
    await page.getByRole('cell', { name: 'terminal.halt', exact: true }).first().waitFor({ timeout: WAIT });
    expect(await page.getByRole('button', { name: 'Sign checkpoint now' }).count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'auditor-audit.png'), fullPage: true });
    await page.getByRole('link', { name: 'Users', exact: true }).click();
    await page.getByRole('cell', { name: 'operator1', exact: true }).waitFor({ timeout: WAIT });
    for (const name of [
      'Create user',
      'Create token',
      'Disable',
      'Set password',
      'Clear lock-outs',
      'Revoke',
    ]) {
      expect(await page.getByRole('button', { name }).count(), name).toBe(0);
    }
    await page.context().close();
  }, 120_000);

  it('reopens the live event stream after the back-end refused it (too many streams)', async () => {
    // The auditor's other session holds every stream slot of the user (5 per principal)...
    const login = await h.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { username: 'auditor1', password: PASSWORD.auditor },
    });
    const cookie = String(login.headers['set-cookie']).split(';')[0] ?? '';
    const aborts: AbortController[] = [];
    for (let i = 0; i < 5; i++) {
      const abort = new AbortController();
      aborts.push(abort);
      const res = await fetch(`${base}/v1/events`, {
        headers: { accept: 'text/event-stream', cookie },
        signal: abort.signal,
      });
      expect(res.status).toBe(200);
    }
    // ...so the dashboard's stream is refused (429) and shows offline...
    const page = await signIn('auditor');
    await page.locator('header .live').filter({ hasText: 'offline' }).waitFor({ timeout: WAIT });
    expect(await page.locator('header .live.on').count()).toBe(0);
    // ...until a slot frees: the dashboard opens its stream again by itself.
    for (const a of aborts) a.abort();
    await page.locator('header .live.on').waitFor({ timeout: 30_000 });
    await page.context().close();
  }, 120_000);

  it('an admin creates an enrollment code, uploads a release and a shadow policy with its impact, halts a merchant and lifts it', async () => {
    const page = await signIn('admin');

    // An enrollment code, shown once, that enrolls a terminal.
    await page.getByRole('link', { name: 'Enrollment', exact: true }).click();
    const shop = page.getByRole('row').filter({ hasText: merchantId });
    await shop.getByRole('button', { name: 'Create enrollment code' }).click();
    const code = (await page.getByTestId('enrollment-code').textContent({ timeout: WAIT })) ?? '';
    expect(code).toMatch(/^pos_enr_/);
    await page.screenshot({
      path: join(SHOTS, 'enrollment.png'),
      fullPage: true,
      mask: [page.getByTestId('enrollment-code')],
    });
    const second = new SimTerminal(h);
    second.readerSerial = 'RDR-SECOND-1';
    const challenge = await second.challenge(true);
    const enrolled = await h.app.inject({
      method: 'POST',
      url: '/v1/enrollments',
      payload: {
        code,
        deviceJwk: second.jwk,
        readerSerial: second.readerSerial,
        evidence: second.evidence(challenge, 'enrollment'),
      },
    });
    expect(enrolled.statusCode, enrolled.body).toBe(201);

    // A release manifest.
    await page.getByRole('link', { name: 'Reference values', exact: true }).click();
    await page.getByLabel('Manifest', { exact: true }).fill(
      JSON.stringify({
        version: '2.0.0',
        build: 'release',
        codeHashes: ['cd'.repeat(32)],
        allowedShells: ['electron'],
      }),
    );
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.getByRole('cell', { name: '2.0.0', exact: true }).waitFor({ timeout: WAIT });

    // A stricter policy in shadow mode, and what it would have done.
    await page.getByRole('link', { name: 'Policies', exact: true }).click();
    await page.getByLabel('Policy (JSON)').fill(JSON.stringify(STRICT_POLICY));
    await page.getByRole('button', { name: 'Upload' }).click();
    const strictRow = page.getByRole('row').filter({ hasText: 'strict-2' });
    await strictRow.waitFor({ timeout: WAIT });
    await strictRow.getByRole('button', { name: 'Shadow', exact: true }).click();
    await page.getByRole('button', { name: 'Confirm' }).click();
    await strictRow.getByText('shadow', { exact: true }).waitFor({ timeout: WAIT });
    expect((await terminal.attest()).statusCode).toBe(200);
    await page.getByRole('link', { name: 'Overview', exact: true }).click();
    await page.getByRole('link', { name: 'Policies', exact: true }).click();
    await page
      .getByTestId('shadow-impact-strict-2')
      .filter({ hasText: 'would have halted 1 terminal' })
      .waitFor({ timeout: WAIT });
    await page.screenshot({ path: join(SHOTS, 'policies.png'), fullPage: true });

    // A merchant halt: delivered to the connected terminal, pending for the one never connected.
    await page.getByRole('link', { name: 'Halts', exact: true }).click();
    await page.getByLabel('Scope').selectOption('merchant');
    await page
      .locator('label', { hasText: /^Merchant/ })
      .locator('select')
      .selectOption(merchantId);
    await page.getByRole('button', { name: 'Halt', exact: true }).click();
    await page.getByLabel('Reason').fill('merchant under investigation');
    await page.getByRole('button', { name: 'Confirm' }).click();
    const ordered = page
      .getByRole('status')
      .filter({ hasText: /^Halt hlt_[\w-]+ ordered: 2 terminals covered\./ });
    await ordered.waitFor({ timeout: WAIT });
    const merchantHaltId = /^Halt (hlt_[\w-]+) /.exec((await ordered.textContent()) ?? '')?.[1];
    expect(merchantHaltId).toBeDefined();
    const halt = page.locator('section.halt').filter({ hasText: 'merchant under investigation' });
    await halt
      .getByTestId('delivery-summary')
      .filter({ hasText: 'Acknowledged by 1 of 2 terminals (1 pending).' })
      .waitFor({ timeout: WAIT });
    await page.screenshot({ path: join(SHOTS, 'halts.png'), fullPage: true });
    await halt.getByRole('button', { name: 'Resume' }).click();
    await page.getByLabel('Reason').fill('investigation closed');
    await page.getByRole('button', { name: 'Confirm' }).click();
    await halt.waitFor({ state: 'detached', timeout: WAIT });
    // The lifted halt left the list of active ones with its Resume button; the outcome stays.
    const liftedNotice = page
      .getByRole('status')
      .filter({ hasText: `Halt ${merchantHaltId ?? '?'} lifted: 2 resume-pending, 0 still halted` });
    await liftedNotice.waitFor({ timeout: WAIT });
    await page.screenshot({ path: join(SHOTS, 'halts-lifted.png'), fullPage: true });
    // Until dismissed.
    await liftedNotice.getByRole('button', { name: 'Dismiss' }).click();
    await liftedNotice.waitFor({ state: 'detached', timeout: WAIT });
    expect(await page.getByTestId('action-result').textContent()).toBe('');
    const stored = await h.admin('GET', '/v1/halts?state=all');
    const lifted = stored
      .json<{ halts: { reason: string; liftedAt: number | null }[] }>()
      .halts.find((x) => x.reason === 'merchant under investigation');
    expect(lifted?.liftedAt).not.toBeNull();

    // A user whose sign-in budget others have spent (every attempt now, from addresses it never used).
    const lockedRes = await h.admin('POST', '/v1/users', {
      username: 'locked.out',
      password: 'locked-out-password-1',
      role: 'operator',
    });
    expect(lockedRes.statusCode, lockedRes.body).toBe(201);
    const lockedUser = await h.store.findOperatorByUsername('locked.out');
    if (lockedUser === undefined) throw new Error('locked.out not stored');
    const { maxLoginAttemptsPerUser, lockoutS } = DEFAULT_AUTH_CONFIG;
    for (let i = 0; i < maxLoginAttemptsPerUser; i++) {
      const key = loginThrottleKeys(h.keys).user(lockedUser.username, throttleEpoch(lockedUser));
      await h.store.hitLoginAttempt(key, h.clock.now(), lockoutS * 1000);
    }

    // A user and an API token (shown once), then the token revoked.
    await page.getByRole('link', { name: 'Users', exact: true }).click();
    await page.getByLabel('New username').fill('night.shift');
    await page.getByLabel('Initial password').fill('night-shift-password-1');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('cell', { name: 'night.shift', exact: true }).waitFor({ timeout: WAIT });
    await page.getByLabel('Token label').fill('monitoring scraper');
    await page.getByRole('button', { name: 'Create token' }).click();
    const token = (await page.getByTestId('new-token').textContent({ timeout: WAIT })) ?? '';
    expect(token).toMatch(/^pos_operator_/);
    const viaToken = await h.app.inject({
      method: 'GET',
      url: '/v1/fleet/summary',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(viaToken.statusCode).toBe(200);
    const tokenRow = page.getByRole('row').filter({ hasText: 'monitoring scraper' });
    await tokenRow.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('button', { name: 'Confirm' }).click();
    await tokenRow.getByText(/^revoked/).waitFor({ timeout: WAIT });
    // The locked user's row says until when; the admin clears its lock-outs (audited).
    const lockedRow = page.getByRole('row').filter({ hasText: 'locked.out' });
    const until_ = time(h.clock.now() + lockoutS * 1000);
    await lockedRow
      .getByText(`sign-in locked for this account until ${until_}`, { exact: false })
      .waitFor({ timeout: WAIT });
    await lockedRow.getByRole('button', { name: 'Clear lock-outs' }).click();
    await page.getByRole('button', { name: 'Confirm' }).click();
    await lockedRow
      .getByText(`Lock-outs cleared (the account was locked until ${until_}).`)
      .waitFor({ timeout: WAIT });
    await lockedRow.getByRole('cell', { name: 'active', exact: true }).waitFor({ timeout: WAIT });
    const unlocks = (await h.store.listAudit(0, 10_000)).filter((a) => a.action === 'user.unlock');
    expect(unlocks.map((a) => a.subject)).toEqual([`operator:${lockedUser.id}`]);
    // No secret in an artifact: the one-time token is masked.
    await page.screenshot({
      path: join(SHOTS, 'users.png'),
      fullPage: true,
      mask: [page.getByTestId('new-token')],
    });
    await page.context().close();
  }, 180_000);

  it('a merchant sees its own terminals and no provider page, may halt its terminal and may not resume it', async () => {
    const res = await h.admin('POST', '/v1/users', {
      username: 'merchant1',
      password: PASSWORD.merchant,
      role: 'merchant',
      merchantId,
    });
    expect(res.statusCode, res.body).toBe(201);
    // The admin's merchant halt was lifted: an affirming attestation makes the terminal active again.
    expect((await terminal.attest()).statusCode).toBe(200);
    const other = await newMerchant(h, 'Other shop');
    const foreign = (await enrollInto(h, other)).t;
    const page = await signIn('merchant');
    const nav = (await page.locator('header nav').textContent()) ?? '';
    expect(nav).toContain('Terminals');
    for (const hidden of ['Reference values', 'Policies', 'Audit']) expect(nav).not.toContain(hidden);
    await page.getByRole('link', { name: 'Terminals', exact: true }).click();
    await page.getByRole('row').filter({ hasText: terminal.id }).waitFor({ timeout: WAIT });
    expect(await page.getByRole('row').filter({ hasText: foreign.id }).count()).toBe(0);
    // No merchant filter for a merchant-scoped user: it sees one merchant anyway.
    expect(await page.locator('label', { hasText: /^Merchant/ }).count()).toBe(0);
    await page
      .getByRole('row')
      .filter({ hasText: terminal.id })
      .getByRole('link', { name: terminal.id })
      .click();
    await page.getByRole('heading', { name: `Terminal ${terminal.id}` }).waitFor({ timeout: WAIT });
    await page.getByTestId('terminal-state').waitFor({ timeout: WAIT });
    await page
      .getByTestId('terminal-state')
      .filter({ hasText: /^active/ })
      .waitFor({ timeout: WAIT });
    await page.getByRole('button', { name: 'Halt' }).click();
    await page.getByLabel('Reason').fill('terminal stolen from the counter');
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByTestId('terminal-state').filter({ hasText: 'halted' }).waitFor({ timeout: WAIT });
    expect(await page.getByRole('button', { name: 'Resume', exact: true }).count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'merchant-terminal.png'), fullPage: true });
    // The overview says which terminal needs attention, and why.
    await page.getByRole('link', { name: 'Overview', exact: true }).click();
    await page
      .getByRole('row')
      .filter({ hasText: terminal.id })
      .filter({ hasText: 'terminal stolen from the counter' })
      .waitFor({ timeout: WAIT });
    await page.getByTestId('count-halted').filter({ hasText: /^1$/ }).waitFor({ timeout: WAIT });
    // Another merchant's terminal is as absent as an unknown one.
    await page.goto(`${base}/dashboard/#/terminals/${foreign.id}`);
    await page.getByText('POS_ERR_TERMINAL_UNKNOWN').waitFor({ timeout: WAIT });
    await page.context().close();
  }, 120_000);

  it('an operator decommissions a terminal: a confirm step that says it cannot be undone, then the state, no action left, the push connection closed', async () => {
    const retired = (await enrollInto(h, merchantId)).t;
    expect((await retired.attest()).statusCode).toBe(200);
    const closes: number[] = [];
    const retiredPush = startPushClient({
      url: base.replace('http://', 'ws://') + '/v1/push',
      proof: () => retired.proof('GET', '/v1/push', ''),
      onState: (state, detail) => {
        if (state === 'closed' && detail.code !== undefined) closes.push(detail.code);
      },
    });
    try {
      await until('push connection open', () => retiredPush.isOpen(), WAIT);
      const page = await signIn('operator');
      await page.goto(`${base}/dashboard/#/terminals/${retired.id}`);
      await page
        .getByTestId('terminal-state')
        .filter({ hasText: /^active/ })
        .waitFor({ timeout: WAIT });
      // Cancel leaves it as it was.
      await page.getByRole('button', { name: 'Decommission', exact: true }).click();
      const form = page.getByRole('form', { name: 'Decommission: confirm' });
      await form.getByText('This cannot be undone').waitFor({ timeout: WAIT });
      expect(await form.getByRole('button', { name: 'Confirm' }).isDisabled()).toBe(true);
      await form.getByRole('button', { name: 'Cancel' }).click();
      expect((await h.store.getTerminal(retired.id))?.state).toBe('active');
      await page.getByRole('button', { name: 'Decommission', exact: true }).click();
      await page.getByLabel('Reason').fill('PC replaced, ticket 77');
      await page.getByRole('button', { name: 'Confirm' }).click();
      await page
        .getByRole('status')
        .filter({ hasText: 'Decommissioned for good.' })
        .waitFor({ timeout: WAIT });
      await page
        .getByTestId('terminal-state')
        .filter({ hasText: 'decommissioned — PC replaced, ticket 77' })
        .waitFor({ timeout: WAIT });
      for (const name of ['Halt', 'Resume', 'Decommission']) {
        expect(await page.getByRole('button', { name, exact: true }).count(), name).toBe(0);
      }
      await page.screenshot({ path: join(SHOTS, 'operator-decommissioned.png'), fullPage: true });
      expect(await h.store.getTerminal(retired.id)).toMatchObject({
        state: 'decommissioned',
        stateReason: 'PC replaced, ticket 77',
      });
      await until('push connection closed 4410', () => closes.includes(4410), WAIT);
      // Listed under its own filter.
      await page.goto(`${base}/dashboard/#/terminals?state=decommissioned`);
      await page.getByRole('row').filter({ hasText: retired.id }).waitFor({ timeout: WAIT });
      expect(await page.getByRole('row').filter({ hasText: terminal.id }).count()).toBe(0);
      await page.context().close();
    } finally {
      await retiredPush.close();
    }
  }, 120_000);

  it('no page broke the Content-Security-Policy', () => {
    expect(cspViolations).toEqual([]);
  });
});
