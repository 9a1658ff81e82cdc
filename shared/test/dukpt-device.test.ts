/**
 * AES DUKPT device side (X9.24-3-2017 section 6 device algorithm): the device loaded from the initial key
 * must produce the same keys as the host derives from the BDK, never reuse a counter, survive an
 * exportState/restore round trip and refuse corrupted states without throwing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AES_DUKPT_KEY_TYPES,
  AesDukptDevice,
  aesDukptWorkingKey,
  DUKPT_KEY_USAGES,
  type AesDukptDeviceState,
  type AesDukptKeyType,
  type DukptKeyUsage,
} from '../src/dukpt';
import { aesDukptBlockCounter } from '../src/dukpt/aes-derive';
import dukpt from './vectors/dukpt.json';
import { aesKsn, counterHex, hex, hostDeviceState, popcount, toHex, unwrap } from './dukpt-helpers';

const v128 = dukpt.aes128;
const v256 = dukpt.aes256;
const code = (r: { ok: boolean; code?: string }) => (r.ok ? 'ok' : r.code);
const load = (ik: string, ikid: string) => unwrap(AesDukptDevice.load(hex(ik), hex(ikid))).device;
const restore = (state: unknown) => unwrap(AesDukptDevice.restore(state)).device;

function hostKey(
  bdk: string,
  ikid: string,
  counter: number,
  usage: DukptKeyUsage,
  keyType?: AesDukptKeyType,
) {
  const ksn = aesKsn(ikid, counter);
  const opts = keyType === undefined ? { bdk: hex(bdk), ksn, usage } : { bdk: hex(bdk), ksn, usage, keyType };
  return toHex(unwrap(aesDukptWorkingKey(opts)).key);
}

/** Counters with 1..16 one-bits anywhere in 32 bits (so 16-bit counters and high bits are common). */
const aesCounter = fc
  .uniqueArray(fc.integer({ min: 0, max: 31 }), { minLength: 1, maxLength: 16 })
  .map((bits) => bits.reduce((acc, b) => acc + 2 ** b, 0));

describe('AES-128 device loaded from ik_verify reproduces the supplement vectors', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('counter %i: KSN, PIN, MAC and data keys', (n) => {
    const device = load(v128.ik_verify, v128.ikid);
    for (let i = 1; i < n; i++) unwrap(device.nextTransaction([]));
    expect(toHex(device.currentKsn ?? new Uint8Array())).toBe(v128.ksn_verify[n - 1]);
    const r = unwrap(
      device.nextTransaction([
        { usage: 'pin-encryption' },
        { usage: 'mac-generation', keyType: 'aes128' },
        { usage: 'data-encryption' },
      ]),
    );
    expect(toHex(r.ksn)).toBe(v128.ksn_verify[n - 1]);
    expect(r.keys.map(toHex)).toEqual([
      v128.pin_key_aes128_verify[n - 1],
      v128.cmac_aes128_key_verify[n - 1],
      v128.data_aes128_key_verify[n - 1],
    ]);
  });

  it('the register for the current counter holds txn_key_verify (counters 1..8)', () => {
    const device = load(v128.ik_verify, v128.ikid);
    for (let n = 1; n <= 8; n++) {
      const state = device.exportState();
      const p = Math.log2(n & -n);
      expect(state.registers[p]).toBe(v128.txn_key_verify[n - 1]);
      unwrap(device.nextTransaction([{ usage: 'pin-encryption' }]));
      expect(device.exportState().registers[p]).toBeNull();
    }
  });
});

describe('AES-256 device loaded from ik_verify reproduces the supplement vectors', () => {
  it('counters 1..8: PIN, MAC and data keys of both AES-128 and AES-256 type', () => {
    const device = load(v256.ik_verify, v256.ikid);
    for (let n = 1; n <= 8; n++) {
      const r = unwrap(
        device.nextTransaction([
          { usage: 'pin-encryption', keyType: 'aes128' },
          { usage: 'pin-encryption' },
          { usage: 'mac-generation', keyType: 'aes128' },
          { usage: 'mac-generation', keyType: 'aes256' },
          { usage: 'data-encryption', keyType: 'aes128' },
          { usage: 'data-encryption', keyType: 'aes256' },
        ]),
      );
      expect(toHex(r.ksn)).toBe(v256.ksn_verify[n - 1]);
      expect(r.keys.map(toHex)).toEqual([
        v256.pin_key_aes128_verify[n - 1],
        v256.pin_key_aes256_verify[n - 1],
        v256.cmac_aes128_key_verify[n - 1],
        v256.cmac_aes256_key_verify[n - 1],
        v256.data_aes128_key_verify[n - 1],
        v256.data_aes256_key_verify[n - 1],
      ]);
    }
  });
});

