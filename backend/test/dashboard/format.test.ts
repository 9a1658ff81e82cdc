/**
 * The dashboard's pure helpers (backend/dashboard/src/format.ts): the state an operator reads, the
 * API query for each state filter, ages against the server's clock, the fragment's query.
 */
import { describe, expect, it } from 'vitest';
import {
  age,
  displayState,
  hashParams,
  serverNow,
  setServerNow,
  stateQuery,
  ticketExpiry,
  type DisplayState,
} from '../../dashboard/src/format';

describe('displayState', () => {
  it('puts halts first, then resume-pending, then staleness, then the last tier', () => {
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
