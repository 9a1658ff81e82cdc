/**
 * The reader's signed status, as the attestation verifiers need it. The reader-protocol code
 * (shared/src/reader/status.ts) verifies the signature and the certificate chain; this interface keeps
 * the verifiers independent of it, and tests use a stand-in.
 */
import { ok, toBase64url, toHex, verifyReaderStatus, type Result } from '@pos/shared';

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

/** Far enough that the shared check never decides freshness: the reader verifier does (challenge echo or age). */
const NO_AGE_LIMIT_S = 100 * 365 * 24 * 3600;

/**
 * A ReaderStatusVerifier over @pos/shared `verifyReaderStatus` (shared/src/reader/status.ts): the
 * certificate chain to a manufacturer root at the server's time, the leaf key's ES256 signature over
 * the CBOR record, the record's schema, and the record's serial equal to the certificate's. Freshness
 * and the binding to the paired reader are left to the `reader` verifier, which has the evidence.
 */
export function createReaderStatusVerifier(): ReaderStatusVerifier {
  return {
    verify(signed, roots, now) {
      const nowS = Math.floor(now / 1000);
      const r = verifyReaderStatus({ report: signed.status, sig: signed.signature }, signed.chain, roots, {
        now: nowS,
        maxAgeS: NO_AGE_LIMIT_S,
        clockSkewS: NO_AGE_LIMIT_S,
      });
      if (!r.ok) return r;
      const st = r.status;
      return ok({
        report: {
          serial: r.serial,
          tampered: st.tamper,
          time: st.time * 1000,
          firmwareVersion: st.fw,
          firmwareHash: toHex(st.fwHash).toLowerCase(),
          ksnCounter: st.ksnCounter,
          battery: st.battery,
          ...(st.challenge === undefined ? {} : { challenge: toBase64url(st.challenge) }),
        },
      });
    },
  };
}