describe('counter roll-over and the end of the counter space', () => {
  it.each([
    ['aes128', v128],
    ['aes256', v256],
  ] as const)(
    '%s: from 0001FFFE the device goes to 00020000 then 00020001 (ksn_verify2 / txn_key_verify2)',
    (_n, v) => {
      const device = restore(hostDeviceState(v.bdk, v.ikid, 0x0001fffe));
      for (let i = 0; i < v.ksn_verify2.length; i++) {
        const ksn = device.currentKsn;
        expect(toHex(ksn ?? new Uint8Array())).toBe(v.ksn_verify2[i]);
        const counter = Number.parseInt((v.ksn_verify2[i] ?? '').slice(16), 16);
        expect(device.exportState().registers[Math.log2(counter & -counter)]).toBe(v.txn_key_verify2[i]);
        unwrap(device.nextTransaction([{ usage: 'pin-encryption' }]));
      }
    },
  );

  it.each([
    ['aes128', v128],
    ['aes256', v256],
  ] as const)(
    '%s: FFFE2000 .. FFFF0000 (ksn_verify3 / txn_key_verify3), then POS_ERR_KSN_EXHAUSTED',
    (_n, v) => {
      const device = restore(hostDeviceState(v.bdk, v.ikid, 0xfffe2000));
      for (let i = 0; i < v.ksn_verify3.length; i++) {
        expect(toHex(device.currentKsn ?? new Uint8Array())).toBe(v.ksn_verify3[i]);
        const counter = Number.parseInt((v.ksn_verify3[i] ?? '').slice(16), 16);
        expect(device.exportState().registers[Math.log2((counter & -counter) >>> 0)]).toBe(
          v.txn_key_verify3[i],
        );
        const r = unwrap(device.nextTransaction([{ usage: 'data-both' }]));
        expect(toHex(r.ksn)).toBe(v.ksn_verify3[i]);
      }
      expect(device.currentKsn).toBeUndefined();
      expect(code(device.nextTransaction([{ usage: 'pin-encryption' }]))).toBe('POS_ERR_KSN_EXHAUSTED');
      const state = device.exportState();
      expect(state.counter).toBe(2 ** 32);
      expect(state.registers.every((r) => r === null)).toBe(true);
      const restored = restore(state);
      expect(restored.currentKsn).toBeUndefined();
      expect(code(restored.nextTransaction([]))).toBe('POS_ERR_KSN_EXHAUSTED');
    },
  );

  it('device at 0xFFFF0000: one transaction, then POS_ERR_KSN_EXHAUSTED', () => {
    const device = restore(hostDeviceState(v128.bdk, v128.ikid, 0xffff0000));
    const r = unwrap(device.nextTransaction([{ usage: 'pin-encryption' }]));
    expect(toHex(r.ksn)).toBe(`${v128.ikid}FFFF0000`);
    expect(r.keys.map(toHex)).toEqual([hostKey(v128.bdk, v128.ikid, 0xffff0000, 'pin-encryption')]);
    expect(code(device.nextTransaction([{ usage: 'pin-encryption' }]))).toBe('POS_ERR_KSN_EXHAUSTED');
  });

  it('the first 600 counters of a fresh device are the valid counters in order, all distinct', () => {
    const device = load(v128.ik_verify, v128.ikid);
    let previous = 0;
    for (let i = 0; i < 600; i++) {
      const counter = Number.parseInt(toHex(unwrap(device.nextTransaction([])).ksn).slice(16), 16);
      expect(counter).toBe(previous + 1);
      previous = counter;
    }
  });
});

