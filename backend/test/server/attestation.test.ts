import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TICKET_AUDIENCE } from '@pos/shared';
import {
  ISSUER,
  makeHarness,
  readerEvidence,
  seedReferenceValues,
  SimTerminal,
  type Harness,
} from '../helpers';

interface AttestOut {
  verdict: { tier: string; reasons: { code: string }[] };
  ticket?: { jws: string; use: string; expiresAt: number };
  halted: boolean;
  nextAttestationAt: number;
}

let h: Harness;
beforeEach(async () => {
  h = await makeHarness();
  await seedReferenceValues(h);
});
afterEach(async () => {
  await h.close();
});

async function jwks(): Promise<ReturnType<typeof createLocalJWKSet>> {
  const res = await h.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
  expect(res.statusCode).toBe(200);
  return createLocalJWKSet(res.json());
}

describe('enrollment', () => {
  it('enrolls a terminal with a code, its key and first evidence, and returns id, JWKS and interval', async () => {
    const t = new SimTerminal(h);
    const res = await t.enroll();
    expect(res.statusCode).toBe(201);
    const body = res.json<{ terminalId: string; jwks: { keys: unknown[] }; attestationIntervalS: number }>();
    expect(body.terminalId).toMatch(/^trm_/);
    expect(body.jwks.keys).toHaveLength(1);
    expect(body.attestationIntervalS).toBe(300);
    const row = await h.store.getTerminal(body.terminalId);
    expect(row?.deviceJkt).toBe(t.jkt);
  });

  it('refuses a reused enrollment code', async () => {
    const t = new SimTerminal(h);
    const m = await h.admin('POST', '/v1/merchants', { name: 'M' });
    const { merchantId } = m.json<{ merchantId: string }>();
    const { code } = (await h.admin('POST', `/v1/merchants/${merchantId}/enrollment-codes`, {})).json<{
      code: string;
    }>();
    const enroll = async (term: SimTerminal): Promise<number> => {
      const challenge = await term.challenge(true);
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/enrollments',
        payload: {
          code,
          deviceJwk: term.jwk,
          readerSerial: term.readerSerial,
          evidence: term.evidence(challenge, 'enrollment'),
        },
      });
      return res.statusCode;
    };
    expect(await enroll(t)).toBe(201);
    const res = await enroll(new SimTerminal(h));
    expect(res).toBe(400);
  });

  it('refuses an expired enrollment code', async () => {
    const t = new SimTerminal(h);
    const { merchantId } = (await h.admin('POST', '/v1/merchants', { name: 'M' })).json<{
      merchantId: string;
    }>();
    const { code } = (
      await h.admin('POST', `/v1/merchants/${merchantId}/enrollment-codes`, { ttlS: 60 })
    ).json<{ code: string }>();
    h.clock.t += 61_000;
    const challenge = await t.challenge(true);
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/enrollments',
      payload: {
        code,
        deviceJwk: t.jwk,
        readerSerial: t.readerSerial,
        evidence: t.evidence(challenge, 'enrollment'),
      },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_ENROLLMENT_CODE_INVALID');
  });

  it('needs an operator token to create codes', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/merchants', payload: { name: 'x' } });
    expect(res.statusCode).toBe(401);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_OPERATOR_AUTH');
  });
});

