/**
 * Fail-closed invariants of evaluatePolicy over arbitrary appraisals (fast-check): whatever the
 * outcomes, values and vector, no failure, unknown or error ever yields an affirming verdict.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AR4SI_CATEGORIES,
  CORE_REQUIRED_VERIFIERS,
  DEFAULT_POLICY,
  PRODUCTION_POLICY,
  emptyVector,
  evaluatePolicy,
  type Appraisal,
  type Condition,
  type Policy,
  type VerifierOutcome,
} from '../../src/attestation/index';
import { claims } from './helpers';

const VERIFIERS = [
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
  'executable',
  'runtime',
  'environment',
];

const outcomeArb: fc.Arbitrary<VerifierOutcome> = fc.record(
  {
    verifier: fc.constantFrom(...VERIFIERS),
    category: fc.constantFrom(...AR4SI_CATEGORIES),
    status: fc.constantFrom('pass', 'fail', 'unknown', 'error'),
    code: fc.constantFrom('POS_ERR_ATTEST_SIGNATURE', 'POS_ERR_ATTEST_CLOCK_SKEW', 'X'),
    value: fc.integer({ min: -128, max: 127 }),
  },
  { requiredKeys: ['verifier', 'category', 'status'] },
);

const vectorArb = fc.oneof(
  fc.constant(
    Object.fromEntries(AR4SI_CATEGORIES.map((c) => [c, 2])) as Record<
      (typeof AR4SI_CATEGORIES)[number],
      number
    >,
  ),
  fc.record(
    Object.fromEntries(AR4SI_CATEGORIES.map((c) => [c, fc.integer({ min: -128, max: 127 })])) as Record<
      (typeof AR4SI_CATEGORIES)[number],
      fc.Arbitrary<number>
    >,
  ),
);

const passing: VerifierOutcome[] = VERIFIERS.map((verifier) => ({
  verifier,
  category: 'configuration',
  status: 'pass',
  value: 2,
}));

/** Mostly near-affirming appraisals: every verifier passing, plus a few arbitrary extra outcomes. */
const outcomesArb = fc.oneof(
  fc.array(outcomeArb, { maxLength: 20 }),
  fc
    .tuple(fc.subarray(passing), fc.array(outcomeArb, { maxLength: 3 }))
    .map(([base, extra]) => [...base, ...extra]),
);

const appraisalArb: fc.Arbitrary<Appraisal> = fc.record({
  outcomes: outcomesArb,
  claims: fc.option(fc.constant(claims()), { nil: undefined }),
  trustVector: vectorArb,
  signatureValid: fc.boolean(),
  appraisedAt: fc.constant(0),
}) as fc.Arbitrary<Appraisal>;

describe('evaluatePolicy invariants (property)', () => {
  it.each([DEFAULT_POLICY, PRODUCTION_POLICY])('policy $version', (policy) => {
    let affirming = 0;
    fc.assert(
      fc.property(appraisalArb, (a) => {
        const v = evaluatePolicy(policy, a);
        expect(v.halt).toBe(v.tier === 'contraindicated');
        if (a.outcomes.some((o) => o.status === 'error')) expect(v.tier).toBe('contraindicated');
        if (v.tier === 'affirming') {
          expect(a.claims).toBeDefined();
          expect(a.outcomes.every((o) => o.status === 'pass')).toBe(true);
          for (const required of policy.requiredVerifiers) {
            const mine = a.outcomes.filter((o) => o.verifier === required);
            expect(mine.length).toBeGreaterThan(0);
            expect(mine.every((o) => o.status === 'pass')).toBe(true);
          }
        }
        for (const c of AR4SI_CATEGORIES) expect(Number.isInteger(v.trustVector[c])).toBe(true);
        if (v.tier === 'affirming') affirming++;
      }),
      { numRuns: 2000 },
    );
    // The generator does reach affirming verdicts, so the invariants above are exercised.
    expect(affirming).toBeGreaterThan(0);
  });
});

/** Arbitrary policies an operator could write: any required list (empty included), either unmet tier, any rules. */
const conditionArb: fc.Arbitrary<Condition> = fc.letrec<{ c: Condition }>((tie) => ({
  c: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({
      verifier: fc.constantFrom(...VERIFIERS),
      status: fc.constant<('pass' | 'fail' | 'unknown' | 'error')[]>(['unknown']),
    }),
    fc.record({
      measurement: fc.constantFrom('fuses', 'remote-session'),
      status: fc.subarray(['ok', 'fail', 'unknown'] as const, { minLength: 1 }),
    }),
    fc.record({ shell: fc.constant<('electron' | 'browser' | 'headless')[]>(['headless']) }),
    fc.record({ not: tie('c') }),
    fc.record({ any: fc.array(tie('c'), { minLength: 1, maxLength: 3 }) }),
  ),
})).c;

const policyArb: fc.Arbitrary<Policy> = fc.record({
  schema: fc.constant(1 as const),
  version: fc.constant('random-1'),
  requiredVerifiers: fc.subarray(VERIFIERS),
  unmet: fc.constantFrom('warning' as const, 'none' as const),
  rules: fc.array(
    fc.record({
      id: fc.constantFrom('r-a', 'r-b'),
      when: conditionArb,
      effect: fc.constantFrom('warn' as const, 'contraindicate' as const),
      category: fc.constantFrom(...AR4SI_CATEGORIES),
      reason: fc.constant({ code: 'RULE_FIRED', text: 'A rule fired.' }),
    }),
    { maxLength: 3 },
  ),
});

