/**
 * The terminal's link to the back-end, over the whole system (scripts/start.mjs, real processes, a
 * real pty): the back-end down, and evidence replayed. One system for both (each start costs seconds);
 * the replay comes last because it halts the terminal.
 *
 * The terminal runs in its own network namespace whose only way to the back-end is a proxy the test
 * holds (system.ts, `startBackendLink`): the back-end itself keeps running (npm start stops everything
 * when a child dies), but for the terminal it can be gone, every connection cut and every new one
 * refused; and the proxy records every request the terminal sends.
 *
 * Back-end down → no PIN entry:
 * - down before the sale: `transact` cannot get a session ticket, so it never even opens a session
 *   with the reader; it ends `POS_ERR_DESKTOP_BACKEND_UNREACHABLE`;
 * - down while the sale waits for the card: the card is read, the pre-PIN attestation cannot reach the
 *   back-end, the sale ends `POS_ERR_DESKTOP_TXN_ATTEST_REFUSED` (cause `_BACKEND_UNREACHABLE`) before
 *   any PIN pad: no ticket at the reader, no PIN block, the reader's transaction aborted;
 * - back again: the next sale is approved.
 *
 * Replayed evidence → refused: a real sale recorded on the wire gives a genuine pre-PIN evidence JWS
 * (the one that earned the PIN-entry ticket) and the exact request that carried it. Then:
 * - the captured request sent again as it was (same Pos-Proof, same body), as anyone on the wire
 *   could: 401 `POS_ERR_PROOF_REPLAY`, no ticket; the terminal is not halted by it (the request does
 *   not prove its sender holds the key);
 * - the captured evidence sent again under a fresh, valid Pos-Proof of the terminal's own key, as
 *   malware on the terminal or a clone of its key would: appraised and refused, `contraindicated` with
 *   `POS_ERR_ATTEST_CHALLENGE_USED` and `POS_ERR_CORRELATION_COUNTER_REPLAY`, no ticket, and the
 *   terminal halted (fleet correlation: its key is in a second place), as the operator API shows;
 * - the terminal then gets no PIN entry.
 */
import { createECDH, createHash, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  admin,
  canIsolateNetwork,
  eventsNamed,
  fullStackMachine,
  readerEvents,
  simulator,
  startBackendLink,
  startSystem,
  stopSystem,
  terminalId,
  transactionCount,
  waitFor,
  type BackendLink,
  type RecordedRequest,
  type System,
  type TerminalRun,
} from './system';

const machine = fullStackMachine();
const net = canIsolateNetwork();
const skipReason = machine.skipReason ?? (!net.ok ? net.skip : undefined);
if (skipReason !== undefined) console.log(`skipping the back-end link full-stack tests: ${skipReason}`);

let sys: System | undefined;
let link: BackendLink | undefined;
const runs: TerminalRun[] = [];
let captured: RecordedRequest | undefined;
const get = (): { s: System; l: BackendLink } => {
  if (sys === undefined || link === undefined) throw new Error('the system did not start');
  return { s: sys, l: link };
};

/** `pos-terminal` behind the test's link to the back-end (and on a VM, as a physical machine). */
const terminal = (args: string[]): TerminalRun => {
  const { s, l } = get();
  const run = l.run(machine.prefix, [...args, '--data-dir', join(s.dir, 'terminal')]);
  runs.push(run);
  return run;
};

const eventsSince = (s: System, from: number): Record<string, unknown>[] => readerEvents(s).slice(from);

const AttestBody = z.object({ evidence: z.string(), nonce: z.string().optional() });
const ErrorBody = z.object({ error: z.object({ code: z.string() }) });
const AttestAnswer = z.object({
  verdict: z.object({ tier: z.string(), reasons: z.array(z.object({ code: z.string() })) }),
  ticket: z.unknown().optional(),
  halted: z.boolean(),
});

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/**
 * A Pos-Proof (docs/backend.md, "Terminal request authentication") signed here with the terminal's
 * device key from its key file: header `{alg: ES256, typ: pos-proof+jwt, kid}`, claims `htm`, `htu`,
 * `iat`, a fresh `jti`, `bh` (SHA-256 of the body). Written independently of the terminal's signer.
 */
function freshProof(dataDir: string, kid: string, htu: string, body: string): string {
  const file = JSON.parse(readFileSync(join(dataDir, 'terminal.json'), 'utf8')) as { deviceKey?: string };
  if (file.deviceKey === undefined) throw new Error('no device key');
  const d = Buffer.from(file.deviceKey, 'base64url');
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(d);
  const pub = ecdh.getPublicKey();
  const key = createPrivateKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      d: b64url(d),
      x: b64url(pub.subarray(1, 33)),
      y: b64url(pub.subarray(33)),
    },
    format: 'jwk',
  });
  d.fill(0);
  const header = b64url(JSON.stringify({ alg: 'ES256', typ: 'pos-proof+jwt', kid }));
  const claims = b64url(
    JSON.stringify({
      htm: 'POST',
      htu,
      iat: Math.floor(Date.now() / 1000),
      jti: b64url(randomBytes(18)),
      bh: createHash('sha256').update(body).digest('base64url'),
    }),
  );
  const sig = sign('sha256', Buffer.from(`${header}.${claims}`), { key, dsaEncoding: 'ieee-p1363' });
  return `${header}.${claims}.${b64url(sig)}`;
}

