/**
 * The reader's signed status report (docs/reader-protocol.md, "Status report"). The reader makes it
 * on `get-status`; the terminal puts it, unchanged, with the reader's certificate chain into its
 * attestation evidence; the A&M back-end checks it with `verifyReaderStatus`.
 *
 * `report` is the deterministic CBOR of `ReaderStatus`; `sig` is ES256 by the reader identity key over
 * exactly those bytes (ECDSA P-256 over SHA-256(report), raw r || s). Nothing else is signed, so the
 * bytes must travel as they are (base64url in JSON evidence).
 */
import { z } from 'zod';
import type { PosErrorCode } from '../errors';
import { PosError, err, ok, type Result } from '../result';
import { decodeNoResidue, encodeNoResidue } from './cbor';
import { verifyP256, type P256Signer } from './handshake';
import { MAX_STATUS_REPORT_BYTES } from './messages';
import { verifyReaderCertChain } from './x509';

export const READER_STATUS_VERSION = 1;

const uint32 = z.number().int().min(0).max(0xffff_ffff);
const bytesOf = (min: number, max: number) =>
  z.custom<Uint8Array>((v) => v instanceof Uint8Array && v.length >= min && v.length <= max);

export const ReaderStatusSchema = z.strictObject({
  /** Record version (1). */
  v: z.literal(READER_STATUS_VERSION),
  /** Reader serial, as in its certificate. */
  serial: z.string().min(1).max(64),
  /** Firmware version text and the SHA-256 of the firmware image. */
  fw: z.string().min(1).max(32),
  fwHash: bytesOf(32, 32),
  /** Tamper latched. A report with `tamper: true` verifies: it is the policy's job to refuse. */
  tamper: z.boolean(),
  /** The AES DUKPT transaction counter of the last KSN used (0 before the first). */
  ksnCounter: uint32,
  /** Battery charge, percent. */
  battery: z.number().int().min(0).max(100),
  /** The reader's clock, seconds since the epoch. */
  time: z
    .number()
    .int()
    .min(0)
    .max(2 ** 40),
  /** Status sequence number: strictly increasing per reader, across restarts. */
  seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** The `challenge` of the `get-status` request, echoed (binds the report to a fresh request). */
  challenge: bytesOf(1, 64).optional(),
});
export type ReaderStatus = z.infer<typeof ReaderStatusSchema>;

/** A report as it travels: the CBOR bytes and their signature. Same fields as the `status` message. */
export interface SignedReaderStatus {
  readonly report: Uint8Array;
  readonly sig: Uint8Array;
}

/** Encodes a status record (deterministic CBOR). Throws `PosError` on a record outside the schema. */
export function encodeReaderStatus(status: ReaderStatus): Uint8Array {
  const parsed = ReaderStatusSchema.safeParse(status);
  if (!parsed.success)
    throw new PosError('POS_ERR_READER_STATUS_INVALID', 'the status record does not fit its schema');
  const clean = Object.fromEntries(Object.entries(status).filter(([, v]) => v !== undefined));
  return encodeNoResidue(clean, MAX_STATUS_REPORT_BYTES);
}

/** Encodes and signs a status record with the reader identity key. */
export async function signReaderStatus(
  status: ReaderStatus,
  identityKey: P256Signer,
): Promise<SignedReaderStatus> {
  const report = encodeReaderStatus(status);
  return { report, sig: await identityKey.sign(report) };
}

/** Parses the status record without checking its signature. */
export function decodeReaderStatus(report: Uint8Array): Result<{ status: ReaderStatus }> {
  if (!(report instanceof Uint8Array) || report.length > MAX_STATUS_REPORT_BYTES)
    return err(
      'POS_ERR_READER_STATUS_INVALID',
      `a status record is at most ${MAX_STATUS_REPORT_BYTES} bytes`,
    );
  const decoded = decodeNoResidue(report, MAX_STATUS_REPORT_BYTES);
  if (!decoded.ok) return err('POS_ERR_READER_STATUS_INVALID', 'the status record is not deterministic CBOR');
  const parsed = ReaderStatusSchema.safeParse(decoded.value);
  if (!parsed.success)
    return err('POS_ERR_READER_STATUS_INVALID', 'the status record does not have the expected fields');
  return ok({ status: parsed.data });
}

export interface ReaderStatusExpectations {
  /** Verifier's clock, seconds since the epoch. */
  readonly now: number;
  /** The serial the terminal is paired with (from the terminal's record at the back-end). */
  readonly expectedSerial?: string;
  /** Oldest acceptable report time, seconds before `now`. */
  readonly maxAgeS: number;
  /** Allowed reader clock ahead of the verifier, seconds (default 30). */
  readonly clockSkewS?: number;
  /** When the verifier asked for a challenge, the bytes the report must echo. */
  readonly expectedChallenge?: Uint8Array;
}

/**
 * Checks a signed status report end to end: the certificate chain to a trusted manufacturer CA (at
 * `now`), the signature under the leaf key, the record's shape, that its serial is the certificate's
 * (and `expectedSerial`), and its freshness. Codes: the chain's `POS_ERR_READER_CERT_*`,
 * `POS_ERR_READER_STATUS_SIGNATURE`, `POS_ERR_READER_STATUS_INVALID`, `POS_ERR_READER_SERIAL_MISMATCH`,
 * `POS_ERR_READER_STATUS_STALE`.
 */
export function verifyReaderStatus(
  signed: SignedReaderStatus,
  certChain: readonly Uint8Array[],
  trustedCaRoots: readonly Uint8Array[],
  expect: ReaderStatusExpectations,
): Result<{ status: ReaderStatus; serial: string }, PosErrorCode> {
  if (
    !(signed.report instanceof Uint8Array) ||
    !(signed.sig instanceof Uint8Array) ||
    signed.sig.length !== 64
  )
    return err('POS_ERR_READER_STATUS_INVALID', 'a signed status is report bytes and a 64-byte signature');
  const chain = verifyReaderCertChain(certChain, trustedCaRoots, { now: expect.now });
  if (!chain.ok) return chain;
  if (signed.report.length > MAX_STATUS_REPORT_BYTES)
    return err('POS_ERR_READER_STATUS_INVALID', 'the status record is too large');
  if (!verifyP256(signed.sig, signed.report, chain.publicKey))
    return err(
      'POS_ERR_READER_STATUS_SIGNATURE',
      'the status signature does not verify under the reader key',
    );
  const decoded = decodeReaderStatus(signed.report);
  if (!decoded.ok) return decoded;
  const s = decoded.status;
  if (s.serial !== chain.serial)
    return err('POS_ERR_READER_SERIAL_MISMATCH', 'the status names another serial than its certificate');
  if (expect.expectedSerial !== undefined && s.serial !== expect.expectedSerial)
    return err('POS_ERR_READER_SERIAL_MISMATCH', 'the status is from another reader than the paired one');
  if (s.time < expect.now - expect.maxAgeS)
    return err('POS_ERR_READER_STATUS_STALE', 'the status report is too old');
  if (s.time > expect.now + (expect.clockSkewS ?? 30))
    return err('POS_ERR_READER_STATUS_STALE', "the status report's time is in the future");
  if (expect.expectedChallenge !== undefined) {
    const c = s.challenge;
    if (
      c === undefined ||
      c.length !== expect.expectedChallenge.length ||
      c.some((b, i) => b !== expect.expectedChallenge?.[i])
    )
      return err('POS_ERR_READER_STATUS_STALE', 'the status report does not answer this challenge');
  }
  return ok({ status: s, serial: s.serial });
}
