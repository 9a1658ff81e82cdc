/**
 * The terminal core behind the UI API (desktop/src/api/contract.ts): what a shell (the browser shell's
 * server, Electron's utility process) talks to. It wraps the headless terminal's parts — enrollment,
 * the reader connection with reconnect, the halt push, the attestation agent (at start and at the
 * back-end's interval) and the transaction engine — and turns them into whole-state snapshots and
 * schema-parsed commands.
 *
 * - Commands: `sale.start` = begin + enterAmount (from a finished sale it first goes back to idle);
 *   `sale.cancel`; `sale.new` = reset; `pin.key` maps the pad *position* to its digit through the
 *   layout this core made for this PIN entry (a fresh crypto-random permutation every time the pad
 *   opens) and hands the digit to the engine's byte buffer; `pin.clear` wipes every typed digit;
 *   `pin.ok` = submitPin; `attest.now`; `enroll` (only while not enrolled).
 * - The pad is in the snapshot exactly while the engine's pad is open, with its layout, the digit
 *   count and the inactivity deadline: `inactivityMs` after the pad opened or the last key, and never
 *   later than the engine's own PIN timeout. When it passes, the core cancels the sale and the result
 *   says the entry timed out.
 * - No digit is ever put in a snapshot, a result, a notice or a string: the layout maps positions to
 *   digits (that is the point of it: a log of commands shows positions, which mean nothing without the
 *   layout, which is never logged by this module).
 *
 * `createTerminalCore` wires the real parts; `createCoreWith` takes a `CoreHost` (tests use one over the
 * engine's port fakes).
 */
import { randomInt } from 'node:crypto';
import type { Result } from '@pos/shared';
import {
  ErrorCodeSchema,
  MAX_AMOUNT_MINOR,
  parseCommand,
  TIERS,
  UI_API_VERSION,
  type Command,
  type CommandResult,
  type Sale,
  type Snapshot,
  type TerminalCore,
} from '../api/contract';
import type { AttestAnswer } from '../core/attest/agent';
import type { ShellInfo } from '../core/attest/types';
import { BackendClient } from '../core/backend/client';
import { enrollTerminal } from '../core/backend/enroll';
import { FileKeyStore, type ReaderConfig, type SecretSealer } from '../core/keys/store';
import type { DesktopCode } from '../core/result';
import type { EngineSnapshot, TransactionEngine } from '../core/transaction/engine';
import { DEFAULT_TIMEOUTS } from '../core/transaction/engine';
import { systemClock, type EngineClock, type HaltInfo } from '../core/transaction/ports';
import { collectWith, HeadlessTerminal, keyFile } from '../headless/terminal';

/** How long the PIN pad waits for a key before it closes (reset by each key). */
export const DEFAULT_PIN_INACTIVITY_MS = 30_000;

export type ReaderView = Snapshot['reader'];
export interface VerdictView {
  readonly tier: string;
  readonly at: number;
  readonly reasons: readonly string[];
  readonly halted?: boolean;
}

/** What the running terminal tells the core, as it happens. */
export interface CoreEvents {
  reader(view: ReaderView): void;
  /** Whether the last back-end request got through. */
  backendLink(link: 'up' | 'down'): void;
  push(open: boolean): void;
  verdict(v: VerdictView): void;
}

/** An enrolled terminal, started. */
export interface CoreRunning {
  readonly terminalId: string;
  readonly backendUrl: string;
  readonly lastVerdict?: VerdictView;
  readonly engine: TransactionEngine;
  /** The halt in force as the push connection last said. */
  currentHalt(): HaltInfo | undefined;
  attestNow(): Promise<Result<object, DesktopCode>>;
  close(): Promise<void>;
}

/** The parts the core drives: the real terminal, or test fakes. */
export interface CoreHost {
  /** Starts the enrolled terminal (reader, push, attestation); `running` undefined when not enrolled. */
  start(events: CoreEvents): Promise<Result<{ running: CoreRunning | undefined }, DesktopCode>>;
  enroll(input: { backendUrl: string; code: string }): Promise<Result<object, DesktopCode>>;
}

