/**
 * TDES DUKPT (ANSI X9.24-1-2009) against dukpt.json `tdes`: the A.4.2 initial sequence (`*_verify`) and
 * the A.4.3 roll-over sequence (`*_verify2`). Every value has its own test case.
 */
import { describe, expect, it } from 'vitest';
import { tdesCbcEncrypt, tdesEcbDecrypt, tdesEcbEncrypt } from '../src/crypto/des';
import { retailMac, tdesCmac } from '../src/crypto/mac';
import {
  nextTdesKsn,
  parseTdesKsn,
  tdesDukptIpek,
  tdesDukptTransactionKey,
  tdesDukptWorkingKey,
  tdesKsnCounter,
  type TdesDukptVariant,
} from '../src/dukpt';
import dukpt from './vectors/dukpt.json';
import { ascii, hex, toHex, unwrap, zeroPad } from './dukpt-helpers';

const v = dukpt.tdes;
const bdk = hex(v.bdk);
const message = ascii('4012345678909D987');
const ksnOf = (text: string) => unwrap(parseTdesKsn(hex(text))).ksn;
const key = (ksn: string, variant: TdesDukptVariant) =>
  unwrap(tdesDukptWorkingKey(bdk, ksnOf(ksn), variant)).key;
const code = (r: { ok: boolean; code?: string }) => (r.ok ? 'ok' : r.code);

describe('TDES DUKPT fixed inputs', () => {
  it('bdk is a double-length TDES key', () => {
    expect(bdk.length).toBe(16);
  });
  it('iksn has counter 0, which parseTdesKsn refuses (no transaction uses it)', () => {
    expect(code(parseTdesKsn(hex(v.iksn)))).toBe('POS_ERR_KSN_COUNTER_INVALID');
    for (const ksn of [...v.ksn_verify, ...v.ksn_verify2]) expect(ksn.slice(0, 14)).toBe(v.iksn.slice(0, 14));
  });
  it('ik_verify = IPEK from the initial KSN', () => {
    expect(toHex(unwrap(tdesDukptIpek(bdk, hex(v.iksn))).key)).toBe(v.ik_verify);
  });
  it('ik_verify = IPEK from any transaction KSN of the device (the counter is ignored)', () => {
    for (const ksn of [...v.ksn_verify, ...v.ksn_verify2]) {
      expect(toHex(unwrap(tdesDukptIpek(bdk, ksnOf(ksn))).key)).toBe(v.ik_verify);
    }
  });
  it('pan 4012345678909F is the F-padded packed PAN and pinblock is its format-0 block of PIN 1234', () => {
    const pan = v.pan.replace(/F+$/, '');
    expect(pan).toBe('4012345678909');
    const panBlock = hex(`0000${pan.slice(-13, -1)}`);
    const pinField = hex('041234FFFFFFFFFF');
    expect(toHex(pinField.map((b, i) => b ^ (panBlock[i] ?? 0)))).toBe(v.pinblock);
  });
  it('pin is empty in the file (the PIN 1234 is only inside pinblock)', () => {
    expect(v.pin).toBe('');
  });
});

