/**
 * The reader link: one interface over the physical transports. A `ReaderDriver` finds and opens the
 * reader; what it opens is a `ReaderDevice`, whose `link` is the message-level `ReaderLink` of
 * @pos/shared (serial: `SerialLink` over the port's byte stream; HID: `HidHostLink` over 64-byte
 * reports). Everything above (handshake, secure channel, session) is the shared code, unchanged, so
 * both transports behave the same to it. The device reports `lost` once when the hardware goes away
 * (unplugged, the line failed); `close()` is the orderly end and reports nothing.
 */
import type { ReaderLink, Result } from '@pos/shared';
import type { DesktopCode } from '../result';

export type ReaderTransportKind = 'serial' | 'hid';

export interface ReaderDevice {
  readonly kind: ReaderTransportKind;
  /** Where it is (a port path or HID path), for people: never a key or a ticket. */
  readonly where: string;
  /** The framed message link over this device (shared/src/reader). */
  readonly link: ReaderLink;
  /** Called once if the device goes away by itself (not after `close()`). Returns the unsubscribe. */
  onLost(cb: (detail: string) => void): () => void;
  /** Closes the device and its link. Idempotent. */
  close(): Promise<void>;
  readonly closed: boolean;
}

export interface ReaderDriver {
  readonly kind: ReaderTransportKind;
  /** Finds the reader (explicit path or USB ids) and opens it. Never throws. */
  open(): Promise<Result<{ device: ReaderDevice }, DesktopCode>>;
}

/** USB ids: four hex digits each, as `SerialPort.list()` reports them, or numbers as node-hid does. */
export interface UsbIds {
  readonly vendorId: number;
  readonly productId: number;
}

/** A small once-only notifier for `onLost`. */
export class LostSignal {
  #cbs = new Set<(detail: string) => void>();
  #fired = false;
  on(cb: (detail: string) => void): () => void {
    this.#cbs.add(cb);
    return () => this.#cbs.delete(cb);
  }
  fire(detail: string): void {
    if (this.#fired) return;
    this.#fired = true;
    for (const cb of [...this.#cbs]) cb(detail);
  }
  /** After an orderly close: nothing more is reported. */
  silence(): void {
    this.#fired = true;
  }
}
