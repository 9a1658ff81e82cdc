/**
 * API6:2023 Unrestricted Access to Sensitive Business Flows, against the real back-end on a loopback
 * socket: the flows an attacker automates are enrolling rogue terminals (guessing or replaying
 * enrollment codes), card testing (many cards on one terminal, one card on many terminals) and PIN
 * guessing. Each is bounded: enough code entropy, single use, expiry, rate limit and audit; the
 * acquirer's velocity rules warn and then decline and halt the terminal; wrong PIN tries per card
 * block the card and halt the terminal. Transactions carry real DUKPT card data and format 4 PIN
 * blocks (backend/test/fleet-helpers.ts's readerOutput, as backend/test/server/transactions.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  aesDukptWorkingKey,
  encryptCardData,
  hex,
  parseAesKsn,
  parseBase64url,
  toBase64url,
  toHex,
  unwrap,
  wipe,
} from '@pos/shared';
import { DEV_BDK_HEX } from '@pos/shared/testcards';
import { DEFAULT_VELOCITY_RULES } from '../../backend/src/acquirer/velocity';
import { auditOf, pinTicket, readerOutput } from '../../backend/test/fleet-helpers';
import {
  describeRes,
  SimTerminal,
  startSecurityHarness,
  type Res,
  type SecurityHarness,
  type TenantName,
} from './harness';

/** Card data for any card number (one the issuer does not know: a card tester's guess), no PIN. */
let guessKsn = 1;
function guessedCard(pan: string): Record<string, unknown> {
  // Its own derivation ID, so these KSNs never meet readerOutput's (the KSN replay guard is per ID).
  const ksnBytes = hex(`12345678ABCDEF01${(guessKsn++).toString(16).padStart(8, '0')}`);
  const ksn = unwrap(parseAesKsn(ksnBytes)).ksn;
  const dataKey = unwrap(
    aesDukptWorkingKey({ bdk: hex(DEV_BDK_HEX), ksn, usage: 'data-encryption', keyType: 'aes128' }),
  ).key;
  const cardData = encryptCardData(dataKey, { pan, exp: '3012' }, ksn);
  wipe(dataKey);
  return {
    amount: 100,
    currency: 'EUR',
    ksn: toHex(ksnBytes),
    cardData: { iv: toBase64url(cardData.iv), ct: toBase64url(cardData.ct) },
  };
}

