/**
 * Terminal evidence: what the terminal measures about itself, signed with its device key, for the
 * A&M back-end to appraise. A compact JWS (RFC 7515), ES256, header
 * `{"alg":"ES256","typ":"pos-evidence+jwt"}` plus `jwk` (the device public key) at enrollment only.
 *
 * The terminal measures, the back-end decides: every measurement is `ok`, `fail` or `unknown` with how
 * it was measured, and the back-end treats `unknown` as not `ok`. See docs/attestation.md.
 *
 * `parseEvidence` splits and schema-checks untrusted evidence and never throws (property-tested);
 * `signEvidence` is the terminal side (@noble/curves, runs in Node and the browser).
 */
import { p256 } from '@noble/curves/nist.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { z } from 'zod';
import { toBase64url } from './bytes';
import { jwsHeaderAlg, splitCompactJws } from './jws';
import { err, ok, type Result } from './result';
import { P256JwkSchema } from './ticket/jwk';

export const EVIDENCE_TYPE = 'pos-evidence+jwt';
/** The `iss` of enrollment evidence, before the terminal has an id. */
export const EVIDENCE_ENROLLING_ISSUER = 'enrolling';
/** Size limit of one evidence JWS (a reader certificate chain is the largest part). */
export const EVIDENCE_MAX_LENGTH = 64 * 1024;
export const EVIDENCE_MAX_MEASUREMENTS = 64;

export const EVIDENCE_PURPOSES = ['enrollment', 'startup', 'periodic', 'pre-transaction', 'pre-pin'] as const;
export type EvidencePurpose = (typeof EVIDENCE_PURPOSES)[number];
export const SHELL_KINDS = ['electron', 'browser', 'headless'] as const;
export type ShellKind = (typeof SHELL_KINDS)[number];
export const BUILD_KINDS = ['release', 'development'] as const;
export type BuildKind = (typeof BUILD_KINDS)[number];
export const MEASUREMENT_STATUSES = ['ok', 'fail', 'unknown'] as const;
export type MeasurementStatus = (typeof MEASUREMENT_STATUSES)[number];

/** The measurement names the back-end knows. Others are accepted, recorded and ignored. */
export const MEASUREMENT_NAMES = [
  'fuses',
  'executable-hash',
  'debugger',
  'inspector',
  'devtools',
  'node-options',
  'run-as-node',
  'suspicious-env',
  'os',
  'virtual-machine',
  'remote-session',
  'secure-boot',
  'tpm',
  'screen-capture-protection',
] as const;
export type MeasurementName = (typeof MEASUREMENT_NAMES)[number];

const b64url = z.string().regex(/^[A-Za-z0-9_-]*$/);
const shortText = z.string().min(1).max(128);

export const MeasurementSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/),
  status: z.enum(MEASUREMENT_STATUSES),
  /** How it was measured (`electron-fuses`, `process.execArgv`, `env`, ...). */
  method: shortText,
  value: z.union([z.string().max(512), z.number(), z.boolean()]).optional(),
});
export type Measurement = z.infer<typeof MeasurementSchema>;

/** The reader's signed status report, as the reader made it (see the reader protocol). */
export const ReaderEvidenceSchema = z.strictObject({
  /** base64url of the deterministic-CBOR status report. */
  status: b64url.min(1).max(4096),
  /** base64url of the reader's signature over `status`. */
  signature: b64url.min(1).max(256),
  /** base64url DER certificates, reader certificate first, towards the manufacturer CA. */
  chain: z.array(b64url.min(1).max(8192)).min(1).max(4),
});
export type ReaderEvidence = z.infer<typeof ReaderEvidenceSchema>;

export const EvidenceClaimsSchema = z
  .strictObject({
    /** The terminal id, or `enrolling` at enrollment. */
    iss: z.string().min(1).max(128),
    /** Issued at, seconds since the epoch. */
    iat: z
      .number()
      .int()
      .nonnegative()
      .max(2 ** 40),
    /** base64url of the 32-byte challenge the back-end gave. */
    challenge: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    /** Strictly increasing per terminal. */
    counter: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    purpose: z.enum(EVIDENCE_PURPOSES),
    /** pre-pin only: the reader's transaction nonce, base64url. */
    nonce: b64url.min(16).max(128).optional(),
    app: z.strictObject({
      version: z.string().regex(/^[0-9A-Za-z.+_-]{1,64}$/),
      build: z.enum(BUILD_KINDS),
      /** Lower- or upper-case hex SHA-256 of the app's code. */
      codeHash: z.string().regex(/^[0-9a-fA-F]{64}$/),
    }),
    shell: z.enum(SHELL_KINDS),
    measurements: z.array(MeasurementSchema).max(EVIDENCE_MAX_MEASUREMENTS),
    reader: ReaderEvidenceSchema.optional(),
    os: z
      .strictObject({ platform: z.string().max(64), release: z.string().max(128), arch: z.string().max(32) })
      .optional(),
    /** The terminal's clock, milliseconds since the epoch. */
    time: z
      .number()
      .int()
      .nonnegative()
      .max(2 ** 50),
  })
  .refine((c) => new Set(c.measurements.map((m) => m.name)).size === c.measurements.length, {
    message: 'a measurement name appears twice',
    path: ['measurements'],
  });
