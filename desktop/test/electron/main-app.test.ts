/**
 * The Electron main process with `electron` mocked: what it sets up before and after `ready`, and
 * that every handler it installs refuses what it must. The fakes record calls; the test then drives
 * the recorded handlers as Electron would.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { APP_ENTRY_URL, IPC } from '../../src/main/channels';
import { CONTENT_SECURITY_POLICY } from '../../src/main/security';
import { flush, padSnapshot } from './fixtures';

const h = vi.hoisted(() => {
  class Emitter {
    readonly handlers = new Map<string, ((...args: unknown[]) => unknown)[]>();
    on(event: string, l: (...args: unknown[]) => unknown): this {
      this.handlers.set(event, [...(this.handlers.get(event) ?? []), l]);
      return this;
    }
    once(event: string, l: (...args: unknown[]) => unknown): this {
      return this.on(event, l);
    }
    emit(event: string, ...args: unknown[]): unknown[] {
      return (this.handlers.get(event) ?? []).map((l) => l(...args));
    }
  }
  const calls: { name: string; args: unknown[] }[] = [];
  const rec =
    (name: string) =>
    (...args: unknown[]): undefined => {
      calls.push({ name, args });
      return undefined;
    };
  let readyResolve!: () => void;
  const ready = new Promise<void>((r) => (readyResolve = r));
  const switches = new Set<string>();
  const app = Object.assign(new Emitter(), {
    isPackaged: true,
    commandLine: { hasSwitch: (s: string) => switches.has(s) },
    exit: rec('app.exit'),
    enableSandbox: rec('app.enableSandbox'),
    requestSingleInstanceLock: () => true,
    quit: rec('app.quit'),
    whenReady: () => ready,
    getVersion: () => '0.1.0',
    getAppPath: () => '/opt/pos/resources/app.asar',
    getPath: (name: string) => `/home/merchant/.config/pos-terminal(${name})`,
  });
  const mainFrame = {
    url: 'app://terminal/index.html',
    parent: null,
    processId: 3,
    routingId: 1,
    detached: false,
  };
  const webContents = Object.assign(new Emitter(), {
    id: 7,
    mainFrame,
    sent: [] as unknown[][],
    devtools: false,
    isDevToolsOpened(): boolean {
      return this.devtools;
    },
    isDestroyed: () => false,
    send(...args: unknown[]): void {
      this.sent.push(args);
    },
  });
  const windows: { options: unknown; protectedNow: boolean; win: unknown }[] = [];
  class BrowserWindow extends Emitter {
    readonly webContents = webContents;
    protectedNow = false;
    constructor(readonly options: unknown) {
      super();
      windows.push({ options, protectedNow: false, win: this });
    }
    setContentProtection(on: boolean): void {
      calls.push({ name: 'win.setContentProtection', args: [on] });
      this.protectedNow = on;
    }
    isContentProtected(): boolean {
      return this.protectedNow;
    }
    isDestroyed(): boolean {
      return false;
    }
    show(): void {}
    loadURL(url: string): Promise<void> {
      calls.push({ name: 'win.loadURL', args: [url] });
      return Promise.resolve();
    }
  }
  /** The handlers the app installs on the session, by name. */
  const slots = new Map<string, unknown>();
  const slot =
    (name: string) =>
    (f: unknown): void => {
      slots.set(name, f);
    };
  const ses = Object.assign(new Emitter(), {
    setPermissionRequestHandler: slot('permissionRequest'),
    setPermissionCheckHandler: slot('permissionCheck'),
    setDevicePermissionHandler: slot('devicePermission'),
    setBluetoothPairingHandler: rec('ses.setBluetoothPairingHandler'),
    setDisplayMediaRequestHandler: rec('ses.setDisplayMediaRequestHandler'),
    webRequest: { onBeforeRequest: slot('beforeRequest'), onHeadersReceived: slot('headersReceived') },
  });
  const ipcHandlers = new Map<string, (...args: unknown[]) => unknown>();
  const protocolHandlers = new Map<string, (r: Request) => Promise<Response>>();
  const children: (InstanceType<typeof Emitter> & {
    forked: unknown[];
    posted: unknown[];
    killed: boolean;
  })[] = [];
  return {
    Emitter,
    switches,
    calls,
    app,
    readyResolve,
    webContents,
    windows,
    BrowserWindow,
    ses,
    slots,
    ipcHandlers,
    protocolHandlers,
    children,
  };
});

