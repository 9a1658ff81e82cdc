/**
 * The serial reader driver: an explicit port path, or discovery by USB vendor/product id through
 * `SerialPort.list()`. The port's byte stream feeds shared's `SerialLink` (COBS + CRC frames, ACK and
 * retry); a port that closes by itself or errors is a lost reader.
 *
 * The port library sits behind `SerialBackend` so discovery is tested with a fake list; the real one
 * (`serialportBackend`) is what runs, and what the pseudo-terminal test drives.
 */
import { err, ok, SerialLink, type LinkTimer, type Result } from '@pos/shared';
import { SerialPort } from 'serialport';
import { z } from 'zod';
import type { DesktopCode } from '../result';
import { LostSignal, type ReaderDevice, type ReaderDriver, type UsbIds } from './device';

export const DEFAULT_BAUD = 115_200;

/** One entry of a port listing (the fields of serialport's PortInfo the driver uses). */
export interface SerialPortInfo {
  readonly path: string;
  readonly vendorId?: string | undefined;
  readonly productId?: string | undefined;
}

/** An open port: bytes out, bytes in, and its end. */
export interface SerialHandle {
  write(bytes: Uint8Array): void;
  onData(cb: (bytes: Uint8Array) => void): void;
  /** Called once when the port closes or fails (not after `close()`). */
  onEnd(cb: (detail: string) => void): void;
  close(): Promise<void>;
}

export interface SerialBackend {
  list(): Promise<readonly SerialPortInfo[]>;
  open(path: string, baudRate: number): Promise<Result<{ handle: SerialHandle }, DesktopCode>>;
}

const PortInfoSchema = z.object({
  path: z.string().min(1).max(4096),
  vendorId: z.string().max(16).optional(),
  productId: z.string().max(16).optional(),
});

/** The `serialport` package. */
export const serialportBackend: SerialBackend = {
  async list() {
    try {
      const ports: unknown = await SerialPort.list();
      const parsed = z.array(PortInfoSchema).safeParse(ports);
      return parsed.success ? parsed.data : [];
    } catch {
      return [];
    }
  },
  open(path, baudRate) {
    return new Promise((resolve) => {
      let port: SerialPort;
      try {
        port = new SerialPort({ path, baudRate, autoOpen: false });
      } catch {
        resolve(err('POS_ERR_DESKTOP_READER_CONFIG', 'the serial port options are not valid'));
        return;
      }
      port.open((e) => {
        if (e) {
          const missing = /ENOENT|No such file/i.test(e.message);
          resolve(
            err(
              missing ? 'POS_ERR_DESKTOP_READER_NOT_FOUND' : 'POS_ERR_DESKTOP_READER_OPEN',
              missing ? 'the serial port does not exist' : 'the serial port cannot be opened',
            ),
          );
          return;
        }
        let ended = false;
        let closing = false;
        const endCbs: ((d: string) => void)[] = [];
        const end = (detail: string): void => {
          if (ended || closing) return;
          ended = true;
          for (const cb of endCbs) cb(detail);
        };
        port.on('close', () => end('the serial port closed'));
        port.on('error', () => end('the serial port failed'));
        const handle: SerialHandle = {
          write: (bytes) => {
            if (!ended && port.isOpen) port.write(Buffer.from(bytes));
          },
          onData: (cb) => {
            port.on('data', (chunk: Buffer) =>
              cb(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)),
            );
          },
          onEnd: (cb) => {
            endCbs.push(cb);
          },
          close: () =>
            new Promise((res) => {
              closing = true;
              if (!port.isOpen) {
                res();
                return;
              }
              port.close(() => res());
            }),
        };
        resolve(ok({ handle }));
      });
    });
  },
};

export type SerialTarget = { readonly path: string } | { readonly usb: UsbIds };

export interface SerialDriverOptions {
  readonly target: SerialTarget;
  readonly baudRate?: number;
  readonly backend?: SerialBackend;
  /** The SerialLink's timer (ACK timeouts); tests may drive it. */
  readonly timer?: LinkTimer;
}

/** `SerialPort.list()` reports ids as hex text ("1a86", "0x1A86" on some platforms). */
export function parseUsbId(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(?:0x)?([0-9a-f]{1,4})$/i.exec(text.trim());
  return m?.[1] === undefined ? undefined : parseInt(m[1], 16);
}

/** The first listed port with these USB ids, in path order (stable across calls). */
export function findSerialPort(ports: readonly SerialPortInfo[], ids: UsbIds): SerialPortInfo | undefined {
  return [...ports]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .find((p) => parseUsbId(p.vendorId) === ids.vendorId && parseUsbId(p.productId) === ids.productId);
}

const hex4 = (n: number): string => n.toString(16).padStart(4, '0');

export class SerialReaderDriver implements ReaderDriver {
  readonly kind = 'serial' as const;
  readonly #backend: SerialBackend;

  constructor(private readonly opts: SerialDriverOptions) {
    this.#backend = opts.backend ?? serialportBackend;
  }

  async open(): Promise<Result<{ device: ReaderDevice }, DesktopCode>> {
    const target = this.opts.target;
    let path: string;
    if ('path' in target) path = target.path;
    else {
      const found = findSerialPort(await this.#backend.list(), target.usb);
      if (found === undefined) {
        return err(
          'POS_ERR_DESKTOP_READER_NOT_FOUND',
          `no serial port with USB id ${hex4(target.usb.vendorId)}:${hex4(target.usb.productId)}`,
        );
      }
      path = found.path;
    }
    const opened = await this.#backend.open(path, this.opts.baudRate ?? DEFAULT_BAUD);
    if (!opened.ok) return opened;
    return ok({ device: new SerialReaderDevice(path, opened.handle, this.opts.timer) });
  }
}

class SerialReaderDevice implements ReaderDevice {
  readonly kind = 'serial' as const;
  readonly link: SerialLink;
  readonly #lost = new LostSignal();
  #closed = false;

  constructor(
    readonly where: string,
    private readonly handle: SerialHandle,
    timer: LinkTimer | undefined,
  ) {
    this.link = new SerialLink({ write: (b) => handle.write(b), ...(timer === undefined ? {} : { timer }) });
    handle.onData((b) => this.link.receive(b));
    handle.onEnd((detail) => {
      if (this.#closed) return;
      this.#closed = true;
      this.link.close();
      this.#lost.fire(detail);
    });
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
    await this.handle.close();
  }
}
