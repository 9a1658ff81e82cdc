/**
 * API10:2023 Unsafe Consumption of APIs. Each side treats what the other sends as hostile:
 *
 * - the back-end consumes terminals' evidence and readers' signed status: garbage JWS, evidence signed
 *   with the terminal's own key but wrong-typed, oversized or missing claims (fast-check), enrollment
 *   evidence of any shape, reader status that is malformed CBOR (signed by a genuine reader), signed
 *   by the wrong key, or carried with a bad chain: every answer is a 4xx or a verdict that is not
 *   affirming, never a 5xx, never a ticket for PIN entry;
 * - the terminal (desktop core's BackendClient) consumes the back-end's answers: a malicious server
 *   answering wrong types, prototype-polluting JSON, huge or endless bodies, redirects, bad error
 *   shapes, or nothing: a clear POS_ERR_DESKTOP_* code, no crash, no pollution, bounded reading.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cborEncode,
  decodeReaderStatus,
  encodeReaderStatus,
  toBase64url,
  type ReaderStatus,
} from '@pos/shared';
import { createIdentity, type ReaderIdentity } from '@pos/device-sim/state/identity';
import {
  makeHarness,
  realReaderStatus,
  seedReferenceValues,
  signReaderStatus,
  SimTerminal,
  type Harness,
} from '../../backend/test/helpers';
import { BackendClient, ChallengeOutSchema, AttestOutSchema } from '../../desktop/src/core/backend/client';
import { MAX_RESPONSE_BYTES, requestJson } from '../../desktop/src/core/backend/http';
import { FileKeyStore } from '../../desktop/src/core/keys/store';
import { describeRes, startSecurityHarness, type Res, type SecurityHarness } from './harness';

interface AttestOut {
  verdict?: { tier: string };
  ticket?: { use: string };
}

/** A 4xx, or a verdict that is not affirming and no PIN-entry ticket; never a 5xx. */
function expectRefusedOrDistrusted(res: Res, what: string): void {
  expect(res.status, `${what}: ${describeRes(res)}`).toBeLessThan(500);
  if (res.status >= 400) {
    expect(res.code, what).toMatch(/^POS_ERR_/);
    return;
  }
  const out = res.json as AttestOut;
  expect(out.verdict?.tier, `${what}: tier`).not.toBe('affirming');
  expect(out.ticket?.use, what).not.toBe('pin-entry');
}

/** A value of another JSON type than `v` (so a required claim can never stay valid). */
function otherType(v: unknown): fc.Arbitrary<unknown> {
  const kinds: fc.Arbitrary<unknown>[] = [];
  if (typeof v !== 'string') kinds.push(fc.string({ maxLength: 70 }), fc.constant('x'.repeat(70_000)));
  if (typeof v !== 'number') kinds.push(fc.integer(), fc.double(), fc.constant(-1e308));
  if (typeof v !== 'boolean') kinds.push(fc.boolean());
  if (v !== null) kinds.push(fc.constant(null));
  if (!Array.isArray(v)) kinds.push(fc.array(fc.string(), { maxLength: 3 }));
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    kinds.push(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }));
  return fc.oneof(...kinds);
}

/** Paths of claims every evidence must carry well-typed. */
const REQUIRED_PATHS = [
  'iss',
  'iat',
  'challenge',
  'counter',
  'purpose',
  'app',
  'app.version',
  'app.build',
  'app.codeHash',
  'shell',
  'measurements',
  'measurements.0',
  'measurements.0.name',
  'measurements.0.status',
  'reader',
  'reader.status',
  'reader.signature',
  'reader.chain',
  'reader.chain.0',
  'time',
];

function getPath(o: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((x, k) => (x as Record<string, unknown> | undefined)?.[k], o);
}
function setPath(o: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  const last = keys.pop() ?? '';
  const parent = keys.reduce<unknown>((x, k) => (x as Record<string, unknown>)[k], o) as Record<
    string,
    unknown
  >;
  parent[last] = value;
}

