/**
 * A strict reader for exactly the X.509 profile of reader certificates (docs/reader-protocol.md,
 * "Certificate profile"), verified with @noble/curves: v3, ECDSA P-256 keys, ecdsa-with-SHA256
 * signatures, UTCTime/GeneralizedTime validity, basicConstraints and keyUsage. Anything outside the
 * profile is refused, not guessed at.
 *
 * Why not @peculiar/x509 here: it needs WebCrypto (async) and a large ASN.1 stack with decorators,
 * where the handshake and the status check want a small synchronous verifier that a reader's
 * firmware or the browser could run; and a parser that accepts only our profile has far less to go
 * wrong than a general one. The certificates stay ordinary X.509 DER: openssl and @peculiar/x509 read
 * and make them (the tests check both directions).
 */
import { p256 } from '@noble/curves/nist.js';
import { constantTimeEqual } from '../bytes';
import { err, ok, type Result } from '../result';

/** One DER element: tag, where its content is, and the whole element. */
interface Der {
  readonly tag: number;
  readonly content: Uint8Array;
  readonly raw: Uint8Array;
}

/** Reads one DER element at `pos`. Single-byte tags, minimal definite lengths up to 65535. */
function readDer(buf: Uint8Array, pos: number): Der | undefined {
  const tag = buf[pos];
  const l0 = buf[pos + 1];
  if (tag === undefined || l0 === undefined || (tag & 0x1f) === 0x1f) return undefined;
  let len: number;
  let hdr: number;
  if (l0 < 0x80) {
    len = l0;
    hdr = 2;
  } else if (l0 === 0x81) {
    const a = buf[pos + 2];
    if (a === undefined || a < 0x80) return undefined;
    len = a;
    hdr = 3;
  } else if (l0 === 0x82) {
    const a = buf[pos + 2];
    const b = buf[pos + 3];
    if (a === undefined || b === undefined || a === 0) return undefined;
    len = (a << 8) | b;
    hdr = 4;
  } else return undefined;
  const end = pos + hdr + len;
  if (end > buf.length) return undefined;
  return { tag, content: buf.subarray(pos + hdr, end), raw: buf.subarray(pos, end) };
}

/** The children of a constructed element; undefined if they do not exactly fill it. */
function children(el: Der): Der[] | undefined {
  const out: Der[] = [];
  let pos = 0;
  while (pos < el.content.length) {
    const c = readDer(el.content, pos);
    if (c === undefined) return undefined;
    out.push(c);
    pos += c.raw.length;
  }
  return out;
}

const hexOf = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

const OID = {
  ecdsaWithSha256: '2a8648ce3d040302',
  ecPublicKey: '2a8648ce3d0201',
  prime256v1: '2a8648ce3d030107',
  commonName: '550403',
  serialNumber: '550405',
  basicConstraints: '551d13',
  keyUsage: '551d0f',
} as const;

const SEQ = 0x30;
const SET = 0x31;
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const OCTET_STRING = 0x04;
const OID_TAG = 0x06;
const BOOLEAN = 0x01;
const STRING_TAGS = new Set([0x0c, 0x13, 0x16]); // UTF8String, PrintableString, IA5String

export interface ReaderCertificate {
  /** The whole certificate (DER). */
  readonly der: Uint8Array;
  /** The signed part, and the issuer's ECDSA signature over it (DER Ecdsa-Sig-Value). */
  readonly tbs: Uint8Array;
  readonly signature: Uint8Array;
  readonly serialNumber: Uint8Array;
  /** DER of the issuer and subject Names (compared byte for byte). */
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly subjectCommonName: string | undefined;
  readonly subjectSerialNumber: string | undefined;
  /** Validity, seconds since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** Uncompressed SEC1 P-256 public key (65 bytes). */
  readonly publicKey: Uint8Array;
  readonly isCa: boolean;
  readonly pathLength: number | undefined;
  readonly keyUsage: { readonly digitalSignature: boolean; readonly keyCertSign: boolean } | undefined;
}

const bad = (detail: string) => err('POS_ERR_READER_CERT_INVALID', detail);
/** TextDecoder exists in Node and browsers; shared/ has no types for either. */
interface Utf8Decoder {
  decode(bytes: Uint8Array): string;
}
const textDecoder = new (
  globalThis as unknown as { TextDecoder: new (label: string, opts: { fatal: boolean }) => Utf8Decoder }
).TextDecoder('utf-8', { fatal: true });

