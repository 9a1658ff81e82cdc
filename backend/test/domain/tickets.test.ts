/** Tickets: claims only on an allowing verdict, signed ES256, verified by jose and by @pos/shared verifyTicket. */
import { generateKeyPairSync } from 'node:crypto';
import { importJWK, jwtVerify, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  TICKET_AUDIENCE,
  TICKET_TYPE,
  parseBase64url,
  toBase64url,
  verifyTicket,
  type TrustedTicketKey,
} from '@pos/shared';
import type { Verdict } from '../../src/attestation/index';
import {
  nodeTicketSigner,
  signTicket,
  ticketClaims,
  type TicketClaimsOptions,
} from '../../src/tickets/index';
import { NOW, deviceKey } from './helpers';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pubJwk = publicKey.export({ format: 'jwk' }) as { kty: 'EC'; crv: 'P-256'; x: string; y: string };
const signer = nodeTicketSigner('k1', privateKey);
const rawPublic = (): Uint8Array => {
  const x = parseBase64url(pubJwk.x);
  const y = parseBase64url(pubJwk.y);
  if (!x.ok || !y.ok) throw new Error('jwk');
  return new Uint8Array([4, ...x.bytes, ...y.bytes]);
};
const trusted: TrustedTicketKey[] = [{ kid: 'k1', publicKey: rawPublic() }];
const dev = deviceKey();
const NONCE = toBase64url(new Uint8Array(16).fill(9));

const verdict = (over: Partial<Verdict> = {}): Verdict => ({
  tier: 'affirming',
  trustVector: {
    'instance-identity': 2,
    configuration: 2,
    executables: 2,
    'file-system': 0,
    hardware: 2,
    'runtime-opaque': 2,
    'storage-opaque': 0,
    'sourced-data': 0,
  },
  reasons: [],
  policyVersion: 'dev-2',
  halt: false,
  shadow: [],
  appraisedAt: NOW,
  purpose: 'pre-pin',
  ...over,
});

const opts = (over: Partial<TicketClaimsOptions> = {}): TicketClaimsOptions => ({
  issuer: 'https://am.example',
  terminalId: 'term_A',
  merchantId: 'm_1',
  deviceJkt: dev.jkt,
  readerSerial: 'SIM-0001',
  verdict: verdict(),
  use: 'pin-entry',
  nonce: NONCE,
  now: NOW + 1000,
  jti: 'tkt_0123456789',
  ...over,
});

function sessionOpts(over: Partial<TicketClaimsOptions> = {}): TicketClaimsOptions {
  const o = opts({ use: 'session', verdict: verdict({ purpose: 'periodic' }), ...over });
  delete o.nonce;
  return o;
}

function claimsOrThrow(o: TicketClaimsOptions) {
  const r = ticketClaims(o);
  if (!r.ok) throw new Error(r.code);
  return r.claims;
}

describe('ticketClaims', () => {
  it('a PIN-entry ticket on a fresh affirming pre-pin verdict', () => {
    const c = claimsOrThrow(opts());
    expect(c).toEqual({
      iss: 'https://am.example',
      sub: 'term_A',
      aud: TICKET_AUDIENCE,
      iat: Math.floor((NOW + 1000) / 1000),
      exp: Math.floor((NOW + 1000) / 1000) + 60,
      jti: 'tkt_0123456789',
      cnf: { jkt: dev.jkt },
      rsn: 'SIM-0001',
      mid: 'm_1',
      use: 'pin-entry',
      tier: 'affirming',
      perm: ['pin-entry'],
      nonce: NONCE,
    });
  });
  it('a session ticket on a warning verdict, lifetime configurable', () => {
    const c = claimsOrThrow(
      sessionOpts({ verdict: verdict({ tier: 'warning', purpose: 'periodic' }), lifetimeS: 120 }),
    );
    expect(c.perm).toEqual(['transact']);
    expect(c.exp - c.iat).toBe(120);
    expect(c.nonce).toBeUndefined();
  });
  it.each([
    ['contraindicated', { verdict: verdict({ tier: 'contraindicated', halt: true }) }],
    ['none', { verdict: verdict({ tier: 'none' }) }],
    ['a halt on an affirming verdict', { verdict: verdict({ halt: true }) }],
    ['warning for PIN entry', { verdict: verdict({ tier: 'warning' }) }],
    ['a stale verdict for PIN entry', { now: NOW + 31_000 }],
    ['a verdict from the future', { now: NOW - 60_000 }],
    ['a periodic verdict for PIN entry', { verdict: verdict({ purpose: 'periodic' }) }],
  ])('refuses %s', (_n, over) => {
    const r = ticketClaims(opts(over));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.code).toBe('POS_ERR_TICKET_REFUSED');
  });
  it('a handshake-only session ticket grants nothing (perm []); a PIN-entry ticket cannot be one', () => {
    const r = ticketClaims(sessionOpts({ handshakeOnly: true, verdict: verdict({ tier: 'warning' }) }));
    if (!r.ok) throw new Error(r.code);
    expect(r.claims).toMatchObject({ use: 'session', perm: [] });
    expect(ticketClaims(opts({ handshakeOnly: true }))).toMatchObject({
      ok: false,
      code: 'POS_ERR_TICKET_CLAIMS_INVALID',
    });
    // Still no ticket at all on a contraindicated verdict.
    expect(
      ticketClaims(sessionOpts({ handshakeOnly: true, verdict: verdict({ tier: 'contraindicated' }) })),
    ).toMatchObject({ ok: false, code: 'POS_ERR_TICKET_REFUSED' });
  });

  it('refuses a nonce on a session ticket', () => {
    expect(ticketClaims(opts({ use: 'session' }))).toMatchObject({
      ok: false,
      code: 'POS_ERR_TICKET_CLAIMS_INVALID',
    });
  });
  it('refuses a session ticket on contraindicated or none', () => {
    for (const tier of ['contraindicated', 'none'] as const) {
      const r = ticketClaims(sessionOpts({ verdict: verdict({ tier }) }));
      expect(r.ok).toBe(false);
    }
  });
  it('refuses a PIN-entry ticket without a nonce', () => {
    const o = opts();
    delete o.nonce;
    expect(ticketClaims(o)).toMatchObject({ ok: false, code: 'POS_ERR_TICKET_REFUSED' });
  });
  it.each([
    ['lifetime 0', { lifetimeS: 0 }],
    ['lifetime too long', { lifetimeS: 301 }],
    ['a bad thumbprint', { deviceJkt: 'short' }],
    ['a short jti', { jti: 'x' }],
  ])('refuses %s as invalid claims', (_n, over) => {
    expect(ticketClaims(opts(over))).toMatchObject({ ok: false, code: 'POS_ERR_TICKET_CLAIMS_INVALID' });
  });
});

