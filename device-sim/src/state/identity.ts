/**
 * The reader's identity: a P-256 key pair and an X.509 certificate issued by a development
 * manufacturer CA. The CA lives in `<state-dir>/manufacturer-ca/` (a real reader never holds its
 * manufacturer's key: the directory stands in for the factory). Both certificates are PEM files that
 * `openssl x509 -text -noout -in FILE` reads.
 */
import { webcrypto } from 'node:crypto';
import { join } from 'node:path';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { err, ok, parseBase64url, randomBytes, toHex, type Result } from '@pos/shared';
import { z } from 'zod';
import type { SimCode } from '../result';
import { ensureDir, readJson, readText, writeFileAtomic, writeJsonAtomic } from './files';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto);

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

const b64 = z.string().regex(/^[A-Za-z0-9_-]{43}$/);
export const PrivateJwkSchema = z.object({
  kty: z.literal('EC'),
  crv: z.literal('P-256'),
  x: b64,
  y: b64,
  d: b64,
});
export type PrivateJwk = z.infer<typeof PrivateJwkSchema>;

export const IdentityFileSchema = z.strictObject({
  version: z.literal(1),
  serial: z.string().regex(/^[A-Z0-9-]{4,32}$/),
  privateKeyJwk: PrivateJwkSchema,
});
const CaFileSchema = z.strictObject({
  version: z.literal(1),
  privateKeyJwk: PrivateJwkSchema,
});

export const IDENTITY_FILE = 'identity.json';
export const READER_CERT_FILE = 'reader.pem';
export const CA_DIR = 'manufacturer-ca';
export const CA_CERT_FILE = 'ca.pem';
const CA_KEY_FILE = 'ca-key.json';

export const MANUFACTURER_CA_NAME =
  'CN=POS Reader Development Manufacturer CA, O=pos-attested (development only)';

export interface ReaderIdentity {
  readonly serial: string;
  /**
   * The 32-byte private scalar (for @noble/curves). Secret. The only copy the reader keeps in memory,
   * as bytes so tamper can wipe it (never a JWK string, which no code can erase).
   */
  readonly privateKey: Uint8Array;
  /** The uncompressed SEC1 public key (65 bytes). */
  readonly publicKey: Uint8Array;
  /** DER of the reader certificate and of the manufacturer CA certificate. */
  readonly certificateDer: Uint8Array;
  readonly caCertificateDer: Uint8Array;
  readonly certificatePem: string;
  readonly caCertificatePem: string;
}

/** A fresh reader serial: `PRS-` and 10 upper-case hex digits. */
export function newReaderSerial(): string {
  return `PRS-${toHex(randomBytes(5))}`;
}

async function generateKeyPair(): Promise<CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
}

async function exportPrivate(key: CryptoKey): Promise<PrivateJwk> {
  return PrivateJwkSchema.parse(await webcrypto.subtle.exportKey('jwk', key));
}

async function importPair(jwk: PrivateJwk): Promise<CryptoKeyPair> {
  const privateKey = await webcrypto.subtle.importKey('jwk', jwk, EC, true, ['sign']);
  const { d: _d, ...pub } = jwk;
  const publicKey = await webcrypto.subtle.importKey('jwk', pub, EC, true, ['verify']);
  return { privateKey, publicKey };
}

function rawPublic(jwk: PrivateJwk): Uint8Array {
  const x = parseBase64url(jwk.x);
  const y = parseBase64url(jwk.y);
  const out = new Uint8Array(65);
  out[0] = 4;
  if (x.ok) out.set(x.bytes, 1);
  if (y.ok) out.set(y.bytes, 33);
  return out;
}

function rawPrivate(jwk: PrivateJwk): Uint8Array {
  const d = parseBase64url(jwk.d);
  return d.ok ? d.bytes : new Uint8Array(32);
}

function years(n: number, from = new Date()): Date {
  const d = new Date(from);
  d.setUTCFullYear(d.getUTCFullYear() + n);
  return d;
}

/** Loads the development manufacturer CA from `dir`, creating it on first use. */
async function loadOrCreateCa(
  stateDir: string,
): Promise<Result<{ keys: CryptoKeyPair; cert: x509.X509Certificate }, SimCode>> {
  const dir = join(stateDir, CA_DIR);
  const made = ensureDir(dir);
  if (!made.ok) return made;
  const keyFile = readJson(dir, CA_KEY_FILE, CaFileSchema);
  if (!keyFile.ok) return keyFile;
  const certText = readText(dir, CA_CERT_FILE);
  if (!certText.ok) return certText;
  if (keyFile.value !== undefined && certText.text !== undefined) {
    try {
      const keys = await importPair(keyFile.value.privateKeyJwk);
      const cert = new x509.X509Certificate(certText.text);
      return ok({ keys, cert });
    } catch {
      return err('POS_ERR_SIM_STATE_CORRUPT', `${CA_DIR}/${CA_CERT_FILE} or its key cannot be read`);
    }
  }
  if (keyFile.value !== undefined || certText.text !== undefined) {
    return err('POS_ERR_SIM_STATE_CORRUPT', `${CA_DIR} has a key without a certificate or the reverse`);
  }
  try {
    const keys = await generateKeyPair();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: `01${toHex(randomBytes(15))}`,
      name: MANUFACTURER_CA_NAME,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: years(20),
      keys,
      signingAlgorithm: SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const jwk = await exportPrivate(keys.privateKey);
    const w1 = writeJsonAtomic(dir, CA_KEY_FILE, { version: 1, privateKeyJwk: jwk });
    if (!w1.ok) return w1;
    const w2 = writeFileAtomic(dir, CA_CERT_FILE, cert.toString('pem'));
    if (!w2.ok) return w2;
    return ok({ keys, cert });
  } catch {
    return err('POS_ERR_SIM_CERT', 'the development manufacturer CA cannot be made');
  }
}