/** A Luhn-valid 16-digit number starting 4 (what a card-testing script enumerates). */
function guessedPan(i: number): string {
  const body = `4000${String(100_000_000 + i * 7919).padStart(11, '0')}`;
  let sum = 0;
  for (let k = 0; k < body.length; k++) {
    let d = Number(body[body.length - 1 - k]);
    if (k % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return `${body}${(10 - (sum % 10)) % 10}`;
}

interface TxnOut {
  approved?: boolean;
  code?: string;
  halted?: boolean;
}
const txn = (res: Res): TxnOut => res.json ?? {};

async function velocityAlerts(sec: SecurityHarness, rule: string, action: string): Promise<number> {
  const text = (await sec.request('GET', '/metrics')).text;
  const m = new RegExp(`pos_velocity_alerts_total\\{rule="${rule}",action="${action}"\\} (\\d+)`).exec(text);
  return Number(m?.[1] ?? 0);
}

describe('API6:2023 Unrestricted Access to Sensitive Business Flows: enrolling rogue terminals', () => {
  let sec: SecurityHarness;
  const LIMIT = 60;
  beforeAll(async () => {
    sec = await startSecurityHarness({ config: { rateLimitPerMinute: LIMIT, trustProxy: true } });
  });
  afterAll(async () => {
    await sec.close();
  });

  // The operator's own calls come from addresses of their own, so they never spend a test's budget.
  let operatorAddress = 0;
  const operator = (): Record<string, string> => ({
    'x-forwarded-for': `192.0.2.${(operatorAddress++ % 250) + 1}`,
  });

  async function newCode(tenant: TenantName, body: unknown = {}): Promise<string> {
    const res = await sec.request(
      'POST',
      `/v1/merchants/${sec.tenants[tenant].merchantId}/enrollment-codes`,
      {
        as: 'admin',
        body,
        headers: operator(),
      },
    );
    const code = (res.json as { code?: string }).code;
    if (code === undefined) throw new Error(describeRes(res));
    return code;
  }

  /** One enrollment attempt over HTTP by a fresh device (its own key and reader serial). */
  async function tryEnroll(
    code: string,
    headers: Record<string, string> = {},
  ): Promise<{ res: Res; device: SimTerminal }> {
    const device = new SimTerminal(sec.h);
    device.readerSerial = `RDR-${randomBytes(6).toString('hex')}`;
    const c = await sec.request('POST', '/v1/challenges', { body: {}, headers });
    const challenge = (c.json as { challenge?: string }).challenge;
    if (challenge === undefined) return { res: c, device };
    const res = await sec.request('POST', '/v1/enrollments', {
      body: {
        code,
        deviceJwk: device.jwk,
        readerSerial: device.readerSerial,
        evidence: device.evidence(challenge, 'enrollment'),
      },
      headers,
    });
    return { res, device };
  }

  it('enrollment codes carry 128 random bits and are stored only as a hash', async () => {
    const codes = await Promise.all(Array.from({ length: 64 }, () => newCode('A')));
    expect(new Set(codes).size).toBe(codes.length);
    const ones = new Array<number>(128).fill(0);
    for (const code of codes) {
      expect(code).toMatch(/^pos_enr_[A-Za-z0-9_-]{22}$/);
      const bytes = parseBase64url(code.slice('pos_enr_'.length));
      if (!bytes.ok) throw new Error('not base64url');
      expect(bytes.bytes.length).toBe(16);
      for (let bit = 0; bit < 128; bit++) {
        if (((bytes.bytes[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) ones[bit] = (ones[bit] ?? 0) + 1;
      }
    }
    // Every one of the 128 bit positions varies (a counter, a timestamp or a short code would not):
    // for random bits, a position set in none or all of 64 codes has probability 2^-63.
    for (const n of ones) {
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThan(codes.length);
    }
    // The store never holds a code in the clear: not in the audit chain, not in the database files.
    const dump = JSON.stringify(await sec.h.store.listAudit(0, 100_000));
    const files = readdirSync(sec.dataDir).map((f) => readFileSync(join(sec.dataDir, f)).toString('latin1'));
    for (const code of codes) {
      expect(dump).not.toContain(code);
      for (const file of files) expect(file.includes(code.slice('pos_enr_'.length))).toBe(false);
    }
  });

  it('a guessed code is refused (400) and audited without the guess; guessing is cut off by the rate limit', async () => {
    const attacker = { 'x-forwarded-for': '198.51.100.7' };
    const before = (await auditOf(sec.h, 'enrollment.refused')).length;
    let refused = 0;
    let limited: Res | undefined;
    for (let i = 0; i < LIMIT; i++) {
      const guess = `pos_enr_${toBase64url(randomBytes(16))}`;
      const { res } = await tryEnroll(guess, attacker);
      if (res.status === 429) {
        limited = res;
        break;
      }
      expect(res.status, describeRes(res)).toBe(400);
      expect(res.code).toBe('POS_ERR_ENROLLMENT_CODE_INVALID');
      refused++;
    }
    // Two requests per guess (challenge, enrollment): at most LIMIT/2 guesses a minute per address.
    expect(refused).toBe(LIMIT / 2);
    expect(limited?.code).toBe('POS_ERR_RATE_LIMITED');
    expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThan(0);
    const audited = (await auditOf(sec.h, 'enrollment.refused')).slice(before);
    expect(audited).toHaveLength(refused);
    for (const entry of audited) {
      expect(entry.data).toMatchObject({ refusal: 'code' });
      expect(JSON.stringify(entry)).not.toMatch(/pos_enr_/);
    }
    // No terminal was created by the guesses.
    const terminals = (
      await sec.request('GET', '/v1/terminals?limit=500', { as: 'admin', headers: operator() })
    ).json as {
      terminals: unknown[];
    };
    expect(terminals.terminals).toHaveLength(2);
  });

  it('a real code enrolls once: replaying it (another device) is refused and audited', async () => {
    const code = await newCode('B');
    const first = await tryEnroll(code, { 'x-forwarded-for': '198.51.100.20' });
    expect(first.res.status, describeRes(first.res)).toBe(201);
    const again = await tryEnroll(code, { 'x-forwarded-for': '198.51.100.21' });
    expect(again.res.status).toBe(400);
    expect(again.res.code).toBe('POS_ERR_ENROLLMENT_CODE_INVALID');
    const last = (await auditOf(sec.h, 'enrollment.refused')).at(-1);
    expect(last?.subject).toBe(again.device.jkt);
  });

  it('an expired code is refused', async () => {
    const code = await newCode('A', { ttlS: 60 });
    sec.h.clock.t += 61_000;
    try {
      const { res } = await tryEnroll(code, { 'x-forwarded-for': '198.51.100.30' });
      expect(res.status).toBe(400);
      expect(res.code).toBe('POS_ERR_ENROLLMENT_CODE_INVALID');
    } finally {
      sec.h.clock.t -= 61_000;
    }
  });
});

describe('API6:2023 Unrestricted Access to Sensitive Business Flows: card testing and PIN guessing', () => {
  let sec: SecurityHarness;
  beforeAll(async () => {
    sec = await startSecurityHarness();
  });
  afterAll(async () => {
    await sec.close();
  });

  const pay = (t: SimTerminal, body: Record<string, unknown>, ticket: string): Promise<Res> =>
    sec.terminal(t, 'POST', '/v1/transactions', body, { ticket });

  it('the velocity rules are on by default', () => {
    expect(DEFAULT_VELOCITY_RULES.terminalRate.haltAt).toBeDefined();
    expect(DEFAULT_VELOCITY_RULES.cardTerminals.haltAt).toBeDefined();
    expect(DEFAULT_VELOCITY_RULES.wrongPin.haltAt).toBeDefined();
  });

  it('many cards on one terminal: the rate rule warns, then declines and halts the terminal', async () => {
    const rule = DEFAULT_VELOCITY_RULES.terminalRate;
    const warnAt = rule.warnAt ?? 0;
    const haltAt = rule.haltAt ?? 0;
    const t = await sec.enroll('A');
    const ticket = await sec.ticket(t);
    const answers: TxnOut[] = [];
    for (let i = 1; i <= haltAt; i++) {
      // Guessed numbers, with a real card now and then: the count holds whatever the issuer says.
      const body = i % 10 === 0 ? readerOutput('visa-no-pin', undefined) : guessedCard(guessedPan(i));
      const res = await pay(t, body, ticket);
      expect(res.status, `${i}: ${describeRes(res)}`).toBe(200);
      answers.push(txn(res));
      if (i === warnAt - 1) expect(await velocityAlerts(sec, 'terminalRate', 'warn')).toBe(0);
      if (i === warnAt) expect(await velocityAlerts(sec, 'terminalRate', 'warn')).toBe(1);
    }
    // Guessed numbers are declined with one code whatever is wrong (no oracle for the tester).
    const guessed = answers.filter((_, i) => (i + 1) % 10 !== 0 && i + 1 < haltAt);
    expect(new Set(guessed.map((a) => a.code))).toEqual(new Set(['POS_ERR_ACQ_CARD_DATA']));
    const last = answers.at(-1);
    expect(last).toMatchObject({ approved: false, code: 'POS_ERR_ACQ_VELOCITY', halted: true });
    expect((await sec.h.store.getTerminal(t.id))?.state).toBe('halted');
    // A halted terminal's ticket buys nothing more.
    const after = await pay(t, readerOutput('visa-no-pin', undefined), ticket);
    expect(after.status).toBe(403);
    expect(after.code).toBe('POS_ERR_TERMINAL_HALTED');
    const halts = await auditOf(sec.h, 'terminal.halt');
    expect(JSON.stringify(halts.filter((e) => e.subject === t.id))).toContain('velocity');
  });

  it('one card on many terminals: the spread rule warns, then declines and halts', async () => {
    const rule = DEFAULT_VELOCITY_RULES.cardTerminals;
    const haltAt = rule.haltAt ?? 0;
    const out: TxnOut[] = [];
    const terminals: SimTerminal[] = [];
    for (let i = 1; i <= haltAt; i++) {
      const t = await sec.enroll('B');
      terminals.push(t);
      // A card no other test here uses, with its right PIN.
      const res = await pay(t, readerOutput('mastercard-debit-pin', '246810'), await pinTicket(t));
      expect(res.status, describeRes(res)).toBe(200);
      out.push(txn(res));
    }
    expect(await velocityAlerts(sec, 'cardTerminals', 'warn')).toBeGreaterThan(0);
    expect(out.slice(0, haltAt - 1).every((o) => o.approved === true)).toBe(true);
    expect(out.at(-1)).toMatchObject({ approved: false, code: 'POS_ERR_ACQ_VELOCITY', halted: true });
    const lastTerminal = terminals.at(-1);
    expect(lastTerminal && (await sec.h.store.getTerminal(lastTerminal.id))?.state).toBe('halted');
  });

  it('PIN guessing: wrong PINs on one card block it and halt the terminal; the card stays blocked elsewhere', async () => {
    const haltAt = DEFAULT_VELOCITY_RULES.wrongPin.haltAt ?? 0;
    const t = await sec.enroll('A');
    const answers: TxnOut[] = [];
    for (let i = 0; i < haltAt; i++) {
      // A real format 4 PIN block under the reader's DUKPT PIN key, with a wrong PIN.
      const res = await pay(t, readerOutput('mastercard-pin', String(1000 + i)), await pinTicket(t));
      expect(res.status, describeRes(res)).toBe(200);
      answers.push(txn(res));
    }
    expect(answers.map((a) => a.code)).toEqual(new Array(haltAt).fill('POS_ERR_ACQ_PIN_WRONG'));
    expect(answers.at(-1)?.halted).toBe(true);
    expect((await sec.h.store.getTerminal(t.id))?.state).toBe('halted');
    // Another terminal, the right PIN: the card is blocked (the tries count per card, not per terminal).
    const other = await sec.enroll('B');
    const res = await pay(other, readerOutput('mastercard-pin', '5678'), await pinTicket(other));
    expect(txn(res)).toMatchObject({ approved: false, code: 'POS_ERR_ACQ_PIN_TRIES_EXCEEDED' });
    // PINs never reach the audit chain, the store's transactions or the events.
    const everything = JSON.stringify({
      audit: await sec.h.store.listAudit(0, 100_000),
      events: sec.h.events,
    });
    expect(everything).not.toContain('5555555555554444');
    expect(everything).not.toMatch(/pinBlock/);
  });

  it('a right PIN before the limit clears the count (a cardholder mistyping once is not blocked)', async () => {
    const t = await sec.enroll('B');
    const wrong = await pay(t, readerOutput('visa-pin', '9999'), await pinTicket(t));
    expect(txn(wrong).code).toBe('POS_ERR_ACQ_PIN_WRONG');
    const right = await pay(t, readerOutput('visa-pin', '1234'), await pinTicket(t));
    expect(txn(right)).toMatchObject({ approved: true });
    for (let i = 0; i < (DEFAULT_VELOCITY_RULES.wrongPin.haltAt ?? 0) - 1; i++) {
      const again = await pay(t, readerOutput('visa-pin', '9999'), await pinTicket(t));
      expect(txn(again).halted).toBe(false);
    }
    expect((await sec.h.store.getTerminal(t.id))?.state).toBe('active');
  });
});
