/**
 * AES DUKPT host side against the ANSI X9.24-3-2017 supplement vectors (dukpt.json `aes128`, `aes256`)
 * and moov-io/dukpt's interop vectors (`moov_aes128_initial_sequence`). Every value in those blocks has
 * its own test case.
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { aesCbcEncrypt } from '../src/crypto/aes';
import { aesCmac } from '../src/crypto/mac';
import {
  aesDukptDerivationKey,
  aesDukptInitialKey,
  aesDukptWorkingKey,
  aesKsnCounter,
  nextAesKsn,
  parseAesKsn,
  type AesDukptKeyType,
  type DukptKeyUsage,
} from '../src/dukpt';
import dukpt from './vectors/dukpt.json';
import { ascii, format4Encipher, hex, toHex, unwrap, zeroPad } from './dukpt-helpers';

const ksnOf = (text: string) => unwrap(parseAesKsn(hex(text))).ksn;

function working(bdk: string, ksn: string, usage: DukptKeyUsage, keyType?: AesDukptKeyType): string {
  const opts =
    keyType === undefined
      ? { bdk: hex(bdk), ksn: ksnOf(ksn), usage }
      : { bdk: hex(bdk), ksn: ksnOf(ksn), usage, keyType };
  return toHex(unwrap(aesDukptWorkingKey(opts)).key);
}

/** ISO 9564-1 format 4 plain PIN field prefix: 4 ‖ N ‖ PIN ‖ A fill to 16 nibbles. */
function pinFieldPrefix(pinDigits: Uint8Array): string {
  let s = `4${pinDigits.length.toString(16).toUpperCase()}`;
  for (const d of pinDigits) s += `${d}`;
  return s.padEnd(16, 'A');
}

/** ISO 9564-1 format 4 plain PAN field: M ‖ PAN ‖ 0 fill to 32 nibbles (M = max(0, len - 12)). */
function panField(pan: string): string {
  const m = Math.max(0, pan.length - 12);
  const digits = pan.length < 12 ? pan.padStart(12, '0') : pan;
  return `${m}${digits}`.padEnd(32, '0');
}

