import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REGISTRIES, renderErrorsDoc } from '../src/docs/errors-doc';

describe('error registries', () => {
  it('docs/errors.md is the generated list of every registry (run `npm run docs:errors` after changing one)', () => {
    const committed = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    expect(committed).toBe(renderErrorsDoc());
  });

  it('every code is POS_ERR_ in upper snake case, documented, and owned by exactly one package', () => {
    const seen = new Map<string, string>();
    for (const r of REGISTRIES) {
      for (const [code, meaning] of Object.entries(r.codes)) {
        expect(code).toMatch(/^POS_ERR_[A-Z0-9]+(?:_[A-Z0-9]+)*$/);
        expect(meaning.length).toBeGreaterThan(10);
        expect(seen.get(code), `${code} is in ${seen.get(code)} and ${r.pkg}`).toBeUndefined();
        seen.set(code, r.pkg);
      }
    }
    expect(seen.size).toBeGreaterThan(20);
  });
});
