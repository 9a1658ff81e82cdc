/** The policy language: schema, fail-closed evaluation, shipped policies, shadow mode, reasons. */
import { describe, expect, it } from 'vitest';
import {
  appraiseEvidence,
  DEFAULT_POLICY,
  evaluatePolicy,
  parsePolicy,
  policyTooDeep,
  PolicySchema,
  PRODUCTION_POLICY,
  tierOfValue,
  moreSevere,
  type Appraisal,
  type Policy,
} from '../../src/attestation/index';
import { REFERENCE, REFERENCE_BROWSER, deviceKey, goodMeasurements, input } from './helpers';

const key = deviceKey();
const appraise = (over: Parameters<typeof input>[1] = {}): Promise<Appraisal> =>
  appraiseEvidence(input(key, over));

describe('AR4SI value ranges', () => {
  it.each([
    [0, 'none'],
    [1, 'none'],
    [-1, 'none'],
    [2, 'affirming'],
    [31, 'affirming'],
    [32, 'warning'],
    [95, 'warning'],
    [96, 'contraindicated'],
    [127, 'contraindicated'],
    [-2, 'affirming'],
    [-33, 'warning'],
    [-97, 'contraindicated'],
  ])('%i is %s', (value, tier) => {
    expect(tierOfValue(value)).toBe(tier);
  });
  it('severity: contraindicated > warning > none > affirming', () => {
    expect(moreSevere(2, 0)).toBe(0);
    expect(moreSevere(0, 32)).toBe(32);
    expect(moreSevere(96, 32)).toBe(96);
    expect(moreSevere(96, 99)).toBe(99);
  });
});

describe('policy schema', () => {
  it('accepts the shipped policies', () => {
    expect(PolicySchema.safeParse(DEFAULT_POLICY).success).toBe(true);
    expect(PolicySchema.safeParse(PRODUCTION_POLICY).success).toBe(true);
    expect(parsePolicy(JSON.parse(JSON.stringify(PRODUCTION_POLICY))).ok).toBe(true);
  });
  it.each([
    ['unknown member', { ...DEFAULT_POLICY, extra: true }],
    ['a relaxing effect', { ...DEFAULT_POLICY, rules: [{ ...DEFAULT_POLICY.rules[0], effect: 'affirm' }] }],
    [
      'a value outside the effect range',
      { ...DEFAULT_POLICY, rules: [{ ...DEFAULT_POLICY.rules[0], value: 99 }] },
    ],
    [
      'an unknown category',
      { ...DEFAULT_POLICY, rules: [{ ...DEFAULT_POLICY.rules[0], category: 'vibes' }] },
    ],
    [
      'a bad condition',
      { ...DEFAULT_POLICY, rules: [{ ...DEFAULT_POLICY.rules[0], when: { colour: ['red'] } }] },
    ],
    ['no version', { ...DEFAULT_POLICY, version: '' }],
    ['not an object', 'policy'],
  ])('refuses %s with POS_ERR_POLICY_INVALID', (_n, doc) => {
    const r = parsePolicy(doc);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.code).toBe('POS_ERR_POLICY_INVALID');
  });
});

describe('policy nesting depth', () => {
  const nested = (levels: number, wrap: (c: unknown) => unknown): unknown => {
    let c: unknown = { shell: ['browser'] };
    for (let i = 1; i < levels; i++) c = wrap(c);
    return c;
  };
  const withCondition = (when: unknown): unknown => ({
    ...DEFAULT_POLICY,
    rules: [{ ...DEFAULT_POLICY.rules[0], when }],
  });
  it('accepts 16 levels of not, all and any; refuses 17 with POS_ERR_POLICY_TOO_DEEP', () => {
    for (const wrap of [
      (c: unknown) => ({ not: c }),
      (c: unknown) => ({ all: [c] }),
      (c: unknown) => ({ any: [c] }),
    ]) {
      expect(parsePolicy(withCondition(nested(16, wrap))).ok).toBe(true);
      const deep = parsePolicy(withCondition(nested(17, wrap)));
      expect(deep.ok ? '' : deep.code).toBe('POS_ERR_POLICY_TOO_DEEP');
    }
  });
  it('walks a 5,000-level document iteratively (no stack overflow), anywhere in it', () => {
    expect(policyTooDeep(withCondition(nested(5000, (c) => ({ not: c }))))).toBe(true);
    expect(policyTooDeep({ ...DEFAULT_POLICY, description: nested(5000, (c) => [c]) })).toBe(true);
    expect(policyTooDeep(DEFAULT_POLICY)).toBe(false);
  });
});