vi.mock('electron', () => ({
  app: h.app,
  BrowserWindow: h.BrowserWindow,
  Menu: { setApplicationMenu: (m: unknown) => h.calls.push({ name: 'Menu.setApplicationMenu', args: [m] }) },
  ipcMain: { handle: (ch: string, f: (...args: unknown[]) => unknown) => h.ipcHandlers.set(ch, f) },
  protocol: {
    registerSchemesAsPrivileged: (s: unknown) =>
      h.calls.push({ name: 'protocol.registerSchemesAsPrivileged', args: [s] }),
    handle: (scheme: string, f: (r: Request) => Promise<Response>) => h.protocolHandlers.set(scheme, f),
  },
  session: { defaultSession: h.ses },
  // A reversible stand-in for the OS key protection (Keychain, DPAPI, libsecret).
  safeStorage: {
    isEncryptionAvailable: () => true,
    getSelectedStorageBackend: () => 'gnome_libsecret',
    encryptString: (text: string) => {
      h.calls.push({ name: 'safeStorage.encryptString', args: [] });
      return Buffer.from(`sealed:${text}`, 'utf8').reverse();
    },
    decryptString: (b: Buffer) => {
      const text = Buffer.from(b).reverse().toString('utf8');
      if (!text.startsWith('sealed:')) throw new Error('does not decrypt');
      return text.slice('sealed:'.length);
    },
  },
  utilityProcess: {
    fork: (...forked: unknown[]) => {
      const c = Object.assign(new h.Emitter(), {
        forked,
        posted: [] as unknown[],
        killed: false,
        postMessage(m: unknown) {
          this.posted.push(structuredClone(m));
        },
        kill() {
          this.killed = true;
          return true;
        },
      });
      h.children.push(c);
      return c;
    },
  },
}));

let dist: string;
const called = (name: string) => h.calls.filter((c) => c.name === name);
const child = () => {
  const c = h.children.at(-1);
  if (c === undefined) throw new Error('no utility process');
  return c;
};
const trustedEvent = () => ({ sender: { id: 7 }, senderFrame: { ...h.webContents.mainFrame } });

beforeAll(async () => {
  dist = mkdtempSync(join(tmpdir(), 'pos-electron-main-'));
  mkdirSync(join(dist, 'renderer'));
  mkdirSync(join(dist, 'electron'));
  writeFileSync(join(dist, 'renderer', 'index.html'), '<!doctype html>');
  writeFileSync(join(dist, 'secret.txt'), 'outside');
  const { runMain } = await import('../../src/main/app');
  runMain(join(dist, 'electron', 'main.mjs'));
});
afterAll(() => rmSync(dist, { recursive: true, force: true }));

describe('before ready', () => {
  it('registers app:// as a privileged standard, secure scheme (no CSP bypass, no service workers) and enables the sandbox for all renderers', () => {
    const schemes = called('protocol.registerSchemesAsPrivileged')[0]?.args[0];
    expect(schemes).toEqual([{ scheme: 'app', privileges: expect.any(Object) as unknown }]);
    expect((schemes as [{ privileges: unknown }])[0].privileges).toMatchObject({
      standard: true,
      secure: true,
      bypassCSP: false,
      allowServiceWorkers: false,
      corsEnabled: false,
    });
    expect(called('app.enableSandbox')).toHaveLength(1);
    expect(h.windows).toHaveLength(0);
  });
});

