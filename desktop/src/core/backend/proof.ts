/**
 * Pos-Proof (docs/backend.md, "Terminal request authentication"): a compact JWS, ES256, signed by the
 * device key, header `{alg, typ: pos-proof+jwt, kid: <terminal id>}`, claims `htm`, `htu`
 * (`<issuer><path>`), `iat`, a fresh `jti`, `bh` (SHA-256 of the exact body bytes) and `ath` (SHA-256
 * of the ticket, when the request carries one). The device key is passed in and not kept.
 */
import { createHash, createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { p256Signer, toBase64url } from '@pos/shared';

export const PROOF_TYPE = 'pos-proof+jwt';

const enc = (v: unknown): string => toBase64url(new Uint8Array(Buffer.from(JSON.stringify(v), 'utf8')));
const sha256b64 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('base64url');

export interface ProofInput {
  readonly terminalId: string;
  readonly method: string;
  /** The full URL as the back-end sees it: its issuer plus the path (`http://host:port/v1/attestations`). */
  readonly htu: string;
  /** The exact request body (empty string for none). */
  readonly body: string;
  readonly ticket?: string;
  readonly nowMs: number;
}

export function signProof(secretKey: Uint8Array, p: ProofInput): string {
  const header = { alg: 'ES256', typ: PROOF_TYPE, kid: p.terminalId };
  const claims = {
    htm: p.method,
    htu: p.htu,
    iat: Math.floor(p.nowMs / 1000),
    jti: toBase64url(new Uint8Array(randomBytes(18))),
    bh: sha256b64(p.body),
    ...(p.ticket === undefined ? {} : { ath: sha256b64(p.ticket) }),
  };
  const input = `${enc(header)}.${enc(claims)}`;
  const sig = sign('sha256', Buffer.from(input, 'utf8'), {
    key: deviceKeyObject(secretKey),
    dsaEncoding: 'ieee-p1363',
  });
  return `${input}.${toBase64url(new Uint8Array(sig))}`;
}

/** The device key as a node:crypto key (for signing with the native implementation). */
export function deviceKeyObject(secretKey: Uint8Array): KeyObject {
  const pub = p256Signer(secretKey).publicKey;
  return createPrivateKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      d: toBase64url(secretKey),
      x: toBase64url(pub.subarray(1, 33)),
      y: toBase64url(pub.subarray(33, 65)),
    },
    format: 'jwk',
  });
}
