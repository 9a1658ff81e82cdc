/**
 * The main process's side of the core's utility process: starts it, sends it `init` (data directory,
 * shell), routes each UI command to it and its answer back, forwards its snapshots, and restarts it
 * with backoff when it dies. Pure logic over an injected child (`UtilityChild`) and timers; `index.ts`
 * gives it Electron's `utilityProcess`.
 *
 * - Every message from the child is parsed with `ToMainSchema`; one that does not parse is dropped.
 * - Snapshots are renumbered by main (`seq`), so a restarted core (which counts from 0 again) is not
 *   taken for a stale one by the preload.
 * - A command while the core is not ready, or one it does not answer within the timeout, resolves
 *   `POS_ERR_DESKTOP_API_UNAVAILABLE`; nothing rejects.
 * - When the core dies mid-sale the UI gets a last snapshot with the PIN pad gone and the sale ended
 *   with `POS_ERR_DESKTOP_API_UNAVAILABLE` (fail closed: no pad stays on screen without a core).
 */
import type { Command, CommandResult, Snapshot } from '../api/contract';
import {
  parseToMain,
  type ElectronShell,
  type PairingConfig,
  type SealAnswer,
  type SealOp,
  type ToCore,
} from '../utility/protocol';

export interface UtilityChild {
  post(message: ToCore): void;
  onMessage(listener: (message: unknown) => void): void;
  onExit(listener: (code: number) => void): void;
  kill(): void;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface CoreBridgeOptions {
  spawn: () => UtilityChild;
  /** Read at every (re)start: where the core keeps its state, the shell as it is now, the reader to pair with. */
  init: () => { dataDir: string; shell: ElectronShell; pairing?: PairingConfig };
  onSnapshot: (snapshot: Snapshot) => void;
  log: (line: string) => void;
  timers?: Timers;
  /** How long a command may take before it is answered unavailable (default 60 s). */
  invokeTimeoutMs?: number;
  /** Waits before restart attempt n (the last repeats). Default 1, 2, 5, 10, 30 s. */
  restartDelaysMs?: readonly number[];
  /** How long `close` waits for the core before killing it (default 5 s). */
  closeTimeoutMs?: number;
  /**
   * Seals or unseals the device key for the core's key store (Electron safeStorage, safe-storage.ts).
   * Without it every request is answered unavailable, so the core stores no key.
   */
  seal?: (op: SealOp, data: string) => SealAnswer | Promise<SealAnswer>;
}

const unavailable = (detail: string): CommandResult => ({
  ok: false,
  code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
  detail,
});

/** The snapshot shown when the core died: the pad closed, a running sale ended with an error. */
export function coreLostSnapshot(last: Snapshot, seq: number): Snapshot {
  const { pad: _pad, ...sale } = last.sale;
  const running = sale.state !== 'idle' && sale.state !== 'result';
  return {
    ...last,
    seq,
    backend: { ...last.backend, push: false, link: 'unknown' },
    sale: running
      ? {
          ...(sale.amountMinor === undefined ? {} : { amountMinor: sale.amountMinor }),
          ...(sale.currency === undefined ? {} : { currency: sale.currency }),
          state: 'result',
          result: {
            status: 'error',
            code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
            detail: 'The terminal core stopped, so the sale was cancelled. It restarts by itself.',
          },
        }
      : sale,
  };
}

const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export class CoreBridge {
  private readonly timers: Timers;
  private readonly invokeTimeoutMs: number;
  private readonly restartDelaysMs: readonly number[];
  private readonly closeTimeoutMs: number;
  private child: UtilityChild | undefined;
  private state: 'stopped' | 'starting' | 'ready' | 'closing' | 'closed' = 'stopped';
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: CommandResult) => void; timer: unknown }>();
  private latestSnapshot: Snapshot | undefined;
  private seq = 0;
  private restarts = 0;
  private restartTimer: unknown;
  private refused = 0;
  private closed: (() => void) | undefined;

  constructor(private readonly opts: CoreBridgeOptions) {
    this.timers = opts.timers ?? systemTimers;
    this.invokeTimeoutMs = opts.invokeTimeoutMs ?? 60_000;
    this.restartDelaysMs = opts.restartDelaysMs ?? [1000, 2000, 5000, 10_000, 30_000];
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 5000;
  }

  /** Whether the core is running and answers commands. */
  get ready(): boolean {
    return this.state === 'ready';
  }

  /** The latest snapshot as forwarded to the UI (main's numbering). */
  latest(): Snapshot | undefined {
    return this.latestSnapshot;
  }

  start(): void {
    if (this.state !== 'stopped') return;
    this.state = 'starting';
    const child = this.opts.spawn();
    this.child = child;
    child.onMessage((m) => {
      if (this.child === child) this.onMessage(m);
    });
    child.onExit((code) => {
      if (this.child === child) this.onExit(code);
    });
    const { dataDir, shell, pairing } = this.opts.init();
    child.post({ t: 'init', dataDir, shell, ...(pairing === undefined ? {} : { pairing }) });
  }

  /** Sends one (already parsed) command; resolves with the core's result, never rejects. */
  invoke(command: Command): Promise<CommandResult> {
    const child = this.child;
    if (this.state !== 'ready' || child === undefined)
      return Promise.resolve(unavailable('The terminal core is not running.'));
    const id = this.nextId++;
    return new Promise<CommandResult>((resolve) => {
      const timer = this.timers.setTimeout(() => {
        this.pending.delete(id);
        resolve(unavailable('The terminal core did not answer in time.'));
      }, this.invokeTimeoutMs);
      this.pending.set(id, { resolve, timer });
      child.post({ t: 'invoke', id, command });
    });
  }

  /** Tells the running core the shell changed (devtools, content protection). */
  updateShell(shell: ElectronShell): void {
    if (this.state === 'starting' || this.state === 'ready') this.child?.post({ t: 'shell', shell });
  }

  /** Stops the core: asks it to close, waits for it (or the timeout), then kills it. */
  close(): Promise<void> {
    if (this.restartTimer !== undefined) this.timers.clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    if (child === undefined || this.state === 'closed' || this.state === 'stopped') {
      this.state = 'closed';
      return Promise.resolve();
    }
    this.state = 'closing';
    this.failPending('The terminal is closing.');
    return new Promise<void>((resolve) => {
      const timer = this.timers.setTimeout(() => done(), this.closeTimeoutMs);
      const done = (): void => {
        this.timers.clearTimeout(timer);
        this.closed = undefined;
        this.child = undefined;
        this.state = 'closed';
        child.kill();
        resolve();
      };
      this.closed = done;
      child.post({ t: 'close' });
    });
  }

  private emit(snapshot: Snapshot): void {
    const s = { ...snapshot, seq: ++this.seq };
    this.latestSnapshot = s;
    this.opts.onSnapshot(s);
  }

  private onMessage(raw: unknown): void {
    const m = parseToMain(raw);
    if (m === undefined) {
      this.refused++;
      this.opts.log(`core: dropped a message that does not parse (${this.refused} so far)`);
      return;
    }
    switch (m.t) {
      case 'ready':
        if (this.state === 'starting') {
          this.state = 'ready';
          this.restarts = 0;
          this.opts.log('core: ready');
        }
        return;
      case 'result': {
        const p = this.pending.get(m.id);
        if (p === undefined) return;
        this.pending.delete(m.id);
        this.timers.clearTimeout(p.timer);
        p.resolve(m.result);
        return;
      }
      case 'snapshot':
        if (this.state === 'starting' || this.state === 'ready') this.emit(m.snapshot);
        return;
      case 'notice':
        this.opts.log(`core: ${m.line}`);
        return;
      case 'fatal':
        this.opts.log(`core: fatal ${m.code}: ${m.detail}`);
        return;
      case 'closed':
        this.closed?.();
        return;
      case 'seal':
        void this.answerSeal(m.id, m.op, m.data);
        return;
    }
  }

  /** Answers a seal request to the child that asked (never logging the data); never rejects. */
  private async answerSeal(id: number, op: SealOp, data: string): Promise<void> {
    const child = this.child;
    const seal = this.opts.seal;
    let answer: SealAnswer;
    try {
      answer =
        seal === undefined
          ? { ok: false, code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE', detail: 'no key sealing here' }
          : await seal(op, data);
    } catch {
      answer = {
        ok: false,
        code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
        detail: 'key sealing failed',
      };
    }
    if (child !== undefined && this.child === child && this.state !== 'closed')
      child.post({ t: 'sealed', id, answer });
  }

  private failPending(detail: string): void {
    for (const [id, p] of this.pending) {
      this.timers.clearTimeout(p.timer);
      p.resolve(unavailable(detail));
      this.pending.delete(id);
    }
  }

  private onExit(code: number): void {
    if (this.state === 'closing') {
      this.closed?.();
      return;
    }
    this.opts.log(`core: the utility process exited (code ${code})`);
    this.child = undefined;
    this.state = 'stopped';
    this.failPending('The terminal core stopped.');
    if (this.latestSnapshot !== undefined) this.emit(coreLostSnapshot(this.latestSnapshot, this.seq + 1));
    const delays = this.restartDelaysMs;
    const delay = delays[Math.min(this.restarts, delays.length - 1)] ?? 30_000;
    this.restarts++;
    this.restartTimer = this.timers.setTimeout(() => {
      this.restartTimer = undefined;
      if (this.state === 'stopped') this.start();
    }, delay);
  }
}
