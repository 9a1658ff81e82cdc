/**
 * The headless terminal: the core's parts wired together for one process (the `pos-terminal` CLI).
 *
 * - Key store: `DIR/terminal.json`, a 0600 file (FileKeyStore).
 * - Back-end: the HTTP client; the attestation agent over it (collectors of this process, shell
 *   `headless`); every answer's verdict and halt flag kept in the store for `status`.
 * - Reader: the configured driver (serial path, serial or HID USB ids) behind a ReaderConnection whose
 *   handshake presents the newest session ticket (a fresh attestation's when it has less than 10 s,
 *   at most half its lifetime, left), with the configured manufacturer CA roots and the pinned reader
 *   serial. The reader's signed status (bound to each challenge) goes into the evidence once
 *   connected. The session lives as long as its ticket: a ReaderSessionKeeper renews it with every
 *   session ticket an attestation brings (docs/reader-protocol.md §5.5).
 * - Every sale starts with a pre-transaction attestation (the keeper, before the reader's `start`):
 *   its verdict gates the sale, its session ticket renews the reader session and is the one the
 *   sale's `POST /v1/transactions` carries.
 * - Push: the halt push connection (PushHaltPort) with a fresh proof per attempt.
 * - Engine: TransactionEngine over SessionReaderPort, HttpBackendPort, the push port.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  connectToReader,
  p256Signer,
  parseBase64url,
  toBase64url,
  wipe,
  type ReaderEvidence,
  type Result,
} from '@pos/shared';
import type { PushClient } from '@pos/backend/fleet/push-client';
import { AttestationAgent, type AttestAnswer, type AttestationAgentOptions } from '../core/attest/agent';
import { collectAll, type Collected } from '../core/attest/evidence';
import { nodeAttestFs, nodeAttestProcess } from '../core/attest/node-host';
import type { ShellInfo } from '../core/attest/types';
import { BackendClient } from '../core/backend/client';
import { HttpAttestTransport, HttpBackendPort } from '../core/backend/ports';
import { FileKeyStore, type ReaderConfig, type SecretSealer, type TerminalConfig } from '../core/keys/store';
import { PushHaltPort, startHaltPush } from '../core/push/halt-port';
import { ReaderConnection, type HandshakeFn } from '../core/reader/connection';
import type { ReaderDriver } from '../core/reader/device';
import { HidReaderDriver } from '../core/reader/hid';
import { SessionReaderPort } from '../core/reader/reader-port';
import { ReaderSessionKeeper, SessionTickets } from '../core/reader/session-keeper';
import { SerialReaderDriver } from '../core/reader/serial';
import type { DesktopCode } from '../core/result';
import { TransactionEngine } from '../core/transaction';
import type { EngineOptions } from '../core/transaction/engine';
import { systemClock, type ReaderPort } from '../core/transaction/ports';

const here = dirname(fileURLToPath(import.meta.url));
/** The app's code directory (what the code hash covers in a headless run): desktop/src. */
export const APP_PATH = resolve(here, '..');
export const APP_VERSION = '0.1.0';

export function headlessShell(): ShellInfo {
  return { kind: 'headless', build: 'development', version: APP_VERSION, packaged: false, appPath: APP_PATH };
}

export function keyFile(dataDir: string): string {
  return join(dataDir, 'terminal.json');
}

export function collectHeadless(): Promise<Collected> {
  return collectWith(headlessShell);
}

/** The collectors with the shell as `shell()` reports it at the moment of measuring. */
export function collectWith(shell: () => ShellInfo): Promise<Collected> {
  return collectAll({ fs: nodeAttestFs(), proc: nodeAttestProcess(), shell: shell() });
}

export function readerDriver(r: ReaderConfig): ReaderDriver {
  if ('path' in r) return new SerialReaderDriver({ target: { path: r.path } });
  const usb = { vendorId: r.vendorId, productId: r.productId };
  return r.transport === 'hid' ? new HidReaderDriver({ usb }) : new SerialReaderDriver({ target: { usb } });
}