const post = async (
  s: System,
  path: string,
  proof: string,
  body: string,
): Promise<{ status: number; json: unknown }> => {
  const res = await fetch(s.ready.backend + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'pos-proof': proof },
    body,
  });
  return { status: res.status, json: await res.json().catch(() => undefined) };
};

const terminalState = async (s: System): Promise<string> => {
  const t = await admin(s, 'GET', `/v1/terminals/${terminalId(s)}`);
  expect(t.status).toBe(200);
  return z.object({ state: z.string() }).parse(t.json).state;
};

describe.skipIf(skipReason !== undefined)(
  "the terminal's link to the back-end (npm start, pos-terminal)",
  () => {
    beforeAll(async () => {
      sys = await startSystem();
      link = await startBackendLink(sys);
    }, 90_000);
    afterAll(async () => {
      for (const r of runs) r.kill();
      await link?.close();
      await stopSystem(sys, []);
    });

    describe('back-end down: no PIN entry', () => {
      it('down before the sale: no session with the reader, BACKEND_UNREACHABLE, nothing at the back-end', async () => {
        const { s, l } = get();
        const before = await transactionCount(s);
        const from = readerEvents(s).length;
        const sent = l.requests().length;
        await l.down();
        const out = await terminal(['transact', '--amount', '3.00']).result;
        await l.up();
        expect(out.line).toMatchObject({ status: 'error', code: 'POS_ERR_DESKTOP_BACKEND_UNREACHABLE' });
        expect(out.code).toBe(1);
        expect(out.stderr).not.toContain('enter the PIN');
        // The reader never saw a session (the handshake needs a ticket from the back-end), so no card
        // was asked for and no PIN block made.
        const events = eventsSince(s, from);
        expect(eventsNamed(events, 'session')).toHaveLength(0);
        expect(eventsNamed(events, 'pin-block')).toHaveLength(0);
        // The proxy really cut it off (it let nothing through), and the back-end saw no sale.
        expect(l.requests().slice(sent)).toHaveLength(0);
        expect(await transactionCount(s)).toBe(before);
      }, 60_000);

      it('down while the sale waits for the card: ATTEST_REFUSED (unreachable) before any PIN pad; no ticket, no PIN block, the reader aborted', async () => {
        const { s, l } = get();
        const before = await transactionCount(s);
        const from = readerEvents(s).length;
        const sent = l.requests().length;
        const run = terminal(['transact', '--amount', '4.00']);
        await run.stderrHas('insert or tap a card');
        // The reader is connected through a session made with a back-end ticket: the link was up, and
        // the session's attestation went through it.
        expect(eventsNamed(eventsSince(s, from), 'session').length).toBeGreaterThan(0);
        expect(
          l
            .requests()
            .slice(sent)
            .some((r) => r.method === 'POST' && r.path === '/v1/attestations'),
        ).toBe(true);
        await l.down();
        const inserted = await simulator(s, 'POST', '/card', { card: 'visa-pin', action: 'insert' });
        expect(inserted.status).toBe(200);
        const out = await run.result;
        await l.up();
        await simulator(s, 'POST', '/card', { action: 'remove' });
        expect(out.line).toMatchObject({
          status: 'error',
          code: 'POS_ERR_DESKTOP_TXN_ATTEST_REFUSED',
          cause: 'POS_ERR_DESKTOP_BACKEND_UNREACHABLE',
        });
        expect(out.code).toBe(1);
        expect(out.stderr).not.toContain('enter the PIN');
        // The card was read, then the terminal aborted the reader's transaction; the reader got no
        // PIN-entry ticket and made no PIN block.
        await waitFor(() => eventsNamed(eventsSince(s, from), 'abort').length > 0, "the reader's abort");
        const events = eventsSince(s, from);
        expect(eventsNamed(events, 'card-read')).toHaveLength(1);
        expect(eventsNamed(events, 'ticket')).toHaveLength(0);
        expect(eventsNamed(events, 'pin-block')).toHaveLength(0);
        // No pre-PIN evidence reached the back-end, and it holds no transaction.
        const prePin = l
          .requests()
          .slice(sent)
          .filter((r) => r.path === '/v1/attestations' && r.body.includes('"nonce"'));
        expect(prePin).toHaveLength(0);
        expect(await transactionCount(s)).toBe(before);
      }, 60_000);

      it('back again: the next sale is approved', async () => {
        const { s, l } = get();
        await l.up();
        const before = await transactionCount(s);
        const from = readerEvents(s).length;
        const run = terminal(['transact', '--amount', '5.00', '--pin', '1234']);
        await run.stderrHas('insert or tap a card');
        expect((await simulator(s, 'POST', '/card', { card: 'visa-pin', action: 'insert' })).status).toBe(
          200,
        );
        const out = await run.result;
        await simulator(s, 'POST', '/card', { action: 'remove' });
        expect(out.line).toEqual({ status: 'approved', code: null });
        expect(eventsNamed(eventsSince(s, from), 'pin-block')).toHaveLength(1);
        expect(await transactionCount(s)).toBe(before + 1);
      }, 60_000);
    });

    describe('replayed evidence is refused', () => {
      it('a real sale, recorded on the wire: its pre-PIN evidence earned the PIN-entry ticket', async () => {
        const { s, l } = get();
        const from = readerEvents(s).length;
        const sent = l.requests().length;
        const run = l.run(machine.prefix, [
          'transact',
          '--data-dir',
          join(s.dir, 'terminal'),
          '--amount',
          '7.00',
          '--pin',
          '1234',
        ]);
        runs.push(run);
        await run.stderrHas('insert or tap a card');
        expect((await simulator(s, 'POST', '/card', { card: 'visa-pin', action: 'insert' })).status).toBe(
          200,
        );
        const out = await run.result;
        await simulator(s, 'POST', '/card', { action: 'remove' });
        expect(out.line).toEqual({ status: 'approved', code: null });
        expect(eventsNamed(eventsSince(s, from), 'pin-block')).toHaveLength(1);
        const prePin = l
          .requests()
          .slice(sent)
          .filter((r) => r.method === 'POST' && r.path === '/v1/attestations')
          .filter((r) => AttestBody.parse(JSON.parse(r.body)).nonce !== undefined);
        expect(prePin).toHaveLength(1);
        captured = prePin[0];
        expect(captured?.headers['pos-proof']).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
        expect(await terminalState(s)).toBe('active');
      }, 60_000);

      it('the captured request sent again as it was: POS_ERR_PROOF_REPLAY, no ticket, the terminal not halted by it', async () => {
        const { s } = get();
        const c = captured;
        if (c === undefined) throw new Error('nothing was captured');
        const r = await post(s, c.path, c.headers['pos-proof'] ?? '', c.body);
        expect(r.status).toBe(401);
        expect(ErrorBody.parse(r.json).error.code).toBe('POS_ERR_PROOF_REPLAY');
        expect(JSON.stringify(r.json)).not.toContain('ticket');
        expect(await terminalState(s)).toBe('active');
      }, 30_000);

      it('the captured evidence under a fresh proof of the terminal key: contraindicated (challenge used, counter replay), no ticket, the terminal halted', async () => {
        const { s } = get();
        const c = captured;
        if (c === undefined) throw new Error('nothing was captured');
        const before = await admin(s, 'GET', `/v1/terminals/${terminalId(s)}/attestations`);
        const count = z.object({ attestations: z.array(z.unknown()) }).parse(before.json).attestations.length;
        const proof = freshProof(join(s.dir, 'terminal'), terminalId(s), s.ready.backend + c.path, c.body);
        const r = await post(s, c.path, proof, c.body);
        // The proof is good (not a 401): what is refused is the evidence itself.
        expect(r.status).toBe(200);
        const answer = AttestAnswer.parse(r.json);
        expect(answer.verdict.tier).toBe('contraindicated');
        const codes = answer.verdict.reasons.map((x) => x.code);
        expect(codes).toContain('POS_ERR_ATTEST_CHALLENGE_USED');
        expect(codes).toContain('POS_ERR_CORRELATION_COUNTER_REPLAY');
        expect(answer.ticket).toBeUndefined();
        expect(answer.halted).toBe(true);
        // The operator API: the terminal is halted and the refused attestation is on record.
        expect(await terminalState(s)).toBe('halted');
        const after = await admin(s, 'GET', `/v1/terminals/${terminalId(s)}/attestations`);
        const list = z
          .object({ attestations: z.array(z.object({ tier: z.string() })) })
          .parse(after.json).attestations;
        expect(list).toHaveLength(count + 1);
        expect(list[0]?.tier).toBe('contraindicated');
      }, 30_000);

      it('after that the terminal gets no PIN entry', async () => {
        const { s, l } = get();
        const blocks = readerEvents(s).filter((e) => e['event'] === 'pin-block').length;
        const run = l.run(machine.prefix, [
          'transact',
          '--data-dir',
          join(s.dir, 'terminal'),
          '--amount',
          '8.00',
        ]);
        runs.push(run);
        const out = await run.result;
        expect(out.line).toMatchObject({ status: 'halted', code: 'POS_ERR_DESKTOP_TXN_HALTED' });
        expect(out.stderr).not.toContain('enter the PIN');
        expect(readerEvents(s).filter((e) => e['event'] === 'pin-block')).toHaveLength(blocks);
      }, 60_000);
    });
  },
);