/** Issues a reader certificate: subject `CN=<serial>, serialNumber=<serial>`, digitalSignature only. */
async function issueReaderCert(
  ca: { keys: CryptoKeyPair; cert: x509.X509Certificate },
  readerPublic: CryptoKey,
  serial: string,
): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: `01${toHex(randomBytes(15))}`,
    // 2.5.4.5 is serialNumber (X.520); @peculiar/x509 knows it only by its OID.
    subject: `CN=${serial}, 2.5.4.5=${serial}, O=pos-attested reader simulator`,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: years(10),
    publicKey: readerPublic,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(readerPublic),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
    ],
  });
}

function toIdentity(
  serial: string,
  jwk: PrivateJwk,
  cert: x509.X509Certificate,
  ca: x509.X509Certificate,
): ReaderIdentity {
  return {
    serial,
    privateKey: rawPrivate(jwk),
    publicKey: rawPublic(jwk),
    certificateDer: new Uint8Array(cert.rawData),
    caCertificateDer: new Uint8Array(ca.rawData),
    certificatePem: cert.toString('pem'),
    caCertificatePem: ca.toString('pem'),
  };
}

/** Loads the reader identity; `identity: undefined` when the directory has none yet. */
export async function loadIdentity(
  stateDir: string,
): Promise<Result<{ identity: ReaderIdentity | undefined }, SimCode>> {
  const file = readJson(stateDir, IDENTITY_FILE, IdentityFileSchema);
  if (!file.ok) return file;
  if (file.value === undefined) return ok({ identity: undefined });
  const certText = readText(stateDir, READER_CERT_FILE);
  if (!certText.ok) return certText;
  const caText = readText(join(stateDir, CA_DIR), CA_CERT_FILE);
  if (!caText.ok) return caText;
  if (certText.text === undefined || caText.text === undefined) {
    return err('POS_ERR_SIM_STATE_CORRUPT', `${READER_CERT_FILE} or the CA certificate is missing`);
  }
  try {
    const cert = new x509.X509Certificate(certText.text);
    const ca = new x509.X509Certificate(caText.text);
    const { d: _d, ...pubJwk } = file.value.privateKeyJwk;
    const pubKey = await webcrypto.subtle.importKey('jwk', pubJwk, EC, true, ['verify']);
    const pub = new Uint8Array(await webcrypto.subtle.exportKey('spki', pubKey));
    const certPub = new Uint8Array(cert.publicKey.rawData);
    if (certPub.length !== pub.length || certPub.some((b, i) => b !== pub[i])) {
      return err('POS_ERR_SIM_STATE_CORRUPT', `${READER_CERT_FILE} does not certify the identity key`);
    }
    return ok({ identity: toIdentity(file.value.serial, file.value.privateKeyJwk, cert, ca) });
  } catch {
    return err('POS_ERR_SIM_STATE_CORRUPT', `${READER_CERT_FILE} is not a readable certificate`);
  }
}

/** Creates a new identity (key, serial, certificate from the development CA) and persists it. */
export async function createIdentity(
  stateDir: string,
  serial = newReaderSerial(),
): Promise<Result<{ identity: ReaderIdentity }, SimCode>> {
  const ca = await loadOrCreateCa(stateDir);
  if (!ca.ok) return ca;
  try {
    const keys = await generateKeyPair();
    const cert = await issueReaderCert(ca, keys.publicKey, serial);
    const jwk = await exportPrivate(keys.privateKey);
    const w1 = writeFileAtomic(stateDir, READER_CERT_FILE, cert.toString('pem'));
    if (!w1.ok) return w1;
    const w2 = writeJsonAtomic(stateDir, IDENTITY_FILE, { version: 1, serial, privateKeyJwk: jwk });
    if (!w2.ok) return w2;
    return ok({ identity: toIdentity(serial, jwk, cert, ca.cert) });
  } catch {
    return err('POS_ERR_SIM_CERT', 'the reader certificate cannot be made');
  }
}

/** Checks that a certificate chains to the CA (signature and validity at `now`). For tests and tools. */
export async function certificateChainsTo(
  certDer: Uint8Array,
  caDer: Uint8Array,
  now = new Date(),
): Promise<boolean> {
  try {
    const cert = new x509.X509Certificate(certDer);
    const ca = new x509.X509Certificate(caDer);
    return await cert.verify({ publicKey: ca, date: now });
  } catch {
    return false;
  }
}
