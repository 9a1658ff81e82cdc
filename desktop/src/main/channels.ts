/**
 * Names shared by the main process and the preload: the app's own URL scheme and the IPC channels.
 * No electron import, so the preload, the main process and plain-Node tests all use it.
 */

/** The privileged scheme the UI is served from (never file://). */
export const APP_SCHEME = 'app';
/** The one host under that scheme. */
export const APP_HOST = 'terminal';
/** The UI's origin: the only origin whose top frame may call the IPC handlers. */
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
/** The page the window loads. */
export const APP_ENTRY_URL = `${APP_ORIGIN}/index.html`;

/** The IPC channels: two `ipcMain.handle` handlers and one main → renderer event. */
export const IPC = {
  /** renderer → main (handle): one UI command; answers a `CommandResult`. */
  invoke: 'pos-terminal:invoke',
  /** renderer → main (handle): the latest snapshot, or null before the core sent one. */
  snapshot: 'pos-terminal:snapshot',
  /** main → renderer (send): a new snapshot. */
  snapshotEvent: 'pos-terminal:snapshot-event',
} as const;

/** The name the preload gives the API in the renderer's main world (`window.posTerminal`). */
export const API_GLOBAL = 'posTerminal';