export interface HeadlessTerminalOptions {
  readonly dataDir: string;
  readonly backendTimeoutMs?: number;
  /** Human notices (reader lost/back, push state) for stderr. Never secrets. */
  readonly notice?: (line: string) => void;
  /**
   * The shell the evidence reports, read at each measurement (the browser shell, or Electron with its
   * windows' devtools and content-protection state). Default: headless.
   */
  readonly shell?: () => ShellInfo;
  /** Each attestation answer (verdict, reasons, halt flag), after it is kept in the store. */
  readonly onAnswer?: (a: AttestAnswer) => void;
  /** Each finished attestation attempt (purpose, ok, code): whether the back-end was reached. */
  readonly onAttempt?: AttestationAgentOptions['onAttempt'];
  /** The halt push connection opened (true) or closed (false). */
  readonly onPush?: (open: boolean) => void;
  /** Seals the device key at rest (the Electron app: safeStorage in main); headless: none. */
  readonly sealer?: SecretSealer;
}

export class HeadlessTerminal {
  readonly keyStore: FileKeyStore;
  readonly client: BackendClient;
  readonly agent: AttestationAgent;
  readonly config: TerminalConfig;
  /** The newest session ticket (the handshake's, and a sale's: its own pre-transaction one). */
  readonly #tickets: SessionTickets;
  #readerChain: readonly Uint8Array[] | undefined;
  #conn: ReaderConnection | undefined;
  /** Renews the reader session's ticket (after attestations, before sales). */
  #keeper: ReaderSessionKeeper | undefined;
  #push: PushClient | undefined;
  #pushOpen = false;
  readonly haltPort = new PushHaltPort();

  private constructor(
    private readonly opts: HeadlessTerminalOptions,
    keyStore: FileKeyStore,
    config: TerminalConfig,
  ) {
    this.keyStore = keyStore;
    this.config = config;
    this.client = new BackendClient({
      baseUrl: config.backendUrl,
      keyStore,
      ...(opts.backendTimeoutMs === undefined ? {} : { timeoutMs: opts.backendTimeoutMs }),
    });
    this.agent = new AttestationAgent({
      transport: new HttpAttestTransport(this.client, keyStore, (a) => this.#remember(a)),
      keyStore,
      collect: () => collectWith(opts.shell ?? headlessShell),
      readerStatus: (challenge) => this.#readerStatus(challenge),
      clock: systemClock,
      ...(opts.onAttempt === undefined ? {} : { onAttempt: opts.onAttempt }),
    });
    this.#tickets = new SessionTickets({ attest: () => this.agent.beforeTransaction() });
    // A halt or resume pushed by the back-end is kept for `status` too.
    this.haltPort.onHalt(() => this.#noteHalt(true));
    this.haltPort.onResume(() => this.#noteHalt(false));
  }

  #writes: Promise<unknown> = Promise.resolve();

  /** Opens an enrolled terminal's data directory. */
  static async open(
    opts: HeadlessTerminalOptions,
  ): Promise<Result<{ terminal: HeadlessTerminal }, DesktopCode>> {
    const keyStore = new FileKeyStore({
      path: keyFile(opts.dataDir),
      ...(opts.sealer === undefined ? {} : { sealer: opts.sealer }),
    });
    const cfg = await keyStore.getConfig();
    if (!cfg.ok) return cfg;
    const config = cfg.config;
    if (config?.terminalId === undefined)
      return {
        ok: false,
        code: 'POS_ERR_DESKTOP_NOT_ENROLLED',
        detail: `no enrolled terminal in ${opts.dataDir} (run pos-terminal enroll)`,
      };
    return { ok: true, terminal: new HeadlessTerminal(opts, keyStore, config) };
  }

  #noteHalt(halted: boolean): void {
    this.#writes = this.#writes
      .catch(() => undefined)
      .then(() =>
        this.keyStore.updateConfig((c) => ({
          ...c,
          lastVerdict: { ...(c.lastVerdict ?? { tier: 'none', at: Date.now(), reasons: [] }), halted },
        })),
      );
  }

  #remember(a: AttestAnswer): Promise<void> {
    if (this.#tickets.remember(a)) {
      // To the open reader session; not awaited: a fallback handshake may need the agent, which is
      // still inside this attestation.
      void this.#keeper?.afterAttestation(a);
    }
    const write = this.keyStore.updateConfig((c) => ({
      ...c,
      ...(a.intervalS === undefined ? {} : { attestationIntervalS: a.intervalS }),
      lastVerdict: {
        tier: a.verdict,
        at: Date.now(),
        halted: a.halted === true,
        reasons: [...(a.reasons ?? [])],
      },
    }));
    this.#writes = this.#writes.catch(() => undefined).then(() => write);
    // The UI hears of every answer, also when the status write fails (the failure still propagates).
    const notify = (): void => this.opts.onAnswer?.(a);
    return write.then(notify, (e: unknown) => {
      notify();
      throw e;
    });
  }

  /**
   * A session ticket (for the reader handshake, and a sale's `POST /v1/transactions`): the newest held
   * while it has time left (10 s, at most half its lifetime), else a pre-transaction attestation's. A
   * sale's own pre-transaction attestation (before its `start`) makes its ticket the newest.
   */
  sessionTicket(): Promise<Result<{ jws: string }, DesktopCode>> {
    return this.#tickets.current();
  }

  async #readerStatus(challenge: string): Promise<ReaderEvidence | undefined> {
    const session = this.#conn?.session;
    const chain = this.#readerChain;
    if (session === undefined || chain === undefined) return undefined;
    const c = parseBase64url(challenge);
    const r = await session.request(
      {
        t: 'get-status',
        id: session.newId(),
        ...(c.ok && c.bytes.length <= 64 ? { challenge: c.bytes } : {}),
      },
      5000,
    );
    if (!r.ok || r.message.t !== 'status') return undefined;
    return {
      status: toBase64url(r.message.report),
      signature: toBase64url(r.message.sig),
      chain: chain.map((d) => toBase64url(d)),
    };
  }

