/**
 * `pos-terminal` argument handling, in process: every argument through its schema, a usage error is
 * one coded line and exit status 2 (never echoing the value), `status` on an empty data directory,
 * `enroll` refusing a second enrollment of the same directory.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../src/cli/main';
import { FileKeyStore } from '../src/core/keys/store';
import { tempDir } from './support';

function io(): CliIo & { outs: string[]; errs: string[] } {
  const outs: string[] = [];
  const errs: string[] = [];
  return {
    outs,
    errs,
    out: (l) => outs.push(l),
    err: (l) => errs.push(l),
    readLine: () => Promise.resolve(undefined),
  };
}

describe('pos-terminal arguments', () => {
  it.each([
    [['transact', '--amount', '12.345']],
    [['transact', '--amount', '0']],
    [['transact', '--amount', '1', '--pin', '12']],
    [['transact', '--amount', '1', '--currency', 'eur']],
    [['transact', '--amount', '1', '--json']],
    [['status', '--bogus']],
    [['enroll', '--backend', 'ftp://x', '--code', 'ABCDEFGHJK', '--reader-serial', 'R1', '--reader-ca', 'x']],
    [
      [
        'enroll',
        '--backend',
        'http://127.0.0.1:1',
        '--code',
        'ABCDEFGHJK',
        '--reader-serial',
        'R1',
        '--reader-ca',
        'x',
      ],
    ],
    [['launch']],
    [[]],
  ])('%j is a usage error', async (argv) => {
    const t = io();
    expect(await runCli(argv, t)).toBe(2);
    expect(t.errs[0]).toMatch(/^pos-terminal: POS_ERR_DESKTOP_CLI_USAGE|^usage:/);
    expect(t.outs).toEqual([]);
  });

  it('never echoes the PIN in a usage error', async () => {
    const t = io();
    expect(await runCli(['transact', '--amount', '1', '--pin', '12x45'], t)).toBe(2);
    expect(t.errs.join('\n')).not.toContain('12x45');
  });

  it('status of an empty data directory says not enrolled', async () => {
    const d = tempDir();
    try {
      const t = io();
      expect(await runCli(['status', '--json', '--data-dir', d.dir], t)).toBe(0);
      expect(JSON.parse(t.outs[0] ?? '')).toMatchObject({ enrolled: false, terminalId: null, halted: false });
      const u = io();
      const r = await runCli(['transact', '--amount', '1.00', '--data-dir', d.dir], u);
      expect(r).toBe(1);
      expect(JSON.parse(u.outs[0] ?? '')).toMatchObject({
        status: 'error',
        code: 'POS_ERR_DESKTOP_NOT_ENROLLED',
      });
    } finally {
      d.cleanup();
    }
  });

  it('enroll refuses a directory that is already enrolled, before any request', async () => {
    const d = tempDir();
    try {
      const store = new FileKeyStore({ path: join(d.dir, 'terminal.json') });
      await store.putConfig({ backendUrl: 'http://127.0.0.1:1', terminalId: 'trm_x', evidenceCounter: 1 });
      const ca = join(d.dir, 'ca.pem');
      writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n');
      const t = io();
      const r = await runCli(
        [
          'enroll',
          '--data-dir',
          d.dir,
          '--backend',
          'http://127.0.0.1:1',
          '--code',
          'ABCDEFGHJK',
          '--reader-serial',
          'R1',
          '--reader-ca',
          ca,
          '--reader-path',
          '/dev/null',
        ],
        t,
      );
      expect(r).toBe(1);
      expect(t.errs[0]).toMatch(/^pos-terminal: POS_ERR_DESKTOP_ALREADY_ENROLLED: /);
    } finally {
      d.cleanup();
    }
  });
});
