/**
 * Review 2, M2: the UI `enroll` command and `pos-terminal enroll --backend` take `https:` to any host
 * and plain `http:` only to a loopback host (localhost, 127.0.0.0/8, [::1]).
 */
import { describe, expect, it } from 'vitest';
import { isAllowedBackendUrl, parseCommand } from '../src/api/contract';
import { runCli, type CliIo } from '../src/cli/main';

const enroll = (backendUrl: string) => parseCommand({ cmd: 'enroll', backendUrl, code: 'ABCD-1234' });

const ALLOWED = [
  'https://am.example.com',
  'https://am.example.com:8443/base',
  'https://203.0.113.7',
  'http://127.0.0.1:8080',
  'http://127.9.8.7',
  'http://127.1:8080',
  'http://localhost:3000',
  'http://LOCALHOST',
  'http://[::1]:8080',
];
const REFUSED = [
  'http://am.example.com',
  'http://am.example.com:8080',
  'http://10.0.0.5',
  'http://128.0.0.1',
  'http://[::2]',
  'http://[::ffff:10.0.0.1]',
  'http://localhost.example.com',
  'http://127.0.0.1.example.com',
  'http://0.0.0.0:8080',
  'ftp://127.0.0.1',
  'ws://127.0.0.1',
  'not a url',
];

describe('back-end URL rule (M2)', () => {
  it.each(ALLOWED)('allows %s', (u) => {
    expect(isAllowedBackendUrl(u)).toBe(true);
    expect(enroll(u).ok).toBe(true);
  });

  it.each(REFUSED)('refuses %s', (u) => {
    expect(isAllowedBackendUrl(u)).toBe(false);
    const r = enroll(u);
    expect(r).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_API_INVALID' });
    if (!r.ok) expect(r.detail).not.toContain(u);
  });

  it('pos-terminal enroll --backend refuses plain http to a remote host, with its own code', async () => {
    const errs: string[] = [];
    const outs: string[] = [];
    const io: CliIo = {
      out: (l) => outs.push(l),
      err: (l) => errs.push(l),
      readLine: () => Promise.resolve(undefined),
    };
    const argv = (backend: string) => [
      'enroll',
      '--backend',
      backend,
      '--code',
      'ABCDEFGHJK',
      '--reader-serial',
      'R1',
      '--reader-ca',
      '/nonexistent/ca.pem',
      '--reader-path',
      '/dev/null',
    ];
    expect(await runCli(argv('http://am.example.com'), io)).toBe(2);
    expect(errs[0]).toMatch(/^pos-terminal: POS_ERR_DESKTOP_BACKEND_INSECURE: /);
    expect(errs[0]).not.toContain('am.example.com');
    expect(outs).toEqual([]);
    // https and loopback http pass the rule (and stop later, at the unreadable CA file)
    for (const ok of ['https://am.example.com', 'http://127.0.0.1:1']) {
      errs.length = 0;
      expect(await runCli(argv(ok), io)).toBe(2);
      expect(errs[0]).toMatch(/^pos-terminal: POS_ERR_DESKTOP_CLI_USAGE: --reader-ca/);
    }
  });
});
