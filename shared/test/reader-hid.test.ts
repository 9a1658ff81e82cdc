import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  HID_BROADCAST_CID,
  HID_COMMANDS,
  HID_MAX_MESSAGE,
  HidDeviceLink,
  HidHostLink,
  HidReassembler,
  ManualTimer,
  PosError,
  encodeMessage,
  fragmentHid,
  toHex,
  type HidEvent,
  type LinkError,
} from '../src/index';
import { arbMessage } from './reader-arbitraries';

const CID = 0x01020304;
const push = (reports: Uint8Array[], max = 8000, ok: (cid: number) => boolean = () => true) => {
  const r = new HidReassembler(max, ok);
  return reports.map((p) => r.push(p, 0)).filter((e): e is HidEvent => e !== undefined);
};

describe('HID framing', () => {
  it('splits into a 57-byte init packet and 59-byte continuations, as CTAPHID', () => {
    const data = Uint8Array.from({ length: 57 + 59 + 1 }, (_, i) => i & 0xff);
    const reports = fragmentHid(CID, HID_COMMANDS.msg, data);
    expect(reports).toHaveLength(3);
    expect(toHex(reports[0]!.subarray(0, 7))).toBe('010203048300' + '75');
    expect(reports[1]![4]).toBe(0);
    expect(reports[2]![4]).toBe(1);
    expect(reports.every((r) => r.length === 64)).toBe(true);
    expect(toHex(reports[2]!.subarray(6))).toBe('00'.repeat(58)); // zero padding
    expect(fragmentHid(CID, HID_COMMANDS.msg, new Uint8Array(HID_MAX_MESSAGE))).toHaveLength(129);
    expect(() => fragmentHid(CID, HID_COMMANDS.msg, new Uint8Array(HID_MAX_MESSAGE + 1))).toThrow(PosError);
  });

  it('random messages round-trip', () => {
    fc.assert(
      fc.property(arbMessage, (msg) => {
        const bytes = encodeMessage(msg);
        const reports = fragmentHid(CID, HID_COMMANDS.msg, bytes);
        expect(reports).toHaveLength(1 + Math.max(0, Math.ceil((bytes.length - 57) / 59)));
        const out = push(reports);
        expect(out).toHaveLength(1);
        const e = out[0]!;
        expect(e.kind === 'message' && toHex(e.data)).toBe(toHex(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('a lost or reordered packet is refused with POS_ERR_READER_HID_SEQUENCE, never delivered', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 57 + 59 + 1, maxLength: 2000 }),
        fc.nat(),
        fc.boolean(),
        (data, at, swap) => {
          const reports = fragmentHid(CID, HID_COMMANDS.msg, data);
          // Any packet but the last: a missing last packet is found by the timeout (tested below).
          const i = at % (reports.length - 1);
          const broken = [...reports];
          if (swap && i + 1 < reports.length) [broken[i], broken[i + 1]] = [broken[i + 1]!, broken[i]!];
          else broken.splice(i, 1);
          const out = push(broken);
          expect(out.some((e) => e.kind === 'message')).toBe(false);
          expect(out.map((e) => e.kind === 'error' && e.code)).toContain('POS_ERR_READER_HID_SEQUENCE');
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses a foreign channel, a busy channel and an oversized length with their codes', () => {
    const codes = (events: HidEvent[]) => events.map((e) => (e.kind === 'error' ? e.code : 'message'));
    const long = fragmentHid(CID, HID_COMMANDS.msg, new Uint8Array(200).fill(7));
    const other = fragmentHid(0x0a0b0c0d, HID_COMMANDS.msg, Uint8Array.of(1));
    expect(codes(push([long[0]!, other[0]!, ...long.slice(1)]))).toEqual([
      'POS_ERR_READER_HID_BUSY',
      'message',
    ]);
    expect(codes(push(other, 8000, (cid) => cid === CID))).toEqual(['POS_ERR_READER_HID_CHANNEL']);
    expect(codes(push(fragmentHid(CID, HID_COMMANDS.msg, new Uint8Array(300)), 256))).toContain(
      'POS_ERR_READER_HID_LENGTH',
    );
    expect(codes(push([new Uint8Array(63)]))).toEqual(['POS_ERR_READER_HID_LENGTH']);
  });
});

/** A host and a device joined by report pipes the test controls (microtask delivery). */
function pair(opts: { drop?: (n: number, to: 'host' | 'device') => boolean } = {}) {
  const timer = new ManualTimer();
  let n = 0;
  const ends: { host?: HidHostLink; device?: HidDeviceLink } = {};
  const deliver = (to: 'host' | 'device') => (r: Uint8Array) => {
    const i = n++;
    if (opts.drop?.(i, to)) return;
    const copy = r.slice();
    void Promise.resolve().then(() => (to === 'host' ? ends.host : ends.device)?.receiveReport(copy));
  };
  let seed = 1;
  const random = (k: number) => Uint8Array.from({ length: k }, () => (seed = (seed * 73 + 41) & 0xff));
  const device = new HidDeviceLink({ writeReport: deliver('host'), timer, random });
  ends.device = device;
  const host = new HidHostLink({ writeReport: deliver('device'), timer, random });
  ends.host = host;
  const got = { host: [] as string[], device: [] as string[] };
  const errors = { host: [] as LinkError[], device: [] as LinkError[] };
  host.on('message', (m) => got.host.push(toHex(m)));
  device.on('message', (m) => got.device.push(toHex(m)));
  host.on('error', (e) => errors.host.push(e));
  device.on('error', (e) => errors.device.push(e));
  return { host, device, got, errors, timer, settle: () => new Promise((r) => setTimeout(r, 0)) };
}

describe('HID link', () => {
  it('allocates a channel with INIT and carries messages both ways', async () => {
    const p = pair();
    const a = encodeMessage({ t: 'abort', id: 1 });
    p.host.send(a); // waits for the channel
    await p.settle();
    expect(p.host.channel).toBeDefined();
    expect(p.host.channel).toBe(p.device.channel);
    expect(p.host.channel).not.toBe(HID_BROADCAST_CID);
    expect(p.host.deviceInfo?.protocol).toBe(2);
    expect(p.got.device).toEqual([toHex(a)]);
    p.device.send(Uint8Array.of(0xa0));
    await p.settle();
    expect(p.got.host).toEqual(['A0']);
  });

  it('random messages round-trip over the link', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(arbMessage, { minLength: 1, maxLength: 5 }), async (msgs) => {
        const p = pair();
        const bytes = msgs.map(encodeMessage);
        for (const b of bytes) p.host.send(b); // the first waits for the channel
        await p.settle();
        for (const b of bytes) p.device.send(b);
        await p.settle();
        expect(p.got.device).toEqual(bytes.map(toHex));
        expect(p.got.host).toEqual(bytes.map(toHex));
      }),
      { numRuns: 100 },
    );
  });

  it('garbage reports never throw and the link works afterwards', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 60, maxLength: 66 }), { maxLength: 30 }),
        async (junk) => {
          const p = pair();
          await p.settle();
          for (const j of junk) {
            p.device.receiveReport(j);
            p.host.receiveReport(j);
          }
          p.timer.advance(5000); // lets any half message time out
          await p.settle();
          p.host.send(Uint8Array.of(1, 2));
          p.device.send(Uint8Array.of(3, 4));
          await p.settle();
          expect(p.got.device).toContain('0102');
          expect(p.got.host).toContain('0304');
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a lost packet is reported on both ends, and a stalled message times out', async () => {
    // Reports 0 (INIT) and 1 (INIT answer); the host then sends a 3-packet message: drop its second.
    const p = pair({ drop: (i) => i === 3 });
    await p.settle();
    p.host.send(new Uint8Array(150).fill(9));
    await p.settle();
    expect(p.errors.device.map((e) => e.code)).toContain('POS_ERR_READER_HID_SEQUENCE');
    expect(p.errors.host.map((e) => e.code)).toContain('POS_ERR_READER_HID_SEQUENCE');
    expect(p.got.device).toEqual([]);

    const q = pair({ drop: (i) => i >= 3 });
    await q.settle();
    q.host.send(new Uint8Array(150).fill(9));
    await q.settle();
    q.timer.advance(3000);
    expect(q.errors.device.map((e) => e.code)).toEqual(['POS_ERR_READER_HID_TIMEOUT']);
  });

  it('a packet on a channel the reader did not allocate gets POS_ERR_READER_HID_CHANNEL', async () => {
    const p = pair();
    await p.settle();
    for (const r of fragmentHid(0x55555555, HID_COMMANDS.msg, Uint8Array.of(1))) p.device.receiveReport(r);
    expect(p.errors.device.map((e) => e.code)).toEqual(['POS_ERR_READER_HID_CHANNEL']);
    await p.settle();
    expect(p.got.device).toEqual([]);
  });
});
