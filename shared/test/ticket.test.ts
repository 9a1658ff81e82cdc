/**
 * Tickets are signed here with jose (an independent JOSE library, as the back-end does) and verified
 * with the @noble/curves verifier the reader runs; and signed with noble and verified by jose.
 */
import { p256 } from '@noble/curves/nist.js';
import {
  SignJWT,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  calculateJwkThumbprint,
  type JWK,
} from 'jose';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  TICKET_AUDIENCE,
  TICKET_TYPE,
  jwkFromPublicKey,
  jwkThumbprint,
  publicKeyFromJwk,
  toBase64url,
  verifyTicket,
  type TicketClaims,
  type TicketExpectations,
  type TrustedTicketKey,
} from '../src/index';

const NOW = 1_800_000_000;
type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let signingKey: SigningKey;
let trusted: TrustedTicketKey[];
let deviceJkt: string;

const baseClaims = (over: Partial<TicketClaims> = {}): TicketClaims => ({
  iss: 'https://am.example',
  sub: 'term_1',
  aud: TICKET_AUDIENCE,
  iat: NOW - 10,
  exp: NOW + 50,
  jti: 'tkt_0123456789',
  cnf: { jkt: deviceJkt },
  rsn: 'SIM-0001',
  mid: 'm_1',
  use: 'pin-entry',
  tier: 'affirming',
  perm: ['transact', 'pin-entry'],
  nonce: 'bm9uY2Utbm9uY2Utbm9uY2U',
  ...over,
});

async function sign(
  claims: object,
  header: Record<string, unknown> = {},
  key: SigningKey = signingKey,
): Promise<string> {
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: TICKET_TYPE, ...header })
    .sign(key);
}

const expectPin = (over: Partial<TicketExpectations> = {}): TicketExpectations => ({
  now: NOW,
  use: 'pin-entry',
  issuer: 'https://am.example',
  readerSerial: 'SIM-0001',
  deviceKeyThumbprint: deviceJkt,
  nonce: 'bm9uY2Utbm9uY2Utbm9uY2U',
  permission: 'pin-entry',
  ...over,
});

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  signingKey = pair.privateKey;
  const jwk = await exportJWK(pair.publicKey);
  const pub = publicKeyFromJwk({ ...jwk, kid: 'k1' });
  if (!pub.ok) throw new Error(pub.code);
  trusted = [{ kid: 'k1', publicKey: pub.publicKey }];
  const device = p256.getPublicKey(p256.utils.randomSecretKey(), false);
  deviceJkt = jwkThumbprint(jwkFromPublicKey(device));
});

describe('JWK and thumbprints', () => {
  it('computes the RFC 7638 thumbprint as jose does', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), async (seed) => {
        fc.pre(seed.some((b) => b !== 0));
        let pub: Uint8Array;
        try {
          pub = p256.getPublicKey(seed, false);
        } catch {
          return; // not a valid scalar
        }
        const jwk = jwkFromPublicKey(pub);
        expect(jwkThumbprint(jwk)).toBe(await calculateJwkThumbprint(jwk as JWK, 'sha256'));
        const back = publicKeyFromJwk(jwk);
        expect(back.ok && toBase64url(back.publicKey)).toBe(toBase64url(pub));
      }),
      { numRuns: 30 },
    );
  });

  it('refuses keys that are not P-256 points', () => {
    const jwk = jwkFromPublicKey(p256.getPublicKey(p256.utils.randomSecretKey(), false));
    expect(publicKeyFromJwk({ ...jwk, crv: 'P-384' })).toMatchObject({
      ok: false,
      code: 'POS_ERR_JWK_INVALID',
    });
    expect(publicKeyFromJwk({ ...jwk, y: jwk.x })).toMatchObject({ ok: false, code: 'POS_ERR_JWK_INVALID' });
    expect(publicKeyFromJwk('nope')).toMatchObject({ ok: false, code: 'POS_ERR_JWK_INVALID' });
  });
});

