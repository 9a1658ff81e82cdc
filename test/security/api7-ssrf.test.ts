/**
 * API7:2023 Server Side Request Forgery. The back-end fetches no URL a caller gives it: the only
 * outbound connections of the server are to its PostgreSQL database, whose URL the operator sets on
 * the command line or in the environment (never over the API); release data (reference values,
 * policies) is data, not a link; key material comes in the body (a device JWK, a reader chain), never
 * from a URL (no jku/x5u/JWKS URL is honoured).
 *
 * Two proofs: a static inventory of the modules that can open a connection (a new one fails the
 * test), and a canary: a loopback listener that records every connection, whose URL goes into every
 * string field of every route's body, query, path and headers, into evidence, proofs and tickets
 * (jku/x5u); it must record nothing.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRes, startSecurityHarness, type Method, type SecurityHarness } from './harness';

const BACKEND_SRC = fileURLToPath(new URL('../../backend/src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.tsx?$/.test(name)) out.push(path);
  }
  return out;
}

/** What can open an outbound connection from Node: the modules and the globals. */
const NETWORK_APIS: readonly RegExp[] = [
  /from '(node:)?(http|https|http2|net|tls|dgram|dns)'/,
  /from '(undici|axios|got|node-fetch|ws|jose)'/,
  /\bfetch\(/,
  /\bnew WebSocket\(/,
  /\bcreateRemoteJWKSet\b/,
  /\bnew pg\.(Client|Pool)\(/,
];

/**
 * Every place in backend/src that uses one, and why it is no SSRF. Adding a network call to the
 * back-end means adding it here, with its reason (and a test that it is allow-listed).
 */
const ALLOWED: Readonly<Record<string, string>> = {
  'server/auth/address.ts': "node:net's isIP only (classifying the client address); no connection",
  'cli/main.ts': "node:net's createServer only (finding a free port to listen on); no outbound connection",
  'cli/metrics-token.ts':
    "node:net's isIP and BlockList only (is the listening address loopback? for the public-/metrics warning); no connection",
  'server/app.ts':
    "node:https's types only (import type, the server's TLS options for --tls-cert/--tls-key); no connection",
  'cli/database.ts':
    'PostgreSQL at the operator-configured --database-url / DATABASE_URL (never from the API)',
  'store/postgres.ts': 'PostgreSQL pool at the operator-configured database URL',
  'store/postgres-bus.ts': 'PostgreSQL LISTEN/NOTIFY at the operator-configured database URL',
  'fleet/push.ts':
    "the ws package's types only (import type): the server accepts push connections, never dials",
  'fleet/push-client.ts':
    "the terminal side of the push connection (used by desktop and tests, never imported by the server's modules)",
};

/** The relative import specifiers of a module. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/from '(\.{1,2}\/[^']+)'/g)].map((m) => m[1] ?? '');
}

function resolveImport(from: string, spec: string): string {
  const base = join(from, '..', spec);
  for (const candidate of [`${base}.ts`, join(base, 'index.ts'), base]) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // next candidate
    }
  }
  return `${base}.ts`;
}

/** backend/src modules reachable from the server's entry points (buildApp and the CLI). */
function serverModules(): Set<string> {
  const seen = new Set<string>();
  const queue = [join(BACKEND_SRC, 'server/app.ts'), join(BACKEND_SRC, 'cli/main.ts')];
  while (queue.length > 0) {
    const file = queue.pop() ?? '';
    if (seen.has(file) || !file.startsWith(BACKEND_SRC)) continue;
    seen.add(file);
    for (const spec of importsOf(file)) queue.push(resolveImport(file, spec));
  }
  return seen;
}

describe('API7:2023 Server Side Request Forgery: what in the back-end can open a connection', () => {
  it('every network API in backend/src is in the allow-list, with its reason', () => {
    const found = new Map<string, string[]>();
    for (const file of sourceFiles(BACKEND_SRC)) {
      const rel = relative(BACKEND_SRC, file).split('\\').join('/');
      const text = readFileSync(file, 'utf8');
      const hits = NETWORK_APIS.filter((re) => re.test(text)).map((re) => re.source);
      if (hits.length > 0) found.set(rel, hits);
    }
    const unexpected = [...found.keys()].filter((f) => ALLOWED[f] === undefined);
    expect(unexpected, `network APIs outside the allow-list: ${JSON.stringify([...found])}`).toEqual([]);
    // The allow-list holds no stale entries either (so it stays a true inventory).
    expect([...found.keys()].sort()).toEqual(Object.keys(ALLOWED).sort());
  });

  it('node:net in the server is used for isIP, BlockList and a listening socket only, never to connect', () => {
    for (const rel of ['server/auth/address.ts', 'cli/main.ts', 'cli/metrics-token.ts']) {
      const text = readFileSync(join(BACKEND_SRC, rel), 'utf8');
      const imported = /import \{([^}]+)\} from 'node:net'/.exec(text)?.[1] ?? '';
      const names = imported.split(',').map((s) => s.trim().replace(/^type /, ''));
      expect(
        names.every((n) => n === 'isIP' || n === 'createServer' || n === 'BlockList'),
        `${rel}: ${imported}`,
      ).toBe(true);
      expect(text).not.toMatch(/\b(connect|createConnection)\(/);
    }
  });

  it('the push hub takes only types from ws (it accepts connections, it opens none)', () => {
    const text = readFileSync(join(BACKEND_SRC, 'fleet/push.ts'), 'utf8');
    const wsImports = text.split('\n').filter((l) => / from 'ws'/.test(l));
    expect(wsImports.length).toBeGreaterThan(0);
    for (const line of wsImports) expect(line).toMatch(/^import type /);
    expect(text).not.toMatch(/new WebSocket\(/);
  });

  it("the push client (outbound WebSocket) is not reachable from the server's modules", () => {
    const modules = [...serverModules()].map((f) => relative(BACKEND_SRC, f).split('\\').join('/'));
    expect(modules).toContain('server/app.ts');
    expect(modules).toContain('fleet/push.ts');
    expect(modules).not.toContain('fleet/push-client.ts');
  });

  it('the database URL comes from the command line or the environment only', () => {
    const text = readFileSync(join(BACKEND_SRC, 'cli/database.ts'), 'utf8');
    expect(text).toMatch(/DATABASE_URL/);
    for (const file of sourceFiles(join(BACKEND_SRC, 'server'))) {
      expect(readFileSync(file, 'utf8'), file).not.toMatch(/connectionString|database-url|DATABASE_URL/);
    }
  });
});

describe('API7:2023 Server Side Request Forgery: no caller-supplied URL is ever fetched', () => {
  let sec: SecurityHarness;
  let canary: Server;
  let hits = 0;
  let urls: string[] = [];
  beforeAll(async () => {
    sec = await startSecurityHarness();
    canary = createServer((socket) => {
      hits++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => canary.listen(0, '127.0.0.1', resolve));
    const address = canary.address();
    if (address === null || typeof address === 'string') throw new Error('no canary port');
    const p = address.port;
    urls = [
      `http://127.0.0.1:${p}/ssrf`,
      `https://127.0.0.1:${p}/ssrf`,
      `http://localhost:${p}/.well-known/jwks.json`,
      `ws://127.0.0.1:${p}/push`,
      `postgres://postgres@127.0.0.1:${p}/test`,
      `http://[::ffff:127.0.0.1]:${p}/`,
    ];
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => canary.close(() => resolve()));
    await sec.close();
  });

  /** Lets anything the server started in the background (a fetch after the answer) reach the canary. */
  async function settle(): Promise<void> {
    for (let i = 0; i < 5; i++) {
      await sec.request('GET', '/healthz');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('the canary records a connection (positive control)', async () => {
    await fetch(urls[0] ?? '').catch(() => undefined);
    expect(hits).toBe(1);
    hits = 0;
  });

  type Schema = {
    type?: string | string[];
    properties?: Record<string, Schema>;
    items?: Schema;
    anyOf?: Schema[];
    enum?: unknown[];
  };

  /** A value of the schema with the URL in every string (enums keep their first value). */
  function fill(schema: Schema | undefined, url: string, depth = 0): unknown {
    if (schema === undefined || depth > 6) return url;
    if (schema.enum !== undefined) return schema.enum[0];
    if (schema.anyOf !== undefined) return fill(schema.anyOf[0], url, depth + 1);
    const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
    switch (type ?? 'string') {
      case 'object': {
        const out: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(schema.properties ?? {})) out[k] = fill(v, url, depth + 1);
        // URL-ish fields no schema has: refused (strict objects) or ignored, never followed.
        out['jwks_uri'] = url;
        out['jku'] = url;
        out['callbackUrl'] = url;
        return out;
      }
      case 'array':
        return [fill(schema.items, url, depth + 1)];
      case 'integer':
      case 'number':
        return 60;
      case 'boolean':
        return true;
      default:
        return url;
    }
  }

  interface Operation {
    parameters?: { in: string; name: string }[];
    requestBody?: { content: Record<string, { schema?: Schema }> };
  }

  it('every route: the URL in every body field, query and path parameter and URL-bearing header', async () => {
    const doc = (await sec.request('GET', '/openapi.json')).json as {
      paths: Record<string, Record<string, Operation>>;
    };
    let sent = 0;
    for (const url of urls) {
      const headers = {
        'x-forwarded-host': url.replace(/^\w+:\/\//, ''),
        forwarded: `host="${url.replace(/^\w+:\/\//, '')}"`,
        origin: url,
        referer: url,
      };
      for (const [path, ops] of Object.entries(doc.paths)) {
        for (const [m, op] of Object.entries(ops)) {
          if (path === '/v1/events') continue; // a stream: its query is checked below
          const method = m.toUpperCase() as Method;
          let target = path.replace(/\{[^}]+\}/g, encodeURIComponent(url));
          const query = (op.parameters ?? []).filter((p) => p.in === 'query');
          if (query.length > 0)
            target += `?${query.map((q) => `${q.name}=${encodeURIComponent(url)}`).join('&')}`;
          const schema = op.requestBody?.content['application/json']?.schema;
          const body = method === 'GET' || method === 'DELETE' ? undefined : fill(schema, url);
          for (const as of ['admin', undefined] as const) {
            const res = await sec.request(method, target, {
              ...(as === undefined ? {} : { as }),
              ...(body === undefined ? {} : { body }),
              headers,
            });
            expect(res.status, `${method} ${target}: ${describeRes(res)}`).toBeLessThan(500);
            sent++;
          }
          if (path === '/v1/attestations' || path === '/v1/transactions') {
            const res = await sec.terminal('A', method, path, body ?? {}, { headers });
            expect(res.status, `${method} ${path} (terminal): ${describeRes(res)}`).toBeLessThan(500);
          }
        }
      }
    }
    expect(sent).toBeGreaterThan(300);
    await settle();
    expect(hits).toBe(0);
  });

  it('free-text fields that are accepted (names, reasons, labels, policies) are stored as text, never followed', async () => {
    for (const url of urls) {
      const merchant = await sec.request('POST', '/v1/merchants', { as: 'admin', body: { name: url } });
      expect(merchant.status, describeRes(merchant)).toBe(201);
      const halt = await sec.request('POST', `/v1/terminals/${sec.tenants.B.terminalId}/halt`, {
        as: 'admin',
        body: { reason: url },
      });
      expect(halt.status, describeRes(halt)).toBe(200);
      const resume = await sec.request('POST', `/v1/terminals/${sec.tenants.B.terminalId}/resume`, {
        as: 'admin',
        body: { reason: url },
      });
      expect(resume.status, describeRes(resume)).toBe(200);
      const token = await sec.request('POST', '/v1/tokens', {
        as: 'admin',
        body: { label: url, role: 'auditor', merchantId: null, expiresInS: 3600 },
      });
      expect(token.status, describeRes(token)).toBe(201);
      const login = await sec.request('POST', '/v1/auth/login', { body: { username: url, password: url } });
      expect(login.status).toBe(401);
    }
    // A policy is a document: URLs in it are values, and one naming a remote source is refused.
    const policy = await sec.request('POST', '/v1/policies', {
      as: 'admin',
      body: { policy: { version: 'ssrf-1', $ref: urls[0], source: urls[2], rules: urls[1] } },
    });
    expect(policy.status).toBe(400);
    // Reference values: a release is described by hashes, never fetched from a URL.
    const release = await sec.request('POST', '/v1/reference-values', {
      as: 'admin',
      body: {
        version: '9.9.9',
        build: 'release',
        codeHashes: ['ab'.repeat(32)],
        allowedShells: ['headless'],
        manifestUrl: urls[0],
      },
    });
    expect(release.status).toBe(400);
    expect(release.code).toBe('POS_ERR_REQUEST_INVALID');
    await settle();
    expect(hits).toBe(0);
  });

  it('keys by reference are not followed: evidence, proofs and tickets naming jku/x5u/x5c', async () => {
    const t = sec.tenants.A.terminal;
    for (const url of urls) {
      // Evidence with a key URL in its header and URLs in its claims, under the terminal's own key.
      const c = await sec.request('POST', '/v1/challenges', { body: { terminalId: t.id } });
      const challenge = (c.json as { challenge: string }).challenge;
      const claims = t.claims(challenge, 'periodic', {
        app: { version: url, build: 'release', codeHash: url },
      });
      const evidence = t.signJws(
        { alg: 'ES256', typ: 'pos-evidence+jwt', jku: url, x5u: url, kid: url },
        claims,
      );
      const res = await sec.terminal(t, 'POST', '/v1/attestations', { evidence });
      expect(res.status, describeRes(res)).toBeLessThan(500);
      expect((res.json as { verdict?: { tier: string } }).verdict?.tier).not.toBe('affirming');
      // Enrollment evidence whose header names a key by URL instead of carrying it.
      const e = await sec.request('POST', '/v1/challenges', { body: {} });
      const echallenge = (e.json as { challenge: string }).challenge;
      const enrolling = t.signJws(
        { alg: 'ES256', typ: 'pos-evidence+jwt', jku: url, x5u: url },
        t.claims(echallenge, 'enrollment'),
      );
      const enroll = await sec.request('POST', '/v1/enrollments', {
        body: {
          code: `pos_enr_${'A'.repeat(22)}`,
          deviceJwk: { ...t.jwk, x5u: url },
          readerSerial: 'RDR-ssrf',
          evidence: enrolling,
        },
      });
      expect(enroll.status).toBe(400);
      // A proof naming its key by URL.
      const proof = t.signJws(
        { alg: 'ES256', typ: 'pos-proof+jwt', kid: t.id, jku: url },
        {
          htm: 'POST',
          htu: `http://backend.test/v1/attestations`,
          iat: 0,
          jti: 'x'.repeat(16),
          bh: 'A'.repeat(43),
        },
      );
      const withProof = await sec.request('POST', '/v1/attestations', {
        body: { evidence: 'a.b.c' },
        headers: { 'pos-proof': proof },
      });
      expect(withProof.status).toBe(401);
      // A ticket naming its signing key by URL.
      const ticket = t.signJws(
        { alg: 'ES256', typ: 'pos-ticket+jwt', kid: url, jku: url, x5u: url },
        { iss: url },
      );
      const tx = await sec.terminal(
        t,
        'POST',
        '/v1/transactions',
        {
          amount: 1,
          currency: 'EUR',
          ksn: '0'.repeat(24),
          cardData: { iv: 'A'.repeat(16), ct: 'A'.repeat(22) },
        },
        { ticket },
      );
      expect(tx.status).toBe(401);
    }
    // The live event stream with URLs in its query.
    const events = await sec.request('GET', `/v1/events?merchant=${encodeURIComponent(urls[0] ?? '')}`, {
      as: 'admin',
    });
    expect(events.status).toBeLessThan(500);
    await settle();
    expect(hits).toBe(0);
  });
});