describe('attestation and tickets', () => {
  it('issues a session ticket that jose verifies against /.well-known/jwks.json', async () => {
    const t = new SimTerminal(h);
    expect((await t.enroll()).statusCode).toBe(201);
    const res = await t.attest('periodic');
    expect(res.statusCode).toBe(200);
    const out = res.json<AttestOut>();
    expect(out.verdict.tier).toBe('affirming');
    expect(out.nextAttestationAt).toBe(h.clock.now() + 300_000);
    const ticket = out.ticket?.jws ?? '';
    const { payload, protectedHeader } = await jwtVerify(ticket, await jwks(), {
      issuer: ISSUER,
      audience: TICKET_AUDIENCE,
      currentDate: new Date(h.clock.now()),
      typ: 'pos-ticket+jwt',
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload.sub).toBe(t.id);
    expect((payload['cnf'] as { jkt: string }).jkt).toBe(t.jkt);
    expect(payload['use']).toBe('session');
  });

  it('jose refuses the ticket once expired and for another audience', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const ticket = (await t.attest()).json<AttestOut>().ticket?.jws ?? '';
    const set = await jwks();
    await expect(
      jwtVerify(ticket, set, { audience: TICKET_AUDIENCE, currentDate: new Date(h.clock.now() + 61_000) }),
    ).rejects.toThrow(/exp/);
    await expect(
      jwtVerify(ticket, set, { audience: 'urn:pos:someone-else', currentDate: new Date(h.clock.now()) }),
    ).rejects.toThrow(/aud/);
  });

  it('issues a PIN-entry ticket for pre-pin evidence bound to the reader nonce', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const nonce = 'bm9uY2Utbm9uY2Utbm9uY2U';
    const res = await t.attest('pre-pin', { nonce }, { nonce });
    const out = res.json<AttestOut>();
    expect(out.ticket?.use).toBe('pin-entry');
    const { payload } = await jwtVerify(out.ticket?.jws ?? '', await jwks(), {
      currentDate: new Date(h.clock.now()),
    });
    expect(payload['nonce']).toBe(nonce);
  });

  it('refuses replayed evidence and a reused challenge', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const challenge = await t.challenge();
    const ev = t.evidence(challenge, 'periodic');
    expect((await t.submit(ev)).json<AttestOut>().verdict.tier).toBe('affirming');
    const replay = (await t.submit(ev)).json<AttestOut>();
    expect(replay.ticket).toBeUndefined();
    expect(['none', 'contraindicated']).toContain(replay.verdict.tier);
  });

  it('refuses a reused challenge with a fresh counter', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const challenge = await t.challenge();
    expect((await t.submit(t.evidence(challenge, 'periodic'))).json<AttestOut>().ticket).toBeDefined();
    const again = (await t.submit(t.evidence(challenge, 'periodic'))).json<AttestOut>();
    expect(again.ticket).toBeUndefined();
  });

  it("refuses terminal A's evidence under terminal B's id", async () => {
    const a = new SimTerminal(h);
    const b = new SimTerminal(h);
    await a.enroll();
    await b.enroll();
    const challenge = await b.challenge();
    // A signs evidence naming B; A's proof claims B's id: the proof does not verify under B's key.
    const forged = a.evidence(challenge, 'periodic', { iss: b.id });
    const res = await a.submit(forged, {}, { kid: b.id });
    expect(res.statusCode).toBe(401);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_PROOF_SIGNATURE');
    // B's own proof around A's evidence: the evidence signature fails, no ticket.
    const viaB = await b.submit(forged);
    expect(viaB.statusCode).toBe(200);
    expect(viaB.json<AttestOut>().ticket).toBeUndefined();
  });

  it('halts the terminal on a contraindicated verdict until an operator resumes it', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const bad = await t.attest('periodic', {
      app: { version: '1.2.3', build: 'release', codeHash: 'cd'.repeat(32) },
    });
    const out = bad.json<AttestOut>();
    expect(out.verdict.tier).toBe('contraindicated');
    expect(out.halted).toBe(true);
    const good = (await t.attest()).json<AttestOut>();
    expect(good.ticket).toBeUndefined();
    expect(good.halted).toBe(true);
    expect(
      (await h.admin('POST', `/v1/terminals/${t.id}/resume`, { reason: 'investigated' })).statusCode,
    ).toBe(200);
    expect((await t.attest()).json<AttestOut>().ticket).toBeDefined();
  });

  it('refuses tickets after an operator halt', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    expect((await h.admin('POST', `/v1/terminals/${t.id}/halt`, { reason: 'suspicious' })).statusCode).toBe(
      200,
    );
    const out = (await t.attest()).json<AttestOut>();
    expect(out.halted).toBe(true);
    expect(out.ticket).toBeUndefined();
  });

  it('refuses requests without a proof, with a replayed proof or a stale one', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const challenge = await t.challenge();
    const body = JSON.stringify({ evidence: t.evidence(challenge, 'periodic') });
    const send = (proof?: string): Promise<LightMyRequestResponse> =>
      h.app.inject({
        method: 'POST',
        url: '/v1/attestations',
        headers: {
          'content-type': 'application/json',
          ...(proof === undefined ? {} : { 'pos-proof': proof }),
        },
        payload: body,
      });
    const code = async (p: Promise<{ json: <T>() => T }>): Promise<string> =>
      (await p).json<{ error: { code: string } }>().error.code;
    expect(await code(send())).toBe('POS_ERR_PROOF_MISSING');
    expect(await code(send('a.b.c'))).toBe('POS_ERR_PROOF_INVALID');
    const stale = t.proof('POST', '/v1/attestations', body, { iat: Math.floor(h.clock.now() / 1000) - 120 });
    expect(await code(send(stale))).toBe('POS_ERR_PROOF_STALE');
    const otherBody = t.proof('POST', '/v1/attestations', '{}');
    expect(await code(send(otherBody))).toBe('POS_ERR_PROOF_BINDING');
    const proof = t.proof('POST', '/v1/attestations', body);
    expect((await send(proof)).statusCode).toBe(200);
    expect(await code(send(proof))).toBe('POS_ERR_PROOF_REPLAY');
  });
});