describe('API10:2023 Unsafe Consumption of APIs: the back-end treats terminal data as hostile', () => {
  let sec: SecurityHarness;
  beforeAll(async () => {
    sec = await startSecurityHarness();
  });
  afterAll(async () => {
    await sec.close();
  });

  async function challengeFor(t: SimTerminal): Promise<string> {
    const c = await sec.request('POST', '/v1/challenges', { body: { terminalId: t.id } });
    return (c.json as { challenge: string }).challenge;
  }

  it('well-formed evidence is affirming (so the refusals below are the garbage, not the set-up)', async () => {
    const t = await sec.enroll('A');
    const res = await sec.terminal(t, 'POST', '/v1/attestations', {
      evidence: t.evidence(await challengeFor(t), 'periodic'),
    });
    expect((res.json as AttestOut).verdict?.tier, describeRes(res)).toBe('affirming');
  });

  it('garbage evidence strings (not a JWS, bad base64, bad JSON, wrong header): 4xx or not affirming', async () => {
    const t = await sec.enroll('A');
    const b64 = (s: string): string => toBase64url(Buffer.from(s, 'utf8'));
    const garbage = fc.oneof(
      fc.string({ minLength: 1, maxLength: 200 }),
      fc.tuple(fc.string(), fc.string(), fc.string()).map(([a, b, c]) => `${a}.${b}.${c}`),
      fc
        .tuple(
          fc.uint8Array({ maxLength: 64 }),
          fc.uint8Array({ maxLength: 300 }),
          fc.uint8Array({ maxLength: 80 }),
        )
        .map(([a, b, c]) => [a, b, c].map((x) => toBase64url(x)).join('.')),
      fc
        .jsonValue({ maxDepth: 3 })
        .map(
          (v) => `${b64('{"alg":"ES256","typ":"pos-evidence+jwt"}')}.${b64(JSON.stringify(v))}.${b64('sig')}`,
        ),
      fc
        .jsonValue({ maxDepth: 3 })
        .map((h) => t.signJws(h as Record<string, unknown>, { purpose: 'periodic' })),
      fc.constantFrom('a..b', '...', `${b64('{')}.${b64('{')}.AA`, `${b64('{"alg":"none"}')}.${b64('{}')}.`),
    );
    await fc.assert(
      fc.asyncProperty(garbage, async (evidence) => {
        const res = await sec.terminal(t, 'POST', '/v1/attestations', { evidence });
        expectRefusedOrDistrusted(res, `evidence ${JSON.stringify(evidence).slice(0, 80)}`);
      }),
      { numRuns: 150 },
    );
  });

  it('evidence signed with the terminal key but a required claim of the wrong type (fast-check): never affirming', async () => {
    const t = await sec.enroll('B');
    await fc.assert(
      fc.asyncProperty(
        fc
          .constantFrom(...REQUIRED_PATHS)
          .chain((path) =>
            otherType(getPath(t.claims('x'.repeat(43), 'periodic'), path)).map((value) => ({ path, value })),
          ),
        fc.boolean(),
        async ({ path, value }, fresh) => {
          const claims = t.claims(fresh ? await challengeFor(t) : 'A'.repeat(43), 'periodic');
          setPath(claims, path, value);
          const evidence = t.signJws({ alg: 'ES256', typ: 'pos-evidence+jwt' }, claims);
          const res = await sec.terminal(t, 'POST', '/v1/attestations', { evidence });
          expectRefusedOrDistrusted(res, `${path} = ${JSON.stringify(value).slice(0, 60)}`);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('oversized claims and evidence: refused, not appraised at length', async () => {
    const t = await sec.enroll('B');
    const many = Array.from({ length: 500 }, (_, i) => ({ name: `m-${i}`, status: 'ok', method: 'x' }));
    for (const extra of [
      { measurements: many },
      { app: { version: '1'.repeat(10_000), build: 'release', codeHash: 'ab'.repeat(32) } },
      { iss: 'x'.repeat(50_000) },
      { reader: { status: 'A'.repeat(5000), signature: 'A'.repeat(300), chain: ['A'.repeat(9000)] } },
      { reader: { status: 'AAAA', signature: 'AAAA', chain: Array.from({ length: 10 }, () => 'AAAA') } },
    ]) {
      const evidence = t.evidence(await challengeFor(t), 'periodic', extra);
      const res = await sec.terminal(t, 'POST', '/v1/attestations', { evidence });
      expectRefusedOrDistrusted(res, Object.keys(extra).join());
    }
    const huge = await sec.terminal(t, 'POST', '/v1/attestations', { evidence: 'a'.repeat(70_000) });
    expect(huge.status).toBe(400);
  });

  it('enrollment with evidence and keys of any shape: refused, no terminal created', async () => {
    const count = async (): Promise<number> =>
      (
        (await sec.request('GET', '/v1/terminals?limit=500', { as: 'admin' })).json as {
          terminals: unknown[];
        }
      ).terminals.length;
    const before = await count();
    const code = (
      await sec.request('POST', `/v1/merchants/${sec.tenants.A.merchantId}/enrollment-codes`, {
        as: 'admin',
        body: {},
      })
    ).json as { code: string };
    const device = new SimTerminal(sec.h);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 100 }),
          fc.constantFrom(...REQUIRED_PATHS).chain((path) =>
            otherType(getPath(device.claims('x'.repeat(43), 'enrollment'), path)).map((value) => {
              const claims = device.claims('A'.repeat(43), 'enrollment');
              setPath(claims, path, value);
              return device.signJws({ alg: 'ES256', typ: 'pos-evidence+jwt', jwk: device.jwk }, claims);
            }),
          ),
        ),
        fc.oneof(fc.constant(device.jwk as unknown), fc.jsonValue({ maxDepth: 2 })),
        async (evidence, deviceJwk) => {
          const res = await sec.request('POST', '/v1/enrollments', {
            body: { code: code.code, deviceJwk, readerSerial: 'RDR-hostile', evidence },
          });
          expect(res.status, describeRes(res)).toBeGreaterThanOrEqual(400);
          expect(res.status, describeRes(res)).toBeLessThan(500);
        },
      ),
      { numRuns: 100 },
    );
    expect(await count()).toBe(before);
    // The code was never spent by a refused attempt: it still enrolls a genuine device.
    const c = await sec.request('POST', '/v1/challenges', { body: {} });
    const ok = await sec.request('POST', '/v1/enrollments', {
      body: {
        code: code.code,
        deviceJwk: device.jwk,
        readerSerial: device.readerSerial,
        evidence: device.evidence((c.json as { challenge: string }).challenge, 'enrollment'),
      },
    });
    expect(ok.status, describeRes(ok)).toBe(201);
  });
});

