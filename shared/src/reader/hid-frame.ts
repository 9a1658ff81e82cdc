/**
 * HID framing (docs/reader-protocol.md, "HID transport"), in the style of CTAPHID (FIDO U2F HID /
 * CTAP 2): 64-byte reports, no report IDs.
 *
 *   init packet:          CID (4) | CMD | 0x80 (1) | BCNT (2, big-endian) | DATA (57)
 *   continuation packet:  CID (4) | SEQ 0..127 (1) | DATA (59)
 *
 * A message of BCNT bytes is one init packet and as many continuation packets as needed (SEQ 0, 1,
 * ...), unused bytes zero; at most 57 + 128 * 59 = 7609 bytes, and this protocol's messages are at
 * most `MAX_MESSAGE_BYTES`. A continuation packet with the wrong SEQ, or one without an init packet,
 * means a lost or reordered packet: the message is dropped with `POS_ERR_READER_HID_SEQUENCE` and the
 * peer is sent ERROR INVALID_SEQ. A packet on a channel that was not allocated is refused with
 * `POS_ERR_READER_HID_CHANNEL` (ERROR INVALID_CID); one that starts on another channel while a message
 * is being assembled gets `POS_ERR_READER_HID_BUSY` (ERROR CHANNEL_BUSY). A message not complete after
 * `HID_TRANSACTION_TIMEOUT_MS` is dropped (`POS_ERR_READER_HID_TIMEOUT`, ERROR MSG_TIMEOUT).
 *
 * Channel allocation: the terminal sends INIT with an 8-byte nonce on the broadcast channel
 * FFFFFFFF; the reader answers on the broadcast channel with the nonce, a fresh channel id and its
 * version bytes (17 bytes, as CTAPHID). Protocol messages travel as MSG on that channel. USB gives HID
 * its own CRC and retransmission, so there is no CRC or ACK here.
 */
import { randomBytes } from '../bytes';
import type { PosErrorCode } from '../errors';
import { PosError } from '../result';
import { MAX_MESSAGE_BYTES } from './messages';
import {
  LinkEmitter,
  later,
  linkError,
  realTimer,
  type LinkError,
  type LinkEvents,
  type LinkTimer,
  type ReaderLink,
} from './transport';

export const HID_REPORT_SIZE = 64;
export const HID_INIT_DATA = 57;
export const HID_CONT_DATA = 59;
export const HID_MAX_MESSAGE = HID_INIT_DATA + 128 * HID_CONT_DATA; // 7609
export const HID_BROADCAST_CID = 0xffffffff;
export const HID_TRANSACTION_TIMEOUT_MS = 3000;
/** Command values without the init bit (0x80). */
export const HID_COMMANDS = { ping: 0x01, msg: 0x03, init: 0x06, error: 0x3f } as const;
export type HidCommand = keyof typeof HID_COMMANDS;
/** CTAPHID error codes carried by an ERROR packet. */
export const HID_ERRORS = {
  invalidCmd: 0x01,
  invalidPar: 0x02,
  invalidLen: 0x03,
  invalidSeq: 0x04,
  msgTimeout: 0x05,
  channelBusy: 0x06,
  invalidCid: 0x0b,
  other: 0x7f,
} as const;
/** The 17-byte INIT response: nonce (8), cid (4), protocol 2, version major, minor, build, capabilities. */
export const HID_INIT_RESPONSE_LENGTH = 17;

const CODE_OF_HID_ERROR = new Map<number, PosErrorCode>([
  [HID_ERRORS.invalidCmd, 'POS_ERR_READER_HID_COMMAND'],
  [HID_ERRORS.invalidPar, 'POS_ERR_READER_HID_COMMAND'],
  [HID_ERRORS.invalidLen, 'POS_ERR_READER_HID_LENGTH'],
  [HID_ERRORS.invalidSeq, 'POS_ERR_READER_HID_SEQUENCE'],
  [HID_ERRORS.msgTimeout, 'POS_ERR_READER_HID_TIMEOUT'],
  [HID_ERRORS.channelBusy, 'POS_ERR_READER_HID_BUSY'],
  [HID_ERRORS.invalidCid, 'POS_ERR_READER_HID_CHANNEL'],
]);
const HID_ERROR_OF_CODE: Partial<Record<PosErrorCode, number>> = {
  POS_ERR_READER_HID_COMMAND: HID_ERRORS.invalidCmd,
  POS_ERR_READER_HID_LENGTH: HID_ERRORS.invalidLen,
  POS_ERR_READER_HID_SEQUENCE: HID_ERRORS.invalidSeq,
  POS_ERR_READER_HID_TIMEOUT: HID_ERRORS.msgTimeout,
  POS_ERR_READER_HID_BUSY: HID_ERRORS.channelBusy,
  POS_ERR_READER_HID_CHANNEL: HID_ERRORS.invalidCid,
};

