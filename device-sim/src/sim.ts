/**
 * The simulator: state directory -> firmware -> service -> protocol host -> transport, plus the
 * control API. `Simulator.start` is what the CLI runs; tests start it in process the same way.
 */
import { SerialLink, type ReaderLink } from '@pos/shared';
import { firmwareHash } from './firmware/image';
import { ReaderFirmware, type Clock, type ReaderEvent } from './firmware/reader';
import { ReaderLinkHost } from './link/host';
import { ReaderService } from './link/service';
import { makeStatusSigner, signStatusWith } from './link/status';
import type { SimCode } from './result';
import { StatusSequence } from './state/status-seq';
import { openReaderState } from './state/store';
import { err, ok, type Result } from '@pos/shared';
import { startControlServer, type CardAction, type ControlResult, type ControlServer } from './cli/control';
import { FaultyLine, type Fault } from './transport/faults';
import { createVirtualHid, type VirtualHid } from './transport/hid';
import { makePtyPair, SerialLine, type PtyPair } from './transport/serial';

export type SimTransport = 'serial' | 'hid';

export interface SimulatorOptions {
  readonly stateDir: string;
  readonly transport?: SimTransport;
  /** Serial: open this device instead of making a pseudo-terminal pair. */
  readonly serialPath?: string;
  readonly baudRate?: number;
  /** Pace the reader's writes to this line rate (bits/s), as a real UART would. */
  readonly paceBaud?: number;
  /** Control API address; undefined: none. Port 0: any free port. */
  readonly control?: { readonly host: string; readonly port: number };
  /** Each event as one JSON-able object (never a PIN, PAN, key or token). */
  readonly onEvent?: (e: Record<string, unknown>) => void;
  readonly clock?: Clock;
}

export interface ReadyLine {
  readonly event: 'ready';
  readonly transport: SimTransport;
  readonly path: string | null;
  readonly control: string | null;
  readonly serial: string;
  readonly tampered: boolean;
}

export class Simulator {
  #pty: PtyPair | undefined;
  #line: FaultyLine | undefined;
  #link: SerialLink | undefined;
  #control: ControlServer | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  #hid: VirtualHid | undefined;
  #unsubscribeLine: (() => void) | undefined;

  /** With `transport: 'hid'`: the in-process HID pair; a terminal uses `hid.host`. */
  get hid(): VirtualHid | undefined {
    return this.#hid;
  }

  private constructor(
    readonly fw: ReaderFirmware,
    readonly service: ReaderService,
    readonly host: ReaderLinkHost,
    private readonly opts: SimulatorOptions,
    readonly ready: ReadyLine,
  ) {}

