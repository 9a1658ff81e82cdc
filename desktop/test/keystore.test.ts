/**
 * The headless key store: a 0600 JSON file, refused when its permissions are looser, when it is a
 * symlink or does not parse; written atomically. The sealer (Electron safeStorage) is tested in
 * keystore-sealer.test.ts.
 */
import { chmodSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toBase64url } from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { FileKeyStore } from '../src/core/keys/store';
import { tempDir } from './support';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function setup(): { dir: string; path: string } {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return { dir: t.dir, path: join(t.dir, 'data', 'terminal.json') };
}

const KEY = new Uint8Array(32).map((_, i) => i + 1);
const CONFIG = { backendUrl: 'http://127.0.0.1:8080', terminalId: 'term-1', evidenceCounter: 3 };
const POSIX = process.platform !== 'win32';

describe('FileKeyStore', () => {
  it('stores and returns the device key and the configuration in a 0600 file', async () => {
    const { path, dir } = setup();
    const ks = new FileKeyStore({ path });
    expect(await ks.getDeviceKey()).toEqual({ ok: true, secretKey: undefined });
    expect(await ks.getConfig()).toEqual({ ok: true, config: undefined });
    expect(await ks.putDeviceKey(KEY)).toEqual({ ok: true });
    expect(await ks.putConfig(CONFIG)).toEqual({ ok: true });
    const k = await ks.getDeviceKey();
    expect(k.ok && [...(k.secretKey ?? [])]).toEqual([...KEY]);
    expect(await ks.getConfig()).toEqual({ ok: true, config: CONFIG });
    if (POSIX) {
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, 'data')).mode & 0o777).toBe(0o700);
    }
    // Nothing but the file is left behind by the atomic writes.
    expect(readdirSync(join(dir, 'data'))).toEqual(['terminal.json']);
    // A second store on the same file sees the same (it is the file, not memory).
    const again = await new FileKeyStore({ path }).getConfig();
    expect(again).toEqual({ ok: true, config: CONFIG });
  });

  it('loses no update when puts overlap', async () => {
    const { path } = setup();
    const ks = new FileKeyStore({ path });
    await Promise.all([
      ks.putDeviceKey(KEY),
      ks.putConfig(CONFIG),
      ks.putConfig({ ...CONFIG, evidenceCounter: 9 }),
    ]);
    const k = await ks.getDeviceKey();
    expect(k.ok && k.secretKey?.length).toBe(32);
    expect(await ks.getConfig()).toEqual({ ok: true, config: { ...CONFIG, evidenceCounter: 9 } });
  });

  it.skipIf(!POSIX)('refuses a file readable by others, and a symlink', async () => {
    const { path, dir } = setup();
    const ks = new FileKeyStore({ path });
    await ks.putDeviceKey(KEY);
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(path, mode);
      expect(await ks.getDeviceKey()).toMatchObject({
        ok: false,
        code: 'POS_ERR_DESKTOP_KEYSTORE_PERMISSIONS',
      });
      // Nor is it overwritten (that would hide the problem).
      expect(await ks.putConfig(CONFIG)).toMatchObject({
        ok: false,
        code: 'POS_ERR_DESKTOP_KEYSTORE_PERMISSIONS',
      });
    }
    chmodSync(path, 0o600);
    expect((await ks.getDeviceKey()).ok).toBe(true);
    const link = join(dir, 'link.json');
    symlinkSync(path, link);
    expect(await new FileKeyStore({ path: link }).getDeviceKey()).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_KEYSTORE_PERMISSIONS',
    });
  });

  it('refuses a file that is not JSON or not of the expected shape', async () => {
    const { path } = setup();
    const ks = new FileKeyStore({ path });
    await ks.putConfig(CONFIG);
    const bad = [
      'not json',
      JSON.stringify({ version: 2 }),
      JSON.stringify({ version: 1, extra: true }),
      JSON.stringify({ version: 1, deviceKey: 'a+b/' }),
      JSON.stringify({ version: 1, config: { ...CONFIG, backendUrl: 'file:///etc/passwd' } }),
      JSON.stringify({ version: 1, deviceKey: toBase64url(new Uint8Array(31)) }),
    ];
    for (const text of bad) {
      writeFileSync(path, text, { mode: 0o600 });
      const r = text.includes('deviceKey') ? await ks.getDeviceKey() : await ks.getConfig();
      expect(r).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_CORRUPT' });
    }
    expect(await ks.putDeviceKey(new Uint8Array(16))).toMatchObject({
      ok: false,
      code: 'POS_ERR_KEY_LENGTH',
    });
  });
});
