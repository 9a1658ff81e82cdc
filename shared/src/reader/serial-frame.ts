/**
 * Serial framing (docs/reader-protocol.md, "Serial transport").
 *
 * A frame is `type (1) || seq (1) || payload (0..4096) || CRC-32 (4, big-endian)`, COBS-encoded (so it
 * holds no 0x00) and sent as `00 || COBS(frame) || 00`. The CRC is CRC-32/ISO-HDLC (the IEEE 802.3 /
 * zlib CRC) over type, seq and payload. The leading delimiter cuts off any garbage before the frame,
 * so line noise costs at most the frame it touches; a receiver resynchronises at every 0x00.
 *
 * Reliability is stop-and-wait: one DATA frame is outstanding at a time; the peer answers ACK with its
 * seq; after `ackTimeoutMs` without one the frame is sent again, at most `maxRetries` times, then the
 * message is reported lost (`POS_ERR_READER_LINK_TIMEOUT`) and the next transmission starts with a
 * SYNC. A receiver that sees a frame with a bad CRC answers NAK (rate-limited), which makes the sender
 * retransmit at once. A DATA frame whose seq equals the last one delivered is a retransmission whose
 * ACK was lost: it is acknowledged again and not delivered twice.
 */
import { err, ok, type Result } from '../result';
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

