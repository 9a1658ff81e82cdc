import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  decodeReaderStatus,
  p256Signer,
  signReaderStatus,
  verifyReaderStatus,
  type ReaderStatus,
  type SignedReaderStatus,
} from '../src/index';
import { NOW, der, fixedKey, makeCert, makeWorld, secretOf } from './reader-fixtures';

let w: Awaited<ReturnType<typeof makeWorld>>;
beforeAll(async () => {
  w = await makeWorld();
});

const status = (over: Partial<ReaderStatus> = {}): ReaderStatus => ({
  v: 1,
  serial: 'SIM-0001',
  fw: '1.4.2',
  fwHash: new Uint8Array(32).fill(0xab),
  tamper: false,
  ksnCounter: 17,
  battery: 81,
  time: NOW - 5,
  seq: 42,
  ...over,
});
const sign = (s: ReaderStatus, secret = w.readerKey.secret) => signReaderStatus(s, p256Signer(secret));
const check = (
  signed: SignedReaderStatus,
  over: Partial<Parameters<typeof verifyReaderStatus>[3]> = {},
  chain = [w.readerDer],
  roots = [w.caDer],
) => {
  const r = verifyReaderStatus(signed, chain, roots, {
    now: NOW,
    expectedSerial: 'SIM-0001',
    maxAgeS: 60,
    ...over,
  });
  return r.ok ? 'ok' : r.code;
};

describe('reader status report', () => {
  it('verifies a fresh report from the paired reader, tamper flag and all', async () => {
    const signed = await sign(status({ tamper: true, challenge: Uint8Array.of(1, 2, 3) }));
    const r = verifyReaderStatus(signed, [w.readerDer], [w.caDer], {
      now: NOW,
      expectedSerial: 'SIM-0001',
      maxAgeS: 60,
      expectedChallenge: Uint8Array.of(1, 2, 3),
    });
    expect(r.ok && r.status.tamper).toBe(true);
    expect(r.ok && r.status.ksnCounter).toBe(17);
  });

  it('refuses each failure with its code', async () => {
    const good = await sign(status());
    expect(check(good)).toBe('ok');
    expect(check(await sign(status(), secretOf(99)))).toBe('POS_ERR_READER_STATUS_SIGNATURE');
    const flipped = { report: good.report.slice(), sig: good.sig };
    flipped.report[5]! ^= 1;
    expect(check(flipped)).toBe('POS_ERR_READER_STATUS_SIGNATURE');
    expect(check(good, { expectedSerial: 'SIM-0002' })).toBe('POS_ERR_READER_SERIAL_MISMATCH');
    expect(check(await sign(status({ serial: 'SIM-0009' })))).toBe('POS_ERR_READER_SERIAL_MISMATCH');
    expect(check(await sign(status({ time: NOW - 61 })))).toBe('POS_ERR_READER_STATUS_STALE');
    expect(check(await sign(status({ time: NOW + 300 })))).toBe('POS_ERR_READER_STATUS_STALE');
    expect(check(good, { expectedChallenge: Uint8Array.of(9) })).toBe('POS_ERR_READER_STATUS_STALE');
    const otherKey = await fixedKey(secretOf(77));
    const otherCa = await makeCert(otherKey, undefined, { ca: true, subject: 'CN=Other' });
    expect(check(good, {}, [w.readerDer], [der(otherCa)])).toBe('POS_ERR_READER_CERT_UNTRUSTED');
    expect(check(good, { now: NOW + 30 * 365 * 86_400, maxAgeS: 1e12 })).toBe('POS_ERR_READER_CERT_EXPIRED');
    expect(check({ report: good.report, sig: new Uint8Array(10) })).toBe('POS_ERR_READER_STATUS_INVALID');
  });

  it('never throws on arbitrary report bytes', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        (report, sig) => {
          expect(check({ report, sig })).not.toBe('ok');
          decodeReaderStatus(report);
        },
      ),
      { numRuns: 100 },
    );
  });
});
