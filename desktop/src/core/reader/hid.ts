/**
 * The HID reader driver: enumerate by USB vendor/product id, open the device, write 64-byte reports
 * (with the leading report-ID byte 00 that hidapi wants for devices without numbered reports), and a
 * read loop that hands each 64-byte input report to shared's `HidHostLink` (CTAPHID-style framing,
 * INIT channel allocation). A read that fails is a lost reader.
 *
 * node-hid is loaded lazily: on Linux its binding needs libusb-1.0 at run time, and a machine without
 * it must still start (serial readers work; HID answers POS_ERR_DESKTOP_HID_UNAVAILABLE). The library
 * sits behind `HidBackend`, so the driver logic is tested with a fake device object (no /dev/uhid on
 * the build machines to make a kernel HID device).
 */
import { createRequire } from 'node:module';
import { err, HID_REPORT_SIZE, HidHostLink, ok, type LinkTimer, type Result } from '@pos/shared';
import { z } from 'zod';
import type { DesktopCode } from '../result';
import { LostSignal, type ReaderDevice, type ReaderDriver, type UsbIds } from './device';

/** One enumerated HID device (the node-hid `Device` fields used). */
export interface HidDeviceInfo {
  readonly vendorId: number;
  readonly productId: number;
  readonly path?: string | undefined;
}

/** An open HID device, the shape of node-hid's `HIDAsync`. */
export interface HidHandle {
  /** Writes one output report; the first byte is the report id (00). */
  write(values: number[] | Buffer): Promise<number>;
  /** One input report, or undefined when none came within `timeoutMs`. Rejects when the device fails. */
  read(timeoutMs?: number): Promise<Buffer | undefined>;
  close(): Promise<void>;
}

export interface HidBackend {
  devices(vendorId: number, productId: number): Promise<readonly HidDeviceInfo[]>;
  open(path: string): Promise<HidHandle>;
}

const DeviceInfoSchema = z.object({
  vendorId: z.number().int().min(0).max(0xffff),
  productId: z.number().int().min(0).max(0xffff),
  path: z.string().min(1).max(4096).optional(),
});

interface NodeHidModule {
  devicesAsync(vid: number, pid: number): Promise<unknown>;
  HIDAsync: { open(path: string): Promise<HidHandle> };
}

/** Loads node-hid (its native binding); an error result when it cannot be loaded here. */
export function loadNodeHid(): Result<{ backend: HidBackend }, DesktopCode> {
  let mod: NodeHidModule;
  try {
    const require = createRequire(import.meta.url);
    mod = require('node-hid') as NodeHidModule;
  } catch {
    return err(
      'POS_ERR_DESKTOP_HID_UNAVAILABLE',
      'node-hid cannot be loaded (on Linux it needs libusb-1.0: apt-get install libusb-1.0-0)',
    );
  }
  const backend: HidBackend = {
    async devices(vid, pid) {
      const parsed = z.array(DeviceInfoSchema).safeParse(await mod.devicesAsync(vid, pid));
      return parsed.success ? parsed.data : [];
    },
    open: (path) => mod.HIDAsync.open(path),
  };
  return ok({ backend });
}

export interface HidDriverOptions {
  readonly usb: UsbIds;
  /** Defaults to node-hid, loaded when the driver first opens. */
  readonly backend?: HidBackend;
  readonly timer?: LinkTimer;
  /** How long one read waits before the loop checks whether it was closed (ms). */
  readonly readTimeoutMs?: number;
}

export class HidReaderDriver implements ReaderDriver {
  readonly kind = 'hid' as const;
  constructor(private readonly opts: HidDriverOptions) {}

  async open(): Promise<Result<{ device: ReaderDevice }, DesktopCode>> {
    let backend = this.opts.backend;
    if (backend === undefined) {
      const loaded = loadNodeHid();
      if (!loaded.ok) return loaded;
      backend = loaded.backend;
    }
    const { vendorId, productId } = this.opts.usb;
    let list: readonly HidDeviceInfo[];
    try {
      list = await backend.devices(vendorId, productId);
    } catch {
      list = [];
    }
    const found = list
      .filter((d) => d.vendorId === vendorId && d.productId === productId && d.path !== undefined)
      .sort((a, b) => ((a.path ?? '') < (b.path ?? '') ? -1 : 1))[0];
    if (found?.path === undefined) {
      return err(
        'POS_ERR_DESKTOP_READER_NOT_FOUND',
        `no HID device with USB id ${vendorId.toString(16).padStart(4, '0')}:${productId.toString(16).padStart(4, '0')}`,
      );
    }
    let handle: HidHandle;
    try {
      handle = await backend.open(found.path);
    } catch {
      return err('POS_ERR_DESKTOP_READER_OPEN', 'the HID device cannot be opened');
    }
    return ok({ device: new HidReaderDevice(found.path, handle, this.opts) });
  }
}

class HidReaderDevice implements ReaderDevice {
  readonly kind = 'hid' as const;
  readonly link: HidHostLink;
  readonly #lost = new LostSignal();
  #closed = false;
  /** The read loop's promise (tests and close() wait for it). */
  readonly loop: Promise<void>;

  constructor(
    readonly where: string,
    private readonly handle: HidHandle,
    opts: HidDriverOptions,
  ) {
    this.link = new HidHostLink({
      writeReport: (report) => this.#write(report),
      ...(opts.timer === undefined ? {} : { timer: opts.timer }),
    });
    this.loop = this.#readLoop(opts.readTimeoutMs ?? 250);
  }

  #write(report: Uint8Array): void {
    if (this.#closed) return;
    const out = Buffer.alloc(HID_REPORT_SIZE + 1);
    out.set(report, 1);
    const failed = (): void => this.#fail('the HID device refused a write');
    try {
      this.handle.write(out).then(() => undefined, failed);
    } catch {
      failed();
    }
  }

  async #readLoop(timeoutMs: number): Promise<void> {
    while (!this.#closed) {
      let data: Buffer | undefined;
      try {
        data = await this.handle.read(timeoutMs);
      } catch {
        this.#fail('the HID device failed (unplugged?)');
        return;
      }
      if (this.#closed) return;
      if (data === undefined || data.length === 0) continue;
      // Input reports come without the report id; a device with a report-id byte gives 65.
      const bytes = data.length === HID_REPORT_SIZE + 1 && data[0] === 0 ? data.subarray(1) : data;
      if (bytes.length !== HID_REPORT_SIZE) continue;
      this.link.receiveReport(new Uint8Array(bytes));
    }
  }

  #fail(detail: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.link.close();
    this.handle.close().catch(() => undefined);
    this.#lost.fire(detail);
  }

  get closed(): boolean {
    return this.#closed;
  }

  onLost(cb: (detail: string) => void): () => void {
    return this.#lost.on(cb);
  }

  async close(): Promise<void> {
    this.#lost.silence();
    if (this.#closed) return;
    this.#closed = true;
    this.link.close();
    await this.loop;
    await this.handle.close().catch(() => undefined);
  }
}
