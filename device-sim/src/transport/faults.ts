/**
 * Faults for tests and demos, as the control API's `POST /fault` takes them (parsed with FaultSchema):
 *
 * - `drop` / `corrupt` (rate 0..1, direction in|out|both): each byte on the line is lost, or has one
 *   random bit flipped, with that probability;
 * - `delay` (ms): every chunk is held that long before it goes on (order kept);
 * - `stall` (ms): the line carries nothing for that long, bytes are held and then released;
 * - `disconnect` (ms): the reader drops off the line (bytes lost both ways, the session ends) and
 *   comes back after ms (default 1000);
 * - `slow-card` (ms): a card read takes that long;
 * - `battery` (percent): the battery level the status reports (below 5% no transaction starts);
 * - `clear`: every line fault off, card read time 0, battery 100%.
 */
import { z } from 'zod';
import type { ByteLine } from './serial';

const rate = z.number().min(0).max(1);
const ms = z.number().int().min(0).max(600_000);
const direction = z.enum(['in', 'out', 'both']).default('both');

export const FaultSchema = z.discriminatedUnion('fault', [
  z.strictObject({ fault: z.literal('drop'), rate, direction }),
  z.strictObject({ fault: z.literal('corrupt'), rate, direction }),
  z.strictObject({ fault: z.literal('delay'), ms }),
  z.strictObject({ fault: z.literal('stall'), ms }),
  z.strictObject({ fault: z.literal('disconnect'), ms: ms.default(1000) }),
  z.strictObject({ fault: z.literal('slow-card'), ms }),
  z.strictObject({ fault: z.literal('battery'), percent: z.number().int().min(0).max(100) }),
  z.strictObject({ fault: z.literal('clear') }),
]);
export type Fault = z.infer<typeof FaultSchema>;

export interface LineFaultState {
  dropIn: number;
  dropOut: number;
  corruptIn: number;
  corruptOut: number;
  delayMs: number;
  stalledUntil: number;
  disconnectedUntil: number;
}

export function noLineFaults(): LineFaultState {
  return {
    dropIn: 0,
    dropOut: 0,
    corruptIn: 0,
    corruptOut: 0,
    delayMs: 0,
    stalledUntil: 0,
    disconnectedUntil: 0,
  };
}

/**
 * Wraps a line and applies the line faults to the bytes in both directions. `onDisconnect` is told
 * when a disconnect fault starts so the link layer can drop its session.
 */
export class FaultyLine implements ByteLine {
  readonly faults: LineFaultState = noLineFaults();
  #dataCbs = new Set<(b: Uint8Array) => void>();
  #held: { dir: 'in' | 'out'; bytes: Uint8Array }[] = [];
  #releaseTimer: NodeJS.Timeout | undefined;
  readonly #unsubscribe: () => void;

  constructor(
    private readonly inner: ByteLine,
    private readonly random: () => number = Math.random,
  ) {
    this.#unsubscribe = inner.onData((b) => this.#pass('in', b));
  }

  get closed(): boolean {
    return this.inner.closed;
  }

  apply(fault: Fault, onDisconnect?: () => void): void {
    const f = this.faults;
    const now = Date.now();
    switch (fault.fault) {
      case 'drop':
        if (fault.direction !== 'out') f.dropIn = fault.rate;
        if (fault.direction !== 'in') f.dropOut = fault.rate;
        return;
      case 'corrupt':
        if (fault.direction !== 'out') f.corruptIn = fault.rate;
        if (fault.direction !== 'in') f.corruptOut = fault.rate;
        return;
      case 'delay':
        f.delayMs = fault.ms;
        return;
      case 'stall':
        f.stalledUntil = now + fault.ms;
        this.#scheduleRelease(fault.ms);
        return;
      case 'disconnect':
        f.disconnectedUntil = now + fault.ms;
        this.#held = [];
        onDisconnect?.();
        return;
      case 'clear':
        Object.assign(f, noLineFaults());
        this.#release();
        return;
      case 'slow-card':
      case 'battery':
        return;
    }
  }

  write(bytes: Uint8Array): void {
    this.#pass('out', bytes);
  }

  onData(cb: (bytes: Uint8Array) => void): () => void {
    this.#dataCbs.add(cb);
    return () => this.#dataCbs.delete(cb);
  }

  onClose(cb: () => void): () => void {
    return this.inner.onClose(cb);
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    if (this.#releaseTimer !== undefined) clearTimeout(this.#releaseTimer);
    await this.inner.close();
  }

  #pass(dir: 'in' | 'out', bytes: Uint8Array): void {
    const f = this.faults;
    const now = Date.now();
    if (now < f.disconnectedUntil) return;
    const drop = dir === 'in' ? f.dropIn : f.dropOut;
    const corrupt = dir === 'in' ? f.corruptIn : f.corruptOut;
    let out: Uint8Array;
    if (drop > 0 || corrupt > 0) {
      const kept: number[] = [];
      for (const b of bytes) {
        if (drop > 0 && this.random() < drop) continue;
        kept.push(corrupt > 0 && this.random() < corrupt ? b ^ (1 << Math.floor(this.random() * 8)) : b);
      }
      out = Uint8Array.from(kept);
    } else {
      out = bytes.slice();
    }
    if (out.length === 0) return;
    if (now < f.stalledUntil || this.#held.length > 0) {
      this.#held.push({ dir, bytes: out });
      return;
    }
    if (f.delayMs > 0) {
      this.#held.push({ dir, bytes: out });
      this.#scheduleRelease(f.delayMs);
      return;
    }
    this.#deliver(dir, out);
  }

  #deliver(dir: 'in' | 'out', bytes: Uint8Array): void {
    if (dir === 'out') this.inner.write(bytes);
    else for (const cb of this.#dataCbs) cb(bytes);
  }

  #scheduleRelease(delay: number): void {
    if (this.#releaseTimer !== undefined) return;
    this.#releaseTimer = setTimeout(() => {
      this.#releaseTimer = undefined;
      const now = Date.now();
      if (now < this.faults.stalledUntil) {
        this.#scheduleRelease(this.faults.stalledUntil - now);
        return;
      }
      this.#release();
    }, delay);
  }

  #release(): void {
    const held = this.#held;
    this.#held = [];
    for (const h of held) this.#deliver(h.dir, h.bytes);
  }
}
