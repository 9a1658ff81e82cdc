/**
 * A tiny DER writer that makes certificates of the reader profile deterministically (noble's RFC 6979
 * signatures), for the spec's test vectors: the same inputs give the same bytes on every run, which
 * WebCrypto-signed certificates cannot. openssl reads them (reader-vectors.test.ts checks).
 */
import { p256 } from '@noble/curves/nist.js';
import { concatBytes, hex } from '../src/index';

const len = (n: number): Uint8Array =>
  n < 0x80 ? Uint8Array.of(n) : n < 0x100 ? Uint8Array.of(0x81, n) : Uint8Array.of(0x82, n >> 8, n & 0xff);
export const tlv = (tag: number, ...content: Uint8Array[]): Uint8Array => {
  const c = concatBytes(...content);
  return concatBytes(Uint8Array.of(tag), len(c.length), c);
};
const seq = (...c: Uint8Array[]) => tlv(0x30, ...c);
const set = (...c: Uint8Array[]) => tlv(0x31, ...c);
const oid = (h: string) => tlv(0x06, hex(h));
const utf8 = (s: string) => tlv(0x0c, new TextEncoder().encode(s));
const printable = (s: string) => tlv(0x13, new TextEncoder().encode(s));
const int = (b: Uint8Array) => tlv(0x02, (b[0] ?? 0) & 0x80 ? concatBytes(Uint8Array.of(0), b) : b);

const ECDSA_SHA256 = seq(oid('2a8648ce3d040302'));

function time(seconds: number): Uint8Array {
  const d = new Date(seconds * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  const y = d.getUTCFullYear();
  // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  return y < 2050
    ? tlv(0x17, new TextEncoder().encode(`${String(y % 100).padStart(2, '0')}${rest}`))
    : tlv(0x18, new TextEncoder().encode(`${y}${rest}`));
}

export interface DerCertSpec {
  readonly serialNumber: Uint8Array;
  readonly issuerCn: string;
  /** Subject CN; a reader also gets subject serialNumber = CN. */
  readonly subjectCn: string;
  readonly ca: boolean;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly publicKey: Uint8Array;
  readonly issuerSecret: Uint8Array;
}

export function derCertificate(s: DerCertSpec): Uint8Array {
  const issuer = seq(set(seq(oid('550403'), utf8(s.issuerCn))));
  const subject = s.ca
    ? seq(set(seq(oid('550403'), utf8(s.subjectCn))))
    : seq(set(seq(oid('550403'), utf8(s.subjectCn))), set(seq(oid('550405'), printable(s.subjectCn))));
  const critical = tlv(0x01, Uint8Array.of(0xff));
  const basic = seq(oid('551d13'), critical, tlv(0x04, s.ca ? seq(critical, int(Uint8Array.of(0))) : seq()));
  // keyUsage: digitalSignature (bit 0) for a reader; keyCertSign + cRLSign (bits 5, 6) for a CA.
  const usage = seq(oid('551d0f'), critical, tlv(0x04, s.ca ? hex('03020106') : hex('03020780')));
  const tbs = seq(
    tlv(0xa0, int(Uint8Array.of(2))),
    int(s.serialNumber),
    ECDSA_SHA256,
    issuer,
    seq(time(s.notBefore), time(s.notAfter)),
    subject,
    seq(seq(oid('2a8648ce3d0201'), oid('2a8648ce3d030107')), tlv(0x03, Uint8Array.of(0), s.publicKey)),
    tlv(0xa3, seq(basic, usage)),
  );
  const sig = p256.sign(tbs, s.issuerSecret, { prehash: true, format: 'der' });
  return seq(tbs, ECDSA_SHA256, tlv(0x03, Uint8Array.of(0), sig));
}