describe('API10:2023 Unsafe Consumption of APIs: the back-end treats reader status as hostile (real verifier)', () => {
  let dir: string;
  let identity: ReaderIdentity;
  let other: ReaderIdentity;
  let h: Harness;
  let t: SimTerminal;
  let seq = 0;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pos-sec-reader-'));
    const made = await createIdentity(join(dir, 'reader'));
    const rogue = await createIdentity(join(dir, 'rogue'));
    if (!made.ok || !rogue.ok) throw new Error('reader identity');
    identity = made.identity;
    other = rogue.identity;
    // The real reader-status verifier over the genuine manufacturer CA.
    h = await makeHarness({}, { readerCaRoots: [identity.caCertificateDer] });
    // The reader certificates are valid from a minute before now (real time); the harness clock is
    // a fixed date, so it is set to now for the chain to be valid.
    h.clock.t = Date.now();
    await seedReferenceValues(h);
    t = new SimTerminal(h);
    t.readerSerial = identity.serial;
    t.readerStatus = (now) => signed(statusOf(now));
    const enrolled = await t.enroll();
    expect(enrolled.statusCode, enrolled.body).toBe(201);
  });
  afterAll(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The genuine reader's next status (seq strictly increasing across the whole describe). */
  function statusOf(now: number, over: Partial<ReaderStatus> = {}): ReaderStatus {
    return realReaderStatus(identity, now, ++seq, over);
  }
  function signed(
    status: ReaderStatus | Uint8Array,
    who: ReaderIdentity = identity,
  ): Record<string, unknown> {
    return signReaderStatus(status, who);
  }
  async function attestWith(reader: Record<string, unknown>): Promise<Res> {
    const res = await t.attest(
      'pre-pin',
      { nonce: 'cmVhZGVyLW5vbmNlLTAwMDE', reader },
      { nonce: 'cmVhZGVyLW5vbmNlLTAwMDE' },
    );
    return {
      status: res.statusCode,
      headers: new Headers(),
      text: res.body,
      json: res.json(),
      code: undefined,
    };
  }

  it('the genuine reader is affirming with a PIN-entry ticket (control)', async () => {
    const res = await attestWith(signed(statusOf(h.clock.now())));
    expect((res.json as AttestOut).verdict?.tier).toBe('affirming');
    expect((res.json as AttestOut).ticket?.use).toBe('pin-entry');
  });

  it('malformed CBOR, signed by the genuine reader key (fast-check): never affirming', async () => {
    const good = encodeReaderStatus(statusOf(h.clock.now()));
    const bytes = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 300 }),
      fc.integer({ min: 0, max: good.length - 1 }).map((n) => good.subarray(0, n)),
      fc
        .tuple(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 1, max: 255 }))
        .map(([i, x]) => {
          const copy = Uint8Array.from(good);
          copy[i] = (copy[i] ?? 0) ^ x;
          return copy;
        }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => cborEncode(v)),
      fc.constant(Uint8Array.from([...good, 0x00])),
    );
    await fc.assert(
      fc.asyncProperty(bytes, async (raw) => {
        const b = raw.length === 0 ? Uint8Array.from([0]) : raw;
        const res = await attestWith(signed(b));
        // A flipped byte may still make a valid record (another battery level, a later seq): the
        // genuine reader signed it, so it may be trusted. Anything that is not one never is.
        const decoded = decodeReaderStatus(b);
        const valid = decoded.ok && decoded.status.serial === identity.serial && !decoded.status.tamper;
        if (valid) expect(res.status).toBeLessThan(500);
        else expectRefusedOrDistrusted(res, `status ${Buffer.from(b).toString('hex').slice(0, 40)}`);
      }),
      { numRuns: 120 },
    );
  });

  it('status fields of wrong types inside well-formed CBOR, signed genuinely: never affirming', async () => {
    const base = statusOf(h.clock.now()) as unknown as Record<string, unknown>;
    for (const [field, value] of [
      ['serial', 42],
      ['tamper', 'no'],
      ['time', -1],
      ['seq', 'x'],
      ['fwHash', 'ab'],
      ['v', 2],
      ['extra', 1],
    ] as const) {
      const res = await attestWith(signed(cborEncode({ ...base, seq: ++seq, [field]: value })));
      expectRefusedOrDistrusted(res, field);
    }
  });

  it('a bad signature, another reader key, a bad or foreign chain: never affirming', async () => {
    const now = h.clock.now();
    const genuine = signed(statusOf(now));
    const cases: [string, Record<string, unknown>][] = [
      ['signature of zeros', { ...genuine, signature: toBase64url(new Uint8Array(64)) }],
      ['signature of another status', { ...signed(statusOf(now)), status: genuine['status'] }],
      ['signed by a rogue reader, its own chain', signed(statusOf(now, { serial: other.serial }), other)],
      [
        'signed by a rogue reader, the genuine chain',
        { ...signed(statusOf(now), other), chain: genuine['chain'] },
      ],
      [
        'garbage DER chain',
        { ...signed(statusOf(now)), chain: [toBase64url(Buffer.from('not a certificate'))] },
      ],
      ['chain of the CA only', { ...signed(statusOf(now)), chain: [toBase64url(identity.caCertificateDer)] }],
      [
        'rogue CA chain',
        {
          ...signed(statusOf(now)),
          chain: [toBase64url(other.certificateDer), toBase64url(other.caCertificateDer)],
        },
      ],
      ['tampered reader', signed(statusOf(now, { tamper: true }))],
    ];
    for (const [what, reader] of cases) {
      const res = await attestWith(reader);
      expectRefusedOrDistrusted(res, what);
    }
  });
});

