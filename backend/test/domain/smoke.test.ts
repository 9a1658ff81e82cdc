import { describe, expect, it } from 'vitest';
import { appraiseEvidence, DEFAULT_POLICY, evaluatePolicy } from '../../src/attestation/index';
import { deviceKey, input } from './helpers';

describe('smoke', () => {
  it('a good evidence is affirming', async () => {
    const key = deviceKey();
    const a = await appraiseEvidence(input(key));
    const v = evaluatePolicy(DEFAULT_POLICY, a);
    expect(a.outcomes.filter((o) => o.status !== 'pass')).toEqual([]);
    expect(v.tier).toBe('affirming');
  });
});
