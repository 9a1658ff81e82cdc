/**
 * The reader's signed status, as the attestation verifiers need it. The reader-protocol code
 * (shared/src/reader/status.ts) verifies the signature and the certificate chain; this interface keeps
 * the verifiers independent of it, and tests use a stand-in.
 */
import {
  cborDecode,
  err,
  ok,
  toBase64url,
  verifyP256,
  verifyReaderCertChain,
  type Result,
} from '@pos/shared';
import { z } from 'zod';

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

/**
 * The reader's status record as the reader signs it (deterministic CBOR, docs/reader-protocol.md):
 * `{ v: 1, serial, fw, fwHash, tampered, ksn, battery, time (s), challenge? (bytes) }`.
 */
const StatusRecordSchema = z.strictObject({
  v: z.literal(1),
  serial: z.string().min(1).max(64),
  fw: z.string().max(64),
  fwHash: z.string().max(128),
  tampered: z.boolean(),
  ksn: z.number().int().nonnegative(),
  battery: z.number().min(0).max(100),
  time: z.number().int().nonnegative(),
  challenge: z.instanceof(Uint8Array).optional(),
});

/**
 * A ReaderStatusVerifier over @pos/shared's reader code: the certificate chain to a manufacturer root
 * (`verifyReaderCertChain`), the leaf key's ES256 signature over the CBOR record (`verifyP256`), the
 * record's schema, and the record's serial equal to the certificate's.
 */
export function createReaderStatusVerifier(): ReaderStatusVerifier {
  return {
    verify(signed, roots, now) {
      const chain = verifyReaderCertChain(signed.chain, roots, { now: Math.floor(now / 1000) });
      if (!chain.ok) return chain;
      if (!verifyP256(signed.signature, signed.status, chain.publicKey)) {
        return err(
          'POS_ERR_ATTEST_READER_SIGNATURE',
          'the status signature does not verify under the reader key',
        );
      }
      const decoded = cborDecode(signed.status, 1024);
      if (!decoded.ok) return decoded;
      const record = StatusRecordSchema.safeParse(decoded.value);
      if (!record.success)
        return err('POS_ERR_ATTEST_READER_SIGNATURE', 'the status record is not well-formed');
      const r = record.data;
      if (r.serial !== chain.serial) {
        return err('POS_ERR_ATTEST_READER_MISMATCH', 'the status names another serial than its certificate');
      }
      return ok({
        report: {
          serial: r.serial,
          tampered: r.tampered,
          time: r.time * 1000,
          firmwareVersion: r.fw,
          firmwareHash: r.fwHash,
          ksnCounter: r.ksn,
          battery: r.battery,
          ...(r.challenge === undefined ? {} : { challenge: toBase64url(r.challenge) }),
        },
      });
    },
  };
}
