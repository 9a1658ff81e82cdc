/**
 * The key store with a `SecretSealer` (the Electron app's safeStorage, faked here): the key is sealed
 * at rest; a wrong sealer, no sealer, a damaged blob, a sealer that fails or throws are clear coded
 * refusals, never a crash; a plain (headless) key file is migrated to a sealed one; the buffers the
 * store handles are wiped.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toBase64url } from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { FileKeyStore, type SecretSealer } from '../src/core/keys/store';
import { tempDir } from './support';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function setup(): { path: string } {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return { path: join(t.dir, 'data', 'terminal.json') };
}

const KEY = (): Uint8Array => new Uint8Array(32).map((_, i) => i + 1);
const CONFIG = { backendUrl: 'http://127.0.0.1:8080', terminalId: 'term-1', evidenceCounter: 3 };

interface FakeSealer extends SecretSealer {
  available: boolean;
  sealInputs: Uint8Array[];
  unsealInputs: Uint8Array[];
}

/** XOR with a magic byte in front: enough to see that the file does not hold the plain key. */
function fakeSealer(name = 'fake-os-keychain'): FakeSealer {
  const s: FakeSealer = {
    name,
    available: true,
    sealInputs: [],
    unsealInputs: [],
    seal(plain) {
      s.sealInputs.push(plain);
      if (!s.available)
        return Promise.resolve({
          ok: false,
          code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
          detail: 'no keychain',
        });
      return Promise.resolve({ ok: true, sealed: Uint8Array.from([0xee, ...plain.map((b) => b ^ 0x5a)]) });
    },
    unseal(sealed) {
      s.unsealInputs.push(sealed);
      if (!s.available)
        return Promise.resolve({
          ok: false,
          code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
          detail: 'no keychain',
        });
      if (sealed[0] !== 0xee)
        return Promise.resolve({
          ok: false,
          code: 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL',
          detail: 'the sealed device key does not unseal',
        });
      return Promise.resolve({ ok: true, plain: sealed.subarray(1).map((b) => b ^ 0x5a) });
    },
  };
  return s;
}

const fileOf = (path: string): { sealer?: unknown; deviceKey?: unknown; cipher?: unknown } =>
  JSON.parse(readFileSync(path, 'utf8')) as { sealer?: unknown; deviceKey?: unknown; cipher?: unknown };

