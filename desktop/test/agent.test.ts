/**
 * The attestation agent with a fake back-end transport, a real FileKeyStore and fixture collectors:
 * signed evidence the back-end's ES256 check accepts, the counter reserved in the store before signing,
 * the reader status bound to the challenge, pre-PIN evidence bound to the nonce, the periodic schedule
 * at the back-end's interval (kept after a failure), attempts serialized.
 */
import { join } from 'node:path';
import { jwkFromPublicKey, parseEvidence, type EvidenceClaims } from '@pos/shared';
import { newP256KeyPair } from '@pos/device-sim/dev/am';
import { verifyEs256 } from '@pos/backend/attestation/verifiers';
import { afterEach, describe, expect, it } from 'vitest';
import { AttestationAgent, type AttestTransport } from '../src/core/attest/agent';
import { collectAll } from '../src/core/attest/evidence';
import { FileKeyStore } from '../src/core/keys/store';
import { fakeProcess, headlessShell, memFs } from './attest-fixtures';
import { tempDir, until } from './support';
import { FakeClock, settle } from './txn-fakes';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function setup(opts: { enrolled?: boolean } = {}) {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const keyStore = new FileKeyStore({ path: join(t.dir, 'terminal.json') });
  const key = newP256KeyPair();
  const jwk = jwkFromPublicKey(key.publicKey);
  if (opts.enrolled !== false) {
    await keyStore.putDeviceKey(key.secretKey);
    await keyStore.putConfig({ backendUrl: 'http://127.0.0.1:1', terminalId: 'term-7', evidenceCounter: 41 });
  }
  const clock = new FakeClock();
  let n = 0;
  const sent: {
    claims: EvidenceClaims;
    nonce?: string;
    counterInStore: number | undefined;
    sigOk: boolean;
  }[] = [];
  const challenges: string[] = [];
  const statusFor: string[] = [];
  const state = { fail: false, intervalS: 60 as number | undefined };
  const transport: AttestTransport = {
    challenge: () => {
      const c = String(++n).padStart(43, 'C');
      challenges.push(c);
      return Promise.resolve({ ok: true, challenge: c });
    },
    submit: async ({ evidence, nonce }) => {
      const p = parseEvidence(evidence);
      if (!p.ok) throw new Error(p.code);
      const cfg = await keyStore.getConfig();
      sent.push({
        claims: p.claims,
        ...(nonce === undefined ? {} : { nonce }),
        counterInStore: cfg.ok ? cfg.config?.evidenceCounter : undefined,
        sigOk: verifyEs256(jwk, p.signingInput, p.signature),
      });
      if (state.fail) return { ok: false, code: 'POS_ERR_UNAVAILABLE', detail: 'down' };
      return {
        ok: true,
        answer: {
          verdict: 'affirming',
          ...(state.intervalS === undefined ? {} : { intervalS: state.intervalS }),
        },
      };
    },
  };
  const ctx = { fs: memFs({ '/app/main.js': 'x' }), proc: fakeProcess(), shell: headlessShell() };
  const attempts: string[] = [];
  const agent = new AttestationAgent({
    transport,
    keyStore,
    collect: () => collectAll(ctx),
    readerStatus: (challenge) => {
      statusFor.push(challenge);
      return Promise.resolve({ status: 'c3RhdHVz', signature: 'c2ln', chain: ['Y2VydA'] });
    },
    clock,
    defaultIntervalMs: 120_000,
    onAttempt: (e) => attempts.push(`${e.purpose}:${e.ok ? 'ok' : e.code}`),
  });
  return { agent, clock, sent, challenges, statusFor, state, attempts, keyStore };
}

describe('AttestationAgent', () => {
  it('attests at start with signed evidence, the counter reserved first, the reader status for that challenge', async () => {
    const s = await setup();
    const r = await s.agent.start();
    expect(r).toEqual({ ok: true, answer: { verdict: 'affirming', intervalS: 60 } });
    expect(s.sent).toHaveLength(1);
    const e = s.sent[0];
    expect(e?.sigOk).toBe(true);
    expect(e?.claims).toMatchObject({
      iss: 'term-7',
      purpose: 'startup',
      counter: 42,
      challenge: s.challenges[0],
    });
    expect(e?.counterInStore).toBe(42);
    expect(s.statusFor).toEqual([s.challenges[0]]);
    expect(e?.claims.reader).toEqual({ status: 'c3RhdHVz', signature: 'c2ln', chain: ['Y2VydA'] });
    expect(e?.claims.nonce).toBeUndefined();
    s.agent.stop();
  });

  it('keeps the periodic schedule at the interval the back-end sets, also after a failure', async () => {
    const s = await setup();
    await s.agent.start();
    expect(s.agent.intervalMs).toBe(60_000);
    s.clock.advance(59_999);
    await settle();
    expect(s.sent).toHaveLength(1);
    s.state.fail = true;
    s.clock.advance(1);
    await until(() => s.attempts.length === 2 && s.clock.timer.size === 1, 'the periodic attempt');
    expect(s.sent.map((x) => x.claims.purpose)).toEqual(['startup', 'periodic']);
    s.state.fail = false;
    s.state.intervalS = 30;
    s.clock.advance(60_000);
    await until(() => s.attempts.length === 3 && s.clock.timer.size === 1, 'the next periodic attempt');
    expect(s.sent).toHaveLength(3);
    expect(s.agent.intervalMs).toBe(30_000);
    s.clock.advance(30_000);
    await until(() => s.attempts.length === 4 && s.clock.timer.size === 1, 'the attempt at the new interval');
    expect(s.sent.map((x) => x.claims.counter)).toEqual([42, 43, 44, 45]);
    expect(s.attempts).toEqual(['startup:ok', 'periodic:POS_ERR_UNAVAILABLE', 'periodic:ok', 'periodic:ok']);
    s.agent.stop();
    // Stopped: no timer is left, so nothing can fire.
    expect(s.clock.timer.size).toBe(0);
  });

  it('binds pre-PIN evidence to the reader nonce, and runs attempts one at a time in call order', async () => {
    const s = await setup();
    const nonce = 'bm9uY2Utb2YtdGhlLXJlYWRlcg';
    const [a, b, c] = await Promise.all([
      s.agent.beforeTransaction(),
      s.agent.prePin(nonce),
      s.agent.attest('periodic'),
    ]);
    expect([a.ok, b.ok, c.ok]).toEqual([true, true, true]);
    expect(s.sent.map((x) => [x.claims.purpose, x.claims.counter])).toEqual([
      ['pre-transaction', 42],
      ['pre-pin', 43],
      ['periodic', 44],
    ]);
    expect(s.sent[1]?.claims.nonce).toBe(nonce);
    expect(s.sent[1]?.nonce).toBe(nonce);
  });

  it('does not attest before enrollment', async () => {
    const s = await setup({ enrolled: false });
    expect(await s.agent.attest('startup')).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_NOT_ENROLLED',
    });
    expect(s.sent).toHaveLength(0);
  });
});
