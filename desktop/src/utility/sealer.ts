/**
 * The key store's sealer in the Electron app's utility process: Electron `safeStorage` exists only in
 * the main process, so the core asks main over the parent port (`seal { id, op, data }`, answered by
 * `sealed { id, answer }`, both parsed with protocol.ts) to seal or unseal the device key. Plain Node:
 * no electron import. Never logs what it carries; every failure is a coded result (a missing answer
 * within the timeout, or the process closing, is `POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE`).
 *
 * The base64 strings that cross the port cannot be wiped (JavaScript strings); the byte arrays this
 * side makes from them are fresh, and the decoded Buffer is zeroed after copying.
 */
import type { Result } from '@pos/shared';
import type { SecretSealer } from '../core/keys/store';
import type { DesktopCode } from '../core/result';
import type { SealAnswer, SealOp, ToMain } from './protocol';

/** The sealer's name written in the key file. */
export const SAFE_STORAGE_SEALER = 'electron-safestorage';

/** safeStorage may show an OS prompt (macOS Keychain access): the wait is long, but bounded. */
export const SEAL_TIMEOUT_MS = 120_000;

export interface SealerTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemTimers: SealerTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

type Fail = { ok: false; code: DesktopCode; detail: string };
const unavailable = (detail: string): Fail => ({
  ok: false,
  code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
  detail,
});

/** Decodes base64 into a fresh Uint8Array and zeroes the intermediate Buffer. */
function fromBase64(data: string): Uint8Array {
  const buf = Buffer.from(data, 'base64');
  const out = new Uint8Array(buf);
  buf.fill(0);
  return out;
}

export class PortSealer implements SecretSealer {
  readonly name = SAFE_STORAGE_SEALER;
  #next = 1;
  #closed = false;
  readonly #pending = new Map<number, { resolve: (a: SealAnswer) => void; timer: unknown }>();
  readonly #timers: SealerTimers;

  constructor(
    private readonly post: (m: ToMain) => void,
    private readonly timeoutMs = SEAL_TIMEOUT_MS,
    timers?: SealerTimers,
  ) {
    this.#timers = timers ?? systemTimers;
  }

  async seal(plain: Uint8Array): Promise<Result<{ sealed: Uint8Array }, DesktopCode>> {
    const a = await this.#ask('seal', plain);
    return a.ok ? { ok: true, sealed: fromBase64(a.data) } : a;
  }

  async unseal(sealed: Uint8Array): Promise<Result<{ plain: Uint8Array }, DesktopCode>> {
    const a = await this.#ask('unseal', sealed);
    return a.ok ? { ok: true, plain: fromBase64(a.data) } : a;
  }

  /** Main's answer (already schema-parsed by the runner). An unknown or late id is dropped. */
  answer(id: number, answer: SealAnswer): void {
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    this.#timers.clearTimeout(p.timer);
    p.resolve(answer);
  }

  /** The process is closing: every pending request fails, and new ones are refused. */
  close(): void {
    this.#closed = true;
    for (const [id, p] of this.#pending) {
      this.#timers.clearTimeout(p.timer);
      this.#pending.delete(id);
      p.resolve(unavailable('the terminal core is closing'));
    }
  }

  #ask(op: SealOp, bytes: Uint8Array): Promise<Fail | { ok: true; data: string }> {
    if (this.#closed) return Promise.resolve(unavailable('the terminal core is closing'));
    const id = this.#next++;
    const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
    return new Promise((resolve) => {
      const timer = this.#timers.setTimeout(() => {
        this.#pending.delete(id);
        resolve(unavailable('the main process did not answer the key sealing request in time'));
      }, this.timeoutMs);
      this.#pending.set(id, {
        resolve: (a) => {
          if (a.ok) resolve(a);
          else
            resolve({
              ok: false,
              // Main answers only key store codes; anything else is taken as "unavailable".
              code:
                a.code === 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL'
                  ? 'POS_ERR_DESKTOP_KEYSTORE_UNSEAL'
                  : 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
              detail: a.detail,
            });
        },
        timer,
      });
      try {
        this.post({ t: 'seal', id, op, data });
      } catch {
        this.answer(id, {
          ok: false,
          code: 'POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE',
          detail: 'the main process cannot be reached',
        });
      }
    });
  }
}
