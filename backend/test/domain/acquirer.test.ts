/**
 * The acquirer host with PIN blocks and card data made the way the reader makes them: an AES DUKPT
 * device (shared/) loaded from the development BDK, format 4 PIN blocks and encrypted card records.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AesDukptDevice,
  DEV_BDK_HEX,
  DEV_BDK_ID_HEX,
  TEST_CARDS,
  aesDukptInitialKey,
  encodePinBlock,
  encryptCardData,
  hex,
  pinDigitsFromText,
  wipe,
  type CardRecord as TestCardRecord,
  type Pan,
  type TestCard,
} from '@pos/shared';
import {
  CARD_DATA_DECLINE,
  MemoryVelocityStore,
  VelocityRulesSchema,
  createAcquirerHost,
  developmentBdks,
  type AuthorizationRequest,
  type AuthorizationResult,
  type VelocityRules,
} from '../../src/acquirer/index';

const NOW = Date.UTC(2027, 0, 15, 12, 0, 0);

function newDevice(deviceId = '00000001'): AesDukptDevice {
  const ikid = hex(`${DEV_BDK_ID_HEX}${deviceId}`);
  const ik = aesDukptInitialKey(hex(DEV_BDK_HEX), ikid);
  if (!ik.ok) throw new Error(ik.code);
  const loaded = AesDukptDevice.load(ik.key, ikid);
  wipe(ik.key);
  if (!loaded.ok) throw new Error(loaded.code);
  return loaded.device;
}

function card(name: string): TestCard {
  const c = TEST_CARDS.find((x) => x.name === name);
  if (c === undefined) throw new Error(name);
  return c;
}

/** What the reader does: next KSN, data and PIN keys, encrypted card record, format 4 PIN block. */
function readerTransaction(
  device: AesDukptDevice,
  c: TestCard,
  pin: string | undefined,
  over: Partial<AuthorizationRequest> = {},
): AuthorizationRequest {
  const next = device.nextTransaction([
    { usage: 'data-encryption', keyType: 'aes128' },
    { usage: 'pin-encryption', keyType: 'aes128' },
  ]);
  if (!next.ok) throw new Error(next.code);
  const [dataKey, pinKey] = next.keys as [Uint8Array, Uint8Array];
  const cardData = encryptCardData(
    dataKey,
    {
      pan: c.pan,
      exp: c.expiry,
      ...(c.psn === undefined ? {} : { psn: c.psn }),
    },
    next.ksn,
  );
  let pinBlock: Uint8Array | undefined;
  if (pin !== undefined) {
    const digits = pinDigitsFromText(pin);
    if (!digits.ok) throw new Error(digits.code);
    const block = encodePinBlock({ format: 4, pin: digits.pin, pan: c.pan as Pan, key: pinKey });
    wipe(digits.pin);
    if (!block.ok) throw new Error(block.code);
    pinBlock = block.block;
  }
  wipe(dataKey, pinKey);
  return {
    terminalId: 'term_A',
    amount: 1234,
    currency: 'EUR',
    ksn: next.ksn,
    cardData,
    ...(pinBlock === undefined ? {} : { pinBlock }),
    now: NOW,
    ...over,
  };
}

function host(rules?: VelocityRules) {
  return createAcquirerHost({
    bdks: developmentBdks(),
    velocity: new MemoryVelocityStore(),
    ...(rules === undefined ? {} : { rules }),
    tokenKey: new Uint8Array(32).fill(1),
  });
}