function parseTime(el: Der): number | undefined {
  let text: string;
  try {
    text = textDecoder.decode(el.content);
  } catch {
    return undefined;
  }
  const m =
    el.tag === 0x17
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : el.tag === 0x18
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
        : null;
  if (m === null) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const year = el.tag === 0x17 ? (y >= 50 ? 1900 + y : 2000 + y) : y;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return undefined;
  return Date.UTC(year, mo - 1, d, h, mi, s) / 1000;
}

function nameAttributes(name: Der): Map<string, string> | undefined {
  const out = new Map<string, string>();
  const rdns = children(name);
  if (rdns === undefined) return undefined;
  for (const rdn of rdns) {
    if (rdn.tag !== SET) return undefined;
    const atvs = children(rdn);
    if (atvs === undefined || atvs.length === 0) return undefined;
    for (const atv of atvs) {
      const parts = atv.tag === SEQ ? children(atv) : undefined;
      if (parts?.length !== 2 || parts[0]?.tag !== OID_TAG) return undefined;
      const [oid, value] = parts as [Der, Der];
      if (!STRING_TAGS.has(value.tag)) continue;
      try {
        out.set(hexOf(oid.content), textDecoder.decode(value.content));
      } catch {
        return undefined;
      }
    }
  }
  return out;
}

function isEcdsaSha256(alg: Der): boolean {
  const parts = alg.tag === SEQ ? children(alg) : undefined;
  return parts?.length === 1 && parts[0]?.tag === OID_TAG && hexOf(parts[0].content) === OID.ecdsaWithSha256;
}