/** Splits one message into 64-byte reports. */
export function fragmentHid(cid: number, command: number, data: Uint8Array): Uint8Array[] {
  if (data.length > HID_MAX_MESSAGE)
    throw new PosError('POS_ERR_READER_HID_LENGTH', `a HID message is at most ${HID_MAX_MESSAGE} bytes`);
  const reports: Uint8Array[] = [];
  const first = new Uint8Array(HID_REPORT_SIZE);
  const v = new DataView(first.buffer);
  v.setUint32(0, cid >>> 0, false);
  first[4] = 0x80 | (command & 0x7f);
  v.setUint16(5, data.length, false);
  first.set(data.subarray(0, HID_INIT_DATA), 7);
  reports.push(first);
  let off = HID_INIT_DATA;
  for (let seq = 0; off < data.length; seq++) {
    const r = new Uint8Array(HID_REPORT_SIZE);
    new DataView(r.buffer).setUint32(0, cid >>> 0, false);
    r[4] = seq;
    r.set(data.subarray(off, off + HID_CONT_DATA), 5);
    reports.push(r);
    off += HID_CONT_DATA;
  }
  return reports;
}

export type HidEvent =
  | { readonly kind: 'message'; readonly cid: number; readonly command: number; readonly data: Uint8Array }
  | { readonly kind: 'error'; readonly cid: number; readonly code: PosErrorCode; readonly detail: string };

/**
 * Reassembles reports into messages, one at a time. `channelOk(cid)` says whether a channel may send
 * (the reader allows the broadcast channel for INIT and the channels it allocated).
 */
export class HidReassembler {
  private cur:
    | { cid: number; command: number; data: Uint8Array; got: number; nextSeq: number; startedAt: number }
    | undefined;

  constructor(
    private readonly maxMessage: number = MAX_MESSAGE_BYTES,
    private readonly channelOk: (cid: number, command: number | undefined) => boolean = () => true,
  ) {}

  /** True while a message is half received. */
  get busy(): boolean {
    return this.cur !== undefined;
  }

  /** Drops the message being assembled (on timeout). Returns its channel. */
  abort(): number | undefined {
    const cid = this.cur?.cid;
    this.cur?.data.fill(0);
    this.cur = undefined;
    return cid;
  }

  startedAt(): number | undefined {
    return this.cur?.startedAt;
  }

  push(report: Uint8Array, now: number): HidEvent | undefined {
    const fail = (cid: number, code: PosErrorCode, detail: string): HidEvent => ({
      kind: 'error',
      cid,
      code,
      detail,
    });
    if (report.length !== HID_REPORT_SIZE)
      return fail(0, 'POS_ERR_READER_HID_LENGTH', `a HID report is ${HID_REPORT_SIZE} bytes`);
    const v = new DataView(report.buffer, report.byteOffset, report.length);
    const cid = v.getUint32(0, false);
    const b4 = report[4] ?? 0;
    if ((b4 & 0x80) !== 0) {
      const command = b4 & 0x7f;
      if (!this.channelOk(cid, command))
        return fail(cid, 'POS_ERR_READER_HID_CHANNEL', 'a packet on a channel that was not allocated');
      if (this.cur !== undefined && this.cur.cid !== cid)
        return fail(cid, 'POS_ERR_READER_HID_BUSY', 'another channel is sending a message');
      // A new init packet on the same channel abandons the message before it (CTAPHID resync).
      this.abort();
      const bcnt = v.getUint16(5, false);
      if (bcnt > this.maxMessage || bcnt > HID_MAX_MESSAGE)
        return fail(cid, 'POS_ERR_READER_HID_LENGTH', `a message is at most ${this.maxMessage} bytes`);
      const data = new Uint8Array(bcnt);
      const first = Math.min(bcnt, HID_INIT_DATA);
      data.set(report.subarray(7, 7 + first));
      if (first === bcnt) return { kind: 'message', cid, command, data };
      this.cur = { cid, command, data, got: first, nextSeq: 0, startedAt: now };
      return undefined;
    }
    const seq = b4;
    if (!this.channelOk(cid, undefined))
      return fail(cid, 'POS_ERR_READER_HID_CHANNEL', 'a packet on a channel that was not allocated');
    const cur = this.cur;
    if (cur === undefined)
      return fail(cid, 'POS_ERR_READER_HID_SEQUENCE', 'a continuation packet without its init packet');
    if (cur.cid !== cid) return fail(cid, 'POS_ERR_READER_HID_BUSY', 'another channel is sending a message');
    if (seq !== cur.nextSeq) {
      this.abort();
      return fail(
        cid,
        'POS_ERR_READER_HID_SEQUENCE',
        `continuation packet ${seq} came where ${cur.nextSeq} was due`,
      );
    }
    const n = Math.min(HID_CONT_DATA, cur.data.length - cur.got);
    cur.data.set(report.subarray(5, 5 + n), cur.got);
    cur.got += n;
    cur.nextSeq++;
    if (cur.got < cur.data.length) return undefined;
    this.cur = undefined;
    return { kind: 'message', cid, command: cur.command, data: cur.data };
  }
}