describe('FileKeyStore with a sealer', () => {
  it('seals the key at rest and names the sealer; each read is a fresh array', async () => {
    const { path } = setup();
    const sealer = fakeSealer();
    const ks = new FileKeyStore({ path, sealer });
    expect(await ks.putDeviceKey(KEY())).toEqual({ ok: true });
    expect(await ks.putConfig(CONFIG)).toEqual({ ok: true });
    const f = fileOf(path);
    expect(f.sealer).toBe('fake-os-keychain');
    expect(f.deviceKey).not.toBe(toBase64url(KEY()));
    expect(readFileSync(path, 'utf8')).not.toContain(toBase64url(KEY()));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const a = await ks.getDeviceKey();
    expect(a.ok && [...(a.secretKey ?? [])]).toEqual([...KEY()]);
    if (a.ok) a.secretKey?.fill(0);
    const b = await ks.getDeviceKey();
    expect(b.ok && [...(b.secretKey ?? [])]).toEqual([...KEY()]);
    // The sealed bytes the store handed to unseal were wiped after use.
    for (const input of sealer.unsealInputs) expect(input.every((x) => x === 0)).toBe(true);
    expect(await ks.getConfig()).toEqual({ ok: true, config: CONFIG });
  });

  it('a sealed key is refused, with its code, by a store without a sealer or with another one', async () => {
    const { path } = setup();
    await new FileKeyStore({ path, sealer: fakeSealer() }).putDeviceKey(KEY());
    const headless = await new FileKeyStore({ path }).getDeviceKey();
    expect(headless).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL' });
    expect(!headless.ok && headless.detail).toContain('fake-os-keychain');
    const other = await new FileKeyStore({ path, sealer: fakeSealer('other') }).getDeviceKey();
    expect(other).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL' });
    // The configuration stays readable without the sealer (pos-terminal status).
    expect(await new FileKeyStore({ path }).getConfig()).toMatchObject({ ok: true });
  });

  it('a damaged blob, a sealer that throws, or a wrong length is a coded refusal, not a crash', async () => {
    const { path } = setup();
    const sealer = fakeSealer();
    const ks = new FileKeyStore({ path, sealer });
    await ks.putDeviceKey(KEY());
    const f = fileOf(path);
    writeFileSync(path, JSON.stringify({ ...f, deviceKey: toBase64url(new Uint8Array(33).fill(7)) }), {
      mode: 0o600,
    });
    expect(await ks.getDeviceKey()).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL' });

    const throwing: SecretSealer = {
      name: 'fake-os-keychain',
      seal: () => Promise.reject(new Error('boom')),
      unseal: () => {
        throw new Error('boom');
      },
    };
    writeFileSync(path, JSON.stringify(f), { mode: 0o600 });
    const t = new FileKeyStore({ path, sealer: throwing });
    expect(await t.getDeviceKey()).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL' });
    expect(await t.putDeviceKey(KEY())).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
    });

    let short: Uint8Array | undefined;
    const shortSealer: SecretSealer = {
      name: 'fake-os-keychain',
      seal: () => Promise.resolve({ ok: true, sealed: new Uint8Array(4) }),
      unseal: () => {
        short = new Uint8Array(31).fill(9);
        return Promise.resolve({ ok: true, plain: short });
      },
    };
    expect(await new FileKeyStore({ path, sealer: shortSealer }).getDeviceKey()).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_KEYSTORE_CORRUPT',
    });
    expect(short?.every((x) => x === 0)).toBe(true);
  });

  it('refuses to write the key when sealing is unavailable, and leaves the file as it was', async () => {
    const { path } = setup();
    const sealer = fakeSealer();
    const ks = new FileKeyStore({ path, sealer });
    await ks.putConfig(CONFIG);
    const before = readFileSync(path, 'utf8');
    sealer.available = false;
    expect(await ks.putDeviceKey(KEY())).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
    });
    expect(readFileSync(path, 'utf8')).toBe(before);
  });

  it('migrates a plain (headless) key file: sealed and written back before the key is used', async () => {
    const { path } = setup();
    const plain = new FileKeyStore({ path });
    await plain.putDeviceKey(KEY());
    await plain.putConfig(CONFIG);
    const sealer = fakeSealer();
    const ks = new FileKeyStore({ path, sealer });
    const k = await ks.getDeviceKey();
    expect(k.ok && [...(k.secretKey ?? [])]).toEqual([...KEY()]);
    const f = fileOf(path);
    expect(f.sealer).toBe('fake-os-keychain');
    expect(readFileSync(path, 'utf8')).not.toContain(toBase64url(KEY()));
    expect(await ks.getConfig()).toEqual({ ok: true, config: CONFIG });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    // Now only the sealer reads it.
    expect(await plain.getDeviceKey()).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL' });
  });

  it('a plain key is not used when the migration cannot seal it: refused, wiped, file unchanged', async () => {
    const { path } = setup();
    await new FileKeyStore({ path }).putDeviceKey(KEY());
    const before = readFileSync(path, 'utf8');
    const sealer = fakeSealer();
    sealer.available = false;
    const r = await new FileKeyStore({ path, sealer }).getDeviceKey();
    expect(r).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE' });
    expect(readFileSync(path, 'utf8')).toBe(before);
    expect(sealer.sealInputs).toHaveLength(1);
    expect(sealer.sealInputs[0]?.every((x) => x === 0)).toBe(true);
  });

  it('reads the earlier member name `cipher` as the sealer, and writes `sealer`', async () => {
    const { path } = setup();
    const sealer = fakeSealer();
    await new FileKeyStore({ path, sealer }).putDeviceKey(KEY());
    const { sealer: name, ...rest } = fileOf(path);
    writeFileSync(path, JSON.stringify({ ...rest, cipher: name }), { mode: 0o600 });
    const ks = new FileKeyStore({ path, sealer });
    const k = await ks.getDeviceKey();
    expect(k.ok && [...(k.secretKey ?? [])]).toEqual([...KEY()]);
    await ks.putDeviceKey(KEY());
    expect(fileOf(path)).toMatchObject({ sealer: 'fake-os-keychain' });
    expect(fileOf(path).cipher).toBeUndefined();
  });
});