describe.each([
  ['aes128', dukpt.aes128],
  ['aes256', dukpt.aes256],
] as const)('AES DUKPT %s BDK (X9.24-3-2017 supplement)', (name, v) => {
  it(`${name} bdk is an AES key of the stated size`, () => {
    expect(hex(v.bdk).length).toBe(name === 'aes128' ? 16 : 32);
  });

  it(`${name} ikid is the first 8 bytes of every KSN`, () => {
    for (const ksn of [...v.ksn_verify, ...v.ksn_verify2, ...v.ksn_verify3])
      expect(ksn.slice(0, 16)).toBe(v.ikid);
  });

  it(`${name} ik_verify = DeriveKey(BDK, 8001, IKID)`, () => {
    expect(toHex(unwrap(aesDukptInitialKey(hex(v.bdk), hex(v.ikid))).key)).toBe(v.ik_verify);
  });

  it(`${name} pin ${v.pin} is PIN 1234 and pinfield_verify is its format-4 prefix`, () => {
    expect(pinFieldPrefix(hex(v.pin))).toBe(v.pinfield_verify);
  });

  it(`${name} pinfield starts with pinfield_verify`, () => {
    expect(v.pinfield.slice(0, 16)).toBe(v.pinfield_verify);
    expect(hex(v.pinfield).length).toBe(16);
  });

  it(`${name} pan ${v.pan} gives panfield`, () => {
    expect(panField(v.pan)).toBe(v.panfield);
  });

  describe('ksn_verify / txn_key_verify', () => {
    it.each(v.ksn_verify.map((ksn, i) => [i + 1, ksn] as const))(
      `${name} ksn_verify #%i %s has that counter`,
      (i, ksn) => {
        expect(aesKsnCounter(ksnOf(ksn))).toBe(i);
      },
    );
    it.each(v.ksn_verify.map((ksn, i) => [ksn, v.txn_key_verify[i] ?? ''] as const))(
      `${name} txn_key_verify for %s`,
      (ksn, expected) => {
        expect(toHex(unwrap(aesDukptDerivationKey(hex(v.bdk), ksnOf(ksn))).key)).toBe(expected);
      },
    );
    it(`${name} ksn_verify follows nextAesKsn from counter 1`, () => {
      let ksn = ksnOf(v.ksn_verify[0] ?? '');
      for (const expected of v.ksn_verify.slice(1)) {
        ksn = unwrap(nextAesKsn(ksn)).ksn;
        expect(toHex(ksn)).toBe(expected);
      }
    });
  });

  describe('ksn_verify2 / txn_key_verify2 (roll-over of the low bits)', () => {
    it.each(v.ksn_verify2.map((ksn, i) => [ksn, v.txn_key_verify2[i] ?? ''] as const))(
      `${name} txn_key_verify2 for %s`,
      (ksn, expected) => {
        expect(toHex(unwrap(aesDukptDerivationKey(hex(v.bdk), ksnOf(ksn))).key)).toBe(expected);
      },
    );
    it(`${name} ksn_verify2 follows nextAesKsn (0001FFFE -> 00020000 -> 00020001)`, () => {
      let ksn = ksnOf(v.ksn_verify2[0] ?? '');
      for (const expected of v.ksn_verify2.slice(1)) {
        ksn = unwrap(nextAesKsn(ksn)).ksn;
        expect(toHex(ksn)).toBe(expected);
      }
    });
  });

  describe('ksn_verify3 / txn_key_verify3 (the last counters)', () => {
    it.each(v.ksn_verify3.map((ksn, i) => [ksn, v.txn_key_verify3[i] ?? ''] as const))(
      `${name} txn_key_verify3 for %s`,
      (ksn, expected) => {
        expect(toHex(unwrap(aesDukptDerivationKey(hex(v.bdk), ksnOf(ksn))).key)).toBe(expected);
      },
    );
    it(`${name} ksn_verify3 follows nextAesKsn, then the counter is exhausted`, () => {
      let ksn = ksnOf(v.ksn_verify3[0] ?? '');
      for (const expected of v.ksn_verify3.slice(1)) {
        ksn = unwrap(nextAesKsn(ksn)).ksn;
        expect(toHex(ksn)).toBe(expected);
      }
      const after = nextAesKsn(ksn);
      expect(after.ok ? 'ok' : after.code).toBe('POS_ERR_KSN_EXHAUSTED');
    });
  });

  const perKsn = (list: readonly string[]) => v.ksn_verify.map((ksn, i) => [ksn, list[i] ?? ''] as const);

  it.each(perKsn(v.pin_key_aes128_verify))(
    `${name} pin_key_aes128_verify for %s (usage 1000, aes128)`,
    (ksn, expected) => {
      expect(working(v.bdk, ksn, 'pin-encryption', 'aes128')).toBe(expected);
    },
  );
  it.each(perKsn(v.cmac_aes128_key_verify))(
    `${name} cmac_aes128_key_verify for %s (usage 2000, aes128)`,
    (ksn, expected) => {
      expect(working(v.bdk, ksn, 'mac-generation', 'aes128')).toBe(expected);
    },
  );
  it.each(perKsn(v.data_aes128_key_verify))(
    `${name} data_aes128_key_verify for %s (usage 3000, aes128)`,
    (ksn, expected) => {
      expect(working(v.bdk, ksn, 'data-encryption', 'aes128')).toBe(expected);
    },
  );

  if (name === 'aes128') {
    it.each(perKsn(v.pin_key_aes128_verify))(
      `${name} default key type is the BDK's (aes128) for %s`,
      (ksn, expected) => {
        expect(working(v.bdk, ksn, 'pin-encryption')).toBe(expected);
      },
    );
  }
});