describe('PIN verification with the shared DUKPT code', () => {
  it.each(['visa-pin', 'mastercard-pin', 'mastercard-debit-pin', 'amex-pin'])(
    '%s approves with the right PIN',
    async (name) => {
      const c = card(name);
      const r = await host().authorize(readerTransaction(newDevice(), c, c.pin));
      expect(r).toMatchObject({ approved: true });
      if (r.approved) {
        expect(r.authCode).toMatch(/^[0-9]{6}$/);
        expect(r.cardToken).toMatch(/^ct_[A-Za-z0-9_-]{22}$/);
        expect(r.cardToken).not.toContain(c.pan);
      }
    },
  );

  it.each(['visa-pin', 'mastercard-pin', 'amex-pin'])('%s declines a wrong PIN', async (name) => {
    const r = await host().authorize(readerTransaction(newDevice(), card(name), '9999'));
    expect(r).toMatchObject({ approved: false, code: 'POS_ERR_ACQ_PIN_WRONG' });
  });

  it('works across many KSNs of one device', async () => {
    const device = newDevice('00000042');
    const h = host();
    const c = card('visa-pin');
    for (let i = 0; i < 5; i++) {
      expect((await h.authorize(readerTransaction(device, c, c.pin))).approved).toBe(true);
    }
  });

  it('a PIN block for another card (PAN) does not pass', async () => {
    const device = newDevice();
    const visa = card('visa-pin');
    const mc = card('mastercard-pin');
    const req = readerTransaction(device, visa, visa.pin);
    const other = readerTransaction(device, mc, visa.pin); // PIN block bound to the MC PAN under the next KSN
    const r = await host().authorize({
      ...req,
      ...(other.pinBlock === undefined ? {} : { pinBlock: other.pinBlock }),
    });
    expect(r.approved).toBe(false);
  });

  it('no PAN or PIN in any result', async () => {
    const c = card('visa-pin');
    const results = [
      await host().authorize(readerTransaction(newDevice(), c, c.pin)),
      await host().authorize(readerTransaction(newDevice(), c, '0000')),
    ];
    const text = JSON.stringify(results);
    expect(text).not.toContain(c.pan);
    expect(text).not.toContain(c.pan.slice(-8));
  });
});

