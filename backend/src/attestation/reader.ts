/**
 * The reader's signed status, as the attestation verifiers need it. The reader-protocol code
 * (shared/src/reader/status.ts) verifies the signature and the certificate chain; this interface keeps
 * the verifiers independent of it, and tests use a stand-in.
 */
import { createHash, createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import {
  MAX_STATUS_REPORT_BYTES,
  decodeReaderStatus,
  err,
  ok,
  toBase64url,
  toHex,
  verifyReaderCertChain,
  type Result,
} from '@pos/shared';

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
  /** The report's sequence number: strictly increasing per reader, across restarts. */
  seq?: number;
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

export interface ReaderStatusVerifierOptions {
  /** How long a verified certificate chain is trusted without re-verifying it (ms, default 300 000). */
  chainCacheTtlMs?: number;
  /** How many verified chains are kept (default 10 000). */
  chainCacheSize?: number;
}

interface VerifiedChain {
  readonly serial: string;
  readonly key: KeyObject;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly verifiedAt: number;
}

/**
 * A ReaderStatusVerifier with the checks of @pos/shared `verifyReaderStatus`
 * (shared/src/reader/status.ts), in the same order and with the same codes: the certificate chain to a
 * manufacturer root at the server's time (`verifyReaderCertChain`), the reader key's ES256 signature
 * over the CBOR record, the record's schema (`decodeReaderStatus`), and its serial equal to the
 * certificate's. Two changes for the attestation hot path, where the pure-JS original measured about
 * 14 ms per report: the status signature is verified with node:crypto, and a verified chain is
 * remembered (keyed by the SHA-256 of the roots and the chain) for `chainCacheTtlMs`, its leaf's
 * validity re-checked on every use. Freshness and the binding to the paired reader stay with the
 * `reader` verifier, which has the evidence.
 */
export function createReaderStatusVerifier(opts: ReaderStatusVerifierOptions = {}): ReaderStatusVerifier {
  const ttl = opts.chainCacheTtlMs ?? 300_000;
  const size = opts.chainCacheSize ?? 10_000;
  const cache = new Map<string, VerifiedChain>();

  function chainFor(
    chain: readonly Uint8Array[],
    roots: readonly Uint8Array[],
    now: number,
  ): Result<{ chain: VerifiedChain }, `POS_ERR_${string}`> {
    const h = createHash('sha256');
    for (const r of roots) h.update(createHash('sha256').update(r).digest());
    h.update('|');
    for (const c of chain) h.update(createHash('sha256').update(c).digest());
    const id = h.digest('hex');
    const nowS = Math.floor(now / 1000);
    const hit = cache.get(id);
    if (hit !== undefined && now - hit.verifiedAt < ttl && now >= hit.verifiedAt) {
      if (nowS < hit.notBefore || nowS > hit.notAfter) {
        return err('POS_ERR_READER_CERT_EXPIRED', 'the reader certificate is expired or not yet valid');
      }
      return ok({ chain: hit });
    }
    const verified = verifyReaderCertChain(chain, roots, { now: nowS });
    if (!verified.ok) return verified;
    const pub = verified.publicKey;
    const key = createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: toBase64url(pub.subarray(1, 33)),
        y: toBase64url(pub.subarray(33, 65)),
      },
      format: 'jwk',
    });
    const entry: VerifiedChain = {
      serial: verified.serial,
      key,
      notBefore: verified.leaf.notBefore,
      notAfter: verified.leaf.notAfter,
      verifiedAt: now,
    };
    if (cache.size >= size) {
      const oldest = cache.keys().next();
      if (oldest.done !== true) cache.delete(oldest.value);
    }
    cache.set(id, entry);
    return ok({ chain: entry });
  }

  return {
    verify(signed, roots, now) {
      if (
        !(signed.status instanceof Uint8Array) ||
        !(signed.signature instanceof Uint8Array) ||
        signed.signature.length !== 64
      ) {
        return err(
          'POS_ERR_READER_STATUS_INVALID',
          'a signed status is report bytes and a 64-byte signature',
        );
      }
      const chain = chainFor(signed.chain, roots, now);
      if (!chain.ok) return chain;
      if (signed.status.length > MAX_STATUS_REPORT_BYTES) {
        return err('POS_ERR_READER_STATUS_INVALID', 'the status record is too large');
      }
      let valid: boolean;
      try {
        valid = nodeVerify(
          'sha256',
          signed.status,
          { key: chain.chain.key, dsaEncoding: 'ieee-p1363' },
          signed.signature,
        );
      } catch {
        valid = false;
      }
      if (!valid) {
        return err(
          'POS_ERR_READER_STATUS_SIGNATURE',
          'the status signature does not verify under the reader key',
        );
      }
      const decoded = decodeReaderStatus(signed.status);
      if (!decoded.ok) return decoded;
      const st = decoded.status;
      if (st.serial !== chain.chain.serial) {
        return err('POS_ERR_READER_SERIAL_MISMATCH', 'the status names another serial than its certificate');
      }
      return ok({
        report: {
          serial: st.serial,
          tampered: st.tamper,
          time: st.time * 1000,
          firmwareVersion: st.fw,
          firmwareHash: toHex(st.fwHash).toLowerCase(),
          ksnCounter: st.ksnCounter,
          battery: st.battery,
          seq: st.seq,
          ...(st.challenge === undefined ? {} : { challenge: toBase64url(st.challenge) }),
        },
      });
    },
  };
}
