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

describe('hashParams', () => {
  it('reads the query of the fragment', () => {
    expect(hashParams('#/terminals?state=halted&merchant=mer_1').get('state')).toBe('halted');
    expect(hashParams('#/terminals?state=halted&merchant=mer_1').get('merchant')).toBe('mer_1');
    expect(hashParams('#/terminals').get('state')).toBeNull();
  });
});
