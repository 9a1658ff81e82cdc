/**
 * The dashboard's pure helpers (backend/dashboard/src/format.ts): the state an operator reads, the
 * API query for each state filter, ages against the server's clock, the fragment's query, a halt's
 * delivery counted per terminal and message kind.
 */
import { describe, expect, it } from 'vitest';
import {
  age,
  deliveryCounts,
  deliverySummary,
  displayState,
  hashParams,
  serverNow,
  setServerNow,
  stateQuery,
  ticketExpiry,
  type DeliveryMessage,
  type DisplayState,
} from '../../dashboard/src/format';

describe('displayState', () => {
  it('puts halts first, then resume-pending, then staleness, then the last tier', () => {
    expect(displayState({ state: 'decommissioned', stale: true, lastTier: 'affirming' })).toBe(
      'decommissioned',
    );
    expect(stateQuery('decommissioned')).toEqual({ state: 'decommissioned' });
    expect(displayState({ state: 'halted', stale: true, lastTier: 'affirming' })).toBe('halted');
    expect(displayState({ state: 'resume-pending', stale: true, lastTier: 'affirming' })).toBe(
      'resume-pending',
    );
    expect(displayState({ state: 'active', stale: true, lastTier: 'affirming' })).toBe('stale');
    expect(displayState({ state: 'active', stale: false, lastTier: 'affirming' })).toBe('trusted');
    expect(displayState({ state: 'active', stale: false, lastTier: 'warning' })).toBe('warning');
    expect(displayState({ state: 'active', stale: false, lastTier: null })).toBe('unverified');
    expect(displayState({ state: 'active', stale: false, lastTier: 'contraindicated' })).toBe('unverified');
  });
});

describe('stateQuery', () => {
  it('asks the API for exactly the terminals the fleet summary counts in that state', () => {
    const cases: [DisplayState | '', Record<string, string>][] = [
      ['', {}],
      ['trusted', { state: 'active', stale: 'false', tier: 'affirming' }],
      ['warning', { state: 'active', stale: 'false', tier: 'warning' }],
      ['halted', { state: 'halted' }],
      ['resume-pending', { state: 'resume-pending' }],
      ['stale', { state: 'active', stale: 'true' }],
      ['unverified', { state: 'active', stale: 'false' }],
    ];
    for (const [state, query] of cases) expect(stateQuery(state), state).toEqual(query);
  });
});

describe('age', () => {
  it('measures against the server clock', () => {
    setServerNow(Date.UTC(2026, 10, 29, 12, 0, 0));
    const now = serverNow();
    expect(Math.abs(now - Date.UTC(2026, 10, 29, 12, 0, 0))).toBeLessThan(60_000);
    expect(age(null, now)).toBe('never');
    expect(age(now - 5_000, now)).toBe('5 s ago');
    expect(age(now - 125_000, now)).toBe('2 min ago');
    expect(age(now - 3 * 3_600_000, now)).toBe('3 h ago');
    expect(age(now - 2 * 86_400_000, now)).toBe('2 d ago');
    expect(age(now + 10_000, now)).toBe('just now');
  });
});

describe('ticketExpiry', () => {
  const now = Date.UTC(2026, 10, 29, 12, 0, 0);
  it('says how far ahead a living ticket expires, rounded up to whole seconds', () => {
    expect(ticketExpiry({ expiresAt: now + 42_000, expired: false }, now)).toBe('in 42 s');
    expect(ticketExpiry({ expiresAt: now + 41_001, expired: false }, now)).toBe('in 42 s');
    expect(ticketExpiry({ expiresAt: now + 1, expired: false }, now)).toBe('in 1 s');
    expect(ticketExpiry({ expiresAt: now + 150_000, expired: false }, now)).toBe('in 2 min');
    expect(ticketExpiry({ expiresAt: now + 2 * 3_600_000, expired: false }, now)).toBe('in 2 h');
  });
  it('says how long ago an expired one expired', () => {
    expect(ticketExpiry({ expiresAt: now - 3 * 60_000, expired: true }, now)).toBe('expired 3 min ago');
    expect(ticketExpiry({ expiresAt: now - 5_000, expired: true }, now)).toBe('expired 5 s ago');
    // At its expiry it has expired (the server refuses a ticket at exp).
    expect(ticketExpiry({ expiresAt: now, expired: false }, now)).toBe('expired 0 s ago');
    // The page kept open past the expiry: expired, though the answer said it was not yet.
    expect(ticketExpiry({ expiresAt: now - 61_000, expired: false }, now)).toBe('expired 1 min ago');
  });
  it("takes the server's expired over a browser clock that lags behind it", () => {
    expect(ticketExpiry({ expiresAt: now + 10_000, expired: true }, now)).toBe('expired 0 s ago');
  });
  it('says when there is none', () => {
    expect(ticketExpiry(null, now)).toBe('no ticket');
  });
});

