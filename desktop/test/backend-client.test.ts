/**
 * The back-end HTTP client against a local HTTP server: coded failures (unreachable, timeout, the
 * back-end's own error code passed through, an answer of the wrong shape) and the Pos-Proof it sends
 * (ES256 by the stored device key, bound to method, URL, body and ticket).
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { jwkFromPublicKey, p256Signer, parseBase64url } from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendClient } from '../src/core/backend/client';
import { newDeviceKey } from '../src/core/backend/enroll';
import { FileKeyStore } from '../src/core/keys/store';
import { tempDir } from './support';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<string> {
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (b: Buffer) => (body += b.toString('utf8')));
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function enrolledStore(baseUrl: string) {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const store = new FileKeyStore({ path: join(t.dir, 'terminal.json') });
  const key = newDeviceKey();
  const publicKey = p256Signer(key).publicKey;
  expect((await store.putDeviceKey(key)).ok).toBe(true);
  expect((await store.putConfig({ backendUrl: baseUrl, terminalId: 'trm_1', evidenceCounter: 3 })).ok).toBe(
    true,
  );
  return { store, publicKey };
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

const ATTEST_OK = {
  verdict: { tier: 'affirming', reasons: [], policyVersion: 'dev-2', trustVector: {} },
  halted: false,
  nextAttestationAt: 1,
  attestationIntervalS: 300,
};

describe('back-end client failures', () => {
  it('an unreachable back-end is POS_ERR_DESKTOP_BACKEND_UNREACHABLE', async () => {
    const url = await serve(() => undefined);
    for (const c of cleanups.splice(0)) await c(); // closed: nothing listens there now
    const { store } = await enrolledStore(url);
    const r = await new BackendClient({ baseUrl: url, keyStore: store }).challenge('trm_1');
    expect(r).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_BACKEND_UNREACHABLE' });
  });

  it('a back-end that does not answer is a timeout, not a hang', async () => {
    const url = await serve(() => undefined); // never answers
    const { store } = await enrolledStore(url);
    const r = await new BackendClient({ baseUrl: url, keyStore: store, timeoutMs: 200 }).challenge('trm_1');
    expect(r).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_BACKEND_TIMEOUT' });
  });

  it("passes the back-end's own error code through, and refuses an answer of the wrong shape", async () => {
    let mode: 'error' | 'shape' | 'html' = 'error';
    const url = await serve((_req, _body, res) => {
      if (mode === 'error') json(res, 403, { error: { code: 'POS_ERR_TERMINAL_HALTED', message: 'halted' } });
      else if (mode === 'shape') json(res, 201, { challenge: 42 });
      else {
        res.writeHead(502);
        res.end('<html>bad gateway</html>');
      }
    });
    const { store } = await enrolledStore(url);
    const c = new BackendClient({ baseUrl: url, keyStore: store });
    expect(await c.challenge('trm_1')).toMatchObject({ ok: false, code: 'POS_ERR_TERMINAL_HALTED' });
    mode = 'shape';
    expect(await c.challenge('trm_1')).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_BACKEND_RESPONSE' });
    mode = 'html';
    expect(await c.challenge('trm_1')).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_BACKEND_REFUSED' });
  });

  it('without an enrolled terminal no proof is made and nothing is sent', async () => {
    let requests = 0;
    const url = await serve((_req, _body, res) => {
      requests++;
      json(res, 200, ATTEST_OK);
    });
    const t = tempDir();
    cleanups.push(t.cleanup);
    const store = new FileKeyStore({ path: join(t.dir, 'terminal.json') });
    const r = await new BackendClient({ baseUrl: url, keyStore: store }).attest({ evidence: 'x.y.z' });
    expect(r).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_NOT_ENROLLED' });
    expect(requests).toBe(0);
  });
});

describe('Pos-Proof', () => {
  it('binds method, URL, body and ticket, signed by the stored device key', async () => {
    const seen: { headers: IncomingMessage['headers']; body: string; url: string }[] = [];
    const url = await serve((req, body, res) => {
      seen.push({ headers: req.headers, body, url: req.url ?? '' });
      if (req.url === '/v1/transactions')
        json(res, 200, { transactionId: 'txn_1', approved: true, authCode: 'A1', halted: false });
      else json(res, 200, ATTEST_OK);
    });
    const { store, publicKey } = await enrolledStore(url);
    const c = new BackendClient({ baseUrl: url, keyStore: store });
    expect(await c.attest({ evidence: 'a.b.c', nonce: 'bm9uY2Utbm9uY2Utbm9uY2U' })).toMatchObject({
      ok: true,
    });
    const ticket = 'aaa.bbb.ccc';
    const tx = await c.transact(
      {
        amount: 1234,
        currency: 'EUR',
        ksn: '00'.repeat(12),
        cardData: { iv: 'AAAAAAAAAAAAAAAA', ct: 'A'.repeat(24) },
      },
      ticket,
    );
    expect(tx).toMatchObject({ ok: true, out: { approved: true } });
    const key = createPublicKey({ key: { ...jwkFromPublicKey(publicKey) }, format: 'jwk' });
    const sha = (s: string) => createHash('sha256').update(s).digest('base64url');
    for (const [i, path] of [
      [0, '/v1/attestations'],
      [1, '/v1/transactions'],
    ] as const) {
      const s = seen[i];
      if (s === undefined) throw new Error('no request');
      expect(s.url).toBe(path);
      const proof = String(s.headers['pos-proof']);
      const [h = '', p = '', sig = ''] = proof.split('.');
      const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>;
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
      expect(header).toEqual({ alg: 'ES256', typ: 'pos-proof+jwt', kid: 'trm_1' });
      expect(claims).toMatchObject({ htm: 'POST', htu: `${url}${path}`, bh: sha(s.body) });
      expect(String(claims['jti']).length).toBeGreaterThanOrEqual(16);
      const sigBytes = parseBase64url(sig);
      if (!sigBytes.ok) throw new Error('signature');
      expect(
        verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, sigBytes.bytes),
      ).toBe(true);
      if (path === '/v1/transactions') {
        expect(s.headers['authorization']).toBe(`PosTicket ${ticket}`);
        expect(claims['ath']).toBe(sha(ticket));
      } else expect(claims['ath']).toBeUndefined();
    }
  });
});

describe('a back-end URL that is not https nor loopback http', () => {
  // Enrollment refuses such a URL; a stored configuration edited afterwards must not reach the wire.
  it('refuses every request and the push proof before anything is sent or signed', async () => {
    let sent = 0;
    const fetchSpy = () => {
      sent++;
      return Promise.reject(new Error('must not be called'));
    };
    const { store } = await enrolledStore('http://backend.example');
    const client = new BackendClient({
      baseUrl: 'http://backend.example',
      keyStore: store,
      fetch: fetchSpy,
    });
    const challenge = await client.challenge();
    expect(challenge).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_BACKEND_INSECURE' });
    const proof = await client.proof('GET', '/v1/push', '');
    expect(proof).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_BACKEND_INSECURE' });
    await expect(client.pushProof()).rejects.toThrow('POS_ERR_DESKTOP_BACKEND_INSECURE');
    expect(sent).toBe(0);
  });

  it('allows https to any host and plain http to loopback', async () => {
    for (const url of ['https://backend.example', 'http://127.0.0.1:1', 'http://localhost:1']) {
      const { store } = await enrolledStore(url);
      const client = new BackendClient({ baseUrl: url, keyStore: store });
      const proof = await client.proof('GET', '/v1/push', '');
      expect(proof.ok, url).toBe(true);
    }
  });
});