export type EvidenceClaims = z.infer<typeof EvidenceClaimsSchema>;

/** The device public key in the header: public members only (a `d` is refused). */
export const EvidenceJwkSchema = z.strictObject(P256JwkSchema.shape);

export const EvidenceHeaderSchema = z.strictObject({
  alg: z.literal('ES256'),
  typ: z.literal(EVIDENCE_TYPE),
  jwk: EvidenceJwkSchema.optional(),
});
export type EvidenceHeader = z.infer<typeof EvidenceHeaderSchema>;

export interface ParsedEvidence {
  readonly header: EvidenceHeader;
  readonly claims: EvidenceClaims;
  /** ASCII of `header.payload`, what the signature covers. */
  readonly signingInput: Uint8Array;
  /** Raw r‖s, 64 bytes. */
  readonly signature: Uint8Array;
}

/**
 * Splits a compact JWS and checks header and claims against their schemas. Does not verify the
 * signature (the back-end does, with the enrolled key). Never throws, whatever it is given.
 */
export function parseEvidence(jws: unknown): Result<ParsedEvidence> {
  if (typeof jws !== 'string') return err('POS_ERR_EVIDENCE_MALFORMED', 'the evidence is not a string');
  if (jws.length > EVIDENCE_MAX_LENGTH) {
    return err('POS_ERR_EVIDENCE_TOO_LARGE', `the evidence is over ${EVIDENCE_MAX_LENGTH} characters`);
  }
  const parts = splitCompactJws(jws);
  if (parts === undefined) return err('POS_ERR_EVIDENCE_MALFORMED', 'evidence has three dot-separated parts');
  const header = EvidenceHeaderSchema.safeParse(parts.header);
  if (!header.success) {
    const alg = jwsHeaderAlg(parts.header);
    if (alg !== undefined && alg !== 'ES256') {
      return err('POS_ERR_EVIDENCE_ALGORITHM', 'only ES256 evidence is accepted');
    }
    return err('POS_ERR_EVIDENCE_MALFORMED', 'the evidence header is not {alg, typ, jwk?}');
  }
  const claims = EvidenceClaimsSchema.safeParse(parts.payload);
  if (!claims.success) {
    const where = claims.error.issues[0]?.path.map(String).join('.') ?? '';
    return err(
      'POS_ERR_EVIDENCE_CLAIMS',
      `the evidence claims do not have the expected shape${where === '' ? '' : ` (at ${where})`}`,
    );
  }
  if (parts.signature === undefined) {
    return err('POS_ERR_EVIDENCE_MALFORMED', 'an ES256 signature is 64 bytes of base64url');
  }
  return ok({
    header: header.data,
    claims: claims.data,
    signingInput: parts.signingInput,
    signature: parts.signature,
  });
}

/**
 * Signs evidence with the device's P-256 secret key (32 bytes). With `includeJwk` (enrollment) the
 * header carries the device public key. The claims are checked against the schema first; a caller
 * that passes claims of the wrong shape gets an error result, not a JWS.
 */
export function signEvidence(
  claims: EvidenceClaims,
  secretKey: Uint8Array,
  opts: { includeJwk?: boolean } = {},
): Result<{ jws: string }> {
  const checked = EvidenceClaimsSchema.safeParse(claims);
  if (!checked.success) return err('POS_ERR_EVIDENCE_CLAIMS', 'the claims do not have the evidence shape');
  let header: EvidenceHeader = { alg: 'ES256', typ: EVIDENCE_TYPE };
  try {
    if (opts.includeJwk === true) {
      const pub = p256.getPublicKey(secretKey, false);
      header = {
        ...header,
        jwk: {
          kty: 'EC',
          crv: 'P-256',
          x: toBase64url(pub.subarray(1, 33)),
          y: toBase64url(pub.subarray(33, 65)),
        },
      };
    }
    const h = toBase64url(utf8ToBytes(JSON.stringify(header)));
    const p = toBase64url(utf8ToBytes(JSON.stringify(checked.data)));
    const signature = p256.sign(utf8ToBytes(`${h}.${p}`), secretKey, { prehash: true });
    return ok({ jws: `${h}.${p}.${toBase64url(signature)}` });
  } catch {
    return err('POS_ERR_KEY_LENGTH', 'the device secret key is not a valid P-256 scalar');
  }
}