describe('device state properties', () => {
  const requestsArb = fc.array(
    fc.record({
      usage: fc.constantFrom(...DUKPT_KEY_USAGES),
      keyType: fc.constantFrom<AesDukptKeyType>('tdes2', 'tdes3', 'aes128', 'hmac128'),
    }),
    { minLength: 1, maxLength: 3 },
  );

  it('property: a device jumped to a random counter derives what the host derives, for a few transactions', () => {
    fc.assert(
      fc.property(aesCounter, fc.integer({ min: 1, max: 4 }), requestsArb, (start, steps, requests) => {
        const device = restore(hostDeviceState(v128.bdk, v128.ikid, start));
        for (let s = 0; s < steps; s++) {
          const ksn = device.currentKsn;
          if (ksn === undefined) return;
          const counter = Number.parseInt(toHex(ksn).slice(16), 16);
          expect(popcount(counter)).toBeLessThanOrEqual(16);
          const r = unwrap(device.nextTransaction(requests));
          expect(toHex(r.ksn)).toBe(toHex(ksn));
          const expected = requests.map((q) => hostKey(v128.bdk, v128.ikid, counter, q.usage, q.keyType));
          expect(r.keys.map(toHex)).toEqual(expected);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('property: the state after transactions equals the host-built state for the new counter', () => {
    fc.assert(
      fc.property(aesCounter, fc.integer({ min: 1, max: 3 }), (start, steps) => {
        const device = restore(hostDeviceState(v128.bdk, v128.ikid, start));
        for (let s = 0; s < steps && device.currentKsn !== undefined; s++) unwrap(device.nextTransaction([]));
        const state = device.exportState();
        if (state.counter === 2 ** 32) return;
        expect(state).toEqual(hostDeviceState(v128.bdk, v128.ikid, state.counter));
      }),
      { numRuns: 100 },
    );
  });

  it('property: exportState / restore (through JSON) round trip preserves behaviour', () => {
    fc.assert(
      fc.property(aesCounter, fc.integer({ min: 1, max: 3 }), (start, steps) => {
        const a = restore(hostDeviceState(v256.bdk, v256.ikid, start));
        const b = restore(JSON.parse(JSON.stringify(a.exportState())) as unknown);
        for (let s = 0; s < steps; s++) {
          const ra = a.nextTransaction([
            { usage: 'pin-encryption' },
            { usage: 'mac-both', keyType: 'hmac256' },
          ]);
          const rb = b.nextTransaction([
            { usage: 'pin-encryption' },
            { usage: 'mac-both', keyType: 'hmac256' },
          ]);
          expect(code(ra)).toBe(code(rb));
          if (ra.ok && rb.ok) {
            expect(toHex(ra.ksn)).toBe(toHex(rb.ksn));
            expect(ra.keys.map(toHex)).toEqual(rb.keys.map(toHex));
          }
          expect(a.exportState()).toEqual(b.exportState());
        }
      }),
      { numRuns: 100 },
    );
  });

  it('property: a counter never repeats and the used register is erased (write-ahead state never allows reuse)', () => {
    fc.assert(
      fc.property(aesCounter, (start) => {
        const device = restore(hostDeviceState(v128.bdk, v128.ikid, start));
        const before = device.currentKsn;
        if (before === undefined) return;
        const p = Math.log2((start & -start) >>> 0);
        unwrap(device.nextTransaction([{ usage: 'pin-encryption' }]));
        const state = device.exportState();
        expect(state.registers[p]).toBeNull();
        expect(state.counter).toBeGreaterThan(start);
        const again = restore(state);
        const next = again.currentKsn;
        if (next !== undefined) expect(toHex(next)).not.toBe(toHex(before));
      }),
      { numRuns: 100 },
    );
  });
});

describe('working-key strength', () => {
  const bdks = [
    ['aes128', 'FEDCBA9876543210F1F1F1F1F1F1F1F1', 128],
    ['aes192', 'FEDCBA9876543210F1F1F1F1F1F1F1F1FEDCBA9876543210', 192],
    ['aes256', v256.bdk, 256],
  ] as const;
  const strength: Record<AesDukptKeyType, number> = {
    tdes2: 80,
    tdes3: 112,
    aes128: 128,
    hmac128: 128,
    aes192: 192,
    hmac192: 192,
    aes256: 256,
    hmac256: 256,
  };
  const length: Record<AesDukptKeyType, number> = {
    tdes2: 16,
    tdes3: 24,
    aes128: 16,
    hmac128: 16,
    aes192: 24,
    hmac192: 24,
    aes256: 32,
    hmac256: 32,
  };
  const cases = bdks.flatMap(([name, bdk, bits]) =>
    AES_DUKPT_KEY_TYPES.map((t) => [name, t, bdk, bits] as const),
  );

  it.each(cases)(
    '%s BDK, %s working key: allowed only if not stronger (host and device agree)',
    (_n, type, bdk, bits) => {
      const ksn = aesKsn(v128.ikid, 5);
      const host = aesDukptWorkingKey({ bdk: hex(bdk), ksn, usage: 'mac-both', keyType: type });
      const ik = toHex(unwrap(aesDukptWorkingKey({ bdk: hex(bdk), ksn, usage: 'mac-both' })).key);
      expect(ik.length).toBe(bits / 4);
      const device = restore(hostDeviceState(bdk, v128.ikid, 5));
      const dev = device.nextTransaction([{ usage: 'mac-both', keyType: type }]);
      if (strength[type] <= bits) {
        expect(toHex(unwrap(host).key).length).toBe(length[type] * 2);
        expect(unwrap(dev).keys.map(toHex)).toEqual([toHex(unwrap(host).key)]);
      } else {
        expect(code(host)).toBe('POS_ERR_DUKPT_KEY_TOO_STRONG');
        expect(code(dev)).toBe('POS_ERR_DUKPT_KEY_TOO_STRONG');
        // A refused request does not use up the counter.
        expect(toHex(device.currentKsn ?? new Uint8Array())).toBe(`${v128.ikid}${counterHex(5)}`);
      }
    },
  );
});

describe('restore rejects corrupted states without throwing', () => {
  const good: AesDukptDeviceState = hostDeviceState(v128.bdk, v128.ikid, 0x00000006);
  const invalid = (state: unknown) => {
    let result: { ok: boolean; code?: string } | undefined;
    expect(() => {
      result = AesDukptDevice.restore(state);
    }).not.toThrow();
    return result === undefined ? 'threw' : code(result);
  };
  const withField = (field: string, value: unknown) => ({ ...good, [field]: value });
  const withRegister = (i: number, value: unknown) => ({
    ...good,
    registers: good.registers.map((r, j) => (j === i ? value : r)),
  });
  const present = good.registers.findIndex((r) => r !== null);
  const absent = good.registers.findIndex((r) => r === null);

  it('accepts the good state', () => {
    expect(invalid(good)).toBe('ok');
  });
  it.each([
    ['null', null],
    ['a string', 'state'],
    ['a number', 42],
    ['an array', [good]],
    ['wrong version', withField('version', 2)],
    ['unknown field', withField('extra', 1)],
    ['bad deriveKeyType', withField('deriveKeyType', 'tdes2')],
    ['initialKeyId not hex', withField('initialKeyId', 'XYZ4567890123456')],
    ['initialKeyId too short', withField('initialKeyId', '12345678')],
    ['counter 0', withField('counter', 0)],
    ['counter with 17 one-bits', withField('counter', 0x0001ffff)],
    ['counter above 2^32', withField('counter', 2 ** 33)],
    ['counter not an integer', withField('counter', 6.5)],
    ['counter as a string', withField('counter', '6')],
    ['31 registers', withField('registers', good.registers.slice(1))],
    ['33 registers', withField('registers', [...good.registers, null])],
    ['registers not an array', withField('registers', {})],
    ['bad hex in a register', withRegister(present, 'ZZ'.repeat(16))],
    ['a register of the wrong length', withRegister(present, '00'.repeat(32))],
    ['a register of the wrong type', withRegister(present, 7)],
    ['a register the counter needs is missing', withRegister(present, null)],
    ['a register the counter does not allow is present', withRegister(absent, '00'.repeat(16))],
    ['exhausted counter with a register left', withField('counter', 2 ** 32)],
  ] as const)('%s', (_name, state) => {
    expect(invalid(state)).toBe('POS_ERR_DUKPT_DEVICE_STATE_INVALID');
  });
  it('property: random junk and random mutations of a good state are refused, never thrown', () => {
    fc.assert(
      fc.property(fc.anything(), (junk) => {
        expect(invalid(junk)).not.toBe('threw');
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(
        fc.constantFrom('version', 'initialKeyId', 'deriveKeyType', 'counter', 'registers'),
        fc.anything(),
        (field, value) => {
          const result = invalid(withField(field, value));
          expect(result).not.toBe('threw');
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('device API checks', () => {
  it('load refuses a non-AES initial key and an IKID that is not 8 bytes', () => {
    expect(code(AesDukptDevice.load(new Uint8Array(8), hex(v128.ikid)))).toBe('POS_ERR_KEY_LENGTH');
    expect(code(AesDukptDevice.load(hex(v128.ik_verify), new Uint8Array(4)))).toBe('POS_ERR_LENGTH');
  });
  it('load does not modify the caller initial key; the device state holds no copy of it', () => {
    const ik = hex(v128.ik_verify);
    const device = load(v128.ik_verify, v128.ikid);
    expect(toHex(ik)).toBe(v128.ik_verify);
    expect(JSON.stringify(device.exportState())).not.toContain(v128.ik_verify);
    expect(device.exportState().registers.every((r) => r !== null)).toBe(true);
  });
  it('a bad request returns an error and leaves the counter unchanged', () => {
    const device = load(v128.ik_verify, v128.ikid);
    const usage = 'pin' as unknown as DukptKeyUsage;
    const keyType = 'des' as unknown as AesDukptKeyType;
    expect(code(device.nextTransaction([{ usage }]))).toBe('POS_ERR_DUKPT_KEY_USAGE_UNKNOWN');
    expect(code(device.nextTransaction([{ usage: 'pin-encryption', keyType }]))).toBe(
      'POS_ERR_DUKPT_KEY_TYPE_UNKNOWN',
    );
    expect(code(device.nextTransaction([{ usage: 'pin-encryption', keyType: 'aes192' }]))).toBe(
      'POS_ERR_DUKPT_KEY_TOO_STRONG',
    );
    expect(toHex(device.currentKsn ?? new Uint8Array())).toBe(v128.ksn_verify[0]);
  });
  it('wipe() erases every register and exhausts the device', () => {
    const device = load(v128.ik_verify, v128.ikid);
    device.wipe();
    expect(device.currentKsn).toBeUndefined();
    expect(device.exportState().registers.every((r) => r === null)).toBe(true);
    expect(code(device.nextTransaction([]))).toBe('POS_ERR_KSN_EXHAUSTED');
  });
  it('zeroing a returned key does not touch the device state', () => {
    const device = load(v128.ik_verify, v128.ikid);
    const r = unwrap(device.nextTransaction([{ usage: 'pin-encryption' }]));
    r.keys[0]?.fill(0);
    const again = restore(hostDeviceState(v128.bdk, v128.ikid, 2));
    expect(again.exportState()).toEqual(device.exportState());
  });
});

describe('work per transaction (counted AES block encryptions, no timing)', () => {
  it('AES-128 device: a transaction costs one block per AES-128 key plus at most 31 register derivations', () => {
    const device = load(v128.ik_verify, v128.ikid);
    for (let i = 0; i < 300; i++) {
      const ksn = device.currentKsn;
      if (ksn === undefined) break;
      const counter = Number.parseInt(toHex(ksn).slice(16), 16);
      const p = Math.log2((counter & -counter) >>> 0);
      const before = aesDukptBlockCounter.count;
      unwrap(device.nextTransaction([{ usage: 'pin-encryption' }, { usage: 'mac-generation' }]));
      const cost = aesDukptBlockCounter.count - before;
      expect(cost).toBe(2 + (popcount(counter) < 16 ? p : 0));
      expect(cost).toBeLessThanOrEqual(2 + 31);
    }
  });
  it('property: the cost is bounded at any counter, including 16-bit counters (no future keys)', () => {
    fc.assert(
      fc.property(aesCounter, (counter) => {
        const device = restore(hostDeviceState(v128.bdk, v128.ikid, counter));
        const before = aesDukptBlockCounter.count;
        unwrap(device.nextTransaction([{ usage: 'pin-encryption' }]));
        const cost = aesDukptBlockCounter.count - before;
        const p = Math.log2((counter & -counter) >>> 0);
        expect(cost).toBe(1 + (popcount(counter) < 16 ? p : 0));
        expect(cost).toBeLessThanOrEqual(32);
      }),
      { numRuns: 100 },
    );
  });
  it('loading costs 32 derivations (one per register)', () => {
    const before = aesDukptBlockCounter.count;
    load(v128.ik_verify, v128.ikid);
    expect(aesDukptBlockCounter.count - before).toBe(32);
  });
});

describe('restore with hostile input', () => {
  it('a state whose getter throws is refused, not thrown', () => {
    const state = {
      get version(): number {
        throw new Error('boom');
      },
    };
    expect(code(AesDukptDevice.restore(state))).toBe('POS_ERR_DUKPT_DEVICE_STATE_INVALID');
  });
});
