/**
 * Every verifier's pass and each way it fails, through appraiseEvidence (the way the service calls
 * them), and the scenarios of issue 4 point 12: replay, reused challenge, counter regression, forged
 * signature, terminal A's evidence under terminal B's id, unknown measurements, a verifier that throws.
 */
import { describe, expect, it } from 'vitest';
import { toBase64url, type EvidenceClaims } from '@pos/shared';
import {
  appraiseEvidence,
  DEFAULT_POLICY,
  DEFAULT_VERIFIERS,
  evaluatePolicy,
  type Appraisal,
  type AppraisalInput,
  type EvidenceVerifier,
} from '../../src/attestation/index';
import {
  NOW,
  READER_SERIAL,
  REFERENCE,
  challengeCtx,
  challengeValue,
  claims,
  deviceKey,
  goodMeasurements,
  input,
  readerEvidence,
  sign,
  standInReaderVerifier,
  terminal,
  type DeviceKey,
} from './helpers';

const key = deviceKey();

function outcome(a: Appraisal, verifier: string) {
  return a.outcomes.find((o) => o.verifier === verifier);
}

async function appraiseWith(over: Parameters<typeof input>[1]): Promise<Appraisal> {
  return appraiseEvidence(input(key, over));
}

async function expectCode(a: Appraisal | Promise<Appraisal>, verifier: string, status: string, code: string) {
  const o = outcome(await a, verifier);
  expect(o, verifier).toBeDefined();
  expect({ status: o?.status, code: o?.code }).toEqual({ status, code });
}

describe('the happy path', () => {
  it('passes every verifier and earns affirming', async () => {
    const a = await appraiseWith({});
    expect(a.outcomes.filter((o) => o.status !== 'pass')).toEqual([]);
    expect(a.outcomes.map((o) => o.verifier)).toEqual([
      'format',
      'signature',
      'subject',
      'challenge',
      'counter',
      'clock',
      'purpose',
      'reader',
      'release',
      'shell',
      'fuses',
      'runtime',
      'environment',
    ]);
    expect(a.signatureValid).toBe(true);
    expect(a.trustVector['instance-identity']).toBe(2);
    const v = evaluatePolicy(DEFAULT_POLICY, a);
    expect(v).toMatchObject({ tier: 'affirming', halt: false, reasons: [], policyVersion: 'dev-2' });
  });
});

