/**
 * The verdict as an EAR (EAT Attestation Result, draft-ietf-rats-ear) claims set: the shape other RATS
 * tooling (Veraison) reads. Not signed here; the service may sign it like a ticket if it publishes it.
 */
import { AR4SI_CATEGORIES } from './ar4si';
import type { Verdict } from './types';

export const EAR_PROFILE = 'tag:github.com,2023:veraison/ear';

export interface Ear {
  eat_profile: typeof EAR_PROFILE;
  /** Seconds since the epoch. */
  iat: number;
  'ear.verifier-id': { developer: string; build: string };
  submods: Record<
    string,
    {
      'ear.status': Verdict['tier'];
      /** AR4SI claims; categories with no claim (0) are omitted, as EAR allows. */
      'ear.trustworthiness-vector': Partial<Record<(typeof AR4SI_CATEGORIES)[number], number>>;
      'ear.appraisal-policy-id': string;
    }
  >;
}

export function earOf(verdict: Verdict, opts: { submodule: string; developer: string; build: string }): Ear {
  const vector: Partial<Record<(typeof AR4SI_CATEGORIES)[number], number>> = {};
  for (const c of AR4SI_CATEGORIES) {
    const v = verdict.trustVector[c];
    if (v !== 0) vector[c] = v;
  }
  return {
    eat_profile: EAR_PROFILE,
    iat: Math.floor(verdict.appraisedAt / 1000),
    'ear.verifier-id': { developer: opts.developer, build: opts.build },
    submods: {
      [opts.submodule]: {
        'ear.status': verdict.tier,
        'ear.trustworthiness-vector': vector,
        'ear.appraisal-policy-id': verdict.policyVersion,
      },
    },
  };
}