describe('key rotation', () => {
  it('keeps a retired key in the JWKS until its tickets expire', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const before = (await t.attest()).json<AttestOut>().ticket?.jws ?? '';
    const rot = await h.admin('POST', '/v1/keys/rotate', {});
    expect(rot.statusCode).toBe(200);
    const { kid, retired } = rot.json<{ kid: string; retired: string[] }>();
    expect(retired).toHaveLength(1);
    const set = await jwks();
    await expect(jwtVerify(before, set, { currentDate: new Date(h.clock.now()) })).resolves.toBeDefined();
    const after = (await t.attest()).json<AttestOut>().ticket?.jws ?? '';
    const { protectedHeader } = await jwtVerify(after, set, { currentDate: new Date(h.clock.now()) });
    expect(protectedHeader.kid).toBe(kid);
    h.clock.t += 200_000;
    const keys = (await h.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<{
      keys: { kid: string }[];
    }>().keys;
    expect(keys.map((k) => k.kid)).toEqual([kid]);
  });
});

describe('purpose', () => {
  it('refuses enrollment evidence on /v1/attestations', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const challenge = await t.challenge();
    const res = await t.submit(t.evidence(challenge, 'enrollment'));
    expect(res.statusCode).toBe(400);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_ATTESTATION_REFUSED');
  });
});

describe('resume needs a fresh affirming attestation (M1)', () => {
  it('resume makes the terminal resume-pending: no ticket on a warning, active only on an affirming verdict', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const session = (await t.attest()).json<AttestOut>().ticket;
    expect(session).toBeDefined();
    await h.admin('POST', `/v1/terminals/${t.id}/halt`, { reason: 'check' });
    h.clock.t += 1000;
    const resumed = await h.admin('POST', `/v1/terminals/${t.id}/resume`, { reason: 'checked' });
    expect(resumed.json()).toMatchObject({ state: 'resume-pending' });
    expect((await h.admin('GET', `/v1/terminals/${t.id}`)).json()).toMatchObject({ state: 'resume-pending' });
    // A warning verdict (browser shell, not allowed for this release) earns only a handshake-only
    // session ticket (perm []: enough to open the reader session, nothing else); no PIN entry, and
    // transactions are refused while resume-pending.
    const warned = (await t.attest('periodic', { shell: 'browser' })).json<AttestOut>();
    expect(warned.verdict.tier).toBe('warning');
    expect(warned.ticket?.use).toBe('session');
    expect(decodeJwt(warned.ticket?.jws ?? '')).toMatchObject({ use: 'session', perm: [] });
    expect((await h.store.getTerminal(t.id))?.state).toBe('resume-pending');
    const refused = await t.transact(warned.ticket?.jws ?? '');
    // The ticket grants no `transact` (and the route refuses a resume-pending terminal besides).
    expect([refused.status, refused.code]).toEqual([401, 'POS_ERR_TICKET_PERMISSION']);
    const pin = (await t.attest('pre-pin')).json<AttestOut>();
    expect(pin.ticket?.use).not.toBe('pin-entry');
    const good = (await t.attest()).json<AttestOut>();
    expect(good.verdict.tier).toBe('affirming');
    expect(good.ticket?.use).toBe('session');
    expect(decodeJwt(good.ticket?.jws ?? '')).toMatchObject({ perm: ['transact'] });
    expect((await h.store.getTerminal(t.id))?.state).toBe('active');
    const audit = (await h.admin('GET', '/v1/audit')).body;
    expect(audit).toContain('"action":"terminal.activate"');
    // Resuming a terminal that is not halted is refused.
    const again = await h.admin('POST', `/v1/terminals/${t.id}/resume`, { reason: 'again' });
    expect(again.statusCode).toBe(409);
    expect(again.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_TERMINAL_NOT_HALTED');
  });

  it('evidence on a challenge issued before the resume does not activate the terminal', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    await h.admin('POST', `/v1/terminals/${t.id}/halt`, { reason: 'check' });
    const early = await t.challenge();
    h.clock.t += 1000;
    await h.admin('POST', `/v1/terminals/${t.id}/resume`, { reason: 'checked' });
    const out = (await t.submit(t.evidence(early, 'periodic'))).json<AttestOut>();
    expect(out.verdict.tier).toBe('affirming');
    // Not activated: only the handshake-only ticket a resume-pending terminal gets.
    expect(decodeJwt(out.ticket?.jws ?? '')).toMatchObject({ perm: [] });
    expect((await h.store.getTerminal(t.id))?.state).toBe('resume-pending');
  });
});