describe.each([
  [
    'A.4.2 initial sequence',
    {
      ksn: v.ksn_verify,
      txn: v.txn_key_verify,
      pinblock: v.encrypted_pinblock_verify,
      macReq: v.mac_request_verify,
      macResp: v.mac_response_verify,
      cmacReq: v.cmac_request_verify,
      cmacResp: v.cmac_response_verify,
      dataReq: v.txn_request_verify,
    },
    '',
  ],
  [
    'A.4.3 roll-over sequence',
    {
      ksn: v.ksn_verify2,
      txn: v.txn_key_verify2,
      pinblock: v.encrypted_pinblock_verify2,
      macReq: v.mac_request_verify2,
      macResp: v.mac_response_verify2,
      cmacReq: v.cmac_request_verify2,
      cmacResp: v.cmac_response_verify2,
      dataReq: v.txn_request_verify2,
    },
    '2',
  ],
] as const)('TDES DUKPT %s', (_name, s, suffix) => {
  const rows = (list: readonly string[]) => s.ksn.map((ksn, i) => [ksn, list[i] ?? ''] as const);

  it(`ksn_verify${suffix} is the sequence nextTdesKsn produces`, () => {
    let ksn = ksnOf(s.ksn[0] ?? '');
    for (const expected of s.ksn.slice(1)) {
      ksn = unwrap(nextTdesKsn(ksn)).ksn;
      expect(toHex(ksn)).toBe(expected);
    }
  });
  it.each(rows(s.txn))(`txn_key_verify${suffix} for %s`, (ksn, expected) => {
    expect(toHex(unwrap(tdesDukptTransactionKey(bdk, ksnOf(ksn))).key)).toBe(expected);
  });
  it.each(rows(s.pinblock))(
    `encrypted_pinblock_verify${suffix} for %s (TDES-ECB, PIN variant)`,
    (ksn, expected) => {
      expect(toHex(unwrap(tdesEcbEncrypt(key(ksn, 'pin'), hex(v.pinblock))).data)).toBe(expected);
      expect(toHex(unwrap(tdesEcbDecrypt(key(ksn, 'pin'), hex(expected))).data)).toBe(v.pinblock);
    },
  );
  it.each(rows(s.macReq))(
    `mac_request_verify${suffix} for %s (X9.19 retail MAC, 4 bytes)`,
    (ksn, expected) => {
      expect(toHex(unwrap(retailMac(key(ksn, 'mac-request'), message, { truncate: 4 })).mac)).toBe(expected);
    },
  );
  it.each(rows(s.macResp))(
    `mac_response_verify${suffix} for %s (X9.19 retail MAC, 4 bytes)`,
    (ksn, expected) => {
      expect(toHex(unwrap(retailMac(key(ksn, 'mac-response'), message, { truncate: 4 })).mac)).toBe(expected);
    },
  );
  it.each(rows(s.cmacReq))(`cmac_request_verify${suffix} for %s (TDES-CMAC)`, (ksn, expected) => {
    expect(toHex(unwrap(tdesCmac(key(ksn, 'mac-request'), message)).mac)).toBe(expected);
  });
  it.each(rows(s.cmacResp))(`cmac_response_verify${suffix} for %s (TDES-CMAC)`, (ksn, expected) => {
    expect(toHex(unwrap(tdesCmac(key(ksn, 'mac-response'), message)).mac)).toBe(expected);
  });
  it.each(rows(s.dataReq))(
    `txn_request_verify${suffix} for %s (TDES-CBC, data-request key)`,
    (ksn, expected) => {
      const out = unwrap(
        tdesCbcEncrypt(key(ksn, 'data-request'), new Uint8Array(8), zeroPad(message, 24)),
      ).data;
      expect(toHex(out)).toBe(expected);
    },
  );
});

describe('TDES DUKPT variants and checks', () => {
  const ksn = v.ksn_verify[0] ?? '';
  const txn = hex(v.txn_key_verify[0] ?? '');
  const xorAt = (k: Uint8Array, at: number) => {
    const out = k.slice();
    out[at] = (out[at] ?? 0) ^ 0xff;
    out[at + 8] = (out[at + 8] ?? 0) ^ 0xff;
    return out;
  };
  it('pin / mac-request / mac-response keys are the transaction key xor the variant constants', () => {
    expect(toHex(key(ksn, 'pin'))).toBe(toHex(xorAt(txn, 7)));
    expect(toHex(key(ksn, 'mac-request'))).toBe(toHex(xorAt(txn, 6)));
    expect(toHex(key(ksn, 'mac-response'))).toBe(toHex(xorAt(txn, 4)));
  });
  it('data keys are the variant key encrypted with itself, half by half', () => {
    for (const [variant, at] of [
      ['data-request', 5],
      ['data-response', 3],
    ] as const) {
      const variantKey = xorAt(txn, at);
      const expected = unwrap(tdesEcbEncrypt(variantKey, variantKey)).data;
      expect(toHex(key(ksn, variant))).toBe(toHex(expected));
    }
  });
  it('refuses a BDK that is not 16 bytes, a KSN that is not 10 bytes and an unknown variant', () => {
    expect(code(tdesDukptIpek(new Uint8Array(24), hex(v.iksn)))).toBe('POS_ERR_KEY_LENGTH');
    expect(code(tdesDukptIpek(bdk, new Uint8Array(8)))).toBe('POS_ERR_KSN_INVALID');
    expect(code(tdesDukptTransactionKey(new Uint8Array(8), ksnOf(ksn)))).toBe('POS_ERR_KEY_LENGTH');
    const variant = 'pin-request' as unknown as TdesDukptVariant;
    expect(code(tdesDukptWorkingKey(bdk, ksnOf(ksn), variant))).toBe('POS_ERR_DUKPT_KEY_USAGE_UNKNOWN');
    const eleven = hex('FFFF9876543210E007FF') as unknown as ReturnType<typeof ksnOf>;
    expect(code(tdesDukptTransactionKey(bdk, eleven))).toBe('POS_ERR_KSN_COUNTER_INVALID');
  });
  it('tdesKsnCounter reads the low 21 bits only', () => {
    expect(tdesKsnCounter(ksnOf('FFFF9876543210EFF800'))).toBe(0x0ff800);
    expect(tdesKsnCounter(ksnOf('FFFF9876543210F00000'))).toBe(0x100000);
  });
});
