/** Test fixtures for the domain suites: device keys, evidence, reference values, a reader stand-in. */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  jwkThumbprint,
  ok,
  err,
  parseBase64url,
  signEvidence,
  toBase64url,
  type EvidenceClaims,
  type P256Jwk,
} from '@pos/shared';
import type {
  AppraisalInput,
  ChallengeContext,
  ReaderStatusReport,
  ReaderStatusVerifier,
  ReferenceValues,
  TerminalContext,
} from '../../src/attestation/index';

export const NOW = 1_800_000_000_000;
export const CODE_HASH = 'ab'.repeat(32);
export const FUSE_WIRE = '--x-x-';

export interface DeviceKey {
  secret: Uint8Array;
  jwk: P256Jwk;
  jkt: string;
}

export function deviceKey(): DeviceKey {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const j = privateKey.export({ format: 'jwk' }) as { x: string; y: string; d: string };
  const d = parseBase64url(j.d);
  if (!d.ok) throw new Error('jwk d');
  const jwk: P256Jwk = { kty: 'EC', crv: 'P-256', x: j.x, y: j.y };
  return { secret: d.bytes, jwk, jkt: jwkThumbprint(jwk) };
}

export const challengeValue = (): string => toBase64url(new Uint8Array(randomBytes(32)));

export const REFERENCE: ReferenceValues = {
  version: '1.2.3',
  build: 'release',
  codeHashes: [CODE_HASH],
  fuseWire: FUSE_WIRE,
  allowedShells: ['electron', 'headless'],
};
export const REFERENCE_BROWSER: ReferenceValues = {
  ...REFERENCE,
  allowedShells: ['electron', 'browser', 'headless'],
};

export const READER_SERIAL = 'SIM-0001';

const GOOD_SIGNALS = [
  'debugger',
  'inspector',
  'devtools',
  'node-options',
  'run-as-node',
  'suspicious-env',
  'virtual-machine',
  'remote-session',
  'screen-capture-protection',
];

export function goodMeasurements(): EvidenceClaims['measurements'] {
  return [
    { name: 'fuses', status: 'ok', method: 'electron-fuses', value: FUSE_WIRE },
    ...GOOD_SIGNALS.map((name) => ({ name, status: 'ok' as const, method: 'test' })),
  ];
}

/** A reader stand-in: the "status" bytes are JSON of a ReaderStatusReport; the signature must be "good". */
export const standInReaderVerifier: ReaderStatusVerifier = {
  verify(signed) {
    if (new TextDecoder().decode(signed.signature) !== 'good') {
      return err('POS_ERR_READER_STATUS_SIGNATURE', 'stand-in: bad signature');
    }
    const report = JSON.parse(new TextDecoder().decode(signed.status)) as ReaderStatusReport;
    return ok({ report });
  },
};

export function readerEvidence(
  report: Partial<ReaderStatusReport> = {},
  signature = 'good',
): NonNullable<EvidenceClaims['reader']> {
  const enc = new TextEncoder();
  const full: ReaderStatusReport = { serial: READER_SERIAL, tampered: false, time: NOW, seq: 1, ...report };
  return {
    status: toBase64url(enc.encode(JSON.stringify(full))),
    signature: toBase64url(enc.encode(signature)),
    chain: [toBase64url(enc.encode('cert'))],
  };
}

export function claims(over: Partial<EvidenceClaims> = {}, challenge = challengeValue()): EvidenceClaims {
  return {
    iss: 'term_A',
    iat: Math.floor(NOW / 1000),
    challenge,
    counter: 5,
    purpose: 'periodic',
    app: { version: '1.2.3', build: 'release', codeHash: CODE_HASH },
    shell: 'electron',
    measurements: goodMeasurements(),
    reader: readerEvidence(),
    time: NOW,
    ...over,
  };
}

export function sign(c: EvidenceClaims, key: DeviceKey, includeJwk = false): string {
  const r = signEvidence(c, key.secret, { includeJwk });
  if (!r.ok) throw new Error(r.code);
  return r.jws;
}

export function terminal(key: DeviceKey, over: Partial<TerminalContext> = {}): TerminalContext {
  return {
    terminalId: 'term_A',
    merchantId: 'm_1',
    deviceJwk: key.jwk,
    deviceJkt: key.jkt,
    readerSerial: READER_SERIAL,
    lastCounter: 4,
    ...over,
  };
}

export function challengeCtx(value: string, over: Partial<ChallengeContext> = {}): ChallengeContext {
  return { value, terminalId: 'term_A', expiresAt: NOW + 30_000, usedAt: null, ...over };
}

/** A complete, passing appraisal input; override any part. */
export function input(
  key: DeviceKey,
  over: { claims?: Partial<EvidenceClaims>; input?: Partial<AppraisalInput>; jwk?: boolean } = {},
): AppraisalInput {
  const value = challengeValue();
  const c = claims(over.claims ?? {}, value);
  return {
    evidenceJws: sign(c, key, over.jwk ?? false),
    terminal: terminal(key),
    challenge: challengeCtx(c.challenge),
    referenceValues: [REFERENCE],
    readerCaRoots: [new Uint8Array([1])],
    now: NOW,
    options: { readerVerifier: standInReaderVerifier },
    ...over.input,
  };
}
