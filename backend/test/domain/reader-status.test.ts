/**
 * The reader status verifier over @pos/shared's reader code, with a real reader identity: a
 * certificate from the simulator's development manufacturer CA and a status record encoded with
 * @pos/shared `encodeReaderStatus` and signed with the reader key, as the reader does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  cborEncode,
  encodeReaderStatus,
  p256Signer,
  toBase64url,
  verifyReaderStatus,
  type ReaderStatus,
} from '@pos/shared';
import { createIdentity, type ReaderIdentity } from '@pos/device-sim/state/identity';
import {
  appraiseEvidence,
  createReaderStatusVerifier,
  DEFAULT_POLICY,
  evaluatePolicy,
  type SignedReaderStatus,
} from '../../src/attestation/index';
import { challengeCtx, challengeValue, claims, deviceKey, input, sign, terminal } from './helpers';
import { realReaderStatus } from '../helpers';

let dir: string;
let identity: ReaderIdentity;
let otherCa: ReaderIdentity;
const verifier = createReaderStatusVerifier();
const now = Date.now();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pos-reader-status-'));
  const made = await createIdentity(join(dir, 'a'));
  const other = await createIdentity(join(dir, 'b'));
  if (!made.ok || !other.ok) throw new Error('identity');
  identity = made.identity;
  otherCa = other.identity;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function record(over: Partial<ReaderStatus> = {}): ReaderStatus {
  return realReaderStatus(identity, now, 3, over);
}

/** Encoded as the reader encodes (encodeReaderStatus); raw CBOR for records outside the schema. */
function signed(
  rec: object,
  key = identity.privateKey,
  chain = [identity.certificateDer],
): SignedReaderStatus {
  let status: Uint8Array;
  try {
    status = encodeReaderStatus(rec as ReaderStatus);
  } catch {
    status = cborEncode(rec);
  }
  return { status, signature: p256Signer(key).sign(status) as Uint8Array, chain };
}

describe('createReaderStatusVerifier', () => {
  it('verifies a status signed by a reader certified by the manufacturer CA', () => {
    const challenge = new Uint8Array(32).fill(3);
    const r = verifier.verify(signed(record({ challenge })), [identity.caCertificateDer], now);
    if (r instanceof Promise) throw new Error('sync');
    expect(r).toMatchObject({
      ok: true,
      report: {
        serial: identity.serial,
        tampered: false,
        ksnCounter: 7,
        firmwareHash: 'ab'.repeat(32),
        time: Math.floor(now / 1000) * 1000,
        challenge: toBase64url(challenge),
      },
    });
  });
  it('refuses a chain to another CA', () => {
    const r = verifier.verify(signed(record()), [otherCa.caCertificateDer], now);
    expect(r).toMatchObject({ ok: false });
  });
  it('refuses a status signed by another key', () => {
    const r = verifier.verify(signed(record(), otherCa.privateKey), [identity.caCertificateDer], now);
    expect(r).toMatchObject({ ok: false, code: 'POS_ERR_READER_STATUS_SIGNATURE' });
  });
  it('refuses an altered status', () => {
    const s = signed(record());
    const altered = encodeReaderStatus(record({ tamper: true }));
    expect(verifier.verify({ ...s, status: altered }, [identity.caCertificateDer], now)).toMatchObject({
      ok: false,
    });
  });
  it('refuses a record naming another serial than its certificate', () => {
    const r = verifier.verify(signed(record({ serial: 'PRS-0000000000' })), [identity.caCertificateDer], now);
    expect(r).toMatchObject({ ok: false, code: 'POS_ERR_READER_SERIAL_MISMATCH' });
  });
  it('refuses a malformed record', () => {
    const r = verifier.verify(signed({ v: 2 }), [identity.caCertificateDer], now);
    expect(r).toMatchObject({ ok: false, code: 'POS_ERR_READER_STATUS_INVALID' });
  });

  it('in an appraisal: passes for the paired reader, fails a tampered one', async () => {
    const key = deviceKey();
    const value = challengeValue();
    const asEvidence = (s: SignedReaderStatus) => ({
      status: toBase64url(s.status),
      signature: toBase64url(s.signature),
      chain: s.chain.map(toBase64url),
    });
    const base = {
      ...input(key),
      now,
      terminal: terminal(key, { readerSerial: identity.serial }),
      challenge: challengeCtx(value, { expiresAt: now + 30_000 }),
      readerCaRoots: [identity.caCertificateDer],
      options: { readerVerifier: verifier },
    };
    const evidence = (rec: object) =>
      sign(claims({ reader: asEvidence(signed(rec)), time: now, iat: Math.floor(now / 1000) }, value), key);
    const good = await appraiseEvidence({ ...base, evidenceJws: evidence(record()) });
    expect(good.outcomes.find((o) => o.verifier === 'reader')?.status).toBe('pass');
    expect(evaluatePolicy(DEFAULT_POLICY, good).tier).toBe('affirming');
    const tampered = await appraiseEvidence({ ...base, evidenceJws: evidence(record({ tamper: true })) });
    expect(tampered.outcomes.find((o) => o.verifier === 'reader')?.code).toBe(
      'POS_ERR_ATTEST_READER_TAMPERED',
    );
  });

  it('a cached chain is still refused with other roots, and when its leaf has expired', () => {
    const v = createReaderStatusVerifier();
    const s1 = signed(record());
    expect(v.verify(s1, [identity.caCertificateDer], now)).toMatchObject({ ok: true });
    expect(v.verify(s1, [otherCa.caCertificateDer], now)).toMatchObject({ ok: false });
    const farFuture = now + 50 * 365 * 24 * 3600 * 1000;
    expect(v.verify(s1, [identity.caCertificateDer], farFuture)).toMatchObject({
      ok: false,
      code: 'POS_ERR_READER_CERT_EXPIRED',
    });
  });

  it('agrees with @pos/shared verifyReaderStatus on altered reports and signatures (property)', () => {
    const v = createReaderStatusVerifier();
    const base = signed(record({ challenge: new Uint8Array(16).fill(5) }));
    const roots = [identity.caCertificateDer];
    fc.assert(
      fc.property(
        fc.constantFrom('status', 'signature', 'chain', 'none'),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (where, at, x) => {
          const s = {
            status: new Uint8Array(base.status),
            signature: new Uint8Array(base.signature),
            chain: [new Uint8Array(identity.certificateDer)],
          };
          const target =
            where === 'status'
              ? s.status
              : where === 'signature'
                ? s.signature
                : where === 'chain'
                  ? s.chain[0]
                  : undefined;
          if (target !== undefined) target[at % target.length] = (target[at % target.length] ?? 0) ^ x;
          const mine = v.verify(s, roots, now);
          const theirs = verifyReaderStatus({ report: s.status, sig: s.signature }, s.chain, roots, {
            now: Math.floor(now / 1000),
            maxAgeS: 3600,
          });
          if (mine instanceof Promise) throw new Error('sync');
          expect(mine.ok).toBe(theirs.ok);
          if (!mine.ok && !theirs.ok) expect(mine.code).toBe(theirs.code);
        },
      ),
      { numRuns: 60 },
    );
  });
});
