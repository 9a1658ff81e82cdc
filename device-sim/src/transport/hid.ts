/**
 * The reader as a HID device, in process: the same messages in 64-byte reports (CTAPHID-style framing
 * from shared/), between a device end served by the simulator and a host end a test drives. No kernel
 * HID device can be made on these machines (there is no /dev/uhid), so this pair stands in for the
 * USB pipe; everything above the reports is the same code a real HID reader and terminal run.
 */
import { HID_REPORT_SIZE, HidDeviceLink, HidHostLink, type HidLinkOptions } from '@pos/shared';

export interface VirtualHid {
  /** The terminal's end (allocates a channel with INIT, then carries messages). */
  readonly host: HidHostLink;
  /** The reader's end: give it to `Simulator.attachLink`. */
  readonly device: HidDeviceLink;
  /** Reports carried so far, both ways (each exactly 64 bytes). */
  readonly reports: { toDevice: number; toHost: number };
  /** Drops (test hook) the next reports towards the device. */
  dropToDevice(n: number): void;
  close(): void;
}

/** Two HID link ends joined by a report pipe; reports arrive on a later microtask, in order. */
export function createVirtualHid(opts: Pick<HidLinkOptions, 'timer'> = {}): VirtualHid {
  const reports = { toDevice: 0, toHost: 0 };
  let drop = 0;
  const ends: { host?: HidHostLink; device?: HidDeviceLink } = {};
  const check = (r: Uint8Array): Uint8Array => {
    if (r.length !== HID_REPORT_SIZE) throw new RangeError(`a HID report is ${HID_REPORT_SIZE} bytes`);
    return r.slice();
  };
  const device = new HidDeviceLink({
    ...opts,
    writeReport: (r) => {
      const copy = check(r);
      reports.toHost++;
      queueMicrotask(() => ends.host?.receiveReport(copy));
    },
  });
  ends.device = device;
  const host = new HidHostLink({
    ...opts,
    writeReport: (r) => {
      const copy = check(r);
      reports.toDevice++;
      if (drop > 0) {
        drop--;
        return;
      }
      queueMicrotask(() => ends.device?.receiveReport(copy));
    },
  });
  ends.host = host;
  return {
    host,
    device,
    reports,
    dropToDevice: (n) => {
      drop += n;
    },
    close: () => {
      host.close();
      device.close();
    },
  };
}
