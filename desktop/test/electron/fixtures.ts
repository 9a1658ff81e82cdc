/** Shared fixtures of the Electron shell tests: snapshots, manual timers, a fake utility child. */
import type { Snapshot } from '../../src/api/contract';
import type { Timers, UtilityChild } from '../../src/main/core-bridge';
import type { ToCore } from '../../src/utility/protocol';

export function snapshot(over: Partial<Snapshot> = {}): Snapshot {
  return {
    v: 1,
    shell: 'electron',
    seq: 0,
    enrolled: true,
    terminalId: 'trm_1',
    reader: { state: 'connected', serial: 'SIM-0001' },
    backend: { link: 'up', push: true },
    attestation: { tier: 'affirming', at: 1_700_000_000_000, reasons: [] },
    sale: { state: 'idle' },
    ...over,
  };
}

export function padSnapshot(seq = 0): Snapshot {
  return snapshot({
    seq,
    sale: {
      state: 'pin',
      amountMinor: 1234,
      currency: 'EUR',
      maskedPan: '411111******1111',
      pad: { layout: [3, 1, 4, 0, 5, 9, 2, 6, 8, 7], digits: 2, deadline: 1_700_000_030_000 },
    },
  });
}

/** Timers run by hand: `fire()` runs every due callback in order. */
export class ManualTimers implements Timers {
  now = 0;
  private next = 1;
  private readonly due = new Map<number, { at: number; fn: () => void }>();
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.due.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.due.delete(handle as number);
  }
  get count(): number {
    return this.due.size;
  }
  advance(ms: number): void {
    this.now += ms;
    for (const [id, t] of [...this.due].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at > this.now) continue;
      this.due.delete(id);
      t.fn();
    }
  }
}

/** A utility child whose messages the test reads and answers. */
export class FakeChild implements UtilityChild {
  readonly sent: ToCore[] = [];
  killed = false;
  private messageListener: ((m: unknown) => void) | undefined;
  private exitListener: ((code: number) => void) | undefined;
  post(message: ToCore): void {
    this.sent.push(structuredClone(message));
  }
  onMessage(listener: (message: unknown) => void): void {
    this.messageListener = listener;
  }
  onExit(listener: (code: number) => void): void {
    this.exitListener = listener;
  }
  kill(): void {
    this.killed = true;
  }
  /** The child sends a message to main. */
  send(message: unknown): void {
    this.messageListener?.(structuredClone(message));
  }
  exit(code: number): void {
    this.exitListener?.(code);
  }
}

export const flush = (): Promise<void> => new Promise((r) => setImmediate(r));