describe('after ready', () => {
  beforeAll(async () => {
    h.readyResolve();
    await flush();
    await flush();
  });

  it('one window: sandboxed, isolated, no Node, web security on, no devtools in a release; content protection on; the UI from app://', () => {
    expect(h.windows).toHaveLength(1);
    expect(h.windows[0]?.options).toMatchObject({
      webPreferences: {
        preload: join(dist, 'electron', 'preload.cjs'),
        sandbox: true,
        contextIsolation: true,
        nodeIntegration: false,
        webSecurity: true,
        devTools: false,
      },
    });
    expect(called('win.setContentProtection').map((c) => c.args[0])).toEqual([true]);
    expect(called('win.loadURL').map((c) => c.args[0])).toEqual([APP_ENTRY_URL]);
    expect(called('Menu.setApplicationMenu').map((c) => c.args[0])).toEqual([null]);
  });

  it('every permission request and check, and every device, is refused', () => {
    const answers: boolean[] = [];
    const request = h.slots.get('permissionRequest') as (
      wc: unknown,
      p: string,
      cb: (ok: boolean) => void,
    ) => void;
    for (const p of ['media', 'hid', 'serial', 'notifications', 'clipboard-read', 'geolocation'])
      request(h.webContents, p, (ok) => answers.push(ok));
    expect(answers).toEqual([false, false, false, false, false, false]);
    const check = h.slots.get('permissionCheck') as (wc: unknown, p: string) => boolean;
    expect(check(h.webContents, 'hid')).toBe(false);
    const device = h.slots.get('devicePermission') as (d: unknown) => boolean;
    expect(device({ deviceType: 'usb', origin: 'app://terminal' })).toBe(false);
  });

  it.each([
    ['select-hid-device', [{ deviceList: [{ deviceId: 'x' }] }], [null]],
    ['select-serial-port', [[{ portId: 'p' }], h.webContents], ['']],
    ['select-usb-device', [{ deviceList: [{ deviceId: 'u' }] }], []],
  ])('the %s chooser is cancelled', (event, args, expected) => {
    const prevented: boolean[] = [];
    const answered: unknown[][] = [];
    h.ses.emit(event, { preventDefault: () => prevented.push(true) }, ...args, (...a: unknown[]) =>
      answered.push(a),
    );
    expect(prevented).toEqual([true]);
    expect(answered).toEqual([expected]);
  });

  it('requests leave nowhere but app://; every response gets the CSP', () => {
    const before = h.slots.get('beforeRequest') as (
      d: { url: string },
      cb: (r: { cancel: boolean }) => void,
    ) => void;
    const decide = (url: string) => {
      let cancel: boolean | undefined;
      before({ url }, (r) => (cancel = r.cancel));
      return cancel;
    };
    expect(decide('app://terminal/assets/a.js')).toBe(false);
    expect(decide('https://example.com/x.js')).toBe(true);
    expect(decide('file:///etc/passwd')).toBe(true);
    expect(decide('devtools://devtools/bundled/inspector.html')).toBe(true);
    const headers = h.slots.get('headersReceived') as (
      d: { responseHeaders?: Record<string, string[]> },
      cb: (r: { responseHeaders: Record<string, string[]> }) => void,
    ) => void;
    let out: Record<string, string[]> | undefined;
    headers(
      { responseHeaders: { 'Content-Security-Policy': ['default-src *'] } },
      (r) => (out = r.responseHeaders),
    );
    expect(out).toEqual({ 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] });
  });

  it('every web contents: navigation, redirects, new windows and webviews refused', () => {
    const opened = new Map<string, unknown>();
    const contents = Object.assign(new h.Emitter(), {
      setWindowOpenHandler: (f: unknown) => opened.set('handler', f),
    });
    h.app.emit('web-contents-created', {}, contents);
    expect(
      (opened.get('handler') as (d: { url: string }) => unknown)({ url: 'https://evil.example/' }),
    ).toEqual({
      action: 'deny',
    });
    for (const [event, url] of [
      ['will-navigate', 'https://evil.example/'],
      ['will-navigate', 'app://terminal/other.html'],
      ['will-frame-navigate', 'https://evil.example/'],
      ['will-redirect', 'https://evil.example/'],
      ['will-attach-webview', ''],
    ] as const) {
      let prevented = false;
      contents.emit(event, { url, preventDefault: () => (prevented = true) });
      expect(prevented, `${event} ${url}`).toBe(true);
    }
    let chosen: unknown;
    contents.emit(
      'select-bluetooth-device',
      { preventDefault: () => undefined },
      [{ deviceId: 'b' }],
      (id: unknown) => (chosen = id),
    );
    expect(chosen).toBe('');
  });

  it('app:// serves the renderer directory only, with the CSP', async () => {
    const handle = h.protocolHandlers.get('app');
    if (handle === undefined) throw new Error('no app:// handler');
    const ok = await handle(new Request('app://terminal/index.html'));
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(ok.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    const out = await handle(new Request('app://terminal/..%2fsecret.txt'));
    expect(out.status).toBe(403);
    expect(await out.text()).not.toContain('outside');
  });

  it('the core runs in a utility process, started with the data dir and the shell (release, asar, devtools closed)', () => {
    expect(child().forked).toEqual([
      join(dist, 'electron', 'core-process.cjs'),
      [],
      { serviceName: 'pos-terminal-core', execArgv: [] },
    ]);
    const init = child().posted[0] as { t: string; dataDir: string; shell: Record<string, unknown> };
    expect(init.t).toBe('init');
    expect(init.dataDir).toBe('/home/merchant/.config/pos-terminal(userData)');
    expect(init.shell).toMatchObject({
      kind: 'electron',
      build: 'release',
      packaged: true,
      asarPath: '/opt/pos/resources/app.asar',
      devtoolsOpen: false,
    });
    // Content protection: the window's state on macOS and Windows; on Linux the shell cannot tell.
    if (process.platform === 'linux') expect(init.shell['contentProtection']).toBeUndefined();
  });

  it('IPC: commands only from the window top frame at app://, only in the contract shape; answers from the core', async () => {
    const invoke = h.ipcHandlers.get(IPC.invoke) as (e: unknown, p: unknown) => Promise<unknown>;
    const notReady = await invoke(trustedEvent(), { cmd: 'attest.now' });
    expect(notReady).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_API_UNAVAILABLE' });
    child().emit('message', { t: 'ready' });
    const sub = { ...trustedEvent(), senderFrame: { ...h.webContents.mainFrame, parent: {}, routingId: 5 } };
    expect(await invoke(sub, { cmd: 'attest.now' })).toMatchObject({ code: 'POS_ERR_DESKTOP_API_SENDER' });
    const other = { ...trustedEvent(), sender: { id: 99 } };
    expect(await invoke(other, { cmd: 'attest.now' })).toMatchObject({ code: 'POS_ERR_DESKTOP_API_SENDER' });
    const navigated = {
      ...trustedEvent(),
      senderFrame: { ...h.webContents.mainFrame, url: 'https://evil/' },
    };
    expect(await invoke(navigated, { cmd: 'attest.now' })).toMatchObject({
      code: 'POS_ERR_DESKTOP_API_SENDER',
    });
    expect(await invoke(trustedEvent(), { cmd: 'pin.key', digit: 1 })).toMatchObject({
      code: 'POS_ERR_DESKTOP_API_INVALID',
    });
    const before = child().posted.length;
    const pending = invoke(trustedEvent(), { cmd: 'pin.key', position: 2 });
    const sent = child().posted.slice(before);
    expect(sent).toEqual([{ t: 'invoke', id: 1, command: { cmd: 'pin.key', position: 2 } }]);
    child().emit('message', { t: 'result', id: 1, result: { ok: true } });
    expect(await pending).toEqual({ ok: true });
  });

  it('snapshots go to the window; one showing the PIN pad turns content protection back on if it was off', () => {
    const win = h.windows[0]?.win as InstanceType<typeof h.BrowserWindow>;
    win.setContentProtection(false);
    child().emit('message', { t: 'snapshot', snapshot: padSnapshot(0) });
    expect(win.isContentProtected()).toBe(true);
    const last = h.webContents.sent.at(-1);
    expect(last?.[0]).toBe(IPC.snapshotEvent);
    expect(last?.[1]).toMatchObject({ sale: { state: 'pin' } });
    const snap = h.ipcHandlers.get(IPC.snapshot) as (e: unknown) => unknown;
    expect(snap(trustedEvent())).toEqual(last?.[1]);
    expect(snap({ ...trustedEvent(), sender: { id: 8 } })).toBeNull();
  });

  it('devtools opening is reported to the core at once', () => {
    h.webContents.devtools = true;
    h.webContents.emit('devtools-opened');
    expect(child().posted.at(-1)).toMatchObject({ t: 'shell', shell: { devtoolsOpen: true } });
    h.webContents.devtools = false;
  });

  it('a crashed renderer is reloaded from app://', () => {
    const before = called('win.loadURL').length;
    h.webContents.emit('render-process-gone', {}, { reason: 'crashed', exitCode: 1 });
    expect(
      called('win.loadURL')
        .slice(before)
        .map((c) => c.args[0]),
    ).toEqual([APP_ENTRY_URL]);
  });

  it("the core's key store seals and unseals the device key through main's safeStorage, answered to that core only", async () => {
    const key = Buffer.alloc(32, 0x2a).toString('base64');
    const before = child().posted.length;
    child().emit('message', { t: 'seal', id: 1, op: 'seal', data: key });
    await flush();
    const sealed = child().posted.slice(before) as {
      t: string;
      id: number;
      answer: { ok: boolean; data: string };
    }[];
    expect(sealed).toMatchObject([{ t: 'sealed', id: 1, answer: { ok: true } }]);
    expect(called('safeStorage.encryptString')).toHaveLength(1);
    const blob = sealed[0]?.answer.data ?? '';
    expect(blob).not.toContain(key);
    child().emit('message', { t: 'seal', id: 2, op: 'unseal', data: blob });
    await flush();
    expect(child().posted.at(-1)).toEqual({ t: 'sealed', id: 2, answer: { ok: true, data: key } });
    // Not an encryption oracle: only a 32-byte key is sealed; a blob of anything else is not unsealed.
    child().emit('message', { t: 'seal', id: 3, op: 'seal', data: Buffer.alloc(64, 1).toString('base64') });
    await flush();
    expect(child().posted.at(-1)).toMatchObject({
      t: 'sealed',
      id: 3,
      answer: { ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE' },
    });
    child().emit('message', {
      t: 'seal',
      id: 4,
      op: 'unseal',
      data: Buffer.from('garbage').toString('base64'),
    });
    await flush();
    expect(child().posted.at(-1)).toMatchObject({
      t: 'sealed',
      id: 4,
      answer: { ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL' },
    });
  });

  it('quitting closes the core first', () => {
    let prevented = false;
    h.app.emit('before-quit', { preventDefault: () => (prevented = true) });
    expect(prevented).toBe(true);
    expect(child().posted.at(-1)).toEqual({ t: 'close' });
  });
});

describe('debugging switches (review 2, H1)', () => {
  it('a release refuses to run with a remote-debugging switch: app.exit(1), no scheme, no window', async () => {
    const { runMain } = await import('../../src/main/app');
    const schemes = called('protocol.registerSchemesAsPrivileged').length;
    const windows = h.windows.length;
    for (const s of ['remote-debugging-port', 'remote-debugging-pipe', 'inspect']) {
      h.switches.add(s);
      const exits = called('app.exit').length;
      runMain(join(dist, 'electron', 'main.mjs'));
      expect(called('app.exit').slice(exits)).toEqual([{ name: 'app.exit', args: [1] }]);
      h.switches.delete(s);
    }
    await Promise.resolve();
    expect(called('protocol.registerSchemesAsPrivileged')).toHaveLength(schemes);
    expect(h.windows).toHaveLength(windows);
  });
});