/** Parses one certificate of the profile. Code `POS_ERR_READER_CERT_INVALID` for anything else. */
export function parseReaderCertificate(der: Uint8Array): Result<{ cert: ReaderCertificate }> {
  if (!(der instanceof Uint8Array) || der.length > 4096)
    return bad('a certificate is at most 4096 bytes of DER');
  const top = readDer(der, 0);
  if (top?.tag !== SEQ || top.raw.length !== der.length) return bad('not one DER SEQUENCE');
  const outer = children(top);
  if (outer?.length !== 3) return bad('a certificate has three parts');
  const [tbsEl, sigAlg, sigBits] = outer as [Der, Der, Der];
  if (tbsEl.tag !== SEQ || !isEcdsaSha256(sigAlg) || sigBits.tag !== BIT_STRING)
    return bad('the signature must be ecdsa-with-SHA256');
  if (sigBits.content[0] !== 0) return bad('the signature bit string has unused bits');
  const tbs = children(tbsEl);
  if (tbs === undefined || tbs.length < 7) return bad('the TBSCertificate is malformed');
  const [ver, serial, alg, issuer, validity, subject, spki, ...rest] = tbs as [
    Der,
    Der,
    Der,
    Der,
    Der,
    Der,
    Der,
    ...Der[],
  ];
  const verInt = ver.tag === 0xa0 ? children(ver) : undefined;
  if (verInt?.length !== 1 || verInt[0]?.tag !== INTEGER || hexOf(verInt[0].content) !== '02')
    return bad('only X.509 v3 certificates');
  if (serial.tag !== INTEGER || serial.content.length < 1 || serial.content.length > 21)
    return bad('the serial number is not a 1..20-byte INTEGER');
  if (!isEcdsaSha256(alg) || hexOf(alg.raw) !== hexOf(sigAlg.raw))
    return bad('the TBS signature algorithm differs');
  if (issuer.tag !== SEQ || subject.tag !== SEQ) return bad('issuer and subject are Names');
  const times = validity.tag === SEQ ? children(validity) : undefined;
  if (times?.length !== 2) return bad('validity has two times');
  const notBefore = parseTime(times[0] as Der);
  const notAfter = parseTime(times[1] as Der);
  if (notBefore === undefined || notAfter === undefined) return bad('validity times are malformed');
  // SubjectPublicKeyInfo: id-ecPublicKey on prime256v1, uncompressed point.
  const spkiParts = spki.tag === SEQ ? children(spki) : undefined;
  const algParts = spkiParts?.[0]?.tag === SEQ ? children(spkiParts[0]) : undefined;
  if (
    spkiParts?.length !== 2 ||
    algParts?.length !== 2 ||
    hexOf(algParts[0]?.content ?? new Uint8Array()) !== OID.ecPublicKey ||
    algParts[1]?.tag !== OID_TAG ||
    hexOf(algParts[1].content) !== OID.prime256v1 ||
    spkiParts[1]?.tag !== BIT_STRING ||
    spkiParts[1].content.length !== 66 ||
    spkiParts[1].content[0] !== 0 ||
    spkiParts[1].content[1] !== 0x04
  )
    return bad('the subject key must be an uncompressed P-256 key');
  const publicKey = spkiParts[1].content.slice(1);
  try {
    p256.Point.fromBytes(publicKey).assertValidity();
  } catch {
    return bad('the subject key is not on P-256');
  }
  let isCa = false;
  let pathLength: number | undefined;
  let keyUsage: ReaderCertificate['keyUsage'];
  if (rest.length > 1) return bad('unexpected fields after the subject key');
  if (rest.length === 1) {
    const extsWrap = rest[0] as Der;
    const extsSeq = extsWrap.tag === 0xa3 ? children(extsWrap) : undefined;
    const exts = extsSeq?.length === 1 && extsSeq[0]?.tag === SEQ ? children(extsSeq[0]) : undefined;
    if (exts === undefined || exts.length === 0) return bad('the extensions are malformed');
    const seen = new Set<string>();
    for (const ext of exts) {
      const parts = ext.tag === SEQ ? children(ext) : undefined;
      if (parts === undefined || parts.length < 2 || parts.length > 3 || parts[0]?.tag !== OID_TAG)
        return bad('an extension is malformed');
      const oid = hexOf(parts[0].content);
      if (seen.has(oid)) return bad('an extension appears twice');
      seen.add(oid);
      let critical = false;
      if (parts.length === 3) {
        const c = parts[1] as Der;
        // DER never encodes the default FALSE, but some encoders do: read it, do not insist.
        if (c.tag !== BOOLEAN || c.content.length !== 1) return bad('bad critical flag');
        critical = c.content[0] !== 0;
      }
      const value = parts[parts.length - 1] as Der;
      if (value.tag !== OCTET_STRING) return bad('an extension value is not an OCTET STRING');
      const inner = readDer(value.content, 0);
      if (oid === OID.basicConstraints) {
        const bc =
          inner?.tag === SEQ && inner.raw.length === value.content.length ? children(inner) : undefined;
        if (bc === undefined || bc.length > 2) return bad('basicConstraints is malformed');
        let i = 0;
        const caFlag = bc[0];
        if (caFlag?.tag === BOOLEAN) {
          if (caFlag.content.length !== 1) return bad('basicConstraints cA is malformed');
          isCa = caFlag.content[0] !== 0;
          i++;
        }
        const pl = bc[i];
        if (pl !== undefined) {
          if (pl.tag !== INTEGER || pl.content.length !== 1 || (pl.content[0] ?? 0) > 0x7f || !isCa)
            return bad('basicConstraints pathLen is malformed');
          pathLength = pl.content[0];
          i++;
        }
        if (i !== bc.length) return bad('basicConstraints is malformed');
      } else if (oid === OID.keyUsage) {
        if (
          inner?.tag !== BIT_STRING ||
          inner.raw.length !== value.content.length ||
          inner.content.length < 2
        )
          return bad('keyUsage is malformed');
        const first = inner.content[1] ?? 0;
        keyUsage = { digitalSignature: (first & 0x80) !== 0, keyCertSign: (first & 0x04) !== 0 };
      } else if (critical) {
        return bad('an unknown extension is marked critical');
      }
    }
  }
  const attrs = nameAttributes(subject);
  if (attrs === undefined || nameAttributes(issuer) === undefined) return bad('a Name is malformed');
  return ok({
    cert: {
      der,
      tbs: tbsEl.raw,
      signature: sigBits.content.subarray(1),
      serialNumber: serial.content,
      issuer: issuer.raw,
      subject: subject.raw,
      subjectCommonName: attrs.get(OID.commonName),
      subjectSerialNumber: attrs.get(OID.serialNumber),
      notBefore,
      notAfter,
      publicKey,
      isCa,
      pathLength,
      keyUsage,
    },
  });
}

/** True when `issuerKey` signed `cert` (ECDSA P-256 SHA-256, DER signature, high S accepted). */
function signedBy(cert: ReaderCertificate, issuerKey: Uint8Array): boolean {
  try {
    return p256.verify(cert.signature, cert.tbs, issuerKey, { prehash: true, lowS: false, format: 'der' });
  } catch {
    return false;
  }
}