describe('signTicket', () => {
  it('is verified by jose (an independent JOSE library)', async () => {
    const claims = claimsOrThrow(opts());
    const jws = await signTicket(claims, signer);
    expect(decodeProtectedHeader(jws)).toEqual({ alg: 'ES256', kid: 'k1', typ: TICKET_TYPE });
    const key = await importJWK({ ...pubJwk, alg: 'ES256' }, 'ES256');
    const { payload } = await jwtVerify(jws, key, {
      audience: TICKET_AUDIENCE,
      issuer: 'https://am.example',
      typ: TICKET_TYPE,
      currentDate: new Date(NOW + 2000),
    });
    expect(payload).toMatchObject({ sub: 'term_A', cnf: { jkt: dev.jkt }, nonce: NONCE });
  });

  it('is verified by @pos/shared verifyTicket with every binding', async () => {
    const jws = await signTicket(claimsOrThrow(opts()), signer);
    const r = verifyTicket(jws, trusted, {
      now: Math.floor(NOW / 1000) + 2,
      use: 'pin-entry',
      issuer: 'https://am.example',
      readerSerial: 'SIM-0001',
      deviceKeyThumbprint: dev.jkt,
      nonce: NONCE,
      permission: 'pin-entry',
    });
    expect(r.ok).toBe(true);
  });

  it('is refused when expired, for another audience, or bound elsewhere', async () => {
    const jws = await signTicket(claimsOrThrow(opts()), signer);
    const base = { use: 'pin-entry' as const, nonce: NONCE };
    expect(verifyTicket(jws, trusted, { ...base, now: Math.floor(NOW / 1000) + 120 })).toMatchObject({
      code: 'POS_ERR_TICKET_EXPIRED',
    });
    expect(
      verifyTicket(jws, trusted, { ...base, now: Math.floor(NOW / 1000), readerSerial: 'SIM-2' }),
    ).toMatchObject({
      code: 'POS_ERR_TICKET_READER_MISMATCH',
    });
    const key = await importJWK({ ...pubJwk, alg: 'ES256' }, 'ES256');
    await expect(
      jwtVerify(jws, key, { audience: 'urn:other', currentDate: new Date(NOW + 2000) }),
    ).rejects.toThrow();
    await expect(jwtVerify(jws, key, { currentDate: new Date(NOW + 120_000) })).rejects.toThrow();
  });

  it('a session ticket verifies as a session ticket with the transact permission', async () => {
    const jws = await signTicket(claimsOrThrow(sessionOpts()), signer);
    expect(
      verifyTicket(jws, trusted, { now: Math.floor(NOW / 1000) + 1, use: 'session', permission: 'transact' })
        .ok,
    ).toBe(true);
  });

  it('throws a PosError for claims that do not match the schema (a programming error)', async () => {
    const bad = { ...claimsOrThrow(opts()), aud: 'urn:other' } as never;
    await expect(signTicket(bad, signer)).rejects.toMatchObject({ code: 'POS_ERR_TICKET_CLAIMS_INVALID' });
  });

  it('throws when the signer returns something other than 64 bytes', async () => {
    await expect(
      signTicket(claimsOrThrow(opts()), { kid: 'k1', sign: () => new Uint8Array(10) }),
    ).rejects.toMatchObject({ code: 'POS_ERR_TICKET_SIGNER' });
  });

  it('accepts an async signer', async () => {
    const asyncSigner = { kid: 'k1', sign: (input: Uint8Array) => Promise.resolve(signer.sign(input)) };
    const jws = await signTicket(claimsOrThrow(opts()), asyncSigner);
    expect(
      verifyTicket(jws, trusted, { now: Math.floor(NOW / 1000), use: 'pin-entry', nonce: NONCE }).ok,
    ).toBe(true);
  });
});

describe('ticketClaims never throws', () => {
  it('refuses a broken verdict object', () => {
    expect(ticketClaims({ ...opts(), verdict: undefined as unknown as Verdict })).toMatchObject({
      ok: false,
      code: 'POS_ERR_TICKET_REFUSED',
    });
  });
});