export interface CoreOptions {
  /** The shell kind reported in the snapshot (and in the evidence, through the host). */
  readonly shellKind: 'electron' | 'browser';
  readonly clock?: EngineClock;
  readonly inactivityMs?: number;
  /** The engine's PIN-state timeout (the pad's hard limit), to bound the deadline. */
  readonly pinTimeoutMs?: number;
  /** A uniform integer in [0, max): crypto randomness in production. */
  readonly randomInt?: (max: number) => number;
}

/** What a merchant reads of a verdict's reasons: the back-end's words, with the code for support. */
export function merchantReasons(a: Pick<AttestAnswer, 'reasons' | 'reasonTexts'>): string[] {
  return (a.reasons ?? []).map((code, i) => {
    const text = a.reasonTexts?.[i];
    return text === undefined || text === '' ? code : `${text} (${code})`;
  });
}

/** A new random layout: `layout[position] = digit`, a permutation of 0-9 (Fisher-Yates). */
export function newPadLayout(rand: (max: number) => number = randomInt): number[] {
  const a = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rand(i + 1);
    const t = a[i] as number;
    a[i] = a[j] as number;
    a[j] = t;
  }
  return a;
}

const cut = (s: string, max: number): string => (s.length <= max ? s : `${s.slice(0, max - 1)}…`);

const refuse = (code: string, detail: string): CommandResult => ({
  ok: false,
  code: ErrorCodeSchema.safeParse(code).success ? code : 'POS_ERR_DESKTOP_API_UNAVAILABLE',
  detail: cut(detail, 500),
});

const toResult = (r: Result<object, DesktopCode>): CommandResult =>
  r.ok ? { ok: true } : refuse(r.code, r.detail);

const UNAVAILABLE = (detail: string): CommandResult => refuse('POS_ERR_DESKTOP_API_UNAVAILABLE', detail);

const TIER_SET: ReadonlySet<string> = new Set(TIERS);
const OFFLINE_CODES: ReadonlySet<string> = new Set([
  'POS_ERR_DESKTOP_BACKEND_UNREACHABLE',
  'POS_ERR_DESKTOP_BACKEND_TIMEOUT',
]);

class UiCore implements TerminalCore {
  readonly #host: CoreHost;
  readonly #shellKind: 'electron' | 'browser';
  readonly #clock: EngineClock;
  readonly #inactivityMs: number;
  readonly #pinTimeoutMs: number;
  readonly #rand: (max: number) => number;
  readonly #subs = new Set<(s: Snapshot) => void>();
  #seq = 0;
  #closed = false;
  #busy: Promise<unknown> = Promise.resolve();

  #running: CoreRunning | undefined;
  #offEngine: (() => void)[] = [];
  #enrolled = false;
  #terminalId: string | undefined;
  #reader: ReaderView = { state: 'not-configured' };
  #backend: Snapshot['backend'] = { link: 'unknown', push: false };
  #attestation: Snapshot['attestation'] = { tier: 'unknown', reasons: [] };
  #verdictHalted = false;
  #lastHalt: HaltInfo | undefined;

  /** The pad of this PIN entry, while the engine's pad is open. */
  #pad: { layout: number[]; openedAt: number; lastKeyAt: number } | undefined;
  #inactivityTimer: unknown;
  #timedOut = false;

  constructor(host: CoreHost, opts: CoreOptions) {
    this.#host = host;
    this.#shellKind = opts.shellKind;
    this.#clock = opts.clock ?? systemClock;
    this.#inactivityMs = opts.inactivityMs ?? DEFAULT_PIN_INACTIVITY_MS;
    this.#pinTimeoutMs = opts.pinTimeoutMs ?? DEFAULT_TIMEOUTS.pin;
    this.#rand = opts.randomInt ?? randomInt;
  }

  // ---- start ------------------------------------------------------------------------------------

