/**
 * API8:2023 Security Misconfiguration, against the real back-end on a loopback socket and the real
 * `pos-backend` command: security headers on every route (the dashboard's strict CSP), no CORS
 * (a foreign origin is never granted anything), the session cookie's attributes, errors that carry a
 * code and never a stack, SQL or a file path, and the command's production posture (loopback listener
 * behind a TLS proxy by default, development switches refused without --dev, a bad master key refused).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type ConnectionOptions } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_CSP } from '../../backend/src/server/routes/dashboard';
import { DEFAULT_CONFIG } from '../../backend/src/server/context';
import { describeRes, startSecurityHarness, type Method, type Res, type SecurityHarness } from './harness';

const FOREIGN = 'https://evil.example';

/** Every documented route (path parameters filled) plus the undocumented pages. */
async function everyRoute(sec: SecurityHarness): Promise<{ method: Method; path: string }[]> {
  const doc = (await sec.request('GET', '/openapi.json')).json as { paths: Record<string, object> };
  const out: { method: Method; path: string }[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const m of Object.keys(ops)) {
      if (path === '/v1/events') continue; // a stream; its headers are checked on a refused request
      out.push({ method: m.toUpperCase() as Method, path: path.replace(/\{[^}]+\}/g, 'x1') });
    }
  }
  out.push(
    { method: 'GET', path: '/dashboard/' },
    { method: 'GET', path: '/docs/' },
    { method: 'GET', path: '/v1/no-such-route' },
    { method: 'GET', path: '/v1/events' },
  );
  return out;
}

function expectSecurityHeaders(res: Res, what: string): void {
  const h = res.headers;
  expect(h.get('x-content-type-options'), what).toBe('nosniff');
  const csp = h.get('content-security-policy') ?? '';
  expect(csp, `${what}: CSP`).toMatch(/default-src '(self|none)'/);
  expect(csp, `${what}: CSP frame-ancestors`).toMatch(/frame-ancestors '(self|none)'/);
  expect(csp).not.toMatch(/unsafe-eval/);
  expect(['DENY', 'SAMEORIGIN'], `${what}: X-Frame-Options`).toContain(h.get('x-frame-options'));
  expect(h.get('referrer-policy'), what).toBe('no-referrer');
  const hsts = /max-age=(\d+)/.exec(h.get('strict-transport-security') ?? '');
  expect(Number(hsts?.[1] ?? 0), `${what}: HSTS`).toBeGreaterThanOrEqual(180 * 24 * 3600);
  expect(h.get('cross-origin-opener-policy'), what).toBe('same-origin');
  expect(h.get('x-powered-by'), what).toBeNull();
  expect(h.get('server'), what).toBeNull();
  // No CORS: a foreign origin is never let read an answer.
  expect(h.get('access-control-allow-origin'), `${what}: CORS`).toBeNull();
  expect(h.get('access-control-allow-credentials'), `${what}: CORS`).toBeNull();
}