describe('shipped policies', () => {
  it('development allows PIN entry (affirming) from the browser shell where the release allows it', async () => {
    const a = await appraise({
      claims: { shell: 'browser' },
      input: { referenceValues: [REFERENCE_BROWSER] },
    });
    expect(evaluatePolicy(DEFAULT_POLICY, a).tier).toBe('affirming');
  });
  it('the browser shell as it really measures (devtools and screen capture unknown): development affirms, production refuses, Electron would not pass', async () => {
    const real = goodMeasurements().map((m) =>
      m.name === 'devtools' || m.name === 'screen-capture-protection'
        ? { ...m, status: 'unknown' as const }
        : m,
    );
    const browser = await appraise({
      claims: { shell: 'browser', measurements: real },
      input: { referenceValues: [REFERENCE_BROWSER] },
    });
    expect(browser.outcomes.find((o) => o.verifier === 'runtime')?.status).toBe('pass');
    expect(evaluatePolicy(DEFAULT_POLICY, browser).tier).toBe('affirming');
    expect(evaluatePolicy(PRODUCTION_POLICY, browser).tier).toBe('warning');
    // The same unknown devtools from the Electron shell, which can see its windows, is not a pass.
    const electron = await appraise({ claims: { measurements: real } });
    expect(electron.outcomes.find((o) => o.verifier === 'runtime')?.status).toBe('unknown');
    expect(evaluatePolicy(DEFAULT_POLICY, electron).tier).toBe('warning');
    // A browser shell that leaves devtools out, or reports it failed, does not pass either.
    for (const devtools of ['absent', 'fail'] as const) {
      const m = real.flatMap((x) =>
        x.name !== 'devtools' ? [x] : devtools === 'absent' ? [] : [{ ...x, status: 'fail' as const }],
      );
      const a = await appraise({
        claims: { shell: 'browser', measurements: m },
        input: { referenceValues: [REFERENCE_BROWSER] },
      });
      expect(a.outcomes.find((o) => o.verifier === 'runtime')?.status).toBe(
        devtools === 'absent' ? 'unknown' : 'fail',
      );
      expect(evaluatePolicy(DEFAULT_POLICY, a).tier).not.toBe('affirming');
    }
  });
  it('production refuses PIN entry from the browser shell (warning, with a readable reason)', async () => {
    const a = await appraise({
      claims: { shell: 'browser' },
      input: { referenceValues: [REFERENCE_BROWSER] },
    });
    const v = evaluatePolicy(PRODUCTION_POLICY, a);
    expect(v.tier).toBe('warning');
    expect(v.halt).toBe(false);
    expect(v.trustVector.configuration).toBe(32);
    expect(v.reasons).toContainEqual({
      code: 'BROWSER_SHELL_NO_PIN',
      text: 'PIN entry is not allowed from a web browser; use the desktop app.',
    });
  });
  it('production affirms the electron shell when the release pins its executable', async () => {
    const exe = '11'.repeat(32);
    const refs = [{ ...REFERENCE, executableHashes: [exe] }];
    const measurements = [
      ...goodMeasurements(),
      { name: 'executable-hash', status: 'ok' as const, method: 'sha256', value: exe },
    ];
    const a = await appraise({ claims: { measurements }, input: { referenceValues: refs } });
    expect(evaluatePolicy(PRODUCTION_POLICY, a).tier).toBe('affirming');
    // Without an executable measurement the required verifier makes no claim: not affirming.
    const b = await appraise({ input: { referenceValues: refs } });
    expect(evaluatePolicy(PRODUCTION_POLICY, b).tier).toBe('warning');
  });
  it('production contraindicates a remote session; development warns', async () => {
    const m = goodMeasurements().map((x) =>
      x.name === 'remote-session' ? { ...x, status: 'fail' as const } : x,
    );
    const a = await appraise({ claims: { measurements: m } });
    expect(evaluatePolicy(DEFAULT_POLICY, a).tier).toBe('warning');
    const prod = evaluatePolicy(PRODUCTION_POLICY, a);
    expect(prod).toMatchObject({ tier: 'contraindicated', halt: true });
    expect(prod.reasons.map((r) => r.code)).toContain('REMOTE_SESSION');
  });
  it('an unknown environment is not affirming, whether the policy requires the verifier (production) or not (development)', async () => {
    const m = goodMeasurements().filter((x) => x.name !== 'screen-capture-protection');
    const a = await appraise({ claims: { measurements: m } });
    expect(evaluatePolicy(DEFAULT_POLICY, a).tier).toBe('warning');
    expect(evaluatePolicy(PRODUCTION_POLICY, a).tier).toBe('warning');
  });
});

