/**
 * readSmallSecretFile (the master key and metrics token files): opened once, checked and read through
 * that descriptor; a FIFO, a directory or a file over the limit refused without hanging or reading
 * past the limit; symbolic links followed; the permission bits reported; never the contents in an
 * error. And both CLI readers use it.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, type TestContext } from 'vitest';
import { runCli } from '../src/cli/main';
import {
  NODE_WRITE_OPS,
  othersMayAccess,
  readSmallSecretFile,
  writeNewSecretFile,
  type SecretFileWriteOps,
} from '../src/cli/secret-file';
import { capture, useTempRoots } from './cli-helpers';

const tempRoot = useTempRoots('pos-backend-sf-');
const SECRET = randomBytes(24).toString('hex');

/** A FIFO at `path`, or the test is skipped with the reason printed (no mkfifo on this system). */
function makeFifo(path: string, ctx: TestContext): void {
  try {
    execFileSync('mkfifo', [path], { stdio: 'ignore' });
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : 'mkfifo failed';
    console.warn(`skipped: cannot make a FIFO with mkfifo on this system (${why})`);
    ctx.skip();
  }
}

describe('readSmallSecretFile', () => {
  it('reads a regular file within the limit, with its permission bits', () => {
    const { root } = tempRoot();
    const file = join(root, 'secret');
    writeFileSync(file, `${SECRET}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    expect(readSmallSecretFile(file, 1024)).toEqual({ ok: true, text: `${SECRET}\n`, mode: 0o600 });
    // Exactly at the limit is fine.
    writeFileSync(file, 'x'.repeat(1024));
    expect(readSmallSecretFile(file, 1024)).toMatchObject({ ok: true, text: 'x'.repeat(1024) });
  });

  it('refuses a FIFO at once (no writer needed to return), also behind a symbolic link', (ctx) => {
    const { root } = tempRoot();
    const fifo = join(root, 'fifo');
    makeFifo(fifo, ctx);
    expect(readSmallSecretFile(fifo, 1024)).toEqual({
      ok: false,
      code: 'not-regular',
      detail: 'is not a regular file',
    });
    const link = join(root, 'link-to-fifo');
    symlinkSync(fifo, link);
    expect(readSmallSecretFile(link, 1024)).toMatchObject({ ok: false, code: 'not-regular' });
  });

  it('refuses a 2 KiB file without its contents in the error, and a directory', () => {
    const { root } = tempRoot();
    const big = join(root, 'big');
    writeFileSync(big, SECRET.repeat(Math.ceil(2048 / SECRET.length)).slice(0, 2048), { mode: 0o600 });
    const read = readSmallSecretFile(big, 1024);
    expect(read).toEqual({ ok: false, code: 'too-large', detail: 'is larger than 1024 bytes' });
    expect(JSON.stringify(read)).not.toContain(SECRET.slice(0, 16));
    const dir = join(root, 'dir');
    mkdirSync(dir);
    expect(readSmallSecretFile(dir, 1024)).toEqual({
      ok: false,
      code: 'not-regular',
      detail: 'is not a regular file',
    });
  });

  it('reads no more than the limit even when fstat says the file is small (a file that grows)', (ctx) => {
    // /proc files report size 0 to fstat and hold more: the read itself must stop past the limit.
    const file = '/proc/self/status';
    if (!existsSync(file)) {
      console.warn(`skipped: no ${file} on this system (a regular file whose fstat size is 0)`);
      ctx.skip();
    }
    expect(readSmallSecretFile(file, 16)).toEqual({
      ok: false,
      code: 'too-large',
      detail: 'is larger than 16 bytes',
    });
  });

  it('follows a symbolic link to a good file (Kubernetes secrets are links); a missing file is unreadable', () => {
    const { root } = tempRoot();
    mkdirSync(join(root, '..data'));
    const target = join(root, '..data', 'token');
    writeFileSync(target, SECRET, { mode: 0o600 });
    const link = join(root, 'token');
    symlinkSync(join('..data', 'token'), link);
    expect(readSmallSecretFile(link, 1024)).toMatchObject({ ok: true, text: SECRET });
    expect(readSmallSecretFile(join(root, 'none'), 1024)).toEqual({
      ok: false,
      code: 'unreadable',
      detail: 'cannot be read (ENOENT)',
    });
  });

  it('othersMayAccess: any group or world permission bit', () => {
    for (const mode of [0o600, 0o400, 0o700]) expect(othersMayAccess(mode), mode.toString(8)).toBe(false);
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o601, 0o666])
      expect(othersMayAccess(mode), mode.toString(8)).toBe(true);
  });
});

describe('writeNewSecretFile', () => {
  const fail = (code: string) => (): never => {
    throw Object.assign(new Error(`stubbed ${code}`), { code });
  };
  /** The real calls, each recorded as it is made (`open`, `write`, `fsync`, `close`, `unlink`). */
  function recording(calls: string[], override: Partial<SecretFileWriteOps> = {}): SecretFileWriteOps {
    const ops = { ...NODE_WRITE_OPS, ...override };
    return {
      openSync: (path, flags, mode) => (calls.push(`open ${path}`), ops.openSync(path, flags, mode)),
      writeSync: (fd, buffer, offset, length) => (
        calls.push('write'),
        ops.writeSync(fd, buffer, offset, length)
      ),
      fsyncSync: (fd) => (calls.push('fsync'), ops.fsyncSync(fd)),
      closeSync: (fd) => (calls.push('close'), ops.closeSync(fd)),
      unlinkSync: (path) => (calls.push(`unlink ${path}`), ops.unlinkSync(path)),
    };
  }

  it('writes a new 0600 file, syncs it and then its directory; it reads back', () => {
    const { root } = tempRoot();
    const file = join(root, 'master.key');
    const calls: string[] = [];
    expect(writeNewSecretFile(file, `${SECRET}\n`, recording(calls))).toEqual({ ok: true });
    expect(calls).toEqual([`open ${file}`, 'write', 'fsync', 'close', `open ${root}`, 'fsync', 'close']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readSmallSecretFile(file, 1024)).toEqual({ ok: true, text: `${SECRET}\n`, mode: 0o600 });
  });

  it('short writes are continued until the whole text is written', () => {
    const { root } = tempRoot();
    const file = join(root, 'k');
    const oneByte: Partial<SecretFileWriteOps> = {
      writeSync: (fd, buffer, offset) => NODE_WRITE_OPS.writeSync(fd, buffer, offset, 1),
    };
    expect(writeNewSecretFile(file, SECRET, recording([], oneByte))).toEqual({ ok: true });
    expect(readFileSync(file, 'utf8')).toBe(SECRET);
  });

  it('a write, fsync or directory fsync that fails leaves no file, and the next attempt succeeds', () => {
    const { root } = tempRoot();
    const file = join(root, 'master.key');
    let fsyncs = 0;
    const failures: [string, Partial<SecretFileWriteOps>, string][] = [
      ['write', { writeSync: fail('ENOSPC') }, 'ENOSPC'],
      ['no progress', { writeSync: () => 0 }, 'EIO'],
      ['fsync of the file', { fsyncSync: fail('EIO') }, 'EIO'],
      [
        'fsync of the directory',
        { fsyncSync: (fd) => (++fsyncs === 2 ? fail('EIO')() : NODE_WRITE_OPS.fsyncSync(fd)) },
        'EIO',
      ],
    ];
    for (const [what, override, errno] of failures) {
      const calls: string[] = [];
      expect(writeNewSecretFile(file, SECRET, recording(calls, override)), what).toEqual({
        ok: false,
        errno,
      });
      expect(calls, what).toContain(`unlink ${file}`);
      expect(existsSync(file), what).toBe(false);
    }
    expect(writeNewSecretFile(file, SECRET)).toEqual({ ok: true });
    expect(readFileSync(file, 'utf8')).toBe(SECRET);
  });

  it('never writes over an existing file, and leaves it as it was (EEXIST, no unlink)', () => {
    const { root } = tempRoot();
    const file = join(root, 'master.key');
    writeFileSync(file, 'theirs');
    const calls: string[] = [];
    expect(writeNewSecretFile(file, SECRET, recording(calls))).toEqual({ ok: false, errno: 'EEXIST' });
    expect(calls).toEqual([`open ${file}`]);
    expect(readFileSync(file, 'utf8')).toBe('theirs');
  });
});

describe('pos-backend secret files', () => {
  const key = (): string => randomBytes(32).toString('base64url');

  it('a FIFO as --master-key-file or --metrics-token-file: refused at once, one coded line, exit 1', async (ctx) => {
    const { root, dataDir } = tempRoot();
    const fifo = join(root, 'fifo');
    makeFifo(fifo, ctx);
    for (const [args, env, code] of [
      [['--master-key-file', fifo], {}, 'POS_ERR_MASTER_KEY_INVALID: the --master-key-file file'],
      [['--metrics-token-file', fifo], { POS_MASTER_KEY: key() }, 'POS_ERR_METRICS_TOKEN_INVALID'],
    ] as const) {
      const io = capture();
      const run = await runCli(['--data-dir', dataDir, '--port', '0', ...args], io, {
        POS_LOG_LEVEL: 'silent',
        ...env,
      });
      expect(run.code, code).toBe(1);
      // The error is the one coded line, and the last (the master key is read after the start warnings).
      const coded = io.errLines.filter((l) => l.startsWith('pos-backend: '));
      expect(coded, code).toEqual([io.errLines.at(-1)]);
      expect(coded[0], code).toContain(code);
      expect(coded[0], code).toMatch(/ is not a regular file$/);
    }
  });
});