describe('API8:2023 Security Misconfiguration: headers, CORS, cookies', () => {
  let sec: SecurityHarness;
  beforeAll(async () => {
    sec = await startSecurityHarness();
  });
  afterAll(async () => {
    await sec.close();
  });

  it('every route answers with the security headers, for callers with and without credentials', async () => {
    const routes = await everyRoute(sec);
    expect(routes.length).toBeGreaterThan(40);
    for (const r of routes) {
      for (const as of [undefined, 'admin'] as const) {
        const res = await sec.request(r.method, r.path, {
          ...(as === undefined ? {} : { as }),
          ...(r.method === 'GET' || r.method === 'DELETE' ? {} : { body: {} }),
          headers: { origin: FOREIGN },
        });
        expectSecurityHeaders(res, `${r.method} ${r.path} as ${as ?? 'nobody'}: ${describeRes(res)}`);
      }
    }
  });

  it('the dashboard carries its strict CSP: nothing inline, no framing, this origin only', async () => {
    for (const path of ['/dashboard', '/dashboard/', '/dashboard/index.html', '/dashboard/assets/none.js']) {
      const res = await sec.request('GET', path);
      expect(res.headers.get('content-security-policy'), path).toBe(DASHBOARD_CSP);
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
    }
    expect(DASHBOARD_CSP).toContain("frame-ancestors 'none'");
    expect(DASHBOARD_CSP).toContain("script-src 'self'");
    expect(DASHBOARD_CSP).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
  });

  it('CORS: a preflight from a foreign origin grants nothing', async () => {
    for (const path of ['/v1/merchants', '/v1/auth/login', '/v1/halts', '/v1/transactions']) {
      // The harness speaks the API's methods; a preflight is OPTIONS, so plain fetch.
      const res = await fetch(`${sec.base}${path}`, {
        method: 'OPTIONS',
        headers: {
          origin: FOREIGN,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type, authorization, x-csrf-token',
        },
      });
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-methods')).toBeNull();
      expect(res.headers.get('access-control-allow-headers')).toBeNull();
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    }
  });

  it('a cookie-authenticated change from a foreign page (no CSRF token) is refused', async () => {
    const p = sec.principals.admin;
    const res = await sec.request('POST', '/v1/merchants', {
      body: { name: 'csrf' },
      headers: { cookie: p.session.cookie, origin: FOREIGN },
    });
    expect(res.status).toBe(403);
    expect(res.code).toBe('POS_ERR_CSRF');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('the session cookie is __Host-, Secure, HttpOnly, SameSite=Strict, Path=/', () => {
    const set = sec.principals.operatorA.session.setCookie;
    expect(set).toMatch(/^__Host-/);
    for (const attribute of ['Secure', 'HttpOnly', 'SameSite=Strict', 'Path=/'])
      expect(set).toContain(attribute);
    expect(set).not.toMatch(/Domain=/i);
  });
});

describe('API8:2023 Security Misconfiguration: error detail', () => {
  let sec: SecurityHarness;
  beforeAll(async () => {
    sec = await startSecurityHarness();
  });
  afterAll(async () => {
    await sec.close();
  });

  const LEAKS = [
    /\bat \S+ \(/, // a stack frame
    /\.tsx?\b|\.js:\d+/, // a source file
    /\/work\/|\/home\/|node_modules|\/tmp\//, // a path
    /\bSELECT\b|\bINSERT\b|\bFROM\b|sqlite|SQLITE_|postgres/i, // SQL or the engine
    /zod|ZodError|instancePath|must match pattern|FST_ERR/, // validator internals
  ];
  function expectNoDetail(res: Res, what: string): void {
    for (const re of LEAKS) expect(res.text, `${what}: ${re.source}`).not.toMatch(re);
    const body = res.json as { error?: Record<string, unknown> };
    expect(Object.keys(body.error ?? {}).sort(), what).toEqual(['code', 'message', 'requestId']);
  }

  it('a failure inside the service is 500 POS_ERR_INTERNAL with a request id, nothing of the failure', async () => {
    const store = sec.h.store;
    const original = store.listReferenceValues.bind(store);
    store.listReferenceValues = () =>
      Promise.reject(
        new Error(
          'SQLITE_ERROR: SELECT document FROM reference_values WHERE x = 1 at /work/main/backend/src/store/sqlite.ts:123',
        ),
      );
    try {
      const c = await sec.request('POST', '/v1/challenges', {
        body: { terminalId: sec.tenants.A.terminalId },
      });
      const challenge = (c.json as { challenge: string }).challenge;
      const t = sec.tenants.A.terminal;
      const res = await sec.terminal(t, 'POST', '/v1/attestations', {
        evidence: t.evidence(challenge, 'periodic'),
      });
      expect(res.status).toBe(500);
      expect(res.code).toBe('POS_ERR_INTERNAL');
      expectNoDetail(res, 'internal');
      expect(res.text).not.toContain('reference_values');
    } finally {
      store.listReferenceValues = original;
    }
  });

  it('4xx answers name a code, never the offending input or the validator', async () => {
    const cases: [Method, string, unknown][] = [
      ['POST', '/v1/merchants', { name: 7, extra: '/etc/passwd' }],
      ['POST', '/v1/merchants', '{"name":'],
      [
        'POST',
        '/v1/enrollments',
        { code: "pos_enr_' OR 1=1 --", deviceJwk: {}, readerSerial: '../../x', evidence: 'x' },
      ],
      ['POST', '/v1/reference-values', { version: '<script>', build: 'debug', codeHashes: [] }],
      ['GET', "/v1/terminals/trm_'%20OR%201=1", undefined],
      ['GET', '/v1/terminals?limit=abc', undefined],
      ['POST', '/v1/auth/login', { username: 'x', password: 'y' }],
      ['DELETE', '/v1/tokens/../../etc', undefined],
    ];
    for (const [method, path, body] of cases) {
      const res = await sec.request(method, path, { as: 'admin', ...(body === undefined ? {} : { body }) });
      expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expectNoDetail(res, `${method} ${path}`);
      expect(res.text).not.toMatch(/passwd|OR 1=1|<script>|\.\.\//);
    }
  });
});

const BIN = fileURLToPath(new URL('../../backend/bin/pos-backend.js', import.meta.url));
const MASTER_KEY = 'k'.repeat(43);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The listening URL, when the server started (it is stopped at once). */
  url?: string;
  /** What the running server answered, before it was stopped. */
  answered?: Res;
  /** What a probe function threw while the server ran. */
  probeError?: unknown;
}

/**
 * Runs the real `pos-backend` bin; a server that starts is asked `probe` once (a path fetched, or a
 * function given the listening URL; either also lets it install its signal handlers), then sent SIGTERM.
 */
function runBin(
  args: string[],
  env: Record<string, string | undefined> = {},
  probe: string | ((url: string) => Promise<void>) = '/healthz',
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, DATABASE_URL: undefined, POS_LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let url: string | undefined;
    let answered: Res | undefined;
    let probeError: unknown;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
      const nl = stdout.indexOf('\n');
      if (nl >= 0 && url === undefined) {
        url = (JSON.parse(stdout.slice(0, nl)) as { url: string }).url;
        void (async () => {
          try {
            if (typeof probe === 'function') {
              await probe(url);
              return;
            }
            const r = await fetch(`${url}${probe}`);
            answered = {
              status: r.status,
              headers: r.headers,
              text: await r.text(),
              json: undefined,
              code: undefined,
            };
          } catch (e) {
            probeError = e;
          } finally {
            child.kill('SIGTERM');
          }
        })();
      }
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      resolve({
        code,
        stdout,
        stderr,
        ...(url === undefined ? {} : { url }),
        ...(answered === undefined ? {} : { answered }),
        ...(probeError === undefined ? {} : { probeError }),
      }),
    );
  });
}

