/**
 * recordAttestationAudited: a verdict recorded step by step (halted or resume-pending terminal,
 * contraindicated verdict, enrollment) and its audit entry are one transaction, on SQLite and
 * PostgreSQL: both are stored and linked, or (when the entry cannot be made) neither is. The fault
 * tests kill the process under load (test/test/faults/backend-crash.test.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { AttestationRow, AuditDraftRow, AuditRow } from '../../src/store/types';
import { dropSchemas, storeEngines } from '../pg-helpers';

const T0 = 1_800_000_000_000;

function chain(prev: AuditRow | undefined, d: AuditDraftRow): AuditRow {
  const seq = (prev?.seq ?? 0) + 1;
  const prevHash = prev?.hash ?? '0';
  return { ...d, seq, prevHash, hash: `${prevHash}:${seq}` };
}

const row = (id: string): AttestationRow => ({
  id,
  terminalId: 't1',
  at: T0,
  purpose: 'periodic',
  counter: 1,
  tier: 'contraindicated',
  policyVersion: 'p',
  evidenceHash: `e-${id}`,
  verdict: {},
});
const draft = (id: string): AuditDraftRow => ({
  at: new Date(T0).toISOString(),
  actor: 'system',
  action: 'attestation.verdict',
  subject: 't1',
  data: { attestation: id },
});

const schemas: string[] = [];
afterAll(() => dropSchemas(schemas), 120_000);

const engines = storeEngines('aa', schemas);

describe.each(engines)('recordAttestationAudited (%s)', (_engine, open) => {
  it('stores the verdict and its chained entry together, or neither', async () => {
    const store = await open();
    try {
      await store.createMerchant({ id: 'mer_1', name: 'Shop', createdAt: T0 });
      await store.createTerminal({
        id: 't1',
        merchantId: 'mer_1',
        deviceJwk: '{"kty":"EC"}',
        deviceJkt: 'jkt1',
        readerSerial: 'R1',
        lastCounter: -1,
        state: 'halted',
        stateReason: null,
        intervalS: 300,
        createdAt: T0,
        lastAttestedAt: null,
      });
      const first = await store.recordAttestationAudited(row('a1'), draft('a1'), chain);
      expect(first).toMatchObject({ seq: 1, prevHash: '0', data: { attestation: 'a1' } });
      const second = await store.recordAttestationAudited(row('a2'), draft('a2'), chain);
      expect(second.prevHash).toBe(first.hash);

      // The entry cannot be made: the verdict is not stored either.
      const failing = (): AuditRow => {
        throw new Error('chain failed');
      };
      await expect(store.recordAttestationAudited(row('a3'), draft('a3'), failing)).rejects.toThrow(
        'chain failed',
      );
      expect((await store.listAttestations('t1', 10)).map((r) => r.id).sort()).toEqual(['a1', 'a2']);
      expect((await store.listAudit(0, 10)).map((e) => e.data['attestation'])).toEqual(['a1', 'a2']);
    } finally {
      await store.close();
    }
  });
});
