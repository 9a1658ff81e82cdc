import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  aesDukptWorkingKey,
  encodePinBlock,
  encryptCardData,
  hex,
  parseAesKsn,
  parsePan,
  pinDigitsFromText,
  toBase64url,
  toHex,
  unwrap,
  wipe,
} from '@pos/shared';
import { DEV_BDK_HEX, TEST_CARDS } from '@pos/shared/testcards';
import { makeHarness, seedReferenceValues, SimTerminal, type Harness } from '../helpers';

let h: Harness;
beforeEach(async () => {
  h = await makeHarness();
  await seedReferenceValues(h);
});
afterEach(async () => {
  await h.close();
});

let ksnCounter = 1;
/** What a reader hands over: KSN, card data under the DUKPT data key and a format 4 PIN block. */
function readerOutput(cardName: string, pin: string | undefined): Record<string, unknown> {
  const card = TEST_CARDS.find((c) => c.name === cardName);
  if (card === undefined) throw new Error(cardName);
  const ksnBytes = hex(`1234567890123456${(ksnCounter++).toString(16).padStart(8, '0')}`);
  const ksn = unwrap(parseAesKsn(ksnBytes)).ksn;
  const bdk = hex(DEV_BDK_HEX);
  const dataKey = unwrap(aesDukptWorkingKey({ bdk, ksn, usage: 'data-encryption', keyType: 'aes128' })).key;
  const cardData = encryptCardData(dataKey, { pan: card.pan, exp: card.expiry }, ksn);
  wipe(dataKey);
  const body: Record<string, unknown> = {
    amount: 1250,
    currency: 'EUR',
    ksn: toHex(ksnBytes),
    cardData: { iv: toBase64url(cardData.iv), ct: toBase64url(cardData.ct) },
  };
  if (pin !== undefined) {
    const pinKey = unwrap(aesDukptWorkingKey({ bdk, ksn, usage: 'pin-encryption', keyType: 'aes128' })).key;
    const digits = unwrap(pinDigitsFromText(pin)).pin;
    const block = unwrap(
      encodePinBlock({ format: 4, pin: digits, pan: unwrap(parsePan(card.pan)).pan, key: pinKey }),
    ).block;
    wipe(pinKey, digits);
    body['pinBlock'] = toHex(block);
  }
  return body;
}

async function ticketFor(t: SimTerminal, purpose = 'pre-transaction'): Promise<string> {
  const res = await t.attest(purpose);
  const jws = res.json<{ ticket?: { jws: string } }>().ticket?.jws;
  if (jws === undefined) throw new Error(`no ticket: ${res.body}`);
  return jws;
}

async function transact(
  t: SimTerminal,
  body: Record<string, unknown>,
  opts: { ticket?: string; proof?: boolean; bindTicket?: boolean } = {},
): Promise<{ status: number; json: Record<string, unknown> & { error?: { code: string } } }> {
  const payload = JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.ticket !== undefined) headers['authorization'] = `PosTicket ${opts.ticket}`;
  if (opts.proof !== false) {
    headers['pos-proof'] = t.proof('POST', '/v1/transactions', payload, {
      ...(opts.bindTicket !== false && opts.ticket !== undefined ? { ticket: opts.ticket } : {}),
    });
  }
  const res = await h.app.inject({ method: 'POST', url: '/v1/transactions', headers, payload });
  return { status: res.statusCode, json: res.json() };
}

