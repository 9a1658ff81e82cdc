/**
 * `pos-backend --metrics-token-file FILE` / env POS_METRICS_TOKEN_FILE: the scrape token of /metrics
 * read from a file before the service starts (unreadable or malformed: exit 1, one coded line, no
 * stack, never the file's contents, nothing created); with it /metrics needs the token over real HTTP;
 * without it, a non-loopback --host outside --dev warns once that /metrics is public.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLoopbackHost } from '../src/cli/metrics-token';
import { runCli } from '../src/cli/main';
import { capture, runBin, STACK_RE, startService as start, useTempRoots } from './cli-helpers';

const PUBLIC_WARNING_RE = /^WARNING: \/metrics is public\b/;
const TOKEN = randomBytes(32).toString('hex'); // 64 characters, as `openssl rand -hex 32` makes
const masterKeyEnv = (): Record<string, string> => ({
  POS_LOG_LEVEL: 'silent',
  POS_MASTER_KEY: randomBytes(32).toString('base64url'),
});

const tempRoot = useTempRoots('pos-backend-mt-');
function tokenFile(root: string, content: string | Buffer, name = 'metrics.token'): string {
  const file = join(root, name);
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

describe('pos-backend --metrics-token-file', () => {
  it('the bin refuses an unreadable file: exit 1, one coded line naming the option, no stack, nothing created', async () => {
    const { root, dataDir } = tempRoot();
    const missing = join(root, 'no-such.token');
    const res = await runBin(['--data-dir', dataDir, '--metrics-token-file', missing], masterKeyEnv());
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^pos-backend: POS_ERR_METRICS_TOKEN_INVALID: the --metrics-token-file file .+ cannot be read \(ENOENT\)$/,
    );
    expect(res.stderr).not.toMatch(STACK_RE);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('the bin refuses a malformed token from POS_METRICS_TOKEN_FILE: exit 1, one coded line, never the file contents', async () => {
    const { root, dataDir } = tempRoot();
    const secretish = `${TOKEN} and more`; // a space: not one token
    const file = tokenFile(root, `${secretish}\n`);
    const res = await runBin(['--data-dir', dataDir], { ...masterKeyEnv(), POS_METRICS_TOKEN_FILE: file });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^pos-backend: POS_ERR_METRICS_TOKEN_INVALID: the POS_METRICS_TOKEN_FILE file /);
    expect(lines[0]).toContain('32 to 1024 visible ASCII characters');
    expect(res.stderr).not.toContain(TOKEN);
    expect(res.stderr).not.toMatch(STACK_RE);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('refuses every malformed file with one coded line and exit 1, before the data directory is made', async () => {
    const { root, dataDir } = tempRoot();
    const dir = join(root, 'a-directory');
    mkdirSync(dir);
    const bad: [string, string][] = [
      ['empty', tokenFile(root, '', 'empty')],
      ['short', tokenFile(root, `${'a'.repeat(31)}\n`, 'short')],
      ['two lines', tokenFile(root, `${TOKEN}\n${TOKEN}\n`, 'two-lines')],
      ['blank second line', tokenFile(root, `${TOKEN}\n\n`, 'blank-line')],
      ['leading space', tokenFile(root, ` ${TOKEN}\n`, 'leading-space')],
      ['tab', tokenFile(root, `${TOKEN}\t\n`, 'tab')],
      ['not ASCII', tokenFile(root, `${'é'.repeat(40)}\n`, 'not-ascii')],
      ['over 1 KiB', tokenFile(root, `${'a'.repeat(1024)}\n`, 'too-big')],
      ['a directory', dir],
    ];
    for (const [what, file] of bad) {
      const io = capture();
      const run = await runCli(['--data-dir', dataDir, '--port', '0', '--metrics-token-file', file], io, {
        ...masterKeyEnv(),
      });
      expect(run.code, what).toBe(1);
      expect(run.stop, what).toBeUndefined();
      expect(io.outLines, what).toEqual([]);
      expect(io.errLines, what).toHaveLength(1);
      expect(io.errLines[0], what).toMatch(
        /^pos-backend: POS_ERR_METRICS_TOKEN_INVALID: the --metrics-token-file /,
      );
      expect(io.errLines[0], what).not.toContain(TOKEN);
    }
    expect(existsSync(dataDir)).toBe(false);
  });

  it('with a token file /metrics needs the token over HTTP; 32 or 1024 characters, a CRLF ending or none are fine', async () => {
    const { root, dataDir } = tempRoot();
    const env = masterKeyEnv();
    for (const [token, ending] of [
      [TOKEN, '\n'],
      [TOKEN, '\r\n'],
      ['~'.repeat(1024), ''],
      [TOKEN.slice(0, 32), ''],
    ] as const) {
      const file = tokenFile(root, `${token}${ending}`);
      const run = await start(['--data-dir', dataDir, '--metrics-token-file', file], env);
      try {
        expect(run.code).toBe(0);
        expect(run.err.filter((l) => PUBLIC_WARNING_RE.test(l))).toEqual([]);
        const none = await fetch(`${run.url}/metrics`);
        expect(none.status).toBe(401);
        expect(none.headers.get('www-authenticate')).toBe('Bearer');
        expect(((await none.json()) as { error: { code: string } }).error.code).toBe(
          'POS_ERR_METRICS_UNAUTHORIZED',
        );
        const right = await fetch(`${run.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
        expect(right.status).toBe(200);
        expect(await right.text()).toContain('pos_http_requests_total');
        // Only /metrics: the health probes stay open.
        expect((await fetch(`${run.url}/healthz`)).status).toBe(200);
      } finally {
        await run.stop();
      }
    }
  });

  it('a token file other users may read is used, with one warning saying how to close it', async () => {
    const { root, dataDir } = tempRoot();
    const env = masterKeyEnv();
    const file = tokenFile(root, `${TOKEN}\n`);
    const shared = (lines: string[]): string[] =>
      lines.filter((l) => l.includes('may be read by other users'));
    const closed = await start(['--data-dir', dataDir, '--metrics-token-file', file], env);
    await closed.stop();
    expect(closed.code).toBe(0);
    expect(shared(closed.err)).toEqual([]);
    chmodSync(file, 0o644);
    const open = await start(['--data-dir', dataDir], { ...env, POS_METRICS_TOKEN_FILE: file });
    try {
      expect(open.code).toBe(0);
      expect(shared(open.err)).toEqual([
        `WARNING: the POS_METRICS_TOKEN_FILE file may be read by other users (group or world permission bits): chmod 600 ${file}.`,
      ]);
      expect(open.err.join('\n')).not.toContain(TOKEN);
      const ok = await fetch(`${open.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(ok.status).toBe(200);
    } finally {
      await open.stop();
    }
  });

  it('POS_METRICS_TOKEN_FILE works the same; --metrics-token-file wins over it', async () => {
    const { root, dataDir } = tempRoot();
    const file = tokenFile(root, `${TOKEN}\n`);
    const other = `${TOKEN.slice(1)}z`;
    const otherFile = tokenFile(root, `${other}\n`, 'other.token');
    const fromEnv = await start(['--data-dir', dataDir], { ...masterKeyEnv(), POS_METRICS_TOKEN_FILE: file });
    const env = fromEnv.url;
    const envKey = masterKeyEnv();
    try {
      expect(fromEnv.code).toBe(0);
      expect((await fetch(`${env}/metrics`)).status).toBe(401);
      const ok = await fetch(`${env}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(ok.status).toBe(200);
    } finally {
      await fromEnv.stop();
    }
    const { dataDir: second } = tempRoot();
    const both = await start(['--data-dir', second, '--metrics-token-file', otherFile], {
      ...envKey,
      POS_METRICS_TOKEN_FILE: file,
    });
    try {
      expect(both.code).toBe(0);
      const withEnvToken = await fetch(`${both.url}/metrics`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(withEnvToken.status).toBe(401);
      const withOption = await fetch(`${both.url}/metrics`, {
        headers: { authorization: `Bearer ${other}` },
      });
      expect(withOption.status).toBe(200);
    } finally {
      await both.stop();
    }
  });
});

describe('pos-backend: /metrics public on a non-loopback address or behind a reverse proxy', () => {
  const warnings = (lines: string[]): string[] => lines.filter((l) => PUBLIC_WARNING_RE.test(l));

  it('warns once at start, saying how to protect it, when listening on 0.0.0.0 without a token or --dev', async () => {
    const { dataDir } = tempRoot();
    const run = await start(['--data-dir', dataDir, '--host', '0.0.0.0'], masterKeyEnv());
    try {
      expect(run.code).toBe(0);
      const found = warnings(run.err);
      expect(found).toHaveLength(1);
      expect(found[0]).toContain('0.0.0.0');
      expect(found[0]).toContain('--metrics-token-file FILE');
      expect(found[0]).toContain('POS_METRICS_TOKEN_FILE');
      // Still public, as before.
      const port = new URL(run.url ?? '').port;
      expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(200);
    } finally {
      await run.stop();
    }
  });

  it('warns once behind a reverse proxy (--trust-proxy) without a token, also on loopback; once when both apply', async () => {
    const { root } = tempRoot();
    const env = masterKeyEnv();
    const cases: [string, string[], string][] = [
      [
        '--trust-proxy on loopback',
        ['--trust-proxy'],
        'the service is behind a reverse proxy (--trust-proxy)',
      ],
      [
        '--trust-proxy on 0.0.0.0',
        ['--trust-proxy', '--host', '0.0.0.0'],
        'the service listens on 0.0.0.0 (not loopback only) and is behind a reverse proxy (--trust-proxy)',
      ],
    ];
    for (const [what, args, reason] of cases) {
      const run = await start(['--data-dir', join(root, 'data'), ...args], env);
      try {
        expect(run.code, what).toBe(0);
        const found = warnings(run.err);
        expect(found, what).toHaveLength(1);
        expect(found[0], what).toContain(reason);
        expect(found[0], what).toContain('--metrics-token-file FILE');
      } finally {
        await run.stop();
      }
    }
  });

  it('does not warn on loopback, with a token, or with --dev', async () => {
    const { root, dataDir } = tempRoot();
    const env = masterKeyEnv();
    const file = tokenFile(root, `${TOKEN}\n`);
    const cases: [string, string[]][] = [
      ['loopback (default host)', ['--data-dir', dataDir]],
      ['token on 0.0.0.0', ['--data-dir', dataDir, '--host', '0.0.0.0', '--metrics-token-file', file]],
      ['--dev on 0.0.0.0', ['--data-dir', join(root, 'dev'), '--host', '0.0.0.0', '--dev']],
      ['token with --trust-proxy', ['--data-dir', dataDir, '--trust-proxy', '--metrics-token-file', file]],
      ['--dev with --trust-proxy', ['--data-dir', join(root, 'dev'), '--trust-proxy', '--dev']],
    ];
    for (const [what, args] of cases) {
      const run = await start(args, env);
      try {
        expect(run.code, what).toBe(0);
        expect(warnings(run.err), what).toEqual([]);
      } finally {
        await run.stop();
      }
    }
  });

  it('counts 127.0.0.0/8, ::1 (also written out or IPv4-mapped) and localhost as loopback, nothing else', () => {
    for (const host of [
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '0:0:0:0:0:0:0:1',
      '::ffff:127.0.0.1',
      'localhost',
      'LOCALHOST',
    ])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of [
      '0.0.0.0',
      '::',
      '10.0.0.5',
      '192.168.1.1',
      '::ffff:10.0.0.1',
      'am.example.com',
      'localhost.example.com',
    ])
      expect(isLoopbackHost(host), host).toBe(false);
  });
});
