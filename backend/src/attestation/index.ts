/**
 * Attestation domain: evidence appraisal (one verifier per concern), policy and verdict. Plain
 * functions and interfaces; the service's routes and store call them. See docs/attestation.md.
 */
export * from './ar4si';
export * from './types';
export * from './reader';
export * from './verifiers';
export * from './appraise';
export * from './policy';
export * from './reasons';
export * from './ear';
export { EvidenceClaimsSchema, EVIDENCE_TYPE, type EvidenceClaims } from '@pos/shared';
