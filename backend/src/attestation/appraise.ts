/**
 * Appraisal: parse the evidence, run every verifier, collect one outcome per verifier and the
 * verifiers' own AR4SI vector. Never throws: a verifier that throws (or rejects) becomes an `error`
 * outcome, which the policy turns into `contraindicated`.
 */
import { parseEvidence } from '@pos/shared';
import { AR4SI, emptyVector, moreSevere, tierOfValue, type Ar4siCategory } from './ar4si';
import type { Appraisal, AppraisalInput, EvidenceVerifier, VerifierOutcome } from './types';
import { DEFAULT_VERIFIERS } from './verifiers';

/** The AR4SI value an outcome supports in its category. */
export function outcomeValue(o: VerifierOutcome): number {
  if (o.status === 'pass') return o.value ?? AR4SI.AFFIRMING;
  if (o.status === 'error') return AR4SI.VERIFIER_MALFUNCTION;
  if (o.status === 'unknown') return AR4SI.NO_CLAIM;
  const v = o.value ?? AR4SI.CONTRAINDICATED;
  // A failure never supports an affirming claim, whatever value it was given.
  return tierOfValue(v) === 'affirming' ? AR4SI.WARNING : v;
}

/** Severity rank of an outcome inside its category (higher is worse). */
function rank(o: VerifierOutcome): number {
  switch (o.status) {
    case 'pass':
      return 0;
    case 'unknown':
      return 1;
    case 'fail': {
      const v = outcomeValue(o);
      if (Math.abs(v) <= 1) return 2;
      if (v < 96 && v > -97) return 3;
      return 4;
    }
    case 'error':
      return 5;
  }
}

export function vectorOf(outcomes: readonly VerifierOutcome[]): Record<Ar4siCategory, number> {
  const vector = emptyVector();
  const worst = new Map<string, VerifierOutcome>();
  for (const o of outcomes) {
    const w = worst.get(o.category);
    if (
      w === undefined ||
      rank(o) > rank(w) ||
      (rank(o) === rank(w) && moreSevere(outcomeValue(w), outcomeValue(o)) !== outcomeValue(w))
    ) {
      worst.set(o.category, o);
    }
  }
  for (const [category, o] of worst) vector[category as keyof typeof vector] = outcomeValue(o);
  return vector;
}

async function runVerifier(
  v: EvidenceVerifier,
  ctx: Parameters<EvidenceVerifier['verify']>[0],
): Promise<VerifierOutcome | undefined> {
  try {
    const r = await v.verify(ctx);
    if (r === undefined) return undefined;
    if (r.ok)
      return {
        verifier: v.name,
        category: v.category,
        status: 'pass',
        value: AR4SI.AFFIRMING,
        ...(r.detail === undefined ? {} : { detail: r.detail }),
      };
    return {
      verifier: v.name,
      category: v.category,
      status: r.status,
      code: r.code,
      detail: r.detail,
      value: r.value ?? (r.status === 'unknown' ? AR4SI.NO_CLAIM : AR4SI.CONTRAINDICATED),
    };
  } catch {
    return {
      verifier: v.name,
      category: v.category,
      status: 'error',
      code: 'POS_ERR_ATTEST_VERIFIER_ERROR',
      detail: `the ${v.name} verifier failed unexpectedly`,
      value: AR4SI.VERIFIER_MALFUNCTION,
    };
  }
}

export async function appraiseEvidence(input: AppraisalInput): Promise<Appraisal> {
  const appraisedAt = typeof input?.now === 'number' ? input.now : Date.now();
  try {
    const parsed = parseEvidence(input.evidenceJws);
    if (!parsed.ok) {
      const outcomes: VerifierOutcome[] = [
        {
          verifier: 'format',
          category: 'instance-identity',
          status: 'fail',
          code: parsed.code,
          detail: parsed.detail,
          value: AR4SI.UNEXPECTED_EVIDENCE,
        },
      ];
      return { outcomes, trustVector: vectorOf(outcomes), signatureValid: false, appraisedAt };
    }
    const ctx = {
      input,
      claims: parsed.claims,
      header: { jwk: parsed.header.jwk },
      signingInput: parsed.signingInput,
      signature: parsed.signature,
    };
    const verifiers = input.verifiers ?? DEFAULT_VERIFIERS;
    const outcomes: VerifierOutcome[] = [
      { verifier: 'format', category: 'instance-identity', status: 'pass', value: AR4SI.AFFIRMING },
    ];
    for (const v of verifiers) {
      const o = await runVerifier(v, ctx);
      if (o !== undefined) outcomes.push(o);
    }
    const signatureValid = outcomes.some((o) => o.verifier === 'signature' && o.status === 'pass');
    return { outcomes, claims: parsed.claims, trustVector: vectorOf(outcomes), signatureValid, appraisedAt };
  } catch {
    const outcomes: VerifierOutcome[] = [
      {
        verifier: 'appraisal',
        category: 'instance-identity',
        status: 'error',
        code: 'POS_ERR_ATTEST_VERIFIER_ERROR',
        detail: 'the appraisal failed unexpectedly',
        value: AR4SI.VERIFIER_MALFUNCTION,
      },
    ];
    return { outcomes, trustVector: vectorOf(outcomes), signatureValid: false, appraisedAt };
  }
}
