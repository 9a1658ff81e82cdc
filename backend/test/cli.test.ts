import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../src/cli/main';

function capture(errIsTty = false): CliIo & { outLines: string[]; errLines: string[] } {
  const outLines: string[] = [];
  const errLines: string[] = [];
  return { outLines, errLines, out: (l) => outLines.push(l), err: (l) => errLines.push(l), errIsTty };
}
const TOKEN_RE = /pos_admin_[A-Za-z0-9_-]{43}/;

const QUIET = { POS_LOG_LEVEL: 'silent' };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pos-backend-cli-'));
  dirs.push(d);
  return join(d, 'data');
}

describe('pos-backend CLI', () => {
  it('starts on an empty directory: listening line first, admin token once, keys, API and metrics', async () => {
    const dataDir = tempDir();
    const io = capture();
    // --dev: no master key given, so a development key is generated in the data directory.
    const run = await runCli(['--data-dir', dataDir, '--port', '0', '--dev'], io, QUIET);
    expect(run.code).toBe(0);
    try {
      const first = JSON.parse(io.outLines[0] ?? '') as { event: string; url: string };
      expect(first.event).toBe('listening');
      expect(io.outLines).toHaveLength(1);
      // The token is in a 0600 file in the data dir (its path printed), never in stderr (not a TTY here).
      const tokenFile = join(dataDir, 'admin-token');
      expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
      const token = TOKEN_RE.exec(readFileSync(tokenFile, 'utf8'))?.[0] ?? '';
      expect(token).not.toBe('');
      expect(io.errLines.some((l) => TOKEN_RE.test(l))).toBe(false);
      expect(io.errLines.some((l) => l.includes(tokenFile))).toBe(true);
      expect(io.errLines.some((l) => l.includes('token rotate'))).toBe(true);
      expect(io.errLines.some((l) => l.includes('DEVELOPMENT master key'))).toBe(true);
      expect(statSync(join(dataDir, 'master.key')).mode & 0o077).toBe(0);

      const ready = await fetch(`${first.url}/readyz`);
      expect(await ready.json()).toEqual({ status: 'ready', store: true, keys: true, engine: 'sqlite' });
      const jwks = (await (await fetch(`${first.url}/.well-known/jwks.json`)).json()) as { keys: unknown[] };
      expect(jwks.keys).toHaveLength(1);
      const metrics = await (await fetch(`${first.url}/metrics`)).text();
      expect(metrics).toContain('pos_http_requests_total');
      const merchant = await fetch(`${first.url}/v1/merchants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Shop' }),
      });
      expect(merchant.status).toBe(201);
    } finally {
      await run.stop?.();
    }

    // Second start: same keys, no new token.
    const io2 = capture();
    const again = await runCli(['--data-dir', dataDir, '--port', '0', '--dev'], io2, QUIET);
    await again.stop?.();
    expect(io2.errLines.some((l) => l.includes('pos_admin_'))).toBe(false);

    const verify = capture();
    expect((await runCli(['audit', 'verify', '--data-dir', dataDir], verify, QUIET)).code).toBe(0);
    expect(JSON.parse(verify.outLines[0] ?? '')).toMatchObject({ valid: true, count: 2 });
    const exported = capture();
    expect((await runCli(['audit', 'export', '--data-dir', dataDir], exported, QUIET)).code).toBe(0);
    expect(exported.outLines.map((l) => JSON.parse(l) as { seq: number; action: string })).toMatchObject([
      { seq: 1, action: 'token.create', actor: 'cli' },
      { seq: 2, action: 'merchant.create' },
    ]);
    expect(exported.outLines.join('\n')).not.toMatch(TOKEN_RE);

    // Rotation: audited, the new token in the file (replaced, still 0600), shown on stderr only on a TTY.
    const firstToken = readFileSync(join(dataDir, 'admin-token'), 'utf8');
    const rotated = capture();
    expect((await runCli(['token', 'rotate', '--data-dir', dataDir], rotated, QUIET)).code).toBe(0);
    expect(rotated.errLines.some((l) => TOKEN_RE.test(l))).toBe(false);
    const secondToken = readFileSync(join(dataDir, 'admin-token'), 'utf8');
    expect(secondToken).toMatch(TOKEN_RE);
    expect(secondToken).not.toBe(firstToken);
    expect(statSync(join(dataDir, 'admin-token')).mode & 0o777).toBe(0o600);
    const onTty = capture(true);
    expect((await runCli(['token', 'rotate', '--data-dir', dataDir], onTty, QUIET)).code).toBe(0);
    const shown = onTty.errLines.map((l) => TOKEN_RE.exec(l)?.[0]).find((t) => t !== undefined);
    expect(shown).toBe(readFileSync(join(dataDir, 'admin-token'), 'utf8').trim());
    const audit = capture();
    await runCli(['audit', 'export', '--data-dir', dataDir], audit, QUIET);
    const actions = audit.outLines.map((l) => JSON.parse(l) as { action: string; data: unknown });
    expect(actions.filter((a) => a.action === 'token.rotate')).toHaveLength(2);
    expect(JSON.stringify(actions)).not.toMatch(TOKEN_RE);
    const verified = capture();
    expect((await runCli(['audit', 'verify', '--data-dir', dataDir], verified, QUIET)).code).toBe(0);
  });

  it('an admin-token file that cannot be written: the new token is revoked, one coded line; rotate then revokes nothing else', async () => {
    const dataDir = tempDir();
    const tokenPath = join(dataDir, 'admin-token');
    // A directory where the file goes: removing and writing it fail.
    mkdirSync(join(tokenPath, 'in-the-way'), { recursive: true, mode: 0o700 });
    const unwritable =
      /^pos-backend: POS_ERR_ADMIN_TOKEN_UNWRITABLE: .*admin-token could not be written \([A-Z_]+\); the new admin token was revoked; /;
    const first = capture();
    const run = await runCli(['--data-dir', dataDir, '--port', '0', '--dev'], first, QUIET);
    // First start: the service still starts, and says what happened.
    expect(run.code).toBe(0);
    await run.stop?.();
    expect(first.errLines.filter((l) => unwritable.test(l))).toHaveLength(1);
    expect(first.errLines.join('\n')).toMatch(/the service starts; run `pos-backend token rotate`/);
    expect(first.errLines.join('\n')).not.toMatch(TOKEN_RE);
    const exported = capture();
    await runCli(['audit', 'export', '--data-dir', dataDir], exported, QUIET);
    const actions = exported.outLines.map((l) => JSON.parse(l) as { action: string; subject: string });
    const created = actions.find((a) => a.action === 'token.create');
    expect(actions.find((a) => a.action === 'token.revoke')?.subject).toBe(created?.subject);

    // Rotation with the directory still in the way: exit 1, coded, nothing else revoked.
    rmSync(tokenPath, { recursive: true });
    const good = capture();
    expect((await runCli(['token', 'rotate', '--data-dir', dataDir], good, QUIET)).code).toBe(0);
    const token = readFileSync(tokenPath, 'utf8').trim();
    rmSync(tokenPath);
    mkdirSync(join(tokenPath, 'in-the-way'), { recursive: true });
    const refused = capture();
    expect((await runCli(['token', 'rotate', '--data-dir', dataDir], refused, QUIET)).code).toBe(1);
    expect(refused.errLines.filter((l) => unwritable.test(l))).toHaveLength(1);
    expect(refused.errLines.join('\n')).toMatch(/no other token was revoked/);
    // The token that worked still works.
    expect(token).toMatch(TOKEN_RE);
    const io = capture();
    const again = await runCli(['--data-dir', dataDir, '--port', '0', '--dev'], io, QUIET);
    try {
      const { url } = JSON.parse(io.outLines[0] ?? '') as { url: string };
      const res = await fetch(`${url}/v1/merchants`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
    } finally {
      await again.stop?.();
    }
  });

  it('refuses a wrong master key for an existing store', async () => {
    const dataDir = tempDir();
    const env = { ...QUIET, POS_MASTER_KEY: 'A'.repeat(43) };
    const first = await runCli(['--data-dir', dataDir, '--port', '0'], capture(), env);
    await first.stop?.();
    const io = capture();
    const second = await runCli(['--data-dir', dataDir, '--port', '0'], io, {
      ...QUIET,
      POS_MASTER_KEY: 'B'.repeat(43),
    });
    expect(second.code).toBe(1);
    expect(io.errLines.join('\n')).toContain('POS_ERR_MASTER_KEY_INVALID');
    expect(existsSync(join(dataDir, 'master.key'))).toBe(false);
  });

  it('answers bad arguments with a code and usage, never a stack trace', async () => {
    for (const args of [
      ['--port', 'abc'],
      ['--port', '70000'],
      ['--bogus'],
      ['audit'],
      ['frobnicate'],
      ['--reader-ca', '/nonexistent/ca.pem'],
    ]) {
      const io = capture();
      const r = await runCli(args, io, QUIET);
      expect(r.code).toBe(2);
      expect(io.errLines[0]).toMatch(/POS_ERR_CLI_USAGE/);
      expect(io.errLines.join('\n')).not.toMatch(/\n\s+at /);
    }
    const badKey = capture();
    const r = await runCli(['--data-dir', tempDir(), '--port', '0'], badKey, {
      ...QUIET,
      POS_MASTER_KEY: 'short',
    });
    expect(r.code).toBe(1);
    expect(badKey.errLines.join('\n')).toContain('POS_ERR_MASTER_KEY_INVALID');
  });

  it('the pos-backend bin prints the listening line first and shuts down gracefully on SIGTERM', async () => {
    const dataDir = tempDir();
    const bin = fileURLToPath(new URL('../bin/pos-backend.js', import.meta.url));
    const child = spawn(process.execPath, [bin, '--data-dir', dataDir, '--port', '0'], {
      env: {
        ...process.env,
        DATABASE_URL: undefined,
        POS_LOG_LEVEL: 'silent',
        POS_MASTER_KEY: 'g'.repeat(43),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let stdout = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString('utf8');
        const nl = stdout.indexOf('\n');
        if (nl >= 0) resolve((JSON.parse(stdout.slice(0, nl)) as { event: string; url: string }).url);
      });
      child.once('exit', () => reject(new Error('exited before listening')));
    });
    expect(JSON.parse(stdout.split('\n')[0] ?? '')).toMatchObject({ event: 'listening' });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