  static async start(opts: SimulatorOptions): Promise<Result<{ sim: Simulator }, SimCode>> {
    const opened = await openReaderState(opts.stateDir);
    if (!opened.ok) return opened;
    const state = opened.state;
    const emit = opts.onEvent ?? (() => undefined);
    const seq = StatusSequence.load(opts.stateDir);
    if (!seq.ok) return seq;
    const fw = new ReaderFirmware(state, {
      firmwareHash: firmwareHash(),
      ...(opts.clock ? { clock: opts.clock } : {}),
      signFinalStatus: (key, body) => signStatusWith(key, seq.seq, body),
    });
    fw.onEvent((e: ReaderEvent) => emit({ ...e }));
    const service = new ReaderService(fw, makeStatusSigner(fw, seq.seq));
    const ref: { sim?: Simulator } = {};
    const nowS = (): number => Math.floor((opts.clock?.now() ?? Date.now()) / 1000);
    const host = new ReaderLinkHost(
      fw,
      service,
      {
        onSession: (e) => emit({ event: 'session', ...e }),
        onRefused: (code) => emit({ event: 'refused', code }),
        onOffer: () => ref.sim?.relinkSerial(),
      },
      nowS,
    );
    const transport = opts.transport ?? 'serial';
    const partial = { fw, service, host };
    let path: string | null = null;
    let pty: PtyPair | undefined;
    let line: FaultyLine | undefined;
    if (transport === 'serial') {
      let readerPath = opts.serialPath;
      if (readerPath === undefined) {
        const made = await makePtyPair();
        if (!made.ok) return made;
        pty = made.pair;
        readerPath = made.pair.readerPath;
        path = made.pair.terminalPath;
      } else path = readerPath;
      const serial = await SerialLine.open({
        path: readerPath,
        ...(opts.baudRate === undefined ? {} : { baudRate: opts.baudRate }),
        ...(opts.paceBaud === undefined ? {} : { paceBaud: opts.paceBaud }),
      });
      if (!serial.ok) {
        await pty?.stop();
        return serial;
      }
      line = new FaultyLine(serial.line);
    }
    let hid: VirtualHid | undefined;
    if (transport === 'hid') hid = createVirtualHid();
    const ready: ReadyLine = {
      event: 'ready',
      transport,
      path,
      control: null,
      serial: state.serial,
      tampered: state.tampered,
    };
    const sim = new Simulator(partial.fw, partial.service, partial.host, opts, ready);
    ref.sim = sim;
    sim.#pty = pty;
    sim.#line = line;
    sim.#hid = hid;
    if (line !== undefined) sim.#attachSerial(line);
    if (hid !== undefined) host.attach(hid.device);
    if (opts.control !== undefined) {
      try {
        sim.#control = await startControlServer(sim.#controlTarget(), opts.control.host, opts.control.port);
      } catch {
        await sim.stop();
        return err('POS_ERR_SIM_CLI_ARGS', 'the control API cannot listen on that address');
      }
      (sim as { ready: ReadyLine }).ready = { ...ready, control: sim.#control.url };
    }
    return ok({ sim });
  }

  /**
   * Serves an in-process link (the device end of a `createVirtualHid` pair, a memory link) instead of
   * the serial line; `attachSerialAgain` goes back. The reader serves one link at a time.
   */
  attachLink(link: ReaderLink): void {
    this.host.attach(link);
  }

  /** Serves the serial line again after `attachLink`. */
  attachSerialAgain(): void {
    const line = this.#line;
    if (line === undefined || this.#stopped) return;
    this.#link?.close();
    this.#attachSerial(line);
  }

  /** A new handshake on the serial line: start it on a fresh link (no stale retransmissions). */
  relinkSerial(): void {
    const line = this.#line;
    if (line === undefined || this.#stopped || this.host.currentLink !== this.#link) return;
    this.#link?.close();
    this.#attachSerial(line);
  }

  #attachSerial(line: FaultyLine): void {
    const link = new SerialLink({ write: (b) => line.write(b) });
    this.#link = link;
    // One reader of the line at a time: the previous link stops receiving (no listener piles up).
    this.#unsubscribeLine?.();
    this.#unsubscribeLine = line.onData((b) => link.receive(b));
    this.host.attach(link);
  }

  /** Applies a fault (control API, tests). */
  applyFault(fault: Fault): ControlResult {
    switch (fault.fault) {
      case 'slow-card':
        this.fw.setCardReadMs(fault.ms);
        this.opts.onEvent?.({ event: 'fault', fault: fault.fault, ms: fault.ms });
        return { ok: true };
      case 'battery':
        this.fw.setBattery(fault.percent);
        return { ok: true };
      case 'clear':
        this.fw.setCardReadMs(0);
        this.fw.setBattery(100);
        break;
      case 'drop':
      case 'corrupt':
      case 'delay':
      case 'stall':
      case 'disconnect':
        break;
    }
    const line = this.#line;
    if (line === undefined) {
      if (fault.fault === 'clear') return { ok: true };
      return { ok: false, code: 'POS_ERR_SIM_BAD_REQUEST', detail: 'line faults need the serial transport' };
    }
    line.apply(fault, () => {
      // The reader drops off the line: the session ends; it comes back with a fresh link.
      this.host.endSession('POS_ERR_READER_LINK_CLOSED');
      if (fault.fault !== 'disconnect') return;
      if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = setTimeout(() => {
        this.#reconnectTimer = undefined;
        if (this.#stopped) return;
        this.#link?.close();
        this.#attachSerial(line);
        this.opts.onEvent?.({ event: 'fault', fault: 'reconnected' });
      }, fault.ms);
    });
    this.opts.onEvent?.({ event: 'fault', fault: fault.fault });
    return { ok: true };
  }

  status(): Record<string, unknown> {
    return {
      ...this.fw.status(),
      transaction: this.fw.txnState,
      card: this.fw.cardInSlot ?? null,
      session: this.host.sessionOpen,
      // The expiry of the open session's ticket (s): at or after it the reader starts no transaction.
      sessionExpiresAt: this.host.sessionOpen ? (this.fw.sessionExpiry ?? null) : null,
      transport: this.ready.transport,
      path: this.ready.path,
      ...(this.fw.finalStatus === undefined ? {} : { finalStatus: this.fw.finalStatus }),
    };
  }

  card(action: CardAction): ControlResult {
    const r =
      action.action === 'remove' ? this.fw.removeCard() : this.fw.presentCard(action.card, action.action);
    return r.ok ? { ok: true } : { ok: false, code: r.code, detail: r.detail };
  }

  tamper(reason: string): ControlResult {
    const r = this.fw.tamper(reason);
    this.host.endSession('POS_ERR_READER_TAMPERED');
    return r.ok ? { ok: true } : { ok: false, code: r.code, detail: r.detail };
  }

  #controlTarget() {
    return {
      status: () => this.status(),
      card: (a: CardAction) => this.card(a),
      tamper: (reason: string) => this.tamper(reason),
      fault: (f: Fault) => this.applyFault(f),
    };
  }

  /** Graceful stop: aborts the transaction (wiping its keys), closes the line, socat and the API. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.host.detach();
    this.fw.shutdown();
    this.#link?.close();
    this.#hid?.close();
    await this.#line?.close();
    await this.#pty?.stop();
    await this.#control?.close();
    this.service.dispose();
  }
}
