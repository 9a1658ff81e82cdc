/**
 * The renderer's transport to the core: the preload's `window.posTerminal` in Electron, else the
 * browser shell's client (`./browser`). The choice and the guard around either are in `./select`.
 */
import type { TerminalApi } from '../../api/contract';
import { createBrowserApi } from './browser';
import { selectTransport as select, type Transport } from './select';

export { API_UNAVAILABLE, guardApi, type Transport } from './select';

/** Picks the transport for this window (see `./select`). */
export function selectTransport(
  win: { posTerminal?: unknown },
  browser: () => TerminalApi = createBrowserApi,
): Transport {
  return select(win, browser);
}
