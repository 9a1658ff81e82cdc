import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main';
import { chainAuditEntry, DEFAULT_POLICY } from '../../src/server/domain';
import { openSqliteStore } from '../../src/store/sqlite';
import { makeHarness, seedReferenceValues, SimTerminal, type Harness } from '../helpers';

let h: Harness;
beforeEach(async () => {
  h = await makeHarness();
  await seedReferenceValues(h);
});
afterEach(async () => {
  await h.close();
});

interface AttestOut {
  verdict: { tier: string; policyVersion: string };
  ticket?: unknown;
}

describe('operator routes', () => {
  it('uploads, shadows and activates policies; verdicts name the enforced version', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const strict = {
      ...DEFAULT_POLICY,
      version: 'strict-2',
      rules: [
        ...DEFAULT_POLICY.rules,
        {
          id: 'no-headless',
          when: { shell: ['headless'] },
          effect: 'contraindicate',
          category: 'configuration',
          reason: { code: 'HEADLESS_REFUSED', text: 'Headless terminals may not work.' },
        },
      ],
    };
    expect((await h.admin('POST', '/v1/policies', { policy: strict })).statusCode).toBe(201);
    expect((await h.admin('POST', '/v1/policies', { policy: strict })).statusCode).toBe(409);
    expect((await h.admin('POST', '/v1/policies', { policy: { version: 'x' } })).statusCode).toBe(400);

    // Shadow: evaluated, not enforced.
    expect((await h.admin('POST', '/v1/policies/strict-2/shadow', { enabled: true })).statusCode).toBe(200);
    const shadowed = (await t.attest()).json<AttestOut>();
    expect(shadowed.verdict.tier).toBe('affirming');
    expect(shadowed.ticket).toBeDefined();
    const stored = await h.store.listAttestations(t.id, 1);
    expect(JSON.stringify(stored[0]?.verdict)).toContain('strict-2');

    // Active: enforced (and contraindicated halts the terminal).
    expect((await h.admin('POST', '/v1/policies/strict-2/activate', {})).statusCode).toBe(200);
    const enforced = (await t.attest()).json<AttestOut>();
    expect(enforced.verdict).toMatchObject({ tier: 'contraindicated', policyVersion: 'strict-2' });
    expect(enforced.ticket).toBeUndefined();
    expect((await h.admin('POST', '/v1/policies/nope/activate', {})).statusCode).toBe(404);
    const list = (await h.admin('GET', '/v1/policies')).json<{
      policies: { version: string; role: string }[];
    }>();
    expect(list.policies).toEqual([expect.objectContaining({ version: 'strict-2', role: 'active' })]);
  });

  it('refuses a policy upload that drops a core verifier (a policy may only add to them)', async () => {
    const lax = { ...DEFAULT_POLICY, version: 'lax-1', requiredVerifiers: [], rules: [] };
    const res = await h.admin('POST', '/v1/policies', { policy: lax });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ error: { code: string; message: string } }>().error).toMatchObject({
      code: 'POS_ERR_POLICY_CORE_VERIFIER_MISSING',
    });
    const noReader = {
      ...DEFAULT_POLICY,
      version: 'no-reader-1',
      requiredVerifiers: DEFAULT_POLICY.requiredVerifiers.filter((v) => v !== 'reader'),
    };
    const res2 = await h.admin('POST', '/v1/policies', { policy: noReader });
    expect(res2.json<{ error: { code: string; message: string } }>().error.message).toContain('reader');
    expect((await h.store.listPolicies()).map((p) => p.version)).toEqual([]);
  });

  it('a 5,000-deep policy upload is a 400 with POS_ERR_POLICY_TOO_DEEP, not a 500', async () => {
    // Built as text: the body is the reviewer's 5,000 nested `not` (no JSON.stringify recursion here).
    const rule = JSON.stringify({ ...DEFAULT_POLICY.rules[0], when: null }).replace(
      '"when":null',
      `"when":${'{"not":'.repeat(5000)}{"shell":["browser"]}${'}'.repeat(5000)}`,
    );
    const policy = JSON.stringify({ ...DEFAULT_POLICY, version: 'deep-1', rules: [] }).replace(
      '"rules":[]',
      `"rules":[${rule}]`,
    );
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/policies',
      headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': 'application/json' },
      payload: `{"policy":${policy}}`,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('POS_ERR_POLICY_TOO_DEEP');
    expect(await h.store.getPolicy('deep-1')).toBeUndefined();
  });

  it('lists and withdraws reference values; a withdrawn release is no longer affirmed', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    const list = (await h.admin('GET', '/v1/reference-values')).json<{ referenceValues: { id: string }[] }>();
    expect(list.referenceValues).toHaveLength(1);
    const id = list.referenceValues[0]?.id ?? '';
    expect((await h.admin('DELETE', `/v1/reference-values/${id}`)).statusCode).toBe(200);
    const out = (await t.attest()).json<AttestOut & { verdict: { reasons: { code: string }[] } }>();
    expect(out.verdict.tier).not.toBe('affirming');
    expect(out.verdict.reasons.map((r) => r.code)).toContain('POS_ERR_ATTEST_RELEASE_UNKNOWN');
  });

  it('exports the audit chain as JSON lines and verifies it', async () => {
    const t = new SimTerminal(h);
    await t.enroll();
    await t.attest();
    await h.admin('POST', `/v1/terminals/${t.id}/halt`, { reason: 'check' });
    await h.admin('POST', `/v1/terminals/${t.id}/resume`, { reason: 'ok' });
    const cp = await h.admin('POST', '/v1/audit/checkpoints', {});
    expect(cp.statusCode).toBe(201);
    const exported = await h.admin('GET', '/v1/audit');
    expect(exported.headers['content-type']).toContain('application/x-ndjson');
    const lines = exported.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; action: string });
    expect(lines.map((l) => l.action)).toEqual(
      expect.arrayContaining([
        'reference-values.create',
        'merchant.create',
        'enrollment-code.create',
        'terminal.enroll',
        'attestation.verdict',
        'terminal.halt',
        'terminal.resume',
        'audit.checkpoint',
      ]),
    );
    expect(lines.map((l) => l.seq)).toEqual(lines.map((_, i) => i + 1));
    const tail = (await h.admin('GET', '/v1/audit?after=2')).body.trim().split('\n');
    expect((JSON.parse(tail[0] ?? '') as { seq: number }).seq).toBe(3);
    expect(tail).toHaveLength(lines.length - 2);
    const verify = (await h.admin('GET', '/v1/audit/verify')).json<{
      valid: boolean;
      count: number;
      checkpoints: number;
    }>();
    expect(verify).toMatchObject({ valid: true, count: lines.length, checkpoints: 1 });
    expect(exported.body).not.toContain('pos_enr_');
  });

  it('the CLI finds a changed, removed or reordered audit entry in the store file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pos-audit-'));
    try {
      const dataDir = join(dir, 'data');
      const file = join(dataDir, 'backend.sqlite');
      const env = { POS_LOG_LEVEL: 'silent', POS_MASTER_KEY: 'Q'.repeat(43) };
      const quiet = { out: (): void => undefined, err: (): void => undefined };
      const run = await runCli(['--data-dir', dataDir, '--port', '0'], quiet, env);
      await run.stop?.();
      const store = openSqliteStore({ path: file });
      for (const action of ['one', 'two', 'three', 'four']) {
        await store.appendAudit(
          { at: new Date(0).toISOString(), actor: 'op', action, subject: 's', data: { action } },
          chainAuditEntry,
        );
      }
      await store.close();
      const verify = async (): Promise<number> =>
        (await runCli(['audit', 'verify', '--data-dir', dataDir], quiet, env)).code;
      const tamper = (sql: string): void => {
        const raw = new Database(file);
        raw.exec(sql);
        raw.close();
      };
      expect(await verify()).toBe(0);
      tamper("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 2");
      expect(await verify()).toBe(1);
      tamper("UPDATE audit_entries SET actor = 'op' WHERE seq = 2");
      expect(await verify()).toBe(0);
      tamper(
        'UPDATE audit_entries SET seq = 100 WHERE seq = 2; UPDATE audit_entries SET seq = 2 WHERE seq = 3; UPDATE audit_entries SET seq = 3 WHERE seq = 100',
      );
      expect(await verify()).toBe(1);
      tamper(
        'UPDATE audit_entries SET seq = 100 WHERE seq = 2; UPDATE audit_entries SET seq = 2 WHERE seq = 3; UPDATE audit_entries SET seq = 3 WHERE seq = 100',
      );
      expect(await verify()).toBe(0);
      tamper('DELETE FROM audit_entries WHERE seq = 2');
      expect(await verify()).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
