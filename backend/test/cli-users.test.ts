import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, STORE_FILE } from '../src/cli/main';
import { readPasswordFromStdin, runUserCli } from '../src/cli/users';
import { verifyPassword } from '../src/server/auth/passwords';
import { openSqliteStore } from '../src/store/sqlite';

const PASSWORD = 'a long enough password';
let dir: string;
let lines: { out: string[]; err: string[] };
const io = {
  out: (l: string): void => void lines.out.push(l),
  err: (l: string): void => void lines.err.push(l),
};
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pos-cli-users-'));
  lines = { out: [], err: [] };
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const run = (argv: string[], password = PASSWORD): Promise<number> =>
  runUserCli(argv, io, {}, { dataDir: dir, storeFile: STORE_FILE }, () => Promise.resolve(password));

describe('pos-backend user add', () => {
  it('creates a user with a scrypt hash of the stdin password, audited without it', async () => {
    expect(await run(['add', '--username', 'Alice', '--role', 'admin'])).toBe(0);
    const out = JSON.parse(lines.out[0] ?? '{}') as { userId: string };
    const store = openSqliteStore({ path: join(dir, STORE_FILE) });
    try {
      const user = await store.findOperatorByUsername('alice');
      expect(user).toMatchObject({ id: out.userId, role: 'admin', merchantId: null });
      expect(await verifyPassword(PASSWORD, user?.passwordHash ?? '')).toBe(true);
      const audit = await store.listAudit(0, 10);
      expect(audit.map((a) => [a.actor, a.action])).toEqual([['cli', 'user.create']]);
      expect(JSON.stringify(audit)).not.toContain(PASSWORD);
    } finally {
      await store.close();
    }
    expect(await run(['add', '--username', 'alice', '--role', 'operator'])).toBe(1);
    expect(lines.err.join('\n')).toContain('POS_ERR_OPERATOR_EXISTS');
    expect(lines.err.join('\n')).not.toContain(PASSWORD);
  });

  it('refuses a short password, a bad role, a merchant user without its merchant, an unknown merchant', async () => {
    expect(await run(['add', '--username', 'bob', '--role', 'operator'], 'short')).toBe(2);
    expect(lines.err.join('\n')).toContain('POS_ERR_PASSWORD_POLICY');
    expect(await run(['add', '--username', 'bob', '--role', 'root'])).toBe(2);
    expect(await run(['add', '--username', 'bob', '--role', 'merchant'])).toBe(2);
    expect(await run(['add', '--username', 'bob', '--role', 'merchant', '--merchant', 'mer_x'])).toBe(2);
    expect(lines.err.join('\n')).toContain('POS_ERR_USER_SCOPE_INVALID');
    expect(await run(['remove', '--username', 'bob', '--role', 'operator'])).toBe(2);
    expect(await run(['add', '--username', 'bob', '--role', 'operator', '--password', 'x'])).toBe(2);
  });

  it('is reached through pos-backend (usage errors before reading stdin)', async () => {
    const res = await runCli(
      ['user', 'add', '--username', 'bob', '--role', 'root', '--data-dir', dir],
      io,
      {},
    );
    expect(res.code).toBe(2);
    expect(lines.err.join('\n')).toContain('POS_ERR_CLI_USAGE');
  });

  it('reads the password from stdin without its trailing newline', async () => {
    expect(await readPasswordFromStdin(Readable.from([Buffer.from(`${PASSWORD}\n`)]))).toBe(PASSWORD);
    expect(await readPasswordFromStdin(Readable.from([Buffer.from('a b\r\n')]))).toBe('a b');
  });
});
