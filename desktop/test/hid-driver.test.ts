/**
 * The HID reader driver against a FAKE node-hid device object: there is no /dev/uhid on these
 * machines, so no kernel HID device can be made and node-hid (which needs libusb-1.0) is not loaded.
 * The fake speaks 64-byte reports to shared's HidDeviceLink, attached to the in-process reader
 * simulator, so the driver's enumeration, report-ID handling, read loop and loss detection run under a
 * real handshake; only the USB pipe is simulated.
 */
import { HID_REPORT_SIZE, HidDeviceLink } from '@pos/shared';
import type { Simulator } from '@pos/device-sim/sim';
import { afterEach, describe, expect, it } from 'vitest';
import { HidReaderDriver, loadNodeHid, type HidBackend, type HidHandle } from '../src/core/reader/hid';
import { ReaderConnection } from '../src/core/reader/connection';
import { startTrustingSim, testTerminal, until, type Cleanups } from './support';

console.log(
  'HID driver tested against a fake device object: no /dev/uhid here (no kernel HID device can be made).',
);

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const VID = 0x1209;
const PID = 0x7050;

/** A fake HID device: writes go to a HidDeviceLink attached to the simulator; reads pop its reports. */
class FakeHid implements HidHandle {
  readonly inbox: Buffer[] = [];
  readonly writes: number[] = [];
  waiting: ((b: Buffer | undefined) => void) | undefined;
  unplugged = false;
  closed = false;
  readonly device: HidDeviceLink;
  constructor(sim: Simulator) {
    this.device = new HidDeviceLink({
      writeReport: (r) => {
        expect(r.length).toBe(HID_REPORT_SIZE);
        const b = Buffer.from(r);
        if (this.waiting !== undefined) {
          const w = this.waiting;
          this.waiting = undefined;
          w(b);
        } else this.inbox.push(b);
      },
    });
    sim.attachLink(this.device);
  }
  write(values: number[] | Buffer): Promise<number> {
    if (this.unplugged) return Promise.reject(new Error('could not write'));
    const b = Buffer.from(values);
    this.writes.push(b.length);
    // hidapi gets the report-ID byte 00 first, then the 64-byte report.
    expect(b[0]).toBe(0);
    const report = new Uint8Array(b.subarray(1));
    queueMicrotask(() => this.device.receiveReport(report));
    return Promise.resolve(b.length);
  }
  read(timeoutMs?: number): Promise<Buffer | undefined> {
    if (this.unplugged) return Promise.reject(new Error('could not read from HID device'));
    const b = this.inbox.shift();
    if (b !== undefined) return Promise.resolve(b);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting = undefined;
        if (this.unplugged) reject(new Error('could not read'));
        else resolve(undefined);
      }, timeoutMs ?? 250);
      this.waiting = (x) => {
        clearTimeout(t);
        resolve(x);
      };
    });
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

function fakeBackend(sim: Simulator) {
  const state = { present: true, handles: [] as FakeHid[], asked: [] as [number, number][] };
  const backend: HidBackend = {
    devices: (vid, pid) => {
      state.asked.push([vid, pid]);
      return Promise.resolve(
        state.present
          ? [
              { vendorId: 0x046d, productId: 0xc077, path: '/dev/hidraw0' }, // a mouse: not ours
              { vendorId: VID, productId: PID, path: '/dev/hidraw3' },
            ]
          : [],
      );
    },
    open: (path) => {
      expect(path).toBe('/dev/hidraw3');
      const h = new FakeHid(sim);
      state.handles.push(h);
      return Promise.resolve(h);
    },
  };
  return { backend, state };
}

describe('HID reader driver (fake device object)', () => {
  it('node-hid either loads or answers POS_ERR_DESKTOP_HID_UNAVAILABLE (never throws)', () => {
    const r = loadNodeHid();
    if (!r.ok) console.log(`node-hid not loadable here: ${r.detail}`);
    expect(r.ok ? typeof r.backend.devices : r.code).toMatch(/^(function|POS_ERR_DESKTOP_HID_UNAVAILABLE)$/);
  });

  it('enumerates by vendor/product id, handshakes over 64-byte reports, detects unplug, reconnects', async () => {
    const term = testTerminal();
    const { sim, caCertificateDer, serial } = await startTrustingSim(cleanups, term);
    const { backend, state } = fakeBackend(sim);

    const conn = new ReaderConnection({
      driver: new HidReaderDriver({ usb: { vendorId: VID, productId: PID }, backend, readTimeoutMs: 20 }),
      handshake: term.handshake(caCertificateDer, serial),
      backoff: { initialMs: 10, maxMs: 50, jitter: 0.5 },
    });
    cleanups.push(() => conn.close());
    const events: string[] = [];
    conn.on('reader-lost', (e) => events.push(`lost:${e.code}`));
    conn.on('reader-back', () => events.push('back'));
    conn.start();
    const session = await conn.whenConnected();
    expect(state.asked[0]).toEqual([VID, PID]);
    expect(conn.device?.kind).toBe('hid');
    expect(state.handles[0]?.writes.every((n) => n === HID_REPORT_SIZE + 1)).toBe(true);
    const status = await session.request({ t: 'get-status', id: session.newId() }, 5000);
    expect(status.ok && status.message.t).toBe('status');

    // Unplug: the read loop's read fails; the manager reports it and retries until the device is back.
    state.present = false;
    const first = state.handles[0];
    if (first === undefined) throw new Error('no handle');
    first.unplugged = true;
    await until(() => events.includes('lost:POS_ERR_DESKTOP_READER_LOST'), 'reader-lost');
    expect(first.closed).toBe(true);
    expect(conn.session).toBeUndefined();
    state.present = true;
    await until(() => conn.state === 'connected', 'reconnected');
    expect(events).toEqual(['lost:POS_ERR_DESKTOP_READER_LOST', 'back']);
    const again = await conn.whenConnected();
    const s2 = await again.request({ t: 'get-status', id: again.newId() }, 5000);
    expect(s2.ok && s2.message.t).toBe('status');
  });

  it('answers NOT_FOUND when no device has the ids, and OPEN when opening fails', async () => {
    const none: HidBackend = {
      devices: () => Promise.resolve([{ vendorId: VID, productId: PID + 1, path: '/dev/hidraw1' }]),
      open: () => Promise.reject(new Error('no')),
    };
    const a = await new HidReaderDriver({ usb: { vendorId: VID, productId: PID }, backend: none }).open();
    expect(a).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_READER_NOT_FOUND' });
    const b = await new HidReaderDriver({ usb: { vendorId: VID, productId: PID + 1 }, backend: none }).open();
    expect(b).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_READER_OPEN' });
  });
});
