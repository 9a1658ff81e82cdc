/**
 * The terminal UI in real Chromium against a fake core (harness.ts): controls found by role and
 * accessible name, the commands they send, what each snapshot shows. Screenshots of the main screens
 * at 1024×768 go to test-results/renderer/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Snapshot } from '../../src/api/contract';
import { CHROMIUM, hasChromium, openUi, snap, startUi, type UiHarness, type UiPage } from './harness';

if (!hasChromium)
  console.log(`renderer UI tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`);

const LAYOUT = [3, 7, 0, 9, 1, 8, 2, 6, 5, 4];

function pinSale(digits: number, layout: number[] = LAYOUT): Snapshot['sale'] {
  return {
    state: 'pin',
    amountMinor: 1234,
    currency: 'EUR',
    maskedPan: '476173******0119',
    pad: { layout, digits, deadline: Date.now() + 45_000 },
  };
}

describe.skipIf(!hasChromium)('terminal UI in Chromium', () => {
  let h: UiHarness;
  let ui: UiPage | undefined;

  beforeAll(async () => {
    h = await startUi();
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  async function open(opts?: { apiVersion?: number }): Promise<UiPage> {
    await ui?.close();
    ui = await openUi(h, opts);
    return ui;
  }

  /**
   * Every page: no script error, no CSP violation, no inline script or style (an empty style attribute
   * is Playwright's own, from fill()), no sideways scroll.
   */
  async function checkPage(u: UiPage): Promise<void> {
    expect(u.errors).toEqual([]);
    expect(await u.cspViolations()).toEqual([]);
    expect(
      await u.page
        .locator('script:not([src]), [style]:not([style=""])')
        .evaluateAll((els: { outerHTML: string }[]) => els.map((e) => e.outerHTML.slice(0, 200))),
    ).toEqual([]);
    expect(await u.scrollsSideways()).toBe(false);
  }

  it('enrollment: the fields and Enroll by name; a bad URL is refused before sending; an error is shown', async () => {
    const u = await open();
    await u.push(snap({ enrolled: false, reader: { state: 'not-configured' }, sale: { state: 'idle' } }));
    const { page } = u;
    await page.getByRole('heading', { name: 'Set up this terminal' }).waitFor();
    await page.getByLabel('Back-end URL').fill('ftp://example');
    await page.getByLabel('Enrollment code').fill('ABCD-1234');
    await page.getByRole('button', { name: 'Enroll' }).click();
    await page.getByRole('alert').filter({ hasText: 'back-end address' }).waitFor();
    expect(await u.commands()).toEqual([]);

    await u.queueResults({ ok: false, code: 'POS_ERR_ENROLL_CODE_UNKNOWN', detail: 'the code is not known' });
    await page.getByLabel('Back-end URL').fill('https://am.example.test');
    await page.getByRole('button', { name: 'Enroll' }).click();
    expect(await u.waitForCommands(1)).toEqual([
      { cmd: 'enroll', backendUrl: 'https://am.example.test', code: 'ABCD-1234' },
    ]);
    await page.getByRole('alert').filter({ hasText: 'POS_ERR_ENROLL_CODE_UNKNOWN' }).waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('The code is not known.');
    await u.screenshot('enroll');
    // The shipped page carries a strict CSP: own scripts and styles only, no eval, no inline code.
    const csp =
      (await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content')) ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toMatch(/unsafe-(inline|eval)/);
    await checkPage(u);

    await u.push(snap());
    await page.getByRole('button', { name: 'Charge' }).waitFor();
  });

  it('status bar: each part in words (and an icon), never colour alone; attestation age', async () => {
    const u = await open();
    await u.push(snap());
    const bar = u.page.getByRole('banner', { name: 'Terminal status' });
    await bar.waitFor();
    const text = (await bar.innerText()).replace(/\s+/g, ' ');
    expect(text).toContain('Reader: connected (SIM-0001)');
    expect(text).toMatch(/Attestation: trusted · 1\d s ago/);
    expect(text).toContain('Back-end: reachable');
    expect(text).toContain('Halt push: connected');

    await u.push(
      snap({
        reader: { state: 'disconnected', detail: 'the serial port closed' },
        backend: { link: 'down', push: false },
        attestation: { tier: 'warning', at: Date.now() - 180_000, reasons: ['debugger attached'] },
      }),
    );
    await bar.getByText('disconnected', { exact: true }).waitFor();
    const down = (await bar.innerText()).replace(/\s+/g, ' ');
    expect(down).toContain('Reader: disconnected · the serial port closed');
    expect(down).toMatch(/Attestation: warning · 3 min ago/);
    expect(down).toContain('Back-end: unreachable');
    expect(down).toContain('Halt push: not connected');
    expect(down).toContain('debugger attached');
    // The icons repeat the words and are hidden from assistive technology.
    expect(await bar.locator('.status-icon:not([aria-hidden="true"])').count()).toBe(0);

    // Idle with a failed check: the merchant is told before charging that no PIN can be entered.
    await u.push(
      snap({ attestation: { tier: 'contraindicated', at: Date.now(), reasons: ['code modified'] } }),
    );
    await u.page.getByRole('note').filter({ hasText: 'did not pass' }).waitFor();
    expect(await bar.innerText()).toContain('not trusted');

    await u.page.getByRole('button', { name: 'Check attestation now' }).click();
    expect(await u.waitForCommands(1)).toEqual([{ cmd: 'attest.now' }]);
    await checkPage(u);
  });

  it('amount: parsed to minor units without floats; refused when not valid; Enter submits', async () => {
    const u = await open();
    await u.push(snap());
    const { page } = u;
    const amount = page.getByLabel('Amount');
    const charge = page.getByRole('button', { name: 'Charge' });
    await amount.waitFor();
    // The amount field has focus when the screen opens.
    expect(await u.hasFocus(amount)).toBe(true);
    await u.screenshot('amount');

    for (const bad of ['12.345', '0', '0.00', '1000000', '-5', '1e3', '12.3.4', '', '1,234']) {
      await amount.fill(bad);
      await charge.click();
      await page.getByRole('alert').waitFor();
      expect(await amount.getAttribute('aria-invalid')).toBe('true');
    }
    expect(await u.commands()).toEqual([]);

    await amount.fill('12.34');
    await charge.click();
    await u.waitForCommands(1);
    await amount.fill(' 0.1 ');
    await amount.press('Enter');
    await u.waitForCommands(2);
    await amount.fill('7,5');
    await page.getByLabel('Currency').selectOption('GBP');
    await charge.click();
    await u.waitForCommands(3);
    await amount.fill('999999.99');
    await charge.click();
    expect(await u.waitForCommands(4)).toEqual([
      { cmd: 'sale.start', amountMinor: 1234, currency: 'EUR' },
      { cmd: 'sale.start', amountMinor: 10, currency: 'EUR' },
      { cmd: 'sale.start', amountMinor: 750, currency: 'GBP' },
      { cmd: 'sale.start', amountMinor: 99_999_999, currency: 'GBP' },
    ]);

    // A refusal from the core is shown with its code.
    await u.queueResults({ ok: false, code: 'POS_ERR_DESKTOP_TXN_BUSY', detail: 'a sale is running' });
    await amount.fill('5');
    await charge.click();
    await page.getByRole('alert').filter({ hasText: 'POS_ERR_DESKTOP_TXN_BUSY' }).waitFor();
    await checkPage(u);
  });

  it('keyboard: the merchant reaches every control with Tab, and focus is visible', async () => {
    const u = await open();
    await u.push(snap());
    const { page } = u;
    await page.getByLabel('Amount').waitFor();
    // The focused element, its name and its computed outline (the page has DOM types; this file not).
    const focused = () =>
      page.evaluate<{ tag: string; name: string; outline: string } | null>(`(() => {
        const el = document.activeElement;
        if (el === null) return null;
        const s = getComputedStyle(el);
        return {
          tag: el.tagName,
          name: el.getAttribute('aria-label') ?? el.textContent?.trim() ?? '',
          outline: s.outlineStyle + ' ' + s.outlineWidth,
        };
      })()`);
    const seen: { tag: string; name: string; outline: string }[] = [];
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Tab');
      const f = await focused();
      // Tab passes through the page itself (BODY) on its way round.
      if (f !== null && f.tag !== 'BODY') seen.push(f);
    }
    for (const f of seen) expect(`${f.tag} ${f.name}: ${f.outline}`).toBe(`${f.tag} ${f.name}: solid 3px`);
    const reached = seen.map((f) => (f.tag === 'BUTTON' ? f.name : f.tag));
    for (const want of ['INPUT', 'SELECT', 'Charge', 'Check attestation now'])
      expect(reached).toContain(want);
    await page.keyboard.press('Shift+Tab');
    await u.screenshot('focus');
    await checkPage(u);
  });

  it('card prompt and processing follow the snapshot; Cancel only while the engine can cancel', async () => {
    const u = await open();
    const { page } = u;
    const base = { amountMinor: 1234, currency: 'EUR' };
    const cancel = page.getByRole('button', { name: 'Cancel' });

    await u.push(snap({ sale: { state: 'card', cardPrompt: 'insert-or-tap', ...base } }));
    await page.getByRole('heading', { name: 'Insert or tap the card' }).waitFor();
    expect(await page.getByText('12.34 EUR').count()).toBe(1);
    await u.screenshot('card');
    await cancel.click();
    expect(await u.waitForCommands(1)).toEqual([{ cmd: 'sale.cancel' }]);

    await u.push(snap({ sale: { state: 'card', cardPrompt: 'reading', ...base } }));
    await page.getByRole('heading', { name: 'Reading the card…' }).waitFor();
    await u.push(snap({ sale: { state: 'card', cardPrompt: 'remove', ...base } }));
    await page.getByRole('heading', { name: 'Remove the card' }).waitFor();
    await u.push(snap({ sale: { state: 'attest', maskedPan: '476173******0119', ...base } }));
    await page.getByRole('heading', { name: 'Checking this terminal…' }).waitFor();
    expect(await page.getByText('476173******0119').count()).toBe(1);
    expect(await cancel.count()).toBe(1);
    await u.push(snap({ sale: { state: 'pin-block', ...base } }));
    await page.getByRole('heading', { name: 'Securing the PIN…' }).waitFor();
    expect(await cancel.count()).toBe(1);
    await u.push(snap({ sale: { state: 'submit', ...base } }));
    await page.getByRole('heading', { name: 'Waiting for approval…' }).waitFor();
    expect(await cancel.count()).toBe(0);
    await u.screenshot('submit');
    await checkPage(u);
  });

  it('PIN pad: buttons 0-9 from the layout send positions, never digits; dots; countdown; Clear, OK, Cancel', async () => {
    const u = await open();
    const { page } = u;
    await u.push(snap({ sale: pinSale(0) }));
    await page.getByRole('heading', { name: 'Enter your PIN' }).waitFor();
    expect(await page.getByText('12.34 EUR').count()).toBe(1);
    const pad = page.getByRole('group', { name: 'PIN pad' });
    // The buttons in grid order carry the layout's digits.
    const labels = await pad.locator('[data-pad-key]').allInnerTexts();
    expect(labels.map(Number)).toEqual([...LAYOUT.slice(0, 9), LAYOUT[9]]);
    expect(await page.getByRole('img', { name: '0 digits entered' }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'OK' }).isDisabled()).toBe(true);
    expect(await page.getByRole('timer').innerText()).toMatch(/closes in (4[0-5]|3\d) s/);

    // Press 1, 2, 3, 4 by name: the positions of those digits go out, nothing else.
    for (const d of [1, 2, 3, 4]) await page.getByRole('button', { name: String(d), exact: true }).click();
    const sent = await u.waitForCommands(4);
    expect(sent).toEqual([1, 2, 3, 4].map((d) => ({ cmd: 'pin.key', position: LAYOUT.indexOf(d) })));
    for (const c of sent) expect(Object.keys(c as object).sort()).toEqual(['cmd', 'position']);

    await u.push(snap({ sale: pinSale(4) }));
    await page.getByRole('img', { name: '4 digits entered' }).waitFor();
    expect(await page.locator('.pin-dots').textContent()).toBe('●●●●');
    await u.screenshot('pin');

    // The hardware keyboard types nothing: digit keys, the keypad, and Enter/Space on a pressed key.
    await page.keyboard.type('98765');
    await page.keyboard.press('Numpad5');
    await page.keyboard.press('Enter');
    await page.keyboard.press('Space');
    await page.locator('.keyboard-note.emphasised').waitFor();
    // What was typed shows nowhere: not in the text, not in a field, not in an attribute.
    expect(await page.locator('body').innerText()).not.toContain('98765');
    expect(await page.content()).not.toContain('98765');
    expect(await page.getByRole('note').innerText()).toContain('use the on-screen keys');
    await page.getByRole('button', { name: '5', exact: true }).click();
    await u.waitForCommands(5);
    await page.keyboard.press('Enter');
    await page.keyboard.press('Space');
    await page.keyboard.type('0');
    // A command the UI would wrongly send goes before the next one the test sends.
    await page.getByRole('button', { name: 'Clear' }).click();
    const after = await u.waitForCommands(6);
    expect(after.slice(4)).toEqual([{ cmd: 'pin.key', position: LAYOUT.indexOf(5) }, { cmd: 'pin.clear' }]);
    // No digit button holds keyboard focus after a press.
    expect(await page.locator('[data-pad-key]:focus').count()).toBe(0);

    await page.getByRole('button', { name: 'OK' }).click();
    await page.getByRole('button', { name: 'Cancel' }).click();
    expect((await u.waitForCommands(8)).slice(6)).toEqual([{ cmd: 'pin.ok' }, { cmd: 'sale.cancel' }]);

    // The display never shows a digit, and the page keeps no typed digit in a form field.
    expect(await page.locator('.pin-dots').textContent()).not.toMatch(/\d/);
    expect(await page.locator('input').count()).toBe(0);

    // The next entry has a new layout: the same names now send other positions.
    const second = [8, 2, 5, 0, 6, 1, 9, 3, 4, 7];
    await u.push(snap({ sale: pinSale(0, second) }));
    await page.getByRole('img', { name: '0 digits entered' }).waitFor();
    await page.getByRole('button', { name: '1', exact: true }).click();
    expect((await u.waitForCommands(9)).slice(8)).toEqual([{ cmd: 'pin.key', position: second.indexOf(1) }]);
    await checkPage(u);
  });

  it('halt: the provider reason and what to do, and no PIN pad even while the sale is at PIN entry', async () => {
    const u = await open();
    const { page } = u;
    await u.push(snap({ sale: pinSale(2) }));
    await page.getByRole('group', { name: 'PIN pad' }).waitFor();
    await u.push(snap({ sale: pinSale(2), halt: { reason: 'device key seen in two places' } }));
    await page.getByRole('heading', { name: 'PIN entry is halted' }).waitFor();
    expect(await page.getByRole('group', { name: 'PIN pad' }).count()).toBe(0);
    for (let d = 0; d <= 9; d++) {
      expect(await page.getByRole('button', { name: String(d), exact: true }).count()).toBe(0);
    }
    const alert = await page.getByRole('alert').innerText();
    expect(alert).toContain('Device key seen in two places.');
    expect(await page.getByText('What to do').count()).toBe(1);
    expect(await page.getByText('term-0001', { exact: false }).count()).toBe(1);
    await u.screenshot('halted');

    // Idle and halted: no Charge. The result of the halted sale offers New sale.
    await u.push(snap({ halt: { reason: 'operator halt' } }));
    await page.getByText('Operator halt.').waitFor();
    expect(await page.getByRole('button', { name: 'Charge' }).count()).toBe(0);
    await u.push(
      snap({
        halt: { reason: 'operator halt' },
        sale: {
          state: 'result',
          amountMinor: 500,
          currency: 'EUR',
          result: { status: 'halted', code: 'POS_ERR_DESKTOP_TXN_HALTED', detail: 'operator halt' },
        },
      }),
    );
    await page.getByText('The sale of 5.00 EUR: Halted (no PIN was taken).').waitFor();
    expect(await u.scrollsSideways()).toBe(false);
    await u.screenshot('halted-result');
    await page.getByRole('button', { name: 'New sale' }).click();
    expect(await u.waitForCommands(1)).toEqual([{ cmd: 'sale.new' }]);
    await checkPage(u);
  });

  it('results: Approved, Declined with the reason, New sale', async () => {
    const u = await open();
    const { page } = u;
    const base = {
      state: 'result' as const,
      amountMinor: 1234,
      currency: 'EUR',
      maskedPan: '476173******0119',
    };
    await u.push(snap({ sale: { ...base, result: { status: 'approved' } } }));
    const newSale = page.getByRole('button', { name: 'New sale' });
    await page.getByRole('heading', { name: 'Approved' }).waitFor();
    // Focus moves to New sale, so Enter starts the next sale.
    expect(await u.hasFocus(newSale)).toBe(true);
    await u.screenshot('approved');
    await page.keyboard.press('Enter');
    expect(await u.waitForCommands(1)).toEqual([{ cmd: 'sale.new' }]);

    await u.push(
      snap({
        sale: {
          ...base,
          cardPrompt: 'remove',
          result: { status: 'declined', code: 'POS_ERR_DESKTOP_TXN_DECLINED', detail: 'incorrect PIN' },
        },
      }),
    );
    await page.getByRole('heading', { name: 'Declined' }).waitFor();
    const text = await page.getByRole('main').innerText();
    expect(text).toContain('Reason: The card issuer declined the payment.');
    expect(text).toContain('Incorrect PIN.');
    expect(text).toContain('Remove the card.');
    await u.screenshot('declined');

    await u.push(
      snap({
        sale: {
          ...base,
          result: { status: 'error', code: 'POS_ERR_DESKTOP_TXN_CANCELLED', detail: 'cancelled' },
        },
      }),
    );
    await page.getByRole('heading', { name: 'Cancelled' }).waitFor();
    await newSale.click();
    expect(await u.waitForCommands(2)).toEqual([{ cmd: 'sale.new' }, { cmd: 'sale.new' }]);
    await u.push(snap());
    await page.getByRole('button', { name: 'Charge' }).waitFor();
    await checkPage(u);
  });

  it('reader disconnected and back-end unreachable: said in words with what to do; no Charge', async () => {
    const u = await open();
    const { page } = u;
    await u.push(snap({ reader: { state: 'disconnected', detail: 'the serial port closed' } }));
    await page.getByRole('heading', { name: 'The card reader is disconnected' }).waitFor();
    expect(await page.getByRole('main').innerText()).toContain('The serial port closed.');
    expect(await page.getByRole('button', { name: 'Charge' }).count()).toBe(0);
    await u.screenshot('reader-disconnected');

    await u.push(snap({ backend: { link: 'down', push: false } }));
    await page.getByRole('heading', { name: 'The payment back-end cannot be reached' }).waitFor();
    await page.getByRole('button', { name: 'Try again' }).click();
    expect(await u.waitForCommands(1)).toEqual([{ cmd: 'attest.now' }]);
    await u.screenshot('backend-unreachable');

    await u.push(snap());
    await page.getByRole('button', { name: 'Charge' }).waitFor();
    await checkPage(u);
  });

  it('core unavailable: a preload of another API version, or the core gone, shows POS_ERR_DESKTOP_API_UNAVAILABLE', async () => {
    const u = await open({ apiVersion: 99 });
    const { page } = u;
    await page.getByRole('heading', { name: 'The terminal is not running' }).waitFor();
    expect(await page.getByRole('main').innerText()).toContain('POS_ERR_DESKTOP_API_UNAVAILABLE');
    expect(await page.getByRole('main').innerText()).toContain('version 99');
    await u.screenshot('core-unavailable');
    await checkPage(u);

    const v = await open();
    await v.push(snap());
    await v.queueResults({
      ok: false,
      code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
      detail: 'the utility process exited',
    });
    await v.page.getByLabel('Amount').fill('1');
    await v.page.getByRole('button', { name: 'Charge' }).click();
    await v.page.getByRole('heading', { name: 'The terminal is not running' }).waitFor();
    expect(await v.page.getByRole('button', { name: 'Charge' }).count()).toBe(0);
    // A new snapshot means the core is back.
    await v.push(snap());
    await v.page.getByRole('button', { name: 'Charge' }).waitFor();
    await checkPage(v);
  });

  it('a snapshot that breaks the contract, or an older one, is dropped', async () => {
    const u = await open();
    const { page } = u;
    await u.push(snap({ sale: pinSale(0) }));
    await page.getByRole('group', { name: 'PIN pad' }).waitFor();
    // Not a permutation: refused by the schema, the pad keeps the last good layout.
    await u.pushRaw({ ...snap({ sale: pinSale(0, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]) }), seq: 1e9 });
    // An older seq than the one shown.
    await u.pushRaw({ ...snap({ sale: { state: 'idle' } }), seq: 0 });
    await u.push(snap({ sale: pinSale(1) }));
    await page.getByRole('img', { name: '1 digit entered' }).waitFor();
    const labels = await page.locator('[data-pad-key]').allInnerTexts();
    expect(labels.map(Number)).toEqual(LAYOUT);
    await checkPage(u);
    await u.close();
    ui = undefined;
  });
});
