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
function readerOutput(
  cardName: string,
  pin: string | undefined,
  counter: number = ksnCounter++,
): Record<string, unknown> {
  const card = TEST_CARDS.find((c) => c.name === cardName);
  if (card === undefined) throw new Error(cardName);
  const ksnBytes = hex(`1234567890123456${counter.toString(16).padStart(8, '0')}`);
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

let nonceCounter = 0;
/** A PIN-entry ticket: pre-PIN evidence bound to a (fresh) reader nonce; one per PIN transaction. */
async function pinTicketFor(
  t: SimTerminal,
  extra: Record<string, unknown> = {},
): Promise<string | undefined> {
  const nonce = toBase64url(Buffer.from(`reader-nonce-${String(++nonceCounter).padStart(6, '0')}`));
  const res = await t.attest('pre-pin', { nonce, ...extra }, { nonce });
  const ticket = res.json<{ ticket?: { jws: string; use: string } }>().ticket;
  if (ticket !== undefined) expect(ticket.use).toBe('pin-entry');
  return ticket?.jws;
}
async function mustPinTicket(t: SimTerminal): Promise<string> {
  const jws = await pinTicketFor(t);
  if (jws === undefined) throw new Error('no PIN-entry ticket');
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
    const ok = await transact(t, readerOutput('visa-pin', '1234'), { ticket: await mustPinTicket(t) });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ approved: true });
    expect(typeof ok.json['authCode']).toBe('string');
    const wrong = await transact(t, readerOutput('visa-pin', '9999'), { ticket: await mustPinTicket(t) });
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
    const res = await transact(a, readerOutput('visa-pin', '1234'), { ticket: await mustPinTicket(b) });
    expect(res.status).toBe(401);
    // One reader serial serves one terminal (fleet correlation), so B's ticket names another reader as
    // well as another key: it is refused at whichever binding the ticket check meets first.
    expect(['POS_ERR_TICKET_KEY_MISMATCH', 'POS_ERR_TICKET_READER_MISMATCH']).toContain(res.json.error?.code);
  });

  it('refuses an expired ticket, a session ticket for a PIN block and a PIN-entry ticket without one', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const ticket = await ticketFor(t);
    const pinTicket = await mustPinTicket(t);
    h.clock.t += 120_000;
    const expired = await transact(t, readerOutput('visa-pin', '1234'), { ticket: pinTicket });
    expect(expired.json.error?.code).toBe('POS_ERR_TICKET_EXPIRED');
    const expiredSession = await transact(t, readerOutput('visa-no-pin', undefined), { ticket });
    expect(expiredSession.json.error?.code).toBe('POS_ERR_TICKET_EXPIRED');
    const session = await ticketFor(t);
    const sessionForPin = await transact(t, readerOutput('visa-pin', '1234'), { ticket: session });
    expect(sessionForPin.status).toBe(401);
    expect(sessionForPin.json.error?.code).toBe('POS_ERR_TICKET_USE');
    const pinForNoPin = await transact(t, readerOutput('visa-no-pin', undefined), {
      ticket: await mustPinTicket(t),
    });
    expect(pinForNoPin.json.error?.code).toBe('POS_ERR_TICKET_USE');
  });

  it('refuses a still-valid ticket once the terminal is halted', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const ticket = await mustPinTicket(t);
    await h.admin('POST', `/v1/terminals/${t.id}/halt`, { reason: 'test' });
    const res = await transact(t, readerOutput('visa-pin', '1234'), { ticket });
    expect(res.status).toBe(403);
    expect(res.json.error?.code).toBe('POS_ERR_TERMINAL_HALTED');
  });

  it('a velocity halt (wrong PIN tries on one card) halts the terminal and is audited', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const spare = await mustPinTicket(t);
    const results = [];
    for (let i = 0; i < 3; i++) {
      results.push(await transact(t, readerOutput('visa-pin', '0000'), { ticket: await mustPinTicket(t) }));
    }
    expect(results.map((r) => r.json['approved'])).toEqual([false, false, false]);
    expect(results[2]?.json['halted']).toBe(true);
    expect((await h.store.getTerminal(t.id))?.state).toBe('halted');
    const after = await transact(t, readerOutput('visa-pin', '1234'), { ticket: spare });
    expect(after.json.error?.code).toBe('POS_ERR_TERMINAL_HALTED');
    const audit = (await h.admin('GET', '/v1/audit')).body;
    expect(audit).toContain('"actor":"velocity"');
  });
});

describe('PIN blocks: one PIN-entry ticket, one KSN (C1)', () => {
  it("the reviewer's replay: the same body again, even for another amount, is refused", async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const body = readerOutput('visa-pin', '1234');
    const first = await transact(t, body, { ticket: await mustPinTicket(t) });
    expect(first.json).toMatchObject({ approved: true });
    const again = await transact(t, body, { ticket: await mustPinTicket(t) });
    expect(again.status).toBe(409);
    expect(again.json.error?.code).toBe('POS_ERR_TRANSACTION_KSN_REPLAY');
    const bigger = await transact(t, { ...body, amount: 99_000_000 }, { ticket: await mustPinTicket(t) });
    expect(bigger.status).toBe(409);
    expect(bigger.json.error?.code).toBe('POS_ERR_TRANSACTION_KSN_REPLAY');
    expect(await h.store.listTransactions(t.id, 10)).toHaveLength(1);
  });

  it('a warning-tier terminal gets no PIN-entry ticket and cannot submit a PIN block with its session ticket', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    // The browser shell is not allowed for this release: warning, so a session ticket but no PIN entry.
    expect(await pinTicketFor(t, { shell: 'browser' })).toBeUndefined();
    const res = await t.attest('pre-transaction', { shell: 'browser' });
    const out = res.json<{ verdict: { tier: string }; ticket?: { jws: string; use: string } }>();
    expect(out.verdict.tier).toBe('warning');
    expect(out.ticket?.use).toBe('session');
    const pin = await transact(t, readerOutput('visa-pin', '1234'), { ticket: out.ticket?.jws ?? '' });
    expect(pin.status).toBe(401);
    expect(pin.json.error?.code).toBe('POS_ERR_TICKET_USE');
    expect(await h.store.listTransactions(t.id, 10)).toHaveLength(0);
  });

  it('a PIN-entry ticket used twice is refused the second time', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const ticket = await mustPinTicket(t);
    expect((await transact(t, readerOutput('visa-pin', '1234'), { ticket })).json).toMatchObject({
      approved: true,
    });
    const twice = await transact(t, readerOutput('visa-pin', '1234'), { ticket });
    expect(twice.status).toBe(401);
    expect(twice.json.error?.code).toBe('POS_ERR_TICKET_USED');
  });

  it('a KSN counter at or below the last one seen for its BDK ID and derivation ID is refused', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const at = async (counter: number) =>
      transact(t, readerOutput('visa-pin', '1234', counter), { ticket: await mustPinTicket(t) });
    expect((await at(5000)).json).toMatchObject({ approved: true });
    expect((await at(4999)).json.error?.code).toBe('POS_ERR_TRANSACTION_KSN_REPLAY');
    expect((await at(5000)).json.error?.code).toBe('POS_ERR_TRANSACTION_KSN_REPLAY');
    expect((await at(5001)).json).toMatchObject({ approved: true });
    // Cards without a PIN carry a KSN too: the same guard.
    const noPin = await transact(t, readerOutput('visa-no-pin', undefined, 5001), {
      ticket: await ticketFor(t),
    });
    expect(noPin.json.error?.code).toBe('POS_ERR_TRANSACTION_KSN_REPLAY');
  });
});
