/**
 * One small verifier per concern. Each returns ok, or a failure with a stable code, a sentence and the
 * AR4SI claim value it supports; none decides the verdict (the policy does). See docs/attestation.md
 * for every code.
 */
import { createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import {
  EVIDENCE_ENROLLING_ISSUER,
  constantTimeEqual,
  jwkThumbprint,
  parseBase64url,
  type EvidenceClaims,
  type Measurement,
  type P256Jwk,
} from '@pos/shared';
import { AR4SI } from './ar4si';
import type { CheckResult, EvidenceVerifier, ReferenceValues, VerifierContext } from './types';

const PASS: CheckResult = { ok: true };
const fail = (code: string, detail: string, value: number): CheckResult => ({
  ok: false,
  status: 'fail',
  code,
  detail,
  value,
});
const unknown = (code: string, detail: string): CheckResult => ({
  ok: false,
  status: 'unknown',
  code,
  detail,
  value: AR4SI.NO_CLAIM,
});

const sameText = (a: string, b: string): boolean => {
  const enc = new TextEncoder();
  return constantTimeEqual(enc.encode(a), enc.encode(b));
};

// ---- signature -------------------------------------------------------------------------------

/**
 * Importing a P-256 key into OpenSSL costs about as much as verifying a signature with it (measured:
 * both ≈130-180 µs on the loaded development machine), so imported keys are kept in a small LRU map
 * keyed by the JWK coordinates: a terminal's several attestations of one transaction hit it. The
 * limit bounds memory (a KeyObject holds native memory); `setDeviceKeyCacheLimit` changes it.
 */
let keyCacheLimit = 20_000;
const keyCache = new Map<string, KeyObject>();

export function setDeviceKeyCacheLimit(limit: number): void {
  keyCacheLimit = Math.max(0, Math.floor(limit));
  while (keyCache.size > keyCacheLimit) {
    const oldest = keyCache.keys().next();
    if (oldest.done === true) break;
    keyCache.delete(oldest.value);
  }
}

/** A node:crypto public key for a P-256 JWK, from the LRU cache when it is there. */
function publicKeyObject(jwk: P256Jwk): KeyObject {
  const id = `${jwk.x}.${jwk.y}`;
  const cached = keyCache.get(id);
  if (cached !== undefined) {
    keyCache.delete(id);
    keyCache.set(id, cached);
    return cached;
  }
  const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }, format: 'jwk' });
  if (keyCacheLimit === 0) return key;
  if (keyCache.size >= keyCacheLimit) {
    const oldest = keyCache.keys().next();
    if (oldest.done !== true) keyCache.delete(oldest.value);
  }
  keyCache.set(id, key);
  return key;
}

/** ES256 over the JWS signing input, raw r‖s signature, with native crypto. */
export function verifyEs256(jwk: P256Jwk, signingInput: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  try {
    return nodeVerify(
      'sha256',
      signingInput,
      { key: publicKeyObject(jwk), dsaEncoding: 'ieee-p1363' },
      signature,
    );
  } catch {
    return false;
  }
}

/**
 * Signed by the enrolled device key. Enrollment evidence carries its key in the header `jwk`, must be
 * signed by it, and that key must be the one being enrolled; later evidence carries no `jwk`.
 */
export const signatureVerifier: EvidenceVerifier = {
  name: 'signature',
  category: 'instance-identity',
  verify(ctx) {
    const enrolledJkt = ctx.input.terminal.deviceJkt;
    if (!sameText(jwkThumbprint(ctx.input.terminal.deviceJwk), enrolledJkt)) {
      return fail(
        'POS_ERR_ATTEST_KEY_MISMATCH',
        'the enrolled key and its thumbprint disagree',
        AR4SI.CONTRAINDICATED_UNRECOGNISED,
      );
    }
    const enrolling = ctx.claims.purpose === 'enrollment';
    if (enrolling) {
      if (ctx.header.jwk === undefined) {
        return fail(
          'POS_ERR_ATTEST_JWK_MISSING',
          'enrollment evidence must carry its device key in the header',
          AR4SI.UNEXPECTED_EVIDENCE,
        );
      }
      if (!sameText(jwkThumbprint(ctx.header.jwk), enrolledJkt)) {
        return fail(
          'POS_ERR_ATTEST_KEY_MISMATCH',
          'the evidence key is not the key being enrolled',
          AR4SI.CONTRAINDICATED_UNRECOGNISED,
        );
      }
    } else if (ctx.header.jwk !== undefined) {
      return fail(
        'POS_ERR_ATTEST_JWK_UNEXPECTED',
        'only enrollment evidence carries a key in its header',
        AR4SI.UNEXPECTED_EVIDENCE,
      );
    }
    if (!verifyEs256(ctx.input.terminal.deviceJwk, ctx.signingInput, ctx.signature)) {
      return fail(
        'POS_ERR_ATTEST_SIGNATURE',
        'the evidence signature does not verify under the device key',
        AR4SI.CRYPTO_FAILED,
      );
    }
    return PASS;
  },
};