describe('AES-128 BDK: encrypted_pinblock_verify (format 4 under the PIN key)', () => {
  const v = dukpt.aes128;
  it.each(v.ksn_verify.map((ksn, i) => [ksn, v.encrypted_pinblock_verify[i] ?? ''] as const))(
    'aes128 encrypted_pinblock_verify for %s',
    (ksn, expected) => {
      const key = hex(working(v.bdk, ksn, 'pin-encryption'));
      expect(toHex(format4Encipher(key, hex(v.pinfield), hex(v.panfield)))).toBe(expected);
    },
  );
});

describe('AES-256 BDK: AES-256 working keys', () => {
  const v = dukpt.aes256;
  const perKsn = (list: readonly string[]) => v.ksn_verify.map((ksn, i) => [ksn, list[i] ?? ''] as const);
  it.each(perKsn(v.pin_key_aes256_verify))(
    'aes256 pin_key_aes256_verify for %s (usage 1000, aes256)',
    (ksn, expected) => {
      expect(working(v.bdk, ksn, 'pin-encryption', 'aes256')).toBe(expected);
    },
  );
  it.each(perKsn(v.cmac_aes256_key_verify))(
    'aes256 cmac_aes256_key_verify for %s (usage 2000, aes256)',
    (ksn, expected) => {
      expect(working(v.bdk, ksn, 'mac-generation', 'aes256')).toBe(expected);
    },
  );
  it.each(perKsn(v.data_aes256_key_verify))(
    'aes256 data_aes256_key_verify for %s (usage 3000, aes256)',
    (ksn, expected) => {
      expect(working(v.bdk, ksn, 'data-encryption', 'aes256')).toBe(expected);
    },
  );
  it.each(perKsn(v.pin_key_aes256_verify))(
    'aes256 default key type is the BDK type (aes256) for %s',
    (ksn, expected) => {
      expect(working(v.bdk, ksn, 'pin-encryption')).toBe(expected);
    },
  );
});

describe('moov_aes128_initial_sequence (moov-io/dukpt interop vectors)', () => {
  const bdk = dukpt.aes128.bdk;
  const message = ascii('4012345678909D987');
  const rows = dukpt.moov_aes128_initial_sequence.map((row, i) => {
    const [ksn, cmacReq, cmacResp, hmacReq, hmacResp, dataReq, dataResp] = row;
    return { i: i + 1, ksn: ksn ?? '', cmacReq, cmacResp, hmacReq, hmacResp, dataReq, dataResp };
  });
  const key = (ksn: string, usage: DukptKeyUsage, keyType: AesDukptKeyType) =>
    hex(working(bdk, ksn, usage, keyType));

  it.each(rows.map((r) => [r.i, r.ksn] as const))(
    'row %i ksn %s is aes128 ksn_verify for that counter',
    (i, ksn) => {
      expect(ksn).toBe(dukpt.aes128.ksn_verify[i - 1]);
      expect(aesKsnCounter(ksnOf(ksn))).toBe(i);
    },
  );
  it.each(rows.map((r) => [r.ksn, r.cmacReq] as const))(
    'row %s cmac_request (AES-CMAC, usage 2000)',
    (ksn, expected) => {
      expect(toHex(unwrap(aesCmac(key(ksn, 'mac-generation', 'aes128'), message)).mac)).toBe(expected);
    },
  );
  it.each(rows.map((r) => [r.ksn, r.cmacResp] as const))(
    'row %s cmac_response (AES-CMAC, usage 2001)',
    (ksn, expected) => {
      expect(toHex(unwrap(aesCmac(key(ksn, 'mac-verification', 'aes128'), message)).mac)).toBe(expected);
    },
  );
  it.each(rows.map((r) => [r.ksn, r.hmacReq] as const))(
    'row %s hmac_request (HMAC-SHA256, hmac128, usage 2000)',
    (ksn, expected) => {
      expect(toHex(hmac(sha256, key(ksn, 'mac-generation', 'hmac128'), message))).toBe(expected);
    },
  );
  it.each(rows.map((r) => [r.ksn, r.hmacResp] as const))(
    'row %s hmac_response (HMAC-SHA256, hmac128, usage 2001)',
    (ksn, expected) => {
      expect(toHex(hmac(sha256, key(ksn, 'mac-verification', 'hmac128'), message))).toBe(expected);
    },
  );
  it.each(rows.map((r) => [r.ksn, r.dataReq] as const))(
    'row %s data_request (AES-128-CBC, usage 3000)',
    (ksn, expected) => {
      const k = key(ksn, 'data-encryption', 'aes128');
      expect(toHex(aesCbcEncrypt(k, new Uint8Array(16), zeroPad(message, 32)))).toBe(expected);
    },
  );
  it.each(rows.map((r) => [r.ksn, r.dataResp] as const))(
    'row %s data_response (AES-128-CBC, usage 3001)',
    (ksn, expected) => {
      const k = key(ksn, 'data-decryption', 'aes128');
      expect(toHex(aesCbcEncrypt(k, new Uint8Array(16), zeroPad(message, 32)))).toBe(expected);
    },
  );
});