/** The reader serial a leaf certificate names: subject serialNumber, else subject CN. */
export function readerSerialOf(cert: ReaderCertificate): string | undefined {
  return cert.subjectSerialNumber ?? cert.subjectCommonName;
}

export interface CertChainOptions {
  /** Verifier's clock, seconds since the epoch. */
  readonly now: number;
  /** The serial the terminal is paired with; the leaf must name it. */
  readonly expectedSerial?: string;
}

/**
 * Verifies a reader chain (leaf first; intermediates; optionally the root itself) to one of the
 * trusted manufacturer CA roots (DER). Returns the leaf's key and serial.
 *
 * Rules: every certificate parses under the profile and is valid at `now`; each is signed by the next
 * one (issuer Name = next subject, byte for byte); the leaf is not a CA and has keyUsage
 * digitalSignature; every issuer is a CA with keyCertSign whose pathLen allows the certificates below
 * it; the last certificate is a trusted root or is signed by one.
 */
export function verifyReaderCertChain(
  chain: readonly Uint8Array[],
  trustedRoots: readonly Uint8Array[],
  opts: CertChainOptions,
): Result<{ leaf: ReaderCertificate; serial: string; publicKey: Uint8Array }> {
  if (chain.length === 0 || chain.length > 4) return bad('a reader chain has 1 to 4 certificates');
  const certs: ReaderCertificate[] = [];
  for (const der of chain) {
    const p = parseReaderCertificate(der);
    if (!p.ok) return p;
    certs.push(p.cert);
  }
  const roots: ReaderCertificate[] = [];
  for (const der of trustedRoots) {
    const p = parseReaderCertificate(der);
    if (p.ok && p.cert.isCa) roots.push(p.cert);
  }
  const leaf = certs[0] as ReaderCertificate;
  if (leaf.isCa || leaf.keyUsage?.digitalSignature !== true)
    return bad('the reader certificate must be an end-entity certificate with digitalSignature');
  const serial = readerSerialOf(leaf);
  if (serial === undefined || serial.length === 0 || serial.length > 64)
    return bad('the reader certificate names no serial (subject serialNumber or CN)');

  // The path: the chain as sent, then the trusted root that signs its last certificate (unless the
  // last certificate is itself a trusted root).
  const last = certs[certs.length - 1] as ReaderCertificate;
  const lastIsRoot = roots.some((r) => constantTimeEqual(r.der, last.der));
  const path = [...certs];
  if (!lastIsRoot) {
    const candidates = roots.filter((r) => constantTimeEqual(r.subject, last.issuer));
    if (candidates.length === 0)
      return err('POS_ERR_READER_CERT_UNTRUSTED', 'the chain does not lead to a trusted manufacturer CA');
    const root = candidates.find((r) => signedBy(last, r.publicKey));
    if (root === undefined)
      return err('POS_ERR_READER_CERT_SIGNATURE', 'the chain is not signed by the trusted manufacturer CA');
    path.push(root);
  }
  for (let i = 0; i < path.length - 1; i++) {
    const cert = path[i] as ReaderCertificate;
    const issuer = path[i + 1] as ReaderCertificate;
    if (!constantTimeEqual(cert.issuer, issuer.subject))
      return bad('the chain is out of order: an issuer is not the next certificate');
    if (!issuer.isCa || issuer.keyUsage?.keyCertSign !== true)
      return bad('an issuing certificate is not a CA with keyCertSign');
    // Certificates below issuer i+1 that are themselves CAs: path[1..i].
    if (issuer.pathLength !== undefined && i > issuer.pathLength) return bad('a CA path length is exceeded');
    if (!signedBy(cert, issuer.publicKey))
      return err('POS_ERR_READER_CERT_SIGNATURE', 'a certificate signature in the chain does not verify');
  }
  for (const c of path) {
    if (opts.now < c.notBefore || opts.now > c.notAfter)
      return err('POS_ERR_READER_CERT_EXPIRED', 'a certificate in the chain is expired or not yet valid');
  }
  if (opts.expectedSerial !== undefined && serial !== opts.expectedSerial)
    return err('POS_ERR_READER_SERIAL_MISMATCH', 'the reader certificate names another serial');
  return ok({ leaf, serial, publicKey: leaf.publicKey });
}
