/**
 * The browser shell's transport for the UI API: fetch to the headless core's loopback server
 * (desktop/src/browser-shell/server.ts), same origin.
 *
 * - The launch secret: the URL the person opens carries only a single-use bootstrap code in the
 *   fragment (`#c=...`). The page removes it from the address bar and exchanges it once
 *   (`POST /api/session`) for the secret, which it keeps in sessionStorage (this origin only, port
 *   included; it survives a reload of the tab, not the tab). The code is spent by that exchange, so
 *   the URL recorded in the browser's history or autocomplete opens nothing later (review 2, L2).
 *   Every request sends the secret in the `X-Pos-Shell-Key` header.
 * - `invoke`: `POST /api/command`; the answer is parsed with `CommandResultSchema`; any failure
 *   (network, server gone, unparsable answer) resolves as `POS_ERR_DESKTOP_API_UNAVAILABLE`. Never
 *   rejects.
 * - `subscribe`: one event stream (`GET /api/events`, server-sent events read through fetch so the
 *   header can be sent; EventSource cannot send one) shared by every subscriber, opened with the first
 *   and closed after the last; each snapshot parsed with `parseSnapshot` (an invalid one is dropped),
 *   one older than the newest on this connection dropped; reconnects with backoff while subscribed.
 */
import {
  CommandResultSchema,
  parseSnapshot,
  UI_API_VERSION,
  type Command,
  type CommandResult,
  type Snapshot,
  type TerminalApi,
} from '../../api/contract';

export const SHELL_KEY_HEADER = 'X-Pos-Shell-Key';
const STORAGE_KEY = 'pos-shell-key';
const MAX_EVENT_BYTES = 256 * 1024;

export interface BrowserApiOptions {
  /** Origin of the shell's server; default: this page's. */
  readonly base?: string;
  /** Reconnect delays: initial, doubling, capped. */
  readonly reconnectMs?: { readonly initial: number; readonly max: number };
}

/**
 * The launch secret: this tab's sessionStorage, or (first load) the fragment's single-use bootstrap
 * code exchanged once with the shell for it. The code leaves the address bar at once, exchanged or not.
 */
export async function takeShellKey(base: string = window.location.origin): Promise<string | undefined> {
  let code: string | null;
  try {
    code = new URLSearchParams(window.location.hash.replace(/^#/, '')).get('c');
  } catch {
    code = null;
  }
  if (code !== null) {
    try {
      window.history.replaceState(null, '', window.location.pathname + window.location.search);
    } catch {
      // Nothing to clean, or not allowed: not fatal.
    }
  }
  if (code !== null && /^[A-Za-z0-9_-]{16,256}$/.test(code)) {
    const key = await exchangeCode(base, code);
    if (key !== undefined) {
      try {
        window.sessionStorage.setItem(STORAGE_KEY, key);
      } catch {
        // Storage refused (private mode): the key still works for this page's life.
      }
      return key;
    }
  }
  try {
    return window.sessionStorage.getItem(STORAGE_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

async function exchangeCode(base: string, code: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${base}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
      cache: 'no-store',
      credentials: 'omit',
    });
    if (!res.ok) return undefined;
    const body: unknown = await res.json();
    const key = typeof body === 'object' && body !== null && 'key' in body ? body.key : undefined;
    return typeof key === 'string' && /^[A-Za-z0-9_-]{16,256}$/.test(key) ? key : undefined;
  } catch {
    return undefined;
  }
}

const unavailable = (detail: string): CommandResult => ({
  ok: false,
  code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
  detail,
});

export function createBrowserApi(options: BrowserApiOptions = {}): TerminalApi {
  const base = options.base ?? window.location.origin;
  const backoff = options.reconnectMs ?? { initial: 500, max: 5000 };
  const keyP = takeShellKey(base);
  const headers = async (extra: Record<string, string> = {}): Promise<Record<string, string>> => {
    const key = await keyP;
    return key === undefined ? extra : { ...extra, [SHELL_KEY_HEADER]: key };
  };

  const subscribers = new Set<(s: Snapshot) => void>();
  let latest: Snapshot | undefined;
  let abort: AbortController | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let delay = backoff.initial;

  const deliver = (s: Snapshot): void => {
    latest = s;
    for (const cb of [...subscribers]) {
      try {
        cb(s);
      } catch {
        // A subscriber's bug is not the transport's.
      }
    }
  };

  /** One SSE event block: its `data:` lines joined (only `snapshot` events are used). */
  const onBlock = (block: string, lastSeq: { v: number }): void => {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (event !== 'snapshot' || data.length === 0) return;
    let value: unknown;
    try {
      value = JSON.parse(data.join('\n')) as unknown;
    } catch {
      return;
    }
    const p = parseSnapshot(value);
    if (!p.ok || p.snapshot.seq <= lastSeq.v) return;
    lastSeq.v = p.snapshot.seq;
    deliver(p.snapshot);
  };

  const scheduleReconnect = (): void => {
    if (subscribers.size === 0 || retryTimer !== undefined) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, delay);
    delay = Math.min(backoff.max, delay * 2);
  };

  const connect = async (): Promise<void> => {
    if (subscribers.size === 0 || abort !== undefined) return;
    const ctrl = new AbortController();
    abort = ctrl;
    // Seqs increase per connection; after a reconnect the server (maybe restarted) starts afresh.
    const lastSeq = { v: -1 };
    try {
      const res = await fetch(`${base}/api/events`, {
        headers: await headers({ accept: 'text/event-stream' }),
        cache: 'no-store',
        credentials: 'omit',
        signal: ctrl.signal,
      });
      if (!res.ok || res.body === null) throw new Error(`events: HTTP ${res.status}`);
      delay = backoff.initial;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, '\n');
        let cut = buf.indexOf('\n\n');
        while (cut >= 0) {
          onBlock(buf.slice(0, cut), lastSeq);
          buf = buf.slice(cut + 2);
          cut = buf.indexOf('\n\n');
        }
        if (buf.length > MAX_EVENT_BYTES) throw new Error('events: an event is too large');
      }
    } catch {
      // Dropped, refused or aborted: reconnect below while anyone listens.
    } finally {
      if (abort === ctrl) abort = undefined;
      if (!ctrl.signal.aborted) scheduleReconnect();
    }
  };

  return {
    version: UI_API_VERSION,

    async invoke(command: Command): Promise<CommandResult> {
      let res: Response;
      try {
        res = await fetch(`${base}/api/command`, {
          method: 'POST',
          headers: await headers({ 'content-type': 'application/json' }),
          body: JSON.stringify(command),
          cache: 'no-store',
          credentials: 'omit',
        });
      } catch {
        return unavailable('the terminal core cannot be reached');
      }
      let value: unknown;
      try {
        value = (await res.json()) as unknown;
      } catch {
        return unavailable(`the terminal core answered HTTP ${res.status} without a result`);
      }
      const r = CommandResultSchema.safeParse(value);
      return r.success ? r.data : unavailable('the terminal core answered something unexpected');
    },

    subscribe(cb: (snapshot: Snapshot) => void): () => void {
      subscribers.add(cb);
      if (latest !== undefined) {
        try {
          cb(latest);
        } catch {
          // As in deliver.
        }
      }
      void connect();
      return () => {
        subscribers.delete(cb);
        if (subscribers.size > 0) return;
        abort?.abort();
        abort = undefined;
        if (retryTimer !== undefined) clearTimeout(retryTimer);
        retryTimer = undefined;
        delay = backoff.initial;
      };
    },
  };
}