export interface HidLinkOptions {
  /** Writes one 64-byte report (adapters add the leading report-ID byte 00 some host APIs want). */
  readonly writeReport: (report: Uint8Array) => void;
  readonly timer?: LinkTimer;
  /** Largest message accepted; default `MAX_MESSAGE_BYTES`. */
  readonly maxMessage?: number;
  /** Random bytes (INIT nonce, channel ids); tests may fix them. */
  readonly random?: (n: number) => Uint8Array;
}

abstract class HidLinkBase implements ReaderLink {
  protected readonly emitter = new LinkEmitter();
  protected readonly timer: LinkTimer;
  protected readonly assembler: HidReassembler;
  protected readonly random: (n: number) => Uint8Array;
  protected isClosed = false;
  private assemblyTimer: unknown;

  constructor(protected readonly opts: HidLinkOptions) {
    this.timer = opts.timer ?? realTimer;
    this.random = opts.random ?? randomBytes;
    this.assembler = new HidReassembler(opts.maxMessage ?? MAX_MESSAGE_BYTES, (cid, cmd) =>
      this.channelOk(cid, cmd),
    );
  }

  /** True at the reader: it answers bad packets with ERROR packets. */
  protected abstract readonly answersErrors: boolean;
  protected abstract channelOk(cid: number, command: number | undefined): boolean;
  protected abstract onHidMessage(cid: number, command: number, data: Uint8Array): void;
  abstract send(message: Uint8Array): { ok: true } | LinkError;

  get closed(): boolean {
    return this.isClosed;
  }

  on<E extends keyof LinkEvents>(event: E, handler: LinkEvents[E]): () => void {
    return this.emitter.on(event, handler);
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.timer.clearTimeout(this.assemblyTimer);
    this.assembler.abort();
    this.onClose();
    this.emitter.emitClose();
  }

  protected onClose(): void {}

  /** One report from the device or host. Never throws. */
  receiveReport(report: Uint8Array): void {
    if (this.isClosed) return;
    const wasBusy = this.assembler.busy;
    const ev = this.assembler.push(report, this.timer.now());
    if (!wasBusy && this.assembler.busy) {
      this.assemblyTimer = this.timer.setTimeout(() => this.onAssemblyTimeout(), HID_TRANSACTION_TIMEOUT_MS);
    } else if (wasBusy && !this.assembler.busy) this.timer.clearTimeout(this.assemblyTimer);
    if (ev === undefined) return;
    if (ev.kind === 'error') {
      this.emitter.emitError(linkError(ev.code, ev.detail));
      // Only the reader answers with ERROR packets (as a CTAPHID authenticator); the terminal never
      // does, so two ends can never bounce errors at each other.
      const hidErr = HID_ERROR_OF_CODE[ev.code];
      if (this.answersErrors && hidErr !== undefined && ev.cid !== 0)
        this.writeMessage(ev.cid, HID_COMMANDS.error, Uint8Array.of(hidErr));
      return;
    }
    if (ev.command === HID_COMMANDS.error) {
      const code = CODE_OF_HID_ERROR.get(ev.data[0] ?? HID_ERRORS.other) ?? 'POS_ERR_READER_HID_COMMAND';
      this.emitter.emitError(linkError(code, `the peer reported HID error ${ev.data[0] ?? 0}`));
      return;
    }
    this.onHidMessage(ev.cid, ev.command, ev.data);
  }

  private onAssemblyTimeout(): void {
    const cid = this.assembler.abort();
    if (cid === undefined || this.isClosed) return;
    this.emitter.emitError(
      linkError('POS_ERR_READER_HID_TIMEOUT', 'a HID message was not completed in time'),
    );
    if (this.answersErrors) this.writeMessage(cid, HID_COMMANDS.error, Uint8Array.of(HID_ERRORS.msgTimeout));
  }

