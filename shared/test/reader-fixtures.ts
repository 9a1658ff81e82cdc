/**
 * Test PKI and tickets for the reader-* tests. Certificates are made with @peculiar/x509 (as the
 * simulator makes them) so the strict verifier in shared/ is checked against an independent encoder;
 * tickets are signed with noble (as in ticket.test.ts, jose checks the format there).
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import * as x509 from '@peculiar/x509';
import {
  TICKET_AUDIENCE,
  TICKET_TYPE,
  jwkFromPublicKey,
  jwkThumbprint,
  toBase64url,
  type TicketClaims,
  type TrustedTicketKey,
} from '../src/index';

x509.cryptoProvider.set(webcrypto);

export const NOW = 1_800_000_000; // 2027-01-15
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** A P-256 key from a fixed secret, as raw keys and as WebCrypto keys. */
export async function fixedKey(secret: Uint8Array) {
  const pub = p256.getPublicKey(secret, false);
  const jwk = {
    kty: 'EC',
    crv: 'P-256',
    x: toBase64url(pub.subarray(1, 33)),
    y: toBase64url(pub.subarray(33)),
    d: toBase64url(secret),
    ext: true,
  };
  const privateKey = await webcrypto.subtle.importKey('jwk', jwk, EC, true, ['sign']);
  const { d: _d, ...pubJwk } = jwk;
  const publicKey = await webcrypto.subtle.importKey('jwk', pubJwk, EC, true, ['verify']);
  return { secret, publicKey: pub, keys: { privateKey, publicKey } };
}

export const secretOf = (n: number): Uint8Array => {
  const s = new Uint8Array(32);
  s[31] = n;
  s[0] = 0x11;
  return s;
};

const date = (s: number) => new Date(s * 1000);

export interface CertOptions {
  readonly serial?: string;
  readonly notBefore?: number;
  readonly notAfter?: number;
  readonly ca?: boolean;
  readonly pathLength?: number;
  readonly subject?: string;
}

/** Makes a CA (self-signed) or a certificate issued by `issuer`. */
export async function makeCert(
  key: Awaited<ReturnType<typeof fixedKey>>,
  issuer: { key: Awaited<ReturnType<typeof fixedKey>>; cert: x509.X509Certificate } | undefined,
  o: CertOptions = {},
): Promise<x509.X509Certificate> {
  const notBefore = date(o.notBefore ?? NOW - 86_400);
  const notAfter = date(o.notAfter ?? NOW + 10 * 365 * 86_400);
  if (o.ca === true) {
    const exts = [
      new x509.BasicConstraintsExtension(true, o.pathLength, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(key.keys.publicKey),
    ];
    const name = o.subject ?? 'CN=Test Manufacturer CA, O=pos-attested';
    if (issuer === undefined)
      return x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: '01',
        name,
        notBefore,
        notAfter,
        keys: key.keys,
        signingAlgorithm: SIGN,
        extensions: exts,
      });
    return x509.X509CertificateGenerator.create({
      serialNumber: '02',
      subject: name,
      issuer: issuer.cert.subject,
      notBefore,
      notAfter,
      publicKey: key.keys.publicKey,
      signingKey: issuer.key.keys.privateKey,
      signingAlgorithm: SIGN,
      extensions: exts,
    });
  }
  if (issuer === undefined) throw new Error('a leaf needs an issuer');
  const serial = o.serial ?? 'SIM-0001';
  return x509.X509CertificateGenerator.create({
    serialNumber: '0A1B2C',
    subject: o.subject ?? `CN=${serial}, 2.5.4.5=${serial}, O=pos-attested reader`,
    issuer: issuer.cert.subject,
    notBefore,
    notAfter,
    publicKey: key.keys.publicKey,
    signingKey: issuer.key.keys.privateKey,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(key.keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.key.keys.publicKey),
    ],
  });
}

export const der = (c: x509.X509Certificate): Uint8Array => new Uint8Array(c.rawData);

/** The standard test world: one manufacturer CA, one reader (SIM-0001), one A&M ticket key. */
export async function makeWorld() {
  const caKey = await fixedKey(secretOf(1));
  const ca = await makeCert(caKey, undefined, { ca: true, pathLength: 0 });
  const readerKey = await fixedKey(secretOf(2));
  const readerCert = await makeCert(readerKey, { key: caKey, cert: ca }, { serial: 'SIM-0001' });
  const ticketSecret = secretOf(3);
  const ticketKey: TrustedTicketKey = { kid: 'am-1', publicKey: p256.getPublicKey(ticketSecret, false) };
  const deviceSecret = secretOf(4);
  const devicePublic = p256.getPublicKey(deviceSecret, false);
  return {
    caKey,
    ca,
    caDer: der(ca),
    readerKey,
    readerCert,
    readerDer: der(readerCert),
    ticketSecret,
    ticketKey,
    deviceSecret,
    devicePublic,
    deviceJkt: jwkThumbprint(jwkFromPublicKey(devicePublic)),
  };
}

/** Signs a ticket (compact JWS, ES256) with noble. */
export function signTicket(secret: Uint8Array, claims: object, kid = 'am-1'): string {
  const enc = (o: object) => toBase64url(new TextEncoder().encode(JSON.stringify(o)));
  const input = `${enc({ alg: 'ES256', kid, typ: TICKET_TYPE })}.${enc(claims)}`;
  const sig = p256.sign(new TextEncoder().encode(input), secret, { prehash: true });
  return `${input}.${toBase64url(sig)}`;
}

export function sessionClaims(jkt: string, over: Partial<TicketClaims> = {}): TicketClaims {
  return {
    iss: 'https://am.example',
    sub: 'term_1',
    aud: TICKET_AUDIENCE,
    iat: NOW - 10,
    exp: NOW + 50,
    jti: 'tkt_session_0001',
    cnf: { jkt },
    rsn: 'SIM-0001',
    mid: 'm_1',
    use: 'session',
    tier: 'affirming',
    perm: ['transact'],
    ...over,
  };
}

/** Deterministic "random" bytes for vectors: a counter stream. */
export function fixedRandom(seed: number): (n: number) => Uint8Array {
  let c = seed;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = (c++ * 37 + 11) & 0xff;
    return out;
  };
}
