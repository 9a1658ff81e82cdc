/** docs/attestation.md shows the shipped policies in full; this keeps the copies equal to the code. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, PRODUCTION_POLICY, parsePolicy } from '../../src/attestation/index';

const doc = readFileSync(fileURLToPath(new URL('../../../docs/attestation.md', import.meta.url)), 'utf8');

function policyBlock(version: string): unknown {
  const at = doc.indexOf(`<!-- policy:${version} -->`);
  expect(at, `docs/attestation.md has the ${version} policy`).toBeGreaterThan(0);
  const start = doc.indexOf('```json\n', at) + '```json\n'.length;
  const end = doc.indexOf('\n```', start);
  return JSON.parse(doc.slice(start, end)) as unknown;
}

describe('docs/attestation.md', () => {
  it.each([DEFAULT_POLICY, PRODUCTION_POLICY])('shows policy $version as the code has it', (policy) => {
    const shown = policyBlock(policy.version);
    expect(shown).toEqual(policy);
    expect(parsePolicy(shown).ok).toBe(true);
  });
});
