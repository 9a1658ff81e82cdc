/**
 * Review issue 5 #2 on PostgreSQL: two pools (two back-end processes) race a lift (or the terminal
 * resume shortcut) against a new halt of the same terminal, many times. Invariant after each round:
 * an active halt with a `halt` outbox row for the terminal implies the terminal is halted, and the
 * terminal's last outbox message is a halt. One fresh schema per test, dropped at the end.
 */
import { afterAll, expect, it } from 'vitest';
import { openPostgresStore } from '../../src/store/postgres';
import type { HaltRow, Store } from '../../src/store/types';
import { describePg, dropSchemas, freshSchemaName, PG_URL } from '../pg-helpers';

const schemas: string[] = [];
afterAll(() => dropSchemas(schemas), 120_000);

const T0 = 1_800_000_000_000;
const ROUNDS = 40;

async function twoProcesses(): Promise<[Store, Store]> {
  const schema = freshSchemaName('hr');
  schemas.push(schema);
  const a = await openPostgresStore({ url: PG_URL, schema, max: 4 });
  const b = await openPostgresStore({ url: PG_URL, schema, max: 4 });
  await a.createMerchant({ id: 'mer_1', name: 'Shop', createdAt: T0 });
  for (const id of ['trm_1', 'trm_2'])
    await a.createTerminal({
      id,
      merchantId: 'mer_1',
      deviceJwk: '{"kty":"EC"}',
      deviceJkt: `jkt-${id}`,
      readerSerial: `R-${id}`,
      lastCounter: -1,
      state: 'active',
      stateReason: null,
      intervalS: 300,
      createdAt: T0,
      lastAttestedAt: null,
    });
  return [a, b];
}

function halt(id: string, at: number, scope: HaltRow['scope'], target: string | null): HaltRow {
  return {
    id,
    scope,
    target,
    reason: `reason ${id}`,
    createdBy: 'operator:op1',
    createdAt: at,
    liftedAt: null,
    liftedBy: null,
  };
}

async function assertInvariant(store: Store, terminalId: string, round: number): Promise<void> {
  const state = (await store.getTerminal(terminalId))?.state;
  for (const h of await store.listHalts({ activeOnly: true, limit: 1000 })) {
    const rows = await store.listHaltDeliveries(h.id);
    if (rows.some((r) => r.kind === 'halt' && r.terminalId === terminalId))
      expect(state, `round ${round}: active ${h.id} has a halt row for ${terminalId}`).toBe('halted');
  }
  if (state === 'halted') {
    const rows = await store.pendingOutbox(terminalId);
    expect(rows.at(-1)?.kind, `round ${round}: last message of ${terminalId}`).toBe('halt');
  }
}

const msg = (at: number) => ({ by: 'operator:op2', at, reason: 'false alarm', stateReason: 'resumed' });

describePg('PostgreSQL: a lift racing a new halt from another pool', () => {
  it('liftHaltAndResume vs createHalt on the same terminals: a halted terminal under every active halt', async () => {
    const [a, b] = await twoProcesses();
    try {
      const ids = ['trm_1', 'trm_2'];
      let at = T0;
      let previous = 'h0';
      await a.createHalt(halt(previous, ++at, 'merchant', 'mer_1'), ids);
      for (let round = 1; round <= ROUNDS; round++) {
        const next = `h${round}`;
        // one pool lifts the previous halt while the other stores the next one (alternating sides)
        const [lifter, halter] = round % 2 === 0 ? [a, b] : [b, a];
        const [lift] = await Promise.all([
          lifter.liftHaltAndResume(previous, msg(++at)),
          halter.createHalt(halt(next, ++at, 'terminal', ids[round % 2] ?? 'trm_1'), ids),
        ]);
        expect(lift.ok).toBe(true);
        for (const id of ids) await assertInvariant(a, id, round);
        previous = next;
      }
      // the last halt lifted with nothing racing: both resume
      const last = await a.liftHaltAndResume(previous, msg(++at));
      expect(last).toMatchObject({ ok: true, resumed: ids, stillHalted: [] });
    } finally {
      await a.close();
      await b.close();
    }
  }, 60_000);

  it('resumeTerminalAndLift vs createHalt: refused or followed by the halt, never resume-pending under it', async () => {
    const [a, b] = await twoProcesses();
    try {
      let at = T0;
      let outcomes = { resumed: 0, refused: 0 };
      for (let round = 1; round <= ROUNDS; round++) {
        await a.createHalt(halt(`ht${round}`, ++at, 'terminal', 'trm_1'), ['trm_1']);
        const [resumer, halter] = round % 2 === 0 ? [a, b] : [b, a];
        const [out] = await Promise.all([
          resumer.resumeTerminalAndLift('trm_1', msg(++at)),
          halter.createHalt(halt(`hm${round}`, ++at, 'merchant', 'mer_1'), ['trm_1']),
        ]);
        if (out.ok) outcomes = { ...outcomes, resumed: outcomes.resumed + 1 };
        else {
          expect(out.code).toBe('still-covered');
          outcomes = { ...outcomes, refused: outcomes.refused + 1 };
        }
        await assertInvariant(a, 'trm_1', round);
        // clear the merchant halt for the next round (nothing racing it)
        const cleared = await a.liftHaltAndResume(`hm${round}`, msg(++at));
        expect(cleared.ok).toBe(true);
        // the terminal halt of this round: lifted by the resume or still active; lift it if active
        if (!out.ok) await a.resumeTerminalAndLift('trm_1', msg(++at));
        await a.transitionTerminalState('trm_1', 'resume-pending', 'active', null, ++at);
        expect((await a.getTerminal('trm_1'))?.state).toBe('active');
      }
      console.log(`resume vs halt over ${ROUNDS} rounds: ${JSON.stringify(outcomes)}`);
      expect(outcomes.resumed + outcomes.refused).toBe(ROUNDS);
    } finally {
      await a.close();
      await b.close();
    }
  }, 60_000);
});