describe('no policy is less strict than the core (property)', () => {
  it('an appraisal with any unknown, fail or error outcome, or a core verifier missing, is never affirming', () => {
    let affirming = 0;
    fc.assert(
      fc.property(policyArb, appraisalArb, (policy, a) => {
        const v = evaluatePolicy(policy, a);
        if (v.tier !== 'affirming') return;
        affirming++;
        expect(a.claims).toBeDefined();
        expect(a.outcomes.every((o) => o.status === 'pass')).toBe(true);
        for (const core of CORE_REQUIRED_VERIFIERS) {
          expect(a.outcomes.some((o) => o.verifier === core)).toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
    expect(affirming).toBeGreaterThan(0);
  });

  it('with tolerateUnknown, an affirming verdict has only passes and environment unknowns explained by a tolerated, reported hint', () => {
    // Weighted towards the cases that reach the tolerance (ok and unknown hints, plain policies), so
    // every run exercises it (the count is asserted below), while still drawing the rest.
    const hintStatus = fc.oneof(
      { arbitrary: fc.constant('ok' as const), weight: 3 },
      { arbitrary: fc.constant('unknown' as const), weight: 3 },
      { arbitrary: fc.constant('fail' as const), weight: 1 },
      { arbitrary: fc.constant('absent' as const), weight: 1 },
    );
    const plainPolicyArb = fc.subarray(VERIFIERS).map((extra): Policy => ({
      schema: 1,
      version: 'plain-1',
      requiredVerifiers: [...new Set([...CORE_REQUIRED_VERIFIERS, ...extra])],
      unmet: 'warning',
      rules: [],
    }));
    const tolerantArb = fc
      .tuple(
        fc.oneof(policyArb, plainPolicyArb),
        fc.subarray(['virtual-machine', 'screen-capture-protection'] as const),
      )
      .map(([p, tolerateUnknown]) => ({ ...p, tolerateUnknown }));
    const claimsArb = fc
      .record({
        vm: hintStatus,
        remote: hintStatus,
        capture: hintStatus,
        debuggerHint: hintStatus,
      })
      .map(({ vm, remote, capture, debuggerHint }) => {
        const base = claims();
        const set: Record<string, string> = {
          'virtual-machine': vm,
          'remote-session': remote,
          'screen-capture-protection': capture,
          debugger: debuggerHint,
        };
        return {
          ...base,
          measurements: base.measurements.flatMap((m) => {
            const st = set[m.name];
            if (st === undefined) return [m];
            return st === 'absent' ? [] : [{ ...m, status: st as 'ok' | 'fail' | 'unknown' }];
          }),
        };
      });
    // Every verifier passing but the environment one, which says unknown (what a VM without DMI gives).
    const envUnknownArb: fc.Arbitrary<Appraisal> = fc.option(outcomeArb, { nil: undefined }).map((extra) => ({
      outcomes: [
        ...passing.map((o) =>
          o.verifier === 'environment' ? { ...o, status: 'unknown' as const, value: 0 } : o,
        ),
        ...(extra === undefined ? [] : [extra]),
      ],
      claims: claims(),
      trustVector: emptyVector(),
      signatureValid: true,
      appraisedAt: 0,
    }));
    let affirming = 0;
    let tolerated = 0;
    fc.assert(
      fc.property(tolerantArb, fc.oneof(appraisalArb, envUnknownArb), claimsArb, (policy, a0, c) => {
        const a: Appraisal = { ...a0, claims: c };
        const v = evaluatePolicy(policy, a);
        if (v.tier !== 'affirming') return;
        affirming++;
        for (const core of CORE_REQUIRED_VERIFIERS) {
          const mine = a.outcomes.filter((o) => o.verifier === core);
          expect(mine.length).toBeGreaterThan(0);
          expect(mine.every((o) => o.status === 'pass')).toBe(true);
        }
        const others = a.outcomes.filter((o) => o.status !== 'pass');
        if (others.length === 0) return;
        tolerated++;
        expect(policy.requiredVerifiers).not.toContain('environment');
        for (const o of others) expect(o).toMatchObject({ verifier: 'environment', status: 'unknown' });
        const env = ['virtual-machine', 'remote-session', 'screen-capture-protection'].map(
          (n) => c.measurements.find((m) => m.name === n)?.status,
        );
        expect(env.every((st) => st === 'ok' || st === 'unknown')).toBe(true);
        expect(env.some((st) => st === 'unknown')).toBe(true);
        expect(c.measurements.find((m) => m.name === 'remote-session')?.status).toBe('ok');
      }),
      { numRuns: 6000 },
    );
    expect(affirming).toBeGreaterThan(0);
    expect(tolerated).toBeGreaterThan(0);
  });

  it('the reviewer case: requiredVerifiers [] and unmet warning still leave an unknown reader at warning', () => {
    const lax: Policy = { ...DEFAULT_POLICY, version: 'lax-1', requiredVerifiers: [], rules: [] };
    const a: Appraisal = {
      outcomes: [
        ...passing.filter((o) => o.verifier !== 'reader'),
        {
          verifier: 'reader',
          category: 'hardware',
          status: 'unknown',
          code: 'POS_ERR_ATTEST_READER_ABSENT',
          value: 0,
        },
      ],
      claims: claims(),
      trustVector: emptyVector(),
      signatureValid: true,
      appraisedAt: 0,
    };
    expect(evaluatePolicy(lax, a).tier).toBe('warning');
    expect(evaluatePolicy(lax, { ...a, outcomes: passing.filter((o) => o.verifier !== 'reader') }).tier).toBe(
      'warning',
    );
  });
});