describe('API10:2023 Unsafe Consumption of APIs: the terminal treats back-end answers as hostile', () => {
  let server: Server;
  let base: string;
  let answer: (req: IncomingMessage, res: ServerResponse) => void = (_q, s) => s.end();
  let sentBytes = 0;
  let canary: ReturnType<typeof createTcpServer>;
  let canaryHits = 0;
  let canaryPort = 0;
  let dir: string;
  let client: BackendClient;

  beforeAll(async () => {
    server = createHttpServer((req, res) => answer(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    if (a === null || typeof a === 'string') throw new Error('no port');
    base = `http://127.0.0.1:${a.port}`;
    canary = createTcpServer((s) => {
      canaryHits++;
      s.destroy();
    });
    await new Promise<void>((r) => canary.listen(0, '127.0.0.1', r));
    const c = canary.address();
    canaryPort = c !== null && typeof c !== 'string' ? c.port : 0;
    dir = mkdtempSync(join(tmpdir(), 'pos-sec-client-'));
    client = new BackendClient({
      baseUrl: base,
      keyStore: new FileKeyStore({ path: join(dir, 'terminal.json') }),
      timeoutMs: 1_500,
    });
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await new Promise<void>((r) => canary.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const json =
    (status: number, body: string, headers: Record<string, string> = {}) =>
    (_req: IncomingMessage, res: ServerResponse): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(body);
    };

  it('a well-formed answer is accepted (control)', async () => {
    answer = json(201, JSON.stringify({ challenge: 'A'.repeat(43), expiresAt: 1 }));
    const r = await client.challenge('trm_x');
    expect(r).toMatchObject({ ok: true, challenge: 'A'.repeat(43) });
  });

  it('malicious success bodies: POS_ERR_DESKTOP_BACKEND_RESPONSE, no crash, no prototype pollution', async () => {
    const bodies = [
      'not json',
      '',
      'null',
      '[]',
      JSON.stringify({ challenge: 42, expiresAt: 1 }),
      JSON.stringify({ challenge: 'short', expiresAt: 1 }),
      JSON.stringify({ challenge: 'A'.repeat(10_000), expiresAt: 1 }),
      '{"__proto__":{"polluted":true},"challenge":1}',
      '{"constructor":{"prototype":{"polluted":true}},"challenge":1}',
      `${'['.repeat(200_000)}${']'.repeat(200_000)}`,
      '{"challenge":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","expiresAt":1,"challenge":{}}',
    ];
    for (const body of bodies) {
      answer = json(201, body);
      const r = await client.challenge('trm_x');
      expect(r.ok, body.slice(0, 40)).toBe(false);
      if (!r.ok) expect(r.code, body.slice(0, 40)).toBe('POS_ERR_DESKTOP_BACKEND_RESPONSE');
    }
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    // An attestation answer claiming affirming with a malformed ticket is refused whole.
    answer = json(200, JSON.stringify({ verdict: { tier: 'affirming' }, ticket: { jws: 7 } }));
    const a = await requestJson(
      { method: 'POST', url: `${base}/v1/attestations`, body: '{}' },
      AttestOutSchema,
    );
    expect(a).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_BACKEND_RESPONSE' });
  });

  it('fast-check: any JSON answer with any status gives a result with a POS_ERR_ code or a schema-valid body', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.jsonValue({ maxDepth: 4 }),
        fc.constantFrom(200, 201, 400, 401, 403, 404, 429, 500, 503),
        async (body, status) => {
          answer = json(status, JSON.stringify(body));
          const r = await requestJson(
            { method: 'POST', url: `${base}/v1/challenges`, body: '{}' },
            ChallengeOutSchema,
          );
          if (r.ok) {
            expect(ChallengeOutSchema.safeParse(r.body).success).toBe(true);
            expect(status).toBeLessThan(400);
          } else {
            expect(r.code).toMatch(/^POS_ERR_[A-Z0-9_]+$/);
            expect(r.detail.length).toBeLessThanOrEqual(400);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('error answers: the back-end code when well-formed, POS_ERR_DESKTOP_BACKEND_REFUSED otherwise; messages bounded', async () => {
    const halt = (message: string): string =>
      JSON.stringify({ error: { code: 'POS_ERR_TERMINAL_HALTED', message } });
    answer = json(403, halt('m'.repeat(1500)));
    const halted = await client.challenge('trm_x');
    expect(halted).toMatchObject({ ok: false, code: 'POS_ERR_TERMINAL_HALTED' });
    if (!halted.ok) expect(halted.detail.length).toBeLessThanOrEqual(300);
    // A message past the error shape's bound: the whole answer is distrusted.
    answer = json(403, halt('m'.repeat(5000)));
    expect(await client.challenge('trm_x')).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_BACKEND_REFUSED',
    });
    for (const body of [
      '<html>500</html>',
      JSON.stringify({ error: { code: 'rm -rf /', message: 'x' } }),
      JSON.stringify({ error: { code: `POS_ERR_${'A'.repeat(200)}` } }),
      JSON.stringify({ error: 'POS_ERR_X' }),
    ]) {
      answer = json(500, body);
      const r = await client.challenge('trm_x');
      expect(r).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_BACKEND_REFUSED' });
    }
  });

  it('a huge answer is refused: declared too large, or streamed without end (read stops at the limit)', async () => {
    answer = (_q, res) => {
      res.writeHead(201, {
        'content-type': 'application/json',
        'content-length': String(MAX_RESPONSE_BYTES * 4),
      });
      res.end('{');
    };
    expect(await client.challenge('trm_x')).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_BACKEND_RESPONSE',
    });
    // An endless chunked body: the server counts what it could write before the client hung up.
    sentBytes = 0;
    answer = (_q, res) => {
      res.writeHead(201, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk)) sentBytes += chunk.length;
        if (!res.destroyed) res.once('drain', pump);
      };
      res.on('close', () => undefined);
      pump();
    };
    const r = await client.challenge('trm_x');
    expect(r).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_BACKEND_RESPONSE' });
    // The client stopped reading at about the limit, not at the timeout (loopback would have sent GBs).
    expect(sentBytes).toBeLessThan(MAX_RESPONSE_BYTES * 16);
  });

  it('a redirect is not followed (not even to a local address), a silent server times out', async () => {
    answer = (_q, res) => {
      res.writeHead(307, { location: `http://127.0.0.1:${canaryPort}/v1/challenges` });
      res.end();
    };
    const r = await client.challenge('trm_x');
    expect(r.ok).toBe(false);
    expect(canaryHits).toBe(0);
    answer = () => undefined; // never answers
    expect(await client.challenge('trm_x')).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_BACKEND_TIMEOUT',
    });
  });
});
