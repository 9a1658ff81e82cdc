/**
 * Fail-closed invariants of evaluatePolicy over arbitrary appraisals (fast-check): whatever the
 * outcomes, values and vector, no failure, unknown or error ever yields an affirming verdict.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AR4SI_CATEGORIES,
  DEFAULT_POLICY,
  PRODUCTION_POLICY,
  evaluatePolicy,
  type Appraisal,
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
          expect(a.outcomes.every((o) => o.status === 'pass' || o.status === 'unknown')).toBe(true);
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