describe('declines with a reason', () => {
  it('issuer declines: do not honour, insufficient funds', async () => {
    for (const name of ['visa-declined', 'visa-insufficient-funds']) {
      const c = card(name);
      const r = await host().authorize(readerTransaction(newDevice(), c, c.pin));
      expect(r).toMatchObject({ approved: false, code: 'POS_ERR_ACQ_DECLINED' });
      if (!r.approved) expect(r.reason).toMatch(/declined/);
    }
  });
  it('an expired card', async () => {
    const c = card('visa-expired');
    expect(await host().authorize(readerTransaction(newDevice(), c, c.pin))).toMatchObject({
      approved: false,
      code: 'POS_ERR_ACQ_CARD_EXPIRED',
    });
  });
  it('a card needing no PIN is approved without one', async () => {
    expect(
      (await host().authorize(readerTransaction(newDevice(), card('visa-no-pin'), undefined))).approved,
    ).toBe(true);
  });
  it('an online-PIN card without a PIN block', async () => {
    expect(await host().authorize(readerTransaction(newDevice(), card('visa-pin'), undefined))).toMatchObject(
      {
        approved: false,
        code: 'POS_ERR_ACQ_PIN_REQUIRED',
      },
    );
  });
  it('a card the issuer does not know: the same answer as card data that does not decrypt', async () => {
    const unknown: TestCard = { ...card('visa-pin'), pan: '4999999999999996' };
    const r = await host().authorize(readerTransaction(newDevice(), unknown, '1234'));
    expect(r).toEqual({ approved: false, ...CARD_DATA_DECLINE, internal: 'card-unknown' });
  });
  it('every card-data failure gets one code and reason, no card token, no PAN (no oracle)', async () => {
    const device = newDevice();
    const good = readerTransaction(device, card('visa-pin'), '1234');
    const other = readerTransaction(device, card('visa-pin'), '1234');
    const flip = (b: Uint8Array, i: number): Uint8Array => {
      const c = new Uint8Array(b);
      c[i] = (c[i] ?? 0) ^ 0x01;
      return c;
    };
    const bad: AuthorizationRequest[] = [
      // Moved to another KSN of the same reader.
      { ...good, cardData: other.cardData },
      { ...good, ksn: other.ksn },
      // Any bit of the IV, the ciphertext or the tag.
      { ...good, cardData: { iv: flip(good.cardData.iv, 0), ct: good.cardData.ct } },
      { ...good, cardData: { iv: good.cardData.iv, ct: flip(good.cardData.ct, 0) } },
      {
        ...good,
        cardData: { iv: good.cardData.iv, ct: flip(good.cardData.ct, good.cardData.ct.length - 1) },
      },
      // Wrong sizes: an old-format 16-byte IV, a truncated record.
      { ...good, cardData: { iv: new Uint8Array(16), ct: good.cardData.ct } },
      { ...good, cardData: { iv: good.cardData.iv, ct: good.cardData.ct.subarray(0, 10) } },
      // Authentic, but a record that is not a card record.
      malformedRecord(newDevice()),
      // Authentic, but a card the issuer does not know.
      readerTransaction(newDevice(), { ...card('visa-pin'), pan: '4999999999999996' }, '1234'),
    ];
    const answers = [];
    for (const req of bad) {
      const r = await host().authorize(req);
      expect(r).toMatchObject({ approved: false, ...CARD_DATA_DECLINE });
      expect(r).not.toHaveProperty('cardToken');
      expect(JSON.stringify(r)).not.toMatch(/4[0-9]{11,18}/);
      const { internal: _internal, ...visible } = r as AuthorizationResult & { internal?: string };
      answers.push(JSON.stringify(visible));
    }
    expect(new Set(answers).size).toBe(1);
    expect((await host().authorize(good)).approved).toBe(true);
  });
  it('a BDK the host does not hold', async () => {
    const req = readerTransaction(newDevice(), card('visa-pin'), '1234');
    const ksn = new Uint8Array(req.ksn);
    ksn[0] = 0x99;
    expect(await host().authorize({ ...req, ksn })).toMatchObject({
      approved: false,
      code: 'POS_ERR_ACQ_BDK_UNKNOWN',
    });
  });
  it('a malformed KSN', async () => {
    const req = readerTransaction(newDevice(), card('visa-pin'), '1234');
    expect(await host().authorize({ ...req, ksn: new Uint8Array(5) })).toMatchObject({
      approved: false,
      code: 'POS_ERR_ACQ_KSN_INVALID',
    });
  });
  it('card data under another KSN does not authenticate', async () => {
    const device = newDevice();
    const a = readerTransaction(device, card('visa-pin'), '1234');
    const b = readerTransaction(device, card('visa-pin'), '1234');
    expect(await host().authorize({ ...a, cardData: b.cardData })).toMatchObject({
      approved: false,
      code: 'POS_ERR_ACQ_CARD_DATA',
    });
  });
  it('a corrupted PIN block', async () => {
    const req = readerTransaction(newDevice(), card('visa-pin'), '1234');
    const block = new Uint8Array(req.pinBlock ?? new Uint8Array(16));
    block[3] = (block[3] ?? 0) ^ 0xff;
    const r = await host().authorize({ ...req, pinBlock: block });
    expect(r.approved).toBe(false);
    if (!r.approved) expect(['POS_ERR_ACQ_PIN_BLOCK_INVALID', 'POS_ERR_ACQ_PIN_WRONG']).toContain(r.code);
  });
  it.each([
    ['amount 0', { amount: 0 }],
    ['negative amount', { amount: -5 }],
    ['fractional amount', { amount: 1.5 }],
    ['bad currency', { currency: 'eur' }],
  ])('%s is refused', async (_n, over) => {
    const req = readerTransaction(newDevice(), card('visa-pin'), '1234', over);
    expect(await host().authorize(req)).toMatchObject({
      approved: false,
      code: 'POS_ERR_ACQ_REQUEST_INVALID',
    });
  });
});

