/**
 * The EAR / AR4SI trustworthiness vector (draft-ietf-rats-ar4si): eight categories, each holding one
 * claim value. Value ranges (section 2.3 of the draft): -1..1 none (0 no claim, 1 verifier
 * malfunction, -1 unexpected evidence), 2..31 affirming, 32..95 warning, 96..127 contraindicated
 * (the negative mirror ranges are for implementation-specific claims; this service does not use them
 * except -1). The values named below are the draft's own claims; docs/attestation.md lists them.
 */
import type { TrustTier } from '@pos/shared';

export const AR4SI_CATEGORIES = [
  'instance-identity',
  'configuration',
  'executables',
  'file-system',
  'hardware',
  'runtime-opaque',
  'storage-opaque',
  'sourced-data',
] as const;
export type Ar4siCategory = (typeof AR4SI_CATEGORIES)[number];

/** One AR4SI claim value per category; 0 (no claim) where nothing was appraised. */
export type TrustVector = Readonly<Record<Ar4siCategory, number>>;

/** AR4SI claim values this service emits. */
export const AR4SI = {
  /** No claim is made. */
  NO_CLAIM: 0,
  /** The verifier malfunctioned (a verifier threw). */
  VERIFIER_MALFUNCTION: 1,
  /** The evidence contains elements the verifier cannot parse. */
  UNEXPECTED_EVIDENCE: -1,
  /** Affirming: recognised and approved (instance identity, configuration, executables, hardware...). */
  AFFIRMING: 2,
  /** Affirming, weaker form (e.g. configuration with no known vulnerabilities). */
  AFFIRMING_WEAK: 3,
  /** Warning: known but with known vulnerabilities / not fully vouched for. */
  WARNING: 32,
  /** Warning: unrecognised executables or files (executables, file-system). */
  WARNING_UNRECOGNISED: 33,
  /** Contraindicated: recognised, but the trustworthiness is contraindicated. */
  CONTRAINDICATED: 96,
  /** Contraindicated: not recognised, though the verifier believes it should be. */
  CONTRAINDICATED_UNRECOGNISED: 97,
  /** Contraindicated: cryptographic validation of the evidence failed. */
  CRYPTO_FAILED: 99,
} as const;

/** The trust tier of one AR4SI claim value. */
export function tierOfValue(value: number): TrustTier {
  const v = Math.abs(value);
  if (value === -1 || v <= 1) return 'none';
  if (value > 0) {
    if (value <= 31) return 'affirming';
    if (value <= 95) return 'warning';
    return 'contraindicated';
  }
  if (v <= 32) return 'affirming';
  if (v <= 96) return 'warning';
  return 'contraindicated';
}

/** The default claim value of each tier (used by policy rules that give an effect but no value). */
export const TIER_DEFAULT_VALUE: Readonly<Record<TrustTier, number>> = {
  affirming: AR4SI.AFFIRMING,
  warning: AR4SI.WARNING,
  contraindicated: AR4SI.CONTRAINDICATED,
  none: AR4SI.NO_CLAIM,
};

const TIER_RANK: Readonly<Record<TrustTier, number>> = {
  affirming: 0,
  none: 1,
  warning: 2,
  contraindicated: 3,
};

/** The more severe of two claim values (contraindicated > warning > none > affirming). */
export function moreSevere(a: number, b: number): number {
  const ra = TIER_RANK[tierOfValue(a)];
  const rb = TIER_RANK[tierOfValue(b)];
  if (ra !== rb) return ra > rb ? a : b;
  // Same tier: the larger magnitude is the more specific (and, within the draft, the worse) claim.
  return Math.abs(b) > Math.abs(a) ? b : a;
}

export function emptyVector(): Record<Ar4siCategory, number> {
  return {
    'instance-identity': 0,
    configuration: 0,
    executables: 0,
    'file-system': 0,
    hardware: 0,
    'runtime-opaque': 0,
    'storage-opaque': 0,
    'sourced-data': 0,
  };
}
