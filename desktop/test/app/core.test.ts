/**
 * The UI core (desktop/src/app/core.ts) over the real transaction engine and the engine's port fakes:
 * commands, the random pad layout, snapshots against the contract's schema, halts, inactivity.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CommandResultSchema, SnapshotSchema, type Snapshot } from '../../src/api/contract';
import {
  createCoreWith,
  CoreStartError,
  newPadLayout,
  type CoreEvents,
  type CoreHost,
  merchantReasons,
} from '../../src/app/core';
import { attestAnswer } from '../../src/core/backend/ports';
import { TransactionEngine } from '../../src/core/transaction/engine';
import { BASE_MS, Rig, settle } from '../txn-fakes';

interface Harness {
  readonly rig: Rig;
  readonly snaps: Snapshot[];
  readonly events: () => CoreEvents;
  engine(): TransactionEngine;
  closed: number;
  attests: number;
  last(): Snapshot;
}

async function setup(opts: { enrolled?: boolean; inactivityMs?: number } = {}) {
  const rig = new Rig();
  let enrolled = opts.enrolled ?? true;
  let events: CoreEvents | undefined;
  let engine: TransactionEngine | undefined;
  const h: Harness = {
    rig,
    snaps: [],
    events: () => {
      if (events === undefined) throw new Error('not started');
      return events;
    },
    engine: () => {
      if (engine === undefined) throw new Error('no engine');
      return engine;
    },
    closed: 0,
    attests: 0,
    last: () => {
      const s = h.snaps.at(-1);
      if (s === undefined) throw new Error('no snapshot');
      return s;
    },
  };
  const host: CoreHost = {
    start(ev) {
      events = ev;
      if (!enrolled) return Promise.resolve({ ok: true, running: undefined });
      const e = new TransactionEngine({
        reader: rig.reader,
        backend: rig.backend,
        push: rig.push,
        clock: rig.clock,
      });
      engine = e;
      return Promise.resolve({
        ok: true,
        running: {
          terminalId: 'term_test',
          backendUrl: 'http://127.0.0.1:9',
          lastVerdict: { tier: 'affirming', at: BASE_MS - 1000, reasons: [] },
          engine: e,
          currentHalt: () => rig.push.current(),
          attestNow: () => {
            h.attests++;
            return Promise.resolve({ ok: true });
          },
          close: () => {
            h.closed++;
            e.dispose();
            return Promise.resolve();
          },
        },
      });
    },
    enroll: ({ code }) => {
      if (code === 'wrong-code')
        return Promise.resolve({ ok: false, code: 'POS_ERR_ENROLLMENT_CODE', detail: 'no' });
      enrolled = true;
      return Promise.resolve({ ok: true });
    },
  };
  const core = await createCoreWith(host, {
    shellKind: 'browser',
    clock: rig.clock,
    ...(opts.inactivityMs === undefined ? {} : { inactivityMs: opts.inactivityMs }),
  });
  core.subscribe((s) => h.snaps.push(s));
  return { core, h };
}

type Core = Awaited<ReturnType<typeof setup>>['core'];

/** A sale up to the open PIN pad. */
async function toPad(core: Core, h: Harness, amountMinor = 1234): Promise<number[]> {
  expect(await core.handle({ cmd: 'sale.start', amountMinor, currency: 'EUR' })).toEqual({ ok: true });
  expect(h.last().sale.cardPrompt).toBe('insert-or-tap');
  h.rig.answer('start', true);
  await settle();
  h.rig.presentCard();
  expect(h.last().sale.state).toBe('attest');
  expect(h.last().sale.cardPrompt).toBe('reading');
  h.rig.answer('prePin', true);
  await settle();
  h.rig.answer('ticket', true);
  await settle();
  const pad = h.last().sale.pad;
  expect(pad).toBeDefined();
  return pad?.layout ?? [];
}

describe('pad layout', () => {
  it('is a permutation of 0-9, and crypto-random layouts differ', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const l = newPadLayout();
      expect([...l].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      seen.add(l.join(''));
    }
    expect(seen.size).toBeGreaterThan(45);
  });

  it('is a permutation for any random source (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 9, maxLength: 9 }), (rs) => {
        let i = 0;
        const l = newPadLayout((max) => (rs[i++] ?? 0) % max);
        return new Set(l).size === 10 && l.every((d) => d >= 0 && d <= 9);
      }),
    );
  });
});

