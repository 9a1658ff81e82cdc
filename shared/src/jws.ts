/**
 * The parts of a compact JWS (RFC 7515 section 7.1) that every ES256 token here shares: tickets and
 * evidence split, decode and size their parts the same way, then check them against their own
 * schemas and report their own codes. Never throws.
 */
import { bytesToUtf8 } from '@noble/ciphers/utils.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { parseBase64url } from './bytes';

export interface CompactJwsParts {
  /** The decoded JSON of the protected header, or undefined when it is not base64url JSON. */
  readonly header: unknown;
  /** The decoded JSON of the payload, or undefined when it is not base64url JSON. */
  readonly payload: unknown;
  /** ASCII `header.payload`, what the signature covers. */
  readonly signingInput: Uint8Array;
  /** The 64-byte ES256 signature (r || s), or undefined when the third part is not one. */
  readonly signature: Uint8Array | undefined;
}

function decodeJsonPart(part: string): unknown {
  const bytes = parseBase64url(part);
  if (!bytes.ok) return undefined;
  try {
    return JSON.parse(bytesToUtf8(bytes.bytes)) as unknown;
  } catch {
    return undefined;
  }
}

/** Splits a compact JWS into its decoded parts; undefined when it is not three dot-separated parts. */
export function splitCompactJws(jws: string): CompactJwsParts | undefined {
  const parts = jws.split('.');
  if (parts.length !== 3) return undefined;
  const [h, p, s] = parts as [string, string, string];
  const signature = parseBase64url(s);
  return {
    header: decodeJsonPart(h),
    payload: decodeJsonPart(p),
    signingInput: utf8ToBytes(`${h}.${p}`),
    signature: signature.ok && signature.bytes.length === 64 ? signature.bytes : undefined,
  };
}

/** The `alg` a header names, when it is an object that names one. */
export function jwsHeaderAlg(header: unknown): unknown {
  return typeof header === 'object' && header !== null ? (header as { alg?: unknown }).alg : undefined;
}