  readonly #events: CoreEvents = {
    reader: (v) => {
      this.#reader = {
        state: v.state,
        ...(v.serial === undefined ? {} : { serial: cut(v.serial, 64) }),
        ...(v.detail === undefined ? {} : { detail: cut(v.detail, 300) }),
      };
      this.#emit();
    },
    backendLink: (link) => {
      if (this.#backend.link === link) return;
      this.#backend = { ...this.#backend, link };
      this.#emit();
    },
    push: (open) => {
      this.#backend = { ...this.#backend, push: open, ...(open ? { link: 'up' as const } : {}) };
      this.#emit();
    },
    verdict: (v) => {
      this.#setVerdict(v);
      this.#backend = { ...this.#backend, link: 'up' };
      this.#emit();
    },
  };

  #setVerdict(v: VerdictView): void {
    this.#attestation = {
      tier: TIER_SET.has(v.tier) ? (v.tier as (typeof TIERS)[number]) : 'unknown',
      at: Math.max(0, Math.floor(v.at)),
      reasons: v.reasons.slice(0, 16).map((r) => cut(r, 300)),
    };
    this.#verdictHalted = v.halted === true;
  }

  async start(): Promise<Result<object, DesktopCode>> {
    const r = await this.#host.start(this.#events);
    if (!r.ok) return r;
    const running = r.running;
    if (this.#closed) {
      await running?.close();
      return { ok: true };
    }
    if (running === undefined) {
      this.#enrolled = false;
      this.#emit();
      return { ok: true };
    }
    this.#running = running;
    this.#enrolled = true;
    this.#terminalId = running.terminalId;
    this.#backend = { ...this.#backend, url: cut(running.backendUrl, 2048) };
    if (running.lastVerdict !== undefined && this.#attestation.at === undefined)
      this.#setVerdict(running.lastVerdict);
    const engine = running.engine;
    this.#lastHalt = running.currentHalt();
    this.#offEngine = [
      engine.onPad((open) => this.#onPad(open)),
      engine.onChange(() => {
        this.#trackResume(running);
        this.#emit();
      }),
    ];
    this.#emit();
    return { ok: true };
  }

  /**
   * A pushed resume clears a halt a verdict reported too (the verdict is older than the resume), and
   * asks for an attestation at once, so the status shows the fresh verdict.
   */
  #trackResume(running: CoreRunning): void {
    const now = running.currentHalt();
    if (this.#lastHalt !== undefined && now === undefined) {
      this.#verdictHalted = false;
      void running.attestNow().catch(() => undefined);
    }
    this.#lastHalt = now;
  }

  // ---- the pad ----------------------------------------------------------------------------------

  #onPad(open: boolean): void {
    this.#clock.clearTimeout(this.#inactivityTimer);
    this.#inactivityTimer = undefined;
    if (!open) {
      if (this.#pad !== undefined) this.#pad.layout.fill(0);
      this.#pad = undefined;
      this.#emit();
      return;
    }
    const now = this.#clock.now();
    this.#pad = { layout: newPadLayout(this.#rand), openedAt: now, lastKeyAt: now };
    this.#armInactivity();
    this.#emit();
  }

  #deadline(): number {
    const p = this.#pad;
    if (p === undefined) return 0;
    return Math.min(p.openedAt + this.#pinTimeoutMs, p.lastKeyAt + this.#inactivityMs);
  }

  #armInactivity(): void {
    this.#clock.clearTimeout(this.#inactivityTimer);
    const pad = this.#pad;
    if (pad === undefined) return;
    const wait = Math.max(0, pad.lastKeyAt + this.#inactivityMs - this.#clock.now());
    this.#inactivityTimer = this.#clock.setTimeout(() => {
      this.#inactivityTimer = undefined;
      if (this.#pad !== pad) return;
      const engine = this.#running?.engine;
      if (engine === undefined || engine.state !== 'pin') return;
      this.#timedOut = true;
      engine.cancel();
    }, wait);
  }

  #keyPressed(): void {
    if (this.#pad === undefined) return;
    this.#pad.lastKeyAt = this.#clock.now();
    this.#armInactivity();
  }

  // ---- snapshots --------------------------------------------------------------------------------

  #sale(s: EngineSnapshot | undefined): Sale {
    if (s === undefined) return { state: 'idle' };
    const cardPrompt: Sale['cardPrompt'] =
      s.state === 'card'
        ? 'insert-or-tap'
        : s.state === 'attest' || s.state === 'pin' || s.state === 'pin-block' || s.state === 'submit'
          ? 'reading'
          : s.state === 'result' && s.maskedPan !== undefined
            ? 'remove'
            : undefined;
    let result: Sale['result'];
    if (s.state === 'result' && s.result !== undefined) {
      const r = s.result;
      result =
        this.#timedOut && r.code === 'POS_ERR_DESKTOP_TXN_CANCELLED'
          ? {
              status: 'error',
              code: 'POS_ERR_DESKTOP_TXN_TIMEOUT_PIN',
              detail: `No key was pressed for ${Math.round(this.#inactivityMs / 1000)} s: the PIN entry was closed.`,
            }
          : {
              status: r.status,
              ...(r.code !== undefined && ErrorCodeSchema.safeParse(r.code).success ? { code: r.code } : {}),
              ...(r.detail === undefined ? {} : { detail: cut(r.detail, 500) }),
            };
    }
    const pad = this.#pad;
    const amountOk =
      s.amountMinor !== undefined &&
      s.currency !== undefined &&
      s.amountMinor >= 1 &&
      s.amountMinor <= MAX_AMOUNT_MINOR;
    return {
      state: s.state,
      ...(amountOk ? { amountMinor: s.amountMinor, currency: s.currency } : {}),
      ...(cardPrompt === undefined ? {} : { cardPrompt }),
      ...(s.maskedPan === undefined ? {} : { maskedPan: cut(s.maskedPan, 32) }),
      ...(s.padOpen && pad !== undefined
        ? {
            pad: {
              layout: [...pad.layout],
              digits: Math.min(12, s.pinLength),
              deadline: Math.max(0, Math.floor(this.#deadline())),
            },
          }
        : {}),
      ...(result === undefined ? {} : { result }),
    };
  }

  snapshot(): Snapshot {
    const running = this.#running;
    const es = running?.engine.snapshot();
    const halt = es?.halted ?? running?.currentHalt();
    const haltReason =
      halt !== undefined
        ? halt.reason
        : this.#verdictHalted
          ? 'The payment provider has halted PIN entry on this terminal.'
          : undefined;
    return {
      v: UI_API_VERSION,
      shell: this.#shellKind,
      seq: this.#seq,
      enrolled: this.#enrolled,
      ...(this.#terminalId === undefined ? {} : { terminalId: cut(this.#terminalId, 64) }),
      reader: this.#reader,
      backend: this.#backend,
      attestation: this.#attestation,
      ...(haltReason === undefined ? {} : { halt: { reason: cut(haltReason, 500) } }),
      sale: this.#sale(es),
    };
  }

  #emit(): void {
    this.#seq++;
    if (this.#subs.size === 0) return;
    const s = this.snapshot();
    for (const cb of [...this.#subs]) {
      try {
        cb(s);
      } catch {
        // One subscriber's failure is not the core's.
      }
    }
  }

  subscribe(cb: (snapshot: Snapshot) => void): () => void {
    this.#subs.add(cb);
    try {
      cb(this.snapshot());
    } catch {
      // As in #emit.
    }
    return () => {
      this.#subs.delete(cb);
    };
  }

  // ---- commands ---------------------------------------------------------------------------------

  async handle(input: unknown): Promise<CommandResult> {
    try {
      const p = parseCommand(input);
      if (!p.ok) return { ok: false, code: p.code, detail: p.detail };
      if (this.#closed) return UNAVAILABLE('the terminal core is stopped');
      if (p.command.cmd === 'enroll' || p.command.cmd === 'attest.now') {
        // The slow ones run one at a time; the sale commands never wait behind them.
        const run = this.#busy.then(() => this.#slow(p.command));
        this.#busy = run.catch(() => undefined);
        return await run;
      }
      return this.#saleCommand(p.command);
    } catch {
      return UNAVAILABLE('the terminal core failed to handle the command');
    }
  }

  async #slow(c: Command): Promise<CommandResult> {
    if (c.cmd === 'attest.now') {
      const running = this.#running;
      if (running === undefined)
        return refuse('POS_ERR_DESKTOP_NOT_ENROLLED', 'the terminal is not enrolled');
      return toResult(await running.attestNow());
    }
    if (c.cmd !== 'enroll') return UNAVAILABLE('not a slow command');
    if (this.#enrolled)
      return refuse('POS_ERR_DESKTOP_ALREADY_ENROLLED', 'this terminal is already enrolled');
    const r = await this.#host.enroll({ backendUrl: c.backendUrl, code: c.code });
    if (!r.ok) return toResult(r);
    return toResult(await this.start());
  }

  #saleCommand(c: Command): CommandResult {
    const running = this.#running;
    if (running === undefined)
      return this.#enrolled
        ? UNAVAILABLE('the terminal is starting')
        : refuse('POS_ERR_DESKTOP_NOT_ENROLLED', 'the terminal is not enrolled');
    const engine = running.engine;
    switch (c.cmd) {
      case 'sale.start': {
        if (engine.state === 'result') engine.reset();
        this.#timedOut = false;
        const b = engine.begin();
        if (!b.ok) return toResult(b);
        const e = engine.enterAmount(c.amountMinor, c.currency);
        if (!e.ok && engine.state === 'amount') {
          engine.cancel();
          engine.reset();
        }
        return toResult(e);
      }
      case 'sale.cancel':
        return toResult(engine.cancel());
      case 'sale.new': {
        const r = engine.reset();
        if (r.ok) this.#timedOut = false;
        return toResult(r);
      }
      case 'pin.key': {
        const pad = this.#pad;
        if (pad === undefined || engine.state !== 'pin')
          return refuse('POS_ERR_DESKTOP_TXN_STATE', 'the PIN pad is closed');
        // The position's digit goes straight into the engine's byte buffer; it is not kept here.
        this.#keyPressed();
        return toResult(engine.pressDigit(pad.layout[c.position] ?? -1));
      }
      case 'pin.clear': {
        if (this.#pad === undefined || engine.state !== 'pin')
          return refuse('POS_ERR_DESKTOP_TXN_STATE', 'the PIN pad is closed');
        this.#keyPressed();
        for (let i = 0; i < 12 && engine.snapshot().pinLength > 0; i++) {
          const r = engine.backspace();
          if (!r.ok) return toResult(r);
        }
        return { ok: true };
      }
      case 'pin.ok':
        if (this.#pad === undefined) return refuse('POS_ERR_DESKTOP_TXN_STATE', 'the PIN pad is closed');
        return toResult(engine.submitPin());
      case 'enroll':
      case 'attest.now':
        return UNAVAILABLE('not a sale command');
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.clearTimeout(this.#inactivityTimer);
    this.#inactivityTimer = undefined;
    const running = this.#running;
    this.#running = undefined;
    if (running !== undefined) {
      // Ends any sale (pad closed, digits wiped, reader aborted) before the links close.
      running.engine.dispose();
      for (const off of this.#offEngine.splice(0)) off();
      if (this.#pad !== undefined) this.#pad.layout.fill(0);
      this.#pad = undefined;
      await running.close();
    }
    this.#subs.clear();
  }
}

/** The terminal could not start (a key file refused, no reader configured): the shell reports it and exits. */
export class CoreStartError extends Error {
  constructor(
    readonly code: DesktopCode,
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
    this.name = 'CoreStartError';
  }
}

/**
 * The core over a host (tests pass fakes); `start` runs before it is returned. A start that fails
 * rejects with a `CoreStartError` (not enrolled is no failure: the core then waits for `enroll`).
 */
export async function createCoreWith(host: CoreHost, opts: CoreOptions): Promise<TerminalCore> {
  const core = new UiCore(host, opts);
  const r = await core.start();
  if (!r.ok) {
    await core.close();
    throw new CoreStartError(r.code, r.detail);
  }
  return core;
}

// ---------------------------------------------------------------------------------------------------
// The real host: the headless terminal's parts
// ---------------------------------------------------------------------------------------------------

/** What enrollment from the UI pairs with (the UI's `enroll` command carries only back-end and code). */
export interface Pairing {
  readonly reader: ReaderConfig;
  readonly readerSerial: string;
  /** The manufacturer CA roots, DER as base64url. */
  readonly readerCaRoots: readonly string[];
}

export interface TerminalCoreOptions {
  readonly dataDir: string;
  /** The shell as the evidence reports it, read at each measurement. Its kind must be electron or browser. */
  readonly shell: () => ShellInfo;
  /** Human notices (reader lost and back). Never a secret or a digit. */
  readonly notice?: (line: string) => void;
  /** The reader to pair with when the UI enrolls this terminal; without it, `enroll` is refused. */
  readonly pairing?: Pairing;
  readonly inactivityMs?: number;
  readonly backendTimeoutMs?: number;
  /**
   * Seals the device key at rest (the Electron app: safeStorage in the main process, asked over the
   * utility process's port). Without it the key is stored plain in the 0600 file, as headless.
   */
  readonly sealer?: SecretSealer;
}

function headlessHost(o: TerminalCoreOptions): CoreHost {
  return {
    async enroll({ backendUrl, code }) {
      const pairing = o.pairing;
      if (pairing === undefined)
        return {
          ok: false,
          code: 'POS_ERR_DESKTOP_READER_CONFIG',
          detail: 'no reader to pair with is configured for this shell (enroll with pos-terminal enroll)',
        };
      const keyStore = new FileKeyStore({
        path: keyFile(o.dataDir),
        ...(o.sealer === undefined ? {} : { sealer: o.sealer }),
      });
      const client = new BackendClient({ baseUrl: backendUrl, keyStore });
      const r = await enrollTerminal({
        keyStore,
        client,
        code,
        readerSerial: pairing.readerSerial,
        reader: pairing.reader,
        readerCaRoots: pairing.readerCaRoots,
        collect: () => collectWith(o.shell),
      });
      return r.ok ? { ok: true } : r;
    },

    async start(events) {
      const opened = await HeadlessTerminal.open({
        dataDir: o.dataDir,
        shell: o.shell,
        ...(o.notice === undefined ? {} : { notice: o.notice }),
        ...(o.sealer === undefined ? {} : { sealer: o.sealer }),
        ...(o.backendTimeoutMs === undefined ? {} : { backendTimeoutMs: o.backendTimeoutMs }),
        onAnswer: (a) =>
          events.verdict({
            tier: a.verdict,
            at: Date.now(),
            reasons: merchantReasons(a),
            ...(a.halted === undefined ? {} : { halted: a.halted }),
          }),
        onAttempt: (e) => {
          if (e.ok) events.backendLink('up');
          else if (e.code !== undefined && OFFLINE_CODES.has(e.code)) events.backendLink('down');
        },
        onPush: (open) => events.push(open),
      });
      if (!opened.ok)
        return opened.code === 'POS_ERR_DESKTOP_NOT_ENROLLED' ? { ok: true, running: undefined } : opened;
      const term = opened.terminal;
      const cfg = term.config;
      const serial = cfg.readerSerial;
      const reader = term.startReader();
      if (!reader.ok) {
        events.reader({ state: 'not-configured', detail: reader.detail });
        await term.close();
        return reader;
      }
      const conn = reader.connection;
      const withSerial = serial === undefined ? {} : { serial };
      events.reader({ state: conn.state === 'connected' ? 'connected' : 'connecting', ...withSerial });
      conn.on('connected', () => events.reader({ state: 'connected', ...withSerial }));
      conn.on('reader-lost', (e) => events.reader({ state: 'disconnected', detail: e.message }));
      conn.on('attempt-failed', (e) => {
        if (OFFLINE_CODES.has(e.code)) events.backendLink('down');
        events.reader({
          state: 'disconnected',
          detail: `${e.detail} (${e.code}); trying again in ${Math.ceil(e.retryInMs / 1000)} s`,
        });
      });
      const { engine, dispose } = term.engine();
      // The start-up attestation waits for the reader's first outcome (connected, or an attempt that
      // failed), so its evidence carries the reader's signed status when there is a reader to ask.
      let agentStarted = false;
      const startAgent = (): void => {
        if (agentStarted) return;
        agentStarted = true;
        void term.agent.start();
      };
      if (conn.state === 'connected') startAgent();
      conn.on('connected', startAgent);
      conn.on('attempt-failed', startAgent);
      void term.connectPush(10_000);
      const last = cfg.lastVerdict;
      return {
        ok: true,
        running: {
          terminalId: cfg.terminalId ?? '',
          backendUrl: cfg.backendUrl,
          ...(last === undefined ? {} : { lastVerdict: last }),
          engine,
          currentHalt: () => term.haltPort.current(),
          attestNow: async () => {
            const r = await term.agent.attest('periodic');
            return r.ok ? { ok: true } : r;
          },
          close: async () => {
            dispose();
            await term.close();
          },
        },
      };
    },
  };
}

/**
 * The terminal core for a shell: opens the data directory's terminal (or waits for `enroll`), connects
 * the reader (reconnecting until closed), the halt push, and attests at start and at the back-end's
 * interval.
 */
export function createTerminalCore(options: TerminalCoreOptions): Promise<TerminalCore> {
  const kind = options.shell().kind;
  return createCoreWith(headlessHost(options), {
    shellKind: kind === 'electron' ? 'electron' : 'browser',
    ...(options.inactivityMs === undefined ? {} : { inactivityMs: options.inactivityMs }),
  });
}
