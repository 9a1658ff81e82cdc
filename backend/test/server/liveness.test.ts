/**
 * Liveness: the durable next-due time, the stale mark (one alert, even with two processes), no ticket
 * and no transaction while stale, the rule that only an affirming attestation revives, and all of it
 * across a restart of the back-end on the same store file. The clock is injected; the sweeper is
 * driven through `app.liveness.sweepOnce()`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { seedReferenceValues, SimTerminal, APP_VERSION } from '../helpers';
import {
  auditOf,
  makeFileHarness,
  readerOutput,
  sessionTicket,
  transact,
  type FileHarness,
} from '../fleet-helpers';

const dir = mkdtempSync(join(tmpdir(), 'pos-liveness-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

const INTERVAL_S = 60;
const MARGIN_S = 30;
const CONFIG = { attestationIntervalS: INTERVAL_S, livenessMarginS: MARGIN_S, ticketLifetimeS: 300 };

const open: FileHarness[] = [];
async function harness(config: Record<string, unknown> = {}): Promise<FileHarness> {
  const h = await makeFileHarness(join(dir, `l${files++}.sqlite`), { ...CONFIG, ...config });
  open.push(h);
  await seedReferenceValues(h);
  return h;
}
afterEach(async () => {
  for (const h of open.splice(0)) await h.close().catch(() => undefined);
});

async function enrolled(h: FileHarness): Promise<SimTerminal> {
  const t = new SimTerminal(h);
  const res = await t.enroll();
  expect(res.statusCode).toBe(201);
  return t;
}

/** A failing remote-session measurement: the development policy's warning rule. */
function warningExtra(): Record<string, unknown> {
  return {
    measurements: [
      'debugger',
      'inspector',
      'devtools',
      'node-options',
      'run-as-node',
      'suspicious-env',
      'virtual-machine',
      'screen-capture-protection',
    ]
      .map((name) => ({ name, status: 'ok', method: 'test' }))
      .concat([{ name: 'remote-session', status: 'fail', method: 'test' }]),
  };
}

