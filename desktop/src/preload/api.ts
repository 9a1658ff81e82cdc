/**
 * The renderer's API (`window.posTerminal`): exactly the UI API's `TerminalApi` (version, invoke,
 * subscribe), built over an injected ipcRenderer so it is tested under Node. It never hands out
 * ipcRenderer, an event object or anything of Node; every command is parsed with `parseCommand` before
 * it is sent (a bad one never reaches IPC) and every snapshot with `parseSnapshot` before a callback
 * sees it (a bad or stale one is dropped).
 */
import {
  CommandResultSchema,
  parseCommand,
  parseSnapshot,
  UI_API_VERSION,
  type CommandResult,
  type Snapshot,
  type TerminalApi,
} from '../api/contract';
import { IPC } from '../main/channels';

/** The part of Electron's ipcRenderer the API uses. */
export interface IpcRendererLike {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
}

const unavailable: CommandResult = {
  ok: false,
  code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
  detail: 'The terminal core cannot be reached.',
};

export function createTerminalApi(ipc: IpcRendererLike): TerminalApi {
  const subscribers = new Set<(s: Snapshot) => void>();
  let latest: Snapshot | undefined;

  const call = (cb: (s: Snapshot) => void, s: Snapshot): void => {
    try {
      cb(s);
    } catch {
      // One subscriber's failure must not starve the others.
    }
  };

  const deliver = (input: unknown): void => {
    const p = parseSnapshot(input);
    if (!p.ok) return;
    // Snapshots are numbered by the main process; an older one than the last shown is stale.
    if (latest !== undefined && p.snapshot.seq <= latest.seq) return;
    latest = p.snapshot;
    for (const cb of [...subscribers]) call(cb, p.snapshot);
  };

  ipc.on(IPC.snapshotEvent, (_event, snapshot) => deliver(snapshot));

  const api: TerminalApi = {
    version: UI_API_VERSION,
    async invoke(command) {
      const p = parseCommand(command);
      if (!p.ok) return { ok: false, code: p.code, detail: p.detail };
      let answer: unknown;
      try {
        answer = await ipc.invoke(IPC.invoke, p.command);
      } catch {
        return unavailable;
      }
      const r = CommandResultSchema.safeParse(answer);
      return r.success ? r.data : unavailable;
    },
    subscribe(cb) {
      subscribers.add(cb);
      if (latest !== undefined) call(cb, latest);
      else
        ipc.invoke(IPC.snapshot).then(
          (s) => {
            if (s !== null) deliver(s);
          },
          () => undefined,
        );
      return () => {
        subscribers.delete(cb);
      };
    },
  };
  return api;
}