/** The evidence names this terminal (or `enrolling` for enrollment evidence). */
export const subjectVerifier: EvidenceVerifier = {
  name: 'subject',
  category: 'instance-identity',
  verify(ctx) {
    const { iss, purpose } = ctx.claims;
    if (purpose === 'enrollment') {
      if (iss === EVIDENCE_ENROLLING_ISSUER || iss === ctx.input.terminal.terminalId) return PASS;
      return fail(
        'POS_ERR_ATTEST_SUBJECT',
        'enrollment evidence names another terminal',
        AR4SI.CONTRAINDICATED_UNRECOGNISED,
      );
    }
    if (iss !== ctx.input.terminal.terminalId) {
      return fail(
        'POS_ERR_ATTEST_SUBJECT',
        'the evidence names another terminal',
        AR4SI.CONTRAINDICATED_UNRECOGNISED,
      );
    }
    return PASS;
  },
};

// ---- freshness ---------------------------------------------------------------------------------

/** The challenge is one this service issued, to this terminal, not expired and not used before. */
export const challengeVerifier: EvidenceVerifier = {
  name: 'challenge',
  category: 'instance-identity',
  verify(ctx) {
    const c = ctx.input.challenge;
    if (c === undefined) {
      return fail(
        'POS_ERR_ATTEST_CHALLENGE_UNKNOWN',
        'the evidence names a challenge this service did not issue',
        AR4SI.UNEXPECTED_EVIDENCE,
      );
    }
    const a = parseBase64url(c.value);
    const b = parseBase64url(ctx.claims.challenge);
    if (!a.ok || !b.ok || a.bytes.length !== 32 || !constantTimeEqual(a.bytes, b.bytes)) {
      return fail(
        'POS_ERR_ATTEST_CHALLENGE_MISMATCH',
        'the evidence names another challenge',
        AR4SI.UNEXPECTED_EVIDENCE,
      );
    }
    if (c.usedAt !== null) {
      return fail(
        'POS_ERR_ATTEST_CHALLENGE_USED',
        'the challenge was already used (replayed evidence)',
        AR4SI.UNEXPECTED_EVIDENCE,
      );
    }
    if (ctx.input.now >= c.expiresAt) {
      return fail('POS_ERR_ATTEST_CHALLENGE_EXPIRED', 'the challenge has expired', AR4SI.UNEXPECTED_EVIDENCE);
    }
    const enrolling = ctx.claims.purpose === 'enrollment';
    if (
      enrolling
        ? c.terminalId !== null && c.terminalId !== ctx.input.terminal.terminalId
        : c.terminalId !== ctx.input.terminal.terminalId
    ) {
      return fail(
        'POS_ERR_ATTEST_CHALLENGE_TERMINAL',
        'the challenge was issued to another terminal',
        AR4SI.UNEXPECTED_EVIDENCE,
      );
    }
    return PASS;
  },
};

/** The counter goes up with every evidence; equal or lower means a replay or a cloned key. */
export const counterVerifier: EvidenceVerifier = {
  name: 'counter',
  category: 'instance-identity',
  verify(ctx) {
    if (ctx.claims.counter <= ctx.input.terminal.lastCounter) {
      return fail(
        'POS_ERR_ATTEST_COUNTER_REGRESSION',
        'the evidence counter is not above the last accepted one',
        AR4SI.CONTRAINDICATED,
      );
    }
    return PASS;
  },
};

export const DEFAULT_CLOCK_SKEW_MS = 120_000;

/** The terminal's clock (and the JWS iat) agree with the server's within a window. */
export const clockVerifier: EvidenceVerifier = {
  name: 'clock',
  category: 'configuration',
  verify(ctx) {
    const window = ctx.input.options?.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
    const { now } = ctx.input;
    if (Math.abs(ctx.claims.time - now) > window) {
      return fail(
        'POS_ERR_ATTEST_CLOCK_SKEW',
        "the terminal's clock is too far from the server's",
        AR4SI.WARNING,
      );
    }
    if (Math.abs(ctx.claims.iat * 1000 - now) > window + 1000) {
      return fail('POS_ERR_ATTEST_CLOCK_SKEW', 'the evidence was issued too far from now', AR4SI.WARNING);
    }
    return PASS;
  },
};