describe('API8:2023 Security Misconfiguration: the pos-backend command in production', () => {
  const dirs: string[] = [];
  const dataDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'pos-sec-cli-'));
    dirs.push(d);
    return join(d, 'data');
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('development switches are refused without --dev: --dev-ticket-lifetime and its environment variable', async () => {
    const flag = await runBin(['--data-dir', dataDir(), '--port', '0', '--dev-ticket-lifetime', '5'], {
      POS_MASTER_KEY: MASTER_KEY,
    });
    expect(flag.code).toBe(2);
    expect(flag.url).toBeUndefined();
    expect(flag.stderr).toMatch(/POS_ERR_CLI_USAGE: --dev-ticket-lifetime is a development option/);
    const env = await runBin(['--data-dir', dataDir(), '--port', '0'], {
      POS_MASTER_KEY: MASTER_KEY,
      POS_DEV_TICKET_LIFETIME_S: '5',
    });
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/needs --dev/);
    for (const run of [flag, env]) expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('a master key that does not parse is refused (exit 1), and no development key is made in its place', async () => {
    const dir = dataDir();
    const run = await runBin(['--data-dir', dir, '--port', '0'], { POS_MASTER_KEY: 'too-short' });
    expect(run.code).toBe(1);
    expect(run.url).toBeUndefined();
    expect(run.stderr).toContain('POS_ERR_MASTER_KEY_INVALID');
    expect(() => statSync(join(dir, 'master.key'))).toThrow();
  });

  it('no master key without --dev: refused (exit 1, one coded line, no stack), nothing made in its place', async () => {
    const dir = dataDir();
    const run = await runBin(['--data-dir', dir, '--port', '0'], {
      POS_MASTER_KEY: undefined,
      POS_MASTER_KEY_FILE: undefined,
    });
    expect(run.code).toBe(1);
    expect(run.url).toBeUndefined();
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/POS_ERR_MASTER_KEY_REQUIRED/);
    // It says how to make one and how to pass it.
    expect(run.stderr).toMatch(/pos-backend master-key/);
    expect(run.stderr).toMatch(/--master-key-file/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    // Refused before anything is written: no data directory, so no development key either.
    expect(() => statSync(dir)).toThrow();
  });

  it('by default: not in development mode, a loopback-only plain-HTTP listener (TLS is the proxy in front), headers on', async () => {
    expect(DEFAULT_CONFIG.development).toBe(false);
    const run = await runBin(
      ['--data-dir', dataDir(), '--port', '0'],
      { POS_MASTER_KEY: MASTER_KEY },
      '/healthz',
    );
    expect(run.code).toBe(0);
    expect(run.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(run.stderr).not.toMatch(/development mode|DEVELOPMENT master key/);
    expect(run.answered?.status).toBe(200);
    const hsts = run.answered?.headers.get('strict-transport-security') ?? '';
    expect(hsts).toMatch(/max-age=\d+/);
    expect(run.answered?.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('without a master key the command says loudly it runs on a development key (0600, in the data directory)', async () => {
    const dir = dataDir();
    // --dev: without it and without a key the command refuses (backend/test/cli-master-key.test.ts).
    const run = await runBin(['--data-dir', dir, '--port', '0', '--dev'], { POS_MASTER_KEY: undefined });
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/WARNING: generated a DEVELOPMENT master key/);
    expect(run.stderr).toMatch(/in production set POS_MASTER_KEY/);
    expect(statSync(join(dir, 'master.key')).mode & 0o077).toBe(0);
    expect(statSync(dir).mode & 0o077).toBe(0);
  });
});

const HAS_OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
if (!HAS_OPENSSL) console.log('skipped the TLS settings tests: the openssl command is not installed');

/** A self-signed P-256 certificate for localhost and 127.0.0.1 (PEM files in `dir`). */
function selfSigned(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const made = spawnSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'],
      ...['-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  if (made.status !== 0) throw new Error(`openssl req failed: ${made.stderr.toString('utf8')}`);
  return { cert, key };
}

/**
 * One TLS connection: the negotiated protocol and the raw HTTP answer to GET /healthz (all that came
 * before the connection closed); rejects when the handshake fails.
 */
function tlsGet(url: string, options: ConnectionOptions): Promise<{ protocol: string | null; text: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let protocol: string | null | undefined;
    let text = '';
    const socket = tlsConnect(
      { host: hostname, port: Number(port), servername: 'localhost', ...options },
      () => {
        protocol = socket.getProtocol();
        socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      },
    );
    socket.on('data', (d: Buffer) => (text += d.toString('utf8')));
    socket.once('error', (e: Error) => {
      if (protocol === undefined) reject(e);
    });
    socket.once('close', () => {
      if (protocol !== undefined) resolve({ protocol, text });
    });
    // A safety net against a hung socket, not an assertion on speed.
    socket.setTimeout(20_000, () => socket.destroy(new Error('no answer')));
  });
}

/** Plain HTTP to `url`'s port: whatever comes back before the connection closes. */
function plainGet(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    let text = '';
    const socket = netConnect({ host: hostname, port: Number(port) }, () => {
      socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.once('error', () => resolve(text));
    socket.once('close', () => resolve(text));
    socket.setTimeout(30_000, () => socket.destroy());
  });
}

/** A TLS 1.0/1.1-only client: it really offers TLS 1.1 (Node's client refuses it by default). */
const OLD_CLIENT: ConnectionOptions = {
  minVersion: 'TLSv1',
  maxVersion: 'TLSv1.1',
  ciphers: 'DEFAULT@SECLEVEL=0',
  rejectUnauthorized: false,
};

describe.skipIf(!HAS_OPENSSL)('TLS settings (production mode)', () => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'pos-sec-tls-'));
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('--tls-cert/--tls-key: an https listener; TLS 1.2 and 1.3 clients get /healthz with HSTS, TLS 1.1 and plain HTTP do not', async () => {
    const dir = tempDir();
    const { cert, key } = selfSigned(dir, 'server');
    const ca = readFileSync(cert);
    // The control: this machine's TLS stack can speak TLS 1.1 with OLD_CLIENT at all (else the refusal
    // below would prove nothing about the service).
    const control = createTlsServer({
      cert: ca,
      key: readFileSync(key),
      minVersion: 'TLSv1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    // It answers once the request is in (ending before the client wrote would race its write).
    control.on('secureConnection', (s) =>
      s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n')),
    );
    await new Promise<void>((r) => control.listen(0, '127.0.0.1', r));
    const controlAddress = control.address();
    const controlPort =
      typeof controlAddress === 'object' && controlAddress !== null ? controlAddress.port : 0;
    const oldOnControl = await tlsGet(`https://127.0.0.1:${controlPort}`, OLD_CLIENT).finally(
      () => new Promise((r) => control.close(r)),
    );
    expect(oldOnControl.protocol).toBe('TLSv1.1');

    const seen: {
      tls12?: { protocol: string | null; text: string };
      tls13?: { protocol: string | null; text: string };
      old?: unknown;
      plain?: string;
    } = {};
    const run = await runBin(
      ['--data-dir', join(dir, 'data'), '--port', '0', '--tls-cert', cert, '--tls-key', key],
      { POS_MASTER_KEY: MASTER_KEY },
      async (url) => {
        seen.tls12 = await tlsGet(url, { ca, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
        seen.tls13 = await tlsGet(url, { ca, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
        seen.old = await tlsGet(url, OLD_CLIENT).then(
          (answer) => answer,
          (e: unknown) => e,
        );
        seen.plain = await plainGet(url);
      },
    );
    expect(run.probeError).toBeUndefined();
    expect(run.code).toBe(0);
    expect(run.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    for (const [answer, protocol] of [
      [seen.tls12, 'TLSv1.2'],
      [seen.tls13, 'TLSv1.3'],
    ] as const) {
      // Verified against the certificate as the only CA (rejectUnauthorized is on by default).
      expect(answer?.protocol).toBe(protocol);
      expect(answer?.text).toMatch(/^HTTP\/1\.1 200 /);
      expect(answer?.text).toMatch(/\r\nstrict-transport-security: max-age=\d+/i);
    }
    // The server refused the handshake: the client got its protocol-version alert.
    expect(seen.old).toBeInstanceOf(Error);
    expect((seen.old as Error & { code?: string }).code).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
    expect(seen.plain).not.toMatch(/^HTTP\/1\.[01] 200/);
    expect(seen.plain).not.toContain('"status"');
    expect(run.stderr).not.toContain('PRIVATE KEY');
  }, 120_000);

  it('only one of --tls-cert and --tls-key: a usage error (exit 2), the server does not start', async () => {
    const dir = tempDir();
    const { cert, key } = selfSigned(dir, 'server');
    for (const args of [
      ['--tls-cert', cert],
      ['--tls-key', key],
    ]) {
      const run = await runBin(['--data-dir', join(dir, 'data'), '--port', '0', ...args], {
        POS_MASTER_KEY: MASTER_KEY,
      });
      expect(run.code).toBe(2);
      expect(run.url).toBeUndefined();
      expect(run.stderr).toMatch(/POS_ERR_CLI_USAGE: --tls-cert and --tls-key go together/);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('an unreadable or invalid certificate or key: a coded error (exit 1), no stack, no key material', async () => {
    const dir = tempDir();
    const { cert, key } = selfSigned(dir, 'server');
    const other = selfSigned(dir, 'other');
    const notAFile = join(dir, 'a-directory');
    mkdirSync(notAFile);
    for (const [args, expected] of [
      [
        ['--tls-cert', cert, '--tls-key', join(dir, 'missing.key')],
        /POS_ERR_TLS_FILE_UNREADABLE: the --tls-key/,
      ],
      [['--tls-cert', cert, '--tls-key', notAFile], /POS_ERR_TLS_FILE_UNREADABLE: the --tls-key/],
      [
        ['--tls-cert', join(dir, 'missing.crt'), '--tls-key', key],
        /POS_ERR_TLS_FILE_UNREADABLE: the --tls-cert/,
      ],
      [['--tls-cert', key, '--tls-key', key], /POS_ERR_TLS_INVALID: the --tls-cert file/],
      [['--tls-cert', cert, '--tls-key', cert], /POS_ERR_TLS_INVALID: the --tls-key file/],
      [
        ['--tls-cert', cert, '--tls-key', other.key],
        /POS_ERR_TLS_INVALID: the --tls-key key does not belong/,
      ],
    ] as const) {
      const run = await runBin(['--data-dir', join(dir, 'data'), '--port', '0', ...args], {
        POS_MASTER_KEY: MASTER_KEY,
      });
      expect(run.code, args.join(' ')).toBe(1);
      expect(run.url).toBeUndefined();
      expect(run.stderr).toMatch(expected);
      expect(run.stderr).not.toMatch(/\n\s+at /);
      expect(run.stderr).not.toContain('PRIVATE KEY');
    }
  });
});
