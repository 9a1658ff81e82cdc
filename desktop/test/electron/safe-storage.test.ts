/**
 * The device key sealed with Electron safeStorage, under plain Node: main's policy and answers
 * (safe-storage.ts, over a fake safeStorage), the utility side's PortSealer (timeouts, closing,
 * codes), and the whole path in one process: a real FileKeyStore in the utility runner, the
 * CoreBridge in main, messages cloned and schema-parsed on both sides. The key never reaches a log.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toBase64url } from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import type { CommandResult, Snapshot, TerminalCore } from '../../src/api/contract';
import { FileKeyStore } from '../../src/core/keys/store';
import { CoreBridge } from '../../src/main/core-bridge';
import {
  answerSeal,
  createSealHandler,
  DEVICE_KEY_PURPOSE,
  keyProtection,
  type SafeStorageLike,
} from '../../src/main/safe-storage';
import type { ElectronShell, ToMain } from '../../src/utility/protocol';
import { runCoreProcess, type ParentPortLike } from '../../src/utility/runner';
import { PortSealer, SAFE_STORAGE_SEALER, type SealerTimers } from '../../src/utility/sealer';
import { tempDir } from '../support';
import { flush } from './fixtures';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const KEY = new Uint8Array(32).map((_, i) => 200 - i);
const b64 = (u: Uint8Array): string => Buffer.from(u).toString('base64');

function fakeSafeStorage(over: Partial<SafeStorageLike> = {}): SafeStorageLike & { seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    isEncryptionAvailable: () => true,
    getSelectedStorageBackend: () => 'gnome_libsecret',
    encryptString: (text) => {
      seen.push(text);
      return Buffer.from(Buffer.from(`v11${text}`, 'utf8').map((b) => b ^ 0x33));
    },
    decryptString: (buf) => {
      const text = Buffer.from(buf.map((b) => b ^ 0x33)).toString('utf8');
      if (!text.startsWith('v11')) throw new Error('Error while decrypting the ciphertext provided');
      return text.slice(3);
    },
    ...over,
  };
}

const policy = (over: { platform?: NodeJS.Platform; packaged?: boolean } = {}) => {
  const lines: string[] = [];
  return {
    lines,
    policy: {
      platform: over.platform ?? 'linux',
      packaged: over.packaged ?? true,
      log: (l: string) => lines.push(l),
    },
  };
};

describe("main's safeStorage policy and answers", () => {
  it('seals a 32-byte key with the purpose prefix and unseals it back', () => {
    const ss = fakeSafeStorage();
    const { policy: p, lines } = policy();
    const s = answerSeal(ss, p, 'seal', b64(KEY));
    expect(s.ok).toBe(true);
    expect(ss.seen[0]?.startsWith(DEVICE_KEY_PURPOSE)).toBe(true);
    if (!s.ok) return;
    expect(s.data).not.toContain(b64(KEY));
    expect(answerSeal(ss, p, 'unseal', s.data)).toEqual({ ok: true, data: b64(KEY) });
    expect(lines).toEqual([]);
  });

  it('is not an oracle: other sizes, other plaintexts, junk and blobs that do not decrypt are refused', () => {
    const ss = fakeSafeStorage();
    const { policy: p, lines } = policy();
    expect(answerSeal(ss, p, 'seal', b64(new Uint8Array(31)))).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
    });
    // A blob of this app's safeStorage holding something else (another secret of this user).
    const other = ss.encryptString('some other secret').toString('base64');
    expect(answerSeal(ss, p, 'unseal', other)).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL',
    });
    // The prefix with a key of the wrong length.
    const short = ss.encryptString(`${DEVICE_KEY_PURPOSE}${b64(new Uint8Array(16))}`).toString('base64');
    expect(answerSeal(ss, p, 'unseal', short)).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL',
    });
    expect(answerSeal(ss, p, 'unseal', b64(Uint8Array.from([1, 2, 3])))).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL',
    });
    expect(answerSeal(ss, p, 'unseal', 'not base64!')).toMatchObject({ ok: false });
    expect(answerSeal(ss, p, 'unseal', '')).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL',
    });
    for (const l of lines) expect(l).not.toContain('secret');
  });

  it('refuses when safeStorage is unavailable, and a throwing safeStorage is a coded answer', () => {
    const { policy: p, lines } = policy({ platform: 'darwin' });
    const off = fakeSafeStorage({ isEncryptionAvailable: () => false });
    expect(answerSeal(off, p, 'seal', b64(KEY))).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
    });
    expect(lines.join('\n')).toContain('not available');
    const throwing = fakeSafeStorage({
      encryptString: () => {
        throw new Error(`leaks ${b64(KEY)}`);
      },
    });
    expect(answerSeal(throwing, p, 'seal', b64(KEY))).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
    });
    expect(lines.join('\n')).not.toContain(b64(KEY));
  });

  it("Linux 'basic_text' (or 'unknown'): refused in a release build, a one-time warning in development; other OSes ignore the backend", () => {
    for (const backend of ['basic_text', 'unknown']) {
      const ss = fakeSafeStorage({ getSelectedStorageBackend: () => backend });
      expect(keyProtection(ss, { platform: 'linux', packaged: true })).toMatchObject({ ok: false });
      expect(answerSeal(ss, policy().policy, 'seal', b64(KEY))).toMatchObject({
        ok: false,
        code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
      });
      const dev = policy({ packaged: false });
      const handle = createSealHandler(ss, dev.policy);
      expect(handle('seal', b64(KEY)).ok).toBe(true);
      expect(handle('seal', b64(KEY)).ok).toBe(true);
      expect(dev.lines.filter((l) => l.includes('warning'))).toHaveLength(1);
      expect(dev.lines[0]).toContain(backend);
    }
    for (const backend of ['gnome_libsecret', 'kwallet5', 'kwallet6']) {
      const ss = fakeSafeStorage({ getSelectedStorageBackend: () => backend });
      expect(keyProtection(ss, { platform: 'linux', packaged: true })).toEqual({ ok: true });
    }
    const noBackend = fakeSafeStorage({ getSelectedStorageBackend: () => 'basic_text' });
    expect(keyProtection(noBackend, { platform: 'win32', packaged: true })).toEqual({ ok: true });
    expect(keyProtection(noBackend, { platform: 'darwin', packaged: true })).toEqual({ ok: true });
  });
});

class ManualTimers implements SealerTimers {
  readonly fns = new Map<number, () => void>();
  #n = 0;
  setTimeout(fn: () => void): unknown {
    this.#n++;
    this.fns.set(this.#n, fn);
    return this.#n;
  }
  clearTimeout(h: unknown): void {
    this.fns.delete(h as number);
  }
  fireAll(): void {
    for (const [k, f] of [...this.fns]) {
      this.fns.delete(k);
      f();
    }
  }
}

describe('PortSealer (the utility side)', () => {
  it('asks main with base64, maps answers, and refuses after timeout or close', async () => {
    const sent: ToMain[] = [];
    const timers = new ManualTimers();
    const s = new PortSealer((m) => sent.push(m), 1000, timers);
    expect(s.name).toBe(SAFE_STORAGE_SEALER);
    const p = s.seal(KEY);
    expect(sent).toEqual([{ t: 'seal', id: 1, op: 'seal', data: b64(KEY) }]);
    s.answer(1, { ok: true, data: b64(Uint8Array.from([9, 9])) });
    expect(await p).toEqual({ ok: true, sealed: Uint8Array.from([9, 9]) });
    // Main's refusal keeps its key store code; any other code is "unavailable".
    const u = s.unseal(Uint8Array.from([1]));
    s.answer(2, { ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL', detail: 'no' });
    expect(await u).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL' });
    const odd = s.unseal(Uint8Array.from([1]));
    s.answer(3, { ok: false, code: 'POS_ERR_SOMETHING_ELSE', detail: 'no' });
    expect(await odd).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE' });
    // No answer: the timeout refuses; a late answer is dropped.
    const late = s.seal(KEY);
    timers.fireAll();
    expect(await late).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE' });
    s.answer(4, { ok: true, data: '' });
    // Closing fails what waits and refuses what comes.
    const waiting = s.seal(KEY);
    s.close();
    expect(await waiting).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE' });
    expect(await s.seal(KEY)).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
    });
    expect(timers.fns.size).toBe(0);
  });

  it('a port that throws on post is a coded refusal', async () => {
    const s = new PortSealer(() => {
      throw new Error('port closed');
    });
    expect(await s.seal(KEY)).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
    });
  });
});

class FakePort implements ParentPortLike {
  private listener: ((e: { data: unknown }) => void) | undefined;
  toMain: ((m: unknown) => void) | undefined;
  on(_event: 'message', listener: (e: { data: unknown }) => void): void {
    this.listener = listener;
  }
  postMessage(message: unknown): void {
    this.toMain?.(structuredClone(message));
  }
  deliver(data: unknown): void {
    this.listener?.({ data: structuredClone(data) });
  }
}

const shell: ElectronShell = {
  kind: 'electron',
  build: 'release',
  version: '0.1.0',
  packaged: true,
  appPath: '/opt/pos/resources/app.asar',
};

describe('main ↔ utility: the key store in the core seals through main (one process, messages cloned)', () => {
  async function setup(ss: SafeStorageLike) {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'terminal.json');
    const port = new FakePort();
    let store: FileKeyStore | undefined;
    runCoreProcess({
      port,
      createCore: (opts) => {
        store = new FileKeyStore({ path, ...(opts.sealer === undefined ? {} : { sealer: opts.sealer }) });
        const core: TerminalCore = {
          handle: (): Promise<CommandResult> => Promise.resolve({ ok: true }),
          subscribe: (_cb: (s: Snapshot) => void) => () => undefined,
          close: () => Promise.resolve(),
        };
        return Promise.resolve(core);
      },
      exit: () => undefined,
    });
    const log: string[] = [];
    const bridge = new CoreBridge({
      spawn: () => ({
        post: (m) => port.deliver(m),
        onMessage: (l) => (port.toMain = l),
        onExit: () => undefined,
        kill: () => undefined,
      }),
      init: () => ({ dataDir: t.dir, shell }),
      onSnapshot: () => undefined,
      log: (l) => log.push(l),
      seal: createSealHandler(ss, { platform: 'linux', packaged: true, log: (l) => log.push(l) }),
    });
    bridge.start();
    await flush();
    if (store === undefined) throw new Error('no core');
    return { store, path, log, bridge };
  }

  it('the device key is stored sealed by electron-safestorage and read back; nothing logs it', async () => {
    const ss = fakeSafeStorage();
    const { store, path, log } = await setup(ss);
    expect(await store.putDeviceKey(KEY)).toEqual({ ok: true });
    const file = readFileSync(path, 'utf8');
    expect(JSON.parse(file)).toMatchObject({ version: 1, sealer: 'electron-safestorage' });
    expect(file).not.toContain(toBase64url(KEY));
    const k = await store.getDeviceKey();
    expect(k.ok && [...(k.secretKey ?? [])]).toEqual([...KEY]);
    for (const l of log) {
      expect(l).not.toContain(b64(KEY));
      expect(l).not.toContain(toBase64url(KEY));
    }
  });

  it("a release build on Linux with 'basic_text' stores no key: a coded refusal reaches the key store", async () => {
    const { store, path, log } = await setup(
      fakeSafeStorage({ getSelectedStorageBackend: () => 'basic_text' }),
    );
    expect(await store.putDeviceKey(KEY)).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
    });
    expect(() => readFileSync(path)).toThrow();
    expect(log.join('\n')).toContain('basic_text');
  });

  it('a bridge without a seal handler answers unavailable', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const port = new FakePort();
    let store: FileKeyStore | undefined;
    runCoreProcess({
      port,
      createCore: (opts) => {
        store = new FileKeyStore({
          path: join(t.dir, 'k.json'),
          ...(opts.sealer ? { sealer: opts.sealer } : {}),
        });
        return Promise.resolve({
          handle: () => Promise.resolve({ ok: true } as CommandResult),
          subscribe: () => () => undefined,
          close: () => Promise.resolve(),
        });
      },
      exit: () => undefined,
    });
    new CoreBridge({
      spawn: () => ({
        post: (m) => port.deliver(m),
        onMessage: (l) => (port.toMain = l),
        onExit: () => undefined,
        kill: () => undefined,
      }),
      init: () => ({ dataDir: t.dir, shell }),
      onSnapshot: () => undefined,
      log: () => undefined,
    }).start();
    await flush();
    expect(await store?.putDeviceKey(KEY)).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
    });
  });
});