describe('tolerateUnknown (environment hints a machine cannot show)', () => {
  const withHints = (hints: Record<string, 'ok' | 'fail' | 'unknown' | 'absent'>) =>
    goodMeasurements().flatMap((m) => {
      const h = hints[m.name];
      if (h === undefined) return [m];
      if (h === 'absent') return [];
      return [{ ...m, status: h }];
    });

  it('development: a reported unknown virtual-machine hint is affirming, and says so in its reasons', async () => {
    const a = await appraise({ claims: { measurements: withHints({ 'virtual-machine': 'unknown' }) } });
    expect(a.outcomes.find((o) => o.verifier === 'environment')?.status).toBe('unknown');
    const v = evaluatePolicy(DEFAULT_POLICY, a);
    expect(v.tier).toBe('affirming');
    expect(v.reasons.map((r) => r.code)).toEqual(['POS_ERR_ATTEST_MEASUREMENT_UNKNOWN']);
    // Production requires the environment verifier and tolerates nothing.
    expect(evaluatePolicy(PRODUCTION_POLICY, a).tier).toBe('warning');
  });

  it.each([
    ['an absent virtual-machine hint', { 'virtual-machine': 'absent' }],
    ['a failed virtual-machine hint', { 'virtual-machine': 'fail' }],
    [
      'an unknown remote-session hint besides it',
      { 'virtual-machine': 'unknown', 'remote-session': 'unknown' },
    ],
  ] as const)('development: %s is not affirming', async (_what, hints) => {
    const a = await appraise({ claims: { measurements: withHints(hints) } });
    expect(evaluatePolicy(DEFAULT_POLICY, a).tier).toBe('warning');
  });

  it('a policy that requires the environment verifier gets no tolerance from its list', async () => {
    const a = await appraise({ claims: { measurements: withHints({ 'virtual-machine': 'unknown' }) } });
    const strict: Policy = {
      ...DEFAULT_POLICY,
      version: 'strict-1',
      requiredVerifiers: [...DEFAULT_POLICY.requiredVerifiers, 'environment'],
    };
    expect(evaluatePolicy(strict, a).tier).toBe('warning');
  });

  it('no other verifier’s unknown is tolerated: an unknown debugger hint stays at warning', async () => {
    const a = await appraise({
      claims: { measurements: withHints({ 'virtual-machine': 'unknown', debugger: 'unknown' }) },
    });
    expect(evaluatePolicy(DEFAULT_POLICY, a).tier).toBe('warning');
  });

  it('the schema takes only the two environment hints, each once', () => {
    const base = { ...DEFAULT_POLICY, version: 't-1' };
    expect(parsePolicy({ ...base, tolerateUnknown: ['virtual-machine'] }).ok).toBe(true);
    for (const bad of [
      ['debugger'],
      ['reader'],
      ['remote-session'],
      ['virtual-machine', 'virtual-machine'],
    ]) {
      expect(parsePolicy({ ...base, tolerateUnknown: bad })).toMatchObject({
        ok: false,
        code: 'POS_ERR_POLICY_INVALID',
      });
    }
  });
});

