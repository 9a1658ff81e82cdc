/**
 * The attestation contract between the service (routes, store) and the domain (verifiers, policy).
 * Plain data and functions: no Fastify, no SQL.
 */
import type { EvidenceClaims, P256Jwk, TrustTier } from '@pos/shared';
import type { Ar4siCategory, TrustVector } from './ar4si';
import type { ReaderStatusVerifier } from './reader';

export type { Ar4siCategory, TrustVector } from './ar4si';

/** The reference values of one approved release, uploaded by an operator. */
export interface ReferenceValues {
  version: string;
  build: 'release' | 'development';
  /** Hex SHA-256 of the app code (either case). */
  codeHashes: readonly string[];
  /** Expected Electron fuse wire (as the terminal reports it in measurement `fuses`), electron shell only. */
  fuseWire?: string;
  /** Accepted hex SHA-256 of the executable (measurement `executable-hash`). */
  executableHashes?: readonly string[];
  allowedShells: readonly ('electron' | 'browser' | 'headless')[];
}

export interface TerminalContext {
  terminalId: string;
  merchantId: string;
  /** The enrolled device key (at enrollment: the key the terminal presents). */
  deviceJwk: P256Jwk;
  deviceJkt: string;
  /** The serial of the reader paired with this terminal, when one is. */
  readerSerial?: string;
  /** The counter of the last accepted evidence; -1 when none yet. */
  lastCounter: number;
}

export interface ChallengeContext {
  /** base64url of the 32 challenge bytes. */
  value: string;
  /** The terminal it was issued to; null for an enrollment challenge. */
  terminalId: string | null;
  /** ms since the epoch. */
  expiresAt: number;
  usedAt: number | null;
}

export interface AppraisalOptions {
  /** Largest accepted difference between the terminal's clock and the server's (ms, default 120 000). */
  clockSkewMs?: number;
  /** Oldest accepted reader status report, by the report's own time (ms, default 300 000). */
  readerStatusMaxAgeMs?: number;
  /** The same for pre-PIN evidence when the report does not echo the challenge (ms, default 5 000). */
  readerStatusPrePinMaxAgeMs?: number;
  /**
   * Records a verified report's `seq` for its reader and says whether it was above every one seen
   * before (the service: `Store.advanceReaderStatusSeq`). Pre-PIN evidence needs true.
   */
  readerStatusSeq?: (serial: string, seq: number) => boolean | Promise<boolean>;
  /** Verifies the reader's signed status; without one, reader status is `unknown`. */
  readerVerifier?: ReaderStatusVerifier;
}

export interface AppraisalInput {
  evidenceJws: string;
  terminal: TerminalContext;
  /** The stored challenge the evidence names (looked up by its value), or undefined if none is known. */
  challenge: ChallengeContext | undefined;
  referenceValues: readonly ReferenceValues[];
  /** DER certificates of the reader manufacturer CA roots. */
  readerCaRoots: readonly Uint8Array[];
  /** Server clock, ms. */
  now: number;
  expectedPurpose?: EvidenceClaims['purpose'];
  /** pre-pin: the reader's transaction nonce (base64url) the evidence must carry. */
  expectedNonce?: string;
  options?: AppraisalOptions;
  /** Replaces the verifier list (tests inject a failing verifier here). */
  verifiers?: readonly EvidenceVerifier[];
}

export type OutcomeStatus = 'pass' | 'fail' | 'unknown' | 'error';

export type VerifierOutcome = {
  verifier: string;
  category: Ar4siCategory;
  status: OutcomeStatus;
  /** A POS_ERR_ code, for every status but pass. */
  code?: string;
  /** One sentence; never a key, token, PIN or PAN. */
  detail?: string;
  /** The AR4SI claim value this outcome supports in its category. */
  value?: number;
};

export interface Appraisal {
  outcomes: readonly VerifierOutcome[];
  claims?: EvidenceClaims;
  /** The verifiers' own vector, before policy. */
  trustVector: TrustVector;
  signatureValid: boolean;
  /** Server time of the appraisal, ms. */
  appraisedAt: number;
}

export interface Verdict {
  tier: TrustTier;
  trustVector: TrustVector;
  reasons: readonly { code: string; text: string }[];
  policyVersion: string;
  halt: boolean;
  shadow: readonly { policyVersion: string; tier: TrustTier; halt: boolean }[];
  /** Server time of the appraisal behind the verdict, ms (tickets need a fresh one). */
  appraisedAt: number;
  /** The evidence purpose, when the evidence parsed. */
  purpose?: EvidenceClaims['purpose'];
}

/** What one verifier sees. `claims` and `parsed` are present: verifiers run only on parsed evidence. */
export interface VerifierContext {
  readonly input: AppraisalInput;
  readonly claims: EvidenceClaims;
  readonly header: { readonly jwk?: P256Jwk | undefined };
  readonly signingInput: Uint8Array;
  readonly signature: Uint8Array;
}

/** The result of one check: ok, or a failure with a code (SimpleWebAuthn-style). */
export type CheckResult =
  | { ok: true; detail?: string }
  | { ok: false; status: 'fail' | 'unknown'; code: string; detail: string; value?: number };

export interface EvidenceVerifier {
  readonly name: string;
  readonly category: Ar4siCategory;
  /** undefined: not applicable to this evidence (no claim is made). */
  verify(ctx: VerifierContext): CheckResult | undefined | Promise<CheckResult | undefined>;
}