describe('format', () => {
  it.each([
    ['not a JWS', 'abc', 'POS_ERR_EVIDENCE_MALFORMED'],
    ['empty', '', 'POS_ERR_EVIDENCE_MALFORMED'],
    ['too large', 'a'.repeat(70_000), 'POS_ERR_EVIDENCE_TOO_LARGE'],
  ])('%s → %s', async (_name, jws, code) => {
    const a = await appraiseWith({ input: { evidenceJws: jws } });
    await expectCode(a, 'format', 'fail', code);
    expect(a.claims).toBeUndefined();
    expect(evaluatePolicy(DEFAULT_POLICY, a).tier).toBe('none');
  });

  it('refuses another algorithm', async () => {
    const good = input(key).evidenceJws.split('.');
    const header = toBase64url(
      new TextEncoder().encode(JSON.stringify({ alg: 'HS256', typ: 'pos-evidence+jwt' })),
    );
    await expectCode(
      appraiseWith({ input: { evidenceJws: `${header}.${good[1]}.${good[2]}` } }),
      'format',
      'fail',
      'POS_ERR_EVIDENCE_ALGORITHM',
    );
  });

  it('refuses claims of the wrong shape (unknown member)', async () => {
    const good = input(key).evidenceJws.split('.');
    const body = JSON.parse(Buffer.from(good[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
    const bad = toBase64url(new TextEncoder().encode(JSON.stringify({ ...body, extra: 1 })));
    await expectCode(
      appraiseWith({ input: { evidenceJws: `${good[0]}.${bad}.${good[2]}` } }),
      'format',
      'fail',
      'POS_ERR_EVIDENCE_CLAIMS',
    );
  });
});

describe('signature', () => {
  it('fails a forged signature (another key) with 99 and contraindicated', async () => {
    const other = deviceKey();
    const i = input(key);
    const c = claims({}, i.challenge?.value);
    const a = await appraiseEvidence({ ...i, evidenceJws: sign(c, other) });
    await expectCode(a, 'signature', 'fail', 'POS_ERR_ATTEST_SIGNATURE');
    expect(a.signatureValid).toBe(false);
    expect(a.trustVector['instance-identity']).toBe(99);
    expect(evaluatePolicy(DEFAULT_POLICY, a)).toMatchObject({ tier: 'contraindicated', halt: true });
  });

  it('fails an altered payload', async () => {
    const i = input(key);
    const [h, , s] = i.evidenceJws.split('.');
    const c = claims({ counter: 6 }, i.challenge?.value);
    const p = toBase64url(new TextEncoder().encode(JSON.stringify(c)));
    await expectCode(
      appraiseEvidence({ ...i, evidenceJws: `${h}.${p}.${s}` }),
      'signature',
      'fail',
      'POS_ERR_ATTEST_SIGNATURE',
    );
  });

  it('enrollment: passes with the header key being enrolled', async () => {
    const a = await appraiseWith({
      claims: { iss: 'enrolling', purpose: 'enrollment', counter: 0 },
      jwk: true,
      input: { terminal: terminal(key, { lastCounter: -1, terminalId: 'term_new' }) },
    });
    expect(outcome(a, 'signature')?.status).toBe('pass');
  });

  it('enrollment: fails without a header key', async () => {
    await expectCode(
      appraiseWith({ claims: { iss: 'enrolling', purpose: 'enrollment', counter: 0 } }),
      'signature',
      'fail',
      'POS_ERR_ATTEST_JWK_MISSING',
    );
  });

  it('enrollment: fails when the header key is not the key being enrolled', async () => {
    const other = deviceKey();
    const i = input(key, { claims: { iss: 'enrolling', purpose: 'enrollment', counter: 0 } });
    const c = claims({ iss: 'enrolling', purpose: 'enrollment', counter: 0 }, i.challenge?.value);
    const a = await appraiseEvidence({ ...i, evidenceJws: sign(c, other, true) });
    await expectCode(a, 'signature', 'fail', 'POS_ERR_ATTEST_KEY_MISMATCH');
  });

  it('fails a header key outside enrollment', async () => {
    await expectCode(appraiseWith({ jwk: true }), 'signature', 'fail', 'POS_ERR_ATTEST_JWK_UNEXPECTED');
  });

  it('fails when the enrolled thumbprint does not match the enrolled key', async () => {
    const other = deviceKey();
    await expectCode(
      appraiseWith({ input: { terminal: terminal(key, { deviceJkt: other.jkt }) } }),
      'signature',
      'fail',
      'POS_ERR_ATTEST_KEY_MISMATCH',
    );
  });
});

describe('subject', () => {
  it("terminal A's evidence under terminal B's id is refused (subject and signature)", async () => {
    const keyB: DeviceKey = deviceKey();
    const i = input(key); // signed by A, iss term_A
    const a = await appraiseEvidence({
      ...i,
      terminal: terminal(keyB, { terminalId: 'term_B' }),
      challenge: challengeCtx(i.challenge?.value ?? '', { terminalId: 'term_B' }),
    });
    await expectCode(a, 'subject', 'fail', 'POS_ERR_ATTEST_SUBJECT');
    await expectCode(a, 'signature', 'fail', 'POS_ERR_ATTEST_SIGNATURE');
    expect(evaluatePolicy(DEFAULT_POLICY, a).tier).toBe('contraindicated');
  });

  it('enrollment evidence naming another terminal fails', async () => {
    await expectCode(
      appraiseWith({
        claims: { iss: 'term_Z', purpose: 'enrollment', counter: 0 },
        jwk: true,
        input: { terminal: terminal(key, { lastCounter: -1 }) },
      }),
      'subject',
      'fail',
      'POS_ERR_ATTEST_SUBJECT',
    );
  });
});

describe('challenge', () => {
  it('unknown challenge', async () => {
    const a = await appraiseWith({ input: { challenge: undefined } });
    await expectCode(a, 'challenge', 'fail', 'POS_ERR_ATTEST_CHALLENGE_UNKNOWN');
    expect(evaluatePolicy(DEFAULT_POLICY, a).tier).toBe('none');
  });
  it('another challenge', async () => {
    await expectCode(
      appraiseWith({ input: { challenge: challengeCtx(challengeValue()) } }),
      'challenge',
      'fail',
      'POS_ERR_ATTEST_CHALLENGE_MISMATCH',
    );
  });
  it('a reused challenge (replayed evidence) is refused', async () => {
    const i = input(key);
    const first = await appraiseEvidence(i);
    expect(evaluatePolicy(DEFAULT_POLICY, first).tier).toBe('affirming');
    // The service marks the challenge used and stores the counter; the same evidence again:
    const replay = await appraiseEvidence({
      ...i,
      challenge: { ...(i.challenge ?? challengeCtx('')), usedAt: NOW },
      terminal: terminal(key, { lastCounter: 5 }),
    });
    await expectCode(replay, 'challenge', 'fail', 'POS_ERR_ATTEST_CHALLENGE_USED');
    await expectCode(replay, 'counter', 'fail', 'POS_ERR_ATTEST_COUNTER_REGRESSION');
    expect(evaluatePolicy(DEFAULT_POLICY, replay).tier).not.toBe('affirming');
  });
  it('expired', async () => {
    const i = input(key);
    await expectCode(
      appraiseEvidence({ ...i, challenge: { ...(i.challenge ?? challengeCtx('')), expiresAt: NOW } }),
      'challenge',
      'fail',
      'POS_ERR_ATTEST_CHALLENGE_EXPIRED',
    );
  });
  it('issued to another terminal', async () => {
    const i = input(key);
    await expectCode(
      appraiseEvidence({ ...i, challenge: { ...(i.challenge ?? challengeCtx('')), terminalId: 'term_B' } }),
      'challenge',
      'fail',
      'POS_ERR_ATTEST_CHALLENGE_TERMINAL',
    );
  });
  it('an enrollment challenge (terminal null) is not accepted for a terminal', async () => {
    const i = input(key);
    await expectCode(
      appraiseEvidence({ ...i, challenge: { ...(i.challenge ?? challengeCtx('')), terminalId: null } }),
      'challenge',
      'fail',
      'POS_ERR_ATTEST_CHALLENGE_TERMINAL',
    );
  });
});

describe('counter', () => {
  it.each([
    [5, 4, 'pass'],
    [5, 5, 'fail'],
    [3, 4, 'fail'],
    [0, -1, 'pass'],
  ])('counter %i after %i: %s', async (counter, last, status) => {
    const a = await appraiseWith({
      claims: { counter },
      input: { terminal: terminal(key, { lastCounter: last }) },
    });
    expect(outcome(a, 'counter')?.status).toBe(status);
    if (status === 'fail') {
      expect(outcome(a, 'counter')?.code).toBe('POS_ERR_ATTEST_COUNTER_REGRESSION');
      expect(evaluatePolicy(DEFAULT_POLICY, a)).toMatchObject({ tier: 'contraindicated', halt: true });
    }
  });
});

describe('clock', () => {
  it('passes within the window', async () => {
    const a = await appraiseWith({ claims: { time: NOW + 60_000 } });
    expect(outcome(a, 'clock')?.status).toBe('pass');
  });
  it('fails a terminal clock far off: warning, no affirming', async () => {
    const a = await appraiseWith({ claims: { time: NOW - 10 * 60_000 } });
    await expectCode(a, 'clock', 'fail', 'POS_ERR_ATTEST_CLOCK_SKEW');
    expect(evaluatePolicy(DEFAULT_POLICY, a).tier).toBe('warning');
  });
  it('fails an iat far off', async () => {
    await expectCode(
      appraiseWith({ claims: { iat: Math.floor(NOW / 1000) + 3600 } }),
      'clock',
      'fail',
      'POS_ERR_ATTEST_CLOCK_SKEW',
    );
  });
  it('honours a configured window', async () => {
    const a = await appraiseWith({
      claims: { time: NOW + 10_000 },
      input: { options: { clockSkewMs: 5_000, readerVerifier: standInReaderVerifier } },
    });
    expect(outcome(a, 'clock')?.status).toBe('fail');
  });
});

describe('purpose and nonce', () => {
  const nonce = toBase64url(new Uint8Array(16).fill(7));
  it('pre-pin evidence with the expected nonce passes', async () => {
    const a = await appraiseWith({
      claims: { purpose: 'pre-pin', nonce },
      input: { expectedPurpose: 'pre-pin', expectedNonce: nonce },
    });
    expect(outcome(a, 'purpose')?.status).toBe('pass');
  });
  it('another purpose than expected', async () => {
    await expectCode(
      appraiseWith({ input: { expectedPurpose: 'pre-pin', expectedNonce: nonce } }),
      'purpose',
      'fail',
      'POS_ERR_ATTEST_PURPOSE',
    );
  });
  it('another nonce', async () => {
    await expectCode(
      appraiseWith({
        claims: { purpose: 'pre-pin', nonce: toBase64url(new Uint8Array(16).fill(8)) },
        input: { expectedPurpose: 'pre-pin', expectedNonce: nonce },
      }),
      'purpose',
      'fail',
      'POS_ERR_ATTEST_NONCE',
    );
  });
  it('pre-pin without a nonce', async () => {
    await expectCode(
      appraiseWith({ claims: { purpose: 'pre-pin' } }),
      'purpose',
      'fail',
      'POS_ERR_ATTEST_NONCE',
    );
  });
  it('enrollment evidence from an enrolled terminal', async () => {
    await expectCode(
      appraiseWith({ claims: { purpose: 'enrollment', iss: 'enrolling' }, jwk: true }),
      'purpose',
      'fail',
      'POS_ERR_ATTEST_PURPOSE',
    );
  });
  it('other evidence from a terminal not yet enrolled', async () => {
    await expectCode(
      appraiseWith({ input: { terminal: terminal(key, { lastCounter: -1 }) } }),
      'purpose',
      'fail',
      'POS_ERR_ATTEST_PURPOSE',
    );
  });
  it('a nonce outside pre-pin', async () => {
    await expectCode(appraiseWith({ claims: { nonce } }), 'purpose', 'fail', 'POS_ERR_ATTEST_NONCE');
  });
});

describe('reader', () => {
  it('absent reader status is unknown, not ok', async () => {
    const i = input(key);
    const c = claims({}, i.challenge?.value);
    delete (c as Partial<EvidenceClaims>).reader;
    const a = await appraiseEvidence({ ...i, evidenceJws: sign(c, key) });
    await expectCode(a, 'reader', 'unknown', 'POS_ERR_ATTEST_READER_ABSENT');
    expect(a.trustVector.hardware).toBe(0);
    expect(evaluatePolicy(DEFAULT_POLICY, a).tier).toBe('warning');
  });
  it('no verifier configured is unknown', async () => {
    await expectCode(
      appraiseWith({ input: { options: {} } }),
      'reader',
      'unknown',
      'POS_ERR_ATTEST_READER_UNVERIFIABLE',
    );
  });
  it('no CA root is unknown', async () => {
    await expectCode(
      appraiseWith({ input: { readerCaRoots: [] } }),
      'reader',
      'unknown',
      'POS_ERR_ATTEST_READER_UNVERIFIABLE',
    );
  });
  it('a bad reader signature fails', async () => {
    await expectCode(
      appraiseWith({ claims: { reader: readerEvidence({}, 'bad') } }),
      'reader',
      'fail',
      'POS_ERR_ATTEST_READER_SIGNATURE',
    );
  });
  it('a tampered reader fails and halts', async () => {
    const a = await appraiseWith({ claims: { reader: readerEvidence({ tampered: true }) } });
    await expectCode(a, 'reader', 'fail', 'POS_ERR_ATTEST_READER_TAMPERED');
    expect(evaluatePolicy(DEFAULT_POLICY, a).halt).toBe(true);
  });
  it('a reader other than the paired one fails', async () => {
    await expectCode(
      appraiseWith({ claims: { reader: readerEvidence({ serial: 'SIM-9999' }) } }),
      'reader',
      'fail',
      'POS_ERR_ATTEST_READER_MISMATCH',
    );
  });
  it('no paired reader is unknown', async () => {
    const i = input(key);
    const t = terminal(key);
    delete t.readerSerial;
    await expectCode(
      appraiseEvidence({ ...i, terminal: t }),
      'reader',
      'unknown',
      'POS_ERR_ATTEST_READER_UNPAIRED',
    );
  });
  it('an old status fails as stale', async () => {
    await expectCode(
      appraiseWith({ claims: { reader: readerEvidence({ time: NOW - 3_600_000 }) } }),
      'reader',
      'fail',
      'POS_ERR_ATTEST_READER_STALE',
    );
  });
  it('a status echoing this challenge is fresh whatever its clock', async () => {
    const value = challengeValue();
    const c = claims({ reader: readerEvidence({ challenge: value, time: 0 }) }, value);
    const a = await appraiseEvidence({
      ...input(key),
      evidenceJws: sign(c, key),
      challenge: challengeCtx(value),
    });
    expect(outcome(a, 'reader')?.status).toBe('pass');
  });
  it('a status echoing another challenge is stale', async () => {
    await expectCode(
      appraiseWith({ claims: { reader: readerEvidence({ challenge: challengeValue() }) } }),
      'reader',
      'fail',
      'POS_ERR_ATTEST_READER_STALE',
    );
  });
  describe('pre-PIN freshness (L4)', () => {
    const nonce = toBase64url(new Uint8Array(16).fill(7));
    const prePin = (
      report: Parameters<typeof readerEvidence>[0],
      readerStatusSeq?: (serial: string, seq: number) => boolean,
    ): Promise<Appraisal> =>
      appraiseWith({
        claims: { purpose: 'pre-pin', nonce, reader: readerEvidence(report) },
        input: {
          expectedPurpose: 'pre-pin',
          expectedNonce: nonce,
          options: {
            readerVerifier: standInReaderVerifier,
            ...(readerStatusSeq === undefined ? {} : { readerStatusSeq }),
          },
        },
      });
    it('without the challenge echo, a status more than 5 s old is stale for pre-PIN (not for periodic)', async () => {
      await expectCode(prePin({ time: NOW - 6_000 }), 'reader', 'fail', 'POS_ERR_ATTEST_READER_STALE');
      expect(outcome(await prePin({ time: NOW - 4_000 }), 'reader')?.status).toBe('pass');
      const periodic = await appraiseWith({ claims: { reader: readerEvidence({ time: NOW - 6_000 }) } });
      expect(outcome(periodic, 'reader')?.status).toBe('pass');
    });
    it('the status seq must be above every one seen from the reader; periodic evidence only records it', async () => {
      const seen = new Map<string, number>();
      const advance = (serial: string, seq: number): boolean => {
        if (seq <= (seen.get(serial) ?? -1)) return false;
        seen.set(serial, seq);
        return true;
      };
      expect(outcome(await prePin({ seq: 5 }, advance), 'reader')?.status).toBe('pass');
      await expectCode(prePin({ seq: 5 }, advance), 'reader', 'fail', 'POS_ERR_ATTEST_READER_REPLAYED');
      await expectCode(prePin({ seq: 4 }, advance), 'reader', 'fail', 'POS_ERR_ATTEST_READER_REPLAYED');
      const periodic = await appraiseWith({
        claims: { reader: readerEvidence({ seq: 7 }) },
        input: { options: { readerVerifier: standInReaderVerifier, readerStatusSeq: advance } },
      });
      expect(outcome(periodic, 'reader')?.status).toBe('pass');
      await expectCode(prePin({ seq: 6 }, advance), 'reader', 'fail', 'POS_ERR_ATTEST_READER_REPLAYED');
      expect(outcome(await prePin({ seq: 8 }, advance), 'reader')?.status).toBe('pass');
    });
    it('a pre-PIN status without a seq is refused', async () => {
      const a = await appraiseWith({
        claims: {
          purpose: 'pre-pin',
          nonce,
          reader: {
            ...readerEvidence(),
            status: toBase64url(
              new TextEncoder().encode(JSON.stringify({ serial: READER_SERIAL, tampered: false, time: NOW })),
            ),
          },
        },
        input: { expectedPurpose: 'pre-pin', expectedNonce: nonce },
      });
      await expectCode(a, 'reader', 'fail', 'POS_ERR_ATTEST_READER_REPLAYED');
      expect(evaluatePolicy(DEFAULT_POLICY, a).tier).not.toBe('affirming');
    });
  });
  it('a reader verifier that throws is an error, hence contraindicated', async () => {
    const a = await appraiseWith({
      input: {
        options: {
          readerVerifier: {
            verify() {
              throw new Error('boom');
            },
          },
        },
      },
    });
    await expectCode(a, 'reader', 'error', 'POS_ERR_ATTEST_VERIFIER_ERROR');
    expect(evaluatePolicy(DEFAULT_POLICY, a)).toMatchObject({ tier: 'contraindicated', halt: true });
  });
});

describe('release, shell, fuses, executable', () => {
  it('unknown version', async () => {
    await expectCode(
      appraiseWith({ claims: { app: { version: '9.9.9', build: 'release', codeHash: 'ab'.repeat(32) } } }),
      'release',
      'fail',
      'POS_ERR_ATTEST_RELEASE_UNKNOWN',
    );
  });
  it('a development build against release reference values is unknown', async () => {
    await expectCode(
      appraiseWith({
        claims: { app: { version: '1.2.3', build: 'development', codeHash: 'ab'.repeat(32) } },
      }),
      'release',
      'fail',
      'POS_ERR_ATTEST_RELEASE_UNKNOWN',
    );
  });
  it('a modified app (code hash) is contraindicated', async () => {
    const a = await appraiseWith({
      claims: { app: { version: '1.2.3', build: 'release', codeHash: 'cd'.repeat(32) } },
    });
    await expectCode(a, 'release', 'fail', 'POS_ERR_ATTEST_CODE_HASH');
    expect(evaluatePolicy(DEFAULT_POLICY, a).tier).toBe('contraindicated');
  });
  it('the code hash compares case-insensitively', async () => {
    const a = await appraiseWith({
      claims: { app: { version: '1.2.3', build: 'release', codeHash: 'AB'.repeat(32) } },
    });
    expect(outcome(a, 'release')?.status).toBe('pass');
  });
  it('a shell the release does not allow', async () => {
    const a = await appraiseWith({ claims: { shell: 'browser' } });
    await expectCode(a, 'shell', 'fail', 'POS_ERR_ATTEST_SHELL_NOT_ALLOWED');
    expect(outcome(a, 'fuses')).toBeUndefined();
  });
  it('fuses differ', async () => {
    const m = goodMeasurements().map((x) => (x.name === 'fuses' ? { ...x, value: '------' } : x));
    await expectCode(appraiseWith({ claims: { measurements: m } }), 'fuses', 'fail', 'POS_ERR_ATTEST_FUSES');
  });
  it('fuses measurement failed', async () => {
    const m = goodMeasurements().map((x) => (x.name === 'fuses' ? { ...x, status: 'fail' as const } : x));
    await expectCode(appraiseWith({ claims: { measurements: m } }), 'fuses', 'fail', 'POS_ERR_ATTEST_FUSES');
  });
  it('fuses unknown is unknown, not ok', async () => {
    const m = goodMeasurements().map((x) => (x.name === 'fuses' ? { ...x, status: 'unknown' as const } : x));
    const a = await appraiseWith({ claims: { measurements: m } });
    await expectCode(a, 'fuses', 'unknown', 'POS_ERR_ATTEST_MEASUREMENT_UNKNOWN');
    expect(a.trustVector.configuration).toBe(0);
  });
  it('executable hash pinned by the release: pass, unknown, fail', async () => {
    const refs = [{ ...REFERENCE, executableHashes: ['11'.repeat(32)] }];
    const withExe = (status: 'ok' | 'fail' | 'unknown', value: string) => [
      ...goodMeasurements(),
      { name: 'executable-hash', status, method: 'sha256', value },
    ];
    const pass = await appraiseWith({
      claims: { measurements: withExe('ok', '11'.repeat(32)) },
      input: { referenceValues: refs },
    });
    expect(outcome(pass, 'executable')?.status).toBe('pass');
    await expectCode(
      appraiseWith({ claims: { measurements: withExe('unknown', '') }, input: { referenceValues: refs } }),
      'executable',
      'unknown',
      'POS_ERR_ATTEST_MEASUREMENT_UNKNOWN',
    );
    await expectCode(
      appraiseWith({
        claims: { measurements: withExe('ok', '22'.repeat(32)) },
        input: { referenceValues: refs },
      }),
      'executable',
      'fail',
      'POS_ERR_ATTEST_EXECUTABLE_HASH',
    );
  });
});

describe('runtime and environment signals', () => {
  it.each(['debugger', 'inspector', 'devtools', 'node-options', 'run-as-node', 'suspicious-env'])(
    '%s failed → runtime tampered, contraindicated',
    async (name) => {
      const m = goodMeasurements().map((x) => (x.name === name ? { ...x, status: 'fail' as const } : x));
      const a = await appraiseWith({ claims: { measurements: m } });
      await expectCode(a, 'runtime', 'fail', 'POS_ERR_ATTEST_RUNTIME_TAMPERED');
      expect(evaluatePolicy(DEFAULT_POLICY, a)).toMatchObject({ tier: 'contraindicated', halt: true });
    },
  );
  it.each(['debugger', 'node-options'])('%s unknown or missing → unknown, not affirming', async (name) => {
    const unknownM = goodMeasurements().map((x) =>
      x.name === name ? { ...x, status: 'unknown' as const } : x,
    );
    const missing = goodMeasurements().filter((x) => x.name !== name);
    for (const m of [unknownM, missing]) {
      const a = await appraiseWith({ claims: { measurements: m } });
      await expectCode(a, 'runtime', 'unknown', 'POS_ERR_ATTEST_MEASUREMENT_UNKNOWN');
      const v = evaluatePolicy(DEFAULT_POLICY, a);
      expect(v.tier).toBe('warning');
      expect(v.reasons.map((r) => r.code)).toContain('POS_ERR_ATTEST_MEASUREMENT_UNKNOWN');
    }
  });
  it.each(['virtual-machine', 'remote-session', 'screen-capture-protection'])(
    '%s failed → warning',
    async (name) => {
      const m = goodMeasurements().map((x) => (x.name === name ? { ...x, status: 'fail' as const } : x));
      const a = await appraiseWith({ claims: { measurements: m } });
      await expectCode(a, 'environment', 'fail', 'POS_ERR_ATTEST_ENVIRONMENT_RISK');
      expect(evaluatePolicy(DEFAULT_POLICY, a).tier).toBe('warning');
    },
  );
  it('an environment signal unknown is reported but, not being required by the dev policy, does not block', async () => {
    const m = goodMeasurements().filter((x) => x.name !== 'virtual-machine');
    const a = await appraiseWith({ claims: { measurements: m } });
    await expectCode(a, 'environment', 'unknown', 'POS_ERR_ATTEST_MEASUREMENT_UNKNOWN');
    // runtime-opaque holds the unknown (0), so the category is not affirming:
    expect(a.trustVector['runtime-opaque']).toBe(0);
  });
});

describe('verifier errors fail closed', () => {
  const throwing: EvidenceVerifier = {
    name: 'boom',
    category: 'configuration',
    verify() {
      throw new Error('kaboom');
    },
  };
  const rejecting: EvidenceVerifier = {
    name: 'reject',
    category: 'executables',
    verify: () => Promise.reject(new Error('no')),
  };

  it.each([throwing, rejecting])(
    'a verifier that throws ($name) yields an error outcome and contraindicated',
    async (v) => {
      const a = await appraiseWith({ input: { verifiers: [...DEFAULT_VERIFIERS, v] } });
      await expectCode(a, v.name, 'error', 'POS_ERR_ATTEST_VERIFIER_ERROR');
      expect(a.trustVector[v.category]).toBe(1);
      const verdict = evaluatePolicy(DEFAULT_POLICY, a);
      expect(verdict).toMatchObject({ tier: 'contraindicated', halt: true });
      expect(verdict.reasons.map((r) => r.code)).toContain('POS_ERR_ATTEST_VERIFIER_ERROR');
    },
  );

  it('appraiseEvidence never throws, even on a broken input object', async () => {
    const broken = { evidenceJws: input(key).evidenceJws, now: NOW } as unknown as AppraisalInput;
    const a = await appraiseEvidence(broken);
    expect(a.outcomes.some((o) => o.status === 'error')).toBe(true);
    expect(evaluatePolicy(DEFAULT_POLICY, a).tier).toBe('contraindicated');
  });
});

describe('verifyEs256 and its key cache', () => {
  it('verifies with and without the cache, and across evictions', async () => {
    const { setDeviceKeyCacheLimit, verifyEs256 } = await import('../../src/attestation/index');
    const { parseEvidence } = await import('@pos/shared');
    const keys = [deviceKey(), deviceKey(), deviceKey()];
    const parsed = keys.map((k) => {
      const p = parseEvidence(sign(claims(), k));
      if (!p.ok) throw new Error(p.code);
      return p;
    });
    for (const limit of [0, 1, 2, 100]) {
      setDeviceKeyCacheLimit(limit);
      for (let round = 0; round < 2; round++) {
        keys.forEach((k, i) => {
          const p = parsed[i];
          if (p === undefined) throw new Error('fixture');
          expect(verifyEs256(k.jwk, p.signingInput, p.signature)).toBe(true);
          const other = keys[(i + 1) % keys.length];
          if (other === undefined) throw new Error('fixture');
          expect(verifyEs256(other.jwk, p.signingInput, p.signature)).toBe(false);
        });
      }
    }
    setDeviceKeyCacheLimit(20_000);
  });
});