  #handshake(): HandshakeFn {
    return async (link) => {
      const serial = this.config.readerSerial;
      if (serial === undefined)
        return { ok: false, code: 'POS_ERR_DESKTOP_READER_CONFIG', detail: 'no paired reader serial' };
      const roots: Uint8Array[] = [];
      for (const r of this.config.readerCaRoots ?? []) {
        const d = parseBase64url(r);
        if (d.ok) roots.push(d.bytes);
      }
      const ticket = await this.sessionTicket();
      if (!ticket.ok) return { ok: false, code: ticket.code, detail: ticket.detail };
      const key = await this.keyStore.getDeviceKey();
      if (!key.ok || key.secretKey === undefined)
        return { ok: false, code: 'POS_ERR_DESKTOP_NOT_ENROLLED', detail: 'no device key' };
      const secretKey = key.secretKey;
      try {
        const r = await connectToReader(link, {
          deviceKey: p256Signer(secretKey),
          sessionTicket: ticket.jws,
          trustedRoots: roots,
          now: () => Math.floor(Date.now() / 1000),
          expectedSerial: serial,
          timeoutMs: 5000,
        });
        if (!r.ok) return r;
        this.#readerChain = r.reader.certChain;
        return { ok: true, session: r.session, ticket: ticket.jws };
      } finally {
        wipe(secretKey);
      }
    };
  }

  #keep(conn: ReaderConnection): void {
    this.#keeper = new ReaderSessionKeeper({
      connection: conn,
      latestTicket: () => this.#tickets.latest(),
      attest: () => this.agent.beforeTransaction(),
    });
  }

  /** Connects the reader (reconnecting with backoff until `close()`); resolves once connected or after `timeoutMs`. */
  async connectReader(timeoutMs: number): Promise<Result<object, DesktopCode>> {
    const reader = this.config.reader;
    if (reader === undefined)
      return { ok: false, code: 'POS_ERR_DESKTOP_READER_CONFIG', detail: 'no reader is configured' };
    const conn = new ReaderConnection({ driver: readerDriver(reader), handshake: this.#handshake() });
    this.#conn = conn;
    this.#keep(conn);
    let last: { code: DesktopCode; detail: string } | undefined;
    // A failure that is not the reader's (the back-end unreachable, no session ticket, halted) will not
    // change by retrying the reader: give up at once instead of waiting out the timeout.
    let giveUp: ((e: { code: DesktopCode; detail: string }) => void) | undefined;
    conn.on('attempt-failed', (e) => {
      last = { code: e.code, detail: e.detail };
      if (!/^POS_ERR_(DESKTOP_READER|DESKTOP_HID|READER|TICKET)_/.test(e.code)) giveUp?.(last);
    });
    conn.on('reader-lost', (e) => this.opts.notice?.(e.message));
    conn.on('reader-back', (e) => this.opts.notice?.(e.message));
    conn.start();
    let timer: NodeJS.Timeout | undefined;
    const connected = await Promise.race([
      conn.whenConnected().then(() => true),
      new Promise<false>((res) => {
        timer = setTimeout(() => res(false), timeoutMs);
        giveUp = () => res(false);
      }),
    ]);
    clearTimeout(timer);
    giveUp = undefined;
    if (connected) return { ok: true };
    await conn.close();
    return {
      ok: false,
      code: last?.code ?? 'POS_ERR_DESKTOP_READER_NOT_FOUND',
      detail: last?.detail ?? 'the reader did not connect in time',
    };
  }

  /**
   * Starts the reader connection for a long-running shell (the UI core): no timeout, no giving up; it
   * reconnects with backoff until `close()` (a back-end failure at the handshake is retried too, so
   * the reader comes back once the back-end does). Its events tell the caller the reader's state.
   */
  startReader(): Result<{ connection: ReaderConnection }, DesktopCode> {
    const reader = this.config.reader;
    if (reader === undefined)
      return { ok: false, code: 'POS_ERR_DESKTOP_READER_CONFIG', detail: 'no reader is configured' };
    if (this.#conn !== undefined) return { ok: true, connection: this.#conn };
    const conn = new ReaderConnection({ driver: readerDriver(reader), handshake: this.#handshake() });
    this.#conn = conn;
    this.#keep(conn);
    conn.on('reader-lost', (e) => this.opts.notice?.(e.message));
    conn.on('reader-back', (e) => this.opts.notice?.(e.message));
    conn.start();
    return { ok: true, connection: conn };
  }

  /** Opens the halt push connection; resolves when it is open or after `timeoutMs` (the gate still holds without it). */
  async connectPush(timeoutMs: number): Promise<boolean> {
    return new Promise((res) => {
      const timer = setTimeout(() => res(false), timeoutMs);
      this.#push = startHaltPush({
        url: this.client.pushUrl(),
        proof: () => this.client.pushProof(),
        port: this.haltPort,
        onState: (state) => {
          const open = state === 'open';
          if (open !== this.#pushOpen) this.opts.onPush?.(open);
          this.#pushOpen = open;
          if (state === 'open') {
            clearTimeout(timer);
            res(true);
          }
        },
      });
    });
  }

  get pushOpen(): boolean {
    return this.#pushOpen;
  }

  get connection(): ReaderConnection | undefined {
    return this.#conn;
  }

  /**
   * The transaction engine over this terminal's reader session and back-end. `onReaderStarted`: the
   * reader took a sale's `start` (after the sale's pre-transaction attestation), so it now waits for
   * a card.
   */
  engine(options?: Pick<EngineOptions, 'timeouts'> & { readonly onReaderStarted?: () => void }): {
    engine: TransactionEngine;
    dispose: () => void;
  } {
    const conn = this.#conn;
    if (conn === undefined) throw new Error('connectReader first');
    const keeper = this.#keeper;
    const port = new SessionReaderPort(
      conn,
      undefined,
      keeper === undefined ? undefined : () => keeper.ensureTransact(),
      keeper === undefined ? undefined : () => keeper.renewExpired(),
    );
    const backend = new HttpBackendPort(this.client, this.agent, this);
    const started = options?.onReaderStarted;
    const reader: ReaderPort =
      started === undefined
        ? port
        : {
            start: async (amountMinor, currency) => {
              const r = await port.start(amountMinor, currency);
              if (r.ok) started();
              return r;
            },
            onCard: (cb) => port.onCard(cb),
            onAborted: (cb) => port.onAborted(cb),
            sendTicket: (jws) => port.sendTicket(jws),
            pinBlock: (digits) => port.pinBlock(digits),
            abort: () => port.abort(),
          };
    const engine = new TransactionEngine({
      reader,
      backend,
      push: this.haltPort,
      ...(options?.timeouts === undefined ? {} : { timeouts: options.timeouts }),
    });
    return {
      engine,
      dispose: () => {
        engine.dispose();
        port.dispose();
      },
    };
  }

  async close(): Promise<void> {
    this.agent.stop();
    await this.#writes.catch(() => undefined);
    await this.#push?.close();
    await this.#conn?.close();
  }
}
