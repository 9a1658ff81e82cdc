/**
 * The thin layer between Electron and the pure decisions of security.ts, app-protocol.ts,
 * core-bridge.ts and ipc.ts. Everything takes the Electron objects as parameters (types only are
 * imported from electron), so tests pass recording fakes; `index.ts` passes the real ones.
 */
import type { CustomScheme, IpcMainInvokeEvent, Session, WebContents } from 'electron';
import { PairingSchema, type ElectronShell, type PairingConfig } from '../utility/protocol';
import { serveApp, type AppFiles } from './app-protocol';
import { APP_SCHEME } from './channels';
import {
  allowNavigation,
  checkSender,
  devicePermissionDecision,
  isAllowedRequest,
  permissionDecision,
  windowOpenDecision,
  withCsp,
  type SenderCheck,
} from './security';

/** The app:// scheme's privileges: a standard, secure origin ('self' in the CSP works), nothing more. */
export const APP_SCHEME_PRIVILEGES: CustomScheme = {
  scheme: APP_SCHEME,
  privileges: {
    standard: true,
    secure: true,
    // ES module scripts are fetched with the Fetch API; no CORS, no CSP bypass, no service workers.
    supportFetchAPI: true,
    corsEnabled: false,
    bypassCSP: false,
    allowServiceWorkers: false,
    stream: false,
    codeCache: false,
  },
};

type Log = (line: string) => void;

/**
 * Every permission request and check refused, no device chooser answers, no downloads, no request
 * leaves the app's origin, and the CSP on any response that did not come from the app:// handler.
 */
export function hardenSession(ses: Session, opts: { devTools: boolean; log: Log }): void {
  const { log } = opts;
  ses.setPermissionRequestHandler((_wc, permission, callback) => {
    log(`session: refused permission request ${permission}`);
    callback(permissionDecision(permission));
  });
  ses.setPermissionCheckHandler((_wc, permission) => permissionDecision(permission));
  ses.setDevicePermissionHandler((details) => devicePermissionDecision(details));
  ses.setBluetoothPairingHandler((_details, callback) => callback({ confirmed: false }));
  ses.setDisplayMediaRequestHandler((_request, callback) => callback(null));
  ses.on('select-hid-device', (event, _details, callback) => {
    event.preventDefault();
    log('session: refused a HID device chooser');
    callback(null);
  });
  ses.on('select-serial-port', (event, _ports, _wc, callback) => {
    event.preventDefault();
    log('session: refused a serial port chooser');
    callback('');
  });
  ses.on('select-usb-device', (event, _details, callback) => {
    event.preventDefault();
    log('session: refused a USB device chooser');
    callback();
  });
  ses.on('will-download', (event) => {
    event.preventDefault();
    log('session: refused a download');
  });
  ses.webRequest.onBeforeRequest((details, callback) => {
    const allowed = isAllowedRequest(details.url, { devTools: opts.devTools });
    if (!allowed) log(`session: blocked a request to a ${schemeOf(details.url)} URL`);
    callback({ cancel: !allowed });
  });
  ses.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: withCsp(details.responseHeaders) });
  });
}

/** The scheme of a URL for a log line (not the URL itself: it could carry anything). */
function schemeOf(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*):/i.exec(url);
  return m?.[1]?.toLowerCase() ?? 'malformed';
}

/** For every web contents the app makes: no navigation, no redirect, no new window, no webview, no Bluetooth chooser. */
export function hardenWebContents(contents: WebContents, log: Log): void {
  contents.setWindowOpenHandler((details) => {
    log(`window: refused to open a window (${schemeOf(details.url)} URL)`);
    return windowOpenDecision(details);
  });
  const refuseNavigation = (event: { preventDefault(): void }, url: string, what: string): void => {
    if (!allowNavigation(url)) {
      event.preventDefault();
      log(`window: refused ${what} to a ${schemeOf(url)} URL`);
    }
  };
  contents.on('will-navigate', (event) => refuseNavigation(event, event.url, 'a navigation'));
  contents.on('will-frame-navigate', (event) => refuseNavigation(event, event.url, 'a frame navigation'));
  contents.on('will-redirect', (event) => refuseNavigation(event, event.url, 'a redirect'));
  contents.on('will-attach-webview', (event) => {
    event.preventDefault();
    log('window: refused a webview');
  });
  contents.on('select-bluetooth-device', (event, _devices, callback) => {
    event.preventDefault();
    callback('');
  });
}

/** The app:// handler: files of the built renderer only, with the security headers. */
export function appProtocolHandler(
  rendererDir: string,
  files: AppFiles,
): (request: Request) => Promise<Response> {
  return async (request) => {
    const r = await serveApp({ url: request.url, method: request.method }, rendererDir, files);
    return new Response(r.body, { status: r.status, headers: r.headers });
  };
}

/** `checkSender` for an IPC event against the window's web contents (undefined: no window). */
export function senderCheckFor(
  contents: () => WebContents | undefined,
): (event: IpcMainInvokeEvent) => SenderCheck {
  return (event) => {
    const wc = contents();
    if (wc === undefined || wc.isDestroyed())
      return { ok: false, code: 'POS_ERR_DESKTOP_API_SENDER', detail: 'there is no terminal window' };
    return checkSender(
      { senderId: event.sender.id, senderFrame: event.senderFrame },
      { webContentsId: wc.id, mainFrame: wc.mainFrame },
    );
  };
}

/** The shell the core's evidence reports, as main knows it now. */
export function electronShell(a: {
  packaged: boolean;
  version: string;
  appPath: string;
  devtoolsOpen: boolean;
  contentProtection: boolean | undefined;
  /** Debugging switches found on main's command line (forbiddenSwitches). */
  mainSwitches?: readonly string[];
}): ElectronShell {
  return {
    kind: 'electron',
    build: a.packaged ? 'release' : 'development',
    version: a.version,
    packaged: a.packaged,
    appPath: a.appPath,
    ...(a.packaged && a.appPath.endsWith('.asar') ? { asarPath: a.appPath } : {}),
    devtoolsOpen: a.devtoolsOpen,
    ...(a.contentProtection === undefined ? {} : { contentProtection: a.contentProtection }),
    ...(a.mainSwitches === undefined || a.mainSwitches.length === 0
      ? {}
      : { mainSwitches: [...a.mainSwitches] }),
  };
}

/** The name of the pairing file in the app's data directory (see docs/electron.md). */
export const PAIRING_FILE = 'pairing.json';

/**
 * `pairing.json`'s text (undefined: there is none) as the core's pairing, schema-parsed. A file that
 * does not parse is reported (by the first issue's path, never its content) and not used: the core
 * then refuses enrollment from the UI rather than pair with a reader nobody configured.
 */
export function parsePairing(
  text: string | undefined,
): { ok: true; pairing: PairingConfig | undefined } | { ok: false; why: string } {
  if (text === undefined) return { ok: true, pairing: undefined };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, why: `${PAIRING_FILE} is not JSON` };
  }
  const r = PairingSchema.safeParse(json);
  if (r.success) return { ok: true, pairing: r.data };
  const where = r.error.issues[0]?.path.map(String).join('.') ?? '';
  return {
    ok: false,
    why: `${PAIRING_FILE} does not match the pairing schema${where === '' ? '' : ` at ${where}`}`,
  };
}