describe('the policy without an activated one (H2)', () => {
  it('is prod-1 unless the service runs in development mode', async () => {
    const prod = await makeHarness({ development: false });
    try {
      await seedReferenceValues(prod);
      const t = new SimTerminal(prod);
      await t.enroll();
      const out = (await t.attest()).json<AttestOut & { verdict: { policyVersion: string } }>();
      expect(out.verdict.policyVersion).toBe('prod-1');
      // prod-1 requires fuses, executable and environment: a headless terminal is not affirming.
      expect(out.verdict.tier).not.toBe('affirming');
    } finally {
      await prod.close();
    }
    const t = new SimTerminal(h);
    await t.enroll();
    expect((await t.attest()).json<{ verdict: { policyVersion: string } }>().verdict.policyVersion).toBe(
      'dev-2',
    );
  });
});

describe('reader status sequence per reader (L4)', () => {
  it('a pre-PIN status not newer than one already seen earns no PIN-entry ticket', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const status = readerEvidence(t.readerSerial, h.clock.now());
    t.readerStatus = () => status;
    expect((await t.attest()).json<AttestOut>().verdict.tier).toBe('affirming');
    const nonce = 'cmVhZGVyLW5vbmNlLTAwMDI';
    const replayed = (await t.attest('pre-pin', { nonce }, { nonce })).json<AttestOut>();
    expect(replayed.ticket).toBeUndefined();
    expect(replayed.verdict.reasons.map((r) => r.code)).toContain('POS_ERR_ATTEST_READER_REPLAYED');
    t.readerStatus = (now) => readerEvidence(t.readerSerial, now);
    const fresh = (await t.attest('pre-pin', { nonce }, { nonce })).json<AttestOut>();
    expect(fresh.ticket?.use).toBe('pin-entry');
  });
});

describe('refused enrollments are audited (L7)', () => {
  it('records the refusal, the key thumbprint and why, never the code', async () => {
    const t = new SimTerminal(h);
    const m = await h.admin('POST', '/v1/merchants', { name: 'Shop' });
    const merchantId = m.json<{ merchantId: string }>().merchantId;
    const code = (await h.admin('POST', `/v1/merchants/${merchantId}/enrollment-codes`, {})).json<{
      code: string;
    }>().code;
    const enroll = async (evidence: string, withCode = code) =>
      h.app.inject({
        method: 'POST',
        url: '/v1/enrollments',
        payload: { code: withCode, deviceJwk: t.jwk, readerSerial: t.readerSerial, evidence },
      });
    // Contraindicated first evidence (a code hash no release has): refused, audited.
    const bad = await enroll(
      t.evidence(await t.challenge(true), 'enrollment', {
        app: { version: '1.2.3', build: 'release', codeHash: 'cd'.repeat(32) },
      }),
    );
    expect(bad.statusCode).toBe(403);
    // Good evidence, unknown code: refused, audited.
    const unknown = await enroll(
      t.evidence(await t.challenge(true), 'enrollment'),
      'pos_enr_AAAAAAAAAAAAAAAAAAAAAA',
    );
    expect(unknown.statusCode).toBe(400);
    const lines = (await h.admin('GET', '/v1/audit')).body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; subject: string; data: Record<string, unknown> });
    const refused = lines.filter((l) => l.action === 'enrollment.refused');
    expect(refused.map((l) => l.data['refusal'])).toEqual(['evidence', 'code']);
    expect(refused.every((l) => l.subject === t.jkt)).toBe(true);
    expect(refused[0]?.data).toMatchObject({ tier: 'contraindicated', readerSerial: t.readerSerial });
    const text = JSON.stringify(refused);
    expect(text).not.toContain('pos_enr_');
    expect(text).not.toContain(code.slice(8));
  });
});
