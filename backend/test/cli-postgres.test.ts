/**
 * pos-backend on PostgreSQL: --database-url / DATABASE_URL, --database-schema, coded errors without
 * the password, /readyz naming the engine, audit verify on the PostgreSQL store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main';
import { capture } from './cli-helpers';
import { describePg, dropSchemas, freshSchemaName, PG_URL } from './pg-helpers';

const QUIET = { POS_LOG_LEVEL: 'silent', POS_MASTER_KEY: 'A'.repeat(43) };
const root = mkdtempSync(join(tmpdir(), 'pos-cli-pg-'));
const schemas: string[] = [];
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  await dropSchemas(schemas);
});

describe('pos-backend database options', () => {
  it('refuses a URL that is not postgres:// or postgresql://, and a malformed schema', async () => {
    const io = capture();
    expect((await runCli(['--data-dir', root, '--database-url', 'mysql://h/db'], io, QUIET)).code).toBe(2);
    expect(io.errLines[0]).toContain('POS_ERR_CLI_USAGE');
    const io2 = capture();
    const bad = ['--data-dir', root, '--database-url', PG_URL, '--database-schema', 'Robert"; DROP'];
    expect((await runCli(bad, io2, QUIET)).code).toBe(2);
    expect(io2.errLines[0]).toContain('POS_ERR_CLI_USAGE');
    const io3 = capture();
    expect((await runCli(['--data-dir', root, '--database-schema', 'x'], io3, QUIET)).code).toBe(2);
    expect(io3.errLines[0]).toContain('--database-schema needs --database-url');
    const io4 = capture();
    const env = { ...QUIET, DATABASE_URL: PG_URL, DATABASE_POOL_MAX: '0' };
    expect((await runCli(['--data-dir', root], io4, env)).code).toBe(2);
    expect(io4.errLines[0]).toContain('DATABASE_POOL_MAX');
  });

  it('an unreachable database: coded error, non-zero exit, no stack, no password', async () => {
    const io = capture();
    const url = 'postgres://alice:hunter2secret@127.0.0.1:1/pos';
    const run = await runCli(['--data-dir', join(root, 'u'), '--port', '0'], io, {
      ...QUIET,
      DATABASE_URL: url,
    });
    expect(run.code).toBe(1);
    const text = io.errLines.join('\n');
    expect(text).toContain('POS_ERR_UNAVAILABLE');
    expect(text).toContain('127.0.0.1:1');
    expect(text).not.toContain('hunter2secret');
    expect(text).not.toMatch(/\n\s+at /);
  });
});

describePg('pos-backend on PostgreSQL', () => {
  it('starts on a schema, reports the engine in /readyz, and audit verify reads the same database', async () => {
    const schema = freshSchemaName('cli');
    schemas.push(schema);
    const dataDir = join(root, 'pg');
    const io = capture();
    const args = [
      '--data-dir',
      dataDir,
      '--port',
      '0',
      '--database-url',
      PG_URL,
      '--database-schema',
      schema,
    ];
    const run = await runCli(args, io, QUIET);
    expect(run.code).toBe(0);
    try {
      const { url } = JSON.parse(io.outLines[0] ?? '') as { url: string };
      expect(await (await fetch(`${url}/readyz`)).json()).toEqual({
        status: 'ready',
        store: true,
        keys: true,
        engine: 'postgres',
      });
      expect(io.errLines.some((l) => l.includes('admin-token'))).toBe(true);
    } finally {
      await run.stop?.();
    }
    const verify = capture();
    const code = (await runCli(['audit', 'verify', ...args.slice(0, 2), ...args.slice(4)], verify, QUIET))
      .code;
    expect(code).toBe(0);
    expect(JSON.parse(verify.outLines[0] ?? '')).toMatchObject({ valid: true, count: 1 });
  });
});