// ---------------------------------------------------------------------------------------------------
// CRC-32 (ISO-HDLC: poly 0x04C11DB7 reflected = 0xEDB88320, init and final XOR 0xFFFFFFFF)

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32/ISO-HDLC (IEEE 802.3, zlib). Check value: crc32("123456789") = 0xCBF43926. */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = (CRC_TABLE[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------------
// COBS (Cheshire and Baker, "Consistent Overhead Byte Stuffing", 1999)

/** COBS-encodes `data`: the result has no 0x00 and is at most n + floor(n/254) + 1 bytes. */
export function cobsEncode(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + Math.floor(data.length / 254) + 1);
  let codeAt = 0;
  let w = 1;
  let code = 1;
  for (let i = 0; i < data.length; i++) {
    const b = data[i] ?? 0;
    if (b === 0) {
      out[codeAt] = code;
      codeAt = w++;
      code = 1;
    } else {
      out[w++] = b;
      code++;
      if (code === 0xff) {
        out[codeAt] = code;
        // A full block that ends the input needs no empty block after it (the paper's encoder).
        if (i === data.length - 1) return out.subarray(0, w);
        codeAt = w++;
        code = 1;
      }
    }
  }
  out[codeAt] = code;
  return out.subarray(0, w);
}

/** Decodes one COBS block (no delimiters). Refuses a 0x00 inside and a code that runs past the end. */
export function cobsDecode(data: Uint8Array): Result<{ bytes: Uint8Array }> {
  const out = new Uint8Array(data.length);
  let r = 0;
  let w = 0;
  while (r < data.length) {
    const code = data[r] ?? 0;
    if (code === 0) return err('POS_ERR_READER_FRAME_MALFORMED', 'a COBS block holds no zero byte');
    if (r + code > data.length)
      return err('POS_ERR_READER_FRAME_MALFORMED', 'a COBS code runs past the end of the frame');
    r++;
    for (let i = 1; i < code; i++) {
      const b = data[r++] ?? 0;
      if (b === 0) return err('POS_ERR_READER_FRAME_MALFORMED', 'a COBS block holds no zero byte');
      out[w++] = b;
    }
    if (code !== 0xff && r < data.length) out[w++] = 0;
  }
  return ok({ bytes: out.subarray(0, w) });
}

// ---------------------------------------------------------------------------------------------------
// Frames

export const SERIAL_FRAME_TYPES = { sync: 0x01, data: 0x02, ack: 0x03, nak: 0x04 } as const;
export type SerialFrameType = keyof typeof SERIAL_FRAME_TYPES;
const TYPE_BY_BYTE = new Map<number, SerialFrameType>(
  Object.entries(SERIAL_FRAME_TYPES).map(([k, v]) => [v, k as SerialFrameType]),
);

export interface SerialFrame {
  readonly type: SerialFrameType;
  /** 0..255, wrapping. */
  readonly seq: number;
  /** DATA only: one encoded message. Empty for the other types. */
  readonly payload: Uint8Array;
}

/** Largest payload of one DATA frame: one message. */
export const SERIAL_MAX_PAYLOAD = MAX_MESSAGE_BYTES;
/** Header (type, seq) and CRC trailer. */
export const SERIAL_FRAME_OVERHEAD = 6;
/** Largest COBS-encoded frame between two delimiters; anything longer is discarded unread. */
export const SERIAL_MAX_ENCODED_FRAME =
  SERIAL_MAX_PAYLOAD +
  SERIAL_FRAME_OVERHEAD +
  Math.floor((SERIAL_MAX_PAYLOAD + SERIAL_FRAME_OVERHEAD) / 254) +
  1;

/** The wire bytes of a frame: 00 || COBS(type || seq || payload || CRC-32 BE) || 00. */
export function encodeSerialFrame(frame: SerialFrame): Uint8Array {
  const raw = new Uint8Array(frame.payload.length + SERIAL_FRAME_OVERHEAD);
  raw[0] = SERIAL_FRAME_TYPES[frame.type];
  raw[1] = frame.seq & 0xff;
  raw.set(frame.payload, 2);
  const crc = crc32(raw.subarray(0, raw.length - 4));
  new DataView(raw.buffer).setUint32(raw.length - 4, crc, false);
  const cobs = cobsEncode(raw);
  const wire = new Uint8Array(cobs.length + 2);
  wire.set(cobs, 1);
  raw.fill(0);
  return wire;
}

/** Parses the bytes between two delimiters. Codes: `POS_ERR_READER_FRAME_{TOO_LARGE,MALFORMED,CRC}`. */
export function decodeSerialFrame(encoded: Uint8Array): Result<{ frame: SerialFrame }> {
  if (encoded.length > SERIAL_MAX_ENCODED_FRAME)
    return err('POS_ERR_READER_FRAME_TOO_LARGE', `the frame is over ${SERIAL_MAX_ENCODED_FRAME} bytes`);
  const raw = cobsDecode(encoded);
  if (!raw.ok) return raw;
  const b = raw.bytes;
  if (b.length < SERIAL_FRAME_OVERHEAD)
    return err('POS_ERR_READER_FRAME_MALFORMED', 'the frame is too short for a header and CRC');
  const want = new DataView(b.buffer, b.byteOffset, b.length).getUint32(b.length - 4, false);
  if (crc32(b.subarray(0, b.length - 4)) !== want)
    return err('POS_ERR_READER_FRAME_CRC', 'the frame CRC does not match');
  const type = TYPE_BY_BYTE.get(b[0] ?? 0);
  if (type === undefined) return err('POS_ERR_READER_FRAME_MALFORMED', 'unknown frame type');
  const seq = b[1] ?? 0;
  const payload = b.slice(2, b.length - 4);
  b.fill(0);
  if (type !== 'data' && payload.length > 0)
    return err('POS_ERR_READER_FRAME_MALFORMED', `a ${type} frame has no payload`);
  return ok({ frame: { type, seq, payload } });
}

/**
 * Splits a byte stream at 0x00 delimiters into frames. Keeps at most `SERIAL_MAX_ENCODED_FRAME`
 * bytes: a longer run is discarded up to the next delimiter (one `TOO_LARGE` result).
 */
export class SerialFrameDecoder {
  private buf: Uint8Array = new Uint8Array(SERIAL_MAX_ENCODED_FRAME);
  private len = 0;
  private overflow = false;

  /** Feeds bytes; returns each complete frame (or why it was dropped), in order. */
  push(chunk: Uint8Array): Result<{ frame: SerialFrame }>[] {
    const out: Result<{ frame: SerialFrame }>[] = [];
    for (const byte of chunk) {
      if (byte === 0) {
        if (this.overflow) {
          out.push(
            err('POS_ERR_READER_FRAME_TOO_LARGE', `a frame ran past ${SERIAL_MAX_ENCODED_FRAME} bytes`),
          );
        } else if (this.len > 0) {
          out.push(decodeSerialFrame(this.buf.subarray(0, this.len)));
        }
        this.buf.fill(0, 0, this.len);
        this.len = 0;
        this.overflow = false;
      } else if (!this.overflow) {
        if (this.len === this.buf.length) {
          this.overflow = true;
          this.buf.fill(0);
          this.len = 0;
        } else this.buf[this.len++] = byte;
      }
    }
    return out;
  }

  /** Bytes held waiting for a delimiter (bounded by the maximum frame). */
  get buffered(): number {
    return this.len;
  }
}

// ---------------------------------------------------------------------------------------------------
// The link

export interface SerialLinkOptions {
  /** Writes bytes to the line (a serial port, a pseudo-terminal, a test pipe). */
  readonly write: (bytes: Uint8Array) => void;
  readonly timer?: LinkTimer;
  /** How long to wait for an ACK before sending again. Default 500 ms (a 4 KiB frame takes 360 ms at 115200 baud). */
  readonly ackTimeoutMs?: number;
  /** Retransmissions after the first send. Default 3. */
  readonly maxRetries?: number;
  /** Messages waiting behind the outstanding one. Default 32. */
  readonly maxQueue?: number;
}

export const SERIAL_DEFAULTS = { ackTimeoutMs: 500, maxRetries: 3, maxQueue: 32 } as const;

interface Outstanding {
  readonly type: 'sync' | 'data';
  readonly seq: number;
  readonly wire: Uint8Array;
  retries: number;
  timer: unknown;
}

export interface SerialLinkStats {
  framesSent: number;
  framesReceived: number;
  retransmissions: number;
  /** Frames dropped for a bad CRC, bad COBS or size. */
  discarded: number;
  duplicates: number;
}

/** One end of a serial line, either the terminal's or the reader's (the protocol is symmetric). */
export class SerialLink implements ReaderLink {
  private readonly emitter = new LinkEmitter();
  private readonly decoder = new SerialFrameDecoder();
  private readonly timer: LinkTimer;
  private readonly ackTimeoutMs: number;
  private readonly maxRetries: number;
  private readonly maxQueue: number;
  private readonly queue: Uint8Array[] = [];
  private outstanding: Outstanding | undefined;
  private txSynced = false;
  private txSeq = 0;
  private lastRxSeq: number | undefined;
  private lastNakAt = -Infinity;
  private isClosed = false;
  readonly stats: SerialLinkStats = {
    framesSent: 0,
    framesReceived: 0,
    retransmissions: 0,
    discarded: 0,
    duplicates: 0,
  };

  constructor(private readonly opts: SerialLinkOptions) {
    this.timer = opts.timer ?? realTimer;
    this.ackTimeoutMs = opts.ackTimeoutMs ?? SERIAL_DEFAULTS.ackTimeoutMs;
    this.maxRetries = opts.maxRetries ?? SERIAL_DEFAULTS.maxRetries;
    this.maxQueue = opts.maxQueue ?? SERIAL_DEFAULTS.maxQueue;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  on<E extends keyof LinkEvents>(event: E, handler: LinkEvents[E]): () => void {
    return this.emitter.on(event, handler);
  }

  send(message: Uint8Array): { ok: true } | LinkError {
    if (this.isClosed) return linkError('POS_ERR_READER_LINK_CLOSED', 'the serial link is closed');
    if (message.length > SERIAL_MAX_PAYLOAD)
      return linkError(
        'POS_ERR_READER_MESSAGE_TOO_LARGE',
        `a message is at most ${SERIAL_MAX_PAYLOAD} bytes`,
      );
    if (this.queue.length >= this.maxQueue)
      return linkError('POS_ERR_READER_LINK_BUSY', 'the send queue is full');
    this.queue.push(message.slice());
    this.pump();
    return { ok: true };
  }

  /** Bytes from the line, in any chunking. Never throws. */
  receive(chunk: Uint8Array): void {
    if (this.isClosed) return;
    for (const r of this.decoder.push(chunk)) {
      if (this.isClosed) return;
      if (!r.ok) {
        this.stats.discarded++;
        this.emitter.emitError(linkError(r.code, r.detail));
        if (r.code === 'POS_ERR_READER_FRAME_CRC') this.nak();
        continue;
      }
      this.stats.framesReceived++;
      this.onFrame(r.frame);
    }
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.outstanding) {
      this.timer.clearTimeout(this.outstanding.timer);
      this.outstanding.wire.fill(0);
    }
    this.outstanding = undefined;
    for (const q of this.queue) q.fill(0);
    this.queue.length = 0;
    this.emitter.emitClose();
  }

  private onFrame(f: SerialFrame): void {
    switch (f.type) {
      case 'sync':
        this.lastRxSeq = f.seq;
        this.writeFrame({ type: 'ack', seq: f.seq, payload: new Uint8Array(0) });
        return;
      case 'data':
        this.writeFrame({ type: 'ack', seq: f.seq, payload: new Uint8Array(0) });
        if (this.lastRxSeq === f.seq) {
          this.stats.duplicates++;
          return;
        }
        this.lastRxSeq = f.seq;
        this.emitter.emitMessage(f.payload);
        return;
      case 'ack': {
        const o = this.outstanding;
        if (o === undefined || o.seq !== f.seq) return;
        this.timer.clearTimeout(o.timer);
        this.outstanding = undefined;
        o.wire.fill(0);
        if (o.type === 'sync') this.txSynced = true;
        this.pump();
        return;
      }
      case 'nak': {
        const o = this.outstanding;
        if (o === undefined) return;
        this.retransmit(o);
        return;
      }
    }
  }

  private nak(): void {
    const now = this.timer.now();
    if (now - this.lastNakAt < this.ackTimeoutMs / 2) return;
    this.lastNakAt = now;
    this.writeFrame({ type: 'nak', seq: this.lastRxSeq ?? 0, payload: new Uint8Array(0) });
  }

  private pump(): void {
    if (this.isClosed || this.outstanding !== undefined || this.queue.length === 0) return;
    if (!this.txSynced) {
      this.transmit('sync', this.txSeq, new Uint8Array(0));
      return;
    }
    const next = this.queue.shift();
    if (next === undefined) return;
    this.txSeq = (this.txSeq + 1) & 0xff;
    this.transmit('data', this.txSeq, next);
    next.fill(0);
  }

  private transmit(type: 'sync' | 'data', seq: number, payload: Uint8Array): void {
    const wire = encodeSerialFrame({ type, seq, payload });
    const o: Outstanding = { type, seq, wire, retries: 0, timer: undefined };
    this.outstanding = o;
    this.writeWire(wire);
    this.arm(o);
  }

  private arm(o: Outstanding): void {
    o.timer = this.timer.setTimeout(() => this.onTimeout(o), this.ackTimeoutMs);
  }

  private retransmit(o: Outstanding): void {
    this.timer.clearTimeout(o.timer);
    if (o.retries >= this.maxRetries) {
      this.giveUp(o);
      return;
    }
    o.retries++;
    this.stats.retransmissions++;
    this.writeWire(o.wire);
    if (!this.isClosed) this.arm(o);
  }

  private onTimeout(o: Outstanding): void {
    if (this.outstanding !== o || this.isClosed) return;
    this.retransmit(o);
  }

  private giveUp(o: Outstanding): void {
    this.outstanding = undefined;
    o.wire.fill(0);
    // The peer may have restarted: the next transmission starts with a SYNC. A SYNC that is never
    // acknowledged costs the message waiting behind it, so a dead line empties the queue.
    this.txSynced = false;
    if (o.type === 'sync') this.queue.shift()?.fill(0);
    this.emitter.emitError(
      linkError(
        'POS_ERR_READER_LINK_TIMEOUT',
        `no acknowledgement of a ${o.type} frame after ${this.maxRetries + 1} attempts`,
      ),
    );
    this.pump();
  }

  private writeFrame(f: SerialFrame): void {
    this.writeWire(encodeSerialFrame(f));
  }

  private writeWire(bytes: Uint8Array): void {
    if (this.isClosed) return;
    this.stats.framesSent++;
    try {
      this.opts.write(bytes);
    } catch {
      this.emitter.emitError(linkError('POS_ERR_READER_LINK_CLOSED', 'the line cannot be written', true));
      this.close();
    }
  }
}

/**
 * Two serial links joined by an in-process line (bytes delivered on a later microtask, in order), for
 * tests of the terminal or the reader over real framing. `tap(bytes, toB)` may drop (return undefined),
 * alter or keep what crosses the line.
 */
export function createSerialLinkPair(
  opts: {
    readonly timer?: LinkTimer;
    readonly tap?: (bytes: Uint8Array, toB: boolean) => Uint8Array | undefined;
  } & Omit<SerialLinkOptions, 'write' | 'timer'> = {},
): [SerialLink, SerialLink] {
  const ends: { a?: SerialLink; b?: SerialLink } = {};
  const pipe = (toB: boolean) => (bytes: Uint8Array) => {
    const copy = opts.tap === undefined ? bytes.slice() : opts.tap(bytes.slice(), toB);
    if (copy !== undefined) later(() => (toB ? ends.b : ends.a)?.receive(copy));
  };
  const { tap: _tap, ...rest } = opts;
  const a = new SerialLink({ ...rest, write: pipe(true) });
  const b = new SerialLink({ ...rest, write: pipe(false) });
  ends.a = a;
  ends.b = b;
  return [a, b];
}