describe('verifyTicket', () => {
  it('accepts a jose-signed PIN-entry ticket bound to this terminal, reader and nonce', async () => {
    const r = verifyTicket(await sign(baseClaims()), trusted, expectPin());
    expect(r).toMatchObject({ ok: true, kid: 'k1', claims: { sub: 'term_1', use: 'pin-entry' } });
  });

  it('produces tickets with noble that jose verifies', async () => {
    const secret = p256.utils.randomSecretKey();
    const jwk = { ...jwkFromPublicKey(p256.getPublicKey(secret, false)), kid: 'n1' };
    const enc = (o: object) => toBase64url(new Uint8Array(Buffer.from(JSON.stringify(o))));
    const input = `${enc({ alg: 'ES256', kid: 'n1', typ: TICKET_TYPE })}.${enc(baseClaims())}`;
    const sig = p256.sign(new Uint8Array(Buffer.from(input)), secret, { prehash: true });
    const jws = `${input}.${toBase64url(sig)}`;
    const { payload } = await jwtVerify(jws, await importJWK(jwk as JWK, 'ES256'), {
      audience: TICKET_AUDIENCE,
      currentDate: new Date(NOW * 1000),
    });
    expect(payload.sub).toBe('term_1');
    const pub = publicKeyFromJwk(jwk);
    expect(pub.ok && verifyTicket(jws, [{ kid: 'n1', publicKey: pub.publicKey }], expectPin()).ok).toBe(true);
  });

  it.each<[string, Partial<TicketClaims>, Partial<TicketExpectations>, string]>([
    ['expired', { iat: NOW - 120, exp: NOW - 60 }, {}, 'POS_ERR_TICKET_EXPIRED'],
    ['issued in the future', { iat: NOW + 60, exp: NOW + 90 }, {}, 'POS_ERR_TICKET_NOT_YET_VALID'],
    ['living too long', { iat: NOW, exp: NOW + 3600 }, {}, 'POS_ERR_TICKET_LIFETIME'],
    ['from another issuer', { iss: 'https://evil.example' }, {}, 'POS_ERR_TICKET_ISSUER'],
    ['a session ticket for PIN entry', { use: 'session' }, {}, 'POS_ERR_TICKET_USE'],
    ['without the pin-entry permission', { perm: ['transact'] }, {}, 'POS_ERR_TICKET_PERMISSION'],
    ['on a warning verdict', { tier: 'warning' }, {}, 'POS_ERR_TICKET_TIER'],
    ['for another reader', { rsn: 'SIM-0002' }, {}, 'POS_ERR_TICKET_READER_MISMATCH'],
    ['for another terminal key', {}, { deviceKeyThumbprint: 'A'.repeat(43) }, 'POS_ERR_TICKET_KEY_MISMATCH'],
    ['for another transaction', {}, { nonce: 'b3RoZXItdHJhbnNhY3Rpb24' }, 'POS_ERR_TICKET_NONCE_MISMATCH'],
    ['with no nonce', { nonce: undefined }, {}, 'POS_ERR_TICKET_NONCE_MISMATCH'],
  ])('refuses a ticket %s', async (_name, claims, expectation, code) => {
    const c = baseClaims(claims);
    if ('nonce' in claims && claims.nonce === undefined) delete c.nonce;
    expect(verifyTicket(await sign(c), trusted, expectPin(expectation))).toMatchObject({ ok: false, code });
  });

  it('refuses contraindicated session tickets', async () => {
    const jws = await sign(baseClaims({ use: 'session', tier: 'contraindicated', perm: ['transact'] }));
    expect(verifyTicket(jws, trusted, { now: NOW, use: 'session' })).toMatchObject({
      ok: false,
      code: 'POS_ERR_TICKET_TIER',
    });
  });

  it('refuses an unknown key id, another key, another algorithm and extra claims', async () => {
    expect(verifyTicket(await sign(baseClaims(), { kid: 'k9' }), trusted, expectPin())).toMatchObject({
      code: 'POS_ERR_TICKET_KEY_UNKNOWN',
    });
    const other = await generateKeyPair('ES256');
    expect(verifyTicket(await sign(baseClaims(), {}, other.privateKey), trusted, expectPin())).toMatchObject({
      code: 'POS_ERR_TICKET_SIGNATURE',
    });
    const hs = await new SignJWT({ ...baseClaims() })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1', typ: TICKET_TYPE })
      .sign(new Uint8Array(32));
    expect(verifyTicket(hs, trusted, expectPin())).toMatchObject({ code: 'POS_ERR_TICKET_ALGORITHM' });
    expect(verifyTicket(await sign({ ...baseClaims(), admin: true }), trusted, expectPin())).toMatchObject({
      code: 'POS_ERR_TICKET_MALFORMED',
    });
  });

  it('refuses any alteration of a valid ticket, and never throws on junk', async () => {
    const jws = await sign(baseClaims());
    fc.assert(
      fc.property(fc.nat({ max: jws.length - 1 }), fc.constantFrom(...'ABCabc012_-.'), (i, ch) => {
        fc.pre(jws[i] !== ch);
        const altered = jws.slice(0, i) + ch + jws.slice(i + 1);
        expect(verifyTicket(altered, trusted, expectPin()).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 600 }), (junk) => {
        expect(verifyTicket(junk, trusted, expectPin()).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});
