/**
 * Fleet correlation: a counter that goes back or repeats under the terminal's own key, and one reader
 * serial on two terminals, make the verdict contraindicated, halt the terminal (source correlation)
 * and alert (event, audit, metric). Nobody halts a terminal whose key they do not hold.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { seedReferenceValues, SimTerminal } from '../helpers';
import { auditOf, makeFileHarness, type FileHarness } from '../fleet-helpers';

interface AttestOut {
  verdict: { tier: string; reasons: { code: string }[] };
  ticket?: unknown;
  halted: boolean;
}

let h: FileHarness;
beforeEach(async () => {
  h = await makeFileHarness(':memory:');
  await seedReferenceValues(h);
});
afterEach(async () => {
  await h.close();
});

async function enrolled(): Promise<SimTerminal> {
  const t = new SimTerminal(h);
  const res = await t.enroll();
  expect(res.statusCode, res.body).toBe(201);
  return t;
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

async function correlationAlerts(kind: string): Promise<number> {
  const res = await h.app.inject({ method: 'GET', url: '/metrics' });
  const line = res.body.split('\n').find((l) => l.startsWith(`pos_correlation_alerts_total{kind="${kind}"}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('fleet correlation: evidence counter', () => {
  it('a counter that goes back under the terminal’s own key: contraindicated, halted, alerted', async () => {
    const t = await enrolled();
    expect((await t.attest()).json<AttestOut>().verdict.tier).toBe('affirming');
    t.counter -= 2; // the next evidence carries an already used counter, on a fresh challenge
    const res = await t.attest();
    expect(res.statusCode).toBe(200);
    const out = res.json<AttestOut>();
    expect(out.verdict.tier).toBe('contraindicated');
    expect(out.verdict.reasons.map((r) => r.code)).toContain('POS_ERR_CORRELATION_COUNTER_REPLAY');
    expect(out.ticket).toBeUndefined();
    expect(out.halted).toBe(true);

    const terminal = await h.store.getTerminal(t.id);
    expect(terminal?.state).toBe('halted');
    const halts = await h.store.listHalts({ activeOnly: true, limit: 10 });
    expect(halts).toHaveLength(1);
    expect(halts[0]).toMatchObject({ scope: 'terminal', target: t.id, createdBy: 'correlation' });
    await settle();
    expect(h.events.filter((e) => e.type === 'correlation')).toEqual([
      {
        type: 'correlation',
        at: h.clock.now(),
        merchantId: terminal?.merchantId,
        terminalId: t.id,
        kind: 'counter-replay',
      },
    ]);
    expect(h.events.some((e) => e.type === 'halt' && e.source === 'correlation')).toBe(true);
    const audited = await auditOf(h, 'correlation.alert');
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({ subject: t.id, data: { kind: 'counter-replay' } });
    expect(await correlationAlerts('counter-replay')).toBe(1);
  });

  it('a repeated counter (two evidences with one counter) halts too', async () => {
    const t = await enrolled();
    const c1 = await t.challenge();
    const c2 = await t.challenge();
    const first = t.evidence(c1, 'periodic');
    t.counter -= 1;
    const second = t.evidence(c2, 'periodic');
    expect((await t.submit(first)).json<AttestOut>().verdict.tier).toBe('affirming');
    const again = (await t.submit(second)).json<AttestOut>();
    expect(again.verdict.tier).toBe('contraindicated');
    expect(again.verdict.reasons.map((r) => r.code)).toContain('POS_ERR_CORRELATION_COUNTER_REPLAY');
    expect((await h.store.getTerminal(t.id))?.state).toBe('halted');
  });

  it('another terminal cannot halt a terminal by replaying its evidence', async () => {
    const victim = await enrolled();
    const attacker = await enrolled();
    // The victim's valid evidence, captured, with a counter the victim already used.
    const challenge = await victim.challenge();
    const captured = victim.evidence(challenge, 'periodic');
    expect((await victim.submit(captured)).json<AttestOut>().verdict.tier).toBe('affirming');

    // Presented under the attacker's own proof: appraised against the attacker's key, it fails there.
    const asAttacker = (await attacker.submit(captured)).json<AttestOut>();
    expect(asAttacker.verdict.tier).not.toBe('affirming');
    expect(asAttacker.verdict.reasons.map((r) => r.code)).not.toContain('POS_ERR_CORRELATION_COUNTER_REPLAY');

    // Presented as the victim with a proof the attacker signs: refused before any appraisal.
    const body = JSON.stringify({ evidence: captured });
    const forged = await h.app.inject({
      method: 'POST',
      url: '/v1/attestations',
      headers: {
        'content-type': 'application/json',
        'pos-proof': attacker.proof('POST', '/v1/attestations', body, { kid: victim.id }),
      },
      payload: body,
    });
    expect(forged.statusCode).toBe(401);
    expect(forged.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_PROOF_SIGNATURE');

    expect((await h.store.getTerminal(victim.id))?.state).toBe('active');
    await settle();
    expect(h.events.filter((e) => e.type === 'correlation')).toEqual([]);
    expect(await auditOf(h, 'correlation.alert')).toEqual([]);
    expect((await h.store.listHalts({ activeOnly: true, limit: 10 })).map((x) => x.target)).not.toContain(
      victim.id,
    );
  });
});

describe('fleet correlation: one reader serial on two terminals', () => {
  it('an enrollment with a reader serial already enrolled is refused and alerted; the enrolled one is not halted', async () => {
    const first = await enrolled();
    const second = new SimTerminal(h);
    second.readerSerial = first.readerSerial;
    const res = await second.enroll();
    expect(res.statusCode).toBe(403);
    expect(res.json<{ error: { code: string; message: string } }>().error).toMatchObject({
      code: 'POS_ERR_ENROLLMENT_REFUSED',
    });
    expect(res.json<{ error: { message: string } }>().error.message).toContain(
      'POS_ERR_CORRELATION_READER_SHARED',
    );
    expect(await h.store.countTerminals()).toBe(1);
    expect((await h.store.getTerminal(first.id))?.state).toBe('active');
    await settle();
    const firstRow = await h.store.getTerminal(first.id);
    expect(h.events.filter((e) => e.type === 'correlation')).toEqual([
      {
        type: 'correlation',
        at: h.clock.now(),
        merchantId: firstRow?.merchantId,
        terminalId: first.id,
        kind: 'reader-serial-shared',
      },
    ]);
    const audited = await auditOf(h, 'correlation.alert');
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({
      subject: second.jkt,
      data: { kind: 'reader-serial-shared', otherTerminal: first.id, enrollment: true },
    });
    expect(await correlationAlerts('reader-serial-shared')).toBe(1);
    const refused = await auditOf(h, 'enrollment.refused');
    expect(refused.map((e) => e.data['refusal'])).toEqual(['reader-serial-shared']);
  });

  it('without a valid enrollment code, a shared reader serial raises no alert (no probing, no alert flood)', async () => {
    const first = await enrolled();
    const prober = new SimTerminal(h);
    prober.readerSerial = first.readerSerial;
    const challenge = await prober.challenge(true);
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/enrollments',
      payload: {
        code: `pos_enr_${'A'.repeat(22)}`, // well-formed, never issued
        deviceJwk: prober.jwk,
        readerSerial: prober.readerSerial,
        evidence: prober.evidence(challenge, 'enrollment'),
      },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_ENROLLMENT_CODE_INVALID');
    await settle();
    expect(h.events.filter((e) => e.type === 'correlation')).toEqual([]);
    expect(await auditOf(h, 'correlation.alert')).toEqual([]);
  });

  it('a terminal whose reader serial is on another terminal too is halted at its attestation', async () => {
    const a = await enrolled();
    const aRow = await h.store.getTerminal(a.id);
    if (aRow === undefined) throw new Error('not enrolled');
    // A second terminal with the same reader serial, as left by data from before this check.
    await h.store.createTerminal({ ...aRow, id: 'trm_other', deviceJkt: 'other-jkt', lastCounter: -1 });
    const out = (await a.attest()).json<AttestOut>();
    expect(out.verdict.tier).toBe('contraindicated');
    expect(out.verdict.reasons.map((r) => r.code)).toContain('POS_ERR_CORRELATION_READER_SHARED');
    expect(out.halted).toBe(true);
    const halts = await h.store.listHalts({ activeOnly: true, limit: 10 });
    expect(halts.map((x) => [x.target, x.createdBy])).toEqual([[a.id, 'correlation']]);
    // Only the terminal whose own evidence showed it is halted.
    expect((await h.store.getTerminal('trm_other'))?.state).toBe('active');
    await settle();
    expect(
      h.events.filter((e) => e.type === 'correlation').map((e) => (e.type === 'correlation' ? e.kind : '')),
    ).toEqual(['reader-serial-shared']);
  });
});
