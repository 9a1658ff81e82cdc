/**
 * Debian's Chromium (`apt-get install chromium`) driven by playwright-core, for the full-stack tests
 * that open a page of the running system. No browser is downloaded: a test without it is skipped.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);

/** Chromium, headless; no sandbox (CI runs the tests as root, where Chromium's sandbox refuses to start). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}