/** The evidence is for what the caller is doing: its purpose, and for pre-pin the reader's nonce. */
export const purposeVerifier: EvidenceVerifier = {
  name: 'purpose',
  category: 'configuration',
  verify(ctx) {
    const { expectedPurpose, expectedNonce } = ctx.input;
    if (expectedPurpose !== undefined && ctx.claims.purpose !== expectedPurpose) {
      return fail(
        'POS_ERR_ATTEST_PURPOSE',
        `${expectedPurpose} evidence is needed here`,
        AR4SI.UNEXPECTED_EVIDENCE,
      );
    }
    // Enrollment evidence only before the terminal has any accepted evidence, and only then.
    const fresh = ctx.input.terminal.lastCounter < 0;
    if ((ctx.claims.purpose === 'enrollment') !== fresh) {
      return fail(
        'POS_ERR_ATTEST_PURPOSE',
        fresh ? 'a terminal enrolls with enrollment evidence' : 'an enrolled terminal cannot enroll again',
        AR4SI.UNEXPECTED_EVIDENCE,
      );
    }
    const nonce = ctx.claims.nonce;
    if (ctx.claims.purpose === 'pre-pin' || expectedNonce !== undefined) {
      if (nonce === undefined || expectedNonce === undefined || !sameText(nonce, expectedNonce)) {
        return fail(
          'POS_ERR_ATTEST_NONCE',
          "the evidence is not bound to this transaction's reader nonce",
          AR4SI.UNEXPECTED_EVIDENCE,
        );
      }
    } else if (nonce !== undefined) {
      return fail(
        'POS_ERR_ATTEST_NONCE',
        'only pre-pin evidence carries a transaction nonce',
        AR4SI.UNEXPECTED_EVIDENCE,
      );
    }
    return PASS;
  },
};

// ---- reader ------------------------------------------------------------------------------------

export const DEFAULT_READER_STATUS_MAX_AGE_MS = 300_000;
/**
 * Pre-PIN evidence: a reader status that does not echo this evidence's challenge must be at most this
 * old (by the report's own time, whole seconds) — the status vouches for the reader right before a PIN.
 */
export const DEFAULT_READER_STATUS_PRE_PIN_MAX_AGE_MS = 5_000;

function decodeB64(text: string): Uint8Array | undefined {
  const r = parseBase64url(text);
  return r.ok ? r.bytes : undefined;
}

/**
 * The reader's signed status: chained to the manufacturer CA, signed by the reader, from the reader
 * paired with this terminal, not tampered, recent. Absent or unverifiable status is `unknown`.
 */
export const readerVerifier: EvidenceVerifier = {
  name: 'reader',
  category: 'hardware',
  async verify(ctx) {
    const reader = ctx.claims.reader;
    if (reader === undefined)
      return unknown('POS_ERR_ATTEST_READER_ABSENT', 'the evidence carries no reader status');
    const verifier = ctx.input.options?.readerVerifier;
    if (verifier === undefined || ctx.input.readerCaRoots.length === 0) {
      return unknown(
        'POS_ERR_ATTEST_READER_UNVERIFIABLE',
        'this service cannot verify reader status (no verifier or no CA root)',
      );
    }
    const status = decodeB64(reader.status);
    const signature = decodeB64(reader.signature);
    const chain = reader.chain.map(decodeB64);
    if (status === undefined || signature === undefined || chain.some((c) => c === undefined)) {
      return fail(
        'POS_ERR_ATTEST_READER_SIGNATURE',
        'the reader status is not well-formed base64url',
        AR4SI.UNEXPECTED_EVIDENCE,
      );
    }
    const verified = await verifier.verify(
      { status, signature, chain: chain as Uint8Array[] },
      ctx.input.readerCaRoots,
      ctx.input.now,
    );
    if (!verified.ok) {
      return fail(
        'POS_ERR_ATTEST_READER_SIGNATURE',
        `the reader status does not verify (${verified.code})`,
        AR4SI.CRYPTO_FAILED,
      );
    }
    const report = verified.report;
    if (report.tampered)
      return fail(
        'POS_ERR_ATTEST_READER_TAMPERED',
        'the reader reports that it was tampered with',
        AR4SI.CONTRAINDICATED,
      );
    const paired = ctx.input.terminal.readerSerial;
    if (paired === undefined)
      return unknown('POS_ERR_ATTEST_READER_UNPAIRED', 'no reader is paired with this terminal yet');
    if (report.serial !== paired) {
      return fail(
        'POS_ERR_ATTEST_READER_MISMATCH',
        'the reader status is from a reader not paired with this terminal',
        AR4SI.CONTRAINDICATED,
      );
    }
    if (report.challenge !== undefined && report.challenge !== ctx.claims.challenge) {
      return fail('POS_ERR_ATTEST_READER_STALE', 'the reader status echoes another challenge', AR4SI.WARNING);
    }
    const prePin = ctx.claims.purpose === 'pre-pin';
    const options = ctx.input.options;
    const maxAge = prePin
      ? (options?.readerStatusPrePinMaxAgeMs ?? DEFAULT_READER_STATUS_PRE_PIN_MAX_AGE_MS)
      : (options?.readerStatusMaxAgeMs ?? DEFAULT_READER_STATUS_MAX_AGE_MS);
    if (
      report.challenge === undefined &&
      (report.time === undefined || Math.abs(ctx.input.now - report.time) > maxAge)
    ) {
      return fail(
        'POS_ERR_ATTEST_READER_STALE',
        'the reader status is too old to vouch for the reader now',
        AR4SI.WARNING,
      );
    }
    // The reader numbers its status reports; the service keeps the last one seen per reader. Any
    // verified report raises it; pre-PIN evidence needs a report newer than every one seen before.
    if (prePin && report.seq === undefined) {
      return fail(
        'POS_ERR_ATTEST_READER_REPLAYED',
        'the reader status carries no sequence number',
        AR4SI.WARNING,
      );
    }
    if (report.seq !== undefined && options?.readerStatusSeq !== undefined) {
      const newer = await options.readerStatusSeq(report.serial, report.seq);
      if (prePin && !newer) {
        return fail(
          'POS_ERR_ATTEST_READER_REPLAYED',
          'the reader status is not newer than one already seen from this reader',
          AR4SI.WARNING,
        );
      }
    }
    return PASS;
  },
};

