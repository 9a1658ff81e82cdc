/**
 * The two IPC handlers as plain functions of (sender, payload): each checks the sender first (the main
 * window's top frame at the app:// origin, `checkSender`), then parses the payload with the UI API's
 * schema, and only then reaches the core. A refusal is an answer (`POS_ERR_DESKTOP_API_SENDER`,
 * `POS_ERR_DESKTOP_API_INVALID`), never a thrown error, and is logged by code and count only (never
 * the payload: it could hold anything).
 */
import { parseCommand, type Command, type CommandResult, type Snapshot } from '../api/contract';
import type { SenderCheck } from './security';

export interface IpcDeps<E> {
  /** `checkSender` applied to the event's sender and the current main window. */
  checkSender: (event: E) => SenderCheck;
  invoke: (command: Command) => Promise<CommandResult>;
  latest: () => Snapshot | undefined;
  log: (line: string) => void;
}

export function createIpcHandlers<E>(deps: IpcDeps<E>): {
  invoke: (event: E, payload: unknown) => Promise<CommandResult>;
  snapshot: (event: E) => Snapshot | null;
  refusals: () => { sender: number; invalid: number };
} {
  let sender = 0;
  let invalid = 0;
  return {
    async invoke(event, payload) {
      const s = deps.checkSender(event);
      if (!s.ok) {
        sender++;
        deps.log(`ipc: refused a command: ${s.code} (${s.detail}; ${sender} so far)`);
        return { ok: false, code: s.code, detail: s.detail };
      }
      const p = parseCommand(payload);
      if (!p.ok) {
        invalid++;
        deps.log(`ipc: refused a command: ${p.code} (${invalid} so far)`);
        return { ok: false, code: p.code, detail: p.detail };
      }
      try {
        return await deps.invoke(p.command);
      } catch {
        return { ok: false, code: 'POS_ERR_DESKTOP_API_UNAVAILABLE', detail: 'The terminal core failed.' };
      }
    },
    snapshot(event) {
      const s = deps.checkSender(event);
      if (!s.ok) {
        sender++;
        deps.log(`ipc: refused a snapshot request: ${s.code} (${s.detail}; ${sender} so far)`);
        return null;
      }
      return deps.latest() ?? null;
    },
    refusals: () => ({ sender, invalid }),
  };
}
