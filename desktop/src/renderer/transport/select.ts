/**
 * The choice of transport, apart from the browser client itself (index.ts wires that in), so it runs
 * and is tested without a DOM. Which transport the UI talks to the core through. In Electron the preload exposes
 * `window.posTerminal`; in the browser shell there is none and the fetch + events client is used.
 * Whatever the transport, what comes back is parsed again here (the renderer trusts no message's
 * shape): snapshots that do not match the contract or arrive out of order are dropped, and a command
 * that fails in transit answers POS_ERR_DESKTOP_API_UNAVAILABLE instead of rejecting.
 */
import {
  CommandResultSchema,
  UI_API_VERSION,
  parseSnapshot,
  type Command,
  type CommandResult,
  type Snapshot,
  type TerminalApi,
} from '../../api/contract';

export const API_UNAVAILABLE = 'POS_ERR_DESKTOP_API_UNAVAILABLE' as const;

export type Transport =
  | { ok: true; api: TerminalApi; kind: 'preload' | 'browser' }
  | { ok: false; code: typeof API_UNAVAILABLE; detail: string };

/** True when `value` has the TerminalApi shape (an object with `version`, `invoke`, `subscribe`). */
function hasApiShape(value: unknown): value is {
  version: unknown;
  invoke: (c: Command) => unknown;
  subscribe: (cb: (s: unknown) => void) => unknown;
} {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['invoke'] === 'function' && typeof v['subscribe'] === 'function' && 'version' in v;
}

/**
 * Wraps an API from outside the renderer's own code: results and snapshots are parsed, stale
 * snapshots (a `seq` not above the last one) dropped, and a throw or rejection becomes a coded result.
 */
export function guardApi(raw: {
  invoke: (c: Command) => unknown;
  subscribe: (cb: (s: unknown) => void) => unknown;
}): TerminalApi {
  return {
    version: UI_API_VERSION,
    async invoke(command: Command): Promise<CommandResult> {
      try {
        const r = CommandResultSchema.safeParse(await raw.invoke(command));
        return r.success
          ? r.data
          : { ok: false, code: API_UNAVAILABLE, detail: 'the core answered something that is not a result' };
      } catch {
        return { ok: false, code: API_UNAVAILABLE, detail: 'the terminal core did not answer' };
      }
    },
    subscribe(cb: (snapshot: Snapshot) => void): () => void {
      let lastSeq = -1;
      let off: unknown;
      try {
        off = raw.subscribe((input: unknown) => {
          const r = parseSnapshot(input);
          if (!r.ok || r.snapshot.seq <= lastSeq) return;
          lastSeq = r.snapshot.seq;
          cb(r.snapshot);
        });
      } catch {
        off = undefined;
      }
      return () => {
        if (typeof off === 'function') (off as () => void)();
      };
    },
  };
}

/**
 * Picks the transport: the preload's `posTerminal` when the window has one (it must have the API's
 * shape and this build's version: a mismatch is an error, never a silent fall-back), otherwise the
 * browser shell's client (`browser`; index.ts passes `createBrowserApi`).
 */
export function selectTransport(win: { posTerminal?: unknown }, browser: () => TerminalApi): Transport {
  if (win.posTerminal !== undefined) {
    const api = win.posTerminal;
    if (!hasApiShape(api)) {
      return { ok: false, code: API_UNAVAILABLE, detail: 'the app shell exposes no usable terminal API' };
    }
    if (api.version !== UI_API_VERSION) {
      return {
        ok: false,
        code: API_UNAVAILABLE,
        detail: `the app shell speaks UI API version ${String(api.version).slice(0, 8)}, this screen version ${UI_API_VERSION}`,
      };
    }
    return { ok: true, api: guardApi(api), kind: 'preload' };
  }
  try {
    return { ok: true, api: guardApi(browser()), kind: 'browser' };
  } catch {
    return { ok: false, code: API_UNAVAILABLE, detail: 'the browser shell client could not start' };
  }
}