describe('velocity', () => {
  const rules: VelocityRules = {
    wrongPin: { windowMs: 3_600_000, warnAt: 2, haltAt: 3 },
    terminalRate: { windowMs: 60_000, warnAt: 3, haltAt: 5 },
    cardTerminals: { windowMs: 3_600_000, warnAt: 2, haltAt: 3 },
  };

  it('wrong-PIN tries per card: warn, then halt, then the card is refused even with the right PIN', async () => {
    const h = host(rules);
    const device = newDevice();
    const c = card('visa-pin');
    const t = (pin: string, i: number) =>
      h.authorize(readerTransaction(device, c, pin, { now: NOW + i * 1000 }));
    expect(await t('0000', 0)).toMatchObject({ approved: false, code: 'POS_ERR_ACQ_PIN_WRONG' });
    expect(await t('0000', 1)).toMatchObject({
      code: 'POS_ERR_ACQ_PIN_WRONG',
      velocity: { action: 'warn', rule: 'wrongPin' },
    });
    expect(await t('0000', 2)).toMatchObject({
      code: 'POS_ERR_ACQ_PIN_WRONG',
      velocity: { action: 'halt', rule: 'wrongPin' },
    });
    expect(await t(c.pin, 3)).toMatchObject({
      approved: false,
      code: 'POS_ERR_ACQ_PIN_TRIES_EXCEEDED',
      velocity: { action: 'halt', rule: 'wrongPin' },
    });
  });

  it('a right PIN clears the wrong-PIN count', async () => {
    const h = host(rules);
    const device = newDevice();
    const c = card('visa-pin');
    await h.authorize(readerTransaction(device, c, '0000'));
    await h.authorize(readerTransaction(device, c, '0000', { now: NOW + 1 }));
    expect((await h.authorize(readerTransaction(device, c, c.pin, { now: NOW + 2 }))).approved).toBe(true);
    expect(await h.authorize(readerTransaction(device, c, '0000', { now: NOW + 3 }))).not.toHaveProperty(
      'velocity',
    );
  });

  it('the wrong-PIN window expires', async () => {
    const h = host(rules);
    const device = newDevice();
    const c = card('visa-pin');
    for (let i = 0; i < 3; i++) await h.authorize(readerTransaction(device, c, '0000', { now: NOW + i }));
    expect((await h.authorize(readerTransaction(device, c, c.pin, { now: NOW + 3_600_001 }))).approved).toBe(
      true,
    );
  });

  it('transactions per terminal per minute: warn, then halt; another minute is fine', async () => {
    const h = host(rules);
    const device = newDevice();
    const c = card('visa-pin');
    const results = [];
    for (let i = 0; i < 5; i++)
      results.push(await h.authorize(readerTransaction(device, c, c.pin, { now: NOW + i * 1000 })));
    expect(results.slice(0, 2).every((r) => r.approved && r.velocity === undefined)).toBe(true);
    expect(results[2]).toMatchObject({ approved: true, velocity: { action: 'warn', rule: 'terminalRate' } });
    expect(results[4]).toMatchObject({
      approved: false,
      code: 'POS_ERR_ACQ_VELOCITY',
      velocity: { action: 'halt', rule: 'terminalRate' },
    });
    expect((await h.authorize(readerTransaction(device, c, c.pin, { now: NOW + 120_000 }))).approved).toBe(
      true,
    );
  });

  it('one card tried on many terminals: warn, then halt', async () => {
    const h = host(rules);
    const device = newDevice();
    const c = card('visa-pin');
    const on = (terminalId: string) => h.authorize(readerTransaction(device, c, c.pin, { terminalId }));
    expect(await on('t1')).toMatchObject({ approved: true });
    expect(await on('t2')).toMatchObject({
      approved: true,
      velocity: { action: 'warn', rule: 'cardTerminals' },
    });
    expect(await on('t3')).toMatchObject({
      approved: false,
      code: 'POS_ERR_ACQ_VELOCITY',
      velocity: { action: 'halt', rule: 'cardTerminals' },
    });
  });

  it('rules are data with a schema', () => {
    expect(VelocityRulesSchema.safeParse(rules).success).toBe(true);
    expect(
      VelocityRulesSchema.safeParse({ ...rules, wrongPin: { windowMs: 1000, warnAt: 5, haltAt: 2 } }).success,
    ).toBe(false);
    expect(VelocityRulesSchema.safeParse({ ...rules, extra: 1 }).success).toBe(false);
  });

  it('MemoryVelocityStore counts within the window', () => {
    const s = new MemoryVelocityStore();
    expect(s.hit('c', 'k', 1000, 100)).toBe(1);
    expect(s.hit('c', 'k', 1050, 100)).toBe(2);
    expect(s.count('c', 'k', 1120, 100)).toBe(1);
    expect(s.hit('c', 'k', 1200, 100)).toBe(1);
    s.reset('c', 'k');
    expect(s.count('c', 'k', 1200, 100)).toBe(0);
    expect(s.addDistinct('d', 'card', 't1', 0, 100)).toBe(1);
    expect(s.addDistinct('d', 'card', 't1', 10, 100)).toBe(1);
    expect(s.addDistinct('d', 'card', 't2', 20, 100)).toBe(2);
    expect(s.addDistinct('d', 'card', 't3', 115, 100)).toBe(2);
  });
});