describe('evaluation', () => {
  it('rules only escalate: a rule matching a passing appraisal cannot hide a failure', async () => {
    const policy: Policy = {
      ...DEFAULT_POLICY,
      version: 'x',
      rules: [
        {
          id: 'dev-builds-warn',
          when: {
            all: [
              { build: ['release'] },
              { not: { shell: ['browser'] } },
              { any: [{ purpose: ['periodic'] }] },
            ],
          },
          effect: 'warn',
          category: 'executables',
          value: 40,
          reason: { code: 'CUSTOM', text: 'Custom.' },
        },
      ],
    };
    const a = await appraise();
    const v = evaluatePolicy(policy, a);
    expect(v.tier).toBe('warning');
    expect(v.trustVector.executables).toBe(40);
    expect(v.reasons).toEqual([{ code: 'CUSTOM', text: 'Custom.' }]);
  });
  it('verifier and measurement conditions', async () => {
    const policy: Policy = {
      ...DEFAULT_POLICY,
      version: 'y',
      rules: [
        {
          id: 'clock-halts',
          when: { verifier: 'clock', status: ['fail'], code: ['POS_ERR_ATTEST_CLOCK_SKEW'] },
          effect: 'contraindicate',
          category: 'configuration',
          reason: { code: 'CLOCK', text: 'Clock.' },
        },
        {
          id: 'no-tpm',
          when: { measurement: 'tpm', status: ['unknown'] },
          effect: 'warn',
          category: 'hardware',
          reason: { code: 'NO_TPM', text: 'No TPM.' },
        },
      ],
    };
    const good = evaluatePolicy(policy, await appraise());
    expect(good.tier).toBe('warning'); // tpm is not measured → unknown
    expect(good.reasons.map((r) => r.code)).toEqual(['NO_TPM']);
    const skewed = evaluatePolicy(policy, await appraise({ claims: { time: 0 } }));
    expect(skewed.tier).toBe('contraindicated');
  });
  it('unmet: none makes any non-pass outcome refuse tickets', async () => {
    const strict: Policy = { ...DEFAULT_POLICY, version: 'strict', unmet: 'none' };
    const m = goodMeasurements().filter((x) => x.name !== 'virtual-machine');
    const a = await appraise({ claims: { measurements: m } });
    expect(evaluatePolicy(strict, a).tier).toBe('none');
  });
  it('a policy that fails to evaluate yields contraindicated', async () => {
    const broken = { ...DEFAULT_POLICY, rules: [{ when: null }] } as unknown as Policy;
    const v = evaluatePolicy(broken, await appraise());
    expect(v).toMatchObject({ tier: 'contraindicated', halt: true });
    expect(v.reasons[0]?.code).toBe('POS_ERR_ATTEST_POLICY_ERROR');
  });
  it('shadow policies are evaluated and reported but not enforced', async () => {
    const a = await appraise({
      claims: { shell: 'browser' },
      input: { referenceValues: [REFERENCE_BROWSER] },
    });
    const v = evaluatePolicy(DEFAULT_POLICY, a, [PRODUCTION_POLICY]);
    expect(v.tier).toBe('affirming');
    expect(v.policyVersion).toBe('dev-2');
    expect(v.shadow).toEqual([{ policyVersion: 'prod-1', tier: 'warning', halt: false }]);
  });
  it('the verdict carries the appraisal time and purpose', async () => {
    const a = await appraise();
    const v = evaluatePolicy(DEFAULT_POLICY, a);
    expect(v.appraisedAt).toBe(a.appraisedAt);
    expect(v.purpose).toBe('periodic');
  });
  it('every reason has a code and a plain sentence', async () => {
    const m = goodMeasurements().map((x) => ({ ...x, status: 'unknown' as const }));
    const v = evaluatePolicy(DEFAULT_POLICY, await appraise({ claims: { measurements: m, time: 0 } }));
    expect(v.reasons.length).toBeGreaterThan(1);
    for (const r of v.reasons) {
      expect(r.code).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(r.text).toMatch(/^[A-Z].*\.$/);
    }
  });
});

describe('EAR', () => {
  it('renders a verdict as an EAR claims set with the AR4SI vector', async () => {
    const { earOf, EAR_PROFILE } = await import('../../src/attestation/index');
    const v = evaluatePolicy(DEFAULT_POLICY, await appraise());
    const ear = earOf(v, {
      submodule: 'term_A',
      developer: 'https://am.example',
      build: 'pos-backend 0.1.0',
    });
    expect(ear).toEqual({
      eat_profile: EAR_PROFILE,
      iat: Math.floor(v.appraisedAt / 1000),
      'ear.verifier-id': { developer: 'https://am.example', build: 'pos-backend 0.1.0' },
      submods: {
        term_A: {
          'ear.status': 'affirming',
          'ear.trustworthiness-vector': {
            'instance-identity': 2,
            configuration: 2,
            executables: 2,
            hardware: 2,
            'runtime-opaque': 2,
          },
          'ear.appraisal-policy-id': 'dev-2',
        },
      },
    });
  });
});