// ---- app measurements against reference values ------------------------------------------------

function measurement(claims: EvidenceClaims, name: string): Measurement | undefined {
  return claims.measurements.find((m) => m.name === name);
}

/** The approved releases matching the evidence's version and build kind. */
export function matchingReleases(
  claims: EvidenceClaims,
  refs: readonly ReferenceValues[],
): ReferenceValues[] {
  return refs.filter((r) => r.version === claims.app.version && r.build === claims.app.build);
}

/** The app is an approved release: version and build kind known, code hash one of its hashes. */
export const releaseVerifier: EvidenceVerifier = {
  name: 'release',
  category: 'executables',
  verify(ctx) {
    const releases = matchingReleases(ctx.claims, ctx.input.referenceValues);
    if (releases.length === 0) {
      return fail(
        'POS_ERR_ATTEST_RELEASE_UNKNOWN',
        'the app version and build are not an approved release',
        AR4SI.WARNING_UNRECOGNISED,
      );
    }
    const hash = ctx.claims.app.codeHash.toLowerCase();
    if (!releases.some((r) => r.codeHashes.some((h) => h.toLowerCase() === hash))) {
      return fail(
        'POS_ERR_ATTEST_CODE_HASH',
        "the app's code hash is not the approved release's",
        AR4SI.CONTRAINDICATED,
      );
    }
    return PASS;
  },
};

/** The shell kind (electron, browser, headless) is one the release allows. */
export const shellVerifier: EvidenceVerifier = {
  name: 'shell',
  category: 'configuration',
  verify(ctx) {
    const releases = matchingReleases(ctx.claims, ctx.input.referenceValues);
    if (releases.length === 0) return undefined;
    if (!releases.some((r) => r.allowedShells.includes(ctx.claims.shell))) {
      return fail(
        'POS_ERR_ATTEST_SHELL_NOT_ALLOWED',
        `the ${ctx.claims.shell} shell is not allowed for this release`,
        AR4SI.WARNING,
      );
    }
    return PASS;
  },
};

/** Electron only: the fuse wire measured equals the release's. */
export const fusesVerifier: EvidenceVerifier = {
  name: 'fuses',
  category: 'configuration',
  verify(ctx) {
    if (ctx.claims.shell !== 'electron') return undefined;
    const expected = matchingReleases(ctx.claims, ctx.input.referenceValues)
      .map((r) => r.fuseWire)
      .filter((w): w is string => w !== undefined);
    if (expected.length === 0) return undefined;
    const m = measurement(ctx.claims, 'fuses');
    if (m === undefined || m.status === 'unknown') {
      return unknown('POS_ERR_ATTEST_MEASUREMENT_UNKNOWN', 'the fuse wire was not measured (fuses)');
    }
    if (m.status === 'fail' || typeof m.value !== 'string' || !expected.includes(m.value)) {
      return fail(
        'POS_ERR_ATTEST_FUSES',
        "the Electron fuses differ from the release's",
        AR4SI.CONTRAINDICATED,
      );
    }
    return PASS;
  },
};

