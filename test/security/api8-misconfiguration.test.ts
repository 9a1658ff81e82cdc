/**
 * API8:2023 Security Misconfiguration, against the real back-end on a loopback socket and the real
 * `pos-backend` command: security headers on every route (the dashboard's strict CSP), no CORS
 * (a foreign origin is never granted anything), the session cookie's attributes, errors that carry a
 * code and never a stack, SQL or a file path, and the command's production posture (loopback listener
 * behind a TLS proxy by default, development switches refused without --dev, a bad master key refused).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
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
}

/**
 * Runs the real `pos-backend` bin; a server that starts is asked `probe` once (which also lets it
 * install its signal handlers), then sent SIGTERM.
 */
function runBin(
  args: string[],
  env: Record<string, string | undefined> = {},
  probe = '/healthz',
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
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
      const nl = stdout.indexOf('\n');
      if (nl >= 0 && url === undefined) {
        url = (JSON.parse(stdout.slice(0, nl)) as { url: string }).url;
        void (async () => {
          try {
            const r = await fetch(`${url}${probe}`);
            answered = {
              status: r.status,
              headers: r.headers,
              text: await r.text(),
              json: undefined,
              code: undefined,
            };
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
    const run = await runBin(['--data-dir', dir, '--port', '0'], { POS_MASTER_KEY: undefined });
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/WARNING: generated a DEVELOPMENT master key/);
    expect(run.stderr).toMatch(/in production set POS_MASTER_KEY/);
    expect(statSync(join(dir, 'master.key')).mode & 0o077).toBe(0);
    expect(statSync(dir).mode & 0o077).toBe(0);
  });
});
