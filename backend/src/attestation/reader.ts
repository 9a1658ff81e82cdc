/**
 * The reader's signed status, as the attestation verifiers need it. The reader-protocol code
 * (shared/src/reader/status.ts) verifies the signature and the certificate chain; this interface keeps
 * the verifiers independent of it, and tests use a stand-in.
 */
import type { Result } from '@pos/shared';

export interface ReaderStatusReport {
  /** The reader serial from its certificate and its signed report (they must agree). */
  serial: string;
  tampered: boolean;
  /** The reader's clock when it signed the report, ms. */
  time?: number;
  firmwareVersion?: string;
  firmwareHash?: string;
  ksnCounter?: number;
  battery?: number;
  /** The challenge the terminal asked the reader to echo (base64url), when the report carries one. */
  challenge?: string;
}

export interface SignedReaderStatus {
  /** CBOR status report. */
  status: Uint8Array;
  /** ES256 raw r‖s. */
  signature: Uint8Array;
  /** DER certificates, reader first. */
  chain: readonly Uint8Array[];
}

export interface ReaderStatusVerifier {
  /**
   * Verifies the chain to one of the roots and the signature over the report, and decodes it.
   * A failure is a Result (never a throw; a throw is treated as a verifier error).
   */
  verify(
    signed: SignedReaderStatus,
    roots: readonly Uint8Array[],
    now: number,
  ):
    | Result<{ report: ReaderStatusReport }, `POS_ERR_${string}`>
    | Promise<Result<{ report: ReaderStatusReport }, `POS_ERR_${string}`>>;
}