/** When the release pins executable hashes: the measured executable is one of them. */
export const executableVerifier: EvidenceVerifier = {
  name: 'executable',
  category: 'file-system',
  verify(ctx) {
    const expected = matchingReleases(ctx.claims, ctx.input.referenceValues).flatMap((r) =>
      (r.executableHashes ?? []).map((h) => h.toLowerCase()),
    );
    if (expected.length === 0) return undefined;
    const m = measurement(ctx.claims, 'executable-hash');
    if (m === undefined || m.status === 'unknown') {
      return unknown(
        'POS_ERR_ATTEST_MEASUREMENT_UNKNOWN',
        'the executable was not measured (executable-hash)',
      );
    }
    if (m.status === 'fail' || typeof m.value !== 'string' || !expected.includes(m.value.toLowerCase())) {
      return fail(
        'POS_ERR_ATTEST_EXECUTABLE_HASH',
        'the executable is not the approved release’s',
        AR4SI.CONTRAINDICATED,
      );
    }
    return PASS;
  },
};

// ---- runtime signals ---------------------------------------------------------------------------

/** Signals of someone inside the process: each must be measured and ok. */
export const RUNTIME_SIGNALS = [
  'debugger',
  'inspector',
  'devtools',
  'node-options',
  'run-as-node',
  'suspicious-env',
] as const;
/** Signals about the machine around the app: a failure is a warning. */
export const ENVIRONMENT_SIGNALS = [
  'virtual-machine',
  'remote-session',
  'screen-capture-protection',
] as const;

function signalCheck(
  claims: EvidenceClaims,
  names: readonly string[],
  failCode: string,
  failValue: number,
  what: string,
): CheckResult {
  const failed: string[] = [];
  const unmeasured: string[] = [];
  for (const name of names) {
    const m = measurement(claims, name);
    if (m === undefined || m.status === 'unknown') unmeasured.push(name);
    else if (m.status === 'fail') failed.push(name);
  }
  if (failed.length > 0) return fail(failCode, `${what}: ${failed.join(', ')}`, failValue);
  if (unmeasured.length > 0) {
    return unknown('POS_ERR_ATTEST_MEASUREMENT_UNKNOWN', `not measured or unknown: ${unmeasured.join(', ')}`);
  }
  return PASS;
}

/**
 * The runtime signals that apply to the evidence's shell. The browser shell's page runs in a browser
 * the terminal process cannot look into, so its `devtools` hint can only be `unknown`: for that shell
 * (and only while the hint is reported `unknown`; a reported failure still fails) it is not one of the
 * signals. The browser shell's weaker standing is the shell verifier's and the policy's concern: the
 * production policy refuses PIN entry from it, the development policy allows it.
 */
export function runtimeSignalsFor(claims: EvidenceClaims): readonly string[] {
  if (claims.shell === 'browser' && measurement(claims, 'devtools')?.status === 'unknown')
    return RUNTIME_SIGNALS.filter((s) => s !== 'devtools');
  return RUNTIME_SIGNALS;
}

/** Debugger, inspector, devtools, NODE_OPTIONS, ELECTRON_RUN_AS_NODE, suspicious environment. */
export const runtimeVerifier: EvidenceVerifier = {
  name: 'runtime',
  category: 'runtime-opaque',
  verify(ctx) {
    return signalCheck(
      ctx.claims,
      runtimeSignalsFor(ctx.claims),
      'POS_ERR_ATTEST_RUNTIME_TAMPERED',
      AR4SI.CONTRAINDICATED,
      'runtime tampering signals',
    );
  },
};

/** Virtual machine, remote session, screen-capture protection. */
export const environmentVerifier: EvidenceVerifier = {
  name: 'environment',
  category: 'runtime-opaque',
  verify(ctx) {
    return signalCheck(
      ctx.claims,
      ENVIRONMENT_SIGNALS,
      'POS_ERR_ATTEST_ENVIRONMENT_RISK',
      AR4SI.WARNING,
      'risky environment',
    );
  },
};

/** Every verifier, in the order they run. */
export const DEFAULT_VERIFIERS: readonly EvidenceVerifier[] = [
  signatureVerifier,
  subjectVerifier,
  challengeVerifier,
  counterVerifier,
  clockVerifier,
  purposeVerifier,
  readerVerifier,
  releaseVerifier,
  shellVerifier,
  fusesVerifier,
  executableVerifier,
  runtimeVerifier,
  environmentVerifier,
];

export type { VerifierContext };
