/**
 * The Electron main process's security decisions as pure functions (no electron import at run time):
 * the window's web preferences, the Content-Security-Policy and other response headers, which
 * requests, navigations, windows and permissions are allowed (none but the app's own pages), and the
 * IPC sender check. `index.ts` wires them to Electron; `desktop/test/electron/` tests them under Node.
 */
import type { BrowserWindowConstructorOptions } from 'electron';
import { APP_HOST, APP_SCHEME } from './channels';

/**
 * The CSP of every page and resource: the app's own scripts, styles, images and fonts, and nothing
 * else. No inline script or style, no eval, no network (the UI reaches the core through the preload,
 * not fetch), no frames, workers, plugins, forms or <base>.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'none'",
  "media-src 'none'",
  "object-src 'none'",
  "frame-src 'none'",
  "child-src 'none'",
  "worker-src 'none'",
  "manifest-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Features no page of the app uses: refused by the browser before any permission handler runs. */
export const PERMISSIONS_POLICY = [
  'accelerometer',
  'bluetooth',
  'camera',
  'clipboard-read',
  'display-capture',
  'geolocation',
  'gyroscope',
  'hid',
  'magnetometer',
  'microphone',
  'midi',
  'payment',
  'serial',
  'usb',
]
  .map((f) => `${f}=()`)
  .join(', ');

/** Headers on every response of the app:// scheme. */
export function securityHeaders(): Record<string, string> {
  return {
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Referrer-Policy': 'no-referrer',
    'Permissions-Policy': PERMISSIONS_POLICY,
    'Cache-Control': 'no-store',
  };
}

/**
 * Adds the CSP (replacing any the response had) to a response's headers, for `onHeadersReceived`:
 * whatever is loaded by another path than the app:// handler still carries the policy.
 */
export function withCsp(headers: Record<string, string[]> | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(headers ?? {}))
    if (k.toLowerCase() !== 'content-security-policy') out[k] = v;
  out['Content-Security-Policy'] = [CONTENT_SECURITY_POLICY];
  return out;
}

/** The options of the one window. `preload`: the bundled preload script's absolute path. */
export function windowOptions(preload: string, opts: { devTools: boolean }): BrowserWindowConstructorOptions {
  return {
    width: 1024,
    height: 768,
    minWidth: 800,
    minHeight: 600,
    show: false,
    title: 'Payment terminal',
    backgroundColor: '#ffffff',
    autoHideMenuBar: true,
    webPreferences: {
      preload,
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      experimentalFeatures: false,
      webviewTag: false,
      navigateOnDragDrop: false,
      spellcheck: false,
      safeDialogs: true,
      devTools: opts.devTools,
    },
  };
}

/** A URL of the app's own origin (`app://terminal/...`, no credentials, no port). */
export function isAppUrl(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  return (
    u.protocol === `${APP_SCHEME}:` &&
    u.hostname === APP_HOST &&
    u.port === '' &&
    u.username === '' &&
    u.password === ''
  );
}

/**
 * Whether the session lets a request through (`webRequest.onBeforeRequest`): the app's own origin,
 * `data:` images the CSP allows, and in development the devtools' own pages. Nothing remote, no
 * file://, no other custom scheme.
 */
export function isAllowedRequest(url: string, opts: { devTools: boolean }): boolean {
  if (isAppUrl(url)) return true;
  if (url.startsWith('data:')) return true;
  if (opts.devTools && (url.startsWith('devtools://') || url.startsWith('chrome-extension://'))) return true;
  return false;
}

/** Navigation (`will-navigate`, `will-frame-navigate`, `will-redirect`): never, whatever the target. */
export function allowNavigation(_url: string): false {
  return false;
}

/** `setWindowOpenHandler`: no new window, whatever the URL or disposition. */
export function windowOpenDecision(_details: { url: string }): { action: 'deny' } {
  return { action: 'deny' };
}

/**
 * Permission requests and checks (camera, notifications, HID, serial, USB, clipboard, fullscreen,
 * ...): all refused. The UI needs none; the reader is reached by the utility process, never by the
 * page through WebHID or Web Serial.
 */
export function permissionDecision(_permission: string): false {
  return false;
}

/** `setDevicePermissionHandler`: no device (HID, serial, USB) is granted to any page. */
export function devicePermissionDecision(_details: { deviceType?: string; origin?: string }): false {
  return false;
}

/** The fields of an IPC sender's frame (`event.senderFrame`, a WebFrameMain) this check reads. */
export interface FrameLike {
  readonly url: string;
  readonly parent: unknown;
  readonly processId: number;
  readonly routingId: number;
  readonly detached?: boolean;
}

export type SenderCheck = { ok: true } | { ok: false; code: 'POS_ERR_DESKTOP_API_SENDER'; detail: string };

const refuse = (detail: string): SenderCheck => ({ ok: false, code: 'POS_ERR_DESKTOP_API_SENDER', detail });

/**
 * An IPC message is taken only from the main window's web contents, from its top frame (the same
 * process and routing id as `mainFrame`, no parent), showing a page of the app:// origin. Anything
 * else (a subframe, another window, a navigated-away or detached frame) is refused.
 */
export function checkSender(
  sender: { readonly senderId: number; readonly senderFrame: FrameLike | null | undefined },
  main: { readonly webContentsId: number; readonly mainFrame: FrameLike | undefined },
): SenderCheck {
  if (sender.senderId !== main.webContentsId) return refuse('the message is not from the terminal window');
  const f = sender.senderFrame;
  if (f === null || f === undefined) return refuse('the sending frame is gone');
  if (f.detached === true) return refuse('the sending frame is detached');
  if (f.parent !== null) return refuse('the message is from a subframe');
  const top = main.mainFrame;
  if (top === undefined || f.processId !== top.processId || f.routingId !== top.routingId)
    return refuse("the message is not from the window's top frame");
  if (!isAppUrl(f.url)) return refuse('the sending frame does not show the terminal UI');
  return { ok: true };
}

/**
 * What the shell reports as content protection: macOS and Windows honour `setContentProtection`
 * (the window's own state, `isContentProtected()`); elsewhere (Linux) it does nothing, so the shell
 * cannot tell and says so (undefined: the measurement is `unknown`, never `ok`).
 */
export function contentProtectionReport(platform: string, isProtected: boolean): boolean | undefined {
  return platform === 'darwin' || platform === 'win32' ? isProtected : undefined;
}

/**
 * Chromium and Node switches that open the app to a debugger from outside (the Chrome DevTools
 * Protocol over a port or pipe, V8 flags, Node's inspector). They reach main's command line, not any
 * process's execArgv, and no fuse turns the Chromium ones off (review 2, H1).
 */
export const FORBIDDEN_SWITCHES = [
  'remote-debugging-port',
  'remote-debugging-pipe',
  'remote-debugging-address',
  'remote-allow-origins',
  'inspect',
  'inspect-brk',
  'inspect-port',
  'js-flags',
] as const;

/**
 * The forbidden switches present in `argv` (`--name` or `--name=value`; names only, never values),
 * in the order of FORBIDDEN_SWITCHES. A packaged app refuses to start with any of them; a development
 * build starts but reports them in its evidence (`suspicious-env` fails).
 */
export function forbiddenSwitches(argv: readonly string[]): string[] {
  const present = new Set<string>();
  for (const arg of argv) {
    const m = /^--?([a-z][a-z0-9-]*)(=.*)?$/.exec(arg);
    if (m?.[1] !== undefined) present.add(m[1]);
  }
  return FORBIDDEN_SWITCHES.filter((s) => present.has(s));
}
