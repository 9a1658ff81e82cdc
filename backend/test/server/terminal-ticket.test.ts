/**
 * GET /v1/terminals/:terminalId's `ticket` (the dashboard's "Ticket expires"): the newest ticket
 * issued to the terminal, as use, times, expired and used, never the ticket or its id; null for a
 * terminal that never got one; a merchant-scoped caller reaches only its own terminals' tickets; the
 * OpenAPI document describes the field.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { operatorToken, pinTicket, sessionTicket } from '../fleet-helpers';
import { makeHarness, seedReferenceValues, type Harness } from '../helpers';
import { enrollInto, newMerchant } from './fleet-helpers';

interface TicketField {
  use: string;
  issuedAt: number;
  expiresAt: number;
  expired: boolean;
  used: boolean;
}

let h: Harness;
beforeEach(async () => {
  h = await makeHarness();
  await seedReferenceValues(h);
});
afterEach(async () => {
  await h.close();
});

async function ticketOf(
  id: string,
  token?: string,
): Promise<{ status: number; ticket?: TicketField | null }> {
  const res = await h.app.inject({
    method: 'GET',
    url: `/v1/terminals/${id}`,
    headers: { authorization: `Bearer ${token ?? h.adminToken}` },
  });
  const body = res.json<{ ticket: TicketField | null }>();
  return res.statusCode === 200 ? { status: 200, ticket: body.ticket } : { status: res.statusCode };
}

describe('the terminal detail route: the current ticket', () => {
  it('a terminal that attested shows its ticket expiry (ms), not the ticket nor its id', async () => {
    const merchantId = await newMerchant(h);
    const { t } = await enrollInto(h, merchantId);
    h.clock.t += 5_000;
    const jws = await sessionTicket(t);
    const stored = await h.store.latestTicket(t.id);
    expect(stored).not.toBeNull();
    const issuedAt = Math.floor(h.clock.now() / 1000) * 1000;
    const res = await h.admin('GET', `/v1/terminals/${t.id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json<{ ticket: TicketField }>().ticket).toEqual({
      use: 'session',
      issuedAt,
      expiresAt: issuedAt + 60_000,
      expired: false,
      used: false,
    });
    // Nothing of the ticket itself: no JWS, no signature, no jti.
    expect(res.body).not.toContain(jws);
    expect(res.body).not.toContain(jws.split('.')[2] ?? 'x');
    expect(res.body).not.toContain(stored?.jti ?? 'x');
  });

  it('a terminal that never got a ticket shows null', async () => {
    const merchantId = await newMerchant(h);
    await h.store.createTerminal({
      id: 'trm_never',
      merchantId,
      deviceJwk: '{"kty":"EC"}',
      deviceJkt: 'jkt-never',
      readerSerial: 'RDR-NEVER',
      lastCounter: -1,
      state: 'active',
      stateReason: null,
      intervalS: 300,
      createdAt: h.clock.now(),
      lastAttestedAt: null,
    });
    const res = await h.admin('GET', '/v1/terminals/trm_never');
    expect(res.statusCode).toBe(200);
    expect(res.json<{ ticket: unknown }>()).toHaveProperty('ticket', null);
  });

  it('an expired ticket shows expired true (at its expiry, by the server clock), until a new one', async () => {
    const merchantId = await newMerchant(h);
    const { t } = await enrollInto(h, merchantId);
    await sessionTicket(t);
    const first = (await ticketOf(t.id)).ticket;
    expect(first?.expired).toBe(false);
    h.clock.t = (first?.expiresAt ?? 0) - 1;
    expect((await ticketOf(t.id)).ticket?.expired).toBe(false);
    h.clock.t = first?.expiresAt ?? 0;
    expect((await ticketOf(t.id)).ticket).toEqual({ ...first, expired: true });
    h.clock.t += 120_000;
    expect((await ticketOf(t.id)).ticket).toMatchObject({ expiresAt: first?.expiresAt, expired: true });
    // The next attestation's ticket is the current one.
    await sessionTicket(t);
    const next = (await ticketOf(t.id)).ticket;
    expect(next?.expired).toBe(false);
    expect(next?.expiresAt).toBeGreaterThan(first?.expiresAt ?? Infinity);
  });

  it('a PIN-entry ticket shows its use', async () => {
    const merchantId = await newMerchant(h);
    const { t } = await enrollInto(h, merchantId);
    await sessionTicket(t);
    await pinTicket(t);
    expect((await ticketOf(t.id)).ticket).toMatchObject({ use: 'pin-entry', expired: false, used: false });
  });

  it("a merchant-scoped caller sees its own terminal's ticket; another merchant's terminal is unknown (404)", async () => {
    const a = await newMerchant(h, 'A');
    const b = await newMerchant(h, 'B');
    const { t: ta } = await enrollInto(h, a);
    const { t: tb } = await enrollInto(h, b);
    await sessionTicket(ta);
    await sessionTicket(tb);
    const merchantA = await operatorToken(h, 'merchant', a);
    expect(await ticketOf(ta.id, merchantA)).toMatchObject({ status: 200, ticket: { expired: false } });
    const foreign = await h.app.inject({
      method: 'GET',
      url: `/v1/terminals/${tb.id}`,
      headers: { authorization: `Bearer ${merchantA}` },
    });
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_TERMINAL_UNKNOWN');
    expect(foreign.body).not.toContain('expiresAt');
  });

  it('the OpenAPI document describes the ticket field (nullable, without the ticket itself)', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    }>();
    const ok = JSON.stringify(doc.paths['/v1/terminals/{terminalId}']?.['get']?.responses['200']);
    for (const field of ['"ticket"', '"issuedAt"', '"expiresAt"', '"expired"', '"used"', '"pin-entry"'])
      expect(ok).toContain(field);
    expect(ok).not.toContain('"jws"');
    expect(ok).not.toContain('"jti"');
  });
});
