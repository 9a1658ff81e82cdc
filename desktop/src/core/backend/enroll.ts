/**
 * Enrollment: make the device key (P-256, ES256) unless one is stored from an attempt the back-end
 * refused, store it (key store: 0600 file headless), get an enrollment challenge, sign the first
 * evidence (purpose `enrollment`, `iss: enrolling`, the public key in the JWS header), post it with the
 * code, the device JWK and the reader serial, and keep what the back-end answers: terminal id,
 * merchant, ticket keys (JWKS), attestation interval and the verdict. The counter is reserved in the
 * store before signing, as the agent does.
 */
import { generateKeyPairSync } from 'node:crypto';
import { jwkFromPublicKey, p256Signer, parseBase64url, signEvidence, wipe, type Result } from '@pos/shared';
import { evidenceClaims, type Collected } from '../attest/evidence';
import type { KeyStore, ReaderConfig } from '../keys/store';
import type { DesktopCode } from '../result';
import type { BackendClient, EnrollOut } from './client';

/** A fresh P-256 private key, the raw 32 bytes (the caller wipes it). */
export function newDeviceKey(): Uint8Array {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const d = parseBase64url(privateKey.export({ format: 'jwk' }).d ?? '');
  if (!d.ok || d.bytes.length !== 32) throw new Error('node:crypto returned a malformed P-256 key');
  return d.bytes;
}

export interface EnrollInput {
  readonly keyStore: KeyStore;
  readonly client: BackendClient;
  readonly code: string;
  readonly readerSerial: string;
  readonly reader: ReaderConfig;
  readonly readerCaRoots: readonly string[];
  readonly collect: () => Promise<Collected>;
  readonly now?: () => number;
}

export async function enrollTerminal(
  input: EnrollInput,
): Promise<Result<{ enrolled: EnrollOut }, DesktopCode>> {
  const { keyStore, client } = input;
  const now = input.now ?? Date.now;
  const cfg = await keyStore.getConfig();
  if (!cfg.ok) return cfg;
  if (cfg.config?.terminalId !== undefined)
    return {
      ok: false,
      code: 'POS_ERR_DESKTOP_ALREADY_ENROLLED',
      detail: `already enrolled as ${cfg.config.terminalId}`,
    };
  const stored = await keyStore.getDeviceKey();
  if (!stored.ok) return stored;
  let secretKey = stored.secretKey;
  if (secretKey === undefined) {
    secretKey = newDeviceKey();
    const put = await keyStore.putDeviceKey(secretKey);
    if (!put.ok) {
      wipe(secretKey);
      return put;
    }
  }
  try {
    const counter = (cfg.config?.evidenceCounter ?? 0) + 1;
    const saved = await keyStore.putConfig({
      backendUrl: client.baseUrl,
      readerSerial: input.readerSerial,
      reader: input.reader,
      readerCaRoots: [...input.readerCaRoots],
      evidenceCounter: counter,
    });
    if (!saved.ok) return saved;
    const ch = await client.challenge();
    if (!ch.ok) return ch;
    const claims = evidenceClaims(await input.collect(), {
      iss: 'enrolling',
      challenge: ch.challenge,
      counter,
      purpose: 'enrollment',
      nowMs: now(),
    });
    if (!claims.ok) return claims;
    const signed = signEvidence(claims.claims, secretKey, { includeJwk: true });
    if (!signed.ok) return signed;
    const jwk = jwkFromPublicKey(p256Signer(secretKey).publicKey);
    const r = await client.enroll({
      code: input.code,
      deviceJwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
      readerSerial: input.readerSerial,
      evidence: signed.jws,
    });
    if (!r.ok) return r;
    const e = r.enrolled;
    const done = await keyStore.putConfig({
      backendUrl: client.baseUrl,
      readerSerial: input.readerSerial,
      reader: input.reader,
      readerCaRoots: [...input.readerCaRoots],
      evidenceCounter: counter,
      terminalId: e.terminalId,
      merchantId: e.merchantId,
      jwks: e.jwks,
      attestationIntervalS: e.attestationIntervalS,
      lastVerdict: {
        tier: e.verdict.tier,
        at: now(),
        halted: false,
        reasons: e.verdict.reasons.map((x) => x.code),
      },
    });
    if (!done.ok) return done;
    return { ok: true, enrolled: e };
  } finally {
    wipe(secretKey);
  }
}