describe('AES DUKPT host-side input checks', () => {
  const v = dukpt.aes128;
  const ksn = ksnOf(v.ksn_verify[0] ?? '');
  const code = (r: { ok: boolean; code?: string }) => (r.ok ? 'ok' : r.code);

  it('refuses a BDK that is not an AES key', () => {
    expect(code(aesDukptInitialKey(new Uint8Array(15), hex(v.ikid)))).toBe('POS_ERR_KEY_LENGTH');
    expect(code(aesDukptDerivationKey(new Uint8Array(20), ksn))).toBe('POS_ERR_KEY_LENGTH');
    expect(code(aesDukptWorkingKey({ bdk: new Uint8Array(0), ksn, usage: 'pin-encryption' }))).toBe(
      'POS_ERR_KEY_LENGTH',
    );
  });
  it('refuses an initial key ID that is not 8 bytes', () => {
    expect(code(aesDukptInitialKey(hex(v.bdk), new Uint8Array(7)))).toBe('POS_ERR_LENGTH');
  });
  it('refuses an unknown usage or key type, and a working key stronger than the BDK', () => {
    const bdk = hex(v.bdk);
    const usage = 'pin' as unknown as DukptKeyUsage;
    const keyType = 'aes512' as unknown as AesDukptKeyType;
    expect(code(aesDukptWorkingKey({ bdk, ksn, usage }))).toBe('POS_ERR_DUKPT_KEY_USAGE_UNKNOWN');
    expect(code(aesDukptWorkingKey({ bdk, ksn, usage: 'pin-encryption', keyType }))).toBe(
      'POS_ERR_DUKPT_KEY_TYPE_UNKNOWN',
    );
    expect(code(aesDukptWorkingKey({ bdk, ksn, usage: 'pin-encryption', keyType: 'aes256' }))).toBe(
      'POS_ERR_DUKPT_KEY_TOO_STRONG',
    );
  });
  it('refuses a KSN that did not come from the parser (wrong length or counter)', () => {
    const bdk = hex(v.bdk);
    const short = hex('1234567890123456000001') as unknown as typeof ksn;
    const zero = hex('123456789012345600000000') as unknown as typeof ksn;
    expect(code(aesDukptDerivationKey(bdk, short))).toBe('POS_ERR_KSN_INVALID');
    expect(code(aesDukptDerivationKey(bdk, zero))).toBe('POS_ERR_KSN_COUNTER_INVALID');
  });
  it('AES-192 BDK: derives 24-byte intermediate keys and AES-192 working keys by default', () => {
    const bdk = hex('FEDCBA9876543210F1F1F1F1F1F1F1F1FEDCBA9876543210');
    expect(unwrap(aesDukptInitialKey(bdk, hex(v.ikid))).key.length).toBe(24);
    expect(unwrap(aesDukptDerivationKey(bdk, ksn)).key.length).toBe(24);
    expect(unwrap(aesDukptWorkingKey({ bdk, ksn, usage: 'data-both' })).key.length).toBe(24);
  });
});