describe('the host fails closed', () => {
  it('a velocity store that throws declines, never approves', async () => {
    const h = createAcquirerHost({
      bdks: developmentBdks(),
      velocity: {
        hit: () => {
          throw new Error('db down');
        },
        count: () => 0,
        reset: () => undefined,
        addDistinct: () => 1,
      },
    });
    const c = card('visa-pin');
    expect(await h.authorize(readerTransaction(newDevice(), c, c.pin))).toMatchObject({
      approved: false,
      code: 'POS_ERR_ACQ_INTERNAL',
    });
  });
});

describe('PIN check (property)', () => {
  it('any PIN of 4 to 12 digits approves when right and declines when any digit differs', async () => {
    const digits = fc.stringMatching(/^[0-9]{4,12}$/);
    await fc.assert(
      fc.asyncProperty(digits, fc.nat(), fc.integer({ min: 1, max: 9 }), async (pin, at, delta) => {
        const c = card('visa-pin');
        const issuer = {
          lookup: (pan: string) =>
            pan === c.pan ? { pin, expiry: c.expiry, onlinePin: true, outcome: c.issuer } : undefined,
        };
        const h = createAcquirerHost({
          bdks: developmentBdks(),
          velocity: new MemoryVelocityStore(),
          issuer,
        });
        const device = newDevice();
        expect((await h.authorize(readerTransaction(device, c, pin))).approved).toBe(true);
        const i = at % pin.length;
        const wrong = pin.slice(0, i) + String((Number(pin[i]) + delta) % 10) + pin.slice(i + 1);
        expect(await h.authorize(readerTransaction(device, c, wrong))).toMatchObject({
          approved: false,
          code: 'POS_ERR_ACQ_PIN_WRONG',
        });
      }),
      { numRuns: 40 },
    );
  });
});

/** Card data that authenticates under the data key of its KSN but holds no valid card record. */
function malformedRecord(device: AesDukptDevice): AuthorizationRequest {
  const next = device.nextTransaction([{ usage: 'data-encryption', keyType: 'aes128' }]);
  if (!next.ok) throw new Error(next.code);
  const [dataKey] = next.keys as [Uint8Array];
  const record = { pan: 'not a pan', exp: '9999' } as unknown as TestCardRecord;
  const cardData = encryptCardData(dataKey, record, next.ksn);
  wipe(dataKey);
  return {
    terminalId: 'term_A',
    amount: 1234,
    currency: 'EUR',
    ksn: next.ksn,
    cardData,
    now: NOW,
  };
}