async function metric(h: FileHarness, name: string): Promise<number | undefined> {
  const res = await h.app.inject({ method: 'GET', url: '/metrics' });
  const line = res.body.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

describe('liveness', () => {
  it('each accepted attestation moves the durable deadline and records the app version', async () => {
    const h = await harness();
    const t = await enrolled(h);
    const enrolledAt = h.clock.now();
    expect(await h.store.getTerminal(t.id)).toMatchObject({
      nextDueAt: enrolledAt + INTERVAL_S * 1000,
      staleAt: null,
      appVersion: APP_VERSION,
    });
    h.clock.t += 40_000;
    const res = await t.attest();
    expect(res.statusCode).toBe(200);
    expect(res.json<{ verdict: { tier: string } }>().verdict.tier).toBe('affirming');
    expect((await h.store.getTerminal(t.id))?.nextDueAt).toBe(h.clock.now() + INTERVAL_S * 1000);
    expect(res.json<{ nextAttestationAt: number }>().nextAttestationAt).toBe(
      h.clock.now() + INTERVAL_S * 1000,
    );
  });

  it('a terminal past its deadline by the margin is stale once: one alert, no ticket, no transaction', async () => {
    const h = await harness();
    const t = await enrolled(h);
    const ticket = await sessionTicket(t);
    const due = h.clock.now() + INTERVAL_S * 1000;

    // Past the deadline but within the margin: live.
    h.clock.t = due + MARGIN_S * 1000 - 1;
    expect(await h.app.liveness.sweepOnce()).toBe(0);
    const within = await transact(h, t, readerOutput('visa-no-pin', undefined), ticket);
    expect(within.statusCode).toBe(200);
    expect(within.json<{ approved: boolean }>(), within.body).toMatchObject({ approved: true });

    h.clock.t = due + MARGIN_S * 1000 + 1;
    expect(await h.app.liveness.sweepOnce()).toBe(1);
    expect(await h.app.liveness.sweepOnce()).toBe(0);
    expect((await h.store.getTerminal(t.id))?.staleAt).toBe(h.clock.now());
    await new Promise((r) => setImmediate(r));
    const stale = h.events.filter((e) => e.type === 'stale');
    expect(stale).toEqual([
      {
        type: 'stale',
        at: h.clock.now(),
        merchantId: (await h.store.getTerminal(t.id))?.merchantId,
        terminalId: t.id,
        overdueMs: MARGIN_S * 1000 + 1,
      },
    ]);
    expect(await auditOf(h, 'terminal.stale')).toHaveLength(1);
    expect(await metric(h, 'pos_terminals_stale')).toBe(1);
    expect(await metric(h, 'pos_terminals_stale_marked_total')).toBe(1);

    // Its still-valid session ticket no longer buys a transaction.
    const refused = await transact(h, t, readerOutput('visa-no-pin', undefined), ticket);
    expect(refused.statusCode).toBe(403);
    expect(refused.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_TERMINAL_STALE');

    // A warning verdict does not revive it: no ticket.
    const warned = await t.attest('periodic', warningExtra());
    expect(warned.statusCode).toBe(403);
    expect(warned.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_TERMINAL_STALE');
    expect((await h.store.getTerminal(t.id))?.staleAt).not.toBeNull();

    // An affirming one does: a ticket, a new deadline, the mark cleared (audited).
    const revived = await t.attest();
    expect(revived.statusCode).toBe(200);
    expect(revived.json<{ ticket?: unknown }>().ticket).toBeDefined();
    expect(await h.store.getTerminal(t.id)).toMatchObject({
      staleAt: null,
      nextDueAt: h.clock.now() + INTERVAL_S * 1000,
    });
    expect(await auditOf(h, 'terminal.live')).toHaveLength(1);
    expect(await metric(h, 'pos_terminals_stale')).toBe(0);
    expect(await h.app.liveness.sweepOnce()).toBe(0);
  });

  it('a warning verdict keeps a live terminal live (moves its deadline)', async () => {
    const h = await harness();
    const t = await enrolled(h);
    h.clock.t += 50_000;
    const warned = await t.attest('periodic', warningExtra());
    expect(warned.statusCode).toBe(200);
    expect(warned.json<{ verdict: { tier: string } }>().verdict.tier).toBe('warning');
    expect((await h.store.getTerminal(t.id))?.nextDueAt).toBe(h.clock.now() + INTERVAL_S * 1000);
  });

  it('an overdue terminal is refused before any sweep ran (the check reads the deadline itself)', async () => {
    const h = await harness();
    const t = await enrolled(h);
    const ticket = await sessionTicket(t);
    h.clock.t += (INTERVAL_S + MARGIN_S) * 1000 + 1;
    const refused = await transact(h, t, readerOutput('visa-no-pin', undefined), ticket);
    expect(refused.statusCode).toBe(403);
    expect(refused.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_TERMINAL_STALE');
    // The check marked it, alerting once; the sweeper finds nothing left to mark.
    expect(await auditOf(h, 'terminal.stale')).toHaveLength(1);
    expect(await h.app.liveness.sweepOnce()).toBe(0);
    // An affirming attestation late is still accepted: it revives the terminal.
    const revived = await t.attest();
    expect(revived.statusCode).toBe(200);
    expect(revived.json<{ ticket?: unknown }>().ticket).toBeDefined();
  });

  it('holds across a restart: the deadline is in the store', async () => {
    let h = await harness({ livenessSweepS: 3600 });
    const t = await enrolled(h);
    const ticket = await sessionTicket(t);
    h = await h.restart();
    open.push(h);
    // Restarted within the deadline: nothing is stale, the ticket works.
    await h.app.liveness.sweepOnce();
    const ok = await transact(h, t, readerOutput('visa-no-pin', undefined), ticket);
    expect(ok.statusCode).toBe(200);

    // Down past the deadline and the margin, then restarted with the clock moved forward.
    await h.close();
    h.clock.t += (INTERVAL_S + MARGIN_S) * 1000 + 5_000;
    h = await h.restart();
    open.push(h);
    await h.app.liveness.sweepOnce();
    expect(await auditOf(h, 'terminal.stale')).toHaveLength(1);
    expect((await h.store.getTerminal(t.id))?.staleAt).not.toBeNull();
    const refused = await transact(h, t, readerOutput('visa-no-pin', undefined), ticket);
    expect(refused.statusCode).toBe(403);
    expect(refused.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_TERMINAL_STALE');

    // Another restart does not alert again.
    h = await h.restart();
    open.push(h);
    await h.app.liveness.sweepOnce();
    expect(await auditOf(h, 'terminal.stale')).toHaveLength(1);
  });

  it('two processes on one store: exactly one marks and alerts', async () => {
    const a = await harness();
    const b = await a.twin();
    open.push(b);
    const terminals = [await enrolled(a), await enrolled(a), await enrolled(a)];
    a.clock.t += (INTERVAL_S + MARGIN_S) * 1000 + 1;
    const [na, nb] = await Promise.all([a.app.liveness.sweepOnce(), b.app.liveness.sweepOnce()]);
    expect(na + nb).toBe(terminals.length);
    expect(await auditOf(a, 'terminal.stale')).toHaveLength(terminals.length);
    expect(await a.store.countStale()).toBe(terminals.length);
  });
});
