import { describe, expect, it } from 'vitest';
import { APP_ENTRY_URL } from '../../src/main/channels';
import { parsePairing } from '../../src/main/wiring';
import {
  checkSender,
  CONTENT_SECURITY_POLICY,
  contentProtectionReport,
  devicePermissionDecision,
  forbiddenSwitches,
  isAllowedRequest,
  isAppUrl,
  permissionDecision,
  securityHeaders,
  windowOpenDecision,
  windowOptions,
  withCsp,
  type FrameLike,
} from '../../src/main/security';

const top: FrameLike = { url: APP_ENTRY_URL, parent: null, processId: 4, routingId: 1, detached: false };
const main = { webContentsId: 7, mainFrame: top };

describe('window options', () => {
  it('sandboxed, isolated, no Node, web security on; devtools only when asked', () => {
    const o = windowOptions('/app/preload.cjs', { devTools: false });
    const w = o.webPreferences;
    expect(w).toMatchObject({
      preload: '/app/preload.cjs',
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
      devTools: false,
    });
    expect(windowOptions('/p', { devTools: true }).webPreferences?.devTools).toBe(true);
    expect(o.show).toBe(false);
  });
});

describe('CSP and headers', () => {
  it('allows only the app itself: no inline, no eval, no network, no frames', () => {
    const d: Record<string, string[]> = Object.fromEntries(
      CONTENT_SECURITY_POLICY.split('; ').map((p): [string, string[]] => [
        p.split(' ')[0] ?? '',
        p.split(' ').slice(1),
      ]),
    );
    expect(d['default-src']).toEqual(["'none'"]);
    expect(d['script-src']).toEqual(["'self'"]);
    expect(d['style-src']).toEqual(["'self'"]);
    expect(d['connect-src']).toEqual(["'none'"]);
    expect(d['object-src']).toEqual(["'none'"]);
    expect(d['frame-ancestors']).toEqual(["'none'"]);
    expect(d['base-uri']).toEqual(["'none'"]);
    expect(d['form-action']).toEqual(["'none'"]);
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-|\*|http:|https:|blob:/);
  });
  it('every app:// response carries the CSP, nosniff and no-store', () => {
    expect(securityHeaders()).toMatchObject({
      'Content-Security-Policy': CONTENT_SECURITY_POLICY,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-store',
    });
  });
  it('withCsp replaces a response CSP (any case) with ours', () => {
    const h = withCsp({ 'content-security-policy': ['default-src *'], 'X-Other': ['1'] });
    expect(h).toEqual({ 'X-Other': ['1'], 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] });
    expect(withCsp(undefined)).toEqual({ 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] });
  });
});

describe('requests, navigation, windows, permissions', () => {
  it('only the app origin (and data: images) is fetched; devtools pages only in development', () => {
    expect(isAllowedRequest('app://terminal/assets/a.js', { devTools: false })).toBe(true);
    expect(isAllowedRequest('data:image/png;base64,AA==', { devTools: false })).toBe(true);
    for (const url of [
      'https://example.com/',
      'http://127.0.0.1:8080/',
      'file:///etc/passwd',
      'ws://localhost/',
      'app://evil/index.html',
      'app://terminal:81/index.html',
      'app://user@terminal/index.html',
      'other://terminal/index.html',
      'devtools://devtools/bundled/x.html',
      'not a url',
    ])
      expect(isAllowedRequest(url, { devTools: false }), url).toBe(false);
    expect(isAllowedRequest('devtools://devtools/bundled/x.html', { devTools: true })).toBe(true);
  });
  it('isAppUrl', () => {
    expect(isAppUrl(APP_ENTRY_URL)).toBe(true);
    expect(isAppUrl('app://terminal.evil/index.html')).toBe(false);
  });
  it('no window opens and every permission and device is refused', () => {
    expect(windowOpenDecision({ url: APP_ENTRY_URL })).toEqual({ action: 'deny' });
    for (const p of [
      'media',
      'hid',
      'serial',
      'usb',
      'notifications',
      'clipboard-read',
      'fullscreen',
      'openExternal',
    ])
      expect(permissionDecision(p)).toBe(false);
    expect(devicePermissionDecision({ deviceType: 'hid', origin: 'app://terminal' })).toBe(false);
  });
});

describe('IPC sender check', () => {
  const msg = (frame: FrameLike | null, senderId = 7) => ({ senderId, senderFrame: frame });
  it("accepts the main window's top frame at the app origin", () => {
    expect(checkSender(msg({ ...top }), main)).toEqual({ ok: true });
  });
  it.each([
    ['another web contents', msg(top, 8)],
    ['no frame', msg(null)],
    ['a detached frame', msg({ ...top, detached: true })],
    ['a subframe', msg({ ...top, parent: top, routingId: 2 })],
    ['another frame id', msg({ ...top, routingId: 9 })],
    ['another process', msg({ ...top, processId: 5 })],
    ['a page from elsewhere', msg({ ...top, url: 'https://example.com/' })],
    ['a file page', msg({ ...top, url: 'file:///tmp/x.html' })],
  ])('refuses %s', (_name, m) => {
    const r = checkSender(m, main);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.code).toBe('POS_ERR_DESKTOP_API_SENDER');
  });
  it('refuses everything when the window has no main frame', () => {
    expect(checkSender(msg(top), { webContentsId: 7, mainFrame: undefined }).ok).toBe(false);
  });
});

describe('content protection report', () => {
  it('macOS and Windows report the window state; Linux cannot tell (unknown, never ok)', () => {
    expect(contentProtectionReport('darwin', true)).toBe(true);
    expect(contentProtectionReport('win32', false)).toBe(false);
    expect(contentProtectionReport('linux', true)).toBeUndefined();
  });
});

describe('pairing.json', () => {
  const good = {
    reader: { transport: 'hid', vendorId: 0x1209, productId: 0x0001 },
    readerSerial: 'SIM-0001',
    readerCaRoots: ['MIIB'],
  };
  it('absent: no pairing; valid: parsed', () => {
    expect(parsePairing(undefined)).toEqual({ ok: true, pairing: undefined });
    expect(parsePairing(JSON.stringify(good))).toEqual({ ok: true, pairing: good });
  });
  it('invalid: refused, naming the place, never the content', () => {
    const r = parsePairing(
      JSON.stringify({ ...good, reader: { transport: 'serial', path: '' }, secret: 'x' }),
    );
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r)).not.toContain('secret');
    expect(parsePairing('{')).toEqual({ ok: false, why: 'pairing.json is not JSON' });
  });
});

describe('forbidden debugging switches (review 2, H1)', () => {
  it('names the CDP, inspector and V8 switches on a command line, with or without a value, never the value', () => {
    expect(forbiddenSwitches(['/opt/app/pos', '--remote-debugging-port=9222'])).toEqual([
      'remote-debugging-port',
    ]);
    expect(forbiddenSwitches(['/opt/app/pos', '--remote-debugging-pipe', '--inspect=0.0.0.0:9229'])).toEqual([
      'remote-debugging-pipe',
      'inspect',
    ]);
    expect(forbiddenSwitches(['/opt/app/pos', '--js-flags=--allow-natives-syntax'])).toEqual(['js-flags']);
    expect(forbiddenSwitches(['/opt/app/pos', '--lang=de', 'remote-debugging-port', '--no-sandbox'])).toEqual(
      [],
    );
  });
});
