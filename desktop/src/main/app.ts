/**
 * The Electron main process's set-up (index.ts runs it; bundled to dist/electron/main.mjs by scripts/build-electron.ts): one
 * sandboxed window showing the UI from app://terminal, the core in a utility process, and the IPC
 * between them. The decisions are in security.ts, app-protocol.ts, ipc.ts and core-bridge.ts (pure,
 * tested under Node); this file only connects them to Electron. See docs/electron.md.
 */
import { readFileSync } from 'node:fs';
import { realpath, readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import {
  app,
  BrowserWindow,
  ipcMain,
  Menu,
  protocol,
  safeStorage,
  session,
  utilityProcess,
  type UtilityProcess,
} from 'electron';
import type { Snapshot } from '../api/contract';
import type { AppFiles } from './app-protocol';
import { APP_ENTRY_URL, APP_SCHEME, IPC } from './channels';
import { CoreBridge, type UtilityChild } from './core-bridge';
import { createSealHandler } from './safe-storage';
import { createIpcHandlers } from './ipc';
import { contentProtectionReport, forbiddenSwitches, FORBIDDEN_SWITCHES, windowOptions } from './security';
import {
  APP_SCHEME_PRIVILEGES,
  appProtocolHandler,
  electronShell,
  hardenSession,
  PAIRING_FILE,
  parsePairing,
  hardenWebContents,
  senderCheckFor,
} from './wiring';

/** Where the bundles are: dist/electron/{main.mjs,preload.cjs,core-process.cjs}, dist/renderer/. */
export function bundlePaths(mainFile: string): {
  preload: string;
  coreProcess: string;
  rendererDir: string;
  distDir: string;
} {
  const here = dirname(mainFile);
  return {
    preload: join(here, 'preload.cjs'),
    coreProcess: join(here, 'core-process.cjs'),
    rendererDir: join(here, '..', 'renderer'),
    distDir: join(here, '..'),
  };
}

const log = (line: string): void => console.log(`[pos-terminal] ${line}`);

const nodeFiles: AppFiles = {
  async readFile(path) {
    try {
      if (!(await stat(path)).isFile()) return undefined;
      return new Uint8Array(await readFile(path));
    } catch {
      return undefined;
    }
  },
  async realpath(path) {
    try {
      return await realpath(path);
    } catch {
      return undefined;
    }
  },
};

/** A small file's text, or undefined when it does not exist or cannot be read. */
function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function utilityChild(child: UtilityProcess): UtilityChild {
  return {
    post: (m) => child.postMessage(m),
    onMessage: (l) => void child.on('message', l),
    onExit: (l) => void child.on('exit', l),
    kill: () => void child.kill(),
  };
}

/** Runs the app; `mainFile` is the main bundle's path (its neighbours are the other bundles). */
export function runMain(mainFile: string): void {
  const paths = bundlePaths(mainFile);
  const packaged = app.isPackaged;
  // Devtools only in development builds: a release has no devtools to open.
  const devTools = !packaged;
  // Debugging doors from outside (CDP port or pipe, V8 flags, Node's inspector): a release refuses to
  // run with any of them; a development build runs and reports them in its evidence (review 2, H1).
  const switches = [
    ...new Set([
      ...forbiddenSwitches(process.argv),
      ...FORBIDDEN_SWITCHES.filter((s) => app.commandLine.hasSwitch(s)),
    ]),
  ];
  if (packaged && switches.length > 0) {
    log(`refusing to run with debugging switches: ${switches.join(', ')}`);
    app.exit(1);
    return;
  }

  protocol.registerSchemesAsPrivileged([APP_SCHEME_PRIVILEGES]);
  app.enableSandbox();
  if (!app.requestSingleInstanceLock()) {
    log('another instance is running; quitting');
    app.quit();
    return;
  }
  app.on('web-contents-created', (_event, contents) => hardenWebContents(contents, log));

  let win: BrowserWindow | undefined;
  let bridge: CoreBridge | undefined;
  let quitting = false;

  const shellNow = (): ReturnType<typeof electronShell> =>
    electronShell({
      packaged,
      version: app.getVersion(),
      appPath: packaged ? app.getAppPath() : paths.distDir,
      devtoolsOpen: win !== undefined && !win.isDestroyed() && win.webContents.isDevToolsOpened(),
      mainSwitches: switches,
      contentProtection:
        win === undefined || win.isDestroyed()
          ? undefined
          : contentProtectionReport(process.platform, win.isContentProtected()),
    });

  const onSnapshot = (snapshot: Snapshot): void => {
    if (win === undefined || win.isDestroyed()) return;
    // Content protection is on from the window's creation; should anything have turned it off, a
    // snapshot with the PIN pad turns it back on before the pad is drawn.
    if (snapshot.sale.pad !== undefined && !win.isContentProtected()) {
      win.setContentProtection(true);
      bridge?.updateShell(shellNow());
    }
    win.webContents.send(IPC.snapshotEvent, snapshot);
  };

  void app.whenReady().then(async () => {
    if (packaged) Menu.setApplicationMenu(null);
    hardenSession(session.defaultSession, { devTools, log });
    protocol.handle(APP_SCHEME, appProtocolHandler(paths.rendererDir, nodeFiles));

    win = new BrowserWindow(windowOptions(paths.preload, { devTools }));
    win.setContentProtection(true);
    const contents = win.webContents;
    const w = win;
    w.once('ready-to-show', () => w.show());
    w.on('closed', () => (win = undefined));
    // A crashed renderer is reloaded from app://; the core keeps its state and sends the next snapshot.
    contents.on('render-process-gone', (_event, details) => {
      log(`window: the renderer is gone (${details.reason}); reloading`);
      if (!w.isDestroyed()) void w.loadURL(APP_ENTRY_URL);
    });
    contents.on('devtools-opened', () => bridge?.updateShell(shellNow()));
    contents.on('devtools-closed', () => bridge?.updateShell(shellNow()));

    bridge = new CoreBridge({
      spawn: () =>
        utilityChild(
          utilityProcess.fork(paths.coreProcess, [], { serviceName: 'pos-terminal-core', execArgv: [] }),
        ),
      init: () => {
        // A development build (`npm start` launches one) runs on the data directory it is given;
        // a packaged app always uses its own userData directory.
        const devDir = packaged ? undefined : process.env['POS_TERMINAL_DATA_DIR'];
        const dataDir = devDir !== undefined && isAbsolute(devDir) ? devDir : app.getPath('userData');
        const p = parsePairing(readOptional(join(dataDir, PAIRING_FILE)));
        if (!p.ok) log(`core: ${p.why}; enrollment from the UI stays off`);
        const pairing = p.ok ? p.pairing : undefined;
        return { dataDir, shell: shellNow(), ...(pairing === undefined ? {} : { pairing }) };
      },
      onSnapshot,
      log,
      // The device key is sealed at rest with safeStorage (Keychain, DPAPI, libsecret/kwallet).
      seal: createSealHandler(safeStorage, { platform: process.platform, packaged, log }),
    });
    const b = bridge;
    const handlers = createIpcHandlers({
      checkSender: senderCheckFor(() => (win === undefined ? undefined : win.webContents)),
      invoke: (command) => b.invoke(command),
      latest: () => b.latest(),
      log,
    });
    ipcMain.handle(IPC.invoke, (event, payload: unknown) => handlers.invoke(event, payload));
    ipcMain.handle(IPC.snapshot, (event) => handlers.snapshot(event));

    b.start();
    await w.loadURL(APP_ENTRY_URL).catch(() => log('window: the UI did not load (is dist/renderer built?)'));
  });

  app.on('window-all-closed', () => app.quit());
  app.on('before-quit', (event) => {
    if (quitting || bridge === undefined) return;
    // Close the core first (PIN pad closed, sale aborted, reader and back-end links closed).
    event.preventDefault();
    quitting = true;
    void bridge.close().then(() => app.quit());
  });
}
