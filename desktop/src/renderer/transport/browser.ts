/**
 * The browser shell's transport for the UI API (fetch + events to the headless core on loopback).
 * Placeholder for the contract; the browser-shell work replaces it with the real client.
 */
import type { TerminalApi } from '../../api/contract';

export function createBrowserApi(): TerminalApi {
  throw new Error('the browser transport is not built yet');
}
