import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ManualTimer,
  SERIAL_MAX_ENCODED_FRAME,
  SERIAL_MAX_PAYLOAD,
  SerialFrameDecoder,
  SerialLink,
  cobsDecode,
  cobsEncode,
  crc32,
  decodeSerialFrame,
  encodeMessage,
  encodeSerialFrame,
  hex,
  toHex,
  type LinkError,
} from '../src/index';
import { arbMessage } from './reader-arbitraries';

const seq = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const h = (...parts: (string | number[])[]): string =>
  parts.map((p) => (typeof p === 'string' ? p : toHex(Uint8Array.from(p)))).join('');

describe('CRC-32 and COBS', () => {
  it('CRC-32/ISO-HDLC check value of "123456789" is CBF43926', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  // Wikipedia "Consistent Overhead Byte Stuffing", encoding examples (delimiter left out).
  const cobsVectors: [string, string][] = [
    ['', '01'],
    ['00', '0101'],
    ['0000', '010101'],
    ['001100', '01021101'],
    ['11220033', '0311220233'],
    ['11223344', '0511223344'],
    ['11000000', '0211010101'],
    [h(seq(1, 254)), h('FF', seq(1, 254))],
    [h('00', seq(1, 254)), h('01FF', seq(1, 254))],
    [h(seq(1, 255)), h('FF', seq(1, 254), '02FF')],
    [h(seq(2, 255), '00'), h('FF', seq(2, 255), '0101')],
    [h(seq(3, 255), '0001'), h('FE', seq(3, 255), '0201')],
  ];
  it.each(cobsVectors)('COBS %# encodes and decodes as published', (plain, encoded) => {
    expect(toHex(cobsEncode(hex(plain)))).toBe(encoded.toUpperCase());
    const back = cobsDecode(hex(encoded));
    expect(back.ok && toHex(back.bytes)).toBe(plain.toUpperCase());
  });

  it('COBS round-trips any bytes, never emits 0x00, and stays within n + n/254 + 1', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), (data) => {
        const enc = cobsEncode(data);
        expect(enc.includes(0)).toBe(false);
        expect(enc.length).toBeLessThanOrEqual(data.length + Math.floor(data.length / 254) + 1);
        const dec = cobsDecode(enc);
        expect(dec.ok && toHex(dec.bytes)).toBe(toHex(data));
      }),
    );
  });

  it('COBS decoding never throws and refuses overruns and embedded zeros', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (data) => void cobsDecode(data)));
    expect(cobsDecode(hex('05112233')).ok).toBe(false);
    expect(cobsDecode(hex('0311002233')).ok).toBe(false);
  });
});

describe('serial frames', () => {
  it('a frame on the wire is 00 || COBS(type seq payload CRC32-BE) || 00', () => {
    const wire = encodeSerialFrame({ type: 'ack', seq: 7, payload: new Uint8Array(0) });
    // 03 07 + crc32(0307) big-endian, no zero byte inside so COBS adds one code byte.
    const crc = crc32(hex('0307')).toString(16).toUpperCase().padStart(8, '0');
    expect(toHex(wire)).toBe(`0007${'0307'}${crc}00`);
  });

  it('random messages round-trip through the frame codec', () => {
    fc.assert(
      fc.property(arbMessage, fc.nat({ max: 255 }), (msg, s) => {
        const payload = encodeMessage(msg);
        const wire = encodeSerialFrame({ type: 'data', seq: s, payload });
        expect(wire.length).toBeLessThanOrEqual(SERIAL_MAX_ENCODED_FRAME + 2);
        const frames = new SerialFrameDecoder().push(wire);
        expect(frames).toHaveLength(1);
        const f = frames[0];
        if (!f?.ok) throw new Error('frame did not decode');
        expect(f.frame.seq).toBe(s);
        expect(toHex(f.frame.payload)).toBe(toHex(payload));
      }),
      { numRuns: 300 },
    );
  });

  it('any single-bit flip is detected: the frame is never delivered altered', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (payload, at) => {
        const wire = encodeSerialFrame({ type: 'data', seq: 1, payload });
        const bit = at % (wire.length * 8);
        wire[bit >> 3]! ^= 1 << (bit & 7);
        const out = new SerialFrameDecoder().push(wire);
        expect(out.filter((r) => r.ok)).toEqual([]);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses oversized frames and resynchronises at the next delimiter', () => {
    const d = new SerialFrameDecoder();
    const junk = new Uint8Array(SERIAL_MAX_ENCODED_FRAME + 100).fill(0x41);
    expect(d.push(junk)).toEqual([]);
    expect(d.buffered).toBeLessThanOrEqual(SERIAL_MAX_ENCODED_FRAME);
    const good = encodeSerialFrame({ type: 'data', seq: 2, payload: hex('A0') });
    const out = d.push(good);
    expect(out.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['POS_ERR_READER_FRAME_TOO_LARGE', 'ok']);
    expect(decodeSerialFrame(new Uint8Array(SERIAL_MAX_ENCODED_FRAME + 1).fill(1)).ok).toBe(false);
  });
});

