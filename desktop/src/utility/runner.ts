/**
 * The core's side of the utility process, with its port and the core factory injected so it runs in
 * plain Node tests: waits for `init`, starts the core (`createTerminalCore`), forwards every snapshot
 * to main, answers each `invoke` with the core's result, follows `shell` updates (devtools, content
 * protection) so the next measurement reads them, and on `close` closes the core and exits. Every
 * message from main is parsed with `ToCoreSchema`; one that does not parse is dropped (and counted in
 * a notice, never echoed).
 */
import type { CommandResult, TerminalCore } from '../api/contract';
import type { ShellInfo } from '../core/attest/types';
import type { SecretSealer } from '../core/keys/store';
import { parseToCore, toShellInfo, type PairingConfig, type ToMain } from './protocol';
import { PortSealer } from './sealer';

/** The utility process's `process.parentPort` as far as this code uses it. */
export interface ParentPortLike {
  on(event: 'message', listener: (event: { data: unknown }) => void): unknown;
  postMessage(message: unknown): void;
}

export interface CreateTerminalCoreOptions {
  dataDir: string;
  shell: () => ShellInfo;
  notice?: (line: string) => void;
  /** The reader a UI enrollment pairs with; without it the core refuses `enroll`. */
  pairing?: PairingConfig;
  /** Seals the device key at rest: main's safeStorage, asked over the port (`seal` / `sealed`). */
  sealer?: SecretSealer;
}

/** The factory `desktop/src/app/core.ts` exports (`createTerminalCore`). */
export type CreateTerminalCore = (options: CreateTerminalCoreOptions) => Promise<TerminalCore>;

export interface CoreProcessDeps {
  port: ParentPortLike;
  createCore: CreateTerminalCore;
  /** Ends the process (process.exit in production). */
  exit: (code: number) => void;
  /** How long a seal request waits for main (default 120 s: safeStorage may prompt the user). */
  sealTimeoutMs?: number;
}

const UNAVAILABLE: CommandResult = {
  ok: false,
  code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
  detail: 'The terminal core is not running yet.',
};

/** A `POS_ERR_*` code carried by a thrown value, when it has one. */
function codeOf(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null || !('code' in e)) return undefined;
  const code = e.code;
  return typeof code === 'string' && /^POS_ERR_[A-Z0-9_]{1,80}$/.test(code) ? code : undefined;
}

/** The `detail` sentence of a coded start error (the core's `CoreStartError`), when it has one. */
function detailOf(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null || !('detail' in e)) return undefined;
  const d = e.detail;
  return typeof d === 'string' && d.length > 0 ? d.slice(0, 500) : undefined;
}

export function runCoreProcess(deps: CoreProcessDeps): { readonly settled: Promise<void> } {
  const { port, createCore, exit } = deps;
  const post = (m: ToMain): void => port.postMessage(m);
  const sealer = new PortSealer(post, deps.sealTimeoutMs);
  let state: 'waiting' | 'starting' | 'running' | 'closing' | 'closed' = 'waiting';
  let shell: ShellInfo | undefined;
  let core: TerminalCore | undefined;
  let unsubscribe: (() => void) | undefined;
  let refused = 0;
  let settle!: () => void;
  const settled = new Promise<void>((r) => (settle = r));

  const finish = (code: number): void => {
    state = 'closed';
    settle();
    exit(code);
  };

  const close = async (): Promise<void> => {
    if (state === 'closing' || state === 'closed') return;
    const wasRunning = state === 'running';
    state = 'closing';
    sealer.close();
    unsubscribe?.();
    unsubscribe = undefined;
    try {
      if (wasRunning) await core?.close();
    } catch {
      // Closing is best effort: the process exits either way, which drops every link.
    }
    post({ t: 'closed' });
    finish(0);
  };

  const start = async (dataDir: string, pairing: PairingConfig | undefined): Promise<void> => {
    state = 'starting';
    try {
      core = await createCore({
        dataDir,
        ...(pairing === undefined ? {} : { pairing }),
        sealer,
        shell: () => {
          if (shell === undefined) throw new Error('no shell info');
          return shell;
        },
        notice: (line) => post({ t: 'notice', line: line.slice(0, 1000) }),
      });
    } catch (e) {
      const code = codeOf(e);
      post({
        t: 'fatal',
        code: code ?? 'POS_ERR_DESKTOP_API_UNAVAILABLE',
        // Only a coded start error's own detail (written for the merchant) is forwarded; never an
        // error's message, which could quote anything the core read.
        detail: (code === undefined ? undefined : detailOf(e)) ?? 'The terminal core could not start.',
      });
      finish(1);
      return;
    }
    // A close that arrived while starting: close the core that just started.
    if (state !== 'starting') {
      await core.close().catch(() => undefined);
      return;
    }
    state = 'running';
    unsubscribe = core.subscribe((snapshot) => post({ t: 'snapshot', snapshot }));
    post({ t: 'ready' });
  };

  const invoke = async (id: number, command: unknown): Promise<void> => {
    if (state !== 'running' || core === undefined) {
      post({ t: 'result', id, result: UNAVAILABLE });
      return;
    }
    let result: CommandResult;
    try {
      result = await core.handle(command);
    } catch {
      result = { ok: false, code: 'POS_ERR_DESKTOP_API_UNAVAILABLE', detail: 'The terminal core failed.' };
    }
    post({ t: 'result', id, result });
  };

  port.on('message', (event) => {
    const m = parseToCore(event.data);
    if (m === undefined) {
      refused++;
      post({ t: 'notice', line: `refused a message from main that does not parse (${refused} so far)` });
      return;
    }
    switch (m.t) {
      case 'init':
        if (state !== 'waiting') return;
        shell = toShellInfo(m.shell);
        void start(m.dataDir, m.pairing);
        return;
      case 'shell':
        shell = toShellInfo(m.shell);
        return;
      case 'invoke':
        void invoke(m.id, m.command);
        return;
      case 'sealed':
        sealer.answer(m.id, m.answer);
        return;
      case 'close':
        void close();
        return;
    }
  });

  return { settled };
}
