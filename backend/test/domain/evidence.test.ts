/**
 * The evidence format (shared/src/evidence.ts): parseEvidence never throws on untrusted input, and any
 * alteration of signed evidence fails appraisal. Evidence signed with signEvidence (noble) verifies
 * with jose, an independent JOSE library.
 */
import fc from 'fast-check';
import { compactVerify, importJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { EVIDENCE_TYPE, EvidenceClaimsSchema, parseEvidence, signEvidence, toBase64url } from '@pos/shared';
import { appraiseEvidence, DEFAULT_POLICY, evaluatePolicy } from '../../src/attestation/index';
import { claims, deviceKey, input } from './helpers';

const key = deviceKey();
const enc = new TextEncoder();
const part = (v: unknown): string => toBase64url(enc.encode(JSON.stringify(v)));

describe('parseEvidence', () => {
  it('parses what signEvidence makes', () => {
    const c = claims();
    const r = signEvidence(c, key.secret, { includeJwk: true });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const p = parseEvidence(r.jws);
    expect(p.ok).toBe(true);
    if (p.ok) {
      expect(p.claims).toEqual(c);
      expect(p.header).toEqual({ alg: 'ES256', typ: EVIDENCE_TYPE, jwk: key.jwk });
      expect(p.signature).toHaveLength(64);
    }
  });

  it('evidence from signEvidence verifies with jose', async () => {
    const r = signEvidence(claims(), key.secret);
    if (!r.ok) throw new Error(r.code);
    const pub = await importJWK(
      { kty: 'EC', crv: 'P-256', x: key.jwk.x, y: key.jwk.y, alg: 'ES256' },
      'ES256',
    );
    const { protectedHeader } = await compactVerify(r.jws, pub);
    expect(protectedHeader).toEqual({ alg: 'ES256', typ: EVIDENCE_TYPE });
  });

  it('signEvidence refuses claims of the wrong shape and a bad key', () => {
    expect(signEvidence({ ...claims(), counter: -1 }, key.secret)).toMatchObject({
      ok: false,
      code: 'POS_ERR_EVIDENCE_CLAIMS',
    });
    expect(signEvidence(claims(), new Uint8Array(3))).toMatchObject({
      ok: false,
      code: 'POS_ERR_KEY_LENGTH',
    });
  });

  it.each([
    [
      'a private key in the header',
      { alg: 'ES256', typ: EVIDENCE_TYPE, jwk: { ...key.jwk, d: 'AAAA' } },
      'POS_ERR_EVIDENCE_MALFORMED',
    ],
    ['another type', { alg: 'ES256', typ: 'JWT' }, 'POS_ERR_EVIDENCE_MALFORMED'],
    ['alg none', { alg: 'none', typ: EVIDENCE_TYPE }, 'POS_ERR_EVIDENCE_ALGORITHM'],
    ['an extra header member', { alg: 'ES256', typ: EVIDENCE_TYPE, kid: 'x' }, 'POS_ERR_EVIDENCE_MALFORMED'],
  ])('refuses %s', (_n, header, code) => {
    const jws = `${part(header)}.${part(claims())}.${toBase64url(new Uint8Array(64))}`;
    expect(parseEvidence(jws)).toMatchObject({ ok: false, code });
  });

  it.each([
    [
      'duplicate measurement names',
      {
        measurements: [
          { name: 'debugger', status: 'ok', method: 'x' },
          { name: 'debugger', status: 'fail', method: 'x' },
        ],
      },
    ],
    ['a negative counter', { counter: -1 }],
    ['a short challenge', { challenge: 'abc' }],
    ['an unknown purpose', { purpose: 'whenever' }],
    ['an unknown shell', { shell: 'vscode' }],
    ['a bad code hash', { app: { version: '1', build: 'release', codeHash: 'xyz' } }],
    ['a bad measurement status', { measurements: [{ name: 'debugger', status: 'maybe', method: 'x' }] }],
    [
      'too many measurements',
      { measurements: Array.from({ length: 65 }, (_, i) => ({ name: `m${i}`, status: 'ok', method: 'x' })) },
    ],
  ])('refuses claims with %s', (_n, over) => {
    const jws = `${part({ alg: 'ES256', typ: EVIDENCE_TYPE })}.${part({ ...claims(), ...over })}.${toBase64url(new Uint8Array(64))}`;
    expect(parseEvidence(jws)).toMatchObject({ ok: false, code: 'POS_ERR_EVIDENCE_CLAIMS' });
  });

  it('refuses a signature of the wrong length and non-strings', () => {
    const jws = `${part({ alg: 'ES256', typ: EVIDENCE_TYPE })}.${part(claims())}.${toBase64url(new Uint8Array(63))}`;
    expect(parseEvidence(jws)).toMatchObject({ ok: false, code: 'POS_ERR_EVIDENCE_MALFORMED' });
    for (const v of [undefined, null, 42, {}, ['a.b.c']]) {
      expect(parseEvidence(v)).toMatchObject({ ok: false, code: 'POS_ERR_EVIDENCE_MALFORMED' });
    }
  });

  it('never throws on arbitrary strings (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => {
        const r = parseEvidence(s);
        expect(r.ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on three-part strings of arbitrary JSON (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), fc.uint8Array({ maxLength: 80 }), (h, p, s) => {
        const r = parseEvidence(`${part(h)}.${part(p)}.${toBase64url(s)}`);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on near-valid claims (property)', () => {
    const base = claims();
    fc.assert(
      fc.property(
        fc.constantFrom(...(Object.keys(base) as (keyof typeof base)[])),
        fc.jsonValue(),
        (field, value) => {
          const jws = `${part({ alg: 'ES256', typ: EVIDENCE_TYPE })}.${part({ ...base, [field]: value })}.${toBase64url(new Uint8Array(64))}`;
          const r = parseEvidence(jws);
          if (r.ok) expect(EvidenceClaimsSchema.safeParse(r.claims).success).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('any alteration of signed evidence fails appraisal (property)', () => {
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
  it('a changed character is refused: never affirming, and the signature never verifies', async () => {
    const i = input(key);
    expect(evaluatePolicy(DEFAULT_POLICY, await appraiseEvidence(i)).tier).toBe('affirming');
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: i.evidenceJws.length - 1 }),
        fc.integer({ min: 0, max: ALPHABET.length - 1 }),
        async (pos, ch) => {
          const replacement = ALPHABET[ch] ?? 'A';
          fc.pre(i.evidenceJws[pos] !== replacement);
          const altered = i.evidenceJws.slice(0, pos) + replacement + i.evidenceJws.slice(pos + 1);
          const a = await appraiseEvidence({ ...i, evidenceJws: altered });
          expect(a.signatureValid).toBe(false);
          expect(evaluatePolicy(DEFAULT_POLICY, a).tier).not.toBe('affirming');
        },
      ),
      { numRuns: 300 },
    );
  });
  it('truncation and extension are refused', async () => {
    const i = input(key);
    for (const altered of [
      i.evidenceJws.slice(0, -1),
      `${i.evidenceJws}A`,
      `${i.evidenceJws}.x`,
      i.evidenceJws.slice(1),
    ]) {
      const a = await appraiseEvidence({ ...i, evidenceJws: altered });
      expect(a.signatureValid).toBe(false);
    }
  });
});