  protected writeMessage(cid: number, command: number, data: Uint8Array): boolean {
    if (this.isClosed) return false;
    try {
      for (const r of fragmentHid(cid, command, data)) this.opts.writeReport(r);
      return true;
    } catch {
      this.emitter.emitError(
        linkError('POS_ERR_READER_LINK_CLOSED', 'the HID device cannot be written', true),
      );
      this.close();
      return false;
    }
  }

  protected checkSend(message: Uint8Array): LinkError | undefined {
    if (this.isClosed) return linkError('POS_ERR_READER_LINK_CLOSED', 'the HID link is closed');
    if (message.length === 0 || message.length > (this.opts.maxMessage ?? MAX_MESSAGE_BYTES))
      return linkError('POS_ERR_READER_MESSAGE_TOO_LARGE', 'the message does not fit the HID limit');
    return undefined;
  }
}

const u32 = (b: Uint8Array, off: number): number =>
  new DataView(b.buffer, b.byteOffset, b.length).getUint32(off, false);

/**
 * The terminal's end: allocates a channel with INIT (retried until `initTimeoutMs` has passed three
 * times), then sends each message as MSG on it. Messages sent before the channel exists wait (up to 32).
 */
export class HidHostLink extends HidLinkBase {
  protected readonly answersErrors = false;
  private cid: number | undefined;
  private nonce: Uint8Array;
  private readonly pending: Uint8Array[] = [];
  private initTimer: unknown;
  private initTries = 0;
  /** The reader's INIT answer: CTAPHID protocol byte, version and capabilities. */
  deviceInfo:
    { protocol: number; major: number; minor: number; build: number; capabilities: number } | undefined;

  constructor(
    opts: HidLinkOptions,
    private readonly initTimeoutMs = 1000,
  ) {
    super(opts);
    this.nonce = this.random(8);
    // On a later microtask, so the caller can wire `receiveReport` before the answer comes.
    later(() => {
      if (!this.isClosed) this.sendInit();
    });
  }

  /** The allocated channel id, once INIT was answered. */
  get channel(): number | undefined {
    return this.cid;
  }

  private sendInit(): void {
    this.initTries++;
    this.writeMessage(HID_BROADCAST_CID, HID_COMMANDS.init, this.nonce);
    this.initTimer = this.timer.setTimeout(() => {
      if (this.cid !== undefined || this.isClosed) return;
      if (this.initTries >= 3) {
        this.emitter.emitError(
          linkError('POS_ERR_READER_HID_TIMEOUT', 'the reader did not answer INIT', true),
        );
        this.close();
        return;
      }
      this.nonce = this.random(8);
      this.sendInit();
    }, this.initTimeoutMs);
  }

  protected override onClose(): void {
    this.timer.clearTimeout(this.initTimer);
    for (const p of this.pending) p.fill(0);
    this.pending.length = 0;
  }

  protected channelOk(cid: number): boolean {
    return cid === HID_BROADCAST_CID || cid === this.cid;
  }

  protected onHidMessage(cid: number, command: number, data: Uint8Array): void {
    if (command === HID_COMMANDS.init && cid === HID_BROADCAST_CID) {
      if (data.length < HID_INIT_RESPONSE_LENGTH || this.cid !== undefined) return;
      for (let i = 0; i < 8; i++) if (data[i] !== this.nonce[i]) return; // another host's answer
      this.cid = u32(data, 8);
      this.deviceInfo = {
        protocol: data[12] ?? 0,
        major: data[13] ?? 0,
        minor: data[14] ?? 0,
        build: data[15] ?? 0,
        capabilities: data[16] ?? 0,
      };
      this.timer.clearTimeout(this.initTimer);
      for (const p of this.pending.splice(0)) {
        this.writeMessage(this.cid, HID_COMMANDS.msg, p);
        p.fill(0);
      }
      return;
    }
    if (command === HID_COMMANDS.msg && cid === this.cid) {
      this.emitter.emitMessage(data);
      return;
    }
    this.emitter.emitError(linkError('POS_ERR_READER_HID_COMMAND', `HID command ${command} is not expected`));
  }

  send(message: Uint8Array): { ok: true } | LinkError {
    const bad = this.checkSend(message);
    if (bad !== undefined) return bad;
    if (this.cid === undefined) {
      if (this.pending.length >= 32) return linkError('POS_ERR_READER_LINK_BUSY', 'no HID channel yet');
      this.pending.push(message.slice());
      return { ok: true };
    }
    this.writeMessage(this.cid, HID_COMMANDS.msg, message);
    return { ok: true };
  }
}