describe('POST /v1/transactions', () => {
  it('approves a PIN transaction with the right PIN and declines a wrong one, end to end', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const ok = await transact(t, readerOutput('visa-pin', '1234'), { ticket: await ticketFor(t) });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ approved: true });
    expect(typeof ok.json['authCode']).toBe('string');
    const wrong = await transact(t, readerOutput('visa-pin', '9999'), { ticket: await ticketFor(t) });
    expect(wrong.status).toBe(200);
    expect(wrong.json['approved']).toBe(false);
    expect(String(wrong.json['code'])).toMatch(/PIN/);
    const listed = await h.admin('GET', `/v1/terminals/${t.id}/transactions?limit=5`);
    expect(
      listed.json<{ transactions: { approved: boolean }[] }>().transactions.map((x) => x.approved),
    ).toEqual([false, true]);
    const verdicts = await h.admin('GET', `/v1/terminals/${t.id}/attestations`);
    expect(verdicts.json<{ attestations: { tier: string }[] }>().attestations[0]?.tier).toBe('affirming');
    const stored = await h.store.listTransactions(t.id, 10);
    expect(stored).toHaveLength(2);
    // No PAN is stored: only a token.
    expect(JSON.stringify(stored)).not.toContain('4111111111111111');
  });

  it('refuses a transaction without a ticket, without a proof, or with a proof not bound to the ticket', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const ticket = await ticketFor(t);
    expect((await transact(t, readerOutput('visa-pin', '1234'))).json.error?.code).toBe(
      'POS_ERR_TICKET_MISSING',
    );
    expect(
      (await transact(t, readerOutput('visa-pin', '1234'), { ticket, proof: false })).json.error?.code,
    ).toBe('POS_ERR_PROOF_MISSING');
    const unbound = await transact(t, readerOutput('visa-pin', '1234'), { ticket, bindTicket: false });
    expect(unbound.status).toBe(401);
    expect(unbound.json.error?.code).toBe('POS_ERR_PROOF_BINDING');
  });

  it("refuses terminal B's ticket presented by terminal A", async () => {
    const a = new SimTerminal(h);
    const b = new SimTerminal(h);
    await a.enroll();
    await b.enroll();
    const res = await transact(a, readerOutput('visa-pin', '1234'), { ticket: await ticketFor(b) });
    expect(res.status).toBe(401);
    expect(res.json.error?.code).toBe('POS_ERR_TICKET_KEY_MISMATCH');
  });

  it('refuses an expired ticket and a PIN-entry ticket', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const ticket = await ticketFor(t);
    h.clock.t += 120_000;
    const expired = await transact(t, readerOutput('visa-pin', '1234'), { ticket });
    expect(expired.json.error?.code).toBe('POS_ERR_TICKET_EXPIRED');
    const nonce = 'cmVhZGVyLW5vbmNlLTAwMDE';
    const pinTicket = (await t.attest('pre-pin', { nonce }, { nonce })).json<{ ticket?: { jws: string } }>()
      .ticket?.jws;
    const wrongUse = await transact(t, readerOutput('visa-pin', '1234'), { ticket: pinTicket ?? '' });
    expect(wrongUse.json.error?.code).toBe('POS_ERR_TICKET_USE');
  });

  it('refuses a still-valid ticket once the terminal is halted', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const ticket = await ticketFor(t);
    await h.admin('POST', `/v1/terminals/${t.id}/halt`, { reason: 'test' });
    const res = await transact(t, readerOutput('visa-pin', '1234'), { ticket });
    expect(res.status).toBe(403);
    expect(res.json.error?.code).toBe('POS_ERR_TERMINAL_HALTED');
  });

  it('a velocity halt (wrong PIN tries on one card) halts the terminal and is audited', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const ticket = await ticketFor(t);
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await transact(t, readerOutput('visa-pin', '0000'), { ticket }));
    expect(results.map((r) => r.json['approved'])).toEqual([false, false, false]);
    expect(results[2]?.json['halted']).toBe(true);
    expect((await h.store.getTerminal(t.id))?.state).toBe('halted');
    const after = await transact(t, readerOutput('visa-pin', '1234'), { ticket });
    expect(after.json.error?.code).toBe('POS_ERR_TERMINAL_HALTED');
    const audit = (await h.admin('GET', '/v1/audit')).body;
    expect(audit).toContain('"actor":"velocity"');
  });
});
