/**
 * `pos-backend user add --username U --role R [--merchant ID]`: creates a dashboard user, the password
 * read from stdin (never from an argument, so it stays out of the shell history and the process list).
 * Same store options as the server (--data-dir, --database-url, --database-schema). Audited as
 * user.create by `cli`, without the password.
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_AUTH_CONFIG } from '../server/auth/config';
import { hashPassword, passwordPolicyError } from '../server/auth/passwords';
import { chainAuditEntry } from '../server/domain';
import { scopeError, UsernameSchema } from '../server/routes/users';
import { StoreError } from '../store/types';
import { chooseDatabase, openDatabase } from './database';

export const USER_USAGE = `  pos-backend user add --username U --role admin|operator|auditor|merchant [--merchant ID]
                   [--data-dir DIR | --database-url URL [--database-schema S]]
                                                create a dashboard user; the password is read from stdin`;

interface Io {
  out(line: string): void;
  err(line: string): void;
}

const OptionsSchema = z.strictObject({
  username: UsernameSchema,
  role: z.enum(['admin', 'operator', 'auditor', 'merchant']),
  merchant: z.string().min(1).max(128).optional(),
  'data-dir': z.string().min(1).max(4096),
  'database-url': z.string().min(1).max(4096).optional(),
  'database-schema': z.string().min(1).max(63).optional(),
});

/** Reads stdin to its end (at most 4 KiB) and drops one trailing newline. */
export async function readPasswordFromStdin(stdin: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    size += b.length;
    if (size > 4096) break;
    chunks.push(b);
  }
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** Runs `pos-backend user ...` (argv after `user`); resolves to the exit code. */
export async function runUserCli(
  argv: readonly string[],
  io: Io,
  env: NodeJS.ProcessEnv,
  defaults: { readonly dataDir: string; readonly storeFile: string },
  readPassword: () => Promise<string> = () => readPasswordFromStdin(),
): Promise<number> {
  const usage = (why: string): number => {
    io.err(`pos-backend: POS_ERR_CLI_USAGE: ${why}`);
    io.err(`Usage:\n${USER_USAGE}`);
    return 2;
  };
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        username: { type: 'string' },
        role: { type: 'string' },
        merchant: { type: 'string' },
        'data-dir': { type: 'string' },
        'database-url': { type: 'string' },
        'database-schema': { type: 'string' },
      },
    });
  } catch (e) {
    return usage(e instanceof Error ? (e.message.split('\n')[0] ?? 'bad arguments') : 'bad arguments');
  }
  if (parsed.positionals.length !== 1 || parsed.positionals[0] !== 'add') return usage('user takes add');
  const options = OptionsSchema.safeParse({ 'data-dir': defaults.dataDir, ...parsed.values });
  if (!options.success) {
    const issue = options.error.issues[0];
    return usage(`--${String(issue?.path[0] ?? '?')}: ${issue?.message ?? 'invalid'}`);
  }
  const o = options.data;
  const password = await readPassword();
  const policy = passwordPolicyError(password);
  if (policy !== undefined) {
    io.err(`pos-backend: POS_ERR_PASSWORD_POLICY: ${policy} (read from stdin)`);
    return 2;
  }
  const dataDir = resolve(o['data-dir']);
  const db = chooseDatabase(o, env, dataDir, defaults.storeFile);
  if (typeof db === 'string') {
    io.err(`pos-backend: ${db}`);
    return 2;
  }
  const store = await openDatabase(db, dataDir);
  if (typeof store === 'string') {
    io.err(`pos-backend: ${store}`);
    return 1;
  }
  try {
    const merchantId = o.merchant ?? null;
    const scope = await scopeError(store, o.role, merchantId);
    if (scope !== undefined) {
      io.err(`pos-backend: POS_ERR_USER_SCOPE_INVALID: ${scope}`);
      return 2;
    }
    const now = Date.now();
    const id = `usr_${randomBytes(16).toString('base64url')}`;
    try {
      await store.createOperator({
        id,
        username: o.username,
        passwordHash: await hashPassword(password, DEFAULT_AUTH_CONFIG.scryptN),
        role: o.role,
        merchantId,
        createdAt: now,
        disabledAt: null,
      });
    } catch (e) {
      if (e instanceof StoreError && e.code === 'POS_ERR_OPERATOR_EXISTS') {
        io.err('pos-backend: POS_ERR_OPERATOR_EXISTS: an operator with this username already exists');
        return 1;
      }
      throw e;
    }
    await store.appendAudit(
      {
        at: new Date(now).toISOString(),
        actor: 'cli',
        action: 'user.create',
        subject: `operator:${id}`,
        data: { username: o.username, role: o.role, merchantId },
      },
      (prev, draft) => chainAuditEntry(prev, draft),
    );
    io.out(JSON.stringify({ userId: id, username: o.username, role: o.role, merchantId }));
    return 0;
  } finally {
    await store.close();
  }
}