/** Version bytes a reader reports in its INIT answer. */
export interface HidDeviceVersion {
  readonly major: number;
  readonly minor: number;
  readonly build: number;
}

/** Channels a reader keeps allocated at once (oldest dropped first). */
export const HID_DEVICE_MAX_CHANNELS = 4;

/**
 * The reader's end: answers INIT with a new channel (keeping the last `HID_DEVICE_MAX_CHANNELS`, so a
 * stray INIT from another program does not cut off the terminal), answers PING, delivers MSG from any
 * allocated channel, and sends its own messages on the channel that sent the last MSG (or, before any,
 * the newest one).
 */
export class HidDeviceLink extends HidLinkBase {
  protected readonly answersErrors = true;
  private readonly channels: number[] = [];
  private active: number | undefined;

  constructor(
    opts: HidLinkOptions,
    private readonly version: HidDeviceVersion = { major: 1, minor: 0, build: 0 },
  ) {
    super(opts);
  }

  /** The channel the reader's messages go to. */
  get channel(): number | undefined {
    return this.active;
  }

  protected channelOk(cid: number, command: number | undefined): boolean {
    if (cid === HID_BROADCAST_CID) return command === HID_COMMANDS.init || command === undefined;
    return this.channels.includes(cid);
  }

  protected onHidMessage(cid: number, command: number, data: Uint8Array): void {
    if (command === HID_COMMANDS.init) {
      if (data.length !== 8) {
        this.writeMessage(cid, HID_COMMANDS.error, Uint8Array.of(HID_ERRORS.invalidLen));
        return;
      }
      let next: number;
      do next = u32(this.random(4), 0);
      while (next === 0 || next === HID_BROADCAST_CID || this.channels.includes(next));
      this.channels.push(next);
      if (this.channels.length > HID_DEVICE_MAX_CHANNELS) {
        const dropped = this.channels.shift();
        if (dropped === this.active) this.active = undefined;
      }
      this.active ??= next;
      if (!this.channels.includes(this.active)) this.active = next;
      const resp = new Uint8Array(HID_INIT_RESPONSE_LENGTH);
      resp.set(data, 0);
      new DataView(resp.buffer).setUint32(8, next, false);
      resp[12] = 2;
      resp[13] = this.version.major;
      resp[14] = this.version.minor;
      resp[15] = this.version.build;
      resp[16] = 0;
      this.writeMessage(cid, HID_COMMANDS.init, resp);
      return;
    }
    if (command === HID_COMMANDS.ping) {
      this.writeMessage(cid, HID_COMMANDS.ping, data);
      return;
    }
    if (command === HID_COMMANDS.msg) {
      this.active = cid;
      this.emitter.emitMessage(data);
      return;
    }
    this.emitter.emitError(linkError('POS_ERR_READER_HID_COMMAND', `HID command ${command} is not defined`));
    this.writeMessage(cid, HID_COMMANDS.error, Uint8Array.of(HID_ERRORS.invalidCmd));
  }

  send(message: Uint8Array): { ok: true } | LinkError {
    const bad = this.checkSend(message);
    if (bad !== undefined) return bad;
    if (this.active === undefined)
      return linkError('POS_ERR_READER_HID_CHANNEL', 'no terminal has allocated a channel');
    this.writeMessage(this.active, HID_COMMANDS.msg, message);
    return { ok: true };
  }
}

/**
 * A terminal-side and a reader-side HID link joined in-process (reports delivered on a later
 * microtask, in order). `tap(report, toDevice)` may drop (return undefined), alter or keep a report.
 */
export function createHidLinkPair(
  opts: {
    readonly timer?: LinkTimer;
    readonly random?: (n: number) => Uint8Array;
    readonly tap?: (report: Uint8Array, toDevice: boolean) => Uint8Array | undefined;
  } = {},
): [HidHostLink, HidDeviceLink] {
  const ends: { host?: HidHostLink; device?: HidDeviceLink } = {};
  const pipe = (toDevice: boolean) => (report: Uint8Array) => {
    const copy = opts.tap === undefined ? report.slice() : opts.tap(report.slice(), toDevice);
    if (copy !== undefined) later(() => (toDevice ? ends.device : ends.host)?.receiveReport(copy));
  };
  const base = {
    ...(opts.timer === undefined ? {} : { timer: opts.timer }),
    ...(opts.random === undefined ? {} : { random: opts.random }),
  };
  const device = new HidDeviceLink({ ...base, writeReport: pipe(false) });
  const host = new HidHostLink({ ...base, writeReport: pipe(true) });
  ends.host = host;
  ends.device = device;
  return [host, device];
}
