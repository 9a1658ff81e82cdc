/**
 * The master key of `pos-backend`: required without --dev (POS_ERR_MASTER_KEY_REQUIRED before anything
 * is written), taken from POS_MASTER_KEY, --master-key-file or POS_MASTER_KEY_FILE; a DIR/master.key an
 * earlier version generated still used, with a warning at every start; a wrong key for a store
 * refused; `pos-backend master-key` makes a new one.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main';
import { BIN, capture, runBin, STACK_RE, startStop as startStopWith, useTempRoots } from './cli-helpers';

const QUIET = { POS_LOG_LEVEL: 'silent' };
const KEY_RE = /^[A-Za-z0-9_-]{43}$/;
const newKey = (): string => randomBytes(32).toString('base64url');
const tempRoot = useTempRoots('pos-backend-mk-');
const startStop = (
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; out: string[]; err: string[] }> => startStopWith(args, { ...QUIET, ...env });

const masterKeyWarnings = (lines: string[]): string[] =>
  lines.filter((l) => /master[ -]key|master\.key/i.test(l));

describe('pos-backend master key', () => {
  it('without --dev and without a key: exit 1, one coded line saying how to make and pass one, nothing created', async () => {
    const { dataDir } = tempRoot();
    const io = capture();
    const run = await runCli(['--data-dir', dataDir, '--port', '0'], io, QUIET);
    expect(run.code).toBe(1);
    expect(run.stop).toBeUndefined();
    expect(io.outLines).toEqual([]);
    expect(io.errLines).toHaveLength(1);
    const line = io.errLines[0] ?? '';
    expect(line).toMatch(/^pos-backend: POS_ERR_MASTER_KEY_REQUIRED: /);
    expect(line).toContain('pos-backend master-key --out FILE');
    expect(line).toContain('--master-key-file FILE');
    expect(line).toContain('POS_MASTER_KEY');
    // Refused before the data directory is made: no directory, so no key file and no store.
    expect(existsSync(dataDir)).toBe(false);

    // The same on the PostgreSQL engine, before any connection is tried (this URL would be refused).
    const pg = capture();
    const onPg = await runCli(
      ['--data-dir', dataDir, '--port', '0', '--database-url', 'postgres://pos:secret@127.0.0.1:1/pos'],
      pg,
      QUIET,
    );
    expect(onPg.code).toBe(1);
    expect(pg.errLines).toHaveLength(1);
    expect(pg.errLines[0]).toContain('POS_ERR_MASTER_KEY_REQUIRED');
    expect(existsSync(dataDir)).toBe(false);
  });

  it('the bin refuses the same way: exit 1, the code on stderr, no stack trace, nothing on stdout', async () => {
    const { dataDir } = tempRoot();
    const { code, stdout, stderr } = await runBin(['--data-dir', dataDir], {});
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain('POS_ERR_MASTER_KEY_REQUIRED');
    expect(stderr).not.toMatch(STACK_RE);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('starts with POS_MASTER_KEY: no key file in the data directory, no master key warning', async () => {
    const { dataDir } = tempRoot();
    const key = newKey();
    const first = await startStop(['--data-dir', dataDir], { POS_MASTER_KEY: key });
    expect(first.code).toBe(0);
    expect(JSON.parse(first.out[0] ?? '')).toMatchObject({ event: 'listening' });
    expect(masterKeyWarnings(first.err)).toEqual([]);
    expect(existsSync(join(dataDir, 'master.key'))).toBe(false);
    expect(existsSync(join(dataDir, 'backend.sqlite'))).toBe(true);
    const again = await startStop(['--data-dir', dataDir], { POS_MASTER_KEY: key });
    expect(again.code).toBe(0);
  });

  it('starts with a key file (--master-key-file or POS_MASTER_KEY_FILE) made by `pos-backend master-key --out`', async () => {
    const { root, dataDir } = tempRoot();
    const file = join(root, 'master.key');
    const made = capture();
    expect((await runCli(['master-key', '--out', file], made, QUIET)).code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const key = readFileSync(file, 'utf8').trim();
    expect(key).toMatch(KEY_RE);
    expect(made.outLines).toEqual([]);
    expect(made.errLines.join('\n')).not.toContain(key);
    // Made as root, the file is root's: the command says to give it to the service's user.
    expect(made.errLines.filter((l) => l.startsWith('It belongs to root'))).toEqual(
      process.getuid?.() === 0
        ? [
            `It belongs to root: give it to the user the service runs as (chown pos:pos ${file}, with that user and group), or the service cannot read it.`,
          ]
        : [],
    );

    const byOption = await startStop(['--data-dir', dataDir, '--master-key-file', file], {});
    expect(byOption.code).toBe(0);
    expect(masterKeyWarnings(byOption.err)).toEqual([]);
    expect(existsSync(join(dataDir, 'master.key'))).toBe(false);
    // The same key by the variable, and as text: the store opens, so it is the same key.
    expect((await startStop(['--data-dir', dataDir], { POS_MASTER_KEY_FILE: file })).code).toBe(0);
    expect((await startStop(['--data-dir', dataDir], { POS_MASTER_KEY: key })).code).toBe(0);
    // A key file other users may read: used, with a warning saying how to close it.
    const shared = join(root, 'shared.key');
    copyFileSync(file, shared);
    chmodSync(shared, 0o644);
    const open = await startStop(['--data-dir', dataDir, '--master-key-file', shared], {});
    expect(open.code).toBe(0);
    expect(masterKeyWarnings(open.err)).toEqual([
      `WARNING: the --master-key-file file may be read by other users (group or world permission bits): chmod 600 ${shared}.`,
    ]);

    // A file that is not a key: coded, exit 1, the file's content not echoed.
    const bad = join(root, 'bad.key');
    expect((await runCli(['master-key', '--out', bad], capture(), QUIET)).code).toBe(0);
    writeFileSync(bad, 'not-a-key-secret-text\n');
    const refused = await startStop(['--data-dir', dataDir, '--master-key-file', bad], {});
    expect(refused.code).toBe(1);
    expect(refused.err.join('\n')).toContain('POS_ERR_MASTER_KEY_INVALID');
    expect(refused.err.join('\n')).not.toContain('not-a-key-secret-text');
    const missing = await startStop(['--data-dir', dataDir, '--master-key-file', join(root, 'none')], {});
    expect(missing.code).toBe(1);
    expect(missing.err.join('\n')).toContain('POS_ERR_MASTER_KEY_INVALID');
    expect(missing.err.join('\n')).not.toMatch(STACK_RE);
  });

  it('a DIR/master.key generated by an earlier version still opens its store, with a warning at every start, until moved out', async () => {
    const { root, dataDir } = tempRoot();
    // The earlier version's store: a key generated in the data directory (as --dev still does).
    const made = await startStop(['--data-dir', dataDir, '--dev'], {});
    expect(made.code).toBe(0);
    const inData = join(dataDir, 'master.key');
    const key = readFileSync(inData, 'utf8');

    for (let start = 0; start < 2; start++) {
      const run = await startStop(['--data-dir', dataDir], {});
      expect(run.code).toBe(0);
      const text = run.err.join('\n');
      expect(text).toContain(`WARNING: the master key is read from ${inData}, INSIDE THE DATA DIRECTORY`);
      // The copy is made for the user the service runs as (-o/-g), not left root-owned and unreadable.
      const [uid, gid] = [process.getuid?.(), process.getgid?.()];
      const owner =
        uid === undefined || gid === undefined ? '-o SERVICE_USER -g SERVICE_GROUP' : `-o ${uid} -g ${gid}`;
      expect(text).toContain(
        `WARNING: move it out: install -D -m 0600 ${owner} ${inData} /etc/pos-backend/master.key (any path outside the data directory;`,
      );
      expect(text).toContain('--master-key-file');
      expect(text).not.toContain('POS_ERR_MASTER_KEY');
      // Used, never replaced.
      expect(readFileSync(inData, 'utf8')).toBe(key);
    }

    // The documented migration: a copy outside the data directory, given by --master-key-file; while
    // the old file is still there a warning says to delete it, and after that no warning.
    const outside = join(root, 'etc-master.key');
    copyFileSync(inData, outside);
    const moved = await startStop(['--data-dir', dataDir, '--master-key-file', outside], {});
    expect(moved.code).toBe(0);
    expect(moved.err.join('\n')).toContain(`WARNING: ${inData} is still in the data directory`);
    unlinkSync(inData);
    const clean = await startStop(['--data-dir', dataDir, '--master-key-file', outside], {});
    expect(clean.code).toBe(0);
    expect(masterKeyWarnings(clean.err)).toEqual([]);
    // With the key moved out and none given, the service refuses rather than make a new one.
    const none = await startStop(['--data-dir', dataDir], {});
    expect(none.code).toBe(1);
    expect(none.err.join('\n')).toContain('POS_ERR_MASTER_KEY_REQUIRED');
    expect(existsSync(inData)).toBe(false);
  });

  it('a wrong key for an existing store: POS_ERR_MASTER_KEY_INVALID naming where the key came from; --dev makes no new key for it', async () => {
    const { dataDir } = tempRoot();
    expect((await startStop(['--data-dir', dataDir], { POS_MASTER_KEY: newKey() })).code).toBe(0);
    const wrong = await startStop(['--data-dir', dataDir], { POS_MASTER_KEY: newKey() });
    expect(wrong.code).toBe(1);
    expect(wrong.out).toEqual([]);
    const text = wrong.err.join('\n');
    expect(text).toContain(
      'POS_ERR_MASTER_KEY_INVALID: this master key is not the one the store was created with (from POS_MASTER_KEY)',
    );
    expect(text).not.toMatch(STACK_RE);

    // --dev on that store with no key: no development key is generated over it.
    const dev = await startStop(['--data-dir', dataDir, '--dev'], {});
    expect(dev.code).toBe(1);
    expect(dev.err.join('\n')).toMatch(
      /POS_ERR_MASTER_KEY_INVALID: the store already has a master key but .*master\.key is missing/,
    );
    expect(existsSync(join(dataDir, 'master.key'))).toBe(false);
  });

  it('`pos-backend master-key` prints a new 32-byte base64url key each call; --out never overwrites', async () => {
    const keys: string[] = [];
    for (let i = 0; i < 2; i++) {
      const io = capture();
      expect((await runCli(['master-key'], io, QUIET)).code).toBe(0);
      expect(io.outLines).toHaveLength(1);
      const key = io.outLines[0] ?? '';
      expect(key).toMatch(KEY_RE);
      expect(Buffer.from(key, 'base64url')).toHaveLength(32);
      expect(Buffer.from(key, 'base64url').toString('base64url')).toBe(key);
      expect(io.errLines.join('\n')).not.toContain(key);
      keys.push(key);
    }
    expect(keys[0]).not.toBe(keys[1]);

    const { root } = tempRoot();
    const file = join(root, 'k');
    expect((await runCli(['master-key', '--out', file], capture(), QUIET)).code).toBe(0);
    const before = readFileSync(file, 'utf8');
    const again = capture();
    expect((await runCli(['master-key', '--out', file], again, QUIET)).code).toBe(2);
    expect(again.errLines[0]).toMatch(/POS_ERR_CLI_USAGE: master-key: .* already exists/);
    expect(readFileSync(file, 'utf8')).toBe(before);
    const usage = capture();
    expect((await runCli(['master-key', '--bogus'], usage, QUIET)).code).toBe(2);
    expect(usage.errLines[0]).toContain('POS_ERR_CLI_USAGE');
    expect(usage.outLines).toEqual([]);
  });

  it('`master-key --out` whose write fails (file size limit 0: EFBIG) leaves no file; the next attempt writes it', async (ctx) => {
    const { root } = tempRoot();
    const file = join(root, 'master.key');
    // The real bin under `ulimit -f 0`: the file is created, its write fails (Node ignores SIGXFSZ).
    const run = spawnSync(
      'sh',
      ['-c', 'ulimit -f 0 && exec "$0" "$@"', process.execPath, BIN, 'master-key', '--out', file],
      {
        encoding: 'utf8',
        env: { ...process.env, POS_LOG_LEVEL: 'silent' },
      },
    );
    if (run.error !== undefined || process.platform === 'win32') {
      console.warn(`skipped: no POSIX sh with ulimit here (${run.error?.message ?? process.platform})`);
      ctx.skip();
    }
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toEqual([
      `pos-backend: POS_ERR_CLI_USAGE: master-key: ${file} cannot be written (EFBIG); nothing was left there`,
    ]);
    expect(existsSync(file)).toBe(false);
    const again = capture();
    expect((await runCli(['master-key', '--out', file], again, QUIET)).code).toBe(0);
    expect(readFileSync(file, 'utf8').trim()).toMatch(KEY_RE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('--master-key-file wins over POS_MASTER_KEY, which wins over POS_MASTER_KEY_FILE; more than one set: one warning naming them, never a key', async () => {
    const { root, dataDir } = tempRoot();
    const keyA = newKey();
    const keyB = newKey();
    const fileA = join(root, 'a.key');
    const fileB = join(root, 'b.key');
    writeFileSync(fileA, `${keyA}\n`, { mode: 0o600 });
    writeFileSync(fileB, `${keyB}\n`, { mode: 0o600 });
    const sourceWarnings = (lines: string[]): string[] =>
      lines.filter((l) => l.includes('more than one master key source'));
    // The store is made under key A: starting proves which key was taken (B would be refused).
    const alone = await startStop(['--data-dir', dataDir, '--master-key-file', fileA], {});
    expect(alone.code).toBe(0);
    expect(sourceWarnings(alone.err)).toEqual([]);

    const cases: [string, string[], Record<string, string>, string][] = [
      [
        'option over POS_MASTER_KEY',
        ['--master-key-file', fileA],
        { POS_MASTER_KEY: keyB },
        'WARNING: more than one master key source is set (--master-key-file, POS_MASTER_KEY): the key is taken from --master-key-file, the first in the order --master-key-file, POS_MASTER_KEY, POS_MASTER_KEY_FILE; unset POS_MASTER_KEY.',
      ],
      [
        'option over both variables',
        ['--master-key-file', fileA],
        { POS_MASTER_KEY: keyB, POS_MASTER_KEY_FILE: fileB },
        'WARNING: more than one master key source is set (--master-key-file, POS_MASTER_KEY, POS_MASTER_KEY_FILE): the key is taken from --master-key-file, the first in the order --master-key-file, POS_MASTER_KEY, POS_MASTER_KEY_FILE; unset POS_MASTER_KEY and POS_MASTER_KEY_FILE.',
      ],
      [
        'POS_MASTER_KEY over POS_MASTER_KEY_FILE',
        [],
        { POS_MASTER_KEY: keyA, POS_MASTER_KEY_FILE: fileB },
        'WARNING: more than one master key source is set (POS_MASTER_KEY, POS_MASTER_KEY_FILE): the key is taken from POS_MASTER_KEY, the first in the order --master-key-file, POS_MASTER_KEY, POS_MASTER_KEY_FILE; unset POS_MASTER_KEY_FILE.',
      ],
    ];
    for (const [what, args, env, warning] of cases) {
      const run = await startStop(['--data-dir', dataDir, ...args], env);
      expect(run.code, what).toBe(0);
      expect(sourceWarnings(run.err), what).toEqual([warning]);
      const text = run.err.join('\n');
      expect(text, what).not.toContain(keyA);
      expect(text, what).not.toContain(keyB);
    }
  });

  it('a --master-key-file inside the data directory warns, also when reached through a symbolic link', async () => {
    const { root, dataDir } = tempRoot();
    mkdirSync(dataDir, { mode: 0o700 });
    const inside = join(dataDir, 'secret.key');
    expect((await runCli(['master-key', '--out', inside], capture(), QUIET)).code).toBe(0);
    const linkToKey = join(root, 'link.key');
    symlinkSync(inside, linkToKey);
    const linkToData = join(root, 'data-link');
    symlinkSync(dataDir, linkToData);
    const outside = join(root, 'outside.key');
    copyFileSync(inside, outside);
    const insideWarning = (dir: string): string =>
      `WARNING: the --master-key-file file is inside the data directory ${dir}: keep the master key apart from the data it protects (docs/backend.md "Master key").`;
    const cases: [string, string, string, string[]][] = [
      ['the file as written', dataDir, inside, [insideWarning(dataDir)]],
      ['a link outside to the file inside', dataDir, linkToKey, [insideWarning(dataDir)]],
      ['the data directory through a link', linkToData, inside, [insideWarning(linkToData)]],
      ['a file outside', dataDir, outside, []],
    ];
    for (const [what, dir, file, expected] of cases) {
      const run = await startStop(['--data-dir', dir, '--master-key-file', file], {});
      expect(run.code, what).toBe(0);
      expect(
        run.err.filter((l) => l.includes('inside the data directory')),
        what,
      ).toEqual(expected);
    }
  });
});
