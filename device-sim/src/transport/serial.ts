/**
 * The reader's serial port: a pseudo-terminal pair made by socat (the reader opens one end with
 * `serialport`, the terminal gets the other), or an explicit serial device path.
 *
 * `ByteLine` is what the link layer sees: bytes in, bytes out, close. A pseudo-terminal passes bytes
 * as fast as the kernel moves them; `paceBaud` makes writes take the time they would on a real UART
 * (10 bits per byte: start, 8 data, stop), so benchmarks measure what a 115200-baud line would allow.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { err, ok, type Result } from '@pos/shared';
import { SerialPort } from 'serialport';
import type { SimCode } from '../result';

export const SOCAT = '/usr/bin/socat';
export const DEFAULT_BAUD = 115_200;

/** A byte-oriented line (serial port, pty, in-memory pipe). */
export interface ByteLine {
  write(bytes: Uint8Array): void;
  onData(cb: (bytes: Uint8Array) => void): () => void;
  onClose(cb: () => void): () => void;
  close(): Promise<void>;
  readonly closed: boolean;
}

/** Whether socat is installed where the simulator looks for it. */
export function socatAvailable(): boolean {
  return existsSync(SOCAT);
}

export interface PtyPair {
  /** The end the reader opens. */
  readonly readerPath: string;
  /** The end the terminal opens (printed in the ready line). */
  readonly terminalPath: string;
  /** Stops socat (both ends disappear). */
  stop(): Promise<void>;
}

/** Starts `socat -d -d pty,raw,echo=0 pty,raw,echo=0` and reads the two paths it prints. */
export function makePtyPair(timeoutMs = 5000): Promise<Result<{ pair: PtyPair }, SimCode>> {
  if (!socatAvailable()) {
    return Promise.resolve(
      err('POS_ERR_SIM_SOCAT', `socat is not installed (${SOCAT}); apt-get install socat`),
    );
  }
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(SOCAT, ['-d', '-d', 'pty,raw,echo=0', 'pty,raw,echo=0'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    } catch {
      resolve(err('POS_ERR_SIM_SOCAT', 'socat could not be started'));
      return;
    }
    const paths: string[] = [];
    let text = '';
    let settled = false;
    const finish = (r: Result<{ pair: PtyPair }, SimCode>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const stop = (): Promise<void> =>
      new Promise((res) => {
        if (child.exitCode !== null || child.signalCode !== null) {
          res();
          return;
        }
        child.once('exit', () => res());
        child.kill('SIGTERM');
      });
    const timer = setTimeout(() => {
      void stop();
      finish(err('POS_ERR_SIM_SOCAT', 'socat did not report two pseudo-terminals in time'));
    }, timeoutMs);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      text += chunk;
      for (const m of text.matchAll(/PTY is (\/dev\/\S+)/g)) {
        const p = m[1];
        if (p !== undefined && !paths.includes(p)) paths.push(p);
      }
      text = text.slice(-512);
      const [readerPath, terminalPath] = paths;
      if (readerPath !== undefined && terminalPath !== undefined) {
        finish(ok({ pair: { readerPath, terminalPath, stop } }));
      }
    });
    child.on('error', () => finish(err('POS_ERR_SIM_SOCAT', 'socat could not be started')));
    child.on('exit', () =>
      finish(err('POS_ERR_SIM_SOCAT', 'socat exited before making the pseudo-terminals')),
    );
  });
}

export interface SerialLineOptions {
  readonly path: string;
  readonly baudRate?: number;
  /** Pace writes to this many bits per second (10 bits a byte). Off by default. */
  readonly paceBaud?: number;
}

/** A serial device (or pty end) opened with `serialport`, as a ByteLine. */
export class SerialLine implements ByteLine {
  #closed = false;
  #dataCbs = new Set<(b: Uint8Array) => void>();
  #closeCbs = new Set<() => void>();
  #busyUntil = 0;

  private constructor(
    private readonly port: SerialPort,
    private readonly paceBaud: number | undefined,
  ) {
    port.on('data', (chunk: Buffer) => {
      const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
      for (const cb of this.#dataCbs) cb(bytes);
    });
    port.on('close', () => this.#markClosed());
    port.on('error', () => this.#markClosed());
  }

  static open(opts: SerialLineOptions): Promise<Result<{ line: SerialLine }, SimCode>> {
    return new Promise((resolve) => {
      let port: SerialPort;
      try {
        port = new SerialPort({ path: opts.path, baudRate: opts.baudRate ?? DEFAULT_BAUD, autoOpen: false });
      } catch {
        resolve(err('POS_ERR_SIM_SERIAL', 'the serial port options are not valid'));
        return;
      }
      port.open((e) => {
        if (e)
          resolve(err('POS_ERR_SIM_SERIAL', `the serial port cannot be opened (${e.message.slice(0, 80)})`));
        else resolve(ok({ line: new SerialLine(port, opts.paceBaud) }));
      });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  #markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const cb of this.#closeCbs) cb();
  }

  write(bytes: Uint8Array): void {
    if (this.#closed) return;
    const copy = Buffer.from(bytes);
    if (this.paceBaud === undefined) {
      this.port.write(copy);
      return;
    }
    // Each write leaves when the line is free and occupies it for its bytes' time on the wire.
    const now = performance.now();
    const start = Math.max(now, this.#busyUntil);
    this.#busyUntil = start + (copy.length * 10 * 1000) / this.paceBaud;
    const delay = this.#busyUntil - now;
    setTimeout(() => {
      if (!this.#closed) this.port.write(copy);
    }, delay);
  }

  onData(cb: (bytes: Uint8Array) => void): () => void {
    this.#dataCbs.add(cb);
    return () => this.#dataCbs.delete(cb);
  }

  /** Resolves when everything written so far has been handed to the operating system. */
  drain(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#closed) resolve();
      else this.port.drain(() => resolve());
    });
  }

  onClose(cb: () => void): () => void {
    this.#closeCbs.add(cb);
    return () => this.#closeCbs.delete(cb);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.port.isOpen) {
        this.#markClosed();
        resolve();
        return;
      }
      this.port.close(() => {
        this.#markClosed();
        resolve();
      });
    });
  }
}