describe('hashParams', () => {
  it('reads the query of the fragment', () => {
    expect(hashParams('#/terminals?state=halted&merchant=mer_1').get('state')).toBe('halted');
    expect(hashParams('#/terminals?state=halted&merchant=mer_1').get('merchant')).toBe('mer_1');
    expect(hashParams('#/terminals').get('state')).toBeNull();
  });
});

describe('deliveryCounts and deliverySummary', () => {
  const msg = (terminalId: string, kind: 'halt' | 'resume', acked: boolean): DeliveryMessage => ({
    terminalId,
    kind,
    ackedAt: acked ? 1_000 : null,
  });

  it('counts one terminal halted and then resumed once per kind, not as two terminals', () => {
    const rows = [msg('trm_a', 'halt', true), msg('trm_a', 'resume', false)];
    expect(deliveryCounts(rows)).toEqual([
      { kind: 'halt', terminals: 1, acknowledged: 1, pending: 0 },
      { kind: 'resume', terminals: 1, acknowledged: 0, pending: 1 },
    ]);
    expect(deliverySummary(rows)).toEqual({
      text: 'Halt acknowledged by 1 of 1 terminal; resume acknowledged by 0 of 1 terminal (1 pending).',
      complete: false,
    });
    expect(deliverySummary([msg('trm_a', 'halt', true), msg('trm_a', 'resume', true)])).toEqual({
      text: 'Halt acknowledged by 1 of 1 terminal; resume acknowledged by 1 of 1 terminal.',
      complete: true,
    });
  });

  it('words halt messages alone as before, per distinct terminal', () => {
    expect(deliverySummary([msg('trm_a', 'halt', true)])).toEqual({
      text: 'Acknowledged by 1 of 1 terminal.',
      complete: true,
    });
    expect(deliverySummary([msg('trm_a', 'halt', true), msg('trm_b', 'halt', false)])).toEqual({
      text: 'Acknowledged by 1 of 2 terminals (1 pending).',
      complete: false,
    });
    // Two halt messages to one terminal: one terminal, acknowledged only once both are.
    expect(deliverySummary([msg('trm_a', 'halt', true), msg('trm_a', 'halt', false)]).text).toBe(
      'Acknowledged by 0 of 1 terminal (1 pending).',
    );
  });

  it('counts each kind over its own terminals when they differ', () => {
    const rows = [
      msg('trm_a', 'halt', true),
      msg('trm_b', 'halt', true),
      msg('trm_c', 'halt', false),
      msg('trm_a', 'resume', true),
    ];
    expect(deliverySummary(rows).text).toBe(
      'Halt acknowledged by 2 of 3 terminals (1 pending); resume acknowledged by 1 of 1 terminal.',
    );
    // Order of the rows does not matter: halt first, then resume.
    expect(deliverySummary([...rows].reverse()).text).toBe(deliverySummary(rows).text);
  });

  it('names the kind when there are resume notices only, and says when there is no message', () => {
    expect(deliverySummary([msg('trm_a', 'resume', false)])).toEqual({
      text: 'Resume acknowledged by 0 of 1 terminal (1 pending).',
      complete: false,
    });
    expect(deliveryCounts([])).toEqual([]);
    expect(deliverySummary([])).toEqual({ text: 'No terminal to deliver to.', complete: true });
  });
});