describe('UI core', () => {
  it('takes a sale to approved; positions map to digits through this entry’s layout', async () => {
    const { core, h } = await setup();
    const layout = await toPad(core, h);
    // Type 1 2 3 4 by finding their positions.
    for (const d of [1, 2, 3, 4]) {
      const position = layout.indexOf(d);
      expect(await core.handle({ cmd: 'pin.key', position })).toEqual({ ok: true });
    }
    expect(h.last().sale.pad?.digits).toBe(4);
    expect(await core.handle({ cmd: 'pin.ok' })).toEqual({ ok: true });
    expect(h.rig.pinRequests).toHaveLength(1);
    expect(h.rig.pinRequests[0]?.sent).toEqual([1, 2, 3, 4]);
    expect(h.rig.pinRequests[0]?.gateOk).toBe(true);
    expect(h.last().sale.pad).toBeUndefined();
    h.rig.answer('pin', true);
    await settle();
    h.rig.answer('submit', true);
    await settle();
    const s = h.last().sale;
    expect(s.state).toBe('result');
    expect(s.result).toEqual({ status: 'approved' });
    expect(s.cardPrompt).toBe('remove');
    expect(h.engine().pinWiped()).toBe(true);
    // Every snapshot is valid and seq strictly increases.
    let seq = -1;
    for (const snap of h.snaps) {
      expect(SnapshotSchema.safeParse(snap).success).toBe(true);
      expect(snap.seq).toBeGreaterThan(seq);
      seq = snap.seq;
    }
    expect(await core.handle({ cmd: 'sale.new' })).toEqual({ ok: true });
    expect(h.last().sale).toEqual({ state: 'idle' });
    await core.close();
  });

  it('makes a new layout for every PIN entry', async () => {
    const { core, h } = await setup();
    const layouts: string[] = [];
    for (let i = 0; i < 4; i++) {
      const layout = await toPad(core, h);
      layouts.push(layout.join(''));
      expect(await core.handle({ cmd: 'sale.cancel' })).toEqual({ ok: true });
      expect(h.last().sale.pad).toBeUndefined();
      expect(await core.handle({ cmd: 'sale.new' })).toEqual({ ok: true });
    }
    // 4 crypto-random permutations of 10: all equal with probability (1/10!)^3.
    expect(new Set(layouts).size).toBeGreaterThan(1);
    await core.close();
  });

  it('pin.clear wipes every typed digit', async () => {
    const { core, h } = await setup();
    await toPad(core, h);
    for (const position of [0, 5, 9]) await core.handle({ cmd: 'pin.key', position });
    expect(h.last().sale.pad?.digits).toBe(3);
    expect(await core.handle({ cmd: 'pin.clear' })).toEqual({ ok: true });
    expect(h.last().sale.pad?.digits).toBe(0);
    expect(h.engine().pinWiped()).toBe(true);
    expect(await core.handle({ cmd: 'pin.ok' })).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_TXN_PIN_LENGTH',
    });
    await core.close();
  });

  it('a halt closes the pad, wipes the digits and shows the reason; PIN keys are refused', async () => {
    const { core, h } = await setup();
    await toPad(core, h);
    await core.handle({ cmd: 'pin.key', position: 3 });
    await core.handle({ cmd: 'pin.key', position: 4 });
    h.rig.push.doHalt('Suspicious activity: call your provider');
    const s = h.last();
    expect(s.sale.pad).toBeUndefined();
    expect(s.sale.state).toBe('result');
    expect(s.sale.result).toMatchObject({ status: 'halted', code: 'POS_ERR_DESKTOP_TXN_HALTED' });
    expect(s.halt).toEqual({ reason: 'Suspicious activity: call your provider' });
    expect(SnapshotSchema.safeParse(s).success).toBe(true);
    expect(h.engine().pinWiped()).toBe(true);
    expect(h.rig.aborts).toBeGreaterThan(0);
    expect(h.rig.pinRequests).toHaveLength(0);
    expect(await core.handle({ cmd: 'pin.key', position: 1 })).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_TXN_STATE',
    });
    // No new sale while halted; after the resume there is.
    expect(await core.handle({ cmd: 'sale.start', amountMinor: 100, currency: 'EUR' })).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_TXN_HALTED',
    });
    h.rig.push.doResume();
    expect(h.last().halt).toBeUndefined();
    expect(await core.handle({ cmd: 'sale.start', amountMinor: 100, currency: 'EUR' })).toEqual({ ok: true });
    await core.close();
  });

  it('closes the pad after inactivity; each key moves the deadline', async () => {
    const { core, h } = await setup({ inactivityMs: 20_000 });
    await toPad(core, h);
    const first = h.last().sale.pad?.deadline ?? 0;
    expect(first).toBe(h.rig.clock.now() + 20_000);
    h.rig.clock.advance(15_000);
    await core.handle({ cmd: 'pin.key', position: 2 });
    const second = h.last().sale.pad?.deadline ?? 0;
    expect(second).toBe(first + 15_000);
    h.rig.clock.advance(19_999);
    expect(h.last().sale.pad).toBeDefined();
    h.rig.clock.advance(1);
    const s = h.last().sale;
    expect(s.pad).toBeUndefined();
    expect(s.result).toMatchObject({ status: 'error', code: 'POS_ERR_DESKTOP_TXN_TIMEOUT_PIN' });
    expect(h.engine().pinWiped()).toBe(true);
    await core.close();
  });

  it('the deadline never passes the engine’s own PIN timeout', async () => {
    const { core, h } = await setup({ inactivityMs: 50_000 });
    await toPad(core, h);
    const opened = h.rig.clock.now();
    for (let i = 0; i < 5; i++) {
      h.rig.clock.advance(10_000);
      await core.handle({ cmd: 'pin.key', position: 1 });
      expect(h.last().sale.pad?.deadline).toBeLessThanOrEqual(opened + 60_000);
    }
    await core.close();
  });

  it('refuses invalid commands with POS_ERR_DESKTOP_API_INVALID and never throws', async () => {
    const { core } = await setup();
    for (const bad of [
      undefined,
      null,
      42,
      'sale.start',
      {},
      { cmd: 'pin.digit', digit: 1 },
      { cmd: 'pin.key', position: 10 },
      { cmd: 'pin.key', position: 1.5 },
      { cmd: 'pin.key', position: 1, digit: 1 },
      { cmd: 'sale.start', amountMinor: 0, currency: 'EUR' },
      { cmd: 'sale.start', amountMinor: 100, currency: 'eur' },
      { cmd: 'enroll', backendUrl: 'javascript:alert(1)', code: 'abcdef' },
    ]) {
      const r = await core.handle(bad);
      expect(r).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_API_INVALID' });
    }
    await fc.assert(
      fc.asyncProperty(fc.anything(), async (input) => {
        const r = await core.handle(input);
        expect(CommandResultSchema.safeParse(r).success).toBe(true);
      }),
      { numRuns: 300 },
    );
    await core.close();
  });

  it('snapshots stay valid under random command sequences (property)', async () => {
    const cmd = fc.oneof(
      fc.record({
        cmd: fc.constant('sale.start'),
        amountMinor: fc.integer({ min: 1, max: 99_999_999 }),
        currency: fc.constant('EUR'),
      }),
      fc.constant({ cmd: 'sale.cancel' }),
      fc.constant({ cmd: 'sale.new' }),
      fc.record({ cmd: fc.constant('pin.key'), position: fc.integer({ min: 0, max: 9 }) }),
      fc.constant({ cmd: 'pin.clear' }),
      fc.constant({ cmd: 'pin.ok' }),
      fc.constant({ cmd: 'attest.now' }),
    );
    const step = fc.oneof(
      cmd.map((c) => ({ c })),
      fc.constantFrom('card', 'answer-ok', 'answer-fail', 'halt', 'resume', 'tick'),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
        const { core, h } = await setup();
        for (const s of steps) {
          if (typeof s === 'object') {
            const r = await core.handle(s.c);
            expect(CommandResultSchema.safeParse(r).success).toBe(true);
          } else if (s === 'card') h.rig.presentCard();
          else if (s === 'answer-ok') h.rig.answer(undefined, true);
          else if (s === 'answer-fail') h.rig.answer(undefined, false);
          else if (s === 'halt') h.rig.push.doHalt();
          else if (s === 'resume') h.rig.push.doResume();
          else h.rig.clock.advance(7_000);
          await settle();
          const last = h.last();
          expect(SnapshotSchema.safeParse(last).success).toBe(true);
          // The pad is in the snapshot exactly while the engine's pad is open.
          expect(last.sale.pad !== undefined).toBe(h.engine().snapshot().padOpen);
        }
        for (const r of h.rig.pinRequests) expect(r.gateOk).toBe(true);
        await core.close();
        expect(h.engine().pinWiped()).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('shows reader, back-end link, push and verdict as the terminal reports them', async () => {
    const { core, h } = await setup();
    expect(h.last()).toMatchObject({
      v: 1,
      shell: 'browser',
      enrolled: true,
      terminalId: 'term_test',
      attestation: { tier: 'affirming', at: BASE_MS - 1000, reasons: [] },
      backend: { link: 'unknown', push: false, url: 'http://127.0.0.1:9' },
    });
    const ev = h.events();
    ev.reader({ state: 'connected', serial: 'SIM-0001' });
    expect(h.last().reader).toEqual({ state: 'connected', serial: 'SIM-0001' });
    ev.reader({ state: 'disconnected', detail: 'The card reader was disconnected. Reconnecting…' });
    expect(h.last().reader.state).toBe('disconnected');
    ev.push(true);
    expect(h.last().backend).toMatchObject({ link: 'up', push: true });
    ev.backendLink('down');
    expect(h.last().backend.link).toBe('down');
    ev.verdict({ tier: 'warning', at: BASE_MS, reasons: ['POS_ERR_ATTEST_VM'], halted: false });
    expect(h.last().attestation).toEqual({ tier: 'warning', at: BASE_MS, reasons: ['POS_ERR_ATTEST_VM'] });
    expect(h.last().backend.link).toBe('up');
    ev.verdict({ tier: 'something-new', at: BASE_MS, reasons: Array(40).fill('x'.repeat(400)) as string[] });
    expect(h.last().attestation.tier).toBe('unknown');
    ev.verdict({ tier: 'contraindicated', at: BASE_MS, reasons: [], halted: true });
    expect(h.last().halt?.reason).toMatch(/halted/);
    for (const s of h.snaps) expect(SnapshotSchema.safeParse(s).success).toBe(true);
    expect(await core.handle({ cmd: 'attest.now' })).toEqual({ ok: true });
    expect(h.attests).toBe(1);
    await core.close();
  });

  it('a pushed resume clears a halt a verdict reported, and attests at once', async () => {
    const { core, h } = await setup();
    h.rig.push.doHalt('incident 9');
    h.events().verdict({ tier: 'contraindicated', at: BASE_MS, reasons: [], halted: true });
    expect(h.last().halt).toEqual({ reason: 'incident 9' });
    h.rig.push.doResume();
    expect(h.last().halt).toBeUndefined();
    expect(h.attests).toBe(1);
    await core.close();
  });

  it('waits for enrollment when not enrolled, then starts', async () => {
    const { core, h } = await setup({ enrolled: false });
    expect(h.last()).toMatchObject({ enrolled: false, sale: { state: 'idle' } });
    expect(await core.handle({ cmd: 'sale.start', amountMinor: 100, currency: 'EUR' })).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_NOT_ENROLLED',
    });
    expect(
      await core.handle({ cmd: 'enroll', backendUrl: 'http://127.0.0.1:9', code: 'wrong-code' }),
    ).toMatchObject({ ok: false, code: 'POS_ERR_ENROLLMENT_CODE' });
    expect(await core.handle({ cmd: 'enroll', backendUrl: 'http://127.0.0.1:9', code: 'pos_enr_x' })).toEqual(
      {
        ok: true,
      },
    );
    expect(h.last()).toMatchObject({ enrolled: true, terminalId: 'term_test' });
    expect(
      await core.handle({ cmd: 'enroll', backendUrl: 'http://127.0.0.1:9', code: 'pos_enr_x' }),
    ).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_ALREADY_ENROLLED',
    });
    expect(await core.handle({ cmd: 'sale.start', amountMinor: 100, currency: 'EUR' })).toEqual({ ok: true });
    await core.close();
  });

  it('close ends the sale (pad closed, reader aborted) and refuses commands after', async () => {
    const { core, h } = await setup();
    await toPad(core, h);
    await core.handle({ cmd: 'pin.key', position: 0 });
    await core.close();
    expect(h.closed).toBe(1);
    expect(h.engine().pinWiped()).toBe(true);
    expect(h.rig.aborts).toBeGreaterThan(0);
    expect(await core.handle({ cmd: 'sale.new' })).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
    });
  });

  it('a failed start rejects with its code', async () => {
    const host: CoreHost = {
      start: () =>
        Promise.resolve({ ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_PERMISSIONS', detail: 'mode' }),
      enroll: () => Promise.resolve({ ok: true }),
    };
    await expect(createCoreWith(host, { shellKind: 'browser' })).rejects.toBeInstanceOf(CoreStartError);
  });
});

describe('verdict reasons for the merchant', () => {
  it("the back-end's words with the code, the code alone when there are no words", () => {
    const a = attestAnswer({
      verdict: {
        tier: 'contraindicated',
        reasons: [
          { code: 'POS_ERR_ATTEST_CODE_HASH', text: 'The app is not an approved release.' },
          { code: 'POS_ERR_X', text: '' },
        ],
        policyVersion: 'dev-2',
        trustVector: {},
      },
      halted: true,
      nextAttestationAt: BASE_MS,
      attestationIntervalS: 60,
    } as Parameters<typeof attestAnswer>[0]);
    expect(a.reasons).toEqual(['POS_ERR_ATTEST_CODE_HASH', 'POS_ERR_X']);
    expect(merchantReasons(a)).toEqual([
      'The app is not an approved release. (POS_ERR_ATTEST_CODE_HASH)',
      'POS_ERR_X',
    ]);
    expect(merchantReasons({})).toEqual([]);
  });
});
