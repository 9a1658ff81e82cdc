/**
 * The PIN digits while they are typed: a fixed 12-byte buffer and a length, never a string. `take()`
 * hands out a copy of exactly the digits typed and wipes the buffer; `wipe()` zeroes it on every other
 * exit. `isWiped()` is what the tests check.
 */
export const PIN_MIN = 4;
export const PIN_MAX = 12;

export class PinBuffer {
  readonly #digits = new Uint8Array(PIN_MAX);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** Adds a digit 0..9; false when full or not a digit. */
  push(d: number): boolean {
    if (!Number.isInteger(d) || d < 0 || d > 9 || this.#length >= PIN_MAX) return false;
    this.#digits[this.#length++] = d;
    return true;
  }

  pop(): void {
    if (this.#length === 0) return;
    this.#digits[--this.#length] = 0;
  }

  /** A copy of the digits (the caller wipes it), and this buffer wiped. */
  take(): Uint8Array {
    const out = this.#digits.slice(0, this.#length);
    this.wipe();
    return out;
  }

  wipe(): void {
    this.#digits.fill(0);
    this.#length = 0;
  }

  isWiped(): boolean {
    return this.#length === 0 && this.#digits.every((b) => b === 0);
  }

  /** Never the digits. */
  toJSON(): { length: number } {
    return { length: this.#length };
  }
}