/** Two links over a simulated line the test controls: faults per frame, garbage, no real time. */
function line(
  opts: {
    maxRetries?: number;
    drop?: (n: number) => boolean;
    corrupt?: (n: number) => number | undefined;
  } = {},
) {
  const timer = new ManualTimer();
  const queue: { to: 'a' | 'b'; bytes: Uint8Array }[] = [];
  let n = 0;
  const wire = (to: 'a' | 'b') => (bytes: Uint8Array) => {
    const i = n++;
    if (opts.drop?.(i)) return;
    const c = bytes.slice();
    const bit = opts.corrupt?.(i);
    if (bit !== undefined) c[(bit >> 3) % c.length]! ^= 1 << (bit & 7);
    queue.push({ to, bytes: c });
  };
  const a = new SerialLink({ write: wire('b'), timer, maxRetries: opts.maxRetries ?? 3 });
  const b = new SerialLink({ write: wire('a'), timer, maxRetries: opts.maxRetries ?? 3 });
  const got = { a: [] as string[], b: [] as string[] };
  const errors = { a: [] as LinkError[], b: [] as LinkError[] };
  a.on('message', (m) => got.a.push(toHex(m)));
  b.on('message', (m) => got.b.push(toHex(m)));
  a.on('error', (e) => errors.a.push(e));
  b.on('error', (e) => errors.b.push(e));
  const flush = () => {
    for (let guard = 0; guard < 100_000; guard++) {
      const next = queue.shift();
      if (next === undefined) {
        if (timer.size === 0) return;
        timer.advance(100);
        continue;
      }
      (next.to === 'a' ? a : b).receive(next.bytes);
    }
    throw new Error('the line did not settle');
  };
  return { a, b, got, errors, flush, timer };
}

describe('serial link', () => {
  it('delivers messages in order, both ways, exactly once', () => {
    const l = line();
    const ms = ['A1', 'B2C3', 'D4E5F6'];
    for (const m of ms) expect(l.a.send(hex(m)).ok).toBe(true);
    l.b.send(hex('0102'));
    l.flush();
    expect(l.got.b).toEqual(ms);
    expect(l.got.a).toEqual(['0102']);
    expect(l.errors.a.filter((e) => e.code === 'POS_ERR_READER_LINK_TIMEOUT')).toEqual([]);
  });

  it('random messages arrive intact, in order and once despite drops and bit flips', () => {
    fc.assert(
      fc.property(
        fc.array(arbMessage, { minLength: 1, maxLength: 6 }),
        fc.array(fc.boolean(), { maxLength: 40 }),
        fc.array(fc.option(fc.nat(), { freq: 3 }), { maxLength: 40 }),
        (msgs, drops, flips) => {
          const l = line({
            maxRetries: 60,
            drop: (i) => drops[i] === true,
            corrupt: (i) => flips[i] ?? undefined,
          });
          const sent = msgs.map((m) => encodeMessage(m));
          for (const s of sent) l.a.send(s);
          l.flush();
          expect(l.got.b).toEqual(sent.map(toHex));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('random garbage bursts never throw; the link resynchronises and works afterwards', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 5000 }), { maxLength: 8 }), (bursts) => {
        const l = line();
        for (const g of bursts) {
          l.b.receive(g);
          l.a.receive(g);
        }
        l.flush();
        l.a.send(hex('CAFE'));
        l.b.send(hex('F00D'));
        l.flush();
        expect(l.got.b).toContain('CAFE');
        expect(l.got.a).toContain('F00D');
      }),
      { numRuns: 200 },
    );
  });

  it('gives up after bounded retries with POS_ERR_READER_LINK_TIMEOUT, then works again', () => {
    let dead = true;
    const l = line({ maxRetries: 2, drop: () => dead });
    l.a.send(hex('01'));
    l.flush();
    expect(l.errors.a.map((e) => e.code)).toContain('POS_ERR_READER_LINK_TIMEOUT');
    dead = false;
    l.a.send(hex('02'));
    l.flush();
    expect(l.got.b).toEqual(['02']);
  });

  it('a lost ACK makes a retransmission, which is acknowledged but not delivered twice', () => {
    // Frame 0: a's SYNC, 1: b's ACK, 2: a's DATA, 3: b's ACK of it (dropped).
    const l = line({ drop: (i) => i === 3 });
    l.a.send(hex('77'));
    l.flush();
    expect(l.got.b).toEqual(['77']);
    expect(l.b.stats.duplicates).toBe(1);
  });

  it('refuses sends when closed, too large or queue full', () => {
    const l = line();
    expect(l.a.send(new Uint8Array(SERIAL_MAX_PAYLOAD + 1)).ok).toBe(false);
    for (let i = 0; i < 33; i++) l.a.send(hex('01'));
    const busy = l.a.send(hex('01'));
    expect(busy.ok ? 'ok' : busy.code).toBe('POS_ERR_READER_LINK_BUSY');
    l.a.close();
    const closed = l.a.send(hex('01'));
    expect(closed.ok ? 'ok' : closed.code).toBe('POS_ERR_READER_LINK_CLOSED');
    expect(l.timer.size).toBe(0);
  });
});
