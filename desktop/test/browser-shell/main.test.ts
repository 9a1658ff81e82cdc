/** `pos-terminal-ui` (src/browser-shell/main.ts): arguments, the ready line, a not-enrolled directory, a refused key file. */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { browserShellInfo, startUi, type UiIo } from '../../src/browser-shell/main';
import { NOT_BUILT_PAGE } from '../../src/browser-shell/server';
import { tempDir } from '../support';
import { keyFromUrl, raw } from './helpers';

function io(): UiIo & { outs: string[]; errs: string[] } {
  const outs: string[] = [];
  const errs: string[] = [];
  return { outs, errs, out: (l) => outs.push(l), err: (l) => errs.push(l) };
}

describe('pos-terminal-ui', () => {
  it('refuses bad arguments with a usage error (exit 2)', async () => {
    for (const argv of [
      ['--port', 'abc'],
      ['--port', '70000'],
      ['--host', '0.0.0.0'],
      ['--bogus'],
      ['extra'],
    ]) {
      const o = io();
      expect(await startUi(argv, o), argv.join(' ')).toBe(2);
      expect(o.errs.join('\n')).toMatch(/^pos-terminal-ui: POS_ERR_DESKTOP_CLI_USAGE: /);
      expect(o.outs).toEqual([]);
    }
  });

  it('reports the browser shell in its evidence, with devtools and capture left unknown', () => {
    const s = browserShellInfo();
    expect(s).toMatchObject({ kind: 'browser', build: 'development', packaged: false });
    expect(s.devtoolsOpen).toBeUndefined();
    expect(s.contentProtection).toBeUndefined();
  });

  it('serves a not-enrolled directory, waiting for enrollment, and prints the ready line', async () => {
    const t = tempDir('pos-ui-main-');
    const o = io();
    const ui = await startUi(
      ['--data-dir', join(t.dir, 'terminal'), '--renderer-dir', join(t.dir, 'none')],
      o,
    );
    if (typeof ui === 'number') throw new Error(`exit ${ui}: ${o.errs.join('\n')}`);
    try {
      expect(o.outs).toHaveLength(1);
      const ready = JSON.parse(o.outs[0] ?? '') as { url: string; enrolled: boolean };
      expect(ready).toMatchObject({ event: 'ready', enrolled: false, terminalId: null });
      expect(ready.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#c=[A-Za-z0-9_-]{43}$/);
      const page = await raw(ui.shell.port, { path: '/' });
      expect(page.body).toBe(NOT_BUILT_PAGE);
      const key = await keyFromUrl(ui.shell.port, ready.url);
      const snap = await raw(ui.shell.port, { path: '/api/snapshot', headers: { 'x-pos-shell-key': key } });
      expect(JSON.parse(snap.body)).toMatchObject({
        enrolled: false,
        shell: 'browser',
        sale: { state: 'idle' },
      });
      // Enrolling from the UI needs a reader to pair with: not configured here.
      const r = await raw(ui.shell.port, {
        method: 'POST',
        path: '/api/command',
        headers: { 'x-pos-shell-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({ cmd: 'enroll', backendUrl: 'http://127.0.0.1:9', code: 'pos_enr_x' }),
      });
      expect(JSON.parse(r.body)).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_READER_CONFIG' });
      expect(o.errs.join('\n')).not.toContain(key);
      expect(o.outs.join('\n')).not.toContain(key);
    } finally {
      await ui.close();
      t.cleanup();
    }
  });

  it('takes the reader to pair with for enrollment from the UI', async () => {
    const t = tempDir('pos-ui-main-');
    const ca = join(t.dir, 'ca.pem');
    writeFileSync(
      ca,
      `-----BEGIN CERTIFICATE-----\n${Buffer.from('not parsed here').toString('base64')}\n-----END CERTIFICATE-----\n`,
    );
    const junk = join(t.dir, 'junk.pem');
    writeFileSync(junk, 'no certificate\n');
    try {
      for (const argv of [
        ['--reader-serial', 'PRS-1'],
        ['--reader-serial', 'PRS-1', '--reader-ca', ca],
        [
          '--reader-serial',
          'PRS-1',
          '--reader-ca',
          ca,
          '--reader-path',
          '/dev/x',
          '--reader-vid',
          '1a86',
          '--reader-pid',
          '7523',
        ],
        ['--reader-serial', 'PRS-1', '--reader-ca', join(t.dir, 'missing.pem'), '--reader-path', '/dev/x'],
        ['--reader-serial', 'PRS-1', '--reader-ca', junk, '--reader-path', '/dev/x'],
        ['--reader-serial', 'bad serial!', '--reader-ca', ca, '--reader-path', '/dev/x'],
      ]) {
        const o = io();
        expect(await startUi(['--data-dir', join(t.dir, 'd'), ...argv], o), argv.join(' ')).toBe(2);
        expect(o.errs.join('\n')).toMatch(/POS_ERR_DESKTOP_CLI_USAGE/);
      }
      const o = io();
      const ui = await startUi(
        [
          '--data-dir',
          join(t.dir, 'terminal'),
          '--reader-serial',
          'PRS-1',
          '--reader-ca',
          ca,
          '--reader-path',
          join(t.dir, 'pty'),
        ],
        o,
      );
      if (typeof ui === 'number') throw new Error(`exit ${ui}: ${o.errs.join('\n')}`);
      try {
        const ready = JSON.parse(o.outs[0] ?? '') as { url: string };
        const key = await keyFromUrl(ui.shell.port, ready.url);
        // The pairing passes; the back-end (nothing listens on port 9) is what fails.
        const r = await raw(ui.shell.port, {
          method: 'POST',
          path: '/api/command',
          headers: { 'x-pos-shell-key': key, 'content-type': 'application/json' },
          body: JSON.stringify({ cmd: 'enroll', backendUrl: 'http://127.0.0.1:9', code: 'pos_enr_x' }),
        });
        expect(JSON.parse(r.body)).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_BACKEND_UNREACHABLE' });
      } finally {
        await ui.close();
      }
    } finally {
      t.cleanup();
    }
  });

  it('exits 1 with the code when the key file is refused', async () => {
    const t = tempDir('pos-ui-main-');
    const file = join(t.dir, 'terminal.json');
    writeFileSync(file, '{"version":1}');
    chmodSync(file, 0o644);
    const o = io();
    try {
      expect(await startUi(['--data-dir', t.dir], o)).toBe(1);
      expect(o.errs.join('\n')).toMatch(/^pos-terminal-ui: POS_ERR_DESKTOP_KEYSTORE_PERMISSIONS: /);
      expect(o.outs).toEqual([]);
    } finally {
      t.cleanup();
    }
  });
});
