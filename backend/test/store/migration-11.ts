/**
 * Migration 11 (the decommissioned terminal state) on both engines: the rows a version-10 store
 * holds, inserted with that version's columns, and what this code must read back from them.
 */
import type { TerminalRow } from '../../src/store/types';

export const V10_TERMINALS = {
  /** SQL inserting one merchant and two terminals (one with every column set) into `schema.`. */
  insert: (prefix: string): string => `
    INSERT INTO ${prefix}merchants (id, name, created_at) VALUES ('mer_1', 'Shop', 1);
    INSERT INTO ${prefix}terminals (id, merchant_id, device_jwk, device_jkt, reader_serial, last_counter, state,
      state_reason, interval_s, created_at, last_attested_at, state_changed_at, next_due_at, stale_at,
      app_version, last_tier)
    VALUES ('t1', 'mer_1', '{"kty":"EC"}', 'jkt-1', 'R-1', 7, 'halted', 'why', 300, 1, 2, 3, 4, 5, '1.2.3', 'warning'),
           ('t2', 'mer_1', '{"kty":"EC"}', 'jkt-2', 'R-2', -1, 'resume-pending', NULL, 60, 10, NULL, NULL, NULL,
            NULL, NULL, NULL);`,
  rows: [
    {
      id: 't1',
      merchantId: 'mer_1',
      deviceJwk: '{"kty":"EC"}',
      deviceJkt: 'jkt-1',
      readerSerial: 'R-1',
      lastCounter: 7,
      state: 'halted',
      stateReason: 'why',
      intervalS: 300,
      createdAt: 1,
      lastAttestedAt: 2,
      stateChangedAt: 3,
      nextDueAt: 4,
      staleAt: 5,
      appVersion: '1.2.3',
      lastTier: 'warning',
    },
    {
      id: 't2',
      merchantId: 'mer_1',
      deviceJwk: '{"kty":"EC"}',
      deviceJkt: 'jkt-2',
      readerSerial: 'R-2',
      lastCounter: -1,
      state: 'resume-pending',
      stateReason: null,
      intervalS: 60,
      createdAt: 10,
      lastAttestedAt: null,
      stateChangedAt: null,
      nextDueAt: null,
      staleAt: null,
      appVersion: null,
      lastTier: null,
    },
  ] satisfies TerminalRow[],
} as const;
